"""Law extraction: pikan's extract() next to pykan 0.2.8's auto_symbolic, same run, same samples.

For every module of the systems of issue 7 (harmonic, pendulum, anisotropic, Duffing with
damping, a central potential through the feature r, a 3-mass chain with a shared bond law,
and the coupled potential (x^2+y^2)/2 + x^2 y^2/4 that pykan gets wrong), the true module
is sampled on its real input distribution (the features of simulated states, all bindings
stacked) and both libraries fit a KAN of the same shape to those samples:

- pikan: the module's KAN inside the compiled model, fitted to the true module function
  (L-BFGS on the spline coefficients, then on all parameters); then ``pikan.extract(model, data, modules=[name])`` is timed;
- pykan: ``MultKAN`` (float32, its default) fitted by its tutorial recipe (``fit`` with
  sparsity, ``prune``, ``fit``), then ``auto_symbolic()`` with its default (full)
  library, ``fit`` of the affine parameters and ``symbolic_formula()``; the
  ``auto_symbolic`` + ``symbolic_formula`` time is the extraction time compared. The
  formula is read after rounding its constants to 4 decimals, as pykan's tutorials do
  (``ex_round``); the raw formula is kept in the JSON.

A law is *recovered* when :func:`pikan.laws.law.equivalent` (up to an additive constant,
constants within 1 %) holds against the true law. Also in the table: the pykan README
example ``f = exp(sin(pi x) + y^2)`` on [-1, 1]^2 (pikan: ``find_law``, whole call timed;
pykan: KAN [2, 5, 1], same recipe). Both libraries run with one torch and one BLAS thread.

Run: ``pip install -e .[bench] && python benchmarks/extract_speed.py [--quick] [--no-pykan]``.
Prints a markdown table and writes ``benchmarks/results/extract_speed.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import sympy
import torch
from pikan.constraints import Even, Positive

import pikan
from pikan import Dissipation, Potential, System
from pikan.train.optim import lbfgs_rounds
from pikan.laws.extract import extract
from pikan.laws.find_law import find_law
from pikan.laws.law import equivalent

SAMPLES = 800  # module samples both libraries fit (pikan extracts on the data's states)


def systems() -> dict:
    """name -> (truth, learn options per module, true law per module)."""
    return {
        "harmonic": (System("harmonic", coords=["x"], params={"k": 1.3},
                            modules=[Potential("V", inputs=["x"], law="k*x**2/2")]),
                     {"V": {"hidden": []}}, {"V": "0.65*x**2"}),
        "pendulum": (System("pendulum", coords=["theta"], params={"g": 9.81},
                            modules=[Potential("V", inputs=["theta"], law="-g*cos(theta)")]),
                     {"V": {"hidden": [], "grid": 8}}, {"V": "-9.81*cos(theta)"}),
        "anisotropic": (System("anisotropic", coords=["x", "y"], modules=[
                            Potential("V", inputs=["x", "y"], law="x**2/2 + y**2")]),
                        {"V": {"hidden": [4]}}, {"V": "x**2/2 + y**2"}),
        "duffing": (System("duffing", coords=["x"], params={"c": 0.1}, modules=[
                        Potential("V", inputs=["x"], law="x**2/2 + x**4/4"),
                        Dissipation("D", inputs=["v_x"], law="c*v_x**2/2")]),
                    {"V": {"hidden": [], "constraints": [Even("x")]},
                     "D": {"hidden": [], "constraints": [Even("v_x"), Positive()]}},
                    {"V": "x**2/2 + x**4/4", "D": "0.05*v_x**2"}),
        "central": (System("central", coords=["x", "y"], modules=[
                        Potential("V", inputs={"r": "sqrt(x**2 + y**2)"}, law="r**4/4 - r**2")]),
                    {"V": {"hidden": []}}, {"V": "r**4/4 - r**2"}),
        "chain": (System("chain", coords=["x1", "x2", "x3"], modules=[
                      Potential("bond", inputs=["d"], law="d**2/2 + d**4/4",
                                bindings=pikan.chain_pairs(["x1", "x2", "x3"]))]),
                  {"bond": {"hidden": []}}, {"bond": "d**2/2 + d**4/4"}),
        "coupled": (System("coupled", coords=["x", "y"], modules=[
                        Potential("V", inputs=["x", "y"], law="(x**2 + y**2)/2 + x**2*y**2/4")]),
                    {"V": {"hidden": [4]}}, {"V": "(x**2 + y**2)/2 + x**2*y**2/4"}),
    }


# ------------------------------------------------------------------ fitting


def _fit(kan, loss_fn, rounds: int = 20) -> float:
    """L-BFGS on the spline coefficients, then on every parameter (see tests/test_extract)."""
    named = list(kan.named_parameters())
    lbfgs_rounds([p for n, p in named if n.endswith("coef")], loss_fn, rounds)
    return lbfgs_rounds([p for _, p in named], loss_fn, rounds)


def module_samples(truth: System, data, name: str, seed: int = 0):
    """Inputs of module ``name`` on the data's states (bindings stacked) and true values."""
    model = pikan.compile(truth)
    q, v, _ = data.states()
    z = model.module_inputs(name, torch.tensor(q), torch.tensor(v)).detach()
    rows = np.random.default_rng(seed).choice(z.shape[0], min(SAMPLES, z.shape[0]),
                                              replace=False)
    extremes = torch.cat([z.argmin(0), z.argmax(0)]).numpy()  # cover the whole range
    z = z[np.unique(np.concatenate([rows, extremes]))]
    values = model.blocks[name].function(z).detach()[:, 0]
    return z, values - values.mean()


