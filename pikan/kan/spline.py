r"""B-spline bases on per-input knot vectors, as pure tensor functions.

A KAN edge is a spline :math:`s(x) = \sum_m c_m B_m(x)` of order ``k`` (degree ``k``; cubic
is ``k = 3``) on a knot vector :math:`t_0 < \dots < t_{G + 2k}` that extends the grid range
``[lo, hi]`` (``G`` intervals) by ``k`` knots on each side, so there are ``G + k`` basis
functions and they form a partition of unity on ``[lo, hi]``.

Only ``k + 1`` bases are nonzero at any point. :func:`local_bases` evaluates just those and
returns where they start;
:func:`dense_bases` scatters them into the full ``(batch, in, G + k)`` basis so that a layer
is one matrix product. The nonzero bases are evaluated as polynomials in the local
coordinate of their interval, with coefficients precomputed from the knots
(:func:`piece_polynomials`); :func:`cox_de_boor` is the reference they are built from. Outside ``[lo, hi]`` the first and last polynomial pieces are
continued (extrapolation), which keeps forces finite and smooth off the grid.

:func:`local_bases_and_slopes` also gives the derivatives ``dB/dx`` from the same pieces, for
layers that write out their input gradient (a force from a KAN potential) instead of
differentiating their forward pass.

A layer with one output needs no dense basis: :func:`spline_sum` reads each point's ``k + 1``
coefficients and sums, and :func:`interval_polynomials` gives each point its interval's
polynomial (value and slope by :func:`horner`, :func:`horner_slope`). :func:`dense_bases`
(any grid) and :func:`spline_sum` (uniform grids) run as autograd Functions whose derivatives
are written out from the slope pieces (first, second and forward mode), several times fewer
ops than autograd through the evaluation; under ``torch.func`` transforms they take the plain
differentiable path.

Everything here is differentiable to any order by autograd (the interval index is discrete,
the basis values are polynomials in ``x``) and works under ``torch.func`` transforms.
"""

from __future__ import annotations

import torch
from torch import Tensor

MAX_ORDER = 5
_COUNT_KNOTS = 32  # up to this many grid intervals interval_index counts knots, else searches


def _transform_level() -> int | None:
    """The innermost active ``torch.func`` transform level, None outside any transform."""
    level = getattr(torch._C._functorch, "maybe_current_level", None)
    return level() if level is not None else 0


def _written_out(knots: Tensor) -> bool:
    """The autograd Functions with written-out derivatives apply: plain autograd (no
    ``torch.func`` transform active) and knots that need no gradient."""
    return _transform_level() is None and not knots.requires_grad


def check_grid_args(grid: int, order: int) -> None:
    """Raise ``ValueError`` naming the argument when ``grid`` or ``order`` is out of range."""
    if not isinstance(grid, int) or isinstance(grid, bool) or grid < 1:
        raise ValueError(f"grid must be a positive integer number of intervals, got {grid!r}")
    if not isinstance(order, int) or isinstance(order, bool) or not 1 <= order <= MAX_ORDER:
        raise ValueError(f"order must be an integer in 1..{MAX_ORDER}, got {order!r}")


