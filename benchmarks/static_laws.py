"""Static laws at scale: textbook formulas with units, pikan (with and without units) vs peers.

The formulas (``data/static_laws.json``: 172 formulas from mechanics, electromagnetism,
thermodynamics, optics and quantum physics, each with its variables' ranges and units, and
the output's units) are not in the project's tests, except the issue's three named
failures (heat conduction, 9-input gravity, a normal density) on purpose. Physical
constants (G, c, h, k_B, ...) are inputs sampled in a range, as in the AI Feynman set, so
every formula is dimensionally consistent in its inputs.

For each formula and noise level, ``--samples`` points are drawn uniformly in the ranges
(seeded) and Gaussian noise of ``level`` times the RMS of ``y`` is added (SRBench's
convention; :func:`feynman.samples`).

- **pikan (units)**: :func:`pikan.find_law` with ``units=`` and ``output_units=`` (the
  Buckingham pi reduction), ``time_limit`` ``--seconds``, ``tolerance`` the relative error
  the noise causes (1e-6 without noise).
- **pikan**: the same call without units.
- **Operon** (``pyoperon``) and **gplearn**, each stopped by a wall-time budget of
  ``--peer-seconds`` per formula (:func:`_peers.operon_formula`, :func:`_peers.gplearn_timed`),
  on every ``--peer-every``-th formula (the peers' budgets make the full set hours long).

``--methods`` runs a subset of the four.

Recovered (the documented rule): the formula, after an additive number below 0.1 % of the
RMS of ``y`` is dropped, is accepted by :func:`pikan.laws.law.equivalent` against the truth
with every constant within 3 % (inputs positive, as they are here). Every method also gets a
hard limit of twice its budget plus 30 s; a method past it has not recovered the formula.

Run: ``python benchmarks/static_laws.py [--quick] [--jobs 2] [--noises 0 0.01 0.1]``. Prints
markdown tables (per noise, per domain) and writes ``benchmarks/results/static_laws.json``.
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
import feynman

DATA = Path(__file__).resolve().parent / "data" / "static_laws.json"
"""The formula file (see the module's docstring)."""

METHODS = ("pikan_units", "pikan", "operon", "gplearn")
FULL = {"ids": None, "noises": (0.0, 0.01, 0.1), "samples": 1000, "seconds": 30.0,
        "peer_seconds": 10.0, "peer_every": 4, "methods": METHODS}
QUICK = {"ids": ("M01", "T01"), "noises": (0.0,), "samples": 300, "seconds": 30.0,
         "peer_seconds": 2.0, "peer_every": 1, "methods": METHODS}


def load(path: Path = DATA) -> list[dict]:
    """The formula records: ``{"id", "domain", "name", "output", "output_units", "formula",
    "variables": [{name, range, units}]}``."""
    return json.loads(Path(path).read_text())["formulas"]


def run_formula(record: dict, noise: float, config: dict, index: int) -> dict:
    """Every method on one formula at one noise level."""
    _report.single_thread()
    _report.say(f"[static_laws] {record['id']} noise {noise:g}")
    names = [v["name"] for v in record["variables"]]
    units = {v["name"]: v["units"] for v in record["variables"]}
    truth = feynman.truth_expr(record)
    x, y, sigma = feynman.samples(record, config["samples"], noise)
    scale = float(np.sqrt(np.mean(y**2)))
    tolerance = max(sigma / float(np.std(y)), 1e-6)
    row = {"id": record["id"], "domain": record["domain"], "noise": noise, "d": len(names),
           "formula": f"{record['output']} = {record['formula']}"}

    def judge(raw):
        expr = feynman.drop_offset(raw, scale)
        return {"expr": str(expr), "raw": str(raw),
                "recovered": _peers.matches(expr, truth, up_to_constant=False, positive=True)}

    def attempt(method, fn, seconds):
        row[method] = _peers.attempt(fn, 2 * seconds + 30, judge)

    def pikan_law(with_units):
        from pikan.laws.find_law import find_law

        extra = {"units": units, "output_units": record["output_units"]} if with_units else {}
        return find_law(x, y, names, output=record["output"], seed=0, tolerance=tolerance,
                        time_limit=config["seconds"], **extra).expr

    row.update(dict.fromkeys(METHODS))
    if "pikan_units" in config["methods"]:
        attempt("pikan_units", lambda: pikan_law(True), config["seconds"])
    if "pikan" in config["methods"]:
        attempt("pikan", lambda: pikan_law(False), config["seconds"])
    if config["peer_every"] and index % config["peer_every"] == 0:
        seconds = config["peer_seconds"]
        if "operon" in config["methods"] and _peers.available("pyoperon"):
            attempt("operon", lambda: _peers.operon_formula(x, y, names, seconds), seconds)
        if "gplearn" in config["methods"] and _peers.available("gplearn"):
            attempt("gplearn", lambda: _peers.gplearn_timed(x, y, names, seconds), seconds)
    return row


def _rate(outs) -> str:
    ran = [o for o in outs if o is not None]
    if not ran:
        return "not run"
    got = sum(o["recovered"] for o in ran)
    return f"{got}/{len(ran)} ({100 * got / len(ran):.0f} %)"


def _cell(out) -> str:
    if out is None:
        return ""
    verdict = "yes" if out["recovered"] else ("timeout" if "Timeout" in str(out["error"])
                                               else "error" if out["error"] else "no")
    return f"{verdict} ({out['wall_s']:.1f} s)"


def tables(rows: list) -> str:
    """Per noise (rates and median times), per domain at each noise, and per formula."""
    summary = []
    for noise in sorted({r["noise"] for r in rows}):
        rs = [r for r in rows if r["noise"] == noise]
        peered = [r for r in rs if r["operon"] is not None or r["gplearn"] is not None]
        cells = [f"{noise:g}", len(rs)]
        for m in ("pikan_units", "pikan"):
            times = [r[m]["wall_s"] for r in rs if r[m] is not None]
            cells += [_rate(r[m] for r in rs), _report.median(times),
                      max(times, default=None)]
        cells += [_rate(r[m] for r in peered) for m in ("pikan_units", "operon", "gplearn")]
        summary.append(cells)
    domains = []
    for noise in sorted({r["noise"] for r in rows}):
        for domain in sorted({r["domain"] for r in rows}):
            rs = [r for r in rows if r["noise"] == noise and r["domain"] == domain]
            domains.append([f"{noise:g}", domain, *(_rate(r[m] for r in rs) for m in METHODS)])
    per = [[r["id"], f"{r['noise']:g}", r["d"], *(_cell(r[m]) for m in METHODS),
            f"`{r['formula']}`"] for r in rows]
    return "\n".join([
        _report.table(["noise", "formulas", "pikan units", "s (median)", "s (max)",
                       "pikan no units", "s (median)", "s (max)",
                       "pikan units (peer rows)", "Operon (peer rows)", "gplearn (peer rows)"],
                      summary),
        "", _report.table(["noise", "domain", "pikan units", "pikan no units", "Operon",
                           "gplearn"], domains),
        "", _report.table(["formula", "noise", "inputs", "pikan units", "pikan", "Operon",
                           "gplearn", "truth"], per)])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI smoke tests")
    parser.add_argument("--ids", nargs="*", help="formula ids (default: all)")
    parser.add_argument("--noises", nargs="*", type=float, help="noise levels")
    parser.add_argument("--seconds", type=float, help="pikan's time_limit per formula")
    parser.add_argument("--peer-seconds", type=float, help="each peer's budget per formula")
    parser.add_argument("--peer-every", type=int, help="peers on every n-th formula (0: none)")
    parser.add_argument("--methods", nargs="*", choices=METHODS, help="default: all")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (1 thread each)")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--out", default=None,
                        help="JSON path (default benchmarks/results/static_laws.json; "
                             "benchmarks/results/quick/ with --quick)")
    args = parser.parse_args(argv)
    _report.single_thread()
    config = dict(QUICK if args.quick else FULL)
    for key in ("noises", "seconds", "peer_seconds", "peer_every", "methods"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    records = load(Path(args.data))
    wanted = args.ids or config["ids"]
    if wanted:
        records = [r for r in records if r["id"] in wanted]
    tasks = [(r, noise, config, i) for noise in config["noises"] for i, r in enumerate(records)]
    start = time.perf_counter()
    rows = _report.run_tasks(run_formula, tasks, args.jobs)
    info = _report.machine(args.jobs)
    header = (f"Static laws, {'quick' if args.quick else 'full'} mode: {len(records)} "
              f"formulas x noise {', '.join(f'{n:g}' for n in config['noises'])}, "
              f"{config['samples']} samples each; pikan time_limit {config['seconds']:g} s, "
              f"peers {config['peer_seconds']:g} s on every {config['peer_every']}-th formula; "
              f"recovered = pikan.laws.law.equivalent within 3 %. Machine: "
              f"{_report.machine_line(info)}. Total {time.perf_counter() - start:.0f} s.")
    text = tables(rows)
    print(f"\n{header}\n\n{text}")
    result = {"benchmark": "static_laws", "mode": "quick" if args.quick else "full",
              "machine": info, "header": header, "config": config, "rows": rows,
              "total_s": time.perf_counter() - start}
    path = _report.write_json(_report.output(args.out, "static_laws", args.quick), result)
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
