"""Tests for pikan/memory.py: keeping freed memory in the heap (glibc)."""

import resource
import sys

import pytest
import torch

from pikan.train import memory


def test_opt_out_by_environment(monkeypatch):
    monkeypatch.setattr(memory, "_applied", False)
    monkeypatch.setenv("PIKAN_KEEP_FREED_MEMORY", "0")
    assert memory.keep_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_repeated_large_allocations_touch_no_fresh_pages():
    """Once kept, a loop allocating and freeing 40 MB tensors reuses the same heap pages
    (glibc's default serves blocks over 32 MB by mmap: ~100,000 fresh pages for this loop)."""
    applied = memory.keep_freed_memory()
    if not applied:
        pytest.skip("not a glibc system")
    assert memory.keep_freed_memory() is True  # idempotent

    def churn():
        for _ in range(10):
            block = torch.ones(5 << 20, dtype=torch.float64)  # 40 MB
            del block

    churn()  # grows the heap once
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    churn()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 500, faults
