"""The systems catalogue: every truth simulates and conserves what it should, every learning
spec compiles with the right learned blocks, the laws match the truths, and the registry."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sympy
import torch

import pikan
import pikan.systems
from pikan import SpecError, System
from pikan.spec.expr import parse
from pikan.systems import CatalogueEntry

NAMES = ("harmonic", "pendulum", "anisotropic", "duffing", "kepler", "two_body", "spring_chain",
         "double_pendulum", "charged_particle", "lotka_volterra", "van_der_pol", "double_well_flow",
         "mass_action")
FIRST_ORDER = ("lotka_volterra", "van_der_pol", "double_well_flow", "mass_action")

# Shortened only where the default run is slow (the Lagrangian needs Hessians per step).
SHORT = {"double_pendulum": dict(n_trajectories=1, t=(0.0, 0.25), dt=0.05)}

# Inputs of every learned block of model(), before hard-constraint rewrites.
LEARNED_INPUTS = {
    "harmonic": {"V": ("x",)},
    "pendulum": {"V": ("theta",)},
    "anisotropic": {"V": ("x", "y")},
    "duffing": {"V": ("x",), "D": ("v_x",)},
    "kepler": {"V": ("r",)},
    "two_body": {"V": ("x1", "y1", "x2", "y2")},
    "spring_chain": {"bond": ("d",)},
    "double_pendulum": {"L": ("theta1", "theta2", "phi", "v_theta1", "v_theta2")},
    "charged_particle": {"lorentz": ("v_x", "v_y"), "electric": ("x", "y")},
    "lotka_volterra": {"prey": ("x", "y"), "predator": ("x", "y")},
    "van_der_pol": {"oscillator": ("x", "y")},
    "double_well_flow": {"V": ("x", "y")},
    "mass_action": {"reaction": ("a", "b", "c")},
}


def _states(data: pikan.Trajectories) -> list[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
    return [(torch.tensor(np.array(r.q)), torch.tensor(np.array(r.v)), np.asarray(r.t))
            for r in data]


def _masses(spec: System) -> np.ndarray:
    masses = np.asarray(spec.masses, dtype=np.float64)
    return np.broadcast_to(masses, (spec.n_coords,))


def _energy(model: pikan.Model, q: torch.Tensor, v: torch.Tensor) -> np.ndarray:
    return model.energy(q, v).detach().numpy()


def _kinetic_scale(spec: System, v: torch.Tensor) -> float:
    return float((0.5 * _masses(spec) * v.numpy() ** 2).sum(-1).max())


@pytest.fixture(scope="module")
def simulations() -> dict:
    """Each truth simulated once with its default settings (shortened where slow)."""
    out = {}
    for name in NAMES:
        entry = pikan.systems.get(name)
        out[name] = entry.simulate(seed=0, **SHORT.get(name, {}))
    return out


# ------------------------------------------------------------------------------ registry


def test_names_are_the_catalogue_in_order():
    assert pikan.systems.names() == NAMES
    assert [e.name for e in pikan.systems.entries()] == list(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_complete(name):
    entry = pikan.systems.get(name)
    assert isinstance(entry, CatalogueEntry) and entry.name == name
    assert entry.truth().name == name
    assert "Reference" in entry.description and len(entry.description) > 200
    assert set(entry.simulation) == {"n_trajectories", "t", "dt"}
    t0, t1 = entry.simulation["t"]
    states = entry.simulation["n_trajectories"] * (round((t1 - t0) / entry.simulation["dt"]) + 1)
    assert 500 <= states <= 5000
    assert set(entry.conserved) <= {"energy", "momentum", "angular_momentum"}
    if any(m.kind == "Dissipation" for m in entry.truth().modules):
        assert "energy" not in entry.conserved
    # one set of keyword parameters shared by truth, sampler, laws and model
    keys = list(inspect.signature(entry.truth).parameters)
    assert list(inspect.signature(entry.sample_initial).parameters)[1:] == keys
    assert list(inspect.signature(entry.laws).parameters) == keys
    assert entry.model(**entry.params).coords == entry.truth().coords


def test_unknown_name_raises_spec_error_with_hint():
    with pytest.raises(SpecError, match=r"unknown system 'keplr'.*Did you mean 'kepler'"):
        pikan.systems.get("keplr")
    with pytest.raises(ValueError, match="harmonic, pendulum"):
        pikan.systems.get("nothing_like_it")


def test_unknown_parameter_raises_spec_error():
    with pytest.raises(SpecError, match=r"unknown parameter 'G_M'.*Did you mean 'GM'"):
        pikan.systems.get("kepler").simulate(params={"G_M": 2.0})


@pytest.mark.parametrize("name", NAMES)
def test_specs_round_trip_through_json(name):
    entry = pikan.systems.get(name)
    for spec in (entry.truth(), entry.model()):
        assert System.from_json(spec.to_json()) == spec


# ---------------------------------------------------------------------------- samplers


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_first_order_sampler_gives_positions_only(name):
    entry = pikan.systems.get(name)
    assert entry.truth().order == 1 and entry.model().order == 1
    q0 = entry.sample_initial(np.random.default_rng(3))
    assert q0.shape == (entry.truth().n_coords,)
    np.testing.assert_array_equal(q0, entry.sample_initial(np.random.default_rng(3)))
    assert not np.array_equal(q0, entry.sample_initial(np.random.default_rng(4)))


@pytest.mark.parametrize("name", [n for n in NAMES if n not in FIRST_ORDER])
def test_sampler_is_seeded_and_shaped(name):
    entry = pikan.systems.get(name)
    n = entry.truth().n_coords
    q0, v0 = entry.sample_initial(np.random.default_rng(3))
    q1, v1 = entry.sample_initial(np.random.default_rng(3))
    assert q0.shape == v0.shape == (n,)
    np.testing.assert_array_equal(q0, q1)
    np.testing.assert_array_equal(v0, v1)
    q2, _ = entry.sample_initial(np.random.default_rng(4))
    assert not np.array_equal(q0, q2)


def _kepler_elements(r: np.ndarray, v: np.ndarray, gm: float) -> tuple[np.ndarray, np.ndarray]:
    """Pericentre and apocentre distances of planar orbits, r and v of shape (N, 2)."""
    energy = 0.5 * (v**2).sum(-1) - gm / np.linalg.norm(r, axis=-1)
    h = r[:, 0] * v[:, 1] - r[:, 1] * v[:, 0]
    a = -gm / (2 * energy)
    e = np.sqrt(1 + 2 * energy * h**2 / gm**2)
    return a * (1 - e), a * (1 + e)


def test_kepler_sampler_gives_bound_orbits_away_from_the_sun():
    rng = np.random.default_rng(0)
    entry = pikan.systems.get("kepler")
    for gm in (1.0, 4.0):
        r, v = map(np.array, zip(*(entry.sample_initial(rng, GM=gm) for _ in range(500))))
        assert (0.5 * (v**2).sum(-1) - gm / np.linalg.norm(r, axis=-1) < 0).all()
        pericentre, apocentre = _kepler_elements(r, v, gm)
        assert pericentre.min() > 0.5 and apocentre.max() < 4.0


def test_two_body_sampler_gives_bound_relative_orbits():
    rng = np.random.default_rng(0)
    entry = pikan.systems.get("two_body")
    m1, m2 = 1.0, 0.5
    q, v = map(np.array, zip(*(entry.sample_initial(rng, m1=m1, m2=m2) for _ in range(500))))
    pericentre, apocentre = _kepler_elements(q[:, 2:] - q[:, :2], v[:, 2:] - v[:, :2], m1 + m2)
    assert pericentre.min() > 0.5 and apocentre.max() < 4.0
    momentum = m1 * v[:, :2] + m2 * v[:, 2:]
    assert np.abs(momentum / (m1 + m2)).max() <= 0.1 + 1e-12  # slow centre of mass


def test_pendulum_sampler_stays_below_the_separatrix():
    rng = np.random.default_rng(0)
    entry = pikan.systems.get("pendulum")
    for g, l in ((9.81, 1.0), (1.0, 2.0)):
        theta, omega = map(np.array, zip(*(entry.sample_initial(rng, g=g, l=l)
                                            for _ in range(500))))
        energy = 0.5 * l**2 * omega**2 + g * l * (1 - np.cos(theta))
        assert energy.max() < 0.75 * 2 * g * l


# ------------------------------------------------------------------ truth: simulate, conserve


@pytest.mark.parametrize("name", NAMES)
def test_truth_simulates_with_its_defaults(name, simulations):
    entry, data = pikan.systems.get(name), simulations[name]
    settings = {**entry.simulation, **SHORT.get(name, {})}
    t0, t1 = settings["t"]
    assert len(data) == settings["n_trajectories"]
    assert data.coords == entry.truth().coords and data.system == name
    for record in data:
        assert len(record.t) == round((t1 - t0) / settings["dt"]) + 1
        assert np.isfinite(record.q).all() and np.isfinite(record.v).all()
        assert name in FIRST_ORDER or np.isfinite(record.a).all()  # first order: v is dq/dt
        assert np.ptp(record.q, axis=0).max() > 1e-3  # it moves


@pytest.mark.parametrize("name", [n for n in NAMES if "energy" in pikan.systems.get(n).conserved])
def test_conservative_truth_keeps_its_energy(name, simulations):
    spec = pikan.systems.get(name).truth()
    model = pikan.compile(spec)
    for q, v, _ in _states(simulations[name]):
        energy = _energy(model, q, v)
        scale = max(abs(energy[0]), _kinetic_scale(spec, v))
        assert np.abs(energy - energy[0]).max() <= 1e-8 * scale


def _momenta(spec: System, q: torch.Tensor, v: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Total momentum (T, 2) and angular momentum (T,) of planar particles (x_i, y_i)."""
    m, q, v = _masses(spec), q.numpy(), v.numpy()
    px, py = m[0::2] * v[:, 0::2], m[1::2] * v[:, 1::2]
    angular = (q[:, 0::2] * py - q[:, 1::2] * px).sum(-1)
    return np.stack([px.sum(-1), py.sum(-1)], axis=-1), angular


