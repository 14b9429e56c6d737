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

A first-order system (:class:`WeakRateLoss`) integrates by parts once: its rates
:math:`\dot q = f(q)` hold on the window when
:math:`-\int \dot\varphi\, q\, dt / \int \varphi\, dt` equals
:math:`\int \varphi\, f(q)\, dt / \int \varphi\, dt`.

:func:`weak_window` picks the window from the data's time scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch import Tensor

from pikan.data.trajectories import Trajectories
from pikan.errors import DataError
from pikan.train.losses.base import LossKind, coordinate_scale, time_derivatives

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

CUT_EXACT_DEGREE = 10
"""The same for a window whose bump is cut at a trajectory's end (:func:`weak_windows`):
there the integrand does not vanish, the trapezoid sums err more, and on a relaxation's
fast start a degree of 6 left 1.8e-3 of the largest average (10: 2.6e-4), for 4 % more
noise in the average."""

SPAN = 0.5
r"""A window covers this share of the data's time scale :math:`2\pi\,\mathrm{std}(q) /
\mathrm{std}(v)` (half the period of an oscillator)."""

RATE_SPAN = 0.25
r"""The share for a first-order system, of :math:`2\pi` times its correlation time
(:func:`correlation_time`). One derivative fewer reaches the data's side, so position noise
costs a short window less; a long one leaves a KAN free in more of its shapes: on Van der
Pol at 1 % noise (800 steps) the KAN's rates were 25 % off with half the time scale, 8 %
with a quarter."""


