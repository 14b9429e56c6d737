r"""Error bars on the constants of laws: how far the data let each constant move.

:func:`with_error_bars` takes a system's laws and the data they were found on and gives
every numeric constant of every law (the constants the end-to-end refinement trains:
every float, numeric term and coefficient; exponents stay structure) an interval:

1. The law model is compiled with its constants as parameters, and the data's evidence
   (:func:`pikan.laws.evidence.evidence`: given accelerations, Savitzky--Golay estimates of
   clean positions, or weak-form averages of noisy positions) is read once. The residual
   of the law model against it, each coordinate over its RMS, and the Jacobian of its
   predictions in the constants (finite differences) set up a linear least-squares problem
   for the constants' correction, all modules' constants together (the data fix the total
   force, not each module's share of it alone).
2. **Bootstrap over trajectories**: :data:`BOOTSTRAP` times, whole trajectories are drawn
   with replacement and the correction is solved on them; a trajectory's samples (or
   windows, which overlap) stay together, so their correlation is kept. The interval at
   ``level`` is the data's estimate plus or minus Student's t quantile (``G - 1`` degrees
   of freedom for ``G`` trajectories) times the bootstrap standard deviation, corrected by
   ``sqrt(G / (G - 1))``: with the ten or so trajectories of a typical data set, plain
   bootstrap quantiles are too narrow. The bootstrap covariance gives
   :meth:`pikan.laws.law.Law.interval`.
3. A constant the data do not determine (a direction of the least-squares problem with a
   singular value below :data:`RANK_RTOL` of the largest, e.g. two constants whose product
   alone acts) gets a NaN interval.
4. On noisy positions (weak-form evidence), an additive term whose coefficient's interval
   contains zero is dropped, unless the law without it fits the data resolvably worse
   (:func:`_drop_null_terms`), and every determined constant moves to the data's
   estimate: extraction may have snapped it to a simple value through a KAN fitted to
   noise (``4/9`` for a field gradient of 0.41; the estimate was 0.412). The estimates are
   one linear step; where the whole step fits the data worse (it left the linear range) a
   shorter one is taken (:data:`ESTIMATE_STEPS`), where none fits better the constants
   stay; after a shortened or long step the model is linearized again where it landed
   (:data:`ESTIMATE_ROUNDS`). A gyroscopic law's field constants are one parameter each,
   shared by the outputs they enter, so the law keeps doing no work. On clean data a
   constant is left as it is while it lies inside its own interval, or within
   :data:`CLEAN_SLACK` of it (a snapped ``1/2`` there is usually the truth); outside it,
   it moves to the estimate the same way (a driven oscillator's ``x**4`` coefficient
   snapped to ``1/11`` was shown as ``0.0909090909 ± 8.1e-09``, the estimate being
   0.0925), and a constant that cannot move is a caveat on its law.

5. On noisy positions the estimates are corrected for the errors in the positions (and the
   velocities estimated from them) the forces are evaluated at (``sin(theta + e)`` is
   ``sin(theta) exp(-s**2/2)`` on average), which the bootstrap, resampling the same noisy
   positions, cannot see: the estimate is taken again with more noise added and
   extrapolated back to none (:func:`_errors_in_positions`, simulation-extrapolation), and
   the intervals are about the corrected estimate, widened by the extrapolation's own
   uncertainty. The evidence there takes every weak-form window, not a subset.

Lagrangian laws get no error bars: a Lagrangian is defined up to a scale, so its constants
are determined only relative to each other.
"""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist

import numpy as np
import sympy
import torch
from scipy.special import stdtrit

from pikan.errors import DataError, SpecError
from pikan.laws.evidence import Evidence, evidence_for
from pikan.laws.law import Laws
from pikan.model.compile import compile as compile_spec
from pikan.model.torch_expr import free_scaled
from pikan.spec.system import VECTOR_KINDS

__all__ = ["BOOTSTRAP", "CLEAN_SLACK", "ESTIMATE_STEPS", "LEVEL", "RANK_RTOL", "REFIT_STEPS",
           "constant_intervals", "law_constants", "refit_constants", "remaining_step",
           "with_error_bars"]

LEVEL = 0.9
"""Default confidence level of the intervals."""
BOOTSTRAP = 400
"""Bootstrap resamples of the trajectories."""
RANK_RTOL = 1e-8
"""A direction of the constants whose singular value is below this share of the largest is
not determined by the data."""
STEP_RTOL = 1e-6
"""Relative step of the finite differences in the constants."""


