r"""Static regression: a closed-form law from samples ``(X, y)`` that are not trajectories.

:func:`find_law` runs candidate generators (:mod:`pikan.laws.generators`) in four stages,
cheapest first, each only when the ones before found no candidate within the tolerance
(:data:`FIND_LAW_GENERATORS`): power laws; the direct generators on the data (sparse
regression with target transforms, rational functions, scanned rates and shifts, power-law
splits, the additive spline model); and, on a small KAN fitted to the samples as a
differentiable surrogate, the structure tests and then the KAN's edges read as formulas.
Every candidate's constants are refit against the data themselves and the law is selected
from the Pareto front (:mod:`pikan.laws.candidates`).

The surrogate is fitted by :meth:`pikan.train.recipe.Recipe.surrogate`, run on ``(x, y)``
by :func:`fit_static`, the driver of KAN recipes on static samples.

Anytime under a ``time_limit``: the stages check a :class:`~pikan.laws.candidates.Deadline`
between candidate families and inside their long loops; when the time is up the law is
selected from the candidates fitted so far.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import scipy.spatial
import sympy
import torch

from pikan.errors import DataError, SpecError
from pikan.kan import symbolic
from pikan.kan.network import KAN
from pikan.laws.candidates import (
    SELECT_FACTOR,
    Deadline,
    Fit,
    Target,
    alternatives,
    as_deadline,
    complexity,
    evaluate,
    fit_candidates,
    pareto,
    refit,
    sample_rows,
    search_deadline,
    select,
    snap,
    tidy,
)
from pikan.laws.dimensions import pi_forms
from pikan.laws.generators.additive_model import AdditiveModel
from pikan.laws.generators.base import Generator, Options, propose
from pikan.laws.generators.kan_edges import KanEdges, KanReading
from pikan.laws.generators.power_law import ExpPowerLaw, PowerLaw, PowerLawSplit
from pikan.laws.generators.rational import Rational
from pikan.laws.generators.regression import SparseRegression
from pikan.laws.generators.separability import Separability
from pikan.laws.generators.varpro import VarPro
from pikan.laws.law import Law
from pikan.laws.reductions import reductions
from pikan.spec.expr import is_valid_name
from pikan.spec.units import check_dimensions, parse_units, units_map
from pikan.train.optim import lbfgs_rounds
from pikan.train.recipe import Recipe
from pikan.train.threads import with_call_threads

__all__ = ["DEFAULT_TIME_LIMIT", "FIND_LAW_GENERATORS", "MIN_SAMPLES", "NOISE_CORRELATION",
           "check_search_options", "find_law", "fit_static", "fit_surrogate",
           "residuals_are_noise"]

DEFAULT_TIME_LIMIT = 30.0
"""Seconds :func:`find_law` takes at most by default (one formula, up to 10 inputs)."""

FIND_LAW_GENERATORS: tuple[tuple[Generator, ...], ...] = (
    (PowerLaw(), ExpPowerLaw()),
    (Rational(), SparseRegression(transforms=True, max_terms=None, log_near_zero=True),
     VarPro(), PowerLawSplit(), AdditiveModel()),
    (Separability(),),
    (KanEdges(),),
)
"""The generators of :func:`find_law`'s four stages, cheapest families first within each
(rational functions take a few SVDs, sparse regression seconds on three inputs):
(0) power laws and their exponentials; (1) on the data directly; (2) on the KAN surrogate
(``options.function``); (3) the surrogate's edges (``options.kan``)."""


# ------------------------------------------------------------------ the KAN surrogate


def _lbfgs(kan: KAN, x: torch.Tensor, y: torch.Tensor, rounds: int, penalty: float,
           params: Sequence[torch.Tensor], deadline: Deadline) -> None:
    """``rounds`` L-BFGS steps (20 iterations each) on the mean squared error (+ sparsity);
    with a limited ``deadline`` the rounds run one at a time and stop when it passes."""

    def loss_fn() -> torch.Tensor:
        loss = torch.mean((kan(x)[:, 0] - y) ** 2)
        return loss + penalty * kan.regularization(x) if penalty else loss

    if not deadline.limited:
        lbfgs_rounds(params, loss_fn, rounds)
        return
    for _ in range(rounds):
        if deadline.expired():
            return
        lbfgs_rounds(params, loss_fn, 1)


