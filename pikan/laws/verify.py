r"""Verification of extracted laws by re-simulation.

A law is only as good as the motion it predicts. :func:`verify` compiles the system with
the laws filled in, starts it from initial states of the data (the first state of each of
``n_initial`` trajectories) and integrates it over the horizon, then compares:

- **rollout error**: the relative RMS of the positions over the horizon,
  :math:`\sqrt{\sum (q_{sim} - q_{data})^2 / \sum (q_{data} - \bar q_{data})^2}`;
- **energy drift**: along each simulated trajectory, :math:`\max_t |E(t) - E(0)|`, over
  the energy scale (the law model's energy's RMS spread over all data states, or its RMS
  kinetic part ``v . dE/dv / 2`` where that is larger, :func:`_energy_scale`), averaged
  over trajectories; the same quantity along the data (under the same energy function) is
  the reference: a dissipative system drifts in the data too;
- **energy error**: the relative RMS difference of the energy along the simulation and
  along the data, pointwise in time.

- **force error**: the relative RMS difference between the model's accelerations and the
  data's on every sample of the verified trajectories, each coordinate over its own RMS
  acceleration: measured accelerations, Savitzky–Golay estimates of clean positions, or,
  for noisy positions, the weak-form averages on windows with the model's accelerations
  averaged alike (:func:`pikan.laws.evidence.evidence`; pointwise estimates of noisy
  accelerations are mostly noise);
- **noise**: the data's relative position noise (sixth differences, :func:`noise_level`,
  over each coordinate's spread): the floor no model can go below.

With a trained KAN ``model`` the same rollouts are run with it, and a law that verifies
worse than the KAN it came from is reported as such (``worse_than_model``), not hidden.

Verdicts
--------
:func:`judge` turns a report into one verdict per law (:data:`pikan.laws.law.VERDICTS`), from
these documented thresholds, with ``noise`` the estimated relative position noise:

``"recovered"`` needs every one of

1. the law model fits the data: rollout error <= ``FIT_ROLLOUT + 3 noise`` and force error
   <= ``FIT_FORCE + 10 noise``;
2. it is at least as good as the KAN it came from, on held-out trajectories: rollout error
   <= ``AS_GOOD * model rollout error + TIE_ROLLOUT`` and force error <= ``AS_GOOD * model
   force error + TIE_FORCE`` (an exact law beats the KAN, which only approximates it; a
   form that merely approximates the KAN adds its own error on top);
3. the KAN itself fits the data (rule 1 with the KAN's numbers): a law cannot be trusted
   more than the model it was read from. Unless the law model fits the held-out data
   ``CLOSE`` times tighter than rule 1 asks, beyond the data's noise: then the law stands
   on its own evidence (the data's, not the KAN's), as when an exact rate is found from
   trajectories that each trace one curve through a 3-D state space, off which the KAN
   does not generalize. "Beyond the noise": the rollout and force errors with what the
   data's noise alone gives taken out (``VerifyReport.rollout_floor`` and
   ``force_floor``, each taken ``1 + NOISE_MARGIN`` times larger, as they are estimates).
   Where the noise hides a small error (a rate constant 4 % off at 5 % noise), the law
   stands on its own error bars (rule 7);
4. the law is parsimonious: at most ``3 n_inputs`` additive terms per expression
   (:func:`n_terms`). A series of many terms (a polynomial or a sum of unrelated functions)
   can follow a different law closely inside the data's range and still be the wrong
   law: precision alone cannot tell them apart, so such a law is at best approximate;
5. the module is identifiable: no learned module it can exchange terms with (where the
   model lists such exchanges, ``model.exchanges``);
6. extraction had no doubt about it (``Law.caveats`` is empty: e.g. constants that two
   halves of the data set differently);
7. the data pin every constant: where the law has error bars
   (:func:`pikan.laws.uncertainty.with_error_bars`), each is known and at most
   ``LOOSE_CONSTANT`` of the constant's value.

The law's error against the module it was read from (``Law.error``) is not a rule: an
exact law, refined end to end, often fits the data far better than the KAN did.

``"not found"``: the law model's rollout is not finite, or its rollout or force error
exceeds ``LOST``. ``"approximate"``: everything in between. Held-out means trajectories
the fit did not train on (:func:`pikan.discover` verifies on the fit's validation split).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy
import torch

from pikan.data.derivatives import derivative_estimator, noise_level
from pikan.data.integrate import simulate
from pikan.errors import DataError, SpecError
from pikan.laws.evidence import evidence_for
from pikan.model.compile import compile as compile_spec
from pikan.train.threads import with_call_threads

__all__ = ["VerifyReport", "judge", "n_terms", "verify"]

FIT_ROLLOUT = 0.05
"""Largest relative rollout error of a recovered law model on clean data."""
FIT_FORCE = 0.05
"""Largest relative force (acceleration) error of a recovered law model on clean data."""
AS_GOOD = 1.25
"""A recovered law model may be this many times worse than the KAN (noise in the ratio)."""
CLOSE = 0.1
"""Rule 3's exception: a law model whose held-out rollout and force errors are within this
share of rule 1's tolerances stands without a KAN that fits (an exact law at noise 0 fits to
1e-6; the KANs it is compared with miss held-out mass-action trajectories by 50 %)."""
NOISE_MARGIN = 0.1
"""Rule 3's exception takes the noise floors this share larger: they are estimates, and the
realized noise of a force error (weak-form averages of overlapping windows) strays from its
prediction by several percent (an exact mass-action law at 1 % noise: force error 0.0576
over a predicted floor of 0.0554; 4 % off: 0.142)."""
TIE_ROLLOUT = 1e-4
TIE_FORCE = 1e-4
"""Absolute slack of the comparison with the KAN (both near the integration error)."""
RK4_SUBSTEPS = 2
"""RK4 steps per data step in the rollouts: the integration error (down 16x) stays far
below what the verdicts resolve (a data step alone left 3e-4 on a pendulum of period 2)."""
LOOSE_CONSTANT = 0.015
"""A law whose constant has an error bar (half the 90 % interval) wider than this share of
its value is at best approximate. Far wider, the data do not determine the constant and the
form itself is in doubt (at 1 % noise a quadratic potential came back as ``-8.6e8/(x**2 +
295.7)**3``, the same curve inside the data's range); a few percent wide, the form may be
right but "recovered" would promise constants the data do not give (on the generalization
suite's noisy rows, five laws of the right form with constants 3.4-7.8 % off passed every
other check)."""
SHOOTING_WINDOWS = 16
"""On noisy positions, rollouts start from at most this many windows of each trajectory."""
LOST = 0.5
"""Rollout or force error above which the law model has not captured the motion."""


@dataclass(frozen=True)
class VerifyReport:
    """Result of :func:`verify`.

    Attributes
    ----------
    rollout_error : float
        Relative RMS position error of the law model against the data over the horizon.
    energy_drift : float
        Mean over trajectories of ``max_t |E(t) - E(0)|`` along the law model's rollouts,
        over the energy scale.
    data_energy_drift : float
        The same along the data (the law model's energy function): the reference.
    energy_error : float
        Relative RMS of ``E(simulated) - E(data)`` over the horizon.
    model_rollout_error, model_energy_drift : float or None
        The same for the KAN model, when given.
    worse_than_model : bool or None
        True when the law model's rollout error exceeds the KAN model's.
    per_trajectory : tuple of float
        Rollout error of each verified trajectory.
    horizon : float
        Time span simulated.
    n_initial : int
        Trajectories verified.
    trajectories : tuple of int
        Their indices in the data.
    force_error : float
        Relative RMS acceleration error of the law model on the verified trajectories.
    model_force_error : float or None
        The same for the KAN model, when given.
    noise : float
        Estimated relative position noise of the verified trajectories.
    rollout_floor : float
        The part of ``rollout_error`` the data's own position noise makes (what an exact
        law's rollouts would show against them): the estimated noise of each coordinate
        over the compared positions' spread, as ``rollout_error`` is measured.
    force_floor : float
        The part of ``force_error`` the noise of the data's rates or accelerations makes:
        the predicted noise of the evidence's targets (:attr:`pikan.laws.evidence.Evidence.
        floor`), relative as ``force_error`` is; 0 for clean data.
    windows : int
        0: each trajectory was re-simulated from its first state over the horizon. On
        noisy positions (weak-form evidence), the number of windows instead: rollouts of
        one time scale (``2 pi std(q)/std(v)``) from smoothed states every half window, so
        that a noisy initial state does not decide the verdict (an exact Toda law rolled
        out over 10 time units from the first noisy state of each trajectory missed by
        211 %, as did its KAN).
    """

    rollout_error: float
    energy_drift: float
    data_energy_drift: float
    energy_error: float
    model_rollout_error: float | None
    model_energy_drift: float | None
    worse_than_model: bool | None
    per_trajectory: tuple[float, ...]
    horizon: float
    n_initial: int
    trajectories: tuple[int, ...]
    force_error: float = math.nan
    model_force_error: float | None = None
    noise: float = 0.0
    windows: int = 0
    driven: bool = False
    rollout_floor: float = 0.0
    force_floor: float = 0.0

    def __str__(self) -> str:
        count = f"{self.n_initial} trajector{'y' if self.n_initial == 1 else 'ies'}"
        where = (f"{self.windows} windows of {self.horizon:.3g} time units from smoothed "
                 f"states of {count}" if self.windows else
                 f"{self.horizon:g} time units ({count})")
        lines = [(f"rollout error {self.rollout_error:.3g} over {where}; force error "
                  f"{self.force_error:.3g}; "
                  f"energy drift {self.energy_drift:.3g} (data {self.data_energy_drift:.3g}), "
                  f"energy error {self.energy_error:.3g}"
                  + (" (driven: the energy is not conserved)" if self.driven else "")
                  + f"; data noise {self.noise:.2g}")]
        if self.model_rollout_error is not None:
            verdict = "WORSE than" if self.worse_than_model else "at least as good as"
            lines.append(f"KAN model: rollout error {self.model_rollout_error:.3g}, force error "
                         f"{self.model_force_error:.3g}, energy drift "
                         f"{self.model_energy_drift:.3g}; the laws verify {verdict} the KAN")
            if not self.model_fits and self.laws_stand_alone:
                lines.append("the KAN model itself does not fit the data, but the laws fit it "
                             f"{1 / CLOSE:g} times tighter than a recovered law must: they "
                             "stand on their own")
            elif not self.model_fits:
                lines.append("the KAN model itself does not fit the data: no law read from it "
                             "can be trusted (see the fit's events)")
        return "\n".join(lines)

    def _fits(self, rollout: float, force: float, share: float = 1.0) -> bool:
        return (math.isfinite(rollout) and rollout <= share * (FIT_ROLLOUT + 3 * self.noise)
                and math.isfinite(force) and force <= share * (FIT_FORCE + 10 * self.noise))

    @property
    def laws_fit(self) -> bool:
        """Rule 1 of the verdicts: the law model reproduces the data within its noise."""
        return self._fits(self.rollout_error, self.force_error)

    @property
    def model_fits(self) -> bool:
        """The KAN model reproduces the data (True when no KAN was given)."""
        if self.model_rollout_error is None:
            return True
        return self._fits(self.model_rollout_error, self.model_force_error)

    @property
    def laws_stand_alone(self) -> bool:
        """Rule 3's exception: the law model fits the data :data:`CLOSE` times tighter
        than rule 1 asks beyond the data's noise (module docstring), so it needs no KAN
        that fits to be trusted."""
        rollout = _beyond(self.rollout_error, (1 + NOISE_MARGIN) * self.rollout_floor)
        force = _beyond(self.force_error, (1 + NOISE_MARGIN) * self.force_floor)
        return self._fits(rollout, force, CLOSE)

    @property
    def as_good_as_model(self) -> bool:
        """Rule 2: the law model is at least as good as the KAN (True when none was given)."""
        if self.model_rollout_error is None:
            return True
        model_rollout = self.model_rollout_error if math.isfinite(self.model_rollout_error) \
            else math.inf
        return (self.rollout_error <= AS_GOOD * model_rollout + TIE_ROLLOUT
                and self.force_error <= AS_GOOD * self.model_force_error + TIE_FORCE)


def _dtype(model) -> torch.dtype:
    for t in [*model.parameters(), *model.buffers()]:
        if t.is_floating_point():
            return t.dtype
    return torch.float64


class _StartedAt(torch.nn.Module):
    """A driven model seen from rollouts on one relative time grid that start at different
    absolute times: row ``b`` of a batch is at time ``t + offsets[b]``."""

    def __init__(self, model, offsets: np.ndarray) -> None:
        super().__init__()
        self.model, self.coords, self.spec = model, model.coords, model.spec
        self.driven = True
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=_dtype(model)))

    def vector_field(self, t, y: torch.Tensor) -> torch.Tensor:
        return self.model.vector_field(t + self.offsets.to(y.device)[:, None], y)


def _rollouts(model, starts: np.ndarray, times: np.ndarray, method: str,
              reference: np.ndarray | None = None, offsets: np.ndarray | None = None
              ) -> np.ndarray:
    """States (T, n_traj, 2n) from the shared relative time grid ``times`` ((T, n_traj, n)
    for a first-order model); ``offsets`` (n_traj,): each rollout's absolute start time (what
    a driven model reads).

    With ``reference`` (T, n_traj, 2n), the shooting mode of :func:`verify`: each rollout's
    initial state is corrected by one Gauss--Newton step so that its positions follow the
    reference's over the window (the sensitivities by finite differences, 2n extra
    rollouts), and the linearly corrected states are returned. A start estimated from
    noisy positions is off by about the noise; over one period that alone moved an exact
    orbit's positions by 16 % of their spread at 1 % noise."""

    def run(initial):
        runner = model
        if getattr(model, "driven", False) and offsets is not None:
            runner = _StartedAt(model, np.resize(offsets, len(initial)))
        try:
            sim = simulate(runner, t=times, initial=initial, method=method, noise=0.0,
                           substeps=RK4_SUBSTEPS if method == "rk4" else 1)
        except DataError:  # diverged (or a singular mass matrix): infinitely wrong
            return np.full((times.size, *np.shape(initial)), np.inf)
        return np.stack([_state(r, getattr(model, "order", 2)) for r in sim], axis=1)

    if reference is None:
        return run(starts)
    count, n2 = starts.shape
    n = n2 if getattr(model, "order", 2) == 1 else n2 // 2  # the positions come first
    size = np.std(reference.reshape(-1, n2), axis=0)
    steps = 1e-6 * np.where(size > 0, size, 1.0)
    moved = np.repeat(starts[None], n2 + 1, axis=0)  # the starts, then each nudged once
    for j in range(n2):
        moved[j + 1, :, j] += steps[j]
    every = run(moved.reshape(-1, n2)).reshape(times.size, n2 + 1, count, n2)
    states = every[:, 0]
    if not np.isfinite(every).all():
        return states
    sens = np.stack([(every[:, j + 1] - states) / steps[j] for j in range(n2)], axis=-1)
    # sens: (T, B, 2n, 2n), d state / d start_j
    residual = reference[..., :n] - states[..., :n]  # (T, B, n)
    shifts = []
    for b in range(starts.shape[0]):
        a = sens[:, b, :n, :].reshape(-1, n2)
        shift, *_ = np.linalg.lstsq(a, residual[:, b].reshape(-1), rcond=None)
        shifts.append(shift)
    return states + np.einsum("tbij,bj->tbi", sens, np.array(shifts))


def _state(record, order: int) -> np.ndarray:
    """A trajectory's states: ``(q, v)`` (T, 2n), or ``q`` (T, n) of a first-order system."""
    return record.q if order == 1 else np.concatenate([record.q, record.v], axis=1)


def _energy(model, states: np.ndarray, times: np.ndarray | None = None) -> np.ndarray:
    """Energies of ``states`` (..., 2n) at ``times`` (...) (driven systems); the potential
    of a first-order system's states (..., n)."""
    n = states.shape[-1] // 2 if getattr(model, "order", 2) == 2 else states.shape[-1]
    flat = states.reshape(-1, states.shape[-1])
    dtype = _dtype(model)
    q = torch.as_tensor(flat[:, :n], dtype=dtype)
    v = torch.as_tensor(flat[:, n:], dtype=dtype)
    t = None if times is None else torch.tensor(
        np.broadcast_to(times, states.shape[:-1]).reshape(-1), dtype=dtype)
    e = model.energy(q, v, t).detach().cpu().numpy()
    return e.reshape(states.shape[:-1])


def _energy_scale(model, q: np.ndarray, v: np.ndarray, t: np.ndarray | None = None) -> float:
    """The scale energy drifts and errors are measured in: the larger of the energy's RMS
    spread over the data's states and the RMS of ``v . dE/dv / 2`` (the kinetic energy of
    a Newtonian system, of the size of the energy's swings along any moving trajectory).

    The spread alone fails for one conservative trajectory, whose states all share one
    energy: a held-out trajectory of an oscillator verified with a drift of 59.5 "scales"
    that were 1e-9 of its energy. Falls back to the energy's RMS, then 1.
    """
    dtype = _dtype(model)
    if getattr(model, "order", 2) == 1:  # no kinetic energy: the potential's spread
        e = model.energy(torch.as_tensor(q, dtype=dtype), None, None if t is None else
                         torch.as_tensor(t, dtype=dtype)).detach().cpu().numpy()
        scale = float(np.std(e))
        return scale if math.isfinite(scale) and scale > 0 else 1.0
    qt = torch.as_tensor(q, dtype=dtype)
    vt = torch.as_tensor(v, dtype=dtype).clone().requires_grad_(True)
    tt = None if t is None else torch.as_tensor(t, dtype=dtype)
    with torch.enable_grad():
        e = model.energy(qt, vt, tt)
        (dv,) = torch.autograd.grad(e.sum(), vt, allow_unused=True)
    energy = e.detach().cpu().numpy()
    kinetic = (np.zeros_like(energy) if dv is None
               else 0.5 * (vt.detach() * dv).sum(-1).cpu().numpy())
    scale = max(float(np.std(energy)), float(np.sqrt(np.mean(kinetic**2))))
    if not math.isfinite(scale) or scale <= 1e-12 * (float(np.max(np.abs(energy))) + 1e-300):
        scale = float(np.sqrt(np.mean(energy**2)))
    return scale if math.isfinite(scale) and scale > 0 else 1.0


def _metrics(states: np.ndarray, reference: np.ndarray, energy_fn, scale: float,
             groups: np.ndarray, n: int | None = None):
    """Rollout error, energy drift, energies and per-trajectory rollout errors of
    ``states`` (T, B, 2n) against ``reference``; ``groups`` (B,) names each rollout's
    trajectory (several windows of one trajectory in the shooting mode)."""
    n = states.shape[-1] // 2 if n is None else n  # the positions come first
    labels = np.unique(groups)
    if not np.isfinite(states).all():
        return float("inf"), float("inf"), np.full(states.shape[:-1], np.inf), \
            (float("inf"),) * labels.size
    q_sim, q_ref = states[..., :n], reference[..., :n]
    spread = np.sum((q_ref - q_ref.reshape(-1, n).mean(0)) ** 2)
    total = float(np.sqrt(np.sum((q_sim - q_ref) ** 2) / max(spread, 1e-300)))
    per = []
    for k in labels:
        mine = groups == k
        s = np.sum((q_ref[:, mine] - q_ref[:, mine].reshape(-1, n).mean(0)) ** 2) + 1e-300
        per.append(float(np.sqrt(np.sum((q_sim[:, mine] - q_ref[:, mine]) ** 2) / s)))
    e = energy_fn(states)
    drift = float(np.mean(np.max(np.abs(e - e[0]), axis=0))) / scale
    if not np.isfinite(total):
        total = float("inf")
    return total, drift, e, tuple(per)


@with_call_threads
def verify(spec_with_laws, data, model=None, horizon: float | None = None,
           n_initial: int = 8, seed: int = 0, method: str = "rk4") -> VerifyReport:
    """Re-simulate a system with its laws and compare with the data (and the KAN model).

    Parameters
    ----------
    spec_with_laws : System
        Every module with a law (e.g. ``spec.with_laws(laws)``).
    data : Trajectories
        Held-out trajectories (their first states are the initial states). Trajectories
        must share one time step; the horizon is cut to the shortest verified trajectory.
    model : Model, optional
        The trained KAN model the laws came from, for comparison.
    horizon : float, optional
        Time span to simulate (default: the shortest verified trajectory's span).
    n_initial : int
        Trajectories to verify (a seeded random choice when the data have more).
    seed : int
    method : {"rk4", "dop853", "verlet"}
        Integrator (see :func:`pikan.simulate`); RK4 on the data's time grid by default.

    Returns
    -------
    VerifyReport

    Raises
    ------
    SpecError
        A module without a law.
    DataError
        Data without velocities or with coordinates other than the system's.
    """

    if spec_with_laws.learned:
        raise SpecError(f"verify needs a law for every module; learned without a law: "
                        f"{', '.join(spec_with_laws.learned)}. Hint: "
                        "spec.with_laws(pikan.extract(model, data)).")
    data.check_coords(spec_with_laws.coords)
    first_order = spec_with_laws.order == 1
    if not data.has_velocities and not first_order:
        raise DataError("verify needs velocities in the data; hint: data.with_derivatives().")
    law_model = compile_spec(spec_with_laws)
    rng = np.random.default_rng(seed)
    count = min(int(n_initial), len(data))
    if count < 1:
        raise DataError("verify: n_initial must be at least 1.")
    chosen = np.sort(rng.choice(len(data), count, replace=False))
    records = [data[int(i)] for i in chosen]
    span = min(float(r.t[-1] - r.t[0]) for r in records)
    horizon = span if horizon is None else min(float(horizon), span)
    if horizon <= 0:
        raise DataError("verify: the trajectories are too short to simulate (one sample).")
    held = data.subset(chosen)
    proof = evidence_for(spec_with_laws, held, seed=seed)
    shooting = proof.kind == "weak"
    if shooting:
        horizon = min(horizon, _time_scale(held if held.has_velocities
                                            else held.with_derivatives()))
    base = records[int(np.argmin([len(r.t) for r in records]))]
    times = base.t - base.t[0]
    times = times[times <= horizon * (1 + 1e-9)]
    if times.size < 2:
        raise DataError(f"verify: horizon {horizon} holds fewer than two samples.")
    reference, groups, offsets = [], [], []
    for k, r in enumerate(records):
        rel = r.t - r.t[0]
        if rel.size < times.size or not np.allclose(rel[:times.size], times, rtol=1e-6,
                                                    atol=1e-9):
            raise DataError("verify: the verified trajectories do not share one time grid; "
                            "hint: resample them or verify them one at a time.")
        state = _state(r, spec_with_laws.order)
        first = [0]
        if shooting:  # windows from smoothed states, each one time scale long
            smooth = _smoothed(r)
            step = max(1, (times.size - 1) // 2)
            first = list(range(0, len(r.t) - times.size + 1, step))[:SHOOTING_WINDOWS]
        for i in first:
            reference.append(state[i:i + times.size])
            groups.append(k)
            offsets.append(r.t[i])
            if shooting:
                reference[-1] = reference[-1].copy()
                reference[-1][0, :smooth.shape[1]] = smooth[i]
    reference = np.stack(reference, axis=1)
    starts = reference[0]

    offsets = np.asarray(offsets)
    clock = times[:, None] + offsets[None, :]  # (T, B): absolute times of the rollouts
    q_all, v_all, _ = (data if data.has_velocities else data.with_derivatives()).states()
    scale = _energy_scale(law_model, q_all, v_all, data.times())

    def law_energy(states):
        return _energy(law_model, states, clock)

    states = _rollouts(law_model, starts, times, method, reference if shooting else None,
                       offsets)
    n = len(spec_with_laws.coords)
    rollout, drift, e_sim, per = _metrics(states, reference, law_energy, scale,
                                          np.asarray(groups), n)
    e_ref = law_energy(reference)
    data_drift = float(np.mean(np.max(np.abs(e_ref - e_ref[0]), axis=0))) / scale
    energy_error = float(np.sqrt(np.mean((e_sim - e_ref) ** 2))) / scale
    force = proof.relative(law_model)
    force_floor = float(np.sqrt(np.mean((proof.floor / proof.target_scale()) ** 2)))
    noise = _relative_noise(held, q_all)
    model_rollout = model_drift = worse = model_force = None
    if model is not None:
        m_states = _rollouts(model, starts, times, method, reference if shooting else None,
                             offsets)
        model_rollout, model_drift, _, _ = _metrics(m_states, reference,
                                                    lambda s: _energy(model, s, clock), scale,
                                                    np.asarray(groups), n)
        model_force = proof.relative(model)
        worse = bool(rollout > model_rollout)
    return VerifyReport(rollout, drift, data_drift, energy_error, model_rollout, model_drift,
                        worse, per, float(times[-1]), count, tuple(int(i) for i in chosen),
                        force, model_force, noise, len(groups) if shooting else 0,
                        law_model.driven, _rollout_floor(held, reference, n), force_floor)


def _beyond(error: float, floor: float) -> float:
    """An RMS error with the RMS noise ``floor`` taken out (inf stays inf)."""
    if not math.isfinite(error):
        return math.inf
    return math.sqrt(max(error * error - floor * floor, 0.0))


def _rollout_floor(held, reference: np.ndarray, n: int) -> float:
    """What position noise alone adds to :func:`_metrics`' rollout error on ``reference``
    (T, B, ...): each coordinate's noise (the median over the verified trajectories of
    :func:`pikan.data.derivatives.noise_level`) over the reference's spread."""
    levels = [noise_level(r.q) for r in held if len(r.t) >= 7]
    if not levels:
        return 0.0
    sigma = np.atleast_1d(np.median(levels, axis=0))
    q_ref = reference[..., :n]
    spread = np.sum((q_ref - q_ref.reshape(-1, n).mean(0)) ** 2)
    count = q_ref.shape[0] * q_ref.shape[1]
    return float(np.sqrt(count * np.sum(sigma**2) / max(spread, 1e-300)))


def _time_scale(data) -> float:
    r"""The fastest time scale of the data, :math:`2\pi\,\mathrm{std}(q)/\mathrm{std}(v)`
    (the period of an oscillator), over trajectories and coordinates."""
    rates = []
    for record in data:
        spread_q, spread_v = record.q.std(axis=0), record.v.std(axis=0)
        rates += [sv / sq for sq, sv in zip(spread_q, spread_v) if sq > 0 and sv > 0]
    return 2 * np.pi / max(rates) if rates else math.inf


def _smoothed(record) -> np.ndarray:
    """The positions of one trajectory smoothed by Savitzky--Golay (a window fitted to the
    noise); the positions themselves when the trajectory is too short or unevenly sampled."""
    try:
        return derivative_estimator("savgol").derivative(record.t, record.q, 0)
    except DataError:
        return record.q


def _relative_noise(held, q_all: np.ndarray) -> float:
    """Median over trajectories of the position noise, over each coordinate's spread (max)."""
    spread = np.std(q_all, axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    levels = [noise_level(r.q) / spread for r in held if len(r.t) >= 7]
    return float(np.max(np.median(levels, axis=0))) if levels else 0.0


def n_terms(law) -> int:
    """Additive terms of a law (the most of any Dynamics component), constants left out,
    after expanding products of sums; a Law or a sympy expression."""
    exprs = law._exprs() if hasattr(law, "_exprs") else [law]
    counts = []
    for expr in exprs:
        expanded = sympy.expand(expr, deep=False, power_exp=False, log=False)
        counts.append(sum(1 for term in sympy.Add.make_args(expanded)
                          if term.free_symbols))
    return max(counts, default=0)


def _loose_constants(law) -> list[str]:
    """The constants of ``law`` whose interval is unknown or wider than
    :data:`LOOSE_CONSTANT` of their value (none when the law has no error bars)."""
    out = []
    for name, (value, low, high) in getattr(law, "constants", {}).items():
        if not (math.isfinite(low) and math.isfinite(high)) \
                or (high - low) / 2 > LOOSE_CONSTANT * abs(value):
            out.append(name)
    return out


def judge(laws, report: VerifyReport, exchanges=()):
    """One verdict per law from a verification report: :data:`pikan.laws.law.VERDICTS`.

    Parameters
    ----------
    laws : Laws
        The laws the report's law model was built from.
    report : VerifyReport
        :func:`verify` of ``spec.with_laws(laws)`` against held-out data, with the KAN model.
    exchanges : sequence
        Records of learned modules that can exchange terms (``model.exchanges``): each with
        ``modules`` (names) and ``fixed`` (whether a convention fixes the split).

    Returns
    -------
    Laws
        A copy with ``verdict`` and ``verdict_reason`` set on every law (rules in the module
        docstring).
    """
    numbers = (f"rollout error {report.rollout_error:.3g}, force error "
               f"{report.force_error:.3g} (data noise {report.noise:.2g})")
    if report.model_rollout_error is not None:
        numbers += (f"; KAN rollout {report.model_rollout_error:.3g}, force "
                    f"{report.model_force_error:.3g}")
    lost = not (math.isfinite(report.rollout_error) and report.rollout_error <= LOST
                and math.isfinite(report.force_error) and report.force_error <= LOST)
    verdicts = {}
    for name, law in laws.items():
        loose = [e for e in exchanges if name in e.modules and not e.fixed]
        if lost:
            verdict, why = "not found", "the law model does not reproduce the data"
        elif not report.laws_fit:
            verdict, why = "approximate", "the law model misses the data beyond its noise"
        elif not (report.model_fits or report.laws_stand_alone):
            verdict, why = "approximate", "the KAN model it was read from does not fit the data"
        elif not report.as_good_as_model:
            verdict, why = "approximate", "the law model is worse than the KAN on held-out data"
        elif law.caveats:
            verdict, why = "approximate", "; ".join(law.caveats)
        elif _loose_constants(law):
            verdict, why = "approximate", (
                f"the data do not pin its constants {', '.join(_loose_constants(law))} (error "
                f"bars wider than {LOOSE_CONSTANT:.0%} of the value): another form may fit "
                "as well")
        elif n_terms(law) > 3 * len(law.inputs):
            verdict, why = "approximate", (f"a series of {n_terms(law)} terms in "
                                           f"{len(law.inputs)} input(s): it may stand in for "
                                           "another form inside the data's range")
        elif loose:
            others = sorted({m for e in loose for m in e.modules} - {name})
            verdict, why = "approximate", (f"terms can move between {name!r} and "
                                           f"{', '.join(map(repr, others))}")
        else:
            verdict, why = "recovered", "all checks passed"
        verdicts[name] = (verdict, f"{why}: {numbers}")
    return laws.with_verdicts(verdicts)
