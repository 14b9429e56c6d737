"""Spring chain: one pair law learned from all bonds at once.

The story: a chain of equal masses between two walls, joined by identical anharmonic
springs (the Fermi-Pasta-Ulam-Tsingou beta chain, ``V_bond(d) = k d**2/2 + beta d**4/4``
with k = 1, beta = 0.5). We only see the masses move: positions with 0.01 % noise, from
which velocities and accelerations are estimated. The learning spec from the catalogue,
``pikan.systems.get("spring_chain")``, declares *one* bond law ``V_bond(d)`` and binds it
to every spring (``d = x1``, ``d = x2 - x1``, ..., ``d = -xn``) with shared weights, so a
single KAN learns from every bond of every trajectory at once, the way an N-body model
learns one pair law from all pairs. :func:`pikan.discover` trains it and reads it as a
formula.

Run it::

    python examples/spring_chain.py                  # 8 masses, 9 bonds, about a minute
    python examples/spring_chain.py --quick          # 5 masses, a smoke run of seconds
    python examples/spring_chain.py --out runs/chain # keep the run directory and plots

The quartic part is small here (at a stretch of 0.5 it is 6 % of the bond energy): with
0.1 % noise on the positions, the estimated accelerations hide it and the law found is
the harmonic one, k d**2/2 only.
"""

from __future__ import annotations

import time

import pikan
import pikan.systems

import _story  # examples/_story: command line, run directory, report


def main(argv=None) -> int:
    args = _story.arguments(__doc__, argv)
    start = time.perf_counter()

    chain = pikan.systems.get("spring_chain")
    if args.quick:
        params, steps, refine = {"n": 5}, 150, 50
        settings = {"n_trajectories": 4, "t": (0.0, 5.0)}
    else:
        params, settings, steps, refine = {"n": 8}, {"noise": 1e-4}, None, 200
    data = chain.simulate(params=params, seed=args.seed, **settings)
    spec = chain.model(**params)
    bond = spec.module("bond")
    print(f"data: {data}")
    print(f"one bond law V_bond(d), shared by {len(bond.bindings)} bonds: "
          + ", ".join(f"d = {b['d']}" for b in bond.bindings))

    with _story.discovery(args, "spring_chain", spec, data, steps, refine) as run:
        recovered = _story.compare(run.laws["bond"], chain.laws(**params)["bond"], "V_bond(d)")
    print(f"\nbond law recovered: {recovered}  ({time.perf_counter() - start:.0f} s)")
    if not recovered:
        raise SystemExit("spring_chain: the bond law found is not k d^2/2 + beta d^4/4")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
