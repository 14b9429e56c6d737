"""Weak-form matching (pikan/train/losses/weak_form.py): the bump and its quadrature, the
residual of the true law on exact trajectories, the gradient, the noise it removes, the
window choice and training on it; the first-order form (weak rates, cut windows at the
trajectories' ends, the correlation time)."""

import numpy as np
import pytest
import torch

from pikan.data.integrate import simulate
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError, SpecError
from pikan.model.compile import compile
from pikan.spec.system import Dissipation, Flow, Potential, System
from pikan.train import losses
from pikan.train.loop import fit

DAMPED = System("damped", coords=["x"], params={"k": 1.7, "c": 0.23},
                modules=[Potential("V", inputs=["x"], law="k*x**2/2"),
                         Dissipation("D", inputs=["v_x"], law="c*v_x**2/2")])


def windows(data, length, stride=1):
    w = data.windows(length, stride=stride)
    return w.t, w.q, w.v


def test_the_bump_vanishes_with_its_slope_and_its_second_derivative_is_exact():
    t = np.linspace(0.3, 1.1, 200001)[None]
    phi, phi_tt = losses.bump(t)
    assert phi[0, 0] == phi[0, -1] == 0.0 and phi[0, 100000] == pytest.approx(1.0)
    numeric = np.gradient(np.gradient(phi[0], t[0]), t[0])
    assert np.abs(numeric[10:-10] - phi_tt[0, 10:-10]).max() < 1e-5 * np.abs(phi_tt).max()
    slope = np.gradient(phi[0], t[0])
    assert abs(slope[1]) < 1e-12 and abs(slope[-2]) < 1e-12


def test_trapezoid_weights_integrate_on_uneven_steps():
    t = np.array([[0.0, 0.1, 0.35, 0.5, 1.0]])
    w = losses.trapezoid_weights(t)
    assert w.sum() == pytest.approx(1.0)
    assert float(w[0] @ t[0]) == pytest.approx(0.5)  # a linear function is integrated exactly


@pytest.mark.parametrize("length", [41, 81])
def test_the_weak_residual_of_the_true_law_vanishes_on_exact_trajectories(length):
    # x(t) = A cos(w t + p) exactly: the weighted average of -w^2 x equals the data's side
    t = np.linspace(0.0, 6.0, 601)
    trajectory = 0.8 * np.cos(1.3 * t + 0.4)[:, None]
    data = Trajectories.from_arrays([t], [trajectory], coords=["x"])
    tw, qw, _ = windows(data, length)
    weights, target = losses.weak_averages(tw, qw)
    model_side = np.einsum("bl,bln->bn", weights, -1.3**2 * qw)
    assert np.abs(model_side - target).max() < 1e-8 * np.abs(target).max()


def test_the_loss_of_the_truth_is_zero_and_of_a_wrong_law_is_not():
    data = simulate(DAMPED, n_trajectories=3, t=(0, 4), dt=0.01, seed=2)
    kind = losses.WeakFormLoss(length=61)
    train = {k: torch.as_tensor(x) for k, x in kind.samples(data).items()}
    q, v, _ = (torch.as_tensor(x) for x in data.states())
    scales = kind.scales(train, q, v, measured_velocities=True)
    assert float(kind(compile(DAMPED), train, scales)) < 1e-16
    undamped = compile(DAMPED.replace(params={"k": 1.7, "c": 0.0}))
    assert float(kind(undamped, train, scales)) > 1e-4


def test_the_gradient_reaches_the_law_constant():
    data = simulate(DAMPED, n_trajectories=2, t=(0, 3), dt=0.01, seed=3)
    kind = losses.WeakFormLoss(length=41, every=2)
    train = {k: torch.as_tensor(x) for k, x in kind.samples(data).items()}
    scale = losses.coordinate_scale(train["target"], center=False)
    spec = DAMPED.learn("V", hidden=[], grid=3)

    def loss_at(c):
        model = compile(spec)
        model.fix("V", f"{c}*x**2", trainable=True)  # true c = k/2 = 0.85
        return model, losses.weak_loss(model, train["q"], train["v"], train["weights"],
                                       train["target"], scale)

    model, loss = loss_at(0.6)
    loss.backward()
    (grad,) = [p.grad for p in model.parameters() if p.grad is not None]
    h = 1e-6
    numeric = (float(loss_at(0.6 + h)[1].detach()) - float(loss_at(0.6 - h)[1].detach())) / (2 * h)
    assert float(grad.sum()) == pytest.approx(numeric, rel=1e-6)
    assert numeric < 0
    assert float(loss_at(0.85)[1].detach()) < 1e-14


