"""Law discovery on the catalogue: pikan vs PySINDy vs pykan, with an HNN-style baseline.

For every catalogue system, noise level and seed (sizes below and in the table header):

1. The truth is simulated with the catalogue's settings (``entry.simulate(seed=...)``);
   noise is added as ``data.with_noise(level)`` (Gaussian, ``level`` times each
   coordinate's standard deviation, on q and v; accelerations dropped).
2. **pikan**: ``pikan.discover(entry.model(), data)`` (the whole pipeline: recipe fit,
   extraction, constant refinement, verification). Each learned module's law is compared
   with the true law by :func:`pikan.laws.law.equivalent` (constants within 3 %, additive
   constants ignored for energies). Laws learned on rewritten inputs (hard invariances)
   and pykan's formulas are compared in the state variables (features and bindings
   substituted); a Lagrangian is normalized by its least-squares scale first (``c L``
   has the same motion).
3. **PySINDy** (state ``(q, v)``, Savitzky-Golay derivatives, polynomial library of
   degree 3, plus ``sin``/``cos`` for the angle systems, STLSQ): threshold and smoothing
   window swept, best model chosen by an oracle that knows the truth (its best case).
   Recovered when every acceleration equation is equivalent to the truth's. The same for
   its weak (integral) form and for a bagged ensemble of 20 models
   (:data:`_peers.SINDY_VARIANTS`).
4. **pykan** (``fit``/``prune``/``auto_symbolic``, same KAN layout as pikan's module): on
   the same samples pikan's extractor reads: each learned module's inputs on the data's
   states and the trained pikan module's values there.
5. **HNN-style baseline**: an MLP energy of the raw state with the parameter count of
   pikan's KANs (potential ``V(q)``; a Lagrangian for the double pendulum), trained on the
   acceleration loss for as many Adam steps as pikan's fit took.

Accuracy is measured on held-out initial conditions (4 trajectories from another seed,
noise-free, over the catalogue's time span): **rollout error** is the relative RMS of the
positions (RK4 on the data's time step, from the true initial states), **energy drift** is
the mean over trajectories of ``max_t |E(t) - E(0)|`` of the *true* energy along each
model's rollout, over the spread of the true energy on the data (the truth drifts too
when it dissipates: the "truth" column).

Run: ``python benchmarks/discovery.py [--quick] [--jobs 2]``. Prints markdown tables and
writes ``benchmarks/results/discovery.json``.
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _coverage
import _peers
import _report

NOISES = (0.0, 0.01, 0.05, 0.1)
TRIG = ("pendulum", "double_pendulum")
"""Systems whose coordinates are angles: PySINDy gets a Fourier library too."""

FULL = {
    "systems": None,  # the whole second-order catalogue
    "seeds": {0.0: 3, 0.01: 1, 0.05: 1, 0.1: 1},
    "seeds_slow": {0.0: 1},  # double pendulum: Lagrangian Hessians make it ~10x slower
    "slow": ("double_pendulum",),
    "pykan_noises": (0.0,),  # pykan on seed 0 of these noise levels
    "steps": None, "refine_steps": 200, "simulation": {}, "pikan_seconds": 900.0,
    "heldout": 4, "horizon": None,
    "pykan_steps": 50, "pykan_lib": None, "pykan_seconds": 120.0,
    "thresholds": _peers.SINDY_THRESHOLDS, "windows": _peers.SINDY_WINDOWS,
}
QUICK = {
    "systems": ("harmonic",),
    "seeds": {0.0: 1},
    "seeds_slow": {},
    "slow": (),
    "pykan_noises": (0.0,),
    "steps": 40, "refine_steps": 20, "simulation": {"n_trajectories": 4, "t": (0.0, 4.0)},
    "pikan_seconds": 300.0,
    "heldout": 2, "horizon": 2.0,
    "pykan_steps": 5, "pykan_lib": ("x", "x^2", "0"), "pykan_seconds": 60.0,
    "thresholds": (0.05, 0.5), "windows": (9,),
}


# ------------------------------------------------------------------ comparison with the truth


def _truth_laws(entry):
    from pikan.spec.expr import parse

    return {name: ([parse(t) for t in text] if isinstance(text, (list, tuple)) else parse(text))
            for name, text in entry.laws().items()}


def _module_truth(block, truth_spec, truth_law):
    """The truth and a function mapping a candidate law into the same variables.

    Same input names as the truth module: compare as written. Otherwise (hard rewrites to
    invariant features): compare both in the state variables, summed over bindings.
    """
    from pikan.laws.law import in_state

    module = truth_spec.module(block.name)
    if tuple(block.input_names) == tuple(module.input_names) and \
            len(block.spec.input_bindings) == len(module.input_bindings):
        return truth_law, lambda expr: expr

    def to_state(expr):
        if isinstance(expr, (list, tuple)):
            return [in_state(e, block.spec) for e in expr]
        return in_state(expr, block.spec)

    truth = ([in_state(e, module) for e in truth_law] if isinstance(truth_law, list)
             else in_state(truth_law, module))
    return truth, to_state


def compare_module(block, expr, truth_spec, truth_law, z: np.ndarray) -> dict:
    """Recovered (constants within :data:`_peers.RTOL`) and the largest constant error."""
    if expr is None:
        return {"recovered": False, "constant_error": None, "law": None}
    if block.kind == "Lagrangian":
        expr = _peers.rescale_lagrangian(expr, truth_law, block.input_names, z)
    truth, mapped = _module_truth(block, truth_spec, truth_law)
    up_to_constant = block.kind != "Dynamics"
    candidate = mapped(expr)
    error = _peers.constant_error(candidate, truth, up_to_constant=up_to_constant)
    return {"recovered": error is not None and error <= _peers.RTOL, "constant_error": error,
            "law": [str(e) for e in expr] if isinstance(expr, (list, tuple)) else str(expr)}


def law_coverage(block, law, truth_spec, truth_law, z: np.ndarray) -> dict | None:
    """How the intervals of ``law``'s constants hold the truth's
    (:func:`_coverage.constant_coverage`); None for a Lagrangian (defined up to a factor)
    or a law compared in the state variables."""
    if block.kind == "Lagrangian":
        return None
    truth, _ = _module_truth(block, truth_spec, truth_law)
    if truth is not truth_law:
        return None
    return _coverage.constant_coverage(law, truth_law, list(block.input_names), z,
                                       block.kind != "Dynamics")


@functools.lru_cache(maxsize=16)
def _truth_accelerations(name: str):
    import pikan.systems
    import sympy

    from pikan.laws.law import Laws

    truth = pikan.systems.get(name).truth()
    values = {sympy.Symbol(k): v for k, v in truth.params.items()}
    return [sympy.expand(eq.rhs.subs(values)) for eq in Laws({}, spec=truth).equations()]


# ------------------------------------------------------------------ rollouts


@functools.lru_cache(maxsize=16)
def _heldout(name: str, count: int, horizon: float | None):
    """Noise-free held-out trajectories (seed 10_000) over the catalogue's time span."""
    import pikan.systems

    entry = pikan.systems.get(name)
    t = entry.simulation["t"] if horizon is None else (0.0, float(horizon))
    return entry.simulate(n_trajectories=count, t=t, seed=10_000)


