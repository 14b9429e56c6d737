"""Static formula recovery on the Feynman classical-mechanics subset: pikan vs pykan vs gplearn.

The formulas (output, formula, variable ranges) are read from
``feynman_mechanics.json`` (AI Feynman database, Udrescu & Tegmark 2020). For each formula
and noise level, 1,000 samples are drawn uniformly in the variable ranges (seeded), and
Gaussian noise of ``level`` times the RMS of ``y`` is added (SRBench's convention).

- **pikan**: :func:`pikan.laws.find_law.find_law` with its defaults, ``tolerance`` set to the
  relative error the noise alone causes (``sigma / std(y)``; 1e-6 without noise), as its
  docstring advises.
- **pykan**: ``MultKAN([d, [d, 2], 1])`` (d sum nodes, two multiplication nodes), fit with
  a sparsity penalty, prune, fit, ``auto_symbolic`` over pikan's library, fit,
  ``symbolic_formula`` (see ``_peers.pykan_formula``), 20 L-BFGS steps per fit and at most
  60 s per formula (a 5-variable formula takes pykan over 2 minutes of CPU; a timed-out
  formula counts as not recovered); in the full run on the noise-free data only.
- **gplearn**: ``SymbolicRegressor`` (population 1000, 20 generations, functions add, sub,
  mul, div, sqrt, log, sin, cos, neg, inv; parsimony 1e-3).

Every method gets at most 120 s per formula (pykan 60 s); a method that runs out of time
(``timeout`` in the table) has not recovered the formula.

A formula is recovered when :func:`pikan.laws.law.equivalent` accepts it against the truth
(every constant within 3 %, inputs taken as positive as they are here). Before the
comparison, an additive number below 0.1 % of the RMS of ``y`` is dropped from every
method's formula (pikan and pykan both leave such offsets, ~1e-4, on noisy data); any other
extra term makes the formula wrong. Time is the wall time of each method on that formula.

Run: ``python benchmarks/feynman.py [--quick] [--jobs 2]``. Prints markdown tables and
writes ``benchmarks/results/feynman.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _peers
import _report

DATA = Path(__file__).resolve().parent / "data" / "feynman_mechanics.json"
"""The formula file (a copy of the project's ``shared/data/feynman_mechanics.json``)."""

METHODS = ("pikan", "pykan", "gplearn")
FULL = {"ids": None, "noises": (0.0, 0.01), "samples": 1000, "seconds": 120.0,
        "pykan_noises": (0.0,), "pykan_steps": 20, "pykan_seconds": 60.0, "pykan_lib": None,
        "gp_population": 1000, "gp_generations": 20}
QUICK = {"ids": ("I.12.1",), "noises": (0.0,), "samples": 1000, "seconds": 120.0,
         "pykan_noises": (0.0,), "pykan_steps": 5, "pykan_seconds": 60.0,
         "pykan_lib": ("x", "x^2", "0"), "gp_population": 200, "gp_generations": 3}


def load(path: Path) -> list[dict]:
    """The formula records: ``{"id", "output", "formula", "variables": [{name, range}]}``."""
    return json.loads(Path(path).read_text())["equations"]


def truth_expr(record: dict):
    """The formula as sympy, parsed without eval (pikan's safe parser)."""
    from pikan.spec.expr import parse

    names = [v["name"] for v in record["variables"]]
    return parse(record["formula"], names + ["pi"])


def samples(record: dict, count: int, noise: float, seed: int = 0):
    """``X (count, d)``, noisy ``y (count,)`` and the noise standard deviation."""
    import sympy

    names = [v["name"] for v in record["variables"]]
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.uniform(*v["range"], size=count) for v in record["variables"]])
    f = sympy.lambdify([sympy.Symbol(n) for n in names], truth_expr(record), "numpy")
    y = np.asarray(f(*x.T), dtype=float) * np.ones(count)
    sigma = noise * float(np.sqrt(np.mean(y**2)))
    return x, y + sigma * rng.standard_normal(count), sigma


def drop_offset(expr, scale: float, rel: float = 1e-3):
    """``expr`` without an additive number smaller than ``rel * scale`` (see the docstring)."""
    import sympy

    expr = sympy.sympify(expr)
    if not isinstance(expr, sympy.Add):
        return expr
    kept = [t for t in expr.args if not (t.is_Number and abs(float(t)) < rel * scale)]
    return sympy.Add(*kept)


