r"""Data-parallel training on ``torch.distributed``: the process group, the sharded batch and
the collectives :func:`pikan.fit` needs.

Launch with torchrun; ``fit(distributed="auto")`` turns on when ``WORLD_SIZE > 1``::

    torchrun --nproc_per_node=4 -m pikan discover spec.py data.h5 -o runs/x
    torchrun --nproc_per_node=4 train.py          # a script that calls pikan.fit(model, data)

Every process holds the whole dataset and the whole model on its device (``cuda:LOCAL_RANK``
with NCCL, the CPU with gloo). Each optimizer step draws one global batch of indices, the
same on every process (the seeded sampler of :func:`pikan.fit` runs identically
everywhere), and process ``k`` of ``K`` evaluates the loss on its contiguous slice
(:func:`shard`): a distributed sampler that splits each batch rather than the dataset, so
that ``K`` processes take the same steps as one process on the same global batch.

How the objective splits. The data loss (acceleration or rollout) and the soft-constraint
penalties are means over samples, so with :math:`L_k` the mean over the :math:`B_k`
samples of slice :math:`k` of a global batch of :math:`B`,

.. math:: L = \sum_k \frac{B_k}{B} L_k .

The KAN sparsity penalty :math:`S` is not a sample mean (an entropy of batch-mean edge
magnitudes), so every process evaluates it on the whole global batch and contributes
:math:`S / K`. Summing the gradients over processes (one all-reduce per backward pass)
then gives exactly the gradient of the one-process objective; clipping, Adam and L-BFGS see
the same numbers on every process.

Why not ``DistributedDataParallel``: DDP reduces gradients through hooks armed by the
wrapped module's ``forward``, but the losses call ``model.acceleration``,
``model.vector_field`` and ``model.module_inputs`` (forces by ``torch.func.grad`` inside,
so the loss gradient is a double backward), L-BFGS re-evaluates the loss inside its line
search, and grid refinement replaces parameters (a DDP wrapper would have to be rebuilt after
every structural stage). :func:`reduce_gradients` does the reduction DDP would do, with
PyTorch's own collectives, once per backward pass: for models of 10^2--10^5 parameters a
single flat all-reduce is what DDP's bucketing amounts to anyway.

What is shared, and how:

- gradients and loss values: one all-reduce (sum) per backward pass and per validation check;
- structure (initial grids, adapt, prune, refine): computed on rank 0; its state dict and
  events are broadcast (:func:`broadcast`), so every process holds rank 0's model;
- early stopping, restore-best and fault rejection: decided on reduced values, hence the same
  on every process;
- checkpoints, progress and run files: rank 0 only.

A process that fails (an exception, a killed process) makes the others' next collective
fail with :class:`DistributedError` (gloo notices a closed connection at once; otherwise the
``timeout`` of :func:`init` ends the wait) instead of hanging.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
from torch import Tensor

from pikan.errors import DataError

DEFAULT_TIMEOUT = timedelta(minutes=10)
"""How long a collective waits for the other processes before failing."""


class DistributedError(RuntimeError):
    """A collective with the other processes failed: one of them stopped or timed out."""


@dataclass(frozen=True)
class Context:
    """This process's place in a distributed fit.

    Attributes
    ----------
    rank : int
        Global index of this process, ``0 <= rank < world_size``; rank 0 writes files.
    world_size : int
        Number of processes ``K``.
    local_rank : int
        Index of this process on its machine (selects ``cuda:local_rank``).
    device : torch.device
        Where this process trains.
    backend : str
        ``"nccl"`` or ``"gloo"``.
    timeout : timedelta or None
        How long a collective waits (None: a process group made by the caller, its own).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str
    timeout: timedelta | None = DEFAULT_TIMEOUT

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes checkpoints, progress and files."""
        return self.rank == 0


def env_world_size() -> int:
    """``WORLD_SIZE`` as set by torchrun (1 when unset)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1") or 1)
    except ValueError:
        return 1


