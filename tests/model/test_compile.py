
import pytest
import torch

import pikan
from pikan.model import mechanics
from pikan.model.compile import compile
from pikan.errors import SpecError
from pikan.spec.system import Dissipation, Dynamics, Lagrangian, Potential, System, chain_pairs


def _states(n, batch=32, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * (2 * torch.rand(batch, n, generator=g) - 1),
            2 * torch.rand(batch, n, generator=g) - 1)


def _close(a, b):
    torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_harmonic_oscillator_1d():
    spec = System("harmonic", coords=["x"], masses=2.0, params={"k": 3.0},
                  modules=[Potential("V", inputs=["x"], law="k*x**2/2")])
    q, v = _states(1)
    model = compile(spec)
    _close(model.acceleration(q, v), -3.0 * q / 2.0)
    _close(model.energy(q, v), (v**2 + 1.5 * q**2)[:, 0])


def test_pendulum():
    spec = System("pendulum", coords=["theta"], params={"g": 9.81, "l": 2.0},
                  modules=[Potential("V", inputs=["theta"], law="-g/l*cos(theta)")])
    q, v = _states(1, scale=3.0)
    _close(compile(spec).acceleration(q, v), -9.81 / 2.0 * torch.sin(q))


def test_anisotropic_with_damping_per_coordinate_masses():
    spec = System("aniso", coords=["x", "y"], masses=[1.0, 2.0],
                  modules=[Potential("V", inputs=["x", "y"], law="x**2/2 + y**2"),
                           Dissipation("D", inputs=["v_x", "v_y"], law="0.1*(v_x**2 + v_y**2)/2")])
    q, v = _states(2)
    expected = torch.stack([-q[:, 0] - 0.1 * v[:, 0], (-2 * q[:, 1] - 0.1 * v[:, 1]) / 2], 1)
    _close(compile(spec).acceleration(q, v), expected)


def test_charged_particle_in_magnetic_field_and_trap():
    spec = System("lorentz", coords=["x", "y"], params={"k": 0.8, "w": 1.2},
                  modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + y**2)/2"),
                           Dynamics("F", inputs=["v_x", "v_y"], outputs=["x", "y"],
                                    law=["w*v_y", "-w*v_x"], gyroscopic=True)])
    q, v = _states(2)
    expected = -0.8 * q + 1.2 * torch.stack([v[:, 1], -v[:, 0]], 1)
    model = compile(spec)
    _close(model.acceleration(q, v), expected)
    # the magnetic force does no work: dE/dt = v . F_magnetic = 0
    power = (v * model.forces(q, v)["F"]).sum(-1)
    assert float(power.abs().max()) < 1e-14


def test_spring_chain_with_shared_bond_bindings():
    coords = ["x1", "x2", "x3"]
    spec = System("chain", coords=coords, params={"k": 2.0},
                  modules=[Potential("bond", inputs=["d"], law="k*d**2/2 + d**4/4",
                                     bindings=chain_pairs(coords, name="d"))])
    q, v = _states(3)
    d1, d2 = q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]

    def f(d):  # tension: dV/dd
        return 2.0 * d + d**3

    expected = torch.stack([f(d1), f(d2) - f(d1), -f(d2)], 1)
    model = compile(spec)
    _close(model.acceleration(q, v), expected)
    assert model.blocks["bond"].bindings.linear


def test_long_chain_gathers_its_bindings_and_matches_the_closed_form():
    # 300 masses: the (600, 301) binding matrix is large and sparse, so it is gathered
    coords = [f"x{i}" for i in range(300)]
    spec = System("chain", coords=coords, params={"k": 2.0},
                  modules=[Potential("bond", inputs=["d"], law="k*d**2/2 + d**4/4",
                                     bindings=chain_pairs(coords, name="d"))])
    q, v = _states(300)
    d = q[:, 1:] - q[:, :-1]
    tension = 2.0 * d + d**3
    zero = torch.zeros(q.shape[0], 1, dtype=q.dtype)
    expected = torch.cat([tension, zero], 1) - torch.cat([zero, tension], 1)
    model = compile(spec)
    assert model.blocks["bond"].bindings.linear and model.blocks["bond"].bindings.sparse
    _close(model.acceleration(q, v), expected)


