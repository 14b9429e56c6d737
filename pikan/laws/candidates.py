r"""Constants of candidate laws: fit targets, least-squares refit, snapping, complexity, selection.

Every law candidate, whatever generator proposed it, is a sympy expression in a module's
input names whose numeric constants are ``sympy.Float``. This file turns such a candidate
into a :class:`Fit` against a :class:`Target`:

1. **refit** (:func:`refit`): every Float becomes a free parameter (integers, rationals and
   ``pi`` are structure and stay fixed; a value candidate without an additive constant
   gets one when its mean residual is not negligible) and
   ``scipy.optimize.least_squares`` minimizes the residual against the target: values
   :math:`e(z) - y`, or gradients :math:`\nabla_{z} e(z) - g` (potentials and dissipation
   functions are only defined up to an additive constant, so they are fitted on their
   gradients);
2. **snap** (:func:`snap`): constants are replaced, one at a time and simplest first, by
   simple values (0, integers, small rationals, rational multiples of :math:`\pi`) when the
   refit error barely moves (:data:`SNAP_SLACK`);
3. **select** (:func:`select`): the Pareto front of (complexity, error) and the simplest
   member whose error is within :data:`SELECT_FACTOR` of ``max(best error, tolerance)``;
   :func:`tidy` then looks for a simpler equal form of the chosen law.

Errors are *relative*: the RMS residual divided by the RMS spread of the target (values:
its standard deviation; gradients: the RMS of the gradient), so 1e-3 means 0.1 %.

Searches are *anytime*: a :class:`Deadline` (:func:`search_deadline` from a user's time
limit) passed down the generators and to
:func:`fit_candidates` stops the work when the time is up, and what was fitted so far is
selected from (a refit interrupted by the deadline keeps the best constants it has seen; a
candidate not refit keeps the error of its proposed constants).

Candidates are evaluated with numpy (:func:`pikan.laws.numpy_expr.numpy_function`): refits
evaluate thousands of small expressions, where numpy is several times faster than torch's
per-op overhead.
"""

from __future__ import annotations

import functools
import math
import numbers
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.optimize
import scipy.sparse
import sympy

from pikan.errors import SpecError
from pikan.laws.generators.base import Candidate
from pikan.laws.law import Alternative
from pikan.laws.numpy_expr import numpy_function

__all__ = [
    "SEARCH_SHARE",
    "SELECT_FACTOR",
    "SNAP_SLACK",
    "Deadline",
    "Fit",
    "Target",
    "alternatives",
    "complexity",
    "drop_constant",
    "evaluate",
    "fit_candidates",
    "lift",
    "nice_values",
    "pareto",
    "refit",
    "sample_rows",
    "search_deadline",
    "select",
    "snap",
    "tidy",
]

SELECT_FACTOR = 1.5
"""A candidate is acceptable when its error is at most this times max(best error, tolerance)."""

SNAP_SLACK = 0.1
"""A snap is kept when the error grows by at most this fraction (plus a tenth of the tolerance)."""

_BIG = 1e6  # residual used where a candidate is not finite during a refit


# ------------------------------------------------------------------ deadlines


class Deadline:
    """A wall-clock deadline for an anytime search; ``Deadline(None)`` never expires.

    Parameters
    ----------
    seconds : float or None
        Time from now (``time.perf_counter``); None for no limit.
    """

    def __init__(self, seconds: float | None = None) -> None:
        self.end = None if seconds is None else time.perf_counter() + max(float(seconds), 0.0)

    @property
    def limited(self) -> bool:
        return self.end is not None

    def left(self) -> float:
        """Seconds left (inf without a limit, 0 once expired)."""
        return math.inf if self.end is None else max(self.end - time.perf_counter(), 0.0)

    def expired(self) -> bool:
        return self.end is not None and time.perf_counter() >= self.end

    def share(self, fraction: float) -> Deadline:
        """A deadline after ``fraction`` of the time left (never later than this one)."""
        if self.end is None:
            return Deadline(None)
        return Deadline(fraction * self.left())


def as_deadline(deadline: Deadline | None) -> Deadline:
    """``deadline``, or one that never expires for None."""
    return Deadline(None) if deadline is None else deadline


