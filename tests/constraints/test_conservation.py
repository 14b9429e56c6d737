import numpy as np
import pytest
import sympy
import torch
from pikan.constraints import Conserved, RotationInvariant, TranslationInvariant, soft_penalty

from pikan.data.trajectories import Trajectories
from pikan.errors import SpecError
from pikan.data.integrate import rk4, rk4_step, simulate
from pikan.spec.system import Dissipation, Dynamics, Flow, Lagrangian, Potential, System
from pikan.constraints.conservation import Projected
from pikan.model.compile import compile as compile_spec

ENERGY = Conserved("energy")
MOMENTUM = Conserved("momentum")


def _magnetic_trap(extra=(), constraints=(ENERGY,)):
    """Charged particle: learned potential, harmonic trap, learned magnetic field B(x, y)."""
    return System("lorentz", coords=["x", "y"], params={"k": 1.0}, constraints=list(constraints),
                  modules=[Potential("V", inputs=["x", "y"], hidden=[2], grid=3),
                           Potential("trap", inputs=["x", "y"], law="k*(x**2 + y**2)/2"),
                           Dynamics("B", inputs=["x", "y", "v_x", "v_y"], outputs=["x", "y"],
                                    gyroscopic=True, hidden=[2], grid=3), *extra])


def _initial(batch=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 4, generator=g) - 0.5


def _energy(model, y):
    return model.energy(y[..., :2], y[..., 2:])


def _rollout_energy(model, steps, dt, seed=0):
    y = _initial(seed=seed)
    energies = [_energy(model, y)]
    with torch.no_grad():
        for _ in range(steps):
            y = rk4_step(model.vector_field, 0.0, y, dt)
            energies.append(_energy(model, y))
    return torch.stack(energies).detach()


def test_hard_energy_holds_at_init_and_after_training(states, fit, build):
    spec = _magnetic_trap()
    model = build(spec, seed=1)
    q, v = states(64, 2, seed=1), states(64, 2, seed=2)
    c = spec.constraints[0]
    assert c.violation(model, q, v) < 1e-12
    target = -q + 0.5 * torch.stack([v[:, 1], -v[:, 0]], 1) - 0.3 * v  # has friction
    fit(model, lambda: ((model.acceleration(q, v) - target) ** 2).mean(), steps=20, lr=0.05)
    assert c.violation(model, q, v) < 1e-12
    rate = (v * model.forces(q, v)["B"]).sum(-1)
    assert float(rate.abs().max()) < 1e-13


def test_gyroscopic_rollout_keeps_energy(build):
    model = build(_magnetic_trap(), seed=1)
    energy = _rollout_energy(model, steps=300, dt=0.01)
    drift = (energy - energy[0]).abs().max() / energy[0].abs().min()
    assert drift < 1e-6


@pytest.mark.slow
def test_gyroscopic_rollout_keeps_energy_for_ten_thousand_steps(build):
    model = build(_magnetic_trap(), seed=1)
    energy = _rollout_energy(model, steps=10_000, dt=1e-3)
    drift = (energy - energy[0]).abs().max() / energy[0].abs().min()
    assert drift < 1e-6


def test_dissipation_never_increases_energy(build):
    spec = _magnetic_trap(extra=[Dissipation("D", inputs=["v_x", "v_y"],
                                             law="0.2*(v_x**2 + v_y**2)/2 + (v_x**2 + v_y**2)**2")],
                          constraints=())
    model = build(spec, seed=1)
    energy = _rollout_energy(model, steps=200, dt=0.01)
    steps = energy[1:] - energy[:-1]
    assert float(steps.max()) <= 1e-12
    assert float((energy[-1] - energy[0]).max()) < -1e-3


