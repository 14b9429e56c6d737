"""Checkpoints of a fit: one file with everything a resume needs, written atomically.

A checkpoint is a dict written by :func:`pikan.train.loop.fit` and read with
``torch.load(weights_only=True)``, so loading one never runs pickled code. It holds
``format`` (``"pikan-checkpoint"``) and ``version`` (1), the spec (JSON), the dtype, the
model's state dict, the optimizer, the sampler and torch RNG states, the best state of the
current stage, the history, the resolved options, the recipe, the loss scales and the recipe
position. Files are written atomically (temp file in the same folder, fsync,
``os.replace``): an interrupted write leaves the previous checkpoint intact.

::

    model = pikan.load_model("runs/trap/ckpt.pt")       # the trained model, ready to use
    ck = read_checkpoint("runs/trap/ckpt.pt")            # the raw dict (history, options, ...)
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import torch

from pikan.errors import DataError
from pikan.model.compile import compile as compile_spec
from pikan.spec.system import System

FORMAT = "pikan-checkpoint"
VERSION = 1


def write_checkpoint(obj, path: Path) -> None:
    """Save ``obj`` with ``torch.save`` to ``path`` atomically (temp file, fsync, rename).

    Creates the folder if needed. An interrupted write removes its temp file and leaves an
    existing checkpoint at ``path`` as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_checkpoint(path) -> dict:
    """Load a checkpoint written by :func:`pikan.train.loop.fit`, on the CPU.

    Read with ``torch.load(weights_only=True)``.

    Raises
    ------
    DataError
        Missing, truncated or foreign files.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such checkpoint: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DataError(f"{path} is not a readable pikan checkpoint ({type(error).__name__}: "
                        f"{error}); hint: the file may be truncated or from another program")
    found = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
    if found != FORMAT:
        raise DataError(f"{path} is not a pikan checkpoint (found {found!r}, expected a dict "
                        f"with format {FORMAT!r}); hint: pass a file written by pikan.fit")
    if ck.get("version") != VERSION:
        raise DataError(f"{path}: unsupported checkpoint version {ck.get('version')!r}; this "
                        f"pikan reads version {VERSION}")
    return ck


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
    """
    ck = read_checkpoint(path)
    model = compile_spec(System.from_json(ck["spec"]), dtype=getattr(torch, ck["dtype"]))
    model.load_state_dict(ck["model"])
    return model.to(device) if device is not None else model