SEARCH_SHARE = 0.9
"""A search stops at this fraction of a time limit: the rest is for the steps that cannot
stop halfway (evaluating the last pool of candidates, the selection). Measured on a
9-input formula with a 5 s limit: 0.4 s from the deadline to the return."""


def search_deadline(time_limit, who: str) -> Deadline:
    """The deadline of an anytime search given a user's ``time_limit`` (seconds or None):
    :data:`SEARCH_SHARE` of it.

    Raises
    ------
    SpecError
        A ``time_limit`` that is not a positive number of seconds or None; ``who`` names
        the function in the message.
    """
    if time_limit is None:
        return Deadline(None)
    if isinstance(time_limit, bool) or not isinstance(time_limit, numbers.Real) or not (
            math.isfinite(time_limit) and time_limit > 0):
        raise SpecError(f"{who}: time_limit must be a positive number of seconds or None "
                        f"(no limit), got {time_limit!r}.")
    return Deadline(SEARCH_SHARE * float(time_limit))


class _OutOfTime(Exception):
    """Raised inside a refit's residual when the deadline passes (caught by :func:`refit`)."""

# ------------------------------------------------------------------ complexity

_FUNCTION_COST = {sympy.sin: 3, sympy.cos: 3, sympy.tan: 4, sympy.exp: 2, sympy.log: 2,
                  sympy.Abs: 3, sympy.sign: 3, sympy.tanh: 3, sympy.sinh: 3, sympy.cosh: 3,
                  sympy.asin: 4, sympy.acos: 4, sympy.atan: 4, sympy.asinh: 4,
                  sympy.acosh: 4, sympy.atanh: 4, sympy.atan2: 4}


def complexity(expr) -> int:
    """Size of an expression: the cost of a law in the Pareto trade-off.

    Symbols and exact numbers (integers, rationals, ``pi``) cost 1, a fitted float constant
    2 (it is a free parameter: between two laws that fit equally well the one with exact
    constants wins); a sum or product of ``n`` terms ``n - 1``; a power 1 (a square root
    2); a function its library cost (``exp``/``log`` 2, ``sin``/``cos``/``tanh`` 3, inverse
    trigonometric 4). A ``-1`` coefficient (a sign) is free. Lists (Dynamics) sum.
    """
    if isinstance(expr, (list, tuple)):
        return sum(complexity(e) for e in expr)
    expr = sympy.sympify(expr)
    if expr.is_Atom:
        return 2 if expr.is_Float else 1
    if isinstance(expr, sympy.Mul):
        args = [a for a in expr.args if a != -1]
        return max(len(args) - 1, 0) + sum(complexity(a) for a in args)
    if isinstance(expr, sympy.Add):
        return len(expr.args) - 1 + sum(complexity(a) for a in expr.args)
    if isinstance(expr, sympy.Pow):
        base, e = expr.args
        own = 2 if e in (sympy.Rational(1, 2), sympy.Rational(-1, 2)) else 1
        extra = 0 if e.is_Integer or e.is_Rational else complexity(e)
        return own + complexity(base) + extra
    cost = _FUNCTION_COST.get(type(expr), 3)
    return cost + sum(complexity(a) for a in expr.args)


# ------------------------------------------------------------------ targets and fits


