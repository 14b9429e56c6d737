"""Shared by the law tests: one BLAS thread for every module of this folder."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Small least-squares problems: extra BLAS threads only add contention on a loaded
    machine (a 1000x200 QR took 1.7 s with two threads, 20 ms with one)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only speed depends on it
        yield
        return
    with threadpool_limits(1):
        yield
