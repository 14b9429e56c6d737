"""Identifiable modules by construction: velocity Dynamics vanish at rest, learned
Dissipations are passive, and compile reports the pairs that can still trade a term."""

import warnings

import pytest
import torch

import pikan
import pikan.systems
from pikan import Dissipation, Dynamics, Potential, SpecError, System
from pikan.model.compile import PASSIVE_DEGREES, homogeneity, passive_dissipation
from pikan.spec.identifiability import Exchange, exchanges
from pikan.constraints import Even, Positive
from pikan.errors import IdentifiabilityWarning

SEEDS = (0, 1, 2)


def _scaled(model, name: str, scale: float, seed: int) -> None:
    """Random weights, far from the initialization: every KAN parameter times ``scale``
    plus noise, so the rules are checked for weights training could reach."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.blocks[name].core.parameters():
            p.mul_(scale).add_(torch.randn(p.shape, generator=generator, dtype=p.dtype))


def _states(n: int, d: int, seed: int, spread: float = 3.0) -> torch.Tensor:
    """``n`` states in ``d`` dimensions over several scales, the first ten at rest."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=generator, dtype=torch.float64)
    z = z * spread * torch.rand(n, 1, generator=generator, dtype=torch.float64) ** 2
    z[:10] = 0.0
    return z


# ------------------------------------------------------------------ Dynamics at rest


def _velocity_dynamics(**options) -> System:
    return System("trap", coords=["x", "y"],
                  modules=[Potential("V", ["x", "y"], law="(x**2 + y**2)/2"),
                           Dynamics("F", ["v_x", "v_y"], outputs=["x", "y"], **options)])


@pytest.mark.parametrize("seed", SEEDS)
def test_learned_velocity_dynamics_is_zero_at_rest_for_random_weights(seed):
    model = pikan.compile(_velocity_dynamics(), seed=seed)
    _scaled(model, "F", 5.0, seed)
    q = _states(50, 2, seed)
    force = model.forces(q, torch.zeros_like(q))["F"]
    assert torch.equal(force, torch.zeros_like(force))
    moving = model.forces(q, _states(50, 2, seed + 10)[10:].repeat(2, 1)[:50])["F"]
    assert moving[10:].abs().max() > 1e-3  # not zero everywhere


def test_velocity_features_vanish_at_their_rest_values():
    spec = System("s", coords=["x", "y"], params={"k": 2.0},
                  modules=[Dynamics("F", {"speed2": "v_x**2 + v_y**2", "e": "k*exp(v_x)"},
                                    outputs=["x"])])
    model = pikan.compile(spec, seed=3)
    _scaled(model, "F", 3.0, 3)
    assert model.blocks["F"].rest_inputs == (0.0, 2.0)
    q = _states(20, 2, 3)
    at_rest = model.forces(q, torch.zeros_like(q))["F"]
    moving = model.forces(q, _states(20, 2, 4, spread=1.0))["F"]
    # not bit-exact: the KAN's kernels round a row differently by its place in the batch
    assert float(at_rest.abs().max()) <= 1e-10 * float(moving.abs().max())
    assert float(moving.abs().max()) > 1e-3


def test_a_feature_that_is_not_finite_at_rest_is_a_spec_error():
    spec = System("s", coords=["x"], modules=[Dynamics("F", {"w": "1/v_x"}, outputs=["x"])])
    with pytest.raises(SpecError, match="vanish_at_rest=False"):
        pikan.compile(spec)
    pikan.compile(System("s", coords=["x"], modules=[
        Dynamics("F", {"w": "1/v_x"}, outputs=["x"], vanish_at_rest=False)]))


def test_vanish_at_rest_false_keeps_the_kan_output():
    model = pikan.compile(_velocity_dynamics(vanish_at_rest=False), seed=0)
    block = model.blocks["F"]
    assert block.rest_inputs is None
    z = _states(30, 2, 0)
    torch.testing.assert_close(block(z), block.kan(z), rtol=0, atol=0)
    assert block(z[:1]).abs().max() > 1e-6  # a force at rest, as the user asked


