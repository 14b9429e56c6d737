r"""Law extraction: a closed form for every learned module, and for static data.

:func:`extract` reads each learned module of a trained model as a formula. The module is
sampled on its *real* input distribution (the features of the data's states, every
binding stacked), and turned into a fit target:

- ``Potential`` and ``Dissipation``: the generalized force the module exerts,
  :math:`\sum_b J_b^T \nabla E(z_b)` over its bindings (gradients by autograd, binding
  Jacobians :math:`J_b = \partial z_b/\partial q`, or :math:`\partial/\partial v`). These
  energies are only defined up to an additive constant, so candidates are fitted on forces
  and carry no constant; a part of the learned function that exerts no force (a term
  linear in the bond length of a chain with fixed ends, where the bond lengths sum to a
  constant) costs nothing, and the simpler law without it wins;
- ``Lagrangian``: a Lagrangian is defined up to a constant, a scale and a total time
  derivative, so the block's values are one arbitrary member of a family. The system's
  only Lagrangian module is read through the motion instead: sparse regression of the
  Euler--Lagrange equations on a term library against the data's accelerations (measured,
  or estimated from positions), :mod:`pikan.laws.generators.euler_lagrange`, scaled to the model's mass
  matrix. That law is taken when it predicts the accelerations at least as well as the
  trained model (or within 5 times the tolerance). Otherwise (several Lagrangian modules,
  terms outside the library) the block's values are fitted, with a free additive
  constant: limited, check such laws by re-simulation (:func:`pikan.verify`);
- ``Dynamics``: the values of each output, one law per output.

Candidates are pooled from three generators:

(a) the KAN read edge by edge (:mod:`pikan.laws.generators.kan_edges`): ``a*f(b*x + c) + d`` per live
    edge of the pruned KAN, composed through sums and multiplication nodes;
(b) sparse regression over term libraries in the inputs (:mod:`pikan.laws.generators.regression`):
    polynomials with cross terms, unary library functions and their products, inverse
    powers down to ``1/z**12``; and, for 1-2 inputs, laws with one scanned nonlinear
    constant (:mod:`pikan.laws.generators.varpro`): exponentials with a rate ``exp(-k z)``, shifted
    powers ``(z**2 + c)**-p``;
(c) structure tests (:mod:`pikan.laws.generators.separability`): additive and multiplicative separability from
    mixed second derivatives of the block (and, for value targets, an additive spline
    model of the samples), which split it into pieces of fewer inputs (one-input pieces
    fitted by :func:`~pikan.kan.symbolic.fit_edge`).

(a) is the slowest (one ``fit_edge`` over the library per live edge) and rarely gives the
simplest law, so it runs only when (b) and (c) leave every candidate above the tolerance.
Every candidate's constants are refit by nonlinear least squares against the module and
snapped to simple values where the error barely moves (:mod:`pikan.laws.candidates`). The law is
the simplest member of the Pareto front (complexity vs relative error) whose error is
within a factor 1.5 of ``max(best error, tolerance)``; the tolerance defaults to the
model's own force error on the data relative to the module's scale (a law cannot be asked
to match the KAN better than the KAN matches the physics). The front is kept as
``law.alternatives``.

:func:`find_law` is the static-regression path: samples ``(X, y)`` that are not
trajectories. It pools the same generators plus target transforms, rational functions and
power laws, with a small KAN fitted as a differentiable surrogate when the direct
generators fall short, and refits every candidate against the data themselves.

Both are *anytime* under a ``time_limit``: generators run cheapest first and check a
:class:`~pikan.laws.candidates.Deadline` between candidate families and inside their long loops;
when the time is up the law is selected from the candidates fitted so far.
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import sympy
import torch

from pikan.errors import DataError, SpecError
from pikan.spec.expr import is_valid_name
from pikan.kan.network import KAN
from pikan.kan.symbolic import fit_edge
from pikan.laws.generators.kan_edges import kan_formulas
from pikan.laws.generators.euler_lagrange import euler_lagrange_fits
from pikan.laws.law import Alternative, Law, Laws, in_state
from pikan.train.optim import lbfgs_rounds
from pikan.laws.candidates import (
    Deadline,
    Fit,
    Target,
    as_deadline,
    complexity,
    drop_constant,
    evaluate,
    fit_candidates,
    pareto,
    select,
)
from pikan.laws.generators.regression import (
    exp_power_candidates,
    monomial_candidates,
    power_law_splits,
    rational_candidates,
    regression_candidates,
)
from pikan.laws.generators.separability import additive_model_candidates, structure_candidates
from pikan.laws.generators.varpro import varpro_candidates

__all__ = ["extract", "find_law"]

_SCALAR = ("Potential", "Dissipation", "Lagrangian")
_TOLERANCE_RANGE = (1e-7, 0.2)


# ------------------------------------------------------------------ shared core

DEFAULT_TIME_LIMIT = 30.0
"""Seconds :func:`find_law` takes at most by default (one formula, up to 10 inputs)."""

_SEARCH_SHARE = 0.9
"""The search stops at this fraction of a time limit: the rest is for the steps that
cannot stop halfway (evaluating the last pool of candidates, the selection). Measured on
a 9-input formula with a 5 s limit: 0.4 s from the deadline to the return."""


def _check_time_limit(time_limit, who: str) -> float | None:
    if time_limit is None:
        return None
    if isinstance(time_limit, bool) or not isinstance(time_limit, numbers.Real) or not (
            math.isfinite(time_limit) and time_limit > 0):
        raise SpecError(f"{who}: time_limit must be a positive number of seconds or None "
                        f"(no limit), got {time_limit!r}.")
    return float(time_limit)


def _solve(target: Target, fn: Callable | None, kan_exprs: Callable[[], Sequence],
           library: Sequence[str] | None, tolerance: float, seed: int,
           deadline: Deadline | None = None,
           extra: Sequence[tuple[sympy.Expr, str]] = ()) -> tuple[Fit | None, list[Fit]]:
    """Pool the generators' candidates for one target; return (chosen fit, all fits).

    Sparse regression, the additive spline model and the structure tests run first; the
    KAN edge formulas (``kan_exprs()``, the slowest generator: one ``fit_edge`` per live
    edge) only when none of those candidates reaches the tolerance. Anytime: each
    generator stops at the ``deadline`` and the selection is made from what was fitted.
    """
    deadline = as_deadline(deadline)
    cands: list[tuple[sympy.Expr, str]] = list(extra)
    for c in regression_candidates(target, library, deadline=deadline):
        cands.append((c.expr, c.source))
    if not deadline.expired():
        cands += [(c.expr, c.source)
                  for c in varpro_candidates(target, library, deadline=deadline)]
    cands += [(c.expr, c.source)
              for c in additive_model_candidates(target, library, seed, deadline)]
    if fn is not None:
        for c in structure_candidates(fn, target.z, target.names, target.kind, library,
                                      tolerance=tolerance, seed=seed, deadline=deadline):
            cands.append((c.expr, c.source))
    fits = fit_candidates(cands, target, tolerance, deadline=deadline)
    best = min((f.error for f in fits), default=math.inf)
    if best > tolerance and not deadline.expired():
        extra = [(e, "kan" if k == 0 else f"kan:{k}") for k, e in enumerate(kan_exprs())
                 if e is not None and not e.has(sympy.nan)]
        if extra:
            fits += fit_candidates(extra, target, tolerance, deadline=deadline)
    chosen = select(fits, tolerance)
    if chosen is not None:
        chosen = _tidy(chosen, target, deadline)
    return chosen, fits


def _tidy(fit: Fit, target: Target, deadline: Deadline | None = None) -> Fit:
    """The simplest equal form of a law (sympy simplification, kept only if it fits as well;
    skipped once the deadline has passed: simplification can take seconds)."""
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


def _alternatives(fits: Sequence[Fit], output: str | None = None) -> list[Alternative]:
    return [Alternative(f.expr, f.complexity, f.error, f.source, output, f.rmse)
            for f in pareto(fits)]


def _rows(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, limit, replace=False))


# ------------------------------------------------------------------ trained models


_ESTIMATED_CAP = 1e-2  # tolerance cap when accelerations are estimated from positions


def _accelerations(data, rows: np.ndarray) -> tuple[np.ndarray, bool] | None:
    """The data's accelerations on ``rows`` (estimated from positions when absent) and
    whether they were measured; None when they cannot be had."""
    try:
        source = data if data.has_accelerations else data.with_derivatives()
        return source.accelerations()[0][rows], data.has_accelerations
    except (DataError, ValueError):
        return None


def _force_error(model, q: np.ndarray, v: np.ndarray,
                 accelerations: tuple[np.ndarray, bool] | None) -> float | None:
    """Absolute RMS error of the model's generalized forces ``m * a`` against the data's
    ``accelerations`` (:func:`_accelerations`) at the states ``q, v``.

    When the accelerations were estimated from positions, their noise dominates the error
    (at 1 % position noise it was 7 times the model's true error): the error is then capped
    at 1 % of the RMS force. None when unavailable.
    """
    if accelerations is None:
        return None
    a, measured = accelerations
    dtype = next((p.dtype for p in model.parameters()), torch.float64)
    pred = model.acceleration(torch.as_tensor(q, dtype=dtype),
                              torch.as_tensor(v, dtype=dtype)).detach().cpu().numpy()
    masses = getattr(model, "masses", None)
    m = np.ones(q.shape[1]) if masses is None else masses.detach().cpu().numpy()
    if not np.all(np.isfinite(pred)) or a.shape != pred.shape:
        return None
    error = float(np.sqrt(np.mean(((pred - a) * m) ** 2)))
    if not measured:
        error = min(error, _ESTIMATED_CAP * float(np.sqrt(np.mean((a * m) ** 2))))
    return error


def _tolerance(given: float | None, force_error: float | None, target: Target,
               kind: str) -> float:
    """The module's selection tolerance (see :func:`extract`).

    Given, or the model's force error relative to the module's own scale (a small module,
    such as a weak friction, cannot be asked to be relatively as exact as the whole
    acceleration). Lagrangians get 1e-3: their accelerations go through the inverse of
    the Hessian in the velocities, which amplifies small errors of ``L``, so the force
    error overstates how far a good law may be from the block.
    """
    if given is not None:
        return float(given)
    if force_error is None or kind == "Lagrangian":
        return 1e-3
    return float(np.clip(force_error / target.scale, *_TOLERANCE_RANGE))


def _block_target(block, z: np.ndarray, output: int | None) -> Target:
    """Values of one output, or the gradient in the module's inputs (Lagrangian)."""
    dtype = next((p.dtype for p in block.parameters()), torch.float64)
    zt = torch.tensor(z, dtype=dtype, requires_grad=True)
    values = block.function(zt)
    names = tuple(block.input_names)
    if output is not None:
        return Target(names, z, "values", values[:, output].detach().cpu().numpy().astype(float))
    (g,) = torch.autograd.grad(values[:, 0].sum(), zt, allow_unused=True)
    g = torch.zeros_like(zt) if g is None else g
    return Target(names, z, "gradient", g.detach().cpu().numpy().astype(float))


def _force_target(block, q: np.ndarray, v: np.ndarray, wrt: str) -> Target:
    r"""The generalized force of a Potential (``wrt="q"``) or Dissipation (``"v"``) module.

    The target is :math:`\sum_b J_b^T \nabla E(z_b)` over the bindings ``b`` (the force up
    to sign), with the binding Jacobians :math:`J_b = \partial z_b / \partial q` (or
    :math:`\partial v`) as the projection: candidates are judged by the force they exert.
    """
    dtype = next((p.dtype for p in block.parameters()), torch.float64)
    qt = torch.as_tensor(q, dtype=dtype).clone().requires_grad_(wrt == "q")
    vt = torch.as_tensor(v, dtype=dtype).clone().requires_grad_(wrt == "v")
    x = qt if wrt == "q" else vt
    z = block.inputs(torch.cat([qt, vt], dim=-1))  # (B, N, d)
    b_count, n, d = z.shape
    m = x.shape[1]
    projection = torch.zeros(b_count, n, d, m, dtype=dtype)
    for b in range(b_count):
        for k in range(d):
            if not z.requires_grad:
                continue
            (jac,) = torch.autograd.grad(z[b, :, k].sum(), x, retain_graph=True,
                                         allow_unused=True)
            if jac is not None:
                projection[b, :, k, :] = jac
    flat = z.detach().reshape(b_count * n, d).clone().requires_grad_(True)
    energy = block.function(flat)[:, 0]
    (g,) = torch.autograd.grad(energy.sum(), flat, allow_unused=True)
    g = torch.zeros_like(flat) if g is None else g
    force = torch.einsum("bnk,bnkm->nm", g.detach().reshape(b_count, n, d), projection)
    return Target(tuple(block.input_names), flat.detach().numpy().astype(float), "gradient",
                  force.numpy().astype(float), projection=projection.numpy().astype(float))


def _kan_exprs(block, z: np.ndarray, library, seed: int,
               deadline: Deadline | None = None) -> dict[str, list[sympy.Expr]]:
    """Edge-wise formulas of the block's KAN, when the KAN alone is the block function."""
    kan = block.kan
    if kan is None or getattr(block, "gyroscopic_learned", False):
        return {}
    with torch.no_grad():
        zt = torch.as_tensor(z, dtype=next(kan.parameters()).dtype)
        if not torch.allclose(block.function(zt), kan(zt), rtol=1e-9, atol=1e-12):
            return {}  # a hard constraint wraps the KAN: its edges are not the module
    return kan_formulas(kan, z, list(block.input_names), library, seed=seed,
                        deadline=deadline)


OCCAM_SLACK = 0.005
"""A simpler law replaces the chosen one when its acceleration error on the data is at most
this much (relative) larger. Measured: at 1 % position noise ``-1/r`` was 0.09 % worse on
the data than the biased ``-1.04/(r + 0.02)``; at 5 % noise dropping the real ``d**4/8`` of
a spring chain's bond cost 1.8 %."""


def _simplest_on_data(model, name: str, fits: Sequence[Fit], chosen: Fit, q: np.ndarray,
                      v: np.ndarray, accelerations: tuple[np.ndarray, bool] | None,
                      deadline: Deadline | None = None) -> Fit:
    """The simplest front member that explains the data as well as the chosen law.

    The selection compares laws with the trained block, which carries the fit's own errors
    (on noisy data, a KAN slightly off where data are sparse makes ``-1.04/(r + 0.02)``
    beat ``-1/r``). The data decide between them instead: each simpler member is put into
    the model in place of the block, and the simplest whose acceleration error on the
    data (estimated from positions when not measured) is within :data:`OCCAM_SLACK` of the
    chosen law's is taken.
    """
    deadline = as_deadline(deadline)
    simpler = [f for f in pareto(fits) if f.complexity < chosen.complexity]
    if not simpler or accelerations is None or deadline.expired():
        return chosen
    a = accelerations[0]
    dtype = next((p.dtype for p in model.parameters()), torch.float64)
    qt, vt = torch.as_tensor(q, dtype=dtype), torch.as_tensor(v, dtype=dtype)

    trial = copy.deepcopy(model)  # each candidate in turn replaces the block's core

    def data_error(fit: Fit) -> float:
        try:
            trial.fix(name, fit.expr, trainable=False)
            with torch.no_grad():
                pred = trial.acceleration(qt, vt).detach().cpu().numpy()
        except (SpecError, ValueError, RuntimeError):
            return math.inf
        error = float(np.sqrt(np.mean((pred - a) ** 2)))
        return error if math.isfinite(error) else math.inf

    reference = data_error(chosen)
    if not math.isfinite(reference):
        return chosen
    for fit in simpler:  # by complexity, simplest first
        if deadline.expired():
            break
        if data_error(fit) <= (1 + OCCAM_SLACK) * reference:
            return fit
    return chosen


def _euler_lagrange_law(model, name: str, q: np.ndarray, v: np.ndarray,
                        accelerations: tuple[np.ndarray, bool] | None,
                        force_error: float | None) -> Law | None:
    """The law of the system's only Lagrangian module by Euler--Lagrange regression
    (:mod:`pikan.laws.generators.euler_lagrange`), when it predicts the accelerations at least as well as
    the trained model does (or within 5 times the selection tolerance); else None."""
    spec = model.spec
    if accelerations is None or [m.name for m in spec.modules
                                 if m.kind == "Lagrangian"] != [name]:
        return None
    a, measured = accelerations
    fits = euler_lagrange_fits(model, name, q, v, a)
    tol = 1e-3 if measured else _ESTIMATED_CAP
    chosen = select(fits, tol)
    if chosen is None:
        return None
    scale = float(np.sqrt(np.mean(a**2))) or 1.0
    model_error = force_error / scale if force_error is not None else math.inf
    if chosen.error > max(5 * tol, model_error):
        return None
    block = model.blocks[name]
    expr = drop_constant(chosen.expr)
    return Law(name, block.kind, tuple(block.input_names), expr, in_state(expr, block.spec),
               chosen.r2, chosen.rmse, chosen.error, complexity(expr),
               tuple(_alternatives(fits)))


def _module_law(model, name: str, q: np.ndarray, v: np.ndarray, library,
                tolerance: float | None, force_error: float | None, seed: int,
                max_samples: int, accelerations: tuple[np.ndarray, bool] | None = None,
                deadline: Deadline | None = None) -> Law:
    deadline = as_deadline(deadline)
    block = model.blocks[name]
    n_bindings = len(block.spec.input_bindings)
    rows = _rows(q.shape[0], max(max_samples // n_bindings, 50), seed)
    q, v = q[rows], v[rows]
    if accelerations is not None:
        accelerations = (accelerations[0][rows], accelerations[1])
    dtype = next((p.dtype for p in model.parameters()), torch.float64)
    z = model.module_inputs(name, torch.as_tensor(q, dtype=dtype),
                            torch.as_tensor(v, dtype=dtype)).detach().cpu().numpy()
    z = z.astype(np.float64)
    cache: dict = {}

    def variants() -> list[list[sympy.Expr]]:
        if "kan" not in cache:
            cache["kan"] = list(_kan_exprs(block, z, library, seed, deadline).values())
        return cache["kan"]

    spec_module = block.spec
    if block.kind in _SCALAR:
        if block.kind == "Lagrangian":
            law = _euler_lagrange_law(model, name, q, v, accelerations, force_error)
            if law is not None:
                return law
            target = _block_target(block, z, 0)
        else:
            target = _force_target(block, q, v, "q" if block.kind == "Potential" else "v")

        def fn(zt, b=block):
            return b.function(zt)[:, 0]

        tol = _tolerance(tolerance, force_error, target, block.kind)
        extra = _passive_candidates(block, z)
        chosen, fits = _solve(target, fn, lambda: [e[0] for e in variants()], library, tol,
                              seed, deadline, extra=extra)
        if chosen is None:
            raise DataError(f"module {name!r}: no candidate law is finite on the module's "
                            "inputs; hint: check the data and the trained model.")
        chosen = _simplest_on_data(model, name, fits, chosen, q, v, accelerations, deadline)
        passive = _passive_on_data(model, name, q, v, accelerations, target, tol, z)
        caveats = ()
        if passive is not None:
            passive, caveats = passive
            fits = [*fits, passive]
            chosen = passive
        expr = drop_constant(chosen.expr)  # energies are defined up to a constant
        return Law(name, block.kind, tuple(block.input_names), expr,
                   in_state(expr, spec_module), chosen.r2, chosen.rmse, chosen.error,
                   complexity(expr), tuple(_alternatives(fits)), caveats=caveats)
    if getattr(block, "gyroscopic_learned", False):
        return _gyroscopic_law(block, z, library, tolerance, force_error, seed, deadline)
    exprs, alternatives, errors, rmses = [], [], [], []
    for k, output in enumerate(block.output_names):
        target = _block_target(block, z, k)

        def fn(zt, b=block, k=k):
            return b.function(zt)[:, k]

        tol = _tolerance(tolerance, force_error, target, block.kind)
        # the outputs share the module's time: each gets its part of what is left
        share = deadline.share(1.0 / (len(block.output_names) - k))
        chosen, fits = _solve(target, fn, lambda k=k: [e[k] for e in variants()], library,
                              tol, seed, share)
        if chosen is None:
            raise DataError(f"module {name!r} output {output!r}: no candidate law is finite "
                            "on the module's inputs.")
        exprs.append(chosen.expr)
        alternatives += _alternatives(fits, output)
        errors.append(chosen.error)
        rmses.append(chosen.rmse)
    error = max(errors)
    return Law(name, block.kind, tuple(block.input_names), exprs,
               [in_state(e, spec_module) for e in exprs], 1.0 - error**2,
               float(np.sqrt(np.mean(np.square(rmses)))), error, complexity(exprs),
               tuple(alternatives), tuple(block.output_names))


def _passive_candidates(block, z: np.ndarray | None = None) -> list[tuple[sympy.Expr, str]]:
    """Every sum of the passive Dissipation's own terms, ``c_d |z|**d / d`` over its degrees
    ``d`` (:func:`pikan.model.compile.passive_dissipation`), with ``|z|`` the norm of the inputs
    (and, for several inputs, the same sums per input): the block is exactly such a sum
    when the damping is isotropic, so linear, quadratic (``c |v|**3/3``) and mixed damping
    are candidates of their own. An input that is never negative on the samples ``z``
    (a speed) needs no ``Abs``. Empty for other blocks."""
    degrees = getattr(block, "passive_degrees", ())
    if not degrees or block.kind != "Dissipation":
        return []
    names = [sympy.Symbol(n) for n in block.input_names]
    squared = sum(v**2 for v in names)

    signless = z is not None and z.shape[1] == 1 and bool(np.all(z[:, 0] >= 0))
    z = [sympy.Symbol(n) for n in block.input_names]

    def norm_power(d):  # |z|**d, without Abs or sqrt where d is even or z >= 0
        d = sympy.nsimplify(d)
        if (d / 2).is_integer or signless:
            return squared ** (d / 2) if len(z) > 1 else z[0] ** d
        return sympy.sqrt(squared) ** d if len(z) > 1 else sympy.Abs(z[0]) ** d

    def each_power(v, d):
        d = sympy.nsimplify(d)
        return v**d if (d / 2).is_integer else sympy.Abs(v) ** d

    out = []
    for size in range(1, len(degrees) + 1):
        for subset in itertools.combinations(degrees, size):
            out.append((sum(sympy.Float(1.0) * norm_power(d) for d in subset), "passive:norm"))
            if len(z) > 1:
                out.append((sum(sympy.Float(1.0) * each_power(v, d) for d in subset
                                for v in z), "passive:per-input"))
    return out


PASSIVE_SLACK = 0.02
"""A passive Dissipation keeps the fewest of its terms whose least-squares fit to the
data's dissipative force leaves at most this much (relative) more residual than all."""


def _passive_on_data(model, name: str, q: np.ndarray, v: np.ndarray,
                     accelerations: tuple[np.ndarray, bool] | None, target: Target,
                     tolerance: float, z: np.ndarray | None = None) -> Fit | None:
    r"""A passive Dissipation read off its own construction, with the data choosing terms.

    The block is :math:`\sum_k a_k(u)^2 |z|^{\alpha_k} / \alpha_k`; for damping that does
    not depend on direction it is :math:`\sum_k c_k |z|^{\alpha_k} / \alpha_k`, whose
    force is linear in the ``c_k``. These are fitted by least squares to the data's
    dissipative force, ``M a`` minus the forces of the other modules, for every subset of
    the terms, and the fewest terms that explain it within :data:`PASSIVE_SLACK` of all of
    them are kept. The terms are near-collinear over a small speed range (``v**2``,
    ``|v|**3`` and ``v**4`` on ``[-1, 1]``), so the trained block mixes them freely;
    the data tell them apart. None for other blocks, or without accelerations.
    """
    block = model.blocks[name]
    candidates = _passive_candidates(block, z)
    if not candidates or accelerations is None:
        return None
    dtype = next((p.dtype for p in model.parameters()), torch.float64)
    qt, vt = torch.as_tensor(q, dtype=dtype), torch.as_tensor(v, dtype=dtype)
    try:
        forces = model.forces(qt, vt)
        masses = model.masses.detach().cpu().numpy()
    except (RuntimeError, ValueError):
        return None
    other = sum(f.detach().cpu().numpy() for n, f in forces.items() if n != name)
    residual = (masses * accelerations[0] - other).reshape(-1)
    trial = copy.deepcopy(model)
    best, designs = [], {}
    for expr, source in candidates:
        terms = sympy.Add.make_args(expr)
        columns = []
        for term in terms:
            try:
                trial.fix(name, term / sympy.Float(1.0), trainable=False)
                columns.append(trial.forces(qt, vt)[name].detach().cpu().numpy().reshape(-1))
            except (SpecError, ValueError, RuntimeError):
                break
        if len(columns) != len(terms):
            continue
        design = np.stack(columns, axis=1)
        coef, *_ = np.linalg.lstsq(design, residual, rcond=None)
        if not (np.all(np.isfinite(coef)) and np.all(coef > 0)):
            continue  # a negative coefficient would make the law active
        error = float(np.sqrt(np.mean((design @ coef - residual) ** 2)))
        fitted = sum(sympy.Float(float(c)) * (t / sympy.Float(1.0)) for c, t in zip(coef, terms))
        best.append((len(terms), error, fitted, source))
        designs[fitted] = (design, coef)
    if not best:
        return None
    # the slack is relative; the 1e-9 of the force keeps exact data (floor ~ 1e-17) sane
    limit = (1 + PASSIVE_SLACK) * min(b[1] for b in best) \
        + 1e-9 * float(np.sqrt(np.mean(residual**2)))
    size, _, expr, source = min((b for b in best if b[1] <= limit), key=lambda b: (b[0], b[1]))
    error, rmse = evaluate(target, expr)  # against the block: for the record, not refit
    caveats = _split_halves(*designs[expr], residual, n=len(q))
    return Fit(expr, error, rmse, complexity(expr), f"{source}:data"), caveats


SPLIT_RTOL = 0.02
"""Largest relative difference of a constant fitted on either half of the data (by sample
order: whole trajectories mostly) for the law to count as determined by the data."""


def _split_halves(design: np.ndarray, coef: np.ndarray, residual: np.ndarray,
                  n: int) -> tuple[str, ...]:
    """A caveat when the least-squares constants of ``design @ coef ~ residual`` move by
    more than :data:`SPLIT_RTOL` between the first and second half of the samples (rows of
    ``n`` states, each ``design.shape[0] // n`` force components)."""
    per = design.shape[0] // n
    half = (n // 2) * per
    spreads = []
    for part in (slice(0, half), slice(half, None)):
        c, *_ = np.linalg.lstsq(design[part], residual[part], rcond=None)
        spreads.append(c)
    moved = np.abs(spreads[0] - spreads[1]) / np.maximum(np.abs(coef), 1e-300)
    if np.all(np.isfinite(moved)) and moved.max() <= SPLIT_RTOL:
        return ()
    return (f"its constants are not determined by the data: fitted on either half of the "
            f"data they differ by up to {100 * float(np.max(moved)):.0f} %",)


def _gyroscopic_law(block, z: np.ndarray, library, tolerance: float | None,
                    force_error: float | None, seed: int, deadline: Deadline) -> Law:
    """A learned gyroscopic Dynamics, ``F = B(q) v`` with ``B`` antisymmetric: each field
    entry ``B_ij(q)`` (i < j, the KAN's outputs) is solved as a function of the field
    inputs, and the law is ``F_i = sum_j B_ij v_j``. Extracted this way the law does no
    work by construction (per-component laws of ``F`` need not be exactly antisymmetric,
    and the spec refuses a gyroscopic law that does work)."""
    field = [block.input_names[i] for i in block._field_slots]
    velocities = [sympy.Symbol(block.input_names[i]) for i in block._velocity_slots]
    x = z[:, block._field_slots]
    dtype = next((p.dtype for p in block.parameters()), torch.float64)
    with torch.no_grad():
        values = block.core(torch.as_tensor(x, dtype=dtype)).double().cpu().numpy()
    n = len(block.output_names)
    upper = list(zip(*np.triu_indices(n, 1)))
    entries, alternatives, errors, rmses = {}, [], [], []
    for k, (i, j) in enumerate(upper):
        if not field:  # a constant field
            entries[i, j] = sympy.Float(float(np.mean(values[:, k])))
            errors.append(0.0)
            rmses.append(0.0)
            continue
        target = Target(tuple(field), x, "values", values[:, k])

        def fn(zt, k=k):
            return block.core(zt)[:, k]

        tol = _tolerance(tolerance, force_error, target, block.kind)
        chosen, fits = _solve(target, fn, lambda: [], library, tol, seed,
                              deadline.share(1.0 / (len(upper) - k)))
        if chosen is None:
            raise DataError(f"module {block.name!r}: no candidate law is finite for the field "
                            f"entry B[{i}, {j}] on the module's inputs.")
        entries[i, j] = chosen.expr
        alternatives += _alternatives(fits, f"B[{block.output_names[i]}, "
                                            f"{block.output_names[j]}]")
        errors.append(chosen.error)
        rmses.append(chosen.rmse)
    exprs = []
    for i in range(n):
        total = sympy.Integer(0)
        for j in range(n):
            if i < j:
                total += entries[i, j] * velocities[j]
            elif i > j:
                total -= entries[j, i] * velocities[j]
        exprs.append(total)
    error = max(errors)
    return Law(block.name, block.kind, tuple(block.input_names), exprs,
               [in_state(e, block.spec) for e in exprs], 1.0 - error**2,
               float(np.sqrt(np.mean(np.square(rmses)))), error, complexity(exprs),
               tuple(alternatives), tuple(block.output_names))


def extract(model, data, modules: Sequence[str] | None = None,
            library: Sequence[str] | None = None, seed: int = 0, progress: bool = False,
            tolerance: float | None = None, max_samples: int = 1500,
            time_limit: float | None = None) -> Laws:
    """A closed-form law for every learned module of a trained model.

    Parameters
    ----------
    model : Model
        A compiled, trained model (:func:`pikan.compile`).
    data : Trajectories
        States whose features define each module's input distribution (the training
        data, or any data from the same regime).
    modules : sequence of str, optional
        Modules to extract (default: every learned module).
    library : sequence of str, optional
        Symbolic primitives allowed (default: the whole library,
        :func:`pikan.kan.symbolic.names`).
    seed : int
        Seeds the sample subsets and the edge fits.
    progress : bool
        Print one line per module to stderr.
    tolerance : float, optional
        Relative error a correct law is expected to have anyway (see the module
        docstring). Default, per module: the RMS error of the model's forces ``m * a`` on
        the data over the RMS of the module's own target, clipped to [1e-7, 0.2]. When the
        data have no accelerations they are estimated from positions
        (``data.with_derivatives()``) and the force error is capped at 1 % of the RMS
        force (the estimate's noise would inflate it). 1e-3 for Lagrangians and when
        nothing can be estimated.
    max_samples : int
        Module input samples used (a seeded subset).
    time_limit : float, optional
        Seconds for the whole extraction (None: no limit). Anytime: the modules are
        extracted in turn, each with an equal share of the time left; within a module,
        the candidate generators stop when its share is spent and the law is selected
        from the candidates fitted so far (constants not yet refit keep their proposed
        values), so a law always comes back, less simple or less exact when time was
        short.

    Returns
    -------
    Laws
        Module name -> :class:`~pikan.laws.law.Law`, with the model's spec attached.

    Raises
    ------
    SpecError
        An unknown module, a module that is not learned, or a ``time_limit`` that is not
        a positive number.
    """
    limit = _check_time_limit(time_limit, "extract")
    deadline = Deadline(None if limit is None else _SEARCH_SHARE * limit)
    names = list(modules) if modules is not None else [
        n for n, b in model.blocks.items() if b.is_learned]
    for n in names:
        if n not in model.blocks:
            raise SpecError(f"extract: the model has no module {n!r}; modules: "
                            f"{', '.join(model.blocks)}.")
    data.check_coords(model.coords)
    q, v, _ = data.states()
    rows = _rows(q.shape[0], max_samples, seed)
    q, v = q[rows], v[rows]
    accelerations = _accelerations(data, rows)  # one derivative estimate for every module
    force_error = None if tolerance is not None else _force_error(model, q, v, accelerations)
    laws = []
    for k, n in enumerate(names):
        start = time.perf_counter()
        share = deadline.share(1.0 / (len(names) - k))  # an equal part of what is left
        law = _module_law(model, n, q, v, library, tolerance, force_error, seed, max_samples,
                          accelerations, share)
        laws.append(law)
        if progress:
            print(f"[pikan] extract {n}: {law}  (error {law.error:.2g}, "
                  f"{time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return Laws(laws, spec=model.spec)


# ------------------------------------------------------------------ static regression


def _max_terms(d: int) -> int:
    """Largest sparse support for ``d`` inputs: 8, and more from 6 inputs up (a squared
    distance in 3-D, ``(x2 - x1)**2 + ...``, expands to 9 terms of 6 inputs)."""
    return max(8, (3 * d + 1) // 2)


def _lbfgs(kan: KAN, x: torch.Tensor, y: torch.Tensor, rounds: int, penalty: float,
           params: Sequence[torch.Tensor] | None = None,
           deadline: Deadline | None = None) -> None:
    """``rounds`` L-BFGS steps (20 iterations each) on the mean squared error (+ sparsity).

    ``params`` (default all): with the base and spline scales free, L-BFGS from a fresh
    KAN often stalls (the scales multiply the spline coefficients); fitting the
    coefficients alone first is close to linear least squares and converges quickly.
    With a limited ``deadline`` the rounds run one at a time and stop when it passes.
    """
    deadline = as_deadline(deadline)

    def loss_fn() -> torch.Tensor:
        loss = torch.mean((kan(x)[:, 0] - y) ** 2)
        return loss + penalty * kan.regularization(x) if penalty else loss

    params = list(kan.parameters() if params is None else params)
    if not deadline.limited:
        lbfgs_rounds(params, loss_fn, rounds)
        return
    for _ in range(rounds):
        if deadline.expired():
            return
        lbfgs_rounds(params, loss_fn, 1)


def _fit_surrogate(x: np.ndarray, y: np.ndarray, names: Sequence[str], seed: int,
                   steps: int, deadline: Deadline | None = None) -> tuple[KAN, float, float]:
    """A small KAN fitted to standardized ``y`` by the KAN recipe: (kan, mean, std).

    Widths ``[d, 2d + 1, 1]``. The recipe: uniform grid over the inputs, L-BFGS on the
    spline coefficients, L-BFGS with the sparsity penalty, prune by attribution, L-BFGS,
    then grid refinement 5 -> 10 -> 20 with L-BFGS after each. ``steps`` is the total number of L-BFGS
    iterations (20 per round). Anytime: once ``deadline`` passes, the remaining rounds
    and refinements are skipped (the KAN fitted so far is returned).
    """
    deadline = as_deadline(deadline)
    d = x.shape[1]
    widths = [d, max(2 * d + 1, 3), 1]
    kan = KAN(widths, grid=5, seed=seed, input_names=list(names)).to(torch.float64)
    mean, std = float(np.mean(y)), float(np.std(y)) or 1.0
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor((y - mean) / std, dtype=torch.float64)
    rounds = max(steps // 20 // 4, 1)
    kan.update_grid(xt, adaptivity=0.0)
    coefficients = [p for n, p in kan.named_parameters() if n.endswith("coef")]
    _lbfgs(kan, xt, yt, rounds, 0.0, coefficients, deadline)  # see _lbfgs: scales first
    _lbfgs(kan, xt, yt, rounds, 1e-4, deadline=deadline)
    if deadline.expired():
        return kan, mean, std
    kan.prune(xt, threshold=1e-2)
    _lbfgs(kan, xt, yt, rounds, 0.0, deadline=deadline)
    for grid in (10, 20):
        if deadline.expired():
            break
        kan.refine(grid, xt)
        _lbfgs(kan, xt, yt, rounds, 0.0, deadline=deadline)
    return kan, mean, std


def _split_candidates(target: Target, library, seed: int,
                      deadline: Deadline) -> list[tuple[sympy.Expr, str]]:
    """Candidates ``factor * g`` from a power law split off the target
    (:func:`pikan.laws.generators.regression.power_law_splits`), ``g`` by the direct generators on the rest
    (and, for a rest in one input, by the edge library's ``a*f(b*x + c) + d``)."""
    out = []
    for factor, others, rest in power_law_splits(target):
        if deadline.expired():
            break
        subs = [(c.expr, c.source) for c in exp_power_candidates(rest)]
        subs += [(c.expr, c.source) for c in regression_candidates(
            rest, library, transforms=True, max_terms=_max_terms(len(others)),
            deadline=deadline)]
        subs += [(c.expr, c.source) for c in rational_candidates(rest, seed=seed,
                                                                 deadline=deadline)]
        subs += [(c.expr, c.source) for c in additive_model_candidates(rest, library, seed,
                                                                       deadline)]
        if len(others) == 1 and not deadline.expired():  # a curve: the edge library's forms
            symbol = sympy.Symbol(rest.names[0])
            subs += [(f.expr(symbol), f"edge:{f.name}") for f in fit_edge(
                rest.z[:, 0], rest.y, candidates=library, seed=seed)[:3] if f.ok]
        out += [(factor * e, f"split:power-law*{source}") for e, source in subs]
    return out


NOISE_CORRELATION = 3.0
"""Residuals count as noise when their correlation with the residual at the nearest other
sample is below this many standard errors (``1/sqrt(N)``) of zero."""


def _residuals_are_noise(target: Target, fit: Fit, max_rows: int = 2000) -> bool:
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
    r = target.y - pred
    if not np.all(np.isfinite(r)) or r.size < 20:
        return False
    z = target.z[:max_rows]
    r = r[:max_rows] - r[:max_rows].mean()
    spread = z.std(axis=0)
    z = z / np.where(spread > 0, spread, 1.0)
    sq = np.sum(z * z, axis=1)
    dist = sq[:, None] + sq[None, :] - 2.0 * z @ z.T
    np.fill_diagonal(dist, np.inf)
    neighbour = np.argmin(dist, axis=1)
    power = float(r @ r)
    if power == 0.0:
        return True
    correlation = float(r @ r[neighbour]) / power
    return correlation < NOISE_CORRELATION / math.sqrt(r.size)


def _explained(fits: Sequence[Fit], tolerance: float) -> bool:
    """Whether some fit is within the tolerance (the next stage could only add more
    complex alternatives)."""
    return min((f.error for f in fits), default=math.inf) <= tolerance


def _settle(fits: Sequence[Fit], target: Target, tolerance: float
            ) -> tuple[Fit | None, float]:
    """The selection and the tolerance: raised to the best fit's error when that fit
    leaves only noise (:func:`_residuals_are_noise`), so that the search stops there."""
    best = min((f for f in fits if math.isfinite(f.error)), key=lambda f: f.error,
               default=None)
    if best is not None and best.error > tolerance and _residuals_are_noise(target, best):
        tolerance = best.error  # nothing left to explain: the noise level is the tolerance
    return select(fits, tolerance), tolerance


def _direct_candidates(target: Target, library, seed: int,
                       deadline: Deadline) -> list[tuple[sympy.Expr, str]]:
    """Stage 1 of :func:`find_law` after the power laws, cheapest families first."""
    d = target.z.shape[1]
    cands = [(c.expr, c.source) for c in regression_candidates(
        target, library, transforms=True, max_terms=_max_terms(d), deadline=deadline)]
    if not deadline.expired():
        cands += [(c.expr, c.source) for c in rational_candidates(target, seed=seed,
                                                                  deadline=deadline)]
    if not deadline.expired():
        cands += [(c.expr, c.source)
                  for c in varpro_candidates(target, library, deadline=deadline)]
    cands += _split_candidates(target, library, seed, deadline)
    cands += [(c.expr, c.source)
              for c in additive_model_candidates(target, library, seed, deadline)]
    return cands


def find_law(X, y, names: Sequence[str], output: str = "y", seed: int = 0, steps: int = 800,
             library: Sequence[str] | None = None, tolerance: float = 1e-6,
             max_samples: int = 2000, time_limit: float | None = DEFAULT_TIME_LIMIT) -> Law:
    """A closed-form law ``output = f(names)`` from static samples (not trajectories).

    Stages, cheapest first, every candidate's constants refit against the data themselves;
    each stage runs only when the ones before found no candidate within ``tolerance``:

    0. power laws ``C * prod z_k^e_k`` by least squares on logarithms, and the same for
       ``log|y|`` (``exp(-m*g*h/(kb*T))``); milliseconds, and the common product laws
       such as ``T*kb*mob`` end here;
    1. on the data directly: sparse regression over term libraries (also on transformed
       targets ``y^2, 1/y, 1/y^2, log|y|, sqrt(y)``), rational functions ``P/Q``, a power
       law in the one-signed inputs split off the rest (``G m1 m2 / r**2``: the rest
       ``1/r**2`` is a problem in the coordinates alone), laws with a scanned rate or shift
       for 1-2 inputs (:mod:`pikan.laws.generators.varpro`) and the additive spline model
       (:mod:`pikan.laws.generators.separability`);
    2. a small KAN ``[d, 2d + 1, 1]`` is
       fitted by the recipe (L-BFGS on the spline coefficients, then with a sparsity
       penalty, pruning, L-BFGS, grid refinement 5 -> 10 -> 20; ``steps`` L-BFGS iterations in all) as a differentiable
       surrogate for the structure tests, and, if still needed, its edges are read as
       formulas (:mod:`pikan.laws.generators.kan_edges`).

    The law is selected from the Pareto front of all candidates (see :mod:`pikan.laws.extract`).
    A KAN is never fitted when stage 1 already explains the data (exact data from a law
    the libraries can express): it could only add more complex alternatives.

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
        Relative error treated as negligible (raise it to the noise level of ``y``).
    max_samples : int
        Samples used (a seeded subset).
    time_limit : float or None
        Seconds to return within (default :data:`DEFAULT_TIME_LIMIT`; honoured within
        about 20 %); None: no limit.

    Returns
    -------
    Law
        ``kind="Function"``; ``expr`` in ``names``.

    Raises
    ------
    SpecError
        Names that are not valid variable names or do not match ``X``, or a
        ``time_limit`` that is not a positive number.
    DataError
        Shapes that disagree, fewer than 10 samples, or non-finite values.
    """
    limit = _check_time_limit(time_limit, "find_law")
    deadline = Deadline(None if limit is None else _SEARCH_SHARE * limit)
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
    rows = _rows(x.shape[0], max_samples, seed)
    x, yy = x[rows], yy[rows]
    target = Target(tuple(names), x, "values", yy)
    powers = monomial_candidates(target) + exp_power_candidates(target)
    fits = fit_candidates([(c.expr, c.source) for c in powers], target, tolerance,
                          deadline=deadline)
    chosen, tolerance = _settle(fits, target, tolerance)
    if not _explained(fits, tolerance):
        stage1 = deadline.share(0.5)
        fits += fit_candidates(_direct_candidates(target, library, seed, stage1), target,
                               tolerance, deadline=stage1)
        chosen, tolerance = _settle(fits, target, tolerance)
    if steps > 0 and not _explained(fits, tolerance) and not deadline.expired():
        kan, mean, std = _fit_surrogate(x, yy, names, seed, steps, deadline.share(0.35))

        def fn(zt, kan=kan, mean=mean, std=std):
            return mean + std * kan(zt)[:, 0]

        cands = [(c.expr, c.source) for c in structure_candidates(
            fn, x, names, "values", library, tolerance=tolerance, seed=seed,
            deadline=deadline.share(0.4))]
        fits += fit_candidates(cands, target, tolerance, deadline=deadline.share(0.4))
        if min((f.error for f in fits), default=math.inf) > tolerance \
                and not deadline.expired():
            formulas = kan_formulas(kan, x, names, library, seed=seed,
                                    deadline=deadline.share(0.5))
            exprs = [sympy.Float(mean) + sympy.Float(std) * e[0] for e in formulas.values()]
            fits += fit_candidates([(e, "kan") for e in exprs], target, tolerance,
                                   deadline=deadline)
        chosen = select(fits, tolerance)
    if chosen is not None:
        chosen = _tidy(chosen, target, deadline)
    if chosen is None:
        raise DataError("find_law: no candidate law is finite on the data.")
    return Law(output, "Function", tuple(names), chosen.expr, chosen.expr, chosen.r2,
               chosen.rmse, chosen.error, chosen.complexity, tuple(_alternatives(fits)))