def _energy_fn(name: str):
    import pikan.systems
    import torch

    import pikan

    truth = pikan.compile(pikan.systems.get(name).truth())

    def energy(states: np.ndarray) -> np.ndarray:
        n = states.shape[-1] // 2
        flat = torch.as_tensor(states.reshape(-1, 2 * n))
        return truth.energy(flat[:, :n], flat[:, n:]).detach().numpy().reshape(states.shape[:-1])

    return energy


def rollout_metrics(model, heldout, energy, scale: float) -> tuple[float, float]:
    """(rollout error, energy drift) of ``model`` from the held-out initial states."""
    import pikan

    times = heldout[0].t - heldout[0].t[0]
    reference = np.stack([np.concatenate([r.q, r.v], axis=1) for r in heldout], axis=1)
    try:
        sim = pikan.simulate(model, t=times, initial=reference[0], method="rk4")
    except (ValueError, RuntimeError, FloatingPointError):  # DataError: blew up
        return math.inf, math.inf
    states = np.stack([np.concatenate([r.q, r.v], axis=1) for r in sim], axis=1)
    n = states.shape[-1] // 2
    q, q_ref = states[..., :n], reference[..., :n]
    spread = np.sum((q_ref - q_ref.reshape(-1, n).mean(0)) ** 2)
    error = float(np.sqrt(np.sum((q - q_ref) ** 2) / max(spread, 1e-300)))
    e = energy(states)
    drift = float(np.mean(np.max(np.abs(e - e[0]), axis=0))) / scale
    return (error if math.isfinite(error) else math.inf), (drift if math.isfinite(drift)
                                                            else math.inf)


