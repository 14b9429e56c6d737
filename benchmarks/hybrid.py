"""Hybrid symbolic edges vs plain splines + post-hoc extraction, on static module samples.

For each system the true module (a potential) is sampled on its real input distribution
(the module's inputs at simulated states; for Kepler, r on a few bound orbits) and three
arms look for the law from the same samples ``(X, y)``:

- ``find_law``: :func:`pikan.find_law`, the default static path (sparse regression and
  other direct candidates first, a KAN surrogate and its extraction only when needed);
- ``spline``: a plain KAN ``[d, 1]`` (grid adapted to the data, L-BFGS on the spline
  coefficients then on every parameter), read by :func:`pikan.laws.generators.kan_edges.kan_formulas`
  (post-hoc edge-wise fits), variant ``"kan"``;
- ``hybrid``: the same KAN with experts on every edge, trained by Adam while the gate
  temperature falls geometrically from 1 to 0.05 with a small gate-entropy penalty; then
  ``snap(0.9)``, a short L-BFGS refit of the remaining parameters, and ``kan_formulas``
  (snapped edges are read as they are), variant ``"kan"``.

Both KAN arms' formulas get the same finish extraction gives every KAN candidate: constants
refit against the samples, then snapped to simple values (:mod:`pikan.laws.candidates`).

``spline`` and ``hybrid`` compare like with like at the KAN level; ``find_law`` is what a
user gets by default. A law is *recovered* when :func:`pikan.laws.law.equivalent` holds (up to
an additive constant, constants within 1 %). Each arm's wall time covers everything after
sampling (fitting and extraction), one torch and one BLAS thread.

Run: ``python benchmarks/hybrid.py [--quick]``. Prints a markdown table and a summary and
writes ``benchmarks/results/hybrid.json`` (``results/quick/`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import sympy
import torch

import pikan
from pikan import Potential, System
from pikan.kan import KAN
from pikan.train.optim import lbfgs_rounds
from pikan.laws.generators.kan_edges import kan_formulas
from pikan.laws.law import equivalent
from pikan.laws.candidates import Target, refit, snap

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _report

EXPERTS = ["x", "x^2", "x^3", "x^4", "sin", "cos", "exp", "1/x"]
SAMPLES = 600
ENTROPY = 1e-2
"""Weight of the gate-entropy penalty. Chosen on seed 0 of harmonic, pendulum, Kepler and
Duffing among 1e-3 (no edge ever snaps), 1e-2, 1e-1 and 1 (edges snap early to wrong
experts, e.g. exp for x^2)."""


def systems() -> dict:
    """name -> (truth spec, module inputs as a spec feature map or list, true law, initial)."""
    kepler_initial = np.array([[r0, 0.0, 0.0, v0] for r0, v0 in
                               [(1.0, 1.0), (1.0, 1.2), (0.8, 1.3), (1.5, 0.7), (1.2, 1.05)]])
    return {
        "harmonic": (System("harmonic", coords=["x"], params={"k": 1.3},
                            modules=[Potential("V", inputs=["x"], law="k*x**2/2")]),
                     "0.65*x**2", None),
        "pendulum": (System("pendulum", coords=["theta"], params={"g": 9.81},
                            modules=[Potential("V", inputs=["theta"], law="-g*cos(theta)")]),
                     "-9.81*cos(theta)", None),
        "anisotropic": (System("anisotropic", coords=["x", "y"], modules=[
                            Potential("V", inputs=["x", "y"], law="x**2/2 + y**2")]),
                        "x**2/2 + y**2", None),
        "duffing": (System("duffing", coords=["x"], modules=[
                        Potential("V", inputs=["x"], law="x**2/2 + x**4/4")]),
                    "x**2/2 + x**4/4", None),
        "kepler": (System("kepler", coords=["x", "y"], params={"GM": 1.0}, modules=[
                       Potential("V", inputs={"r": "sqrt(x**2 + y**2)"}, law="-GM/r")]),
                   "-1.0/r", kepler_initial),
    }


def samples(name: str, seed: int):
    """Module inputs ``X`` (N, d), true values ``y`` (N,) and input names, for one seed."""
    truth, _, initial = systems()[name]
    data = pikan.simulate(truth, n_trajectories=None if initial is not None else 8,
                          t=(0.0, 6.0), dt=0.05, seed=seed, initial=initial)
    model = pikan.compile(truth)
    q, v, _ = data.states()
    z = model.module_inputs("V", torch.tensor(q), torch.tensor(v)).detach()
    rows = np.random.default_rng(seed).choice(z.shape[0], min(SAMPLES, z.shape[0]),
                                              replace=False)
    z = z[np.sort(rows)]
    y = model.blocks["V"].function(z).detach()[:, 0]
    return z.numpy(), y.numpy(), list(model.blocks["V"].input_names)


# ------------------------------------------------------------------ arms


def _kan(X: np.ndarray, names: list, seed: int, experts=None) -> tuple[KAN, torch.Tensor]:
    kan = KAN([X.shape[1], 1], grid=8, seed=seed, input_names=names, experts=experts)
    z = torch.as_tensor(X)
    kan.update_grid(z)
    return kan, z


def _polish(formulas: dict, X, y, names) -> tuple[sympy.Expr, dict]:
    """The ``"kan"`` variant with its constants refit and snapped against the samples (what
    extraction does with every KAN candidate, :mod:`pikan.laws.candidates`)."""
    raw = formulas["kan"][0]
    target = Target(names=tuple(names), z=X, kind="values", y=y)
    fit = snap(refit(raw, target), target, tolerance=1e-6)
    return fit.expr, {"raw_law": str(raw), "error": fit.error}


def arm_find_law(X, y, names, seed, steps):
    return pikan.find_law(X, y, names=names, seed=seed).expr


def arm_spline(X, y, names, seed, steps):
    kan, z = _kan(X, names, seed)
    w = torch.as_tensor(y - y.mean())
    scale = float(w.var()) + 1e-300

    def loss():
        out = kan(z)[:, 0]
        return ((out - out.mean() - w) ** 2).mean() / scale

    rounds = max(1, steps // 20)
    lbfgs_rounds([kan.layers[0].coef], loss, rounds)
    lbfgs_rounds(list(kan.parameters()), loss, rounds)
    return _polish(kan_formulas(kan, z, names=names, seed=seed), X, y, names)


def arm_hybrid(X, y, names, seed, steps, entropy_weight=ENTROPY):
    kan, z = _kan(X, names, seed, experts=EXPERTS)
    w = torch.as_tensor(y - y.mean())
    scale = float(w.var()) + 1e-300

    def mse():
        out = kan(z)[:, 0]
        return ((out - out.mean() - w) ** 2).mean() / scale

    opt = torch.optim.Adam(kan.parameters(), lr=0.02)
    for step in range(steps):
        kan.set_temperature(0.05 ** (step / max(steps - 1, 1)))
        opt.zero_grad()
        loss = mse() + entropy_weight * kan.gate_entropy()
        loss.backward()
        opt.step()
    snapped = kan.snap(0.9)
    params = [p for p in kan.parameters() if p.requires_grad]
    final = lbfgs_rounds(params, mse, max(1, steps // 60))
    info = {"snapped": [list(s) for s in snapped], "refit_loss": final}
    expr, more = _polish(kan_formulas(kan, z, names=names, seed=seed), X, y, names)
    return expr, {**info, **more}


ARMS = {"find_law": arm_find_law, "spline": arm_spline, "hybrid": arm_hybrid}


def run_one(name: str, seed: int, arm: str, steps: int) -> dict:
    X, y, names = samples(name, seed)
    truth = systems()[name][1]
    torch.manual_seed(seed)
    start = time.perf_counter()
    row = {"system": name, "seed": seed, "arm": arm, "truth": truth}
    try:
        result = ARMS[arm](X, y, names, seed, steps)
        expr, info = result if isinstance(result, tuple) else (result, {})
        row["seconds"] = time.perf_counter() - start
        row["law"] = str(expr)
        try:
            row["recovered"] = bool(equivalent(expr, truth, up_to_constant=True, rtol=0.01))
        except Exception:  # noqa: BLE001 - a NaN or odd formula counts as not recovered
            row["recovered"] = False
        row.update(info)
    except Exception as error:  # noqa: BLE001 - a crash is recorded, not fatal
        row.update(seconds=time.perf_counter() - start, law=None, recovered=False,
                   error=f"{type(error).__name__}: {error}", trace=traceback.format_exc())
    return row


def _short(law, width: int = 60) -> str:
    if law is None:
        return "(error)"
    text = str(law)
    return text if len(text) <= width else text[:width - 3] + "..."


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one system, one seed, few steps")
    parser.add_argument("--out", default=None, help="JSON path")
    parser.add_argument("--steps", type=int, default=None, help="training steps per KAN")
    args = parser.parse_args(argv)
    _report.single_thread()
    torch.set_default_dtype(torch.float64)  # the samples are float64
    names = ["harmonic"] if args.quick else list(systems())
    seeds = [0] if args.quick else [0, 1]
    steps = args.steps or (60 if args.quick else 400)
    rows = []
    for name in names:
        for seed in seeds:
            for arm in ARMS:
                row = run_one(name, seed, arm, steps)
                _report.say(f"[hybrid] {name} seed {seed} {arm}: "
                            f"{'ok' if row['recovered'] else 'MISSED'} {row['seconds']:.2f} s "
                            f"{_short(row['law'])}")
                rows.append(row)
    summary = {}
    for arm in ARMS:
        mine = [r for r in rows if r["arm"] == arm]
        summary[arm] = {"recovered": sum(r["recovered"] for r in mine), "runs": len(mine),
                        "median_s": _report.median([r["seconds"] for r in mine])}
    info = _report.machine()
    print(f"Hybrid edges vs spline + extraction ({steps} steps per KAN). "
          f"Machine: {_report.machine_line(info)}.\n")
    print(_report.table(["system", "seed", "arm", "recovered", "law", "seconds"],
                        [[r["system"], r["seed"], r["arm"], "yes" if r["recovered"] else "no",
                          "`" + _short(r["law"]) + "`", r["seconds"]] for r in rows]))
    print()
    print(_report.table(["arm", "recovered", "median seconds"],
                        [[arm, f"{s['recovered']}/{s['runs']}", s["median_s"]]
                         for arm, s in summary.items()]))
    result = {"benchmark": "hybrid", "mode": "quick" if args.quick else "full",
              "steps": steps, "experts": EXPERTS, "machine": info, "summary": summary,
              "rows": rows}
    path = _report.write_json(_report.output(args.out, "hybrid", args.quick), result)
    _report.say(f"[hybrid] wrote {path}")
    return result


if __name__ == "__main__":
    main()
