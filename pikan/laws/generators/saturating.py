r"""Rates that saturate: polynomial terms over one denominator ``1 + h z``, ``h`` scanned.

Rates of populations and reactions level off where a resource runs short or a carrier is
busy: Holling's type II predation :math:`a x y / (1 + h x)`, a Michaelis--Menten rate
:math:`V s / (K + s) = (V/K) s / (1 + s/K)`, Monod growth. Such a rate is a sum of
polynomial terms, some of them over :math:`1 + h z_k` for one positive input
:math:`z_k`: :math:`x (1 - x/K) - a x y / (1 + h x)` is ``x``, ``x**2`` and ``x y/(1 + h
x)``. For a fixed :math:`h` the law is linear in its coefficients, so :math:`h` is scanned
over a log-spaced grid sized by the input's range and, at each grid point, the design of
the monomials of degree at most :data:`DEGREE` (and a constant) alone and over the
denominator is sparse-regressed (:func:`pikan.laws.generators.regression.sparse_fits`); the
best :math:`h` of each support is refined by a bounded one-dimensional minimization of the
projected residual (variable projection, as :mod:`~pikan.laws.generators.varpro` does for
one input).

Unlike :mod:`~pikan.laws.generators.rational`, which fits a numerator over a whole
polynomial denominator by linearizing ``y q(z) = p(z)`` on a module's samples, the design
here is linear in the target, so it also fits targets known only as weighted averages
(``Target.average``: a first-order system's weak-form rates read from noisy positions,
:func:`pikan.laws.extract.data_fits`), where multiplying by the denominator is not
possible. A logistic term over the denominator, or one denominator per term, are outside
the family.

:class:`Saturating` is this family behind the generator interface
(:mod:`pikan.laws.generators.base`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import sympy

from pikan.laws.candidates import Deadline, Target, as_deadline
from pikan.laws.generators.base import Candidate, Generator, Options
from pikan.laws.generators.regression import Term, front, monomials, sparse_fits

__all__ = ["DEGREE", "Saturating", "saturating_candidates"]

DEGREE = 2
"""Largest total degree of the monomials, alone and over the denominator."""

GRID = 24
"""Grid points of the scan of ``h`` (log-spaced)."""

SCAN_RANGE = (0.03, 30.0)
r"""``h`` scanned, times the input's largest value: from a denominator that barely bends
(:math:`h z \le 0.03`) to one that saturates thirty times over the data."""

NEAR_ZERO = 0.05
"""An input takes a denominator when it is positive but for samples down to this share of
its largest value below 0 (a population near extinction, measured with noise: the Holling
prey at 1 % noise reached -0.033 of 3.9)."""

MIN_DENOMINATOR = 0.5
"""Scanned values of ``h`` keep ``1 + h z`` at least this large on every sample."""

MAX_INPUTS = 3
"""Targets of more inputs get no candidates (the design grows as the square of the
inputs)."""


def _columns(target: Target, terms: Sequence[Term | None], den: np.ndarray) -> np.ndarray:
    """Design columns: each term's values (None: the constant 1) over ``den``, averaged as
    the target is (``Target.project``)."""
    ones = np.ones(target.z.shape[0])
    with np.errstate(all="ignore"):
        cols = [target.project((ones if t is None else t.values(target.z)) / den)
                for t in terms]
    return np.stack(cols, axis=1)


def _term_expr(term: Term | None, symbols: Sequence[sympy.Symbol]) -> sympy.Expr:
    return sympy.Integer(1) if term is None else term.expr(symbols)


def saturating_candidates(target: Target, library: Sequence[str] | None = None,
                          max_terms: int = 4, max_keep: int = 4,
                          deadline: Deadline | None = None) -> list[Candidate]:
    """Candidates with polynomial terms over ``1 + h z_k`` for each positive input ``z_k``
    (:data:`NEAR_ZERO`: noisy samples may dip a little below 0).

    Parameters
    ----------
    target : Target
        Values (possibly window averages, ``Target.average``); other kinds get none.
    library : sequence of str, optional
        Allowed primitive names (default all): the family needs ``1/x``.
    max_terms : int
        Largest support (terms with and without the denominator together).
    max_keep : int
        Candidates kept per input: the Pareto front of (terms, error).
    deadline : Deadline, optional
        Checked between inputs and grid points.

    Returns
    -------
    list of Candidate
        Sources ``"saturating:<input>"``; each has at least one term over the denominator.
    """
    deadline = as_deadline(deadline)
    d = target.z.shape[1]
    if (target.kind != "values" or not 0 < d <= MAX_INPUTS or target.z.shape[0] < 10
            or (library is not None and "1/x" not in library)):
        return []
    symbols = [sympy.Symbol(n) for n in target.names]
    plain = monomials(d, DEGREE)
    over: list[Term | None] = [None, *plain]
    y = target.flat()
    base = _columns(target, plain, np.ones(target.z.shape[0]))
    out: list[Candidate] = []
    for k in range(d):
        x = target.z[:, k]
        top, low = float(np.max(x)), float(np.min(x))
        if not (np.all(np.isfinite(x)) and top > 0 and low > -NEAR_ZERO * top):
            continue
        grid = np.geomspace(*SCAN_RANGE, GRID) / top
        grid = grid[1.0 + grid * min(low, 0.0) >= MIN_DENOMINATOR]
        if grid.size < 3:
            continue

        def design(h: float, x=x) -> np.ndarray:
            return np.concatenate([base, _columns(target, over, 1.0 + h * x)], axis=1)

        best: dict[tuple[int, ...], tuple[float, int]] = {}  # support -> (error, grid index)
        for i, h in enumerate(grid):
            if out and deadline.expired():
                return out
            for support, _, _, err in sparse_fits(design(h), y, True, max_terms):
                if all(j < len(plain) for j in support) or not math.isfinite(err):
                    continue  # no term over the denominator: the plain libraries' law
                if support not in best or err < best[support][0]:
                    best[support] = (err, i)
        fits = [(support, None, None, err) for support, (err, _) in best.items()]
        for support, _, _, _ in front(fits, max_keep):
            h, coef, c0, err = _refine(design, y, support, grid, best[support][1])
            if coef is None:
                continue
            den = 1 + sympy.Float(h) * symbols[k]
            expr = sympy.Float(c0) if c0 != 0 else sympy.Integer(0)
            for j, c in zip(support, coef):
                if j < len(plain):
                    expr += sympy.Float(float(c)) * plain[j].expr(symbols)
                else:
                    expr += sympy.Float(float(c)) * _term_expr(over[j - len(plain)],
                                                              symbols) / den
            if not expr.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
                out.append(Candidate(expr, err, f"saturating:{target.names[k]}"))
    return out


def _refine(design, y: np.ndarray, support: tuple[int, ...], grid: np.ndarray, i: int):
    """The support's ``h`` refined between the grid's neighbours of ``grid[i]`` (bounded
    minimization of the least-squares residual in ``log h``): ``(h, coef, c0, error)``;
    coef None when the fit is not finite."""
    cols = list(support)
    mean_y = float(y.mean())
    norm = float(np.linalg.norm(y - mean_y)) or 1.0

    def fit(log_h: float):
        theta = design(math.exp(log_h))[:, cols]
        mean_t = theta.mean(axis=0)
        coef, *_ = np.linalg.lstsq(theta - mean_t, y - mean_y, rcond=None)
        resid = (theta - mean_t) @ coef - (y - mean_y)
        return float(np.linalg.norm(resid)) / norm, coef, mean_y - float(coef @ mean_t)

    lo = math.log(grid[max(i - 1, 0)])
    hi = math.log(grid[min(i + 1, grid.size - 1)])
    with np.errstate(all="ignore"):
        result = scipy.optimize.minimize_scalar(lambda t: fit(t)[0], bounds=(lo, hi),
                                                method="bounded",
                                                options={"xatol": 1e-4})
        log_h = float(result.x) if result.success else math.log(grid[i])
        err, coef, c0 = fit(log_h)
    if not (math.isfinite(err) and np.all(np.isfinite(coef))):
        return math.exp(log_h), None, 0.0, math.inf
    return math.exp(log_h), coef, c0, err


@dataclass(frozen=True)
class Saturating(Generator):
    """Polynomial terms over ``1 + h z`` with a scanned ``h`` (:func:`saturating_candidates`),
    for value targets of at most :data:`MAX_INPUTS` inputs."""

    max_terms: int = 4
    max_keep: int = 4
    name = "saturating"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        return saturating_candidates(target, options.library, max_terms=self.max_terms,
                                     max_keep=self.max_keep, deadline=options.deadline)