def test_position_noise_barely_reaches_the_weak_targets():
    # the same noise, through Savitzky-Golay accelerations and through the weak averages
    spec = DAMPED.replace(params={"k": 1.7, "c": 0.0})
    clean = simulate(spec, n_trajectories=4, t=(0, 10), dt=0.05, seed=4)
    positions = Trajectories.from_arrays([r.t for r in clean], [r.q for r in clean],
                                         coords=["x"])
    noisy = positions.with_noise(0.02, seed=5).with_derivatives()
    length, every, _ = losses.weak_window(noisy)
    kind = losses.WeakFormLoss(length, every)
    exact, measured = kind.samples(clean)["target"], kind.samples(noisy)["target"]
    weak_error = np.sqrt(np.mean((measured - exact) ** 2) / np.mean(exact**2))
    a_noisy, _ = noisy.accelerations()
    a_clean, _ = clean.accelerations()
    pointwise_error = np.sqrt(np.mean((a_noisy - a_clean) ** 2) / np.mean(a_clean**2))
    assert weak_error < 0.03
    assert weak_error < pointwise_error / 3


def test_the_window_spans_half_the_time_scale_and_fits_the_shortest_trajectory():
    data = simulate(DAMPED.replace(params={"k": 4.0, "c": 0.0}), n_trajectories=2, t=(0, 6),
                    dt=0.01, seed=0)
    length, every, reason = losses.weak_window(data)
    span = (length - 1) * every * 0.01
    assert span == pytest.approx(np.pi / 2, rel=0.05)  # half the period 2 pi / 2
    assert length <= losses.weak_form.MAX_POINTS and "time scale" in reason
    short = data.subset([0])
    short = Trajectories.from_arrays([short[0].t[:60]], [short[0].q[:60]],
                                     v=[short[0].v[:60]], coords=["x"])
    length, every, _ = losses.weak_window(short)
    assert (length - 1) * every + 1 <= 60
    assert losses.weak_window(data, length=11)[0] == 11
    tiny = Trajectories.from_arrays([np.arange(5.0)], [np.ones((5, 1))], coords=["x"])
    with pytest.raises(DataError, match="at least 9 samples"):
        losses.weak_window(tiny)
    with pytest.raises(DataError, match="at least 9 points"):
        losses.weak_window(data, length=5)
    with pytest.raises(ValueError, match="length >= 9"):
        losses.WeakFormLoss(length=4)


def test_fit_on_the_weak_loss_learns_the_oscillator_from_noisy_positions():
    spec = DAMPED.replace(params={"k": 1.7, "c": 0.0}, modules=[DAMPED.modules[0]])
    clean = simulate(spec, n_trajectories=6, t=(0, 10), dt=0.05, seed=6)
    positions = Trajectories.from_arrays([r.t for r in clean], [r.q for r in clean],
                                         coords=["x"]).with_noise(0.03, seed=7)
    model = compile(spec.learn("V", hidden=[], grid=3))
    model.fix("V", "0.3*x**2", trainable=True)
    result = fit(model, positions, loss="weak", steps=150, seed=0, progress=False)
    assert result.choices["loss"] == "weak" and result.choices["window"] >= 9
    (c,) = [float(p) for p in model.parameters() if p.requires_grad]
    assert c == pytest.approx(0.85, rel=0.02)


# ----------------------------------------------------------------------- first order

RELAXING = System("relaxing", coords=["x", "y"], order=1, modules=[
    Flow("fx", inputs=["x", "y"], outputs=["x"], law=["-0.7*x + 0.3*y"]),
    Flow("fy", inputs=["x", "y"], outputs=["y"], law=["0.2*x - 1.1*y*y"])])


def _positions(data, noise=0.0):
    out = Trajectories.from_arrays([r.t for r in data], [r.q for r in data],
                                   coords=list(data.coords))
    return out.with_noise(noise, seed=3) if noise else out


@pytest.fixture(scope="module")
def relaxing():
    return simulate(RELAXING, n_trajectories=4, t=(0, 6), dt=0.02, seed=1,
                    initial=lambda rng: rng.uniform(0.2, 1.5, 2))


