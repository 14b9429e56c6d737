import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from pikan.kan import spline


def _knots(order, uniform, seed=0):
    knots = spline.uniform_knots(6, order, -1.0, 2.0, 3)
    if not uniform:
        g = torch.Generator().manual_seed(seed)
        knots = torch.sort(knots + 0.2 * torch.rand(knots.shape, generator=g), dim=1).values
    return knots


def _inside(knots, order, n=400, seed=1):
    g = torch.Generator().manual_seed(seed)
    lo, hi = knots[:, order], knots[:, -order - 1]
    return lo + torch.rand(n, knots.shape[0], generator=g) * (hi - lo)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("uniform", [True, False])
def test_bases_match_scipy(order, uniform):
    knots = _knots(order, uniform)
    x = _inside(knots, order)
    dense = spline.dense_bases(x, knots, order, uniform=uniform)
    reference, _ = spline.cox_de_boor(x, knots, order)
    for i in range(knots.shape[0]):
        t = knots[i].numpy()
        m = len(t) - order - 1
        expected = np.stack(
            [BSpline(t, np.eye(m)[j], order, extrapolate=False)(x[:, i].numpy()) for j in range(m)],
            axis=-1,
        )
        np.testing.assert_allclose(dense[:, i].numpy(), np.nan_to_num(expected), atol=1e-12)
    values, _ = spline.local_bases(x, knots, order, uniform=uniform)
    np.testing.assert_allclose(values.numpy(), reference.numpy(), atol=1e-12)


@pytest.mark.parametrize("order", [1, 3, 5])
def test_partition_of_unity_inside_grid(order):
    knots = _knots(order, uniform=False)
    x = _inside(knots, order)
    total = spline.dense_bases(x, knots, order).sum(-1)
    np.testing.assert_allclose(total.numpy(), 1.0, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_approximation_error_converges_at_order_plus_one(order):
    """Max error of a least-squares spline fit of sin falls like h^(k+1)."""
    x = torch.linspace(-1, 1, 4001)[:, None]
    target = torch.sin(3 * x)[:, :, None]
    grids = [4, 8, 16, 32]
    errors = []
    for grid in grids:
        knots = spline.uniform_knots(grid, order, -1.0, 1.0)
        coef = spline.fit_coefficients(x, target, knots, order)
        fitted = spline.evaluate(x, knots, coef, order, uniform=True)
        errors.append(float((fitted - target).abs().max()))
    slope = -np.polyfit(np.log(grids), np.log(errors), 1)[0]
    assert order + 1 - 0.4 < slope < order + 1 + 0.6, (slope, errors)


def test_derivatives_match_scipy_inside_grid():
    order = 3
    knots = _knots(order, uniform=False)[:1]
    coef = torch.randn(knots.shape[1] - order - 1, 1, generator=torch.Generator().manual_seed(3))
    x = _inside(knots, order, n=50)[:, :1].requires_grad_(True)
    y = spline.evaluate(x, knots, coef[None], order).sum()
    (dy,) = torch.autograd.grad(y, x, create_graph=True)
    (d2y,) = torch.autograd.grad(dy.sum(), x)
    ref = BSpline(knots[0].numpy(), coef[:, 0].numpy(), order)
    np.testing.assert_allclose(dy[:, 0].detach().numpy(), ref.derivative(1)(x[:, 0].detach().numpy()), atol=1e-10)
    np.testing.assert_allclose(d2y[:, 0].numpy(), ref.derivative(2)(x[:, 0].detach().numpy()), atol=1e-9)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("uniform", [True, False])
def test_slopes_are_the_derivatives_of_the_bases(order, uniform):
    knots = _knots(order, uniform)
    # inside and beyond the grid (the edge pieces continue there)
    x = torch.cat([_inside(knots, order, n=60), knots[:, :1].t() - 0.3, knots[:, -1:].t() + 0.3])
    x.requires_grad_(True)
    values, slopes, start = spline.local_bases_and_slopes(x, knots, order, uniform=uniform)
    reference, reference_start = spline.local_bases(x, knots, order, uniform=uniform)
    torch.testing.assert_close(values, reference, atol=0, rtol=0)
    assert torch.equal(start, reference_start)
    for r in range(order + 1):
        (autograd,) = torch.autograd.grad(values[..., r].sum(), x, retain_graph=True)
        torch.testing.assert_close(slopes[..., r], autograd, atol=1e-10, rtol=1e-10)
    if order > 1:  # the slopes are differentiable again (second derivatives of the bases)
        (second,) = torch.autograd.grad(slopes.sum(), x)
        assert torch.isfinite(second).all() and second.abs().sum() > 0


def test_in_place_and_transformed_scatter_agree():
    """Outside torch.func the dense bases are filled in place; under vmap out of place."""
    knots = _knots(3, uniform=True)
    x = _inside(knots, 3, n=16)
    plain = spline.dense_bases(x, knots, 3, uniform=True)
    mapped = torch.func.vmap(lambda xi: spline.dense_bases(xi[None], knots, 3, uniform=True)[0])(x)
    torch.testing.assert_close(mapped, plain, atol=1e-15, rtol=0)


def test_gradcheck_bases():
    knots = _knots(3, uniform=True)
    x = _inside(knots, 3, n=20).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: spline.dense_bases(z, knots, 3, uniform=True), (x,))
    assert torch.autograd.gradgradcheck(lambda z: spline.dense_bases(z, knots, 3, uniform=True), (x,))


