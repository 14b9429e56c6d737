r"""A passive Dissipation read off its own construction.

A learned passive Dissipation (:func:`pikan.model.compile.passive_dissipation`) is
:math:`\sum_k a_k(u)^2 |z|^{\alpha_k} / \alpha_k` over its degrees :math:`\alpha_k`; for
damping that does not depend on direction it is :math:`\sum_k c_k |z|^{\alpha_k} /
\alpha_k`, so linear, quadratic (``c |v|**3/3``) and mixed damping are candidates of their
own (:class:`Passive`, :func:`passive_candidates`). Their terms are near-collinear over a
small speed range, so the trained block mixes them freely; :func:`passive_on_data` lets the
data's dissipative force choose the terms instead, and says when the data do not determine
the constants (:func:`split_halves`).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from pikan.errors import SpecError
from pikan.laws.candidates import Fit, Target, complexity, evaluate
from pikan.laws.generators.base import Candidate, Generator, Options

__all__ = ["PASSIVE_SLACK", "SPLIT_RTOL", "Passive", "passive_candidates", "passive_degrees",
           "passive_on_data", "split_halves"]


def passive_degrees(block) -> tuple[float, ...]:
    """The degrees of a passive Dissipation block (empty for any other block)."""
    if block.kind != "Dissipation":
        return ()
    return tuple(getattr(block, "passive_degrees", ()))


def passive_candidates(names: Sequence[str], degrees: Sequence[float],
                       z: np.ndarray | None = None) -> list[Candidate]:
    """Every sum of a passive Dissipation's own terms, ``c_d |z|**d / d`` over its
    ``degrees`` ``d`` (:func:`pikan.model.compile.passive_dissipation`), with ``|z|`` the
    norm of the inputs ``names`` (and, for several inputs, the same sums per input). An
    input that is never negative on the samples ``z`` (a speed) needs no ``Abs``. Empty
    without degrees."""
    if not degrees:
        return []
    symbols = [sympy.Symbol(n) for n in names]
    squared = sum(v**2 for v in symbols)
    signless = z is not None and z.shape[1] == 1 and bool(np.all(z[:, 0] >= 0))

    def norm_power(d):  # |z|**d, without Abs or sqrt where d is even or z >= 0
        d = sympy.nsimplify(d)
        if (d / 2).is_integer or signless:
            return squared ** (d / 2) if len(symbols) > 1 else symbols[0] ** d
        return sympy.sqrt(squared) ** d if len(symbols) > 1 else sympy.Abs(symbols[0]) ** d

    def each_power(v, d):
        d = sympy.nsimplify(d)
        return v**d if (d / 2).is_integer else sympy.Abs(v) ** d

    out = []
    for size in range(1, len(degrees) + 1):
        for subset in itertools.combinations(degrees, size):
            out.append(Candidate(sum(sympy.Float(1.0) * norm_power(d) for d in subset),
                                 math.nan, "passive:norm"))
            if len(symbols) > 1:
                out.append(Candidate(sum(sympy.Float(1.0) * each_power(v, d) for d in subset
                                         for v in symbols), math.nan, "passive:per-input"))
    return out


@dataclass(frozen=True)
class Passive(Generator):
    """A passive Dissipation's own term sums (:func:`passive_candidates`) for the degrees in
    ``options.passive_degrees`` and the target's inputs; none for other functions."""

    name = "passive"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        return passive_candidates(target.names, options.passive_degrees, target.z)


PASSIVE_SLACK = 0.02
"""A passive Dissipation keeps the fewest of its terms whose least-squares fit to the
data's dissipative force leaves at most this much (relative) more residual than all."""


def passive_on_data(model, name: str, proof, target: Target, tolerance: float,
                    z: np.ndarray | None = None) -> tuple[Fit, tuple[str, ...]] | None:
    r"""A passive Dissipation read off its own construction, with the data choosing terms.

    The block is :math:`\sum_k a_k(u)^2 |z|^{\alpha_k} / \alpha_k`; for damping that does
    not depend on direction it is :math:`\sum_k c_k |z|^{\alpha_k} / \alpha_k`, whose
    force is linear in the ``c_k``. These are fitted by least squares to the data's
    dissipative force, ``M a`` minus the forces of the other modules, for every subset of
    the terms, and the fewest terms that explain it within :data:`PASSIVE_SLACK` of all of
    them are kept. ``proof`` (:class:`pikan.laws.evidence.Evidence`) says what ``a`` is:
    the data's accelerations, or, for noisy positions, their weak-form averages on
    windows, the forces then averaged alike. The terms are near-collinear over a small speed range (``v**2``,
    ``|v|**3`` and ``v**4`` on ``[-1, 1]``), so the trained block mixes them freely;
    the data tell them apart.

    Returns
    -------
    (Fit, caveats) or None
        The law (its error measured against ``target``, the block's, not refit) and the
        caveats of :func:`split_halves`; None for other blocks, or without evidence.
    """
    block = model.blocks[name]
    candidates = passive_candidates(block.input_names, passive_degrees(block), z)
    if not candidates or proof is None:
        return None
    qt, vt, tt = proof.states(model)
    try:
        forces = model.forces(qt, vt, tt)
        masses = model.masses.detach().cpu().numpy()
    except (RuntimeError, ValueError):
        return None
    other = sum((f.detach().cpu().numpy() for n, f in forces.items() if n != name),
                np.zeros(tuple(qt.shape)))
    residual = (masses * proof.target - proof.average(other)).reshape(-1)
    trial = copy.deepcopy(model)
    best, designs = [], {}
    for candidate in candidates:
        source = candidate.source
        terms = sympy.Add.make_args(candidate.expr)
        columns = []
        for term in terms:
            try:
                trial.fix(name, term / sympy.Float(1.0), trainable=False)
                column = trial.forces(qt, vt, tt)[name].detach().cpu().numpy()
                columns.append(proof.average(column).reshape(-1))
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
    caveats = split_halves(*designs[expr], residual, n=len(proof.target))
    return Fit(expr, error, rmse, complexity(expr), f"{source}:data"), caveats


SPLIT_RTOL = 0.02
"""Largest relative difference of a constant fitted on either half of the data (by sample
order: whole trajectories mostly) for the law to count as determined by the data."""


def split_halves(design: np.ndarray, coef: np.ndarray, residual: np.ndarray,
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