def requested(flag) -> bool:
    """Resolve ``fit(distributed=...)``: ``"auto"`` is on when ``WORLD_SIZE > 1``
    (a torchrun launch) or a process group is already initialized.

    Raises
    ------
    ValueError
        ``flag`` is not True, False or ``"auto"``.
    """
    if flag is True or flag is False:
        return flag
    if flag != "auto":
        raise ValueError(f"distributed must be True, False or 'auto', got {flag!r}")
    initialized = torch.distributed.is_available() and torch.distributed.is_initialized()
    return env_world_size() > 1 or (initialized and torch.distributed.get_world_size() > 1)


def is_main_process(distributed="auto") -> bool:
    """Whether this process should print and write files: rank 0 of a distributed launch, or
    any process that does not train distributed. Usable before the process group exists
    (reads torchrun's ``RANK``)."""
    if not requested(distributed):
        return True
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return int(os.environ.get("RANK", "0") or 0) == 0


def _device(device, local_rank: int) -> torch.device:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def init(device="auto", timeout: timedelta = DEFAULT_TIMEOUT) -> Context:
    """Join (or create) the default process group and pick this process's device.

    Reads torchrun's environment: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``. A process group initialized by the caller is reused
    as it is (with its own backend and timeout).

    Parameters
    ----------
    device : "auto", str or torch.device
        ``"auto"``: ``cuda:LOCAL_RANK`` when CUDA is available (a new group then uses
        NCCL), else the CPU (gloo); with an existing group, CUDA for NCCL and the CPU for
        any other backend. ``"cuda"`` without an index means ``cuda:LOCAL_RANK``.
    timeout : timedelta
        How long a collective waits for the other processes before failing.

    Returns
    -------
    Context

    Raises
    ------
    ValueError
        Not launched by torchrun (no ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``),
        or a CUDA device with a non-CUDA process group.
    """
    dist = torch.distributed
    if not dist.is_available():
        raise ValueError("distributed training needs a torch built with torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
    if dist.is_initialized():
        backend = str(dist.get_backend())
        timeout = _TIMEOUTS.get(id(dist.group.WORLD))
        if device == "auto":
            device = "cuda" if backend == "nccl" else "cpu"
    device = _device(device, local_rank)
    if not dist.is_initialized():
        missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
                   if k not in os.environ]
        if missing:
            raise ValueError(f"distributed training needs the environment torchrun sets; "
                             f"{', '.join(missing)} missing. Hint: launch with `torchrun "
                             "--nproc_per_node=K script.py` (or `torchrun ... -m pikan discover "
                             "...`), or pass distributed=False")
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, timeout=timeout)
        _TIMEOUTS[id(dist.group.WORLD)] = timeout
        atexit.register(_destroy)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    elif backend == "nccl":
        raise ValueError(f"the process group uses NCCL, which needs CUDA tensors, but the "
                         f"device is {device}; hint: device='cuda', or a gloo process group")
    return Context(dist.get_rank(), dist.get_world_size(), local_rank, device, backend, timeout)


_TIMEOUTS: dict = {}  # timeouts of the process groups init() made, for error messages


def _destroy() -> None:
    dist = torch.distributed
    _TIMEOUTS.clear()
    if dist.is_initialized():
        with contextlib.suppress(Exception):  # at exit, a failed peer must not add a traceback
            dist.destroy_process_group()


def _failed(ctx: Context, what: str, error: Exception) -> DistributedError:
    return DistributedError(
        f"rank {ctx.rank} of {ctx.world_size}: {what} with the other processes failed "
        f"({type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}). "
        f"Another process probably stopped with an error (see its output) or did not get here "
        f"within the timeout{f' of {ctx.timeout}' if ctx.timeout is not None else ''}.")


# ----------------------------------------------------------------------------- the batch


