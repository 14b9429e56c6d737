"""Tests for pikan/laws/law.py: Law, Laws (exports, JSON, equations) and equivalent."""

import dataclasses
import json

import pytest
import sympy
import torch

import pikan
from pikan import Dissipation, Dynamics, Lagrangian, Potential, System
from pikan.errors import SpecError
from pikan.laws.law import Alternative, Law, Laws, equivalent, in_state

x, y, r, v_x, d = sympy.symbols("x y r v_x d")


# ------------------------------------------------------------------ equivalent


@pytest.mark.parametrize("law, truth", [
    (0.49995 * x**2, "x**2/2"),
    (sympy.Rational(1, 2) * x**2 + 1.004 * y**2 + 7.0, "x**2/2 + y**2"),
    (-9.8 * sympy.cos(x), "-9.81*cos(x)"),
    (sympy.sin(3.1416 * x) + 2, "sin(pi*x)"),
    (0.2501 * r**4 - r**2, "r**4/4 - r**2"),
    (x * (x**3 + 2 * x) / 4, "x**2/2 + x**4/4"),
    (1.0 * x * y, "x*y"),
])
def test_equivalent_accepts_the_same_law_with_close_constants(law, truth):
    assert equivalent(law, truth)


@pytest.mark.parametrize("law, truth", [
    (0.52 * x**2, "x**2/2"),                      # constant 4 % off
    (x**2 / 2 + 1e-3 * x**3, "x**2/2"),           # an extra term
    (sympy.cos(x), "sin(x)"),                     # another function
    (x**2 / 2, "x**2/2 + y**2"),                  # a missing input
    (sympy.sin(3.3 * x), "sin(pi*x)"),            # a frequency 5 % off
])
def test_equivalent_rejects_different_laws(law, truth):
    assert not equivalent(law, truth)


def test_equivalent_tolerance_and_constant_options():
    assert equivalent(0.52 * x**2, "x**2/2", rtol=0.05)
    assert equivalent(x**2 / 2 + 3, "x**2/2")
    assert not equivalent(x**2 / 2 + 3, "x**2/2", up_to_constant=False)
    assert equivalent(x**2 / 2 + 3.01, "x**2/2 + 3", up_to_constant=False)


def test_equivalent_recognizes_equal_forms_written_differently():
    m0, v, c = sympy.symbols("m_0 v c")
    law = 1 / sympy.sqrt(1.0000001 * m0**-2 - v**2 / (c**2 * m0**2))
    assert equivalent(law, "m_0/sqrt(1 - v**2/c**2)", up_to_constant=False, positive=True)
    assert not equivalent(law, "m_0/sqrt(1 - v**2/c**2)", up_to_constant=False)
    m1, m2, r1, r2 = sympy.symbols("m1 m2 r1 r2")
    assert equivalent((-m1 * r1 - m2 * r2) / (-m1 - m2), "(m1*r1 + m2*r2)/(m1 + m2)",
                      up_to_constant=False)
    assert not equivalent(x * abs(x), "x**2")  # equal for x > 0 only, not a symmetric law


def test_equivalent_settles_a_square_root_of_a_square_by_the_positive_box():
    speed = "sqrt(2*g*l*(1 - cos(theta)))"  # a pendulum's speed at the bottom
    assert equivalent(sympy.sympify("2*sqrt(g)*sqrt(l)*sin(theta/2)"), speed,
                      up_to_constant=False, positive=True)
    # the same square with the other sign is a different law
    assert not equivalent(sympy.sympify("-2*sqrt(g)*sqrt(l)*sin(theta/2)"), speed,
                          up_to_constant=False, positive=True)
    assert not equivalent(sympy.sympify("2*sqrt(g)*sqrt(l)*sin(theta/3)"), speed,
                          up_to_constant=False, positive=True)


