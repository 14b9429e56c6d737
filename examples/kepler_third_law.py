"""Kepler's third law from orbit data: the period as a function of the orbit's size.

The story: we watch planets go round stars of different masses. For every orbit we
*measure* two numbers from its sampled positions, the semi-major axis ``a`` (half the sum
of the closest and the farthest distance) and the period ``T`` (the time the planet needs
to sweep a full turn), and we know the star's ``GM``. These (a, GM) -> T samples are not
trajectories any more, just a table, so the law is found by pikan's static regression
path, :func:`pikan.find_law`. The expected answer is Kepler's third law,

    T = 2 pi a**(3/2) / sqrt(GM).

Run it::

    python examples/kepler_third_law.py            # 4 stars x 10 orbits, about a minute
    python examples/kepler_third_law.py --quick    # 2 stars x 6 orbits, a few seconds

The orbits are simulated with the Kepler system of the catalogue (``pikan.systems``), so
the "measurements" carry the small errors of sampling every ``dt``: the law must come out
anyway.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import sympy

import pikan
import pikan.systems

TRUTH = "2*pi*a**(3/2)/sqrt(GM)"


def sample_orbit(rng: np.random.Generator, GM: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A bound orbit starting at distance 0.5..1.5, 0.9..1.1 times the circular speed.

    Its semi-major axis is then 0.42..1.9 (the speed sets the energy ``-GM/(2a)``).
    """
    r0 = rng.uniform(0.5, 1.5)
    angle = rng.uniform(0.0, 2 * np.pi)
    speed = np.sqrt(GM / r0) * rng.uniform(0.9, 1.1)
    radial = np.array([np.cos(angle), np.sin(angle)])
    tangential = np.array([-np.sin(angle), np.cos(angle)])
    return r0 * radial, speed * tangential


def measure(data: pikan.Trajectories) -> tuple[np.ndarray, np.ndarray]:
    """Semi-major axis and period of every orbit, measured from its samples.

    ``a = (r_min + r_max) / 2`` over the samples; ``T`` is the time at which the polar
    angle has turned by 2 pi, linearly interpolated between the two samples around it.

    Returns
    -------
    (a, T) : arrays of shape (n_orbits,)
    """
    a, T = [], []
    for orbit in data:
        x, y = orbit.q[:, 0], orbit.q[:, 1]
        r = np.hypot(x, y)
        turned = np.abs(np.unwrap(np.arctan2(y, x)) - np.arctan2(y[0], x[0]))
        k = int(np.argmax(turned >= 2 * np.pi))
        if k == 0:
            raise RuntimeError("an orbit did not complete a turn; simulate for longer")
        fraction = (2 * np.pi - turned[k - 1]) / (turned[k] - turned[k - 1])
        T.append(orbit.t[k - 1] + fraction * (orbit.t[k] - orbit.t[k - 1]))
        a.append(0.5 * (r[: k + 1].min() + r[: k + 1].max()))
    return np.array(a), np.array(T)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()

    kepler = pikan.systems.get("kepler")
    stars = [2.0, 8.0] if args.quick else [0.5, 1.0, 2.0, 4.0]
    n_orbits = 6 if args.quick else 10
    rows = []
    for i, GM in enumerate(stars):
        # Longest period: a <= 1.9 at the lightest star; simulate a bit past one turn.
        t_end = 1.2 * 2 * np.pi * 1.9**1.5 / np.sqrt(GM)
        data = pikan.simulate(kepler.truth(GM=GM), n_trajectories=n_orbits, t=(0.0, t_end),
                              dt=0.01, seed=args.seed + i,
                              initial=lambda rng, GM=GM: sample_orbit(rng, GM))
        a, T = measure(data)
        rows += [(ai, GM, Ti) for ai, Ti in zip(a, T)]
        print(f"star GM = {GM:4.1f}: {n_orbits} orbits, a in [{a.min():.2f}, {a.max():.2f}], "
              f"T in [{T.min():.2f}, {T.max():.2f}]")
    table = np.array(rows)
    X, T = table[:, :2], table[:, 2]
    print(f"measured {len(T)} orbits in {time.perf_counter() - start:.1f} s")

    # Measured values are good to about 1e-5 (sampling every dt = 0.01): tell find_law
    # that relative errors of 1e-4 are noise, not structure. The quick run skips the KAN
    # surrogate (regression only).
    law = pikan.find_law(X, T, names=["a", "GM"], output="T", seed=args.seed,
                         steps=0 if args.quick else 400, tolerance=1e-4)
    print(f"\nfound:  {law}   (relative error {law.error:.1e})")
    print(f"truth:  T(a, GM) = {TRUTH}")
    # A period has no free additive constant: besides the form (equivalent() compares
    # laws up to a constant), check the law's values against the truth on the data.
    predicted = sympy.lambdify(["a", "GM"], law.expr, "numpy")(X[:, 0], X[:, 1])
    exact = 2 * np.pi * X[:, 0] ** 1.5 / np.sqrt(X[:, 1])
    deviation = float(np.max(np.abs(predicted - exact) / exact))
    print(f"largest relative deviation from the exact law on the data: {deviation:.1e}")
    recovered = pikan.equivalent(law.expr, TRUTH) and deviation < 1e-3
    print(f"Kepler's third law recovered: {recovered}  ({time.perf_counter() - start:.0f} s)")
    if not recovered:
        raise SystemExit("kepler_third_law: the law found is not Kepler's third law")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
