"""Process memory settings for training on the CPU: an explicit, process-wide opt-in.

PyTorch allocates CPU tensors with ``malloc``. With glibc's default, dynamic thresholds a
block of a few megabytes (a KAN layer's dense basis for a batch) is sometimes served by
``mmap`` and sometimes from the heap, and freed heap memory is handed back to the system
when enough of it piles up at the top. Either way the next step touches fresh pages: a
KAN training step was measured here at 1,700 to 4,700 page faults, against about none for an
MLP of the same size, and its time swung by up to a factor of two from run to run.

:func:`keep_freed_memory` serves such blocks from the heap and keeps freed memory there for
reuse, so a training loop's steady state touches no fresh pages. The process then holds on
to its peak heap size until it exits, as a GPU caching allocator does.

Why an opt-in, not a setting :func:`pikan.fit` applies and undoes: the setting belongs to
the whole process, and glibc cannot give the previous one back. ``mallopt`` has no getter,
so the thresholds in force cannot be read; and setting either threshold switches glibc's
dynamic adjustment off for the rest of the process (``mallopt(3)``: "dynamic adjustment of
the mmap threshold is disabled if any of M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD or
M_MMAP_MAX is set"). "Restoring" the documented initial values (128 KiB each) after a fit
would leave fixed 128 KiB thresholds, under which every block over 128 KiB is ``mmap``-ed
afresh: a third state, worse for the rest of the program than both the dynamic default and
the kept memory. So pikan never changes it on its own (no library call does); the program
that owns the process turns it on once: a training script, a benchmark
(``benchmarks/kan_speed.py``, ``benchmarks/train_speed.py``) or a command-line tool::

    from pikan.train.memory import keep_freed_memory
    keep_freed_memory()       # for the rest of this process

``PIKAN_KEEP_FREED_MEMORY=0`` in the environment vetoes it (the call then returns False).
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LIMITS = (1 << 30, 32 << 20)  # glibc versions that cap the mmap threshold accept 32 MiB
_applied = False


def keep_freed_memory() -> bool:
    """Keep freed memory in the process heap and serve blocks up to 1 GiB from it (glibc),
    for the rest of the process.

    Call it once, from the program that owns the process (see the module docstring for why
    fit does not). Calling it again does nothing.

    Returns
    -------
    bool
        Whether the setting is in effect: False off Linux, with another C library (musl has
        no ``mallopt``), or when ``PIKAN_KEEP_FREED_MEMORY=0``.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get("PIKAN_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    for limit in _LIMITS:
        if mallopt(_M_MMAP_THRESHOLD, limit) == 1:
            break
    else:
        return False
    # setting a threshold turns off glibc's dynamic adjustment of the other: set both
    _applied = mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    return _applied