CLEAN_SLACK = 1e-3
"""On clean data a constant outside its own interval but within this share of it (of its
value) is kept: there the intervals are as narrow as the estimates' own bias (an exact
``1/2`` read from Savitzky--Golay accelerations can sit 1e-8 outside a 1e-9 wide one)."""


def _outside(constants: dict, slack: float = 0.0) -> set[str]:
    """The constants whose value lies outside their own (known) interval, widened by
    ``slack`` times the value."""
    out = set()
    for k, (v, low, high) in constants.items():
        margin = slack * abs(v)
        if math.isfinite(low) and math.isfinite(high) and not low - margin <= v <= high + margin:
            out.add(k)
    return out


def _projections(spec) -> dict:
    """``module -> constraint`` for each learned Flow of ``spec`` whose rates a hard
    conserved sum projects (:class:`pikan.constraints.conservation.Projected`, added when
    the spec is compiled); empty without a hard linear conserved sum, uncompiled."""
    if not any(getattr(c, "quantity", None) == "linear" and getattr(c, "mode", None) == "hard"
               for c in getattr(spec, "constraints", ())):
        return {}
    try:
        model = compile_spec(spec)
    except (SpecError, ValueError):
        return {}
    return {name: c for name, block in model.blocks.items()
            for c in block.spec.constraints if hasattr(c, "project")}


def _tied(constraint, templates: list, constants: dict) -> dict | None:
    """The constants of a projected Flow's law moved so that its outputs agree again.

    A hard conserved sum ties the Flow's outputs (``a' = b' = -c'``), but each output's
    constants are estimated on their own and drift apart by their noise. The law is
    projected back (``constraint.project``, as the refinement does) and the constants that
    give it are found by least squares on the template, which must be linear in them (else
    None: the law stays as it is). Each interval moves with its constant.
    """
    names = sorted(constants, key=lambda k: int(k[1:]) if k[1:].isdigit() else k)
    symbols = [sympy.Symbol(k) for k in names]
    values = np.array([constants[k][0] for k in names], dtype=float)
    if not symbols:
        return None
    zero = {s: 0 for s in symbols}
    jacobian = [[sympy.diff(t, s) for s in symbols] for t in templates]
    if any(sympy.diff(d, s) != 0 for row in jacobian for d in row for s in symbols):
        return None  # not linear in its constants
    exprs = [t.xreplace(dict(zip(symbols, map(sympy.Float, values)))) for t in templates]
    projected = constraint.project(exprs)
    inputs = sorted(set().union(*(t.free_symbols for t in templates)) - set(symbols), key=str)
    points = np.random.default_rng(0).uniform(0.5, 2.0, size=(16 + 4 * len(symbols),
                                                             len(inputs)))
    rows, rhs = [], []
    try:
        for t, row, target in zip(templates, jacobian, projected):
            at = [dict(zip(inputs, p)) for p in points]
            rows += [[float(d.subs(x)) for d in row] for x in at]
            rhs += [float((target - t.xreplace(zero)).subs(x)) for x in at]
    except (TypeError, ValueError):
        return None  # not a real number at some point
    a, b = np.array(rows), np.array(rhs)
    solved, *_ = np.linalg.lstsq(a, b, rcond=None)
    if not np.all(np.isfinite(solved)) or \
            np.linalg.norm(a @ solved - b) > 1e-9 * max(np.linalg.norm(b), 1e-300):
        return None
    solved = [float(f"{c:.12g}") for c in solved]  # tied constants equal, not 1e-16 apart
    return {k: (c, low + c - v, high + c - v)
            for k, c, v, (_, low, high) in zip(names, solved, values,
                                               (constants[k] for k in names))}


def law_constants(model, names) -> list[tuple[str, int, torch.nn.Parameter]]:
    """Every trainable constant of the laws of ``names``: (module, index, parameter)."""
    out = []
    for name in names:
        for piece in model.blocks[name].core:
            constants = getattr(piece, "constants", None)
            if isinstance(constants, torch.nn.Parameter):
                out += [(name, k, constants) for k in range(constants.numel())]
    return out


