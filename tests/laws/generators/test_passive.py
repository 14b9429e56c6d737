"""Tests for pikan/laws/generators/passive.py: a passive Dissipation's own term sums."""

import numpy as np
import sympy

import pikan
from pikan.laws.candidates import Target
from pikan.laws.generators.base import Options
from pikan.laws.generators.passive import Passive, passive_candidates, passive_degrees

u, w = sympy.symbols("u w")


def test_passive_candidates_are_the_sums_of_the_blocks_terms(rng):
    """Every subset of the degrees; |z| without Abs where the degree is even or the input
    is never negative (a speed), per-input sums for several inputs."""
    signed = rng.uniform(-1, 1, size=(50, 1))
    exprs = [c.expr for c in passive_candidates(["u"], (2.0, 3.0), signed)]
    one = sympy.Float(1.0)
    assert exprs == [one * u**2, one * sympy.Abs(u) ** 3, one * u**2 + one * sympy.Abs(u) ** 3]
    speed = np.abs(signed)
    assert [c.expr for c in passive_candidates(["u"], (3.0,), speed)] == [one * u**3]
    two = passive_candidates(["u", "w"], (2.0,), rng.uniform(-1, 1, size=(50, 2)))
    assert {c.source for c in two} == {"passive:norm", "passive:per-input"}
    assert all(sympy.expand(c.expr - (u**2 + w**2)) == 0 for c in two)
    assert passive_candidates(["u"], (), signed) == []


def test_passive_generator_reads_the_degrees_from_the_options(rng):
    target = Target(("u",), rng.uniform(-1, 1, size=(50, 1)), "values", np.zeros(50))
    assert Passive().generate(target, Options()) == []
    cands = Passive().generate(target, Options(passive_degrees=(2.0,)))
    assert [c.source for c in cands] == ["passive:norm"]


def test_passive_degrees_only_for_a_passive_dissipation():
    system = pikan.System("drag", coords=["x"], modules=[
        pikan.Potential("V", inputs=["x"], law="x**2/2"),
        pikan.Dissipation("D", inputs=["v_x"], law="0.1*v_x**2/2")])
    model = pikan.compile(system.learn("D").learn("V"))
    assert passive_degrees(model.blocks["V"]) == ()
    assert passive_degrees(model.blocks["D"]) == (2.0, 3.0, 4.0)
