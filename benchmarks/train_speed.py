"""Training step time: a KAN potential vs an MLP potential (HNN-style) of the same size.

System: 2D anisotropic oscillator, ``V(x, y)`` learned. One training step is the
acceleration loss ``mean(((a(q, v) - a_data) / s)^2)`` on a batch of 4096 states, where
``a = -dV/dq / m``, then the backward pass and an Adam step. For the MLP ``dV/dq`` comes
from autograd (``torch.func.grad``), so its backward is a double backward.

- **KAN**: ``pikan.compile`` of the spec with ``V`` learned by a ``[2, 8, 1]`` KAN (grid 5,
  cubic), stepped by hand (loss, backward, Adam). Its ``dV/dq`` is written out from the
  spline slopes (``KAN.value_and_input_gradient``), so the backward pass is first order;
  the loss and its gradients equal the double-backward route's (tests/test_compile.py).
- **MLP**: the same equations of motion (``pikan.model.mechanics.newtonian_acceleration``) with
  ``V`` a SiLU MLP ``2 -> h -> h -> 1`` of about the same number of trainable parameters.
- **pikan.fit**: the KAN model trained by :func:`pikan.fit` (plain Adam recipe), timed
  between consecutive steps with the callback: the raw step plus what the trainer adds
  (batch sampling, finite checks, the last-good-state snapshot, history).

The two hand-stepped models are timed interleaved (round robin, median per model) so that
machine load affects both alike; ``pikan.fit`` runs after them (median over its steps).

Run: ``python benchmarks/train_speed.py [--rounds 30] [--dtype float32] [--device cuda]
[--threads 1]``.
Prints a markdown table and writes ``benchmarks/results/train_speed.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

import pikan
from pikan.train import losses
from pikan.model import mechanics
from pikan.model.compile import compile as compile_spec
from pikan.train.memory import keep_freed_memory
from pikan.train.recipe import Recipe, Stage
from pikan.spec.system import Potential, System

TRUTH = System("anisotropic", coords=["x", "y"], params={"k": 1.0},
               modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + 2*y**2)/2")])
KAN_HIDDEN = [8]


def n_trainable(module: nn.Module) -> int:
    """Trainable parameters; symbolic-edge affines are excluded (unused until an edge is fixed)."""
    return sum(p.numel() for name, p in module.named_parameters()
               if p.requires_grad and "sym_affine" not in name)


class MLPPotential(nn.Module):
    """HNN-style baseline: an MLP potential, accelerations through the same mechanics code."""

    def __init__(self, target: int, masses: torch.Tensor) -> None:
        super().__init__()
        # params = 2h + h + h^2 + h + h + 1 = h^2 + 5h + 1
        h = round((-5 + math.sqrt(25 + 4 * (target - 1))) / 2)
        self.net = nn.Sequential(nn.Linear(2, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(),
                                 nn.Linear(h, 1))
        self.register_buffer("masses", masses)

    def acceleration(self, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return mechanics.newtonian_acceleration(self.masses, q, v,
                                                potential=lambda q_, v_: self.net(q_)[:, 0])


def make_step(model, q, v, a, scale):
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = losses.acceleration_loss(model, q, v, a, scale)
        loss.backward()
        optimizer.step()
        return loss

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fit-steps", type=int, default=40)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; on a loaded machine "
                             "1 avoids OpenMP spin-waits that distort small-op timings)")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's dynamic malloc thresholds as they are (pikan.fit "
                             "itself still keeps freed memory)")
    parser.add_argument("--quick", action="store_true", help="tiny run for CI smoke tests")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_speed.json"))
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.batch, args.fit_steps = 3, 256, 5
    if args.threads:
        torch.set_num_threads(args.threads)
    # as pikan.fit does on the CPU, for both models alike (see pikan.train.memory)
    kept = False if args.default_allocator else keep_freed_memory()
    dtype, device = getattr(torch, args.dtype), torch.device(args.device)
    torch.manual_seed(0)

    # data: enough trajectories that the training split holds a full batch
    n_traj = max(4, math.ceil(args.batch / 0.8 / 401) + 1)
    data = pikan.simulate(TRUTH, n_trajectories=n_traj, t=(0, 4), dt=0.01, seed=0)
    q, v, _ = data.states()
    a, _ = data.accelerations()
    q, v, a = (torch.as_tensor(x[: args.batch], dtype=dtype, device=device) for x in (q, v, a))
    scale = losses.coordinate_scale(a, center=False)

    spec = TRUTH.learn("V", hidden=KAN_HIDDEN, grid=5)
    kan_model = compile_spec(spec, dtype=dtype).to(device)
    kan_model.adapt_grids(q, v)
    target = n_trainable(kan_model)
    mlp_model = MLPPotential(target, kan_model.masses.detach().clone()).to(device=device,
                                                                          dtype=dtype)
    steps = {"KAN [2, 8, 1] (pikan.compile)": make_step(kan_model, q, v, a, scale),
             "MLP potential (HNN-style)": make_step(mlp_model, q, v, a, scale)}
    params = {"KAN [2, 8, 1] (pikan.compile)": target,
              "MLP potential (HNN-style)": n_trainable(mlp_model)}

    for step in steps.values():  # warm up (Adam's state, the allocator's free lists)
        for _ in range(10):
            step()
    sync(device)
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            sync(device)
            start = time.perf_counter()
            step()
            sync(device)
            times[name].append(time.perf_counter() - start)

    # the same KAN trained by pikan.fit: time between consecutive accepted steps
    stamps = []

    def stamp(model, row):
        sync(device)
        stamps.append(time.perf_counter())
        return False

    fit_model = compile_spec(spec, dtype=dtype)
    pikan_fit = getattr(pikan, "fit", None) or __import__("pikan.train.loop", fromlist=["fit"]).fit
    pikan_fit(fit_model, data, recipe=Recipe([Stage.fit(args.fit_steps, "adam")]),
              batch_size=args.batch, eval_every=10**6, val_fraction=0.2, device=device,
              dtype=dtype, progress=False, callback=stamp)
    fit_times = [b - a for a, b in itertools.pairwise(stamps)]
    # steps with a validation check (the last one) are slower; drop it
    fit_times = fit_times[:-1] or fit_times

    mlp = statistics.median(times["MLP potential (HNN-style)"])
    rows = []
    for name in steps:
        t = statistics.median(times[name])
        rows.append({"model": name, "params": params[name], "ms": 1e3 * t, "vs_mlp": t / mlp,
                     "timing": f"median of {args.rounds} interleaved rounds"})
    t_fit = statistics.median(fit_times)
    rows.append({"model": "KAN [2, 8, 1] inside pikan.fit", "params": target, "ms": 1e3 * t_fit,
                 "vs_mlp": t_fit / mlp, "timing": f"median of {len(fit_times)} fit steps"})

    allocator = "freed memory kept" if kept else "glibc default thresholds"
    where = (f"CPU ({torch.get_num_threads()} threads, {allocator})" if device.type == "cpu"
             else torch.cuda.get_device_name(device))
    print(f"\ntraining step (acceleration loss and its backward, Adam), 2D potential, batch "
          f"{args.batch}, {args.dtype}, {where}\n")
    print("| model | params | ms / step | x MLP time | timing |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['params']} | {r['ms']:.2f} | {r['vs_mlp']:.2f} | {r['timing']} |")
    ratio = rows[0]["vs_mlp"]
    print(f"\nKAN / MLP step time: {ratio:.2f} (target <= 2)")
    result = {
        "benchmark": "train_speed", "system": "anisotropic 2D", "kan_widths": [2, *KAN_HIDDEN, 1],
        "grid": 5, "batch": args.batch, "dtype": args.dtype, "device": str(device),
        "rounds": args.rounds, "threads": torch.get_num_threads(), "keep_freed_memory": kept,
        "torch": torch.__version__,
        "machine": platform.machine(), "rows": rows, "kan_over_mlp": ratio,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
