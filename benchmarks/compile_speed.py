"""Overhead of the compiled model over the same physics written by hand.

A 2-D system with a ``[2, 8, 1]`` grid-5 KAN potential, batch 4096, float64 on CPU: one
training step of the force loss ``|a(q) - a_target|^2`` (forward, force by autograd with
``create_graph``, backward through the force). "compiled" is ``pikan.compile(spec)``;
"by hand" calls the very same KAN directly and takes ``torch.autograd.grad`` by hand.
Interleaved rounds, median per variant.

Run: ``python benchmarks/compile_speed.py [--rounds 30] [--quick]``. Prints a markdown
table and writes ``benchmarks/results/compile_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from pikan.model.compile import compile
from pikan.spec.system import Potential, System


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--quick", action="store_true", help="tiny run for CI smoke tests")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "compile_speed.json"))
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.batch = 3, 128
    torch.manual_seed(0)
    spec = System("aniso", coords=["x", "y"],
                  modules=[Potential("V", inputs=["x", "y"], hidden=[8], grid=5)])
    model = compile(spec)
    kan = model.blocks["V"].kan
    q = 2 * torch.rand(args.batch, 2, dtype=torch.float64) - 1
    v = torch.zeros_like(q)
    target = -q * torch.tensor([1.0, 2.0], dtype=torch.float64)

    def compiled_step():
        model.zero_grad(set_to_none=True)
        ((model.acceleration(q, v) - target) ** 2).mean().backward()

    def by_hand_step():
        kan.zero_grad(set_to_none=True)
        qg = q.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(kan(qg).sum(), qg, create_graph=True)
        ((-grad - target) ** 2).mean().backward()

    steps = {"pikan.compile": compiled_step, "by hand": by_hand_step}
    for step in steps.values():
        for _ in range(3):
            step()
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items()}
    ratio = medians["pikan.compile"] / medians["by hand"]
    print(f"\nforce-loss training step, [2, 8, 1] KAN potential, batch {args.batch}, float64, "
          f"CPU ({torch.get_num_threads()} threads), median of {args.rounds} interleaved rounds\n")
    print("| variant | ms / step | ratio to by hand |")
    print("|---|---|---|")
    for name, t in medians.items():
        print(f"| {name} | {1e3 * t:.2f} | {t / medians['by hand']:.2f} |")
    print(f"\ncompiled overhead: {ratio:.2f}x (target <= 1.3x)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"benchmark": "compile_speed", "batch": args.batch,
                               "rounds": args.rounds, "ms": {k: 1e3 * t for k, t in medians.items()},
                               "overhead": ratio}, indent=1))
    tmp.replace(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
