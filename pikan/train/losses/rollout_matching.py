r"""Rollout matching: integrate the model through windows of the data and compare positions.

:func:`rollout_loss` integrates the model from the first state of each window (RK4 or
velocity Verlet, autograd through every step) and compares the positions (and the
velocities when they were measured) at the window's later sample times,

.. math:: L_r = \frac{1}{B (L-1) n} \sum_{b, i \ge 1, j}
          \left(\frac{\hat q_j(t_{bi}) - q_{bij}}{\sigma_{q,j}}\right)^2
          \;[+ \text{the same for } v].

No derivative of the data is estimated: the robust choice for noisy positions.
:func:`rollout_window` and :func:`velocity_free` pick the window and the integrator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from pikan.data.integrate import rk4_step, verlet_step
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError
from pikan.train.losses.base import LossKind, coordinate_scale

BOX_MARGIN = 0.1
"""A rollout loss's box: the training states' range widened by this share of its span."""


def state_box(q: Tensor, v: Tensor, margin: float = BOX_MARGIN) -> tuple[Tensor, Tensor]:
    """The box a rollout loss evaluates the model in: the range of the states, widened.

    Parameters
    ----------
    q, v : Tensor, shape (..., n)
    margin : float
        Share of each coordinate's span added on both sides.

    Returns
    -------
    lo, hi : Tensor, shape (2 n,), for the state ``[q, v]``.
    """
    y = torch.cat([q.reshape(-1, q.shape[-1]), v.reshape(-1, v.shape[-1])], dim=-1)
    lo, hi = y.min(0).values, y.max(0).values
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


def rollout(model, q0: Tensor, v0: Tensor, t: Tensor, method: str = "rk4",
            box: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Integrate ``model`` from ``(q0, v0)`` through the sample times of every window.

    Each window has its own times, so windows with different time steps share a batch.

    Parameters
    ----------
    model : pikan Model (``vector_field`` for RK4, ``acceleration`` for Verlet)
    q0, v0 : Tensor, shape (batch, n)
    t : Tensor, shape (batch, L)
        Increasing sample times of each window.
    method : {"rk4", "verlet"}
        Verlet is second order and needs accelerations independent of v.
    box : (lo, hi) of Tensor, shape (2 n,), optional
        The model is evaluated at the state clamped into this box (:func:`state_box`), so
        off the data its forces are held at their value on the box's face. A KAN's splines
        continue their end polynomials off the grid, and through two layers a cubic becomes
        a ninth-degree polynomial: one Adam step from zero splines on Morse data gave forces
        of 2.6e3 half a unit past the data and rollouts that returned NaN from then on. The
        clamp keeps such a rollout finite (its loss large, its gradient alive in the steps
        before it left); a model that follows the data never meets the box.

    Returns
    -------
    q, v : Tensor, shape (batch, L, n); index 0 holds the initial state.
    """
    n = q0.shape[-1]
    if box is None:
        field, accel = model.vector_field, model.acceleration
    else:
        lo, hi = box

        def field(time, y):
            return model.vector_field(time, torch.clamp(y, lo, hi))

        def accel(q, v):
            return model.acceleration(torch.clamp(q, lo[:n], hi[:n]),
                                      torch.clamp(v, lo[n:], hi[n:]))

    steps = (t[:, 1:] - t[:, :-1])[..., None]  # (batch, L - 1, 1)
    qs, vs = [q0], [v0]
    if method == "rk4":
        y = torch.cat([q0, v0], dim=-1)
        for i in range(steps.shape[1]):
            # each window at its own times: a driven model reads them
            y = rk4_step(field, t[:, i:i + 1], y, steps[:, i])
            qs.append(y[:, :n])
            vs.append(y[:, n:])
    elif method == "verlet":
        q, v = q0, v0
        a = accel(q, v)
        for i in range(steps.shape[1]):
            q, v, a = verlet_step(accel, q, v, a, steps[:, i])
            qs.append(q)
            vs.append(v)
    else:
        raise ValueError(f"rollout method must be 'rk4' or 'verlet', got {method!r}")
    return torch.stack(qs, dim=1), torch.stack(vs, dim=1)