def test_soft_energy_lowers_violation_tenfold(states, fit, build):
    q, v = states(96, 2, seed=1), states(96, 2, seed=2)
    target = -q + 0.5 * torch.stack([v[:, 1], -v[:, 0]], 1) - 0.3 * v

    def run(constraints):
        spec = System("push", coords=["x", "y"], constraints=constraints, modules=[
            Potential("trap", inputs=["x", "y"], law="(x**2 + y**2)/2"),
            Dynamics("F", inputs=["x", "y", "v_x", "v_y"], outputs=["x", "y"], hidden=[3],
                     grid=4)])
        model = build(spec, seed=0)
        fit(model, lambda: ((model.acceleration(q, v) - target) ** 2).mean()
            + soft_penalty(model, q, v), steps=100, lr=0.03)
        return Conserved("energy").violation(model, q, v)

    free = run([])
    soft = run([Conserved("energy", mode="soft", weight=30.0)])
    assert free > 0.05
    assert soft < free / 10


# --------------------------------------------------------------------------- momentum


def _pair(modules, constraints=(MOMENTUM,), coords=("x1", "x2")):
    return System("pair", coords=list(coords), constraints=list(constraints), modules=modules)


def test_hard_momentum_from_translation_invariance(states, fit, build):
    spec = _pair([Potential("V", inputs=["x1", "x2"], hidden=[3], grid=4,
                            constraints=[TranslationInvariant("x1", "x2")]),
                  Dissipation("D", inputs={"u": "v_x2 - v_x1"}, hidden=[2], grid=3),
                  Dynamics("F", inputs=["v_x1", "v_x2"], outputs=["x1", "x2"],
                           law=["0.1*(v_x2 - v_x1)", "-0.1*(v_x2 - v_x1)"])])
    model = build(spec, seed=0)
    q, v = states(64, 2, seed=1), states(64, 2, seed=2)
    c = spec.constraints[0]
    assert c.resolved_groups(spec) == (("x1", "x2"),)
    assert c.violation(model, q, v) < 1e-10
    target = torch.stack([q[:, 1] - 2 * q[:, 0], q[:, 0] - q[:, 1]], 1)  # has an external pull
    fit(model, lambda: ((model.acceleration(q, v) - target) ** 2).mean(), steps=20, lr=0.05)
    assert c.violation(model, q, v) < 1e-10
    total = model.acceleration(q, v).sum(1)  # unit masses: total force
    assert float(total.abs().max()) < 1e-12


@pytest.mark.parametrize("modules, match", [
    ([Potential("V", inputs=["x1", "x2"])], r"TranslationInvariant\(\('x1', 'x2'\)\)"),
    ([Potential("V", inputs=["x1", "x2"], law="(x2 - x1)**2 + x1**2")], "has law that change"),
    ([Dynamics("F", inputs=["x1"], outputs=["x1"])], "pushes on"),
    ([Dissipation("D", inputs=["v_x1"])], "relative velocities"),
])
def test_momentum_that_cannot_hold_by_construction_raises(modules, match):
    with pytest.raises(SpecError, match=match):
        _pair(modules)
    _pair(modules, constraints=[Conserved("momentum", mode="soft")])  # soft is fine


def test_pair_law_conserves_momentum_by_construction(states, fit, build):
    # a law of the separation, given or learned, pushes the two bodies equally and oppositely:
    # the spec is accepted, and the total force is zero before and after training
    q, v = states(64, 2, seed=1), states(64, 2, seed=2)
    for modules in ([Potential("V", inputs=["x1", "x2"], law="(x2 - x1)**2/2")],
                    [Potential("V", inputs={"d": "x2 - x1"}, hidden=[2])]):
        spec = _pair(modules)
        model = build(spec, seed=0)
        assert MOMENTUM.violation(model, q, v) < 1e-10
        torch.testing.assert_close(model.acceleration(q, v).sum(1),
                                   torch.zeros(64, dtype=q.dtype), atol=1e-12, rtol=0)
        if spec.modules[0].law is None:
            target = torch.stack([q[:, 1] - q[:, 0] - 0.3, q[:, 0] - q[:, 1]], 1)
            fit(model, lambda: ((model.acceleration(q, v) - target) ** 2).mean(),
                steps=20, lr=0.05)
            assert MOMENTUM.violation(model, q, v) < 1e-10


