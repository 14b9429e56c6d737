"""Simulation throughput: batched RK4 of a KAN-potential model vs a hand-written numpy field.

1,000 trajectories x 1,000 RK4 steps of a 2-D system whose potential is a ``[2, 8, 1]``
grid-5 KAN (forces by autograd through the KAN), with ``pikan.data.integrate.rk4`` on CPU,
next to the same RK4 loop over a hand-written numpy vector field of the anisotropic
oscillator (``a = -(x, 2y)``), which is the floor for any learned model. Both integrate
the whole batch at once. Reports trajectory-steps per second.

Run: ``python benchmarks/simulate_speed.py [--n 1000] [--steps 1000] [--quick]``; prints a
markdown table and writes ``benchmarks/results/simulate_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import pikan
from pikan.data.integrate import rk4


def numpy_rk4(y0: np.ndarray, dt: float, steps: int) -> np.ndarray:
    """RK4 of the anisotropic oscillator, batched over rows of ``y0`` (batch, 4)."""
    stiffness = np.array([1.0, 2.0])

    def field(y):
        return np.concatenate([y[:, 2:], -stiffness * y[:, :2]], axis=1)

    y = y0.copy()
    for _ in range(steps):
        k1 = field(y)
        k2 = field(y + 0.5 * dt * k1)
        k3 = field(y + 0.5 * dt * k2)
        k4 = field(y + dt * k3)
        y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def _fit_potential(model, steps: int = 300) -> None:
    """Fit the KAN to V = (x^2 + 2 y^2)/2 so that trajectories stay bounded (a random KAN
    potential can fling them off its grid)."""
    kan = model.blocks["V"].kan
    g = torch.Generator().manual_seed(0)
    q = 3 * torch.rand(2000, 2, generator=g, dtype=torch.float64) - 1.5
    kan.update_grid(q, adaptivity=0.0)
    target = 0.5 * (q[:, :1] ** 2 + 2 * q[:, 1:] ** 2)
    opt = torch.optim.Adam(kan.parameters(), lr=2e-2)
    for _ in range(steps):
        opt.zero_grad()
        ((kan(q) - target) ** 2).mean().backward()
        opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="trajectories")
    parser.add_argument("--steps", type=int, default=1000, help="RK4 steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny run for CI smoke tests")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "simulate_speed.json"))
    args = parser.parse_args()
    if args.quick:
        args.n, args.steps = 50, 20
    torch.set_num_threads(args.threads)
    spec = pikan.System("aniso", coords=["x", "y"],
                        modules=[pikan.Potential("V", inputs=["x", "y"], hidden=[8], grid=5)])
    model = pikan.compile(spec)
    _fit_potential(model)
    rng = np.random.default_rng(0)
    y0 = rng.uniform(-1, 1, size=(args.n, 4))
    dt = 0.01
    times = torch.arange(args.steps + 1, dtype=torch.float64) * dt

    start = time.perf_counter()
    with torch.no_grad():
        path = rk4(lambda t, y: model.vector_field(t, y).detach(), torch.tensor(y0), times)
    kan_s = time.perf_counter() - start
    assert torch.isfinite(path).all()

    start = time.perf_counter()
    numpy_rk4(y0, dt, args.steps)
    numpy_s = time.perf_counter() - start

    work = args.n * args.steps
    rows = [{"integrator": "pikan rk4, [2, 8, 1] KAN potential", "seconds": kan_s,
             "traj_steps_per_s": work / kan_s},
            {"integrator": "numpy rk4, hand-written field", "seconds": numpy_s,
             "traj_steps_per_s": work / numpy_s}]
    print(f"\nRK4, {args.n} trajectories x {args.steps} steps, 2-D, float64, CPU "
          f"({args.threads} thread)\n")
    print("| integrator | seconds | trajectory-steps / s | ratio to numpy |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['integrator']} | {r['seconds']:.2f} | {r['traj_steps_per_s']:.3g} | "
              f"{r['seconds'] / numpy_s:.1f}x |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"benchmark": "simulate_speed", "n": args.n, "steps": args.steps,
                               "rows": rows}, indent=1))
    tmp.replace(out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