def _exact_constants(model, names) -> None:
    """Set the constants of the laws of ``names`` from the laws' exact numbers (compiled
    laws start from copies in torch's default dtype, float32 ones lose digits)."""
    for name in names:
        for piece in model.blocks[name].core:
            constants = getattr(piece, "constants", None)
            if isinstance(constants, torch.nn.Parameter):
                constants.data = torch.tensor([float(o) for o in piece._originals],
                                              dtype=constants.dtype)


def _linearized(model, entries, proof: Evidence, rms: np.ndarray):
    """The model's scaled prediction of the targets and its Jacobian in the constants
    ``entries`` (forward differences of relative step :data:`STEP_RTOL`): ``(rows, n)`` and
    ``(rows, n, K)``.

    Raises
    ------
    DataError
        The model cannot be evaluated on the evidence (non-finite predictions).
    """

    def predict() -> np.ndarray:
        with torch.no_grad():
            out = proof.predict(model)
        if out is None or not np.all(np.isfinite(out)):
            raise DataError("the law model cannot be evaluated on the data")
        return out / rms

    base = predict()
    columns = []
    for _, k, parameter in entries:
        value = float(parameter.data[k])
        step = STEP_RTOL * max(abs(value), 1e-3)
        with torch.no_grad():
            parameter.data[k] = value + step
        try:
            columns.append((predict() - base) / step)
        finally:
            with torch.no_grad():
                parameter.data[k] = value
    return base, np.stack(columns, axis=-1)


def _gauss_newton_step(model, entries, proof: Evidence, rms: np.ndarray) -> np.ndarray | None:
    """The least-squares shift of the constants ``entries`` that the linearized model
    (:func:`_linearized`) gives on the evidence; None where it cannot be evaluated."""
    try:
        base, jac = _linearized(model, entries, proof, rms)
    except DataError:
        return None
    a = jac.reshape(-1, len(entries))
    if not np.all(np.isfinite(a)):
        return None
    shift, *_ = np.linalg.lstsq(a, (proof.target / rms - base).reshape(-1), rcond=None)
    return shift


REFIT_STEPS = 3
"""Gauss-Newton steps of :func:`refit_constants`."""


def refit_constants(model, name: str, proof: Evidence, steps: int = REFIT_STEPS) -> float:
    """Fit the constants of module ``name``'s law (fixed in ``model`` with trainable
    constants) to the evidence, in place: Gauss-Newton steps, each kept only when it lowers
    the error (so a law that the data cannot evaluate, or whose steps diverge, keeps its
    constants). Returns the evidence's error of the result (``inf``: not evaluable).

    Extraction fits a law's constants to the trained KAN, which carries the fit's own
    errors; on noisy positions those shift a true law's constants enough that a series
    fitting the KAN's wiggles beat it on held-out data (``0.688 x**2`` for ``0.685 x**2``
    beside a quadratic drag at 1 % noise: 17 % worse than the series; refitted, within
    1.2 %).
    """
    _exact_constants(model, [name])
    entries = law_constants(model, [name])
    current = proof.error(model)
    if not entries or not math.isfinite(current):
        return current
    rms = proof.target_scale()
    for _ in range(steps):
        shift = _gauss_newton_step(model, entries, proof, rms)
        if shift is None:
            break
        before = [float(p.data[k]) for _, k, p in entries]
        with torch.no_grad():
            for (_, k, parameter), value, delta in zip(entries, before, shift):
                parameter.data[k] = value + float(delta)
        error = proof.error(model)
        if not error < current:  # no better (or not finite): undo and stop
            with torch.no_grad():
                for (_, k, parameter), value in zip(entries, before):
                    parameter.data[k] = value
            break
        current = error
    return current


def remaining_step(model, name: str, proof: Evidence) -> float:
    """The size of the next Gauss-Newton step of module ``name``'s constants on the evidence,
    relative to each constant (floored at 1e-3 as the finite differences are): about zero
    where :func:`refit_constants` converged, the distance still to go where it stopped
    short (a step that did not lower the error, or its steps ran out); ``inf`` when the law
    cannot be evaluated, 0 without constants."""
    entries = law_constants(model, [name])
    if not entries:
        return 0.0
    shift = _gauss_newton_step(model, entries, proof, proof.target_scale())
    if shift is None:
        return math.inf
    values = np.array([float(p.data[k]) for _, k, p in entries])
    return float(np.max(np.abs(shift) / np.maximum(np.abs(values), 1e-3)))


