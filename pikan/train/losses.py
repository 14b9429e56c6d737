r"""Training losses as pure functions of a model and tensors, and the rule that picks one.

Every loss is a mean of squared errors normalized per coordinate, so a loss of ``1e-6``
means a relative RMS error of about ``1e-3`` whatever the units:

- :func:`acceleration_loss` matches the equations of motion to accelerations,

  .. math:: L_a = \frac{1}{B n} \sum_{b, j} \left(\frac{a_j(q_b, v_b) - a_{bj}}{s_j}\right)^2,

  with :math:`s_j` the root mean square of the data's accelerations of coordinate ``j``
  (:func:`coordinate_scale`). Potentials enter through ``-dV/dq`` computed by autograd, so
  the gradient of this loss needs a double backward.
- :func:`rollout_loss` integrates the model from the first state of each window (RK4 or
  velocity Verlet, autograd through every step) and compares the positions (and the
  velocities when they were measured) at the window's later sample times,

  .. math:: L_r = \frac{1}{B (L-1) n} \sum_{b, i \ge 1, j}
            \left(\frac{\hat q_j(t_{bi}) - q_{bij}}{\sigma_{q,j}}\right)^2
            \;[+ \text{the same for } v].

  No derivative of the data is estimated: the robust choice for noisy positions.
- :func:`sparsity` is the KAN 2.0 penalty (l1 + entropy of edge magnitudes) of every
  learned block on the batch's module inputs; :func:`soft_penalties` gathers the spec's
  soft constraints.

:func:`choose_loss` is the documented rule behind ``fit(loss="auto")``;
:func:`rollout_window` and :func:`velocity_free` pick the rollout's window and integrator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from pikan.data.trajectories import Trajectories
from pikan.data.derivatives import noise_level
from pikan.errors import DataError
from pikan.data.integrate import rk4_step

CLEAN_NOISE = 1e-4
"""Relative position noise (noise std / signal std) below which positions count as clean.