def test_equivalent_compares_lists_elementwise_and_takes_laws():
    assert equivalent([-0.5 * x, 2.0 * y], ["-x/2", "2*y"], up_to_constant=False)
    assert not equivalent([-0.5 * x, 2.0 * y], ["2*y", "-x/2"], up_to_constant=False)
    assert not equivalent([x], ["x", "y"])
    law = Law("V", "Potential", ("x",), 0.5 * x**2)
    assert equivalent(law, "x**2/2")


# ------------------------------------------------------------------ Law


def _potential_law() -> Law:
    return Law("V", "Potential", ("r",), sympy.Float(0.25) * r**4 - r**2, None, 0.999999,
               1e-4, 1e-3, 9, (Alternative(-r**2, 3, 0.8, "regression"),))


def test_law_str_and_latex():
    law = _potential_law()
    assert str(law) == "V(r) = 0.25*r**4 - r**2 + const"
    assert r"\mathrm{const}" in law.latex() and "r^{4}" in law.latex()
    dyn = Law("F", "Dynamics", ("x", "v_x"), [-0.5 * x - 0.1 * v_x], outputs=("x",))
    assert str(dyn) == "F(x, v_x) = [x: -0.1*v_x - 0.5*x]"
    assert "const" not in str(dyn)
    assert "pmatrix" in dyn.latex()


def test_in_state_substitutes_features_and_sums_bindings():
    central = Potential("V", inputs={"r": "sqrt(x**2 + y**2)"})
    assert in_state(r**2, central) == x**2 + y**2
    chain = Potential("bond", inputs=["d"], bindings=pikan.chain_pairs(["x1", "x2", "x3"]))
    x1, x2, x3 = sympy.symbols("x1 x2 x3")
    assert sympy.expand(in_state(d**2, chain) - ((x2 - x1) ** 2 + (x3 - x2) ** 2)) == 0


# ------------------------------------------------------------------ Laws: exports


def _system() -> System:
    return System("duffing", coords=["x"], params={"c": 0.1},
                  modules=[Potential("V", inputs=["x"]), Dissipation("D", inputs=["v_x"])])


def _laws() -> Laws:
    spec = _system()
    v_law = Law("V", "Potential", ("x",), x**2 / 2 + sympy.Float(0.25) * x**4,
                x**2 / 2 + sympy.Float(0.25) * x**4, 0.99, 0.01, 0.01, 9,
                (Alternative(x**2 / 2, 5, 0.3, "regression:poly2", None, 0.2),))
    d_law = Law("D", "Dissipation", ("v_x",), sympy.Float(0.05) * v_x**2,
                sympy.Float(0.05) * v_x**2, 0.98, 0.002, 0.02, 5)
    return Laws([v_law, d_law], spec=spec)


def test_laws_mapping_and_str():
    laws = _laws()
    assert list(laws) == ["V", "D"] and len(laws) == 2
    assert str(laws).splitlines() == ["V(x) = 0.25*x**4 + x**2/2 + const",
                                      "D(v_x) = 0.05*v_x**2 + const"]
    with pytest.raises(SpecError, match="no law for module 'W'"):
        laws["W"]


def test_laws_json_round_trip():
    laws = _laws()
    back = Laws.from_json(laws.to_json())
    assert list(back) == list(laws)
    for name in laws:
        assert back[name].expr == laws[name].expr
        assert back[name].in_state == laws[name].in_state
        assert back[name].kind == laws[name].kind and back[name].inputs == laws[name].inputs
        assert back[name].r2 == laws[name].r2 and back[name].complexity == laws[name].complexity
    assert back["V"].alternatives[0].expr == x**2 / 2
    assert back["V"].alternatives[0].rmse == 0.2
    assert back.spec == laws.spec
    dyn = Laws([Law("F", "Dynamics", ("x",), [-0.5 * x, 2 * x], outputs=("x", "y"))])
    again = Laws.from_json(dyn.to_json())
    assert again["F"].expr == [-0.5 * x, 2 * x] and again["F"].outputs == ("x", "y")


