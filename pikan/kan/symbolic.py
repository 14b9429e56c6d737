"""The symbolic function library of a KAN and per-edge affine fits.

A symbolic edge computes :math:`y = a\\,f(b x + c) + d` for a primitive :math:`f` from
:data:`LIBRARY`. This module holds the primitives as named records (torch function, sympy
function, complexity, domain) and fits the four affine parameters of every primitive to
samples ``(x, y)`` of a learned edge activation, the first step of law extraction.

Domains
-------
A primitive's *domain* is the set where it and its torch gradient are finite: the open
interval ``domain`` minus the points in ``excluded``. So ``1/x`` has ``domain = (-inf, inf)``
and ``excluded = (0.0,)``, i.e. :math:`\\mathbb{R} \\setminus \\{0\\}`; ``sqrt`` and ``log``
have ``(0, inf)``; ``tan`` has :math:`(-\\pi/2, \\pi/2)` (its principal branch). Edges that do
not use a primitive are evaluated at its ``safe_value`` instead (:func:`safe_apply`), so
``torch.where`` never sees inf or NaN, not even in gradients.

Selection criterion (:func:`rank_fits`)
---------------------------------------
With :math:`L_i = 1 - R^2_i` and :math:`L^* = \\min_i L_i`, a fit is *acceptable* when
:math:`L_i \\le \\mathrm{factor}\\,L^* + \\mathrm{floor}` (defaults 2 and 1e-10). Acceptable fits
come first, simplest first (ties: lower :math:`\\max(L_i, \\mathrm{floor})`, then library order);
the rest follow by increasing :math:`L_i`. So the chosen function is the simplest one that
explains the data about as well as the best one. Families that are equal up to the affine
parameters (``sin``/``cos``, ``tanh``/``sigmoid``) tie exactly on exact data (library order
decides) and arbitrarily on noisy data.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import scipy.optimize
import scipy.special
import sympy
import torch

from pikan.errors import DataError, SpecError

__all__ = [
    "LIBRARY",
    "EdgeFit",
    "Primitive",
    "fit_affine",
    "fit_edge",
    "get",
    "index",
    "names",
    "rank_fits",
    "safe_apply",
]

_INF = math.inf
_PI = math.pi


@dataclass(frozen=True)
class Primitive:
    """One symbolic function an edge can use.

    Attributes
    ----------
    name : str
        Library key, e.g. ``"x^2"``, ``"sin"``, ``"1/x"``.
    torch_fn : callable
        Elementwise ``Tensor -> Tensor``; torch.func friendly (no in-place, no ``.item()``).
    sympy_fn : callable
        ``sympy.Expr -> sympy.Expr``, the same function, e.g. ``lambda u: u**2``.
    complexity : int
        Cost of using the function in a law: ``"0"`` is 0, ``"x"`` is 1, the rest larger.
    domain : (float, float)
        Open interval where the function and its gradient are finite (before ``excluded``).
    safe_value : float
        An argument inside the domain, used for edges that do not use this function.
    excluded : tuple of float
        Points removed from ``domain`` (poles such as 0 for ``1/x``).
    numpy_fn : callable, optional
        The same function on float64 numpy arrays, used by the fits for speed (many small
        evaluations, where torch's per-call and threading overhead dominates). When None,
        ``torch_fn`` is used. Tests check it agrees with ``torch_fn``.
    """

    name: str
    torch_fn: Callable[[torch.Tensor], torch.Tensor]
    sympy_fn: Callable[[sympy.Expr], sympy.Expr]
    complexity: int
    domain: tuple[float, float] = (-_INF, _INF)
    safe_value: float = 1.0
    excluded: tuple[float, ...] = ()
    numpy_fn: Callable[[np.ndarray], np.ndarray] | None = None

    def in_domain(self, z):
        """Elementwise membership of ``z`` (tensor, array or float) in the domain (bool)."""
        lo, hi = self.domain
        inside = (z > lo) & (z < hi)
        for point in self.excluded:
            inside = inside & (z != point)
        return inside


def _op(name: str, fn: Callable, complexity: int, **domain) -> Primitive:
    """A primitive built from arithmetic only: ``fn`` works on tensors, arrays and sympy alike."""
    return Primitive(name, fn, fn, complexity, numpy_fn=fn, **domain)


def _fn(name, torch_fn, sympy_fn, numpy_fn, complexity, **domain) -> Primitive:
    return Primitive(name, torch_fn, sympy_fn, complexity, numpy_fn=numpy_fn, **domain)


_POLE = {"excluded": (0.0,)}
_POSITIVE = {"domain": (0.0, _INF)}

# fmt: off
_TABLE = [
    _fn("0", torch.zeros_like, lambda u: sympy.Integer(0), np.zeros_like, 0),
    _op("x", lambda v: v, 1),
    _op("x^2", lambda v: v**2, 2),
    _op("x^3", lambda v: v**3, 3),
    _op("x^4", lambda v: v**4, 4),
    _op("x^5", lambda v: v**5, 5),
    _op("1/x", lambda v: 1 / v, 2, **_POLE),
    _op("1/x^2", lambda v: v**-2, 3, **_POLE),
    _op("1/x^3", lambda v: v**-3, 4, **_POLE),
    _fn("sqrt", torch.sqrt, sympy.sqrt, np.sqrt, 2, **_POSITIVE),
    _fn("1/sqrt", torch.rsqrt, lambda u: 1 / sympy.sqrt(u), lambda z: 1 / np.sqrt(z), 3,
        **_POSITIVE),
    _fn("exp", torch.exp, sympy.exp, np.exp, 2),
    _fn("log", torch.log, sympy.log, np.log, 2, **_POSITIVE),
    _fn("sin", torch.sin, sympy.sin, np.sin, 3),
    _fn("cos", torch.cos, sympy.cos, np.cos, 3),
    _fn("tan", torch.tan, sympy.tan, np.tan, 4, domain=(-_PI / 2, _PI / 2), safe_value=0.0),
    _fn("tanh", torch.tanh, sympy.tanh, np.tanh, 3),
    _fn("sigmoid", torch.sigmoid, lambda u: 1 / (1 + sympy.exp(-u)), scipy.special.expit, 3),
    _fn("gaussian", lambda z: torch.exp(-z * z), lambda u: sympy.exp(-u * u),
        lambda z: np.exp(-z * z), 3),
    _fn("abs", torch.abs, sympy.Abs, np.abs, 3),
    _fn("arcsin", torch.arcsin, sympy.asin, np.arcsin, 4, domain=(-1.0, 1.0), safe_value=0.0),
    _fn("arctan", torch.arctan, sympy.atan, np.arctan, 4),
]
# fmt: on


LIBRARY: Mapping[str, Primitive] = MappingProxyType({p.name: p for p in _TABLE})
"""All primitives, in a fixed order: a layer stores a primitive as its position in :func:`names`."""

_NAMES = tuple(LIBRARY)
_INDEX = {name: i for i, name in enumerate(_NAMES)}


def names() -> list[str]:
    """Names of all primitives in library order."""
    return list(_NAMES)


def get(name: str) -> Primitive:
    """The primitive called ``name``; an unknown name raises :class:`SpecError` with suggestions."""
    try:
        return LIBRARY[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), _NAMES, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(map(repr, close))}?" if close else "no close match."
        raise SpecError(
            f"unknown symbolic function {name!r}: {hint} Expected one of: {', '.join(_NAMES)}"
        ) from None


def index(name: str) -> int:
    """Position of ``name`` in :func:`names` (raises :class:`SpecError` when unknown)."""
    get(name)
    return _INDEX[name]


def safe_apply(
    primitive: Primitive | str, z: torch.Tensor, active_mask: torch.Tensor, fill: float = 0.0
) -> torch.Tensor:
    """Evaluate a primitive only where it is used, keeping values and gradients finite elsewhere.

    Parameters
    ----------
    primitive : Primitive or str
    z : Tensor, any shape
        Arguments ``b*x + c``.
    active_mask : bool Tensor, broadcastable to ``z``
        True where the primitive is used.

    Returns
    -------
    Tensor, shape of ``z`` broadcast with ``active_mask``
        ``torch_fn(z)`` exactly where active (inf/NaN if an active ``z`` lies outside the
        domain: that is visible, not hidden), ``fill`` elsewhere with a zero gradient. The
        inner ``where`` swaps inactive arguments for ``safe_value`` so the backward pass of
        ``torch_fn`` never meets a pole (the double-``where`` rule).
    """
    prim = get(primitive) if isinstance(primitive, str) else primitive
    safe_z = torch.where(active_mask, z, torch.full_like(z, prim.safe_value))
    return torch.where(active_mask, prim.torch_fn(safe_z), torch.full_like(safe_z, fill))


def _evaluate(prim: Primitive, z: np.ndarray) -> np.ndarray:
    """``prim`` on a float64 numpy array: ``numpy_fn`` when there is one, else ``torch_fn``."""
    if prim.numpy_fn is not None:
        return np.asarray(prim.numpy_fn(np.asarray(z, dtype=np.float64)), dtype=np.float64)
    z = np.array(z, dtype=np.float64, copy=True, order="C")
    with torch.no_grad():
        return prim.torch_fn(torch.from_numpy(z)).numpy()


def _num(v: float) -> sympy.Expr:
    """A float as a sympy number; exact integers (0, 1, 2, ...) become Integers."""
    v = float(v)
    if v.is_integer() and abs(v) < 2**53:
        return sympy.Integer(int(v))
    return sympy.Float(v)


@dataclass(frozen=True)
class EdgeFit:
    """A fitted symbolic edge :math:`y \\approx a\\,f(b x + c) + d` and its quality.

    ``r2`` is the (weighted) coefficient of determination and ``rmse`` the (weighted) root
    mean square residual on the fitted samples. A candidate that could not be fitted has NaN
    parameters, ``r2 = -inf`` and ``rmse = inf``.
    """

    name: str
    a: float
    b: float
    c: float
    d: float
    r2: float
    rmse: float
    complexity: int

    @property
    def primitive(self) -> Primitive:
        return get(self.name)

    @property
    def ok(self) -> bool:
        """Whether the fit succeeded (finite parameters and R^2)."""
        return math.isfinite(self.r2) and all(map(math.isfinite, (self.a, self.b, self.c, self.d)))

    def expr(self, x: sympy.Expr | str = "x") -> sympy.Expr:
        """``a*f(b*x + c) + d`` as sympy; ``x`` may be a name, a Symbol or any expression.

        Exact zeros and ones drop out; ``"x"`` gives the linear function ``a*b*x + (a*c + d)``
        and ``"0"`` the constant ``d``. A failed fit gives ``sympy.nan``.
        """
        x = sympy.Symbol(x) if isinstance(x, str) else sympy.sympify(x)
        if not self.ok:
            return sympy.nan
        if self.name == "0":
            return _num(self.d)
        if self.name == "x":
            return _num(self.a * self.b) * x + _num(self.a * self.c + self.d)
        inner = _num(self.b) * x + _num(self.c)
        return _num(self.a) * self.primitive.sympy_fn(inner) + _num(self.d)

    def __call__(self, x) -> np.ndarray:
        """Evaluate the fit on samples ``x`` (array-like, any shape); same shape, float64."""
        x = np.asarray(x, dtype=np.float64)
        if self.name == "0":
            return np.full_like(x, self.d)
        return self.a * _evaluate(self.primitive, self.b * x + self.c) + self.d


# ---------------------------------------------------------------------------------------------
# Fitting. Internally the argument is written in "image coordinates": z = m + w*u with
# u = (x - x_mid) / half_span in [-1, 1], so the samples map onto [m - |w|, m + |w|]; domain
# constraints become bounds on m, w or on the image ends m -+ w. (a, d) are always solved by
# weighted linear least squares (variable projection), so only m and/or w are searched.


@dataclass(frozen=True)
class _Rule:
    """How to search a primitive's affine parameters without redundant directions.

    kind: "zero" (a = 0), "linear" (b = 1, c = 0), "quadratic" (closed form, b = 1),
      "shift" (b fixed in ``signs``, search c: f(b z) = g(b) f(z) + h(b) absorbs b into a, d),
      "scale" (c = 0, search b: f(z + c) = e^c f(z) absorbs c into a), "general" (search b, c).
    symmetry ("general"): how f(-z) relates to f(z), which fixes b > 0: "odd", "even",
      "logistic" (f(-z) = 1 - f(z)) or "none" (both signs of b are searched).
    period ("general"): period of f, or 0; the phase c is then reduced and a made positive.
    """

    kind: str
    signs: tuple[int, ...] = (1,)
    symmetry: str = "none"
    period: float = 0.0


_RULES: dict[str, _Rule] = {
    "0": _Rule("zero"),
    "x": _Rule("linear"),
    "x^2": _Rule("quadratic"),
    **{n: _Rule("shift") for n in ("x^3", "x^4", "x^5", "1/x", "1/x^2", "1/x^3", "abs")},
    **{n: _Rule("shift", signs=(1, -1)) for n in ("sqrt", "1/sqrt", "log")},
    "exp": _Rule("scale"),
    "sin": _Rule("general", symmetry="odd", period=2 * _PI),
    "cos": _Rule("general", symmetry="even", period=2 * _PI),
    **{n: _Rule("general", symmetry="odd") for n in ("tan", "tanh", "arcsin", "arctan")},
    "sigmoid": _Rule("general", symmetry="logistic"),
    "gaussian": _Rule("general", symmetry="even"),
}

_MIN_SAMPLES = 4
_GRID_SAMPLES = 1000  # grid search on at most this many samples (seeded subset); refinement on all
_MAX_SCALE_W = 300.0  # |b * x| range bound for "scale" (exp) so exp never overflows
_TOL = 1e-12  # least_squares ftol, xtol and gtol
_MAX_NFEV = 50
_Y_RANGE = (1e-3, 1e3)
"""Spreads of ``y`` (weighted standard deviation) refined as they are. Outside, the residuals
are divided by the spread rounded to a power of ten: ``gtol`` is absolute, and on
``y = 1e-6 cos(1000 x)`` the gradient (of size ``y**2``) started below it, so the refinement
stopped at its grid point (``b = 1083``, R² 0.99997) and a Gaussian was ranked first; inside
this range fits are unchanged."""


@dataclass(frozen=True)
class _Samples:
    """Finite samples with normalized weights (sum 1) and the affine map x -> u in [-1, 1]."""

    x: np.ndarray
    y: np.ndarray
    w: np.ndarray
    u: np.ndarray
    x_mid: float
    half: float
    y_bar: float
    y_c: np.ndarray  # y - y_bar
    s_yy: float  # weighted variance of y (floored at roundoff)
    x_abs_max: float
    y_abs_max: float

    @staticmethod
    def build(x: np.ndarray, y: np.ndarray, w: np.ndarray, x_mid: float, half: float) -> _Samples:
        w = w / w.sum()
        y_bar = float(w @ y)
        y_c = y - y_bar
        roundoff = (1e-12) ** 2 * float(w @ (y * y)) + 1e-300  # y spread below this is noise
        s_yy = max(float(w @ (y_c * y_c)), roundoff)
        u = (x - x_mid) / half if half > 0 else np.zeros_like(x)
        x_abs, y_abs = float(np.abs(x).max()), float(np.abs(y).max())
        return _Samples(x, y, w, u, x_mid, half, y_bar, y_c, s_yy, x_abs, y_abs)

    def subset(self, idx: np.ndarray) -> _Samples:
        return _Samples.build(self.x[idx], self.y[idx], self.w[idx], self.x_mid, self.half)


def _as_1d(value, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(
            f"fit_edge: {what} must be 1-D samples, got shape {arr.shape}; hint: ravel it"
        )
    return arr


def _prepare(x, y, weights) -> _Samples:
    x, y = _as_1d(x, "x"), _as_1d(y, "y")
    if x.shape != y.shape:
        raise DataError(
            f"fit_edge: x has {x.size} samples but y has {y.size}; expected equal lengths"
        )
    w = np.ones_like(x) if weights is None else _as_1d(weights, "weights")
    if w.shape != x.shape:
        raise DataError(
            f"fit_edge: weights has {w.size} entries, expected {x.size} (one per sample)"
        )
    if np.any(w < 0):
        raise DataError("fit_edge: weights must be >= 0; hint: use 0 to ignore a sample")
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(w) & (w > 0)
    if keep.sum() < _MIN_SAMPLES:
        raise DataError(
            f"fit_edge: x and y have {int(keep.sum())} finite sample pairs with positive weight; "
            f"expected at least {_MIN_SAMPLES} to fit 4 parameters"
        )
    x, y, w = x[keep], y[keep], w[keep]
    lo, hi = float(x.min()), float(x.max())
    return _Samples.build(x, y, w, 0.5 * (lo + hi), 0.5 * (hi - lo))


def _solve_ad(f: np.ndarray, s: _Samples) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares of y on [f, 1] along the last axis of f, shape (n,) or (G, n).

    Returns a, d and the normalized residual sum of squares (inf where anything is non-finite).
    For a 2-D ``f`` (the grid) the RSS comes from the normal equations, which is cheaper and
    accurate enough to rank grid points; for 1-D it is summed from the residuals.
    """
    f_bar = f @ s.w
    f_c = f - np.expand_dims(f_bar, -1)
    s_ff = (f_c * f_c) @ s.w
    s_fy = f_c @ (s.w * s.y_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(s_ff > 1e-24 * (f_bar**2 + s_ff), s_fy / s_ff, 0.0)
    d = s.y_bar - a * f_bar
    if f.ndim == 2:
        rss = np.maximum(float(s.w @ (s.y_c * s.y_c)) - a * s_fy, 0.0)
    else:
        r = s.y_c - a * f_c
        rss = (r * r) @ s.w
    bad = ~(np.isfinite(rss) & np.isfinite(a) & np.isfinite(d))
    return a, d, np.where(bad, np.inf, rss)


def _components(prim: Primitive) -> list[tuple[float, float]]:
    """The open intervals that make up the domain (``domain`` cut at ``excluded``)."""
    lo, hi = prim.domain
    cuts = sorted(p for p in prim.excluded if lo < p < hi)
    edges = [lo, *cuts, hi]
    return list(itertools.pairwise(edges))


def _inset(bound: float, scale: float) -> float:
    """A margin that keeps a finite bound of an open interval strictly outside the search."""
    return 1e-9 * max(scale, abs(bound)) if math.isfinite(bound) else 0.0


@dataclass(frozen=True)
class _Start:
    """A grid point (m, w) and the interval the image must stay in when it is refined."""

    m: float
    w: float
    lo: float
    hi: float


def _grid(prim: Primitive, rule: _Rule, s: _Samples) -> list[_Start]:
    """Coarse starting points (m, w) whose image [m-|w|, m+|w|] lies inside the domain."""
    h = s.half
    starts: list[_Start] = []
    if rule.kind == "scale":
        lo, hi = prim.domain
        for w in np.concatenate([np.geomspace(1e-2, 30, 20), -np.geomspace(1e-2, 30, 20)]):
            starts.append(_Start(0.0, float(w), lo, hi))
        return starts
    for lo, hi in _components(prim):
        if rule.kind == "shift":
            gaps = 2 * h * np.geomspace(1e-3, 1e3, 25)
            if math.isfinite(lo) and not math.isfinite(hi):
                ms = lo + h + gaps
            elif math.isfinite(hi) and not math.isfinite(lo):
                ms = hi - h - gaps
            elif not math.isfinite(lo):
                far = h * (1 + np.geomspace(1e-2, 1e2, 12))
                ms = np.concatenate([h * np.linspace(-1, 1, 21), far, -far])
            else:
                ms = np.linspace(lo + h, hi - h, 21)[1:-1] if hi - lo > 2 * h else np.array([])
            starts += [_Start(float(m), float(sign * h), lo, hi) for m in ms for sign in rule.signs]
            continue
        # "general": z-image [m - w, m + w] with w > 0 unless the function has no symmetry
        if math.isfinite(lo) and math.isfinite(hi):
            t = np.sort(
                np.concatenate([np.linspace(0.02, 0.98, 17), [1e-3, 5e-3, 1 - 5e-3, 1 - 1e-3]])
            )
            z = lo + (hi - lo) * t
            zl, zh = np.meshgrid(z, z, indexing="ij")
            pick = zl < zh
            pairs = [(0.5 * (a + b), 0.5 * (b - a)) for a, b in zip(zl[pick], zh[pick])]
        elif rule.period > 0:
            p = rule.period / (2 * _PI)
            # half-widths up to 10 rad: about 3 periods across the samples
            ws = p * np.concatenate([[0.05, 0.1, 0.2], np.arange(0.3, 10.0, 0.25)])
            ms = np.linspace(0, rule.period, 12, endpoint=False)
            pairs = [(m, w) for w in ws for m in ms]
        else:
            pairs = [
                (m, w) for w in np.geomspace(0.02, 20, 16) for m in np.linspace(-(w + 3), w + 3, 13)
            ]
        if rule.symmetry == "none":
            pairs += [(m, -w) for m, w in pairs]
        starts += [_Start(float(m), float(w), lo, hi) for m, w in pairs]
    return starts


def _image_to_bc(m: float, w: float, s: _Samples) -> tuple[float, float]:
    b = w / s.half
    return b, m - b * s.x_mid


def _refine(prim: Primitive, rule: _Rule, s: _Samples, start: _Start) -> tuple[float, float, float]:
    """Local least squares from a grid point over the free image parameters; returns (m, w, rss)."""
    lo, hi = start.lo, start.hi
    if rule.kind == "shift":
        width = abs(start.w)
        bounds = (lo + width + _inset(lo, s.half), hi - width - _inset(hi, s.half))
        x0 = [start.m]
        to_mw = lambda th: (th[0], start.w)
    elif rule.kind == "scale":
        bounds = (-_MAX_SCALE_W, _MAX_SCALE_W)
        x0 = [start.w]
        to_mw = lambda th: (0.0, th[0])
    else:
        bounds = (lo + _inset(lo, 1.0), hi - _inset(hi, 1.0))
        x0 = [start.m - start.w, start.m + start.w]
        to_mw = lambda th: (0.5 * (th[0] + th[1]), 0.5 * (th[1] - th[0]))
    x0 = np.clip(x0, *bounds)
    spread = math.sqrt(s.s_yy)
    unit = 1.0 if _Y_RANGE[0] <= spread <= _Y_RANGE[1] else 10.0 ** round(math.log10(spread))
    sqrt_w = np.sqrt(s.w) / unit
    fallback = 10.0 * sqrt_w * (np.abs(s.y_c) + spread)

    def residual(theta: np.ndarray) -> np.ndarray:
        m, w = to_mw(theta)
        with np.errstate(all="ignore"):
            f = _evaluate(prim, m + w * s.u)
            a, d, rss = _solve_ad(f, s)
            r = sqrt_w * (s.y - a * f - d)
        return r if np.isfinite(rss) and np.all(np.isfinite(r)) else fallback

    lb, ub = bounds
    if not lb < ub:
        return start.m, start.w, math.inf
    sol = scipy.optimize.least_squares(
        residual,
        x0,
        bounds=(lb, ub),
        x_scale="jac",
        ftol=_TOL,
        xtol=_TOL,
        gtol=_TOL,
        max_nfev=_MAX_NFEV,
    )
    m, w = to_mw(sol.x)
    return float(m), float(w), float(sol.fun @ sol.fun) * unit**2


def _canonical_bc(rule: _Rule, b: float, c: float) -> tuple[float, float]:
    """Use the function's symmetry to make b > 0 and reduce a periodic phase to (-P/2, P/2]."""
    if rule.kind == "general" and b < 0 and rule.symmetry != "none":
        b, c = -b, -c
    if rule.period > 0:
        c = c - rule.period * math.floor(c / rule.period + 0.5)
    return b, c


def _round(v: float) -> float:
    """``v`` to 12 significant digits: 0.49999999999999994 -> 0.5, far below any fit error."""
    return float(f"{v:.12g}") if math.isfinite(v) else v


def _finish(
    prim: Primitive, rule: _Rule, s: _Samples, b: float, c: float, flip: bool = True
) -> EdgeFit:
    """Solve (a, d) for the final (b, c) on all samples and measure the fit.

    Parameters are rounded to 12 significant digits and offsets at rounding level
    (``|c| <= 1e-12 |b| max|x|``, ``|d| <= 1e-12 max|y|``) set to exactly 0, so laws read
    ``0.5*x**2 + 0.1``, not ``0.49999999999999994*(x - 1e-19)**2 + 0.1``. R^2 and RMSE are
    measured with the rounded parameters, so they describe exactly what is returned.
    """
    b, c = _round(b), _round(c)
    if abs(c) <= 1e-12 * abs(b) * s.x_abs_max:
        c = 0.0
    with np.errstate(all="ignore"):
        f = np.zeros_like(s.x) if rule.kind == "zero" else _evaluate(prim, b * s.x + c)
        a, d, rss = _solve_ad(f, s)
        a, d = (0.0 if rule.kind == "zero" else _round(float(a))), _round(float(d))
        if abs(d) <= 1e-12 * s.y_abs_max:
            d = 0.0
        r = s.y - (a * f + d)
        rss = float(s.w @ (r * r)) if np.isfinite(rss) else math.inf
    if not math.isfinite(rss):
        return _failed(prim)
    if rule.period > 0 and a < 0 and flip:
        # sin(z + P/2) = -sin(z), cos likewise: keep the amplitude positive
        _, c = _canonical_bc(rule, b, c + rule.period / 2)
        return _finish(prim, rule, s, b, c, flip=False)
    return EdgeFit(prim.name, a, b, c, d, 1.0 - rss / s.s_yy, math.sqrt(rss), prim.complexity)


def _failed(prim: Primitive) -> EdgeFit:
    nan = math.nan
    return EdgeFit(prim.name, nan, nan, nan, nan, -math.inf, math.inf, prim.complexity)


def _fit_one(prim: Primitive, s: _Samples, grid_s: _Samples) -> EdgeFit:
    rule = _RULES.get(prim.name, _Rule("general"))
    if rule.kind in ("zero", "linear") or s.half == 0:
        return _finish(prim, rule, s, 1.0, 0.0)
    if rule.kind == "quadratic":
        # a (x + c)^2 + d spans every quadratic: fit q2 u^2 + q1 u + q0 and complete the square
        sw = np.sqrt(s.w)
        design = np.stack([s.u**2, s.u, np.ones_like(s.u)], axis=1) * sw[:, None]
        (q2, q1, _), *_ = np.linalg.lstsq(design, sw * s.y, rcond=None)
        c = -s.x_mid + s.half * q1 / (2 * q2) if q2 != 0 else 0.0
        return _finish(prim, rule, s, 1.0, float(c))
    starts = _grid(prim, rule, grid_s)
    if not starts:
        return _failed(prim)
    ms = np.array([st.m for st in starts])
    ws = np.array([st.w for st in starts])
    with np.errstate(all="ignore"):
        f = _evaluate(prim, ms[:, None] + ws[:, None] * grid_s.u[None, :])
        _, _, rss = _solve_ad(f, grid_s)
    i = int(np.argmin(rss))
    if not np.isfinite(rss[i]):
        return _failed(prim)
    # one refinement from the best grid point: on a test set of 40 signals x 22 primitives,
    # refining the 3 best points as well never improved a fit
    best = _refine(prim, rule, s, starts[i])
    b, c = _image_to_bc(best[0], best[1], s)
    if rule.kind == "shift":
        b = math.copysign(1.0, best[1])  # exactly +-1, as searched
        c = best[0] - b * s.x_mid
    if rule.kind == "scale":
        c = 0.0  # a * exp(b x + c) = (a e^c) exp(b x); fall back to c != 0 only on overflow
        trial = _finish(prim, rule, s, b, c)
        if trial.ok:
            return trial
        b, c = _image_to_bc(best[0], best[1], s)
    b, c = _canonical_bc(rule, b, c)
    return _finish(prim, rule, s, b, c)


def rank_fits(
    fits: Sequence[EdgeFit], *, factor: float = 2.0, floor: float = 1e-10
) -> list[EdgeFit]:
    """Order fits best first: the simplest of those about as good as the best one leads.

    With loss ``L = 1 - r2`` and ``L* = min L``, fits with ``L <= factor * L* + floor`` are
    acceptable; they come first, sorted by (complexity, max(L, floor), library order); the
    others follow sorted by (L, complexity, library order). Failed fits (r2 = -inf) come last.
    """
    if not fits:
        return []
    loss = [max(1.0 - f.r2, 0.0) if math.isfinite(f.r2) else math.inf for f in fits]
    best = min(loss)
    limit = factor * best + floor

    def key(i: int):
        pos = _INDEX.get(fits[i].name, len(_INDEX))
        if loss[i] <= limit:
            return (0, fits[i].complexity, max(loss[i], floor), pos)
        return (1, loss[i], fits[i].complexity, pos)

    return [fits[i] for i in sorted(range(len(fits)), key=key)]


def fit_edge(
    x, y, candidates: Sequence[str] | None = None, *, weights=None, seed: int = 0
) -> list[EdgeFit]:
    """Fit :math:`y \\approx a\\,f(b x + c) + d` for every candidate primitive, best first.

    Per candidate: a coarse grid over the nonlinear parameters (only those that are not
    redundant; every grid point keeps ``b*x + c`` inside the domain for all samples) with
    (a, d) solved by weighted linear least squares at all grid points at once, then
    ``scipy.optimize.least_squares`` from the best grid point (variable projection: (a, d)
    stay the exact least-squares solution while (b, c) move, which is the same optimum as a
    joint fit of all four). ``x`` and ``x^2`` are solved in closed form. Parameters are
    canonical: ``b = +-1`` for powers, ``abs``, ``sqrt``, ``log``; ``c = 0`` for ``exp``;
    ``b > 0`` for symmetric functions; ``a > 0`` and ``c`` in ``(-pi, pi]`` for ``sin``/``cos``.
    Search limits: ``sin``/``cos`` up to about 3 periods across the range of ``x``; ``exp``
    with ``|b| * (max x - min x) / 2 <= 300``. About 0.15-0.25 s for the whole library on
    1,000 samples on one core.

    Parameters
    ----------
    x, y : array-like or Tensor, shape (n,)
        Edge input and activation samples. Pairs with a non-finite entry are dropped.
    candidates : sequence of str, optional
        Primitive names (default: the whole :data:`LIBRARY`).
    weights : array-like, shape (n,), optional
        Non-negative sample weights (zero drops a sample).
    seed : int
        Seeds the subset used for the grid search when n > 1000.

    Returns
    -------
    list of EdgeFit
        One per candidate, ordered by :func:`rank_fits` (see the module docstring).

    Raises
    ------
    DataError
        Shapes disagree, negative weights, or fewer than 4 finite samples.
    SpecError
        An unknown candidate name.
    """
    prims = [get(n) for n in dict.fromkeys(names() if candidates is None else candidates)]
    if not prims:
        raise SpecError("fit_edge: candidates is empty; expected at least one primitive name")
    s = _prepare(x, y, weights)
    grid_s = s
    if s.x.size > _GRID_SAMPLES:
        rng = np.random.default_rng(seed)
        grid_s = s.subset(np.sort(rng.choice(s.x.size, _GRID_SAMPLES, replace=False)))
    return rank_fits([_fit_one(p, s, grid_s) for p in prims])


def fit_affine(x, y, name: str, *, weights=None, seed: int = 0) -> EdgeFit:
    """Fit one primitive ``name``: :func:`fit_edge` with a single candidate."""
    return fit_edge(x, y, [name], weights=weights, seed=seed)[0]
