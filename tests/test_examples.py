"""The examples run as a user runs them, and recover what they promise.

Every script in ``examples/`` is run in a subprocess (``python examples/x.py --quick``)
from a temporary working directory; the default test run covers the ``--quick`` smoke
modes (each asserts its law itself and exits non-zero when it is not recovered), the slow
set the full runs with a kept run directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# Script -> the line it prints when its result is recovered.
SUCCESS = {
    "kepler_third_law.py": "Kepler's third law recovered: True",
    "lorentz_force.py": "Lorentz force recovered: True",
    "kepler_orbits.py": "Newton's potential recovered: True",
    "spring_chain.py": "bond law recovered: True",
    "damped_pendulum.py": "gravity and friction recovered apart: True",
    "gray_box.py": "drag law recovered: True",
    "own_data.py": "spring law recovered: True",
    "conserved_quantities.py": "energy and angular momentum recovered: True",
    "driven_oscillator.py": "forcing law recovered: True",
}
# Scripts that call pikan.discover and accept --out (a run directory to keep).
WITH_RUN = ["kepler_orbits.py", "spring_chain.py", "damped_pendulum.py", "gray_box.py",
            "own_data.py", "driven_oscillator.py"]


def _run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    # One torch thread: the problems are small and the test machine is shared.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1200, check=False)


def _check(result: subprocess.CompletedProcess, script: str) -> None:
    report = f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert result.returncode == 0, report
    assert SUCCESS[script] in result.stdout, report
    assert "NOT recovered" not in result.stdout, report


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(SUCCESS)


@pytest.mark.parametrize("script", sorted(SUCCESS))
def test_quick_mode_recovers_its_law(script, tmp_path):
    result = _run(script, "--quick", cwd=tmp_path)
    _check(result, script)
    assert list(tmp_path.iterdir()) == []  # nothing written outside temporary folders


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(set(SUCCESS) - set(WITH_RUN)))
def test_full_static_example_recovers_its_law(script, tmp_path):
    _check(_run(script, cwd=tmp_path), script)


@pytest.mark.slow
@pytest.mark.parametrize("script", WITH_RUN)
def test_full_example_recovers_its_law_and_keeps_the_run(script, tmp_path):
    out = tmp_path / "run"
    result = _run(script, "--out", str(out), cwd=tmp_path)
    _check(result, script)
    for name in ("spec.json", "model.pt", "laws.json", "laws.md", "report.json", "data.h5"):
        assert (out / name).is_file(), name
    assert list((out / "plots").glob("*.png"))
    report = json.loads((out / "report.json").read_text())
    assert report["verification"]  # the full runs verify their laws by re-simulation