def _through_autograd(x, knots, order, uniform=True):
    """dense_bases by autograd through the local evaluation (the torch.func path)."""
    values, start = spline.local_bases(x, knots, order, uniform=uniform)
    return spline.scatter_bases(values, spline.scatter_index(start, order), spline.n_bases(knots, order))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's forward-AD internals
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("uniform", [True, False])
def test_written_out_derivatives_equal_autograd(order, uniform):
    """The dense bases carry written-out derivatives; they equal autograd's through the
    local evaluation: values, first and second derivatives, forward mode, also off the grid
    (extrapolated pieces), on uniform and non-uniform knots."""
    knots = _knots(order, uniform=uniform)
    g = torch.Generator().manual_seed(order)
    x = (-2.0 + 5.0 * torch.rand(64, 3, generator=g)).requires_grad_(True)  # grid is [-1, 2]
    weights = torch.randn(64, 3, spline.n_bases(knots, order), generator=g)
    direction = torch.randn(64, 3, generator=g)
    results = []
    for dense_of in (lambda z: spline.dense_bases(z, knots, order, uniform=uniform),
                     lambda z: _through_autograd(z, knots, order, uniform)):
        dense = dense_of(x)
        first, = torch.autograd.grad((dense * weights).sum(), x, create_graph=True)
        second = torch.zeros_like(x)  # order 1: the first derivative is piecewise constant
        if first.requires_grad:
            second, = torch.autograd.grad((first * direction).sum(), x)
        with torch.autograd.forward_ad.dual_level():
            dual = torch.autograd.forward_ad.make_dual(x.detach(), direction)
            tangent = torch.autograd.forward_ad.unpack_dual(dense_of(dual)).tangent
        results.append((dense, first, second, tangent))
    for ours, reference in zip(*results):
        torch.testing.assert_close(ours, reference, atol=1e-12, rtol=1e-12)
    if order > 1:
        assert results[0][2].abs().sum() > 0


@pytest.mark.parametrize("uniform", [True, False])
def test_written_out_derivatives_gradcheck_off_grid(uniform):
    knots = _knots(4, uniform=uniform)
    x = torch.tensor([[-1.9, 0.3, 2.6], [0.0, -1.0, 1.999]], requires_grad=True)
    dense = lambda z: spline.dense_bases(z, knots, 4, uniform=uniform)
    assert torch.autograd.gradcheck(dense, (x,))
    assert torch.autograd.gradgradcheck(dense, (x,))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's forward-AD internals
@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_spline_sum_equals_the_dense_product(order):
    """spline_sum gathers coefficients instead of building the dense basis; value, input and
    coefficient gradients, second derivatives and forward mode equal the dense product's."""
    knots = _knots(order, uniform=True)
    g = torch.Generator().manual_seed(10 + order)
    x = (-2.0 + 5.0 * torch.rand(64, 3, generator=g)).requires_grad_(True)
    coef = torch.randn(3, spline.n_bases(knots, order), generator=g, requires_grad=True)
    weights, direction = torch.randn(64, generator=g), torch.randn(64, 3, generator=g)
    coef_direction = torch.randn(coef.shape, generator=g)
    results = []
    for total in (lambda z, c: spline.spline_sum(z, knots, c, order, uniform=True),
                  lambda z, c: _through_autograd(z, knots, order).reshape(64, -1) @ c.reshape(-1)):
        y = total(x, coef)
        grad_x, grad_coef = torch.autograd.grad((y * weights).sum(), (x, coef), create_graph=True)
        mixed = (grad_x * direction).sum() + (grad_coef * coef_direction).sum()
        second = torch.autograd.grad(mixed, (x, coef), allow_unused=True)
        second = [torch.zeros_like(t) if s is None else s for s, t in zip(second, (x, coef))]
        with torch.autograd.forward_ad.dual_level():
            dual_x = torch.autograd.forward_ad.make_dual(x.detach(), direction)
            dual_c = torch.autograd.forward_ad.make_dual(coef.detach(), coef_direction)
            tangent = torch.autograd.forward_ad.unpack_dual(total(dual_x, dual_c)).tangent
        results.append((y, grad_x, grad_coef, *second, tangent))
    for ours, reference in zip(*results):
        torch.testing.assert_close(ours, reference, atol=1e-12, rtol=1e-12)
    assert results[0][3].abs().sum() > 0  # d2/dx dcoef is never zero