def rollout_loss(model, q: Tensor, v: Tensor, t: Tensor, scale_q: Tensor,
                 scale_v: Tensor | None = None, method: str = "rk4",
                 box: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Normalized rollout matching over windows (see the module docstring).

    Parameters
    ----------
    model : pikan Model
    q : Tensor, shape (batch, L, n)
        Observed positions of each window; ``q[:, 0]`` starts the rollout.
    v : Tensor, shape (batch, L, n)
        Velocities; ``v[:, 0]`` starts the rollout. They are compared only with ``scale_v``.
    t : Tensor, shape (batch, L)
    scale_q : Tensor, shape (n,)
    scale_v : Tensor, shape (n,), optional
        Give it when the velocities were measured (not estimated from q) to compare them too.
    method : {"rk4", "verlet"}
    box : (lo, hi) of Tensor, shape (2 n,), optional
        Where the model is evaluated (see :func:`rollout`); :func:`pikan.fit` passes
        :func:`state_box` of the training windows.

    Returns
    -------
    Tensor, scalar.
    """
    q_hat, v_hat = rollout(model, q[:, 0], v[:, 0], t, method, box)
    loss = (((q_hat[:, 1:] - q[:, 1:]) / scale_q) ** 2).mean()
    if scale_v is not None:
        loss = loss + (((v_hat[:, 1:] - v[:, 1:]) / scale_v) ** 2).mean()
    return loss


def rollout_window(data: Trajectories, length: int | None = None) -> tuple[int, int, str]:
    r"""The default rollout window for ``data``: how many points, how many samples apart.

    A window covers about a quarter of the fastest time scale of the data,
    :math:`2\pi \, \mathrm{std}(q) / \mathrm{std}(v)` (the period of an oscillator), with
    one integration step per saved point: long enough that the force shows above the
    position noise, short enough that the rollout stays cheap and stable. Velocities are
    estimated (Savitzky--Golay) when the data has none. The window is shortened to fit the
    shortest trajectory.

    Parameters
    ----------
    data : Trajectories
    length : int, optional
        Points per window (default 16).

    Returns
    -------
    (length, every, reason) : (int, int, str)
        Points per window, the sample stride between them, and a sentence saying why.
    """
    rates, steps = [], []
    estimated = data if data.has_velocities else data.with_derivatives()
    for record in estimated:
        spread_q, spread_v = record.q.std(axis=0), record.v.std(axis=0)
        rates += [sv / sq for sq, sv in zip(spread_q, spread_v) if sq > 0 and sv > 0]
        steps.append(np.median(np.diff(record.t)) if len(record) > 1 else np.inf)
    dt = float(np.median(steps))
    shortest = int(data.lengths.min())
    if shortest < 2:
        raise DataError(f"rollout matching needs trajectories of at least 2 samples; the "
                        f"shortest has {shortest}; hint: drop it with data.subset(...)")
    omega = max(rates) if rates else 1.0 / dt
    length = min(int(length or 16), shortest)
    if length < 2:
        raise DataError(f"rollout windows need at least 2 points, got length={length}")
    every = max(1, round(0.25 * 2 * np.pi / omega / dt / (length - 1)))
    while (length - 1) * every + 1 > shortest and every > 1:
        every -= 1
    reason = (f"{length} points {every} samples apart ({(length - 1) * every * dt:.3g} time "
              f"units; the time scale 2 pi std(q)/std(v) is {2 * np.pi / omega:.3g})")
    return length, every, reason


def velocity_free(model) -> bool:
    """Whether the model's accelerations cannot depend on velocities, so Verlet applies.

    True for a Newtonian model with fixed masses whose modules are all Potentials of
    positions (no velocity in any binding) and that is not driven (Verlet steps carry no
    time).
    """
    spec = model.spec
    if spec.formulation != "newtonian" or spec.masses == "learn" or spec.driven:
        return False
    velocities = set(spec.velocities)
    for module in spec.modules:
        if module.kind != "Potential":
            return False
        for binding in module.input_bindings:
            for expr in binding.values():
                names = {str(s) for s in getattr(expr, "free_symbols", ())}
                if names & velocities or (not names and str(expr) in velocities):
                    return False
    return True


@dataclass(frozen=True)
class RolloutLoss(LossKind):
    """The loss kind ``"rollout"``: :func:`rollout_loss` on windows of the trajectories.

    Samples: windows of ``length`` points ``every`` samples apart, ``t`` (N, length) and
    ``q``, ``v`` (N, length, n). Scales: the standard deviation of every training position
    (and velocity, when measured) per coordinate, and the box the model is evaluated in
    (:func:`state_box` of the training windows).

    Attributes
    ----------
    method : {"rk4", "verlet"}
        The integrator (:func:`rollout`); Verlet needs accelerations independent of v
        (:func:`velocity_free`).
    length : int
        Points per window (:func:`rollout_window` picks it with ``every``).
    every : int
        Samples between consecutive points of a window.
    """

    method: str = "rk4"
    length: int = 16
    every: int = 1

    name: ClassVar[str] = "rollout"

    def __post_init__(self) -> None:
        if self.method not in ("rk4", "verlet"):
            raise ValueError(f"rollout method must be 'rk4' or 'verlet', got {self.method!r}")
        if self.length < 2 or self.every < 1:
            raise ValueError(f"rollout windows need length >= 2 and every >= 1, got "
                             f"length={self.length}, every={self.every}")

    def needs_derivatives(self, data) -> bool:
        """True when ``data`` carries no velocities (the rollouts start from ``(q, v)``)."""
        return not data.has_velocities

    def samples(self, data) -> dict[str, np.ndarray]:
        """Every window's times ``t`` (N, length) and states ``q``, ``v`` (N, length, n)."""
        every = self.every
        w = data.windows((self.length - 1) * every + 1, stride=every)
        return {"t": w.t[:, ::every], "q": w.q[:, ::every], "v": w.v[:, ::every]}

    def scales(self, train: dict[str, Tensor], q: Tensor, v: Tensor,
               measured_velocities: bool) -> dict[str, Tensor]:
        """``"q"`` (and ``"v"`` when measured): :func:`coordinate_scale` of every training
        state; ``"box_lo"``, ``"box_hi"``: :func:`state_box` of the training windows (a
        model that leaves the data meets held forces, not extrapolated polynomials)."""
        scales = {"q": coordinate_scale(q)}
        scales["box_lo"], scales["box_hi"] = state_box(train["q"], train["v"])
        if measured_velocities:
            scales["v"] = coordinate_scale(v)
        return scales

    def states(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """The first state of each window."""
        return batch["q"][:, 0], batch["v"][:, 0], batch["t"][:, 0]

    def __call__(self, model, batch: dict[str, Tensor], scales: dict[str, Tensor]) -> Tensor:
        """:func:`rollout_loss` of ``model`` on ``batch``, in the box of ``scales`` if any."""
        box = (scales["box_lo"], scales["box_hi"]) if "box_lo" in scales else None
        return rollout_loss(model, batch["q"], batch["v"], batch["t"], scales["q"],
                            scales.get("v"), self.method, box)
