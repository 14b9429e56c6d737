r"""Conserved quantities: closed-form functions :math:`Q(q, v)` constant along every trajectory.

A quantity is conserved when it stays put along each trajectory while it differs from one
trajectory to the next. :func:`find_conserved` turns that into linear algebra: for a library
of terms :math:`\theta_k(z)` of the inputs (coordinates, velocities, declared features) and
:math:`Q = \sum_k c_k \theta_k`, the fraction of ``Q``'s variance that lies *within*
trajectories is the generalized Rayleigh quotient

.. math:: \mu(c) = \frac{c^\top W c}{c^\top T c},

with :math:`W` the covariance of the terms after subtracting each trajectory's mean and
:math:`T` their total covariance. Conserved quantities span the eigenvectors of
:math:`(W, T)` whose :math:`\mu` is at the noise floor; no derivative of the data is
taken. The libraries grow from linear to quartic monomials and unary functions (those of
:func:`pikan.laws.generators.regression.libraries`), so a law appears at the simplest
level that holds it.

Within the near-null subspace, sparse quantities are found by L1 minimization with one
term pinned to 1 (a linear program per term), then pruned, refit on their support and
thinned by backward elimination. A quantity is kept only when it is *functionally
independent* of those already kept (its state gradient is not in the span of theirs at
the samples), so :math:`E^2` or :math:`E + L` never come back next to :math:`E` and
:math:`L`. Constants are normalized (a squared velocity carries 1/2, any other leading
term 1) and snapped to simple numbers where that does not move :math:`\mu`.

Every quantity is judged on held-out trajectories (:data:`VERDICTS
<pikan.laws.law.VERDICTS>`): ``"recovered"`` when its spread along trajectories, relative
to its spread across them, is within the measurement noise propagated through ``Q``
(plus :data:`TOLERANCE`); ``"approximate"`` when it is at most :data:`APPROXIMATE`.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize
import sympy

from pikan.data.derivatives.noise import noise_level
from pikan.data.integrate import simulate
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError, SpecError
from pikan.laws.candidates import complexity, nice_values, search_deadline
from pikan.laws.generators.regression import Term, libraries
from pikan.laws.law import Law, Laws
from pikan.laws.numpy_expr import numpy_function
from pikan.model.compile import Model
from pikan.spec.expr import is_valid_name, parse, symbol

__all__ = ["APPROXIMATE", "LEVELS", "TOLERANCE", "find_conserved"]

TOLERANCE = 1e-3
"""Spread along trajectories, relative to the spread across them, that a conserved quantity
may show beyond the measurement noise (integration and derivative-estimate error)."""

APPROXIMATE = 0.05
"""Held-out relative spread up to which a quantity found on the training trajectories is
reported as ``"approximate"`` (nearly conserved) rather than ``"not found"``."""

LEVELS = ("poly1", "poly2", "poly3", "unary", "poly4", "laurent")
"""Term libraries tried in order (see :func:`pikan.laws.generators.regression.libraries`)."""

_NOISE_FACTOR = 1.25
"""A quantity passes when its within-trajectory variance is at most this many times the
variance the measurement noise alone would give it (plus ``TOLERANCE**2``)."""

_INDEPENDENT = 1e-2
"""A quantity is functionally independent of others when the median, over samples, of the
smallest singular value of their unit state gradients stacked with its own exceeds this."""

_IDENTITY = 1e-13
"""Relative total variance below which a combination of terms is an identity (zero)."""

_RESOLVED = 1e-8
"""A quantity's total variance must be at least this fraction of the sum of its squared
coefficients (terms scaled to unit variance) to be told apart from cancellation."""

_MAX_TERMS = 16
"""Most terms a quantity may have: more is a fit of the library to a near-constant, not a
closed form (a quartic central potential in 3-D has 12)."""

_SNAP_SLACK = 1e-10
"""Growth of the within-trajectory share allowed to a snap beyond 10 % of the share
(rounding on cancelling terms; a constant 4e-4 off, 7/11 for 0.6366, adds about 1e-7)."""

_MAX_SAMPLES = 12000
"""Samples the search keeps (every k-th time point of each trajectory beyond that)."""

_SMOOTHING = 40
"""The moving average runs over 1/_SMOOTHING of a trajectory's samples (at most
:data:`_MAX_WINDOW`): short next to the motion, long enough to average the noise down."""

_MAX_WINDOW = 25
_GRADIENT_SAMPLES = 600
_MAX_PIVOTS = 30
_MAX_CANCELLED = 15
_MIN_TRAJECTORIES = 4


@dataclass(frozen=True)
class _Inputs:
    """The inputs of the search: names, their expressions in the state, and compiled
    values and Jacobians (with respect to the state ``(q, v)``)."""

    names: tuple[str, ...]
    exprs: tuple[sympy.Expr, ...]
    state: tuple[str, ...]

    def values(self, s: np.ndarray) -> np.ndarray:
        cols = [s[:, k] for k in range(s.shape[1])]
        return np.stack([np.broadcast_to(numpy_function(e, self.state)(*cols), (len(s),))
                         for e in self.exprs], axis=1).astype(float)

    def velocities(self) -> set[sympy.Symbol]:
        """The inputs that depend on a velocity."""
        half = len(self.state) // 2
        moving = {symbol(n) for n in self.state[half:]}
        return {symbol(n) for n, e in zip(self.names, self.exprs) if e.free_symbols & moving}

    def jacobian(self, s: np.ndarray) -> np.ndarray:
        """Shape (N, n_inputs, n_state)."""
        cols = [s[:, k] for k in range(s.shape[1])]
        out = np.zeros((len(s), len(self.exprs), len(self.state)))
        for i, e in enumerate(self.exprs):
            for j, name in enumerate(self.state):
                d = sympy.diff(e, symbol(name))
                if d != 0:
                    out[:, i, j] = np.broadcast_to(numpy_function(d, self.state)(*cols),
                                                   (len(s),))
        return out


@dataclass
class _Level:
    """One library evaluated on the training samples."""

    name: str
    terms: list[Term]
    scale: np.ndarray        # (K,) standard deviation of each term
    within: np.ndarray       # (K, K) covariance of moving averages less trajectory means
    total: np.ndarray        # (K, K) covariance about the overall mean
    grads: np.ndarray        # (K, G, n_state) state gradients of the scaled terms
    sigma: np.ndarray        # (n_state,) noise left in a moving average, per state channel

    def noise_share(self, c: np.ndarray) -> float:
        """Variance the measurement noise gives ``Q = sum c_k theta_k / scale_k``, relative
        to ``Q``'s total variance."""
        g = np.einsum("k,kns->ns", c, self.grads)
        noise = float(np.mean(np.sum(g * g * self.sigma**2, axis=1)))
        total = float(c @ self.total @ c)
        return noise / total if total > 0 else math.inf

    def quotient(self, c: np.ndarray) -> float:
        total = float(c @ self.total @ c)
        return float(c @ self.within @ c) / total if total > 1e-300 else math.inf

    def passes(self, c: np.ndarray) -> bool:
        """Whether ``Q`` stays within the noise along trajectories, and varies across them
        by more than rounding: a combination of nearly collinear terms whose variance
        cancels to rounding level says nothing."""
        if float(c @ self.total @ c) < _RESOLVED * float(c @ c):
            return False
        return self.quotient(c) <= _NOISE_FACTOR * self.noise_share(c) + TOLERANCE**2

    def smallest(self, support: Sequence[int]) -> np.ndarray | None:
        """The least-varying quantity on ``support`` (a vector of length K), or None."""
        idx = np.asarray(support)
        vals, vecs = _whitened(self.within[np.ix_(idx, idx)], self.total[np.ix_(idx, idx)])
        if vals.size == 0:
            return None
        c = np.zeros(len(self.terms))
        c[idx] = vecs[:, 0]
        return c


