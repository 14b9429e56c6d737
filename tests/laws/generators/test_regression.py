"""Tests for pikan/laws/generators/regression.py: term libraries and sparse regression."""

import numpy as np
import sympy

from pikan.laws.candidates import Target, fit_candidates, select
from pikan.laws.generators.base import Options
from pikan.laws.generators.regression import (
    EXACT,
    TRANSFORMS,
    UNIT_TRANSFORMS,
    SparseRegression,
    Term,
    libraries,
    max_terms_for,
    regression_candidates,
    scaled,
    sum_of,
    unit_transformed,
)
from pikan.laws.law import equivalent

x, y, z = sympy.symbols("x y z")


def _best(cands, target, tolerance=1e-9):
    return select(fit_candidates(cands, target, tolerance), tolerance)


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


def _occupation(rng, width=3.0):
    """Fermi-Dirac occupations 1/(exp(e - m) + 1) of two pure numbers."""
    s = np.column_stack([rng.uniform(-width, width, 400), rng.uniform(-1, 1, 400)])
    return Target(("e", "m"), s, "values", 1 / (np.exp(s[:, 0] - s[:, 1]) + 1))


def test_unit_transforms_give_an_occupation_number_of_pure_numbers(rng):
    e, m = sympy.symbols("e m")
    target = _occupation(rng)
    best = _best(regression_candidates(target, transforms=True, unit_offsets=True), target)
    assert best.error < 1e-10
    assert sympy.simplify(best.expr - 1 / (sympy.exp(e - m) + 1)) == 0
    sources = {c.source.split(":")[-1] for c in SparseRegression(transforms=True).generate(
        target, Options(dimensionless=True))}
    assert "log-inverse-minus-one" in sources
    # values with units: 1 is an arbitrary offset there, so no such transform is tried
    plain = SparseRegression(transforms=True).generate(target, Options())
    assert not {c.source.split(":")[-1] for c in plain} & set(UNIT_TRANSFORMS)


def test_a_law_to_rounding_ends_the_regression(rng):
    s = rng.uniform(1, 2, size=(300, 2))
    target = Target(("x", "y"), s, "values", s[:, 0] ** 2 - 3 * s[:, 1])
    cands = regression_candidates(target, transforms=True)
    assert min(c.error for c in cands) <= EXACT
    # poly2 fits it: no later library (unary, laurent, ...) nor transform was run
    assert {c.source for c in cands} <= {"regression:poly1:identity",
                                         "regression:poly2:identity"}
    noisy = Target(("x", "y"), s, "values", target.y + 1e-3 * rng.standard_normal(300))
    assert "regression:unary:identity" in {c.source for c in
                                           regression_candidates(noisy, transforms=True)}


def test_noisy_samples_past_a_unit_transforms_domain_are_left_out_of_its_fit(rng):
    e, m = sympy.symbols("e m")
    target = _occupation(rng, width=6.0)  # occupations within 0.002 of 0 and 1
    sigma = 0.01 * float(np.std(target.y))
    noisy = Target(target.names, target.z, "values",
                   target.y + sigma * rng.standard_normal(target.y.size))
    assert noisy.y.min() < 0 or noisy.y.max() > 1  # log(1/y - 1) is not defined everywhere
    spaces = {name: rows for name, _, _, rows in unit_transformed(noisy.y, sigma)}
    rows = spaces["log-inverse-minus-one"]  # fitted away from 0 and 1, where it magnifies
    assert 0.5 <= rows.mean() < 1 and np.all(np.abs(noisy.y[rows] - 0.5) < 0.5 - 2.9 * sigma)
    # a sample past an end by more than the noise allows: not a value of this transform
    assert "log-inverse-minus-one" not in {
        n for n, *_ in unit_transformed(np.append(noisy.y, 1 + 4 * sigma), sigma)}
    relative = sigma / float(np.std(noisy.y))
    cands = regression_candidates(noisy, transforms=True, unit_offsets=True, noise=relative)
    best = _best(cands, noisy, relative)
    assert equivalent(best.expr, 1 / (sympy.exp(e - m) + 1), up_to_constant=False, rtol=0.03)


def test_each_unit_transform_inverts_its_forward_map_inside_its_condition(rng):
    h = sympy.Symbol("h")
    for name, (forward, inverse, condition) in UNIT_TRANSFORMS.items():
        low, high = {"below-one": (-2.0, 0.9), "above-minus-one": (-0.9, 3.0),
                     "unit-interval": (0.05, 0.95), "above-zero": (0.05, 3.0),
                     "half-turn": (-1.5, 1.5)}[condition]
        y = rng.uniform(low, high, 50)
        back = sympy.lambdify(h, inverse(h, 1), "numpy")(forward(y))
        np.testing.assert_allclose(back, y, rtol=1e-12, atol=1e-12, err_msg=name)


