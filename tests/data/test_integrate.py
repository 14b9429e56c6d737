import types

import numpy as np
import pytest
import scipy.integrate
import torch

import pikan
import pikan.data.integrate
from pikan.data.integrate import rk4, rk4_step, simulate, solve_ivp, verlet
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError


class Oscillator(torch.nn.Module):
    """q'' = -omega^2 q, with omega a trainable parameter; stands in for a compiled model."""

    coords = ("x",)
    name = "oscillator"
    masses = 1.0

    def __init__(self, omega=1.0):
        super().__init__()
        self.omega = torch.nn.Parameter(torch.tensor(float(omega)))

    @property
    def params(self):
        return {"omega": float(self.omega.detach())}

    def vector_field(self, t, y):
        return torch.cat([y[:, 1:], -(self.omega**2) * y[:, :1]], dim=1)


class Kepler(torch.nn.Module):
    """Planar Kepler problem, GM = 1: a = -q / |q|^3."""

    coords = ("x", "y")

    def vector_field(self, t, y):
        q, v = y[:, :2], y[:, 2:]
        return torch.cat([v, -q / q.norm(dim=1, keepdim=True) ** 3], dim=1)


def kepler_numpy(t, y):
    r3 = (y[0] ** 2 + y[1] ** 2) ** 1.5
    return [y[2], y[3], -y[0] / r3, -y[1] / r3]


def kepler_energy(q, v):
    return 0.5 * (v**2).sum(-1) - 1.0 / np.linalg.norm(q, axis=-1)


KEPLER_INITIAL = np.array([[1.0, 0.0, 0.0, 1.2], [1.0, 0.0, 0.0, 0.8], [0.0, 1.5, -0.7, 0.0]])


def oscillator_error(integrate, dt, T=10.0):
    t = torch.arange(0, round(T / dt) + 1) * dt
    q, v = integrate(t)
    return float(
        torch.sqrt((q - torch.cos(t)[:, None]) ** 2 + (v + torch.sin(t)[:, None]) ** 2).max()
    )


def slope(steps, errors):
    return np.polyfit(np.log(steps), np.log(errors), 1)[0]


def test_rk4_converges_at_fourth_order():
    model = Oscillator()
    y0 = torch.tensor([[1.0, 0.0]])

    def integrate(t):
        y = rk4(model.vector_field, y0, t)[:, 0].detach()
        return y[:, :1], y[:, 1:]

    steps = [0.2, 0.1, 0.05, 0.025]
    errors = [oscillator_error(integrate, dt) for dt in steps]
    assert abs(slope(steps, errors) - 4.0) < 0.3
    assert errors[-1] < 1e-6


def test_rk4_step_and_substeps():
    model = Oscillator()
    y0 = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    one = rk4_step(model.vector_field, 0.0, y0, 0.1)
    h = 0.1
    expected = 1 - h**2 / 2 + h**4 / 24  # RK4 reproduces the Taylor series of cos to h^4
    torch.testing.assert_close(one[0, 0], torch.tensor(expected), rtol=1e-14, atol=0)
    fine = rk4(model.vector_field, y0, torch.tensor([0.0, 1.0]), substeps=10)
    assert fine.shape == (2, 2, 2)
    torch.testing.assert_close(
        fine[-1, 1], torch.tensor([2 * np.sin(1.0), 2 * np.cos(1.0)]), rtol=1e-5, atol=0
    )


def test_verlet_converges_at_second_order():
    model = Oscillator()

    def integrate(t):
        q, v = verlet(
            lambda q, v: -(model.omega**2) * q, torch.tensor([[1.0]]), torch.tensor([[0.0]]), t
        )
        return q[:, 0].detach(), v[:, 0].detach()

    steps = [0.2, 0.1, 0.05, 0.025]
    errors = [oscillator_error(integrate, dt) for dt in steps]
    assert abs(slope(steps, errors) - 2.0) < 0.3