def run_formula(record: dict, noise: float, config: dict) -> dict:
    """Every method on one formula at one noise level."""
    _report.single_thread()
    _report.say(f"[feynman] {record['id']} noise {noise:g}")
    names = [v["name"] for v in record["variables"]]
    truth = truth_expr(record)
    x, y, sigma = samples(record, config["samples"], noise)
    scale = float(np.sqrt(np.mean(y**2)))
    row = {"id": record["id"], "formula": f"{record['output']} = {record['formula']}",
           "noise": noise, "d": len(names)}

    def judge(raw):
        expr = drop_offset(raw, scale)
        error = _peers.constant_error(expr, truth, up_to_constant=False, positive=True)
        return {"expr": str(expr), "raw": str(raw),
                "recovered": error is not None and error <= _peers.RTOL, "constant_error": error}

    def attempt(method, fn, seconds):
        row[method] = _peers.attempt(fn, seconds, judge, failed={"constant_error": None})

    def pikan_law():
        from pikan.laws.find_law import find_law

        tolerance = max(sigma / float(np.std(y)), 1e-6)
        return find_law(x, y, names, output=record["output"], seed=0, tolerance=tolerance).expr

    attempt("pikan", pikan_law, config["seconds"])
    row["pykan"] = row["gplearn"] = None
    if noise in config["pykan_noises"] and _peers.available("kan"):
        attempt("pykan", lambda: _peers.pykan_formula(
            x, y, names, hidden=(len(names),), mult=2, steps=config["pykan_steps"],
            lib=config["pykan_lib"] or _peers.PYKAN_LIB)[0], config["pykan_seconds"])
    if _peers.available("gplearn"):
        attempt("gplearn", lambda: _peers.gplearn_formula(
            x, y, names, population=config["gp_population"],
            generations=config["gp_generations"]), config["seconds"])
    return row


def _cell(out) -> str:
    if out is None:
        return "not run"
    verdict = "yes" if out["recovered"] else ("timeout" if "Timeout" in str(out["error"])
                                               else "error" if out["error"] else "no")
    return f"{verdict} ({out['wall_s']:.0f} s)"


def tables(rows: list) -> str:
    """A per-noise summary (recovery rate, median time) and the per-formula table."""
    per = [[r["id"], f"{r['noise']:g}", *(_cell(r[m]) for m in METHODS), f"`{r['formula']}`"]
           for r in rows]
    summary = []
    for noise in sorted({r["noise"] for r in rows}):
        rs = [r for r in rows if r["noise"] == noise]
        cells = [f"{noise:g}", len(rs)]
        for m in METHODS:
            ran = [r[m] for r in rs if r[m] is not None]
            got = sum(o["recovered"] for o in ran)
            cells += [f"{got}/{len(ran)} ({100 * got / len(ran):.0f} %)" if ran else "not run",
                      _report.median(o["wall_s"] for o in ran)]
        summary.append(cells)
    return "\n".join([
        _report.table(["noise", "formulas", "pikan recovered", "pikan s/formula (median)",
                       "pykan recovered", "pykan s/formula", "gplearn recovered",
                       "gplearn s/formula"], summary),
        "", _report.table(["formula", "noise", "pikan", "pykan", "gplearn", "truth"], per)])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI smoke tests")
    parser.add_argument("--ids", nargs="*", help="formula ids (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (1 thread each)")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default=None,
                        help="JSON path (default benchmarks/results/feynman.json; "
                             "benchmarks/results/quick/ with --quick)")
    args = parser.parse_args(argv)
    _report.single_thread()
    config = dict(QUICK if args.quick else FULL)
    records = load(Path(args.data))
    wanted = args.ids or config["ids"]
    if wanted:
        records = [r for r in records if r["id"] in wanted]
    tasks = [(r, noise, config) for noise in config["noises"] for r in records]
    start = time.perf_counter()
    rows = _report.run_tasks(run_formula, tasks, args.jobs)
    info = _report.machine(args.jobs)
    header = (f"Feynman mechanics formulas, {'quick' if args.quick else 'full'} mode: "
              f"{len(records)} formulas x noise {', '.join(f'{n:g}' for n in config['noises'])}"
              f", {config['samples']} samples each; recovered = pikan.laws.law.equivalent within "
              f"3 %. Machine: {_report.machine_line(info)}. "
              f"Total {time.perf_counter() - start:.0f} s.")
    text = tables(rows)
    print(f"\n{header}\n\n{text}")
    result = {"benchmark": "feynman", "mode": "quick" if args.quick else "full",
              "machine": info, "header": header, "config": config, "rows": rows,
              "total_s": time.perf_counter() - start}
    path = _report.write_json(_report.output(args.out, "feynman", args.quick), result)
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