def uniform_knots(
    grid: int,
    order: int,
    lo: Tensor | float,
    hi: Tensor | float,
    n_inputs: int = 1,
    *,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Extended uniform knot vectors, one row per input.

    Parameters
    ----------
    grid : int
        Number of intervals ``G`` inside ``[lo, hi]``.
    order : int
        Spline order ``k`` (1 = piecewise linear, 3 = cubic).
    lo, hi : float or Tensor of shape (n_inputs,)
        Grid range per input.
    n_inputs : int
        Number of rows when ``lo`` and ``hi`` are scalars.

    Returns
    -------
    Tensor of shape (n_inputs, G + 2k + 1)
    """
    check_grid_args(grid, order)
    lo = torch.as_tensor(lo, dtype=dtype or torch.get_default_dtype(), device=device)
    hi = torch.as_tensor(hi, dtype=lo.dtype, device=lo.device)
    lo, hi = torch.broadcast_tensors(lo.reshape(-1), hi.reshape(-1))
    if lo.numel() == 1 and n_inputs > 1:
        lo, hi = lo.expand(n_inputs), hi.expand(n_inputs)
    if bool((hi <= lo).any()):
        raise ValueError(f"grid_range must have hi > lo, got lo={lo.tolist()}, hi={hi.tolist()}")
    steps = torch.arange(-order, grid + order + 1, dtype=lo.dtype, device=lo.device)
    h = (hi - lo) / grid
    return lo[:, None] + steps[None, :] * h[:, None]


def extend_knots(points: Tensor, order: int) -> Tensor:
    """Extend sorted grid points ``(n_inputs, G + 1)`` by ``order`` knots on each side.

    The extension uses the mean spacing of the grid, as for a uniform grid.
    """
    h = (points[:, -1:] - points[:, :1]) / (points.shape[1] - 1)
    steps = torch.arange(1, order + 1, dtype=points.dtype, device=points.device)
    left = points[:, :1] - steps.flip(0)[None, :] * h
    right = points[:, -1:] + steps[None, :] * h
    return torch.cat([left, points, right], dim=1)


def n_bases(knots: Tensor, order: int) -> int:
    """Number of basis functions ``G + k`` on a knot vector of length ``G + 2k + 1``."""
    return knots.shape[-1] - order - 1


def interval_index(x: Tensor, knots: Tensor, order: int, uniform: bool = False) -> Tensor:
    """Index ``i`` of the knot interval ``[t_i, t_{i+1})`` holding each ``x``.

    Clamped to the grid range ``[t_k, t_{G+k}]`` so that points outside it use the first or
    last polynomial piece.

    Parameters
    ----------
    x : Tensor of shape (batch, n_inputs)
    knots : Tensor of shape (n_inputs, G + 2k + 1)
    uniform : bool
        The knots are equally spaced: the index is computed by division instead of a search.

    Returns
    -------
    LongTensor of shape (batch, n_inputs)
    """
    last = n_bases(knots, order) - 1
    if uniform:
        return _uniform_cell(x.detach(), knots, order)[1].long()
    if last - order <= _COUNT_KNOTS:
        # Only the interior knots t_{k+1} .. t_{G+k-1} move the clamped index: count those at
        # or below x, one comparison per knot over the whole batch (searchsorted searches
        # point by point and is several times slower on these short knot vectors).
        x = x.detach()
        idx = torch.full(x.shape, order, dtype=torch.long, device=x.device)
        for j in range(order + 1, last + 1):
            idx = idx + (x >= knots[:, j])  # out of place: x may be batched under vmap
        return idx  # NaN compares false: index k, outputs stay NaN
    idx = torch.searchsorted(knots, x.detach().t().contiguous(), right=True).t() - 1
    return idx.clamp(order, last)  # NaN sorts last: clamped into range, outputs stay NaN


def cox_de_boor(x: Tensor, knots: Tensor, order: int) -> tuple[Tensor, Tensor]:
    r"""The ``order + 1`` nonzero B-spline bases at each ``x`` by the Cox--de Boor triangle.

    The reference evaluation (The NURBS Book, algorithm A2.2): with ``i`` the interval of
    ``x``, :math:`N_0 = 1` and for :math:`j = 1..k`

    .. math:: N_r \leftarrow s + \frac{t_{i+r+1} - x}{t_{i+r+1} - t_{i+r+1-j}} N_r, \quad
              s = \frac{x - t_{i+r+1-j}}{t_{i+r+1} - t_{i+r+1-j}} N_r .

    :func:`local_bases` gives the same numbers faster from :func:`piece_polynomials`.

    Parameters
    ----------
    x : Tensor of shape (batch, n_inputs)
    knots : Tensor of shape (n_inputs, G + 2k + 1)

    Returns
    -------
    values : Tensor of shape (batch, n_inputs, order + 1)
        ``values[..., r]`` is :math:`B_{i-k+r}(x)`.
    start : LongTensor of shape (batch, n_inputs)
        ``i - k``, the index of the first nonzero basis.
    """
    idx = interval_index(x, knots, order)
    # knots t_{i-k+1} .. t_{i+k} around each point: (batch, n_inputs, 2k)
    offsets = torch.arange(-order + 1, order + 1, device=x.device)
    gather_idx = (idx[..., None] + offsets).permute(1, 0, 2).reshape(knots.shape[0], -1)
    near = torch.gather(knots, 1, gather_idx).reshape(knots.shape[0], x.shape[0], 2 * order)
    near = near.permute(1, 0, 2)
    # left[j] = x - t_{i+1-j}, right[j] = t_{i+j} - x for j = 1..k
    left = [None] + [x - near[..., order - j] for j in range(1, order + 1)]
    right = [None] + [near[..., order - 1 + j] - x for j in range(1, order + 1)]
    values = [torch.ones_like(x)]
    for j in range(1, order + 1):
        saved = torch.zeros_like(x)
        new = []
        for r in range(j):
            temp = values[r] / (right[r + 1] + left[j - r])
            new.append(saved + right[r + 1] * temp)
            saved = left[j - r] * temp
        new.append(saved)
        values = new
    return torch.stack(values, dim=-1), idx - order


@torch.no_grad()
def piece_polynomials(knots: Tensor, order: int) -> Tensor:
    r"""Power-basis coefficients of the nonzero bases on every grid interval.

    On interval :math:`[t_i, t_{i+1})` with local coordinate :math:`u = (x - t_i) / (t_{i+1} - t_i)`,
    :math:`B_{i-k+r}(x) = \sum_p u^p P_{pr}`. Computed in float64 by evaluating
    :func:`cox_de_boor` at ``k + 1`` points per interval and solving the Vandermonde system.

    Parameters
    ----------
    knots : Tensor of shape (n_inputs, G + 2k + 1)

    Returns
    -------
    Tensor of shape (n_inputs, G, k + 1, k + 1), in the dtype of ``knots``.
    """
    k64 = knots.to(torch.float64)
    n_in, grid = knots.shape[0], knots.shape[1] - 2 * order - 1
    u = (torch.arange(order + 1, dtype=torch.float64, device=knots.device) + 0.5) / (order + 1)
    lo = k64[:, order:order + grid]
    width = k64[:, order + 1:order + grid + 1] - lo
    x = lo[:, :, None] + u * width[:, :, None]  # (in, G, k+1)
    values, _ = cox_de_boor(x.permute(1, 2, 0).reshape(-1, n_in), k64, order)
    values = values.reshape(grid, order + 1, n_in, order + 1).permute(2, 0, 1, 3)
    vandermonde = u[:, None] ** torch.arange(order + 1, dtype=torch.float64, device=u.device)
    return torch.linalg.solve(vandermonde, values).to(knots.dtype)


def local_bases(
    x: Tensor, knots: Tensor, order: int, pieces: Tensor | None = None, uniform: bool = False
) -> tuple[Tensor, Tensor]:
    """The ``order + 1`` nonzero B-spline bases at each ``x`` and the index of the first.

    Parameters
    ----------
    x : Tensor of shape (batch, n_inputs)
    knots : Tensor of shape (n_inputs, G + 2k + 1)
    pieces : Tensor of shape (n_inputs, G, k + 1, k + 1), optional
        :func:`piece_polynomials` of ``knots``, cached by callers that evaluate often.
    uniform : bool
        The knots are equally spaced, so every interval shares one piece polynomial.

    Returns
    -------
    values : Tensor of shape (batch, n_inputs, order + 1)
    start : LongTensor of shape (batch, n_inputs)
        See :func:`cox_de_boor`.
    """
    values, _, start = local_bases_and_slopes(x, knots, order, pieces, uniform, slopes=False)
    return values, start


def local_bases_and_slopes(
    x: Tensor, knots: Tensor, order: int, pieces: Tensor | None = None, uniform: bool = False,
    slopes: bool = True,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """:func:`local_bases` and, with ``slopes``, their derivatives ``dB/dx`` from the same
    polynomial pieces (differentiable again: the pieces are polynomials in ``x``).

    Returns
    -------
    values, slopes : Tensor of shape (batch, n_inputs, order + 1)
        ``slopes`` is None when not asked for.
    start : LongTensor of shape (batch, n_inputs)
    """
    if pieces is None:
        pieces = piece_polynomials(knots, order)
    if uniform:  # one scaled coordinate gives both the cell and the local coordinate
        scaled, cell, h = _uniform_cell(x, knots, order)
        u = scaled - cell
        table = pieces[0, 0]
        values, planes = _uniform_values(u, table, order)
        slope = None
        if slopes:
            slope = (_uniform_slopes(u, planes, table, order) / h).movedim(0, -1)
        values = values.movedim(0, -1)
        return values, slope, cell.long() - order
    u, idx, width, which = interval_coordinate(x, knots, pieces, order)
    local = _tables_at(pieces, which, order)
    powers = _powers(u.reshape(1, -1), order)
    values = _local_values(u, local, powers).movedim(0, -1)
    slope = (_local_slopes(u, local, powers) / width).movedim(0, -1) if slopes else None
    return values, slope, idx - order


def interval_coordinate(
    x: Tensor, knots: Tensor, pieces: Tensor, order: int, uniform: bool = False
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """On any grid: the local coordinate ``u = (x - t_i) / (t_{i+1} - t_i)`` in each point's
    interval ``i`` (:func:`interval_index`), ``i``, the interval's width (``du/dx`` is its
    inverse) and the point's ``(input, interval)`` row, flattened, for :func:`_tables_at`
    and :func:`interval_polynomials`. All of shape ``(batch, n_inputs)``."""
    idx = interval_index(x, knots, order, uniform)
    # gathered along the knot axis of knots.t(): (batch, in) and contiguous like x (a
    # transposed operand makes every elementwise op after it ~20x slower)
    left = knots.t().gather(0, idx)
    width = knots.t().gather(0, idx + 1) - left
    which = (idx - order) + pieces.shape[1] * torch.arange(x.shape[1], device=x.device)
    return (x - left) / width, idx, width, which


def _tables_at(pieces: Tensor, which: Tensor, order: int) -> Tensor:
    """Each point's interval table, planar: ``(k + 1 powers, k + 1 bases, batch * in)``."""
    # gathered as planes of (k+1 bases, batch * in) per power, as the uniform path is planar
    tables = pieces.permute(2, 3, 0, 1).reshape((order + 1) ** 2, -1)  # (p * r, in * G)
    return tables.index_select(1, which.reshape(-1)).reshape(order + 1, order + 1, -1)