def test_lagrangian_double_pendulum():
    # unit masses and lengths, g = 9.81
    law = ("(2*w1**2 + w2**2 + 2*w1*w2*cos(t1 - t2))/2 + 9.81*(2*cos(t1) + cos(t2))")
    spec = System("double_pendulum", coords=["t1", "t2"], velocities=["w1", "w2"],
                  modules=[Lagrangian("L", inputs=["t1", "t2", "w1", "w2"], law=law)])
    q, v = _states(2, scale=2.0)
    t1, t2, w1, w2 = q[:, 0], q[:, 1], v[:, 0], v[:, 1]
    g, delta = 9.81, t1 - t2
    den = 3 - torch.cos(2 * delta)
    a1 = (-3 * g * torch.sin(t1) - g * torch.sin(t1 - 2 * t2)
          - 2 * torch.sin(delta) * (w2**2 + w1**2 * torch.cos(delta))) / den
    a2 = (2 * torch.sin(delta) * (2 * w1**2 + 2 * g * torch.cos(t1)
                                  + w2**2 * torch.cos(delta))) / den
    model = compile(spec)
    _close(model.acceleration(q, v), torch.stack([a1, a2], 1))
    energy = (2 * w1**2 + w2**2 + 2 * w1 * w2 * torch.cos(delta)) / 2 - g * (2 * torch.cos(t1) + torch.cos(t2))
    _close(model.energy(q, v), energy)


def test_singular_mass_matrix_gives_nan_accelerations_only_where_singular():
    # d2L/dv2 = x**2 vanishes at x = 0: no acceleration there, an ordinary one elsewhere
    spec = System("degenerate", coords=["x"],
                  modules=[Lagrangian("L", inputs=["x", "v_x"], law="x**2*v_x**2/2")])
    q = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    v = torch.ones(2, 1, dtype=torch.float64)
    a = compile(spec).acceleration(q, v)
    assert torch.isnan(a[0]).all()
    _close(a[1:], torch.tensor([[-1.0]], dtype=torch.float64))  # x a = -v**2 at x = 1, v = 1


def test_central_potential_through_feature():
    spec = System("kepler", coords=["x", "y"], params={"GM": 1.5},
                  modules=[Potential("V", inputs={"r": "sqrt(x**2 + y**2)"}, law="-GM/r")])
    q, v = _states(2)
    q = q + 2.0  # keep away from r = 0
    r = q.norm(dim=1, keepdim=True)
    _close(compile(spec).acceleration(q, v), -1.5 * q / r**3)


def _learned():
    truth = System("aniso", coords=["x", "y"],
                   modules=[Potential("V", inputs=["x", "y"], law="x**2/2 + y**2"),
                            Dynamics("F", inputs=["x", "v_x", "v_y"], outputs=["x", "y"],
                                     law=["-0.1*v_x", "x*v_y"])])
    return truth.learn("V", hidden=[4], grid=5).learn("F", hidden=[3])


def test_learned_potential_force_equals_finite_difference_gradient():
    model = compile(_learned())
    q, v = _states(2, batch=8)
    force = model.forces(q, v)["V"]
    eps = 1e-6
    for i in range(2):
        dq = torch.zeros_like(q)
        dq[:, i] = eps
        fd = -(model.potential(q + dq) - model.potential(q - dq)) / (2 * eps)
        torch.testing.assert_close(force[:, i], fd, atol=1e-8, rtol=1e-7)


