import pytest
import torch
from pikan.constraints import (
    Even,
    Monotonic,
    Positive,
    RotationInvariant,
    default_constraints,
    module_function,
    soft_penalty,
)

from pikan.errors import SpecError
from pikan.spec.system import Dissipation, Dynamics, Potential, System


def _system(constraints, inputs=("x", "y"), law=None):
    return System("out", coords=["x", "y"], modules=[
        Potential("V", inputs=list(inputs), hidden=[3], grid=4, constraints=constraints, law=law)])


@pytest.mark.parametrize("constraints", [
    [Positive()],
    [Positive(transform="square")],
    [Even("x"), Positive()],          # composition, either order
    [Positive(), Even("x")],
    [RotationInvariant("x", "y"), Positive()],
])
def test_hard_positive_holds_at_init_and_after_training(constraints, states, fit, build):
    model = build(_system(constraints), seed=2)
    block = module_function(model, "V")  # on (x, y) even when the block is fed x**2 + y**2
    q = states(128, 2, seed=1, low=-2.0, high=2.0)

    def check():
        out = block(q)
        assert float(out.min()) >= 0.0
        for c in constraints:
            assert c.violation(model, q, q) < 1e-10

    check()
    target = q[:, 0] - 0.5  # mostly negative where x < 0.5: pulls the block down
    fit(model, lambda: ((block(q)[:, 0] - target) ** 2).mean(), steps=30, lr=0.05)
    check()
    if any(isinstance(c, Even) for c in constraints):  # and still even
        flipped = q * torch.tensor([-1.0, 1.0])
        torch.testing.assert_close(block(flipped), block(q), rtol=1e-12, atol=1e-12)


def _soft_pair(constraint, target, states, fit, build, inputs=("x", "y"), steps=100):
    q = states(96, 2, seed=2)
    out = []
    for constraints in ([], [constraint]):
        model = build(_system(constraints, inputs=inputs), seed=0)
        block = model.blocks["V"]
        fit(model, lambda m=model, b=block: ((b(q) - target(q)) ** 2).mean()
            + soft_penalty(m, q, q),
            steps=steps, lr=0.03)
        out.append(constraint.violation(model, q, q, module="V"))
    return out


def test_soft_positive_lowers_violation_tenfold(states, fit, build):
    free, soft = _soft_pair(Positive(mode="soft", weight=100.0),
                            lambda z: z[:, 0] ** 2 + z[:, 1] ** 2 - 0.3, states, fit, build)
    assert free > 0.05
    assert soft < free / 10


def test_soft_monotonic_lowers_violation_tenfold(states, fit, build):
    free, soft = _soft_pair(Monotonic("x", weight=30.0),
                            lambda z: z[:, 0] + 0.5 * torch.sin(4 * z[:, 0]) + z[:, 1],
                            states, fit, build)
    assert free > 0.05
    assert soft < free / 10


def test_monotonic_measures_the_sign_of_the_slope(states, build):
    q = states(64, 2)
    up = build(_system([Monotonic("x")], law="x**3 + y"))
    assert Monotonic("x").violation(up, q, q, module="V") == 0.0
    assert Monotonic("x", increasing=False).violation(up, q, q, module="V") == pytest.approx(1.0)
    wavy = build(_system([], law="x + sin(6*x)"))
    assert 0.1 < Monotonic("x").violation(wavy, q, q, module="V") < 1.0


def test_positive_measure_is_the_relative_negative_part(states, build):
    q = states(64, 2)
    model = build(_system([], law="x"))  # half the samples negative, symmetric
    violation = Positive().violation(model, q, q, module="V")
    expected = float(torch.relu(-q[:, 0]).pow(2).mean().sqrt() / q[:, 0].pow(2).mean().sqrt())
    assert violation == pytest.approx(expected, rel=1e-12)


def test_dissipation_is_positive_by_default():
    learned = Dissipation("D", inputs=["v_x"])
    assert default_constraints(learned) == (Positive(),)
    assert default_constraints(learned.replace(constraints=[Positive(transform="square")])) == ()
    assert default_constraints(Dissipation("D", inputs=["v_x"], law="v_x**2/2")) == ()
    assert default_constraints(Potential("V", inputs=["x"])) == ()


@pytest.mark.parametrize("make, match", [
    (lambda: System("d", coords=["x", "y"], modules=[
        Dynamics("F", inputs=["x"], outputs=["x", "y"], constraints=[Positive()])]),
     r"Positive\(\) applies to scalar modules"),
    (lambda: Positive(transform="exp"), "transform"),
    (lambda: Monotonic("x", mode="hard"), "no hard version"),
    (lambda: _system([Monotonic("z")]), "'z' is not an input"),
    (lambda: _system([Monotonic("x"), Even("x")]), "constant in x"),
    (lambda: _system([Monotonic("x"), Monotonic("x", increasing=False)]), "constant in x"),
])
def test_bad_output_specs_raise(make, match):
    with pytest.raises(SpecError, match=match):
        make()


def test_round_trip():
    spec = _system([Positive(transform="square", mode="soft", weight=0.5),
                    Monotonic("y", increasing=False, weight=2.0)])
    back = System.from_json(spec.to_json())
    assert back == spec
    assert [c.label for c in back.modules[0].constraints] == ["Positive()",
                                                              "Monotonic(y, decreasing)"]