def test_verlet_energy_stays_bounded_over_ten_thousand_steps():
    t = torch.arange(10_001) * 0.01
    q, v = verlet(lambda q, v: -q, torch.tensor([[1.0]]), torch.tensor([[0.0]]), t)
    energy = 0.5 * (q**2 + v**2)[:, 0].numpy()
    relative = np.abs(energy / energy[0] - 1)
    assert relative.max() < 1e-3
    # bounded oscillation, no drift: the last thousand steps stray no further than the first
    assert relative[-1000:].max() < 1.01 * relative[:1000].max()
    # a nonlinear orbit: Kepler, eccentric, over about 16 revolutions
    model = Kepler()
    y0 = torch.tensor(KEPLER_INITIAL[:1])
    q, v = verlet(
        lambda q, v: model.vector_field(0.0, torch.cat([q, v], 1))[:, 2:], y0[:, :2], y0[:, 2:], t
    )
    energy = kepler_energy(q[:, 0].numpy(), v[:, 0].numpy())
    relative = np.abs(energy / energy[0] - 1)
    assert relative.max() < 1e-3
    assert relative[-1000:].max() < 1.01 * relative[:1000].max()


def test_gradients_flow_through_rk4_and_verlet():
    model = Oscillator(omega=1.3)
    t = torch.linspace(0, 2, 201)
    y = rk4(model.vector_field, torch.tensor([[1.0, 0.0]]), t)
    (grad,) = torch.autograd.grad(y[-1, 0, 0], model.omega)
    # d/d omega cos(omega t) = -t sin(omega t)
    torch.testing.assert_close(grad, torch.tensor(-2 * np.sin(2.6)), rtol=1e-7, atol=0)
    q, _ = verlet(
        lambda q, v: -(model.omega**2) * q, torch.tensor([[1.0]]), torch.tensor([[0.0]]), t
    )
    (grad,) = torch.autograd.grad(q[-1, 0, 0], model.omega)
    torch.testing.assert_close(grad, torch.tensor(-2 * np.sin(2.6)), rtol=1e-3, atol=0)
    omega = torch.tensor(0.7, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda w: rk4(
            lambda s, y: torch.cat([y[:, 1:], -(w**2) * y[:, :1]], 1),
            torch.tensor([[1.0, 0.5]]),
            torch.linspace(0, 1, 6),
        ),
        (omega,),
    )
    jac = torch.func.jacrev(
        lambda y0: rk4(Kepler().vector_field, y0, torch.linspace(0, 1, 11))[-1]
    )(torch.tensor(KEPLER_INITIAL[:1]))
    assert jac.shape == (1, 4, 1, 4) and torch.isfinite(jac).all()


def test_solve_ivp_batch_matches_closed_form():
    y0 = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])
    t = np.linspace(0, 10, 101)
    y = solve_ivp(lambda s, y: np.stack([y[:, 1], -y[:, 0]], 1), y0, t)
    assert y.shape == (101, 3, 2)
    exact = y0[None, :, 0] * np.cos(t)[:, None] + y0[None, :, 1] * np.sin(t)[:, None]
    np.testing.assert_allclose(y[..., 0], exact, rtol=0, atol=1e-9)
    single = solve_ivp(lambda s, y: np.stack([y[:, 1], -y[:, 0]], 1), y0[0], t)
    assert single.shape == (101, 2)


def test_solve_ivp_reports_failure():
    with pytest.raises(DataError, match="solver failed.*singularity"):
        solve_ivp(lambda s, y: y**2, np.array([[1.0]]), np.linspace(0, 2, 5))  # blows up at t = 1


@pytest.mark.parametrize(
    "method, dt, rtol", [("dop853", 0.01, 1e-6), ("rk4", 0.01, 1e-6), ("verlet", 0.005, 1e-3)]
)
def test_simulate_kepler_agrees_with_scipy(method, dt, rtol):
    data = simulate(Kepler(), t=(0, 10), dt=dt, initial=KEPLER_INITIAL, method=method)
    assert isinstance(data, Trajectories) and len(data) == 3 and data.coords == ("x", "y")
    every = round(0.1 / dt)
    for k, record in enumerate(data):
        reference = scipy.integrate.solve_ivp(
            kepler_numpy,
            (0, 10),
            KEPLER_INITIAL[k],
            method="DOP853",
            t_eval=record.t[::every],
            rtol=1e-12,
            atol=1e-12,
        ).y.T
        scale = np.abs(reference).max(axis=0)
        np.testing.assert_allclose(
            record.q[::every] / scale[:2], reference[:, :2] / scale[:2], rtol=0, atol=rtol
        )
        np.testing.assert_allclose(
            record.v[::every] / scale[2:], reference[:, 2:] / scale[2:], rtol=0, atol=rtol
        )
        # exact accelerations at the saved states
        np.testing.assert_allclose(
            record.a, -record.q / np.linalg.norm(record.q, axis=1, keepdims=True) ** 3, rtol=1e-12
        )


