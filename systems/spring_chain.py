"""Spring chain: ``n`` equal masses on a line joined by identical (anharmonic) springs.

Coordinate ``x_i`` is the displacement of mass ``i`` from its rest position; the bond
between neighbours stretches by ``d = x_{i+1} - x_i`` and stores
``V_bond(d) = k d**2/2 + beta d**4/4`` (the Fermi-Pasta-Ulam-Tsingou beta chain; ``beta =
0`` gives Hooke's springs and exact normal modes). By default both ends are fixed: walls at
rest positions 0 and n+1 are joined to the first and last mass by the same springs
(``n + 1`` bonds; bond extensions ``x1`` and ``-xn``), so energy is conserved but momentum
is not. With ``fixed_ends=False`` the chain is free (``n - 1`` bonds) and total momentum
is conserved too. The learning spec learns one bond law, shared by all bonds through
bindings, with one KAN edge. Initial displacements and velocities are uniform in
[-0.4, 0.4] (the free chain's mean velocity removed so it does not drift away).
Reference: E. Fermi, J. Pasta and S. Ulam, *Studies of Nonlinear Problems*, Los Alamos
report LA-1940 (1955); H. Goldstein, C. Poole and J. Safko, *Classical Mechanics*, 3rd
ed. (2002), ch. 6 (normal modes).
"""

from __future__ import annotations

import numpy as np

from pikan import Potential, SpecError, System, chain_pairs
from pikan.constraints import Conserved

SIMULATION = dict(n_trajectories=8, t=(0.0, 10.0), dt=0.05)
CONSERVED = ("energy",)


def _coords(n: int) -> list[str]:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise SpecError(f"spring_chain: n is the number of masses, an integer >= 2; got {n!r}.")
    return [f"x{i}" for i in range(1, int(n) + 1)]


def bonds(n: int = 5, fixed_ends: bool = True) -> list[dict[str, str]]:
    """Bindings of the bond law: one ``{"d": extension}`` per spring.

    Parameters
    ----------
    n : int
        Number of masses.
    fixed_ends : bool
        Add the two springs to the walls (extensions ``x1`` and ``-xn``).

    Returns
    -------
    list of dict
        ``n + 1`` bindings with fixed ends, ``n - 1`` without.
    """
    coords = _coords(n)
    inner = chain_pairs(coords, expr="{b} - {a}", name="d")
    if not fixed_ends:
        return inner
    return [{"d": coords[0]}, *inner, {"d": f"-{coords[-1]}"}]


def truth(n: int = 5, k: float = 1.0, beta: float = 0.5, m: float = 1.0,
          fixed_ends: bool = True) -> System:
    """Ground truth: every bond stores ``k d**2/2 + beta d**4/4``."""
    return System("spring_chain", coords=_coords(n), masses=m, params={"k": k, "beta": beta},
                  modules=[Potential("bond", inputs=["d"], bindings=bonds(n, fixed_ends),
                                     law="k*d**2/2 + beta*d**4/4")])


def model(*, hidden=(), grid: int = 5, **params) -> System:
    """Learning spec: one bond law ``V_bond(d)`` by a KAN, shared by every bond."""
    spec = truth(**params).learn("bond", hidden=hidden, grid=grid)
    conserved = [Conserved("energy")]
    if not params.get("fixed_ends", True):
        conserved.append(Conserved("momentum"))
    return spec.replace(constraints=conserved)


def sample_initial(rng: np.random.Generator, n: int = 5, k: float = 1.0, beta: float = 0.5,
                   m: float = 1.0, fixed_ends: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Displacements and velocities uniform in [-0.4, 0.4], shape (n,) each."""
    count = len(_coords(n))
    q = rng.uniform(-0.4, 0.4, size=count)
    v = rng.uniform(-0.4, 0.4, size=count) * np.sqrt(k / m)
    if not fixed_ends:
        v = v - v.mean()
    return q, v


def laws(n: int = 5, k: float = 1.0, beta: float = 0.5, m: float = 1.0,
         fixed_ends: bool = True) -> dict:
    """``{"bond": "k*d**2/2 + beta*d**4/4"}`` with the constants filled in."""
    return {"bond": f"{k / 2}*d**2 + {beta / 4}*d**4"}
