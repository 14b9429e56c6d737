r"""One KAN layer: a learnable function on every edge, summed into each output.

Edge :math:`(i, j)` from input ``i`` to output ``j`` computes

.. math:: \phi_{ij}(x) = m_{ij} \left[ (1 - s_{ij}) \left( w^b_{ij} b(x) + w^s_{ij} \sum_m c_{ijm}
          B_m(x) \right) + s_{ij} \left( \alpha_{ij} f_{ij}(\beta_{ij} x + \gamma_{ij})
          + \delta_{ij} \right) \right]

with ``b`` the base function (SiLU), :math:`B_m` the B-spline bases of :mod:`pikan.kan.spline`,
``m`` the pruning mask and ``s`` the symbolic mask: a symbolic edge is fixed to a library
function ``f`` (:mod:`pikan.kan.symbolic`) with its own affine parameters. Output
:math:`y_j = \sum_i \phi_{ij}(x_i)`.

The numeric part is two matrix products (splines as one dense product over the
``in * (G + k)`` bases, of which only ``k + 1`` per input are nonzero), so the layer costs
about as much as a dense layer of that width. Symbolic edges are evaluated vectorized, one
pass per distinct library function in use, never a loop over edges.

``forward`` returns outputs only; :meth:`KANLayer.edge_outputs` is the separate, explicit
call that gives per-edge values for plots, attribution and law extraction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from pikan.kan import spline, symbolic

_BASES: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": torch.nn.functional.silu,
    "tanh": torch.tanh,
    "identity": lambda x: x,
    "zero": torch.zeros_like,
}


def _silu_slope(x: Tensor) -> Tensor:
    sigmoid = torch.sigmoid(x)
    return sigmoid * (1 + x * (1 - sigmoid))


_BASE_SLOPES: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": _silu_slope,
    "tanh": lambda x: 1 - torch.tanh(x) ** 2,
    "identity": torch.ones_like,
    "zero": torch.zeros_like,
}


SKEW_LIMIT = 0.2
"""An input is skewed when its median lies in the outer fifth of its range."""


def auto_adaptivity(x: Tensor) -> float:
    """Grid adaptivity for samples ``x`` (batch, in_dim): 0 (a uniform grid) unless some
    input's median lies in the outer :data:`SKEW_LIMIT` of its range, then 0.5.

    Trajectories usually cover their range evenly, and uniform knots are the fast path.
    A feature with a long tail (the squared separation of two bodies on eccentric orbits:
    most samples near 1, a few at 13) would leave most of the data in one or two cells of
    a uniform grid, where a coarse spline cannot follow a ``1/sqrt(s)`` potential.
    """
    lo, hi = x.min(0).values, x.max(0).values
    position = (x.median(0).values - lo) / (hi - lo).clamp_min(1e-12)
    skewed = (position < SKEW_LIMIT) | (position > 1 - SKEW_LIMIT)
    return 0.5 if bool(skewed.any()) else 0.0


class KANLayer(nn.Module):
    r"""A KAN layer with ``in_dim * out_dim`` learnable edges.

    Parameters
    ----------
    in_dim, out_dim : int
        Number of inputs and outputs.
    grid : int
        Number of spline intervals inside ``grid_range``.
    order : int
        Spline order ``k`` (3 = cubic), in 1..5.
    grid_range : (float, float)
        Initial range of the grid, the same for every input.
    base : str
        Base function ``b``: ``"silu"`` (default), ``"tanh"``, ``"identity"`` or ``"zero"``.
    noise_scale : float
        Standard deviation of the initial spline coefficients.
    generator : torch.Generator, optional
        Source of the random initialization (for seeding).
    experts : list of str, optional
        Hybrid symbolic edges: beside its spline, each edge gets a gated mixture of these
        library functions, each with learnable affine parameters,
        :math:`\phi = g_s \phi_{spline} + \sum_e g_e (a_e f_e(b_e x + c_e) + d_e)` with gates
        :math:`g = \mathrm{softmax}(\ell / T)`. Lowering the temperature ``T`` and the gate
        entropy penalty drive each edge toward one expert or the spline; :meth:`snap` then
        fixes decisive edges to their expert. Arguments outside an expert's domain give 0.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        grid: int = 5,
        order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        base: str = "silu",
        noise_scale: float = 0.1,
        generator: torch.Generator | None = None,
        experts: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        spline.check_grid_args(grid, order)
        if base not in _BASES:
            raise ValueError(f"base must be one of {sorted(_BASES)}, got {base!r}")
        lo, hi = grid_range
        if not hi > lo:
            raise ValueError(f"grid_range must be (lo, hi) with hi > lo, got {grid_range!r}")
        self.in_dim, self.out_dim, self.order, self.base = in_dim, out_dim, order, base
        dtype = torch.get_default_dtype()
        knots = spline.uniform_knots(grid, order, lo, hi, in_dim, dtype=dtype)
        self.register_buffer("knots", knots)
        n_basis = grid + order

        def rand(*shape):
            return torch.rand(*shape, generator=generator, dtype=dtype)

        def randn(*shape):
            return torch.randn(*shape, generator=generator, dtype=dtype)

        self.coef = nn.Parameter(noise_scale * randn(in_dim, n_basis, out_dim))
        self.w_base = nn.Parameter((2 * rand(in_dim, out_dim) - 1) / in_dim**0.5)
        self.w_spline = nn.Parameter(torch.full((in_dim, out_dim), 1 / in_dim**0.5, dtype=dtype))
        self.register_buffer("mask", torch.ones(in_dim, out_dim, dtype=dtype))
        self.register_buffer("sym_mask", torch.zeros(in_dim, out_dim, dtype=dtype))
        self.register_buffer("sym_index", torch.zeros(in_dim, out_dim, dtype=torch.long))
        affine = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=dtype).expand(in_dim, out_dim, 4)
        self.sym_affine = nn.Parameter(affine.clone())
        self.experts = tuple(experts or ())
        if self.experts:
            for name in self.experts:
                symbolic.get(name)  # unknown names raise SpecError with a suggestion
            n_exp = len(self.experts)
            self.expert_logits = nn.Parameter(torch.zeros(in_dim, out_dim, n_exp + 1, dtype=dtype))
            init = torch.zeros(in_dim, out_dim, n_exp, 4, dtype=dtype)
            init[..., 0] = 0.1 * randn(in_dim, out_dim, n_exp)
            init[..., 1] = 1.0
            self.expert_affine = nn.Parameter(init)
            self.register_buffer("expert_mask", torch.ones(in_dim, out_dim, n_exp + 1, dtype=dtype))
            self.register_buffer("temperature", torch.tensor(1.0, dtype=dtype))
        self._refresh()

    # ------------------------------------------------------------------ structure state
    @property
    def grid(self) -> int:
        """Number of grid intervals ``G``."""
        return self.knots.shape[1] - 2 * self.order - 1

    def _refresh(self) -> None:
        """Recompute the Python-side flags derived from buffers (after any change of them)."""
        steps = self.knots[:, 1:] - self.knots[:, :-1]
        self._uniform = bool(torch.allclose(steps, steps[:, :1].expand_as(steps), rtol=1e-6))
        pieces = spline.piece_polynomials(self.knots, self.order)
        if "pieces" in self._buffers:
            self.pieces = pieces
        else:  # derived from the knots, so not saved in the state dict
            self.register_buffer("pieces", pieces, persistent=False)
        keep = self.mask * (1 - self.sym_mask)  # numeric edges: derived, so not saved
        if "keep" in self._buffers:
            self.keep = keep
        else:
            self.register_buffer("keep", keep, persistent=False)
        self._all_kept = bool((keep == 1).all())  # nothing masked: the weights are used as is
        used = torch.unique(self.sym_index[self.sym_mask > 0]).tolist()
        self._sym_used = tuple(int(i) for i in used)
        self._has_numeric = bool((self.sym_mask < 1).any())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Grids are refined and edges fixed after construction: adopt the stored shapes.
        for name in ("knots", "coef"):
            stored = state_dict.get(prefix + name)
            current = getattr(self, name)
            if stored is not None and stored.shape != current.shape:
                fresh = torch.empty(stored.shape, dtype=current.dtype, device=current.device)
                if isinstance(current, nn.Parameter):
                    self.coef = nn.Parameter(fresh)
                else:
                    self.knots = fresh
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._refresh()

    # ------------------------------------------------------------------ evaluation
    def _numeric_weights(self) -> tuple[Tensor, Tensor]:
        if self._all_kept and not self.experts:
            return self.w_base, self.w_spline
        keep = self.keep
        if self.experts:
            keep = keep * self.gates()[..., -1]
        return self.w_base * keep, self.w_spline * keep

    def gates(self) -> Tensor:
        """Expert gates per edge, last entry the spline: (in_dim, out_dim, n_experts + 1)."""
        logits = self.expert_logits / self.temperature
        logits = logits.masked_fill(self.expert_mask == 0, float("-inf"))
        return torch.softmax(logits, dim=-1)

    def gate_entropy(self) -> Tensor:
        """Mean entropy of the gates of live numeric edges (0: every edge decided)."""
        g = self.gates()
        entropy = -(g * torch.log(g.clamp_min(1e-30))).sum(-1)
        keep = self.mask * (1 - self.sym_mask)
        return (entropy * keep).sum() / keep.sum().clamp_min(1.0)

    def _expert_edges(self, x: Tensor) -> Tensor:
        """Gated expert mixture of every numeric edge: (batch, in_dim, out_dim)."""
        gates = self.gates()[..., :-1]
        a, b, c, d = self.expert_affine.unbind(-1)
        z = x[:, :, None, None] * b + c  # (batch, in, out, experts)
        values = []
        for e, name in enumerate(self.experts):
            prim = symbolic.get(name)
            ze = z[..., e]
            values.append(symbolic.safe_apply(prim, ze, prim.in_domain(ze.detach())))
        mixed = (gates * (a * torch.stack(values, dim=-1) + d)).sum(-1)
        return mixed * (self.mask * (1 - self.sym_mask))

    @torch.no_grad()
    def snap(self, threshold: float = 0.9) -> list[tuple[int, int, str]]:
        """Fix edges whose gate is decisive: an expert above ``threshold`` becomes a symbolic
        edge with its affine parameters; a spline above it drops its experts.

        Returns
        -------
        list of (i, j, name) for every edge decided (name ``"spline"`` for spline edges).
        """
        if not self.experts:
            return []
        gates = self.gates()
        decided = []
        for i in range(self.in_dim):
            for j in range(self.out_dim):
                if self.mask[i, j] == 0 or self.sym_mask[i, j] == 1:
                    continue
                best = int(gates[i, j].argmax())
                if gates[i, j, best] < threshold:
                    continue
                if best == len(self.experts):
                    self.expert_mask[i, j, :-1] = 0
                    decided.append((i, j, "spline"))
                else:
                    a, b, c, d = self.expert_affine[i, j, best].tolist()
                    self.set_symbolic(i, j, self.experts[best], a, b, c, d)
                    decided.append((i, j, self.experts[best]))
        return decided

    def _check(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(
                f"input x must have shape (batch, {self.in_dim}), got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor) -> Tensor:
        """Layer outputs.

        Parameters
        ----------
        x : Tensor of shape (batch, in_dim)

        Returns
        -------
        Tensor of shape (batch, out_dim)
        """
        self._check(x)
        y = None
        if self._has_numeric and self.out_dim == 1:  # a sum of splines: no dense basis
            coef, w_base = self._one_output_weights()
            splines = spline.spline_sum(x, self.knots, coef, self.order, self.pieces,
                                        self._uniform)
            y = splines[:, None] + _BASES[self.base](x) @ w_base
        elif self._has_numeric:
            basis = spline.dense_bases(x, self.knots, self.order, self.pieces, self._uniform)
            y, _, _ = self._numeric_output(x, basis)
        if self.experts and self._has_numeric:
            y = y + self._expert_edges(x).sum(1)
        if self._sym_used:
            sym = self._symbolic_edges(x).sum(1)
            y = sym if y is None else y + sym
        return y

    def _one_output_weights(self) -> tuple[Tensor, Tensor]:
        """A one-output layer's spline coefficients ``(in, G + k)`` and base weights
        ``(in, 1)``, masks applied."""
        w_base, w_spline = self._numeric_weights()
        return self.coef[..., 0] * w_spline, w_base

    def _numeric_output(self, x: Tensor, basis: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Spline and base part of the outputs from the dense ``basis`` of ``x``, with the
        weighted coefficient matrix ``(in * (G + k), out)`` and base weights it used."""
        w_base, w_spline = self._numeric_weights()
        coef = (self.coef * w_spline[:, None, :]).reshape(-1, self.out_dim)
        y = basis.reshape(x.shape[0], -1) @ coef + _BASES[self.base](x) @ w_base
        return y, coef, w_base

    @property
    def has_pullback(self) -> bool:
        """Every edge is a spline (no symbolic edges, no experts): :meth:`forward_and_pullback`
        applies."""
        return not self._sym_used and not self.experts

    def forward_and_pullback(self, x: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """Layer outputs and the map ``g -> g @ dy/dx`` written out with the spline slopes.

        The pullback uses the derivative pieces of the splines directly instead of
        differentiating the forward pass, so a gradient with respect to the input (a force
        from a KAN potential) costs one forward-like pass and its parameter gradients need
        first-order autograd only, not a double backward.

        Parameters
        ----------
        x : Tensor of shape (batch, in_dim)

        Returns
        -------
        y : Tensor of shape (batch, out_dim)
        pullback : callable (batch, out_dim) -> (batch, in_dim)

        Raises
        ------
        ValueError
            When the layer has symbolic edges or experts (see :attr:`has_pullback`).
        """
        self._check(x)
        if not self.has_pullback:
            raise ValueError("forward_and_pullback needs a layer of spline edges only; this one "
                             "has symbolic edges or experts")
        base_slope = _BASE_SLOPES[self.base](x)
        if self.out_dim == 1:  # a sum of splines: each point's interval polynomial, no basis
            coef, w_base = self._one_output_weights()
            u, _, width, which = spline.interval_coordinate(
                x, self.knots, self.pieces, self.order, self._uniform)
            at = spline.interval_polynomials(coef, self.pieces, which, self.order)
            y = spline.horner(at, u).sum(1, keepdim=True) + _BASES[self.base](x) @ w_base
            slope = spline.horner_slope(at, u) / width + base_slope * w_base[:, 0]
            return y, lambda g: g * slope

        values, slopes, start = spline.local_bases_and_slopes(
            x, self.knots, self.order, self.pieces, self._uniform)
        n_basis = self.coef.shape[1]
        index = spline.scatter_index(start, self.order)
        y, coef, w_base = self._numeric_output(x, spline.scatter_bases(values, index, n_basis))

        def pullback(g: Tensor) -> Tensor:
            per_basis = (g @ coef.t()).reshape(*x.shape, n_basis).gather(-1, index)
            return (per_basis * slopes).sum(-1) + base_slope * (g @ w_base.t())

        return y, pullback

    def _symbolic_edges(self, x: Tensor) -> Tensor:
        """Values of the symbolic edges, zero on the others: (batch, in_dim, out_dim)."""
        a, b, c, d = self.sym_affine.unbind(-1)
        z = x[:, :, None] * b + c
        value = torch.zeros_like(z)
        for k in self._sym_used:
            primitive = symbolic.LIBRARY[symbolic.names()[k]]
            active = self.sym_index == k
            value = value + symbolic.safe_apply(primitive, z, active)
        return (a * value + d) * (self.sym_mask * self.mask)

    def edge_outputs(self, x: Tensor) -> Tensor:
        """Value of every edge function at ``x`` (a separate call; ``forward`` stores nothing).

        Parameters
        ----------
        x : Tensor of shape (batch, in_dim)

        Returns
        -------
        Tensor of shape (batch, in_dim, out_dim); summing over ``in_dim`` gives ``forward(x)``.
        """
        self._check(x)
        w_base, w_spline = self._numeric_weights()
        splines = spline.evaluate(x, self.knots, self.coef, self.order, self.pieces, self._uniform)
        out = splines * w_spline + _BASES[self.base](x)[:, :, None] * w_base
        if self.experts:
            out = out + self._expert_edges(x)
        if self._sym_used:
            out = out + self._symbolic_edges(x)
        return out

    def spline_part(self, x: Tensor) -> Tensor:
        """Spline and base contribution of each edge, without weights' masks: (batch, in, out)."""
        splines = spline.evaluate(x, self.knots, self.coef, self.order, self.pieces, self._uniform)
        return splines * self.w_spline + _BASES[self.base](x)[:, :, None] * self.w_base

    # ------------------------------------------------------------------ grids
    @torch.no_grad()
    def set_knots(self, knots: Tensor, x: Tensor) -> None:
        """Move to new knots, refitting each edge's spline to keep the function (least squares).

        Parameters
        ----------
        knots : Tensor of shape (in_dim, G' + 2k + 1)
        x : Tensor of shape (batch, in_dim)
            Sample inputs on which the old spline is matched.
        """
        old = spline.evaluate(x, self.knots, self.coef, self.order, self.pieces, self._uniform)
        self.coef = nn.Parameter(spline.fit_coefficients(x, old, knots, self.order))
        self.knots = knots.to(self.knots)
        self._refresh()

    @torch.no_grad()
    def update_grid(self, x: Tensor, grid: int | None = None,
                    adaptivity: float | str = 0.98) -> None:
        """Adapt each input's knots to the distribution of ``x``, keeping the edge functions.

        The new grid points mix sample quantiles (weight ``adaptivity``) with a uniform grid
        over the sample range (weight ``1 - adaptivity``), as in KAN 2.0's ``grid_eps``.

        Parameters
        ----------
        x : Tensor of shape (batch, in_dim)
            Finite samples of the layer's inputs.
        grid : int, optional
            New number of intervals (default: keep the current one).
        adaptivity : float in [0, 1], or "auto"
            "auto": uniform (0, the fast spline path) unless some input is heavily skewed
            over its range, then half quantiles (:func:`auto_adaptivity`).
        """
        self._check(x)
        if adaptivity == "auto":
            adaptivity = auto_adaptivity(x)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x passed to update_grid contains NaN or inf values")
        if x.shape[0] < 2:
            raise ValueError(f"x passed to update_grid needs at least 2 samples, got {x.shape[0]}")
        if not 0.0 <= adaptivity <= 1.0:
            raise ValueError(f"adaptivity must be in [0, 1], got {adaptivity!r}")
        grid = self.grid if grid is None else grid
        spline.check_grid_args(grid, self.order)
        sorted_x = torch.sort(x, dim=0).values
        q = torch.linspace(0, 1, grid + 1, dtype=x.dtype, device=x.device)
        adaptive = torch.quantile(sorted_x, q, dim=0).t()
        lo, hi = sorted_x[0], sorted_x[-1]
        span = (hi - lo).clamp_min(1e-6)
        hi = lo + span
        uniform = lo[:, None] + q[None, :] * span[:, None]
        points = adaptivity * adaptive + (1 - adaptivity) * uniform
        points = torch.cummax(points, dim=1).values
        # keep a minimum spacing so no interval collapses
        points = points + torch.arange(grid + 1, dtype=x.dtype, device=x.device) * 1e-6 * span[:, None]
        self.set_knots(spline.extend_knots(points, self.order), x)

    @torch.no_grad()
    def refine(self, grid: int, x: Tensor | None = None) -> None:
        """Grid extension: a finer uniform grid over the same range, same function.

        Parameters
        ----------
        grid : int
            New number of intervals (usually larger than the current one).
        x : Tensor of shape (batch, in_dim), optional
            Samples to match the old spline on; default: dense points over the old range.
        """
        spline.check_grid_args(grid, self.order)
        lo = self.knots[:, self.order]
        hi = self.knots[:, -self.order - 1]
        knots = spline.uniform_knots(grid, self.order, lo, hi, dtype=self.knots.dtype,
                                     device=self.knots.device)
        n = max(4 * (grid + self.order), 64)
        t = torch.linspace(0, 1, n, dtype=lo.dtype, device=lo.device)
        dense = lo[None, :] + t[:, None] * (hi - lo)[None, :]
        x = dense if x is None else torch.cat([dense, x.to(dense)], dim=0)
        self.set_knots(knots, x)

    # ------------------------------------------------------------------ symbolic edges
    @torch.no_grad()
    def set_symbolic(
        self, i: int, j: int, name: str, a: float = 1.0, b: float = 1.0, c: float = 0.0,
        d: float = 0.0,
    ) -> None:
        """Fix edge ``(i, j)`` to ``a * f(b * x + c) + d`` with ``f`` the library function ``name``."""
        self._check_edge(i, j)
        self.sym_index[i, j] = symbolic.index(name)
        self.sym_mask[i, j] = 1.0
        self.sym_affine[i, j] = torch.tensor([a, b, c, d], dtype=self.sym_affine.dtype)
        self._refresh()

    @torch.no_grad()
    def unset_symbolic(self, i: int, j: int) -> None:
        """Return edge ``(i, j)`` to its spline."""
        self._check_edge(i, j)
        self.sym_mask[i, j] = 0.0
        self._refresh()

    def symbolic_edge(self, i: int, j: int) -> tuple[str, tuple[float, float, float, float]] | None:
        """The library function name and (a, b, c, d) of edge ``(i, j)``, or None if numeric."""
        self._check_edge(i, j)
        if self.sym_mask[i, j] == 0:
            return None
        name = symbolic.names()[int(self.sym_index[i, j])]
        return name, tuple(float(v) for v in self.sym_affine[i, j].detach())

    @torch.no_grad()
    def set_mask(self, mask: Tensor) -> None:
        """Set the pruning mask (1 keeps an edge, 0 removes it): (in_dim, out_dim)."""
        if tuple(mask.shape) != (self.in_dim, self.out_dim):
            raise ValueError(f"mask must have shape {(self.in_dim, self.out_dim)}, got {tuple(mask.shape)}")
        self.mask.copy_(mask)
        self._refresh()

    def _check_edge(self, i: int, j: int) -> None:
        if not (0 <= i < self.in_dim and 0 <= j < self.out_dim):
            raise ValueError(f"edge ({i}, {j}) out of range for a {self.in_dim}x{self.out_dim} layer")

    def extra_repr(self) -> str:
        return (f"in_dim={self.in_dim}, out_dim={self.out_dim}, grid={self.grid}, "
                f"order={self.order}, base={self.base!r}")
