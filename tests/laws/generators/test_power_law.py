"""Tests for pikan/laws/generators/power_law.py: power laws, their exponentials, splits."""

import numpy as np
import sympy

from pikan.laws.candidates import Target, fit_candidates, select
from pikan.laws.generators.base import Options
from pikan.laws.generators.power_law import (
    ExpPowerLaw,
    PowerLaw,
    PowerLawSplit,
    monomial_candidates,
    power_law_splits,
)
from pikan.laws.law import equivalent

x, y, z = sympy.symbols("x y z")


def _best(cands, target, tolerance=1e-9):
    return select(fit_candidates(cands, target, tolerance), tolerance)


def test_monomial_candidates_find_power_laws(rng):
    s = rng.uniform(1, 5, size=(300, 3))
    target = Target(("x", "y", "z"), s, "values", 2.5 * s[:, 0] * s[:, 1] ** 2 / np.sqrt(s[:, 2]))
    cands = monomial_candidates(target)
    assert cands[0].error < 1e-12
    coeff, rest = cands[0].expr.as_coeff_Mul()
    assert abs(float(coeff) - 2.5) < 1e-12 and rest == x * y**2 / sympy.sqrt(z)
    # values of both signs: no power law
    assert monomial_candidates(Target(("x",), s[:, :1], "values", s[:, 0] - 3)) == []


def test_exp_power_law_reads_a_boltzmann_factor(rng):
    s = rng.uniform(1, 2, size=(300, 2))
    target = Target(("h", "T"), s, "values", np.exp(-2 * s[:, 0] / s[:, 1]))
    assert PowerLaw().generate(target, Options()) == monomial_candidates(target)
    best = _best(ExpPowerLaw().generate(target, Options()), target)
    with np.errstate(invalid="ignore", over="ignore"):  # exp(-2 h/T) near T = 0
        assert equivalent(best.expr, "exp(-2*h/T)", up_to_constant=False, positive=True), \
            str(best.expr)


def test_power_law_split_solves_the_rest_in_fewer_inputs(rng):
    """``G m1 m2 / (d1**2 + d2**2)``: the power law in G, m1, m2 splits off; the rest is a
    problem in the coordinates alone, solved by the inner generators."""
    g = rng.uniform(1, 5, size=(800, 3))
    d = rng.uniform(-2, 2, size=(4000, 2))
    d = d[np.sum(d**2, axis=1) > 1][:800]
    s = np.column_stack([g, d])
    values = g[:, 0] * g[:, 1] * g[:, 2] / (d[:, 0] ** 2 + d[:, 1] ** 2)
    target = Target(("G", "m1", "m2", "u", "w"), s, "values", values)
    splits = power_law_splits(target)
    assert splits and splits[0][1] == [3, 4]
    cands = PowerLawSplit().generate(target, Options())
    assert cands and all(c.source.startswith("split:power-law*") for c in cands)
    best = _best(cands, target)
    assert equivalent(best.expr, "G*m1*m2/(u**2 + w**2)", up_to_constant=False), str(best.expr)
    assert PowerLawSplit(inner=()).generate(target, Options()) == []
