"""First-order systems: pikan beside oracle-tuned PySINDy on PySINDy's home ground.

Five first-order systems (population dynamics, an oscillator in first-order form, a gradient
flow, mass-action kinetics), none of them in the catalogue, constants that are not round;
then the catalogue's own first-order entries (``pikan.systems``, order 1) on their learning
specs:

1. **Data.** Each system's numpy right-hand side is integrated by scipy's ``solve_ivp``
   (DOP853, rtol 1e-10, atol 1e-12) with one shared setting (:data:`SIMULATION`); the
   positions alone go into ``pikan.Trajectories`` (a first-order system's data are ``t`` and
   ``q``), with Gaussian noise of ``level`` times each coordinate's spread for noisy rows.
   Catalogue rows: ``entry.simulate(seed=0)``, positions alone, the same noise.
2. **pikan.** ``pikan.discover(plain_spec, data, seed=0, progress=False, plots=False)``:
   every module learned (a ``Flow`` per coordinate, or a ``Potential`` for the gradient
   flow), defaults, nothing tuned per system; catalogue rows learn ``entry.model()``. A
   law is one learned rate (one output of a learned Flow) or one learned potential.
3. **PySINDy**, oracle-tuned: a polynomial library of degree 3, STLSQ over a threshold
   sweep and Savitzky-Golay smoothed differences over two windows; a system counts for it
   when *any* setting of the sweep gives every equation right (the oracle knows the truth).
4. **Scoring.** The same for both: a law is right when :func:`pikan.equivalent` accepts it
   with constants within 3 % (a gradient flow's potential by its two rate components for
   PySINDy, up to a constant for pikan).

Run: ``python benchmarks/first_order.py [--quick] [--jobs N] [--noise 0 0.01]``; prints a
table and writes ``benchmarks/results/first_order.json``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy
from scipy.integrate import solve_ivp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _report

NOISES = (0.0, 0.01)
SIMULATION = {"n_trajectories": 12, "t_end": 10.0, "dt": 0.02}
RTOL = 0.03


@dataclass(frozen=True)
class FirstOrder:
    """A first-order system: its right-hand side, its laws and where it starts."""

    name: str
    coords: tuple[str, ...]
    rates: tuple[str, ...]          # dq/dt per coordinate, in the coordinates
    low: float
    high: float
    potential: str | None = None    # a gradient flow's V (rates = -grad V)
    catalogue: bool = False         # a pikan.systems entry: its simulation and model()
    learned: tuple[int, ...] = ()   # catalogue: the coordinates whose rate is learned


SYSTEMS = (
    FirstOrder("lotka_volterra", ("x", "y"), ("1.13*x - 0.41*x*y", "0.107*x*y - 0.39*y"),
               2.0, 8.0),
    FirstOrder("van_der_pol", ("x", "y"), ("y", "1.27*(1 - x**2)*y - x"), -2.0, 2.0),
    FirstOrder("double_well_flow", ("x", "y"),
               ("-(x**3 - 0.83*x + 0.29*y)", "-(0.29*x + 0.61*y)"), -2.0, 2.0,
               potential="x**4/4 - 0.415*x**2 + 0.29*x*y + 0.305*y**2"),
    FirstOrder("holling_predator_prey", ("x", "y"),
               ("x*(1 - x/6.3) - 1.3*x*y/(1 + 0.7*x)", "0.61*x*y/(1 + 0.7*x) - 0.37*y"),
               0.5, 4.0),
    FirstOrder("mass_action", ("a", "b", "c"),
               ("-0.83*a*b + 0.27*c", "-0.83*a*b + 0.27*c", "0.83*a*b - 0.27*c"), 0.2, 2.0),
)


def _catalogue_systems() -> tuple[FirstOrder, ...]:
    """The catalogue's first-order entries, each with the true rate of every coordinate."""
    import pikan.systems

    out = []
    for entry in pikan.systems.entries():
        truth = entry.truth()
        if truth.order != 1:
            continue
        laws, rates = entry.laws(), {c: sympy.Integer(0) for c in truth.coords}
        potential, learned = None, set()
        for module in truth.modules:
            if module.kind == "Potential":
                potential = laws[module.name]
                for c in truth.coords:
                    rates[c] -= sympy.diff(sympy.sympify(potential), sympy.Symbol(c))
                learned |= set(truth.coords)
                continue
            for c, text in zip(module.outputs, laws[module.name]):
                rates[c] += sympy.sympify(text)
                if module.name in entry.model().learned:
                    learned.add(c)
        out.append(FirstOrder(f"catalogue:{entry.name}", tuple(truth.coords),
                              tuple(str(rates[c]) for c in truth.coords), 0.0, 0.0,
                              potential=potential, catalogue=True,
                              learned=tuple(i for i, c in enumerate(truth.coords)
                                            if c in learned)))
    return tuple(out)