def _local_values(u: Tensor, local: Tensor, powers: list[Tensor]) -> Tensor:
    """The ``k + 1`` nonzero bases from each point's table :func:`_tables_at` and the powers
    ``u, .., u^k`` of ``u`` flattened (:func:`_powers`), planar ``(k + 1, *u.shape)``."""
    order = len(powers)
    values = local[0]
    for p in range(1, order + 1):
        values = values + local[p] * powers[p - 1]
    return values.reshape(order + 1, *u.shape)


def _local_slopes(u: Tensor, local: Tensor, powers: list[Tensor] | None = None) -> Tensor:
    """``d/du`` of :func:`_local_values`, planar ``(k + 1, *u.shape)``; ``powers`` needs
    ``u, .., u^(k-1)`` only (computed when not given)."""
    order = local.shape[0] - 1
    if powers is None:
        powers = _powers(u.reshape(1, -1), order - 1) if order > 1 else []
    slope = local[1]
    for p in range(2, order + 1):
        slope = slope + p * local[p] * powers[p - 2]
    return slope.reshape(order + 1, *u.shape)


def _uniform_cell(x: Tensor, knots: Tensor, order: int) -> tuple[Tensor, Tensor, Tensor]:
    """On a uniform grid: the scaled coordinate ``(x - t_0) / h``, the interval each ``x``
    falls in as a float (detached; clamped to the grid's first and last interval, so the end
    pieces extrapolate) and the spacing ``h`` per input."""
    origin = knots[:, 0]
    h = _spacing(knots)
    scaled = (x - origin) / h
    # nan_to_num: a NaN input gives NaN outputs, not an out-of-range index
    cell = torch.floor(scaled.detach()).nan_to_num(order).clamp(order, n_bases(knots, order) - 1)
    return scaled, cell, h


