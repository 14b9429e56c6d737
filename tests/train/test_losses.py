import numpy as np
import pytest
import torch
from pikan.constraints import Even

from pikan.train import losses
from pikan.model.compile import compile
from pikan.data.trajectories import Trajectories
from pikan.data.integrate import simulate
from pikan.spec.system import Potential, System

OSCILLATOR = System("oscillator", coords=["x"], params={"k": 2.0},
                    modules=[Potential("V", inputs=["x"], law="k*x**2/2")])


@pytest.fixture(scope="module")
def clean():
    return simulate(OSCILLATOR, n_trajectories=4, t=(0, 3), dt=0.01, seed=0)


def tensors(data):
    q, v, _ = data.states()
    a, _ = data.accelerations()
    return (torch.tensor(x) for x in (q, v, a))


def test_coordinate_scale_std_rms_and_floor():
    x = torch.tensor([[1.0, 5.0, 0.0], [3.0, 5.0, 0.0], [5.0, 5.0, 0.0]])
    std = losses.coordinate_scale(x)
    # population std of (1, 3, 5) is sqrt(8/3); constant columns get 0.1 * the largest
    assert torch.allclose(std, torch.tensor([(8 / 3) ** 0.5, 0.1 * (8 / 3) ** 0.5, 0.1 * (8 / 3) ** 0.5]))
    rms = losses.coordinate_scale(x, center=False)
    assert torch.allclose(rms, torch.tensor([(35 / 3) ** 0.5, 5.0, 0.5]))
    assert torch.equal(losses.coordinate_scale(torch.zeros(4, 2)), torch.ones(2))


def test_acceleration_loss_is_zero_for_the_truth_and_normalized(clean):
    q, v, a = tensors(clean)
    truth = compile(OSCILLATOR)
    scale = losses.coordinate_scale(a, center=False)
    assert float(losses.acceleration_loss(truth, q, v, a, scale)) < 1e-24
    # a model with twice the stiffness is off by exactly a, so the normalized loss is 1
    stiff = compile(OSCILLATOR.replace(params={"k": 4.0}))
    assert float(losses.acceleration_loss(stiff, q, v, a, scale)) == pytest.approx(1.0, rel=1e-12)


def test_rollout_of_the_truth_reproduces_the_data(clean):
    truth = compile(OSCILLATOR)
    windows = clean.windows(21, stride=20)
    t, q, v = (torch.tensor(x) for x in (windows.t, windows.q, windows.v))
    for method, tol in (("rk4", 1e-9), ("verlet", 1e-4)):
        q_hat, v_hat = losses.rollout(truth, q[:, 0], v[:, 0], t, method)
        assert q_hat.shape == q.shape
        assert float((q_hat - q).abs().max()) < tol
        assert float((v_hat - v).abs().max()) < 10 * tol
    loss = losses.rollout_loss(truth, q, v, t, losses.coordinate_scale(q.reshape(-1, 1)),
                               losses.coordinate_scale(v.reshape(-1, 1)))
    assert float(loss) < 1e-18


def test_rollout_orders_of_accuracy(clean):
    # halving the step divides the worst error by ~4 for Verlet and ~16 for RK4
    truth = compile(OSCILLATOR)
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


def test_rollout_loss_gradient_reaches_the_law_constant(clean):
    # a trainable stiffness: the rollout gradient matches finite differences
    windows = clean.windows(11, stride=10)
    t, q, v = (torch.tensor(x) for x in (windows.t, windows.q, windows.v))
    scale = losses.coordinate_scale(q.reshape(-1, 1))

    def loss_at(c):
        model = compile(OSCILLATOR.learn("V", hidden=[], grid=3))
        model.fix("V", f"{c}*x**2", trainable=True)  # true c = k/2 = 1
        return model, losses.rollout_loss(model, q, v, t, scale)

    model, loss = loss_at(0.75)
    loss.backward()
    (grad,) = [p.grad for p in model.parameters() if p.grad is not None]
    h = 1e-6
    numeric = (float(loss_at(0.75 + h)[1].detach()) - float(loss_at(0.75 - h)[1].detach())) / (2 * h)
    assert float(grad.sum()) == pytest.approx(numeric, rel=1e-5)
    assert numeric < 0


