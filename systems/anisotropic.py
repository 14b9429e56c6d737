"""Anisotropic oscillator: a particle in a plane, bound by springs of different stiffness.

The potential ``V(x, y) = (kx x**2 + ky y**2) / 2`` separates into two independent
harmonic oscillators with frequencies ``sqrt(kx/m)`` and ``sqrt(ky/m)``; with
``ky/kx = 2`` the ratio is irrational and orbits fill Lissajous rectangles. Energy is
conserved (and so is each direction's energy), but angular momentum is not, since ``V`` is
not rotation invariant. The learning spec learns ``V(x, y)`` by a two-layer KAN, even in
``x`` and in ``y`` (reflection symmetry). Reference: J. R. Taylor, *Classical Mechanics*
(University Science Books, 2005), sec. 5.3 (two-dimensional oscillators).
"""

from __future__ import annotations

import numpy as np

from pikan import Potential, System
from pikan.constraints import Conserved, Even

SIMULATION = dict(n_trajectories=12, t=(0.0, 10.0), dt=0.05)
CONSERVED = ("energy",)


def truth(kx: float = 1.0, ky: float = 2.0, m: float = 1.0) -> System:
    """Ground truth: ``V = (kx x**2 + ky y**2) / 2``."""
    return System("anisotropic", coords=["x", "y"], masses=m, params={"kx": kx, "ky": ky},
                  modules=[Potential("V", inputs=["x", "y"], law="(kx*x**2 + ky*y**2)/2")])


def model(*, hidden=(4,), grid: int = 5, **params) -> System:
    """Learning spec: ``V(x, y)`` by a KAN, even in ``x`` and ``y``; energy conserved."""
    spec = truth(**params).learn("V", hidden=hidden, grid=grid,
                                 constraints=[Even("x"), Even("y")])
    return spec.replace(constraints=[Conserved("energy")])


def sample_initial(rng: np.random.Generator, kx: float = 1.0, ky: float = 2.0,
                   m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per direction an amplitude in [0.2, 1] and a uniform phase: arrays of shape (2,)."""
    amplitude = rng.uniform(0.2, 1.0, size=2)
    phase = rng.uniform(0.0, 2 * np.pi, size=2)
    omega = np.sqrt(np.array([kx, ky]) / m)
    return amplitude * np.cos(phase), -amplitude * omega * np.sin(phase)


def laws(kx: float = 1.0, ky: float = 2.0, m: float = 1.0) -> dict:
    """``{"V": "(kx*x**2 + ky*y**2)/2"}`` with the constants filled in."""
    return {"V": f"{kx / 2}*x**2 + {ky / 2}*y**2"}
