"""Tests for pikan/train/memory.py: keeping freed memory in the heap (glibc), an explicit
opt-in that fit never applies on its own.

Each test runs in a fresh interpreter: the malloc setting belongs to the whole process and
cannot be undone, so it must not leak into (or from) the other tests of the session.
"""

import os
import subprocess
import sys
import textwrap

import pytest

# 40 MB blocks: over glibc's largest dynamic mmap threshold (32 MiB on 64-bit), so under the
# default every one is mmap-ed afresh (~10,000 fresh pages each), while kept memory reuses
# the same heap pages
CHURN = """
import resource
import torch

def churn_faults():
    def churn():
        for _ in range(10):
            block = torch.ones(5 << 20, dtype=torch.float64)  # 40 MB
            del block
    churn()  # grows the heap once (when kept)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    churn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""


def run(script: str, **env) -> str:
    """Run ``script`` (after :data:`CHURN`) in a fresh interpreter; its stdout."""
    done = subprocess.run([sys.executable, "-c", CHURN + textwrap.dedent(script)],
                          env=dict(os.environ, OMP_NUM_THREADS="1", **env),
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_opt_out_by_environment():
    out = run("""
        from pikan.train import memory
        print(memory.keep_freed_memory())
        """, PIKAN_KEEP_FREED_MEMORY="0")
    assert out.split() == ["False"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_fit_leaves_malloc_and_threads_alone_and_the_opt_in_keeps_freed_memory():
    """A CPU fit changes neither glibc's thresholds nor torch's thread counts; after
    keep_freed_memory() a loop allocating and freeing 40 MB tensors reuses its heap pages."""
    out = run("""
        import torch
        from pikan.data.integrate import simulate
        from pikan.model.compile import compile
        from pikan.spec.system import Potential, System
        from pikan.train import memory
        from pikan.train.loop import fit

        torch.set_num_threads(1)
        torch.set_num_interop_threads(1)
        truth = System("harmonic", coords=["x"], modules=[Potential("V", ["x"], law="x**2/2")])
        data = simulate(truth, n_trajectories=2, t=(0, 1), dt=0.05, seed=0)
        fit(compile(truth.learn("V", hidden=[], grid=4)), data, recipe="plain", steps=4,
            device="cpu", progress=False)
        print(torch.get_num_threads(), torch.get_num_interop_threads())
        print(churn_faults())
        print(memory.keep_freed_memory(), memory.keep_freed_memory())
        print(churn_faults())
        """)
    threads, default, kept, after = out.strip().splitlines()
    assert threads.split() == ["1", "1"]
    if kept.split() != ["True", "True"]:
        pytest.skip("not a glibc system")
    print(f"fresh pages for 10 x 40 MB: {default} after a fit, {after} with freed memory kept")
    assert int(default) > 20_000  # glibc's default: fit did not change it
    assert int(after) < 500