def _spacing(knots: Tensor) -> Tensor:
    """The knot spacing ``h`` per input of a uniform grid."""
    return knots[:, 1] - knots[:, 0]


def _uniform_values(u: Tensor, table: Tensor, order: int) -> tuple[Tensor, Tensor]:
    """The ``k + 1`` nonzero bases at local coordinates ``u`` from the one piece table of a
    uniform grid, planar ``(k + 1, *u.shape)``, and the power planes ``(k, u.numel())`` used.
    """
    # Planar layout: the powers u, u^2, .. stacked on a leading axis, then one (k+1) x k
    # product plus the constant row. With the k+1 axis trailing instead, every op runs a
    # 4-long inner loop and the product is tall and skinny: several times slower.
    planes = _planes(u, order)
    values = torch.addmm(table[0][:, None], table[1:].t(), planes)
    return values.reshape(order + 1, *u.shape), planes


def _planes(u: Tensor, order: int) -> Tensor:
    """The powers ``u, .., u^order`` stacked: ``(order, u.numel())``."""
    return torch.stack(_powers(u, order)).reshape(order, -1)


def _rates(table: Tensor, order: int) -> Tensor:
    """``d/du`` of a piece table: row ``p - 1`` is ``p * table[p]`` (the factor of u^(p-1))."""
    powers = torch.arange(1, order + 1, dtype=table.dtype, device=table.device)
    return table[1:] * powers[:, None]


def _uniform_slopes(u: Tensor, planes: Tensor, table: Tensor, order: int) -> Tensor:
    """``d/du`` of the ``k + 1`` nonzero bases, planar like :func:`_uniform_values`."""
    rates = _rates(table, order)
    if order == 1:
        return rates[0].reshape(-1, *[1] * u.dim()).expand(order + 1, *u.shape)
    slope = torch.addmm(rates[0][:, None], rates[1:].t(), planes[:order - 1])
    return slope.reshape(order + 1, *u.shape)


