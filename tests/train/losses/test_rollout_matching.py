"""Rollout matching (pikan/train/losses/rollout_matching.py): the integrators through
windows, the box, the loss and its gradient, the window and integrator choices."""

import numpy as np
import pytest
import torch

from pikan.data.integrate import simulate
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError
from pikan.model.compile import compile
from pikan.spec.system import Dissipation, Potential, System
from pikan.train import losses


def window_tensors(data, length, stride):
    windows = data.windows(length, stride=stride)
    return (torch.tensor(x) for x in (windows.t, windows.q, windows.v))


def test_rollout_of_the_truth_reproduces_the_data(clean, oscillator_spec):
    truth = compile(oscillator_spec)
    t, q, v = window_tensors(clean, 21, 20)
    for method, tol in (("rk4", 1e-9), ("verlet", 1e-4)):
        q_hat, v_hat = losses.rollout(truth, q[:, 0], v[:, 0], t, method)
        assert q_hat.shape == q.shape
        assert float((q_hat - q).abs().max()) < tol
        assert float((v_hat - v).abs().max()) < 10 * tol
    loss = losses.rollout_loss(truth, q, v, t, losses.coordinate_scale(q.reshape(-1, 1)),
                               losses.coordinate_scale(v.reshape(-1, 1)))
    assert float(loss) < 1e-18


def test_rollout_orders_of_accuracy(clean, oscillator_spec):
    # halving the step divides the worst error by ~4 for Verlet and ~16 for RK4
    truth = compile(oscillator_spec)
    record = clean[0]
    errors = {}
    for every in (16, 8):
        t = torch.tensor(record.t[::every])[None]
        q0, v0 = torch.tensor(record.q[:1]), torch.tensor(record.v[:1])
        for method in ("rk4", "verlet"):
            q_hat, _ = losses.rollout(truth, q0, v0, t, method)
            errors[method, every] = float((q_hat[0] - torch.tensor(record.q[::every])).abs().max())
    assert 3.5 < errors["verlet", 16] / errors["verlet", 8] < 4.5
    assert 13.0 < errors["rk4", 16] / errors["rk4", 8] < 19.0


def test_rollout_loss_gradient_reaches_the_law_constant(clean, oscillator_spec):
    # a trainable stiffness: the rollout gradient matches finite differences
    t, q, v = window_tensors(clean, 11, 10)
    scale = losses.coordinate_scale(q.reshape(-1, 1))

    def loss_at(c):
        model = compile(oscillator_spec.learn("V", hidden=[], grid=3))
        model.fix("V", f"{c}*x**2", trainable=True)  # true c = k/2 = 1
        return model, losses.rollout_loss(model, q, v, t, scale)

    model, loss = loss_at(0.75)
    loss.backward()
    (grad,) = [p.grad for p in model.parameters() if p.grad is not None]
    h = 1e-6
    numeric = (float(loss_at(0.75 + h)[1].detach()) - float(loss_at(0.75 - h)[1].detach())) / (2 * h)
    assert float(grad.sum()) == pytest.approx(numeric, rel=1e-5)
    assert numeric < 0


def test_the_rollout_box_holds_forces_off_the_data_and_changes_nothing_on_it(clean,
                                                                             oscillator_spec):
    # x'' = 4 x**3 runs away in finite time (t = 0.93 from x = 1 at rest)
    runaway = compile(System("runaway", coords=["x"], modules=[Potential("V", ["x"], law="-x**4")]))
    q0, v0 = torch.tensor([[1.0]]), torch.tensor([[0.0]])
    t = torch.linspace(0, 3, 61, dtype=torch.float64)[None]
    for method in ("rk4", "verlet"):
        q, _ = losses.rollout(runaway, q0, v0, t, method)
        assert not bool(torch.isfinite(q).all())
        box = (torch.tensor([-1.5, -2.0]), torch.tensor([1.5, 2.0]))
        q, v = losses.rollout(runaway, q0, v0, t, method, box)
        # past the face the force is held at 4 * 1.5**3 = 13.5 (and for RK4 the velocity
        # that moves q at 2): finite, and still running away from the data
        assert bool(torch.isfinite(q).all()) and float(q[0, -1, 0]) > 5
    truth = compile(oscillator_spec)
    t, q, v = window_tensors(clean, 21, 20)
    box = losses.state_box(q, v)
    assert box[0].shape == (2,) and bool((box[0] < q.min()).all())
    free = losses.rollout(truth, q[:, 0], v[:, 0], t, "rk4")
    boxed = losses.rollout(truth, q[:, 0], v[:, 0], t, "rk4", box)
    assert torch.equal(free[0], boxed[0]) and torch.equal(free[1], boxed[1])