def test_soft_momentum_lowers_violation_tenfold(states, fit, build):
    q, v = states(96, 2, seed=1), states(96, 2, seed=2)
    target = torch.stack([q[:, 1] - q[:, 0] - 0.3, q[:, 0] - q[:, 1]], 1)  # a constant pull on x1

    def run(constraints):
        model = build(_pair([Potential("V", inputs=["x1", "x2"], hidden=[3], grid=4)],
                            constraints=constraints), seed=0)
        fit(model, lambda: ((model.acceleration(q, v) - target) ** 2).mean()
            + soft_penalty(model, q, v), steps=100, lr=0.03)
        return Conserved("momentum").violation(model, q, v)

    free = run([])
    soft = run([Conserved("momentum", mode="soft", weight=30.0)])
    assert free > 0.05
    assert soft < free / 10


# ------------------------------------------------------------------- angular momentum


def test_hard_angular_momentum_from_rotation_invariance(states, fit, build):
    spec = System("central", coords=["x", "y"], constraints=[Conserved("angular_momentum")],
                  modules=[Potential("V", inputs=["x", "y"], hidden=[3], grid=4,
                                     constraints=[RotationInvariant("x", "y")])])
    model = build(spec, seed=0)
    c = spec.constraints[0]
    assert c.resolved_vectors(spec) == (("x", "y"),)
    q, v = states(64, 2, seed=1), states(64, 2, seed=2)
    assert c.violation(model, q, v) < 1e-10
    target = -torch.stack([q[:, 0], 3 * q[:, 1]], 1)  # anisotropic
    fit(model, lambda: ((model.acceleration(q, v) - target) ** 2).mean(), steps=20, lr=0.05)
    assert c.violation(model, q, v) < 1e-10
    a = model.acceleration(q, v)
    torque = q[:, 0] * a[:, 1] - q[:, 1] * a[:, 0]
    assert float(torque.abs().max()) < 1e-12


def test_hard_angular_momentum_of_a_rotation_invariant_lagrangian(states, build):
    spec = System("lag", coords=["x", "y"], constraints=[Conserved("angular_momentum")],
                  modules=[Lagrangian("L", inputs=["x", "y", "v_x", "v_y"], hidden=[3], grid=4,
                                      constraints=[RotationInvariant(("x", "y"), ("v_x", "v_y"))])])
    model = build(spec, seed=0)
    q, v = states(32, 2, seed=1), states(32, 2, seed=2)
    assert spec.constraints[0].violation(model, q, v) < 1e-10


@pytest.mark.parametrize("make, match", [
    (lambda: System("c", coords=["x", "y"], constraints=[Conserved("angular_momentum")],
                    modules=[Potential("V", inputs=["x", "y"])]), "RotationInvariant"),
    (lambda: System("c", coords=["x", "y"], masses="learn",
                    constraints=[Conserved("angular_momentum")],
                    modules=[Potential("V", inputs={"r": "x**2 + y**2"})]), "fixed masses"),
    (lambda: System("c", coords=["x", "y"], masses=[1.0, 2.0],
                    constraints=[Conserved("angular_momentum")],
                    modules=[Potential("V", inputs={"r": "x**2 + y**2"})]), "different masses"),
    (lambda: System("c", coords=["x", "y"], constraints=[Conserved("angular_momentum")],
                    modules=[Dissipation("D", inputs=["v_x", "v_y"], law="v_x**2 + v_y**2")]),
     "exerts a torque"),
    (lambda: System("c", coords=["a", "b", "c", "d"], constraints=[Conserved("angular_momentum")]),
     "vectors="),
    (lambda: System("c", coords=["x", "y"], constraints=[Conserved("energy", mode="soft")],
                    modules=[Dissipation("D", inputs=["v_x"])]), "contradicts the Dissipation"),
    (lambda: System("c", coords=["x", "y"], constraints=[Conserved("energy")],
                    modules=[Dynamics("F", inputs=["v_x"], outputs=["x"])]), "gyroscopic=True"),
    (lambda: Conserved("heat"), "unknown quantity"),
    (lambda: Conserved("energy", groups=[("x",)]), "belongs to"),
    (lambda: System("c", coords=["x"], constraints=[Conserved("momentum", groups=[("z",)])]),
     "not a coordinate"),
    (lambda: System("c", coords=["x"], modules=[Potential("V", inputs=["x"],
                                                           constraints=[Conserved("energy")])]),
     "system constraint"),
])
def test_bad_conservation_specs_raise(make, match):
    with pytest.raises(SpecError, match=match):
        make()