def _powers(u: Tensor, order: int) -> list[Tensor]:
    """``[u, u**2, ..., u**order]``."""
    powers = [u]
    for _ in range(order - 1):
        powers.append(powers[-1] * u)
    return powers


def scatter_index(start: Tensor, order: int) -> Tensor:
    """Positions ``start + r`` (r = 0..k) of the nonzero bases in the dense basis axis:
    LongTensor of shape ``(*start.shape, order + 1)``."""
    # built planar like the values: a trailing broadcast axis of k+1 is a slow inner loop
    offsets = torch.arange(order + 1, device=start.device).reshape(-1, *[1] * start.dim())
    return (start + offsets).movedim(0, -1)


def scatter_bases(values: Tensor, index: Tensor, n_basis: int) -> Tensor:
    """Dense bases ``(..., n_basis)`` with ``values`` at ``index`` (:func:`scatter_index`)
    and zeros elsewhere."""
    zeros = torch.zeros((*values.shape[:-1], n_basis), dtype=values.dtype, device=values.device)
    if _transform_level() is None:  # plain autograd: fill the fresh buffer in place
        return zeros.scatter_(-1, index, values)
    # under torch.func the buffer is not batched while the values may be: out of place
    return zeros.scatter(-1, index, values)


def dense_bases(
    x: Tensor, knots: Tensor, order: int, pieces: Tensor | None = None, uniform: bool = False
) -> Tensor:
    """All ``G + k`` B-spline bases at each ``x`` (zeros where a basis vanishes).

    Parameters
    ----------
    x : Tensor of shape (batch, n_inputs)
    knots : Tensor of shape (n_inputs, G + 2k + 1)
    pieces, uniform
        See :func:`local_bases`.

    Returns
    -------
    Tensor of shape (batch, n_inputs, G + k)
    """
    if _written_out(knots):
        if pieces is None:
            pieces = piece_polynomials(knots, order)
        if uniform:
            return _UniformDenseBases.apply(x, knots, pieces[0, 0], order)
        return _NonUniformDenseBases.apply(x, knots, pieces, order)
    values, start = local_bases(x, knots, order, pieces, uniform)
    return scatter_bases(values, scatter_index(start, order), n_bases(knots, order))


class _UniformDenseBases(torch.autograd.Function):
    """:func:`dense_bases` on a uniform grid, with its derivatives written out.

    Each sample's row of ``n_inputs * (G + k)`` bases is filled by ``k + 1`` scatters of one
    ``(batch, n_inputs)`` index (:func:`_flat_positions`): basis ``r`` goes ``r`` places
    after the first, so scatter ``r`` writes into the rows shifted by ``r``. Each scatter
    runs along a whole row; scattering along the short (k+1) axis instead, as autograd's
    path does, runs a 4-long inner loop per point (1.6x slower with its index built), and
    autograd through the forward ops adds a dozen small backward ops per layer. The backward
    gathers the same way and applies the slope pieces by Horner's rule. Plain autograd only
    (``torch.func`` transforms take the differentiable path in :func:`dense_bases`); a
    double backward rebuilds the local coordinate with its graph, so second derivatives
    (forces trained through autograd) stay exact, and forward mode has :meth:`jvp`.
    """

    @staticmethod
    def forward(ctx, x: Tensor, knots: Tensor, table: Tensor, order: int) -> Tensor:
        scaled, cell, _ = _uniform_cell(x, knots, order)
        u = scaled - cell
        values, _ = _uniform_values(u, table, order)
        flat = _flat_positions(cell.long() - order, n_bases(knots, order))
        ctx.save_for_backward(x, u, flat, knots, table)
        ctx.save_for_forward(u, flat, knots, table)
        ctx.order = order
        return _scatter_shifted(values, flat, n_bases(knots, order))

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, u, flat, knots, table = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        order = ctx.order
        if torch.is_grad_enabled():  # create_graph: u with its graph back to x
            scaled, cell, h = _uniform_cell(x, knots, order)
            u = scaled - cell
        else:
            h = _spacing(knots)
        along = _gather_shifted(grad, flat, order)
        return _slope_sum(along, u, table, order) / h, None, None, None

    @staticmethod
    def jvp(ctx, x_tangent: Tensor, *_) -> Tensor:
        u, flat, knots, table = ctx.saved_tensors
        order = ctx.order
        along = _uniform_slopes(u, _planes(u, order), table, order) * (x_tangent / _spacing(knots))
        return _scatter_shifted(along, flat, n_bases(knots, order))


