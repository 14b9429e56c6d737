import pytest
import torch

from pikan.kan import spline
from pikan.kan.network import KAN


def _smooth_kan(seed=0):
    """A [2, 3, 1] KAN whose edges are fitted to smooth functions (not random wiggles)."""
    kan = KAN([2, 3, 1], seed=seed)
    x = torch.linspace(-1, 1, 400)
    with torch.no_grad():
        for layer, scale in zip(kan.layers, (1.0, 0.5)):
            xs = x[:, None].expand(-1, layer.in_dim) * (1.0 if scale == 1.0 else 2.0)
            fn = torch.stack([torch.sin((i + 1) * xs[:, i]) for i in range(layer.in_dim)], 1)
            target = (scale * fn)[:, :, None].expand(-1, -1, layer.out_dim)
            coef = spline.fit_coefficients(xs, target, layer.knots, layer.order)
            layer.coef.copy_(coef / layer.w_spline[:, None, :])
            layer.w_base.zero_()
    return kan


def test_forward_equals_activations_and_shapes():
    kan = KAN([3, [4, 2], 2], seed=0)
    x = torch.rand(50, 3) * 2 - 1
    acts = kan.activations(x)
    assert [tuple(a.edges.shape) for a in acts] == [(50, 3, 8), (50, 6, 2)]
    torch.testing.assert_close(acts[-1].nodes, kan(x), atol=1e-12, rtol=0)


def test_multiplication_node_represents_product_exactly():
    kan = KAN([2, [0, 1], 1], seed=0)
    for i, j in ((0, 0), (1, 1)):
        kan.set_symbolic(0, i, j, "x")
    kan.set_symbolic(0, 0, 1, "0")
    kan.set_symbolic(0, 1, 0, "0")
    kan.set_symbolic(1, 0, 0, "x")
    x = torch.rand(100, 2) * 4 - 2
    torch.testing.assert_close(kan(x)[:, 0], x[:, 0] * x[:, 1], atol=1e-14, rtol=0)


