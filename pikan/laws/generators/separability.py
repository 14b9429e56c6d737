r"""Structure tests: split a function into pieces of fewer inputs before fitting them.

A function :math:`f(z)` is *additively separable* between inputs :math:`i` and :math:`j`
when :math:`\partial^2 f / \partial z_i \partial z_j = 0`, and *multiplicatively separable*
when the same holds for :math:`\log |f|`. On samples of a differentiable surrogate (a
module's block, or the KAN fitted to static data), the mixed derivatives come from
autograd, and the coupling of two inputs is measured as

.. math:: C_{ij} = \frac{\operatorname{RMS}_n\!\left(\partial_{ij} f\,\sigma_i \sigma_j\right)}
                       {\big(\sum_k \operatorname{RMS}_n(\partial_k f\,\sigma_k)^2\big)^{1/2}},

the typical size of the cross term over the spread :math:`\sigma` of the inputs relative to
the size of the whole variation of :math:`f`. Inputs with :math:`C_{ij} \ge` ``threshold``
are coupled; the connected components of that graph are the groups.

Each group becomes a piece fitted on its own:

- a one-input piece is integrated from its partial derivative along the sorted samples
  (:math:`f_i(z_i) = \int \partial_i f\,dz_i`, trapezoids; on distribution, no evaluation
  off the data) and fitted by :func:`pikan.kan.symbolic.fit_edge`
  (:math:`a\,g(b z + c) + d` over the library) and by sparse regression;
- a piece of several inputs is fitted by sparse regression on its partial derivatives;
  when it is the only one, the remainder :math:`f - \sum_i f_i` (or :math:`f / \prod_i f_i`)
  is split again, recursively (``depth``);
- pieces of one or two inputs are also fitted with a scanned rate or shift
  (:func:`pikan.laws.generators.varpro.varpro_candidates`: a Morse or a soft-core piece).

Pieces are recombined (sums, products, ``exp`` of a sum) into candidates for the whole
function; their constants are refit afterwards against the real target.

Multiplicative separability is the additive separability of :math:`\log|f|`
(:func:`multiplicative_coupling`: the same statistic on the derivatives of
:math:`\log|f|`, on the samples where :math:`f` is not near 0). These statistics are
also what :func:`pikan.structure` reports for a trained module: there is one
separability test.

Mixed derivatives of a surrogate are only as good as the surrogate (a KAN with 0.1 %
error can have mixed derivatives off by several percent), so for value targets the
additive spline model (:mod:`pikan.laws.generators.additive_model`) also tests
separability on the samples themselves.

:class:`Separability` is this family behind the generator interface
(:mod:`pikan.laws.generators.base`): it needs ``options.function``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sympy
import torch

from pikan.errors import SpecError
from pikan.model.torch_expr import to_torch
from pikan.kan.symbolic import fit_edge
from pikan.laws.candidates import Deadline, Target, as_deadline, fit_candidates, pareto, select
from pikan.laws.generators.base import Candidate, Generator, Options
from pikan.laws.generators.regression import regression_candidates
from pikan.laws.generators.varpro import varpro_candidates

__all__ = ["THRESHOLD", "Derivatives", "Separability", "additive_coupling", "combine",
           "coupling", "derivatives", "edge_forms", "groups", "multiplicative_coupling",
           "structure_candidates"]

THRESHOLD = 0.02
"""Default coupling below which two inputs count as separable."""

NEAR_ZERO = 1e-3
r"""Samples with :math:`|f|` at most this fraction of its largest value are left out of the
multiplicative test (:math:`\log|f|` is not defined at a zero of :math:`f`)."""

_EDGE_SAMPLES = 600  # 1-D pieces are smooth curves: a few hundred sorted samples suffice


@dataclass(frozen=True)
class Derivatives:
    """Values, gradients (N, d) and Hessians (N, d, d) of a function on samples."""

    f: np.ndarray
    g: np.ndarray
    h: np.ndarray


def derivatives(fn: Callable[[torch.Tensor], torch.Tensor], z: np.ndarray) -> Derivatives:
    """Values, gradients and Hessians of ``fn`` (N, d) -> (N,) on samples ``z`` by autograd."""
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    f = fn(zt)
    d = z.shape[1]
    (g,) = torch.autograd.grad(f.sum(), zt, create_graph=True, allow_unused=True)
    if g is None:
        g = torch.zeros_like(zt)
    rows = []
    for i in range(d):
        if g.requires_grad:
            (hi,) = torch.autograd.grad(g[:, i].sum(), zt, retain_graph=True, allow_unused=True)
        else:
            hi = None
        rows.append(torch.zeros_like(zt) if hi is None else hi)
    h = torch.stack(rows, dim=1)
    return Derivatives(f.detach().numpy().copy(), g.detach().numpy().copy(),
                       h.detach().numpy().copy())


def coupling(g: np.ndarray, h: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The coupling matrix :math:`C_{ij}` of the module docstring, shape (d, d), from
    gradients ``g`` (N, d) and Hessians ``h`` (N, d, d) on samples ``z`` (N, d)."""
    sigma = z.std(axis=0)
    total = math.sqrt(float(np.sum(np.mean((g * sigma) ** 2, axis=0)))) + 1e-300
    mixed = np.sqrt(np.mean((h * sigma[None, :, None] * sigma[None, None, :]) ** 2, axis=0))
    return mixed / total