def _scatter_shifted(values: Tensor, flat: Tensor, n_basis: int) -> Tensor:
    """Dense bases ``(batch, n_inputs, n_basis)`` from planar ``values``
    ``(k + 1, batch, n_inputs)``, basis ``r`` of each point ``r`` places after its
    :func:`_flat_positions`, zeros elsewhere."""
    batch, n_in = flat.shape
    dense = torch.zeros((batch, n_in * n_basis), dtype=values.dtype, device=values.device)
    for r in range(values.shape[0]):
        dense[:, r:].scatter_(1, flat, values[r])
    return dense.reshape(batch, n_in, n_basis)


def _gather_shifted(grad: Tensor, flat: Tensor, order: int) -> Tensor:
    """The entries of ``grad`` ``(batch, n_inputs, n_basis)`` at the nonzero bases, planar
    ``(k + 1, batch, n_inputs)``: the transpose of :func:`_scatter_shifted`. Differentiable
    when grad mode is on (a double backward), else written into one buffer."""
    rows = grad.reshape(flat.shape[0], -1)
    if torch.is_grad_enabled():
        return torch.stack([rows[:, r:].gather(1, flat) for r in range(order + 1)])
    along = torch.empty((order + 1, *flat.shape), dtype=grad.dtype, device=grad.device)
    for r in range(order + 1):
        torch.gather(rows[:, r:], 1, flat, out=along[r])
    return along


class _NonUniformDenseBases(torch.autograd.Function):
    """:func:`dense_bases` on a non-uniform grid, as :class:`_UniformDenseBases`: each point's
    interval table is gathered (:func:`_tables_at`), the bases are scattered and gathered
    along shifted rows, and the backward applies the slope pieces of the same tables. The
    tables are gathered again in the backward rather than saved (``(k + 1)^2`` values per
    point, more than the dense basis)."""

    @staticmethod
    def forward(ctx, x: Tensor, knots: Tensor, pieces: Tensor, order: int) -> Tensor:
        u, idx, width, which = interval_coordinate(x, knots, pieces, order)
        powers = _powers(u.reshape(1, -1), order)
        values = _local_values(u, _tables_at(pieces, which, order), powers)
        flat = _flat_positions(idx - order, n_bases(knots, order))
        ctx.save_for_backward(x, u, width, which, flat, knots, pieces)
        ctx.save_for_forward(u, width, which, flat, knots, pieces)
        ctx.order = order
        return _scatter_shifted(values, flat, n_bases(knots, order))

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, u, width, which, flat, knots, pieces = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        order = ctx.order
        if torch.is_grad_enabled():  # create_graph: u with its graph back to x
            u = interval_coordinate(x, knots, pieces, order)[0]
        slopes = _local_slopes(u, _tables_at(pieces, which, order))
        along = _gather_shifted(grad, flat, order)
        return (along * slopes).sum(0) / width, None, None, None

    @staticmethod
    def jvp(ctx, x_tangent: Tensor, *_) -> Tensor:
        u, width, which, flat, knots, pieces = ctx.saved_tensors
        order = ctx.order
        slopes = _local_slopes(u, _tables_at(pieces, which, order))
        return _scatter_shifted(slopes * (x_tangent / width), flat, n_bases(knots, order))


def spline_sum(
    x: Tensor, knots: Tensor, coef: Tensor, order: int, pieces: Tensor | None = None,
    uniform: bool = False,
) -> Tensor:
    """The sum over inputs of one spline per input, ``sum_i s_i(x_i)``: a KAN layer's spline
    part when it has a single output.

    The ``k + 1`` coefficients each point needs are gathered instead of building the dense
    basis for a matrix-vector product. On a uniform grid (outside ``torch.func``
    transforms) the derivatives are written out as well (:class:`_UniformSplineSum`).

    Parameters
    ----------
    x : Tensor of shape (batch, n_inputs)
    knots : Tensor of shape (n_inputs, G + 2k + 1)
    coef : Tensor of shape (n_inputs, G + k)
    pieces, uniform
        See :func:`local_bases`.

    Returns
    -------
    Tensor of shape (batch,)
    """
    if pieces is None:
        pieces = piece_polynomials(knots, order)
    if uniform and _written_out(knots):
        return _UniformSplineSum.apply(x, knots, pieces[0, 0], coef, order)
    # Any grid, autograd: each interval's polynomial in u, sum_r c_(s+r) * piece_r, built
    # once from the coefficients; then k+1 numbers per point instead of its (k+1)^2 table
    u, _, _, which = interval_coordinate(x, knots, pieces, order, uniform)
    return horner(interval_polynomials(coef, pieces, which, order), u).sum(1)