Simulated data read 1e-9 to 2e-5 (the top of that range where a steep wall makes every
difference order large: a Lennard-Jones bounce); measured positions, 1e-3 and up. Clean
data trained on rollouts (300 steps) instead of accelerations fit 100x worse: the KAN of a
Lennard-Jones well reached validation 1.3e-3 and rolled out to inf, against 8.7e-4 and a
finite rollout on accelerations."""


# ----------------------------------------------------------------------------- scales


def coordinate_scale(x: Tensor, center: bool = True, floor: float = 0.1) -> Tensor:
    """Per-coordinate size of ``x`` used to normalize a loss.

    The standard deviation (``center=True``, for positions and velocities, whose offsets
    carry no information) or the root mean square (``center=False``, for accelerations, so
    that the loss measures relative error even when an acceleration is mostly constant).
    A coordinate that hardly varies (a free particle's zero acceleration) gets
    ``floor * max_j scale_j`` (or 1 when every scale is zero): its absolute errors then count
    on the scale of the other coordinates instead of being blown up.

    Parameters
    ----------
    x : Tensor, shape (N, n)
    center : bool
    floor : float

    Returns
    -------
    Tensor, shape (n,)
    """
    if center:
        x = x - x.mean(0)
    size = x.pow(2).mean(0).sqrt()
    top = size.max()
    low = floor * top if bool(top > 0) else torch.ones((), dtype=x.dtype, device=x.device)
    return torch.maximum(size, low)


def relative_error(prediction: Tensor, target: Tensor) -> float:
    r"""Relative RMS error :math:`\|p - t\| / \|t\|` over all entries."""
    prediction, target = prediction.detach(), target.detach()
    return float((prediction - target).norm() / target.norm().clamp_min(1e-300))


# ----------------------------------------------------------------------------- data losses


def acceleration_loss(model, q: Tensor, v: Tensor, a: Tensor, scale: Tensor) -> Tensor:
    """Normalized acceleration matching (see the module docstring).

    Parameters
    ----------
    model : pikan Model (anything with ``acceleration(q, v)``)
    q, v, a : Tensor, shape (batch, n)
        Positions, velocities and target accelerations.
    scale : Tensor, shape (n,)
        Per-coordinate normalization, usually :func:`coordinate_scale` of the training
        accelerations.

    Returns
    -------
    Tensor, scalar.
    """
    return (((model.acceleration(q, v) - a) / scale) ** 2).mean()


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
            return model.acceleration(torch.clamp(q, lo[:n], hi[:n]), torch.clamp(v, lo[n:], hi[n:]))

    steps = (t[:, 1:] - t[:, :-1])[..., None]  # (batch, L - 1, 1)
    qs, vs = [q0], [v0]
    if method == "rk4":
        y = torch.cat([q0, v0], dim=-1)
        for i in range(steps.shape[1]):
            y = rk4_step(field, t[0, i], y, steps[:, i])
            qs.append(y[:, :n])
            vs.append(y[:, n:])
    elif method == "verlet":
        q, v = q0, v0
        a = accel(q, v)
        for i in range(steps.shape[1]):
            h = steps[:, i]
            half = v + h / 2 * a
            q = q + h * half
            a = accel(q, half)
            v = half + h / 2 * a
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


# ----------------------------------------------------------------------------- regularization


def kan_inputs(model, name: str, q: Tensor, v: Tensor) -> Tensor:
    """Inputs of the KAN of block ``name`` on states ``(q, v)``: ``(n_bindings * batch, in_dim)``.

    A learned gyroscopic block's KAN sees only its field inputs (positions), as in
    ``Model.adapt_grids``.
    """
    z = model.module_inputs(name, q, v)
    block = model.blocks[name]
    if getattr(block, "gyroscopic_learned", False):
        z = z[:, block._field_slots]
    return z


def learned_kans(model) -> dict:
    """``{module name: KAN}`` of every block learned by a KAN."""
    return {name: block.kan for name, block in model.blocks.items() if block.kan is not None}


def sparsity(model, q: Tensor, v: Tensor, l1: float = 1.0, entropy: float = 2.0) -> Tensor:
    """KAN 2.0 sparsity penalty summed over learned blocks, edge sizes measured on ``(q, v)``.

    Parameters
    ----------
    model : pikan Model
    q, v : Tensor, shape (batch, n)
    l1, entropy : float
        Weights of the l1 and entropy parts (see ``KAN.regularization``).

    Returns
    -------
    Tensor, scalar (zero without learned KAN blocks).
    """
    total = q.new_zeros(())
    for name, kan in learned_kans(model).items():
        total = total + kan.regularization(kan_inputs(model, name, q, v), l1=l1, entropy=entropy)
    return total


@dataclass(frozen=True)
class Penalty:
    """A soft constraint turned into a loss term.

    Attributes
    ----------
    name : str
        ``"<module>.<ConstraintType>"`` or ``"system.<ConstraintType>"``.
    weight : float
    fn : callable ``fn(model, q, v) -> scalar Tensor``
    """

    name: str
    weight: float
    fn: Callable[..., Tensor]


def _penalty_fn(constraint, module_name: str | None) -> Callable[..., Tensor] | None:
    method = getattr(constraint, "penalty", None)
    if not callable(method):
        return None
    if module_name is None:
        return lambda model, q, v: method(model, q, v)
    return lambda model, q, v: method(model, q, v, module=module_name)


def soft_penalties(model) -> list[Penalty]:
    """The soft constraints of ``model.spec`` (``mode == "soft"``) as weighted loss terms.

    A soft constraint contributes ``weight * constraint.penalty(model, q, v, module=name)``
    (module constraints) or ``weight * constraint.penalty(model, q, v)`` (system
    constraints); ``weight`` is the constraint's ``weight`` attribute (default 1).
    Constraints without a ``penalty`` method are skipped.
    """
    spec = model.spec
    found = []
    owners = [(m.name, m.constraints) for m in spec.modules] + [(None, spec.constraints)]
    for owner, constraints in owners:
        for constraint in constraints:
            if getattr(constraint, "mode", None) != "soft":
                continue
            fn = _penalty_fn(constraint, owner)
            if fn is None:
                continue
            label = f"{owner or 'system'}.{type(constraint).__name__}"
            found.append(Penalty(label, float(getattr(constraint, "weight", 1.0)), fn))
    return found


# ----------------------------------------------------------------------------- the auto rule


def _difference_noise(q: np.ndarray, order: int) -> np.ndarray:
    """White-noise std per column from ``order``-th differences (robust: MAD), shape (n,).

    White noise of variance s^2 gives differences of variance C(2 order, order) s^2."""
    d = np.diff(q, order, axis=0)
    mad = np.median(np.abs(d - np.median(d, axis=0)), axis=0)
    return 1.4826 * mad / np.sqrt(math.comb(2 * order, order))


def position_noise(data: Trajectories) -> float:
    """Median relative noise of the positions: noise std / signal std.

    The noise std is the smallest estimate from 6th (:func:`pikan.data.derivatives.noise_level`),
    8th and 10th differences. White noise gives the same value at every order; the signal's
    own differences shrink with the order (by about ``(omega dt)**2`` every two orders, times
    the falling normalization), so on fast but clean motion (a pendulum swinging near the
    top: 6th differences read 1.3e-6 of the spread, a "noisy" verdict) the higher orders
    see through to the noise floor. Trajectories shorter than 24 samples are skipped; 1.0
    (noisy) when none is long enough.
    """
    ratios = []
    for record in data:
        if len(record) < 24:
            continue
        spread = record.q.std(axis=0)
        sigma = np.atleast_1d(noise_level(record.q))
        for order in (8, 10):
            sigma = np.minimum(sigma, _difference_noise(record.q, order))
        ratios += [s / d for s, d in zip(sigma, spread) if d > 0]
    return float(np.median(ratios)) if ratios else 1.0


def choose_loss(data: Trajectories) -> tuple[str, str]:
    """The loss ``fit(loss="auto")`` uses, and why.

    The rule:

    1. the data carries accelerations -> ``"acceleration"`` on them;
    2. the positions are clean (relative noise from :func:`position_noise` at most
       ``CLEAN_NOISE``, as from a simulator) -> ``"acceleration"`` on Savitzky--Golay
       estimates, which are then accurate;
    3. otherwise -> ``"rollout"``: derivative estimates of noisy positions amplify the
       noise, integrating the model does not.

    Returns
    -------
    (loss, reason) : (str, str)
    """
    if data.has_accelerations:
        return "acceleration", "the data carries accelerations"
    noise = position_noise(data)
    if noise <= CLEAN_NOISE:
        return "acceleration", (f"positions are clean (relative noise {noise:.1e} <= "
                                f"{CLEAN_NOISE:.0e}): accelerations estimated by Savitzky-Golay")
    return "rollout", (f"positions are noisy (relative noise {noise:.1e} > {CLEAN_NOISE:.0e}) "
                       "and the data has no accelerations: rollout matching needs no derivative "
                       "estimates")


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
    positions (no velocity in any binding).
    """
    spec = model.spec
    if spec.formulation != "newtonian" or spec.masses == "learn":
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
