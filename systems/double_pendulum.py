"""Double pendulum: a pendulum hanging from a pendulum, the classic chaotic Lagrangian system.

Two point masses ``m1, m2`` on massless rods ``l1, l2`` swing in a vertical plane; the
angles ``theta1, theta2`` are measured from the downward vertical. With ``phi = theta1 -
theta2`` the Lagrangian is

``L = (m1 + m2) l1**2 w1**2/2 + m2 l2**2 w2**2/2 + m2 l1 l2 w1 w2 cos(phi)
+ (m1 + m2) g l1 cos(theta1) + m2 g l2 cos(theta2)``

(``w1, w2`` the angular velocities ``v_theta1, v_theta2``): a velocity-dependent mass
matrix, so the system is written as one ``Lagrangian`` module and the accelerations come
from the Euler-Lagrange equations. The energy ``w . dL/dw - L`` is conserved; the motion
is chaotic at larger energies. Initial angles are in [-1, 1] rad and angular velocities
in ``[-0.5, 0.5] sqrt(g/l1)``. Every evaluation needs Hessians of ``L``, so simulating and
training cost far more per state than for the Newtonian systems; the default settings
give fewer states (about a thousand). The learning spec learns ``L`` from the angles, the
relative angle feature ``phi`` and the angular velocities with a KAN that has
multiplication nodes (the coupling ``w1 w2 cos(phi)`` is a product of three factors,
which such a KAN represents only approximately). Reference: L. D. Landau and E. M.
Lifshitz, *Mechanics*, 3rd ed., sec. 5, problem 1; J. R. Taylor, *Classical Mechanics*
(2005), sec. 11.4.
"""

from __future__ import annotations

import numpy as np

from pikan import Lagrangian, System
from pikan.constraints import Conserved

SIMULATION = dict(n_trajectories=8, t=(0.0, 3.0), dt=0.025)
CONSERVED = ("energy",)

_INPUTS = {"theta1": "theta1", "theta2": "theta2", "phi": "theta1 - theta2",
           "v_theta1": "v_theta1", "v_theta2": "v_theta2"}
_LAW = ("(m1 + m2)*l1**2*v_theta1**2/2 + m2*l2**2*v_theta2**2/2"
        " + m2*l1*l2*v_theta1*v_theta2*cos(phi)"
        " + (m1 + m2)*g*l1*cos(theta1) + m2*g*l2*cos(theta2)")


def truth(m1: float = 1.0, m2: float = 1.0, l1: float = 1.0, l2: float = 1.0,
          g: float = 9.81) -> System:
    """Ground truth: the Lagrangian above, in ``theta1, theta2, phi, v_theta1, v_theta2``."""
    return System("double_pendulum", coords=["theta1", "theta2"],
                  params={"m1": m1, "m2": m2, "l1": l1, "l2": l2, "g": g},
                  modules=[Lagrangian("L", inputs=_INPUTS, law=_LAW)])


def model(*, hidden=(8,), grid: int = 5, mult: int = 2, **params) -> System:
    """Learning spec: ``L`` by a KAN with ``mult`` multiplication nodes; energy conserved."""
    spec = truth(**params).learn("L", hidden=hidden, grid=grid, mult=mult)
    return spec.replace(constraints=[Conserved("energy")])


def sample_initial(rng: np.random.Generator, m1: float = 1.0, m2: float = 1.0,
                   l1: float = 1.0, l2: float = 1.0,
                   g: float = 9.81) -> tuple[np.ndarray, np.ndarray]:
    """Angles in [-1, 1] rad, angular velocities in ``[-0.5, 0.5] sqrt(g/l1)``; shape (2,)."""
    return rng.uniform(-1.0, 1.0, size=2), 0.5 * np.sqrt(g / l1) * rng.uniform(-1.0, 1.0, size=2)


def laws(m1: float = 1.0, m2: float = 1.0, l1: float = 1.0, l2: float = 1.0,
         g: float = 9.81) -> dict:
    """``{"L": ...}`` with the constants filled in."""
    return {"L": (f"{(m1 + m2) * l1**2 / 2}*v_theta1**2 + {m2 * l2**2 / 2}*v_theta2**2"
                  f" + {m2 * l1 * l2}*v_theta1*v_theta2*cos(phi)"
                  f" + {(m1 + m2) * g * l1}*cos(theta1) + {m2 * g * l2}*cos(theta2)")}
