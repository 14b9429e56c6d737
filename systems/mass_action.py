"""Mass-action kinetics of a reversible binding ``A + B <-> C``: a first-order network.

Concentrations ``a, b, c`` change by one reaction whose forward rate is ``kf a b`` (mass
action: proportional to the product of the reactants) and whose backward rate is ``kr c``:
``a' = b' = -(kf a b - kr c)``, ``c' = kf a b - kr c``. The totals ``a + c`` and
``b + c`` are conserved (atoms are neither made nor lost), and every trajectory relaxes to
the equilibrium ``kf a b = kr c`` (the law of mass action). A first-order system
(``order=1``): the data are ``t`` and the concentrations. The learning spec learns the
reaction as one Flow with the three rates as outputs, a KAN of the three concentrations,
with both totals conserved by construction (``Conserved("linear")``: the Flow's rates are
projected onto those that keep ``a + c`` and ``b + c``, so ``a' = b' = -c'`` exactly).
Reference: P. Atkins and J. de Paula, *Physical Chemistry*, 9th ed. (2010), sec. 21.4;
M. Feinberg, *Foundations of Chemical Reaction Network Theory* (Springer, 2019), ch. 2.
"""

from __future__ import annotations

import numpy as np

from pikan import Flow, System
from pikan.constraints import Conserved

SIMULATION = dict(n_trajectories=12, t=(0.0, 10.0), dt=0.025)
CONSERVED = ()


def truth(kf: float = 0.8, kr: float = 0.3) -> System:
    """Ground truth: the reaction ``r = kf a b - kr c`` with the stoichiometry (-1, -1, 1)."""
    return System("mass_action", coords=["a", "b", "c"], order=1,
                  params={"kf": kf, "kr": kr},
                  modules=[Flow("reaction", inputs=["a", "b", "c"], outputs=["a", "b", "c"],
                                law=["kr*c - kf*a*b", "kr*c - kf*a*b", "kf*a*b - kr*c"])])


def model(*, hidden=(8,), grid: int = 5, **params) -> System:
    """Learning spec: the three rates by one KAN of ``(a, b, c)``; ``a + c`` and ``b + c``
    conserved by construction."""
    spec = truth(**params).learn("reaction", hidden=hidden, grid=grid)
    return spec.replace(constraints=[Conserved("linear", weights=["a", "c"]),
                                     Conserved("linear", weights=["b", "c"])])


def sample_initial(rng: np.random.Generator, kf: float = 0.8, kr: float = 0.3) -> np.ndarray:
    """Concentrations uniform in [0.2, 2]: ``q0`` of shape (3,)."""
    return rng.uniform(0.2, 2.0, size=3)


def laws(kf: float = 0.8, kr: float = 0.3) -> dict:
    """The reaction's three rates with the constants filled in."""
    rate = f"{kf}*a*b - {kr}*c"
    return {"reaction": [f"-({rate})", f"-({rate})", rate]}
