r"""Power laws: :math:`C\prod_k z_k^{e_k}`, their exponentials, and power laws split off a product.

- :func:`monomial_candidates` fits :math:`y = C\prod_k z_k^{e_k}` by least squares on
  logarithms (values and inputs of one sign each): milliseconds, and the common product
  laws such as ``T*kb*mob`` end there;
- :func:`exp_power_candidates` does the same for :math:`\log|y|`: Boltzmann and Arrhenius
  factors ``exp(-m*g*h/(kb*T))``;
- :func:`power_law_splits` splits a power law in some inputs off a product
  :math:`y = \prod_{k \in P} z_k^{e_k}\, g(z_O)` (``G m1 m2 / r**2``): the rest ``g`` is
  then a problem in fewer inputs, solved by other generators (:class:`PowerLawSplit`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy

from pikan.laws.candidates import Target, as_deadline
from pikan.laws.generators.additive_model import AdditiveModel
from pikan.laws.generators.base import Candidate, Generator, Options, propose
from pikan.laws.generators.curve import Curve
from pikan.laws.generators.rational import Rational
from pikan.laws.generators.regression import SparseRegression

__all__ = ["ExpPowerLaw", "PowerLaw", "PowerLawSplit", "exp_power_candidates",
           "monomial_candidates", "power_law_splits"]


def _one_signed_inputs(target: Target) -> list[int] | None:
    """Indices of the inputs that keep one sign (never 0) on a value target whose values
    keep one sign; None when the target is not such (power laws need both)."""
    if target.kind != "values":
        return None
    y, z = target.y, target.z
    if not (np.all(y > 0) or np.all(y < 0)):
        return None
    signs = np.sign(z[0])
    return [k for k in range(z.shape[1])
            if signs[k] != 0 and np.all(np.sign(z[:, k]) == signs[k])]


def monomial_candidates(target: Target) -> list[Candidate]:
    r"""Power-law candidates :math:`y = C \prod_k z_k^{e_k}` by least squares on logarithms.

    Needs values of one sign and inputs of one sign each. Exponents within 0.05 of a
    half-integer are snapped to it, the others kept as constants to refit; exponents that
    snap to 0 drop their input. Also proposes every sub-product obtained by dropping the
    input with the smallest exponent, repeatedly.
    """
    one_sign = _one_signed_inputs(target)
    if one_sign is None or len(one_sign) != target.z.shape[1]:
        return []
    y, z = target.y, target.z
    signs = np.sign(z[0])
    symbols = [sympy.Symbol(n) for n in target.names]
    with np.errstate(all="ignore"):
        logs = np.log(np.abs(z))
        ly = np.log(np.abs(y))
    active = list(range(z.shape[1]))
    out = []
    while active:
        a = np.column_stack([np.ones(len(y)), logs[:, active]])
        coef = np.linalg.lstsq(a, ly, rcond=None)[0]
        resid = float(np.linalg.norm(ly - a @ coef) / (np.linalg.norm(ly - ly.mean()) + 1e-300))
        expr = sympy.Float(float(np.sign(y[0]) * math.exp(coef[0])))
        for k, e in zip(active, coef[1:]):
            half = round(2 * e) / 2
            base = symbols[k] * int(signs[k])
            if abs(e - half) <= 0.05:
                if half != 0:
                    expr = expr * base ** sympy.Rational(round(2 * e), 2)
            else:
                expr = expr * base ** sympy.Float(float(e))
        out.append(Candidate(expr, resid, "regression:power-law"))
        if len(active) == 1:
            break
        active.pop(int(np.argmin(np.abs(coef[1:]))))
    return out


def power_law_splits(target: Target, tolerances: Sequence[float] = (0.1, 0.02)
                     ) -> list[tuple[sympy.Expr, list[int], Target]]:
    r"""Split a power law in the one-signed inputs off a value target of one sign.

    For :math:`y = \prod_{k \in P} z_k^{e_k}\, g(z_O)` with the inputs ``P`` of one sign
    each and ``O`` the others, least squares of :math:`\log|y|` on :math:`\log|z_P|` (and a
    constant) recovers the :math:`e_k` when ``P`` and ``O`` were sampled independently
    (then :math:`\log|g|` only shifts the constant), up to the sample correlation of
    :math:`\log|g|` with the logs (measured: 0.07 on the exponent of ``G`` in ``G m1 m2 /
    r**2`` from 1,000 samples). Exponents within a tolerance of a nonzero half-integer are
    snapped and kept, one split per tolerance in ``tolerances`` (a wide one for those
    correlations, a narrow one against exponents that land near a half-integer by chance,
    as ``g`` at -0.52 in ``n0*exp(-m*g*h/(kb*T))``); the other inputs join ``O``
    (``m0/sqrt(1 - v**2/c**2)``: ``m0`` splits off, ``v`` and ``c`` stay). The rest
    :math:`y / \prod z_k^{e_k}` is a target in the inputs ``O`` alone, whose laws times the
    factor are candidates for ``y`` (if a split was wrong, they simply do not fit).

    Returns
    -------
    list of (factor, others, rest)
        ``factor`` the sympy product of powers (no constant), ``others`` the indices ``O``
        (sorted), ``rest`` the :class:`Target` of the quotient on ``z[:, O]``; distinct
        splits only. Empty when ``y`` changes sign, no input is one-signed, or nothing (or
        everything: :func:`monomial_candidates`' case) splits off.
    """
    one_sign = _one_signed_inputs(target)
    if not one_sign:
        return []
    y, z = target.y, target.z
    signs = np.sign(z[0])
    with np.errstate(all="ignore"):
        a = np.column_stack([np.ones(len(y)), np.log(np.abs(z[:, one_sign]))])
        coef = np.linalg.lstsq(a, np.log(np.abs(y)), rcond=None)[0]
    symbols = [sympy.Symbol(n) for n in target.names]
    out, seen = [], set()
    for tol in tolerances:
        factor, kept, values = sympy.Integer(1), [], np.ones(len(y))
        for k, e in zip(one_sign, coef[1:]):
            half = round(2 * e) / 2
            if half != 0 and abs(e - half) <= tol:
                factor = factor * (symbols[k] * int(signs[k])) ** sympy.Rational(round(2 * e), 2)
                values = values * np.abs(z[:, k]) ** half
                kept.append(k)
        others = sorted(set(range(z.shape[1])) - set(kept))
        if not kept or not others or tuple(kept) in seen:
            continue
        seen.add(tuple(kept))
        rest = Target(tuple(target.names[k] for k in others), z[:, others], "values",
                      y / values)
        out.append((factor, others, rest))
    return out


def exp_power_candidates(target: Target) -> list[Candidate]:
    r"""Candidates :math:`y = \pm\exp(C \prod_k z_k^{e_k})`: power laws of :math:`\log|y|`.

    Boltzmann and Arrhenius factors ``exp(-m*g*h/(kb*T))`` have a logarithm that is a
    power law in all their inputs, which no bounded term library holds (five factors);
    :func:`monomial_candidates` on :math:`\log|y|` finds it when the logarithm has one sign.
    """
    if target.kind != "values":
        return []
    y = target.y
    if not (np.all(y > 0) or np.all(y < 0)):
        return []
    ly = np.log(np.abs(y))
    if not (np.all(ly > 0) or np.all(ly < 0)):
        return []
    sign = float(np.sign(y[0]))
    logs = Target(target.names, target.z, "values", ly)
    return [Candidate(sign * sympy.exp(c.expr), c.error, "regression:exp-power-law")
            for c in monomial_candidates(logs)]


@dataclass(frozen=True)
class PowerLaw(Generator):
    r"""Power laws :math:`C\prod_k z_k^{e_k}` (:func:`monomial_candidates`)."""

    name = "power-law"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        return monomial_candidates(target)


@dataclass(frozen=True)
class ExpPowerLaw(Generator):
    r"""Exponentials of power laws :math:`\pm\exp(C\prod_k z_k^{e_k})`
    (:func:`exp_power_candidates`)."""

    name = "exp-power-law"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        return exp_power_candidates(target)


@dataclass(frozen=True)
class PowerLawSplit(Generator):
    """Candidates ``factor * g`` from every power law split off the target
    (:func:`power_law_splits`), ``g`` proposed by the ``inner`` generators on the rest.

    Attributes
    ----------
    inner : tuple of Generator
        The generators run on each rest (a target in the other inputs); default: the
        exponentials of power laws, sparse regression with transforms, rational functions,
        the additive spline model and, for a rest in one input, the edge library's forms.
    """

    inner: tuple[Generator, ...] = (ExpPowerLaw(), SparseRegression(transforms=True,
                                                                    max_terms=None),
                                    Rational(), AdditiveModel(), Curve())
    name = "power-law-split"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        deadline = as_deadline(options.deadline)
        out = []
        for factor, _, rest in power_law_splits(target):
            if deadline.expired():
                break
            out += [Candidate(factor * c.expr, math.nan, f"split:power-law*{c.source}")
                    for c in propose(self.inner, rest, options)]
        return out