@dataclass(frozen=True)
class Target:
    r"""What candidates are fitted to: samples of a module (or data) on its input distribution.

    Attributes
    ----------
    names : tuple of str
        Input names, one per column of ``z``.
    z : ndarray, shape (N, d), or (B * N, d) with a projection
        Input samples.
    kind : {"values", "gradient"}
        Fit ``e(z) ~ y`` (values, ``y`` of shape (N,)) or the gradient of ``e``.
    y : ndarray
        Values (N,); gradient components ``de/dz[:, k]`` for ``k`` in ``columns``, shape
        (N, len(columns)); or, with a projection, generalized forces (N, m).
    columns : tuple of int
        For gradients: the inputs whose partial derivatives are fitted (default all).
    projection : ndarray, shape (B, N, d, m), optional
        For gradients: the Jacobians :math:`\partial z_{b,k} / \partial q_i` of ``B``
        bindings (``z`` stacked binding-major); the fitted quantity is then
        :math:`\sum_b J_b^T \nabla e(z_b)`, the module's generalized force (up to sign).
        Directions the bindings cannot see (a term linear in the bond length of a chain
        with fixed ends) then cost nothing and simpler laws win.
    weights : ndarray, shape (N,), optional
        For values: each residual is multiplied by its weight (errors, refits and the
        target's scale are weighted). :func:`pikan.find_law` fits ``g`` in
        ``y = P(x) g(pi)`` on ``w = y / P`` with weights ``P``, so that the residuals are
        those of ``y`` itself (unweighted, noise on ``y`` would swamp ``w`` where ``P`` is
        small). Generators propose from ``y`` unweighted.
    average : ndarray or scipy sparse array, shape (M, N), optional
        For values: ``y`` (M,) holds weighted means of the law's values on the samples,
        ``y ~ average @ e(z)``, each row's weights summing to 1: a law fitted to the data's
        weak-form averages (:func:`pikan.laws.extract.data_target`), whose rates are known
        only as averages over windows of the trajectories, not sample by sample. For
        projected gradients, ``y`` (M, m) holds the means of the generalized forces.
    """

    names: tuple[str, ...]
    z: np.ndarray
    kind: str
    y: np.ndarray
    columns: tuple[int, ...] = ()
    projection: np.ndarray | None = None
    weights: np.ndarray | None = None
    average: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "z", np.asarray(self.z, dtype=np.float64))
        object.__setattr__(self, "y", np.asarray(self.y, dtype=np.float64))
        if self.kind == "gradient" and (not self.columns or self.projection is not None):
            object.__setattr__(self, "columns", tuple(range(self.z.shape[1])))
        if self.projection is not None:
            p = np.asarray(self.projection, dtype=np.float64)
            object.__setattr__(self, "projection", p)
            b, n, d, m = p.shape
            rows = n if self.average is None else np.shape(self.average)[0]
            if self.z.shape != (b * n, d) or self.y.shape != (rows, m):
                raise ValueError(f"projected target: z {self.z.shape}, y {self.y.shape} and "
                                 f"projection {p.shape} disagree")
        elif self.kind == "gradient" and self.y.shape != (self.z.shape[0], len(self.columns)):
            raise ValueError(f"gradient target has shape {self.y.shape}, expected "
                             f"{(self.z.shape[0], len(self.columns))}")
        if self.average is not None:
            # sparse: each window averages its own few samples, and every candidate's
            # refit multiplies by it (dense, it took 6 of 8 s of a Flow's data fits)
            a = scipy.sparse.csr_array(self.average, dtype=np.float64)
            samples = self.z.shape[0] if self.projection is None else self.projection.shape[1]
            if self.kind == "values":
                fits = a.shape == (self.y.size, samples)
            else:
                fits = (self.projection is not None and a.shape[1] == samples
                        and self.y.shape == (a.shape[0], self.projection.shape[3]))
            if not fits:
                raise ValueError(f"an average {a.shape} does not fit y {self.y.shape} and z "
                                 f"{self.z.shape} (values: (M, N); gradients: a projection "
                                 "too, y (M, m))")
            if not np.allclose(np.asarray(a.sum(axis=1)).ravel(), 1.0, rtol=0.0, atol=1e-9):
                raise ValueError("each row of a target's average must sum to 1")
            object.__setattr__(self, "average", a)
        elif self.kind == "values" and self.y.shape != (self.z.shape[0],):
            raise ValueError(f"value target has shape {self.y.shape}, "
                             f"expected ({self.z.shape[0]},)")
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64)
            if self.kind != "values" or w.shape != self.y.shape:
                raise ValueError(f"weights {w.shape} need a value target of shape "
                                 f"{self.y.shape}")
            object.__setattr__(self, "weights", w)

    @property
    def scale(self) -> float:
        """RMS spread of the target: std of values, RMS of gradient components."""
        if self.kind == "values":
            y = self.y if self.weights is None else self.y * self.weights
            s = float(np.std(y))
            return s if s > 1e-300 else max(float(np.sqrt(np.mean(y**2))), 1e-300)
        return max(float(np.sqrt(np.mean(self.y**2))), 1e-300)

    def project(self, gradients: np.ndarray) -> np.ndarray:
        """Per-sample values (N,) or gradients (B * N, len(columns)) -> the target's layout:
        averaged values (M,), projected gradients (N, m), or unchanged."""
        if self.kind == "values":
            return gradients if self.average is None else self.average @ gradients
        if self.projection is None:
            return gradients
        b, n, d, _ = self.projection.shape
        forces = np.einsum("bnk,bnkm->nm", gradients.reshape(b, n, d), self.projection)
        return forces if self.average is None else self.average @ forces

    def evaluator(self, expr: sympy.Expr, params: Sequence[sympy.Symbol] = ()) -> Callable:
        """``f(constants) -> predictions`` in the target's layout, flattened."""
        names = list(self.names) + [p.name for p in params]
        cols = [self.z[:, k] for k in range(self.z.shape[1])]
        n = self.z.shape[0]
        if self.kind == "values":
            fns = [numpy_function(expr, names)]
        else:
            fns = [numpy_function(_derivative(expr, self.names[k]), names) for k in self.columns]

        def predict(constants: Sequence[float]) -> np.ndarray:
            out = [np.broadcast_to(np.asarray(fn(*cols, *constants), dtype=np.float64), (n,))
                   for fn in fns]
            if self.kind == "values":
                return self.project(out[0])
            return self.project(np.stack(out, axis=1)).ravel()

        return predict

    def flat(self) -> np.ndarray:
        return self.y.ravel()

    def weighted(self, residuals: np.ndarray) -> np.ndarray:
        """Residuals in the target's layout, times the weights when it has them."""
        return residuals if self.weights is None else residuals * self.weights


