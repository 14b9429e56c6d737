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
  or estimated from positions), :mod:`pikan.laws.generators.euler_lagrange`, scaled to the
  model's mass matrix. That law is taken when it predicts the accelerations at least as well as the
  trained model (or within 5 times the tolerance). Otherwise (several Lagrangian modules,
  terms outside the library) the block's values are fitted, with a free additive
  constant: limited, check such laws by re-simulation (:func:`pikan.verify`);
- ``Dynamics``: the values of each output, one law per output.

Candidates come from the generators of :data:`EXTRACT_GENERATORS`
(:mod:`pikan.laws.generators`, one interface, a list the caller can change), in two stages:

1. sparse regression over term libraries in the inputs
   (:mod:`~pikan.laws.generators.regression`): polynomials with cross terms, unary library
   functions and their products, inverse powers down to ``1/z**12``; for 1-2 inputs, laws
   with one scanned nonlinear constant (:mod:`~pikan.laws.generators.varpro`): exponentials
   with a rate ``exp(-k z)`` (a well's ``exp(-k z)`` and ``exp(-2 k z)`` as one square),
   Gaussians with a width ``exp(-k z**2)`` (one input), shifted powers
   ``(z**2 + c)**-p``; for value targets, an
   additive spline model of the samples (:mod:`~pikan.laws.generators.additive_model`);
   structure tests (:mod:`~pikan.laws.generators.separability`): additive and
   multiplicative separability from mixed second derivatives of the block, which split it
   into pieces of fewer inputs; and a passive Dissipation's own terms
   (:mod:`~pikan.laws.generators.passive`);
2. the KAN read edge by edge (:mod:`~pikan.laws.generators.kan_edges`): ``a*f(b*x + c) +
   d`` per live edge of the pruned KAN, composed through sums and multiplication nodes.
   It is the slowest (one ``fit_edge`` over the library per live edge) and rarely gives
   the simplest law, so it runs only when stage 1 leaves every candidate above the
   tolerance.

Every candidate's constants are refit by nonlinear least squares against the module and
snapped to simple values where the error barely moves (:mod:`pikan.laws.candidates`). The law is
the simplest member of the Pareto front (complexity vs relative error) whose error is
within a factor 1.5 of ``max(best error, tolerance)``; the tolerance defaults to the
model's own force error on the data relative to the module's scale (a law cannot be asked
to match the KAN better than the KAN matches the physics). The front is kept as
``law.alternatives``. The simplest front member that explains the data as well is then
preferred (:func:`simplest_on_data`; for a vector law, a Flow's or a Dynamics', output by
output, the others held at their expressions), and a passive Dissipation's terms are
chosen by the data's dissipative force (:func:`pikan.laws.generators.passive.passive_on_data`).

On noisy positions a first-order system's Flow is also read from the data directly
(:func:`data_fits`): the data's weak-form averages of the rates, less the other modules',
are sparse-regressed with every term averaged over the same windows (weak-form sparse
regression, with saturating denominators too), and those laws join the contenders the
held-out data judge. A KAN learned from trajectories that each trace one curve can miss
the rates between them by half; the data's own averages do not depend on it.

:func:`pikan.laws.find_law.find_law` is the static-regression path, for samples ``(X, y)``
that are not trajectories.

*Anytime* under a ``time_limit``: generators run cheapest first and check a
:class:`~pikan.laws.candidates.Deadline` between candidate families and inside their long
loops; when the time is up the law is selected from the candidates fitted so far.
"""

from __future__ import annotations

import copy
import itertools
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import scipy.sparse
import sympy
import torch

from pikan.errors import DataError, SpecError
from pikan.laws.candidates import (
    Deadline,
    Fit,
    Target,
    alternatives,
    as_deadline,
    complexity,
    drop_constant,
    fit_candidates,
    pareto,
    rounded_key,
    sample_rows,
    search_deadline,
    select,
    tidy,
)
from pikan.laws.evidence import Evidence, evidence_for, worse_in_blocks
from pikan.laws.find_law import check_search_options
from pikan.laws.generators.additive_model import AdditiveModel
from pikan.laws.generators.base import Generator, Options, propose
from pikan.laws.generators.euler_lagrange import euler_lagrange_fits
from pikan.laws.generators.kan_edges import KanEdges, KanReading
from pikan.laws.generators.passive import Passive, passive_degrees, passive_on_data
from pikan.laws.generators.power_law import PowerLawSplit
from pikan.laws.generators.rational import DEGREES, Rational
from pikan.laws.generators.regression import SparseRegression
from pikan.laws.generators.saturating import Saturating
from pikan.laws.generators.separability import Separability
from pikan.laws.generators.varpro import VarPro
from pikan.laws.law import Law, Laws, in_state
from pikan.laws.uncertainty import law_constants, refit_constants, remaining_step
from pikan.model.torch_expr import lift_constants
from pikan.spec.system import TIME, VECTOR_KINDS
from pikan.train.threads import with_call_threads

__all__ = ["DATA_GENERATORS", "DATA_SHARE", "EXTRACT_GENERATORS", "OCCAM_SLACK", "REFIT_CONSTANTS",
           "data_fits", "data_target", "extract", "simplest_on_data", "solve"]

_SCALAR = ("Potential", "Dissipation", "Lagrangian")
_TOLERANCE_RANGE = (1e-7, 0.2)


EXTRACT_GENERATORS: tuple[tuple[Generator, ...], ...] = (
    (Passive(), SparseRegression(), VarPro(), AdditiveModel(), Separability()),
    (KanEdges(),),
)
"""The candidate generators of :func:`extract`, in stages: a stage runs only when the ones
before left every candidate above the tolerance (and the time is not up). The KAN edge
formulas are the slowest (one ``fit_edge`` over the library per live edge) and rarely the
simplest law, so they come last."""

FLOW_DEGREES = (*DEGREES, (3, 1))
"""A Flow's rational degree pairs: also a cubic over a linear denominator, the shape of a
logistic growth beside a saturating response (``x (1 - x/K) - a x y/(1 + h x)`` over one
denominator)."""
FLOW_GENERATORS: tuple[tuple[Generator, ...], ...] = (
    (*EXTRACT_GENERATORS[0], Rational(degrees=FLOW_DEGREES), PowerLawSplit(), Saturating()),
    *EXTRACT_GENERATORS[1:])
"""What a first-order system's ``Flow`` outputs get instead of :data:`EXTRACT_GENERATORS`
(when the caller did not choose): rational functions too, alone and times a power law split
off (:class:`~pikan.laws.generators.power_law.PowerLawSplit`), and polynomial terms over a
saturating denominator ``1 + h z`` (:class:`~pikan.laws.generators.saturating.
Saturating`). Rates of populations and
reactions saturate (Holling's predation ``a x y/(1 + h x)``, Michaelis--Menten ``V s/(K +
s)``), which no term library holds; their KAN's rate was otherwise read as a six-term
polynomial within the KAN's own error. Forces keep the default: their rational shapes are
the shifted powers of :mod:`~pikan.laws.generators.varpro`."""


def solve(target: Target, options: Options,
          generators: Sequence[Sequence[Generator]] = EXTRACT_GENERATORS
          ) -> tuple[Fit | None, list[Fit]]:
    """The extraction core for one target: (chosen fit, all fits).

    The candidates of each stage of ``generators`` are pooled and refit against the target
    (:func:`~pikan.laws.candidates.fit_candidates`); a later stage runs only when no fit of
    the earlier ones is within ``options.tolerance`` and ``options.deadline`` has not
    passed. The law is the selection (:func:`~pikan.laws.candidates.select`) from every
    fit, in its simplest equal form (:func:`~pikan.laws.candidates.tidy`). Anytime: each
    generator stops at the deadline and the selection is made from what was fitted.

    Parameters
    ----------
    target : Target
    options : Options
        What the generators may read (:class:`pikan.laws.generators.base.Options`).
    generators : sequence of sequences of Generator
        The stages (default :data:`EXTRACT_GENERATORS`).

    Returns
    -------
    (Fit or None, list of Fit)
        None when no candidate is finite.
    """
    deadline = as_deadline(options.deadline)
    tolerance = options.tolerance
    fits: list[Fit] = []
    for k, stage in enumerate(generators):
        if k > 0:
            best = min((f.error for f in fits), default=math.inf)
            if not best > tolerance or deadline.expired():
                break
        fits += fit_candidates(propose(stage, target, options), target, tolerance,
                               deadline=deadline)
    chosen = select(fits, tolerance)
    if chosen is not None:
        chosen = tidy(chosen, target, deadline)
    return chosen, fits


# ------------------------------------------------------------------ trained models


_ESTIMATED_CAP = 1e-2  # Lagrangian tolerance when accelerations are estimates of noisy positions


def _accelerations(data, rows: np.ndarray, trusted: bool) -> tuple[np.ndarray, bool] | None:
    """The data's accelerations on ``rows`` (estimated from positions when absent) and
    whether they can be trusted sample by sample (given, or estimated from clean
    positions: ``trusted``); None when they cannot be had."""
    try:
        source = data if data.has_accelerations else data.with_derivatives()
        return source.accelerations()[0][rows], trusted
    except (DataError, ValueError):
        return None


def _force_error(model, proof: Evidence | None) -> float | None:
    """Absolute RMS error of the model's generalized forces ``m * a`` against the data's
    evidence (:func:`pikan.laws.evidence.evidence`), an estimate of how far the trained model
    is from the physics.

    Accelerations given, or estimated from clean positions (accurate there): the error as
    it is. Weak-form averages of noisy positions: with their predicted noise removed
    (:meth:`~pikan.laws.evidence.Evidence.excess`), but no less than that noise: the
    averages hide how far the KAN wiggles between windows, and a KAN trained on noisy
    positions wiggles about that much (asked to follow it closer, extraction chased the
    wiggles with laws of 200 nodes). None when unavailable.
    """
    if proof is None:
        return None
    masses = getattr(model, "masses", None)
    m = None if masses is None else masses.detach().cpu().numpy()
    if proof.kind == "weak":
        floor = float(np.sqrt(np.mean((proof.floor * (1.0 if m is None else m)) ** 2)))
        error = max(proof.excess(model, m), floor)
    else:
        error = proof.error(model, m)
    return error if math.isfinite(error) else None


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


def _force_target(block, q: np.ndarray, v: np.ndarray, wrt: str,
                  t: np.ndarray | None = None) -> Target:
    r"""The generalized force of a Potential (``wrt="q"``) or Dissipation (``"v"``) module.

    The target is :math:`\sum_b J_b^T \nabla E(z_b)` over the bindings ``b`` (the force up
    to sign), with the binding Jacobians :math:`J_b = \partial z_b / \partial q` (or
    :math:`\partial v`) as the projection: candidates are judged by the force they exert.
    ``t`` (N,): the times of the states, for a driven system.
    """
    dtype = next((p.dtype for p in block.parameters()), torch.float64)
    qt = torch.as_tensor(q, dtype=dtype).clone().requires_grad_(wrt == "q")
    vt = torch.as_tensor(v, dtype=dtype).clone().requires_grad_(wrt == "v")
    x = qt if wrt == "q" else vt
    columns = [qt, vt] + ([] if t is None else [torch.as_tensor(t, dtype=dtype)[:, None]])
    z = block.inputs(torch.cat(columns, dim=-1))  # (B, N, d)
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


DATA_GENERATORS: tuple[tuple[Generator, ...], ...] = ((SparseRegression(), Saturating(),
                                                       VarPro()),)
"""What :func:`data_fits` proposes from the data's own averages: sparse regression over the
term libraries, polynomial terms over a saturating denominator (rates) and laws with one
scanned nonlinear constant (forces), whose designs average each term like the data (no
generator that reads a KAN or a differentiable function)."""


def data_target(model, name: str, output: int, proof: Evidence) -> Target | None:
    r"""What the data say one output of a first-order system's Flow is, with every other
    module held as it is: the data's rates of the output's coordinate minus the other
    modules' (the module itself removed), on the evidence's states. For a Potential or
    Dissipation of a second-order Newtonian system, the generalized force the data leave
    to it (:func:`_force_data_target`).

    On weak-form evidence the rates are known as window averages only, so the target is
    those averages (``Target.average`` holds each window's weights) and a candidate is
    judged by its own average on each window: sparse regression on it is weak-form sparse
    regression, which reads no KAN. None when the module is neither such a Flow read
    through one binding nor such a force, or it cannot be removed.

    Parameters
    ----------
    model : Model
    name : str
        A Flow, Potential or Dissipation module.
    output : int
        Which of its outputs (0 for a Potential or Dissipation).
    proof : Evidence
        The data's evidence (:func:`pikan.laws.evidence.rate_evidence`).

    Returns
    -------
    Target or None
    """
    block = model.blocks[name]
    if block.kind in ("Potential", "Dissipation"):
        return _force_data_target(model, name, proof)
    if (getattr(model, "order", 2) != 1 or block.kind != "Flow"
            or len(block.spec.input_bindings) != 1):
        return None
    coord = model.coords.index(block.output_names[output])
    others = _others(model, name, _zero(block), proof)
    if others is None:
        return None
    q, v, t = proof.states(model)
    with torch.no_grad():
        z = model.module_inputs(name, q, v, t if model.driven else None)
    z = z.detach().cpu().numpy().astype(np.float64)
    y = proof.target[:, coord] - others[:, coord]
    if proof.weights is None:
        return Target(tuple(block.input_names), z, "values", y)
    return Target(tuple(block.input_names), z, "values", y,
                  average=_window_average(proof.weights))


def _others(model, name: str, zero, proof: Evidence) -> np.ndarray | None:
    """What the model without module ``name`` (fixed to ``zero``) predicts on the evidence:
    the other modules' part of the target; None when the module cannot be removed or the
    prediction is not finite."""
    without = copy.deepcopy(model)
    try:
        without.fix(name, zero, trainable=False)
    except (SpecError, ValueError):
        return None
    others = proof.predict(without)
    return None if others is None or not np.all(np.isfinite(others)) else others


def _zero(block) -> str | list[str]:
    """The law that sets ``block`` to zero (one per output of a vector module)."""
    return "0" if block.kind in _SCALAR else ["0"] * len(block.output_names)


def _alone(model, name: str, proofs: Sequence[Evidence | None]) -> tuple:
    """A copy of ``model`` in which module ``name``'s laws are tried, and ``proofs`` for it:
    every other learned module set to zero in the copy, its part of the model's prediction
    on each evidence held as the evidence's offset (:meth:`Evidence.apart`). Trying a law
    then costs that law's forward passes, not the other modules' KANs': beside the six
    bindings of a pair potential's KAN, weighing 37 laws of a trap on the data took 31 s
    of a 23 s share, and the pair had 0.9 s left for its own law.

    Where the parts do not add up (checked on every evidence), or a module cannot be set
    to zero, the copy is the whole model and the proofs are as given."""
    others = [n for n, b in model.blocks.items() if n != name and b.is_learned]
    if not others or all(p is None for p in proofs):
        return copy.deepcopy(model), tuple(proofs)
    part = copy.deepcopy(model)
    try:
        for other in others:
            part.fix(other, _zero(model.blocks[other]), trainable=False)
        model_zero, part_zero = copy.deepcopy(model), copy.deepcopy(part)
        for trial in (model_zero, part_zero):
            trial.fix(name, _zero(model.blocks[name]), trainable=False)
    except (SpecError, ValueError):
        return copy.deepcopy(model), tuple(proofs)
    with torch.no_grad():
        apart = tuple(None if p is None else p.apart(model, part, check=(model_zero, part_zero))
                      for p in proofs)
    if any(a is None and p is not None for a, p in zip(apart, proofs)):
        return copy.deepcopy(model), tuple(proofs)
    return part, apart


def _window_average(weights: np.ndarray) -> scipy.sparse.csr_array:
    """The sparse (windows, windows * length) matrix of each window's weights."""
    windows, length = weights.shape
    rows = np.repeat(np.arange(windows), length)
    return scipy.sparse.csr_array((weights.ravel(), (rows, np.arange(rows.size))),
                                  shape=(windows, rows.size))


def _force_data_target(model, name: str, proof: Evidence) -> Target | None:
    """:func:`data_target` of a Potential or Dissipation of a second-order Newtonian system:
    the generalized force the data leave to the module, ``m (a_data - a_others)`` averaged
    over the evidence's windows, against the averages of the module's projected gradient
    (as :func:`_force_target` reads a trained block, sign included)."""
    block = model.blocks[name]
    if (getattr(model, "order", 2) != 2 or getattr(model, "formulation", "") == "lagrangian"
            or proof.weights is None):
        return None
    others = _others(model, name, _zero(block), proof)
    if others is None:
        return None
    masses = model.masses.detach().cpu().numpy().astype(float)
    q, v, t = proof.states()
    shape = _force_target(block, q, v, "q" if block.kind == "Potential" else "v",
                          t if model.driven else None)
    y = -masses * (proof.target - others)  # the module's force is minus its gradient
    return Target(shape.names, shape.z, "gradient", y, projection=shape.projection,
                  average=_window_average(proof.weights))


DATA_SHARE = 0.3
"""The share of a module's extraction time that :func:`data_fits` has, before the KAN's
candidates are sought (it only uses it on weak-form evidence: noisy positions)."""

DATA_CONTENDERS = 12
"""The most laws fitted to the data's own averages (:func:`data_fits`) that
:func:`simplest_on_data` weighs beside the KAN's."""


def data_fits(model, name: str, output: int, proof: Evidence | None, options: Options
              ) -> list[Fit]:
    """Laws of one Flow output, Potential or Dissipation fitted to the data directly
    (:func:`data_target`), not to the KAN: the Pareto front of :data:`DATA_GENERATORS` on
    the data's weak-form averages, at most :data:`DATA_CONTENDERS`, simplest first; empty
    without weak-form evidence.

    A KAN trained on noisy positions of trajectories that each trace one curve (a reaction
    relaxing to its equilibrium) can miss the rates between them by half, and every law
    read from it inherits that (at 1 % noise a mass-action rate came back as ``-0.022 c``),
    while the data's averages hold ``0.83 a b - 0.27 c`` to their noise; a
    Lennard-Jones wall's KAN at 1 % noise gave a near form, the data's averaged forces the
    law. These laws only join the contenders the data judge (held-out trajectories where
    there are some): they are never taken on the KAN's word.
    """
    if proof is None or proof.kind != "weak":
        return []
    target = data_target(model, name, output, proof)
    if target is None:
        return []
    block = model.blocks[name]
    if block.kind == "Flow":
        floor = float(proof.floor[model.coords.index(block.output_names[output])])
    else:
        masses = model.masses.detach().cpu().numpy().astype(float)
        floor = float(np.sqrt(np.mean((masses * proof.floor) ** 2)))
    tol = float(np.clip(floor / target.scale, *_TOLERANCE_RANGE))
    _, fits = solve(target, options.replace(tolerance=tol, function=None, kan=None),
                    DATA_GENERATORS)
    front = [f for f in pareto(fits) if math.isfinite(f.error)]
    return sorted(front, key=lambda f: (f.complexity, f.error))[:DATA_CONTENDERS]


def _kan_reading(block, z: np.ndarray, deadline: Deadline) -> KanReading | None:
    """The block's KAN to read edge by edge, when the KAN alone is the block function (not
    wrapped by a hard constraint, not a gyroscopic field); read within ``deadline``."""
    kan = block.kan
    if kan is None or getattr(block, "gyroscopic_learned", False):
        return None
    with torch.no_grad():
        zt = torch.as_tensor(z, dtype=next(kan.parameters()).dtype)
        if not torch.allclose(block.function(zt), kan(zt), rtol=1e-9, atol=1e-12):
            return None  # a hard constraint wraps the KAN: its edges are not the module
    return KanReading(kan, z, list(block.input_names), deadline=deadline)


OCCAM_SLACK = 0.005
"""A simpler law replaces the chosen one when its acceleration error on the data is at most
this much (relative) larger. Measured: at 1 % position noise ``-1/r`` was 0.09 % worse on
the data than the biased ``-1.04/(r + 0.02)``; at 5 % noise dropping the real ``d**4/8`` of
a spring chain's bond cost 1.8 %."""


NOISY_REACH = 2
"""On noisy positions, :func:`simplest_on_data` also weighs front members up to this many
times (plus 10) the chosen law's complexity."""


NOISY_CONTENDERS = 40
"""On noisy positions, the most candidate laws :func:`simplest_on_data` weighs on the data."""


def _data_contenders(fits: Sequence[Fit], chosen: Fit, reach: int) -> list[Fit]:
    """On noisy positions, the candidates the data judge: not only the front against the
    KAN (a KAN fitted through noise wiggles, and a series that follows the wiggles hides
    the true form behind it on that front: a Morse wall at 1 % noise), but every distinct
    finite candidate up to ``reach`` whose error against the KAN is within three times the
    chosen law's, the most accurate per complexity first; and the whole Pareto front up to
    ``reach`` however far from the KAN (a KAN trained beside a learned friction can carry
    a 12 % error that the data, with the law's constants refitted, put right: ``x**2`` of
    a spring beside a quadratic drag at 1 % noise), and the front by
    :func:`free_complexity` (snapped, ``4 x**2/7 + 107/11 - 1077/(8 (y**2 + 46/3))``
    hid ``0.58 x**2 + 0.51 y**2 + 0.96`` of the same complexity behind it), taken first.
    At most :data:`NOISY_CONTENDERS`."""
    bound = 3.0 * max(chosen.error, 1e-12)
    seen, out = set(), []

    def take(fit: Fit) -> None:
        key = rounded_key(fit.expr)
        if key not in seen and len(out) < NOISY_CONTENDERS:
            seen.add(key)
            out.append(fit)

    best = math.inf  # the front by free complexity, the order the data's choice ranks in
    for fit in sorted(fits, key=lambda f: (free_complexity(f.expr), f.error)):
        if math.isfinite(fit.error) and fit.error < best and fit.complexity <= reach:
            take(fit)
            best = fit.error
    for fit in pareto(fits):
        if math.isfinite(fit.error) and fit.complexity <= reach:
            take(fit)
    for fit in sorted(fits, key=lambda f: (f.error, f.complexity)):
        if math.isfinite(fit.error) and fit.error <= bound and fit.complexity <= reach:
            take(fit)
    return sorted(out, key=lambda f: (f.complexity, f.error))


REFIT_CONSTANTS = 8
"""On noisy positions, :func:`simplest_on_data` refits the constants of contenders with at
most this many to the training data before the held-out data judge them (a series of dozens
of constants is judged with the constants it has: Gauss-Newton steps on it diverge)."""


CONVERGED = 1e-3
"""A refit whose next Gauss-Newton step would move no constant by more than this (relative,
:func:`pikan.laws.uncertainty.remaining_step`) has converged; one that stopped short
leaves the law near where it was fitted before."""


def free_complexity(expr) -> int:
    """The complexity of ``expr`` with every constant a refit frees counted as a fitted
    float (:func:`pikan.model.torch_expr.lift_constants`): what a law costs once the data
    set its constants. A snapped ``1077/(8 (y**2 + 46/3))`` is as cheap as ``0.514 y**2``
    by :func:`~pikan.laws.candidates.complexity`, but it is four free constants for one
    term, and on noisy data the extra constant fits noise."""
    lifted, dummies, _ = lift_constants(sympy.sympify(expr))
    return complexity(lifted.xreplace({d: sympy.Float(0.5) for d in dummies}))


def simplest_on_data(model, name: str, fits: Sequence[Fit], chosen: Fit,
                     proof: Evidence | None, fit_on: Evidence | None = None,
                     compose=None, from_data: Sequence[Fit] = ()) -> Fit:
    """The simplest front member that explains the data as well as the chosen law.

    The selection compares laws with the trained block, which carries the fit's own errors
    (on noisy data, a KAN slightly off where data are sparse makes ``-1.04/(r + 0.02)``
    beat ``-1/r``). The data decide between them instead: each simpler member is put into
    the model in place of the block, and the simplest whose error against the data's
    evidence (accelerations, or weak-form averages of noisy positions) is within
    :data:`OCCAM_SLACK` of the chosen law's is taken.

    On noisy positions (weak-form evidence) the selection's tolerance is the noise, so the
    chosen law may also be too simple (at 5 % noise a double well's coupling term carries
    less force than the noise), and the front against the KAN may hide the true form
    behind series that follow the KAN's wiggles: there every contender of
    :func:`_data_contenders` up to ``NOISY_REACH * complexity + 10`` of the chosen law's
    is weighed on the data. A contender of at most :data:`REFIT_CONSTANTS` constants has
    them refitted to ``fit_on`` first (the training data's evidence; the KAN's constants
    carry its errors, :func:`pikan.laws.uncertainty.refit_constants`), and the simplest
    contender that the data do not resolve as worse than the best
    (:meth:`pikan.laws.evidence.Evidence.worse`), or that is within
    :data:`OCCAM_SLACK` of it, is taken; simplest by :func:`free_complexity`, the size of
    the law with its constants free. With held-out data (``fit_on`` given), a contender of
    at most :data:`REFIT_CONSTANTS` constants must also hold on all the data, each half
    with its constants fitted on the other (:func:`_crossed`): a few held-out trajectories
    are few independent pieces of evidence, and a law one node simpler that they leave
    unresolved can be far worse on the rest.

    This judgment is not cut short by the time limit: it is at most
    :data:`NOISY_CONTENDERS` (or a Pareto front's) forward passes over the evidence's
    samples, and a few Gauss-Newton steps on small laws, a second or so; skipping it when
    the search had used its share returned a 177-node series for ``0.415 x**2`` (a damped
    oscillator at 1 % noise, whose search ran out of time).

    Parameters
    ----------
    model : Model
        The trained model (not modified: a copy takes each law in turn).
    name : str
        The module.
    fits : sequence of Fit
        Every fit of the module's target; its Pareto front is searched.
    chosen : Fit
        The selected law.
    proof : Evidence or None
        The data's evidence (:func:`pikan.laws.evidence.evidence`), held-out where there is
        a split; None: ``chosen``.
    fit_on : Evidence, optional
        Where contenders' constants are refitted (noisy positions only); None: not refitted.
    compose : callable, optional
        The module's whole law from a candidate's expression: one output of a vector law
        (a Flow, a Dynamics) beside the other outputs' expressions. Default: the
        expression is the law.
    from_data : sequence of Fit, optional
        Laws fitted to the data rather than to the KAN (:func:`data_fits`): on noisy
        positions they are contenders too, whatever their error against the KAN.

    Returns
    -------
    Fit
    """
    compose = compose or (lambda expr: expr)
    noisy = proof is not None and proof.kind == "weak"
    held_out = fit_on is not None and fit_on is not proof
    if noisy:
        simpler = [f for f in _data_contenders(fits, chosen, NOISY_REACH * chosen.complexity
                                               + 10) if f is not chosen]
        known = {rounded_key(f.expr) for f in simpler}
        simpler += [f for f in from_data if rounded_key(f.expr) not in known]
    else:
        simpler = [f for f in pareto(fits) if f.complexity < chosen.complexity]
    if not simpler or proof is None:
        return chosen
    # each candidate in turn replaces the block's core, the other modules held apart
    trial, (proof, fit_on) = _alone(model, name, (proof, fit_on))
    if noisy:
        rows = {}
        for fit in [chosen, *simpler]:
            errors = _rows_on_data(trial, name, compose(fit.expr), proof, fit_on)
            if errors is not None:
                rows[id(fit)] = errors
        if not rows:
            return chosen
        # a chosen law the data cannot evaluate (not finite on the held-out states: an
        # asin of the KAN's wiggles outside its domain) leaves the choice to the others
        rows = _where_they_differ(rows, rows.get(id(chosen), next(iter(rows.values()))))
        held = (rows, proof.row_blocks())
        # only laws the held-out data leave in the running are weighed on every trajectory
        holders = [f for f in [chosen, *simpler] if id(f) in rows and _holds(f, held)]
        crossed = _crossed(trial, name, holders, compose, proof, fit_on,
                           rows) if held_out else None
        members = sorted((f for f in [*simpler, chosen] if id(f) in rows),
                         key=lambda f: (free_complexity(f.expr), float(np.mean(rows[id(f)]))))
        return next((f for f in members if _holds(f, held) and _holds(f, crossed)),
                    min(members, key=lambda f: float(np.mean(rows[id(f)]))))

    def data_error(fit: Fit) -> float:
        try:
            trial.fix(name, compose(fit.expr), trainable=False)
            with torch.no_grad():
                return proof.error(trial)
        except (SpecError, ValueError, RuntimeError):
            return math.inf

    reference = data_error(chosen)
    if not math.isfinite(reference):
        return chosen
    for fit in simpler:  # by complexity, simplest first
        if data_error(fit) <= (1 + OCCAM_SLACK) * reference:
            return fit
    return chosen


def _holds(fit: Fit, judged: tuple | None) -> bool:
    """Whether ``fit`` explains the data as well as the best law in ``judged``, ``(row errors
    by law id, the rows' blocks)``: within :data:`OCCAM_SLACK` of the best's mean error, or
    not resolved as worse (:func:`~pikan.laws.evidence.worse_in_blocks`); True when it was
    not judged there."""
    if judged is None or id(fit) not in judged[0]:
        return True
    rows, blocks = judged
    best = min(rows.values(), key=np.mean)
    mine = rows[id(fit)]
    return bool(np.mean(mine) <= (1 + OCCAM_SLACK) * np.mean(best)
                or not worse_in_blocks(mine, best, blocks))


def _crossed(trial, name: str, fits: Sequence[Fit], compose, held: Evidence,
             train: Evidence, held_rows: dict) -> tuple | None:
    """The laws of ``fits`` (those the held-out data leave in the running) judged on all the
    data, each half with constants fitted on the other: the held-out rows as given
    (``held_rows``, constants fitted on ``train``) and the training rows with the constants
    refitted on ``held``; ``(row errors by law id, blocks)`` as :func:`_holds` reads it, or
    None when fewer than two laws can be judged so.

    Only laws of at most :data:`REFIT_CONSTANTS` constants whose refit on ``held``
    converges take part: one with more keeps the constants it was read with, fitted
    (through the KAN) to the training data, and would be judged there in-sample, and so
    would one whose refit stops short (at 1 % noise a gas's trap ``0.436 x**2 - 1.37e9/(y**2
    + 1845)**2`` beat ``0.436 x**2 + 0.435 y**2`` by 0.7 % that way). Two held-out trajectories gave six independent
    stretches, and the mean log ratio of ``0.037 r**5 - 0.70 r`` to the best law there,
    0.18 with a standard error of 0.12, did not resolve it from the Mexican hat
    ``0.14 r**4 - 0.56 r**2`` at 5 % noise (one node simpler), while the training
    trajectories hold five times as many stretches."""
    rows = {}
    for fit in fits:
        errors = _rows_on_data(trial, name, compose(fit.expr), train, held,
                               within=REFIT_CONSTANTS)
        if errors is not None:
            rows[id(fit)] = errors
    if len(rows) < 2:
        return None
    reference = rows.get(id(fits[0]), next(iter(rows.values())))
    rows = _where_they_differ(rows, reference)
    offset = int(np.max(held.row_blocks(), initial=-1)) + 1
    blocks = np.concatenate([held.row_blocks(), offset + train.row_blocks()])
    return ({key: np.concatenate([held_rows[key], errors]) for key, errors in rows.items()},
            blocks)


def _where_they_differ(errors: dict, reference: np.ndarray) -> dict:
    """Row errors (:meth:`~pikan.laws.evidence.Evidence.row_errors`) from errors per row and
    coordinate, summed over the coordinates where some law's differ from ``reference``'s
    (all when none do). The laws compared differ in one module, and a coordinate it does not
    move adds the same error to every law: beside three Flows of a reaction, the other two
    Flows' errors (their KANs barely trained) drowned the difference between ``0.8 a b -
    0.3 c`` and ``0.195 - 0.117 c`` as a Flow of ``c``."""
    moved = np.zeros(reference.shape[1], dtype=bool)
    for e in errors.values():
        moved |= np.any(e != reference, axis=0)
    if not moved.any():
        moved[:] = True
    return {key: e[:, moved].sum(axis=1) for key, e in errors.items()}


def _rows_on_data(trial, name: str, law, proof: Evidence,
                  fit_on: Evidence | None, within: float = math.inf) -> np.ndarray | None:
    """The evidence's errors per row and coordinate
    (:meth:`~pikan.laws.evidence.Evidence.coordinate_errors`) of ``trial`` with ``law`` as
    module ``name``, its constants refitted on ``fit_on`` when there are at most
    :data:`REFIT_CONSTANTS`; None when it cannot be evaluated or, with ``within`` given,
    when it has more constants than that or the refit stops short of converging
    (:data:`CONVERGED`: the law would be judged near the constants it was fitted with
    elsewhere)."""
    try:
        trial.fix(name, law, trainable=fit_on is not None)
        if fit_on is not None:
            entries = law_constants(trial, [name])
            if len(entries) > within:
                return None
            if 0 < len(entries) <= REFIT_CONSTANTS:
                refit_constants(trial, name, fit_on)
                if math.isfinite(within) and remaining_step(trial, name, fit_on) > CONVERGED:
                    return None
            else:
                trial.fix(name, law, trainable=False)
        with torch.no_grad():
            return proof.coordinate_errors(trial)
    except (SpecError, ValueError, RuntimeError):
        return None


def _euler_lagrange_law(model, name: str, q: np.ndarray, v: np.ndarray,
                        accelerations: tuple[np.ndarray, bool] | None,
                        force_error: float | None) -> Law | None:
    """The law of the system's only Lagrangian module by Euler--Lagrange regression
    (:mod:`pikan.laws.generators.euler_lagrange`), when it predicts the accelerations at
    least as well as the trained model does (or within 5 times the selection tolerance);
    else None."""
    spec = model.spec
    if accelerations is None or spec.driven or [m.name for m in spec.modules
                                                if m.kind == "Lagrangian"] != [name]:
        return None  # (driven: the regression's generalized forces would need the times)
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
               tuple(alternatives(fits)))