def additive_coupling(d_: Derivatives, z: np.ndarray) -> np.ndarray:
    """Additive separability: the coupling :math:`C_{ij}` of ``f`` itself, shape (d, d)."""
    return coupling(d_.g, d_.h, z)


def multiplicative_coupling(d_: Derivatives, z: np.ndarray,
                            near_zero: float = NEAR_ZERO) -> np.ndarray:
    r"""Multiplicative separability: the coupling of :math:`\log|f|`, shape (d, d).

    From :math:`\partial_i \log|f| = f_i / f` and :math:`\partial_{ij} \log|f| = f_{ij}/f -
    f_i f_j / f^2`, on the samples where :math:`|f| > ` ``near_zero`` times its largest
    value (all of them when ``f`` keeps one sign away from 0). Zeros when no sample is
    left (``f`` vanishes).
    """
    f = d_.f
    span = float(np.max(np.abs(f))) if f.size else 0.0
    keep = np.abs(f) > near_zero * span
    if span == 0 or not keep.any():
        return np.zeros((z.shape[1], z.shape[1]))
    f, g, h = (d_.f, d_.g, d_.h) if keep.all() else (d_.f[keep], d_.g[keep], d_.h[keep])
    z = z if keep.all() else z[keep]
    gl = g / f[:, None]
    hl = h / f[:, None, None] - gl[:, :, None] * gl[:, None, :]
    return coupling(gl, hl, z)


def groups(c: np.ndarray, threshold: float = THRESHOLD) -> list[list[int]]:
    """Connected components of the graph with an edge where ``C_ij >= threshold``."""
    d = c.shape[0]
    seen, out = set(), []
    for start in range(d):
        if start in seen:
            continue
        stack, comp = [start], []
        seen.add(start)
        while stack:
            i = stack.pop()
            comp.append(i)
            for j in range(d):
                if j not in seen and j != i and max(c[i, j], c[j, i]) >= threshold:
                    seen.add(j)
                    stack.append(j)
        out.append(sorted(comp))
    return out