def test_known_laws_are_checked_symbolically():
    # a magnetic force F = w (v_y, -v_x) does no work but exerts a torque; a central force does not
    central = Potential("V", inputs=["x", "y"], law="(x**2 + y**2)**2")
    System("c", coords=["x", "y"], constraints=[Conserved("angular_momentum")], modules=[central])
    with pytest.raises(SpecError, match="exerts a torque"):
        System("c", coords=["x", "y"], constraints=[Conserved("angular_momentum")],
               modules=[central, Dynamics("F", inputs=["v_x", "v_y"], outputs=["x", "y"],
                                          law=["v_y", "-v_x"], gyroscopic=True)])


def test_soft_angular_momentum_lowers_violation_tenfold(states, fit, build):
    q, v = states(96, 2, seed=1), states(96, 2, seed=2)
    target = -torch.stack([q[:, 0] + 0.3, q[:, 1]], 1)  # a trap whose centre is off the origin

    def run(constraints):
        spec = System("c", coords=["x", "y"], constraints=constraints,
                      modules=[Potential("V", inputs=["x", "y"], hidden=[3], grid=4)])
        model = build(spec, seed=0)
        fit(model, lambda: ((model.acceleration(q, v) - target) ** 2).mean()
            + soft_penalty(model, q, v), steps=100, lr=0.03)
        return Conserved("angular_momentum").violation(model, q, v)

    free = run([])
    soft = run([Conserved("angular_momentum", mode="soft", weight=30.0)])
    assert free > 0.05
    assert soft < free / 10


def test_groups_and_vectors_are_read_from_coordinate_names():
    spec = System("two", coords=["x1", "y1", "x2", "y2"])
    assert Conserved("momentum").resolved_groups(spec) == (("x1", "x2"), ("y1", "y2"))
    assert Conserved("angular_momentum").resolved_vectors(spec) == (("x1", "y1"), ("x2", "y2"))
    assert Conserved("momentum").resolved_groups(System("one", coords=["x", "y"])) == (("x", "y"),)
    c = Conserved("momentum", groups=[["x1", "x2"]], mode="soft", weight=2.0)
    assert c.groups == (("x1", "x2"),)
    assert c.label == "Conserved(momentum, (x1, x2))"
    full = System("two", coords=["x1", "x2"], constraints=[c, Conserved("energy")])
    assert System.from_json(full.to_json()) == full


# ------------------------------------------------------------------------------ data


def _simulate(spec, build, steps=200, dt=0.01):
    """Trajectories (T, batch, n) of a known system, by RK4."""
    model = build(spec)
    y0 = _initial(batch=3, seed=4)
    n = len(spec.coords)
    y0 = torch.cat([y0[:, :n], y0[:, 2:2 + n]], 1) if n == 1 else _initial(3, 4)[:, : 2 * n]
    with torch.no_grad():
        ys = rk4(model.vector_field, y0, torch.arange(steps + 1) * dt)
    return model, (ys[..., :n], ys[..., n:])