@pytest.mark.parametrize("cut", [False, True])
def test_first_order_weights_are_exact_for_polynomials_and_a_cut_bump_keeps_its_boundary(cut):
    t = np.sort(np.random.default_rng(0).uniform(0.0, 1.3, 25))[None, :]
    t = np.concatenate([t, t + 0.4])
    bounds = (t[:, :1] - 0.3, t[:, :1] + 0.9) if cut else None  # cut at the first point
    weights, c = losses.weak_weights(t, order=1, bounds=bounds)
    if cut:
        phi, _ = losses.bump(t, bounds=bounds)
        assert np.all(phi[:, 0] > 0.3) and np.all(phi[:, -1] == 0.0)
    for k in range(1, 6):
        assert np.sum(c * t**k, axis=1) == pytest.approx(np.sum(weights * k * t ** (k - 1),
                                                                 axis=1), rel=1e-9)
    smooth = np.sum(c * np.sin(1.3 * t), axis=1)
    assert smooth == pytest.approx(np.sum(weights * 1.3 * np.cos(1.3 * t), axis=1), rel=1e-5)
    with pytest.raises(ValueError, match="order=1"):
        losses.weak_weights(t, order=2, bounds=(t[:, :1] - 0.3, t[:, :1] + 0.9))
    with pytest.raises(ValueError, match="first or second"):
        losses.weak_weights(t, order=3)


def test_first_order_windows_hang_over_the_ends_and_the_truth_fits_every_one(relaxing):
    positions = _positions(relaxing)
    length, every, reason = losses.weak_window(positions, order=1)
    assert "correlation time" in reason
    w = losses.weak_windows(positions, length, every, order=1)
    span = (length - 1) * every + 1
    whole = sum(len(r) - span + 1 for r in positions)
    assert w.t.shape[0] == whole + len(positions) * 2 * ((span - 1) // 2)
    assert w.v.shape == (*w.q.shape[:2], 0)
    starts = w.points[:, 0]
    assert np.any(starts == 0) and np.any(w.points[:, -1] == len(positions[0]) - 1)
    truth = compile(RELAXING)
    rates = truth.rate(torch.as_tensor(w.q.reshape(-1, 2))).detach().numpy()
    average = np.einsum("bl,bln->bn", w.weights, rates.reshape(w.q.shape))
    assert np.max(np.abs(average - w.target)) < 5e-4 * np.max(np.abs(w.target))
    second = losses.weak_windows(relaxing, length, every, order=2)
    assert second.t.shape[0] == whole  # whole windows only: a cut bump would need v


def test_the_weak_rate_loss_is_zero_for_the_truth_and_not_for_a_wrong_law(relaxing):
    positions = _positions(relaxing)
    length, every, _ = losses.weak_window(positions, order=1)
    kind = losses.loss_kind("weak_rate", length=length, every=every)
    assert kind.order == 1 and not kind.needs_derivatives(relaxing)
    batch = {k: torch.as_tensor(x) for k, x in kind.samples(positions).items()}
    scales = kind.scales(batch, None, None, False)
    q, v, t = kind.states(batch)
    assert v.shape == (q.shape[0], 0) and t.shape == (q.shape[0],)
    assert float(kind(compile(RELAXING), batch, scales)) < 1e-7  # cut windows' quadrature
    wrong = compile(RELAXING.with_laws({"fx": ["-0.6*x + 0.3*y"]}))
    assert float(kind(wrong, batch, scales)) > 1e-4


def test_the_correlation_time_reads_an_oscillation_and_ignores_noise():
    t = np.arange(0.0, 40.0, 0.01)
    clean = Trajectories.from_arrays([t], [np.stack([np.sin(0.8 * t), np.cos(0.8 * t)], 1)],
                                     coords=["x", "y"])
    assert losses.correlation_time(clean) == pytest.approx(1 / 0.8, rel=0.05)
    assert losses.correlation_time(clean.with_noise(0.01, seed=0)) == pytest.approx(
        losses.correlation_time(clean), rel=0.02)
    still = Trajectories.from_arrays([t], [np.ones((t.size, 1))], coords=["x"])
    assert losses.correlation_time(still) == np.inf


def test_auto_picks_weak_rates_for_noisy_positions_of_a_first_order_system(relaxing):
    clean = _positions(relaxing)
    assert losses.choose_rate_loss(relaxing)[0] == "rate"  # rates given
    assert losses.choose_rate_loss(clean)[0] == "rate"
    noisy = _positions(relaxing, 0.01)
    name, why = losses.choose_rate_loss(noisy)
    assert name == "weak_rate" and "noisy" in why
    model = compile(RELAXING.learn("fx", hidden=[], grid=3).learn("fy", hidden=[], grid=3))
    result = fit(model, noisy, steps=3, seed=0, progress=False)
    assert result.choices["loss"] == "weak_rate" and result.choices["window"] >= 9
    damped = simulate(DAMPED, n_trajectories=1, t=(0, 2), dt=0.05)
    with pytest.raises(SpecError, match="second-order system; use 'auto'"):
        fit(compile(DAMPED.learn("V")), damped, loss="weak_rate", steps=2, progress=False)