def _integrate(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Cumulative trapezoid integral of ``slope`` along sorted ``x``, in the original order."""
    order = np.argsort(x, kind="stable")
    xs, ss = x[order], slope[order]
    steps = np.diff(xs) * 0.5 * (ss[1:] + ss[:-1])
    values = np.concatenate([[0.0], np.cumsum(steps)])
    out = np.empty_like(values)
    out[order] = values
    return out


def edge_forms(x: np.ndarray, y: np.ndarray, symbol: sympy.Symbol,
               library: Sequence[str] | None, top: int, seed: int,
               deadline: Deadline | None = None) -> list[sympy.Expr]:
    """The ``top`` best :func:`~pikan.kan.symbolic.fit_edge` forms ``a*g(b*x + c) + d`` of a
    1-D curve ``y(x)`` (at most 600 seeded samples; the zero form left out; none once
    ``deadline`` has passed or for a flat or non-finite curve)."""
    if as_deadline(deadline).expired():
        return []
    if x.size > _EDGE_SAMPLES:
        rows = np.random.default_rng(seed).choice(x.size, _EDGE_SAMPLES, replace=False)
        x, y = x[rows], y[rows]
    if np.ptp(x) == 0 or not np.all(np.isfinite(y)):
        return []
    fits = fit_edge(x, y, candidates=library, seed=seed)
    out = []
    for fit in fits:
        if fit.ok and fit.name != "0":
            out.append(fit.expr(symbol))
        if len(out) >= top:
            break
    return out


def _best(cands: Sequence[Candidate], target: Target, top: int,
          tolerance: float, deadline: Deadline | None = None) -> list[sympy.Expr]:
    """Refit a few candidates for a piece and return the ``top`` best by the selection rule."""
    fits = fit_candidates(cands, target, tolerance, max_refit=20, max_snap=3,
                          deadline=deadline)
    chosen = select(fits, tolerance)
    if chosen is None:
        return []
    out = [chosen.expr]
    for f in sorted(pareto(fits), key=lambda f: f.error):
        if len(out) >= top:
            break
        if f.expr not in out:
            out.append(f.expr)
    return out


def combine(options: Sequence[Sequence[sympy.Expr]], join: Callable,
            cap: int = 24) -> list[sympy.Expr]:
    """``join(combo)`` for the first ``cap`` combinations of one option per piece."""
    out = []
    for combo in itertools.islice(itertools.product(*options), cap):
        out.append(join(combo))
    return out


def _additive(fn, z, names, d_, parts, kind, library, depth, threshold, tolerance, seed,
              deadline):
    symbols = [sympy.Symbol(n) for n in names]
    options, singles = [], {}
    for part in parts:
        sub = Target(tuple(names[i] for i in part), z[:, part], "gradient", d_.g[:, part])
        cands = regression_candidates(sub, library, deadline=deadline)
        cands += varpro_candidates(sub, library, deadline=deadline)  # pieces of 1-2 inputs
        pieces = _best(cands, sub, 2, tolerance, deadline)
        if len(part) == 1:
            i = part[0]
            values = _integrate(z[:, i], d_.g[:, i])
            edge = edge_forms(z[:, i], values, symbols[i], library, 3, seed, deadline)
            pieces = pieces + [e for e in edge if e not in pieces]
            if pieces:
                singles[i] = pieces[0]
        if not pieces:
            return []
        options.append(pieces)
    constant = [sympy.Float(float(np.mean(d_.f)))] if kind == "values" else []
    out = combine(options, lambda combo: sympy.Add(*combo, *constant))
    multi = [p for p in parts if len(p) > 1]
    if kind == "values" and depth > 0 and len(multi) == 1 and len(singles) == len(parts) - 1:
        rest = _restricted(fn, z, multi[0], singles, names, op="sub")
        if rest is not None:
            for r in _sub_candidates(rest, z, multi[0], names, library, depth, threshold,
                                     tolerance, seed, deadline):
                out.append(sympy.Add(*singles.values(), r))
    return out


def _restricted(fn, z, part, singles, names, op):
    """The remainder ``fn - sum(singles)`` or ``fn / prod(singles)`` as a function of ``part``."""
    compiled = {}
    for i, e in singles.items():
        try:
            compiled[i] = to_torch(e, [names[i]])
        except SpecError:  # a piece torch cannot compile: no remainder
            return None
    full = torch.tensor(z, dtype=torch.float64)

    def rest(zp: torch.Tensor) -> torch.Tensor:
        cols = list(full.unbind(1))
        for k, i in enumerate(part):
            cols[i] = zp[:, k]
        value = fn(torch.stack(cols, dim=1))
        for i, c in compiled.items():
            value = value - c(cols[i]) if op == "sub" else value / c(cols[i])
        return value

    return rest


def _sub_candidates(rest, z, part, names, library, depth, threshold, tolerance, seed,
                    deadline):
    if deadline.expired():
        return []
    sub_names = [names[i] for i in part]
    zp = z[:, part]
    with torch.no_grad():
        values = rest(torch.tensor(zp, dtype=torch.float64)).numpy()
    if not np.all(np.isfinite(values)):
        return []
    target = Target(tuple(sub_names), zp, "values", values)
    cands = regression_candidates(target, library, deadline=deadline)
    cands += structure_candidates(rest, zp, sub_names, "values", library, depth - 1,
                                  threshold, tolerance, seed, deadline)
    return _best(cands, target, 3, tolerance, deadline)


def _multiplicative(fn, z, names, d_, parts, library, depth, threshold, tolerance, seed,
                    deadline):
    symbols = [sympy.Symbol(n) for n in names]
    sign = float(np.sign(d_.f[0]))
    gl = d_.g / d_.f[:, None]
    logs, factors = {}, {}
    for part in parts:
        if len(part) != 1:
            continue
        i = part[0]
        lv = _integrate(z[:, i], gl[:, i])
        logs[i] = edge_forms(z[:, i], lv, symbols[i], library, 2, seed, deadline)
        factors[i] = edge_forms(z[:, i], np.exp(lv - lv.mean()), symbols[i], library, 2,
                                  seed, deadline)
        if not factors[i] and not logs[i]:
            return []
    multi = [p for p in parts if len(p) > 1]
    out = []
    scale = sympy.Float(sign)
    if not multi:
        if all(logs.values()):
            out += combine(list(logs.values()),
                            lambda c: scale * sympy.exp(sympy.Add(*c, sympy.Float(0.0))))
        if all(factors.values()):
            out += combine(list(factors.values()), lambda c: sympy.Float(sign) * sympy.Mul(*c))
        return out
    if depth > 0 and len(multi) == 1 and all(factors.values()):
        best = {i: f[0] for i, f in factors.items()}
        rest = _restricted(fn, z, multi[0], best, names, op="div")
        if rest is not None:
            for r in _sub_candidates(rest, z, multi[0], names, library, depth, threshold,
                                     tolerance, seed, deadline):
                out.append(sympy.Mul(*best.values(), r))
    return out


def structure_candidates(fn: Callable[[torch.Tensor], torch.Tensor], z: np.ndarray,
                         names: Sequence[str], kind: str, library: Sequence[str] | None = None,
                         depth: int = 2, threshold: float = THRESHOLD, tolerance: float = 1e-6,
                         seed: int = 0, deadline: Deadline | None = None) -> list[Candidate]:
    """Candidates for ``fn`` built from a separable split (empty when nothing separates).

    Parameters
    ----------
    fn : callable
        Differentiable surrogate, Tensor (N, d) -> (N,).
    z : ndarray, shape (N, d)
        Samples on the function's input distribution.
    names : sequence of str
        Input names.
    kind : {"values", "gradient"}
        For "gradient" (potentials) only additive splits are tried and pieces carry no
        constant; for "values" additive and multiplicative splits.
    library : sequence of str, optional
        Allowed primitives.
    depth : int
        Recursion depth for the remainder of a split with one multi-input group.
    threshold : float
        Coupling threshold (see the module docstring).
    tolerance : float
        Relative error treated as negligible when picking the best pieces.
    seed : int
    deadline : Deadline, optional
        Anytime: pieces are no longer fitted once it has passed; the candidates built so
        far come back.

    Returns
    -------
    list of Candidate
        Errors are NaN (they are measured after the common refit).
    """
    deadline = as_deadline(deadline)
    names = list(names)
    if deadline.expired():
        return []
    d = z.shape[1]
    try:
        d_ = derivatives(fn, z)
    except RuntimeError:
        return []
    if not (np.all(np.isfinite(d_.g)) and np.all(np.isfinite(d_.h))):
        return []
    exprs: list[tuple[sympy.Expr, str]] = []
    parts = groups(additive_coupling(d_, z), threshold) if d >= 2 else [[0]]
    if len(parts) > 1 or d == 1:
        for e in _additive(fn, z, names, d_, parts, kind, library, depth, threshold,
                           tolerance, seed, deadline):
            exprs.append((e, "structure:additive"))
    f = d_.f
    span = float(np.max(np.abs(f))) if f.size else 0.0
    one_sign = span > 0 and (np.all(f > NEAR_ZERO * span) or np.all(f < -NEAR_ZERO * span))
    if kind == "values" and one_sign:
        parts = groups(multiplicative_coupling(d_, z), threshold) if d >= 2 else [[0]]
        if len(parts) > 1 or d == 1:
            for e in _multiplicative(fn, z, names, d_, parts, library, depth, threshold,
                                     tolerance, seed, deadline):
                exprs.append((e, "structure:multiplicative"))
    return [Candidate(e, math.nan, s) for e, s in exprs]


@dataclass(frozen=True)
class Separability(Generator):
    """Candidates from separable splits of ``options.function`` (:func:`structure_candidates`
    on the target's samples); none without a function.

    Attributes
    ----------
    depth : int
        Recursion depth for the remainder of a split with one multi-input group.
    threshold : float
        Coupling below which two inputs count as separable.
    """

    depth: int = 2
    threshold: float = THRESHOLD
    name = "structure"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        if options.function is None:
            return []
        return structure_candidates(options.function, target.z, target.names, target.kind,
                                    options.library, depth=self.depth,
                                    threshold=self.threshold, tolerance=options.tolerance,
                                    seed=options.seed, deadline=options.deadline)