def shard(n: int, ctx: Context) -> tuple[int, int, float]:
    """This process's contiguous slice of a global batch of ``n`` samples, and its weight.

    With ``n >= K`` the slices partition ``range(n)`` (sizes differ by at most one, none is
    empty) and the weight is ``(stop - start) / n``: summed over processes, weighted slice
    means give the mean over the batch. With ``n < K`` every process takes the whole batch
    with weight ``1 / K``.

    Returns
    -------
    (start, stop, weight) : (int, int, float)
    """
    k, size = ctx.rank, ctx.world_size
    if n < size:
        return 0, n, 1.0 / size
    start, stop = n * k // size, n * (k + 1) // size
    return start, stop, (stop - start) / n


# ----------------------------------------------------------------------------- collectives


def all_reduce(values: Tensor, ctx: Context) -> Tensor:
    """Sum of ``values`` over all processes (a new tensor; the input is left alone)."""
    out = values.detach().clone()
    try:
        torch.distributed.all_reduce(out)
    except RuntimeError as error:
        raise _failed(ctx, "the all-reduce of loss values", error) from error
    return out


def reduce_gradients(params, values: Tensor, ctx: Context) -> Tensor:
    """Sum the gradients of ``params`` and the loss ``values`` over all processes, in one
    all-reduce.

    Each ``p.grad`` is replaced by the sum; a parameter without a gradient keeps none (which
    parameters have one is a property of the model's structure, the same on every process).

    Parameters
    ----------
    params : list of Parameter
        In the same order on every process.
    values : Tensor, shape (m,)
        This process's share of the loss terms.

    Returns
    -------
    Tensor, shape (m,)
        The summed values.
    """
    with_grad = [p for p in params if p.grad is not None]
    dtype = values.dtype
    flat = torch.cat([p.grad.detach().reshape(-1).to(dtype) for p in with_grad]
                     + [values.detach().reshape(-1)])
    try:
        torch.distributed.all_reduce(flat)
    except RuntimeError as error:
        raise _failed(ctx, "the gradient all-reduce", error) from error
    offset = 0
    for p in with_grad:
        n = p.numel()
        p.grad = flat[offset:offset + n].view(p.shape).to(p.grad.dtype)
        offset += n
    return flat[offset:]


def broadcast(obj, ctx: Context):
    """Rank 0's ``obj`` on every process (pickled; for state dicts and event records).

    Tensors travel as CPU tensors: move them to the device after receiving.
    """
    box = [obj if ctx.is_main else None]
    try:
        torch.distributed.broadcast_object_list(
            box, src=0, device=ctx.device if ctx.backend == "nccl" else None)
    except RuntimeError as error:
        raise _failed(ctx, "the broadcast from rank 0", error) from error
    return box[0]


def check_same(summary, what: str, ctx: Context) -> None:
    """Raise :class:`pikan.DataError` unless ``summary`` (a small picklable value) is equal on
    every process: a distributed fit needs the same data and options everywhere.

    Parameters
    ----------
    summary : picklable
        A fingerprint, e.g. sizes and sums of the training tensors.
    what : str
        What it summarizes, for the message.
    """
    found = [None] * ctx.world_size
    try:
        torch.distributed.all_gather_object(found, summary)
    except RuntimeError as error:
        raise _failed(ctx, "comparing the data", error) from error
    differing = [rank for rank, other in enumerate(found) if other != found[0]]
    if differing:
        raise DataError(f"distributed fit: {what} differ between processes (rank 0: "
                        f"{found[0]}, rank {differing[0]}: {found[differing[0]]}); every process "
                        "must pass the same data and options (the batches are split, not the "
                        "data set); hint: load the same file, or seed the simulation")


def any_true(flag: bool, ctx: Context) -> bool:
    """Whether ``flag`` is true on any process (e.g. a callback asked to stop)."""
    value = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    return bool(all_reduce(value, ctx).item() > 0)