def test_simulate_grid_metadata_and_default_box():
    data = simulate(Oscillator(), n_trajectories=5, t=(0, 2), dt=0.1, seed=3)
    assert len(data) == 5 and data.system == "oscillator" and data.masses == 1.0
    assert data.params == {"omega": 1.0}
    np.testing.assert_allclose(data[0].t, np.linspace(0, 2, 21), atol=1e-12)
    starts = np.array([np.concatenate([r.q[0], r.v[0]]) for r in data])
    assert np.abs(starts).max() <= 1.0 and starts.std() > 0.2
    np.testing.assert_array_equal(
        starts,
        np.array(
            [
                np.concatenate([r.q[0], r.v[0]])
                for r in simulate(Oscillator(), n_trajectories=5, t=(0, 2), dt=0.1, seed=3)
            ]
        ),
    )
    assert len(simulate(Oscillator(), t=(0, 1), dt=0.5)) == 16
    assert list(simulate(Oscillator(), n_trajectories=1, t=[0, 1], dt=0.25)[0].t) == [
        0,
        0.25,
        0.5,
        0.75,
        1,
    ]
    explicit = simulate(Oscillator(), t=np.array([0.0, 0.5, 2.0]), initial=[[1.0, 0.0]])
    np.testing.assert_allclose(explicit[0].q[:, 0], np.cos([0.0, 0.5, 2.0]), atol=1e-9)


def test_simulate_noise_makes_a_measurement():
    clean = simulate(Oscillator(), n_trajectories=4, t=(0, 20), dt=0.01, seed=1)
    noisy = simulate(Oscillator(), n_trajectories=4, t=(0, 20), dt=0.01, seed=1, noise=0.01)
    assert clean.has_accelerations and not noisy.has_accelerations and noisy.has_velocities
    q_clean, v_clean, _ = clean.states()
    q_noisy, v_noisy, _ = noisy.states()
    np.testing.assert_allclose((q_noisy - q_clean).std() / q_clean.std(), 0.01, rtol=0.1)
    np.testing.assert_allclose((v_noisy - v_clean).std() / v_clean.std(), 0.01, rtol=0.1)
    again = simulate(Oscillator(), n_trajectories=4, t=(0, 20), dt=0.01, seed=1, noise=0.01)
    np.testing.assert_array_equal(again.states()[0], q_noisy)
    estimated = noisy.with_derivatives()
    a_true, _ = clean.accelerations()
    a_est, _ = estimated.accelerations()
    assert np.sqrt(np.mean((a_est - a_true) ** 2) / np.mean(a_true**2)) < 0.05


def test_simulate_initial_conditions():
    def pair(rng):
        return np.array([rng.uniform(2, 3)]), np.array([0.0])

    data = simulate(Oscillator(), n_trajectories=3, t=(0, 1), dt=0.5, initial=pair)
    assert all(2 <= r.q[0, 0] <= 3 and r.v[0, 0] == 0 for r in data)
    flat = simulate(
        Oscillator(), n_trajectories=2, t=(0, 1), dt=0.5, initial=lambda rng: np.array([5.0, 1.0])
    )
    np.testing.assert_array_equal([r.q[0, 0] for r in flat], [5.0, 5.0])

    class Sampled(Oscillator):
        def sample_initial(self, rng, n):
            return np.tile([0.25, 0.0], (n, 1))

    sampled = simulate(Sampled(), n_trajectories=2, t=(0, 1), dt=0.5)
    assert [r.q[0, 0] for r in sampled] == [0.25, 0.25]
    with pytest.raises(
        DataError, match=r"initial has shape \(2, 3\), expected \(n_trajectories, 2\)"
    ):
        simulate(Oscillator(), initial=np.zeros((2, 3)))
    with pytest.raises(DataError, match="holds 2 initial states but n_trajectories=5"):
        simulate(Oscillator(), n_trajectories=5, initial=np.zeros((2, 2)))
    with pytest.raises(DataError, match=r"returned states of shape \[\(3,\)\]"):
        simulate(Oscillator(), initial=lambda rng: np.zeros(3))
    with pytest.raises(DataError, match="noise must be a relative level >= 0"):
        simulate(Oscillator(), noise=-0.1)
    with pytest.raises(DataError, match="unknown method 'euler'"):
        simulate(Oscillator(), method="euler")