def constant_intervals(spec, laws: Laws, proof: Evidence, groups: np.ndarray,
                       level: float = LEVEL, seed: int = 0) -> dict:
    """The bootstrap behind :func:`with_error_bars`, on a given evidence.

    Parameters
    ----------
    spec : System
        The learning spec (modules with or without laws).
    laws : Laws
    proof : Evidence
    groups : ndarray of int, shape (rows of proof,)
        The trajectory of each row of ``proof`` (resampled together).
    level : float
    seed : int

    Returns
    -------
    dict
        ``module -> (template, {name: (value, low, high)}, covariance, estimates)`` for each
        law that has constants (``estimates``: ``{name: (the data's estimate, whether the
        data leave it undetermined, the estimate's correction for the errors in noisy
        positions)}``, :func:`_errors_in_positions`; the intervals are about the corrected
        estimate).
    """
    names = [n for n in laws if laws[n].kind != "Lagrangian"]
    model = compile_spec(spec.with_laws(laws))
    for name in names:
        model.fix(name, laws[name].expr, trainable=True)
    model = model.double()
    _exact_constants(model, names)
    entries = law_constants(model, names)
    if not entries:
        return {}
    rms = proof.target_scale()
    base, jac = _linearized(model, entries, proof, rms)
    residual = proof.target / rms - base  # (rows, n)
    rows, n, count = jac.shape
    values = np.array([float(p.data[k]) for _, k, p in entries])
    # scale the constants so that the columns are comparable
    norms = np.sqrt(np.sum(jac**2, axis=(0, 1)))
    determined = norms > 0
    scale = np.where(determined, norms, 1.0)
    design = jac / scale

    def solve(weights: np.ndarray) -> np.ndarray:
        w = np.sqrt(weights)[:, None, None]
        a = (design * w).reshape(rows * n, count)
        b = (residual * w[..., 0]).reshape(rows * n)
        return _least_squares(a, b) / scale

    full = np.ones(rows)
    shift = solve(full)
    correction, simulated = np.zeros(count), np.zeros(count)
    if proof.renoisable:
        correction, simulated = _errors_in_positions(model, entries, proof, rms, scale, shift,
                                                     seed)
    # directions the data do not fix: constants loading on small singular values
    _, s, vt = np.linalg.svd(design.reshape(rows * n, count), full_matrices=False)
    weak = s <= RANK_RTOL * s.max() if s.size and s.max() > 0 else np.ones_like(s, bool)
    loose = np.any(np.abs(vt[weak]) > 1e-6, axis=0) if weak.any() else np.zeros(count, bool)
    loose |= ~determined
    correction = np.where(loose, 0.0, correction)
    rng = np.random.default_rng(seed)
    labels, index = np.unique(groups, return_inverse=True)
    samples = []
    for _ in range(BOOTSTRAP):
        counts = np.bincount(rng.integers(len(labels), size=len(labels)), minlength=len(labels))
        samples.append(values + solve(counts[index].astype(float)))
    samples = np.array(samples)  # (B, K)
    estimates = values + shift
    groups_n = len(labels)
    # the bootstrap spread of a mean over G groups is sqrt((G-1)/G) of the sampling spread,
    # and G is small (trajectories): Student's t with G-1 degrees of freedom
    spread = np.std(samples, axis=0) * math.sqrt(groups_n / max(groups_n - 1, 1))
    spread = np.sqrt(spread**2 + simulated)
    low, high = _t_interval(estimates + correction, spread, level, groups_n - 1)
    if groups_n < 2:  # one trajectory: the bootstrap cannot vary; use the curvature
        z = NormalDist().inv_cdf(0.5 + level / 2)
        dof = max(rows * n - count, 1)
        sigma2 = float(np.sum((residual - design @ (shift * scale)) ** 2)) / dof
        a = design.reshape(rows * n, count)
        cov = sigma2 * np.linalg.pinv(a.T @ a) / np.outer(scale, scale)
        cov = cov + np.diag(simulated)
        half = z * np.sqrt(np.maximum(np.diag(cov), 0))
        low, high = estimates + correction - half, estimates + correction + half
        samples = None
    covariance = np.cov(samples, rowvar=False).reshape(count, count) + np.diag(simulated) \
        if samples is not None else cov
    out = {}
    position = 0
    for name in names:
        mine = [i for i, e in enumerate(entries) if e[0] == name]
        if not mine:
            continue
        out[name] = _module_result(model, name, mine, values, estimates, correction, low,
                                   high, loose, covariance)
        position += len(mine)
    return out