def _whitened(within: np.ndarray, total: np.ndarray, rcond: float = 1e-10
              ) -> tuple[np.ndarray, np.ndarray]:
    """Generalized eigenpairs of ``(within, total)`` on the range of ``total`` (directions
    of zero total variance, such as ``r**2 - x**2 - y**2`` with a feature ``r``, are left
    out), ascending; eigenvectors normalized to unit total variance."""
    e, u = np.linalg.eigh(total)
    keep = e > rcond * max(float(e.max(initial=0.0)), 1e-300)
    if not keep.any():
        return np.zeros(0), np.zeros((len(total), 0))
    p = u[:, keep] / np.sqrt(e[keep])
    vals, vecs = np.linalg.eigh(p.T @ within @ p)
    return np.clip(vals, 0.0, None), p @ vecs


def _resolve_inputs(inputs, coords: Sequence[str]) -> _Inputs:
    velocities = [f"v_{c}" for c in coords]
    state = tuple(coords) + tuple(velocities)
    if inputs is None:
        return _Inputs(state, tuple(symbol(n) for n in state), state)
    if isinstance(inputs, str) or not isinstance(inputs, (Mapping, Sequence)):
        raise SpecError(f"find_conserved: inputs must be a list of names or a dict of "
                        f"name -> expression, got {inputs!r}.")
    items = inputs.items() if isinstance(inputs, Mapping) else [(n, n) for n in inputs]
    names, exprs = [], []
    for name, source in items:
        if not isinstance(name, str) or not is_valid_name(name):
            raise SpecError(f"find_conserved: input name {name!r} is not a valid name.")
        expr = parse(source, state, where=f"find_conserved input {name!r}")
        names.append(name)
        exprs.append(expr)
    if len(set(names)) != len(names):
        raise SpecError(f"find_conserved: input names repeat: {names}.")
    if not names:
        raise SpecError("find_conserved: inputs is empty.")
    return _Inputs(tuple(names), tuple(exprs), state)


