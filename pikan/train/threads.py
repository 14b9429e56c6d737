"""torch's CPU threads inside pikan's own calls.

Physics models are small: a batch of a few hundred states through KANs of a few dozen
edges. There, synchronising threads costs more than it gains, badly so on a busy machine:
the README's tour took 175-197 s with torch's default threads on 2 busy cores and 46 s with
one. So pikan's entry points (:func:`~pikan.train.loop.fit`, ``extract``, ``verify``,
``find_law``, ``discover``) run torch on one thread, and give the caller's setting back when
they return, unless the user chose a count: ``$OMP_NUM_THREADS`` set, or
``torch.set_num_threads`` called after pikan was imported with another count than torch's
default. The ``pikan`` command follows the same rule (``--threads``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import torch

CALL_THREADS = 1
"""torch's CPU threads inside pikan's calls when the user chose none."""

_TORCH_DEFAULT = torch.get_num_threads()
"""torch's thread count when pikan was imported: another count later is the user's choice."""

F = TypeVar("F", bound=Callable)


def chosen_by_user() -> bool:
    """Whether the user chose torch's thread count (``$OMP_NUM_THREADS`` set, or
    ``torch.set_num_threads`` called with another count than torch's default)."""
    return bool(os.environ.get("OMP_NUM_THREADS", "").strip()) or (
        torch.get_num_threads() != _TORCH_DEFAULT)


@contextmanager
def call_threads() -> Iterator[int]:
    """Run the body with :data:`CALL_THREADS` torch threads unless the user chose a count
    (:func:`chosen_by_user`); the caller's count is restored on the way out, also on
    errors. Yields the count the body runs with."""
    before = torch.get_num_threads()
    if chosen_by_user() or before == CALL_THREADS:
        yield before
        return
    torch.set_num_threads(CALL_THREADS)
    try:
        yield CALL_THREADS
    finally:
        torch.set_num_threads(before)


def with_call_threads(function: F) -> F:
    """Decorate a pikan entry point to run inside :func:`call_threads`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with call_threads():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