def fit_pikan(spec: System, truth: System, data) -> tuple[object, float]:
    """The learned model with every KAN fitted to its true module function."""
    model = pikan.compile(spec, seed=0)
    q, v, _ = data.states()
    model.adapt_grids(torch.tensor(q), torch.tensor(v))
    start = time.perf_counter()
    for name, block in model.blocks.items():
        if block.kan is None:
            continue
        z, values = module_samples(truth, data, name)

        def loss(b=block, z=z, w=values):
            out = b.function(z)[:, 0]
            return ((out - out.mean() - w) ** 2).mean()

        _fit(block.kan, loss)
    return model, time.perf_counter() - start


def pykan_formula(z: torch.Tensor, values: torch.Tensor, width: list, names: list) -> dict:
    """pykan's recipe on samples: fit, prune, fit, auto_symbolic, fit, symbolic_formula."""
    with tempfile.TemporaryDirectory() as ckpt:
        return _pykan_formula(z, values, width, names, ckpt)


def _pykan_formula(z, values, width, names, ckpt: str) -> dict:
    from kan import MultKAN

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        x = z.to(torch.float32)
        y = values.to(torch.float32)[:, None]
        dataset = {"train_input": x, "train_label": y, "test_input": x, "test_label": y}
        # pykan writes a history file under ckpt_path even with auto_save=False
        model = MultKAN(width=width, grid=5, k=3, seed=0, auto_save=False, ckpt_path=ckpt)
        quiet = contextlib.redirect_stdout(io.StringIO())
        start = time.perf_counter()
        with quiet, contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hidden = len(width) > 2
            model.fit(dataset, opt="LBFGS", steps=100, lamb=0.001 if hidden else 0.0,
                      log=10**9)
            if hidden:  # sparsify, as pykan's tutorials do (nothing to prune in [d, 1])
                model = model.prune()
                model.fit(dataset, opt="LBFGS", steps=50, log=10**9)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            model.auto_symbolic(verbose=0)
        auto_s = time.perf_counter() - start
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(
                io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(dataset, opt="LBFGS", steps=50, log=10**9)
        start = time.perf_counter()
        formula = model.symbolic_formula()[0][0]
        formula_s = time.perf_counter() - start
    finally:
        torch.set_default_dtype(previous)
    rename = {sympy.Symbol(f"x_{i + 1}"): sympy.Symbol(n) for i, n in enumerate(names)}
    # pykan's tutorials read formulas after ex_round(formula, 4): round constants to 4
    # decimals, which also removes the 1e-7 terms its affine fits leave behind
    raw = sympy.sympify(formula)
    rounded = _ex_round(raw)
    return {"expr": rounded.xreplace(rename), "raw": raw.xreplace(rename), "fit_s": fit_s,
            "extract_s": auto_s + formula_s}


def _ex_round(expr: sympy.Expr, digits: int = 4) -> sympy.Expr:
    """Round every float to ``digits`` decimals (pykan's ``kan.utils.ex_round``)."""
    expr = sympy.expand(expr)
    rep = {f: sympy.Float(round(float(f), digits)) for f in expr.atoms(sympy.Float)}
    return expr.xreplace(rep)


def _recovered(expr, truth: str, up_to_constant: bool = True) -> bool:
    try:
        return bool(equivalent(expr, truth, up_to_constant=up_to_constant))
    except Exception:  # noqa: BLE001 - a foreign formula may be anything
        return False


# ------------------------------------------------------------------ the benchmark


def run(names: list[str], with_pykan: bool) -> list[dict]:
    rows = []
    for system_name in names:
        truth, options, laws = systems()[system_name]
        spec = truth
        for module, opts in options.items():
            spec = spec.learn(module, **opts)
        data = pikan.simulate(truth, n_trajectories=8, t=(0.0, 6.0), dt=0.05, seed=0)
        model, fit_s = fit_pikan(spec, truth, data)
        for module, true_law in laws.items():
            start = time.perf_counter()
            law = extract(model, data, modules=[module], seed=0)[module]
            pikan_s = time.perf_counter() - start
            row = {"system": system_name, "module": module, "truth": true_law,
                   "pikan_law": str(law), "pikan_recovered": _recovered(law.expr, true_law),
                   "pikan_extract_s": pikan_s, "pikan_fit_s": fit_s}
            if with_pykan:
                z, values = module_samples(truth, data, module)
                block = model.blocks[module]
                width = [len(block.input_names), *block.spec.hidden, 1]
                row.update(_pykan_row(z, values, width, list(block.input_names), true_law))
            rows.append(row)
            print(f"  {system_name}/{module}: pikan {pikan_s:.2f} s "
                  f"{'ok' if row['pikan_recovered'] else 'MISSED'}"
                  + (f", pykan {row['pykan_extract_s']:.2f} s "
                     f"{'ok' if row['pykan_recovered'] else 'MISSED'}" if with_pykan else ""),
                  flush=True)
    return rows


def readme_example(with_pykan: bool) -> dict:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(1000, 2))
    y = np.exp(np.sin(np.pi * x[:, 0]) + x[:, 1] ** 2)
    truth = "exp(sin(pi*x) + y**2)"
    start = time.perf_counter()
    law = find_law(x, y, names=["x", "y"], output="f", seed=0)
    row = {"system": "pykan README", "module": "f", "truth": truth, "pikan_law": str(law),
           "pikan_recovered": _recovered(law.expr, truth, up_to_constant=False),
           "pikan_extract_s": time.perf_counter() - start, "pikan_fit_s": 0.0}
    if with_pykan:
        row.update(_pykan_row(torch.tensor(x), torch.tensor(y), [2, 5, 1], ["x", "y"], truth,
                              up_to_constant=False))
    return row