def fit_static(kan: KAN, x: torch.Tensor, y: torch.Tensor, recipe: Recipe,
               deadline: Deadline | None = None) -> KAN:
    r"""Run a KAN recipe on static samples: ``kan(x)[:, 0] ~ y`` by least squares.

    The driver of :class:`~pikan.train.recipe.Recipe` for ``(x, y)`` fits (:func:`pikan.fit`
    is the one for models on trajectories). A fit stage minimizes
    :math:`\mathrm{mean}(\mathrm{kan}(x) - y)^2` plus ``sparsity`` times
    :meth:`~pikan.kan.KAN.regularization` by L-BFGS
    (:func:`pikan.train.optim.lbfgs_rounds`: ``steps`` iterations in whole rounds of 20) on
    every parameter or on the spline coefficients alone (``params``); prune, refine and
    adapt stages act on the KAN as in :func:`pikan.fit`. Only L-BFGS fit stages are run.

    Parameters
    ----------
    kan : KAN
        Modified in place (and returned).
    x : Tensor, shape (N, in_dim)
    y : Tensor, shape (N,)
    recipe : Recipe
    deadline : Deadline, optional
        Anytime: with a limit, L-BFGS runs one round at a time and stops when it passes,
        and the stages after it are skipped.

    Returns
    -------
    KAN
    """
    deadline = as_deadline(deadline)
    for stage in recipe:
        if stage.kind == "fit":
            if stage.optimizer != "lbfgs":
                raise ValueError(f"fit_static runs L-BFGS fit stages only, got {stage}")
            params = list(kan.parameters()) if stage.params == "all" else \
                [p for n, p in kan.named_parameters() if n.endswith("coef")]
            _lbfgs(kan, x, y, -(-stage.steps // 20), stage.sparsity, params, deadline)
        elif deadline.expired():
            continue
        elif stage.kind == "prune":
            kan.prune(x, threshold=stage.threshold)
        elif stage.kind == "refine":
            kan.refine(stage.grid or 2 * kan.layers[0].grid, x)
        else:
            kan.update_grid(x, adaptivity="auto")
    return kan


def fit_surrogate(x: np.ndarray, y: np.ndarray, names: Sequence[str], seed: int,
                  steps: int, deadline: Deadline | None = None) -> tuple[KAN, float, float]:
    """A small KAN fitted to standardized ``y``: (kan, mean, std), ``y ~ mean + std * kan(x)``.

    Widths ``[d, 2d + 1, 1]`` (at least 3 hidden nodes), grid 5 spread uniformly over the
    samples, fitted by :meth:`Recipe.surrogate(steps) <pikan.train.recipe.Recipe.surrogate>`
    (:func:`fit_static`). Anytime: once ``deadline`` passes the rest of the recipe is
    skipped and the KAN fitted so far is returned.
    """
    d = x.shape[1]
    widths = [d, max(2 * d + 1, 3), 1]
    kan = KAN(widths, grid=5, seed=seed, input_names=list(names)).to(torch.float64)
    mean, std = float(np.mean(y)), float(np.std(y)) or 1.0
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor((y - mean) / std, dtype=torch.float64)
    kan.update_grid(xt, adaptivity=0.0)
    fit_static(kan, xt, yt, Recipe.surrogate(steps), deadline)
    return kan, mean, std


# ------------------------------------------------------------------ noise and stages


NOISE_CORRELATION = 3.0
"""Residuals count as noise when their correlation with the residual at the nearest other
sample is below this many standard errors (``1/sqrt(N)``) of zero."""


def residuals_are_noise(target: Target, fit: Fit, max_rows: int = 2000) -> bool:
    """Whether a fit leaves only noise: its residuals are uncorrelated between neighbours.

    A wrong or approximate law leaves a smooth residual, which nearest neighbours in the
    (standardized) inputs share; measurement noise is independent from sample to sample.
    The correlation of each residual with its nearest neighbour's is compared with
    :data:`NOISE_CORRELATION` standard errors. This is how :func:`find_law` notices noisy
    data under the default ``tolerance`` (1e-6): measured on ``3/2*pr*V`` with 1 % noise,
    the KAN stage then added 27 s and nothing better.
    """
    try:
        pred = target.evaluator(fit.expr)(())
    except (ValueError, TypeError, OverflowError, ZeroDivisionError):
        return False
    r = target.weighted(target.y - pred)
    if not np.all(np.isfinite(r)) or r.size < 20:
        return False
    z = target.z[:max_rows]
    r = r[:max_rows] - r[:max_rows].mean()
    spread = z.std(axis=0)
    z = z / np.where(spread > 0, spread, 1.0)
    if not np.all(np.isfinite(z)):
        return False
    _, index = scipy.spatial.cKDTree(z).query(z, k=2)
    neighbour = index[:, 1]
    power = float(r @ r)
    if power == 0.0:
        return True
    correlation = float(r @ r[neighbour]) / power
    return correlation < NOISE_CORRELATION / math.sqrt(r.size)


def _stages(generators) -> tuple[tuple[Generator, ...], ...]:
    """``generators`` as four tuples of Generator (see :func:`find_law`), or a SpecError."""
    try:
        stages = tuple(tuple(stage) for stage in generators)
    except TypeError:
        stages = ()
    if len(stages) != 4 or not all(isinstance(g, Generator) for s in stages for g in s):
        raise SpecError(f"find_law: generators must be four stages, each a sequence of "
                        f"candidate generators (pikan.laws.generators), got {generators!r}; "
                        "hint: start from pikan.laws.find_law.FIND_LAW_GENERATORS.")
    return stages


def _explained(fits: Sequence[Fit], tolerance: float, target: Target | None = None) -> bool:
    """Whether some fit explains the data, so that the next stage could only add more
    complex alternatives: within the tolerance and leaving residuals that are noise
    (:func:`residuals_are_noise`, with ``target``): on noisy data a quadratic within 1 % of
    ``sin(2*theta)`` does not, nor on exact data a 7-term series within 1e-6 of it, while
    an exact law leaves rounding errors (or nothing), which count as noise whatever they
    look like (:data:`ROUNDING`)."""
    within = sorted((f for f in fits if f.error <= tolerance), key=lambda f: f.complexity)
    if not within or target is None or any(f.error <= ROUNDING for f in within):
        return bool(within)
    return any(residuals_are_noise(target, f) for f in within[:MAX_NOISE_CHECKS])


MAX_NOISE_CHECKS = 4
"""Fits within the tolerance (simplest first) :func:`_explained` tests for noise residuals."""


NOISY_TOLERANCE = 1e-4
"""A tolerance above this relative error is a noise level: given, :func:`find_law` then
searches the direct generators even when a power law explains the data; given or raised
to it by :func:`_settle`, it selects with :func:`noise_factor`."""


def _noisy(tolerance: float) -> bool:
    """Whether ``tolerance`` is a noise level (:data:`NOISY_TOLERANCE`)."""
    return tolerance > NOISY_TOLERANCE


NOISE_SPREAD = 3.0
"""Standard errors of a noise's mean square that :func:`noise_factor` allows a law's."""


NOISY_LOOK = 0.75
"""On noisy data (a given tolerance above :data:`NOISY_TOLERANCE`), the part of the time
left that the KAN surrogate's stages get when a law already explains the samples: a
polynomial within 1 % of ``sin(2*theta)`` leaves residuals that are noise too, so the
surrogate looks further, but the rest is kept for snapping the chosen law's constants."""


def noise_factor(samples: int) -> float:
    r"""How much larger than the best a law's relative error may be on noisy data (in place
    of :data:`~pikan.laws.candidates.SELECT_FACTOR`): the mean square of ``samples``
    Gaussian residuals varies by :math:`\sqrt{2/N}` of itself, so a law whose mean square
    exceeds the best one's by more than :data:`NOISE_SPREAD` of those leaves something
    the noise cannot, :math:`\sqrt{1 + 3\sqrt{2/N}}`: 1.06 on 1,000 samples (1.5 at
    most)."""
    return min(math.sqrt(1.0 + NOISE_SPREAD * math.sqrt(2.0 / max(samples, 1))),
               SELECT_FACTOR)


ROUNDING = 1e-12
"""A relative error at most this is the rounding of an exact law, whose residuals may well
be smooth (the rounding of a smooth function is): :func:`_select` then takes the law it
chose without testing its residuals for noise, its numbers at most this size dropped when
it stays as close (a Morse well at 7e-16 lost to a 34-node law at 6.8e-16 whose rounding
looked like noise; ``n (Cv log(T2/T1) + R log(V2/V1))`` came with a fitted ``2.2e-16``)."""


def _select(fits: Sequence[Fit], tolerance: float, target: Target) -> Fit | None:
    """:func:`select`, but among the Pareto front's fits whose residuals are noise when
    there are any: a simpler law within the tolerance that leaves structure behind is an
    approximation, not the law. On noisy data (:data:`NOISY_TOLERANCE`) a law must come
    as close as the noise allows (:func:`noise_factor`). A law at rounding error is exact
    whatever its residuals look like (:data:`ROUNDING`)."""
    factor = noise_factor(target.y.size) if _noisy(tolerance) else SELECT_FACTOR
    chosen = select(fits, tolerance, factor)
    if chosen is not None and chosen.error <= ROUNDING:  # exact, but for negligible numbers
        tiny = {f: sympy.Integer(0) for f in chosen.expr.atoms(sympy.Float)
                if abs(float(f)) <= ROUNDING}
        if tiny:
            expr = chosen.expr.xreplace(tiny)
            err, rmse = evaluate(target, expr)
            if err <= ROUNDING:
                return Fit(expr, err, rmse, complexity(expr), chosen.source, chosen.snapped)
        return chosen
    if chosen is None or residuals_are_noise(target, chosen):
        return chosen
    clean = [f for f in pareto(fits) if residuals_are_noise(target, f)]
    return select(clean, tolerance, factor) if clean else chosen


def _settle(fits: Sequence[Fit], target: Target, tolerance: float
            ) -> tuple[Fit | None, float]:
    """The selection and the tolerance: raised to the best fit's error when that fit
    leaves only noise (:func:`residuals_are_noise`), so that the search stops there."""
    best = min((f for f in fits if math.isfinite(f.error)), key=lambda f: f.error,
               default=None)
    if best is not None and best.error > tolerance and residuals_are_noise(target, best):
        tolerance = best.error  # nothing left to explain: the noise level is the tolerance
    return select(fits, tolerance), tolerance


MAX_REDUCTIONS = 2
"""How many times :func:`find_law` replaces a pair of inputs by one (one more input each)."""

STRONG_REDUCTION = 0.1
"""A reduction whose roughness is at most this fraction of the full problem's is searched
before the direct generators, with most of the time (a weaker one after them)."""


def _fitted(stage: int, stages, target: Target, options: Options, deadline: Deadline,
            cache: dict | None) -> list[Fit]:
    """The fits of one stage's candidates (``options.tolerance``), from ``cache`` when the
    same stage of the same problem at the same tolerance ran to its end before: a variant
    of :func:`_dimensionless_search` is searched without the surrogate, then again with it,
    and its first stages and pair reductions need not be fitted twice."""
    key = None
    if cache is not None:
        key = (stage, target.names, hash(target.z.tobytes()), hash(target.y.tobytes()),
               options.tolerance)
        if key in cache:
            return list(cache[key])
    cands = propose(stages[stage], target, options.replace(deadline=deadline))
    fits = fit_candidates(cands, target, options.tolerance, deadline=deadline)
    if key is not None and not deadline.expired():  # complete: worth keeping
        cache[key] = list(fits)
    return fits


def _search(target: Target, stages, options: Options, steps: int, depth: int = 0,
            noisy: bool | None = None, cache: dict | None = None
            ) -> tuple[list[Fit], float]:
    """The four stages of :func:`find_law` on ``target``, with the pair reductions of
    :mod:`pikan.laws.reductions` (``depth`` of them already applied) searched before stage
    1 when the samples clearly support one (:data:`STRONG_REDUCTION`), else between stages
    1 and 2: every fit, and the tolerance (raised to the noise level when the residuals
    are noise, :func:`_settle`). ``noisy``: whether the caller's tolerance is a noise level
    (:data:`NOISY_TOLERANCE`; None: ``options.tolerance`` says), so that stage 1 runs even
    when a power law is within it; a tolerance raised here is not one (a reduction that
    loses an input's dependence leaves residuals that pass for noise too). ``cache``: see
    :func:`_fitted`."""
    x, yy, names = target.z, target.y, list(target.names)
    tolerance, seed, deadline = options.tolerance, options.seed, as_deadline(options.deadline)
    if noisy is None:
        noisy = _noisy(tolerance)
    fits = _fitted(0, stages, target, options, deadline, cache)
    _, tolerance = _settle(fits, target, tolerance)
    found = reductions(target, seed=seed) if depth < MAX_REDUCTIONS and x.shape[1] >= 2 \
        and not _explained(fits, tolerance, target) else []
    strong = bool(found) and found[0].relative <= STRONG_REDUCTION
    if strong:  # the problem has fewer inputs than it was given: search that one first
        reduced = options.replace(tolerance=tolerance, deadline=deadline.share(0.6))
        fits += _reduced_fits(target, found, stages, reduced, steps, depth, noisy, cache)
        _, tolerance = _settle(fits, target, tolerance)
    if (noisy or not _explained(fits, tolerance, target)) and not deadline.expired():
        fits += _fitted(1, stages, target, options.replace(tolerance=tolerance),
                        deadline.share(0.5), cache)
        _, tolerance = _settle(fits, target, tolerance)
    if found and not strong and not _explained(fits, tolerance, target) \
            and not deadline.expired():
        reduced = options.replace(tolerance=tolerance, deadline=deadline.share(0.5))
        fits += _reduced_fits(target, found, stages, reduced, steps, depth, noisy, cache)
        _, tolerance = _settle(fits, target, tolerance)
    # under a noise level the surrogate looks past a law that explains the samples, at the
    # top level only (inside a pair reduction it would spend the time the others need)
    surrogate_may_run = steps > 0 and not deadline.expired()
    explained = surrogate_may_run and _explained(fits, tolerance, target)
    if surrogate_may_run and ((noisy and depth == 0) or not explained):
        if explained:  # noisy: a series may explain it, so look further, leaving time to
            deadline = deadline.share(NOISY_LOOK)  # snap the law chosen (find_law)
        kan, mean, std = fit_surrogate(x, yy, names, seed, steps, deadline.share(0.35))

        def fn(zt, kan=kan, mean=mean, std=std):
            return mean + std * kan(zt)[:, 0]

        surrogate = options.replace(tolerance=tolerance, function=fn,
                                    kan=KanReading(kan, x, names, shift=mean, scale=std))
        cands = propose(stages[2], target, surrogate.replace(deadline=deadline.share(0.4)))
        fits += fit_candidates(cands, target, tolerance, deadline=deadline.share(0.4))
        if min((f.error for f in fits), default=math.inf) > tolerance \
                and not deadline.expired():
            cands = propose(stages[3], target,
                            surrogate.replace(deadline=deadline.share(0.5)))
            fits += fit_candidates(cands, target, tolerance, deadline=deadline)
    return fits, tolerance


MAX_MAPPED = 40
"""Fits of the dimensionless problem :func:`find_law` maps back to the inputs at most (the
most accurate first, the Pareto front always)."""


def _reduced_fits(target: Target, found: Sequence, stages, options: Options, steps: int,
                  depth: int, noisy: bool, cache: dict | None = None) -> list[Fit]:
    """Fits found in the pair reductions the samples support (:func:`reductions`), mapped
    back to the target's inputs and evaluated on it; each reduction gets an equal share of
    the deadline, and the rest are skipped once one explains the data (but for the other
    way up of a ratio, where the same law may be simpler)."""
    deadline = as_deadline(options.deadline)
    out: list[Fit] = []
    taken = set(target.names)
    name = next(f"u{k}" for k in range(1, len(taken) + 2) if f"u{k}" not in taken)
    for k, reduction in enumerate(found):
        mirror = k > 0 and (found[k - 1].i, found[k - 1].j) == (reduction.j, reduction.i)
        if deadline.expired() or (_explained(out, options.tolerance, target) and not mirror):
            break  # a ratio is tried both ways up: atan(n2/n1) beats pi/2 - atan(n1/n2)
        share = deadline.share(1.0 / (len(found) - k))
        inner, _ = _search(reduction.reduce(target, name), stages,
                           options.replace(deadline=share), steps, depth + 1, noisy, cache)
        u = {sympy.Symbol(name): reduction.expr(target.names)}
        out += _mapped(inner, target, lambda g, u=u: g.xreplace(u),
                       f"reduced:{reduction.operation}")
    return out


def _mapped(fits: Sequence[Fit], target: Target, law, tag: str) -> list[Fit]:
    """Fits of a smaller problem mapped to ``target``'s inputs by ``law(expr)`` and
    evaluated there: the Pareto front (put over one denominator where simpler) and the
    most accurate others, :data:`MAX_MAPPED` in all."""
    front = pareto(fits)
    rest = sorted((f for f in fits if f not in front and math.isfinite(f.error)),
                  key=lambda f: f.error)
    out = []
    for fit in [*front, *rest][:MAX_MAPPED]:
        expr = law(fit.expr)
        if fit in front:
            expr = _cancelled(expr)
        err, rmse = evaluate(target, expr)
        out.append(Fit(expr, err, rmse, complexity(expr), f"{tag}:{fit.source}", fit.snapped))
    return out


PI_FORMS = 3
"""Buckingham pi forms :func:`find_law` searches at most (different reference inputs)."""

MAX_VARIANTS = 8
"""Forms and group orientations :func:`find_law` searches at most: each without the KAN
surrogate in :data:`QUICK_SHARE` of the time (the first half of it, the others equal
shares), then the one whose laws came closest with it."""

QUICK_SHARE = 0.6
"""The part of :func:`find_law`'s time (with units) for the variants' searches without the
KAN surrogate."""


def _variants(forms: Sequence) -> list:
    """The forms to search, in order: the best form, each group both ways up
    (:meth:`~pikan.laws.dimensions.PiForm.orientations`), then the other forms (other
    inputs as the reference scales: ``En/(kb*T)`` and ``mu/(kb*T)`` rather than ``mu/En``
    and ``kb*T/En``) each as given and flipped; :data:`MAX_VARIANTS` at most."""
    best = forms[0].orientations()
    others = [v for form in forms[1:] for v in form.orientations(0)]
    unique = {}
    for form in best[:2] + others + best[2:]:
        unique.setdefault((form.prefactor, frozenset(form.groups)), form)
    return list(unique.values())[:MAX_VARIANTS]


def _dimensionless_search(target: Target, stages, options: Options, steps: int, units,
                          output: str, output_units) -> tuple[list[Fit], float, dict]:
    """:func:`_search` on the Buckingham pi form of the problem (:mod:`pikan.laws.dimensions`),
    its fits mapped back to the inputs and evaluated on ``target``; with the units as
    text by name (inputs and ``output``)."""
    names = list(target.names)
    if units is None or output_units is None:
        raise SpecError("find_law: units need both units= (every input) and output_units=.")
    parsed = units_map(units, "find_law")
    unknown = [n for n in parsed if n not in names]
    if unknown:
        raise SpecError(f"find_law: units name {unknown}, which are not inputs {names}.")
    out_unit = parse_units(output_units)
    forms = pi_forms(parsed, names, out_unit, PI_FORMS)
    form = forms[0]
    options = options.replace(dimensionless=True)  # each variant's values are pure numbers
    deadline = as_deadline(options.deadline)
    mapped: list[Fit] = []
    if not form.groups:  # the law is a constant times the prefactor
        _, w = form.reduce(target.z, target.y)
        fit = refit(sympy.Float(float(np.mean(w))) * form.prefactor_expr(), target,
                    "units:prefactor", offset=False, deadline=deadline)
        mapped = [fit, snap(fit, target, options.tolerance, deadline=deadline)]
    variants = [v for v in _variants(forms) if v.groups]
    # every variant without the KAN surrogate in QUICK_SHARE of the time (the first half
    # of it, the others equal shares), then the surrogate on the variant that came closest,
    # unless one explained its own problem (a 7-term series within the tolerance of y is no
    # answer where sin(2*theta) needs the surrogate: its error in the group's problem is
    # still above it); under a given noise level the surrogate runs on that one anyway
    quick, closest, explained = deadline.share(QUICK_SHARE), [], False
    cache: dict = {}  # the variant searched again with the surrogate reuses its first stages
    for k, variant in enumerate(variants):
        if explained or (mapped and quick.expired()):
            break
        share = quick.share(0.5 if k == 0 and len(variants) > 1 else 1.0 / (len(variants) - k))
        inner = variant.target(target)
        fits, inner_tolerance = _search(inner, stages, options.replace(deadline=share), 0,
                                        cache=cache)
        explained = _explained(fits, inner_tolerance, inner)
        found = _mapped(fits, target, variant.law, "units")
        closest.append((min((f.error for f in found), default=math.inf), k))
        mapped += found
    noisy = _noisy(options.tolerance)
    if closest and steps > 0 and (noisy or not explained) and not deadline.expired():
        best = min(closest)[0]  # within a factor 3 of the closest, the earlier variant
        variant = variants[min(k for err, k in closest if err <= 3 * best)]
        if explained:  # noisy: look further in the problem of the variant that explained it
            variant = variants[closest[-1][1]]
        fits, _ = _search(variant.target(target), stages, options, steps, cache=cache)
        mapped += _mapped(fits, target, variant.law, "units")
    consistent = [f for f in mapped if check_dimensions(
        f.expr, parsed, out_unit, pure_numbers=True).consistent]
    _, tolerance = _settle(consistent, target, options.tolerance)
    shown = {n: str(parsed[n]) for n in names}
    shown[output] = str(out_unit)
    return consistent, tolerance, shown


MIN_SAMPLES = 10
"""The fewest samples a law is searched on (find_law's data, extract's ``max_samples``)."""


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_search_options(who: str, *, tolerance=None, seed=0, max_samples=MIN_SAMPLES,
                         library=None, steps=0) -> None:
    """The options a law search shares (:func:`find_law`, :func:`pikan.laws.extract.extract`),
    checked before any work.

    Parameters
    ----------
    who : str
        The function named in the messages.
    tolerance : float or None
        None (extract's automatic choice) or a finite relative error in [0, 1].
    seed : int
        A whole number >= 0.
    max_samples : int
        A whole number >= :data:`MIN_SAMPLES`.
    library : sequence of str or None
        Names of :func:`pikan.kan.symbolic.names` (a list, not one string).
    steps : int
        A whole number >= 0.

    Raises
    ------
    SpecError
        The first option out of its range, named with the range.
    """
    if tolerance is not None and not (
            isinstance(tolerance, numbers.Real) and not isinstance(tolerance, bool)
            and math.isfinite(tolerance) and 0 <= tolerance <= 1):
        raise SpecError(f"{who}: tolerance must be a relative error in [0, 1] (e.g. the noise "
                        f"level of the data), got {tolerance!r}.")
    if not (_whole(seed) and seed >= 0):
        raise SpecError(f"{who}: seed must be a whole number >= 0, got {seed!r}.")
    if not (_whole(max_samples) and max_samples >= MIN_SAMPLES):
        raise SpecError(f"{who}: max_samples must be a whole number >= {MIN_SAMPLES}, got "
                        f"{max_samples!r}.")
    if not (_whole(steps) and steps >= 0):
        raise SpecError(f"{who}: steps must be a whole number >= 0 (0: no KAN surrogate), got "
                        f"{steps!r}.")
    if library is not None:
        known = symbolic.names()
        if isinstance(library, str) or not all(isinstance(n, str) for n in library):
            raise SpecError(f"{who}: library must be a list of primitive names such as "
                            f"['sin', 'exp'], got {library!r}.")
        unknown = [n for n in library if n not in known]
        if unknown:
            raise SpecError(f"{who}: library names unknown primitives {unknown}; known: "
                            f"{', '.join(known)}.")


@with_call_threads
def find_law(X, y, names: Sequence[str], output: str = "y", seed: int = 0, steps: int = 800,
             library: Sequence[str] | None = None, tolerance: float = 1e-6,
             max_samples: int = 2000, time_limit: float | None = DEFAULT_TIME_LIMIT,
             generators: Sequence[Sequence[Generator]] = FIND_LAW_GENERATORS,
             units: Mapping[str, str] | None = None, output_units: str | None = None) -> Law:
    """A closed-form law ``output = f(names)`` from static samples (not trajectories).

    Stages, cheapest first, every candidate's constants refit against the data themselves;
    each stage runs only when the ones before found no candidate within ``tolerance``:

    0. power laws ``C * prod z_k^e_k`` by least squares on logarithms, and the same for
       ``log|y|`` (``exp(-m*g*h/(kb*T))``); milliseconds, and the common product laws
       such as ``T*kb*mob`` end here;
    1. on the data directly: rational functions ``P/Q`` (a few SVDs), sparse regression
       over term libraries (also on transformed targets ``y^2, 1/y, 1/y^2, log|y|,
       sqrt(y)``), laws with a scanned rate or shift for 1-2 inputs
       (:mod:`pikan.laws.generators.varpro`), a power law in the one-signed inputs split
       off the rest (``G m1 m2 / r**2``: the rest ``1/r**2`` is a problem in the
       coordinates alone) and the additive spline model
       (:mod:`pikan.laws.generators.additive_model`), in that order, up to the first that
       proposes a law to rounding (:func:`pikan.laws.generators.base.propose`);
    2. a small KAN ``[d, 2d + 1, 1]`` is fitted by :meth:`Recipe.surrogate
       <pikan.train.recipe.Recipe.surrogate>` (L-BFGS on the spline coefficients, then
       with a sparsity penalty, pruning, L-BFGS, grid refinement 5 -> 10 -> 20 with
       L-BFGS after each; ``steps`` sets the effort) as a differentiable surrogate for the
       structure tests (:mod:`pikan.laws.generators.separability`);
    3. if still needed, the surrogate's edges are read as formulas
       (:mod:`pikan.laws.generators.kan_edges`).

    The generators of each stage are ``generators[k]`` (default
    :data:`FIND_LAW_GENERATORS`). The law is selected from the Pareto front of all
    candidates (see :mod:`pikan.laws.candidates`).
    A KAN is never fitted when stage 1 already explains the data (exact data from a law
    the libraries can express): it could only add more complex alternatives. Under a
    given noise level (``tolerance`` above :data:`NOISY_TOLERANCE`) it is: a polynomial
    within 1 % of ``sin(2*theta)`` explains the samples as well as the law, and only the
    surrogate proposes the law; it then gets :data:`NOISY_LOOK` of the time left, the rest
    kept for snapping the chosen law's constants.

    Anytime: with a ``time_limit`` the stages check the clock between candidate families
    and inside their long loops (sparse regression over the libraries, the surrogate's
    L-BFGS rounds, the edge fits, the structure pieces, the constant refits); when the
    time is up, the law is selected from the candidates fitted so far. Stage 1 may use
    half of the time, the surrogate about a third of what is then left.

    Parameters
    ----------
    X : array, shape (N, d)
    y : array, shape (N,)
    names : sequence of str
        The d input names.
    output : str
        Name of the law (``Law.module``).
    seed : int
    steps : int
        L-BFGS iterations of the KAN surrogate (0: never fit one; stage 1 only).
    library : sequence of str, optional
        Symbolic primitives allowed (default: all).
    tolerance : float
        Relative error treated as negligible: give the noise level of ``y`` as
        ``sigma / std(y)`` (the stages then run as described above for noisy samples).
    max_samples : int
        Samples used (a seeded subset).
    time_limit : float or None
        Seconds to return within (default :data:`DEFAULT_TIME_LIMIT`; honoured within
        about 20 %); None: no limit.
    generators : sequence of 4 sequences of Generator
        The generators of stages 0 to 3 (see above and :mod:`pikan.laws.generators.base`).
    units : dict of str -> str, optional
        The units of every input (:mod:`pikan.spec.units`: ``{"m": "kg", "v": "m/s", "theta":
        "1"}``); with ``output_units``, the search runs on the Buckingham pi form of the
        problem (:mod:`pikan.laws.dimensions`): ``y = prod(x**p) * g(pi_1, ..., pi_m)`` with
        the groups ``pi_j`` pure numbers, so the search has ``m`` inputs, often none (the law
        is then a constant times a product of powers, found in milliseconds), and every
        law returned is dimensionally consistent with its numbers pure. Dimensional constants
        (G, k_B, c) must then be inputs.
    output_units : str, optional
        The unit of ``y`` (``"J"``).

    Returns
    -------
    Law
        ``kind="Function"``; ``expr`` in ``names``; ``units`` by name when units were given.

    Raises
    ------
    SpecError
        Names that are not valid variable names or do not match ``X``, a ``time_limit``
        that is not a positive number, ``generators`` that are not four stages of
        generators, or an option out of its range (:func:`check_search_options`: tolerance
        in [0, 1], whole ``seed >= 0``, ``steps >= 0``, ``max_samples >= 10``, known
        ``library`` names); units that do not parse, miss an input, or cannot make the
        output's unit from the inputs' (a dimensional constant is missing).
    DataError
        Shapes that disagree, fewer than 10 samples, or non-finite values.
    """
    deadline = search_deadline(time_limit, "find_law")
    check_search_options("find_law", tolerance=tolerance, seed=seed, max_samples=max_samples,
                         library=library, steps=steps)
    stages = _stages(generators)
    x = np.asarray(X, dtype=np.float64)
    yy = np.asarray(y, dtype=np.float64)
    names = [str(n) for n in names]
    if x.ndim != 2:
        raise DataError(f"find_law: X must have shape (N, d), got {x.shape}.")
    if yy.shape != (x.shape[0],):
        raise DataError(f"find_law: y must have shape ({x.shape[0]},) to match X, got "
                        f"{yy.shape}.")
    if len(names) != x.shape[1]:
        raise SpecError(f"find_law: X has {x.shape[1]} columns but {len(names)} names were "
                        f"given ({names}); expected one name per column.")
    for n in [*names, output]:
        if not is_valid_name(n):
            raise SpecError(f"find_law: {n!r} is not a valid variable name; use letters, "
                            "digits and underscores, not a function name such as 'sin'.")
    if len(set(names)) != len(names):
        raise SpecError(f"find_law: duplicate input names in {names}.")
    if x.shape[0] < 10:
        raise DataError(f"find_law: got {x.shape[0]} samples, expected at least 10.")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(yy))):
        raise DataError("find_law: X and y must be finite; drop or impute NaN/inf rows.")
    rows = sample_rows(x.shape[0], max_samples, seed)
    x, yy = x[rows], yy[rows]
    target = Target(tuple(names), x, "values", yy)
    options = Options(library=library, tolerance=tolerance, seed=seed, deadline=deadline)
    if units is None and output_units is None:
        fits, tolerance = _search(target, stages, options, steps)
        unit_text = {}
    else:
        fits, tolerance, unit_text = _dimensionless_search(
            target, stages, options, steps, units, output, output_units)
    chosen = _select(fits, tolerance, target)
    if chosen is not None and unit_text and chosen.expr.atoms(sympy.Float):
        snapped = snap(chosen, target, tolerance, deadline=deadline)  # mapped laws are not
        if _consistent(snapped.expr, unit_text, output) \
                and complexity(snapped.expr) <= chosen.complexity:
            chosen = snapped
    if chosen is not None:
        tidied = tidy(chosen, target, deadline)
        if not unit_text or _consistent(tidied.expr, unit_text, output):
            chosen = tidied
    if chosen is None:
        raise DataError("find_law: no candidate law is finite on the data.")
    return Law(output, "Function", tuple(names), chosen.expr, chosen.expr, chosen.r2,
               chosen.rmse, chosen.error, chosen.complexity, tuple(alternatives(fits)),
               units=unit_text)


def _cancelled(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` in its simplest of a few cheap forms: a law mapped back from a smaller
    problem carries the prefactor's powers in every term (``x1**2*(x2/x1 - 1)``: one
    common denominator) and products of exponentials (``exp(a)*exp(-b)``); floats within
    1e-9 of a whole number become it."""
    whole = {f: sympy.Integer(round(float(f))) for f in expr.atoms(sympy.Float)
             if abs(float(f)) < 1e6 and abs(float(f) - round(float(f))) <= 1e-9 * abs(float(f))}
    best = expr.xreplace(whole)
    for form in (sympy.cancel, lambda e: sympy.powsimp(e, combine="exp")):
        try:
            simpler = form(best)
        except (TypeError, ValueError, RecursionError, NotImplementedError,
                sympy.PolynomialError):
            continue
        if complexity(simpler) < complexity(best):
            best = simpler
    return best


def _consistent(expr, unit_text: dict, output: str) -> bool:
    units = units_map(unit_text, "find_law")
    return check_dimensions(expr, units, units[output], pure_numbers=True).consistent