def test_data_violation_tells_conserving_from_dissipating_data(build):
    conservative = System("osc", coords=["x", "y"], params={"w": 0.7}, modules=[
        Potential("V", inputs=["x", "y"], law="(x**2 + y**2)/2 + x**4"),
        Dynamics("F", inputs=["v_x", "v_y"], outputs=["x", "y"], law=["w*v_y", "-w*v_x"],
                 gyroscopic=True)])
    model, data = _simulate(conservative, build)
    energy = Conserved("energy")
    assert energy.data_violation(data, model=model) < 1e-8
    assert energy.data_violation(data) is None            # no energy function without a model
    flat = (data[0].reshape(-1, 2), data[1].reshape(-1, 2))
    assert energy.data_violation(flat, model=model) is None  # states without time order
    damped = conservative.replace(modules=[*conservative.modules, Dissipation(
        "D", inputs=["v_x", "v_y"], law="0.3*(v_x**2 + v_y**2)/2")])
    model, data = _simulate(damped, build)
    assert energy.data_violation(data, model=model) > 1e-2
    angular = Conserved("angular_momentum")
    assert angular.data_violation(data, model=model) > 1e-2


def test_data_violation_of_momentum_from_trajectories(build):
    spring = _pair([Potential("V", inputs=["x1", "x2"], law="(x2 - x1)**2/2")], constraints=())
    model, (q, v) = _simulate(spring, build)
    t = np.arange(q.shape[0]) * 0.01
    data = Trajectories.from_arrays(t, q.numpy().transpose(1, 0, 2), v.numpy().transpose(1, 0, 2),
                                    coords=["x1", "x2"], masses=[1.0, 1.0])
    momentum = Conserved("momentum")
    assert momentum.data_violation(data) < 1e-10
    assert momentum.data_violation(data, model=model) < 1e-10
    pulled = spring.replace(modules=[Potential("V", inputs=["x1", "x2"],
                                               law="(x2 - x1)**2/2 + x1**2")])
    model, data = _simulate(pulled, build)
    assert momentum.data_violation(data, model=model) > 1e-2


# ------------------------------------------------------- a conserved sum of a first-order system

TOTALS = [Conserved("linear", weights=["a", "c"]), Conserved("linear", weights={"b": 1, "c": 1})]
BINDING_LAWS = ["0.3*c - 0.8*a*b", "0.3*c - 0.8*a*b", "0.8*a*b - 0.3*c"]


def _binding(law=None, constraints=TOTALS, outputs=("a", "b", "c")):
    """A + B <-> C as one Flow (learned unless ``law``), both totals conserved."""
    return System("binding", coords=["a", "b", "c"], order=1, constraints=list(constraints),
                  modules=[Flow("reaction", inputs=["a", "b", "c"], outputs=list(outputs),
                                law=law, hidden=[3], grid=3)])


def _concentrations(seed=0):
    return torch.rand(64, 3, generator=torch.Generator().manual_seed(seed),
                      dtype=torch.float64) + 0.2


def test_a_learned_flow_keeps_both_totals_by_construction():
    model = compile_spec(_binding())
    q = _concentrations()
    rate = model.rate(q).detach()
    assert rate.abs().max() > 1e-3  # a random KAN, not zero
    torch.testing.assert_close(rate[:, 0] + rate[:, 2], torch.zeros(64), atol=1e-14, rtol=0)
    torch.testing.assert_close(rate[:, 1] + rate[:, 2], torch.zeros(64), atol=1e-14, rtol=0)
    assert any(isinstance(c, Projected) for c in model.blocks["reaction"].spec.constraints)
    assert TOTALS[0].violation(model, q, torch.zeros_like(q)) < 1e-12


