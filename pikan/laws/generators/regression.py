r"""Sparse regression over term libraries: law candidates linear in their coefficients.

A *term* is a product of *factors*, each a function of one input: powers
(:math:`x, x^2, \dots, x^5, 1/x, 1/x^2, \sqrt{x}`), and unary functions of the symbolic
library (:math:`\sin x, \cos x, e^{\pm x}, \log x, \tanh x, \dots`) where the samples lie in
the function's domain. :func:`libraries` builds several term sets of moderate size rather
than one huge one (small, well-conditioned libraries make sparse regression reliable):

- ``poly<k>``: every monomial of total degree 1..k (cross terms included);
- ``unary``: ``poly2`` plus each unary function of each input, and products of a unary
  function with another input (or, for up to three inputs, with another unary function);
- ``laurent``: monomials with exponents in {-2, -1, 1, 2} over at most 3 inputs (2 when
  there are more than 3 inputs), for inputs that stay away from 0;
- ``unary-monomial:<f>`` for ``f`` in sin, cos, exp, exp(-x): ``f`` of one input times a
  product of up to three other inputs (``q*B*v*sin(theta)``), plus those products;
- ``inverse-powers``: for at most 2 inputs, the powers :math:`z^p`, :math:`p \in
  \{-12, \dots, -1, 1, \dots, 4\}`, of each input that keeps one sign away from 0, plus
  ``poly2``; every support of up to 3 terms is tried (a Lennard-Jones wall
  :math:`4\epsilon((s/r)^{12} - (s/r)^6)`, a dipole :math:`1/r^3`);
- ``laurent-log``: the ``laurent`` terms plus ``log z_k`` of each positive input, for the
  ``log`` transform of the target below: ``log y = c + sum e_k log z_k + (Laurent
  terms)`` is a power law times the exponential of a Laurent polynomial, such as a
  Gaussian ``exp(-x**2/(2 s**2))/s`` or a Boltzmann factor ``exp(-E/(k T))``.

For each library the target is regressed by STLSQ (sequentially thresholded least squares)
over a ladder of thresholds and by orthogonal matching pursuit, followed by backward
elimination; every distinct support of at most ``max_terms`` terms is refit by least
squares and becomes a candidate. A target is either values :math:`y \approx c_0 + \sum_k
\xi_k t_k(z)`, or gradients :math:`g \approx \sum_k \xi_k \nabla t_k(z)` (no constant: a
potential is defined up to one).

For static data (:func:`pikan.laws.find_law.find_law`) the values may first be transformed
(``y^2, 1/y, 1/y^2, log|y|, sqrt(y)``; with the small libraries ``poly1``, ``poly2``,
``laurent``, ``laurent-log`` and ``unary``, and for up to two inputs ``poly3`` and
``poly4``) and the candidate inverted; values that are
pure numbers (a dimensionless group) also as ``log(1 - y)``, ``log(1 + y)``,
``log(1/y -+ 1)``, ``(1 + y)**-2``, ``sin y`` and ``tan y`` (:data:`UNIT_TRANSFORMS`).

:class:`SparseRegression` is this family behind the generator interface
(:mod:`pikan.laws.generators.base`).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from pikan.laws.candidates import Deadline, Target, as_deadline
from pikan.laws.generators.base import EXACT, Candidate, Generator, Options

__all__ = [
    "EXACT",
    "TRANSFORMS",
    "UNIT_TRANSFORMS",
    "SparseRegression",
    "Term",
    "front",
    "libraries",
    "max_terms_for",
    "monomials",
    "regression_candidates",
    "sparse_fits",
    "transform_ok",
    "transformed",
    "unit_transformed",
]


_MAX_INVERSE_POWER = 12
"""Most negative power of the ``inverse-powers`` library (a Lennard-Jones wall, 1/r**12)."""

_INVERSE_POWER_MARGIN = 0.05
"""An input enters the ``inverse-powers`` library when it keeps one sign and its smallest
magnitude is at least this fraction of its largest (1/z**12 then spans at most 1e15)."""

_EXHAUSTIVE_SIZE = 3
"""Supports up to this size are all tried on the ``inverse-powers`` library: neighbouring
powers of a narrow range are nearly collinear (1/x**12 and 1/x**11 correlate at 0.9999 on
[1.2, 1.5]), where greedy selection picks the wrong pair."""


@dataclass(frozen=True)
class _Factor:
    name: str
    value: Callable[[np.ndarray], np.ndarray]
    deriv: Callable[[np.ndarray], np.ndarray]
    sympy_fn: Callable[[sympy.Expr], sympy.Expr]
    primitive: str  # the symbolic-library name that allows it
    domain: str  # "all", "nonzero" or "positive"
    degree: int = 0  # polynomial degree (0: not a monomial factor)


def _power(p: int) -> _Factor:
    name = "x" if p == 1 else f"x^{p}" if p > 0 else ("1/x" if p == -1 else f"1/x^{-p}")
    return _Factor(name, lambda x: x**p, lambda x: p * x ** (p - 1), lambda s: s**p,
                   name, "all" if p > 0 else "nonzero", max(p, 0))


_FACTORS: dict[str, _Factor] = {f.name: f for f in [
    *(_power(p) for p in (1, 2, 3, 4, 5, *range(-1, -_MAX_INVERSE_POWER - 1, -1))),
    _Factor("sqrt", np.sqrt, lambda x: 0.5 / np.sqrt(x), sympy.sqrt, "sqrt", "positive"),
    _Factor("1/sqrt", lambda x: 1 / np.sqrt(x), lambda x: -0.5 * x**-1.5,
            lambda s: 1 / sympy.sqrt(s), "1/sqrt", "positive"),
    _Factor("exp", np.exp, np.exp, sympy.exp, "exp", "all"),
    _Factor("exp(-x)", lambda x: np.exp(-x), lambda x: -np.exp(-x), lambda s: sympy.exp(-s),
            "exp", "all"),
    _Factor("log", np.log, lambda x: 1 / x, sympy.log, "log", "positive"),
    _Factor("sin", np.sin, np.cos, sympy.sin, "sin", "all"),
    _Factor("cos", np.cos, lambda x: -np.sin(x), sympy.cos, "cos", "all"),
    _Factor("tanh", np.tanh, lambda x: 1 / np.cosh(x) ** 2, sympy.tanh, "tanh", "all"),
    _Factor("gaussian", lambda x: np.exp(-x * x), lambda x: -2 * x * np.exp(-x * x),
            lambda s: sympy.exp(-s**2), "gaussian", "all"),
    _Factor("arctan", np.arctan, lambda x: 1 / (1 + x * x), sympy.atan, "arctan", "all"),
]}
_UNARY = ("sqrt", "1/sqrt", "exp", "exp(-x)", "log", "sin", "cos", "tanh", "gaussian",
          "arctan", "1/x", "1/x^2")
_PRODUCT_UNARY = ("sin", "cos", "exp", "exp(-x)")


@dataclass(frozen=True)
class Term:
    """A product of factors of distinct inputs: ``((input index, factor name), ...)``."""

    factors: tuple[tuple[int, str], ...]

    def expr(self, symbols: Sequence[sympy.Symbol]) -> sympy.Expr:
        out = sympy.Integer(1)
        for k, name in self.factors:
            out = out * _FACTORS[name].sympy_fn(symbols[k])
        return out

    def values(self, z: np.ndarray) -> np.ndarray:
        out = np.ones(z.shape[0])
        for k, name in self.factors:
            out = out * _FACTORS[name].value(z[:, k])
        return out

    def gradient(self, z: np.ndarray, columns: Sequence[int]) -> np.ndarray:
        """Partial derivatives, shape (N, len(columns))."""
        vals = {k: _FACTORS[n].value(z[:, k]) for k, n in self.factors}
        out = np.zeros((z.shape[0], len(columns)))
        for j, col in enumerate(columns):
            name = dict(self.factors).get(col)
            if name is None:
                continue
            d = _FACTORS[name].deriv(z[:, col])
            for k, _ in self.factors:
                if k != col:
                    d = d * vals[k]
            out[:, j] = d
        return out


def _allowed(z: np.ndarray, library: Sequence[str] | None, log_near_zero: bool = False
             ) -> list[list[str]]:
    """Factor names allowed for each input (by the library and the samples' range); with
    ``log_near_zero``, ``log`` also for positive inputs that come within 1e-3 of 0."""
    allowed_prims = None if library is None else set(library) | {"x"}
    out = []
    for k in range(z.shape[1]):
        x = z[:, k]
        span = float(np.max(np.abs(x))) if x.size else 0.0
        nonzero = bool(np.min(np.abs(x)) > 1e-3 * span) if span > 0 else False
        positive = bool(np.min(x) > 1e-3 * span) if span > 0 else False
        # log grows so slowly that samples near 0 keep it well conditioned (a Maxwell
        # speed distribution in m*v**2/(kb*T) from 0.015 to 26 is log-linear there)
        loggable = bool(np.min(x) > 1e-9 * span) if span > 0 and log_near_zero else positive
        names = []
        for f in _FACTORS.values():
            if allowed_prims is not None and f.primitive not in allowed_prims:
                continue
            if f.domain == "nonzero" and not nonzero or f.domain == "positive" and not (
                    loggable if f.name == "log" else positive):
                continue
            if f.name in ("exp", "exp(-x)") and span > 50:
                continue
            names.append(f.name)
        out.append(names)
    return out


def _one_signed(x: np.ndarray) -> bool:
    """Whether samples keep one sign and stay away from 0 (see the ``inverse-powers``
    library)."""
    top = float(np.max(np.abs(x))) if x.size else 0.0
    return top > 0 and (bool(np.all(x > 0)) or bool(np.all(x < 0))) \
        and float(np.min(np.abs(x))) >= _INVERSE_POWER_MARGIN * top


def monomials(d: int, degree: int) -> list[Term]:
    """Every monomial of total degree 1 to ``degree`` in ``d`` inputs (cross terms included)."""
    terms = []
    for deg in range(1, degree + 1):
        for combo in itertools.combinations_with_replacement(range(d), deg):
            counts = {k: combo.count(k) for k in sorted(set(combo))}
            terms.append(Term(tuple((k, "x" if c == 1 else f"x^{c}") for k, c in counts.items())))
    return terms


def libraries(z: np.ndarray, library: Sequence[str] | None = None, max_size: int = 260,
              log_near_zero: bool = False) -> list[tuple[str, list[Term]]]:
    """Term libraries for inputs ``z`` (N, d): see the module docstring.

    Parameters
    ----------
    z : ndarray, shape (N, d)
    library : sequence of str, optional
        Symbolic-library primitive names allowed (default all); ``"x"`` is always allowed.
    max_size : int
        Libraries with more terms are truncated (polynomial degrees stop growing).
    log_near_zero : bool
        Allow ``log`` of positive inputs whose samples come within 1e-3 of the largest
        (not only 1e-9): static data, whose laws may be log-linear there.

    Returns
    -------
    list of (name, terms)
    """
    d = z.shape[1]
    allowed = _allowed(z, library, log_near_zero)
    out: list[tuple[str, list[Term]]] = []
    max_deg = min(max((_FACTORS[n].degree for n in a), default=1) for a in allowed)
    for deg in range(1, max_deg + 1):
        terms = monomials(d, deg)
        if len(terms) > max_size:
            break
        out.append((f"poly{deg}", terms))
    unary = [(k, n) for k in range(d) for n in allowed[k] if n in _UNARY]
    if unary:
        terms = list(monomials(d, 2))
        terms += [Term(((k, n),)) for k, n in unary]
        for k, n in unary:
            for j in range(d):
                if j != k:
                    terms.append(Term(tuple(sorted([(k, n), (j, "x")]))))
        if d <= 3:
            for (k, n), (j, m) in itertools.combinations(unary, 2):
                if k != j:
                    terms.append(Term(tuple(sorted([(k, n), (j, m)]))))
        out.append(("unary", terms[:max_size]))
    inverse = [k for k in range(d) if "1/x" in allowed[k]]
    if inverse and d >= 2:
        exps = {k: ([-2, -1, 1, 2] if k in inverse else [1, 2]) for k in range(d)}
        limit = 3 if d <= 3 else 2
        terms = []
        for size in range(1, limit + 1):
            for ks in itertools.combinations(range(d), size):
                for es in itertools.product(*(exps[k] for k in ks)):
                    names = [_power(e).name for e in es]
                    if all(n in allowed[k] for k, n in zip(ks, names)):
                        terms.append(Term(tuple(zip(ks, names))))
        if len(terms) <= max_size:
            out.append(("laurent", terms))
            logs = [Term(((k, "log"),)) for k in range(d) if "log" in allowed[k]]
            if logs and len(terms) + len(logs) <= max_size:
                out.append(("laurent-log", terms + logs))
    powers = list(range(-_MAX_INVERSE_POWER, 0)) + list(range(1, 5))
    walls = [k for k in range(d) if _one_signed(z[:, k]) and "1/x" in allowed[k]]
    if walls and d <= 2:
        terms = [Term(((k, _power(p).name),)) for k in walls for p in powers
                 if _power(p).name in allowed[k]]
        terms += [t for t in monomials(d, 2) if t not in terms]
        out.append(("inverse-powers", terms))
    if d >= 2:
        products = [Term(tuple((k, "x") for k in ks)) for size in range(1, min(3, d) + 1)
                    for ks in itertools.combinations(range(d), size)]
        for fn in _PRODUCT_UNARY:
            terms = list(products)
            for k in range(d):
                if fn not in allowed[k]:
                    continue
                others = [j for j in range(d) if j != k]
                for size in range(min(3, len(others)) + 1):
                    for ks in itertools.combinations(others, size):
                        terms.append(Term(tuple(sorted([(k, fn), *((j, "x") for j in ks)]))))
            if len(terms) > len(products):
                out.append((f"unary-monomial:{fn}", terms[:max_size]))
    return out


# ------------------------------------------------------------------ sparse solvers


def _lstsq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _supports(r: np.ndarray, bt: np.ndarray, max_terms: int,
              exhaustive: int = 0) -> set[tuple[int, ...]]:
    """Candidate supports from STLSQ over a threshold ladder, OMP and backward elimination
    (and every support of at most ``exhaustive`` terms).

    Works on the QR factors of the design: ``A = Q R`` with unit-norm columns and ``bt =
    Q^T b``, so every sub-problem ``min |A[:, S] xi - b|`` is the small ``min |R[:, S] xi -
    bt|`` (the part of ``b`` outside the span of ``A`` adds the same constant to all).
    """
    k_total = r.shape[1]
    norm_b = float(np.linalg.norm(bt)) or 1.0
    found: set[tuple[int, ...]] = set()
    support = np.arange(k_total)
    xi = _lstsq(r, bt)
    for lam in (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3):
        # thresholds increase, so each level starts from the previous support (warm start)
        for _ in range(10):
            keep = support[np.abs(xi) >= lam * norm_b]
            if keep.size == 0 or keep.size == support.size:
                break
            support = keep
            xi = _lstsq(r[:, support], bt)
        if keep.size == 0:
            break
        if support.size <= max_terms:
            found.add(tuple(int(s) for s in support))
    for s in sorted(found, key=len, reverse=True)[:2]:
        found |= _backward(r, bt, s)
    # orthogonal matching pursuit
    support_list: list[int] = []
    res = bt.copy()
    for _ in range(min(max_terms, k_total)):
        scores = np.abs(r.T @ res)
        scores[support_list] = -1
        support_list.append(int(np.argmax(scores)))
        xi = _lstsq(r[:, support_list], bt)
        res = bt - r[:, support_list] @ xi
        found.add(tuple(sorted(support_list)))
        if np.linalg.norm(res) <= 1e-13 * norm_b:
            break
    found |= _backward(r, bt, tuple(sorted(support_list)))
    for size in range(1, min(exhaustive, max_terms, k_total) + 1):
        found |= set(itertools.combinations(range(k_total), size))
    return found


def _backward(r: np.ndarray, bt: np.ndarray, support: tuple[int, ...]) -> set[tuple[int, ...]]:
    """Greedy backward elimination: every smaller support on the way down to one term."""
    out = set()
    current = list(support)
    while len(current) > 1:
        best, best_rss = None, math.inf
        for i in range(len(current)):
            trial = current[:i] + current[i + 1:]
            xi = _lstsq(r[:, trial], bt)
            rss = float(np.sum((bt - r[:, trial] @ xi) ** 2))
            if rss < best_rss:
                best, best_rss = trial, rss
        current = best
        out.add(tuple(sorted(current)))
    return out


def _design(terms: Sequence[Term], target: Target) -> np.ndarray:
    if target.kind == "values":
        cols = [target.project(t.values(target.z)) for t in terms]
    else:
        cols = [target.project(t.gradient(target.z, target.columns)).ravel() for t in terms]
    with np.errstate(all="ignore"):
        return np.stack(cols, axis=1)


def sparse_fits(theta: np.ndarray, y: np.ndarray, intercept: bool,
             max_terms: int, exhaustive: int = 0
             ) -> list[tuple[tuple[int, ...], np.ndarray, float, float]]:
    """Sparse fits of ``y ~ theta @ xi (+ c0)``: list of (support, xi, c0, relative error),
    from STLSQ over a ladder of thresholds, orthogonal matching pursuit and backward
    elimination (every support of at most ``exhaustive`` columns too); ``support`` indexes
    the columns of ``theta``."""
    good = np.all(np.isfinite(theta), axis=0)
    norms = np.linalg.norm(theta, axis=0)
    good &= norms > 1e-300
    idx = np.flatnonzero(good)
    if idx.size == 0:
        return []
    th = theta[:, idx]
    mean_t = th.mean(axis=0) if intercept else np.zeros(idx.size)
    mean_y = float(y.mean()) if intercept else 0.0
    a = th - mean_t
    b = y - mean_y
    scale = np.linalg.norm(a, axis=0)
    ok = scale > 1e-12 * (np.abs(mean_t) * math.sqrt(len(y)) + 1e-300)
    a, idx, mean_t, scale = a[:, ok], idx[ok], mean_t[ok], scale[ok]
    if idx.size == 0:
        return []
    a = a / scale
    norm_b = float(np.linalg.norm(b)) or 1.0
    q, r = np.linalg.qr(a)
    bt = q.T @ b
    outside = max(norm_b**2 - float(bt @ bt), 0.0)
    out = []
    for support in _supports(r, bt, max_terms, exhaustive):
        cols = list(support)
        xi = _lstsq(r[:, cols], bt)
        rss = float(np.sum((bt - r[:, cols] @ xi) ** 2)) + outside
        err = math.sqrt(rss) / norm_b
        coef = xi / scale[cols]
        c0 = mean_y - float(coef @ mean_t[cols]) if intercept else 0.0
        out.append((tuple(int(i) for i in idx[cols]), coef, c0, err))
    return out


def front(fits: list, max_keep: int) -> list:
    """Pareto front of ``(support, coefficients, constant, error)`` fits by (number of terms,
    error), at most ``max_keep`` entries."""
    fits = sorted(fits, key=lambda f: (len(f[0]), f[3]))
    front = []
    for f in fits:
        if not front or f[3] < front[-1][3] * 0.999:
            front.append(f)
    return front[:max_keep]


_CANONICAL = functools.cmp_to_key(sympy.Basic.compare)
"""The order sympy keeps the arguments of a sum or a product in."""


def exp_of(h: sympy.Expr) -> sympy.Expr:
    """``exp(h)`` as sympy evaluates it, built without its per-term assumption queries: of a
    sum only the numbers and the terms with a ``log`` (``exp(2 log x) = x**2``) can leave
    the exponential, the others stay in it as they are (sympy's own rule for a sum); the
    inverses of the transformed targets build one per candidate, hundreds per search."""
    if not isinstance(h, sympy.Add):
        return sympy.exp(h)
    out, kept, changed = [], [], False
    for a in h.args:
        if a.is_Mul and len(a.args) == 2 and a.args[0].is_Float \
                and isinstance(a.args[1], sympy.log):
            out.append(sympy.Pow(a.args[1].args[0], a.args[0]))  # exp(c log u) = u**c
        elif a.is_Number or a.has(sympy.log):
            e = sympy.exp(a)
            if isinstance(e, sympy.exp):
                kept.append(e.args[0])
                changed = changed or e.args[0] != a
            else:
                out.append(e)
        else:
            kept.append(a)
    if not kept:
        return sympy.Mul(*out)
    # the arguments kept, in the sum's order, are a sum already in sympy's order
    rest = sympy.Add(*kept) if changed else sympy.Add._from_args(kept)
    return product_of(out, sympy.exp(rest, evaluate=False))


def _one_float(numbers: Sequence[sympy.Expr]) -> bool:
    """Whether ``numbers`` are at most one nonzero float: the coefficient a sum or a product
    built in sympy's order (:func:`sum_of`, :func:`product_of`) puts first as it is."""
    return len(numbers) <= 1 and all(n.is_Float and not n.is_zero for n in numbers)


def product_of(out: Sequence[sympy.Expr], factor: sympy.Expr) -> sympy.Expr:
    """``Mul(*out, factor)`` for at most one number and powers of distinct symbols with
    float exponents in ``out``: sympy's product has these arguments, the number first and
    the others in sympy's order; built directly (the evaluation asks the factors'
    assumptions, milliseconds for an exponential of a long sum)."""
    numbers = [o for o in out if o.is_Number]
    powers = [o for o in out if not o.is_Number]
    bases = {p.base for p in powers if p.is_Pow and p.base.is_Symbol and p.exp.is_Float}
    if not _one_float(numbers) or len(bases) < len(powers) or factor.is_Number \
            or factor.is_Mul:
        return sympy.Mul(*out, factor)
    return sympy.Mul._from_args([*numbers, *sorted([*powers, factor], key=_CANONICAL)])


def power_of(h: sympy.Expr, p: sympy.Rational) -> sympy.Expr:
    """``h**p`` (``sqrt(h)``, ``1/h``); of a sum with symbols, left as the power it is
    (sympy evaluates such a power to itself, after assumption queries that cost
    milliseconds, tens of them with an ``exp`` of a long sum inside)."""
    if isinstance(h, sympy.Add) and h.free_symbols:
        return sympy.Pow(h, p, evaluate=False)
    return h**p


def root_of(h: sympy.Expr) -> sympy.Expr:
    """``sqrt(h)`` (:func:`power_of`)."""
    return power_of(h, sympy.S.Half)


def _odd(fn: type[sympy.Function]) -> Callable[[sympy.Expr], sympy.Expr]:
    """An odd function of a sum with symbols as sympy evaluates it (the minus sign taken
    out, ``asin(-h) = -asin(h)``) without its assumption queries."""
    def of(h: sympy.Expr) -> sympy.Expr:
        if not (isinstance(h, sympy.Add) and h.free_symbols):
            return fn(h)
        if h.could_extract_minus_sign():
            return -fn(-h, evaluate=False)
        return fn(h, evaluate=False)
    return of


asin_of, atan_of = _odd(sympy.asin), _odd(sympy.atan)


TRANSFORMS: dict[str, tuple[Callable, Callable, str]] = {  # the transformed targets
    # name: (forward on y, inverse on a sympy h with the sign s, condition)
    "identity": (lambda y: y, lambda h, s: h, "any"),
    "square": (lambda y: y * y, lambda h, s: s * root_of(h), "signed"),
    "inverse": (lambda y: 1 / y, lambda h, s: 1 / h, "nonzero"),
    "inverse-square": (lambda y: 1 / (y * y), lambda h, s: s / root_of(h), "signed"),
    # log only needs one strict sign: a Gaussian tail comes within 1e-8 of 0 and its log
    # is still exact (and the candidate is refit on y itself)
    "log": (lambda y: np.log(np.abs(y)), lambda h, s: s * exp_of(h), "one-sign"),
    "sqrt": (lambda y: np.sqrt(y), lambda h, s: h**2, "positive"),
}

UNIT_TRANSFORMS: dict[str, tuple[Callable, Callable, str]] = {
    # for values that are pure numbers (options.dimensionless), where 1 is not an arbitrary
    # offset: occupation numbers 1/(exp(h) -+ 1), charging curves 1 - exp(h), a Lorentz
    # factor less one 1/sqrt(h) - 1, and angles whose sine or tangent is a simple law
    "log-one-minus": (lambda y: np.log(1 - y), lambda h, s: 1 - exp_of(h), "below-one"),
    "log-one-plus": (lambda y: np.log(1 + y), lambda h, s: exp_of(h) - 1,
                     "above-minus-one"),
    "log-inverse-minus-one": (lambda y: np.log(1 / y - 1),
                              lambda h, s: power_of(1 + exp_of(h), -sympy.S.One),
                              "unit-interval"),
    "log-inverse-plus-one": (lambda y: np.log(1 / y + 1),
                             lambda h, s: power_of(exp_of(h) - 1, -sympy.S.One),
                             "above-zero"),
    "inverse-square-one-plus": (lambda y: 1 / (1 + y) ** 2, lambda h, s: 1 / root_of(h) - 1,
                                "above-minus-one"),
    "sin": (np.sin, lambda h, s: asin_of(h), "half-turn"),
    "tan": (np.tan, lambda h, s: atan_of(h), "half-turn"),
}
"""Transforms of pure-number values with a unit offset (:func:`regression_candidates`
``unit_offsets``): ``name: (forward, inverse, domain)`` as in :data:`TRANSFORMS`, the
domain an open interval of ``y`` (``"half-turn"``: ``|y| < pi/2``, where ``asin`` and
``atan`` invert ``sin`` and ``tan``). Noisy samples near its ends leave it, or come so
close that the transform magnifies their noise without bound: :func:`unit_transformed`
fits on the rows away from the ends."""


_UNIT_LIBRARIES = ("poly1", "poly2", "unary", "laurent")
"""The libraries :data:`UNIT_TRANSFORMS` are fitted with: ``log(1/y + 1)`` of an occupation
number is linear (in ``En/(kb*T)`` and ``mu/(kb*T)``; a Laurent polynomial in ``mu/En`` and
``kb*T/En``), ``(1 + y)**-2`` of a Lorentz factor less one quadratic, ``log(1 - y)`` of
``1 - r**(1 - gam)`` the product ``(1 - gam) log r``."""

_BOUNDS = {"below-one": (-math.inf, 1.0), "above-minus-one": (-1.0, math.inf),
           "unit-interval": (0.0, 1.0), "above-zero": (0.0, math.inf),
           "half-turn": (-math.pi / 2, math.pi / 2)}

UNIT_MARGIN = (3.0, 3.0)
"""Noise standard deviations from the ends of a unit transform's domain: every sample must
lie within the domain widened by the first (it is there, but for its noise), and the fit
uses those at least the second inside (the transform magnifies their noise by at most
about a third of their distance)."""

MIN_UNIT_ROWS = 0.5
"""The part of the samples a unit transform must keep to be fitted."""


def transform_ok(y: np.ndarray, condition: str) -> bool:
    """Whether ``y`` meets a transform's condition (:data:`TRANSFORMS`): ``"any"``,
    ``"positive"``, ``"one-sign"``, ``"nonzero"`` or ``"signed"`` (nonzero and one sign)."""
    span = float(np.max(np.abs(y)))
    if condition == "any":
        return True
    if span == 0:
        return False
    if condition == "positive":
        return bool(np.min(y) > 1e-6 * span)
    if condition == "one-sign":
        return bool(np.all(y > 0) or np.all(y < 0))
    small = bool(np.min(np.abs(y)) > 1e-6 * span)
    if condition == "nonzero":
        return small
    return small and bool(np.all(y > 0) or np.all(y < 0))


def transformed(y: np.ndarray, names: Sequence[str]) -> Iterator[tuple[str, np.ndarray,
                                                                       Callable]]:
    """``(name, transformed y, inverse)`` for each of :data:`TRANSFORMS` ``names`` whose
    condition ``y`` meets and whose values stay finite (``inverse(h, sign)`` maps a law
    ``h`` of the transformed values back)."""
    for name in names:
        forward, inverse, condition = TRANSFORMS[name]
        if not transform_ok(y, condition):
            continue
        with np.errstate(all="ignore"):
            ty = forward(y)
        if np.all(np.isfinite(ty)):
            yield name, ty, inverse


def unit_transformed(y: np.ndarray, sigma: float = 0.0) -> Iterator[
        tuple[str, np.ndarray, Callable, np.ndarray]]:
    """``(name, transformed y on the rows kept, inverse, rows kept)`` for each of
    :data:`UNIT_TRANSFORMS` whose domain holds every sample up to ``sigma`` (the noise's
    standard deviation; :data:`UNIT_MARGIN`), fitted on the samples well inside it (at
    least :data:`MIN_UNIT_ROWS` of them)."""
    admit, inside = (m * sigma for m in UNIT_MARGIN)
    for name, (forward, inverse, domain) in UNIT_TRANSFORMS.items():
        low, high = _BOUNDS[domain]
        if not (np.all(y > low - admit) and np.all(y < high + admit)):
            continue
        rows = (y > low + inside) & (y < high - inside)
        if rows.mean() < MIN_UNIT_ROWS:
            continue
        with np.errstate(all="ignore"):
            ty = forward(y[rows])
        if np.all(np.isfinite(ty)):
            yield name, ty, inverse, rows


def regression_candidates(target: Target, library: Sequence[str] | None = None,
                          transforms: bool = False, max_terms: int = 8,
                          max_keep: int = 6, deadline: Deadline | None = None,
                          log_near_zero: bool = False, unit_offsets: bool = False,
                          noise: float = 0.0) -> list[Candidate]:
    """Sparse-regression candidates for a target, from every library (and transform).

    Parameters
    ----------
    target : Target
        Values or gradients on samples (see :class:`pikan.laws.candidates.Target`).
    library : sequence of str, optional
        Allowed primitive names (default: the whole symbolic library).
    transforms : bool
        For value targets, also regress transformed values (see the module docstring).
    max_terms : int
        Largest support considered.
    max_keep : int
        Candidates kept per (library, transform): the Pareto front of (terms, error).
    deadline : Deadline, optional
        Checked between (library, transform) pairs: the candidates found so far are
        returned once it has passed (the first library always runs).
    log_near_zero : bool
        See :func:`libraries`.
    unit_offsets : bool
        With ``transforms``, also :data:`UNIT_TRANSFORMS` (values that are pure numbers),
        with the libraries of :data:`_UNIT_LIBRARIES` (:func:`unit_transformed`).
    noise : float
        The values' noise relative to their spread (a tolerance), for the rows the unit
        transforms are fitted on.

    The search ends after a (library, transform) pair with a fit within
    :data:`~pikan.laws.generators.base.EXACT`.

    Returns
    -------
    list of Candidate
        Expressions with Float coefficients; ``error`` is relative, in the regressed
        (possibly transformed) space.
    """
    deadline = as_deadline(deadline)
    symbols = [sympy.Symbol(n) for n in target.names]
    y = target.flat()
    out: list[Candidate] = []
    libs = libraries(target.z, library, log_near_zero=log_near_zero)
    names = ["identity"] if (target.kind != "values" or not transforms) else list(TRANSFORMS)
    spaces = [(*t, None) for t in transformed(y, names)]
    if len(names) > 1 and unit_offsets:
        spaces += list(unit_transformed(y, noise * float(np.std(y))))
    sign = 1 if np.all(y >= 0) else -1
    small = {"poly1", "poly2", "laurent", "laurent-log", "unary"}
    if target.z.shape[1] <= 2:  # a few terms each: 1/y**2 of a resonance is a quartic
        small |= {"poly3", "poly4"}
    designs: dict[str, np.ndarray] = {}
    term_exprs: dict[Term, sympy.Expr] = {}  # built once: hundreds of candidates share them
    for tname, ty, inverse, rows in spaces:
        for lname, terms in libs:
            if tname != "identity" and lname not in small:
                continue
            if tname in UNIT_TRANSFORMS and lname not in _UNIT_LIBRARIES:
                continue
            if lname == "laurent-log" and tname != "log":
                continue  # its log terms are for log y only (see the module docstring)
            if out and deadline.expired():  # the first library always runs: a law to return
                return out
            if lname not in designs:
                designs[lname] = _design(terms, target)
            theta = designs[lname] if rows is None else designs[lname][rows]
            fits = sparse_fits(theta, ty, target.kind == "values", max_terms,
                            _EXHAUSTIVE_SIZE if lname == "inverse-powers" else 0)
            kept = front(fits, max_keep)
            for support, coef, c0, err in kept:
                parts = [scaled(float(c), _term_expr(terms[i], symbols, term_exprs))
                         for i, c in zip(support, coef)]
                if target.kind == "values" and c0 != 0:
                    parts.append(sympy.Float(c0))
                h = sum_of(parts)
                expr = inverse(h, sign)
                out.append(Candidate(expr, err, f"regression:{lname}:{tname}"))
            if any(f[3] <= EXACT for f in kept):
                return out  # a law to rounding: the other libraries would only add series
    return out


def scaled(c: float, term: sympy.Expr) -> sympy.Expr:
    """``Float(c) * term`` for a term with no number in it (a symbol, a power, a function, a
    product of them): the product's arguments are the term's, the number first, as sympy
    orders them; built directly, as evaluating it costs a tenth of a millisecond and sparse
    regression builds thousands."""
    if c != 0 and math.isfinite(c):
        if term.is_Mul and not term.args[0].is_Number:
            return sympy.Mul._from_args((sympy.Float(c), *term.args))
        if term.is_Symbol or term.is_Pow or term.is_Function:
            return sympy.Mul._from_args((sympy.Float(c), term))
    return sympy.Float(c) * term


def sum_of(parts: Sequence[sympy.Expr]) -> sympy.Expr:
    """``Add(*parts)`` for products of a number and distinct terms (:func:`scaled`) and at
    most one number: sympy's sum of them has these arguments, the number first and the
    others in sympy's order; built directly (evaluating it costs most of a millisecond)."""
    numbers = [p for p in parts if p.is_Number]
    products = [p for p in parts if not p.is_Number]
    rests = [p.args[1:] if p.is_Mul and p.args[0].is_Float else None for p in products]
    if not _one_float(numbers) or None in rests or len(set(rests)) < len(rests):
        return sympy.Add(*parts)
    return sympy.Add._from_args([*numbers, *sorted(products, key=_CANONICAL)])


def _term_expr(term: Term, symbols: Sequence[sympy.Symbol],
               cache: dict[Term, sympy.Expr]) -> sympy.Expr:
    if term not in cache:
        cache[term] = term.expr(symbols)
    return cache[term]


def max_terms_for(d: int) -> int:
    """Largest sparse support for ``d`` inputs on static data: 8, and more from 6 inputs up
    (a squared distance in 3-D, ``(x2 - x1)**2 + ...``, expands to 9 terms of 6 inputs)."""
    return max(8, (3 * d + 1) // 2)


@dataclass(frozen=True)
class SparseRegression(Generator):
    """Sparse regression over the term libraries (:func:`regression_candidates`).

    Attributes
    ----------
    transforms : bool
        Also regress transformed values (static data).
    max_terms : int or None
        Largest support; None: :func:`max_terms_for` the target's number of inputs.
    max_keep : int
        Candidates kept per (library, transform).
    log_near_zero : bool
        Allow ``log`` of positive inputs that come within 1e-3 of 0 (static data).
    """

    transforms: bool = False
    max_terms: int | None = 8
    max_keep: int = 6
    log_near_zero: bool = False
    name = "regression"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        max_terms = self.max_terms
        if max_terms is None:
            max_terms = max_terms_for(target.z.shape[1])
        return regression_candidates(target, options.library, transforms=self.transforms,
                                     max_terms=max_terms, max_keep=self.max_keep,
                                     deadline=options.deadline,
                                     log_near_zero=self.log_near_zero,
                                     unit_offsets=options.dimensionless,
                                     noise=options.tolerance)
