"""Two-body gravity in absolute coordinates: two masses attracting each other.

Bodies of masses ``m1`` and ``m2`` at ``(x1, y1)`` and ``(x2, y2)`` interact through
``V = -G m1 m2 / r12`` with ``r12 = |r2 - r1|``. The potential is invariant under
translations and rotations of both bodies together, so total momentum, angular momentum
and energy are conserved; the centre of mass moves uniformly and the relative coordinate
follows a Kepler orbit with ``GM = G (m1 + m2)``. Initial states put the relative orbit
at separation 0.8 to 1.5 with 0.9 to 1.2 times the circular relative speed (bound, no
near-collisions) and give the centre of mass a small random position and velocity. The
learning spec learns ``V`` from the four raw coordinates with hard translation and
rotation invariance (so it can only depend on ``r12``) and declares momentum conservation.
Reference: H. Goldstein, C. Poole and J. Safko, *Classical Mechanics*, 3rd ed. (2002),
sec. 3.1; L. D. Landau and E. M. Lifshitz, *Mechanics*, 3rd ed., sec. 13.
"""

from __future__ import annotations

import numpy as np

from pikan import Potential, System
from pikan.constraints import Conserved, RotationInvariant, TranslationInvariant

SIMULATION = dict(n_trajectories=12, t=(0.0, 10.0), dt=0.05)
CONSERVED = ("energy", "momentum", "angular_momentum")

_COORDS = ["x1", "y1", "x2", "y2"]


def truth(G: float = 1.0, m1: float = 1.0, m2: float = 0.5) -> System:
    """Ground truth: ``V = -G m1 m2 / |r2 - r1|``; masses ``(m1, m1, m2, m2)`` per coordinate."""
    return System("two_body", coords=_COORDS, masses=[m1, m1, m2, m2],
                  params={"G": G, "m1": m1, "m2": m2},
                  modules=[Potential("V", inputs=_COORDS,
                                     law="-G*m1*m2/sqrt((x2 - x1)**2 + (y2 - y1)**2)")])


def model(*, hidden=(), grid: int = 5, **params) -> System:
    """Learning spec: ``V(x1, y1, x2, y2)`` by a KAN, translation and rotation invariant."""
    spec = truth(**params).learn(
        "V", hidden=hidden, grid=grid,
        constraints=[TranslationInvariant(["x1", "x2"], ["y1", "y2"]),
                     RotationInvariant(("x1", "y1"), ("x2", "y2"))])
    return spec.replace(constraints=[Conserved("energy"), Conserved("momentum"),
                                     Conserved("angular_momentum")])


def sample_initial(rng: np.random.Generator, G: float = 1.0, m1: float = 1.0,
                   m2: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A bound relative orbit plus a slowly moving centre of mass.

    Returns ``(x1, y1, x2, y2)`` and their velocities, shape (4,) each.
    """
    total = m1 + m2
    r0 = rng.uniform(0.8, 1.5)
    angle = rng.uniform(0.0, 2 * np.pi)
    sense = rng.choice([-1.0, 1.0])
    circular = np.sqrt(G * total / r0)
    er = np.array([np.cos(angle), np.sin(angle)])
    et = np.array([-np.sin(angle), np.cos(angle)])
    relative = r0 * er
    relative_v = circular * (rng.uniform(-0.1, 0.1) * er + sense * rng.uniform(0.9, 1.2) * et)
    centre, centre_v = rng.uniform(-0.5, 0.5, size=2), rng.uniform(-0.1, 0.1, size=2)
    q = np.concatenate([centre - m2 / total * relative, centre + m1 / total * relative])
    v = np.concatenate([centre_v - m2 / total * relative_v, centre_v + m1 / total * relative_v])
    return q, v


def laws(G: float = 1.0, m1: float = 1.0, m2: float = 0.5) -> dict:
    """``{"V": "-G*m1*m2/sqrt((x2 - x1)**2 + (y2 - y1)**2)"}`` with the constants filled in."""
    return {"V": f"-{G * m1 * m2}/sqrt((x2 - x1)**2 + (y2 - y1)**2)"}
