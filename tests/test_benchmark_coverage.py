"""Interval coverage of the benchmarks (``benchmarks/_coverage.py``): a law's constants are
matched to the truth's through its own template, and counted inside or outside their
intervals; laws of another form, or with constants the samples do not fix, are not counted."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import sympy

import pikan

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import _coverage

x, y, c0, c1, c2 = sympy.symbols("x y c0 c1 c2")
Z = np.random.default_rng(0).uniform(0.5, 2.0, size=(200, 2))
NAN = math.nan


def _law(template, constants, kind="Potential", inputs=("x",)):
    values = {sympy.Symbol(k): v[0] for k, v in constants.items()}
    expr = ([t.xreplace(values) for t in template] if isinstance(template, list)
            else template.xreplace(values))
    return pikan.Law(module="V", kind=kind, inputs=inputs, expr=expr, template=template,
                     constants=constants)


def test_true_constants_of_the_laws_own_parametrization():
    # the law writes the spring as c0*x**2 (the truth 0.85/2 * x**2), plus a free offset
    truth = sympy.Float(0.425) * x**2 + 3.0
    law = _law(c0 * x**2 + c1, {"c0": (0.43, 0.42, 0.44), "c1": (0.1, NAN, NAN)})
    cover = _coverage.constant_coverage(law, truth, ["x"], Z[:, :1], up_to_constant=True)
    assert set(cover) == {"c0"}  # the undetermined offset is not counted
    assert math.isclose(cover["c0"]["truth"], 0.425, rel_tol=1e-9)
    assert cover["c0"]["inside_90"] and cover["c0"]["inside_99"]


def test_outside_the_90_and_99_percent_intervals():
    truth = sympy.Float(0.425) * x**2
    # 90 %: [0.43, 0.44]; 99 %: 0.435 +- 1.566 * 0.005 = [0.4272, 0.4428]: 0.425 is outside both
    far = _law(c0 * x**2, {"c0": (0.435, 0.43, 0.44)})
    cover = _coverage.constant_coverage(far, truth, ["x"], Z[:, :1], up_to_constant=True)
    assert not cover["c0"]["inside_90"] and not cover["c0"]["inside_99"]
    # 90 %: [0.4265, 0.4365]; 99 %: [0.4237, 0.4393]: outside the first, inside the second
    near = _law(c0 * x**2, {"c0": (0.4315, 0.4265, 0.4365)})
    cover = _coverage.constant_coverage(near, truth, ["x"], Z[:, :1], up_to_constant=True)
    assert not cover["c0"]["inside_90"] and cover["c0"]["inside_99"]


def test_a_force_is_not_up_to_a_constant():
    truth = sympy.Float(0.425) * x + 0.2
    law = _law(c0 * x, {"c0": (0.425, 0.42, 0.43)}, kind="Force")
    assert _coverage.constant_coverage(law, truth, ["x"], Z[:, :1],
                                       up_to_constant=False) is None
    assert _coverage.constant_coverage(law, truth, ["x"], Z[:, :1],
                                       up_to_constant=True) is not None


def test_laws_without_true_constants_are_not_counted():
    truth = sympy.Float(0.425) * x**2
    wrong_form = _law(c0 * x**4, {"c0": (0.43, 0.42, 0.44)})
    assert _coverage.constant_coverage(wrong_form, truth, ["x"], Z[:, :1], True) is None
    # c0*c1 is one number: the samples cannot fix both
    redundant = _law(c0 * c1 * x**2, {"c0": (0.5, 0.4, 0.6), "c1": (0.85, 0.8, 0.9)})
    assert _coverage.constant_coverage(redundant, truth, ["x"], Z[:, :1], True) is None
    no_bars = pikan.Law(module="V", kind="Potential", inputs=("x",), expr=truth)
    assert _coverage.constant_coverage(no_bars, truth, ["x"], Z[:, :1], True) is None


def test_a_dynamics_law_is_matched_output_by_output():
    truth = [sympy.Float(-0.31) * y, sympy.Float(0.31) * x - sympy.Float(1.7) * y]
    law = _law([c0 * y, c1 * x + c2 * y],
               {"c0": (-0.3, -0.32, -0.29), "c1": (0.3, 0.295, 0.305),
                "c2": (-1.7, -1.71, -1.69)}, kind="Dynamics", inputs=("x", "y"))
    cover = _coverage.constant_coverage(law, truth, ["x", "y"], Z, up_to_constant=False)
    assert [cover[k]["inside_90"] for k in ("c0", "c1", "c2")] == [True, False, True]
    assert math.isclose(cover["c1"]["truth"], 0.31, rel_tol=1e-9)


def test_summary_and_target_lines():
    inside = {"inside_90": True, "inside_99": True}
    outside = {"inside_90": False, "inside_99": False}
    records = [({"c0": inside, "c1": outside}, "recovered"), ({"c0": outside}, "approximate"),
               (None, "recovered"), ({"c0": inside}, "recovered")]
    counts = _coverage.summary(records)
    assert counts == {"constants": 4, "inside_90": 2, "rate_90": 0.5, "laws": 3,
                      "found_constants": 4, "found_inside_90": 2, "found_rate_90": 0.5,
                      "recovered_outside_99": 1}
    first, second = _coverage.target_lines(counts)
    assert "2/4 (50 %" in first and "(not met)" in first and first.endswith("found: 2/4")
    lost = _coverage.summary([({"c0": inside}, "recovered"), ({"c0": outside}, "not found")])
    assert (lost["inside_90"], lost["constants"]) == (1, 2)
    assert (lost["found_inside_90"], lost["found_constants"]) == (1, 1)
    assert second.startswith("- laws 'recovered' with a constant outside its 99 % interval: 1")
    assert "no law" in _coverage.target_lines(_coverage.summary([]))[0]