@pytest.mark.parametrize("order", [1, 3, 5])
def test_spline_sum_on_non_uniform_knots(order):
    """Off the uniform path spline_sum gathers coefficients too (autograd through the local
    bases): equal to the dense product with its gradients."""
    knots = _knots(order, uniform=False)
    g = torch.Generator().manual_seed(20 + order)
    x = (-2.0 + 5.0 * torch.rand(64, 3, generator=g)).requires_grad_(True)
    coef = torch.randn(3, spline.n_bases(knots, order), generator=g, requires_grad=True)
    results = []
    for y in (spline.spline_sum(x, knots, coef, order),
              spline.dense_bases(x, knots, order).reshape(64, -1) @ coef.reshape(-1)):
        results.append((y, *torch.autograd.grad((y ** 2).sum(), (x, coef))))
    for ours, reference in zip(*results):
        torch.testing.assert_close(ours, reference, atol=1e-12, rtol=1e-12)


def test_spline_sum_gradcheck():
    knots = _knots(3, uniform=True)
    x = torch.tensor([[-1.9, 0.3, 2.6], [0.0, -1.0, 1.999]], requires_grad=True)
    coef = torch.randn(3, 9, generator=torch.Generator().manual_seed(0), requires_grad=True)
    total = lambda z, c: spline.spline_sum(z, knots, c, 3, uniform=True)
    assert torch.autograd.gradcheck(total, (x, coef))
    assert torch.autograd.gradgradcheck(total, (x, coef))


def test_spline_sum_under_vmap_takes_the_differentiable_path():
    knots = _knots(3, uniform=True)
    x = _inside(knots, 3, n=8)
    coef = torch.randn(3, 9, generator=torch.Generator().manual_seed(1))
    plain = spline.spline_sum(x, knots, coef, 3, uniform=True)
    mapped = torch.func.vmap(lambda xi: spline.spline_sum(xi[None], knots, coef, 3, uniform=True))(x)
    torch.testing.assert_close(mapped[:, 0], plain, atol=1e-13, rtol=0)


@pytest.mark.parametrize("grid", [5, 40])  # counted knots, and searchsorted past 32
def test_interval_index_on_non_uniform_knots(grid):
    """The interval holding each x, clamped to the grid: equal to numpy's searchsorted, also
    on knots exactly, off the grid and for NaN (some in-range interval)."""
    order = 3
    g = torch.Generator().manual_seed(grid)
    knots = spline.uniform_knots(grid, order, -1.0, 2.0, 3)
    knots = torch.sort(knots + 0.3 * torch.rand(knots.shape, generator=g) / grid, dim=1).values
    x = -2.0 + 5.0 * torch.rand(200, 3, generator=g)
    x[:8] = knots[:, order:order + 8].t()  # points on knots fall in the interval they start
    x[10, 0] = float("nan")
    idx = spline.interval_index(x, knots, order)
    last = spline.n_bases(knots, order) - 1
    for i in range(3):
        reference = np.searchsorted(knots[i].numpy(), x[11:, i].numpy(), side="right") - 1
        np.testing.assert_array_equal(idx[11:, i].numpy(), np.clip(reference, order, last))
        reference = np.searchsorted(knots[i].numpy(), x[:10, i].numpy(), side="right") - 1
        np.testing.assert_array_equal(idx[:10, i].numpy(), np.clip(reference, order, last))
    assert (idx[:8] > order).any()  # the knot points reach past the first interval
    assert order <= int(idx[10, 0]) <= last


def test_extrapolation_continues_the_edge_pieces():
    """Outside the grid range the first/last cubic piece is continued (smooth, finite)."""
    knots = spline.uniform_knots(4, 3, -1.0, 1.0)
    coef = torch.randn(1, 7, 1, generator=torch.Generator().manual_seed(0))
    for inside, outside in ((np.linspace(-1.0, -0.6, 7), -1.7), (np.linspace(0.6, 1.0, 7), 1.8)):
        y = spline.evaluate(torch.tensor(inside)[:, None], knots, coef, 3, uniform=True)
        piece = np.polyfit(inside, y[:, 0, 0].numpy(), 3)
        value = spline.evaluate(torch.tensor([[outside]]), knots, coef, 3, uniform=True)
        np.testing.assert_allclose(value.item(), np.polyval(piece, outside), rtol=1e-9)


@pytest.mark.parametrize("grid, order, match", [(0, 3, "grid"), (5, 0, "order"), (5, 6, "order"),
                                                (2.5, 3, "grid")])
def test_bad_grid_arguments(grid, order, match):
    with pytest.raises(ValueError, match=match):
        spline.uniform_knots(grid, order, -1.0, 1.0)


def test_bad_range():
    with pytest.raises(ValueError, match="grid_range"):
        spline.uniform_knots(5, 3, 1.0, -1.0)


def test_nan_inputs_give_nan_outputs_not_index_errors():
    for uniform in (True, False):
        knots = _knots(3, uniform)
        x = torch.tensor([[0.1, float("nan"), float("inf")]])
        basis = spline.dense_bases(x, knots, 3, uniform=uniform)
        assert torch.isfinite(basis[0, 0]).all()
        assert torch.isnan(basis[0, 1]).any()
