r"""KAN: a stack of KAN layers with named inputs and outputs and multiplication nodes.

``KAN([2, 5, 1])`` has two inputs, five hidden sum nodes and one output. A hidden width may
be a pair ``[n_sum, n_mult]`` (KAN 2.0's MultKAN): the layer before it then produces
``n_sum + 2 * n_mult`` subnodes, the first ``n_sum`` pass through, and each following pair
is multiplied into one node, so ``KAN([2, [0, 1], 1])`` can represent ``x * y`` exactly.

Structural operations (grid adaptation and refinement, pruning, fixing edges to symbolic
functions) live here; the per-edge math lives in :mod:`pikan.kan.layer` and
:mod:`pikan.kan.spline`. ``forward`` returns outputs only: :meth:`KAN.activations` is the
explicit call for per-edge values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pikan.kan.attribution import scores
from pikan.kan.layer import KANLayer


def _parse_widths(widths: Sequence) -> list[tuple[int, int]]:
    """``[2, [4, 2], 1]`` -> ``[(2, 0), (4, 2), (1, 0)]`` with validation."""
    if not isinstance(widths, Sequence) or isinstance(widths, str) or len(widths) < 2:
        raise ValueError(f"widths must list at least an input and an output width, got {widths!r}")
    parsed = []
    for position, w in enumerate(widths):
        if isinstance(w, int) and not isinstance(w, bool):
            pair = (w, 0)
        elif isinstance(w, Sequence) and len(w) == 2 and all(isinstance(v, int) for v in w):
            pair = (int(w[0]), int(w[1]))
        else:
            raise ValueError(f"widths[{position}] must be an int or [n_sum, n_mult], got {w!r}")
        if pair[0] < 0 or pair[1] < 0 or sum(pair) < 1:
            raise ValueError(f"widths[{position}] must have at least one node, got {w!r}")
        parsed.append(pair)
    if parsed[0][1] or parsed[-1][1]:
        raise ValueError("multiplication nodes are only allowed in hidden layers, "
                         f"got widths={widths!r}")
    return parsed


@dataclass(frozen=True)
class LayerActivations:
    """Everything one layer computes on a batch (from :meth:`KAN.activations`).

    Attributes
    ----------
    inputs : Tensor of shape (batch, in_dim)
        Values entering the layer.
    edges : Tensor of shape (batch, in_dim, out_dim)
        Value of every edge function.
    subnodes : Tensor of shape (batch, out_dim)
        Sums over incoming edges (before multiplication nodes).
    nodes : Tensor of shape (batch, n_sum + n_mult)
        Node values after multiplication nodes: the next layer's inputs.
    """

    inputs: Tensor
    edges: Tensor
    subnodes: Tensor
    nodes: Tensor


class KAN(nn.Module):
    """A Kolmogorov--Arnold network.

    Parameters
    ----------
    widths : list
        Node counts per layer, e.g. ``[2, 5, 1]``; a hidden entry ``[n_sum, n_mult]`` adds
        multiplication nodes.
    grid : int
        Spline intervals per edge.
    order : int
        Spline order (3 = cubic), 1..5.
    grid_range : (float, float)
        Initial grid range of every layer.
    base : str
        Base function of every edge (see :class:`~pikan.kan.layer.KANLayer`).
    noise_scale : float
        Standard deviation of the initial spline coefficients.
    seed : int, optional
        Seed for the initialization (independent of the global RNG).
    input_names, output_names : list of str, optional
        Names for inputs and outputs (used by plots and law extraction).
    experts : list of str, optional
        Hybrid symbolic edges on every layer (see :class:`~pikan.kan.layer.KANLayer`).
    jump : bool
        Add a linear skip path from inputs to outputs, ``y = KAN(x) + x W`` (the "JumpKAN"
        idea): linear terms then need no spline, and law extraction reads them from ``W``.
    """

    def __init__(
        self,
        widths: Sequence,
        grid: int = 5,
        order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        base: str = "silu",
        noise_scale: float = 0.1,
        seed: int | None = None,
        input_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        jump: bool = False,
        experts: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.widths = _parse_widths(widths)
        generator = None
        if seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        layers = []
        for (n_in, m_in), (n_out, m_out) in zip(self.widths[:-1], self.widths[1:]):
            layers.append(KANLayer(n_in + m_in, n_out + 2 * m_out, grid=grid, order=order,
                                   grid_range=grid_range, base=base, noise_scale=noise_scale,
                                   generator=generator, experts=experts))
        self.layers = nn.ModuleList(layers)
        self.input_names = self._names(input_names, "x", self.in_dim, "input_names")
        self.output_names = self._names(output_names, "y", self.out_dim, "output_names")
        self.jump = None
        if jump:
            dtype = torch.get_default_dtype()
            self.jump = nn.Parameter(torch.zeros(self.in_dim, self.out_dim, dtype=dtype))

    @staticmethod
    def _names(names, prefix, count, argument):
        if names is None:
            return [f"{prefix}{i}" for i in range(count)] if count > 1 else [prefix]
        names = [str(n) for n in names]
        if len(names) != count:
            raise ValueError(f"{argument} must have {count} entries, got {len(names)}: {names}")
        return names

    @property
    def in_dim(self) -> int:
        return self.widths[0][0]

    @property
    def out_dim(self) -> int:
        return self.widths[-1][0]

    def config(self) -> dict:
        """Constructor arguments that rebuild this architecture (weights via ``state_dict``)."""
        first = self.layers[0]
        return {
            "widths": [list(w) if w[1] else w[0] for w in self.widths],
            "grid": first.grid, "order": first.order, "base": first.base,
            "input_names": list(self.input_names), "output_names": list(self.output_names),
            "jump": self.jump is not None, "experts": list(first.experts) or None,
        }

    # ------------------------------------------------------------------ evaluation
    def _combine(self, layer_index: int, subnodes: Tensor) -> Tensor:
        """Subnodes of a layer's output -> nodes (multiplication nodes take pairs)."""
        n_sum, n_mult = self.widths[layer_index + 1]
        if not n_mult:
            return subnodes
        pairs = subnodes[:, n_sum:]
        return torch.cat([subnodes[:, :n_sum], pairs[:, 0::2] * pairs[:, 1::2]], dim=1)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"KAN input x must have shape (batch, {self.in_dim}), "
                             f"got {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        """Network outputs.

        Parameters
        ----------
        x : Tensor of shape (batch, in_dim)

        Returns
        -------
        Tensor of shape (batch, out_dim)
        """
        self._check_input(x)
        inputs = x
        for index, layer in enumerate(self.layers):
            x = self._combine(index, layer(x))
        if self.jump is not None:
            x = x + inputs @ self.jump
        return x

    @property
    def has_input_gradient(self) -> bool:
        """:meth:`value_and_input_gradient` applies: one output, spline edges only."""
        return self.out_dim == 1 and all(layer.has_pullback for layer in self.layers)

    def value_and_input_gradient(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Output and its gradient with respect to the inputs, the gradient written out.

        Equal to ``forward`` and autograd's input gradient, but the gradient is built from the
        spline slopes layer by layer (:meth:`KANLayer.forward_and_pullback`), so training on
        it (a force from a KAN potential) takes a first-order backward pass instead of a
        double backward through the forward graph.

        Parameters
        ----------
        x : Tensor of shape (batch, in_dim)

        Returns
        -------
        value : Tensor of shape (batch,)
        gradient : Tensor of shape (batch, in_dim)

        Raises
        ------
        ValueError
            Unless :attr:`has_input_gradient` (more than one output, symbolic edges or
            experts): use autograd there.
        """
        self._check_input(x)
        if not self.has_input_gradient:
            raise ValueError("value_and_input_gradient needs one output and spline edges only "
                             f"(out_dim={self.out_dim}; symbolic edges or experts fall back "
                             "to autograd)")
        inputs, pullbacks, h = x, [], x
        for index, layer in enumerate(self.layers):
            subnodes, pullback = layer.forward_and_pullback(h)
            pullbacks.append((pullback, subnodes))
            h = self._combine(index, subnodes)
        if self.jump is not None:
            h = h + inputs @ self.jump
        g = torch.ones_like(h)
        for index in reversed(range(len(self.layers))):
            pullback, subnodes = pullbacks[index]
            g = pullback(self._combine_pullback(index, subnodes, g))
        if self.jump is not None:
            g = g + self.jump[:, 0]
        return h[:, 0], g

    def _combine_pullback(self, layer_index: int, subnodes: Tensor, g: Tensor) -> Tensor:
        """Gradient on the nodes -> gradient on the subnodes (product rule for the pairs)."""
        n_sum, n_mult = self.widths[layer_index + 1]
        if not n_mult:
            return g
        pairs = subnodes[:, n_sum:]
        g_mult = g[:, n_sum:]
        per_pair = torch.stack([g_mult * pairs[:, 1::2], g_mult * pairs[:, 0::2]], dim=-1)
        return torch.cat([g[:, :n_sum], per_pair.reshape(g.shape[0], -1)], dim=1)

    def jump_outputs(self, x: Tensor) -> Tensor | None:
        """Contribution of the linear skip path per (input, output): ``(batch, in, out)``."""
        if self.jump is None:
            return None
        return x[:, :, None] * self.jump

    def activations(self, x: Tensor) -> list[LayerActivations]:
        """Per-layer inputs, edge values, subnodes and nodes on a batch (for plots, extraction).

        Parameters
        ----------
        x : Tensor of shape (batch, in_dim)

        Returns
        -------
        list of :class:`LayerActivations`, one per layer. The skip path of a ``jump=True``
        network is not included (see :meth:`jump_outputs`); the last layer's ``nodes`` are
        then the network output minus the skip path.
        """
        out = []
        for index, layer in enumerate(self.layers):
            edges = layer.edge_outputs(x)
            subnodes = edges.sum(1)
            nodes = self._combine(index, subnodes)
            out.append(LayerActivations(x, edges, subnodes, nodes))
            x = nodes
        return out

    # ------------------------------------------------------------------ grids
    @torch.no_grad()
    def update_grid(self, x: Tensor, grid: int | None = None, adaptivity: float = 0.98) -> None:
        """Adapt every layer's knots to the data distribution, keeping the represented function.

        Parameters
        ----------
        x : Tensor of shape (batch, in_dim)
            Network inputs; must be finite.
        grid : int, optional
            New number of intervals (default: keep each layer's).
        adaptivity : float in [0, 1]
            Weight of sample quantiles against a uniform grid over the sample range.
        """
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x passed to update_grid contains NaN or inf values")
        for index, layer in enumerate(self.layers):
            layer.update_grid(x, grid=grid, adaptivity=adaptivity)
            x = self._combine(index, layer(x))

    @torch.no_grad()
    def refine(self, grid: int, x: Tensor | None = None) -> None:
        """Grid extension: every layer to ``grid`` intervals over its current range, same function.

        Parameters
        ----------
        grid : int
            New number of intervals.
        x : Tensor of shape (batch, in_dim), optional
            Samples the old splines are matched on, besides a dense sweep of each grid range.
        """
        for index, layer in enumerate(self.layers):
            layer.refine(grid, x)
            if x is not None:
                x = self._combine(index, layer(x))

    # ------------------------------------------------------------------ sparsity
    def regularization(self, x: Tensor | None = None, l1: float = 1.0,
                       entropy: float = 2.0) -> Tensor:
        r"""The KAN sparsity penalty :math:`\sum_l (\lambda_1 |\Phi_l|_1 + \lambda_H S(\Phi_l))`.

        With ``x``, edge magnitudes are mean absolute activations on the batch (KAN 2.0);
        without, a cheaper proxy from the weights (mean absolute spline coefficient times
        spline weight, plus base weight), which needs no extra forward pass.
        :math:`S` is the entropy of the normalized edge magnitudes of each layer.

        Returns
        -------
        Tensor, scalar.
        """
        total = 0.0
        activations = self.activations(x) if x is not None else None
        for index, layer in enumerate(self.layers):
            if activations is not None:
                magnitude = activations[index].edges.abs().mean(0)
            else:
                magnitude = (layer.coef.abs().mean(1) * layer.w_spline.abs()
                             + layer.w_base.abs()) * layer.mask
            norm = magnitude.sum()
            p = magnitude / (norm + 1e-12)
            total = total + l1 * norm + entropy * -(p * torch.log(p + 1e-12)).sum()
        return total

    @torch.no_grad()
    def prune(self, x: Tensor, threshold: float = 1e-2) -> dict:
        """Remove edges whose attribution score is below ``threshold``.

        Scores come from :func:`pikan.kan.attribution.scores` on ``x`` (edges normalized so the
        largest incoming score of each layer is 1). Also removes every edge of a node that has
        lost all its inputs or all its outputs.

        Returns
        -------
        dict with ``"pruned"``: list of ``(layer, i, j)`` removed, ``"alive"``: live edges left.
        """

        result = scores(self, x)
        pruned = []
        for index, layer in enumerate(self.layers):
            edge = result.edges[index]
            keep = (edge >= threshold * edge.max().clamp_min(1e-300)).to(layer.mask)
            newly = (layer.mask > 0) & (keep == 0)
            pruned += [(index, int(i), int(j)) for i, j in newly.nonzero().tolist()]
            layer.set_mask(layer.mask * keep)
        pruned += self._prune_dead_nodes()
        alive = sum(int((layer.mask > 0).sum()) for layer in self.layers)
        return {"pruned": pruned, "alive": alive}

    def _prune_dead_nodes(self) -> list[tuple[int, int, int]]:
        """Mask edges out of nodes with no live input and into nodes with no live output."""
        removed = []
        changed = True
        while changed:
            changed = False
            for index in range(len(self.layers) - 1):
                before, after = self.layers[index], self.layers[index + 1]
                n_sum, n_mult = self.widths[index + 1]
                alive_in = before.mask.sum(0) > 0  # per subnode
                node_in = torch.cat([alive_in[:n_sum],
                                     alive_in[n_sum::2] & alive_in[n_sum + 1::2]])
                node_out = after.mask.sum(1) > 0
                for node in range(n_sum + n_mult):
                    if node_in[node] and node_out[node]:
                        continue
                    outgoing = after.mask[node].nonzero().flatten().tolist()
                    subs = [node] if node < n_sum else [n_sum + 2 * (node - n_sum),
                                                        n_sum + 2 * (node - n_sum) + 1]
                    incoming = [(i, s) for s in subs for i in before.mask[:, s].nonzero().flatten().tolist()]
                    if outgoing or incoming:
                        changed = True
                        mask_after, mask_before = after.mask.clone(), before.mask.clone()
                        mask_after[node] = 0
                        for i, s in incoming:
                            mask_before[i, s] = 0
                        after.set_mask(mask_after)
                        before.set_mask(mask_before)
                        removed += [(index + 1, node, j) for j in outgoing]
                        removed += [(index, i, s) for i, s in incoming]
        return removed

    # ------------------------------------------------------------------ hybrid experts
    def set_temperature(self, temperature: float) -> None:
        """Gate temperature of every hybrid layer (lower: gates closer to one-hot)."""
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        for layer in self.layers:
            if layer.experts:
                layer.temperature.fill_(float(temperature))

    def gate_entropy(self) -> Tensor:
        """Sum over hybrid layers of the mean gate entropy (a sparsity penalty for gates)."""
        terms = [layer.gate_entropy() for layer in self.layers if layer.experts]
        return sum(terms) if terms else torch.zeros(())

    def snap(self, threshold: float = 0.9) -> list[tuple[int, int, int, str]]:
        """Fix every decisive hybrid edge (see :meth:`KANLayer.snap`): ``(layer, i, j, name)``."""
        return [(index, i, j, name) for index, layer in enumerate(self.layers)
                for i, j, name in layer.snap(threshold)]

    # ------------------------------------------------------------------ symbolic edges
    def set_symbolic(self, layer: int, i: int, j: int, name: str, a: float = 1.0,
                     b: float = 1.0, c: float = 0.0, d: float = 0.0) -> None:
        """Fix edge ``(i, j)`` of ``layer`` to ``a * f(b * x + c) + d`` (``f`` a library function)."""
        self._layer(layer).set_symbolic(i, j, name, a, b, c, d)

    def unset_symbolic(self, layer: int, i: int, j: int) -> None:
        """Return edge ``(i, j)`` of ``layer`` to its spline."""
        self._layer(layer).unset_symbolic(i, j)

    def _layer(self, layer: int) -> KANLayer:
        if not 0 <= layer < len(self.layers):
            raise ValueError(f"layer must be in 0..{len(self.layers) - 1}, got {layer}")
        return self.layers[layer]

    def live_edges(self) -> list[tuple[int, int, int]]:
        """``(layer, i, j)`` of every edge not pruned."""
        return [(index, int(i), int(j)) for index, layer in enumerate(self.layers)
                for i, j in (layer.mask > 0).nonzero().tolist()]
