"""GPU figures: KAN throughput vs pykan, a spring-chain training step, peak memory.

On a CUDA machine (``--device cuda``, the default when one is present):

1. forward+backward throughput of ``KAN([8, 64, 64, 1], grid=5)`` at batch 65,536 (float32)
   for pikan and for pykan 0.2.8 (``MultKAN`` in ``speed()`` mode) on the same GPU,
   with peak GPU memory of each;
2. one training step (acceleration loss with double backward, float32) of a spring chain
   of N = 1,000 masses whose shared bond potential is a KAN, with 16 states per batch,
   and its peak GPU memory.

Runs in a few minutes; prints a markdown table and writes ``benchmarks/results/gpu.json``.
``--quick`` shrinks everything so that CI can smoke-test the script on a CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import pikan
from pikan.kan import KAN


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(step, device, rounds: int) -> tuple[float, float | None]:
    """Median seconds per call and peak memory (bytes, CUDA only) of ``step``."""
    for _ in range(3):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return statistics.median(times), peak


def kan_throughput(device, batch: int, rounds: int) -> list[dict]:
    widths = [8, 64, 64, 1]
    x = torch.randn(batch, widths[0], device=device)
    rows = []
    models = {"pikan": KAN(widths, grid=5, seed=0).float().to(device)}
    try:
        from kan import MultKAN

        pykan = MultKAN(width=list(widths), grid=5, k=3, seed=0, auto_save=False, device=str(device))
        pykan.speed()
        models["pykan"] = pykan
    except ImportError:
        print("pykan not installed (pip install -e .[bench]); skipping it")
    for name, model in models.items():
        def step(model=model):
            model.zero_grad(set_to_none=True)
            model(x).sum().backward()

        seconds, peak = _timed(step, device, rounds)
        rows.append({"case": f"KAN{widths} fwd+bwd, batch {batch}", "impl": name,
                     "ms": 1e3 * seconds, "samples_per_s": batch / seconds,
                     "peak_MB": peak / 2**20 if peak is not None else None})
    return rows


def chain_step(device, n_masses: int, batch: int, rounds: int) -> dict:
    coords = [f"x{i}" for i in range(n_masses)]
    spec = pikan.System("chain", coords=coords,
                        modules=[pikan.Potential("bond", inputs=["d"], hidden=[4], grid=5,
                                                 bindings=pikan.chain_pairs(coords, name="d"))])
    model = pikan.compile(spec, dtype=torch.float32).to(device)
    g = torch.Generator().manual_seed(0)
    q = (torch.arange(n_masses, dtype=torch.float32) + 0.1 * torch.randn(batch, n_masses, generator=g)).to(device)
    v = torch.zeros_like(q)
    target = torch.zeros_like(q)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        ((model.acceleration(q, v) - target) ** 2).mean().backward()
        opt.step()

    seconds, peak = _timed(step, device, rounds)
    return {"case": f"spring chain N={n_masses}, batch {batch}, train step", "impl": "pikan",
            "ms": 1e3 * seconds, "samples_per_s": batch / seconds,
            "peak_MB": peak / 2**20 if peak is not None else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke test)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    batch, masses, rounds = (65536, 1000, args.rounds) if not args.quick else (512, 20, 2)
    rows = kan_throughput(device, batch, rounds)
    rows.append(chain_step(device, masses, 16, rounds))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"\n{time.strftime('%Y-%m-%d')}, device: {name}, torch {torch.__version__}\n")
    print("| case | implementation | ms | samples/s | peak GPU MB |")
    print("|---|---|---|---|---|")
    for r in rows:
        peak = f"{r['peak_MB']:.0f}" if r["peak_MB"] is not None else "-"
        print(f"| {r['case']} | {r['impl']} | {r['ms']:.2f} | {r['samples_per_s']:.3g} | {peak} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"benchmark": "gpu", "device": name, "date": time.strftime("%Y-%m-%d"),
                               "quick": args.quick, "rows": rows}, indent=1))
    tmp.replace(out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