def test_the_window_covers_a_quarter_period_and_fits_the_shortest_trajectory(oscillator_spec):
    # over several periods std(v)/std(q) reads the frequency omega = sqrt(k) = sqrt(2)
    data = simulate(oscillator_spec, n_trajectories=3, t=(0, 20), dt=0.01, seed=2)
    length, every, reason = losses.rollout_window(data)
    quarter = 0.25 * 2 * np.pi / np.sqrt(2.0)
    assert length == 16 and "16 points" in reason
    assert (length - 1) * every * 0.01 == pytest.approx(quarter, abs=0.01 * 15 / 2)
    first = data[0]
    short = Trajectories.from_arrays(first.t[:40], first.q[:40], v=first.v[:40], coords=["x"])
    length, every, _ = losses.rollout_window(short, length=8)
    assert length == 8 and (length - 1) * every + 1 <= 40
    with pytest.raises(DataError, match="at least 2 points"):
        losses.rollout_window(data, length=1)


def test_verlet_applies_only_when_accelerations_ignore_velocities(oscillator_spec):
    assert losses.velocity_free(compile(oscillator_spec))
    damped = oscillator_spec.replace(modules=[*oscillator_spec.modules,
                                              Dissipation("D", inputs=["v_x"], law="v_x**2/4")])
    assert not losses.velocity_free(compile(damped))


def test_the_kind_reads_windows_and_gives_the_function(clean, oscillator_spec):
    kind = losses.RolloutLoss("verlet", length=6, every=4)
    assert not kind.needs_derivatives(clean)
    positions = Trajectories.from_arrays([r.t for r in clean], [r.q for r in clean],
                                         coords=["x"])
    assert kind.needs_derivatives(positions)
    samples = kind.samples(clean)
    windows = clean.windows(21, stride=4)
    np.testing.assert_array_equal(samples["t"], windows.t[:, ::4])
    np.testing.assert_array_equal(samples["q"], windows.q[:, ::4])
    assert samples["q"].shape[1:] == (6, 1)
    train = {k: torch.as_tensor(x) for k, x in samples.items()}
    q, v, _ = (torch.as_tensor(x) for x in clean.states())
    estimated = kind.scales(train, q, v, measured_velocities=False)
    assert list(estimated) == ["q", "box_lo", "box_hi"]
    measured = kind.scales(train, q, v, measured_velocities=True)
    assert torch.equal(measured["v"], losses.coordinate_scale(v))
    assert torch.equal(measured["box_lo"], losses.state_box(train["q"], train["v"])[0])
    batch = {k: x[5:12] for k, x in train.items()}
    stiff = compile(oscillator_spec.replace(params={"k": 3.0}))
    box = (measured["box_lo"], measured["box_hi"])
    assert torch.equal(kind(stiff, batch, measured),
                       losses.rollout_loss(stiff, batch["q"], batch["v"], batch["t"],
                                           measured["q"], measured["v"], "verlet", box))
    sq, sv, st = kind.states(batch)
    assert torch.equal(sq, batch["q"][:, 0]) and torch.equal(sv, batch["v"][:, 0])
    assert torch.equal(st, batch["t"][:, 0])
