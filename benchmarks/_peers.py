"""The peers pikan is measured against, each driven by its own documented workflow.

- **pykan 0.2.8** (KAN 2.0 reference): ``MultKAN`` fit with a sparsity penalty, ``prune``,
  fit, ``auto_symbolic``, fit, ``symbolic_formula``. pykan writes checkpoints even with
  ``auto_save=False`` (``prune`` and ``refine`` build their copies with ``auto_save=True``),
  so every call runs with ``ckpt_path`` in a temporary folder that is deleted afterwards;
  its prints and progress bars are swallowed.
- **PySINDy**: the state ``(q, v)`` as a first-order system, Savitzky-Golay derivatives
  (``SmoothedFiniteDifference``), polynomial library (plus a Fourier library for
  angle coordinates), STLSQ. The threshold and the smoothing window are swept and the
  best model is kept by an oracle that knows the truth: PySINDy's best case.
- **gplearn** ``SymbolicRegressor``: genetic programming; its program is converted to
  sympy (protected division, square root and logarithm written as the plain functions,
  which they equal on the benchmark's positive inputs). :func:`gplearn_timed` grows it one
  generation at a time (``warm_start``) within a wall-time budget.
- **Operon** (``pyoperon``) ``SymbolicRegressor``: genetic programming with local
  (Levenberg-Marquardt) optimization of the constants, single-threaded, stopped by a
  wall-time budget; its infix model string is parsed into sympy.
- **HNN-style baseline**: one MLP energy of the raw state (a potential ``V(q)`` with the
  known masses for Newtonian systems, a Lagrangian ``L(q, v)`` for Lagrangian ones), the
  equations of motion by autograd, trained on the acceleration loss.

Also here: the law comparison used by every suite (:func:`matches`, :func:`constant_error`),
with a time limit on sympy.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import math
import re
import signal
import tempfile
import threading
import time
import traceback

import numpy as np
import sympy
import torch
from torch import nn

RTOL = 0.03
"""Relative tolerance on constants for "recovered" (the issue's 3 % target)."""


def available(module: str) -> bool:
    """Whether a peer is installed (``pip install -e .[bench]``); suites skip missing ones."""
    return importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------ law comparison


class Timeout(BaseException):
    """A time limit ran out. A BaseException, so that no ``except Exception`` in the code
    being timed (pikan's and the peers' fallbacks) can swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`Timeout` after ``seconds`` (main thread on Unix; no limit elsewhere)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def handler(signum, frame):
        raise Timeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def attempt(fn, seconds: float, judge, failed: dict | None = None) -> dict:
    """One method's try at a formula, as the static suites record it.

    ``fn()`` runs under :func:`time_limit` ``(seconds)`` and ``judge(raw)`` turns its formula
    into the row's fields (``expr``, ``recovered``, ...). The method's own time is
    ``wall_s`` and the verdict's ``check_s``: a symbolic check with its own time limit is
    not read as the method running over its limit. A timeout or an exception (in the method
    or the verdict) gives ``{"expr": None, "recovered": False, **failed, "error": ...}``
    (and a short traceback for an exception), timed whole as ``wall_s``.
    """
    start = found = time.perf_counter()
    try:
        with time_limit(seconds):
            raw = fn()
        found = time.perf_counter()
        out = {**judge(raw), "error": None}
    except Timeout:
        out = {"expr": None, "recovered": False, **(failed or {}),
               "error": f"Timeout: no formula after {seconds:g} s"}
    except Exception as error:  # noqa: BLE001 (a failure is a result)
        out = {"expr": None, "recovered": False, **(failed or {}),
               "error": f"{type(error).__name__}: {error}",
               "traceback": traceback.format_exc(limit=3)}
    end = time.perf_counter()
    out["wall_s"] = (found if out["error"] is None else end) - start
    out["check_s"] = end - found if out["error"] is None else 0.0
    return out


def _match(expr, truth, up_to_constant: bool, rtol: float, positive: bool,
           seconds: float) -> bool | None:
    """:func:`pikan.laws.law.equivalent` with a time limit: True, False, or None on timeout."""
    from pikan.laws.law import equivalent

    if expr is None:
        return False
    try:
        with time_limit(seconds):
            return bool(equivalent(expr, truth, up_to_constant=up_to_constant, rtol=rtol,
                                   positive=positive))
    except Timeout:
        return None
    except Exception:  # noqa: BLE001 (sympy fails in many ways on odd peer output: no match)
        return False


def matches(expr, truth, *, up_to_constant: bool, rtol: float = RTOL, positive: bool = False,
            seconds: float = 20.0) -> bool:
    """:func:`pikan.laws.law.equivalent` with a time limit; any failure (or timeout) is False."""
    return bool(_match(expr, truth, up_to_constant, rtol, positive, seconds))


def constant_error(expr, truth, *, up_to_constant: bool, positive: bool = False,
                   seconds: float = 20.0) -> float | None:
    """The largest relative constant error of a law of the right form.

    Measured as the smallest ``rtol`` at which :func:`pikan.laws.law.equivalent` accepts the law
    (log bisection between 1e-8 and 0.5, to about 2 %); None when it is not accepted even
    at 0.5 (a wrong form) or that check times out. A later timeout ends the bisection with
    the smallest ``rtol`` accepted so far (an upper bound).
    """
    low, high = 1e-8, 0.5
    if not _match(expr, truth, up_to_constant, high, positive, seconds):
        return None
    first = _match(expr, truth, up_to_constant, low, positive, seconds)
    if first is None:
        return high
    if first:
        return low
    for _ in range(10):
        mid = math.sqrt(low * high)
        verdict = _match(expr, truth, up_to_constant, mid, positive, seconds)
        if verdict is None:
            break
        if verdict:
            high = mid
        else:
            low = mid
    return high


def rescale_lagrangian(expr: sympy.Expr, truth: sympy.Expr, names, z: np.ndarray) -> sympy.Expr:
    """``expr / c`` with ``c`` the least-squares scale of ``expr`` on ``truth`` over samples ``z``.

    A Lagrangian is only defined up to a factor (``c L`` has the same motion), so a learned
    one is compared with the truth after this normalization (constants removed by centring).
    """
    symbols = [sympy.Symbol(n) for n in names]
    f = sympy.lambdify(symbols, expr, "numpy")
    g = sympy.lambdify(symbols, truth, "numpy")
    a = np.asarray(f(*z.T), dtype=float) * np.ones(len(z))
    b = np.asarray(g(*z.T), dtype=float) * np.ones(len(z))
    a, b = a - a.mean(), b - b.mean()
    c = float(a @ b / max(b @ b, 1e-300))
    return expr if not np.isfinite(c) or c == 0 else sympy.expand(expr / c)


# ------------------------------------------------------------------ pykan

PYKAN_LIB = ("x", "x^2", "x^3", "x^4", "x^5", "1/x", "1/x^2", "1/x^3", "sqrt", "1/sqrt(x)",
             "exp", "log", "sin", "cos", "tan", "tanh", "gaussian", "abs", "arcsin", "arctan",
             "0")
"""pikan's symbolic library, in pykan's names (pykan has every one of them)."""


@contextlib.contextmanager
def _quiet():
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


@contextlib.contextmanager
def _default_dtype(dtype):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def pykan_formula(x: np.ndarray, y: np.ndarray, names, hidden=(), mult: int = 0,
                  steps: int = 50, lamb: float = 1e-2, lib=PYKAN_LIB, seed: int = 0,
                  grid: int = 5, seconds: float | None = None, dtype=torch.float64,
                  standardize: bool = True) -> list[sympy.Expr]:
    """pykan's formula workflow on samples ``x (N, d) -> y (N, k)``; one expression per output.

    Width ``[d, *hidden, k]`` with ``mult`` multiplication nodes in the first hidden layer
    (pikan's module layout). Workflow (pykan's tutorials): ``fit`` (L-BFGS, ``steps``,
    sparsity ``lamb``), ``prune``, ``fit``, ``auto_symbolic(lib)``, ``fit`` (the symbolic
    edges' affine parameters), ``symbolic_formula``, then ``ex_round(formula, 4)`` as the
    tutorials print it (drops the ~1e-5 offsets that the affine fits leave). ``y`` is
    standardized for pykan and the formula mapped back (module values can be small, and
    the sparsity penalty then shrinks every edge to zero); without a hidden layer there is
    nothing to prune and no penalty. Float64 (pykan's float32 default recovered ``mu*Nn``
    in 1 of 4 settings tried, float64 in 4 of 4), 80/20 train/test split.
    ``seconds``: a time limit for the whole call (:class:`Timeout` after it).
    """
    from kan import MultKAN
    from kan.utils import ex_round

    y = y.reshape(len(y), -1)
    d, k = x.shape[1], y.shape[1]
    mean, std = (y.mean(0), y.std(0)) if standardize else (np.zeros(k), np.ones(k))
    std = np.where(std > 0, std, 1.0)
    y = (y - mean) / std
    width = [d]
    for i, h in enumerate(hidden):
        width.append([int(h), int(mult)] if i == 0 and mult else int(h))
    width.append(k)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    cut = int(0.8 * len(x))
    limit = time_limit(seconds) if seconds else contextlib.nullcontext()
    with limit, _default_dtype(dtype), tempfile.TemporaryDirectory() as tmp, _quiet():
        xt = torch.as_tensor(x[order], dtype=dtype)
        yt = torch.as_tensor(y[order], dtype=dtype)
        data = {"train_input": xt[:cut], "train_label": yt[:cut],
                "test_input": xt[cut:], "test_label": yt[cut:]}
        model = MultKAN(width=copy.deepcopy(width), grid=grid, k=3, seed=seed, auto_save=False,
                        ckpt_path=tmp, device="cpu")  # pykan mutates width: pass a copy
        model.fit(data, opt="LBFGS", steps=steps, lamb=lamb if len(width) > 2 else 0.0)
        if len(width) > 2:  # nothing to prune without a hidden layer
            model = model.prune()
            model.auto_save = False
            # grid updates after pruning can hit an empty least-squares problem in pykan
            # 0.2.8 (curve2coef: UnboundLocalError); the grid was fitted before pruning
            model.fit(data, opt="LBFGS", steps=steps, update_grid=False)
        model.auto_symbolic(lib=list(lib), verbose=0)
        model.fit(data, opt="LBFGS", steps=steps, update_grid=False)
        formulas, _ = model.symbolic_formula(var=[sympy.Symbol(n) for n in names])
    return [sympy.Float(s) * ex_round(sympy.sympify(f), 4) + sympy.Float(m)
            for f, m, s in zip(formulas, mean, std)]


# ------------------------------------------------------------------ gplearn

_GP = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
       "div": lambda a, b: a / b, "sqrt": sympy.sqrt, "log": sympy.log, "neg": lambda a: -a,
       "inv": lambda a: 1 / a, "abs": sympy.Abs, "sin": sympy.sin, "cos": sympy.cos,
       "tan": sympy.tan, "max": sympy.Max, "min": sympy.Min}


def gplearn_sympy(program, names) -> sympy.Expr:
    """A fitted gplearn program (prefix list) as sympy, protected operators written plain."""
    symbols = [sympy.Symbol(n) for n in names]
    position = 0

    def walk():
        nonlocal position
        node = program[position]
        position += 1
        if isinstance(node, (int, np.integer)):
            return symbols[int(node)]
        if isinstance(node, (float, np.floating)):
            return sympy.Float(float(node))
        args = [walk() for _ in range(node.arity)]
        return _GP[node.name](*args)

    return walk()


GP_FUNCTIONS = ("add", "sub", "mul", "div", "sqrt", "log", "sin", "cos", "neg", "inv")


def gplearn_formula(x: np.ndarray, y: np.ndarray, names, seed: int = 0,
                    population: int = 2000, generations: int = 20) -> sympy.Expr:
    """gplearn ``SymbolicRegressor`` (parsimony 1e-3, the README's settings otherwise)."""
    from gplearn.genetic import SymbolicRegressor

    model = SymbolicRegressor(population_size=population, generations=generations,
                              function_set=GP_FUNCTIONS, parsimony_coefficient=1e-3,
                              p_crossover=0.7, p_subtree_mutation=0.1, p_hoist_mutation=0.05,
                              p_point_mutation=0.1, max_samples=0.9, stopping_criteria=1e-10,
                              random_state=seed, n_jobs=1, verbose=0)
    model.fit(x, y)
    return gplearn_sympy(model._program.program, names)


def gplearn_timed(x: np.ndarray, y: np.ndarray, names, seconds: float,
                  seed: int = 0) -> sympy.Expr:
    """gplearn ``SymbolicRegressor`` grown one generation at a time within ``seconds``.

    Population 1000, :data:`GP_FUNCTIONS`, parsimony 1e-3 (the other settings as in
    :func:`gplearn_formula`). ``warm_start=True``: after each generation ``generations`` is
    raised by one and the model refit, which continues the same run (gplearn replays its
    seeds). It stops at 200 generations, at gplearn's own stopping criterion, or when the
    next generation (assumed as long as the last one) would end past ``seconds`` of wall
    time (the first generation always runs). Returns the best program of the last one.
    """
    start = time.perf_counter()
    from gplearn.genetic import SymbolicRegressor

    model = SymbolicRegressor(population_size=1000, generations=1, function_set=GP_FUNCTIONS,
                              parsimony_coefficient=1e-3, p_crossover=0.7,
                              p_subtree_mutation=0.1, p_hoist_mutation=0.05,
                              p_point_mutation=0.1, max_samples=0.9, stopping_criteria=1e-10,
                              random_state=seed, n_jobs=1, verbose=0, warm_start=True)
    for generation in range(1, 201):
        model.set_params(generations=generation)
        begin = time.perf_counter()
        model.fit(x, y)
        now = time.perf_counter()
        last = now - begin
        best = min(p.raw_fitness_ for p in model._programs[-1])
        if best <= model.stopping_criteria or now - start + last > seconds:
            break
    return gplearn_sympy(model._program.program, names)


# ------------------------------------------------------------------ Operon

OPERON_SYMBOLS = "add,sub,mul,div,constant,variable,exp,log,sqrt,sin,cos,square"
"""Operon's primitives for :func:`operon_formula` (``square`` is printed as ``^ 2``)."""

_OPERON_NAMES = {"abs": sympy.Abs, "min": sympy.Min, "max": sympy.Max,
                 "ceil": sympy.ceiling, "nan": sympy.nan, "inf": sympy.oo}
"""Operon's infix spellings that sympy's parser would read otherwise (Python builtins, or
missing); ``aq`` and ``log1p`` are printed expanded, ``^`` is rewritten as ``**``."""


def operon_sympy(text: str, placeholders) -> sympy.Expr:
    """An Operon infix model string as sympy; ``placeholders``: ``{name in text: Symbol}``.

    Constants come back as the float32 values Operon holds (printed with 50 decimals, then
    rounded to float64 sympy Floats).
    """
    expr = sympy.parse_expr(text.replace("^", "**"),
                            local_dict={**_OPERON_NAMES, **placeholders})
    return expr.xreplace({f: sympy.Float(float(f)) for f in expr.atoms(sympy.Float)})


def operon_formula(x: np.ndarray, y: np.ndarray, names, seconds: float,
                   seed: int = 0) -> sympy.Expr:
    """Operon (``pyoperon.sklearn.SymbolicRegressor``) on ``x (N, d) -> y (N,)`` in ``seconds``.

    Single objective R2 with linear scaling (Operon's default), :data:`OPERON_SYMBOLS`,
    ``max_length`` 50, 10 Levenberg-Marquardt iterations on the constants of every offspring,
    one thread; generations and evaluations unbounded, so Operon's wall-time limit stops it
    (whole seconds, checked once per generation: what is left of ``seconds`` after the
    import, rounded, at least 1). The best model is returned as sympy in ``names`` and
    checked against the regressor's own (float32) predictions on ``x``.
    """
    start = time.perf_counter()
    from pyoperon.sklearn import SymbolicRegressor

    left = seconds - (time.perf_counter() - start)
    model = SymbolicRegressor(allowed_symbols=OPERON_SYMBOLS, max_length=50,
                              optimizer="lm", optimizer_iterations=10, generations=10**9,
                              max_evaluations=2**62, max_time=max(1, round(left)),
                              n_threads=1, random_state=seed)
    model.fit(x, np.asarray(y, dtype=float).reshape(-1))
    placeholders = [f"_operon_x{i}" for i in range(len(names))]
    text = model.get_model_string(model.model_, 50, placeholders)
    expr = operon_sympy(text, {p: sympy.Symbol(n) for p, n in zip(placeholders, names)})
    _check_operon(model, expr, x, names)
    return expr


def _check_operon(model, expr: sympy.Expr, x: np.ndarray, names) -> None:
    """The parsed model must reproduce Operon's predictions (float32: a loose tolerance)."""
    want = np.asarray(model.predict(x), dtype=float)
    with np.errstate(all="ignore"):
        mine = np.asarray(sympy.lambdify([sympy.Symbol(n) for n in names], expr, "numpy")(
            *np.asarray(x, dtype=float).T), dtype=complex) * np.ones(len(x))
    mine = np.where(mine.imag == 0, mine.real, np.nan)  # complex where Operon has NaN
    rows = np.isfinite(want) & (np.abs(want) < 1e30)
    scale = float(np.sqrt(np.mean(want[rows] ** 2))) if rows.any() else 1.0
    if not np.allclose(mine[rows], want[rows], rtol=1e-3, atol=1e-3 * scale):
        raise RuntimeError(f"pyoperon's model string was misread: {expr}")


# ------------------------------------------------------------------ PySINDy

SINDY_THRESHOLDS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
SINDY_WINDOWS = (9, 21)


def _sindy_feature(name: str, symbols) -> sympy.Expr:
    """One pysindy feature name (``'1'``, ``'x0^2 x3'``, ``'sin(1 x2)'``) as sympy."""
    out = sympy.Integer(1)
    for trig, freq, trig_var, var, power in re.findall(
            r"(sin|cos)\((\d+) x(\d+)\)|x(\d+)(?:\^(\d+))?", name):
        if trig:
            out *= getattr(sympy, trig)(int(freq) * symbols[int(trig_var)])
        else:
            out *= symbols[int(var)] ** (int(power) if power else 1)
    return out


SINDY_VARIANTS = ("standard", "weak", "ensemble")
"""How :func:`sindy_candidates` fits: Savitzky-Golay derivatives and STLSQ (``standard``);
the weak (integral) form, no derivative of the data taken (``weak``); bagged STLSQ on
the Savitzky-Golay derivatives, the median of 20 models (``ensemble``)."""

SINDY_TEST_FUNCTIONS = 200
"""Test-function windows of the weak form (pysindy's ``K``), spread over each trajectory."""


def _sindy_library(ps, degree: int, trig: bool):
    library = ps.PolynomialLibrary(degree=degree)
    return library + ps.FourierLibrary(n_frequencies=1) if trig else library


def _sindy_model(ps, variant: str, threshold: float, window: int, degree: int, trig: bool,
                 t: np.ndarray):
    """One PySINDy model of a sweep (see :data:`SINDY_VARIANTS`): the Savitzky-Golay
    ``window`` (samples) is, for the weak form, the test functions' width."""
    smoother = ps.SmoothedFiniteDifference(smoother_kws={"window_length": window,
                                                         "polyorder": 3})
    if variant == "weak":
        dt = float(t[1] - t[0])
        library = ps.WeakPDELibrary(function_library=_sindy_library(ps, degree, trig),
                                    spatiotemporal_grid=t,
                                    K=SINDY_TEST_FUNCTIONS, H_xt=[window * dt / 2])
        return ps.SINDy(optimizer=ps.STLSQ(threshold=threshold), feature_library=library)
    optimizer = ps.STLSQ(threshold=threshold)
    if variant == "ensemble":
        optimizer = ps.EnsembleOptimizer(optimizer, bagging=True, n_models=20)
    return ps.SINDy(optimizer=optimizer, feature_library=_sindy_library(ps, degree, trig),
                    differentiation_method=smoother)


def sindy_candidates(data, trig: bool, thresholds=SINDY_THRESHOLDS, windows=SINDY_WINDOWS,
                     degree: int = 3, variant: str = "standard") -> list[dict]:
    """PySINDy models over a threshold x window sweep: ``[{threshold, window, accelerations}]``.

    The state is ``(q, v)`` of every trajectory; PySINDy fits ``d(q, v)/dt`` over a
    polynomial library of ``degree`` (plus ``sin``/``cos`` of every state variable when
    ``trig``), as ``variant`` says (:data:`SINDY_VARIANTS`): on Savitzky-Golay derivatives
    (polynomial order 3, ``window`` samples) with STLSQ or a bagged ensemble of it, or in
    the weak form (test functions ``window`` samples wide, which needs every trajectory on
    one time grid). ``accelerations`` are the fitted ``dv/dt`` equations as sympy
    expressions in the state names.
    """
    import pysindy as ps

    if variant not in SINDY_VARIANTS:
        raise ValueError(f"variant must be one of {SINDY_VARIANTS}, got {variant!r}")
    coords = list(data.coords)
    n = len(coords)
    names = coords + [f"v_{c}" for c in coords]
    symbols = [sympy.Symbol(s) for s in names]
    xs = [np.concatenate([data[i].q, data[i].v], axis=1) for i in range(len(data))]
    t = np.asarray(data[0].t, dtype=float)
    if variant == "weak":  # one grid for all: the trajectories' common length
        size = min(len(x) for x in xs)
        xs, t = [x[:size] for x in xs], t[:size]
    dt = float(t[1] - t[0])
    out = []
    for window in windows:
        for threshold in thresholds:
            model = _sindy_model(ps, variant, threshold, window, degree, trig, t)
            with _quiet():
                model.fit(xs, t=t if variant == "weak" else dt)
            # the weak library's features are its function library's, in the same order
            library = _sindy_library(ps, degree, trig) if variant == "weak" \
                else model.feature_library
            if variant == "weak":
                library.fit(xs[0])
                if list(library.get_feature_names()) != list(model.get_feature_names()):
                    raise RuntimeError("pysindy's weak features are not its function "
                                       "library's (library layout changed?)")
            features = [_sindy_feature(f, symbols) for f in library.get_feature_names()]
            coef = model.coefficients()
            accelerations = [sympy.Add(*[sympy.Float(c) * f for c, f in
                                         zip(coef[n + i], features) if c != 0])
                             for i in range(n)]
            out.append({"threshold": threshold, "window": window,
                        "accelerations": accelerations,
                        "_check": (library, xs[0][:5], features)})
    _check_features(out[0]["_check"], symbols)
    for c in out:
        del c["_check"]
    return out


def _check_features(check, symbols) -> None:
    """The parsed feature names must reproduce pysindy's library on real states."""
    library, x, features = check
    library = library.transform(x)
    mine = np.column_stack([np.asarray(sympy.lambdify(symbols, f, "numpy")(*x.T), dtype=float)
                            * np.ones(len(x)) for f in features])
    if not np.allclose(np.asarray(library), mine, rtol=1e-8, atol=1e-10):
        raise RuntimeError("pysindy feature names were misread (library layout changed?)")


def close_on(states: np.ndarray, names, exprs, truths, rtol: float = 0.5) -> bool:
    """Whether expressions agree with the truth's on sample states (``(N, len(names))``)
    within ``rtol`` of its RMS: a cheap filter before the symbolic comparison."""
    symbols = [sympy.Symbol(n) for n in names]
    for expr, truth in zip(exprs, truths):
        with np.errstate(all="ignore"):
            a = np.asarray(sympy.lambdify(symbols, expr, "numpy")(*states.T), dtype=float)
            b = np.asarray(sympy.lambdify(symbols, truth, "numpy")(*states.T), dtype=float)
        a, b = a * np.ones(len(states)), b * np.ones(len(states))
        scale = float(np.sqrt(np.mean(b**2))) or 1.0
        if not np.all(np.isfinite(a)) or np.sqrt(np.mean((a - b) ** 2)) > rtol * scale:
            return False
    return True


class ExpressionModel(nn.Module):
    """Accelerations given as sympy expressions of the state, for :func:`pikan.simulate`."""

    def __init__(self, coords, accelerations) -> None:
        super().__init__()
        self.coords = tuple(coords)
        names = list(coords) + [f"v_{c}" for c in coords]
        symbols = [sympy.Symbol(s) for s in names]
        self._fns = [sympy.lambdify(symbols, a, "numpy") for a in accelerations]

    def vector_field(self, t, y: torch.Tensor) -> torch.Tensor:
        n = len(self.coords)
        state = y.detach().cpu().numpy()
        with np.errstate(all="ignore"):
            a = np.column_stack([np.asarray(f(*state.T), dtype=float) * np.ones(len(state))
                                 for f in self._fns])
        return torch.cat([y[:, n:], torch.as_tensor(a, dtype=y.dtype)], dim=-1)


# ------------------------------------------------------------------ HNN-style baseline


def trainable_parameters(module: nn.Module) -> int:
    """Trainable parameters, symbolic-edge affines of KANs excluded (unused while learning)."""
    return sum(p.numel() for name, p in module.named_parameters()
               if p.requires_grad and "sym_affine" not in name)


class MLPEnergy(nn.Module):
    """HNN-style baseline: an MLP energy of the raw state, equations of motion by autograd.

    ``kind="potential"``: ``V(q)`` with the known masses, ``a = -dV/dq / m``.
    ``kind="lagrangian"``: ``L(q, v)``, accelerations from the Euler-Lagrange equations.
    The MLP is ``n_in -> h -> h -> 1`` (SiLU) with ``h`` chosen so that the parameter count
    is as close as possible to ``target``.
    """

    def __init__(self, coords, masses, kind: str, target: int, seed: int = 0) -> None:
        super().__init__()
        self.coords, self.kind = tuple(coords), kind
        n = len(self.coords)
        n_in = n if kind == "potential" else 2 * n
        # params = n_in h + h + h^2 + h + h + 1 = h^2 + (n_in + 3) h + 1
        b = n_in + 3
        h = max(1, round((-b + math.sqrt(b * b + 4 * max(target - 1, 0))) / 2))
        with torch.random.fork_rng(devices=[]):  # seeded init, global RNG left alone
            torch.manual_seed(seed)
            self.net = nn.Sequential(nn.Linear(n_in, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(),
                                     nn.Linear(h, 1)).double()
        masses = np.broadcast_to(np.asarray(masses, dtype=float), (n,)).copy()
        self.register_buffer("masses", torch.as_tensor(masses, dtype=torch.float64))

    def _value(self, q, v):
        z = q if self.kind == "potential" else torch.cat([q, v], dim=-1)
        return self.net(z)[:, 0]

    def acceleration(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        from pikan.model import mechanics

        if self.kind == "potential":
            return mechanics.newtonian_acceleration(self.masses, q, v, potential=self._value)
        return mechanics.lagrangian_acceleration(self._value, q, v)

    def vector_field(self, t, y: torch.Tensor) -> torch.Tensor:
        n = len(self.coords)
        return torch.cat([y[:, n:], self.acceleration(y[:, :n], y[:, n:])], dim=-1)

    def energy(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        from pikan.model import mechanics

        if self.kind == "potential":
            return mechanics.kinetic_energy(self.masses, v) + self._value(q, v)
        return mechanics.lagrangian_energy(self._value, q, v)


def train_mlp(model: MLPEnergy, data, steps: int, seed: int = 0, batch: int = 1024,
              lr: float = 1e-2) -> dict:
    """Train on the acceleration loss with pikan's defaults: Adam, cosine decay to ``lr/10``,
    20 % of the trajectories held out, best validation state restored.

    Noisy data (no accelerations) get Savitzky-Golay estimates, as pikan's trainer uses.
    """
    from pikan.train import losses

    source = data if data.has_accelerations else data.with_derivatives()
    train, val = source.split(0.8, seed=seed)

    def tensors(d):
        q, v, _ = d.states()
        a, _ = d.accelerations()
        return [torch.as_tensor(x, dtype=torch.float64) for x in (q, v, a)]

    q, v, a = tensors(train)
    qv, vv, av = tensors(val)
    scale = losses.coordinate_scale(a)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr / 10)
    generator = torch.Generator().manual_seed(seed)
    best, best_state, faults = math.inf, copy.deepcopy(model.state_dict()), 0
    start = time.perf_counter()
    every = max(1, steps // 50)
    for step in range(steps):
        rows = torch.randint(len(q), (min(batch, len(q)),), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        loss = losses.acceleration_loss(model, q[rows], v[rows], a[rows], scale)
        if not torch.isfinite(loss):
            faults += 1
            model.load_state_dict(best_state)
            continue
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        schedule.step()
        if step % every == 0 or step == steps - 1:
            value = float(losses.acceleration_loss(model, qv, vv, av, scale).detach())
            if math.isfinite(value) and value < best:
                best, best_state = value, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return {"best_val": best, "seconds": time.perf_counter() - start, "faults": faults,
            "params": trainable_parameters(model)}
