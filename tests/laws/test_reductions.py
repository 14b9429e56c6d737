"""Pair reductions found on the samples (pikan.laws.reductions)."""

import numpy as np
import pytest
import sympy

from pikan.laws.candidates import Target
from pikan.laws.reductions import Reduction, reductions, roughness


def _target(names, ranges, fn, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    z = np.column_stack([rng.uniform(lo, hi, 800) for lo, hi in ranges])
    y = fn(*z.T)
    y = y + noise * np.std(y) * rng.standard_normal(y.size)
    return Target(tuple(names), z, "values", y)


@pytest.mark.parametrize("names, ranges, fn, expected", [
    (["n1", "n2"], [(1, 2), (1, 2)], lambda a, b: np.arctan(b / a), "ratio"),
    (["E", "mu", "kT"], [(1, 5), (1, 5), (1, 3)],
     lambda e, mu, t: 1 / (np.exp((e - mu) / t) + 1), "difference"),
    (["m", "lam", "d"], [(1, 3), (0.1, 0.3), (1, 2)],
     lambda m, lam, d: np.arcsin(m * lam / d), None),
    (["a", "b", "c"], [(1, 2), (1, 2), (1, 2)], lambda a, b, c: np.sin(a * b) + c, "product"),
    (["x1", "x2"], [(0, 1), (0, 1)], lambda a, b: np.cos(3 * (a + b)), "sum"),
])
def test_the_reduction_a_law_has_is_found(names, ranges, fn, expected):
    target = _target(names, ranges, fn)
    found = reductions(target, max_keep=4)
    assert found, "no reduction found"
    best = found[0]
    if expected is not None:
        assert best.operation == expected
    reduced = best.reduce(target, "u")
    assert reduced.z.shape[1] == len(names) - 1
    assert roughness(reduced.z, reduced.y) < 0.5 * roughness(target.z, target.y)


def test_a_law_of_both_inputs_has_no_reduction():
    target = _target(["r", "g"], [(1.5, 3), (1.2, 2)], lambda r, g: 1 - r ** (1 - g))
    assert reductions(target) == []
    # noise at the level of the neighbours' differences hides a reduction: none is claimed
    noisy = _target(["n1", "n2"], [(1, 2), (1, 2)], lambda a, b: np.arctan(b / a), noise=0.3)
    assert reductions(noisy) == []


def test_ratios_come_both_ways_up_and_map_back():
    target = _target(["n1", "n2"], [(1, 2), (1, 2)], lambda a, b: np.arctan(b / a))
    found = reductions(target)
    assert {(r.i, r.j) for r in found} == {(0, 1), (1, 0)}
    assert Reduction("ratio", 1, 0).expr(["n1", "n2"]) == sympy.sympify("n2/n1")
    assert Reduction("difference", 0, 1).expr(["a", "b"]) == sympy.sympify("a - b")
    assert np.allclose(Reduction("sum", 0, 1).values(np.array([[1.0, 2.0]])), [3.0])


def test_signed_inputs_are_not_divided():
    target = _target(["a", "b"], [(-1, 1), (1, 2)], lambda a, b: a / b)
    assert all(r.operation != "ratio" and r.operation != "product"
               for r in reductions(target, max_keep=8))