def test_sparsity_sums_learned_blocks_only(clean):
    q, v, _ = tensors(clean)
    assert float(losses.sparsity(compile(OSCILLATOR), q, v)) == 0.0
    model = compile(OSCILLATOR.learn("V", hidden=[2], grid=3))
    kan = model.blocks["V"].kan
    expected = kan.regularization(model.module_inputs("V", q, v), l1=1.0, entropy=2.0)
    value = losses.sparsity(model, q, v).detach()
    assert float(value) == pytest.approx(float(expected.detach()), rel=1e-12) and float(value) > 0


def test_soft_penalties_follow_the_spec(clean):
    q, v, _ = tensors(clean)
    hard = compile(OSCILLATOR.learn("V", hidden=[], constraints=[Even("x")]))
    assert losses.soft_penalties(hard) == []
    soft_spec = OSCILLATOR.learn("V", hidden=[], constraints=[Even("x", mode="soft", weight=3.0)])
    model = compile(soft_spec)
    (penalty,) = losses.soft_penalties(model)
    assert penalty.name == "V.Even" and penalty.weight == 3.0
    value = penalty.fn(model, q, v).detach()
    expected = Even("x", mode="soft", weight=3.0).penalty(model, q, v, module="V").detach()
    assert float(value) == pytest.approx(float(expected)) and float(value) > 0


def test_choose_loss_rule(clean):
    assert losses.choose_loss(clean)[0] == "acceleration"
    positions = Trajectories.from_arrays([r.t for r in clean], [r.q for r in clean], coords=["x"])
    loss, reason = losses.choose_loss(positions)
    assert loss == "acceleration" and "clean" in reason
    noisy = clean.with_noise(1e-3, seed=1)
    assert not noisy.has_accelerations
    loss, reason = losses.choose_loss(noisy)
    assert loss == "rollout" and "noisy" in reason
    # noise is 1e-3 of the std over all trajectories; each trajectory's own spread is smaller
    assert 1e-3 < losses.position_noise(noisy) < 3e-3
    assert losses.position_noise(clean) < losses.CLEAN_NOISE


def test_relative_error():
    assert losses.relative_error(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])) == 0.0
    assert losses.relative_error(torch.tensor([0.0, 0.0]), torch.tensor([3.0, 4.0])) == 1.0
    assert np.isfinite(losses.relative_error(torch.ones(2), torch.zeros(2)))


def test_the_rollout_box_holds_forces_off_the_data_and_changes_nothing_on_it(clean):
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
    truth = compile(OSCILLATOR)
    windows = clean.windows(21, stride=20)
    t, q, v = (torch.tensor(x) for x in (windows.t, windows.q, windows.v))
    box = losses.state_box(q, v)
    assert box[0].shape == (2,) and bool((box[0] < q.min()).all())
    free = losses.rollout(truth, q[:, 0], v[:, 0], t, "rk4")
    boxed = losses.rollout(truth, q[:, 0], v[:, 0], t, "rk4", box)
    assert torch.equal(free[0], boxed[0]) and torch.equal(free[1], boxed[1])


def test_a_clean_large_swing_pendulum_is_clean_and_noise_is_still_seen():
    from scipy.integrate import solve_ivp

    g = 9.1  # swings up to theta = 3 rad: sixth differences alone read 1.3e-6 ("noisy")
    rng = np.random.default_rng(1)
    t = np.arange(0, 10 + 1e-9, 0.05)
    qs, vs = [], []
    for _ in range(6):
        y0 = [rng.uniform(-3, 3), rng.uniform(-1, 1)]
        sol = solve_ivp(lambda _, y: [y[1], -g * np.sin(y[0])], (0, 10), y0, t_eval=t,
                        method="DOP853", rtol=1e-10, atol=1e-12)
        qs.append(sol.y[:1].T)
        vs.append(sol.y[1:].T)
    data = Trajectories.from_arrays([t] * 6, qs, v=vs, coords=["theta"])
    assert losses.position_noise(data) < 1e-7
    assert losses.choose_loss(data)[0] == "acceleration"
    noisy = data.with_noise(1e-3, seed=0)
    assert losses.position_noise(noisy) == pytest.approx(1e-3, rel=0.5)
    assert losses.choose_loss(noisy)[0] == "rollout"