@pytest.mark.parametrize("text", [
    "__import__('os').system('echo hacked')",
    "x.__class__",
    "open('file')",
    "lambda: 1",
    "unknown_name * x",
])
def test_from_json_rejects_unsafe_or_foreign_text(text):
    data = json.loads(_laws().to_json())
    data["laws"][0]["expr"] = text
    with pytest.raises(SpecError):
        Laws.from_json(json.dumps(data))


def test_from_json_rejects_bad_layouts():
    with pytest.raises(SpecError, match="could not be read"):
        Laws.from_json("{not json")
    with pytest.raises(SpecError, match="'laws' list"):
        Laws.from_json('{"version": 1}')
    with pytest.raises(SpecError, match="missing"):
        Laws.from_json('{"laws": [{"module": "V"}]}')
    with pytest.raises(SpecError, match="version"):
        Laws.from_json('{"version": 99, "laws": []}')


def test_to_markdown_has_one_row_per_law():
    md = _laws().to_markdown().splitlines()
    assert len(md) == 4 and md[0].startswith("| module")
    assert "V(x)" in md[2] and "0.25*x**4" in md[2] and "Potential" in md[2]


def test_verdicts_print_round_trip_and_are_validated():
    laws = _laws().with_verdicts({"V": ("recovered", "all checks passed"),
                                  "D": ("approximate", "worse than the KAN")})
    assert str(laws).splitlines() == ["V(x) = 0.25*x**4 + x**2/2 + const   [recovered]",
                                      "D(v_x) = 0.05*v_x**2 + const   [approximate]"]
    assert laws["V"].formula() == "V(x) = 0.25*x**4 + x**2/2 + const"
    assert "| recovered |" in laws.to_markdown() and "| unchecked |" in _laws().to_markdown()
    back = Laws.from_json(laws.to_json())
    assert back["D"].verdict == "approximate" and back["D"].verdict_reason == "worse than the KAN"
    assert Laws.from_json(_laws().to_json())["V"].verdict is None
    with pytest.raises(SpecError, match="verdict 'great'"):
        laws.with_verdicts({"V": ("great", "")})
    data = json.loads(laws.to_json())
    data["laws"][0]["verdict"] = "probably"
    with pytest.raises(SpecError, match="verdict 'probably'"):
        Laws.from_json(json.dumps(data))


def test_best_alternatives_are_the_most_accurate_other_candidates():
    alternatives = (Alternative(x**2 / 2, 5, 0.3), Alternative(x**4, 3, 0.1),
                    Alternative(x**2 / 2 + sympy.Float(0.25) * x**4, 9, 0.01),
                    Alternative(x**6, 3, float("nan")))
    law = Law("V", "Potential", ("x",), x**2 / 2 + sympy.Float(0.25) * x**4,
              alternatives=alternatives)
    assert [a.expr for a in law.best_alternatives(2)] == [x**4, x**2 / 2]


def test_with_exprs_replaces_laws_and_recomputes_in_state():
    laws = _laws().with_exprs({"V": "0.5*x**2"})
    assert laws["V"].expr == sympy.Float(0.5) * x**2
    assert laws["V"].in_state == sympy.Float(0.5) * x**2
    assert laws["D"].expr == _laws()["D"].expr


# ------------------------------------------------------------------ Laws: equations and the spec


def test_equations_newtonian_with_dissipation_and_masses():
    spec = _system().replace(masses=2.0)
    eqs = Laws(_laws(), spec=spec).equations()
    a_x = sympy.Symbol("a_x")
    assert eqs[0].lhs == a_x
    expected = (-x - sympy.Float(1.0) * x**3 - sympy.Float(0.1) * v_x) / 2
    assert sympy.simplify(eqs[0].rhs - expected) == 0


