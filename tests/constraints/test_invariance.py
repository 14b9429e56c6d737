import math

import pytest
import sympy
import torch
from pikan.constraints import (
    Even,
    Odd,
    RotationInvariant,
    Symmetric,
    TranslationInvariant,
    feature_map,
    soft_penalty,
)

from pikan.errors import SpecError
from pikan.spec.system import Potential, System, chain_pairs

COORDS = ["x1", "y1", "x2", "y2"]


def _system(constraints, inputs=COORDS, law=None, coords=COORDS):
    return System("inv", coords=coords, modules=[
        Potential("V", inputs=inputs, hidden=[3], grid=4, constraints=constraints, law=law)])


def _rotate(q, angle, pairs):
    c, s = math.cos(angle), math.sin(angle)
    out = q.clone()
    for i, j in pairs:
        out[:, i] = c * q[:, i] - s * q[:, j]
        out[:, j] = s * q[:, i] + c * q[:, j]
    return out


def _shift(q, amount, columns):
    out = q.clone()
    out[:, columns] += amount
    return out


# constraints, the block's expected inputs, transformations the potential must not feel
HARD = {
    "one vector": ([RotationInvariant("x1", "y1")], ["x1_y1_sq", "x2", "y2"],
                   [lambda q: _rotate(q, 0.7, [(0, 1)]),
                    lambda q: q * torch.tensor([-1, 1, 1, 1])]),
    "two vectors": ([RotationInvariant(("x1", "y1"), ("x2", "y2"))],
                    ["x1_y1_sq", "x1_y1_dot_x2_y2", "x2_y2_sq"],
                    [lambda q: _rotate(q, -2.1, [(0, 1), (2, 3)])]),
    "translations": ([TranslationInvariant(("x1", "x2"), ("y1", "y2"))],
                     ["x2_minus_x1", "y2_minus_y1"],
                     [lambda q: _shift(q, 0.8, [0, 2]), lambda q: _shift(q, -1.3, [1, 3])]),
    "distance": ([TranslationInvariant(("x1", "x2"), ("y1", "y2")),
                  RotationInvariant(("x1", "y1"), ("x2", "y2"))],
                 ["x2_y2_minus_x1_y1_sq"],
                 [lambda q: _rotate(_shift(q, 0.5, [0, 2]), 1.1, [(0, 1), (2, 3)]),
                  lambda q: q[:, [2, 3, 0, 1]]]),
}


@pytest.mark.parametrize("case", list(HARD))
def test_hard_invariance_holds_at_init_and_after_training(case, states, fit, build):
    constraints, inputs, transforms = HARD[case]
    model = build(_system(constraints), seed=1)
    assert list(model.blocks["V"].input_names) == inputs
    q = states(64, 4, seed=5)
    v = torch.zeros_like(q)

    def check():
        energy = model.potential(q)
        for t in transforms:
            torch.testing.assert_close(model.potential(t(q)), energy, rtol=1e-10, atol=1e-12)
        for c in constraints:
            assert c.violation(model, q, v) < 1e-10

    check()
    target = -(q[:, :2] - 0.3) ** 2 + q[:, 2:]  # forces of no invariant potential
    fit(model, lambda: ((model.forces(q, v)["V"][:, :2] - target) ** 2).mean(), steps=25, lr=0.05)
    check()


def test_invariance_rewrites_bindings(states, build):
    """A bond law on chain bindings, fed differences: shifting the chain changes nothing."""
    coords = ["x1", "x2", "x3"]
    spec = System("chain", coords=coords, modules=[
        Potential("bond", inputs=["a", "b"], hidden=[3], grid=4,
                  bindings=chain_pairs(coords, expr={"a": "{a}", "b": "{b}"}),
                  constraints=[TranslationInvariant("a", "b")])])
    model = build(spec)
    block = model.blocks["bond"]
    assert block.input_names == ("b_minus_a",)
    assert [str(b["b_minus_a"]) for b in block.spec.bindings] == ["-x1 + x2", "-x2 + x3"]
    q = states(32, 3, seed=2)
    torch.testing.assert_close(model.potential(q + 0.9), model.potential(q), rtol=1e-12, atol=1e-12)
    expected = block(q[:, 1:2] - q[:, :1]) + block(q[:, 2:3] - q[:, 1:2])
    torch.testing.assert_close(model.potential(q), expected, rtol=1e-12, atol=1e-12)
    c = spec.modules[0].constraints[0]
    assert c.violation(model, q, q) < 1e-10


def test_feature_map_gives_invariants_in_the_original_names():
    spec = _system([TranslationInvariant(("x1", "x2"), ("y1", "y2")),
                    RotationInvariant(("x1", "y1"), ("x2", "y2"))])
    features = feature_map(spec.modules[0], spec)
    x1, y1, x2, y2 = sympy.symbols("x1 y1 x2 y2")
    assert list(features) == ["x2_y2_minus_x1_y1_sq"]
    assert sympy.expand(features["x2_y2_minus_x1_y1_sq"] - ((x2 - x1) ** 2 + (y2 - y1) ** 2)) == 0


