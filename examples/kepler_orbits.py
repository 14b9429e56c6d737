"""Kepler orbits: learn the central potential from trajectories and get V(r) = -GM/r.

The story: we track planets around a star of unknown mass (GM = 2 in the simulation) with
0.1 % position noise. The learning spec from the catalogue, ``pikan.systems.get("kepler")``,
says only that the force is central: the potential is a function of the feature
``r = sqrt(x**2 + y**2)``, learned by a KAN. :func:`pikan.discover` trains it (on noisy
data without accelerations, :func:`pikan.fit` matches short simulated stretches of the
orbits instead of accelerations), reads the KAN as a formula, refines its constants end
to end and re-simulates the orbits with the law. The expected
answer is Newton's potential ``V(r) = -GM/r``, with GM = 2 read off the orbits.

Run it::

    python examples/kepler_orbits.py                 # about a minute
    python examples/kepler_orbits.py --quick         # a smoke run of a few seconds
    python examples/kepler_orbits.py --out runs/kepler   # keep the run directory and plots
"""

from __future__ import annotations

import time

import pikan
import pikan.systems

import _story  # examples/_story: command line, run directory, report


def main(argv=None) -> int:
    args = _story.arguments(__doc__, argv)
    start = time.perf_counter()

    kepler = pikan.systems.get("kepler")
    params = {"GM": 2.0}
    if args.quick:  # clean data, fewer and shorter orbits, a short fit
        settings, steps, refine = {"n_trajectories": 6, "t": (0.0, 4.0)}, 150, 50
    else:
        settings, steps, refine = {"noise": 1e-3}, None, 200
    data = kepler.simulate(params=params, seed=args.seed, **settings)
    print(f"data: {data}")
    spec = kepler.model(**params)
    print(f"learning spec: {spec.name}, learned module(s) {list(spec.learned)}, "
          f"V(r) with r = {spec.module('V').inputs['r']}")

    with _story.discovery(args, "kepler", spec, data, steps, refine) as run:
        recovered = _story.compare(run.laws["V"], kepler.laws(**params)["V"], "V(r)")
    print(f"\nNewton's potential recovered: {recovered}  ({time.perf_counter() - start:.0f} s)")
    if not recovered:
        raise SystemExit("kepler_orbits: the potential found is not -GM/r")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
