r"""Law candidates with one nonlinear constant: a scan, then variable projection.

Some common laws of one input are linear in all their constants but one:

- **exponentials with a rate** :math:`k`: a Morse well :math:`D(1 - e^{-a(x - x_0)})^2 =
  D - 2De^{ax_0}e^{-ax} + De^{2ax_0}e^{-2ax}`, a Toda bond :math:`(A/b)e^{-bd} + Ad`, a
  Yukawa potential :math:`-g e^{-r/\lambda}/r` all lie in the span of
  :math:`\{e^{-kz}, e^{-2kz}, e^{-kz}/z, z\}` for one signed rate :math:`k`;
- **shifted inverse powers** :math:`(z^2 + c)^{-p}` (a soft core :math:`A/(r^2 + c)`, a
  Plummer sphere :math:`-g/\sqrt{r^2 + c^2}`) with the shift :math:`c`;
- **Gaussians with a width** :math:`e^{-kz^2}` (a Gaussian-core pair law :math:`A e^{-br^2}`,
  a Gaussian well or bump) with the inverse squared width :math:`k`, for a target of one
  input and alone: beside other terms (``z**2``, the other input's) the family gave every
  law a small Gaussian correction, ``0.589 (x**2 + y**2) - 0.0032 exp(-8.1 x**2)``, which on
  noisy positions fitted the data's own bias a little better than the true
  ``0.59 (x**2 + y**2)`` and so ruled it out.

No fixed term library holds them (the rate or the shift is a continuous unknown), and a
polynomial fit of such a curve needs five terms. For each input :math:`z_k` (of at most
two inputs) and each family, the nonlinear constant :math:`\theta` is scanned over a
log-spaced grid sized by the input's range; at each :math:`\theta` every subset of the
family's terms (and of the other input's :math:`z_j, z_j^2`) is fitted by linear least
squares, which is the *variable projection* of the problem onto :math:`\theta`; the best
grid point of each subset is then refined by a bounded one-dimensional minimization of the
projected residual. Each refined subset is a candidate with Float constants, refit jointly
with every other candidate by :func:`pikan.laws.candidates.fit_candidates`.

Works on value and gradient targets alike (a potential fitted on its forces: the design
columns are then the terms' projected gradients, :class:`pikan.laws.candidates.Target`).
:class:`VarPro` is this family behind the generator interface
(:mod:`pikan.laws.generators.base`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import sympy

from pikan.laws.candidates import Deadline, Target, as_deadline
from pikan.laws.generators.base import Candidate, Generator, Options

__all__ = ["VarPro", "varpro_candidates"]

_GRID = 36
"""Grid points of a scan (log-spaced)."""

_RATE_RANGE = (0.1, 30.0)
"""Rates scanned, times the input's range: from a nearly linear exponential to one that
decays 30 e-folds across the data (beyond, it is a boundary layer no sample resolves)."""

_SHIFT_RANGE = (1e-3, 1e2)
"""Shifts ``c`` of ``(z**2 + c)**-p`` scanned, times the input's largest square."""

_POWERS = (sympy.Rational(1, 2), sympy.Integer(1), sympy.Rational(3, 2), sympy.Integer(2),
           sympy.Integer(3))


@dataclass(frozen=True)
class _Term:
    """One design term of a family at a given nonlinear constant.

    ``value(z)`` and ``deriv(z)`` on the samples of the input, and ``expr(symbol)`` the
    sympy form (with the same normalization as ``value``: the fitted coefficient multiplies
    both).
    """

    value: Callable[[np.ndarray], np.ndarray]
    deriv: Callable[[np.ndarray], np.ndarray]
    expr: Callable[[sympy.Symbol], sympy.Expr]


def _exp_terms(k: float, x: np.ndarray) -> list[_Term]:
    """``exp(-k z)``, ``exp(-2 k z)``, ``exp(-k z)/z`` (z one-signed) and ``z``.

    The exponentials are normalized at the samples' centre ``m`` (``exp(-k (z - m))``)
    so that their columns stay finite for any offset of the input; the sympy form absorbs
    the factor ``exp(k m)`` into a Float.
    """
    m = float(np.median(x))
    terms = []
    for n in (1, 2):
        f = math.exp(n * k * m)
        terms.append(_Term(lambda z, n=n: np.exp(-n * k * (z - m)),
                           lambda z, n=n: -n * k * np.exp(-n * k * (z - m)),
                           lambda s, n=n, f=f: sympy.Float(f) * sympy.exp(sympy.Float(-n * k) * s)))
    if np.all(x > 0) or np.all(x < 0):
        f = math.exp(k * m)
        terms.append(_Term(lambda z: np.exp(-k * (z - m)) / z,
                           lambda z: -np.exp(-k * (z - m)) * (k / z + 1 / z**2),
                           lambda s: sympy.Float(f) * sympy.exp(sympy.Float(-k) * s) / s))
    terms.append(_Term(lambda z: z, np.ones_like, lambda s: s))
    return terms


