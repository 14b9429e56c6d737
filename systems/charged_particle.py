"""Charged particle in uniform electric and magnetic fields: cyclotron motion and E x B drift.

A particle of charge ``q`` and mass ``m`` moves in the plane under the Lorentz force
``F = q (E + v x B)`` with ``E = (Ex, Ey)`` in the plane and ``B`` along ``z``. The
magnetic part ``q B (v_y, -v_x)`` is gyroscopic: velocity-linear, antisymmetric, doing no
work; the electric part derives from the potential ``-q (Ex x + Ey y)``. The particle
gyrates at the cyclotron frequency ``qB/m`` while its guiding centre drifts with the
velocity ``E x B / B**2``; the energy ``m v**2/2 - q E . x`` is conserved. The spec has a
gyroscopic ``Dynamics`` "lorentz" and a ``Potential`` "electric". The learning spec learns
both: the magnetic force as a learned antisymmetric field acting on the velocities (its
inputs are exactly ``v_x, v_y``, so the field is uniform) and the electric potential as a
one-layer KAN; energy is conserved by construction. Initial positions and velocities are
uniform in [-1, 1]. Reference: J. D. Jackson, *Classical Electrodynamics*, 3rd ed. (1999),
sec. 12.3 and 12.4; H. Goldstein, C. Poole and J. Safko, *Classical Mechanics*, 3rd ed.
(2002), sec. 1.5.
"""

from __future__ import annotations

import numpy as np

from pikan import Dynamics, Potential, System
from pikan.constraints import Conserved

SIMULATION = dict(n_trajectories=12, t=(0.0, 10.0), dt=0.05)
CONSERVED = ("energy",)


def truth(q: float = 1.0, B: float = 1.0, Ex: float = 0.5, Ey: float = 0.0,
          m: float = 1.0) -> System:
    """Ground truth: gyroscopic ``q B (v_y, -v_x)`` plus ``V = -q (Ex x + Ey y)``."""
    return System(
        "charged_particle", coords=["x", "y"], masses=m,
        params={"q": q, "B": B, "Ex": Ex, "Ey": Ey},
        modules=[Dynamics("lorentz", inputs=["v_x", "v_y"], outputs=["x", "y"],
                          gyroscopic=True, law=["q*B*v_y", "-q*B*v_x"]),
                 Potential("electric", inputs=["x", "y"], law="-q*(Ex*x + Ey*y)")])


def model(*, hidden=(), grid: int = 5, **params) -> System:
    """Learning spec: a learned uniform gyroscopic field and a learned potential."""
    spec = truth(**params).learn("lorentz").learn("electric", hidden=hidden, grid=grid)
    return spec.replace(constraints=[Conserved("energy")])


def sample_initial(rng: np.random.Generator, q: float = 1.0, B: float = 1.0,
                   Ex: float = 0.5, Ey: float = 0.0,
                   m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Position and velocity uniform in [-1, 1]**2; shape (2,) each."""
    return rng.uniform(-1.0, 1.0, size=2), rng.uniform(-1.0, 1.0, size=2)


def laws(q: float = 1.0, B: float = 1.0, Ex: float = 0.5, Ey: float = 0.0,
         m: float = 1.0) -> dict:
    """``lorentz`` (one text per output) and ``electric`` with the constants filled in."""
    return {"lorentz": [f"{q * B}*v_y", f"{-q * B}*v_x"],
            "electric": f"{-q * Ex}*x + {-q * Ey}*y"}