@pytest.mark.parametrize("name", ["kepler", "two_body"])
def test_planar_truth_conserves_momenta(name, simulations):
    entry = pikan.systems.get(name)
    spec = entry.truth()
    for q, v, _ in _states(simulations[name]):
        momentum, angular = _momenta(spec, q, v)
        scale = float(np.abs(_masses(spec) * v.numpy()).max())
        assert np.abs(angular - angular[0]).max() <= 1e-8 * abs(angular[0])
        if "momentum" in entry.conserved:
            assert np.abs(momentum - momentum[0]).max() <= 1e-9 * scale


def test_anisotropic_truth_does_not_conserve_angular_momentum(simulations):
    spec = pikan.systems.get("anisotropic").truth()
    changes = [np.ptp(_momenta(spec, q, v)[1]) for q, v, _ in _states(simulations["anisotropic"])]
    assert max(changes) > 0.1  # V is not rotation invariant: the check above can fail


def test_duffing_energy_decreases_by_the_dissipated_power(simulations):
    entry = pikan.systems.get("duffing")
    spec = entry.truth()
    model, c = pikan.compile(spec), spec.params["c"]
    for q, v, t in _states(simulations["duffing"]):
        energy = _energy(model, q, v)
        assert (np.diff(energy) <= 1e-12 * energy[0]).all()
        assert energy[-1] < 0.8 * energy[0]
        power = c * v.numpy()[:, 0] ** 2  # dE/dt = -dD/dv . v = -c v**2
        dissipated = np.sum(0.5 * (power[1:] + power[:-1]) * np.diff(t))
        np.testing.assert_allclose(energy[0] - energy[-1], dissipated, rtol=2e-3)