@functools.lru_cache(maxsize=4096)
def _derivative(expr: sympy.Expr, name: str) -> sympy.Expr:
    """``d expr / d name`` with the variable taken as real (so ``d|x|/dx = sign(x)``).

    Cached: the pre-screening, the refit and the snapping of a candidate differentiate the
    same lifted expression, and symbolic differentiation dominates their cost.
    """
    real = {s: sympy.Symbol(s.name, real=True) for s in expr.free_symbols}
    back = {v: k for k, v in real.items()}
    return sympy.diff(expr.xreplace(real), real[sympy.Symbol(name)]).xreplace(back) \
        if sympy.Symbol(name) in real else sympy.Integer(0)


@dataclass(frozen=True)
class Fit:
    """A candidate law fitted to a target.

    Attributes
    ----------
    expr : sympy.Expr
        In the target's input names, constants refit.
    error : float
        Relative RMS residual (see the module docstring); inf when not finite.
    rmse : float
        Absolute RMS residual.
    complexity : int
    source : str
        The generator that proposed it (``"regression:poly2"``, ``"kan"``, ``"structure"``...).
    """

    expr: sympy.Expr
    error: float
    rmse: float
    complexity: int
    source: str = ""
    snapped: bool = field(default=False, compare=False)

    @property
    def r2(self) -> float:
        return 1.0 - self.error**2 if math.isfinite(self.error) else -math.inf


def _integral_exponents(expr: sympy.Expr) -> sympy.Expr:
    """x**2.0 -> x**2, so integral exponents are structure, not constants."""
    rep = {}
    for p in expr.atoms(sympy.Pow):
        e = p.exp
        if e.is_Float and float(e) == int(float(e)):
            rep[p] = sympy.Pow(p.base, sympy.Integer(int(float(e))))
    return expr.xreplace(rep) if rep else expr


def lift(expr: sympy.Expr) -> tuple[sympy.Expr, list[sympy.Symbol], list[float]]:
    """Replace every Float occurrence by its own parameter symbol ``_c0, _c1, ...``."""
    params: list[sympy.Symbol] = []
    values: list[float] = []

    def walk(node):
        if node.is_Float:
            s = sympy.Symbol(f"_c{len(params)}")
            params.append(s)
            values.append(float(node))
            return s
        if node.is_Atom:
            return node
        if isinstance(node, sympy.Pow) and node.exp.is_Rational:
            return sympy.Pow(walk(node.base), node.exp)
        return node.func(*[walk(a) for a in node.args])

    return walk(_integral_exponents(expr)), params, values


def _residual_fn(target: Target, lifted: sympy.Expr, params: list[sympy.Symbol]):
    predict = target.evaluator(lifted, params)
    flat, scale = target.flat(), target.scale

    def residual(c):
        return target.weighted(predict(c) - flat) / scale

    return residual


