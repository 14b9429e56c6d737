"""Conserved quantities: read energy and angular momentum off trajectories, and nothing off
a damped system.

The story: we have orbits of a particle in an anharmonic central trap,
``V = 0.7 r**2 + 0.23 r**4`` (nobody tells pikan), and want to know what stays constant
along them. :func:`pikan.find_conserved` searches for closed-form functions ``Q(q, v)``
that keep their value along every trajectory while differing between trajectories (no
derivative of the data is taken), keeps only those that are not functions of each other,
and judges each on held-out trajectories. For a central force the answer is the energy
``(v_x**2 + v_y**2)/2 + V`` and the angular momentum ``x v_y - y v_x``. The same call on a
damped oscillator says that nothing is conserved.

Run it::

    python examples/conserved_quantities.py            # a few seconds
    python examples/conserved_quantities.py --quick    # fewer orbits
"""

from __future__ import annotations

import time

import sympy

import pikan

import _story  # examples/_story: command line, run directory, report

ENERGY = "(v_x**2 + v_y**2)/2 + 0.7*(x**2 + y**2) + 0.23*(x**2 + y**2)**2"
ANGULAR_MOMENTUM = "x*v_y - y*v_x"


def same_quantity(law, truth: str) -> bool:
    """Whether a conserved quantity equals ``truth`` up to a factor (any multiple of a
    conserved quantity is conserved)."""
    found = sympy.expand(law.in_state).as_coefficients_dict()
    reference = sympy.expand(sympy.sympify(truth)).as_coefficients_dict()
    anchor = next(iter(reference))
    if anchor not in found:
        return False
    scale = float(found[anchor]) / float(reference[anchor])
    return pikan.equivalent(sympy.expand(law.in_state) / scale, truth, rtol=1e-3)


def main(argv=None) -> int:
    args = _story.arguments(__doc__, argv)
    start = time.perf_counter()
    n = 8 if args.quick else 16
    trap = pikan.System("central_trap", coords=["x", "y"], modules=[
        pikan.Potential("V", inputs={"r2": "x**2 + y**2"}, law="0.7*r2 + 0.23*r2**2")])
    data = pikan.simulate(trap, n_trajectories=n, t=(0, 10), dt=0.02, seed=args.seed)
    print(f"data: {data}\n")
    laws = pikan.find_conserved(data, max_quantities=3, seed=args.seed)
    print(laws)
    for law in laws.values():
        print(f"  {law.module}: {law.verdict_reason}")
    energy = any(same_quantity(law, ENERGY) for law in laws.values())
    momentum = any(same_quantity(law, ANGULAR_MOMENTUM) for law in laws.values())
    print(f"\ntruth:  E = {ENERGY}   [{'recovered' if energy else 'NOT recovered'}]")
    print(f"truth:  L = {ANGULAR_MOMENTUM}   [{'recovered' if momentum else 'NOT recovered'}]")

    damped = pikan.System("damped", coords=["x"], modules=[
        pikan.Potential("V", inputs=["x"], law="0.8*x**2/2"),
        pikan.Dissipation("D", inputs=["v_x"], law="0.1*v_x**2/2")])
    nothing = pikan.find_conserved(pikan.simulate(damped, n_trajectories=n, t=(0, 10),
                                                  dt=0.02, seed=args.seed))
    print(f"\ndamped oscillator: {nothing}")
    ok = energy and momentum and len(nothing) == 0
    print(f"\nenergy and angular momentum recovered: {ok}  "
          f"({time.perf_counter() - start:.0f} s)")
    if not ok:
        raise SystemExit("conserved_quantities: the expected quantities were not found")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
