"""Checkpoints of a fit: one file with everything a resume needs, written atomically.

A checkpoint is a dict written by :func:`pikan.train.loop.fit` and read with
``torch.load(weights_only=True)``, so loading one never runs pickled code. It holds
``format`` (``"pikan-checkpoint"``) and ``version`` (1), the spec (JSON), the dtype, the
model's state dict, the optimizer, the sampler and torch RNG states, the best state of the
current stage, the history, the resolved options, the recipe, the loss scales, the recipe
position and ``fingerprint``: what the fit was trained on (:func:`fingerprint`).

::

    model = pikan.load_model("runs/trap/ckpt.pt")       # the trained model, ready to use
    ck = read_checkpoint("runs/trap/ckpt.pt")            # the raw dict (history, options, ...)

Fingerprints. ``fingerprint["data"]`` is :func:`data_fingerprint` of the trajectories (a
SHA-256 of their coordinate names and arrays, with their sizes for messages; computed once
per fit) and ``fingerprint["spec"]`` the SHA-256 of the spec's JSON. fit refuses to resume
a checkpoint on other data unless asked (``resume_other_data=True``); checkpoints written
before fingerprints existed resume with a warning that the data cannot be checked.

Damaged files. Everything read from a checkpoint is checked before it is used: a truncated
file, a missing key, a value of the wrong type or a tensor of the wrong shape raises
:class:`~pikan.errors.DataError` naming the file (:func:`read_checkpoint` for the parts
every checkpoint has, :func:`model_from_checkpoint` for the weights,
:mod:`pikan.train.checkpoint_checks` for the training state), never a ``KeyError``,
``TypeError`` or a failure deep inside torch.

Writes. A file is written atomically (a temp file beside it, fsync, ``os.replace``): an
interrupted write leaves the previous checkpoint intact and removes its temp file. A process
killed outright (SIGKILL) cannot remove it; the next write of the same checkpoint does
(a writer locks its temp file, so a stale one is told from a live writer's).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from pikan.errors import DataError
from pikan.model.compile import compile as compile_spec
from pikan.spec.system import System
from pikan.train.checkpoint_checks import check_contents, damaged, describe_error

try:  # advisory locks tell a live writer's temp file from a dead one's (POSIX)
    import fcntl
except ImportError:  # Windows: an open temp file cannot be removed there anyway
    fcntl = None

__all__ = ["FORMAT", "STALE_TEMP_AGE", "VERSION", "data_fingerprint", "describe_data",
           "fingerprint", "load_model", "model_from_checkpoint", "read_checkpoint",
           "spec_fingerprint", "write_checkpoint"]

FORMAT = "pikan-checkpoint"
VERSION = 1

STALE_TEMP_AGE = 10.0
"""Without advisory locks (Windows): seconds since its last change after which another
writer's temp file counts as stale (an open one cannot be removed there anyway)."""


# ----------------------------------------------------------------------------- writing


def _temp_pattern(path: Path) -> re.Pattern:
    return re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{12}}\.tmp")