# ------------------------------------------------------------------ the methods


def _samples(model, data, name: str, limit: int, seed: int) -> np.ndarray:
    import torch

    q, v, _ = data.states()
    z = model.module_inputs(name, torch.as_tensor(q), torch.as_tensor(v)).detach().numpy()
    rows = np.random.default_rng(seed).permutation(len(z))[:limit]
    return z[np.sort(rows)]


def run_pikan(entry, data, seed, config, truth_laws, truth_spec, scoring):
    import pikan
    from pikan.discover import discover

    out = {"error": None}
    start = time.perf_counter()
    try:
        with _peers.time_limit(config["pikan_seconds"]):
            run = discover(entry.model(), data, steps=config["steps"], seed=seed,
                           progress=False, plots=False, refine_steps=config["refine_steps"])
    except _peers.Timeout:
        out.update(error=f"Timeout: discover ran over {config['pikan_seconds']:g} s",
                   recovered=False, modules={}, wall_s=time.perf_counter() - start)
        return out, None
    except Exception as error:  # noqa: BLE001 (a failure is a result)
        out.update(error=f"{type(error).__name__}: {error}", recovered=False, modules={},
                   wall_s=time.perf_counter() - start)
        out["traceback"] = traceback.format_exc(limit=4)
        return out, None
    out["wall_s"] = time.perf_counter() - start
    out["steps"] = int(run.fit.steps) if run.fit is not None else None
    out["params"] = _peers.trainable_parameters(run.model)
    modules = {}
    for name, law in run.laws.items():
        block = run.model.blocks[name]
        z = _samples(run.model, data, name, 2000, seed)
        modules[name] = compare_module(block, law.expr, truth_spec, truth_laws[name], z)
        modules[name]["coverage"] = law_coverage(block, law, truth_spec, truth_laws[name], z)
        modules[name]["verdict"] = law.verdict
    out["modules"] = modules
    out["recovered"] = all(m["recovered"] for m in modules.values())
    errors = [m["constant_error"] for m in modules.values()]
    out["constant_error"] = None if None in errors or not errors else max(errors)
    law_model = run.law_model or pikan.compile(run.model.spec.with_laws(run.laws))
    out["rollout_error"], out["energy_drift"] = scoring(law_model)
    out["kan_rollout_error"], out["kan_energy_drift"] = scoring(run.model)
    return out, run


SINDY_METHODS = {"sindy": "standard", "sindy_weak": "weak", "sindy_ensemble": "ensemble"}
"""The PySINDy rows (:data:`_peers.SINDY_VARIANTS`): each oracle-tuned over the same sweep."""


