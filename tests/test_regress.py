"""Tests for pikan/regress.py: term libraries and sparse regression generators."""

import numpy as np
import pytest
import sympy

from pikan.refit import Target, fit_candidates, select
from pikan.regress import (
    Term,
    libraries,
    monomial_candidates,
    rational_candidates,
    regression_candidates,
)

x, y, z = sympy.symbols("x y z")


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small least-squares problems: extra BLAS threads only add contention on a loaded
    machine (a 1000x200 QR took 1.7 s with two threads, 20 ms with one)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only speed depends on it
        yield
        return
    with threadpool_limits(1):
        yield


def _best(cands, target, tolerance=1e-9):
    fits = fit_candidates([(c.expr, c.source) for c in cands], target, tolerance)
    return select(fits, tolerance)


def test_term_values_and_gradients_match_sympy(rng):
    samples = rng.uniform(0.5, 2.0, size=(20, 2))
    term = Term(((0, "x^2"), (1, "sin")))
    expr = term.expr([x, y])
    assert expr == x**2 * sympy.sin(y)
    f = sympy.lambdify((x, y), [expr, sympy.diff(expr, x), sympy.diff(expr, y)], "numpy")
    want = f(samples[:, 0], samples[:, 1])
    np.testing.assert_allclose(term.values(samples), want[0], rtol=1e-14)
    np.testing.assert_allclose(term.gradient(samples, (0, 1)), np.stack(want[1:], 1),
                               rtol=1e-14)


def test_libraries_respect_domains_and_the_allowed_primitives(rng):
    mixed = np.column_stack([rng.uniform(-1, 1, 100), rng.uniform(1, 2, 100)])
    libs = dict(libraries(mixed))
    assert {"poly1", "poly2", "poly4", "unary"} <= set(libs)
    factors = {f for terms in libs.values() for t in terms for f in t.factors}
    assert (1, "log") in factors and (1, "1/x") in factors
    assert (0, "log") not in factors and (0, "1/x") not in factors  # x crosses 0
    libs = dict(libraries(mixed, library=["x", "x^2", "sin"]))
    factors = {f[1] for terms in libs.values() for t in terms for f in t.factors}
    assert factors <= {"x", "x^2", "sin"}


def test_gradient_regression_finds_a_coupled_polynomial_potential(rng):
    s = rng.uniform(-2, 2, size=(600, 2))
    grad = np.stack([s[:, 0] + s[:, 0] * s[:, 1] ** 2 / 2, s[:, 1] + s[:, 0] ** 2 * s[:, 1] / 2], 1)
    target = Target(("x", "y"), s, "gradient", grad)
    best = _best(regression_candidates(target), target)
    assert sympy.simplify(best.expr - ((x**2 + y**2) / 2 + x**2 * y**2 / 4)) == 0


def test_value_regression_finds_unary_terms_and_products(rng):
    s = rng.uniform(-2, 2, size=(500, 2))
    target = Target(("x", "y"), s, "values", -3 * np.cos(s[:, 0]) + 0.5 * s[:, 1] * np.exp(s[:, 0]))
    best = _best(regression_candidates(target), target)
    assert sympy.simplify(best.expr - (-3 * sympy.cos(x) + y * sympy.exp(x) / 2)) == 0


def test_transforms_invert_a_square_root_of_a_polynomial(rng):
    s = rng.uniform(1, 5, size=(500, 2))
    target = Target(("x", "y"), s, "values", np.sqrt((s[:, 0] - s[:, 1]) ** 2 + 1))
    best = _best(regression_candidates(target, transforms=True), target)
    assert best.error < 1e-10
    assert sympy.simplify(best.expr**2 - ((x - y) ** 2 + 1)) == 0


def test_rational_candidates_fit_a_weighted_mean(rng):
    s = rng.uniform(1, 5, size=(500, 4))
    m1, m2, r1, r2 = s.T
    target = Target(("m1", "m2", "r1", "r2"), s, "values", (m1 * r1 + m2 * r2) / (m1 + m2))
    best = _best(rational_candidates(target), target)
    a, b, c, d = sympy.symbols("m1 m2 r1 r2")
    assert best.error < 1e-10
    assert sympy.simplify(best.expr - (a * c + b * d) / (a + b)) == 0


def test_monomial_candidates_find_power_laws(rng):
    s = rng.uniform(1, 5, size=(300, 3))
    target = Target(("x", "y", "z"), s, "values", 2.5 * s[:, 0] * s[:, 1] ** 2 / np.sqrt(s[:, 2]))
    cands = monomial_candidates(target)
    assert cands[0].error < 1e-12
    coeff, rest = cands[0].expr.as_coeff_Mul()
    assert abs(float(coeff) - 2.5) < 1e-12 and rest == x * y**2 / sympy.sqrt(z)
    # values of both signs: no power law
    assert monomial_candidates(Target(("x",), s[:, :1], "values", s[:, 0] - 3)) == []