def _remove_if_unlocked(name: str) -> None:
    """Remove temp file ``name`` unless a live writer holds its lock. The removal happens
    under the lock, so a writer that locks the file next finds it unlinked and starts over
    (:func:`write_checkpoint`)."""
    fd = os.open(name, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its writer is alive
            return
        os.unlink(name)
    finally:
        os.close(fd)  # releases the lock


def _remove_stale_temps(path: Path) -> None:
    """Remove temp files of ``path`` left by writers that were killed (SIGKILL, power loss).

    A writer holds an advisory lock on its temp file from creation to the rename, and the
    lock dies with the process: an unlocked temp file is stale. Without such locks
    (Windows), a temp file unchanged for :data:`STALE_TEMP_AGE` seconds is; one still open
    cannot be removed there.
    """
    pattern, now = _temp_pattern(path), time.time()
    try:
        entries = [e for e in os.scandir(path.parent) if pattern.fullmatch(e.name)]
    except OSError:
        return
    for entry in entries:
        try:
            if fcntl is not None:
                _remove_if_unlocked(entry.path)
            elif now - entry.stat().st_mtime >= STALE_TEMP_AGE:
                os.unlink(entry.path)
        except OSError:  # gone meanwhile, or open elsewhere: not ours to force
            continue


def _open_locked_temp(path: Path):
    """A new temp file beside ``path``, open for binary writing and locked: ``(tmp, handle)``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        handle = open(os.open(tmp, flags, 0o666), "wb")  # noqa: SIM115 - returned open
        if fcntl is None:
            return tmp, handle
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        if os.fstat(handle.fileno()).st_nlink > 0:
            return tmp, handle
        handle.close()  # another writer's clean-up took it before the lock: a new one


def write_checkpoint(obj, path: Path) -> None:
    """Save ``obj`` with ``torch.save`` to ``path`` atomically (temp file, fsync, rename).

    Creates the folder if needed. The temp file ``.<name>.<12 hex digits>.tmp`` sits beside
    ``path`` and is locked while it is written. An interrupted write removes its temp file
    and leaves an existing checkpoint at ``path`` as it was; temp files of ``path`` left by
    killed writers are removed first (:func:`_remove_stale_temps`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp, handle = _open_locked_temp(path)
    try:
        try:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
            if fcntl is None:
                handle.close()  # Windows renames closed files only
            os.replace(tmp, path)  # POSIX: renamed while locked, so no clean-up can take it
        finally:
            handle.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- fingerprints


def data_fingerprint(data) -> dict:
    """What a checkpoint records of its training data: a hash and the sizes.

    The hash covers the coordinate names, which derivatives are given, and every
    trajectory's length and arrays (``t``, ``q``, ``v``, ``a``, as little-endian float64):
    any change of a value, an order or a name changes it. One pass over the arrays (about
    2 GB/s); fit computes it once per fit.

    Parameters
    ----------
    data : Trajectories

    Returns
    -------
    dict
        ``sha256`` (hex str), ``trajectories``, ``samples`` (int), ``coords`` (list of str),
        ``velocities``, ``accelerations`` (bool).
    """
    head = {"coords": list(data.coords), "velocities": bool(data.has_velocities),
            "accelerations": bool(data.has_accelerations)}
    digest = hashlib.sha256(json.dumps(head).encode())
    for trajectory in data:
        digest.update(np.int64(len(trajectory)).tobytes())
        for x in (trajectory.t, trajectory.q, trajectory.v, trajectory.a):
            if x is not None:
                digest.update(np.ascontiguousarray(x, dtype="<f8"))
    return {"sha256": digest.hexdigest(), "trajectories": len(data),
            "samples": int(data.n_samples), **head}


def spec_fingerprint(spec_json: str) -> str:
    """SHA-256 (hex) of a spec's JSON text."""
    return hashlib.sha256(spec_json.encode()).hexdigest()


def fingerprint(data, spec_json: str) -> dict:
    """A checkpoint's ``fingerprint``: ``{"data": data_fingerprint(data), "spec":
    spec_fingerprint(spec_json)}``."""
    return {"data": data_fingerprint(data), "spec": spec_fingerprint(spec_json)}


def describe_data(found: dict) -> str:
    """A :func:`data_fingerprint` in words: ``"8 trajectories, 1608 samples of (x, y) with
    velocities and accelerations"``."""
    given = [n for n in ("velocities", "accelerations") if found.get(n)]
    extra = f" with {' and '.join(given)}" if given else " (positions only)"
    return (f"{found['trajectories']} trajectories, {found['samples']} samples of "
            f"({', '.join(found['coords'])}){extra}")


# ----------------------------------------------------------------------------- reading


def read_checkpoint(path) -> dict:
    """Load a checkpoint written by :func:`pikan.train.loop.fit`, on the CPU.

    Read with ``torch.load(weights_only=True)``. Checks what every checkpoint has: the
    format and version, the spec (str), the dtype, the model's state dict and, when present,
    the fingerprint (whose spec hash must be that of the stored spec). The training state is
    checked by :func:`pikan.train.checkpoint_checks.check_resumable`, the weights by :func:`model_from_checkpoint`.

    Raises
    ------
    DataError
        Missing, truncated, foreign or damaged files (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such checkpoint: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling failure means a bad file
        raise DataError(f"{path} is not a readable pikan checkpoint ({describe_error(error)}); "
                        "hint: the file may be truncated or from another program") from error
    found = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
    if not (isinstance(found, str) and found == FORMAT):
        raise DataError(f"{path} is not a pikan checkpoint (found {repr(found)[:60]}, expected "
                        f"a dict with format {FORMAT!r}); hint: pass a file written by pikan.fit")
    version = ck.get("version")
    if not (type(version) is int and version == VERSION):
        raise DataError(f"{path}: unsupported checkpoint version {repr(version)[:60]}; this "
                        f"pikan reads version {VERSION}")
    check_contents(ck, path)
    stored = ck.get("fingerprint")
    if stored is not None and stored["spec"] != spec_fingerprint(ck["spec"]):
        raise damaged(path, "the stored spec does not match its fingerprint (the spec was "
                            "edited)")
    return ck


def model_from_checkpoint(ck: dict, path, device=None):
    """Compile the spec of a checkpoint read by :func:`read_checkpoint` and load its weights.

    The weights must fit the compiled model (every key, dtype kind and shape; refined grids
    and pruning masks come back with them), be finite, and give accelerations on a probe
    state: whatever fails is a damaged file.

    Parameters
    ----------
    ck : dict
    path : str or Path
        Named in errors.
    device : str or torch.device, optional

    Raises
    ------
    DataError
        The stored spec does not compile, or the weights do not fit it.
    """
    try:
        spec = System.from_json(ck["spec"])
        model = compile_spec(spec, dtype=getattr(torch, ck["dtype"]))
    except Exception as error:  # the stored spec is checked by compiling it
        raise damaged(path, f"its spec does not compile ({describe_error(error)})") from error
    current = model.state_dict()
    for key, stored in ck["model"].items():
        if key in current and stored.is_floating_point() != current[key].is_floating_point():
            raise damaged(path, f"weight {key!r} has dtype {stored.dtype}, expected "
                                 f"{current[key].dtype}")
        if stored.is_floating_point() and not bool(torch.isfinite(stored).all()):
            raise damaged(path, f"weight {key!r} holds non-finite values")
    try:
        model.load_state_dict(ck["model"])
        n = len(model.coords)
        q = torch.linspace(-0.5, 0.5, 2 * n, dtype=getattr(torch, ck["dtype"])).reshape(2, n)
        with torch.enable_grad():
            a = model.acceleration(q, 0.5 * q.flip(0))
        if tuple(a.shape) != (2, n):
            raise ValueError(f"accelerations of shape {tuple(a.shape)} for states (2, {n})")
    except Exception as error:  # weights that do not fit their spec
        raise damaged(path, f"its weights do not fit its spec ("
                             f"{describe_error(error)})") from error
    return model.to(device) if device is not None else model


def load_model(path, device=None):
    """Rebuild a trained model from a checkpoint: compile the stored spec, load the weights.

    Pruning masks and refined grids come back with the state dict.

    Parameters
    ----------
    path : str or Path
    device : str or torch.device, optional

    Returns
    -------
    Model

    Raises
    ------
    DataError
        Missing, truncated, foreign or damaged files, naming the file
        (:func:`read_checkpoint`, :func:`model_from_checkpoint`).
    """
    return model_from_checkpoint(read_checkpoint(path), path, device)
