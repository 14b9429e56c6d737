"""Damped Duffing oscillator: a hardening nonlinear spring with viscous friction.

A mass ``m`` on a line in the potential ``V(x) = alpha x**2/2 + beta x**4/4`` (a spring
that stiffens with stretch for ``beta > 0``), slowed by the linear friction force
``-c v``, written as the Rayleigh dissipation function ``D(v) = c v**2 / 2``:
``m x'' = -alpha x - beta x**3 - c x'``. The frequency grows with the amplitude, and the
energy ``m v**2/2 + V`` decreases at the rate ``-c v**2``. There is no driving force (the
equations are autonomous). The learning spec learns ``V`` and ``D`` separately, each as one
KAN edge, even in its input: the conservative and the dissipative parts come apart
because ``V`` enters through ``-dV/dx`` and ``D`` through ``-dD/dv`` (``D >= 0`` by
construction). Reference: L. D. Landau and E. M. Lifshitz, *Mechanics*, 3rd ed., sec. 25
(damped oscillations) and sec. 28 (anharmonic oscillations); I. Kovacic and M. J. Brennan
(eds.), *The Duffing Equation* (Wiley, 2011), ch. 1.
"""

from __future__ import annotations

import numpy as np

from pikan import Dissipation, Potential, System
from pikan.constraints import Even, Positive

SIMULATION = dict(n_trajectories=12, t=(0.0, 10.0), dt=0.05)
CONSERVED = ()


def truth(alpha: float = 1.0, beta: float = 1.0, c: float = 0.1, m: float = 1.0) -> System:
    """Ground truth: ``V = alpha x**2/2 + beta x**4/4``, ``D = c v_x**2/2``."""
    return System("duffing", coords=["x"], masses=m,
                  params={"alpha": alpha, "beta": beta, "c": c},
                  modules=[Potential("V", inputs=["x"], law="alpha*x**2/2 + beta*x**4/4"),
                           Dissipation("D", inputs=["v_x"], law="c*v_x**2/2")])


def model(*, hidden=(), grid: int = 5, **params) -> System:
    """Learning spec: ``V(x)`` and ``D(v_x) >= 0`` by KANs, each even in its input."""
    spec = truth(**params).learn("V", hidden=hidden, grid=grid, constraints=[Even("x")])
    return spec.learn("D", hidden=hidden, grid=grid, constraints=[Even("v_x"), Positive()])


def sample_initial(rng: np.random.Generator, alpha: float = 1.0, beta: float = 1.0,
                   c: float = 0.1, m: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``x0`` in [-1.5, 1.5] (where the quartic term matters), ``v0`` in [-1, 1]."""
    return np.array([rng.uniform(-1.5, 1.5)]), np.array([rng.uniform(-1.0, 1.0)])


def laws(alpha: float = 1.0, beta: float = 1.0, c: float = 0.1, m: float = 1.0) -> dict:
    """``V`` and ``D`` with the constants filled in."""
    return {"V": f"{alpha / 2}*x**2 + {beta / 4}*x**4", "D": f"{c / 2}*v_x**2"}