def _gaussian_terms(k: float, x: np.ndarray) -> list[_Term]:
    """``exp(-k z**2)``, normalized at the samples' median square ``m``
    (``exp(-k (z**2 - m))``), as the exponentials of :func:`_exp_terms` are."""
    m = float(np.median(x * x))
    f = math.exp(k * m)
    return [_Term(lambda z: np.exp(-k * (z * z - m)),
                  lambda z: -2 * k * z * np.exp(-k * (z * z - m)),
                  lambda s: sympy.Float(f) * sympy.exp(sympy.Float(-k) * s**2))]


def _shift_terms(p: sympy.Expr, c: float) -> list[_Term]:
    """``(z**2 + c)**-p`` alone (a soft core or a Plummer sphere)."""
    q = float(p)
    return [_Term(lambda z: (z * z + c) ** -q, lambda z: -2 * q * z * (z * z + c) ** (-q - 1),
                  lambda s: (s**2 + sympy.Float(c)) ** -p)]


@dataclass(frozen=True)
class _Family:
    name: str
    grid: np.ndarray  # nonlinear constants scanned, ascending (positive: scanned in log)
    signs: tuple[int, ...]  # the constant is sign * grid value
    terms: Callable[[float], list[_Term]]
    alone: bool = False  # scanned without the other input's terms, and only for one input
    square: tuple[int, int] | None = None  # the terms exp(-k z), exp(-2 k z), if any


def _families(x: np.ndarray) -> list[_Family]:
    span = float(np.ptp(x))
    top = float(np.max(np.abs(x)))
    if span <= 1e-12 * max(top, 1e-300):
        return []
    out = []
    rates = np.geomspace(_RATE_RANGE[0] / span, _RATE_RANGE[1] / span, _GRID)
    # exp(-k (z - m)) must stay finite on the samples, and so must its factor exp(k m)
    m = float(np.median(x))
    rates = rates[rates * max(float(np.max(np.abs(x - m))), 2 * abs(m)) < 300]
    if rates.size:
        out.append(_Family("exp-rate", rates, (1, -1), lambda k: _exp_terms(k, x),
                           square=(0, 1)))
    squares = x * x
    span2, m2 = float(np.ptp(squares)), float(np.median(squares))
    if span2 > 1e-12 * top**2:
        widths = np.geomspace(_RATE_RANGE[0] / span2, _RATE_RANGE[1] / span2, _GRID)
        widths = widths[widths * max(float(np.max(np.abs(squares - m2))), 2 * m2) < 300]
        if widths.size:
            out.append(_Family("gaussian-width", widths, (1,),
                               lambda k: _gaussian_terms(k, x), alone=True))
    shifts = np.geomspace(_SHIFT_RANGE[0] * top**2, _SHIFT_RANGE[1] * top**2, _GRID)
    for p in _POWERS:
        out.append(_Family(f"shifted-power:{p}", shifts, (1,),
                           lambda c, p=p: _shift_terms(p, c)))
    return out


def _column(target: Target, k: int, value: np.ndarray, deriv: np.ndarray) -> np.ndarray:
    """A term of input ``k`` as a design column in the target's (flattened) layout."""
    if target.kind == "values":
        return target.project(value)  # averaged where the target is (Target.average)
    g = np.zeros((target.z.shape[0], len(target.columns)))
    g[:, target.columns.index(k)] = deriv
    return target.project(g).ravel()