def _pykan_row(z, values, width, names, truth: str, up_to_constant: bool = True) -> dict:
    """pykan's formula, timing and recovery; a pykan crash is recorded, not raised."""
    try:
        result = pykan_formula(z, values, width, names)
    except Exception as error:  # noqa: BLE001 - a crash inside pykan is a result too
        return {"pykan_law": f"pykan failed: {type(error).__name__}: {error}",
                "pykan_raw": "", "pykan_recovered": False, "pykan_extract_s": float("nan"),
                "pykan_fit_s": float("nan")}
    return {"pykan_law": str(result["expr"]), "pykan_raw": str(result["raw"]),
            "pykan_recovered": _recovered(result["expr"], truth, up_to_constant),
            "pykan_extract_s": result["extract_s"], "pykan_fit_s": result["fit_s"]}


def table(rows: list[dict], with_pykan: bool) -> str:
    head = "| system | module | truth | pikan law | pikan s |"
    rule = "|---|---|---|---|---|"
    if with_pykan:
        head += " pykan law | pykan s | speed-up |"
        rule += "---|---|---|"
    lines = [head, rule]
    for r in rows:
        mark = "" if r["pikan_recovered"] else " (missed)"
        law = r["pikan_law"].split(" = ", 1)[-1]
        line = (f"| {r['system']} | {r['module']} | `{r['truth']}` | `{law}`{mark} | "
                f"{r['pikan_extract_s']:.2f} |")
        if with_pykan:
            pmark = "" if r["pykan_recovered"] else " (missed)"
            pk = r["pykan_law"] if len(r["pykan_law"]) < 70 else r["pykan_law"][:67] + "..."
            line += (f" `{pk}`{pmark} | {r['pykan_extract_s']:.2f} | "
                     f"{r['pykan_extract_s'] / max(r['pikan_extract_s'], 1e-9):.0f}x |")
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="harmonic and coupled only")
    parser.add_argument("--no-pykan", action="store_true", help="pikan only")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "extract_speed.json"))
    args = parser.parse_args()
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(1)
    limits = contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(1)
    except ImportError:
        pass
    with_pykan = not args.no_pykan
    names = ["harmonic", "coupled"] if args.quick else list(systems())
    with limits:
        rows = run(names, with_pykan)
        rows.append(readme_example(with_pykan))
    summary = {"modules": len(rows),
               "pikan_recovered": sum(r["pikan_recovered"] for r in rows),
               "pikan_extract_s_total": sum(r["pikan_extract_s"] for r in rows)}
    if with_pykan:
        timed = [r for r in rows if math.isfinite(r["pykan_extract_s"])]
        summary.update({
            "pykan_recovered": sum(r["pykan_recovered"] for r in rows),
            "pykan_extract_s_total": sum(r["pykan_extract_s"] for r in timed),
            "pikan_recovers_every_law_pykan_recovers": all(
                r["pikan_recovered"] for r in rows if r["pykan_recovered"]),
            "speedup_median": statistics.median(
                r["pykan_extract_s"] / max(r["pikan_extract_s"], 1e-9) for r in timed),
            "speedup_total": sum(r["pykan_extract_s"] for r in timed)
            / max(sum(r["pikan_extract_s"] for r in timed), 1e-9),
        })
    print()
    print(table(rows, with_pykan))
    print()
    print(json.dumps(summary, indent=1))
    result = {"benchmark": "extract_speed", "samples": SAMPLES, "rows": rows,
              "summary": summary,
              "environment": {"python": platform.python_version(), "torch": torch.__version__,
                              "pikan": pikan.__version__, "machine": platform.machine(),
                              "threads": 1}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)


if __name__ == "__main__":
    main()