def test_candidates_built_directly_are_the_expressions_sympy_evaluates(rng):
    """Sums of scaled terms and their inverse transforms are built without sympy's
    evaluation (it costs most of a search's sympy time); they must be the very expressions
    it builds: the same arguments in the same order, so forms, keys and complexities do
    not change."""
    z3 = sympy.symbols("a b c")
    samples = rng.uniform(0.5, 2.0, size=(50, 3))
    samples[:, 0] -= 1.2  # one input of both signs: fewer terms, other forms
    libs = [(n, t) for n, t in libraries(samples, None)] + \
        [(n, t) for n, t in libraries(samples[:, 1:], None)]
    log_terms = [Term(((k, "log"),)) for k in (1, 2)]
    inverses = {**{k: v[1] for k, v in TRANSFORMS.items()},
                **{k: v[1] for k, v in UNIT_TRANSFORMS.items()}}
    exercised = {"log powers": 0, "minus sign": 0}
    for trial in range(240):
        _, terms = libs[trial % len(libs)]
        if trial % 3 == 0:
            terms = [*terms, *log_terms]  # laurent-log: exp of c log b is b**c
        pick = rng.choice(len(terms), size=min(len(terms), 1 + trial % 7), replace=False)
        coef = rng.normal(size=pick.size) * 10.0 ** rng.integers(-3, 3, size=pick.size)
        exprs = [terms[i].expr(z3) for i in pick]
        parts = [scaled(float(c), e) for c, e in zip(coef, exprs)]
        want = [sympy.Float(float(c)) * e for c, e in zip(coef, exprs)]
        assert [p.args for p in parts] == [w.args for w in want]
        if trial % 2:
            parts.append(sympy.Float(float(rng.normal())))
            want.append(parts[-1])
        h = sum_of(parts)
        reference = sum(want, sympy.Integer(0))
        assert h.args == reference.args and h == reference
        name = list(inverses)[trial % len(inverses)]
        for sign in (1, -1):
            got, evaluated = inverses[name](h, sign), _evaluated(name, reference, sign)
            assert sympy.srepr(got) == sympy.srepr(evaluated), name
        if name.startswith("log") and h.has(sympy.log):
            exercised["log powers"] += 1  # exp(c log b) leaves the exponential as b**c
        if name in ("sin", "tan") and h.could_extract_minus_sign():
            exercised["minus sign"] += 1  # asin(-h) = -asin(h)
    assert min(exercised.values()) >= 3, exercised
    assert scaled(0.0, z3[0]) == 0 and sum_of([scaled(2.0, z3[0])]) == 2.0 * z3[0]


def _evaluated(name: str, h: sympy.Expr, s: int) -> sympy.Expr:
    """The inverse transforms as plain sympy writes them (evaluated at every step)."""
    return {"identity": lambda: h, "square": lambda: s * sympy.sqrt(h),
            "inverse": lambda: 1 / h, "inverse-square": lambda: s / sympy.sqrt(h),
            "log": lambda: s * sympy.exp(h), "sqrt": lambda: h**2,
            "log-one-minus": lambda: 1 - sympy.exp(h),
            "log-one-plus": lambda: sympy.exp(h) - 1,
            "log-inverse-minus-one": lambda: 1 / (1 + sympy.exp(h)),
            "log-inverse-plus-one": lambda: 1 / (sympy.exp(h) - 1),
            "inverse-square-one-plus": lambda: 1 / sympy.sqrt(h) - 1,
            "sin": lambda: sympy.asin(h), "tan": lambda: sympy.atan(h)}[name]()


def test_inverse_powers_find_a_lennard_jones_wall_on_its_forces(rng):
    """1/r**12 and 1/r**11 correlate at 0.9999 on a narrow well: the exhaustive small
    supports of the ``inverse-powers`` library still find the 12-6 pair."""
    r = rng.uniform(1.18, 1.5, size=(800, 1))
    truth = 4 * 0.73 * ((1.13 / x) ** 12 - (1.13 / x) ** 6)
    force = sympy.lambdify(x, sympy.diff(truth, x), "numpy")(r[:, 0])
    target = Target(("x",), r, "gradient", force[:, None])
    assert "inverse-powers" in dict(libraries(r))
    best = _best(regression_candidates(target), target)
    assert best.error < 1e-8
    assert equivalent(best.expr, truth), str(best.expr)


def test_inverse_powers_need_a_one_signed_input_away_from_zero(rng):
    crossing = rng.uniform(-1, 1, size=(100, 1))
    near_zero = rng.uniform(1e-3, 1, size=(100, 1))
    assert "inverse-powers" not in dict(libraries(crossing))
    assert "inverse-powers" not in dict(libraries(near_zero))
    assert "inverse-powers" not in dict(libraries(rng.uniform(1, 2, size=(100, 3))))


def test_sparse_regression_generator_is_the_function_with_its_settings(rng):
    """The generator interface passes the library and deadline; its own fields are the
    family's settings (max_terms None: grows with the inputs, for static data)."""
    s = rng.uniform(0.5, 2, size=(200, 2))
    target = Target(("x", "y"), s, "values", np.sqrt(1 + s[:, 0] ** 2 * s[:, 1]))
    got = SparseRegression(transforms=True).generate(target, Options(library=["sin"]))
    want = regression_candidates(target, ["sin"], transforms=True)
    assert [(c.expr, c.source) for c in got] == [(c.expr, c.source) for c in want]
    assert max_terms_for(2) == 8 and max_terms_for(6) == 9 and max_terms_for(9) == 14
