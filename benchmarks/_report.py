"""Plumbing shared by the benchmark suites: threads, machine record, task pool, tables, JSON.

Every suite runs its torch work on one thread (``torch.set_num_threads(1)``): on a small
shared machine, intra-op thread pools spin-wait and make timings erratic. Independent tasks
(one system and seed, one formula) may run in ``jobs`` worker processes, each on one
thread; the wall times of tasks that ran side by side include that contention, and the
table headers say how many jobs ran.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import math
import multiprocessing
import os
import platform
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
"""Where every suite writes its JSON."""


_LIMITS = []


def single_thread() -> None:
    """One torch thread and one BLAS thread in this process (see the module docstring)."""
    import torch

    torch.set_num_threads(1)
    from pikan.train.memory import keep_freed_memory

    keep_freed_memory()  # as the pikan command does: the suites own their processes
    if not _LIMITS:
        try:
            from threadpoolctl import threadpool_limits

            _LIMITS.append(threadpool_limits(1))  # numpy/scipy BLAS (kept for the process)
        except ImportError:
            pass


def memory_share(jobs: int) -> None:
    """Cap this process's address space at its share of the machine's memory (nine tenths
    of it over ``jobs`` workers), so a task that runs away fails with a MemoryError in its
    own row instead of drawing the kernel's out-of-memory killer on the worker, which breaks
    the pool and every row still to run with it. A no-op where the limit cannot be set."""
    try:
        import resource

        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        share = int(0.9 * total / max(1, jobs))
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            share = min(share, hard)
        resource.setrlimit(resource.RLIMIT_AS, (share, hard))
    except (ImportError, ValueError, OSError):
        pass


def machine(jobs: int = 1) -> dict:
    """What ran the benchmark: cores, CPU model, library versions, date (UTC)."""
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(), "cpu": cpu, "torch_threads": 1, "jobs": int(jobs),
        "python": platform.python_version(), "torch": torch.__version__,
        "numpy": numpy.__version__, "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_line(info: dict) -> str:
    """One line for a table header."""
    return (f"{info['cores']} cores ({info['cpu']}), torch {info['torch']}, 1 torch and 1 BLAS "
            f"thread per process, {info['jobs']} job(s) in parallel, {info['date']}")


def output(path, name: str, quick: bool) -> Path:
    """The JSON path: ``path`` if given, else ``results/<name>.json`` (``results/quick/``
    for quick runs, so a smoke test never overwrites a full run's numbers)."""
    if path:
        return Path(path)
    return (RESULTS / "quick" if quick else RESULTS) / f"{name}.json"


def _init_worker(jobs: int = 1) -> None:
    single_thread()
    memory_share(jobs)


def run_tasks(fn: Callable, tasks: Sequence, jobs: int = 1) -> list:
    """``[fn(*task) for task in tasks]``, in ``jobs`` spawned worker processes when > 1.

    Results keep the order of ``tasks``. ``fn`` must be a module-level function (it is
    pickled by name) and should catch its own errors (a task that raises stops the suite).
    """
    if jobs <= 1 or len(tasks) <= 1:
        return [fn(*task) for task in tasks]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                                initializer=_init_worker,
                                                initargs=(jobs,)) as pool:
        futures = [pool.submit(fn, *task) for task in tasks]
        return [f.result() for f in futures]


def clean(value):
    """JSON-safe copy: non-finite floats become None, tuples lists, numpy scalars numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):
        return clean(value.item())
    return str(value)


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as JSON atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(json.dumps(clean(data), indent=1, allow_nan=False))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def fmt(value, digits: int = 2) -> str:
    """A number for a table: ``-`` for missing, ``inf`` spelled out, ``digits`` significant."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "nan"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A markdown table (cells formatted with :func:`fmt`)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(c) for c in row) + " |")
    return "\n".join(lines)


def median(values) -> float | None:
    """Median of the finite values (inf counts as large); None when there are none."""
    values = sorted(v for v in values if v is not None and not (isinstance(v, float)
                                                               and math.isnan(v)))
    if not values:
        return None
    mid = len(values) // 2
    if len(values) % 2:
        return values[mid]
    a, b = values[mid - 1], values[mid]
    return a if a == b else (a + b) / 2


def say(text: str) -> None:
    """Progress on stderr (tables go to stdout)."""
    print(text, file=sys.stderr, flush=True)