def evaluate(target: Target, expr: sympy.Expr) -> tuple[float, float]:
    """(relative error, rmse) of a fixed expression."""
    try:
        lifted, params, values = lift(expr)
        pred = target.evaluator(lifted, params)(values)
    except (ValueError, TypeError, OverflowError, ZeroDivisionError):
        return math.inf, math.inf
    r = target.weighted(pred - target.flat())
    if not np.all(np.isfinite(r)):
        return math.inf, math.inf
    rmse = float(np.sqrt(np.mean(r * r)))
    return rmse / target.scale, rmse


def refit(expr: sympy.Expr, target: Target, source: str = "", max_nfev: int = 200,
          offset: bool = True, deadline: Deadline | None = None,
          tolerance: float = 0.0) -> Fit:
    """Refit the Float constants of ``expr`` to ``target`` by nonlinear least squares.

    Parameters
    ----------
    expr : sympy.Expr
        Candidate in ``target.names``.
    target : Target
    source : str
        Recorded on the returned :class:`Fit`.
    max_nfev : int
        Evaluation budget of ``scipy.optimize.least_squares`` (Levenberg--Marquardt with a
        finite-difference Jacobian; the trust-region method where LM cannot run).
    offset : bool
        For value targets, add a free additive constant when the candidate lacks one and
        its mean residual is not negligible (off while snapping, which may drop it).
    deadline : Deadline, optional
        When it passes during the optimization, the best constants evaluated so far are
        kept (anytime).
    tolerance : float
        The relative error the data's noise causes, if known: an offset within
        :data:`OFFSET_SPREAD` standard errors of the mean of such noise is not added
        (:func:`_with_offset`).

    Returns
    -------
    Fit
        With error inf when the candidate is not finite on the samples.
    """
    expr = sympy.sympify(expr)
    if target.kind == "gradient":
        expr = drop_constant(expr)
    elif offset:
        expr = _with_offset(expr, target, tolerance)
    try:
        lifted, params, x0 = lift(expr)
    except (TypeError, ValueError):
        return Fit(expr, math.inf, math.inf, complexity(expr), source)
    if not params:
        err, rmse = evaluate(target, expr)
        return Fit(expr, err, rmse, complexity(expr), source)
    try:
        residual = _residual_fn(target, lifted, params)
        r0 = residual(x0)
    except (ValueError, TypeError, OverflowError, ZeroDivisionError):
        return Fit(expr, math.inf, math.inf, complexity(expr), source)
    if not np.all(np.isfinite(r0)):
        return Fit(expr, math.inf, math.inf, complexity(expr), source)

    deadline = as_deadline(deadline)
    x0 = np.asarray(x0, dtype=np.float64)
    seen = {"x": x0, "rss": float(r0 @ r0)}  # the best finite point so far (anytime)

    def safe(c):
        if deadline.expired():
            raise _OutOfTime
        r = residual(c)
        if np.all(np.isfinite(r)):
            with np.errstate(over="ignore"):
                rss = float(r @ r)
            if rss < seen["rss"]:
                seen["x"], seen["rss"] = np.array(c, dtype=np.float64), rss
        return np.where(np.isfinite(r), r, _BIG)

    method = "lm" if r0.size >= x0.size else "trf"
    try:
        sol = scipy.optimize.least_squares(safe, x0, method=method, x_scale="jac", ftol=1e-13,
                                           xtol=1e-13, gtol=1e-13, max_nfev=max_nfev)
        x = sol.x if float(sol.fun @ sol.fun) <= float(r0 @ r0) else x0
    except _OutOfTime:
        x = seen["x"]
    except (ValueError, np.linalg.LinAlgError):
        x = x0
    r = residual(x)
    if not np.all(np.isfinite(r)):  # the optimizer left the domain: keep the start
        x, r = x0, r0
    fitted = lifted.xreplace({p: sympy.Float(float(v)) for p, v in zip(params, x)})
    err = float(np.sqrt(np.mean(r * r)))
    return Fit(fitted, err, err * target.scale, complexity(fitted), source)


