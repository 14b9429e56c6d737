"""Van der Pol oscillator in first-order form: a self-sustained oscillation (limit cycle).

A triode circuit's voltage ``x`` obeys ``x'' - mu (1 - x**2) x' + x = 0``: negative damping
at small amplitude pumps energy in, positive damping at large amplitude takes it out, and
every trajectory but the origin winds onto one limit cycle. Written as a first-order system
in ``(x, y)`` with ``y = x'``: ``x' = y`` (kinematics, known) and
``y' = mu (1 - x**2) y - x``. The learning spec keeps the kinematics and learns the second
rate as a KAN of ``(x, y)``. Reference: B. van der Pol, Phil. Mag. 2, 978 (1926);
S. H. Strogatz, *Nonlinear Dynamics and Chaos*, 2nd ed. (2015), sec. 7.5.
"""

from __future__ import annotations

import numpy as np

from pikan import Flow, System

SIMULATION = dict(n_trajectories=12, t=(0.0, 10.0), dt=0.025)
CONSERVED = ()


def truth(mu: float = 1.0) -> System:
    """Ground truth: ``kinematics = y``, ``oscillator = mu (1 - x**2) y - x``."""
    return System("van_der_pol", coords=["x", "y"], order=1, params={"mu": mu},
                  modules=[Flow("kinematics", inputs=["y"], outputs=["x"], law=["y"]),
                           Flow("oscillator", inputs=["x", "y"], outputs=["y"],
                                law=["mu*(1 - x**2)*y - x"])])


def model(*, hidden=(8,), grid: int = 5, **params) -> System:
    """Learning spec: ``x' = y`` known, ``y'`` by a KAN of ``(x, y)``."""
    return truth(**params).learn("oscillator", hidden=hidden, grid=grid)


def sample_initial(rng: np.random.Generator, mu: float = 1.0) -> np.ndarray:
    """``x0, y0`` uniform in [-3, 3]: inside and outside the limit cycle (amplitude 2)."""
    return rng.uniform(-3.0, 3.0, size=2)


def laws(mu: float = 1.0) -> dict:
    """``kinematics`` and ``oscillator`` with ``mu`` filled in."""
    return {"kinematics": ["y"], "oscillator": [f"{mu}*(1 - x**2)*y - x"]}