def test_simulate_compiles_a_spec(monkeypatch):
    compiled = []

    def fake_compile(spec):
        compiled.append(spec)
        model = Oscillator(omega=spec.omega)
        model.spec = spec
        return model

    spec = types.SimpleNamespace(
        name="spring", omega=2.0, params={"k": 4.0, "label": "not a number"}, masses=[3.0]
    )
    monkeypatch.setattr(pikan.data.integrate, "compile_spec", fake_compile)
    data = simulate(spec, n_trajectories=2, t=(0, 1), dt=0.01, initial=[[1.0, 0.0], [0.5, 0.0]])
    assert compiled == [spec]
    assert (
        data.system == "spring" and data.params == {"k": 4.0} and np.array_equal(data.masses, [3.0])
    )
    np.testing.assert_allclose(data[1].q[:, 0], 0.5 * np.cos(2.0 * data[1].t), atol=1e-8)


def test_simulate_does_not_move_the_callers_model():
    model = Oscillator().to(torch.float32)
    data = simulate(model, n_trajectories=2, t=(0, 1), dt=0.1, method="rk4")
    assert model.omega.dtype == torch.float32 and data[0].q.dtype == np.float64
    np.testing.assert_allclose(
        data[0].q[:, 0],
        data[0].q[0, 0] * np.cos(data[0].t) + data[0].v[0, 0] * np.sin(data[0].t),
        atol=1e-5,
    )


@pytest.mark.parametrize("options, match", [
    ({"n_trajectories": 0}, r"n_trajectories must be a whole number >= 1 .*got 0"),
    ({"n_trajectories": 2.5}, "n_trajectories must be a whole number"),
    ({"n_trajectories": "3"}, "n_trajectories must be a whole number"),
    ({"n_trajectories": True}, "n_trajectories must be a whole number"),
    ({"noise": "0.1"}, "noise must be a relative level >= 0"),
    ({"noise": float("nan")}, "noise must be a relative level >= 0"),
    ({"dt": 0}, "dt must be a finite number of time units > 0, got 0"),
    ({"dt": float("inf")}, "dt must be a finite number"),  # integrated to t = inf, forever
    ({"dt": "0.1"}, "dt must be a finite number"),
    ({"dt": 5.0, "t": (0, 1)}, r"dt=5.0 is longer than the time span t=\(0, 1\)"),
    ({"t": ("a", 1)}, r"t=\(t0, t1\) with finite t1 > t0"),
    ({"t": (1, 1)}, r"t=\(t0, t1\) with finite t1 > t0"),
    ({"seed": -1}, "seed must be a whole number >= 0, a numpy Generator or None, got -1"),
    ({"seed": 1.5}, "seed must be a whole number >= 0"),
    ({"method": 3}, "unknown method 3"),
    ({"method": "rk4", "substeps": 0}, "substeps must be a whole number >= 1"),
    ({"method": "verlet", "substeps": -2}, "substeps must be a whole number >= 1"),
    ({"method": "rk4", "substeps": 2.0}, "substeps must be a whole number >= 1"),
])
def test_simulate_refuses_options_out_of_range_naming_them(options, match):
    with pytest.raises(DataError, match=match):
        simulate(Oscillator(), **{"n_trajectories": 2, "t": (0, 1), "dt": 0.1, **options})