def test_implied_symmetries_compose_with_invariance(states, build):
    """Even(x) and Symmetric(x, y) follow from rotation invariance of (x, y): accepted and
    measured exactly; the block carries no extra wrap."""
    constraints = [RotationInvariant("x1", "y1"), Even("x1"), Symmetric("x1", "y1"), Even("x2")]
    model = build(_system(constraints))
    assert [type(c).__name__ for c in model.blocks["V"].spec.constraints] == ["Even"]
    q = states(64, 4, seed=3)
    for c in constraints:
        assert c.violation(model, q, q) < 1e-10
    # particle exchange follows from the pair distance
    model = build(_system([*HARD["distance"][0], Symmetric(("x1", "y1"), ("x2", "y2"))]))
    assert Symmetric(("x1", "y1"), ("x2", "y2")).violation(model, q, q, module="V") < 1e-10


def test_law_modules_are_not_rewritten(states, build):
    model = build(_system([RotationInvariant("x1", "y1")], law="x1**2 + y1**2 + x2*y2"))
    assert model.blocks["V"].input_names == tuple(COORDS)
    q = states(64, 4, seed=3)
    assert RotationInvariant("x1", "y1").violation(model, q, q, module="V") < 1e-10
    model = build(_system([RotationInvariant("x1", "y1")], law="x1**2 + 2*y1**2"))
    assert RotationInvariant("x1", "y1").violation(model, q, q, module="V") > 0.1


def _soft_pair(constraint, target, states, fit, build, steps=100):
    q = states(96, 4, seed=2)
    v = torch.zeros_like(q)
    out = []
    for constraints in ([], [constraint]):
        model = build(_system(constraints), seed=0)
        block = model.blocks["V"]
        fit(model, lambda m=model, b=block: ((b(q) - target(q)) ** 2).mean()
            + soft_penalty(m, q, v),
            steps=steps, lr=0.03)
        out.append(constraint.violation(model, q, v, module="V"))
    return out


@pytest.mark.parametrize("constraint, target", [
    (RotationInvariant("x1", "y1", mode="soft", weight=30.0),
     lambda z: z[:, 0] ** 2 + z[:, 1] ** 2 + z[:, 2] + 0.3 * z[:, 0]),
    (TranslationInvariant("x1", "x2", mode="soft", weight=10.0),
     lambda z: (z[:, 2] - z[:, 0]) ** 2 + z[:, 1] + 0.3 * z[:, 0]),
])
def test_soft_invariance_lowers_violation_tenfold(constraint, target, states, fit, build):
    free, soft = _soft_pair(constraint, target, states, fit, build)
    assert free > 0.05
    assert soft < free / 10


def test_round_trip_and_forms():
    spec = _system([TranslationInvariant(("x1", "x2"), ("y1", "y2"), mode="soft", weight=2.0),
                    RotationInvariant(("x1", "y1"), ("x2", "y2"))])
    assert System.from_json(spec.to_json()) == spec
    assert RotationInvariant("x", "y") == RotationInvariant(("x", "y")) == RotationInvariant(
        vectors=[["x", "y"]])
    assert TranslationInvariant("a", "b") == TranslationInvariant(["a", "b"])


@pytest.mark.parametrize("make, match", [
    (lambda: _system([RotationInvariant("x1", "z")]), r"'z' is not an input"),
    (lambda: RotationInvariant(("x1", "y1"), ("x2",)), "one dimension"),
    (lambda: TranslationInvariant(("x1",)), "has one input"),
    (lambda: _system([RotationInvariant(("x1", "y1"), ("x2", "y2")), Even("x1")]),
     r"hard Even\(x1\) and a hard RotationInvariant.*mode='soft'"),
    (lambda: _system([RotationInvariant("x1", "y1"), Odd("x1")]), "odd function of them is zero"),
    (lambda: _system([TranslationInvariant("x1", "x2"), RotationInvariant("x1", "y1")]),
     "overlap in a way pikan cannot combine"),
    (lambda: _system([TranslationInvariant("x1", "x2"), TranslationInvariant("x2", "y2")]),
     "in two TranslationInvariant groups"),
])
def test_bad_invariance_specs_raise(make, match):
    with pytest.raises(SpecError, match=match):
        make()


def test_soft_and_hard_mix_is_allowed(states, build):
    """A soft symmetry on inputs a hard invariance rewrites is measured on the originals."""
    c = Even("x1", mode="soft")
    model = build(_system([RotationInvariant(("x1", "y1"), ("x2", "y2")), c]))
    q = states(64, 4, seed=3)
    assert 1e-3 < c.violation(model, q, q) < 10
