"""The package surface: declared constraints, the summed soft penalty, shared helpers."""

import numpy as np
import pytest
import torch
from pikan.constraints import (
    Conserved,
    Even,
    Monotonic,
    Odd,
    Positive,
    RotationInvariant,
    Symmetric,
    TranslationInvariant,
    declared,
    soft_penalty,
)
from pikan.constraints.base import attached_module, trajectories

from pikan.model.compile import compile
from pikan.errors import DataError, SpecError
from pikan.spec.system import Dissipation, Potential, System


def _spec():
    return System("lib", coords=["x", "y"], constraints=[Conserved("energy", mode="soft",
                                                                   weight=0.5)],
                  modules=[Potential("V", inputs=["x", "y"], hidden=[2], grid=3,
                                     constraints=[Even("x", mode="soft", weight=2.0), Even("y")]),
                           Potential("W", inputs=["x"], hidden=[2], grid=3,
                                     constraints=[Even("x", mode="soft", weight=2.0)])])


def test_declared_lists_module_then_system_constraints():
    spec = _spec()
    assert [(m, c.label) for m, c in declared(spec)] == [
        ("V", "Even(x)"), ("V", "Even(y)"), ("W", "Even(x)"), (None, "Conserved(energy)")]
    drag = System("d", coords=["x"], modules=[Dissipation("D", inputs=["v_x"])])
    assert declared(drag) == []
    assert declared(drag, defaults=True) == [("D", Positive())]


def test_soft_penalty_is_the_weighted_sum_of_soft_penalties():
    spec = _spec()
    model = compile(spec)
    g = torch.Generator().manual_seed(0)
    q, v = torch.randn(32, 2, generator=g), torch.randn(32, 2, generator=g)
    even = spec.modules[0].constraints[0]
    expected = (2.0 * even.penalty(model, q, v, module="V")
                + 2.0 * even.penalty(model, q, v, module="W")
                + 0.5 * spec.constraints[0].penalty(model, q, v))
    total = soft_penalty(model, q, v)
    torch.testing.assert_close(total, expected)
    assert float(total.detach()) > 0
    total.backward()  # differentiable in the parameters
    grads = [p.grad for p in model.blocks["V"].parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0


def test_a_constraint_on_two_modules_needs_the_module_name():
    spec = _spec()
    model = compile(spec)
    even = Even("x", mode="soft", weight=2.0)
    q = torch.zeros(4, 2)
    with pytest.raises(SpecError, match="several modules"):
        even.violation(model, q, q)
    with pytest.raises(SpecError, match="not attached"):
        Odd("x").violation(model, q, q)
    assert attached_module(model, Even("y"), None) == "V"
    with pytest.raises(DataError, match="shape"):
        Even("y").violation(model, torch.zeros(4, 3), torch.zeros(4, 3))


def test_every_constraint_round_trips_through_json():
    coords = ["x1", "y1", "x2", "y2"]
    spec = System("all", coords=coords,
                  constraints=[Conserved("momentum", groups=[("x1", "x2"), ("y1", "y2")]),
                               Conserved("angular_momentum", mode="soft", weight=0.1),
                               Conserved("energy")],
                  modules=[Potential("V", inputs=coords, constraints=[
                      TranslationInvariant(("x1", "x2"), ("y1", "y2")),
                      RotationInvariant(("x1", "y1"), ("x2", "y2")),
                      Symmetric(("x1", "y1"), ("x2", "y2")), Positive(transform="square")]),
                      Potential("U", inputs={"d": "x2 - x1"}, constraints=[
                          Odd("d", mode="soft"), Monotonic("d", increasing=False)])])
    back = System.from_json(spec.to_json())
    assert back == spec
    assert hash(back) == hash(spec)


def test_trajectories_from_tuples():
    q = np.arange(12.0).reshape(6, 2)
    assert trajectories((q, q)) is None
    runs = trajectories((q, q, [0, 0, 1, 1, 1, 0]))
    assert [r[0].shape for r in runs] == [(3, 2), (3, 2)]
    runs = trajectories((q.reshape(3, 2, 2), q.reshape(3, 2, 2)))
    assert len(runs) == 2 and runs[1][0].tolist() == [[2.0, 3.0], [6.0, 7.0], [10.0, 11.0]]
    with pytest.raises(DataError):
        trajectories([q])