def interval_polynomials(coef: Tensor, pieces: Tensor, which: Tensor, order: int) -> Tensor:
    """Each point's spline as the polynomial of its interval: the interval's pieces weighted by
    its ``k + 1`` coefficients, ``sum_r c_(s+r) * piece_r(u)``, as power coefficients read at
    ``which`` (:func:`interval_coordinate`), planar ``(k + 1 powers, *which.shape)``.

    Built once per call from ``coef`` ``(n_inputs, G + k)`` and :func:`piece_polynomials`
    (``(n_inputs, G, k + 1)`` numbers), so each point reads ``k + 1`` numbers instead of its
    ``(k + 1)^2`` table. Evaluate with :func:`horner` and :func:`horner_slope`.
    """
    windows = coef.unfold(1, order + 1, 1)  # (in, G, k + 1): c_(s + r) for interval s
    poly = torch.einsum("ispr,isr->pis", pieces, windows).reshape(order + 1, -1)
    return poly.index_select(1, which.reshape(-1)).reshape(order + 1, *which.shape)


def horner(at: Tensor, u: Tensor) -> Tensor:
    """``sum_p at_p u^p`` for planar power coefficients ``at`` ``(k + 1, *u.shape)``."""
    value = at[-1]
    for p in range(at.shape[0] - 2, -1, -1):
        value = torch.addcmul(at[p], value, u)
    return value


def horner_slope(at: Tensor, u: Tensor) -> Tensor:
    """``d/du`` of :func:`horner`: ``sum_p p at_p u^(p-1)``."""
    order = at.shape[0] - 1
    slope = order * at[order]
    for p in range(order - 1, 0, -1):
        slope = torch.addcmul(p * at[p], slope, u)
    return slope


class _UniformSplineSum(torch.autograd.Function):
    """:func:`spline_sum` on a uniform grid with its derivatives written out.

    Forward: the nonzero bases (planar, ``(k + 1, batch, in)``) times the coefficients at
    their positions, summed; no dense ``(batch, in * (G + k))`` basis is built. The
    coefficient of basis ``start + r`` is read at position ``flat`` of the flattened
    coefficients shifted by ``r``, so one ``(batch, in)`` index serves all ``k + 1``.
    Backward: the coefficient gradient adds ``g * bases`` back at the same positions, the
    input gradient is the slope pieces against the gathered coefficients (Horner's rule). A
    double backward rebuilds the bases with their graph to ``x``, and forward mode has
    :meth:`jvp`, as in :class:`_UniformDenseBases`.
    """

    @staticmethod
    def forward(ctx, x: Tensor, knots: Tensor, table: Tensor, coef: Tensor, order: int):
        scaled, cell, _ = _uniform_cell(x, knots, order)
        u = scaled - cell
        values, _ = _uniform_values(u, table, order)
        flat = _flat_positions(cell.long() - order, n_bases(knots, order))
        at = _coefficients_at(coef, flat, order)
        ctx.save_for_backward(x, u, values, flat, at, knots, table, coef)
        ctx.save_for_forward(u, values, flat, at, knots, table)
        ctx.order = order
        return (values * at).sum(0).sum(1)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, u, values, flat, at, knots, table, coef = ctx.saved_tensors
        order = ctx.order
        create_graph = torch.is_grad_enabled()
        if create_graph:  # bases and coefficients with their graphs
            scaled, cell, h = _uniform_cell(x, knots, order)
            u = scaled - cell
            values, _ = _uniform_values(u, table, order)
            at = _coefficients_at(coef, flat, order)
        else:
            h = _spacing(knots)
        grad_x = grad_coef = None
        if ctx.needs_input_grad[0]:
            grad_x = _slope_sum(at, u, table, order) * (grad[:, None] / h)
        if ctx.needs_input_grad[3]:
            weights = values * grad[:, None]
            grad_coef = torch.zeros(coef.numel(), dtype=coef.dtype, device=coef.device)
            if create_graph:  # out of place, one index for all k + 1 positions
                index = flat.reshape(-1) + torch.arange(order + 1, device=flat.device)[:, None]
                grad_coef = grad_coef.scatter_add(0, index.reshape(-1), weights.reshape(-1))
            else:
                for r in range(order + 1):  # scatter_add_: serial, but 2x index_add_'s speed
                    grad_coef[r:].scatter_add_(0, flat.reshape(-1), weights[r].reshape(-1))
            grad_coef = grad_coef.reshape(coef.shape)
        return grad_x, None, None, grad_coef, None

    @staticmethod
    def jvp(ctx, x_tangent, _knots, _table, coef_tangent, _order) -> Tensor:
        u, values, flat, at, knots, table = ctx.saved_tensors
        order = ctx.order
        tangent = torch.zeros(u.shape[0], dtype=u.dtype, device=u.device)
        if x_tangent is not None:
            h = _spacing(knots)
            tangent = tangent + (_slope_sum(at, u, table, order) * (x_tangent / h)).sum(1)
        if coef_tangent is not None:
            at_tangent = _coefficients_at(coef_tangent, flat, order)
            tangent = tangent + (values * at_tangent).sum(0).sum(1)
        return tangent


