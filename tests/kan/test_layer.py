import pytest
import torch

from pikan.kan import spline
from pikan.kan.layer import KANLayer


def _layer(**kw):
    return KANLayer(3, 2, generator=torch.Generator().manual_seed(0), **kw)


def _naive(layer, x):
    """Slow obvious reference: a loop over edges with scipy-checked spline bases."""
    out = torch.zeros(x.shape[0], layer.out_dim)
    for i in range(layer.in_dim):
        basis, start = spline.cox_de_boor(x[:, i:i + 1], layer.knots[i:i + 1], layer.order)
        for j in range(layer.out_dim):
            coef = layer.coef[i, :, j]
            idx = start[:, 0, None] + torch.arange(layer.order + 1)
            s = (basis[:, 0] * coef[idx]).sum(-1)
            edge = layer.w_base[i, j] * torch.nn.functional.silu(x[:, i]) + layer.w_spline[i, j] * s
            out[:, j] += layer.mask[i, j] * edge
    return out


def test_forward_matches_naive_edge_loop():
    layer = _layer()
    layer.set_mask(torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]))
    x = torch.rand(64, 3, generator=torch.Generator().manual_seed(1)) * 3 - 1.5
    torch.testing.assert_close(layer(x), _naive(layer, x), atol=1e-12, rtol=0)
    torch.testing.assert_close(layer.edge_outputs(x).sum(1), layer(x), atol=1e-12, rtol=0)


def test_gradcheck_first_and_second_derivatives():
    layer = _layer()
    x = (torch.rand(8, 3, generator=torch.Generator().manual_seed(2)) * 2 - 1).requires_grad_(True)
    params = (layer.coef, layer.w_base, layer.w_spline)

    def f(x, coef, w_base, w_spline):
        return torch.func.functional_call(
            layer, {"coef": coef, "w_base": w_base, "w_spline": w_spline}, (x,))

    assert torch.autograd.gradcheck(f, (x, *params))
    assert torch.autograd.gradgradcheck(f, (x, *params))


def test_vmap_grad_equals_batched_autograd():
    layer = _layer()
    x = torch.rand(16, 3, generator=torch.Generator().manual_seed(3)) * 2 - 1

    def energy(xi):
        return layer(xi[None])[0].sum()

    per_sample = torch.func.vmap(torch.func.grad(energy))(x)
    xb = x.clone().requires_grad_(True)
    (batched,) = torch.autograd.grad(layer(xb).sum(), xb)
    torch.testing.assert_close(per_sample, batched, atol=1e-12, rtol=0)


@pytest.mark.parametrize("base", ["silu", "tanh", "identity", "zero"])
@pytest.mark.parametrize("out_dim", [1, 2])
def test_pullback_equals_the_autograd_vector_jacobian_product(base, out_dim):
    layer = KANLayer(3, out_dim, base=base, generator=torch.Generator().manual_seed(0))
    layer.set_mask(torch.ones(3, out_dim).index_fill_(0, torch.tensor([1]), 0.0))
    x = torch.rand(40, 3, generator=torch.Generator().manual_seed(4)) * 3 - 1.5
    layer.update_grid(x, adaptivity=0.5)  # non-uniform knots for the first half of the test
    for step in range(2):
        g = torch.randn(40, out_dim, generator=torch.Generator().manual_seed(5))
        y, pullback = layer.forward_and_pullback(x)
        torch.testing.assert_close(y, layer(x), atol=1e-12, rtol=0)
        xg = x.clone().requires_grad_(True)
        (reference,) = torch.autograd.grad(layer(xg), xg, g)
        torch.testing.assert_close(pullback(g), reference, atol=1e-12, rtol=1e-12)
        layer.update_grid(x, adaptivity=0.0)  # then uniform knots


def test_pullback_refuses_symbolic_edges():
    layer = _layer()
    assert layer.has_pullback
    layer.set_symbolic(0, 0, "sin")
    assert not layer.has_pullback
    with pytest.raises(ValueError, match="symbolic edges or experts"):
        layer.forward_and_pullback(torch.zeros(4, 3))


def test_symbolic_edges_evaluate_their_function_exactly():
    layer = _layer()
    layer.set_symbolic(0, 0, "sin", a=2.0, b=3.0, c=0.5, d=-1.0)
    layer.set_symbolic(1, 0, "x^2", a=0.5)
    layer.set_symbolic(2, 0, "0")
    layer.set_symbolic(0, 1, "exp", a=1.5, b=-1.0)
    x = torch.rand(32, 3, generator=torch.Generator().manual_seed(4)) * 2 - 1
    edges = layer.edge_outputs(x)
    torch.testing.assert_close(edges[:, 0, 0], 2 * torch.sin(3 * x[:, 0] + 0.5) - 1, atol=1e-14, rtol=0)
    torch.testing.assert_close(edges[:, 1, 0], 0.5 * x[:, 1] ** 2, atol=1e-14, rtol=0)
    torch.testing.assert_close(edges[:, 2, 0], torch.zeros(32), atol=0, rtol=0)
    torch.testing.assert_close(edges[:, 0, 1], 1.5 * torch.exp(-x[:, 0]), atol=1e-14, rtol=0)
    torch.testing.assert_close(layer(x), edges.sum(1), atol=1e-12, rtol=0)
    assert layer.symbolic_edge(0, 0)[0] == "sin"
    layer.unset_symbolic(0, 0)
    assert layer.symbolic_edge(0, 0) is None


