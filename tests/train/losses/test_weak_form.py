"""Weak-form matching (pikan/train/losses/weak_form.py): the bump and its quadrature, the
residual of the true law on exact trajectories, the gradient, the noise it removes, the
window choice and training on it."""

import numpy as np
import pytest
import torch

from pikan.data.integrate import simulate
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError
from pikan.model.compile import compile
from pikan.spec.system import Dissipation, Potential, System
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
