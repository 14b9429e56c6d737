"""The Lorentz force F = q (E + v x B) from noisy force measurements.

The story: a lab measures the force on test charges. Every measurement records the
charge ``q``, the electric field ``E``, the velocity ``v`` and the magnetic field ``B``
(ten numbers) and the force, with 1 % measurement noise. Nobody tells the regression which
inputs matter for which component: :func:`pikan.find_law` gets all ten for every component
and has to find the products ``q E_x``, ``q v_y B_z``, ... itself. The expected answer is

    F_x = q (E_x + v_y B_z - v_z B_y)
    F_y = q (E_y + v_z B_x - v_x B_z)
    F_z = q (E_z + v_x B_y - v_y B_x)

Run it::

    python examples/lorentz_force.py            # all three components, well under a minute
    python examples/lorentz_force.py --quick    # F_x only, a few seconds

How the products are found: ``find_law`` first tries sparse regression over libraries of
products of the inputs (and, for static data, rational functions and power laws); a KAN
surrogate is fitted only when none of those explains the data within the tolerance. Here
the product library already does, so no KAN is needed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pikan

NAMES = ["q", "E_x", "E_y", "E_z", "v_x", "v_y", "v_z", "B_x", "B_y", "B_z"]
TRUTH = {
    "F_x": "q*(E_x + v_y*B_z - v_z*B_y)",
    "F_y": "q*(E_y + v_z*B_x - v_x*B_z)",
    "F_z": "q*(E_z + v_x*B_y - v_y*B_x)",
}


def measurements(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random measurements: inputs (n, 10) in NAMES order, forces (n, 3) with noise.

    Charges in [-2, 2], field and velocity components in [-1, 1]; the noise on each force
    component has standard deviation ``noise`` times that component's spread.
    """
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, len(NAMES)))
    X[:, 0] *= 2.0
    q, E, v, B = X[:, :1], X[:, 1:4], X[:, 4:7], X[:, 7:10]
    F = q * (E + np.cross(v, B))
    F += noise * F.std(axis=0) * rng.standard_normal(F.shape)
    return X, F


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="F_x only (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()

    noise = 0.01
    X, F = measurements(400 if args.quick else 1000, noise, args.seed)
    print(f"{len(X)} measurements of (q, E, v, B) -> F with {noise:.0%} noise")
    components = ["F_x"] if args.quick else ["F_x", "F_y", "F_z"]
    all_recovered = True
    for k, name in enumerate(components):
        # Tolerance above the noise level: the true law leaves a relative error of about
        # `noise`; a law that explains the data better than that would be fitting noise.
        law = pikan.find_law(X, F[:, k], names=NAMES, output=name, seed=args.seed,
                             tolerance=2 * noise)
        # A force has no free additive constant: the one fitted to the noise must be tiny.
        constant = float(law.expr.as_coeff_Add()[0])
        recovered = (pikan.equivalent(law.expr, TRUTH[name])
                     and abs(constant) < 3 * noise * float(np.std(F[:, k])))
        all_recovered &= recovered
        print(f"\nfound:  {law}   (relative error {law.error:.3f})")
        print(f"truth:  {name} = {TRUTH[name]}   [{'recovered' if recovered else 'NOT recovered'}]")
    print(f"\nLorentz force recovered: {all_recovered}  ({time.perf_counter() - start:.0f} s)")
    if not all_recovered:
        raise SystemExit("lorentz_force: a component was not recovered")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
