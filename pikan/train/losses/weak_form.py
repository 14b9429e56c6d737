r"""Weak-form matching: the equations of motion tested against smooth bumps, no acceleration
estimated.

On a window :math:`[t_0, t_1]` of a trajectory take the bump
:math:`\varphi(t) = (1 - s^2)^p`, :math:`s = (2 t - t_0 - t_1) / (t_1 - t_0)`, which
vanishes at both ends with its first derivative. Integrating by parts twice,

.. math:: \int \varphi\, \ddot q \, dt = \int \ddot\varphi\, q \, dt ,

so the equations of motion :math:`\ddot q = a(q, v)` hold on the window exactly when

.. math:: \bar a_{\mathrm{data}} = \frac{\int \ddot\varphi\, q\, dt}{\int \varphi\, dt}
          \quad\text{equals}\quad
          \bar a_{\mathrm{model}} = \frac{\int \varphi\, a(q, v)\, dt}{\int \varphi\, dt}:

both sides are the same weighted average of the acceleration over the window, one read
from the positions without differentiating them, the other from the model. The loss is

.. math:: L_w = \frac{1}{B n} \sum_{b, j}
          \left(\frac{\bar a_{\mathrm{model}, bj} - \bar a_{\mathrm{data}, bj}}{s_j}\right)^2,

with :math:`s_j` the root mean square of the data's averages of coordinate ``j``. Noise in
the positions enters :math:`\bar a_{\mathrm{data}}` only through a smooth weighted sum
(its variance falls with the window's width), and because the model's side is averaged
with the same weights, a wide window blurs nothing the model could not follow: unlike
smoothing the data before differentiating, it adds no bias. Integrals are trapezoid sums
over the window's samples, which may be unevenly spaced. The model's accelerations are
evaluated at the measured positions and at velocities estimated from them (one
derivative, Savitzky--Golay with a window fitted to the noise, when the data has none).

:func:`weak_window` picks the window from the data's time scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch import Tensor

from pikan.data.trajectories import Trajectories
from pikan.errors import DataError
from pikan.train.losses.base import LossKind, accelerations, coordinate_scale

DEGREE = 4
r"""The power :math:`p` of the bump :math:`(1 - s^2)^p`: the bump and its first ``p - 1``
derivatives vanish at the window's ends. A lower power spreads the bump, so position noise
reaches the data's averages less (on a window of 48 samples 0.05 apart, white noise of unit
size gives targets of RMS 0.71, 1.17 and 2.47 with p = 2, 4 and 8);
p = 4 keeps :math:`\ddot\varphi` smooth. Quadrature accuracy does not depend on it
(:func:`weak_averages` corrects the sums)."""

MIN_POINTS = 9
"""Fewest samples in a window: the correction of :func:`weak_averages` needs
``EXACT_DEGREE + 2`` of them."""

MAX_POINTS = 48
"""Most samples a window keeps; a wider window uses every k-th sample (the bump is smooth,
so a coarser trapezoid sum loses little)."""

EXACT_DEGREE = 6
"""The data's weights of each window are corrected to be exact for polynomial motion up to
this degree (:func:`weak_averages`)."""

SPAN = 0.5
r"""A window covers this share of the data's time scale :math:`2\pi\,\mathrm{std}(q) /
\mathrm{std}(v)` (half the period of an oscillator)."""


def bump(t: np.ndarray, degree: int = DEGREE) -> tuple[np.ndarray, np.ndarray]:
    r"""The bump :math:`\varphi` on each window and its second time derivative.

    Parameters
    ----------
    t : ndarray, shape (..., L)
        Increasing sample times of each window; the bump spans the first to the last.
    degree : int
        The power :math:`p` (at least 2, so that :math:`\varphi` and :math:`\dot\varphi`
        vanish at the ends).

    Returns
    -------
    phi, phi_tt : ndarray, shape (..., L)
    """
    t = np.asarray(t, dtype=float)
    t0, t1 = t[..., :1], t[..., -1:]
    half = (t1 - t0) / 2.0
    s = (t - (t0 + t1) / 2.0) / half
    base = np.clip(1.0 - s * s, 0.0, None)
    p = degree
    phi = base**p
    d2 = -2.0 * p * base ** (p - 1) + 4.0 * p * (p - 1) * s * s * base ** (p - 2)
    return phi, d2 / half**2


def trapezoid_weights(t: np.ndarray) -> np.ndarray:
    """Trapezoid quadrature weights of each window's samples: ``sum(w * f)`` integrates f.

    Parameters
    ----------
    t : ndarray, shape (..., L)

    Returns
    -------
    ndarray, shape (..., L)
    """
    dt = np.diff(t, axis=-1)
    w = np.zeros_like(t, dtype=float)
    w[..., :-1] += dt / 2.0
    w[..., 1:] += dt / 2.0
    return w


def weak_weights(t: np.ndarray, degree: int = DEGREE) -> tuple[np.ndarray, np.ndarray]:
    r"""The weights of the model's and of the data's average acceleration on each window.

    The data's weights start from the trapezoid sums,
    :math:`c_i = w_i \ddot\varphi_i / \sum_k w_k \varphi_k`, and are then made exact for
    polynomial motion: the smallest change of ``c`` such that for every polynomial
    ``q(t)`` of degree at most :data:`EXACT_DEGREE` the two sides agree exactly,
    :math:`\sum_i c_i q_i = \sum_i \mathrm{weights}_i \ddot q_i`. Quadrature then errs
    only by how far the motion is from such a polynomial over the window (on
    :math:`\cos(1.3 t)` over 0.4 time units, 21 samples: 2e-4 relative with the trapezoid
    sums alone, below 1e-10 with the correction).

    Parameters
    ----------
    t : ndarray, shape (N, L)
    degree : int

    Returns
    -------
    weights : ndarray, shape (N, L)
        :math:`w_i \varphi_i / \sum_k w_k \varphi_k` (trapezoid weights ``w``): the model's
        average is ``sum_i weights_i a(q_i, v_i)``.
    c : ndarray, shape (N, L)
        The data's average is ``sum_i c_i q_i``; position noise of standard deviation
        sigma reaches it with standard deviation ``sigma * sqrt(sum_i c_i**2)``.
    """
    phi, phi_tt = bump(t, degree)
    w = trapezoid_weights(t)
    norm = np.sum(w * phi, axis=-1, keepdims=True)
    weights = w * phi / norm
    c = w * phi_tt / norm
    # exactness on polynomials: sum_i c_i u_i^k = k (k - 1) sum_i weights_i u_i^(k-2) / h^2
    # in the scaled time u = (t - t_mid) / h, h the half width
    half = (t[:, -1:] - t[:, :1]) / 2.0
    u = (t - (t[:, -1:] + t[:, :1]) / 2.0) / half
    degrees = np.arange(min(EXACT_DEGREE, t.shape[1] - 2) + 1)
    powers = u[:, None, :] ** degrees[None, :, None]  # (N, K + 1, L)
    wanted = np.zeros((t.shape[0], degrees.size))
    for k in degrees[2:]:
        wanted[:, k] = k * (k - 1) * np.sum(weights * u ** (k - 2), axis=-1) / half[:, 0] ** 2
    miss = wanted - np.einsum("nkl,nl->nk", powers, c)
    gram = np.einsum("nkl,njl->nkj", powers, powers)
    c = c + np.einsum("nkl,nk->nl", powers, np.linalg.solve(gram, miss[..., None])[..., 0])
    return weights, c


def weak_averages(t: np.ndarray, q: np.ndarray,
                  degree: int = DEGREE) -> tuple[np.ndarray, np.ndarray]:
    """The model's weights and the data's average acceleration on each window
    (:func:`weak_weights`).

    Parameters
    ----------
    t : ndarray, shape (N, L)
    q : ndarray, shape (N, L, n)
    degree : int

    Returns
    -------
    weights : ndarray, shape (N, L)
    target : ndarray, shape (N, n)
        ``sum_i c_i q_i``.
    """
    weights, c = weak_weights(t, degree)
    return weights, np.einsum("bl,bln->bn", c, q)


def weak_loss(model, q: Tensor, v: Tensor, weights: Tensor, target: Tensor,
              scale: Tensor, t: Tensor | None = None) -> Tensor:
    """Normalized weak-form matching (see the module docstring).

    Parameters
    ----------
    model : pikan Model (anything with ``acceleration(q, v)``)
    q, v : Tensor, shape (batch, L, n)
        The window's positions and velocities, where the model's accelerations are taken.
    weights : Tensor, shape (batch, L)
        :func:`weak_averages`' weights.
    target : Tensor, shape (batch, n)
        :func:`weak_averages`' data averages.
    scale : Tensor, shape (n,)
    t : Tensor, shape (batch, L), optional
        The window's times (driven systems).

    Returns
    -------
    Tensor, scalar.
    """
    batch, length, n = q.shape
    times = None if t is None else t.reshape(-1)
    a = accelerations(model, q.reshape(-1, n), v.reshape(-1, n), times).reshape(batch, length, n)
    average = (weights[..., None] * a).sum(1)
    return (((average - target) / scale) ** 2).mean()


def weak_window(data: Trajectories, length: int | None = None) -> tuple[int, int, str]:
    r"""The default weak-form window for ``data``: how many points, how many samples apart.

    A window spans :data:`SPAN` of the data's fastest time scale,
    :math:`2\pi\,\mathrm{std}(q) / \mathrm{std}(v)` (velocities estimated when the data has
    none), at least :data:`MIN_POINTS` samples, at most the shortest trajectory; it keeps
    every sample up to :data:`MAX_POINTS` points and every k-th beyond.

    Parameters
    ----------
    data : Trajectories
    length : int, optional
        Points per window (at least :data:`MIN_POINTS`); the spacing still follows the
        time scale.

    Returns
    -------
    (length, every, reason) : (int, int, str)
    """
    rates, steps = [], []
    estimated = data if data.has_velocities else data.with_derivatives()
    for record in estimated:
        spread_q, spread_v = record.q.std(axis=0), record.v.std(axis=0)
        rates += [sv / sq for sq, sv in zip(spread_q, spread_v) if sq > 0 and sv > 0]
        steps.append(np.median(np.diff(record.t)) if len(record) > 1 else np.inf)
    dt = float(np.median(steps))
    shortest = int(data.lengths.min())
    if shortest < MIN_POINTS:
        raise DataError(f"weak-form matching needs trajectories of at least {MIN_POINTS} "
                        f"samples; the shortest has {shortest}; hint: drop it with "
                        "data.subset(...), or use loss='rollout'")
    if length is not None and length < MIN_POINTS:
        raise DataError(f"weak-form windows need at least {MIN_POINTS} points, got "
                        f"length={length}")
    omega = max(rates) if rates else 1.0 / dt
    span = max(MIN_POINTS - 1, round(SPAN * 2 * np.pi / omega / dt))  # in samples
    span = min(span, shortest - 1)
    if length is None:
        every = -(-span // (MAX_POINTS - 1))
        length = span // every + 1
    else:
        length = min(int(length), shortest)
        every = max(1, span // (length - 1))
    while (length - 1) * every + 1 > shortest and every > 1:
        every -= 1
    reason = (f"{length} points {every} samples apart ({(length - 1) * every * dt:.3g} time "
              f"units, {SPAN:g} of the time scale 2 pi std(q)/std(v) = {2 * np.pi / omega:.3g})")
    return length, every, reason


@dataclass(frozen=True)
class WeakFormLoss(LossKind):
    """The loss kind ``"weak"``: :func:`weak_loss` on windows of the trajectories.

    Samples: windows of ``length`` points ``every`` samples apart, starting at every
    sample: ``q``, ``v`` (N, length, n), the averaging ``weights`` (N, length) and the data's
    averages ``target`` (N, n) (:func:`weak_averages`). Scale: the root mean square of the
    training targets per coordinate.

    Attributes
    ----------
    length : int
        Points per window, at least :data:`MIN_POINTS` (:func:`weak_window` picks it with
        ``every``).
    every : int
        Samples between consecutive points of a window.
    """

    length: int = 33
    every: int = 1

    name: ClassVar[str] = "weak"

    def __post_init__(self) -> None:
        if self.length < MIN_POINTS or self.every < 1:
            raise ValueError(f"weak-form windows need length >= {MIN_POINTS} and every >= 1, "
                             f"got length={self.length}, every={self.every}")

    def needs_derivatives(self, data) -> bool:
        """True when ``data`` carries no velocities (the model reads ``(q, v)``)."""
        return not data.has_velocities

    def samples(self, data) -> dict[str, np.ndarray]:
        """Every window's ``q``, ``v``, ``weights`` and ``target`` (see the class)."""
        every = self.every
        w = data.windows((self.length - 1) * every + 1, stride=1)
        t, q, v = w.t[:, ::every], w.q[:, ::every], w.v[:, ::every]
        weights, target = weak_averages(t, q)
        return {"q": q, "v": v, "t": t, "weights": weights, "target": target}

    def scales(self, train: dict[str, Tensor], q: Tensor, v: Tensor,
               measured_velocities: bool) -> dict[str, Tensor]:
        """``{"target": coordinate_scale(train["target"], center=False)}``."""
        return {"target": coordinate_scale(train["target"], center=False)}

    def states(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """The middle state of each window."""
        middle = batch["q"].shape[1] // 2
        return batch["q"][:, middle], batch["v"][:, middle], batch["t"][:, middle]

    def __call__(self, model, batch: dict[str, Tensor], scales: dict[str, Tensor]) -> Tensor:
        """:func:`weak_loss` of ``model`` on ``batch``."""
        return weak_loss(model, batch["q"], batch["v"], batch["weights"], batch["target"],
                         scales["target"], batch["t"])