def test_acceleration_loss_trains_through_double_backward():
    truth = System("aniso", coords=["x", "y"],
                   modules=[Potential("V", inputs=["x", "y"], law="x**2/2 + y**2")])
    model = compile(truth.learn("V", hidden=[4]))
    q, v = _states(2, batch=128)
    target = compile(truth).acceleration(q, v)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = ((model.acceleration(q, v) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def _autograd_acceleration(model, q, v):
    """The reference route: accelerations with dV/dq by autograd (a double backward to train)."""
    return mechanics.newtonian_acceleration(
        model.masses, q, v, potential=model.scalar_sum("Potential"),
        force=model.direct_force(), dissipation=model.scalar_sum("Dissipation"))


@pytest.mark.parametrize("case", ["coordinates", "feature", "chain", "long chain", "positive"])
def test_written_out_potential_gradient_equals_the_autograd_route(case):
    """Learned potentials take dV/dq from the KANs' spline slopes; accelerations and the
    parameter gradients of an acceleration loss equal the autograd route's."""
    from pikan.constraints import Positive

    n = 2
    if case == "coordinates":
        spec = _learned()
    elif case == "feature":  # a nonlinear binding: its pullback is a torch.func.vjp
        spec = System("kepler", coords=["x", "y"], modules=[
            Potential("V", inputs={"r": "sqrt(x**2 + y**2)"}, law="-1/r")]).learn("V", hidden=[3])
    elif case in ("chain", "long chain"):  # shared bindings: a dense or a gathered matrix
        n = 3 if case == "chain" else 300
        coords = [f"x{i}" for i in range(n)]
        spec = System("chain", coords=coords, modules=[
            Potential("bond", inputs=["d"], law="d**2/2", bindings=chain_pairs(coords, name="d"))
        ]).learn("bond", hidden=[3])
    else:  # a hard output constraint wraps the KAN: autograd route
        spec = System("trap", coords=["x", "y"], modules=[
            Potential("V", inputs=["x", "y"], law="x**2 + y**2",
                      constraints=[Positive()])]).learn("V", hidden=[3])
    model = compile(spec)
    q, v = _states(n, batch=16, scale=1.5)
    q = q + (2.0 if case == "feature" else 0.0)  # away from r = 0
    fast, slow = model.acceleration(q, v), _autograd_acceleration(model, q, v)
    assert (model._potential_gradient() is None) == (case == "positive")
    _close(fast, slow)
    for name, force in model.forces(q, v).items():
        if model.blocks[name].kind == "Potential":
            _close(force, -mechanics.gradient_q(model.scalar_sum("Potential"), q, v))
    params = [p for p in model.parameters() if p.requires_grad]
    grads_fast = torch.autograd.grad((fast**2).sum(), params, allow_unused=True)
    grads_slow = torch.autograd.grad((slow**2).sum(), params, allow_unused=True)
    for a, b in zip(grads_fast, grads_slow):
        if a is None or b is None:
            assert (a is None or a.abs().max() == 0) and (b is None or b.abs().max() == 0)
        else:
            torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)


def test_mixed_potentials_take_each_route_block_by_block():
    """One written-out and one wrapped (autograd) potential in one model."""
    from pikan.constraints import Positive

    spec = System("trap", coords=["x", "y"], modules=[
        Potential("V", inputs=["x", "y"], law="x**2 + y**2"),
        Potential("W", inputs=["x"], law="x**4", constraints=[Positive()]),
    ]).learn("V", hidden=[3]).learn("W", hidden=[3])
    model = compile(spec)
    assert model.blocks["V"].has_state_gradient and not model.blocks["W"].has_state_gradient
    assert model._potential_gradient() is not None  # V keeps its written-out gradient
    q, v = _states(2, batch=16, scale=1.5)
    _close(model.acceleration(q, v), _autograd_acceleration(model, q, v))
    for name, force in model.forces(q, v).items():
        block = model.blocks[name]
        _close(force, -mechanics.gradient_q(lambda q_, v_, b=block: b.evaluate(
            torch.cat([q_, v_], 1))[:, 0], q, v))


def test_gradcheck_accelerations_wrt_parameters_and_state():
    model = compile(_learned())
    block = model.blocks["V"].kan
    q, v = _states(2, batch=3)
    q.requires_grad_(True)
    coef = block.layers[0].coef

    def f(q, coef):
        params = {"blocks.V.core.layers.0.coef": coef}
        return torch.func.functional_call(model, params, (q, v))

    assert torch.autograd.gradcheck(f, (q, coef.detach().clone().requires_grad_(True)))


def test_vmap_over_states_equals_batched_call():
    model = compile(_learned())
    q, v = _states(2, batch=6)
    batched = model.acceleration(q, v)
    single = torch.func.vmap(lambda qi, vi: model.acceleration(qi[None], vi[None])[0])(q, v)
    torch.testing.assert_close(single, batched, atol=1e-12, rtol=0)


def test_vector_field_energy_and_block_call():
    model = compile(_learned())
    q, v = _states(2, batch=5)
    dy = model.vector_field(0.0, torch.cat([q, v], 1))
    _close(dy[:, :2], v)
    _close(dy[:, 2:], model.acceleration(q, v))
    block = model.modules_by_name["V"]
    _close(block(x=q[:, 0], y=q[:, 1]), block(q))
    _close(model.energy(q, v), 0.5 * (v**2).sum(1) + block(q))


def test_learned_gyroscopic_dynamics_conserves_energy_exactly():
    spec = System("lorentz", coords=["x", "y"],
                  modules=[Potential("V", inputs=["x", "y"], law="(x**2 + y**2)/2"),
                           Dynamics("F", inputs=["x", "y", "v_x", "v_y"], outputs=["x", "y"],
                                    gyroscopic=True)])
    model = compile(spec)
    q, v = _states(2)
    power = (v * model.forces(q, v)["F"]).sum(-1)
    assert float(power.abs().max()) < 1e-14
    assert float(model.forces(q, v)["F"].abs().max()) > 0


def test_a_fixed_gyroscopic_law_holds_its_field_constants_once():
    import sympy

    from pikan.laws.uncertainty import law_constants
    from pikan.model.compile import field_entries

    x, vx, vy = sympy.symbols("x v_x v_y")
    field = sympy.Rational(137, 100) + sympy.Float(0.41) * x
    assert field_entries([field * vy, -field * vx], [vx, vy]) == [field]
    assert field_entries([field * vy, -2 * field * vx], [vx, vy]) is None  # does work
    assert field_entries([vy * vx, -vx * vx], [vx, vy]) is None  # B depends on v
    spec = System("lorentz", coords=["x", "y"],
                  modules=[Potential("V", inputs=["x", "y"], law="(x**2 + y**2)/2"),
                           Dynamics("F", inputs=["x", "y", "v_x", "v_y"], outputs=["x", "y"],
                                    gyroscopic=True)])
    model = compile(spec)
    model.fix("F", ["(1.37 + 0.41*x)*v_y", "-(1.37 + 0.41*x)*v_x"], trainable=True)
    constants = law_constants(model, ["F"])
    assert len(constants) == 2  # 1.37 and 0.41, shared by both outputs
    q, v = _states(2)
    expected = (1.37 + 0.41 * q[:, :1]) * torch.stack([v[:, 1], -v[:, 0]], -1)
    _close(model.forces(q, v)["F"], expected)
    with torch.no_grad():  # a moved constant moves in both outputs: still no work
        constants[1][2].data[constants[1][1]] = 0.5
        assert float((v * model.forces(q, v)["F"]).sum(-1).abs().max()) < 1e-14
    exprs = model.blocks["F"].law_exprs()
    assert sympy.simplify(exprs[0] - (1.37 + 0.5 * x) * vy) == 0
    assert sympy.simplify(exprs[1] + (1.37 + 0.5 * x) * vx) == 0
    templates, dummies = model.blocks["F"].law_templates()
    assert len(dummies) == 2 and all(t.free_symbols >= set(dummies) for t in templates)


def test_learned_masses_are_positive_parameters():
    spec = System("h", coords=["x"], masses="learn", modules=[Potential("V", inputs=["x"], law="x**2/2")])
    model = compile(spec)
    assert model.mass_raw.requires_grad
    torch.testing.assert_close(model.masses, torch.ones(1, dtype=torch.float64))


def test_float32_model():
    model = compile(_learned(), dtype=torch.float32)
    q, v = _states(2)
    assert model.acceleration(q.float(), v.float()).dtype == torch.float32


def test_graph_names_modules_features_gradients():
    spec = System("kepler", coords=["x", "y"],
                  modules=[Potential("V", inputs={"r": "sqrt(x**2 + y**2)"})])
    graph = compile(spec).graph()
    kinds = {k: n["kind"] for k, n in graph["nodes"].items()}
    assert kinds["V"] == "module" and kinds["-dV/dq"] == "gradient"
    assert ("V", "-dV/dq") in graph["edges"] and ("-dV/dq", "a_x") in graph["edges"]
    assert any(n["kind"] == "feature" and "sqrt" in n["label"] for n in graph["nodes"].values())
    assert compile(spec).graph("dot").startswith('digraph "kepler"')


def test_state_shape_errors_are_spec_errors():
    model = compile(_learned())
    with pytest.raises(SpecError, match="coordinates"):
        model.acceleration(torch.zeros(3, 3), torch.zeros(3, 3))
    with pytest.raises(SpecError, match="no module 'W'"):
        model.module_inputs("W", torch.zeros(1, 2), torch.zeros(1, 2))


def test_fix_replaces_kan_with_trainable_law():
    model = compile(_learned())
    model.fix("V", "0.4*x**2 + 1.1*y**2")
    q, _ = _states(2)
    _close(model.potential(q), 0.4 * q[:, 0] ** 2 + 1.1 * q[:, 1] ** 2)
    assert model.blocks["V"].core[0].constants.requires_grad
    assert not model.blocks["V"].is_learned



def test_a_normalised_block_is_its_kan_on_rescaled_inputs_and_outputs():
    """A block's scales (set by fit's normalisation): F(z) = c * KAN(z / s) on every route,
    the written-out potential gradient included; they travel in the state dict; weights
    saved without them (an older pikan) load as ones; a law fixed in the block drops them."""
    model = compile(_learned())
    block = model.blocks["V"]
    assert block.input_scale.tolist() == [1.0, 1.0] and block.output_scale.tolist() == [1.0]
    plain = {k: v.clone() for k, v in model.state_dict().items()}
    block.input_scale.copy_(torch.tensor([1e3, 1e-2]))
    block.output_scale.copy_(torch.tensor([1e5]))
    q, v = _states(2, batch=16)
    q = q * torch.tensor([1e3, 1e-2])
    _close(block(q), 1e5 * block.kan(q / torch.tensor([1e3, 1e-2]))[:, 0])
    fast, slow = model.acceleration(q, v), _autograd_acceleration(model, q, v)
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=0.0)
    again = compile(_learned())
    again.load_state_dict(model.state_dict())
    _close(again.acceleration(q, v), fast)
    older = {k: w for k, w in plain.items() if not k.endswith(("input_scale", "output_scale"))}
    again.load_state_dict(older)
    assert again.blocks["V"].input_scale.tolist() == [1.0, 1.0]
    model.fix("V", "0.4*x**2 + 1.1*y**2")
    assert [k for k in model.state_dict() if k.endswith("_scale")] == [
        "blocks.F.input_scale", "blocks.F.output_scale"]
    _close(model.potential(q), 0.4 * q[:, 0] ** 2 + 1.1 * q[:, 1] ** 2)


