"""How fast ``find_law`` answers, and whether exactly, on textbook formulas it was not tuned on.

Ten formulas from introductory mechanics, statistics and thermodynamics, none of them in
the Feynman suite (``shared/data/feynman_mechanics.json``) nor in the tests, with 2 to 9
inputs. For each: 1,000 samples uniform in the stated ranges (seeded; the gravity rows
keep pairs of points at least 1 apart), without noise and with Gaussian noise of 1 % of
the RMS of ``y``, :func:`pikan.laws.find_law.find_law` with its defaults (``time_limit`` 30 s,
``tolerance`` 1e-6 also on noisy data, as a user who does not know the noise level would
call it), on one thread. A formula is *exact* when
:func:`pikan.laws.law.equivalent` accepts the law against the truth (constants within 1 %,
inputs taken as positive only where every range is positive; 3 % with noise). Nothing here is tuned per
formula: the same call runs on every row.

Run: ``python benchmarks/find_law_speed.py [--quick] [--time-limit S]``. Prints a markdown
table (formula, d, noise, exact?, error, time) and writes ``benchmarks/results/find_law_speed.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _report

FORMULAS = [
    # (name, output = formula, {input: (low, high)}, condition on the samples or None)
    ("ideal gas energy", "U = 3/2*pr*V", {"pr": (1, 5), "V": (1, 5)}, None),
    ("pendulum period", "T = 2*pi*sqrt(L/g)", {"L": (0.5, 3), "g": (1, 10)}, None),
    ("projectile range", "R = v**2*sin(2*theta)/g",
     {"v": (1, 5), "theta": (0.1, 1.4), "g": (1, 10)}, None),
    ("normal density", "p = exp(-(theta/sigma)**2/2)/(sqrt(2*pi)*sigma)",
     {"theta": (-3, 3), "sigma": (0.5, 3)}, None),
    ("Coulomb force", "F = q1*q2/(4*pi*eps*r**2)",
     {"q1": (1, 5), "q2": (1, 5), "eps": (1, 5), "r": (1, 5)}, None),
    ("Doppler shift", "f = f0*(c + v)/(c - v)", {"f0": (1, 5), "c": (5, 10), "v": (-2, 2)},
     None),
    ("barometric density", "n = n0*exp(-m*g*h/(kb*T))",
     {"n0": (1, 5), "m": (1, 2), "g": (1, 2), "h": (0, 2), "kb": (1, 2), "T": (1, 5)}, None),
    ("Bernoulli head", "P = p + rho*g*h + rho*v**2/2",
     {"p": (1, 5), "rho": (1, 5), "g": (1, 5), "h": (-2, 2), "v": (-2, 2)}, None),
    ("two-body kinetic energy", "K = m1*(u1**2 + w1**2)/2 + m2*(u2**2 + w2**2)/2",
     {"m1": (1, 5), "u1": (-2, 2), "w1": (-2, 2), "m2": (1, 5), "u2": (-2, 2),
      "w2": (-2, 2)}, None),
    ("gravity in 3-D", "F = G*m1*m2/((x2 - x1)**2 + (y2 - y1)**2 + (z2 - z1)**2)",
     {"G": (1, 5), "m1": (1, 5), "m2": (1, 5), "x1": (-2, 2), "x2": (-2, 2), "y1": (-2, 2),
      "y2": (-2, 2), "z1": (-2, 2), "z2": (-2, 2)},
     "(x2 - x1)**2 + (y2 - y1)**2 + (z2 - z1)**2 > 1"),
]
QUICK = ("ideal gas energy", "normal density")


def _parse(text: str, names):
    from pikan.spec.expr import parse

    return parse(text, list(names) + ["pi"])


def samples(ranges: dict, condition: str | None, count: int, seed: int = 0):
    """``X (count, d)`` uniform in ``ranges``, rows kept where ``condition`` holds."""
    from pikan.laws.numpy_expr import numpy_function

    names = list(ranges)
    rng = np.random.default_rng(seed)
    keep = None if condition is None else numpy_function(
        _parse(condition.split(">")[0], names), names)
    bound = None if condition is None else float(condition.split(">")[1])
    rows = []
    while sum(len(r) for r in rows) < count:
        x = np.column_stack([rng.uniform(*ranges[n], size=4 * count) for n in names])
        if keep is not None:
            x = x[keep(*x.T) > bound]
        rows.append(x)
    return np.concatenate(rows)[:count]


def run_formula(name: str, equation: str, ranges: dict, condition, count: int,
                time_limit: float, noise: float = 0.0) -> dict:
    """``find_law`` on one formula: the row of the table."""
    import pikan
    from pikan.laws.numpy_expr import numpy_function

    _report.single_thread()
    output, formula = (s.strip() for s in equation.split("=", 1))
    names = list(ranges)
    truth = _parse(formula, names)
    x = samples(ranges, condition, count)
    y = np.asarray(numpy_function(truth, names)(*x.T), dtype=float) * np.ones(count)
    y = y + noise * float(np.sqrt(np.mean(y**2))) * np.random.default_rng(1).standard_normal(count)
    positive = all(low > 0 for low, _ in ranges.values())
    row = {"name": name, "formula": equation, "d": len(names), "samples": count,
           "noise": noise}
    start = time.perf_counter()
    try:
        law = pikan.find_law(x, y, names, output=output, seed=0, time_limit=time_limit)
        row.update(expr=str(law.expr), error=law.error,
                   exact=bool(pikan.equivalent(law.expr, truth, up_to_constant=False,
                                               rtol=0.03 if noise else 0.01,
                                               positive=positive)), failure=None)
    except Exception as error:  # noqa: BLE001 (a failure is a result)
        row.update(expr=None, error=None, exact=False,
                   failure=f"{type(error).__name__}: {error}",
                   traceback=traceback.format_exc(limit=3))
    row["wall_s"] = time.perf_counter() - start
    _report.say(f"[find_law_speed] {name} (noise {noise:g}): {row['wall_s']:.1f} s, "
                f"exact {row['exact']}")
    return row


def table(rows: list[dict]) -> str:
    lines = ["| formula | d | noise | exact | error | time (s) |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['formula']}` | {r['d']} | {r['noise']:g} | "
                     f"{'yes' if r['exact'] else 'no'} | {_report.fmt(r['error'])} | "
                     f"{r['wall_s']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two formulas only")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--time-limit", type=float, default=30.0,
                        help="find_law's time_limit per formula (default 30 s)")
    parser.add_argument("--noises", type=float, nargs="+", default=[0.0, 0.01],
                        help="noise levels, relative to the RMS of y (default 0 and 0.01)")
    parser.add_argument("--out", default=None, help="JSON path")
    args = parser.parse_args(argv)
    _report.single_thread()
    chosen = [f for f in FORMULAS if not args.quick or f[0] in QUICK]
    rows = [run_formula(*f, args.samples, args.time_limit, noise)
            for noise in args.noises for f in chosen]
    info = _report.machine(jobs=1)
    print(f"find_law on {len(rows)} textbook formulas, {args.samples} samples each, "
          f"time_limit {args.time_limit:g} s; {_report.machine_line(info)}\n")
    print(table(rows))
    for noise in args.noises:
        part = [r for r in rows if r["noise"] == noise]
        times = sorted(r["wall_s"] for r in part)
        print(f"\nnoise {noise:g}: exact {sum(r['exact'] for r in part)}/{len(part)}; "
              f"median time {np.median(times):.1f} s, longest {times[-1]:.1f} s")
    path = _report.write_json(_report.output(args.out, "find_law_speed", args.quick),
                              {"machine": info, "time_limit": args.time_limit,
                               "samples": args.samples, "noises": args.noises,
                               "rows": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
