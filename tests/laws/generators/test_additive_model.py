"""Tests for pikan/laws/generators/additive_model.py: the additive spline model."""

import numpy as np
import sympy

from pikan.laws.candidates import Deadline, Target, fit_candidates, select
from pikan.laws.generators.additive_model import AdditiveModel, additive_model_candidates
from pikan.laws.generators.base import Options

x, y = sympy.symbols("x y")


def _best(cands, target, tolerance=1e-9):
    return select(fit_candidates(cands, target, tolerance), tolerance)


def test_additive_model_splits_samples_without_a_surrogate(rng):
    s = rng.uniform(-1, 1, size=(1000, 2))
    values = np.exp(np.sin(np.pi * s[:, 0]) + s[:, 1] ** 2)
    target = Target(("x", "y"), s, "values", values)
    cands = additive_model_candidates(target)
    assert cands and all(c.source == "structure:additive-model:log" for c in cands)
    assert _best(cands, target).expr == sympy.exp(sympy.sin(sympy.pi * x) + y**2)
    coupled = Target(("x", "y"), s, "values", np.sin(3 * s[:, 0] * s[:, 1]))
    assert additive_model_candidates(coupled) == []


def test_additive_model_generator_needs_values_of_two_inputs_and_time(rng):
    s = rng.uniform(-1, 1, size=(300, 2))
    target = Target(("x", "y"), s, "values", np.sin(s[:, 0]) + s[:, 1] ** 2)
    assert AdditiveModel().generate(target, Options(deadline=Deadline(0.0))) == []
    one = Target(("x",), s[:, :1], "values", np.sin(s[:, 0]))
    assert AdditiveModel().generate(one, Options()) == []
    cands = AdditiveModel().generate(target, Options())
    assert _best(cands, target).expr == sympy.sin(x) + y**2
