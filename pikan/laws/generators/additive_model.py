r"""The additive spline model: a separability test on the samples themselves.

Structure tests on a surrogate (:mod:`pikan.laws.generators.separability`) read mixed
derivatives, which are only as good as the surrogate (a KAN with 0.1 % error can have mixed
derivatives off by several percent). For a value target, an additive spline model
:math:`T(y) \approx c + \sum_i s_i(z_i)` (:math:`T` the identity or :math:`\log|y|`, cubic
splines of 24 intervals per input) is fitted by linear least squares instead; when it
explains the data to :data:`ADDITIVE_TOLERANCE`, its one-input pieces :math:`s_i` are fitted
by the edge library (:func:`~pikan.laws.generators.separability.edge_forms`) and recombined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy
from scipy.interpolate import BSpline

from pikan.laws.candidates import Deadline, Target, as_deadline
from pikan.laws.generators.base import Candidate, Generator, Options
from pikan.laws.generators.separability import combine, edge_forms

__all__ = ["ADDITIVE_TOLERANCE", "AdditiveModel", "additive_model_candidates"]

ADDITIVE_TOLERANCE = 1e-3
"""Relative residual below which an additive spline model counts as an exact split."""

_KNOTS = 24  # intervals of the 1-D cubic splines of the additive model


def _spline_basis(x: np.ndarray, intervals: int = _KNOTS) -> np.ndarray:
    """Cubic B-spline basis on the range of ``x``, shape (N, intervals + 3)."""
    lo, hi = float(x.min()), float(x.max())
    inner = np.linspace(lo, hi, intervals + 1)
    knots = np.concatenate([[lo] * 3, inner, [hi] * 3])
    return BSpline.design_matrix(np.clip(x, lo, hi), knots, 3).toarray()


def additive_model_candidates(target: Target, library: Sequence[str] | None = None,
                              seed: int = 0, deadline: Deadline | None = None
                              ) -> list[Candidate]:
    r"""Candidates from an exact additive split of ``y`` or ``log|y|`` into one-input pieces.

    Fits :math:`T(y) = c + \sum_i s_i(z_i)` with cubic splines (24 intervals per input)
    by least squares; when the relative residual is below :data:`ADDITIVE_TOLERANCE`, each
    centered piece :math:`s_i` is fitted by :func:`~pikan.kan.symbolic.fit_edge` (three
    best forms) and the combinations ``T^-1(c + sum)`` are returned.

    Parameters
    ----------
    target : Target
        A value target with at least two inputs.
    library : sequence of str, optional
    seed : int
    deadline : Deadline, optional
        Pieces are no longer fitted once it has passed.

    Returns
    -------
    list of Candidate
    """
    if target.kind != "values" or target.z.shape[1] < 2 or as_deadline(deadline).expired():
        return []
    z, y = target.z, target.y
    symbols = [sympy.Symbol(n) for n in target.names]
    bases = [_spline_basis(z[:, i]) for i in range(z.shape[1])]
    design = np.concatenate(bases, axis=1)
    out = []
    transforms = [("identity", y, lambda h: h)]
    if np.all(y > 0) or np.all(y < 0):
        sign = float(np.sign(y[0]))
        transforms.append(("log", np.log(np.abs(y)), lambda h, s=sign: s * sympy.exp(h)))
    for name, ty, inverse in transforms:
        mean = float(ty.mean())
        coef, *_ = np.linalg.lstsq(design, ty - mean, rcond=None)
        resid = ty - mean - design @ coef
        if np.linalg.norm(resid) > ADDITIVE_TOLERANCE * (np.linalg.norm(ty - mean) + 1e-300):
            continue
        options, start = [], 0
        for i, basis in enumerate(bases):
            piece = basis @ coef[start:start + basis.shape[1]]
            start += basis.shape[1]
            if np.ptp(piece) <= 1e-9 * (np.ptp(ty) + 1e-300):
                continue  # the output does not depend on this input
            forms = edge_forms(z[:, i], piece - piece.mean(), symbols[i], library, 3, seed,
                               deadline)
            if not forms:
                break
            options.append(forms)
        else:
            def join(c, inverse=inverse, mean=mean):
                return inverse(sympy.Add(*c, sympy.Float(mean)))

            for e in combine(options, join):
                out.append(Candidate(e, math.nan, f"structure:additive-model:{name}"))
    return out


@dataclass(frozen=True)
class AdditiveModel(Generator):
    """Candidates from an exact additive spline model of a value target of two or more
    inputs (:func:`additive_model_candidates`)."""

    name = "additive-model"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        return additive_model_candidates(target, options.library, options.seed,
                                         options.deadline)