def test_equations_use_known_spec_laws_and_dynamics():
    spec = System("driven", coords=["x", "y"], params={"k": 2.0},
                  modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + y**2)/2"),
                           Dynamics("F", inputs=["x", "y"], outputs=["x", "y"])])
    laws = Laws([Law("F", "Dynamics", ("x", "y"), [y, -x], outputs=("x", "y"))], spec=spec)
    eqs = laws.equations()
    k = sympy.Symbol("k")
    assert sympy.simplify(eqs[0].rhs - (-k * x + y)) == 0
    assert sympy.simplify(eqs[1].rhs - (-k * y - x)) == 0


def test_equations_lagrangian():
    spec = System("osc", coords=["x"], modules=[Lagrangian("L", inputs=["x", "v_x"])])
    laws = Laws([Law("L", "Lagrangian", ("x", "v_x"), 3 * v_x**2 / 2 - 6 * x**2)], spec=spec)
    (eq,) = laws.equations()
    assert sympy.simplify(eq.rhs + 4 * x) == 0


def test_equations_need_a_spec_and_every_law():
    with pytest.raises(SpecError, match="needs the system"):
        Laws([_potential_law()]).equations()
    with pytest.raises(SpecError, match="no extracted law"):
        Laws([_laws()["V"]], spec=_system()).equations()


def test_laws_go_back_into_the_spec_and_the_model():
    laws = _laws()
    spec = _system().with_laws(laws)
    assert not spec.learned
    model = pikan.compile(spec)
    q = torch.tensor([[1.0]])
    v = torch.tensor([[2.0]])
    assert torch.allclose(model.acceleration(q, v), torch.tensor([[-1.0 - 1.0 - 0.2]]))
    learned = pikan.compile(_system())
    learned.fix("V", laws["V"])
    assert torch.allclose(learned.forces(q, v)["V"], torch.tensor([[-2.0]]))


# ------------------------------------------------------------------ Jupyter display


def test_law_shows_in_jupyter_as_a_displayed_equation_with_its_verdict():
    law = _laws().with_verdicts({"V": ("recovered", "all checks passed")})["V"]
    shown = law._repr_latex_()
    assert shown == f"$${law.latex()} \\qquad \\text{{[recovered]}}$$"
    assert shown.startswith("$$V(x) = ") and r"\frac{x^{2}}{2}" in shown
    assert r"\mathrm{const}" in shown
    assert _laws()["V"]._repr_latex_().endswith(r"\text{[unchecked]}$$")
    bars = dataclasses.replace(law, template=sympy.Symbol("c0") * x**4 + x**2 / 2,
                               constants={"c0": (0.25, 0.24, 0.26)})
    assert r"\left(0.25 \pm 0.01\right) x^{4}" in bars._repr_latex_()
    dyn = Law("F", "Dynamics", ("x", "v_x"), [-0.5 * x - 0.1 * v_x], outputs=("x",),
              verdict="approximate")
    assert dyn._repr_latex_() == f"$${dyn.latex()} \\qquad \\text{{[approximate]}}$$"


def test_a_constant_the_data_fix_exactly_has_no_error_bar():
    law = dataclasses.replace(_laws()["V"], template=sympy.Symbol("c0") * x**4 + x**2 / 2,
                              constants={"c0": (0.25, 0.25, 0.25)})
    assert law.formula_with_errors() == "V(x) = 0.25*x**4 + x**2/2 + const"
    assert "pm" not in law.latex() and "0.25 x^{4}" in law.latex()


def test_laws_show_in_jupyter_as_aligned_equations_one_row_per_law():
    laws = _laws().with_verdicts({"V": ("recovered", "all checks passed"),
                                  "D": ("not found", "the law model does not reproduce")})
    shown = laws._repr_latex_()
    assert shown.startswith(r"$$\begin{aligned} ") and shown.endswith(r" \end{aligned}$$")
    rows = shown[len(r"$$\begin{aligned} "):-len(r" \end{aligned}$$")].split(r" \\ ")
    expected = []
    for law, verdict in zip(laws.values(), ("recovered", "not found")):
        head, body = law.latex().split(" = ", 1)
        expected.append(f"{head} &= {body} && \\text{{[{verdict}]}}")
    assert rows == expected
    assert Laws()._repr_latex_() is None  # nothing to typeset: Jupyter shows the repr