def run_sindy(entry, data, noise, config, scoring, variant: str = "standard"):
    out = {"error": None}
    start = time.perf_counter()
    # the smoothing window matters only with noise: without, the shortest one is best
    windows = config["windows"] if noise > 0 else config["windows"][:1]
    try:
        candidates = _peers.sindy_candidates(data, trig=entry.name in TRIG,
                                             thresholds=config["thresholds"], windows=windows,
                                             variant=variant)
    except Exception as error:  # noqa: BLE001 (a failure is a result)
        out.update(error=f"{type(error).__name__}: {error}", recovered=False,
                   wall_s=time.perf_counter() - start)
        return out
    out["wall_s"] = time.perf_counter() - start  # fitting the whole sweep
    truth = _truth_accelerations(entry.name)
    q, v, _ = data.states()
    rows = np.random.default_rng(0).permutation(len(q))[:200]
    states = np.concatenate([q, v], axis=1)[rows]
    names = list(data.coords) + [f"v_{c}" for c in data.coords]
    best, best_error = None, None
    for c in candidates:
        if not _peers.close_on(states, names, c["accelerations"], truth):
            continue  # not even within 50 % on the data: not the law
        error = _peers.constant_error(c["accelerations"], truth, up_to_constant=False)
        if error is not None and (best_error is None or error < best_error):
            best, best_error = c, error
    if best is None:  # nothing of the right form: keep the sparsest of the middle threshold
        best = candidates[len(candidates) // 2]
    out.update(recovered=best_error is not None and best_error <= _peers.RTOL,
               constant_error=best_error, threshold=best["threshold"], window=best["window"],
               accelerations=[str(a) for a in best["accelerations"]],
               sweep=f"{len(candidates)} models")
    model = _peers.ExpressionModel(data.coords, best["accelerations"])
    out["rollout_error"], out["energy_drift"] = scoring(model)
    return out


def run_pykan(run, data, seed, config, truth_laws, truth_spec):
    out = {"error": None, "modules": {}}
    start = time.perf_counter()
    try:
        for name in run.laws:
            block = run.model.blocks[name]
            import torch

            z = _samples(run.model, data, name, 1000, seed)
            with torch.no_grad():
                y = block.function(torch.as_tensor(z)).detach().numpy()
            exprs = _peers.pykan_formula(z, y, block.input_names, hidden=block.spec.hidden,
                                         mult=block.spec.mult, steps=config["pykan_steps"],
                                         lib=config["pykan_lib"] or _peers.PYKAN_LIB,
                                         seed=seed, seconds=config["pykan_seconds"])
            expr = exprs if block.kind == "Dynamics" else exprs[0]
            out["modules"][name] = compare_module(block, expr, truth_spec, truth_laws[name], z)
    except _peers.Timeout:
        out["error"] = f"Timeout: no formula after {config['pykan_seconds']:g} s"
    except Exception as error:  # noqa: BLE001 (a failure is a result)
        out["error"] = f"{type(error).__name__}: {error}"
    out["wall_s"] = time.perf_counter() - start
    out["recovered"] = bool(out["modules"]) and out["error"] is None and all(
        m["recovered"] for m in out["modules"].values())
    return out


def run_hnn(entry, data, seed, target, steps, scoring):
    out = {"error": None}
    truth = entry.truth()
    kind = "lagrangian" if truth.formulation == "lagrangian" else "potential"
    masses = 1.0 if kind == "lagrangian" else truth.masses
    try:
        model = _peers.MLPEnergy(truth.coords, masses, kind, target, seed=seed)
        out.update(_peers.train_mlp(model, data, steps, seed=seed))
        out["kind"] = kind
        out["rollout_error"], out["energy_drift"] = scoring(model)
    except Exception as error:  # noqa: BLE001 (a failure is a result)
        out["error"] = f"{type(error).__name__}: {error}"
    out["wall_s"] = out.pop("seconds", None)
    return out


def run_seed(name: str, seed: int, noises: tuple, with_pykan: tuple, config: dict) -> list:
    """Every method on one system and seed, for each noise level: one row per noise."""
    import pikan.systems

    _report.single_thread()
    entry = pikan.systems.get(name)
    truth_spec = entry.truth()
    truth_laws = _truth_laws(entry)
    clean = entry.simulate(seed=seed, **config["simulation"])
    heldout = _heldout(name, config["heldout"], config["horizon"])
    energy = _energy_fn(name)
    q, v, _ = clean.states()
    scale = float(np.std(energy(np.concatenate([q, v], axis=1)))) or 1.0

    def scoring(model):
        return rollout_metrics(model, heldout, energy, scale)

    ref_states = np.stack([np.concatenate([r.q, r.v], axis=1) for r in heldout], axis=1)
    e_ref = energy(ref_states)
    truth_drift = float(np.mean(np.max(np.abs(e_ref - e_ref[0]), axis=0))) / scale
    rows = []
    for noise in noises:
        _report.say(f"[discovery] {name} noise {noise:g} seed {seed}")
        data = clean.with_noise(noise, seed=seed + 1) if noise > 0 else clean
        row = {"system": name, "noise": noise, "seed": seed, "n_trajectories": len(data),
               "n_states": int(data.n_samples), "horizon": float(heldout[0].t[-1]),
               "truth_energy_drift": truth_drift,
               "conserves_energy": "energy" in entry.conserved}
        row["pikan"], run = run_pikan(entry, data, seed, config, truth_laws, truth_spec, scoring)
        for method, variant in SINDY_METHODS.items():
            row[method] = (run_sindy(entry, data, noise, config, scoring, variant)
                           if _peers.available("pysindy") else None)
        target = row["pikan"].get("params") or 10
        steps = row["pikan"].get("steps") or 800
        row["hnn"] = run_hnn(entry, data, seed, target, steps, scoring)
        row["pykan"] = None
        if run is not None and noise in with_pykan and _peers.available("kan"):
            row["pykan"] = run_pykan(run, data, seed, config, truth_laws, truth_spec)
        rows.append(row)
    return rows


# ------------------------------------------------------------------ tables


def _ran(rows, method):
    return [r for r in rows if r.get(method) is not None]


def _law_tally(rows, method, n_laws) -> tuple[int, int]:
    """(laws recovered, laws attempted) over the runs where ``method`` ran; a run that
    failed counts every law of its system as not recovered."""
    got = total = 0
    for r in _ran(rows, method):
        got += sum(bool(m["recovered"]) for m in (r[method].get("modules") or {}).values())
        total += n_laws[r["system"]]
    return got, total


def _run_tally(rows, method) -> tuple[int, int]:
    ran = _ran(rows, method)
    return sum(bool(r[method].get("recovered")) for r in ran), len(ran)


def _ratio(pair) -> str:
    return f"{pair[0]}/{pair[1]}" if pair[1] else "-"


def _med(rows, method, key):
    return _report.median(r[method].get(key) for r in _ran(rows, method))


def _max_const(rows, method):
    """Largest constant error among laws of the right form (SINDy: per run)."""
    if method in SINDY_METHODS:
        errors = [r[method].get("constant_error") for r in _ran(rows, method)]
    else:
        errors = [m.get("constant_error") for r in _ran(rows, method)
                  for m in (r[method].get("modules") or {}).values()]
    errors = [e for e in errors if e is not None]
    return max(errors) if errors else None


def tables(rows: list, n_laws: dict) -> str:
    """Markdown: recovery per system and noise, accuracy and time, and the target lines."""
    groups = {}
    for r in rows:
        groups.setdefault((r["system"], r["noise"]), []).append(r)
    recovery, accuracy = [], []
    for (system, noise), rs in groups.items():
        errors = [r["pikan"]["error"] for r in rs if r["pikan"].get("error")]
        recovery.append([
            system, f"{noise:g}", len(rs),
            _ratio(_law_tally(rs, "pikan", n_laws)), _max_const(rs, "pikan"),
            _ratio(_run_tally(rs, "sindy")), _max_const(rs, "sindy"),
            _ratio(_run_tally(rs, "sindy_weak")), _ratio(_run_tally(rs, "sindy_ensemble")),
            _ratio(_law_tally(rs, "pykan", n_laws)), _max_const(rs, "pykan"),
            ("error: " + errors[0][:70].replace("|", "/")) if errors else "",
        ])
        accuracy.append([
            system, f"{noise:g}",
            _med(rs, "pikan", "rollout_error"), _med(rs, "pikan", "kan_rollout_error"),
            _med(rs, "hnn", "rollout_error"), _med(rs, "sindy", "rollout_error"),
            _med(rs, "pikan", "energy_drift"), _med(rs, "hnn", "energy_drift"),
            _med(rs, "sindy", "energy_drift"), rs[0]["truth_energy_drift"],
            _med(rs, "pikan", "wall_s"), _med(rs, "sindy", "wall_s"), _med(rs, "pykan", "wall_s"),
            _med(rs, "hnn", "wall_s"),
        ])
    out = [("Recovery. Laws recovered / attempted (right form, every constant within 3 %); "
            "PySINDy: runs whose acceleration equations are all recovered (on Savitzky-Golay "
            "derivatives; in the weak form; a bagged ensemble of 20), each oracle-tuned; "
            "'max const err': "
            "the largest relative constant error among laws of the right form "
            "(1e-08 means below 1e-8).\n"),
           _report.table(["system", "noise", "runs", "pikan laws", "pikan max const err",
                          "PySINDy runs", "PySINDy max const err", "PySINDy weak runs",
                          "PySINDy ensemble runs", "pykan laws",
                          "pykan max const err", "pikan errors"], recovery),
           ("\nAccuracy on held-out initial conditions (medians over runs) and wall time "
            "(s, median per run)\n"),
           _report.table(["system", "noise", "rollout pikan laws", "rollout pikan KAN",
                          "rollout HNN", "rollout PySINDy", "drift pikan laws", "drift HNN",
                          "drift PySINDy", "drift truth", "s pikan", "s PySINDy (sweep)",
                          "s pykan", "s HNN"], accuracy)]
    out.append("\n" + "\n".join(targets(rows, n_laws)))
    return "\n".join(out)


def targets(rows: list, n_laws: dict) -> list[str]:
    """The issue's targets, one line each, with the measured numbers."""
    lines = []
    for noise in sorted({r["noise"] for r in rows}):
        rs = [r for r in rows if r["noise"] == noise]
        got, total = _law_tally(rs, "pikan", n_laws)
        line = (f"- noise {noise:g}: pikan recovered {got}/{total} laws ({_pct(got, total)}), "
                f"{_ratio(_run_tally(rs, 'pikan'))} runs with every law")
        for method, variant in SINDY_METHODS.items():
            sindy_rows = _ran(rs, method)
            if sindy_rows:
                shown = "PySINDy" + ("" if variant == "standard" else f" {variant}")
                line += (f"; {shown} {_ratio(_run_tally(sindy_rows, method))} runs (pikan "
                         f"{_ratio(_run_tally(sindy_rows, 'pikan'))} on the same runs)")
        pykan_rows = _ran(rs, "pykan")
        if pykan_rows:
            line += (f"; pykan {_ratio(_law_tally(pykan_rows, 'pykan', n_laws))} laws (pikan "
                     f"{_ratio(_law_tally(pykan_rows, 'pikan', n_laws))} on the same runs)")
        lines.append(line + ".")
    both = [r for r in _ran(rows, "hnn") if r["hnn"].get("rollout_error") is not None
            and r["pikan"].get("rollout_error") is not None]
    roll = sum(r["hnn"]["rollout_error"] < r["pikan"]["rollout_error"] for r in both)
    conservative = [r for r in both if r.get("conserves_energy")]
    drift = sum(r["hnn"]["energy_drift"] < r["pikan"]["energy_drift"] for r in conservative)
    lines.append(f"- HNN-style baseline better than pikan's law model: rollout error in "
                 f"{roll}/{len(both)} runs; energy drift in {drift}/{len(conservative)} runs "
                 "of energy-conserving systems (target: 0 and 0; a dissipative system's "
                 "energy should drift as the truth's does, see the 'drift truth' column).")
    lines += _coverage.target_lines(_coverage.summary(
        (m.get("coverage"), m.get("verdict")) for r in _ran(rows, "pikan") if r["noise"] > 0
        for m in (r["pikan"].get("modules") or {}).values()))
    return lines


def _pct(a, b):
    return f"{100 * a / b:.0f} %" if b else "-"


# ------------------------------------------------------------------ main


def plan(config: dict, systems) -> list[tuple]:
    """Tasks ``(system, seed, noises, pykan noises, config)``, slow systems first."""
    tasks = []
    for name in systems:
        seeds = config["seeds_slow"] if name in config["slow"] else config["seeds"]
        for seed in range(max(seeds.values(), default=0)):
            noises = tuple(n for n in NOISES if seeds.get(n, 0) > seed)
            pykan = tuple(n for n in noises if n in config["pykan_noises"]) if seed == 0 else ()
            tasks.append((name, seed, noises, pykan, config))
    tasks.sort(key=lambda t: t[0] not in config["slow"])
    return tasks


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI smoke tests")
    parser.add_argument("--systems", nargs="*", help="catalogue systems (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (1 thread each)")
    parser.add_argument("--out", default=None,
                        help="JSON path (default benchmarks/results/discovery.json; "
                             "benchmarks/results/quick/ with --quick)")
    args = parser.parse_args(argv)
    _report.single_thread()
    import pikan.systems

    config = dict(QUICK if args.quick else FULL)
    # first-order entries have their own benchmark beside PySINDy (benchmarks/first_order.py):
    # this one's baselines (PySINDy on (q, v), an HNN energy) are second-order mechanics
    systems = tuple(args.systems or config["systems"] or
                    [n for n in pikan.systems.names() if pikan.systems.get(n).truth().order == 2])
    tasks = plan(config, systems)
    start = time.perf_counter()
    rows = [row for result in _report.run_tasks(run_seed, tasks, args.jobs) for row in result]
    rows.sort(key=lambda r: (systems.index(r["system"]), r["noise"], r["seed"]))
    info = _report.machine(args.jobs)
    n_laws = {name: len(pikan.systems.get(name).laws()) for name in systems}
    def per_noise(seeds):
        return ", ".join(f"{k:g}: {v}" for k, v in seeds.items())

    slow = [n for n in systems if n in config["slow"]]
    sizes = f"seeds per noise level {per_noise(config['seeds'])}" + (
        f" ({', '.join(slow)}: {per_noise(config['seeds_slow'])})" if slow else "")
    header = (f"Law discovery, {'quick' if args.quick else 'full'} mode: {len(systems)} "
              f"systems; {sizes}; pykan on seed 0 at noise "
              f"{', '.join(f'{n:g}' for n in config['pykan_noises'])}; "
              f"held-out: {config['heldout']} trajectories. Machine: {_report.machine_line(info)}. "
              f"Total {time.perf_counter() - start:.0f} s.")
    text = tables(rows, n_laws)
    print(f"\n{header}\n\n{text}")
    result = {"benchmark": "discovery", "mode": "quick" if args.quick else "full",
              "machine": info, "header": header,
              "config": {k: v for k, v in config.items()}, "rows": rows,
              "targets": targets(rows, n_laws), "total_s": time.perf_counter() - start}
    path = _report.write_json(_report.output(args.out, "discovery", args.quick), result)
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