def _module_law(model, name: str, q: np.ndarray, v: np.ndarray, library,
                tolerance: float | None, force_error: float | None, seed: int,
                max_samples: int, accelerations: tuple[np.ndarray, bool] | None = None,
                proof: Evidence | None = None, deadline: Deadline | None = None,
                generators: Sequence[Sequence[Generator]] = EXTRACT_GENERATORS,
                judge_by: Evidence | None = None, t: np.ndarray | None = None,
                decisions: dict | None = None) -> Law:
    deadline = as_deadline(deadline)
    block = model.blocks[name]
    n_bindings = len(block.spec.input_bindings)
    rows = sample_rows(q.shape[0], max(max_samples // n_bindings, 50), seed)
    q, v = q[rows], v[rows]
    t = None if t is None or not model.driven else t[rows]
    if accelerations is not None:
        accelerations = (accelerations[0][rows], accelerations[1])
    dtype = next((p.dtype for p in model.parameters()), torch.float64)
    z = model.module_inputs(name, torch.as_tensor(q, dtype=dtype), torch.as_tensor(v, dtype=dtype),
                            None if t is None else torch.as_tensor(t, dtype=dtype))
    z = z.detach().cpu().numpy()
    z = z.astype(np.float64)
    if getattr(block, "gyroscopic_learned", False):
        return _gyroscopic_law(block, z, library, tolerance, force_error, seed, deadline,
                               generators, (model, proof, judge_by))
    options = Options(library=library, seed=seed, deadline=deadline,
                      kan=_kan_reading(block, z, deadline),
                      passive_degrees=passive_degrees(block))
    if block.kind in _SCALAR:
        if block.kind == "Lagrangian":
            law = _euler_lagrange_law(model, name, q, v, accelerations, force_error)
            if law is not None:
                return law
            target = _block_target(block, z, 0)
        else:
            target = _force_target(block, q, v, "q" if block.kind == "Potential" else "v", t)

        def fn(zt, b=block):
            return b.function(zt)[:, 0]

        tol = _tolerance(tolerance, force_error, target, block.kind)
        from_data = [] if block.kind == "Lagrangian" else data_fits(
            model, name, 0, proof, options.replace(deadline=deadline.share(DATA_SHARE)))
        chosen, fits = solve(target, options.replace(tolerance=tol, function=fn), generators)
        if chosen is None:
            raise DataError(f"module {name!r}: no candidate law is finite on the module's "
                            "inputs; hint: check the data and the trained model.")
        held_out = judge_by is not None and judge_by is not proof
        proposed = chosen
        chosen = simplest_on_data(model, name, fits, chosen, judge_by or proof,
                                  fit_on=proof if held_out else None, from_data=from_data)
        passive = passive_on_data(model, name, proof, target, tol, z)
        caveats = ()
        if passive is not None:
            passive, caveats = passive
            fits = [*fits, passive]
            chosen = passive
        elif decisions is not None and proof is not None and proof.kind == "weak":
            decisions[name] = (fits, proposed, chosen, from_data)
        return _scalar_law(name, block, chosen, fits, caveats)
    exprs, front, errors, rmses, solved = [], [], [], [], []
    if block.kind == "Flow" and generators is EXTRACT_GENERATORS:
        generators = FLOW_GENERATORS
    # laws read from the data come first, with their own part of the time: the KAN's
    # candidates take whatever time they are given, and a module whose KAN is poor is the
    # one that needs the data's
    reserve = deadline.share(DATA_SHARE)
    outputs = len(block.output_names)
    from_data = [data_fits(model, name, k, proof,
                           options.replace(deadline=reserve.share(1.0 / (outputs - k))))
                 for k in range(outputs)]
    for k, output in enumerate(block.output_names):
        target = _block_target(block, z, k)

        def fn(zt, b=block, k=k):
            return b.function(zt)[:, k]

        tol = _tolerance(tolerance, force_error, target, block.kind)
        # the outputs share the module's time: each gets its part of what is left
        share = deadline.share(1.0 / (len(block.output_names) - k))
        chosen, fits = solve(target, options.replace(tolerance=tol, deadline=share,
                                                     function=fn, output=k), generators)
        if chosen is None:
            raise DataError(f"module {name!r} output {output!r}: no candidate law is finite "
                            "on the module's inputs.")
        exprs.append(chosen.expr)
        front += alternatives(fits, output)
        errors.append(chosen.error)
        rmses.append(chosen.rmse)
        solved.append((fits, chosen))
    if proof is not None:
        # the data, not the KAN, choose each output's form (as for a scalar law), the other
        # outputs held at their current expressions
        held_out = judge_by is not None and judge_by is not proof
        for k, (fits, chosen) in enumerate(solved):
            best = simplest_on_data(
                model, name, fits, chosen, judge_by or proof,
                fit_on=proof if held_out else None,
                compose=lambda expr, k=k: [*exprs[:k], expr, *exprs[k + 1:]],
                from_data=from_data[k])
            exprs[k], errors[k], rmses[k] = best.expr, best.error, best.rmse
    return _vector_law(name, block, exprs, errors, rmses, front)


def _vector_law(name: str, block, exprs: list, errors: list, rmses: list, front: list) -> Law:
    """A vector law (Flow, Dynamics) from its outputs' expressions and their errors."""
    error = max(errors)
    return Law(name, block.kind, tuple(block.input_names), exprs,
               [in_state(e, block.spec) for e in exprs], 1.0 - error**2,
               float(np.sqrt(np.mean(np.square(rmses)))), error, complexity(exprs),
               tuple(front), tuple(block.output_names))


def _scalar_law(name: str, block, chosen: Fit, fits: Sequence[Fit], caveats=()) -> Law:
    expr = drop_constant(chosen.expr)  # energies are defined up to a constant
    return Law(name, block.kind, tuple(block.input_names), expr,
               in_state(expr, block.spec), chosen.r2, chosen.rmse, chosen.error,
               complexity(expr), tuple(alternatives(fits)), caveats=caveats)


def _judged_beside_laws(model, laws: list[Law], decisions: dict, proof: Evidence,
                        judge_by: Evidence) -> list[Law]:
    """On noisy positions, each scalar law's form chosen again by the data
    (:func:`simplest_on_data`) with the other modules at their laws instead of their KANs.
    ``decisions`` maps a module to ``(fits, proposed, chosen, from_data)``: its candidates,
    the law its KAN proposed, the first choice, and the laws fitted to the data alone
    (:func:`data_fits`).

    The first choice of a module's form is made beside the other modules' KANs, and their
    errors leave room a flexible form fills: at 1 % noise a potential ``0.59 (x**2 +
    y**2)`` was judged beside the KAN of a magnetic field, off by 3 % of the force, and
    ``0.596 x**2 - 5.3e9/(y**2 + 404)**3`` explained the data better there. Beside the
    field's law ``(1.375 + 0.412 x) v`` the data judge the potential alone.

    Vector laws (each output, or each field entry, judged again the same way) were tried
    too: the generalization suite did not change at 1 % noise and lost one potential's
    constants at 5 %, so they keep their first choice.
    """
    out = list(laws)
    held_out = judge_by is not proof
    for k, law in enumerate(out):
        if law.module not in decisions:
            continue
        beside = copy.deepcopy(model)
        try:
            for other in out:
                if other.module != law.module:
                    beside.fix(other.module, other.expr, trainable=False)
        except (SpecError, ValueError):
            continue
        fits, proposed, first, from_data = decisions[law.module]
        chosen = simplest_on_data(beside, law.module, fits, proposed, judge_by,
                                  fit_on=proof if held_out else None, from_data=from_data)
        if chosen is not first:
            out[k] = _scalar_law(law.module, model.blocks[law.module], chosen, fits,
                                 law.caveats)
    return out


def _gyroscopic_law(block, z: np.ndarray, library, tolerance: float | None,
                    force_error: float | None, seed: int, deadline: Deadline,
                    generators: Sequence[Sequence[Generator]] = EXTRACT_GENERATORS,
                    judged: tuple | None = None) -> Law:
    """A learned gyroscopic Dynamics, ``F = B(q) v`` with ``B`` antisymmetric: each field
    entry ``B_ij(q)`` (i < j, the KAN's outputs) is solved as a function of the field
    inputs, and the law is ``F_i = sum_j B_ij v_j``. Extracted this way the law does no
    work by construction (per-component laws of ``F`` need not be exactly antisymmetric,
    and the spec refuses a gyroscopic law that does work).

    ``judged``: ``(model, proof, judge_by)`` as for the other laws; with evidence, the data
    choose each entry's form among its candidates (:func:`simplest_on_data`, the other
    entries held), as they choose a scalar law's (at 1 % noise the KAN's front took
    ``84/11 - 69 exp(-0.066 x)/11`` for a field ``1.37 + 0.41 x``)."""
    field = [block.input_names[i] for i in block.field_slots]
    velocities = [sympy.Symbol(block.input_names[i]) for i in block.velocity_slots]
    x = block.field_inputs(z)
    dtype = next((p.dtype for p in block.parameters()), torch.float64)
    with torch.no_grad():
        values = block.core(torch.as_tensor(x, dtype=dtype)).double().cpu().numpy()
    n = len(block.output_names)
    upper = list(zip(*np.triu_indices(n, 1)))
    entries, front, errors, rmses, solved = {}, [], [], [], {}
    options = Options(library=library, seed=seed)
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
        share = deadline.share(1.0 / (len(upper) - k))
        chosen, fits = solve(target, options.replace(tolerance=tol, deadline=share,
                                                     function=fn), generators)
        if chosen is None:
            raise DataError(f"module {block.name!r}: no candidate law is finite for the field "
                            f"entry B[{i}, {j}] on the module's inputs.")
        entries[i, j] = chosen.expr
        front += alternatives(fits, f"B[{block.output_names[i]}, {block.output_names[j]}]")
        errors.append(chosen.error)
        rmses.append(chosen.rmse)
        solved[i, j] = (len(errors) - 1, fits, chosen)

    def outputs(given: dict) -> list:
        exprs = []
        for i in range(n):
            total = sympy.Integer(0)
            for j in range(n):
                if i < j:
                    total += given[i, j] * velocities[j]
                elif i > j:
                    total -= given[j, i] * velocities[j]
            exprs.append(total)
        return exprs

    model, proof, judge_by = judged or (None, None, None)
    if proof is not None:
        held_out = judge_by is not None and judge_by is not proof
        for key, (k, fits, chosen) in solved.items():
            best = simplest_on_data(
                model, block.name, fits, chosen, judge_by or proof,
                fit_on=proof if held_out else None,
                compose=lambda expr, key=key: outputs({**entries, key: expr}))
            entries[key], errors[k], rmses[k] = best.expr, best.error, best.rmse
    return _vector_law(block.name, block, outputs(entries), errors, rmses, front)


@with_call_threads
def extract(model, data, modules: Sequence[str] | None = None,
            library: Sequence[str] | None = None, seed: int = 0, progress: bool = False,
            tolerance: float | None = None, max_samples: int = 1500,
            time_limit: float | None = None,
            generators: Sequence[Sequence[Generator]] = EXTRACT_GENERATORS,
            held_out=None) -> Laws:
    """A closed-form law for every learned module of a trained model.

    Parameters
    ----------
    model : Model
        A compiled, trained model (:func:`pikan.compile`).
    data : Trajectories
        States whose features define each module's input distribution (the training
        data, or any data from the same regime).
    modules : str or sequence of str, optional
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
        docstring). Default, per module: the RMS error of the model's forces ``m * a``
        against the data's evidence (:func:`pikan.laws.evidence.evidence`) over the RMS of
        the module's own target, clipped to [1e-7, 0.2]. Given accelerations are compared
        as they are, and so are Savitzky--Golay estimates of clean positions; from noisy
        positions the model is compared with weak-form averages and their predicted noise
        is taken out. 1e-3 for Lagrangians and when nothing can be estimated.
    max_samples : int
        Module input samples used (a seeded subset).
    time_limit : float, optional
        Seconds for the whole extraction (None: no limit). Anytime: the modules are
        extracted in turn, each with an equal share of the time left; within a module,
        the candidate generators stop when its share is spent and the law is selected
        from the candidates fitted so far (constants not yet refit keep their proposed
        values), so a law always comes back, less simple or less exact when time was
        short.
    generators : sequence of sequences of Generator
        The candidate generators, in stages (default :data:`EXTRACT_GENERATORS`; see
        :func:`solve`).
    held_out : Trajectories, optional
        Trajectories the model was not trained on. When given and the positions are noisy,
        the data's choices between candidate laws (:func:`simplest_on_data`) are made on
        them: there a law that follows the KAN's fit to the training noise looks better on
        the training trajectories than the true law (a 200-node expression beat ``0.87
        x**2 + 0.31 x**4`` at 2 % noise), not on others. :func:`pikan.discover` passes the
        fit's validation trajectories.

    Returns
    -------
    Laws
        Module name -> :class:`~pikan.laws.law.Law`, with the model's spec attached.

    Raises
    ------
    SpecError
        An unknown module, a module that is not learned, a ``time_limit`` that is not
        a positive number, or an option out of its range
        (:func:`pikan.laws.find_law.check_search_options`: ``tolerance`` None or in [0, 1],
        whole ``seed >= 0``, ``max_samples >= 10``, known ``library`` names).
    """
    deadline = search_deadline(time_limit, "extract")
    check_search_options("extract", tolerance=tolerance, seed=seed, max_samples=max_samples,
                         library=library)
    if isinstance(modules, str):
        modules = [modules]
    names = list(modules) if modules is not None else [
        n for n, b in model.blocks.items() if b.is_learned]
    for n in names:
        if n not in model.blocks:
            raise SpecError(f"extract: the model has no module {n!r}; modules: "
                            f"{', '.join(model.blocks)}.")
    data.check_coords(model.coords)
    first_order = getattr(model, "order", 2) == 1
    if first_order and not data.has_velocities:
        data = data.with_derivatives()  # the rates
    q, v, _ = data.states()
    rows = sample_rows(q.shape[0], max_samples, seed)
    q, v, t = q[rows], v[rows], data.times()[rows]
    if first_order:
        v = v[:, :0]  # a first-order state has no velocities
    try:
        proof = evidence_for(model, data, max_samples, seed)
    except DataError:
        proof = None
    judge_by = proof
    if held_out is not None and proof is not None and proof.kind == "weak":
        try:
            judge_by = evidence_for(model, held_out, max_samples, seed)
        except DataError:
            judge_by = proof
    # one derivative estimate for every module
    accelerations = None if first_order else _accelerations(
        data, rows, proof is not None and proof.kind != "weak")
    force_error = None if tolerance is not None else _force_error(model, proof)
    laws, decisions = [], {}
    for k, n in enumerate(names):
        start = time.perf_counter()
        share = deadline.share(1.0 / (len(names) - k))  # an equal part of what is left
        law = _module_law(model, n, q, v, library, tolerance, force_error, seed, max_samples,
                          accelerations, proof, share, generators, judge_by, t, decisions)
        laws.append(law)
        if progress:
            print(f"[pikan] extract {n}: {law}  (error {law.error:.2g}, "
                  f"{time.perf_counter() - start:.1f} s)", file=sys.stderr)
    if len(names) > 1:
        laws = _judged_beside_laws(model, laws, decisions, proof, judge_by)
    laws = _constant_forces_to_potentials(laws, model.spec)
    out = Laws([_with_units(law, model.spec) for law in laws], spec=model.spec)
    tied = {law.module: exprs for law in laws
            if (exprs := _tied_outputs(model, law, judge_by)) is not None}
    return out.with_exprs(tied) if tied else out


def _tied_outputs(model, law: Law, proof: Evidence | None) -> list | None:
    """The laws of a learned Flow whose rates a conserved sum projects, made one law.

    Such a Flow's outputs are tied (``a' = b' = -c'`` for ``A + B <-> C``), but each is
    read on its own and, on noisy data, may come back in another form. For every set
    ``S`` of as many outputs as the projection's rank whose block of ``P`` is invertible,
    the laws of ``S`` give all the others (``f = P[:, S] P[S, S]^-1 f_S``); the set whose
    whole law fits the data's evidence best is kept (the first set without evidence).
    None when the Flow has no such projection.
    """
    block = model.blocks[law.module]
    projectors = [c.projector() for c in block.spec.constraints if hasattr(c, "projector")]
    if not projectors or not isinstance(law.expr, (list, tuple)):
        return None
    projector = projectors[0]
    n, rank = projector.rows, projector.rank()
    options = []
    for chosen in itertools.combinations(range(n), rank):
        square = projector.extract(list(chosen), list(chosen))
        if square.det() == 0:
            continue
        mixing = projector.extract(list(range(n)), list(chosen)) * square.inv()
        options.append([sympy.expand(sum((mixing[i, j] * law.expr[k]
                                          for j, k in enumerate(chosen)), sympy.Integer(0)))
                        for i in range(n)])
    if not options:
        return None
    if proof is None or len(options) == 1:
        return options[0]
    errors = []
    for exprs in options:
        trial = copy.deepcopy(model)
        try:
            trial.fix(law.module, exprs, trainable=False)
            errors.append(proof.error(trial))
        except (SpecError, ValueError, RuntimeError):
            errors.append(math.inf)
    return options[int(np.argmin(errors))]


def _constant_forces_to_potentials(laws: list[Law], spec) -> list[Law]:
    """A drive's constant force moved into a potential (the identifiability convention of
    a Potential beside a Dynamics of time alone, :mod:`pikan.spec.identifiability`).

    The data fix only the sum of the two forces on a coordinate ``x``: the drive's law
    ``A*cos(w*t) + c`` and the potential's ``... - c*x`` fit as well as ``A*cos(w*t)`` and
    ``...``. A constant force is conservative, so it goes to the potential: the drive keeps
    no constant term, the potential gains ``-c*x``. Done for a learned potential that takes
    ``x`` itself as an input (one binding); other splits are left as extracted."""
    by_name = {law.module: law for law in laws}
    for law in laws:
        module = spec.module(law.module)
        if law.kind not in VECTOR_KINDS or not isinstance(law.expr, (list, tuple)):
            continue
        depends = {s.name for b in module.input_bindings for e in b.values()
                   for s in sympy.sympify(e).free_symbols}
        if depends - {TIME} - set(spec.params) or TIME not in depends:
            continue
        exprs = list(law.expr)
        for j, output in enumerate(law.outputs):
            constant, rest = sympy.expand(exprs[j]).as_independent(*exprs[j].free_symbols)
            if constant == 0 or not rest.free_symbols:
                continue
            home = next((p for p in by_name.values() if p.kind == "Potential"
                         and _plain_input(spec.module(p.module), output) is not None), None)
            if home is None:
                continue
            name = _plain_input(spec.module(home.module), output)
            energy = sympy.expand(home.expr - constant * sympy.Symbol(name))
            by_name[home.module] = replace(home, expr=energy,
                                           in_state=in_state(energy, spec.module(home.module)))
            exprs[j] = rest
        if exprs != list(law.expr):
            module_spec = spec.module(law.module)
            by_name[law.module] = replace(law, expr=exprs,
                                          in_state=[in_state(e, module_spec) for e in exprs])
    return [by_name[law.module] for law in laws]


def _plain_input(module, coord: str) -> str | None:
    """The input name under which a one-binding module reads coordinate ``coord`` itself."""
    if len(module.input_bindings) != 1:
        return None
    target = sympy.Symbol(coord)
    return next((name for name, e in module.input_bindings[0].items()
                 if sympy.sympify(e) == target), None)


def _with_units(law: Law, spec) -> Law:
    """The law with the units of its module (inputs, params, value) when the spec has units."""
    units = spec.module_units(law.module) if spec.units else {}
    return replace(law, units={n: str(u) for n, u in units.items()}) if units else law