def test_spring_chain_size_and_ends_are_configurable():
    entry = pikan.systems.get("spring_chain")
    fixed, free = entry.truth(n=7), entry.truth(n=7, fixed_ends=False)
    assert fixed.coords == tuple(f"x{i}" for i in range(1, 8))
    assert len(fixed.module("bond").bindings) == 8 and len(free.module("bond").bindings) == 6
    with pytest.raises(SpecError, match="integer >= 2"):
        entry.truth(n=1)
    data = entry.simulate(params={"n": 3, "fixed_ends": False}, n_trajectories=3, seed=1)
    spec, model = entry.truth(n=3, fixed_ends=False), pikan.compile(entry.truth(n=3,
                                                                          fixed_ends=False))
    for q, v, _ in _states(data):
        momentum = (_masses(spec) * v.numpy()).sum(-1)
        np.testing.assert_allclose(momentum, 0.0, atol=1e-12)  # sampler removes the drift
        energy = _energy(model, q, v)
        assert np.abs(energy - energy[0]).max() <= 1e-8 * energy[0]
    # fixed ends: the walls push, so momentum is not conserved
    q, v, _ = _states(entry.simulate(n_trajectories=1, t=(0.0, 5.0)))[0]
    assert np.ptp(v.numpy().sum(-1)) > 0.05