def test_linear_dynamics_term_is_read_exactly_from_the_jump_path():
    import sympy

    from pikan.laws.generators.kan_edges import kan_formulas

    """F = -0.7 x: with jump=True the KAN needs no spline; the formula is the jump weight."""
    truth = pikan.System("drag", coords=["x"],
                         modules=[pikan.Dynamics("F", inputs=["x"], outputs=["x"], law=["-0.7*x"])])
    spec = truth.learn("F", hidden=[], jump=True)
    assert pikan.System.from_json(spec.to_json()) == spec
    model = pikan.compile(spec)
    kan = model.blocks["F"].kan
    q = torch.linspace(-1, 1, 200, dtype=torch.float64)[:, None]
    v = torch.zeros_like(q)
    target = -0.7 * q
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(300):
        opt.zero_grad()
        loss = ((model.acceleration(q, v) - target) ** 2).mean() + 1e-2 * kan.regularization()
        loss.backward()
        opt.step()
    spline_edge = kan.activations(q)[0].edges[:, 0, 0]
    assert float(spline_edge.abs().max()) < 0.05 * 0.7  # the jump path carries the force
    formula = kan_formulas(kan, q, names=["x"])["kan"][0]
    x = sympy.Symbol("x")
    assert abs(float(formula.coeff(x)) + 0.7) < 0.007, formula
    assert abs(float(formula.subs(x, 0))) < 1e-3, formula
    laws = pikan.extract(model, pikan.Trajectories.from_arrays(
        torch.linspace(0, 1, 200).numpy(), q.numpy(), v=v.numpy(), a=target.numpy(), coords=["x"]))
    assert pikan.equivalent(laws["F"].expr[0], "-0.7*x", up_to_constant=False, rtol=1e-3)


