"""Tests for pikan/laws/generators/rational.py: rational functions P/Q."""

import numpy as np
import sympy

from pikan.laws.candidates import Target, fit_candidates, select
from pikan.laws.generators.base import Options
from pikan.laws.generators.rational import Rational, rational_candidates
from pikan.laws.law import equivalent


def _best(cands, target, tolerance=1e-9):
    return select(fit_candidates(cands, target, tolerance), tolerance)


def test_rational_candidates_fit_a_weighted_mean(rng):
    s = rng.uniform(1, 5, size=(500, 4))
    m1, m2, r1, r2 = s.T
    target = Target(("m1", "m2", "r1", "r2"), s, "values", (m1 * r1 + m2 * r2) / (m1 + m2))
    best = _best(rational_candidates(target), target)
    a, b, c, d = sympy.symbols("m1 m2 r1 r2")
    assert best.error < 1e-10
    assert sympy.simplify(best.expr - (a * c + b * d) / (a + b)) == 0


def test_an_exact_fit_claims_an_error_at_rounding_whatever_its_signs(rng):
    # P = a + b and Q = 1 + a*b: every coefficient of yQ - P has one sign, where the error
    # once measured against the terms' sum with the signs dropped (0.73 for an exact law)
    z = rng.uniform(0.1, 0.7, size=(300, 2))
    added = (z[:, 0] + z[:, 1]) / (1 + z[:, 0] * z[:, 1])
    cands = rational_candidates(Target(("a", "b"), z, "values", added))
    exact = [c for c in cands if equivalent(c.expr, "(a + b)/(1 + a*b)", up_to_constant=False)]
    assert exact and all(c.error < 1e-12 for c in exact)
    assert all(c.error > 1e-6 for c in cands if c not in exact)


def test_rational_generator_needs_values(rng):
    s = rng.uniform(1, 5, size=(100, 1))
    gradient = Target(("x",), s, "gradient", (1 / s[:, 0] ** 2)[:, None])
    assert Rational().generate(gradient, Options()) == []
    values = Target(("x",), s, "values", (s[:, 0] + 1) / (s[:, 0] + 2))
    best = _best(Rational().generate(values, Options()), values)
    assert equivalent(best.expr, "(x + 1)/(x + 2)", up_to_constant=False), str(best.expr)


def test_square_roots_of_rational_functions(rng):
    s = rng.uniform(1, 2, size=(500, 2))
    v, c = s[:, 0], s[:, 1] + 2.5
    target = Target(("v", "c"), s * [1, 1] + [0, 2.5], "values", -np.sqrt((c - v) / (c + v)))
    best = _best(rational_candidates(target), target)
    assert best.error < 1e-10
    assert equivalent(best.expr, "-sqrt((c - v)/(c + v))", up_to_constant=False), best.expr
    plain = rational_candidates(target, transforms=("identity",))
    assert all(":square" not in c.source for c in plain)


def test_the_denominators_lowest_term_is_exactly_one(rng):
    """Holling's predation ``0.61 x y/(1 + 0.7 x) - 0.37 y`` comes back with the constant
    of its denominator an exact 1: P/Q scaled top and bottom alike has one constant that no
    data can fix (its error bar was ``1 +- ?``)."""
    z = rng.uniform(0.5, 4.0, size=(800, 2))
    x, y = z.T
    target = Target(("x", "y"), z, "values", 0.61 * x * y / (1 + 0.7 * x) - 0.37 * y)
    best = min(rational_candidates(target), key=lambda c: c.error)
    assert best.error < 1e-9
    _, den = sympy.fraction(best.expr)
    assert sympy.Integer(1) in sympy.Add.make_args(den), str(best.expr)
    assert equivalent(best.expr, "0.61*x*y/(1 + 0.7*x) - 0.37*y", up_to_constant=False)


def test_a_logistic_growth_beside_a_saturating_response_needs_a_cubic_numerator(rng):
    # Rosenzweig-MacArthur prey: x (1 - x/6.3) - 1.3 x y/(1 + 0.7 x) is a cubic over 1 + 0.7 x
    s = rng.uniform(0.5, 4.0, size=(600, 2))
    x, y = s.T
    truth = "x*(1 - x/6.3) - 1.3*x*y/(1 + 0.7*x)"
    target = Target(("x", "y"), s, "values", x * (1 - x / 6.3) - 1.3 * x * y / (1 + 0.7 * x))
    default = _best(rational_candidates(target), target)
    assert not equivalent(default.expr, truth, rtol=0.01, up_to_constant=False)
    cubic = rational_candidates(target, degrees=((3, 1),))
    best = _best(cubic, target)
    assert best.error < 1e-9 and equivalent(best.expr, truth, rtol=1e-6, up_to_constant=False)
    assert any(c.source == "rational:3/1" for c in cubic)
