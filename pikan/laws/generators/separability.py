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

Mixed derivatives of a surrogate are only as good as the surrogate (a KAN with 0.1 %
error can have mixed derivatives off by several percent), so for value targets
:func:`additive_model_candidates` also tests separability on the samples themselves: an
additive spline model :math:`T(y) \approx c + \sum_i s_i(z_i)` (:math:`T` the identity or
:math:`\log|y|`) is fitted by linear least squares; when it explains the data to
:data:`ADDITIVE_TOLERANCE`, its one-input pieces :math:`s_i` are fitted by ``fit_edge``.
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
from pikan.spec.expr import to_torch
from pikan.kan.symbolic import fit_edge
from pikan.laws.candidates import Deadline, Target, as_deadline, fit_candidates, pareto, select
from pikan.laws.generators.regression import Candidate, regression_candidates
from pikan.laws.generators.varpro import varpro_candidates

__all__ = ["Derivatives", "additive_model_candidates", "coupling", "derivatives", "groups",
           "structure_candidates"]

THRESHOLD = 0.02
"""Default coupling below which two inputs count as separable."""

ADDITIVE_TOLERANCE = 1e-3
"""Relative residual below which an additive spline model counts as an exact split."""

_EDGE_SAMPLES = 600
_KNOTS = 24  # intervals of the 1-D cubic splines of the additive model  # 1-D pieces are smooth curves: a few hundred sorted samples suffice


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
    """The coupling matrix :math:`C_{ij}` of the module docstring, shape (d, d)."""
    sigma = z.std(axis=0)
    total = math.sqrt(float(np.sum(np.mean((g * sigma) ** 2, axis=0)))) + 1e-300
    mixed = np.sqrt(np.mean((h * sigma[None, :, None] * sigma[None, None, :]) ** 2, axis=0))
    return mixed / total


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


def _edge_pieces(x: np.ndarray, y: np.ndarray, symbol: sympy.Symbol,
                 library: Sequence[str] | None, top: int, seed: int,
                 deadline: Deadline | None = None) -> list[sympy.Expr]:
    """The ``top`` best :func:`fit_edge` forms ``a*g(b*x + c) + d`` of a 1-D curve (none
    once ``deadline`` has passed)."""
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
    fits = fit_candidates([(c.expr, c.source) for c in cands], target, tolerance,
                          max_refit=20, max_snap=3, deadline=deadline)
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


def _combine(options: Sequence[Sequence[sympy.Expr]], join: Callable, cap: int = 24):
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
            edge = _edge_pieces(z[:, i], values, symbols[i], library, 3, seed, deadline)
            pieces = pieces + [e for e in edge if e not in pieces]
            if pieces:
                singles[i] = pieces[0]
        if not pieces:
            return []
        options.append(pieces)
    constant = [sympy.Float(float(np.mean(d_.f)))] if kind == "values" else []
    out = _combine(options, lambda combo: sympy.Add(*combo, *constant))
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
        logs[i] = _edge_pieces(z[:, i], lv, symbols[i], library, 2, seed, deadline)
        factors[i] = _edge_pieces(z[:, i], np.exp(lv - lv.mean()), symbols[i], library, 2,
                                  seed, deadline)
        if not factors[i] and not logs[i]:
            return []
    multi = [p for p in parts if len(p) > 1]
    out = []
    scale = sympy.Float(sign)
    if not multi:
        if all(logs.values()):
            out += _combine(list(logs.values()),
                            lambda c: scale * sympy.exp(sympy.Add(*c, sympy.Float(0.0))))
        if all(factors.values()):
            out += _combine(list(factors.values()), lambda c: sympy.Float(sign) * sympy.Mul(*c))
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
    parts = groups(coupling(d_.g, d_.h, z), threshold) if d >= 2 else [[0]]
    if len(parts) > 1 or d == 1:
        for e in _additive(fn, z, names, d_, parts, kind, library, depth, threshold,
                           tolerance, seed, deadline):
            exprs.append((e, "structure:additive"))
    f = d_.f
    span = float(np.max(np.abs(f))) if f.size else 0.0
    one_sign = span > 0 and (np.all(f > 1e-3 * span) or np.all(f < -1e-3 * span))
    if kind == "values" and one_sign:
        gl = d_.g / f[:, None]
        hl = d_.h / f[:, None, None] - gl[:, :, None] * gl[:, None, :]
        parts = groups(coupling(gl, hl, z), threshold) if d >= 2 else [[0]]
        if len(parts) > 1 or d == 1:
            for e in _multiplicative(fn, z, names, d_, parts, library, depth, threshold,
                                     tolerance, seed, deadline):
                exprs.append((e, "structure:multiplicative"))
    return [Candidate(e, math.nan, s) for e, s in exprs]