def test_passive_dissipation_and_resting_dynamics_force_equals_finite_differences():
    """Both identifiable constructions are plain autograd functions: the Dissipation force
    is -dD/dv by central differences, the Dynamics force is the block output, and the
    passive block never takes the written-out gradient path (its KAN is not D)."""
    spec = System("s", coords=["x", "y"], modules=[
        Potential("V", inputs=["x", "y"], law="(x**2 + y**2)/2"),
        Dynamics("F", inputs=["v_x", "v_y"], outputs=["x", "y"]),
        Dissipation("D", inputs=["v_x", "v_y"])])
    model = compile(spec, seed=1)
    block = model.blocks["D"]
    assert block.passive and not block.has_state_gradient and model.exchanges
    q, v = (t.double() for t in _states(2, batch=8, seed=2))
    force = model.forces(q, v)["D"]
    eps = 1e-6
    for i in range(2):
        dv = torch.zeros_like(v)
        dv[:, i] = eps
        fd = -(block(v + dv) - block(v - dv)) / (2 * eps)
        torch.testing.assert_close(force[:, i], fd, atol=1e-8, rtol=1e-7)
    accel = model.acceleration(q, v)
    expected = -q + model.forces(q, v)["F"] + force
    _close(accel, expected)


# ------------------------------------------------------------------ driven systems