def test_charged_particle_drifts_with_e_cross_b(simulations):
    spec = pikan.systems.get("charged_particle").truth()
    p = spec.params
    drift = np.array([p["Ey"], -p["Ex"]]) / p["B"]  # E x B / B**2 for B along z
    period = 2 * np.pi * spec.masses / (p["q"] * p["B"])
    for q, v, t in _states(simulations["charged_particle"]):
        # the gyration averages out over a whole cyclotron period
        steps = round(period / (t[1] - t[0]))
        mean_v = v.numpy()[:steps].mean(0)
        np.testing.assert_allclose(mean_v, drift, atol=0.02)


# ----------------------------------------------------------------------- learning specs


@pytest.mark.parametrize("name", NAMES)
def test_model_spec_compiles_with_the_right_learned_blocks(name):
    entry = pikan.systems.get(name)
    truth, spec = entry.truth(), entry.model()
    assert spec.masses == truth.masses and spec.params == truth.params
    assert set(spec.learned) == set(LEARNED_INPUTS[name])
    for module, inputs in LEARNED_INPUTS[name].items():
        assert spec.module(module).input_names == inputs
        assert spec.module(module).inputs == truth.module(module).inputs  # features kept
    model = pikan.compile(spec)
    for module in spec.learned:
        assert model.blocks[module].is_learned
    for module in spec.known:
        assert not model.blocks[module].is_learned
    rng = np.random.default_rng(0)
    if name in FIRST_ORDER:
        q = torch.tensor(np.stack([entry.sample_initial(rng) for _ in range(5)]))
        rate = model.rate(q)
        assert rate.shape == q.shape and torch.isfinite(rate).all()
        return
    q = torch.tensor(np.stack([entry.sample_initial(rng)[0] for _ in range(5)]))
    v = torch.tensor(np.stack([entry.sample_initial(rng)[1] for _ in range(5)]))
    acceleration = model.acceleration(q, v)
    assert acceleration.shape == q.shape and torch.isfinite(acceleration).all()


def test_kepler_model_uses_the_radius_feature():
    spec = pikan.systems.get("kepler").model()
    assert spec.module("V").inputs["r"] == parse("sqrt(x**2 + y**2)")


def test_spring_chain_model_shares_one_bond_law():
    spec = pikan.systems.get("spring_chain").model(n=6)
    model = pikan.compile(spec)
    assert len(model.blocks) == 1 and len(spec.module("bond").bindings) == 7
    q = torch.zeros(1, 6)
    q[0, 2] = 0.3
    z = model.module_inputs("bond", q, torch.zeros_like(q))
    np.testing.assert_allclose(z[:, 0].numpy(), [0, 0, 0.3, -0.3, 0, 0, 0])


def test_charged_particle_model_learns_a_gyroscopic_field():
    spec = pikan.systems.get("charged_particle").model()
    model = pikan.compile(spec)
    block = model.blocks["lorentz"]
    assert spec.module("lorentz").gyroscopic and block.gyroscopic_learned
    v = torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    force = block(v)
    assert force.abs().max() > 0  # a random field, not zero
    np.testing.assert_allclose((force * v).sum(-1).detach().numpy(), 0.0, atol=1e-14)