def _spline_basis(x: np.ndarray, intervals: int = _KNOTS) -> np.ndarray:
    """Cubic B-spline basis on the range of ``x``, shape (N, intervals + 3)."""
    from scipy.interpolate import BSpline

    lo, hi = float(x.min()), float(x.max())
    inner = np.linspace(lo, hi, intervals + 1)
    knots = np.concatenate([[lo] * 3, inner, [hi] * 3])
    return BSpline.design_matrix(np.clip(x, lo, hi), knots, 3).toarray()


def additive_model_candidates(target: Target, library: Sequence[str] | None = None,
                              seed: int = 0, deadline: Deadline | None = None
                              ) -> list[Candidate]:
    r"""Candidates from an exact additive split of ``y`` or ``log|y|`` into one-input pieces.

    Fits :math:`T(y) = c + \sum_i s_i(z_i)` with cubic splines (24 intervals per input)
    by least squares; when the relative residual is below :data:`ADDITIVE_TOLERANCE`, each
    centered piece :math:`s_i` is fitted by :func:`~pikan.kan.symbolic.fit_edge` (three
    best forms) and the combinations ``T^-1(c + sum)`` are returned.

    Parameters
    ----------
    target : Target
        A value target with at least two inputs.
    library : sequence of str, optional
    seed : int
    deadline : Deadline, optional
        Pieces are no longer fitted once it has passed.

    Returns
    -------
    list of Candidate
    """
    if target.kind != "values" or target.z.shape[1] < 2 or as_deadline(deadline).expired():
        return []
    z, y = target.z, target.y
    symbols = [sympy.Symbol(n) for n in target.names]
    bases = [_spline_basis(z[:, i]) for i in range(z.shape[1])]
    design = np.concatenate(bases, axis=1)
    out = []
    transforms = [("identity", y, lambda h: h)]
    if np.all(y > 0) or np.all(y < 0):
        sign = float(np.sign(y[0]))
        transforms.append(("log", np.log(np.abs(y)), lambda h, s=sign: s * sympy.exp(h)))
    for name, ty, inverse in transforms:
        mean = float(ty.mean())
        coef, *_ = np.linalg.lstsq(design, ty - mean, rcond=None)
        resid = ty - mean - design @ coef
        if np.linalg.norm(resid) > ADDITIVE_TOLERANCE * (np.linalg.norm(ty - mean) + 1e-300):
            continue
        options, start = [], 0
        for i, basis in enumerate(bases):
            piece = basis @ coef[start:start + basis.shape[1]]
            start += basis.shape[1]
            if np.ptp(piece) <= 1e-9 * (np.ptp(ty) + 1e-300):
                continue  # the output does not depend on this input
            forms = _edge_pieces(z[:, i], piece - piece.mean(), symbols[i], library, 3, seed,
                                 deadline)
            if not forms:
                break
            options.append(forms)
        else:
            def join(c, inverse=inverse, mean=mean):
                return inverse(sympy.Add(*c, sympy.Float(mean)))

            for e in _combine(options, join):
                out.append(Candidate(e, math.nan, f"structure:additive-model:{name}"))
    return out