def test_constant_units_of_a_law_with_units():
    law = Law("V", "Potential", ("r",), sympy.sympify("r**4/4 - r**2 + 0.3*exp(-r)"),
              units={"V": "J", "r": "m"})
    found = {(str(c), u) for c, u in law.constant_units()}
    assert found == {("1/4", "kg/(m**2*s**2)"), ("-1", "kg/s**2"), ("-1", "1/m"), ("0.300000000000000", "J")}
    assert "constants' units" in Laws([law]).to_markdown()
    assert str(law).startswith("V(r) [J] = ")
    assert Law.from_dict(law.to_dict()).units == law.units
    # no units, and find_law's pure numbers: nothing to report
    assert Law("V", "Potential", ("r",), sympy.sympify("r**2")).constant_units() == []
    assert Law("y", "Function", ("r",), sympy.sympify("2*r"),
               units={"y": "m", "r": "m"}).constant_units() == []
    with pytest.raises(SpecError, match="'units' must map"):
        Law.from_dict({**law.to_dict(), "units": {"V": 3}})


@pytest.mark.parametrize("law, truth, up_to_constant, same", [
    # Holling's predation over a common denominator, and scaled top and bottom
    ("y*(0.351*x - 0.37)/(1 + 0.7*x)", "0.61*x*y/(1 + 0.7*x) - 0.37*y", False, True),
    ("(-7.2846*x*y + 7.663*y)/(-14.382*x - 20.738)", "0.61*x*y/(1 + 0.7*x) - 0.37*y", False,
     True),
    ("y*(0.351*x - 0.37)/(1 + 0.75*x)", "0.61*x*y/(1 + 0.7*x) - 0.37*y", False, False),
    ("y*(0.351*x - 0.37)/(1 + 0.7*x) + 0.05*x", "0.61*x*y/(1 + 0.7*x) - 0.37*y", False, False),
    # a soft core up to its constant
    ("5 + 0.6/(r**2 + 0.43)", "0.6/(r**2 + 0.43)", True, True),
    ("5 + 0.6/(r**2 + 0.45)", "0.6/(r**2 + 0.43)", True, False),
])
def test_rational_laws_compare_by_their_normalized_coefficients(law, truth, up_to_constant,
                                                                 same):
    """Equal rational functions written over other denominators are equivalent, whatever a
    pole inside the numeric check's box does to their values; a coefficient off by more
    than the tolerance, or an extra term, is not."""
    assert equivalent(law, truth, up_to_constant=up_to_constant, rtol=0.01) is same


def test_a_snapped_phase_and_amplitude_match_the_reference_within_the_tolerance():
    # a sinusoid fitted as sin(w t + 19/12) with amplitude 5/8 is 0.63 cos(1.17 t) within 3 %
    # (19/12 is pi/2 to 0.8 %, 5/8 is 0.63 to 0.8 %): the law's exact fractions round too
    t = sympy.Symbol("t")
    law = sympy.Rational(5, 8) * sympy.sin(1.16857612453034 * t + sympy.Rational(19, 12))
    assert equivalent(law, "0.63*cos(1.17*t)", rtol=0.03, up_to_constant=False)
    assert not equivalent(law, "0.63*cos(1.17*t)", rtol=0.005, up_to_constant=False)
    shifted = sympy.Rational(5, 8) * sympy.sin(1.16857612453034 * t + sympy.Rational(17, 12))
    assert not equivalent(shifted, "0.63*cos(1.17*t)", rtol=0.03, up_to_constant=False)
