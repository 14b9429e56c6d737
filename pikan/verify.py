r"""Verification of extracted laws by re-simulation.

A law is only as good as the motion it predicts. :func:`verify` compiles the system with
the laws filled in, starts it from initial states of the data (the first state of each of
``n_initial`` trajectories) and integrates it over the horizon, then compares:

- **rollout error**: the relative RMS of the positions over the horizon,
  :math:`\sqrt{\sum (q_{sim} - q_{data})^2 / \sum (q_{data} - \bar q_{data})^2}`;
- **energy drift**: along each simulated trajectory, :math:`\max_t |E(t) - E(0)|`, over
  the energy scale (the RMS spread of the law model's energy over all data states), averaged
  over trajectories; the same quantity along the data (under the same energy function) is
  the reference: a dissipative system drifts in the data too;
- **energy error**: the relative RMS difference of the energy along the simulation and
  along the data, pointwise in time.

With a trained KAN ``model`` the same rollouts are run with it, and a law that verifies
worse than the KAN it came from is reported as such (``worse_than_model``), not hidden.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pikan.errors import DataError, SpecError

__all__ = ["VerifyReport", "verify"]


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

    def __str__(self) -> str:
        lines = [(f"rollout error {self.rollout_error:.3g} over {self.horizon:g} time units "
                  f"({self.n_initial} trajectories); energy drift {self.energy_drift:.3g} "
                  f"(data {self.data_energy_drift:.3g}), energy error {self.energy_error:.3g}")]
        if self.model_rollout_error is not None:
            verdict = "WORSE than" if self.worse_than_model else "at least as good as"
            lines.append(f"KAN model: rollout error {self.model_rollout_error:.3g}, energy drift "
                         f"{self.model_energy_drift:.3g}; the laws verify {verdict} the KAN")
        return "\n".join(lines)


def _dtype(model) -> torch.dtype:
    for t in [*model.parameters(), *model.buffers()]:
        if t.is_floating_point():
            return t.dtype
    return torch.float64


def _rollouts(model, starts: np.ndarray, times: np.ndarray, method: str) -> np.ndarray:
    """States (T, n_traj, 2n) from the shared relative time grid ``times``."""
    from pikan.integrate import simulate

    try:
        sim = simulate(model, t=times, initial=starts, method=method, noise=0.0)
    except DataError:  # the rollout diverged (or hit a singular mass matrix): infinitely wrong
        return np.full((times.size, *np.shape(starts)), np.inf)
    return np.stack([np.concatenate([r.q, r.v], axis=1) for r in sim], axis=1)


def _energy(model, states: np.ndarray) -> np.ndarray:
    n = states.shape[-1] // 2
    flat = states.reshape(-1, 2 * n)
    dtype = _dtype(model)
    q = torch.as_tensor(flat[:, :n], dtype=dtype)
    v = torch.as_tensor(flat[:, n:], dtype=dtype)
    e = model.energy(q, v).detach().cpu().numpy()
    return e.reshape(states.shape[:-1])


def _metrics(states: np.ndarray, reference: np.ndarray, energy_fn, scale: float):
    n = states.shape[-1] // 2
    if not np.isfinite(states).all():
        return float("inf"), float("inf"), np.full(states.shape[:-1], np.inf), \
            (float("inf"),) * states.shape[1]
    q_sim, q_ref = states[..., :n], reference[..., :n]
    spread = np.sum((q_ref - q_ref.reshape(-1, n).mean(0)) ** 2)
    total = float(np.sqrt(np.sum((q_sim - q_ref) ** 2) / max(spread, 1e-300)))
    per = []
    for k in range(states.shape[1]):
        s = np.sum((q_ref[:, k] - q_ref[:, k].mean(0)) ** 2) + 1e-300
        per.append(float(np.sqrt(np.sum((q_sim[:, k] - q_ref[:, k]) ** 2) / s)))
    e = energy_fn(states)
    drift = float(np.mean(np.max(np.abs(e - e[0]), axis=0))) / scale
    if not np.isfinite(total):
        total = float("inf")
    return total, drift, e, tuple(per)


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
    from pikan.compile import compile as compile_spec

    if spec_with_laws.learned:
        raise SpecError(f"verify needs a law for every module; learned without a law: "
                        f"{', '.join(spec_with_laws.learned)}. Hint: "
                        "spec.with_laws(pikan.extract(model, data)).")
    data.check_coords(spec_with_laws.coords)
    if not data.has_velocities:
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
    base = records[int(np.argmin([len(r.t) for r in records]))]
    times = base.t - base.t[0]
    times = times[times <= horizon * (1 + 1e-9)]
    if times.size < 2:
        raise DataError(f"verify: horizon {horizon} holds fewer than two samples.")
    reference = []
    for r in records:
        rel = r.t - r.t[0]
        if rel.size < times.size or not np.allclose(rel[:times.size], times, rtol=1e-6,
                                                    atol=1e-9):
            raise DataError("verify: the verified trajectories do not share one time grid; "
                            "hint: resample them or verify them one at a time.")
        reference.append(np.concatenate([r.q[:times.size], r.v[:times.size]], axis=1))
    reference = np.stack(reference, axis=1)
    starts = reference[0]

    q_all, v_all, _ = data.states()
    e_data_all = _energy(law_model, np.concatenate([q_all, v_all], axis=1)[:, None, :])
    scale = float(np.std(e_data_all))
    if not np.isfinite(scale) or scale <= 1e-12 * (float(np.max(np.abs(e_data_all))) + 1e-300):
        scale = float(np.sqrt(np.mean(e_data_all**2))) or 1.0

    def law_energy(states):
        return _energy(law_model, states)

    states = _rollouts(law_model, starts, times, method)
    rollout, drift, e_sim, per = _metrics(states, reference, law_energy, scale)
    e_ref = law_energy(reference)
    data_drift = float(np.mean(np.max(np.abs(e_ref - e_ref[0]), axis=0))) / scale
    energy_error = float(np.sqrt(np.mean((e_sim - e_ref) ** 2))) / scale
    model_rollout = model_drift = worse = None
    if model is not None:
        m_states = _rollouts(model, starts, times, method)
        model_rollout, model_drift, _, _ = _metrics(m_states, reference,
                                                    lambda s: _energy(model, s), scale)
        worse = bool(rollout > model_rollout)
    return VerifyReport(rollout, drift, data_drift, energy_error, model_rollout, model_drift,
                        worse, per, float(times[-1]), count, tuple(int(i) for i in chosen))