def test_update_grid_and_refine_preserve_a_smooth_function():
    kan = _smooth_kan()
    x = torch.rand(2000, 2, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    y0 = kan(x)
    kan.refine(12, x)
    assert float((kan(x) - y0).norm() / y0.norm()) < 1e-3
    kan.update_grid(x)
    assert float((kan(x) - y0).norm() / y0.norm()) < 1e-3
    assert not kan.layers[0]._uniform


def test_state_dict_round_trip_with_grids_masks_symbolic():
    kan = KAN([2, [3, 1], 1], seed=0, input_names=["x", "y"])
    x = torch.rand(300, 2) * 2 - 1
    kan.update_grid(x)
    kan.refine(8, x)
    kan.set_symbolic(1, 0, 0, "tanh", a=0.7)
    kan.prune(x, threshold=0.2)
    other = KAN(**{**kan.config(), "grid": 5})
    other.load_state_dict(kan.state_dict())
    torch.testing.assert_close(other(x), kan(x), atol=0, rtol=0)


def test_force_loss_on_kan_potential_trains():
    """Train V(x, y) so that -dV/dq matches the force of V = x^2/2 + y^2."""
    torch.manual_seed(0)
    kan = KAN([2, 4, 1], seed=0)
    q = torch.rand(256, 2) * 2 - 1
    force = -torch.stack([q[:, 0], 2 * q[:, 1]], 1)
    opt = torch.optim.Adam(kan.parameters(), lr=1e-2)

    def loss_fn():
        qg = q.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(kan(qg).sum(), qg, create_graph=True)
        return ((-grad - force) ** 2).mean()

    first = float(loss_fn())
    for _ in range(300):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert float(loss_fn()) < 0.01 * first


@pytest.mark.parametrize("widths, kwargs", [
    ([2, 8, 1], {}),
    ([3, [4, 2], 1], {}),  # multiplication nodes: the product rule
    ([2, 5, 3, 1], {"jump": True}),
    ([2, 4, 1], {"order": 1}),
    ([2, 4, 1], {"order": 5, "base": "tanh"}),
])
def test_written_out_input_gradient_equals_autograd(widths, kwargs):
    """Value, gradient, and the parameter gradients of a loss on the gradient (what force
    training needs) all equal autograd's double-backward route."""
    kan = KAN(widths, grid=5, seed=0, **kwargs)
    x = torch.rand(200, widths[0], generator=torch.Generator().manual_seed(1)) * 2 - 1
    kan.layers[0].update_grid(x, adaptivity=0.5)  # one non-uniform layer
    if kan.jump is not None:
        with torch.no_grad():
            kan.jump.copy_(torch.randn(kan.jump.shape, generator=torch.Generator().manual_seed(2)))
    xg = x.clone().requires_grad_(True)
    value = kan(xg)[:, 0]
    (gradient,) = torch.autograd.grad(value.sum(), xg, create_graph=True)
    fast_value, fast_gradient = kan.value_and_input_gradient(x)
    torch.testing.assert_close(fast_value, value, atol=1e-12, rtol=0)
    torch.testing.assert_close(fast_gradient, gradient, atol=1e-11, rtol=1e-11)
    params = [p for p in kan.parameters() if p.requires_grad]
    slow = torch.autograd.grad((gradient**2).sum(), params, allow_unused=True)
    fast = torch.autograd.grad((fast_gradient**2).sum(), params, allow_unused=True)
    for a, b in zip(slow, fast):
        if a is None:
            assert b is None or b.abs().max() == 0
        else:
            torch.testing.assert_close(b, a, atol=1e-10, rtol=1e-10)


def test_written_out_gradient_needs_one_output_and_spline_edges():
    with pytest.raises(ValueError, match="one output"):
        KAN([2, 3, 2], seed=0).value_and_input_gradient(torch.zeros(4, 2))
    kan = KAN([2, 3, 1], seed=0)
    assert kan.has_input_gradient
    kan.layers[1].set_symbolic(0, 0, "x^2")
    assert not kan.has_input_gradient
    with pytest.raises(ValueError, match="spline edges only"):
        kan.value_and_input_gradient(torch.zeros(4, 2))


def test_regularization_both_forms_are_differentiable_scalars():
    kan = KAN([2, 3, 1], seed=0)
    x = torch.rand(64, 2)
    for reg in (kan.regularization(), kan.regularization(x)):
        assert reg.dim() == 0 and reg > 0
        grads = torch.autograd.grad(reg, kan.layers[0].coef)
        assert torch.isfinite(grads[0]).all()


def test_prune_removes_only_weak_edges_and_keeps_output():
    """Only edges of an input that does not matter are pruned; output barely moves."""
    kan = _smooth_kan()
    with torch.no_grad():  # make input 1 almost irrelevant
        kan.layers[0].coef[1] *= 1e-4
    x = torch.rand(500, 2) * 1.6 - 0.8
    y0 = kan(x)
    report = kan.prune(x, threshold=1e-2)
    assert {(layer, i) for layer, i, _ in report["pruned"] if layer == 0} == {(0, 1)}
    assert float((kan(x) - y0).abs().max()) < 1e-3 * float(y0.abs().max())


@pytest.mark.parametrize("widths, match", [
    ([3], "at least"), ([2, "a", 1], r"widths\[1\]"), ([[2, 1], 3, 1], "multiplication"),
    ([2, 0, 1], r"widths\[1\]"),
])
def test_bad_widths(widths, match):
    with pytest.raises(ValueError, match=match):
        KAN(widths)


def test_bad_input_names_and_input_width():
    with pytest.raises(ValueError, match="input_names"):
        KAN([2, 1], input_names=["x"])
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        KAN([2, 1])(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="NaN"):
        KAN([2, 1]).update_grid(torch.tensor([[0.0, float("nan")], [1.0, 1.0]]))


def test_jump_path_carries_linear_terms_and_counts_in_attribution():
    from pikan.kan.attribution import scores

    kan = KAN([2, 3, 1], seed=0, jump=True)
    x = torch.rand(200, 2) * 2 - 1
    y0 = kan(x)
    with torch.no_grad():
        kan.jump.copy_(torch.tensor([[3.0], [0.0]]))
    torch.testing.assert_close(kan(x), y0 + 3.0 * x[:, :1], atol=1e-12, rtol=0)
    assert scores(kan, x).inputs["x0"] > scores(kan, x).inputs["x1"]
    other = KAN(**kan.config())
    other.load_state_dict(kan.state_dict())
    torch.testing.assert_close(other(x), kan(x), atol=0, rtol=0)
