"""Process memory settings for training on the CPU.

PyTorch allocates CPU tensors with ``malloc``. With glibc's default, dynamic thresholds a
block of a few megabytes (a KAN layer's dense basis for a batch) is sometimes served by
``mmap`` and sometimes from the heap, and freed heap memory is handed back to the system
when enough of it piles up at the top. Either way the next step touches fresh pages: a
KAN training step was measured here at 1,700 to 4,700 page faults, against about none for an
MLP of the same size, and its time swung by up to a factor of two from run to run.

:func:`keep_freed_memory` serves such blocks from the heap and keeps freed memory there for
reuse, so a training loop's steady state touches no fresh pages. The process then holds on
to its peak heap size until it exits, as a GPU caching allocator does. :func:`pikan.fit`
applies it when training on the CPU; set ``PIKAN_KEEP_FREED_MEMORY=0`` to opt out.
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LIMITS = (1 << 30, 32 << 20)  # glibc versions that cap the mmap threshold accept 32 MiB
_applied = False


def keep_freed_memory() -> bool:
    """Keep freed memory in the process heap and serve blocks up to 1 GiB from it (glibc).

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