def _entry_name(system: FirstOrder) -> str:
    return system.name.partition(":")[2]


def _system(name: str) -> FirstOrder:
    return next(s for s in SYSTEMS + _catalogue_systems() if s.name == name)


def _symbols(system: FirstOrder) -> list[sympy.Symbol]:
    return [sympy.Symbol(c) for c in system.coords]


def simulate(system: FirstOrder, noise: float):
    """Positions of scipy-integrated trajectories (noisy rows: plus Gaussian noise)."""
    import pikan

    if system.catalogue:
        import pikan.systems

        made = pikan.systems.get(_entry_name(system)).simulate(seed=0)
        data = pikan.Trajectories.from_arrays([np.asarray(r.t) for r in made],
                                              [np.asarray(r.q) for r in made],
                                              coords=list(system.coords))
        return data.with_noise(noise, seed=1) if noise > 0 else data
    symbols = _symbols(system)
    rhs = sympy.lambdify(symbols, [sympy.sympify(r) for r in system.rates], "numpy")
    rng = np.random.default_rng(zlib.crc32(system.name.encode()))  # outside systems only
    t = np.arange(0.0, SIMULATION["t_end"] + 1e-9, SIMULATION["dt"])
    times, qs = [], []
    for _ in range(SIMULATION["n_trajectories"]):
        y0 = rng.uniform(system.low, system.high, len(system.coords))
        sol = solve_ivp(lambda _t, y: rhs(*y), (0.0, t[-1]), y0, t_eval=t, rtol=1e-10,
                        atol=1e-12, method="DOP853")
        times.append(t)
        qs.append(sol.y.T)
    data = pikan.Trajectories.from_arrays(times, qs, coords=list(system.coords))
    return data.with_noise(noise, seed=1) if noise > 0 else data


def plain_spec(system: FirstOrder):
    import pikan

    if system.catalogue:
        import pikan.systems

        return pikan.systems.get(_entry_name(system)).model()
    coords = list(system.coords)
    if system.potential is not None:
        modules = [pikan.Potential("V", inputs=coords)]
    else:
        modules = [pikan.Flow(f"f_{c}", inputs=coords, outputs=[c]) for c in coords]
    return pikan.System(system.name, coords=coords, order=1, modules=modules)


def _right(expr, truth: str, up_to_constant: bool) -> bool:
    import pikan

    try:
        return bool(pikan.equivalent(expr, truth, rtol=RTOL, up_to_constant=up_to_constant))
    except Exception:  # noqa: BLE001 - a law the comparison cannot read is not right
        return False


def pikan_row(system: FirstOrder, noise: float, folder: str) -> dict:
    """Discover with the plain spec; which laws are right, their verdicts, the time."""
    import pikan

    _report.single_thread()
    data = simulate(system, noise)
    start = time.perf_counter()
    try:
        run = pikan.discover(plain_spec(system), data, out=Path(folder) / "run", seed=0,
                             progress=False, plots=False)
    except Exception as error:  # noqa: BLE001 - a crash is a row
        return {"error": f"{type(error).__name__}: {error}",
                "trace": traceback.format_exc(limit=3), "seconds": time.perf_counter() - start}
    seconds = time.perf_counter() - start
    if system.potential is not None:
        law = run.laws["V"]
        right = [_right(law.in_state, system.potential, True)]
        laws, verdicts = [str(law)], [law.verdict]
    elif system.catalogue:  # each output of each learned Flow
        right, laws, verdicts = [], [], []
        for law in run.laws.values():
            for coord, rate in zip(law.outputs, law.in_state):
                right.append(_right(rate, system.rates[system.coords.index(coord)], False))
            laws.append(str(law))
            verdicts.append(law.verdict)
    else:
        right, laws, verdicts = [], [], []
        for coord, truth in zip(system.coords, system.rates):
            law = run.laws[f"f_{coord}"]
            right.append(_right(law.in_state[0], truth, False))
            laws.append(str(law))
            verdicts.append(law.verdict)
    return {"right": right, "laws": laws, "verdicts": verdicts, "seconds": seconds}


