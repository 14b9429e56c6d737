"""Speed: the KAN layer, a training step, the compiled model's overhead, and N-body scaling.

1. ``kan_speed.py``: KAN forward+backward vs pykan 0.2.8 vs a same-size MLP.
2. ``train_speed.py``: a training step with double backward, KAN potential vs MLP
   potential (HNN-style), and inside ``pikan.fit``.
3. ``compile_speed.py``: the compiled model vs the same physics written by hand.
4. **Spring-chain scaling** (here): the catalogue's spring chain with N = 10, 100, 1,000
   masses (N + 1 bonds sharing one learned bond law, one KAN edge), trained by
   :func:`pikan.fit` on the acceleration loss (Adam, batch 256 states, float64) over the
   same number of states for every N. Time per epoch (one pass over the training states)
   is measured between the fit's steps (callback time stamps), median over epochs after
   the first. The fitted exponent is the slope of ``log(time)`` against ``log(N)``; the
   work per state is proportional to the number of bonds, so linear scaling is exponent 1.

Every part runs on one torch thread (the scripts 1-3 are called in-process with their own
options; see their docstrings). Run: ``python benchmarks/speed.py [--quick]``. Prints
markdown tables and writes ``benchmarks/results/speed.json`` (plus the JSON of 1-3).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _report

FULL = {"ns": (10, 100, 1000), "states": 4096, "batch": 256, "epochs": 4, "rounds": 20}
QUICK = {"ns": (4, 8, 16), "states": 256, "batch": 64, "epochs": 2, "rounds": 3}


def _chain_epoch(entry, n: int, states: int, batch: int, epochs: int, seed: int) -> dict:
    import pikan
    from pikan.train.recipe import Recipe, Stage

    # 8 trajectories of states / 8 samples each (RK4: cheap for N = 1000 too)
    per = max(2, math.ceil(states / 8))
    start = time.perf_counter()
    data = entry.simulate(params={"n": n}, n_trajectories=8, t=(0.0, 0.02 * (per - 1)),
                          dt=0.02, method="rk4", seed=seed)
    model = pikan.compile(entry.model(n=n), seed=seed)
    setup = time.perf_counter() - start
    train_states = round(0.8 * len(data)) * per  # fit holds out 20 % of the trajectories
    steps_per_epoch = max(1, math.ceil(train_states / batch))
    stamps = []

    def stamp(model, row):
        stamps.append(time.perf_counter())
        return False

    start = time.perf_counter()
    pikan.fit(model, data, loss="acceleration", batch_size=batch,
              recipe=Recipe([Stage.fit(steps_per_epoch * epochs + 1, "adam")]),
              eval_every=10**6, seed=seed, progress=False, callback=stamp)
    total = time.perf_counter() - start
    steps = [b - a for a, b in itertools.pairwise(stamps)]
    epoch = [sum(steps[k:k + steps_per_epoch])
             for k in range(0, len(steps) - steps_per_epoch + 1, steps_per_epoch)]
    later = epoch[1:] or epoch
    return {"n": n, "bonds": n + 1, "states_per_epoch": train_states, "batch": batch,
            "steps_per_epoch": steps_per_epoch, "epoch_s": statistics.median(later),
            "epochs_timed": len(later), "step_ms": 1e3 * statistics.median(steps),
            "fit_total_s": total, "setup_s": setup, "error": None}


def chain_scaling(ns, states: int, batch: int, epochs: int, seed: int = 0,
                  seconds: float = 300.0) -> list[dict]:
    """Time per epoch of :func:`pikan.fit` on spring chains of ``ns`` masses.

    Each N gets ``seconds`` for simulation, compilation and training; a failure or a
    timeout is recorded in the row (``error``) and that N is left out of the fit.
    """
    import pikan.systems
    from _peers import Timeout, time_limit

    entry = pikan.systems.get("spring_chain")
    rows = []
    for n in ns:
        start = time.perf_counter()
        try:
            with time_limit(seconds):
                rows.append(_chain_epoch(entry, n, states, batch, epochs, seed))
        except Timeout:
            rows.append({"n": n, "bonds": n + 1, "error": f"Timeout after {seconds:g} s"})
        except Exception as error:  # noqa: BLE001 (a failure is a result)
            rows.append({"n": n, "bonds": n + 1, "error": f"{type(error).__name__}: "
                         f"{str(error)[:120]} (after {time.perf_counter() - start:.0f} s)"})
    return rows


def exponent(rows: list[dict]) -> tuple[float | None, float | None]:
    """Slope of log(epoch time) vs log(N) over the Ns that ran, and over the last two."""
    done = [r for r in rows if r.get("epoch_s")]
    if len(done) < 2:
        return None, None
    n = np.log([r["n"] for r in done])
    t = np.log([r["epoch_s"] for r in done])
    slope = float(np.polyfit(n, t, 1)[0])
    last = float((t[-1] - t[-2]) / (n[-1] - n[-2]))
    return slope, last


def _call(module_name: str, args: list[str]) -> tuple[dict, str]:
    """Run another benchmark script's ``main()`` here with ``args``; (its JSON, its output)."""
    module = __import__(module_name)
    out = io.StringIO()
    argv = sys.argv
    sys.argv = [f"{module_name}.py", *args]
    try:
        with contextlib.redirect_stdout(out):
            module.main()
    finally:
        sys.argv = argv
    path = Path(args[args.index("--out") + 1])
    return json.loads(path.read_text()), out.getvalue()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI smoke tests")
    parser.add_argument("--results", default=None,
                        help="folder for the JSON files (default benchmarks/results, "
                             "benchmarks/results/quick with --quick)")
    args = parser.parse_args(argv)
    _report.single_thread()
    config = dict(QUICK if args.quick else FULL)
    folder = Path(args.results) if args.results else (
        _report.RESULTS / "quick" if args.quick else _report.RESULTS)
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    quick = ["--quick"] if args.quick else ["--rounds", str(config["rounds"])]
    parts, texts = {}, {}
    for name, extra in (("kan_speed", []), ("train_speed", ["--threads", "1"]),
                        ("compile_speed", [])):
        _report.say(f"[speed] {name}")
        try:
            parts[name], texts[name] = _call(name, [*quick, *extra,
                                                    "--out", str(folder / f"{name}.json")])
        except Exception as error:  # noqa: BLE001 (a failure is a result)
            parts[name], texts[name] = {"error": f"{type(error).__name__}: {error}"}, ""
    _report.say("[speed] spring chain scaling")
    rows = chain_scaling(config["ns"], config["states"], config["batch"], config["epochs"])
    slope, last = exponent(rows)
    info = _report.machine()
    header = (f"Speed, {'quick' if args.quick else 'full'} mode. Machine: "
              f"{_report.machine_line(info)}.")
    lines = [header, ""]
    for name, text in texts.items():
        kept = "\n".join(line for line in text.splitlines() if not line.startswith("wrote "))
        lines += [f"### {name}", kept.strip() or parts[name].get("error", ""), ""]
    lines += ["### spring chain scaling (pikan.fit, acceleration loss, Adam, float64)", "",
              _report.table(["N masses", "bonds", "states / epoch", "steps / epoch",
                             "ms / step", "s / epoch", "setup s (simulate + compile)", "note"],
                            [[r["n"], r["bonds"], r.get("states_per_epoch"),
                              r.get("steps_per_epoch"), r.get("step_ms"), r.get("epoch_s"),
                              r.get("setup_s"), r["error"] or ""] for r in rows]), ""]
    ran = ", ".join(str(r["n"]) for r in rows if r.get("epoch_s"))
    if slope is None:
        lines.append("fitted exponent: fewer than two chain sizes ran (target <= 1.1)")
    else:
        lines.append(f"fitted exponent (time per epoch ~ N^k): k = {slope:.2f} over N = {ran}; "
                     f"{last:.2f} between the last two (target <= 1.1)")
    text = "\n".join(lines)
    print("\n" + text)
    result = {"benchmark": "speed", "mode": "quick" if args.quick else "full", "machine": info,
              "header": header, "config": config, "parts": parts, "chain": rows,
              "exponent": slope, "exponent_last": last, "text": text,
              "total_s": time.perf_counter() - start}
    path = _report.write_json(folder / "speed.json", result)
    print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