DRIVEN = System("driven_duffing", coords=["x"], params={"c": 0.21, "A": 0.63, "w": 1.17},
                modules=[Potential("V", inputs=["x"], law="1.3*x**2/2 + 0.37*x**4/4"),
                         Dissipation("D", inputs=["v_x"], law="c*v_x**2/2"),
                         Dynamics("drive", inputs=["t"], outputs=["x"], law=["A*cos(w*t)"])])


def test_a_driven_model_reads_the_time_of_every_state():
    model = compile(DRIVEN)
    q, v = _states(1)
    t = torch.linspace(0.0, 5.0, q.shape[0], dtype=torch.float64)
    expected = -1.3 * q - 0.37 * q**3 - 0.21 * v + 0.63 * torch.cos(1.17 * t)[:, None]
    _close(model.acceleration(q, v, t), expected)
    _close(model.vector_field(t[:, None], torch.cat([q, v], dim=-1))[:, 1:], expected)
    _close(model.acceleration(q, v, 2.0), expected - 0.63 * torch.cos(1.17 * t)[:, None]
           + 0.63 * torch.cos(torch.tensor(1.17 * 2.0, dtype=torch.float64)))
    _close(model.forces(q, v, t)["drive"], 0.63 * torch.cos(1.17 * t)[:, None])
    with pytest.raises(SpecError, match="is driven"):
        model.acceleration(q, v)


def test_a_first_order_model_gives_rates_from_flows_and_gradient_flows():
    from pikan.spec.system import Flow
    spec = System("flow", coords=["x", "y"], order=1, modules=[
        Potential("V", inputs=["x", "y"], law="x**4/4 - 0.8*x**2/2 + 0.3*x*y"),
        Flow("f", inputs=["x", "y"], outputs=["y"], law=["x - y"])])
    model = compile(spec)
    q, _ = _states(2)
    x, y = q[:, 0], q[:, 1]
    expected = torch.stack([-(x**3 - 0.8 * x + 0.3 * y), -0.3 * x + x - y], dim=1)
    _close(model.rate(q), expected)
    _close(model.vector_field(0.0, q), expected)
    _close(model.energy(q, None), x**4 / 4 - 0.4 * x**2 + 0.3 * x * y)
    with pytest.raises(SpecError, match="first order"):
        model.acceleration(q, q)
