r"""Rational law candidates :math:`y = P(z)/Q(z)`, by a homogeneous linear fit.

For a value target, :math:`yQ - P = 0` is linear and homogeneous in the coefficients of
the polynomials :math:`P` and :math:`Q` (degrees ``(1, 1), (2, 1), (1, 2), (2, 2)``): the
right singular vector of the design's smallest singular value is the fit. Small
coefficients are thresholded away over a ladder of thresholds and each support re-solved;
the Pareto front of (terms, residual) of each degree pair becomes candidates
(``r = (m1*r1 + m2*r2)/(m1 + m2)``, a Doppler factor ``(c + v)/(c - v)``).

The same fit of the squared target gives square roots of rational functions
(``sqrt((c - v)/(c + v))``, a relativistic Doppler factor; ``1/sqrt(1 - v**2/c**2)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from pikan.laws.candidates import Deadline, Target, as_deadline
from pikan.laws.generators.base import Candidate, Generator, Options
from pikan.laws.generators.regression import Term, front, monomials, transformed

__all__ = ["RATIONAL_TRANSFORMS", "Rational", "rational_candidates"]


RATIONAL_TRANSFORMS = ("identity", "square")
"""Targets :func:`rational_candidates` fits: ``y`` and ``y**2`` (for ``sign*sqrt(P/Q)``)."""


DEGREES = ((1, 1), (2, 1), (1, 2), (2, 2))
"""Degree pairs ``(p, q)`` of ``P/Q`` that :func:`rational_candidates` fits by default."""


def rational_candidates(target: Target, max_keep: int = 4,
                        max_rows: int = 2500, seed: int = 0,
                        deadline: Deadline | None = None,
                        transforms: tuple[str, ...] = RATIONAL_TRANSFORMS,
                        degrees: tuple[tuple[int, int], ...] = DEGREES) -> list[Candidate]:
    r"""Rational candidates :math:`y = P(z)/Q(z)` for a value target.

    :math:`yQ - P = 0` is linear and homogeneous in the coefficients of :math:`P` and
    :math:`Q` (polynomials of the degree pairs ``degrees``): the right singular
    vector of the smallest singular value is the fit; small coefficients are thresholded
    away (a ladder of thresholds), each support re-solved. ``deadline`` (optional) is
    checked between degree pairs. Each name in ``transforms`` (of
    :data:`pikan.laws.generators.regression.TRANSFORMS`) fits ``P/Q`` to that transform of
    ``y`` where its condition holds, the candidate mapped back (``square``: the sign of
    ``y`` times ``sqrt(P/Q)``).
    """
    deadline = as_deadline(deadline)
    if target.kind != "values":
        return []
    symbols = [sympy.Symbol(n) for n in target.names]
    rng = np.random.default_rng(seed)
    rows = np.arange(target.y.size) if target.y.size <= max_rows \
        else rng.choice(target.y.size, max_rows, False)
    z, y = target.z[rows], target.y[rows]
    sign = 1 if np.all(y >= 0) else -1
    out = []
    for tname, ty, inverse in transformed(y, transforms):
        for expr, err, source in _rational_fits(z, ty, symbols, degrees, max_keep,
                                                deadline):
            tag = "" if tname == "identity" else f":{tname}"
            out.append(Candidate(inverse(expr, sign), err, f"{source}{tag}"))
    return out


def _rational_fits(z: np.ndarray, yy: np.ndarray, symbols, degrees, max_keep: int,
                   deadline: Deadline) -> list[tuple[sympy.Expr, float, str]]:
    """The rational fits ``P/Q ~ yy`` of every degree pair: (expr, error, source)."""
    d = z.shape[1]
    out = []
    for p_deg, q_deg in degrees:
        p_terms = [Term(())] + monomials(d, p_deg)
        q_terms = [Term(())] + monomials(d, q_deg)
        n_p = len(p_terms)
        if len(p_terms) + len(q_terms) > 80:
            continue
        if deadline.expired():
            break
        cols = [t.values(z) for t in p_terms] + [-yy * t.values(z) for t in q_terms]
        a = np.stack(cols, axis=1)
        scale = np.linalg.norm(a, axis=0)
        if not np.all(np.isfinite(a)) or np.any(scale == 0):
            continue
        a = a / scale
        fits = []
        for lam in (0.0, 1e-4, 1e-3, 1e-2, 0.05):
            support = np.arange(a.shape[1])
            for _ in range(8):
                _, s, vt = np.linalg.svd(a[:, support], full_matrices=False)
                v = vt[-1]
                keep = support[np.abs(v) >= lam * np.abs(v).max()]
                if keep.size == support.size:
                    break
                support = keep
            if v.size != support.size:  # the ladder ran out while still shrinking
                _, s, vt = np.linalg.svd(a[:, support], full_matrices=False)
                v = vt[-1]
            full = np.zeros(a.shape[1])
            full[support] = v
            if not np.any(full[n_p:] != 0) or not np.any(full[:n_p] != 0):
                continue
            # |yQ - P| relative to |P|: P's own size, not that of the terms' sum with the
            # signs dropped, which vanishes with yQ - P when every coefficient has one sign
            # (P = a + b, Q = 1 + a*b: the exact velocity addition came out at 0.73)
            err = float(s[-1] / (np.linalg.norm(a[:, :n_p] @ full[:n_p]) + 1e-300))
            fits.append((tuple(support), full, 0.0, err))
        seen = set()
        for support, full, _, err in front(fits, max_keep):
            if support in seen:
                continue
            seen.add(support)
            coef = full / scale
            # the denominator's lowest term (the constant, where there is one) is exactly 1:
            # scaled top and bottom alike, P/Q has one constant too many, which no data fix
            unit = next(k for k, c in enumerate(coef[n_p:]) if c != 0)
            coef = coef / coef[n_p + unit]
            num = sum((sympy.Float(float(c)) * t.expr(symbols)
                       for c, t in zip(coef[:n_p], p_terms) if c != 0), sympy.Integer(0))
            den = sum(((sympy.Integer(1) if k == unit else sympy.Float(float(c)))
                       * t.expr(symbols)
                       for k, (c, t) in enumerate(zip(coef[n_p:], q_terms)) if c != 0),
                      sympy.Integer(0))
            out.append((num / den, err, f"rational:{p_deg}/{q_deg}"))
    return out




@dataclass(frozen=True)
class Rational(Generator):
    """Rational functions :math:`P/Q` (:func:`rational_candidates`) of a value target."""

    max_keep: int = 4
    max_rows: int = 2500
    degrees: tuple[tuple[int, int], ...] = DEGREES
    name = "rational"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        return rational_candidates(target, max_keep=self.max_keep, max_rows=self.max_rows,
                                   seed=options.seed, deadline=options.deadline,
                                   degrees=self.degrees)
