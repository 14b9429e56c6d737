"""The error-bar benchmark (benchmarks/error_bars.py): the true laws it starts from are the
truth, every constant is scored, and the summary counts what it says."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

import pikan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _gen_systems
import error_bars
import generalization


def test_the_true_laws_give_the_systems_own_accelerations():
    system = _gen_systems.SYSTEMS["magnetic_gradient"]
    laws = error_bars.true_laws(system)
    model = pikan.compile(system.plain().with_laws(laws)).double()
    rng = np.random.default_rng(0)
    q, v = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    a = model.acceleration(torch.as_tensor(q), torch.as_tensor(v)).detach().numpy()
    np.testing.assert_allclose(a, system.accel(q, v), rtol=1e-10, atol=1e-10)


def test_every_constant_of_every_law_is_scored_against_its_truth():
    rows = error_bars.run_system("quadratic_drag", (0.05,), 1)
    system = _gen_systems.SYSTEMS["quadratic_drag"]
    assert {r["module"] for r in rows} == {m.name for m in system.truth.modules}
    for r in rows:
        assert r["noise"] == 0.05 and r["draw"] == 1
        assert r["relative"] == (r["value"] - r["truth"]) / abs(r["truth"])
        assert abs(r["relative"]) < 0.03 and r["half_width"] > 0  # 5 % noise, true form
    truths = sorted(r["truth"] for r in rows)
    assert truths == sorted(float(generalization.truth_law(m, system.truth.params)
                                  .as_coefficients_dict().popitem()[1])
                            for m in system.truth.modules)


def test_the_summary_counts_laws_constants_and_coverage():
    def row(module, constant, draw, relative, inside):
        return {"system": "s", "module": module, "constant": constant, "noise": 0.05,
                "draw": draw, "relative": relative, "inside_90": inside}

    rows = [row("V", "c0", 1, 0.01, True), row("V", "c1", 1, 0.05, False),
            row("V", "c0", 2, -0.02, True), row("V", "c1", 2, 0.0, True),
            row("D", "c0", 1, 0.031, False)]
    assert error_bars.summary(rows) == {"0.05": {
        "constants": 5, "within_3pct": 3, "laws": 3, "laws_within_3pct": 1, "covered_90": 3}}
