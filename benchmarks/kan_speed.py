"""KAN forward+backward speed and memory: pikan vs pykan 0.2.8 vs a same-size MLP.

Shape: ``KAN([8, 64, 64, 1], grid=5, order=3)``, batch 2048, float32, CPU. The MLP has the
same number of trainable parameters (SiLU, widths 8 -> h -> h -> 1). pykan runs in its
``speed()`` mode (no activation caching, no symbolic branch), its fastest configuration.
Timings are interleaved (round-robin over the models, many rounds, median per model) so
that machine load affects every model alike. Memory is the total size of the tensors
autograd saves for the backward pass (the activation memory that grows with the batch),
measured with ``torch.autograd.graph.saved_tensors_hooks``.

All models run in one process with the same allocator setting: freed memory kept in the
heap (:func:`pikan.train.memory.keep_freed_memory`, which :func:`pikan.fit` applies on the CPU);
``--default-allocator`` leaves glibc's dynamic thresholds, under which the KAN's
multi-megabyte basis tensors intermittently land on fresh pages and its time swings.

Run: ``pip install -e .[bench] && python benchmarks/kan_speed.py [--rounds 30] [--threads 1]
[--compile] [--default-allocator]``.
Prints a markdown table and writes ``benchmarks/results/kan_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from pikan.kan.network import KAN
from pikan.train.memory import keep_freed_memory

WIDTHS = [8, 64, 64, 1]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters()
               if p.requires_grad and "sym_affine" not in name)


def matched_mlp(target: int) -> nn.Sequential:
    """An 8 -> h -> h -> 1 SiLU MLP with about ``target`` parameters."""
    # params = 8h + h + h^2 + h + h + 1 = h^2 + 11h + 1
    h = int((-11 + math.sqrt(121 + 4 * (target - 1))) / 2)
    return nn.Sequential(nn.Linear(8, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 1))


def saved_bytes(model, x) -> int:
    """Bytes of distinct tensors saved for backward by one forward pass."""
    seen = {}

    def pack(t):
        try:
            key = t.untyped_storage().data_ptr()
            seen[key] = t.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x).sum()
    return sum(seen.values())


def step(model, x):
    model.zero_grad(set_to_none=True)
    model(x).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(pikan)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--default-allocator", action="store_true",
                        help="leave glibc's dynamic malloc thresholds as they are (see "
                             "pikan.train.memory; by default freed memory is kept, as pikan.fit does)")
    parser.add_argument("--quick", action="store_true", help="tiny run for CI smoke tests")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "kan_speed.json"))
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.batch = 3, 256
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = False if args.default_allocator else keep_freed_memory()
    torch.manual_seed(0)
    dtype = torch.float32
    x = torch.randn(args.batch, WIDTHS[0], dtype=dtype)

    models = {}
    models["pikan"] = KAN(WIDTHS, grid=5, order=3, seed=0).to(dtype)
    target = n_params(models["pikan"])
    models["mlp"] = matched_mlp(target).to(dtype)
    try:
        from kan import MultKAN

        pykan = MultKAN(width=list(WIDTHS), grid=5, k=3, seed=0, auto_save=False, device="cpu")
        pykan.speed()
        models["pykan"] = pykan.to(dtype)
    except ImportError:
        print("pykan is not installed (pip install -e .[bench]); skipping it")
    if args.compile:
        models["pikan (torch.compile)"] = torch.compile(models["pikan"])

    for model in models.values():  # warm up (and compile)
        for _ in range(3):
            step(model, x)
    times = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = time.perf_counter()
            step(model, x)
            times[name].append(time.perf_counter() - start)

    mlp_time = statistics.median(times["mlp"])
    pykan_time = statistics.median(times["pykan"]) if "pykan" in times else None
    rows = []
    for name, model in models.items():
        t = statistics.median(times[name])
        memory = saved_bytes(model, x) if "compile" not in name else None
        rows.append({
            "model": name,
            "params": n_params(model),
            "ms": 1e3 * t,
            "vs_mlp": t / mlp_time,
            "pykan_over_this": (pykan_time / t) if pykan_time else None,
            "saved_MB": memory / 2**20 if memory is not None else None,
        })

    allocator = "freed memory kept" if kept else "glibc default thresholds"
    print(f"\nforward+backward, KAN{WIDTHS} grid=5 order=3, batch {args.batch}, float32, "
          f"CPU ({torch.get_num_threads()} threads, {allocator}), median of {args.rounds} "
          "interleaved rounds\n")
    print("| model | params | ms / step | x MLP time | pykan time / this | saved for backward (MB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        speedup = f"{r['pykan_over_this']:.1f}" if r["pykan_over_this"] else "-"
        memory = f"{r['saved_MB']:.1f}" if r["saved_MB"] is not None else "-"
        print(f"| {r['model']} | {r['params']} | {r['ms']:.2f} | {r['vs_mlp']:.2f} | {speedup} | {memory} |")
    result = {
        "benchmark": "kan_speed", "widths": WIDTHS, "batch": args.batch, "dtype": "float32",
        "rounds": args.rounds, "threads": torch.get_num_threads(), "keep_freed_memory": kept,
        "torch": torch.__version__,
        "machine": platform.machine(), "rows": rows,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
