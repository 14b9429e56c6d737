r"""A KAN read as a formula: every live edge fitted by a library function, composed.

This is the KAN way to a law (generator (a) of law extraction). On samples of the
network's inputs, a pruned copy of the KAN is evaluated edge by edge
(:meth:`pikan.kan.KAN.activations`); each live edge :math:`\phi(x)` is fitted by
:func:`pikan.kan.symbolic.fit_edge` as :math:`a\,f(b x + c) + d` over the library, and the
fits are composed through the graph: a node sums its incoming edges, a multiplication node
multiplies its two subnodes, the next layer takes the nodes as inputs; a linear skip path
(``jump=True``) adds its weights times the inputs.

Several *variants* are composed from the same edge fits by ranking them with
:func:`pikan.kan.symbolic.rank_fits` under different acceptance factors: the default
(simplest fit within a factor 2 of the best edge loss), an accurate one (factor 1.05) and a
lenient one (factor 20). The composed expressions keep every edge's four constants; they
are refit and snapped later against the module itself.

Anytime: with a ``deadline`` (anything with an ``expired()`` method, such as
:class:`pikan.laws.candidates.Deadline`), the edges left when it passes are fitted by the cheap
closed forms ``x`` and ``x^2`` only, so a formula (less accurate) still comes back.

:class:`KanEdges` is this family behind the generator interface
(:mod:`pikan.laws.generators.base`): it reads the :class:`KanReading` in
``options.kan``, once for all the outputs of the KAN.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy
import torch

from pikan.kan.network import KAN
from pikan.kan.symbolic import EdgeFit, fit_edge, rank_fits
from pikan.laws.candidates import Target
from pikan.laws.generators.base import Candidate, Generator, Options

__all__ = ["VARIANTS", "KanEdges", "KanReading", "kan_formulas"]

VARIANTS = {"kan": 2.0, "kan:accurate": 1.05, "kan:lenient": 20.0}
"""Variant name -> acceptance factor of :func:`~pikan.kan.symbolic.rank_fits`."""

_EDGE_SAMPLES = 600
_CHEAP = ("x", "x^2")  # closed-form edge fits, for the edges left after a deadline


def _edge_fits(net: KAN, z: torch.Tensor, library: Sequence[str] | None,
               seed: int, deadline=None) -> dict[tuple[int, int, int], list[EdgeFit] | float]:
    """Fits of every live edge: a ranked fit list, or the constant value of a flat edge."""
    cheap = [n for n in _CHEAP if library is None or n in library] or list(_CHEAP)
    with torch.no_grad():
        acts = net.activations(z)
    out: dict = {}
    rng = np.random.default_rng(seed)
    for layer, i, j in net.live_edges():
        x = acts[layer].inputs[:, i].numpy()
        y = acts[layer].edges[:, i, j].numpy()
        if x.size > _EDGE_SAMPLES:
            rows = rng.choice(x.size, _EDGE_SAMPLES, replace=False)
            x, y = x[rows], y[rows]
        scale = float(acts[layer].subnodes[:, j].abs().max()) + 1e-300
        if np.ptp(x) == 0 or np.ptp(y) <= 1e-9 * scale:
            out[(layer, i, j)] = float(np.mean(y))
            continue
        late = deadline is not None and deadline.expired()
        out[(layer, i, j)] = fit_edge(x, y, candidates=cheap if late else library, seed=seed)
    return out


def _compose(net: KAN, fits: dict, factor: float,
             symbols: Sequence[sympy.Expr]) -> list[sympy.Expr]:
    nodes = list(symbols)
    for layer_index, layer in enumerate(net.layers):
        subnodes = [sympy.Integer(0)] * layer.out_dim
        for (li, i, j), fit in fits.items():
            if li != layer_index:
                continue
            if isinstance(fit, float):
                term = sympy.Float(fit)
            else:
                best = rank_fits(fit, factor=factor)[0]
                term = best.expr(nodes[i]) if best.ok else sympy.nan
            subnodes[j] = subnodes[j] + term
        n_sum, n_mult = net.widths[layer_index + 1]
        pairs = subnodes[n_sum:]
        nodes = subnodes[:n_sum] + [pairs[2 * k] * pairs[2 * k + 1] for k in range(n_mult)]
    return nodes


def kan_formulas(kan: KAN, z, names: Sequence[str] | None = None,
                 library: Sequence[str] | None = None, prune_threshold: float = 1e-2,
                 seed: int = 0, deadline=None) -> dict[str, list[sympy.Expr]]:
    """Closed forms of a KAN from edge-wise fits, one list of outputs per variant.

    Parameters
    ----------
    kan : KAN
        Not modified (a copy is pruned).
    z : array or Tensor, shape (N, in_dim)
        Input samples on the distribution where the formula should hold.
    names : sequence of str, optional
        Input names (default ``kan.input_names``).
    library : sequence of str, optional
        Primitives allowed on edges (default: the whole symbolic library).
    prune_threshold : float
        Edges with attribution below this fraction of the layer's largest are removed
        first (0: no pruning).
    seed : int
    deadline : Deadline, optional
        Edges still to fit when it has passed get ``x`` or ``x^2`` (see the module
        docstring).

    Returns
    -------
    dict
        Variant name (see :data:`VARIANTS`) -> list of sympy expressions, one per output,
        in the input names. NaN where an edge could not be fitted.
    """
    net = copy.deepcopy(kan)
    zt = torch.as_tensor(np.asarray(z, dtype=np.float64))
    net = net.to(torch.float64)
    if prune_threshold > 0:
        net.prune(zt, threshold=prune_threshold)
    symbols = [sympy.Symbol(n) for n in (names or net.input_names)]
    fits = _edge_fits(net, zt, library, seed, deadline)
    jump = None if getattr(net, "jump", None) is None else net.jump.detach().cpu().numpy()
    out = {}
    for variant, factor in VARIANTS.items():
        outputs = _compose(net, fits, factor, symbols)
        if jump is not None:  # the linear skip path y = KAN(x) + x W
            outputs = [e + sum((sympy.Float(float(jump[i, k])) * s
                                for i, s in enumerate(symbols) if jump[i, k] != 0),
                               sympy.Integer(0)) for k, e in enumerate(outputs)]
        out[variant] = outputs
    return out


class KanReading:
    """The KAN behind a fit target, read edge by edge on first use (:func:`kan_formulas`).

    The target's function is ``shift + scale * kan(z)[:, output]`` (no affine map when
    ``scale`` is None). The formulas of every output are computed once, on the first call
    of :meth:`formulas`, and kept: a module with several outputs is read once.

    Parameters
    ----------
    kan : KAN
    z : ndarray, shape (N, in_dim)
        Samples of the KAN's inputs on which the edges are fitted.
    names : sequence of str
        The input names.
    shift, scale : float, optional
        The affine map from the KAN's output to the target's values (a KAN fitted to
        standardized values).
    deadline : Deadline, optional
        When given, the reading stops at this deadline instead of the one it is called
        with (a module's KAN is read once for all its outputs, within the module's time).
    """

    def __init__(self, kan: KAN, z: np.ndarray, names: Sequence[str],
                 shift: float | None = None, scale: float | None = None,
                 deadline=None) -> None:
        self.kan, self.z, self.names = kan, z, list(names)
        self.shift, self.scale, self.deadline = shift, scale, deadline
        self._formulas: dict[str, list[sympy.Expr]] | None = None

    def formulas(self, library: Sequence[str] | None, seed: int,
                 deadline=None) -> dict[str, list[sympy.Expr]]:
        """Variant name -> one expression per output (see :func:`kan_formulas`), in the
        target's units; computed on the first call only."""
        if self._formulas is None:
            found = kan_formulas(self.kan, self.z, self.names, library, seed=seed,
                                 deadline=self.deadline if self.deadline is not None
                                 else deadline)
            if self.scale is not None:
                found = {variant: [sympy.Float(self.shift) + sympy.Float(self.scale) * e
                                   for e in exprs] for variant, exprs in found.items()}
            self._formulas = found
        return self._formulas


@dataclass(frozen=True)
class KanEdges(Generator):
    """The KAN of ``options.kan`` (a :class:`KanReading`) read edge by edge: one candidate
    per variant for output ``options.output``, sources ``"kan"``, ``"kan:1"``, ... in the
    order of :data:`VARIANTS`; none without a KAN."""

    name = "kan"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        if options.kan is None:
            return []
        exprs = [e[options.output] for e in options.kan.formulas(
            options.library, options.seed, options.deadline).values()]
        return [Candidate(e, math.nan, "kan" if k == 0 else f"kan:{k}")
                for k, e in enumerate(exprs) if e is not None and not e.has(sympy.nan)]
