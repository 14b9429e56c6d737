"""Jupyter: a Run's Markdown summary, and the example notebook run top to bottom.

The notebook runs in a kernel of this interpreter (a kernel spec written into a temporary
folder, so neither a user's nor the system's ``python3`` kernel is picked up), from an
empty temporary working directory that must stay empty.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
import sympy
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

import pikan
from pikan import Potential, System
from pikan.discover import Run
from pikan.laws.law import Law, Laws

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "first_hour.ipynb"
KERNEL = "pikan-tests"

x, v_x = sympy.symbols("x v_x")


# ------------------------------------------------------------------ Run._repr_markdown_


def _run(verified: bool, path: Path | None) -> Run:
    spec = System("duffing", coords=["x"],
                  modules=[Potential("V", inputs=["x"]), pikan.Dissipation("D", ["v_x"])])
    laws = Laws([Law("V", "Potential", ("x",), x**2 / 2 + sympy.Float(0.25) * x**4),
                 Law("D", "Dissipation", ("v_x",), sympy.Float(0.05) * v_x**2)], spec=spec)
    report = {"timings": {"total_s": 12.34}}
    if verified:
        laws = laws.with_verdicts({"V": ("recovered", "all checks passed"),
                                   "D": ("approximate", "worse than the KAN")})
        report["verification"] = {"summary": "rollout error 1e-05 over 4 time units\n"
                                             "KAN model: rollout error 2e-05"}
    return Run(pikan.compile(spec), laws, report, path)


def test_run_markdown_lists_each_law_with_its_verdict_and_where_the_run_is(tmp_path):
    run = _run(verified=True, path=tmp_path / "run")
    text = run._repr_markdown_()
    assert text.startswith("**pikan run** of system `duffing` in 12.3 s")
    items = [line for line in text.splitlines() if line.startswith("- ")]
    assert items == [
        f"- ${run.laws['V'].latex()}$ : **recovered**",
        f"- ${run.laws['D'].latex()}$ : **approximate** (worse than the KAN)",
    ]
    assert "```text\nrollout error 1e-05 over 4 time units\nKAN model: rollout error 2e-05\n```" \
        in text
    assert text.endswith(f"Saved in `{tmp_path / 'run'}`.")
    assert repr(run) == f"Run(system='duffing', laws=Laws(V, D), path={tmp_path / 'run'!r})"


def test_run_markdown_says_when_laws_are_unchecked_or_absent():
    text = _run(verified=False, path=None)._repr_markdown_()
    assert text.count(": **unchecked**") == 2
    assert "Not verified (`verify_laws=False`)" in text
    assert text.endswith("Not saved (no `out` given).")
    rank = Run(pikan.compile(System("free", coords=["x"], modules=[Potential("V", ["x"])])),
               None, {}, None)  # a rank other than 0 of a torchrun launch
    text = rank._repr_markdown_()
    assert "No laws on this process" in text and "Verification" not in text


def test_ipython_picks_the_rich_reprs():
    formatter = pytest.importorskip("IPython.core.formatters").DisplayFormatter()
    run = _run(verified=True, path=None)
    shown, _ = formatter.format(run)
    assert shown["text/markdown"] == run._repr_markdown_()
    shown, _ = formatter.format(run.laws)
    assert shown["text/latex"] == run.laws._repr_latex_()
    shown, _ = formatter.format(run.laws["V"])
    assert shown["text/latex"] == run.laws["V"]._repr_latex_()


# ------------------------------------------------------------------ the example notebook


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source


@pytest.fixture
def kernel(tmp_path, monkeypatch) -> KernelManager:
    """A kernel manager for this interpreter with one thread, its temporary, Jupyter and
    IPython files kept in ``tmp_path``."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "pikan tests", "language": "python",
        "env": {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "TMPDIR": str(tmp_path)},
    }))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter" / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    specs = KernelSpecManager(kernel_dirs=[str(spec.parent)])
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def _outputs(cell, kind: str) -> list[str]:
    return [out["data"][kind] for out in cell.outputs
            if out.output_type in ("execute_result", "display_data") and kind in out["data"]]


def test_notebook_runs_top_to_bottom_and_shows_the_law(kernel, tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    NotebookClient(nb, km=kernel, timeout=300,
                   resources={"metadata": {"path": str(cwd)}}).execute()

    errors = [out for cell in nb.cells for out in cell.get("outputs", ())
              if out.output_type == "error"]
    assert not errors
    cells = {cell.source.splitlines()[-1]: cell for cell in nb.cells if cell.cell_type == "code"}
    (latex,) = _outputs(cells["run.laws"], "text/latex")
    assert latex.startswith(r"$$\begin{aligned} V(x, y) &= ")
    assert re.search(r"\\text\{\[(recovered|approximate|not found)\]\}", latex)
    (summary,) = _outputs(cells["run"], "text/markdown")
    assert summary.startswith("**pikan run** of system `anisotropic`")
    assert "- $V(x, y) = " in summary and "Verification on held-out trajectories" in summary
    assert any(_outputs(cell, "image/png") for cell in nb.cells if cell.cell_type == "code")
    assert list(cwd.iterdir()) == []  # the run went to a temporary folder
    where = re.search(r"Saved in `(.+)`\.", summary).group(1)
    assert Path(where).is_relative_to(tmp_path) and not Path(where).exists()  # cleaned up