def test_symbolic_edge_with_restricted_domain_has_finite_gradients():
    layer = _layer()
    layer.set_symbolic(0, 0, "log")
    x = torch.tensor([[2.0, -1.0, 0.5], [3.0, 0.0, -0.5]], requires_grad=True)
    layer(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.isfinite(layer.coef.grad).all()


def test_state_dict_round_trip_after_refine_and_symbolic():
    layer = _layer()
    layer.refine(9)
    layer.set_symbolic(1, 1, "cos", a=0.3)
    layer.set_mask(torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]]))
    fresh = _layer()
    fresh.load_state_dict(layer.state_dict())
    x = torch.rand(10, 3) * 2 - 1
    torch.testing.assert_close(fresh(x), layer(x), atol=0, rtol=0)
    assert fresh.grid == 9


def test_float32_and_float64():
    for dtype in (torch.float32, torch.float64):
        layer = _layer().to(dtype)
        y = layer(torch.rand(5, 3, dtype=dtype))
        assert y.dtype == dtype


@pytest.mark.parametrize("kwargs, match", [
    ({"grid": 0}, "grid"), ({"order": 0}, "order"), ({"order": 7}, "order"),
    ({"base": "relu"}, "base"), ({"grid_range": (1.0, 0.0)}, "grid_range"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KANLayer(2, 2, **kwargs)


def test_wrong_input_width_and_nan_grid_update():
    layer = _layer()
    with pytest.raises(ValueError, match=r"shape \(batch, 3\)"):
        layer(torch.zeros(4, 2))
    x = torch.zeros(4, 3)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        layer.update_grid(x)
    with pytest.raises(ValueError, match="edge"):
        layer.set_symbolic(5, 0, "sin")


def test_hybrid_expert_gates_temperature_and_snapping():
    layer = KANLayer(2, 1, experts=["x^2", "sin"], generator=torch.Generator().manual_seed(0))
    gates = layer.gates()
    torch.testing.assert_close(gates.sum(-1), torch.ones(2, 1))
    torch.testing.assert_close(gates, torch.full((2, 1, 3), 1 / 3))  # zero logits: uniform
    x = torch.rand(50, 2) * 2 - 1
    torch.testing.assert_close(layer.edge_outputs(x).sum(1), layer(x), atol=1e-12, rtol=0)
    with torch.no_grad():
        layer.expert_logits[0, 0] = torch.tensor([2.0, 0.0, 0.0])   # leans to x^2
        layer.expert_logits[1, 0] = torch.tensor([0.0, 0.0, 2.0])   # leans to the spline
        layer.expert_affine[0, 0, 0] = torch.tensor([0.5, 1.0, 0.0, 0.0])
    assert float(layer.gates()[0, 0, 0]) < 0.9
    layer.temperature.fill_(0.1)  # colder gates are closer to one-hot
    assert float(layer.gates()[0, 0, 0]) > 0.99
    assert float(layer.gate_entropy()) < 0.1
    decided = layer.snap(threshold=0.9)
    assert decided == [(0, 0, "x^2"), (1, 0, "spline")]
    assert layer.symbolic_edge(0, 0)[0] == "x^2"
    edges = layer.edge_outputs(x)
    torch.testing.assert_close(edges[:, 0, 0], 0.5 * x[:, 0] ** 2, atol=1e-12, rtol=0)
    assert float(layer.gates()[1, 0, -1]) == 1.0  # spline edge lost its experts


def test_hybrid_layer_learns_and_snaps_the_right_experts():
    torch.manual_seed(0)
    from pikan.kan.network import KAN

    kan = KAN([2, 1], experts=["x", "x^2", "sin", "exp"], seed=0)
    x = torch.rand(300, 2) * 2 - 1
    y = 0.5 * x[:, :1] ** 2 + torch.sin(2 * x[:, 1:])
    opt = torch.optim.Adam(kan.parameters(), lr=3e-2)
    for step in range(500):
        kan.set_temperature(max(0.995**step, 0.05))
        opt.zero_grad()
        loss = ((kan(x) - y) ** 2).mean() + 1e-3 * kan.gate_entropy()
        loss.backward()
        opt.step()
    decided = {(i, j): name for _, i, j, name in kan.snap(0.8)}
    assert decided.get((1, 0)) == "sin"
    assert float(((kan(x) - y) ** 2).mean()) < 1e-6


def test_unknown_expert_is_a_spec_error():
    from pikan.errors import SpecError

    with pytest.raises(SpecError, match="sinn"):
        KANLayer(2, 1, experts=["sinn"])


def test_auto_adaptivity_keeps_uniform_grids_unless_an_input_is_skewed():
    from pikan.kan.layer import auto_adaptivity

    g = torch.Generator().manual_seed(0)
    even = torch.rand(2000, 2, generator=g) * 4 - 2
    assert auto_adaptivity(even) == 0.0
    layer = KANLayer(2, 1, grid=5)
    layer.update_grid(even, adaptivity="auto")
    assert layer._uniform
    # a long tail (squared separations of eccentric orbits): most samples in the first fifth
    exponential = -torch.log(torch.rand(2000, 1, generator=g))
    tail = torch.cat([even[:, :1], 0.6 + exponential], dim=1)
    assert auto_adaptivity(tail) == 0.5
    layer.update_grid(tail, adaptivity="auto")
    knots = layer.knots[1, layer.order:-layer.order]
    widths = knots[1:] - knots[:-1]
    assert not layer._uniform and widths[0] < 0.5 * widths[-1]  # finer where the data are