OFFSET_SPREAD = 3.0
"""Standard errors of the noise's mean that a candidate's mean residual must exceed for
:func:`refit` to give it a free offset: a smaller one is noise, and a free offset beside
constants it is nearly collinear with lets them drift along the noise
(``sqrt(1 - 1/u**2)`` refit to ``sqrt(0.73 - 0.85/u**2) + 0.15`` on 1 % noise)."""


def _with_offset(expr: sympy.Expr, target: Target, tolerance: float = 0.0) -> sympy.Expr:
    """Add a free additive constant to a value candidate that lacks one, when its mean
    residual is more than 1e-6 of the target's spread and more than :data:`OFFSET_SPREAD`
    standard errors of the mean of noise at ``tolerance`` (relative to the spread; sympy
    drops a literal ``+ 0.0``, so generators cannot leave one at zero)."""
    if any(t.is_Number for t in sympy.Add.make_args(expr)):
        return expr
    try:
        pred = target.evaluator(expr)(())
    except (ValueError, TypeError, OverflowError, ZeroDivisionError):
        return expr
    w2 = np.ones_like(target.y) if target.weights is None else target.weights**2
    offset = float(np.sum(w2 * (target.y - pred)) / np.sum(w2))
    floor = max(1e-6, OFFSET_SPREAD * tolerance / math.sqrt(target.y.size))
    if not math.isfinite(offset) or abs(offset) <= floor * target.scale:
        return expr
    return expr + sympy.Float(offset)


def drop_constant(expr: sympy.Expr) -> sympy.Expr:
    """Remove the additive constant of a sum (invisible to a gradient fit)."""
    if isinstance(expr, sympy.Add):
        kept = [a for a in expr.args if a.free_symbols]
        return sympy.Add(*kept) if kept else sympy.Integer(0)
    return expr


# ------------------------------------------------------------------ snapping


def nice_values(c: float, rtol: float) -> list[sympy.Expr]:
    """Simple numbers within ``rtol`` (relative) of ``c``, simplest first."""
    out: list[tuple[int, sympy.Expr]] = []
    if c == 0 or not math.isfinite(c):
        return []
    for q in range(1, 13):
        p = round(c * q)
        if p != 0 and abs(p / q - c) <= rtol * abs(c) and math.gcd(p, q) == 1:
            out.append((q + len(str(abs(p))), sympy.Rational(p, q)))
    r = c / math.pi
    for q in (1, 2, 3, 4, 6):
        p = round(r * q)
        if p != 0 and abs(p / q - r) <= rtol * abs(r) and math.gcd(p, q) == 1:
            out.append((q + 4, sympy.Rational(p, q) * sympy.pi))
    out.sort(key=lambda t: t[0])
    seen, values = set(), []
    for _, v in out:
        if v not in seen:
            seen.add(v)
            values.append(v)
    return values


def snap(fit: Fit, target: Target, tolerance: float = 0.0, rtol: float = 0.05,
         max_trials: int = 40, deadline: Deadline | None = None) -> Fit:
    """Replace constants by simple values where the error barely moves.

    Constants are tried in order of their relative distance to the nearest simple value;
    0 is tried for every constant (a term that does not matter is dropped), after the
    close simple values unless the constant is tiny next to the largest one. After each
    trial the remaining Float constants are refit; the trial is kept when the error is at
    most ``(1 + SNAP_SLACK) * error + 0.1 * tolerance``.

    Parameters
    ----------
    fit : Fit
    target : Target
    tolerance : float
        Relative error considered negligible (the selection tolerance).
    rtol : float
        How far (relative) a constant may be from a simple value to be tried.
    max_trials : int
        Cap on refits.
    deadline : Deadline, optional
        No further trial once it has passed.

    Returns
    -------
    Fit
        ``snapped=True``; the same expression when no snap was accepted.
    """
    deadline = as_deadline(deadline)
    current = fit
    trials = 0
    rejected: set[tuple[str, str]] = set()
    while trials < max_trials and math.isfinite(current.error) and not deadline.expired():
        lifted, params, values = lift(current.expr)
        options = []
        largest = max((abs(v) for v in values), default=1.0) or 1.0
        for k, (p, v) in enumerate(zip(params, values)):
            for nice in [sympy.Integer(0), *nice_values(v, rtol)]:
                dist = abs(float(nice) - v) / abs(v) if nice != 0 else 0.0
                # zeros after close simple values, except for constants tiny next to the others
                rank = dist if nice != 0 else min(0.5 + abs(v), abs(v) / largest)
                key = (str(sympy.srepr(lifted)), f"{k}={nice}")
                if key not in rejected:
                    options.append((rank, k, nice, key))
        if not options:
            break
        options.sort(key=lambda t: t[0])
        accepted = False
        for _, k, nice, key in options:
            trials += 1
            trial = lifted.xreplace({params[k]: nice})
            trial = trial.xreplace({p: sympy.Float(v) for i, (p, v) in
                                    enumerate(zip(params, values)) if i != k})
            new = refit(trial, target, current.source, offset=False, deadline=deadline)
            limit = (1 + SNAP_SLACK) * current.error + 0.1 * tolerance
            if math.isfinite(new.error) and new.error <= limit:
                current = new
                accepted = True
                break
            rejected.add(key)
            if trials >= max_trials or deadline.expired():
                break
        if not accepted:
            break
    return replace(current, snapped=True)


