"""Run every benchmark suite: discovery, Feynman formulas, static laws, speed; one summary.

``--quick`` runs each suite at tiny sizes (seconds each; the CI smoke test): it checks
that the scripts run and write well-formed JSON, not how good the numbers are. The full
mode produces the README table (sizes in each suite's header); ``--jobs 2`` runs the
independent tasks of the discovery, Feynman and static-law suites in two worker processes of one
torch thread each (the speed suite always runs alone, in this process).

Run: ``python benchmarks/run_all.py [--quick] [--jobs 2] [--results DIR]``. Writes each
suite's JSON and ``run_all.json`` (headers, target lines, times) into ``DIR`` (default
``benchmarks/results``, ``benchmarks/results/quick`` with ``--quick``), and prints every
table plus a summary.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _report

SUITES = ("discovery", "feynman", "static_laws", "speed")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke test)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="worker processes for discovery and Feynman tasks")
    parser.add_argument("--results", default=None, help="folder for the JSON files")
    parser.add_argument("--only", nargs="*", choices=SUITES, help="run only these suites")
    args = parser.parse_args(argv)
    _report.single_thread()
    folder = Path(args.results) if args.results else (
        _report.RESULTS / "quick" if args.quick else _report.RESULTS)
    quick = ["--quick"] if args.quick else []
    results, times = {}, {}
    for name in args.only or SUITES:
        _report.say(f"[run_all] {name}")
        module = __import__(name)
        start = time.perf_counter()
        if name == "speed":
            options = [*quick, "--results", str(folder)]
        else:
            options = [*quick, "--jobs", str(args.jobs), "--out", str(folder / f"{name}.json")]
        results[name] = module.main(options)
        times[name] = time.perf_counter() - start
    summary = {"benchmark": "run_all", "mode": "quick" if args.quick else "full",
               "machine": _report.machine(args.jobs), "seconds": times,
               "headers": {k: v.get("header") for k, v in results.items()},
               "targets": results.get("discovery", {}).get("targets", []),
               "chain_exponent": results.get("speed", {}).get("exponent")}
    path = _report.write_json(folder / "run_all.json", summary)
    total = sum(times.values())
    print(f"\n## Summary ({summary['mode']} mode, {total:.0f} s in all: "
          + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + ")")
    for line in summary["targets"]:
        print(line)
    if summary["chain_exponent"] is not None:
        print(f"- spring chain: time per epoch ~ N^{summary['chain_exponent']:.2f} "
              "(target <= 1.1)")
    print(f"\nwrote {path}")
    return summary


if __name__ == "__main__":
    main()
