"""Lotka-Volterra predator and prey: a first-order population model with closed cycles.

Prey ``x`` grow at the rate ``alpha`` and are eaten at the rate ``beta x y``; predators
``y`` grow by eating (``delta x y``) and die at the rate ``gamma``:
``x' = alpha x - beta x y``, ``y' = delta x y - gamma y``. A first-order system
(``order=1``): the state is the two populations, and the data are ``t`` and ``q`` only.
Every orbit in the positive quadrant is a closed cycle around the coexistence point
``(gamma/delta, alpha/beta)``, on which ``delta x - gamma ln x + beta y - alpha ln y`` is
constant. The learning spec learns one ``Flow`` per population, each a KAN of both
populations. Reference: J. D. Murray, *Mathematical Biology I*, 3rd ed. (Springer, 2002),
sec. 3.1; S. H. Strogatz, *Nonlinear Dynamics and Chaos*, 2nd ed. (2015), sec. 6.4.
"""

from __future__ import annotations

import numpy as np

from pikan import Flow, System

SIMULATION = dict(n_trajectories=12, t=(0.0, 10.0), dt=0.025)
CONSERVED = ()


def truth(alpha: float = 1.1, beta: float = 0.4, delta: float = 0.1,
          gamma: float = 0.4) -> System:
    """Ground truth: ``prey = alpha x - beta x y``, ``predator = delta x y - gamma y``."""
    return System("lotka_volterra", coords=["x", "y"], order=1,
                  params={"alpha": alpha, "beta": beta, "delta": delta, "gamma": gamma},
                  modules=[Flow("prey", inputs=["x", "y"], outputs=["x"],
                                law=["alpha*x - beta*x*y"]),
                           Flow("predator", inputs=["x", "y"], outputs=["y"],
                                law=["delta*x*y - gamma*y"])])


def model(*, hidden=(8,), grid: int = 5, **params) -> System:
    """Learning spec: each population's rate by a KAN of ``(x, y)``."""
    return truth(**params).learn("prey", hidden=hidden, grid=grid).learn(
        "predator", hidden=hidden, grid=grid)


def sample_initial(rng: np.random.Generator, alpha: float = 1.1, beta: float = 0.4,
                   delta: float = 0.1, gamma: float = 0.4) -> np.ndarray:
    """Populations within a factor 2.5 of the coexistence point: ``q0`` of shape (2,)."""
    centre = np.array([gamma / delta, alpha / beta])
    return centre * rng.uniform(0.4, 1.0, size=2)


def laws(alpha: float = 1.1, beta: float = 0.4, delta: float = 0.1,
         gamma: float = 0.4) -> dict:
    """``prey`` and ``predator`` with the constants filled in (one text per output)."""
    return {"prey": [f"{alpha}*x - {beta}*x*y"], "predator": [f"{delta}*x*y - {gamma}*y"]}