# ------------------------------------------------------------------ selection


def pareto(fits: Sequence[Fit]) -> list[Fit]:
    """The Pareto front of (complexity, error): ordered by complexity, each strictly better."""
    finite = sorted((f for f in fits if math.isfinite(f.error)),
                    key=lambda f: (f.complexity, f.error))
    front: list[Fit] = []
    for f in finite:
        if not front or f.error < front[-1].error * (1 - 1e-9) - 1e-300:
            front.append(f)
    return front


def select(fits: Sequence[Fit], tolerance: float = 0.0,
           factor: float = SELECT_FACTOR) -> Fit | None:
    r"""The chosen law: the simplest Pareto member with error at most
    :math:`\mathrm{factor}\cdot\max(e^*, \mathrm{tolerance})`, where :math:`e^*` is the best
    error.

    ``tolerance`` is the error a correct law is expected to have anyway (the KAN's own fit
    error, or the data's noise): below it, a more complex candidate is not better, only
    fitting noise. Returns None when no candidate is finite.
    """
    front = pareto(fits)
    if not front:
        return None
    best = min(f.error for f in front)
    limit = factor * max(best, tolerance)
    for f in front:
        if f.error <= limit:
            return f
    return front[-1]


def rounded_key(expr: sympy.Expr, digits: int = 3) -> str:
    """A key that identifies candidates equal up to small changes of their constants: the
    expression tree written out with every Float rounded to ``digits`` significant digits
    (read, not rebuilt: rebuilding each candidate with rounded numbers made sympy query
    assumptions for a third of a search's time)."""
    if isinstance(expr, sympy.Float):
        return f"F({float(expr):.{digits}g})"
    if not expr.args:
        return sympy.srepr(expr)
    keys = [rounded_key(a, digits) for a in expr.args]
    if isinstance(expr, (sympy.Add, sympy.Mul)):  # in any order, as a rebuilt sum would be
        keys.sort()
    return f"{type(expr).__name__}({','.join(keys)})"