@pytest.mark.parametrize("device, error, match", [
    ("gpu", ValueError, "device='gpu' is not a device name"),
    ({"cpu"}, TypeError, "device must be 'auto', a device name"),
    ("cuda:99", ValueError, r"device='cuda:99': this machine has \d+ CUDA device"),
])
def test_simulate_refuses_a_device_it_cannot_use(device, error, match):
    with pytest.raises(error, match=match):
        simulate(Oscillator(), n_trajectories=2, t=(0, 1), dt=0.1, device=device)


def test_simulate_keeps_its_valid_edge_cases():
    # a save interval that does not divide the span keeps the documented last save time
    # t0 + round((t1 - t0) / dt) dt; seeds may be None or a numpy Generator; method any case
    data = simulate(Oscillator(), n_trajectories=1, t=(0, 1), dt=0.6, initial=[[1.0, 0.0]])
    assert list(data[0].t) == [0.0, 0.6, 1.2]
    drawn = simulate(Oscillator(), n_trajectories=2, t=(0, 1), dt=0.5,
                     seed=np.random.default_rng(4), method="RK4")
    again = simulate(Oscillator(), n_trajectories=2, t=(0, 1), dt=0.5, seed=4, method="rk4")
    np.testing.assert_array_equal(drawn[0].q, again[0].q)


def test_a_driven_system_is_simulated_at_absolute_times_as_scipy_does():
    spec = pikan.System("driven", coords=["x"], modules=[
        pikan.Potential("V", inputs=["x"], law="x**2/2"),
        pikan.Dynamics("drive", inputs=["t"], outputs=["x"], law=["0.5*sin(2.3*t)"])])
    times = np.linspace(3.0, 8.0, 101)  # starting at t = 3: the drive's phase matters
    data = simulate(spec, initial=np.array([[0.2, -0.1]]), t=times)

    def rhs(t, y):
        return [y[1], -y[0] + 0.5 * np.sin(2.3 * t)]

    ref = scipy.integrate.solve_ivp(rhs, (3.0, 8.0), [0.2, -0.1], t_eval=times, rtol=1e-11,
                                    atol=1e-12, method="DOP853")
    np.testing.assert_allclose(data[0].q[:, 0], ref.y[0], atol=1e-8)
    rk = simulate(spec, initial=np.array([[0.2, -0.1]]), t=times, method="rk4", substeps=4)
    np.testing.assert_allclose(rk[0].q[:, 0], ref.y[0], atol=1e-6)
    with pytest.raises(pikan.SpecError, match="verlet"):
        simulate(spec, initial=np.array([[0.2, -0.1]]), t=times, method="verlet")


def test_a_first_order_system_is_simulated_with_its_rates_as_velocities():
    from pikan.spec.system import Flow
    spec = pikan.System("lv", coords=["x", "y"], order=1, modules=[
        Flow("prey", inputs=["x", "y"], outputs=["x"], law=["1.1*x - 0.4*x*y"]),
        Flow("predator", inputs=["x", "y"], outputs=["y"], law=["0.1*x*y - 0.4*y"])])
    times = np.linspace(0.0, 5.0, 101)
    data = simulate(spec, initial=np.array([[4.0, 2.0]]), t=times)

    def rhs(t, y):
        return [1.1 * y[0] - 0.4 * y[0] * y[1], 0.1 * y[0] * y[1] - 0.4 * y[1]]

    ref = scipy.integrate.solve_ivp(rhs, (0.0, 5.0), [4.0, 2.0], t_eval=times, rtol=1e-11,
                                    atol=1e-12, method="DOP853")
    np.testing.assert_allclose(data[0].q.T, ref.y, atol=1e-8)
    np.testing.assert_allclose(data[0].v[:, 0], rhs(0, ref.y)[0], atol=1e-7)
    assert data[0].a is None
    noisy = simulate(spec, initial=np.array([[4.0, 2.0]]), t=times, noise=0.01)
    assert not noisy.has_velocities  # a measurement of a first-order system is q alone
    with pytest.raises(DataError, match="first-order"):
        simulate(spec, initial=np.array([[4.0, 2.0, 0.0, 0.0]]), t=times)
