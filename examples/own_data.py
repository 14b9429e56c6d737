"""Your own data: load a CSV file, write a spec, discover.

The story: a lab recorded a glider on an air track, held near the middle by a spring of
unknown law, as a CSV file with one row per camera frame::

    id,t,x
    0,0.0000,4.104285e-01
    0,0.0100,4.053711e-01
    ...

(``id`` numbers the recordings, ``t`` is in seconds, ``x`` in metres, measured to about
0.1 % of the swing). Only positions were measured. The glider's mass (0.5 kg) is known.
Here we first *make* such a file with :func:`pikan.simulate` (in a temporary folder, or
at ``--csv PATH``), so the example runs anywhere; with real data, start at step 1.

1. Load it: :meth:`pikan.Trajectories.from_csv` names the time, coordinate and id columns;
   :meth:`~pikan.Trajectories.with_derivatives` estimates velocities and accelerations from
   the positions (Savitzky-Golay filtering). An HDF5 file in pikan's schema loads with
   ``pikan.Trajectories.load(path)`` instead.
2. Write a spec: one coordinate ``x``, the known mass, and a potential ``V(x)`` to learn,
   assumed even (the spring pulls back the same either way).
3. Discover: :func:`pikan.discover` trains the model, extracts ``V`` as a formula and
   re-simulates the recordings with it. The run directory keeps the data in pikan's HDF5
   schema (``data.h5``; ``pikan.Trajectories.load`` reads it, as does the ``pikan``
   command).

The simulated spring stores ``V(x) = k x**2/2 + b x**4/4`` with k = 2 N/m, b = 1 N/m**3,
that is ``x**2 + x**4/4``.

Run it::

    python examples/own_data.py                # about a minute
    python examples/own_data.py --quick        # a smoke run of seconds
    python examples/own_data.py --out runs/lab # keep the run directory
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

import pikan
from pikan import Potential, System
from pikan.constraints import Even

import _story  # examples/_story: command line, run directory, report

TRUE_V = "x**2 + x**4/4"


def write_lab_csv(path: Path, n_recordings: int, duration: float, seed: int) -> None:
    """Simulate the glider and write what a lab would have: id, t, x with 0.1 % noise."""
    hidden_truth = System("air_track", coords=["x"], masses=0.5, params={"k": 2.0, "b": 1.0},
                          modules=[Potential("V", inputs=["x"], law="k*x**2/2 + b*x**4/4")])

    def release(rng):  # pulled out by up to 1.5 m, pushed with up to 1 m/s
        return np.array([rng.uniform(-1.5, 1.5)]), np.array([rng.uniform(-1.0, 1.0)])

    data = pikan.simulate(hidden_truth, n_trajectories=n_recordings, t=(0.0, duration),
                          dt=0.01, seed=seed, initial=release, noise=1e-3)
    table = np.vstack([np.column_stack([np.full(len(r.t), i), r.t, r.q[:, 0]])
                       for i, r in enumerate(data)])
    np.savetxt(path, table, delimiter=",", header="id,t,x", comments="",
               fmt=["%d", "%.4f", "%.6e"])


def main(argv=None) -> int:
    args = _story.arguments(__doc__, argv, extra=[("--csv", {
        "default": None, "help": "where to write the example CSV (default: the temporary folder)"})])
    start = time.perf_counter()

    with tempfile.TemporaryDirectory() as scratch:
        csv = Path(args.csv) if args.csv else Path(scratch) / "air_track.csv"
        n, duration = (4, 5.0) if args.quick else (8, 10.0)
        write_lab_csv(csv, n, duration, args.seed)
        print(f"lab data written to {csv}:")
        print("".join(csv.open().readlines()[:3]), end="    ...\n")

        # 1. Load the file and estimate what was not measured.
        data = pikan.Trajectories.from_csv(csv, time="t", coords=["x"], trajectory="id",
                                           masses=0.5)
        data = data.with_derivatives()
        print(f"loaded: {data}")

        # 2. The spec: what we know (one coordinate, the mass) and what we want (V).
        spec = System("air_track", coords=["x"], masses=0.5,
                      modules=[Potential("V", inputs=["x"], hidden=[],
                                         constraints=[Even("x")])])

        # 3. Discover.
        out = Path(args.out) if args.out else Path(scratch) / "run"
        run = _story.discover(spec, data, out, args, steps=400 if args.quick else None,
                              refine_steps=50 if args.quick else 200)
        print()
        recovered = _story.compare(run.laws["V"], TRUE_V, "V(x)")
        _story.check(run)
        if args.out:  # data.h5 there is the loaded data in pikan's HDF5 schema
            print(f"run directory: {out} (laws, report, plots, data.h5)")
    print(f"\nspring law recovered: {recovered}  ({time.perf_counter() - start:.0f} s)")
    if not recovered:
        raise SystemExit("own_data: the potential found is not x^2 + x^4/4")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