def test_the_sum_spec_checks_and_round_trips():
    assert TOTALS[0].label == "Conserved(linear, a + c)"
    assert System.from_json(_binding().to_json()) == _binding()
    _binding(law=BINDING_LAWS)  # a law that keeps both sums passes the hard check
    with pytest.raises(SpecError, match="changes a \\+ c"):
        _binding(law=["0.3*c - 0.8*a*b", "0.3*c - 0.8*a*b", "0.8*a*b - 0.2*c"])
    with pytest.raises(SpecError, match="one output 'c'.*outputs="):
        System("binding", coords=["a", "b", "c"], order=1, constraints=TOTALS[:1],
               modules=[Flow("f", inputs=["a", "b", "c"], outputs=["c"])])
    with pytest.raises(SpecError, match="belongs to first-order systems"):
        System("spring", coords=["a"], constraints=[Conserved("linear", weights=["a"])],
               modules=[Potential("V", inputs=["a"])])
    with pytest.raises(SpecError, match="first-order system has rates only"):
        _binding(constraints=[Conserved("energy")])
    for weights in (None, "a", {"a": 0}, ["a", "a"], {"a": "x"}):
        with pytest.raises(SpecError, match="weights"):
            Conserved("linear", weights=weights)
    with pytest.raises(SpecError, match="weights= belongs"):
        Conserved("energy", weights=["a"])


def test_a_gradient_flow_keeps_a_sum_only_when_its_potential_ignores_that_direction():
    shifted = [Conserved("linear", weights=["x", "y"])]
    ok = System("flow", coords=["x", "y"], order=1, constraints=shifted,
                modules=[Potential("V", inputs={"d": "x - y"})])
    rate = compile_spec(ok).rate(_concentrations()[:, :2]).detach()
    torch.testing.assert_close(rate.sum(-1), torch.zeros(64), atol=1e-13, rtol=0)
    with pytest.raises(SpecError, match="move along the weights"):
        System("flow", coords=["x", "y"], order=1, constraints=shifted,
               modules=[Potential("V", inputs=["x", "y"])])


def test_soft_sum_penalizes_a_flow_that_breaks_it_and_data_show_none():
    soft = [Conserved("linear", weights=["a", "c"], mode="soft")]
    model = compile_spec(_binding(constraints=soft))
    q = _concentrations()
    assert soft[0].penalty(model, q, torch.zeros_like(q)) > 0
    truth = compile_spec(_binding(law=BINDING_LAWS, constraints=soft))
    assert float(soft[0].penalty(truth, q, torch.zeros_like(q))) < 1e-28
    # data from the truth keep a + c; data that grow c alone do not
    t = np.linspace(0.0, 2.0, 41)
    data = simulate(truth, t=(0.0, 2.0), dt=0.05, n_trajectories=3, seed=0,
                    initial=np.array([[1.0, 0.5, 0.2], [0.4, 1.2, 0.9], [1.5, 1.5, 0.3]]))
    assert soft[0].data_violation(data) < 1e-10
    growing = Trajectories.from_arrays([t], [np.stack([1 + 0 * t, 1 + 0 * t, 1 + t], -1)],
                                       coords=["a", "b", "c"])
    assert soft[0].data_violation(growing) > 0.1


def test_found_laws_are_judged_as_they_are_and_their_projection_agrees():
    spec = _binding()
    near = ["0.3*c - 0.8*a*b", "0.2999*c - 0.8002*a*b", "0.7999*a*b - 0.3001*c"]
    with_laws = spec.with_laws({"reaction": near})  # breaks a + c by 1e-4: soft, not refused
    assert all(c.mode == "soft" for c in with_laws.constraints)
    assert spec.with_laws({}).constraints == spec.constraints
    projected = Projected(((1.0, 0.0, 1.0), (0.0, 1.0, 1.0))).project(
        [sympy.sympify(e) for e in near])
    assert sympy.expand(projected[0] + projected[2]) == 0
    assert sympy.expand(projected[1] + projected[2]) == 0
    assert sympy.expand(projected[0] - projected[1]) == 0