def fit_candidates(candidates: Sequence[Candidate], target: Target,
                   tolerance: float = 0.0, slack: float = 3.0, max_snap: int = 8,
                   max_refit: int = 60, deadline: Deadline | None = None) -> list[Fit]:
    """Refit a pool of candidates, snap the Pareto front, return every fit.

    Duplicates (equal up to their constants' third significant digit) are dropped. All
    candidates are first evaluated as proposed; only those within ``slack`` times the
    best error of candidates at most as complex are refit (a candidate far off the front
    will not reach it by moving its constants a little), at most ``max_refit`` of them, the
    front of the candidates as proposed first.
    The members of the refit front the selection could pick (error within 10 times its
    limit, see :func:`select`) are then snapped (:func:`snap`), at most ``max_snap``,
    simplest first.

    Parameters
    ----------
    candidates : sequence of Candidate
        As proposed by the generators (:mod:`pikan.laws.generators`); their own errors
        are not used.
    target : Target
    tolerance : float
        Relative error considered negligible (see :func:`select`).
    deadline : Deadline, optional
        Anytime: once it has passed, the candidates not yet evaluated are dropped (as soon
        as one finite candidate was evaluated; generators list the cheapest families
        first; those whose own error is within ``tolerance`` are evaluated before the
        others), the shortlisted ones keep their proposed constants (their first error) and
        nothing more is snapped.

    Returns
    -------
    list of Fit
        Refit candidates and their snapped versions.
    """
    deadline = as_deadline(deadline)
    seen: dict[str, tuple[sympy.Expr, str]] = {}
    # those whose own error claims the tolerance first: under a deadline they are the ones
    # worth evaluating (an exact law among five hundred series, most of them never reached)
    claims = [c for c in candidates if c.error <= tolerance]
    for candidate in claims + [c for c in candidates if not c.error <= tolerance]:
        expr, source = sympy.sympify(candidate.expr), candidate.source
        if expr.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo) or not expr.free_symbols:
            continue
        key = rounded_key(expr)
        if key not in seen:
            seen[key] = (expr, source)
    first = []
    for expr, source in seen.values():
        if deadline.expired() and any(math.isfinite(t[1]) for t in first):
            break  # candidates come cheapest family first: keep what was evaluated
        err, _ = evaluate(target, drop_constant(expr) if target.kind == "gradient" else expr)
        first.append((complexity(expr), err, expr, source))
    first.sort(key=lambda t: (t[0], t[1]))
    shortlist, front, best = [], [], math.inf
    for c, err, expr, source in first:
        if not math.isfinite(err):
            continue
        if err < best:  # the front of the proposed candidates
            front.append((c, err, expr, source))
        elif err <= slack * best or err <= tolerance:
            shortlist.append((c, err, expr, source))
        best = min(best, err)
    # the front is always refit, then the most accurate others: kept by accuracy alone, a
    # field 1.37 + 0.41 x lost its place to sixty series fitting a KAN's wiggles in y
    room = max(max_refit - len(front), 0)
    shortlist = sorted(front + sorted(shortlist, key=lambda t: t[1])[:room],
                       key=lambda t: (t[0], t[1]))
    fits = []
    for c, err, expr, source in shortlist:
        if deadline.expired():  # anytime: keep the proposed constants
            kept = drop_constant(expr) if target.kind == "gradient" else expr
            fits.append(Fit(kept, err, err * target.scale, complexity(kept), source))
        else:
            fits.append(refit(expr, target, source, deadline=deadline, tolerance=tolerance))
    front = pareto(fits)
    if not front:
        return fits
    # snap the members the selection could pick (within 10x of its limit), simplest first
    limit = SELECT_FACTOR * max(min(f.error for f in front), tolerance)
    near = [f for f in front if f.error <= 10 * limit][:max_snap]
    snapped = [snap(f, target, tolerance, deadline=deadline) for f in near
               if not deadline.expired()]
    return fits + snapped


def tidy(fit: Fit, target: Target, deadline: Deadline | None = None) -> Fit:
    """The simplest equal form of a chosen law: ``sympy.cancel`` and ``sympy.simplify``,
    each kept only when it is simpler and fits as well (a gradient target drops the
    constant term). Skipped for laws of complexity over 60 and once ``deadline`` has
    passed: simplification can take seconds."""
    if fit.complexity > 60 or as_deadline(deadline).expired():
        return fit
    best = fit
    for form in (sympy.cancel, sympy.simplify):
        try:
            e = form(fit.expr)
        except (TypeError, ValueError, RecursionError, NotImplementedError):
            continue
        if target.kind == "gradient" and isinstance(e, sympy.Add):
            e = sympy.Add(*[a for a in e.args if a.free_symbols])
        c = complexity(e)
        if c >= best.complexity:
            continue
        err, rmse = evaluate(target, e)
        if math.isfinite(err) and err <= fit.error * (1 + 1e-6) + 1e-12:
            best = Fit(e, err, rmse, c, fit.source, fit.snapped)
    return best


def alternatives(fits: Sequence[Fit], output: str | None = None) -> list[Alternative]:
    """The Pareto front of ``fits`` as a law's alternatives (``output``: the Dynamics output
    they are for)."""
    return [Alternative(f.expr, f.complexity, f.error, f.source, output, f.rmse)
            for f in pareto(fits)]


def sample_rows(n: int, limit: int, seed: int) -> np.ndarray:
    """Indices of a seeded subset of ``limit`` of ``n`` samples, sorted (all when ``n <=
    limit``)."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))