def _t_interval(center: np.ndarray, spread: np.ndarray, level: float,
                dof: int) -> tuple[np.ndarray, np.ndarray]:
    """``center`` plus or minus Student's t quantile of ``level`` (``dof`` degrees of
    freedom, at least 1) times ``spread``."""
    half = float(stdtrit(max(dof, 1), 0.5 + level / 2)) * spread
    return center - half, center + half


def _module_result(model, name, mine, values, estimates, correction, low, high, loose,
                   covariance):
    """One module's template, constants with intervals, covariance and data estimates
    (``{name: (estimate, loose, correction for the errors in the positions)}``)."""
    offset = mine[0]
    lifted, dummies = model.blocks[name].law_templates()
    symbols = [sympy.Symbol(f"c{k}") for k in range(len(dummies))]
    swap = dict(zip(dummies, symbols))
    templates = [template.xreplace(swap) for template in lifted]
    constants, data = {}, {}
    for symbol, i in zip(symbols, range(offset, offset + len(symbols))):
        interval = (math.nan, math.nan) if loose[i] else (float(low[i]), float(high[i]))
        constants[str(symbol)] = (float(values[i]), *interval)
        data[str(symbol)] = (float(estimates[i]), bool(loose[i]), float(correction[i]))
    block = covariance[np.ix_(mine, mine)]
    block = np.where(np.isfinite(block), block, 0.0)
    return templates, constants, tuple(tuple(float(x) for x in row) for row in block), data


def _explicit_coefficients(expr):
    """``expr`` with a float coefficient ``1.0`` (or ``-1.0``) on each term of its sum (or
    on the expression, when it is one term) that carries a bare sign, so that the data
    weigh it like any other constant (a list for Dynamics laws, component by component).

    Extraction snaps constants to simple numbers, and a coefficient snapped to 1 is not a
    number in the expression: it escaped the error bars, and ``1.6 r**2 - 3.4 r + y`` for
    a spring under a weight of 0.96 was called recovered at 5 % noise. Sums nested inside
    a term keep theirs: their scale is the term's coefficient (``c0 v_y (x + c1)``), and a
    second one would be a direction the data cannot fix. For the same reason a term with a
    factor whose every term has a constant (the numerator of ``(0.35 x y - 0.37
    y)/(0.7 x + 1)``) gets none: that factor carries the term's scale.
    """
    if isinstance(expr, (list, tuple)):
        return [_explicit_coefficients(e) for e in expr]

    def explicit(term):
        coefficient, rest = term.as_coeff_Mul()
        if any(free_scaled(f) for f in sympy.Mul.make_args(rest)):
            return term  # a sum with a constant on every term carries the scale already
        if coefficient in (1, -1) and not rest.is_Number:
            return sympy.Mul(sympy.Float(float(coefficient)), rest, evaluate=False)
        return term

    if isinstance(expr, sympy.Add):
        return sympy.Add(*[explicit(term) for term in expr.args], evaluate=False)
    return explicit(expr)


def _null_term_constant(term, constants: dict) -> str | None:
    """The constant that scales ``term`` alone (a factor of it) when its interval contains
    zero, else None."""
    for factor in sympy.Mul.make_args(term):
        if isinstance(factor, sympy.Symbol) and factor.name in constants:
            _, low, high = constants[factor.name]
            return factor.name if math.isfinite(low) and low <= 0.0 <= high else None
    return None