class _Scan:
    """The projected residuals of every term subset of one family on one input."""

    def __init__(self, target: Target, k: int, family: _Family, sign: int,
                 others: list[tuple[np.ndarray, sympy.Expr]]) -> None:
        self.target, self.k, self.family, self.sign = target, k, family, sign
        self.others = others  # fixed columns (the other input's terms) and their exprs
        self.y = target.flat()
        self.norm = float(np.linalg.norm(self.y - (self.y.mean()
                                                   if target.kind == "values" else 0.0)))
        self.n_family = len(family.terms(float(family.grid[0])))
        n = self.n_family + len(others)
        # subsets with at least one term of the family (the rest is a plain polynomial)
        self.subsets = [s for size in range(1, n + 1)
                        for s in itertools.combinations(range(n), size)
                        if min(s) < self.n_family]

    def design(self, theta: float) -> tuple[np.ndarray, list[_Term]]:
        x = self.target.z[:, self.k]
        terms = self.family.terms(self.sign * theta)
        with np.errstate(all="ignore"):
            cols = [_column(self.target, self.k, t.value(x), t.deriv(x)) for t in terms]
        cols += [c for c, _ in self.others]
        a = np.stack(cols, axis=1)
        if self.target.kind == "values":
            a = np.column_stack([a, np.ones(a.shape[0])])
        return a, terms

    def residuals(self, theta: float, subsets) -> list[tuple[float, np.ndarray | None]]:
        """(relative residual, coefficients) of each subset at ``theta``.

        One QR factorization of the whole (column-normalized) design serves every subset:
        ``min |A_S xi - y|`` is ``min |R_S xi - Q^T y|`` plus the part of ``y`` outside the
        span of ``A``, both computed as norms of residuals (no cancellation: exact fits
        keep residuals near 1e-16).
        """
        a, _ = self.design(theta)
        extra = [a.shape[1] - 1] if self.target.kind == "values" else []
        scale = np.linalg.norm(a, axis=0)
        bad = ~np.isfinite(scale) | (scale == 0)
        out: list[tuple[float, np.ndarray | None]] = [(math.inf, None)] * len(subsets)
        good = np.flatnonzero(~bad)
        q, r = np.linalg.qr(a[:, good] / scale[good])
        bt = q.T @ self.y
        outside = float(np.sum((self.y - q @ bt) ** 2))
        where = {int(g): i for i, g in enumerate(good)}
        norm = self.norm or 1.0
        for n, subset in enumerate(subsets):
            cols = list(subset) + extra
            if any(c not in where for c in cols):
                continue
            rc = r[:, [where[c] for c in cols]]
            xi = np.linalg.lstsq(rc, bt, rcond=None)[0]
            rss = float(np.sum((bt - rc @ xi) ** 2)) + outside
            out[n] = (math.sqrt(rss) / norm, xi / scale[cols])
        return out

    def refine(self, subset, i: int) -> tuple[float, float, np.ndarray]:
        """Minimize the projected residual of ``subset`` around grid point ``i``."""
        grid = self.family.grid
        lo, hi = math.log(grid[max(i - 1, 0)]), math.log(grid[min(i + 1, len(grid) - 1)])

        def f(t):
            return self.residuals(math.exp(t), [subset])[0][0]

        best = math.log(grid[i])
        if hi > lo:
            res = scipy.optimize.minimize_scalar(f, bounds=(lo, hi), method="bounded",
                                                 options={"xatol": 1e-6, "maxiter": 40})
            if res.success and f(res.x) <= f(best):
                best = float(res.x)
        err, coef = self.residuals(math.exp(best), [subset])[0]
        return math.exp(best), err, coef

    def expr(self, theta: float, subset, coef: np.ndarray,
             symbols: list[sympy.Symbol]) -> sympy.Expr:
        terms = self.family.terms(self.sign * theta)
        s = symbols[self.k]
        out, offset = self._square(theta, terms, subset, coef, s)
        squared = self.family.square if out != 0 else ()
        for c, j in zip(coef, subset):
            if j in squared:
                continue
            e = terms[j].expr(s) if j < self.n_family else self.others[j - self.n_family][1]
            out = out + sympy.Float(float(c)) * e
        if self.target.kind == "values":
            out = out + sympy.Float(float(coef[-1]) + offset)
        return out

    def _square(self, theta: float, terms: list[_Term], subset, coef: np.ndarray,
                s: sympy.Symbol) -> tuple[sympy.Expr, float]:
        """``a2 exp(-2 k z) + a1 exp(-k z)`` written ``a2 (exp(-k z) + a1/(2 a2))**2`` (and
        the constant ``-a1**2/(4 a2)`` it leaves) when the subset holds both terms; else
        ``(0, 0)``.

        The two terms share one rate (a Morse well's ``D (1 - exp(-a (x - x0)))**2``), but
        as a sum of two exponentials each with its own Float rate the law reads as two
        free rates: refitted on noisy data they drift apart (``18.3 exp(-2.66 x) - 12.3
        exp(-1.44 x)`` for a Morse well at 1 % noise), and the tied law costs as much as
        the untied one. As a square, the rate is one constant.
        """
        if self.family.square is None or not set(self.family.square) <= set(subset):
            return sympy.Integer(0), 0.0
        a = {j: float(c) * float(terms[j].expr(s).subs(s, 0))
             for c, j in zip(coef, subset) if j in self.family.square}
        a1, a2 = (a[j] for j in self.family.square)
        if a2 == 0 or not math.isfinite(a1 / a2):
            return sympy.Integer(0), 0.0
        rate = sympy.Float(-self.sign * theta)
        return (sympy.Float(a2) * (sympy.exp(rate * s) + sympy.Float(a1 / (2 * a2)))**2,
                -a1 * a1 / (4 * a2))