def _flat_positions(start: Tensor, n_basis: int) -> Tensor:
    """Position ``i * n_basis + start_i`` of each point's first nonzero basis in the
    flattened ``(n_inputs, n_basis)`` coefficients: LongTensor ``(batch, n_inputs)``."""
    return start + n_basis * torch.arange(start.shape[1], device=start.device)


def _coefficients_at(coef: Tensor, flat: Tensor, order: int) -> Tensor:
    """The coefficients ``coef`` ``(n_inputs, n_basis)`` of each point's ``k + 1`` nonzero
    bases, planar ``(k + 1, batch, n_inputs)``: basis ``r`` sits ``r`` places after the
    point's :func:`_flat_positions` (one index serves all ``k + 1``)."""
    coef = coef.reshape(-1)
    if (torch.is_grad_enabled() and coef.requires_grad) or _transform_level() is not None:
        at = torch.stack([coef[r:].index_select(0, flat.reshape(-1)) for r in range(order + 1)])
        return at.reshape(order + 1, *flat.shape)
    # no graph to build: each sample's row of coefficients read in parallel over samples
    rows = coef.expand(flat.shape[0], coef.shape[0])
    at = torch.empty((order + 1, *flat.shape), dtype=coef.dtype, device=coef.device)
    for r in range(order + 1):
        torch.gather(rows[:, r:], 1, flat, out=at[r])
    return at


def _slope_sum(weights: Tensor, u: Tensor, table: Tensor, order: int) -> Tensor:
    """``sum_r weights_r * dB_r/du`` for planar ``weights`` ``(k + 1, *u.shape)``: the slope
    pieces applied as ``sum_p u^p (rates @ weights)_p`` by Horner's rule."""
    terms = torch.mm(_rates(table, order), weights.reshape(order + 1, -1))
    return horner(terms.reshape(order, *u.shape), u)


def evaluate(
    x: Tensor, knots: Tensor, coef: Tensor, order: int, pieces: Tensor | None = None,
    uniform: bool = False,
) -> Tensor:
    """Evaluate splines with coefficients ``coef`` at ``x``.

    Parameters
    ----------
    x : Tensor of shape (batch, n_inputs)
    knots : Tensor of shape (n_inputs, G + 2k + 1)
    coef : Tensor of shape (n_inputs, G + k, n_out)
        One spline per (input, output) pair.

    Returns
    -------
    Tensor of shape (batch, n_inputs, n_out)
    """
    return torch.einsum("bim,imo->bio", dense_bases(x, knots, order, pieces, uniform), coef)


def fit_coefficients(
    x: Tensor, y: Tensor, knots: Tensor, order: int, ridge: float = 1e-10
) -> Tensor:
    r"""Least-squares spline coefficients from samples, independently per input.

    Solves :math:`\min_c \|B c - y\|^2 + \lambda \|c\|^2` with a tiny ridge
    :math:`\lambda` (relative to the mean diagonal of :math:`B^T B`) so that bases with no
    samples under them stay at zero instead of making the system singular.

    Parameters
    ----------
    x : Tensor of shape (batch, n_inputs)
    y : Tensor of shape (batch, n_inputs, n_out)
    knots : Tensor of shape (n_inputs, G + 2k + 1)

    Returns
    -------
    Tensor of shape (n_inputs, G + k, n_out)
    """
    basis = dense_bases(x, knots, order).permute(1, 0, 2)  # (in, batch, m)
    gram = basis.transpose(1, 2) @ basis
    scale = gram.diagonal(dim1=1, dim2=2).mean(-1).clamp_min(1e-300)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    gram = gram + ridge * scale[:, None, None] * eye
    rhs = basis.transpose(1, 2) @ y.permute(1, 0, 2)
    return torch.linalg.solve(gram, rhs).contiguous()  # L-BFGS views gradients flat