def _drop_null_terms(spec, laws: Laws, results: dict, proof: Evidence, level: float,
                     seed: int) -> tuple[Laws, dict]:
    """The laws without the additive terms whose coefficient's interval contains zero, and
    their intervals, on noisy positions; the laws as they were when that fits the data
    resolvably worse (:meth:`~pikan.laws.evidence.Evidence.worse`).

    Extraction on noisy data follows the KAN, which follows some of the noise: terms such as
    ``(3e-06 +- 5.9e-05)*exp(y)`` beside Lotka-Volterra's ``0.107*x*y - 0.39*y`` (1 %
    noise) are the noise's, and the data, which cannot tell their coefficient from zero,
    do not support them. Each law keeps at least one term per component.
    """
    reduced = {}
    for name, (templates, constants, _, estimates) in results.items():
        values = {sympy.Symbol(k): estimates[k][0] + estimates[k][2] if not estimates[k][1]
                  else v[0] for k, v in constants.items()}
        exprs, dropped = [], False
        for template in templates:
            terms = sympy.Add.make_args(template)
            keep = [t for t in terms if _null_term_constant(t, constants) is None]
            if keep and len(keep) < len(terms):
                dropped = True
                template = sympy.Add(*keep)
            exprs.append(template.xreplace(values))
        if dropped:
            reduced[name] = exprs if laws[name].kind in VECTOR_KINDS else exprs[0]
    if not reduced:
        return laws, results
    try:
        trial = laws.with_exprs(reduced)
        before = proof.row_errors(compile_spec(spec.with_laws(laws)).double())
        after = proof.row_errors(compile_spec(spec.with_laws(trial)).double())
        if before is None or after is None or proof.worse(after, before):
            return laws, results
        return trial, constant_intervals(spec, trial, proof, proof.groups, level, seed)
    except (DataError, SpecError, ValueError, RuntimeError, np.linalg.LinAlgError):
        return laws, results


ESTIMATE_STEPS = (1.0, 0.5, 0.25, 0.125)
"""On noisy positions, the shares of the step from a law's constants to the data's estimates
that :func:`with_error_bars` tries, largest first; the first that fits the data no worse
(:func:`_fits_no_worse`) is taken, none: the constants stay."""

ESTIMATE_ROUNDS = 3
"""How often :func:`with_error_bars` at most linearizes the law model again on noisy
positions, where the last step was shortened or longer than :data:`CONVERGED`
half-widths of an interval: the estimates are one Gauss-Newton step from the law's
constants, not yet the data's own where the law is far from linear over that step. From
a gas's soft-core pair law 3.7 % off, the step overshot, half of it was taken, and the law
kept constants outside their own intervals, whose centres were within 0.2 % of the truth;
from ``-0.5/(x**2 + 0.3)`` for ``-0.61/(x**2 + 0.43)`` the one step stopped 10 % short."""

CONVERGED = 0.25
"""A step to the data's estimates shorter than this share of a constant's interval
half-width (for every constant) needs no further round (:data:`ESTIMATE_ROUNDS`)."""


def _with_constants(laws: Laws, name: str, templates: list, constants: dict,
                    vector: bool) -> Laws:
    """``laws`` with module ``name``'s law its ``templates`` at ``constants`` (values first)."""
    swap = {sympy.Symbol(k): sympy.Float(v[0]) for k, v in constants.items()}
    exprs = [t.xreplace(swap) for t in templates]
    return laws.with_exprs({name: exprs if vector else exprs[0]})


SIMEX_LEVELS = (0.5, 1.0, 1.5, 2.0)
"""Extra position noise, as multiples of the data's own noise variance, at which
:func:`_errors_in_positions` re-estimates the constants."""
SIMEX_DRAWS = 8
"""Draws of extra noise per level."""


