"""Tests for pikan/laws/generators/separability.py: separability tests and the pieces they
split functions into."""

import numpy as np
import sympy
import torch

from pikan.laws.candidates import Target, fit_candidates, select
from pikan.laws.generators.base import Options
from pikan.laws.generators.separability import (
    Separability,
    _integrate,
    additive_coupling,
    coupling,
    derivatives,
    groups,
    multiplicative_coupling,
    structure_candidates,
)
from pikan.laws.law import equivalent

x, y, z = sympy.symbols("x y z")


def _best(cands, target, tolerance=1e-9):
    return select(fit_candidates(cands, target, tolerance), tolerance)


def test_derivatives_match_closed_forms(rng):
    s = rng.uniform(-1, 1, size=(50, 2))
    d = derivatives(lambda t: t[:, 0] ** 2 * torch.sin(t[:, 1]), s)
    a, b = s.T
    np.testing.assert_allclose(d.f, a**2 * np.sin(b), rtol=1e-14)
    np.testing.assert_allclose(d.g, np.stack([2 * a * np.sin(b), a**2 * np.cos(b)], 1),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d.h[:, 0, 1], 2 * a * np.cos(b), rtol=1e-12)
    np.testing.assert_allclose(d.h[:, 1, 1], -(a**2) * np.sin(b), rtol=1e-12, atol=1e-14)


def test_coupling_and_groups_find_the_separable_blocks(rng):
    s = rng.uniform(-1, 1, size=(300, 3))
    d = derivatives(lambda t: t[:, 0] * t[:, 1] + torch.cos(t[:, 2]), s)
    c = coupling(d.g, d.h, s)
    assert c[0, 1] > 0.3 and c[0, 2] < 1e-12 and c[1, 2] < 1e-12
    assert groups(c) == [[0, 1], [2]]
    assert groups(np.zeros((3, 3))) == [[0], [1], [2]]


def test_integrate_recovers_a_function_from_its_derivative(rng):
    s = rng.uniform(-2, 2, size=2000)
    values = _integrate(s, 3 * s**2)
    np.testing.assert_allclose(values - values.mean(), s**3 - (s**3).mean(), atol=1e-4)


def test_structure_splits_a_product_with_a_frequency_no_library_term_has(rng):
    s = rng.uniform(-1, 1, size=(800, 2))

    def fn(t):
        return torch.exp(torch.sin(np.pi * t[:, 0]) + t[:, 1] ** 2)

    target = Target(("x", "y"), s, "values", fn(torch.tensor(s)).numpy())
    cands = structure_candidates(fn, s, ["x", "y"], "values")
    assert {c.source for c in cands} == {"structure:multiplicative"}
    best = _best(cands, target)
    assert best.expr == sympy.exp(sympy.sin(sympy.pi * x) + y**2)


def test_structure_pieces_of_a_potential_on_gradients(rng):
    s = rng.uniform(-1.5, 1.5, size=(800, 3))

    def fn(t):
        return 1 - torch.cos(2 * t[:, 0]) + t[:, 1] ** 2 * t[:, 2] ** 2

    d = derivatives(fn, s)
    target = Target(("x", "y", "z"), s, "gradient", d.g)
    cands = structure_candidates(fn, s, ["x", "y", "z"], "gradient")
    best = _best(cands, target)
    assert sympy.simplify(best.expr - (-sympy.cos(2 * x) + y**2 * z**2)) == 0


def test_structure_recurses_into_the_remainder_of_a_split(rng):
    s = rng.uniform(1, 3, size=(800, 3))

    def fn(t):
        return t[:, 0] * (t[:, 1] + torch.sin(t[:, 2]))

    target = Target(("x", "y", "z"), s, "values", fn(torch.tensor(s)).numpy())
    best = _best(structure_candidates(fn, s, ["x", "y", "z"], "values"), target)
    assert best.error < 1e-9
    assert sympy.simplify(best.expr - x * (y + sympy.sin(z))) == 0


def test_structure_pieces_with_a_rate_and_a_shift(rng):
    """A Morse piece and a soft-core piece of a 3-input potential: the one-input pieces
    get the scanned rate and shift of :mod:`pikan.laws.generators.varpro` (no library term
    has them)."""
    s = np.column_stack([rng.uniform(0.62, 1.35, 800), rng.uniform(0.5, 1.5, 800),
                         rng.uniform(-1, 1, 800)])

    def fn(t):
        return (1.73 * (1 - torch.exp(-1.37 * (t[:, 0] - 0.83))) ** 2
                + 0.61 / (t[:, 1] ** 2 + 0.43) + t[:, 2] ** 2)

    d = derivatives(fn, s)
    target = Target(("x", "y", "z"), s, "gradient", d.g)
    best = _best(structure_candidates(fn, s, ["x", "y", "z"], "gradient"), target)
    truth = 1.73 * (1 - sympy.exp(-1.37 * (x - 0.83))) ** 2 + 0.61 / (y**2 + 0.43) + z**2
    assert equivalent(best.expr, truth), str(best.expr)


def test_multiplicative_coupling_is_the_coupling_of_log_f(rng):
    """Zero for a product, also one that changes sign (samples near a zero of f are left
    out); the same as the additive coupling of log f where f keeps one sign."""
    s = rng.uniform(-1, 1, size=(500, 2))

    def product(t):
        return t[:, 0] * torch.cos(t[:, 1])

    assert multiplicative_coupling(derivatives(product, s), s)[0, 1] < 1e-10
    assert additive_coupling(derivatives(product, s), s)[0, 1] > 0.3
    positive = rng.uniform(0.5, 2, size=(500, 2))

    def f(t):
        return (1 + t[:, 0] ** 2) * t[:, 1] + t[:, 0]

    def log_f(t):
        return torch.log(f(t))

    np.testing.assert_allclose(multiplicative_coupling(derivatives(f, positive), positive),
                               additive_coupling(derivatives(log_f, positive), positive),
                               rtol=1e-10, atol=1e-14)
    assert np.all(multiplicative_coupling(derivatives(lambda t: 0 * t[:, 0], s), s) == 0)


def test_structure_generator_needs_a_function(rng):
    s = rng.uniform(-1, 1, size=(300, 2))
    target = Target(("x", "y"), s, "values", np.sin(2 * s[:, 0]) + s[:, 1] ** 3)
    assert Separability().generate(target, Options()) == []

    def fn(t):
        return torch.sin(2 * t[:, 0]) + t[:, 1] ** 3

    cands = Separability().generate(target, Options(function=fn))
    assert cands and {c.source for c in cands} <= {"structure:additive",
                                                    "structure:multiplicative"}
    assert equivalent(_best(cands, target).expr, "sin(2*x) + y**3", up_to_constant=False)
