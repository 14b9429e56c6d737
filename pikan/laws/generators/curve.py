r"""One-input curves read by the edge library: :math:`a\,f(b x + c) + d`.

A value target in one input is a curve, and the KAN's edge fitter
(:func:`pikan.kan.symbolic.fit_edge`) fits every form :math:`a\,f(b x + c) + d` of the
symbolic library to it; the best few are candidates. :func:`pikan.find_law` uses it on
the rest of a power-law split (:class:`pikan.laws.generators.power_law.PowerLawSplit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy

from pikan.kan.symbolic import fit_edge
from pikan.laws.candidates import Target, as_deadline
from pikan.laws.generators.base import Candidate, Generator, Options

__all__ = ["Curve"]


@dataclass(frozen=True)
class Curve(Generator):
    """The ``top`` best edge-library forms of a value target in one input (the acceptable
    ones among them); none for other targets or once the deadline has passed.

    Sources ``"edge:<form>"``.
    """

    top: int = 3
    name = "curve"

    def generate(self, target: Target, options: Options) -> list[Candidate]:
        if target.kind != "values" or target.z.shape[1] != 1 \
                or as_deadline(options.deadline).expired():
            return []
        symbol = sympy.Symbol(target.names[0])
        fits = fit_edge(target.z[:, 0], target.y, candidates=options.library,
                        seed=options.seed)[:self.top]
        return [Candidate(f.expr(symbol), math.nan, f"edge:{f.name}") for f in fits if f.ok]
