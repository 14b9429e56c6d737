"""Simple pendulum: a point mass on a rigid massless rod, swinging under gravity.

With the angle ``theta`` from the downward vertical as coordinate, the moment of inertia
``m l**2`` as mass and the potential ``V(theta) = m g l (1 - cos(theta))``, the equation of
motion is ``theta'' = -(g/l) sin(theta)``: small swings are harmonic with
``omega0 = sqrt(g/l)``, large ones slower. Initial states are drawn with energies up to
about 70 % of the separatrix energy ``2 m g l`` (amplitudes up to about 2 rad), so every
orbit librates and none comes near the unstable upright position. The learning spec learns
``V`` as one KAN edge, even in ``theta``. Reference: L. D. Landau and E. M. Lifshitz,
*Mechanics*, 3rd ed., sec. 11, problem 1 (the period as an elliptic integral); J. R.
Taylor, *Classical Mechanics* (2005), ch. 4 (energy in one dimension).
"""

from __future__ import annotations

import numpy as np

from pikan import Potential, System
from pikan.constraints import Conserved, Even

SIMULATION = dict(n_trajectories=10, t=(0.0, 6.0), dt=0.02)
CONSERVED = ("energy",)


def truth(g: float = 9.81, l: float = 1.0, m: float = 1.0) -> System:
    """Ground truth: ``V = m g l (1 - cos(theta))``, moment of inertia ``m l**2``."""
    return System("pendulum", coords=["theta"], masses=m * l**2,
                  params={"g": g, "l": l, "m": m},
                  modules=[Potential("V", inputs=["theta"], law="m*g*l*(1 - cos(theta))")])


def model(*, hidden=(), grid: int = 5, **params) -> System:
    """Learning spec: ``V(theta)`` by a KAN, even in ``theta``; energy conserved."""
    spec = truth(**params).learn("V", hidden=hidden, grid=grid, constraints=[Even("theta")])
    return spec.replace(constraints=[Conserved("energy")])


def sample_initial(rng: np.random.Generator, g: float = 9.81, l: float = 1.0,
                   m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``theta0`` in [-1.5, 1.5] rad, ``v_theta0`` in ``[-1, 1] * sqrt(g/l)``.

    The energy is then at most ``(1 - cos 1.5 + 1/2) m g l``, 71 % of the separatrix.
    """
    omega0 = np.sqrt(g / l)
    return np.array([rng.uniform(-1.5, 1.5)]), np.array([omega0 * rng.uniform(-1.0, 1.0)])


def laws(g: float = 9.81, l: float = 1.0, m: float = 1.0) -> dict:
    """``{"V": "m*g*l*(1 - cos(theta))"}`` with the constants filled in."""
    return {"V": f"{m * g * l}*(1 - cos(theta))"}
