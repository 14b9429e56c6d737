"""Gray box: gravity known, air drag learned.

The story: we film balls thrown through the air (positions with 0.1 % noise). Gravity is not in question, so the spec
states it as a law, ``V = g y`` per unit mass. The air drag is what we want to know. We
only assume it is friction that depends on the speed ``s = |v|``: a Rayleigh dissipation
function ``D(s) >= 0`` whose force is ``-dD/dv``, learned by a KAN. Training fits only the
unknown part around the known one, and :func:`pikan.discover` reads it as a formula. The
simulated balls feel quadratic (Newton) drag ``F = -c |v| v`` with c = 0.05 per unit mass,
whose dissipation function is

    D(s) = c s**3 / 3 = 0.0166667 s**3.

Run it::

    python examples/gray_box.py                    # well under a minute
    python examples/gray_box.py --quick            # a smoke run of seconds
    python examples/gray_box.py --out runs/drag    # keep the run directory and plots
"""

from __future__ import annotations

import time

import numpy as np
import sympy

import pikan
from pikan import Dissipation, Potential, System

import _story  # examples/_story: command line, run directory, report

TRUTH = System(
    "projectile",
    coords=["x", "y"],
    masses=1.0,
    params={"g": 9.81, "c": 0.05},
    modules=[Potential("gravity", inputs=["y"], law="g*y"),
             Dissipation("drag", inputs={"s": "sqrt(v_x**2 + v_y**2)"}, law="c*s**3/3")],
)
TRUE_DRAG = "0.05*s**3/3"


def throw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ball thrown from the origin at 5..20 m/s, 17..75 degrees above the horizontal."""
    speed, angle = rng.uniform(5.0, 20.0), rng.uniform(0.3, 1.3)
    return np.zeros(2), speed * np.array([np.cos(angle), np.sin(angle)])


def main(argv=None) -> int:
    args = _story.arguments(__doc__, argv)
    start = time.perf_counter()

    # The gray-box spec: gravity keeps its law, the drag is learned by one KAN layer.
    spec = TRUTH.learn("drag", hidden=[])
    print(f"known: {spec.module('gravity').name} = {spec.module('gravity').law};  "
          f"learned: {list(spec.learned)}")
    n, steps, refine = (4, 150, 50) if args.quick else (10, None, 200)
    # Filmed positions carry noise (0.1 %; the quick run uses clean data). Accelerations
    # are estimated from them by Savitzky-Golay filtering; without this step pikan.fit
    # would choose rollout matching on noisy data, which is more robust but takes minutes.
    noise = 0.0 if args.quick else 1e-3
    data = pikan.simulate(TRUTH, n_trajectories=n, t=(0.0, 3.0), dt=0.02, seed=args.seed,
                          initial=throw, noise=noise)
    if noise:
        data = data.with_derivatives()
    print(f"data: {data}")

    with _story.discovery(args, "gray_box", spec, data, steps, refine) as run:
        law = run.laws["drag"]
        recovered = _story.compare(law, TRUE_DRAG, "D(s)")
        s = sympy.Symbol("s")
        cubic = law.expr.as_poly(s) if law.expr.is_polynomial(s) else None
        if cubic is not None and cubic.degree() == 3:
            c = 3 * float(cubic.coeff_monomial(s**3))
            print(f"        i.e. quadratic drag F = -c |v| v with c = {c:.4f} (truth 0.05)")
    print(f"\ndrag law recovered: {recovered}  ({time.perf_counter() - start:.0f} s)")
    if not recovered:
        raise SystemExit("gray_box: the drag law found is not c s^3/3")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
