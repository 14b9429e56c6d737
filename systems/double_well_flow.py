"""A gradient flow in a tilted double well: the overdamped limit of mechanics.

A heavily damped particle (or any system that descends a landscape) moves down the
gradient of its potential: ``q' = -grad V`` (a first-order system, ``order=1``). Here
``V(x, y) = a x**4/4 - b x**2/2 + c x y + d y**2/2``: a double well along ``x`` coupled to
a harmonic trough in ``y``. Every trajectory runs downhill into one of the two minima, and
``V`` decreases along it at the rate ``-|grad V|**2``. The learning spec learns ``V`` as a
KAN; a Potential in a first-order system gives ``-grad V`` by construction (curl-free, the
"gradient module"). ``V`` is found up to an additive constant. Reference: S. H. Strogatz,
*Nonlinear Dynamics and Chaos*, 2nd ed. (2015), sec. 7.2; H. Risken, *The Fokker-Planck
Equation*, 2nd ed. (Springer, 1989), sec. 5.1.
"""

from __future__ import annotations

import numpy as np

from pikan import Potential, System

SIMULATION = dict(n_trajectories=12, t=(0.0, 10.0), dt=0.025)
CONSERVED = ()


def truth(a: float = 1.0, b: float = 1.0, c: float = 0.3, d: float = 0.6) -> System:
    """Ground truth: ``V = a x**4/4 - b x**2/2 + c x y + d y**2/2``, ``q' = -grad V``."""
    return System("double_well_flow", coords=["x", "y"], order=1,
                  params={"a": a, "b": b, "c": c, "d": d},
                  modules=[Potential("V", inputs=["x", "y"],
                                     law="a*x**4/4 - b*x**2/2 + c*x*y + d*y**2/2")])


def model(*, hidden=(8,), grid: int = 5, **params) -> System:
    """Learning spec: ``V(x, y)`` by a KAN."""
    return truth(**params).learn("V", hidden=hidden, grid=grid)


def sample_initial(rng: np.random.Generator, a: float = 1.0, b: float = 1.0, c: float = 0.3,
                   d: float = 0.6) -> np.ndarray:
    """``x0, y0`` uniform in [-2, 2]: both wells and the barrier between them."""
    return rng.uniform(-2.0, 2.0, size=2)


def laws(a: float = 1.0, b: float = 1.0, c: float = 0.3, d: float = 0.6) -> dict:
    """``V`` with the constants filled in (up to an additive constant)."""
    return {"V": f"{a / 4}*x**4 - {b / 2}*x**2 + {c}*x*y + {d / 2}*y**2"}
