"""Tests for pikan/laws/generators/saturating.py: polynomial terms over ``1 + h z``."""

import numpy as np
import pytest
import sympy

from pikan.laws.candidates import Target
from pikan.laws.generators.base import Options
from pikan.laws.generators.saturating import Saturating, saturating_candidates
from pikan.laws.law import equivalent

HOLLING = ("x*(1 - x/6.3) - 1.3*x*y/(1 + 0.7*x)", "0.61*x*y/(1 + 0.7*x) - 0.37*y")


def _samples(rng, n=2000):
    return rng.uniform(0.5, 4.0, size=(n, 2))


@pytest.mark.parametrize("law", [*HOLLING, "2.3*s/(1 + 0.45*s) + 0.1*x", "-0.9*x*y/(1 + 1.7*y)"])
def test_a_saturating_rate_is_found_with_its_constants(rng, law):
    z = _samples(rng)
    names = ("x", "y") if "s" not in law else ("s", "x")
    f = sympy.lambdify(sympy.symbols(names), sympy.sympify(law), "numpy")
    target = Target(names, z, "values", f(z[:, 0], z[:, 1]))
    found = saturating_candidates(target)
    assert found and all(c.source.startswith("saturating:") for c in found)
    best = min(found, key=lambda c: c.error)
    assert best.error < 1e-6
    # the same function (the form may differ: -0.53 x + 0.53 x/(1 + 1.7 y) is -0.9 x y/(1 +
    # 1.7 y)) on fresh samples of the range
    fresh = _samples(np.random.default_rng(7), 500)
    got = sympy.lambdify(sympy.symbols(names), best.expr, "numpy")(fresh[:, 0], fresh[:, 1])
    want = f(fresh[:, 0], fresh[:, 1])
    assert np.max(np.abs(got - want)) < 1e-5 * np.max(np.abs(want)), best.expr


def test_window_averages_of_a_saturating_rate_give_the_rate(rng):
    # a target known only as weighted means over windows: the design is averaged the same way
    z = _samples(rng, 1000)
    x, y = z.T
    values = 0.61 * x * y / (1 + 0.7 * x) - 0.37 * y
    weights = rng.uniform(0.1, 1.0, size=(100, 10))
    weights /= weights.sum(axis=1, keepdims=True)
    average = np.zeros((100, 1000))
    average[np.repeat(np.arange(100), 10), np.arange(1000)] = weights.ravel()
    target = Target(("x", "y"), z, "values", average @ values, average=average)
    best = min(Saturating().generate(target, Options()), key=lambda c: c.error)
    assert best.error < 1e-6 and equivalent(best.expr, HOLLING[1], rtol=1e-4)


def test_no_candidates_where_the_family_cannot_apply(rng):
    z = _samples(rng)
    values = z[:, 0] ** 2
    assert saturating_candidates(Target(("x", "y"), z, "gradient",
                                        np.stack([2 * z[:, 0], 0 * z[:, 0]], 1))) == []
    assert saturating_candidates(Target(("x", "y"), z, "values", values),
                                 library=["sin", "exp"]) == []  # the library has no 1/x
    signed = z - 2.0  # no input keeps one sign: no denominator stays away from 0
    assert saturating_candidates(Target(("x", "y"), signed, "values", values)) == []


def test_a_positive_input_measured_with_noise_near_zero_still_takes_a_denominator(rng):
    # a prey population near extinction: noise takes a few samples just below 0
    z = np.concatenate([_samples(rng, 1500), rng.uniform(0.0, 0.1, size=(100, 2))])
    y = z[:, 1]
    noisy = z + rng.normal(0, 0.03, size=z.shape) * np.array([1.0, 0.0])
    assert noisy[:, 0].min() < 0
    values = 0.61 * noisy[:, 0] * y / (1 + 0.7 * noisy[:, 0]) - 0.37 * y
    found = saturating_candidates(Target(("x", "y"), noisy, "values", values))
    assert any(c.source == "saturating:x" and c.error < 1e-6 for c in found)