_PRIMITIVES = {"exp-rate": {"exp"}, "gaussian-width": {"exp", "gaussian"},
               "shifted-power": {"1/x", "1/sqrt"}}
"""The symbolic-library primitives that allow each family (any one of them)."""


def varpro_candidates(target: Target, library: Sequence[str] | None = None,
                      max_inputs: int = 2, max_keep: int = 4,
                      deadline: Deadline | None = None) -> list[Candidate]:
    """Candidates with one scanned nonlinear constant, for targets of 1-2 inputs.

    Parameters
    ----------
    target : Target
        Values or (projected) gradients; see :class:`pikan.laws.candidates.Target`.
    library : sequence of str, optional
        Allowed primitive names (default all): exponentials with a rate need ``exp``,
        Gaussians with a width ``exp`` or ``gaussian``, shifted powers ``(z**2 + c)**-p``
        ``1/x`` or ``1/sqrt``.
    max_inputs : int
        Targets with more inputs get no candidates (the subsets grow quickly, and such
        laws of many inputs are rarely a single curve).
    max_keep : int
        Candidates kept per (input, family, sign): the Pareto front of (terms, error).
    deadline : Deadline, optional
        Checked between (input, family, sign) scans.

    Returns
    -------
    list of Candidate
        Sources ``"varpro:<family>"``; ``error`` the relative residual of the linear fit.
    """
    deadline = as_deadline(deadline)
    d = target.z.shape[1]
    if d > max_inputs or d == 0 or target.z.shape[0] < 10:
        return []
    columns = range(d) if target.kind == "values" else target.columns
    symbols = [sympy.Symbol(n) for n in target.names]
    out: list[Candidate] = []
    for k in columns:
        others = []
        for j in range(d):
            if j == k or (target.kind != "values" and j not in target.columns):
                continue
            zj = target.z[:, j]
            others += [(_column(target, j, zj, np.ones_like(zj)), symbols[j]),
                       (_column(target, j, zj**2, 2 * zj), symbols[j]**2)]
        for family in _families(target.z[:, k]):
            kind = family.name.split(":")[0]
            if library is not None and not _PRIMITIVES[kind] & set(library):
                continue
            if family.alone and d > 1:
                continue
            for sign in family.signs:
                if deadline.expired():
                    return out
                scan = _Scan(target, k, family, sign, others)
                table = np.array([[r for r, _ in scan.residuals(t, scan.subsets)]
                                  for t in family.grid])  # (grid, subsets)
                fits = []
                for j, subset in enumerate(scan.subsets):
                    col = table[:, j]  # inf where the design was not finite
                    i = int(np.argmin(col))
                    if math.isfinite(col[i]):
                        fits.append((subset, i, float(col[i])))
                # refine only the best subset of each size (a Pareto front by size)
                best: dict[int, tuple] = {}
                for subset, i, err in fits:
                    if len(subset) not in best or err < best[len(subset)][2]:
                        best[len(subset)] = (subset, i, err)
                front, floor = [], math.inf
                for size in sorted(best):
                    subset, i, err = best[size]
                    if err < floor * 0.999:
                        front.append((subset, i))
                        floor = err
                for subset, i in front[:max_keep]:
                    theta, err, coef = scan.refine(subset, i)
                    if coef is None or not math.isfinite(err):
                        continue
                    e = scan.expr(theta, subset, coef, symbols)
                    if e.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
                        continue
                    out.append(Candidate(e, err, f"varpro:{family.name}"))
    return out


@dataclass(frozen=True)
class VarPro(Generator):
    """Laws with one scanned nonlinear constant (:func:`varpro_candidates`), for targets of
    at most ``max_inputs`` inputs."""

    max_inputs: int = 2
    max_keep: int = 4
    name = "varpro"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        return varpro_candidates(target, options.library, max_inputs=self.max_inputs,
                                 max_keep=self.max_keep, deadline=options.deadline)
