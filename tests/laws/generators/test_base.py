"""Tests for pikan/laws/generators/base.py: one interface for every candidate generator."""

import math

import numpy as np
import sympy
import torch

from pikan.laws.candidates import Deadline, Target
from pikan.laws.extract import EXTRACT_GENERATORS
from pikan.laws.find_law import FIND_LAW_GENERATORS
from pikan.laws.generators.base import EXACT, Candidate, Generator, Options, propose
from pikan.laws.generators.curve import Curve
from pikan.laws.generators.power_law import PowerLawSplit
from pikan.laws.generators.rational import Rational
from pikan.laws.generators.regression import SparseRegression


def _generators():
    found = [g for stages in (EXTRACT_GENERATORS, FIND_LAW_GENERATORS) for stage in stages
             for g in stage]
    found += [g for g in found if isinstance(g, PowerLawSplit) for g in g.inner]
    return list({type(g): g for g in found}.values())


def _targets(rng):
    s = rng.uniform(0.5, 1.5, size=(200, 2))
    values = Target(("a", "b"), s, "values", s[:, 0] ** 2 * np.sin(s[:, 1]))
    gradient = Target(("a", "b"), s, "gradient",
                      np.column_stack([2 * s[:, 0], np.cos(s[:, 1])]))
    return values, gradient


def test_every_default_generator_has_the_one_signature(rng):
    """Every generator of the default lists takes (target, options) and returns Candidate
    records, on value and gradient targets alike, with the optional inputs absent."""
    generators = _generators()
    names = {g.name for g in generators}
    assert {"regression", "rational", "power-law", "exp-power-law", "power-law-split",
            "varpro", "additive-model", "structure", "curve", "kan", "passive"} <= names
    for target in _targets(rng):
        for generator in generators:
            assert isinstance(generator, Generator)
            out = generator.generate(target, Options())
            assert isinstance(out, list)
            assert all(isinstance(c, Candidate) and isinstance(c.expr, sympy.Basic)
                       and isinstance(c.source, str) for c in out), generator


def test_generators_stop_at_an_expired_deadline(rng):
    """Only sparse regression proposes anything once the time is up (its first library,
    so that a law comes back at all)."""
    values, _ = _targets(rng)

    def fn(t):
        return t[:, 0] ** 2 * torch.sin(t[:, 1])

    options = Options(deadline=Deadline(0.0), function=fn)
    for generator in _generators():
        out = generator.generate(values, options)
        if generator.name in ("regression", "power-law", "exp-power-law"):
            continue  # the first library always runs; power laws take milliseconds
        assert out == [], generator


def test_propose_keeps_the_generators_order(rng):
    values, _ = _targets(rng)
    one = values.z[:, :1]
    curve = Target(("a",), one, "values", np.exp(-one[:, 0]))
    options = Options(seed=0)
    pooled = propose([Curve(), Curve(top=1)], curve, options)
    first = Curve().generate(curve, options)
    assert pooled[:len(first)] == first and len(pooled) == len(first) + 1
    assert all(math.isnan(c.error) and c.source.startswith("edge:") for c in pooled)
    assert Options().replace(seed=3, tolerance=1e-3) == Options(seed=3, tolerance=1e-3)


def test_propose_asks_no_generator_after_a_law_to_rounding(rng):
    """A rational law found exactly (velocity addition) ends the stage: sparse regression
    after it is never asked; on noisy values nothing is exact and every generator is."""
    z = rng.uniform(0.1, 0.7, size=(300, 2))
    added = (z[:, 0] + z[:, 1]) / (1 + z[:, 0] * z[:, 1])
    stage = [Rational(), SparseRegression(transforms=True)]
    exact = propose(stage, Target(("a", "b"), z, "values", added), Options())
    assert exact and all(c.source.startswith("rational") for c in exact)
    assert min(c.error for c in exact) <= EXACT
    noisy = added + rng.normal(0, 0.01 * added.std(), added.size)
    pooled = propose(stage, Target(("a", "b"), z, "values", noisy), Options())
    assert any(c.source.startswith("regression") for c in pooled)
