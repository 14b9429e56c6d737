"""Kepler problem: a planet around a fixed sun, attracted by an inverse-square force.

A particle of mass ``m`` in the plane feels the central potential ``V(r) = -GM m / r``
with ``r = sqrt(x**2 + y**2)``. Bound orbits are ellipses with the sun at a focus
(period ``2 pi a**1.5 / sqrt(GM)`` for semi-major axis ``a``); energy and angular
momentum are conserved. Initial states start at ``r0`` in [0.8, 1.5] with a tangential
speed of 0.9 to 1.2 times the circular speed and a small radial speed, so every orbit is
bound with pericentre above 0.5 and apocentre below 4 (no near-collisions). The learning
spec learns ``V`` as a function of the feature ``r`` (a central force by construction,
hence angular momentum conserved) with one KAN edge. Reference: H. Goldstein, C. Poole and
J. Safko, *Classical Mechanics*, 3rd ed. (2002), sec. 3.7; L. D. Landau and E. M.
Lifshitz, *Mechanics*, 3rd ed., sec. 15.
"""

from __future__ import annotations

import numpy as np

from pikan import Potential, System
from pikan.constraints import Conserved

SIMULATION = dict(n_trajectories=16, t=(0.0, 10.0), dt=0.05)
CONSERVED = ("energy", "angular_momentum")


def truth(GM: float = 1.0, m: float = 1.0) -> System:
    """Ground truth: ``V(r) = -GM m / r`` with the feature ``r = sqrt(x**2 + y**2)``."""
    return System("kepler", coords=["x", "y"], masses=m, params={"GM": GM, "m": m},
                  modules=[Potential("V", inputs={"r": "sqrt(x**2 + y**2)"}, law="-GM*m/r")])


def model(*, hidden=(), grid: int = 5, **params) -> System:
    """Learning spec: ``V(r)`` by a KAN; energy and angular momentum conserved."""
    spec = truth(**params).learn("V", hidden=hidden, grid=grid)
    return spec.replace(constraints=[Conserved("energy"), Conserved("angular_momentum")])


def sample_initial(rng: np.random.Generator, GM: float = 1.0,
                   m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A bound orbit: position at ``r0`` in [0.8, 1.5], random direction and sense of rotation.

    Speeds are in units of the circular speed ``sqrt(GM / r0)``: tangential 0.9 to 1.2,
    radial -0.1 to 0.1. Returns ``(x, y)`` and ``(v_x, v_y)``, shape (2,) each.
    """
    r0 = rng.uniform(0.8, 1.5)
    angle = rng.uniform(0.0, 2 * np.pi)
    sense = rng.choice([-1.0, 1.0])
    circular = np.sqrt(GM / r0)
    tangential = sense * circular * rng.uniform(0.9, 1.2)
    radial = circular * rng.uniform(-0.1, 0.1)
    er = np.array([np.cos(angle), np.sin(angle)])
    et = np.array([-np.sin(angle), np.cos(angle)])
    return r0 * er, radial * er + tangential * et


def laws(GM: float = 1.0, m: float = 1.0) -> dict:
    """``{"V": "-GM*m/r"}`` with the constants filled in."""
    return {"V": f"-{GM * m}/r"}