def _trajectories(data_or_model, data) -> Trajectories:
    if isinstance(data_or_model, Model):
        if not isinstance(data, Trajectories):
            raise SpecError("find_conserved(model, data=...): a model needs trajectories "
                            "whose initial states it is run from.")
        starts = []
        for record in data:
            v0 = record.v[0] if record.v is not None else np.zeros(record.q.shape[1])
            starts.append(np.concatenate([record.q[0], v0]))
        durations = [r.t[-1] - r.t[0] for r in data]
        steps = [float(np.median(np.diff(r.t))) for r in data if len(r.t) > 1]
        if not steps:
            raise DataError("find_conserved: the trajectories have one time point each.")
        return simulate(data_or_model, t=(0.0, float(np.median(durations))),
                        dt=float(np.median(steps)), initial=np.array(starts))
    if data is not None:
        raise SpecError("find_conserved: pass data= only with a model.")
    if not isinstance(data_or_model, Trajectories):
        raise SpecError(f"find_conserved: expected Trajectories or a compiled Model, got "
                        f"{type(data_or_model).__name__}.")
    return data_or_model


def _states(data: Trajectories, limit: int = _MAX_SAMPLES
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """States (N, 2n) in time order, trajectory ids (N,) and each state channel's noise
    level (2n,); every k-th time point when there are more than ``limit``."""
    if not data.has_velocities:
        data = data.with_derivatives()
    stride = max(1, math.ceil(data.n_samples / limit))
    states, ids, levels = [], [], []
    for i, r in enumerate(data):
        both = np.concatenate([r.q, r.v], axis=1)
        if len(r.t) > 7:
            levels.append(noise_level(both))
        states.append(both[::stride])
        ids.append(np.full(len(states[-1]), i))
    s = np.concatenate(states)
    sigma = np.median(levels, axis=0) if levels else np.zeros(s.shape[1])
    return s, np.concatenate(ids), sigma


def _window(ids: np.ndarray) -> int:
    """Moving-average window (samples) for trajectories with ids ``ids``."""
    shortest = int(np.bincount(ids)[np.unique(ids)].min())
    return int(max(1, min(_MAX_WINDOW, shortest // _SMOOTHING)))


def _smoothed(values: np.ndarray, ids: np.ndarray, window: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """Moving averages of ``values`` (N, ...) over ``window`` samples within each
    trajectory (full windows only) and their trajectory ids."""
    out, out_ids = [], []
    for i in np.unique(ids):
        block = values[ids == i]
        if len(block) < window:
            continue
        c = np.cumsum(np.concatenate([np.zeros((1,) + block.shape[1:]), block]), axis=0)
        out.append((c[window:] - c[:-window]) / window)
        out_ids.append(np.full(len(block) - window + 1, i))
    return np.concatenate(out), np.concatenate(out_ids)


def _within(values: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``values`` (N, ...) less each trajectory's mean."""
    flat = values.reshape(len(values), -1)
    means = np.zeros((ids.max() + 1, flat.shape[1]))
    np.add.at(means, ids, flat)
    means /= np.maximum(np.bincount(ids, minlength=len(means)), 1)[:, None]
    return (flat - means[ids]).reshape(values.shape)


def _level(name: str, terms: list[Term], z: np.ndarray, ids: np.ndarray, jac: np.ndarray,
           rows: np.ndarray, sigma: np.ndarray) -> _Level | None:
    theta = np.stack([t.values(z) for t in terms], axis=1)
    if not np.all(np.isfinite(theta)):
        return None
    scale = theta.std(axis=0)
    live = scale > 1e-12 * max(float(np.abs(theta).max(initial=0.0)), 1e-300)
    if not live.any():
        return None
    terms = [t for t, ok in zip(terms, live) if ok]
    theta, scale = theta[:, live] / scale[live], scale[live]
    centred = theta - theta.mean(axis=0)
    window = _window(ids)
    smooth, smooth_ids = _smoothed(theta, ids, window)
    inner = _within(smooth, smooth_ids)
    dz = np.stack([t.gradient(z[rows], range(z.shape[1])) for t in terms])  # (K, G, d)
    grads = np.einsum("kgd,gds->kgs", dz, jac) / scale[:, None, None]
    return _Level(name, terms, scale, inner.T @ inner / len(inner),
                  centred.T @ centred / len(theta), grads, sigma / math.sqrt(window))


def _sparse(level: _Level, basis: np.ndarray, null: int) -> list[np.ndarray]:
    """Sparse quantities in the span of ``basis`` (K, m), whose first ``null`` columns are
    the near-null quantities (the rest are identities among the terms): L1 minimization with
    each prominent term pinned to 1; and, for up to 3 quantities, the combinations that
    cancel one or two prominent terms (the total energy of coupled oscillators next to
    their mode energies). Each is cut to its fewest passing terms and thinned."""
    k, m = basis.shape
    weight = np.linalg.norm(basis, axis=1)
    pivots = [j for j in np.argsort(-weight)[:_MAX_PIVOTS] if weight[j] > 1e-3 * weight.max()]
    directions = []
    cost = np.concatenate([np.zeros(m), np.ones(k)])
    eye = np.eye(k)
    a_ub = np.block([[basis, -eye], [-basis, -eye]])
    b_ub = np.zeros(2 * k)
    bounds = [(None, None)] * m + [(0, None)] * k
    for j in pivots:
        a_eq = np.concatenate([basis[j], np.zeros(k)])[None, :]
        res = scipy.optimize.linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0],
                                     bounds=bounds, method="highs")
        if res.status == 0:
            directions.append(basis @ res.x[:m])
    if 2 <= null <= 3:
        quantities = basis[:, :null]
        for zeros in itertools.combinations(pivots[:_MAX_CANCELLED], null - 1):
            alpha = scipy.linalg.null_space(quantities[list(zeros)])
            if alpha.shape[1] == 1:
                directions.append(quantities @ alpha[:, 0])
    found: dict[tuple[int, ...], np.ndarray] = {}
    seen: set[tuple[int, ...]] = set()
    for c in directions:
        refit = _shortest(level, c)
        if refit is None:
            continue
        support = tuple(int(i) for i in np.flatnonzero(refit))
        if support in seen:
            continue
        seen.add(support)
        refit = _thinned(level, refit)
        found.setdefault(tuple(int(i) for i in np.flatnonzero(refit)), refit)
    return list(found.values())


def _shortest(level: _Level, c: np.ndarray) -> np.ndarray | None:
    """The quantity refit on the fewest of ``c``'s largest terms that still pass (bisection
    over the number of terms), or None when more than twice :data:`_MAX_TERMS` are needed
    (thinning may still bring it under the limit).

    Pruning by a relative threshold fails on cancelling terms: an energy in ``x1**4``,
    ``x1**3*x2``, ... of two particles far from the origin has huge scaled coefficients on
    the quartic terms next to small ones on the velocities, which it still needs."""
    order = np.argsort(-np.abs(c))
    order = order[: min(int(np.count_nonzero(np.abs(c) > 1e-12 * np.abs(c).max())),
                        2 * _MAX_TERMS)]

    def fit(k: int) -> np.ndarray | None:
        trial = level.smallest(order[:k])
        return trial if trial is not None and level.passes(trial) else None

    best = fit(len(order))
    if best is None:
        return None
    lo, hi = 1, len(order)
    while lo < hi:
        mid = (lo + hi) // 2
        trial = fit(mid)
        if trial is None:
            lo = mid + 1
        else:
            hi, best = mid, trial
    return best if np.count_nonzero(best) <= 2 * _MAX_TERMS else None


def _thinned(level: _Level, c: np.ndarray) -> np.ndarray:
    """Backward elimination: drop terms while the quantity still passes."""
    while True:
        support = list(np.flatnonzero(c))
        if len(support) <= 1:
            return c
        best = None
        for j in support:
            trial = level.smallest([i for i in support if i != j])
            if trial is not None and level.passes(trial):
                mu = level.quotient(trial)
                if best is None or mu < best[0]:
                    best = (mu, trial)
        if best is None:
            return c
        c = best[1]


def _unit_gradients(level: _Level, c: np.ndarray) -> np.ndarray:
    g = np.einsum("k,kns->ns", c, level.grads)
    return g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-300)


def _independent(known: list[np.ndarray], g: np.ndarray) -> bool:
    stacked = np.stack([*known, g], axis=1)  # (G, m + 1, n_state)
    smallest = np.linalg.svd(stacked, compute_uv=False)[:, -1]
    return float(np.median(smallest)) > _INDEPENDENT


def _expression(level: _Level, c: np.ndarray, symbols: Sequence[sympy.Symbol],
                velocity: set[sympy.Symbol]) -> tuple[list[sympy.Expr], np.ndarray]:
    """The quantity's terms (sympy) and their coefficients, normalized: the leading term
    (squared velocities, then terms with velocities, then by text) gets 1/2 if it is a
    squared velocity and 1 otherwise, with a positive sign."""
    idx = np.flatnonzero(c)
    exprs = [level.terms[i].expr(symbols) for i in idx]
    coefs = c[idx] / level.scale[idx]

    def rank(e: sympy.Expr) -> tuple:
        squared = e.is_Pow and e.exp == 2 and e.base in velocity
        return (not squared, not (e.free_symbols & velocity), sympy.count_ops(e), str(e))

    lead = min(range(len(exprs)), key=lambda i: rank(exprs[i]))
    target = 0.5 if rank(exprs[lead])[0] is False else 1.0
    return exprs, coefs * (target / coefs[lead])


def _mixed_velocities(expr: sympy.Expr, velocity: set[sympy.Symbol]) -> int:
    """Number of terms of ``expr`` that multiply two different velocities."""
    return sum(len(term.free_symbols & velocity) > 1 for term in sympy.Add.make_args(expr))


def _snapped(level: _Level, c: np.ndarray, exprs: list[sympy.Expr], coefs: np.ndarray
             ) -> sympy.Expr:
    """Snap coefficients to simple numbers, one at a time, while the quantity's
    within-trajectory share grows by at most 10 % (plus :data:`_SNAP_SLACK`): on noisy data
    a constant is not snapped against the noise."""
    idx = np.flatnonzero(c)
    ratio = c[idx] / level.scale[idx]
    factor = coefs / ratio  # the normalization, the same for every term
    values: list[sympy.Expr] = [sympy.Float(v) for v in coefs]
    current = c.copy()
    base = level.quotient(c)
    allowed = 1.1 * base + _SNAP_SLACK
    for j in np.argsort(-np.abs(coefs)):
        for nice in nice_values(float(coefs[j]), 0.02)[:3]:
            trial = current.copy()
            trial[idx[j]] = float(nice) / factor[j] * level.scale[idx[j]]
            if level.quotient(trial) <= allowed:
                current, values[j] = trial, nice
                break
    return sympy.Add(*[v * e for v, e in zip(values, exprs)])


def _judged(expr: sympy.Expr, inputs: _Inputs, held: np.ndarray, ids: np.ndarray,
            sigma: np.ndarray) -> tuple[str, str, float]:
    """Verdict, reason and the held-out relative spread of a quantity."""
    names = list(inputs.names)
    z = inputs.values(held)
    cols = [z[:, k] for k in range(z.shape[1])]
    qv = np.broadcast_to(numpy_function(expr, names)(*cols), (len(held),)).astype(float)
    if not np.all(np.isfinite(qv)):
        return "not found", "the quantity is not finite on the held-out trajectories", math.inf
    total = float(qv.var())
    if total <= 0:
        return "not found", "the quantity is the same on every held-out trajectory", math.inf
    spread = math.sqrt(float(np.mean(_within(qv, ids) ** 2)) / total)
    window = _window(ids)
    smooth, smooth_ids = _smoothed(qv, ids, window)
    drift = float(np.mean(_within(smooth, smooth_ids) ** 2))
    dz = np.stack([np.broadcast_to(numpy_function(sympy.diff(expr, symbol(n)), names)(*cols),
                                   (len(held),)) for n in names], axis=1)
    g = np.einsum("nd,nds->ns", dz, inputs.jacobian(held))
    noise = float(np.mean(np.sum(g * g * sigma**2, axis=1))) / window
    n_held = len(np.unique(ids))
    reason = (f"on {n_held} held-out trajectories it varies along each trajectory by "
              f"{spread:.2g} of its spread across them; averaged over {window} samples, "
              f"by {math.sqrt(drift / total):.2g} (the measurement noise allows "
              f"{math.sqrt(_NOISE_FACTOR * noise / total + TOLERANCE**2):.2g})")
    if drift <= _NOISE_FACTOR * noise + TOLERANCE**2 * total:
        return "recovered", reason, spread
    if math.sqrt(drift / total) <= APPROXIMATE:
        return "approximate", reason + f"; above the noise, but at most {APPROXIMATE}", spread
    return "not found", reason, spread


def _check_options(max_quantities, seed) -> None:
    if isinstance(max_quantities, bool) or not isinstance(max_quantities, numbers.Integral) \
            or max_quantities < 1:
        raise SpecError(f"find_conserved: max_quantities must be a positive integer, got "
                        f"{max_quantities!r}.")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise SpecError(f"find_conserved: seed must be an integer, got {seed!r}.")


def find_conserved(data_or_model, inputs=None, max_quantities: int = 3, seed: int = 0,
                   time_limit: float | None = None, *, data: Trajectories | None = None
                   ) -> Laws:
    r"""Closed-form conserved quantities :math:`Q(q, v)` of trajectories, or of a model.

    Parameters
    ----------
    data_or_model : Trajectories or Model
        Trajectories (at least 4, started from different states so that the quantities
        differ between them; velocities are estimated from q when missing), or a compiled
        model, which is then run from the initial states of ``data``.
    inputs : list of str or dict of str -> str, optional
        What the quantities may depend on: coordinate and velocity names, or features as
        expressions of them (``{"x": "x", "v_x": "v_x", "r": "sqrt(x**2 + y**2)"}``).
        Default: every coordinate and velocity.
    max_quantities : int
        Stop after this many functionally independent quantities.
    seed : int
        Seeds the split into search and held-out trajectories (a quarter held out).
    time_limit : float, optional
        Seconds; no further library is started once :data:`pikan.laws.candidates.SEARCH_SHARE`
        of it has passed.
    data : Trajectories, optional
        With a model: the trajectories whose initial states, duration and step it is run with.

    Returns
    -------
    Laws
        ``Q1, Q2, ...`` of kind ``"Conserved"``, each with a verdict from the held-out
        trajectories; ``error`` is the held-out spread along trajectories relative to the
        spread across them. Empty when nothing is conserved, with :attr:`Laws.note` saying
        what was searched.

    Raises
    ------
    SpecError
        Bad options or inputs.
    DataError
        Fewer than 4 trajectories, or trajectories with one time point.
    """
    _check_options(max_quantities, seed)
    deadline = search_deadline(time_limit, "find_conserved")
    trajectories = _trajectories(data_or_model, data)
    if len(trajectories) < _MIN_TRAJECTORIES:
        raise DataError(
            f"find_conserved needs at least {_MIN_TRAJECTORIES} trajectories, got "
            f"{len(trajectories)}: a conserved quantity is told apart by staying put along "
            "each trajectory while differing between them; hint: simulate or load "
            "trajectories from several initial states")
    inputs = _resolve_inputs(inputs, trajectories.coords)
    search, held = trajectories.split(0.75, seed=seed)
    s, ids, sigma = _states(search)
    s_held, ids_held, _ = _states(held)
    rng = np.random.default_rng(seed)
    z = inputs.values(s)
    if not np.all(np.isfinite(z)):
        raise DataError("find_conserved: an input is not finite on the data (a feature "
                        "outside its domain?).")
    rows = np.sort(rng.choice(len(s), min(len(s), _GRADIENT_SAMPLES), replace=False))
    jac = inputs.jacobian(s[rows])
    symbols = [symbol(n) for n in inputs.names]
    velocity = inputs.velocities()
    budget = min(int(max_quantities), 2 * trajectories.n_coords - 1)
    tried, pool = [], []
    library = dict(libraries(z))
    for name in LEVELS:
        if deadline.expired() or name not in library:
            continue
        tried.append(name)
        level = _level(name, library[name], z, ids, jac, rows, sigma)
        if level is None:
            continue
        vals, vecs = _whitened(level.within, level.total)
        null = [i for i in range(len(vals)) if level.passes(vecs[:, i])]
        if not null:
            continue
        # exact identities among the terms (r**2 - x**2 - y**2 = 0) let the sparse search
        # choose between equal ways of writing a quantity; near-collinear terms (x1**4 and
        # x1**3*x2 when x1 stays close to x2) are not identities and stay out
        e, u = np.linalg.eigh(level.total)
        basis = np.concatenate([vecs[:, null], u[:, e <= _IDENTITY * e.max()]], axis=1)
        for c in _sparse(level, basis, len(null)):
            if np.count_nonzero(c) <= _MAX_TERMS:
                exprs, coefs = _expression(level, c, symbols, velocity)
                expr = _snapped(level, c, exprs, coefs)
                pool.append((np.count_nonzero(c), _mixed_velocities(expr, velocity),
                             complexity(expr), level, c, expr))
    # the simplest quantities first, over all libraries: a 3-term energy in 1/r beats a
    # 10-term polynomial that the noise cannot tell from a function of it; among equally
    # short ones, those without products of two velocities (the total energy of coupled
    # oscillators before a mix of their mode energies)
    pool.sort(key=lambda item: item[:3])
    found: list[tuple[sympy.Expr, np.ndarray]] = []
    for *_, level, c, expr in pool:
        if len(found) >= budget:
            break
        g = _unit_gradients(level, c)
        if _independent([known for _, known in found], g):
            found.append((expr, g))
    laws = []
    for k, (expr, _) in enumerate(found, start=1):
        verdict, reason, spread = _judged(expr, inputs, s_held, ids_held, sigma)
        names = tuple(n for n in inputs.names if symbol(n) in expr.free_symbols)
        in_state = expr.xreplace({symbol(n): e for n, e in zip(inputs.names, inputs.exprs)})
        laws.append(Law(f"Q{k}", "Conserved", names, expr, in_state=in_state,
                        error=spread, complexity=complexity(expr), verdict=verdict,
                        verdict_reason=reason))
    if laws:
        note = ""
    else:
        note = (f"no conserved quantity: none of the libraries {', '.join(tried)} in "
                f"{', '.join(inputs.names)} holds a function that stays within the noise "
                f"along the {len(search)} search trajectories")
    return Laws(laws, note=note)