def sindy_row(system: FirstOrder, noise: float) -> dict:
    """Oracle-tuned PySINDy: the best setting of its sweep, judged against the truth
    (``{"skipped": ...}`` without the ``bench`` extra)."""
    try:
        import pysindy as ps
    except ImportError:
        return {"skipped": "pysindy is not installed (pip install -e .[bench])"}

    data = simulate(system, noise)
    xs = [np.asarray(r.q) for r in data]
    dt = float(np.diff(np.asarray(data[0].t))[0])  # the catalogue rows have their own step
    symbols = _symbols(system)
    truths = list(system.rates)
    best, best_count = None, -1
    for window in (9, 21):
        for threshold in (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2):
            model = ps.SINDy(optimizer=ps.STLSQ(threshold=threshold),
                             feature_library=ps.PolynomialLibrary(degree=3),
                             differentiation_method=ps.SmoothedFiniteDifference(
                                 smoother_kws={"window_length": window, "polyorder": 3}))
            model.fit(xs, t=dt)
            names = model.get_feature_names()
            features = [_feature(f, symbols) for f in names]
            rates = [sympy.Add(*[sympy.Float(c) * f for c, f in zip(row, features) if c != 0])
                     for row in model.coefficients()]
            right = [_right(r, truth, False) for r, truth in zip(rates, truths)]
            if system.potential is not None:
                right = [all(right)]
            elif system.catalogue:  # the equations pikan learns
                right = [right[i] for i in system.learned]
            if sum(right) > best_count:
                best, best_count = {"right": right, "rates": [str(r) for r in rates],
                                    "threshold": threshold, "window": window}, sum(right)
    return best


def _feature(name: str, symbols) -> sympy.Expr:
    """A PySINDy polynomial feature name (``'1'``, ``'x0^2 x1'``) as sympy."""
    out = sympy.Integer(1)
    for part in name.split():
        if part == "1":
            continue
        base, _, power = part.partition("^")
        out *= symbols[int(base[1:])] ** (int(power) if power else 1)
    return out


def run_row(name: str, noise: float) -> dict:
    system = _system(name)
    folder = tempfile.mkdtemp(prefix="pikan-first-order-")
    try:
        row = {"system": name, "noise": noise, "pikan": pikan_row(system, noise, folder)}
        row["pysindy"] = sindy_row(system, noise)
        return row
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _n_laws(name: str) -> int:
    system = _system(name)
    if system.potential is not None:
        return 1
    return len(system.learned) if system.catalogue else len(system.coords)


def _count(side: dict, laws: int) -> str:
    if "right" not in side:
        return (side.get("error") or side.get("skipped", "-"))[:40]
    return f"{sum(side['right'])}/{laws}"


def summary(rows: list[dict]) -> dict:
    """Laws right per noise level, for the outside systems and for the catalogue's."""
    catalogue = {s.name for s in _catalogue_systems()}
    out = {}
    for part, keep in (("outside", lambda r: r["system"] not in catalogue),
                       ("catalogue", lambda r: r["system"] in catalogue)):
        for noise in sorted({r["noise"] for r in rows}):
            mine = [r for r in rows if r["noise"] == noise and keep(r)]
            if not mine:
                continue
            total = sum(_n_laws(r["system"]) for r in mine)
            ours = sum(sum(r["pikan"].get("right", [])) for r in mine)
            theirs = None if any("right" not in r["pysindy"] for r in mine) else \
                sum(sum(r["pysindy"]["right"]) for r in mine)
            recovered = sum(v == "recovered" for r in mine
                            for v in r["pikan"].get("verdicts", []))
            out[f"{part} {noise}"] = {"laws": total, "pikan": ours, "pysindy_oracle": theirs,
                                      "pikan_recovered_verdicts": recovered}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Lotka-Volterra at noise 0 only")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--noise", type=float, nargs="+", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    noises = [0.0] if args.quick else (args.noise or list(NOISES))
    names = ["lotka_volterra"] if args.quick else \
        [s.name for s in SYSTEMS + _catalogue_systems()]
    tasks = [(n, noise) for noise in noises for n in names]
    _report.say(f"[first_order] {len(tasks)} rows, {args.jobs} job(s)")
    rows = _report.run_tasks(run_row, tasks, args.jobs)
    table = _report.table(
        ["system", "noise", "pikan right", "pikan verdicts", "pikan s", "PySINDy (oracle) right"],
        [[r["system"], r["noise"], _count(r["pikan"], _n_laws(r["system"])),
          ", ".join(str(v) for v in r["pikan"].get("verdicts", [])), r["pikan"]["seconds"],
          _count(r["pysindy"], _n_laws(r["system"]))] for r in rows])
    result = {"benchmark": "first_order", "mode": "quick" if args.quick else "full",
              "machine": _report.machine(args.jobs), "rows": rows, "summary": summary(rows)}
    print(_report.machine_line(result["machine"]))
    print(table)
    for noise, s in result["summary"].items():
        theirs = "-" if s["pysindy_oracle"] is None else s["pysindy_oracle"]
        print(f"- {noise}: pikan {s['pikan']}/{s['laws']} laws right "
              f"({s['pikan_recovered_verdicts']} modules 'recovered'), oracle-tuned "
              f"PySINDy {theirs}/{s['laws']}")
    path = _report.write_json(_report.output(args.out, "first_order", args.quick), result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