def test_two_body_model_is_translation_and_rotation_invariant():
    spec = pikan.systems.get("two_body").model()
    model = pikan.compile(spec)
    assert len(model.blocks["V"].input_names) == 1  # one invariant: the squared distance
    rng = np.random.default_rng(0)
    q = torch.tensor(rng.uniform(-1, 1, size=(16, 4)))
    angle = 0.7
    c, s = np.cos(angle), np.sin(angle)
    moved = q.clone()
    for i in (0, 2):
        x, y = q[:, i], q[:, i + 1]
        moved[:, i], moved[:, i + 1] = c * x - s * y + 0.3, s * x + c * y - 1.2
    potential = model.potential(q).detach()
    assert potential.std() > 0  # not a constant
    torch.testing.assert_close(model.potential(moved).detach(), potential, atol=1e-12, rtol=0)
    force = model.forces(q, torch.zeros_like(q))["V"].detach()
    torch.testing.assert_close(force[:, 0::2].sum(-1), torch.zeros(16), atol=1e-12, rtol=0)
    torch.testing.assert_close(force[:, 1::2].sum(-1), torch.zeros(16), atol=1e-12, rtol=0)


def test_lotka_volterra_cycles_keep_their_invariant(simulations):
    # delta x - gamma ln x + beta y - alpha ln y is constant on every orbit
    p = pikan.systems.get("lotka_volterra").params
    for record in simulations["lotka_volterra"]:
        x, y = np.asarray(record.q).T
        invariant = p["delta"] * x - p["gamma"] * np.log(x) + p["beta"] * y \
            - p["alpha"] * np.log(y)
        assert np.ptp(invariant) <= 1e-7 * abs(invariant[0])
        assert x.min() > 0 and y.min() > 0 and np.ptp(x) > 0.5  # it cycles


def test_van_der_pol_winds_onto_its_limit_cycle(simulations):
    # whatever the start, the amplitude of x tends to about 2 (for mu = 1: 2.009)
    for record in simulations["van_der_pol"]:
        x = np.asarray(record.q)[:, 0]
        tail = x[len(x) // 2:]
        assert 1.9 <= np.abs(tail).max() <= 2.1


def test_gradient_flow_descends_its_potential(simulations):
    model = pikan.compile(pikan.systems.get("double_well_flow").truth())
    for record in simulations["double_well_flow"]:
        q = torch.tensor(np.asarray(record.q))
        energy = model.energy(q, q[:, :0]).detach().numpy()
        assert (np.diff(energy) <= 1e-12).all() and energy[-1] < energy[0]


def test_mass_action_conserves_its_totals_and_reaches_equilibrium(simulations):
    p = pikan.systems.get("mass_action").params
    for record in simulations["mass_action"]:
        a, b, c = np.asarray(record.q).T
        for total in (a + c, b + c):
            np.testing.assert_allclose(total, total[0], rtol=1e-8)
        assert abs(p["kf"] * a[-1] * b[-1] - p["kr"] * c[-1]) <= 1e-2 * p["kr"] * c[-1]


# ---------------------------------------------------------------------------------- laws


def _component_laws(law) -> list:
    return list(law) if isinstance(law, (list, tuple)) else [law]


def _check_laws(entry: CatalogueEntry, params: dict) -> None:
    truth = entry.truth(**params)
    laws = entry.laws(**params)
    assert set(laws) == set(truth.module_names)
    values = {sympy.Symbol(k): v for k, v in truth.params.items()}
    for name, law in laws.items():
        module = truth.module(name)
        allowed = set(module.input_names)
        if module.kind == "Dynamics" and module.gyroscopic:
            allowed |= {truth.velocities[truth.coords.index(c)] for c in module.outputs}
        expected = module.laws
        given = [parse(text, allowed, where=f"{entry.name} laws()[{name!r}]")
                 for text in _component_laws(law)]
        assert len(given) == len(expected)
        for mine, theirs in zip(given, expected):
            assert sympy.simplify(mine - theirs.xreplace(values)) == 0, (name, mine, theirs)


@pytest.mark.parametrize("name", NAMES)
def test_laws_match_the_truth(name):
    entry = pikan.systems.get(name)
    _check_laws(entry, {})
    # and they follow the parameters (no constant hard-wired)
    changed = {k: 1.3 * v + 0.1 for k, v in entry.params.items()
               if isinstance(v, float)}
    _check_laws(entry, changed)
