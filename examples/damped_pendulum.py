"""Damped pendulum: the conservative and the dissipative part separated.

The story: a pendulum swings in air and slowly comes to rest. Its motion mixes two
physics, gravity (a potential energy) and friction (energy lost). The spec says which is
which, but not their laws: a ``Potential`` ``V(theta)`` enters the equations of motion as
``-dV/dtheta`` and a Rayleigh ``Dissipation`` ``D(v_theta) >= 0`` as ``-dD/dv_theta``, each
learned by its own KAN. Because one depends on the angle and the other on the angular
velocity, they cannot trade places, and :func:`pikan.discover` returns both laws apart:

    V(theta)   = m g l (1 - cos theta)    (here 9.81 (1 - cos theta), up to a constant)
    D(v_theta) = c v_theta**2 / 2         (here 0.15 v_theta**2: linear friction c = 0.3)

Run it::

    python examples/damped_pendulum.py                   # about a minute
    python examples/damped_pendulum.py --quick           # a smoke run of seconds
    python examples/damped_pendulum.py --out runs/pend   # keep the run directory and plots
"""

from __future__ import annotations

import time

import numpy as np

import pikan
from pikan import Dissipation, Potential, System
from pikan.constraints import Even

import _story  # examples/_story: command line, run directory, report

TRUTH = System(
    "damped_pendulum",
    coords=["theta"],                      # angle from the downward vertical
    masses=1.0,                            # moment of inertia m l**2
    params={"m": 1.0, "g": 9.81, "l": 1.0, "c": 0.3},
    modules=[Potential("V", inputs=["theta"], law="m*g*l*(1 - cos(theta))"),
             Dissipation("D", inputs=["v_theta"], law="c*v_theta**2/2")],
)
TRUE_LAWS = {"V": "9.81*(1 - cos(theta))", "D": "0.15*v_theta**2"}


def initial(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Swings of up to 2 rad released with an angular velocity of up to 3 rad/s."""
    return np.array([rng.uniform(-2.0, 2.0)]), np.array([rng.uniform(-3.0, 3.0)])


def main(argv=None) -> int:
    args = _story.arguments(__doc__, argv)
    start = time.perf_counter()

    # The learning spec: the same system with both laws removed; one KAN layer each, and
    # both functions even (the pendulum is symmetric, friction does not care about sign).
    spec = (TRUTH.learn("V", hidden=[], constraints=[Even("theta")])
                 .learn("D", hidden=[], constraints=[Even("v_theta")]))
    if args.quick:
        n, t_end, steps, refine = 4, 4.0, 150, 50
    else:
        n, t_end, steps, refine = 10, 8.0, None, 200
    data = pikan.simulate(TRUTH, n_trajectories=n, t=(0.0, t_end), dt=0.02, seed=args.seed,
                          initial=initial)
    print(f"data: {data}")

    with _story.discovery(args, "damped_pendulum", spec, data, steps, refine) as run:
        recovered = {name: _story.compare(run.laws[name], TRUE_LAWS[name], name)
                     for name in ("V", "D")}
    ok = all(recovered.values())
    print(f"\ngravity and friction recovered apart: {ok}  ({time.perf_counter() - start:.0f} s)")
    if not ok:
        raise SystemExit("damped_pendulum: a law was not recovered: "
                         + ", ".join(k for k, v in recovered.items() if not v))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
