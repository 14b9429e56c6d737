import json

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
)

from pikan.inspect.check import check_constraints
from pikan.model.compile import compile
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError
from pikan.data.integrate import rk4
from pikan.spec.system import Dissipation, Potential, System


def _spec():
    coords = ["x1", "y1", "x2", "y2"]
    return System("two_body", coords=coords, params={"k": 1.0},
                  constraints=[Conserved("energy"), Conserved("momentum"),
                               Conserved("angular_momentum", mode="soft")],
                  modules=[
                      Potential("pair", inputs=coords, hidden=[2], grid=3, constraints=[
                          TranslationInvariant(("x1", "x2"), ("y1", "y2")),
                          RotationInvariant(("x1", "y1"), ("x2", "y2")),
                          Symmetric(("x1", "y1"), ("x2", "y2")), Positive()]),
                      # translation invariant, not rotation invariant: breaks angular momentum
                      Potential("tilt", inputs={"dx": "x2 - x1", "dy": "y2 - y1"}, hidden=[2],
                                grid=3, constraints=[Even("dx", mode="soft"),
                                                     Odd("dy", mode="soft"),
                                                     Monotonic("dy", weight=0.1)])])


def _data(model, steps=40, dt=0.01):
    g = torch.Generator().manual_seed(0)
    y0 = torch.rand(3, 8, generator=g) - 0.5
    with torch.no_grad():
        ys = rk4(model.vector_field, y0, torch.arange(steps + 1) * dt)
    return ys[..., :4], ys[..., 4:]


def test_report_has_a_row_per_constraint_with_model_and_data_measures():
    spec = _spec()
    model = compile(spec)
    q, v = _data(model)
    report = check_constraints(model, (q, v))
    assert [r.label for r in report] == [
        "pair: TranslationInvariant((x1, x2), (y1, y2))",
        "pair: RotationInvariant((x1, y1), (x2, y2))",
        "pair: Symmetric((x1, y1), (x2, y2))", "pair: Positive()",
        "tilt: Even(dx)", "tilt: Odd(dy)", "tilt: Monotonic(dy)",
        "system: Conserved(energy)", "system: Conserved(momentum)",
        "system: Conserved(angular_momentum)"]
    assert report.n_states == q.shape[0] * q.shape[1]
    for row in report:
        assert row.mode == ("soft" if row.where == "tilt" or "angular" in row.label else "hard")
        if row.mode == "hard":
            assert row.violation < 1e-10
    # the learned tilt (no hard constraints) is neither even nor odd
    assert report["tilt: Even(dx)"].violation > 1e-3
    assert report["tilt: Odd(dy)"].violation > 1e-3
    # energy is conserved by construction, momentum too: the data agree (RK4 error only)
    assert report["system: Conserved(energy)"].data_violation < 1e-6
    assert report["system: Conserved(momentum)"].data_violation < 1e-10
    # the tilt breaks rotation symmetry: a torque on the model and in the data
    assert report["system: Conserved(angular_momentum)"].violation > 1e-3
    assert report["system: Conserved(angular_momentum)"].data_violation > 1e-6
    assert all(r.data_violation is None for r in report if r.where != "system")
    text = str(report)
    assert text.splitlines()[0].split() == ["constraint", "where", "mode", "model", "data"]
    assert "Conserved(energy)" in text and "tilt" in text
    json.dumps(report.to_dict())
    assert report.worst("hard") < 1e-10 < report.worst()


def test_trajectories_subsets_and_errors():
    spec = System("damped", coords=["x"], modules=[
        Potential("V", inputs=["x"], hidden=[2], grid=3, constraints=[Even("x")]),
        Dissipation("D", inputs=["v_x"], law="0.5*v_x**2", constraints=[Even("v_x")])])
    model = compile(spec)
    t = np.linspace(0, 1, 50)
    data = Trajectories.from_arrays(t, np.sin(t)[None, :, None], np.cos(t)[None, :, None],
                                    coords=["x"])
    report = check_constraints(model, data, max_states=20)
    assert report.n_states == 20 and len(report) == 2
    assert report["V: Even(x)"].violation < 1e-10
    assert report["D: Even(v_x)"].violation < 1e-10
    with pytest.raises(DataError):
        check_constraints(model, Trajectories.from_arrays(t, t[:, None], t[:, None],
                                                         coords=["y"]))
    with pytest.raises(DataError):
        check_constraints(model, "states")


def test_default_constraints_are_reported_when_the_model_applies_them():
    spec = System("drag", coords=["x"], modules=[
        Potential("V", inputs=["x"], law="x**2/2"),
        Dissipation("D", inputs=["v_x"], hidden=[2], grid=3)])
    model = compile(spec)
    q = torch.linspace(-1, 1, 20)[:, None]
    applied = any(isinstance(c, Positive) for c in model.blocks["D"].spec.constraints)
    rows = list(check_constraints(model, (q, q)))
    assert len(rows) == (1 if applied else 0)
    if applied:
        assert rows[0].default and rows[0].violation == 0.0
        assert "[default]" in str(check_constraints(model, (q, q)))