def _errors_in_positions(model, entries, proof: Evidence, rms: np.ndarray, scale: np.ndarray,
                         shift: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """How the errors in noisy positions bias the constants' estimates, and its variance.

    A force evaluated at a noisy position is not the force at the true one: on average
    ``sin(theta + e)`` is ``sin(theta) exp(-s**2/2)``, and ``1/r`` is larger near the
    centre. The estimates inherit that bias; the bootstrap, which resamples the same noisy
    positions, does not see it (a quartic well's constant came out 4-7 % low at 20 %
    position noise, outside its interval; a pendulum's ``g`` 0.6 % high on average over
    noise draws at 10 %). Simulation-extrapolation
    (SIMEX, Cook and Stefanski 1994) measures it on the data themselves: the same estimate
    is taken again with more noise added to the positions (:meth:`Evidence.renoised`;
    variance :data:`SIMEX_LEVELS` times the data's own, :data:`SIMEX_DRAWS` draws each),
    a line through the estimates against the noise variance is extended back to no noise
    at all (level -1), and the difference from the data's estimate is the correction.
    The variance of that extrapolation from the draws is returned with it, to widen the
    intervals. Where the estimates bend (a steep force at high noise) the line
    under-corrects: a quartic well's constant at 20 % noise stays about 1.5 % low, outside
    its interval half the time. A parabola through the same estimates corrects that case
    but is noisier: over the generalization suite's systems at 10 % noise it held fewer
    constants within 3 % (77 of 118 laws against 87 of 120), so the line stays. Velocities
    estimated from the positions move with them (the evidence's Savitzky--Golay filter
    applied to the added noise), so the errors of the velocities a drag or a magnetic force
    is evaluated at are corrected alike; the smoothing of those velocities is not, which is
    why the evidence takes them on narrow windows (:data:`pikan.laws.evidence.VELOCITY_SHARE`).

    Returns
    -------
    (correction, variance) : ndarrays, shape (K,)
    """
    count = len(entries)
    rng = np.random.default_rng([seed, 20_260_406])
    levels = np.array((0.0, *SIMEX_LEVELS))
    # least-squares line through (levels, estimates), read at -1: sum_i w_i * estimate_i
    design = np.stack([np.ones_like(levels), levels], axis=1)
    weights = np.array([1.0, -1.0]) @ np.linalg.pinv(design)
    means, variances = [shift], [np.zeros(count)]
    for extra in SIMEX_LEVELS:
        draws = []
        for _ in range(SIMEX_DRAWS):
            noisy = proof.renoised(extra, rng)
            try:
                draws.append(_one_step(model, entries, noisy, rms, scale))
            except (DataError, np.linalg.LinAlgError):
                continue
        if len(draws) < 2:
            return np.zeros(count), np.zeros(count)
        draws = np.array(draws)
        means.append(draws.mean(axis=0))
        variances.append(draws.var(axis=0, ddof=1) / len(draws))
    extrapolated = weights @ np.array(means)
    variance = (weights**2) @ np.array(variances)
    return extrapolated - shift, variance


def _one_step(model, entries, proof: Evidence, rms: np.ndarray,
              scale: np.ndarray) -> np.ndarray:
    """The Gauss-Newton step from the model's constants to the estimate on ``proof``, all
    rows weighted alike (the step :func:`constant_intervals` takes on the data)."""
    base, jac = _linearized(model, entries, proof, rms)
    rows, n, count = jac.shape
    a = (jac / scale).reshape(rows * n, count)
    return _least_squares(a, (proof.target / rms - base).reshape(rows * n)) / scale


def _least_squares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The least-squares solution of ``a x = b`` in the directions the data determine
    (singular values above :data:`RANK_RTOL` of the largest); 0 in the others."""
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    keep = s > RANK_RTOL * s.max() if s.size and s.max() > 0 else np.zeros_like(s, bool)
    return vt[keep].T @ ((u[:, keep].T @ b) / s[keep])


def _fits_no_worse(moved, kept, proof: Evidence) -> bool:
    """Whether the law model with the data's estimates (``moved``) fits the evidence at least
    as well as with the constants it had (``kept``). The estimates are one linear step from
    those constants: on a law whose constants the data barely fix (``-24200/(y**2 + 202)``
    for ``0.59 y**2``) the whole step left the linear range and the law missed the data by
    40 %."""
    with torch.no_grad():
        after = proof.error(moved.double())
        before = proof.error(kept.double())
    return math.isfinite(after) and not after > before


def with_error_bars(spec, laws: Laws, data, level: float = LEVEL, seed: int = 0) -> Laws:
    """The laws with an interval on every constant (module docstring).

    Parameters
    ----------
    spec : System
        The learning spec.
    laws : Laws
        One law per learned module (as :func:`pikan.discover` gives them).
    data : Trajectories
        The data the laws were found on (estimated velocities and accelerations count as
        estimates, ``data.estimated``).
    level : float
        Confidence level, in (0, 1).
    seed : int
        Seeds the bootstrap.

    Returns
    -------
    Laws
        A copy: each law with constants has ``template``, ``constants``, ``covariance`` and
        ``level`` set; on noisy positions, the constants are the data's estimates.

    Raises
    ------
    SpecError
        ``level`` outside (0, 1).
    """
    if not 0.0 < float(level) < 1.0:
        raise SpecError(f"with_error_bars: level must be in (0, 1), got {level!r}.")
    try:
        proof = evidence_for(spec, data, seed=seed, windows=None)  # every window
    except DataError:
        return laws
    groups = proof.groups
    if proof.kind == "weak":  # a snapped unit coefficient is a constant the data must weigh
        laws = laws.with_exprs({name: _explicit_coefficients(law.expr)
                                for name, law in laws.items() if law.kind != "Lagrangian"})
    out, stuck, first, previous = laws, {}, True, {}
    for _ in range(ESTIMATE_ROUNDS):
        try:
            results = constant_intervals(spec, laws, proof, groups, float(level), seed)
        except (DataError, SpecError, ValueError, RuntimeError, np.linalg.LinAlgError):
            if first:
                return laws
            results = previous  # a later round's linearization failed: keep the last one
            break
        if proof.kind == "weak":
            laws, results = _drop_null_terms(spec, laws, results, proof, float(level), seed)
        out, stuck, shortened = laws, {}, False
        for name, (templates, constants, covariance, estimates) in list(results.items()):
            outside = _outside(constants, 0.0 if proof.kind == "weak" else CLEAN_SLACK)
            if proof.kind != "weak" and not outside:
                continue  # clean data: a snapped constant inside its interval is kept
            movable = set(estimates) if proof.kind == "weak" else outside
            kept = None  # the law model as it is, compiled once a step is to be weighed
            far = any(abs(estimate + correction - constants[key][0])
                      > CONVERGED * (constants[key][2] - constants[key][1]) / 2
                      for key, (estimate, loose, correction) in estimates.items()
                      if key in movable and not loose)
            for step in ESTIMATE_STEPS:
                values, fixed = dict(constants), dict(constants)
                for key, (estimate, loose, correction) in estimates.items():
                    if key in movable and not loose and estimate + correction != values[key][0]:
                        start = values[key][0]
                        values[key] = (start + step * (estimate - start), *values[key][1:])
                        fixed[key] = (values[key][0] + step * correction, *values[key][1:])
                if values == constants and fixed == constants:
                    break
                vector = laws[name].kind in VECTOR_KINDS
                try:
                    # the step is weighed on the data as they are (which favour the estimate
                    # the errors in their positions bias); the law takes it corrected
                    trial = _with_constants(out, name, templates, values, vector)
                    moved = compile_spec(spec.with_laws(trial))  # gyroscopic: still no work
                    if fixed != values:
                        trial = _with_constants(out, name, templates, fixed, vector)
                        compile_spec(spec.with_laws(trial))
                except (SpecError, ValueError):
                    if outside:
                        stuck[name] = (f"its constants {', '.join(sorted(outside))} lie outside "
                                       f"the data's {level:.0%} intervals and cannot move to the "
                                       "data's estimates without breaking the law's structure")
                    break
                if kept is None:
                    kept = compile_spec(spec.with_laws(out))
                if _fits_no_worse(moved, kept, proof):
                    out = trial
                    results[name] = (templates, fixed, covariance, estimates)
                    shortened |= step < 1.0 or far
                    break
        if not shortened or proof.kind != "weak":
            break  # clean data move a constant only outside its interval: one round
        # a shortened or long step: linearize again where the constants are now
        laws, first, previous = out, False, results
    for name, (_, constants, _, _) in results.items():
        far = _outside(constants, CLEAN_SLACK)
        if proof.kind != "weak" and name not in stuck and far:
            stuck[name] = (f"its constants {', '.join(sorted(far))} lie "
                           f"outside the data's {level:.0%} intervals, and the data's "
                           "estimates do not fit them better")
    for name, constraint in _projections(spec).items():
        if name in results and out[name].kind in VECTOR_KINDS:
            templates, constants, covariance, estimates = results[name]
            tied = _tied(constraint, templates, constants)
            if tied is not None:
                swap = {sympy.Symbol(k): sympy.Float(v[0]) for k, v in tied.items()}
                out = out.with_exprs({name: [t.xreplace(swap) for t in templates]})
                results[name] = (templates, tied, covariance, estimates)
    updates = {}
    for name, (templates, constants, covariance, _) in results.items():
        template = templates if out[name].kind in VECTOR_KINDS else templates[0]
        updates[name] = (template, constants, covariance, float(level))
    out = out.with_error_bars(updates)
    if stuck:
        out = Laws({name: dataclasses.replace(law, caveats=(*law.caveats, stuck[name]))
                    if name in stuck else law for name, law in out.items()}, spec=out.spec)
    return out