def _scaled(t: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each window's times as ``s`` in [-1, 1] over its bump's span, the clipped ``1 - s**2``
    (0 outside the span) and the half width."""
    t = np.asarray(t, dtype=float)
    t0, t1 = (t[..., :1], t[..., -1:]) if bounds is None else bounds
    half = (t1 - t0) / 2.0
    s = (t - (t0 + t1) / 2.0) / half
    return s, np.clip(1.0 - s * s, 0.0, None), half


def bump(t: np.ndarray, degree: int = DEGREE,
         bounds: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""The bump :math:`\varphi` on each window and its second time derivative.

    Parameters
    ----------
    t : ndarray, shape (..., L)
        Increasing sample times of each window; the bump spans the first to the last.
    degree : int
        The power :math:`p` (at least 2, so that :math:`\varphi` and :math:`\dot\varphi`
        vanish at the ends).
    bounds : (ndarray, ndarray), each shape (..., 1), optional
        Where each bump starts and ends instead (a window cut by a trajectory's end, see
        :func:`weak_windows`); it is zero outside.

    Returns
    -------
    phi, phi_tt : ndarray, shape (..., L)
    """
    s, base, half = _scaled(t, bounds)
    p = degree
    phi = base**p
    d2 = -2.0 * p * base ** (p - 1) + 4.0 * p * (p - 1) * s * s * base ** (p - 2)
    return phi, d2 / half**2


def bump_rate(t: np.ndarray, degree: int = DEGREE,
              bounds: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    r"""The first time derivative :math:`\dot\varphi` of :func:`bump` on each window.

    Parameters
    ----------
    t : ndarray, shape (..., L)
    degree : int
        The power :math:`p` (at least 2).
    bounds : (ndarray, ndarray), optional
        As for :func:`bump`.

    Returns
    -------
    ndarray, shape (..., L)
    """
    s, base, half = _scaled(t, bounds)
    return -2.0 * degree * s * base ** (degree - 1) / half


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


def weak_weights(t: np.ndarray, degree: int = DEGREE, order: int = 2,
                 bounds: tuple[np.ndarray, np.ndarray] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    r"""The weights of the model's and of the data's average derivative on each window.

    For ``order=2`` (accelerations) the data's weights start from the trapezoid sums,
    :math:`c_i = w_i \ddot\varphi_i / \sum_k w_k \varphi_k`; for ``order=1`` (the rates
    of a first-order system, one integration by parts:
    :math:`\int \varphi\, \dot q\, dt = -\int \dot\varphi\, q\, dt`) from
    :math:`c_i = -w_i \dot\varphi_i / \sum_k w_k \varphi_k`. Either is then made exact for
    polynomial motion: the smallest change of ``c`` such that for every polynomial ``q(t)``
    of degree at most :data:`EXACT_DEGREE` (:data:`CUT_EXACT_DEGREE` for a cut bump) the two
    sides agree exactly,
    :math:`\sum_i c_i q_i = \sum_i \mathrm{weights}_i\, q^{(\mathrm{order})}_i`.
    Quadrature then errs only by how far the motion is from such a polynomial over the
    window (on :math:`\cos(1.3 t)` over 0.4 time units, 21 samples, order 2: 2e-4 relative
    with the trapezoid sums alone, below 1e-10 with the correction).

    A bump cut by the window's ends (``bounds``, first order only) leaves the boundary term
    of the integration by parts, :math:`\varphi q` at the last sample minus at the first,
    which joins ``c`` there.

    Parameters
    ----------
    t : ndarray, shape (N, L)
    degree : int
    order : {1, 2}
        The derivative averaged: rates (first-order systems) or accelerations.
    bounds : (ndarray, ndarray), each shape (N, 1), optional
        Each bump's start and end (:func:`bump`), for ``order=1``; default the window's
        first and last sample.

    Returns
    -------
    weights : ndarray, shape (N, L)
        :math:`w_i \varphi_i / \sum_k w_k \varphi_k` (trapezoid weights ``w``): the model's
        average is ``sum_i weights_i a(q_i, v_i)`` (``a`` the rate for ``order=1``).
    c : ndarray, shape (N, L)
        The data's average is ``sum_i c_i q_i``; position noise of standard deviation
        sigma reaches it with standard deviation ``sigma * sqrt(sum_i c_i**2)``.
    """
    if order not in (1, 2):
        raise ValueError(f"weak_weights averages a first or second derivative, got "
                         f"order={order!r}")
    if bounds is not None and order != 1:
        raise ValueError("weak_weights: a cut bump (bounds) needs order=1; the second "
                         "derivative's boundary terms would need velocities")
    phi, phi_tt = bump(t, degree, bounds)
    w = trapezoid_weights(t)
    norm = np.sum(w * phi, axis=-1, keepdims=True)
    weights = w * phi / norm
    if order == 2:
        c = w * phi_tt / norm
    else:
        c = -w * bump_rate(t, degree, bounds)
        c[:, -1] += phi[:, -1]  # boundary terms: zero unless the bump is cut there
        c[:, 0] -= phi[:, 0]
        c = c / norm
    # exactness on polynomials: sum_i c_i u_i^k = k!/(k - order)! sum_i weights_i
    # u_i^(k - order) / h^order in the scaled time u = (t - t_mid) / h, h the half width
    half = (t[:, -1:] - t[:, :1]) / 2.0
    u = (t - (t[:, -1:] + t[:, :1]) / 2.0) / half
    exact = EXACT_DEGREE if bounds is None else CUT_EXACT_DEGREE
    degrees = np.arange(min(exact, t.shape[1] - 2) + 1)
    powers = u[:, None, :] ** degrees[None, :, None]  # (N, K + 1, L)
    wanted = np.zeros((t.shape[0], degrees.size))
    for k in degrees[order:]:
        falling = k * (k - 1) if order == 2 else k
        wanted[:, k] = falling * np.sum(weights * u ** (k - order), axis=-1) / half[:, 0] ** order
    miss = wanted - np.einsum("nkl,nl->nk", powers, c)
    gram = np.einsum("nkl,njl->nkj", powers, powers)
    c = c + np.einsum("nkl,nk->nl", powers, np.linalg.solve(gram, miss[..., None])[..., 0])
    return weights, c


def weak_averages(t: np.ndarray, q: np.ndarray, degree: int = DEGREE, order: int = 2
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The model's weights and the data's average derivative (acceleration, or rate for
    ``order=1``) on each window (:func:`weak_weights`).

    Parameters
    ----------
    t : ndarray, shape (N, L)
    q : ndarray, shape (N, L, n)
    degree : int
    order : {1, 2}

    Returns
    -------
    weights : ndarray, shape (N, L)
    target : ndarray, shape (N, n)
        ``sum_i c_i q_i``.
    """
    weights, c = weak_weights(t, degree, order)
    return weights, np.einsum("bl,bln->bn", c, q)


@dataclass(frozen=True)
class WeakWindows:
    """The weak-form windows of some trajectories and their weights (:func:`weak_windows`).

    Attributes
    ----------
    t : ndarray, shape (W, L)
    q : ndarray, shape (W, L, n)
    v : ndarray, shape (W, L, n), or (W, L, 0) for ``order=1``
    weights, c : ndarray, shape (W, L)
        :func:`weak_weights`: the model's average is ``sum(weights * a)``, the data's
        ``sum(c * q)``.
    trajectory : ndarray of int, shape (W,)
    points : ndarray of int, shape (W, L)
        Each point's sample index in its trajectory.
    """

    t: np.ndarray
    q: np.ndarray
    v: np.ndarray
    weights: np.ndarray
    c: np.ndarray
    trajectory: np.ndarray
    points: np.ndarray

    @property
    def target(self) -> np.ndarray:
        """The data's averages ``sum_i c_i q_i``, shape (W, n)."""
        return np.einsum("bl,bln->bn", self.c, self.q)


def weak_windows(data: Trajectories, length: int, every: int, order: int = 2,
                 degree: int = DEGREE) -> WeakWindows:
    """Every weak-form window of ``data``: ``length`` points ``every`` samples apart, one
    starting at each sample; for ``order=1`` also the windows cut by each trajectory's ends.

    A whole window's bump vanishes at both its ends, so the first and last half window of a
    trajectory are hardly tested, and a first-order system's transient (a reaction relaxing
    to equilibrium) is mostly there. A first-order window may instead hang over a
    trajectory's end by up to half its span: its bump is cut there and the boundary term
    :math:`\varphi(t_0) q(t_0)` joins the data's side (:func:`weak_weights`), so every
    sample is covered. The cut windows take the trajectory's first (or last) points and
    their bump is zero past its own end. Second-order windows are whole (a cut bump's
    boundary terms would need the velocity).

    Parameters
    ----------
    data : Trajectories
        With velocities for ``order=2``.
    length, every : int
        As :func:`weak_window` returns them.
    order : {1, 2}
    degree : int

    Returns
    -------
    WeakWindows
    """
    span = (length - 1) * every + 1
    w = data.windows(span, stride=1)
    t, q = w.t[:, ::every], w.q[:, ::every]
    v = q[..., :0] if order == 1 or w.v is None else w.v[:, ::every]
    offsets = every * np.arange(length)
    points = w.start[:, None] + offsets[None, :]
    weights, c = weak_weights(t, degree, order)
    parts = [(t, q, v, weights, c, w.trajectory, points)]
    if order == 1:
        for k, record in enumerate(data):
            parts.append(_cut_windows(record, k, span, offsets, degree))
    t, q, v, weights, c, trajectory, points = (np.concatenate(x) for x in zip(*parts))
    return WeakWindows(t, q, v, weights, c, trajectory, points)


def _cut_windows(record, index: int, span: int, offsets: np.ndarray, degree: int) -> tuple:
    """The first-order windows of one trajectory whose bumps hang over its first or last
    sample by 1 to ``(span - 1) // 2`` steps (:func:`weak_windows`)."""
    n = len(record)
    shifts = np.arange(1, (span - 1) // 2 + 1)
    step = float(np.median(np.diff(record.t)))
    duration = float(record.t[span - 1] - record.t[0])
    every = int(offsets[1] - offsets[0]) if offsets.size > 1 else 1
    # windows at successive shifts start one sample further in, so that every sample near
    # the ends is a point of some of them
    skip = (shifts % every if n >= span + every - 1 else np.zeros_like(shifts))[:, None]
    points = np.concatenate([skip + offsets[None], n - span - skip + offsets[None]])
    lo = np.concatenate([record.t[0] - shifts * step,
                         record.t[-1] + shifts * step - duration])[:, None]
    t = record.t[points]
    weights, c = weak_weights(t, degree, 1, bounds=(lo, lo + duration))
    q = record.q[points]
    return (t, q, q[..., :0], weights, c, np.full(points.shape[0], index), points)


def weak_loss(model, q: Tensor, v: Tensor, weights: Tensor, target: Tensor,
              scale: Tensor, t: Tensor | None = None) -> Tensor:
    """Normalized weak-form matching (see the module docstring).

    Parameters
    ----------
    model : pikan Model (anything with ``acceleration(q, v)``, or ``rate(q)`` for a
        first-order one)
    q, v : Tensor, shape (batch, L, n) (v: (batch, L, 0) in a first-order system)
        The window's positions and velocities, where the model's derivatives are taken.
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
    flat_v = v.reshape(batch * length, v.shape[-1])
    a = time_derivatives(model, q.reshape(-1, n), flat_v, times).reshape(batch, length, n)
    average = (weights[..., None] * a).sum(1)
    return (((average - target) / scale) ** 2).mean()


def weak_window(data: Trajectories, length: int | None = None, order: int = 2
                ) -> tuple[int, int, str]:
    r"""The default weak-form window for ``data``: how many points, how many samples apart.

    A window spans :data:`SPAN` (first order: :data:`RATE_SPAN`) of the data's time scale,
    at least :data:`MIN_POINTS` samples, at most the shortest trajectory; it keeps every
    sample up to :data:`MAX_POINTS` points and every k-th beyond. The time scale:

    - second order: the fastest :math:`2\pi\,\mathrm{std}(q) / \mathrm{std}(v)` (velocities
      estimated when the data has none), the period of an oscillator;
    - first order: :func:`correlation_time` of the positions. A first-order system's
      velocities are its rates, which settle to zero where it relaxes to a fixed point:
      there the estimated rates are mostly noise, and a noise-made ``std(v)`` shrank the
      windows of a mass-action network at 1 % noise to 9 samples, whose averages were
      noise again.

    Parameters
    ----------
    data : Trajectories
    length : int, optional
        Points per window (at least :data:`MIN_POINTS`); the spacing still follows the
        time scale.
    order : {1, 2}
        The system's order.

    Returns
    -------
    (length, every, reason) : (int, int, str)
    """
    rates, steps = [], []
    estimated = data if data.has_velocities or order == 1 else data.with_derivatives()
    for record in estimated:
        steps.append(np.median(np.diff(record.t)) if len(record) > 1 else np.inf)
        if order == 1:
            continue
        spread_q, spread_v = record.q.std(axis=0), record.v.std(axis=0)
        rates += [sv / sq for sq, sv in zip(spread_q, spread_v) if sq > 0 and sv > 0]
    dt = float(np.median(steps))
    if order == 1:
        scale = correlation_time(data)
        rates = [1.0 / scale] if np.isfinite(scale) and scale > 0 else []  # sin(t / scale)
    shortest = int(data.lengths.min())
    if shortest < MIN_POINTS:
        raise DataError(f"weak-form matching needs trajectories of at least {MIN_POINTS} "
                        f"samples; the shortest has {shortest}; hint: drop it with "
                        "data.subset(...), or use loss='rollout'")
    if length is not None and length < MIN_POINTS:
        raise DataError(f"weak-form windows need at least {MIN_POINTS} points, got "
                        f"length={length}")
    omega = max(rates) if rates else 1.0 / dt
    share = SPAN if order == 2 else RATE_SPAN
    span = max(MIN_POINTS - 1, round(share * 2 * np.pi / omega / dt))  # in samples
    span = min(span, shortest - 1)
    if length is None:
        every = -(-span // (MAX_POINTS - 1))
        length = span // every + 1
    else:
        length = min(int(length), shortest)
        every = max(1, span // (length - 1))
    while (length - 1) * every + 1 > shortest and every > 1:
        every -= 1
    measure = "2 pi std(q)/std(v)" if order == 2 else "2 pi x the correlation time of q"
    reason = (f"{length} points {every} samples apart ({(length - 1) * every * dt:.3g} time "
              f"units, {share:g} of the time scale {measure} = {2 * np.pi / omega:.3g})")
    return length, every, reason


CORRELATED = float(np.cos(1.0))
"""The autocorrelation at which :func:`correlation_time` reads the lag: that of a sine one
radian on."""


def correlation_time(data: Trajectories) -> float:
    r"""The positions' correlation time: the median, over trajectories and coordinates, of
    the first lag at which the autocorrelation of ``q - mean(q)`` falls below
    :data:`CORRELATED` (:math:`\cos 1`).

    For an oscillation :math:`\sin(\omega t)` that lag is :math:`1/\omega`; for a
    relaxation it is about its decay time. White noise moves only the lag-zero term, so 1 %
    noise leaves it unchanged where :math:`\mathrm{std}(v)` of estimated rates is not. A
    coordinate that does not move is skipped; one that never decorrelates counts as its
    trajectory's half length.

    Returns
    -------
    float
        In the data's time units; ``inf`` when no coordinate moves.
    """
    lags = []
    for record in data:
        n = len(record)
        if n < 4:
            continue
        step = float(np.median(np.diff(record.t)))
        centered = record.q - record.q.mean(axis=0)
        power = np.sum(centered**2, axis=0)
        for j in np.flatnonzero(power > 0):
            x = centered[:, j]
            spectrum = np.fft.rfft(x, 2 * n)
            auto = np.fft.irfft(spectrum * np.conj(spectrum))[: n // 2]
            auto = auto / power[j] * n / (n - np.arange(n // 2))  # unbiased, lag 0 = 1
            below = np.flatnonzero(auto < CORRELATED)
            lags.append((below[0] if below.size else n // 2) * step)
    return float(np.median(lags)) if lags else math.inf


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
    order: ClassVar[int] = 2
    """The derivative the windows average: 2, accelerations (:class:`WeakRateLoss`: 1)."""

    def __post_init__(self) -> None:
        if self.length < MIN_POINTS or self.every < 1:
            raise ValueError(f"weak-form windows need length >= {MIN_POINTS} and every >= 1, "
                             f"got length={self.length}, every={self.every}")

    def needs_derivatives(self, data) -> bool:
        """True when ``data`` carries no velocities (the model reads ``(q, v)``)."""
        return not data.has_velocities

    def samples(self, data) -> dict[str, np.ndarray]:
        """Every window's ``q``, ``v``, ``weights`` and ``target`` (see the class)."""
        w = weak_windows(data, self.length, self.every, self.order)
        return {"q": w.q, "v": w.v, "t": w.t, "weights": w.weights, "target": w.target}

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


@dataclass(frozen=True)
class WeakRateLoss(WeakFormLoss):
    r"""The loss kind ``"weak_rate"``: weak-form matching of a first-order system's rates.

    As :class:`WeakFormLoss` with one integration by parts instead of two: the data's side
    :math:`-\int \dot\varphi\, q\, dt / \int \varphi\, dt` against the model's
    :math:`\int \varphi f(q)\, dt / \int \varphi\, dt`, ``f = Model.rate``; the samples
    carry no velocities (``v`` of shape (N, length, 0)). What ``fit(loss="auto")`` uses for a
    first-order system with noisy positions and no measured rates.
    """

    name: ClassVar[str] = "weak_rate"
    order: ClassVar[int] = 1