def test_position_and_gyroscopic_dynamics_are_not_shifted():
    spec = System("s", coords=["x", "y"], modules=[
        Dynamics("P", ["x", "v_x"], outputs=["x"]),
        Dynamics("B", ["v_x", "v_y"], outputs=["x", "y"], gyroscopic=True)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IdentifiabilityWarning)
        model = pikan.compile(spec, seed=1)
    assert model.blocks["P"].rest_inputs is None and model.blocks["B"].rest_inputs is None
    q = _states(20, 2, 1)
    assert torch.equal(model.forces(q, torch.zeros_like(q))["B"], torch.zeros(20, 2,
                                                                         dtype=torch.float64))


def test_vanishing_dynamics_still_fits_a_linear_velocity_force():
    torch.manual_seed(0)
    model = pikan.compile(_velocity_dynamics(hidden=[]), seed=0)
    block = model.blocks["F"]
    z = _states(400, 2, 0, spread=1.0)
    target = torch.stack([0.7 * z[:, 1], -0.7 * z[:, 0]], dim=-1)  # a magnetic-like force
    optimizer = torch.optim.Adam(block.parameters(), lr=0.02)
    for _ in range(400):
        optimizer.zero_grad()
        loss = ((block(z) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
    assert float(loss) < 1e-3 * float((target ** 2).mean())


# ------------------------------------------------------------------ passive Dissipation


def _dissipation(d: int, **options) -> System:
    coords = ["x", "y", "z"][:d]
    return System("damped", coords=coords,
                  modules=[Dissipation("D", [f"v_{c}" for c in coords], **options)])


@pytest.mark.parametrize("d,hidden", [(1, ()), (1, (8,)), (2, (8,)), (3, (4, 4))])
@pytest.mark.parametrize("seed", SEEDS)
def test_learned_dissipation_is_passive_for_random_weights(d, hidden, seed):
    model = pikan.compile(_dissipation(d, hidden=hidden), seed=seed)
    _scaled(model, "D", 10.0, seed)
    z = _states(3000, d, seed).requires_grad_(True)
    block = model.blocks["D"]
    value = block(z)
    (gradient,) = torch.autograd.grad(value.sum(), z)
    rate = (z * gradient).sum(-1)
    assert torch.isfinite(gradient).all()
    assert torch.equal(value[:10], torch.zeros(10, dtype=torch.float64))  # D(0) = 0
    assert torch.equal(gradient[:10], torch.zeros(10, d, dtype=torch.float64))  # dD/dv(0) = 0
    assert float(value.min()) >= 0.0
    # Euler's identity: the rate is sum_k a_k^2 |v|^alpha_k >= 0, up to rounding
    assert float(rate.min()) >= -1e-12 * float(rate.abs().max())
    assert float(rate.max()) > 0.0
    # the model's power of the Dissipation force is never positive
    q = torch.zeros_like(z)
    power = (model.forces(q, z.detach())["D"] * z.detach()).sum(-1)
    assert float(power.max()) <= 1e-12 * float(power.abs().max())


def test_passive_kan_reads_directions_inside_its_grid_wherever_the_grid_is():
    """Training places grids on the data (velocities of any range); the directions the
    KAN reads are mapped into its grid box, so they never fall off the grid."""
    model = pikan.compile(_dissipation(2, hidden=(4,)), seed=5)
    block = model.blocks["D"]
    v = _states(500, 2, 5, spread=0.2) + torch.tensor([0.3, -0.1], dtype=torch.float64)
    with torch.no_grad():
        block.kan.layers[0].update_grid(v, adaptivity=0.0)  # what fit's first grids do
    x = block.kan_inputs(v)
    layer = block.kan.layers[0]
    lo, hi = layer.knots[:, layer.order], layer.knots[:, -layer.order - 1]
    assert bool(((x >= lo - 1e-12) & (x <= hi + 1e-12)).all())
    z = v.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(block(z).sum(), z)
    assert float((z * gradient).sum(-1).min()) >= 0.0


def test_passive_rate_equals_the_sum_of_homogeneous_terms():
    z = _states(200, 2, 4).requires_grad_(True)

    def coefficients(u):
        return torch.stack([1.0 + u[:, 0], torch.sin(3 * u[:, 1]), u[:, 0] * u[:, 1]], dim=-1)

    degrees = (2.0, 3.0, 4.0)
    value = passive_dissipation(coefficients, z, degrees)[:, 0]
    (gradient,) = torch.autograd.grad(value.sum(), z)
    r = z.detach().norm(dim=-1)
    u = z.detach() / torch.where(r > 0, r, torch.ones_like(r))[:, None]
    expected = sum(coefficients(u)[:, k] ** 2 * r ** alpha for k, alpha in enumerate(degrees))
    torch.testing.assert_close((z * gradient).sum(-1), expected, rtol=1e-12, atol=1e-14)


def test_linear_and_quadratic_damping_are_exactly_representable():
    v = _states(100, 1, 5)[:, 0]
    c1, c2 = 0.1, 0.37

    def coefficients(u):
        ones = torch.ones(u.shape[0], dtype=u.dtype)
        return torch.stack([c1 ** 0.5 * ones, c2 ** 0.5 * ones, 0 * ones], dim=-1)

    value = passive_dissipation(coefficients, v[:, None], (2.0, 3.0, 4.0))[:, 0]
    torch.testing.assert_close(value, c1 * v ** 2 / 2 + c2 * v.abs() ** 3 / 3,
                               rtol=1e-14, atol=1e-16)


def test_learned_dissipation_fits_linear_plus_quadratic_damping():
    torch.manual_seed(0)
    model = pikan.compile(_dissipation(1, hidden=()), seed=0)
    v = _states(300, 1, 6, spread=1.5)
    q = torch.zeros_like(v)
    target = -(0.1 * v + 0.3 * v.abs() * v)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        optimizer.zero_grad()
        loss = ((model.forces(q, v)["D"] - target) ** 2).mean()
        loss.backward()
        optimizer.step()
    assert float(loss) < 1e-4 * float((target ** 2).mean())


@pytest.mark.parametrize("seed", SEEDS)
def test_a_shifted_rayleigh_function_cannot_hide_a_constant_force(seed):
    """The past failure V = (x + 0.058)**2 / 2, D = 0.05 (v_x - 0.58)**2: the shifted D
    pushes with 0.058 at rest. A passive D has no force at rest, whatever its weights."""
    spec = System("damped", coords=["x"], modules=[Potential("V", ["x"]),
                                                   Dissipation("D", ["v_x"])])
    model = pikan.compile(spec, seed=seed)
    _scaled(model, "D", 10.0, seed)
    q = _states(40, 1, seed)
    v = torch.zeros_like(q).requires_grad_(True)
    (gradient,) = torch.autograd.grad(model.blocks["D"](v).sum(), v)
    assert torch.equal(gradient, torch.zeros_like(gradient))
    assert torch.equal(model.forces(q, v.detach())["D"], torch.zeros_like(q))


def test_passive_false_is_the_kan_under_softplus():
    model = pikan.compile(_dissipation(1, passive=False), seed=0)
    block = model.blocks["D"]
    assert not block.passive
    z = _states(50, 1, 0).requires_grad_(True)
    torch.testing.assert_close(block(z), torch.nn.functional.softplus(block.kan(z))[:, 0])
    (gradient,) = torch.autograd.grad(block(z).sum(), z)
    assert gradient[:10].abs().max() > 0  # a force at rest is possible, as the user asked


def test_passive_ignores_a_hard_positive_and_keeps_even():
    spec = System("damped", coords=["x"], modules=[
        Dissipation("D", ["v_x"], constraints=[Even("v_x"), Positive()])])
    model = pikan.compile(spec, seed=2)
    _scaled(model, "D", 5.0, 2)
    z = _states(50, 1, 2)
    block = model.blocks["D"]
    torch.testing.assert_close(block(z), block(-z), rtol=1e-13, atol=0)
    assert torch.equal(block(z[:10]), torch.zeros(10, dtype=torch.float64))


def test_passive_dissipation_gradcheck_and_gradgradcheck():
    model = pikan.compile(_dissipation(2, hidden=(4,)), seed=7)
    _scaled(model, "D", 2.0, 7)
    block = model.blocks["D"]
    z = _states(12, 2, 7)[10:].clone().requires_grad_(True)
    z = torch.cat([z, 0.3 * torch.ones(3, 2, dtype=torch.float64)]).detach().requires_grad_(True)
    assert torch.autograd.gradcheck(block, (z,))
    assert torch.autograd.gradgradcheck(block, (z,))
    # at rest the gradient is 0 and the central difference is O(eps |a|^2): check it with
    # the initial weights (|a| ~ 1), where that is below gradcheck's tolerance
    rest = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    initial = pikan.compile(_dissipation(2, hidden=(4,)), seed=7).blocks["D"]
    assert torch.autograd.gradcheck(initial, (rest,))


def test_degrees_follow_the_homogeneity_of_the_features():
    assert homogeneity([pikan.spec.expr.parse("v_x - v_y")], ["v_x", "v_y"]) == 1.0
    assert homogeneity([pikan.spec.expr.parse("v_x**2 + v_y**2")], ["v_x", "v_y"]) == 2.0
    assert homogeneity([pikan.spec.expr.parse("sqrt(v_x**2 + v_y**2)")], ["v_x", "v_y"]) == 1.0
    assert homogeneity([pikan.spec.expr.parse("v_x"), pikan.spec.expr.parse("v_y**2")],
                       ["v_x", "v_y"]) is None
    assert homogeneity([pikan.spec.expr.parse("exp(v_x)")], ["v_x"]) is None
    spec = System("s", coords=["x", "y"],
                  modules=[Dissipation("D", {"s2": "v_x**2 + v_y**2"})])
    block = pikan.compile(spec).blocks["D"]
    assert block.passive_degrees == tuple(d / 2 for d in PASSIVE_DEGREES)
    v = _states(300, 2, 8).requires_grad_(True)
    state = torch.cat([torch.zeros_like(v), v], dim=-1)
    value = block.evaluate(state)[:, 0]
    (gradient,) = torch.autograd.grad(value.sum(), v)
    assert float((v * gradient).sum(-1).min()) >= 0.0  # passive in v, not only in z


# ------------------------------------------------------------------ torch.func


def test_torch_func_transforms_work_with_both_constructions():
    spec = System("s", coords=["x", "y"], modules=[
        Potential("V", ["x", "y"]),
        Dynamics("F", ["v_x", "v_y"], outputs=["x", "y"]),
        Dissipation("D", ["v_x", "v_y"])])
    model = pikan.compile(spec, seed=0)
    q, v = _states(8, 2, 9, spread=1.0), _states(8, 2, 10, spread=1.0)
    batched = model.acceleration(q, v)
    single = torch.func.vmap(lambda a, b: model.acceleration(a[None], b[None])[0])(q, v)
    torch.testing.assert_close(single, batched)
    jac = torch.func.jacrev(lambda b: model.acceleration(q[:1], b[None])[0])(v[0])
    assert jac.shape == (2, 2) and torch.isfinite(jac).all()
    hess = torch.func.hessian(lambda b: model.blocks["D"](b[None])[0])(torch.zeros(2,
                                                                         dtype=torch.float64))
    assert torch.isfinite(hess).all()
    hess_moving = torch.func.hessian(lambda b: model.blocks["D"](b[None])[0])(v[3])
    assert torch.isfinite(hess_moving).all()


# ------------------------------------------------------------------ exchanges


def _compiled(spec):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = pikan.compile(spec)
    return model, [w for w in caught if issubclass(w.category, IdentifiabilityWarning)]


P = Potential
CASES = {
    "two potentials on x": (
        [P("V", ["x"]), P("W", ["x", "y"])], [("V", "W", "potential term in x", False)]),
    "potentials on disjoint coordinates": ([P("V", ["x"]), P("W", ["y"])], []),
    "potential and position dynamics": (
        [P("V", ["x", "y"]), Dynamics("F", ["x", "v_x"], outputs=["x"])],
        [("V", "F", "position-dependent force on x", False)]),
    "potential and velocity dynamics": (
        [P("V", ["x", "y"]), Dynamics("F", ["v_x", "v_y"], outputs=["x", "y"])],
        [("V", "F", "constant force on x, y", True)]),
    "potential and velocity dynamics, option off": (
        [P("V", ["x", "y"]), Dynamics("F", ["v_x", "v_y"], outputs=["x", "y"],
                                      vanish_at_rest=False)],
        [("V", "F", "constant force on x, y", False)]),
    "potential and gyroscopic dynamics": (
        [P("V", ["x", "y"]), Dynamics("F", ["v_x", "v_y"], outputs=["x", "y"],
                                      gyroscopic=True)], []),
    "potential and dissipation": (
        [P("V", ["x"]), Dissipation("D", ["v_x"])], [("V", "D", "constant force on x", True)]),
    "potential and dissipation, option off": (
        [P("V", ["x"]), Dissipation("D", ["v_x"], passive=False)],
        [("V", "D", "constant force on x", False)]),
    "two dissipations": (
        [Dissipation("D", ["v_x"]), Dissipation("E", ["v_x", "v_y"])],
        [("D", "E", "dissipation term", False)]),
    "dissipation and velocity dynamics": (
        [Dissipation("D", ["v_x"]), Dynamics("F", ["v_x"], outputs=["x"])],
        [("D", "F", "velocity-dependent force on x", False)]),
    "a radial potential and one of x, y share r**2": (
        [P("V", ["x", "y"]), P("W", {"r": "sqrt(x**2 + y**2)"})],
        [("V", "W", "potential term in x, y", False)]),
    "a potential of x + y and one of x - y share only constants at degree 2": (
        [P("V", {"s": "x + y"}), P("W", {"d": "x - y"})],
        [("V", "W", "a constant only", True)]),
    "a known potential cannot trade": (
        [P("V", ["x"], law="x**2/2"), Dynamics("F", ["x"], outputs=["x"])], []),
}


@pytest.mark.parametrize("case", list(CASES))
def test_compile_reports_every_pair_that_can_trade(case):
    modules, expected = CASES[case]
    model, caught = _compiled(System("s", coords=["x", "y"], modules=modules))
    assert len(model.exchanges) == len(expected)
    for exchange, (a, b, what, fixed) in zip(model.exchanges, expected):
        assert isinstance(exchange, Exchange)
        assert exchange.modules == (a, b) and what in exchange.what
        assert exchange.fixed == fixed
        assert (exchange.convention is not None) == fixed
    unfixed = [e for e in model.exchanges if not e.fixed]
    assert len(caught) == len(unfixed)  # once per pair, and never for a fixed pair
    for warning, exchange in zip(caught, unfixed):
        text = str(warning.message)
        assert repr(exchange.modules[0]) in text and repr(exchange.modules[1]) in text
        assert exchange.what in text


def test_exchanges_are_computed_from_the_spec_alone():
    spec = System("s", coords=["x"], modules=[P("V", ["x"]), P("W", ["x"])])
    assert exchanges(spec) == [Exchange(("V", "W"), exchanges(spec)[0].what, None)]
    assert "not fixed" not in exchanges(spec)[0].message()  # says what to do instead
    assert "Hint" in exchanges(spec)[0].message()


def test_a_one_body_trap_and_a_pair_law_share_only_constants():
    """Sum_i f(x_i, y_i) and sum_{i<j} g(r_ij): the pair sum's mixed second derivatives
    couple particles, the one-body sum's never do, so nothing but a constant can move."""
    coords = [f"{c}{i}" for i in range(3) for c in "xy"]
    trap = P("trap", ["x", "y"], bindings=[{"x": f"x{i}", "y": f"y{i}"} for i in range(3)])
    pair = P("pair", ["r"], bindings=pikan.all_pairs(
        [(f"x{i}", f"y{i}") for i in range(3)], name="r",
        expr="sqrt(({b[0]} - {a[0]})**2 + ({b[1]} - {a[1]})**2)"))
    model, caught = _compiled(System("gas", coords=coords, modules=[trap, pair]))
    assert caught == [] and len(model.exchanges) == 1
    assert model.exchanges[0].fixed and "constant only" in model.exchanges[0].what
    # a pair law of sums x_i + x_j can write a one-body linear term: it must be reported
    sums = P("pair", ["s"], bindings=[{"s": f"x{i} + x{j}"} for i in range(3)
                                      for j in range(i + 1, 3)])
    model, caught = _compiled(System("gas", coords=coords, modules=[trap, sums]))
    assert len(caught) == 1 and not model.exchanges[0].fixed


@pytest.mark.parametrize("name", pikan.systems.names())
def test_catalogue_models_compile_without_identifiability_warnings(name):
    entry = pikan.systems.get(name)
    for spec in (entry.truth(), entry.model()):
        model, caught = _compiled(spec)
        assert caught == []
        assert all(e.fixed for e in model.exchanges)


def test_a_drive_beside_a_potential_and_a_passive_dissipation_is_fixed():
    spec = System("driven", coords=["x"], modules=[
        Potential("V", inputs=["x"]), Dissipation("D", inputs=["v_x"]),
        Dynamics("drive", inputs=["t"], outputs=["x"])])
    found = {e.modules: e for e in exchanges(spec)}
    assert found[("V", "drive")].fixed and "constant force" in found[("V", "drive")].what
    assert found[("D", "drive")].fixed and "passive" in found[("D", "drive")].convention
    mixed = System("mixed", coords=["x"], modules=[
        Potential("V", inputs=["x"]), Dynamics("F", inputs=["x", "t"], outputs=["x"])])
    assert not exchanges(mixed)[0].fixed  # a force of x and t: any conservative part
