"""Harmonic oscillator: a mass on a linear spring, the simplest conservative system.

A particle of mass ``m`` on a line feels the restoring force ``-k x`` of the potential
``V(x) = k x**2 / 2``; it oscillates at the angular frequency ``omega = sqrt(k/m)`` with
any amplitude, and its energy ``m v**2/2 + k x**2/2`` is conserved. The learning spec
learns ``V`` as a single KAN edge (one layer) constrained to be even in ``x``. Initial
states have amplitudes in [0.3, 1] and a uniform phase. Reference: J. R. Taylor,
*Classical Mechanics* (University Science Books, 2005), sec. 5.2; H. Goldstein, C. Poole
and J. Safko, *Classical Mechanics*, 3rd ed. (2002), ch. 6.
"""

from __future__ import annotations

import numpy as np

from pikan import Potential, System
from pikan.constraints import Conserved, Even

SIMULATION = dict(n_trajectories=8, t=(0.0, 10.0), dt=0.05)
CONSERVED = ("energy",)


def truth(k: float = 1.0, m: float = 1.0) -> System:
    """Ground truth: ``V = k x**2 / 2`` with mass ``m``."""
    return System("harmonic", coords=["x"], masses=m, params={"k": k},
                  modules=[Potential("V", inputs=["x"], law="k*x**2/2")])


def model(*, hidden=(), grid: int = 5, **params) -> System:
    """Learning spec: ``V(x)`` by a KAN, even in ``x``; energy conserved by construction."""
    spec = truth(**params).learn("V", hidden=hidden, grid=grid, constraints=[Even("x")])
    return spec.replace(constraints=[Conserved("energy")])


def sample_initial(rng: np.random.Generator, k: float = 1.0,
                   m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude in [0.3, 1], uniform phase: ``x0, v0`` of shape (1,) each."""
    amplitude, phase = rng.uniform(0.3, 1.0), rng.uniform(0.0, 2 * np.pi)
    omega = np.sqrt(k / m)
    return np.array([amplitude * np.cos(phase)]), np.array([-amplitude * omega * np.sin(phase)])


def laws(k: float = 1.0, m: float = 1.0) -> dict:
    """``{"V": "k*x**2/2"}`` with ``k`` filled in."""
    return {"V": f"{k}*x**2/2"}
