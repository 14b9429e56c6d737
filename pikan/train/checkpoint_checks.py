"""What a checkpoint must hold, checked before anything in it is used.

:func:`pikan.train.checkpoint.read_checkpoint` reads a file with
``torch.load(weights_only=True)``; the dict it gets is checked here: the parts every
checkpoint has (:func:`check_contents`), the training state a resume reads
(:func:`check_resumable`: the options, the recipe and the position in it, the history, the
RNG and sampler states, the stage's best state, the loss scales) and the optimizer state as
it is loaded (:func:`load_optimizer_state`). A missing key, a value of the wrong type or
range, or a tensor of the wrong shape is a :class:`~pikan.errors.DataError` naming the file
(:func:`damaged`), never a ``KeyError``, ``TypeError`` or a failure deep inside torch.
What depends on the model and the data (the weights against the compiled spec, the
sampler's permutation of the training set, the loss scales' shapes) is checked where those
are at hand: :func:`pikan.train.checkpoint.model_from_checkpoint` and the resuming fit.
"""

from __future__ import annotations

import math
import numbers

import torch

from pikan.errors import DataError
from pikan.train.options import check_stored_config
from pikan.train.recipe import Recipe

__all__ = ["check_contents", "check_resumable", "damaged", "describe_error",
           "load_optimizer_state"]


def damaged(path, what: str) -> DataError:
    """The error for a checkpoint at ``path`` that fails a check: ``what`` failed."""
    return DataError(f"checkpoint {path} is damaged or was not written by pikan.fit: {what}; "
                     "hint: use an intact checkpoint (fit writes them atomically) or start "
                     "the fit again without resume")


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _is_tensors(x) -> bool:
    """A dict of str -> Tensor."""
    return isinstance(x, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                       for k, v in x.items())


def _is_records(x) -> bool:
    """A list of dicts (history rows and events)."""
    return isinstance(x, list) and all(isinstance(r, dict) for r in x)


def _is_byte_state(x) -> bool:
    """An RNG state: a 1-D uint8 tensor."""
    return isinstance(x, torch.Tensor) and x.dtype == torch.uint8 and x.dim() == 1


def _require(ck: dict, checks: dict, path, where: str = "") -> None:
    """Each key of ``checks`` in ``ck`` and accepted by its test ``(test, expected)``."""
    for key, (test, expected) in checks.items():
        if key not in ck:
            raise damaged(path, f"{where}{key!r} is missing")
        if not test(ck[key]):
            raise damaged(path, f"{where}{key!r} must be {expected}, found "
                                 f"{type(ck[key]).__name__} {_short(ck[key])}")


def _short(value) -> str:
    text = repr(value) if not isinstance(value, torch.Tensor) else \
        f"of shape {tuple(value.shape)} and dtype {value.dtype}"
    return text if len(text) <= 60 else text[:57] + "..."


def _floating_dtype(name) -> bool:
    return isinstance(name, str) and isinstance(getattr(torch, name, None), torch.dtype) \
        and getattr(torch, name).is_floating_point


_COMMON = {
    "spec": (lambda x: isinstance(x, str), "the spec's JSON text (str)"),
    "dtype": (_floating_dtype, "a torch floating dtype name such as 'float64'"),
    "model": (_is_tensors, "a state dict (str -> Tensor)"),
}

_RESUME = {
    "config": (lambda x: isinstance(x, dict), "a dict of resolved options"),
    "recipe": (_is_records, "a list of stage dicts"),
    "scales": (_is_tensors, "a dict of str -> Tensor"),
    "history": (lambda x: isinstance(x, dict), "a dict with rows and events"),
    "rng": (lambda x: isinstance(x, dict), "a dict with the torch RNG state"),
    "position": (lambda x: isinstance(x, dict), "a dict with the recipe position"),
    "optimizer": (lambda x: x is None or isinstance(x, dict), "None or an optimizer state dict"),
    "best": (lambda x: x is None or isinstance(x, dict), "None or the stage's best state"),
    "bad_evals": (lambda x: _is_int(x) and x >= 0, "a whole number >= 0"),
    "lr_scale": (lambda x: _is_real(x) and x > 0, "a finite number > 0"),
    "faults_in_row": (lambda x: _is_int(x) and x >= 0, "a whole number >= 0"),
    "last_val": (lambda x: x is None or isinstance(x, numbers.Real) and not isinstance(x, bool),
                 "None or a number"),
    "sampler": (lambda x: isinstance(x, dict), "a dict with the sampler state"),
    "history_len": (lambda x: isinstance(x, (list, tuple)) and len(x) == 2
                    and all(_is_int(n) and n >= 0 for n in x), "two whole numbers >= 0"),
}


def _is_row(row) -> bool:
    """A history row: ``step`` and ``stage`` whole numbers, ``optimizer`` a name, the rest
    numbers (``val`` may be None)."""
    return all(isinstance(k, str) and (
        _is_int(v) if k in ("step", "stage") else isinstance(v, str) if k == "optimizer"
        else v is None or isinstance(v, numbers.Real) and not isinstance(v, bool))
        for k, v in row.items()) and _is_int(row.get("step")) and _is_int(row.get("stage"))


def _is_event(event) -> bool:
    """A history event: ``kind`` a name, ``step`` and ``stage`` whole numbers."""
    return isinstance(event.get("kind"), str) and _is_int(event.get("step")) \
        and _is_int(event.get("stage")) and all(isinstance(k, str) for k in event)


_HISTORY = {
    "rows": (lambda x: _is_records(x) and all(_is_row(r) for r in x),
             "a list of rows (step, stage, optimizer and numbers)"),
    "events": (lambda x: _is_records(x) and all(_is_event(e) for e in x),
               "a list of events (kind, step, stage, ...)"),
}
_RNG = {"torch": (_is_byte_state, "a uint8 RNG state tensor")}
_POSITION = {
    "stage": (lambda x: _is_int(x) and x >= 0, "a whole number >= 0"),
    "stage_step": (lambda x: _is_int(x) and x >= 0, "a whole number >= 0"),
    "global_step": (lambda x: _is_int(x) and x >= 0, "a whole number >= 0"),
    "started": (lambda x: isinstance(x, bool), "True or False"),
}
_SAMPLER = {
    "generator": (_is_byte_state, "a uint8 RNG state tensor"),
    "perm": (lambda x: x is None or isinstance(x, torch.Tensor) and x.dim() == 1
             and x.dtype == torch.int64, "None or a 1-D int64 tensor"),
    "pos": (lambda x: _is_int(x) and x >= 0, "a whole number >= 0"),
}
_BEST = {
    "state": (_is_tensors, "a state dict (str -> Tensor)"),
    "objective": (_is_real, "a finite number"),
    "val": (_is_real, "a finite number"),
    "step": (lambda x: _is_int(x) and x >= 0, "a whole number >= 0"),
}
_STAGE_START = {"val": _BEST["val"], "objective": _BEST["objective"], "step": _BEST["step"]}
_STAGE_FIELDS = {
    "steps": (_is_int, "a whole number"),
    "lr": (lambda x: x is None or _is_real(x), "None or a number"),
    "sparsity": (_is_real, "a number"),
    "patience": (lambda x: x is None or _is_int(x) and x >= 0, "None or a whole number"),
    "threshold": (_is_real, "a number"),
    "grid": (lambda x: x is None or _is_int(x), "None or a whole number"),
}
_FINGERPRINT = {
    "data": (lambda x: isinstance(x, dict), "a dict (the data fingerprint)"),
    "spec": (lambda x: isinstance(x, str), "the spec's SHA-256 (str)"),
}
_DATA_FINGERPRINT = {
    "sha256": (lambda x: isinstance(x, str), "a hex digest (str)"),
    "trajectories": (lambda x: _is_int(x) and x >= 0, "a whole number >= 0"),
    "samples": (lambda x: _is_int(x) and x >= 0, "a whole number >= 0"),
    "coords": (lambda x: isinstance(x, list) and all(isinstance(c, str) for c in x),
               "a list of coordinate names"),
    "velocities": (lambda x: isinstance(x, bool), "True or False"),
    "accelerations": (lambda x: isinstance(x, bool), "True or False"),
}


def describe_error(error: Exception) -> str:
    """``"TypeName: first line of the message"`` (at most 200 characters of it)."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:200] if text else ''}"


def check_contents(ck: dict, path) -> None:
    """Check what every checkpoint has besides its format and version: the spec (str), the
    dtype, the model's state dict and, when present, the fingerprint's layout.

    Raises
    ------
    DataError
        A missing key or a value of the wrong type (the message names the file).
    """
    _require(ck, _COMMON, path)
    stored = ck.get("fingerprint")
    if stored is not None:
        if not isinstance(stored, dict):
            raise damaged(path, f"'fingerprint' must be a dict, found {type(stored).__name__}")
        _require(stored, _FINGERPRINT, path, "fingerprint ")
        _require(stored["data"], _DATA_FINGERPRINT, path, "fingerprint data ")


def check_resumable(ck: dict, path) -> tuple[dict, Recipe]:
    """Check the training state of a checkpoint read by
    :func:`pikan.train.checkpoint.read_checkpoint`.

    Checks the types and ranges of everything a resume reads without the model or the data:
    the resolved options (:func:`pikan.train.options.check_stored_config`), the recipe and
    the position in it, the history, the RNG and sampler states, the optimizer state's
    layout, the stage's best state and the loss scales. What depends on the model and the
    data (shapes, the sampler's permutation) is checked by the fit that resumes.

    Returns
    -------
    (config, recipe) : (dict, Recipe)
        The stored options and recipe.

    Raises
    ------
    DataError
        A missing key or a value of the wrong type or range (the message names the file).
    """
    _require(ck, _RESUME, path)
    _require(ck["history"], _HISTORY, path, "history ")
    _require(ck["rng"], _RNG, path, "rng ")
    _require(ck["position"], _POSITION, path, "position ")
    _require(ck["sampler"], _SAMPLER, path, "sampler ")
    if ck["best"] is not None:
        _require(ck["best"], _BEST, path, "best ")
    if ck.get("stage_start") is not None:
        if not isinstance(ck["stage_start"], dict):
            raise damaged(path, "'stage_start' must be None or a dict")
        _require(ck["stage_start"], _STAGE_START, path, "stage_start ")
    recoveries = ck.get("recoveries", 0)
    if not (_is_int(recoveries) and recoveries >= 0):
        raise damaged(path, f"'recoveries' must be a whole number >= 0, found {recoveries!r}")
    try:
        check_stored_config(ck["config"])
    except (TypeError, ValueError) as error:
        raise damaged(path, str(error)) from error
    for item in ck["recipe"]:
        _require(item, {k: c for k, c in _STAGE_FIELDS.items() if k in item}, path,
                 "recipe stage ")
    try:
        recipe = Recipe.from_list(ck["recipe"])
    except Exception as error:  # Stage(**item) of a damaged item
        raise damaged(path, f"its recipe is invalid ({type(error).__name__}: {error})") \
            from error
    if not recipe.stages:
        raise damaged(path, "its recipe has no stages")
    position, history = ck["position"], ck["history"]
    if position["stage"] > len(recipe):
        raise damaged(path, f"position stage {position['stage']} is past the recipe's "
                             f"{len(recipe)} stages")
    if position["stage"] < len(recipe):
        stage = recipe[position["stage"]]
        if position["stage_step"] > (stage.steps if stage.kind == "fit" else 0):
            raise damaged(path, f"position stage_step {position['stage_step']} is past stage "
                                 f"{position['stage']} ({stage})")
        if ck["optimizer"] is not None and stage.kind != "fit":
            raise damaged(path, f"an optimizer state at stage {position['stage']} ({stage}), "
                                 "which is not a fit stage")
    elif ck["optimizer"] is not None:
        raise damaged(path, "an optimizer state after the recipe's last stage")
    if position["global_step"] > recipe.total_steps:
        raise damaged(path, f"position global_step {position['global_step']} is past the "
                             f"recipe's {recipe.total_steps} steps")
    rows, events = ck["history_len"]
    if rows > len(history["rows"]) or events > len(history["events"]):
        raise damaged(path, f"history_len {[rows, events]} is longer than the history")
    if ck["optimizer"] is not None:
        _check_optimizer_layout(ck["optimizer"], path)
    for key, scale in ck["scales"].items():
        if not scale.is_floating_point() or not bool(torch.isfinite(scale).all()):
            raise damaged(path, f"loss scale {key!r} must be a finite floating-point tensor")
    return ck["config"], recipe


def _check_optimizer_layout(state: dict, path) -> None:
    """An optimizer state dict: ``state`` (int -> dict) and ``param_groups`` (list of dicts
    with a list of int ``params``)."""
    groups = state.get("param_groups")
    if not (isinstance(state.get("state"), dict) and isinstance(groups, list) and groups
            and all(isinstance(g, dict) and isinstance(g.get("params"), list)
                    and all(_is_int(i) for i in g["params"]) for g in groups)):
        raise damaged(path, "its optimizer state is not an optimizer state dict (state, "
                             "param_groups with params)")
    if not all(_is_int(k) and isinstance(v, dict) for k, v in state["state"].items()):
        raise damaged(path, "its optimizer state must map parameter indices to dicts")


def load_optimizer_state(optimizer, stored: dict, path) -> None:
    """Load an optimizer state read from a checkpoint and check it against the optimizer's own.

    Adam's moments must have their parameter's shape, L-BFGS's flat vectors the total size
    of the parameters (all finite); each hyperparameter (``betas``, ``eps``,
    ``max_iter``, ...) must have the kind of the fresh optimizer's value (a finite number,
    a tuple of them, a flag, the same name).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Made by the fit for the current stage, before loading ``stored``.
    stored : dict
        The checkpoint's optimizer state dict.
    path : str or Path
        Named in errors.

    Raises
    ------
    DataError
    """
    fresh = [dict(g) for g in optimizer.param_groups]
    params = [p for g in optimizer.param_groups for p in g["params"]]
    total = sum(p.numel() for p in params)
    for index, entry in stored["state"].items():
        for key, value in entry.items():
            values = value if isinstance(value, list) else [value]
            if key not in ("step", "func_evals", "n_iter") and any(
                    isinstance(v, torch.Tensor) and not v.is_floating_point() for v in values):
                raise damaged(path, f"optimizer state {key!r} of parameter {index} is not "
                                    "floating-point")
    try:
        optimizer.load_state_dict(stored)
    except Exception as error:  # groups or sizes that do not fit
        raise damaged(path, f"its optimizer state does not fit the model "
                             f"({describe_error(error)})") from error
    for group, before in zip(optimizer.param_groups, fresh):
        for key, value in before.items():
            if key in ("params", "lr", "initial_lr"):
                continue
            if not _same_kind(group.get(key), value):
                raise damaged(path, f"optimizer hyperparameter {key!r} is "
                                     f"{_short(group.get(key))}, expected a value like "
                                     f"{value!r}")
    if isinstance(optimizer, torch.optim.LBFGS):
        _check_lbfgs_state(optimizer.state.get(params[0], {}), total,
                           optimizer.param_groups[0]["history_size"], path)
        return
    for index, p in enumerate(params):
        state = optimizer.state.get(p, {})
        if not state:
            continue
        moments = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"]
                                               if optimizer.param_groups[0]["amsgrad"] else [])
        shape = tuple(p.shape)
        checks = {k: (_tensor_of((shape,)), f"a finite tensor of shape {shape}")
                  for k in moments}
        _require(state, {"step": (_is_count_like, "a step count"), **checks}, path,
                 f"optimizer state of parameter {index}: ")


def _is_count_like(x) -> bool:
    """A step count: a whole number >= 0, or a 0-d tensor holding one (Adam's ``step``)."""
    if isinstance(x, torch.Tensor):
        return x.dim() == 0 and bool(torch.isfinite(x)) and float(x) >= 0
    return _is_int(x) and x >= 0


def _is_scalar(x) -> bool:
    """A finite number or a finite 0-d tensor."""
    if isinstance(x, torch.Tensor):
        return x.dim() == 0 and x.is_floating_point() and bool(torch.isfinite(x))
    return _is_real(x)


def _tensor_of(shapes: tuple):
    """A test: a finite floating-point tensor of one of ``shapes``."""
    def test(x) -> bool:
        return isinstance(x, torch.Tensor) and x.is_floating_point() \
            and tuple(x.shape) in shapes and bool(torch.isfinite(x).all())
    return test


def _check_lbfgs_state(state: dict, total: int, history: int, path) -> None:
    """L-BFGS's state (kept on its first parameter): counters and, after its first step, the
    direction, step, memory of ``history`` pairs of flat vectors of size ``total``, and the
    previous gradient and loss."""
    where = "L-BFGS state: "
    _require(state, {"func_evals": (_is_count_like, "a whole number >= 0"),
                     "n_iter": (_is_count_like, "a whole number >= 0")}, path, where)
    if int(state["n_iter"]) == 0:
        return
    flat = _tensor_of(((total,),))

    def vectors(x) -> bool:
        return isinstance(x, list) and len(x) <= history and all(flat(v) for v in x)

    _require(state, {"d": (flat, f"a finite vector of size {total}"),
                     "t": (_is_scalar, "a finite number"),
                     "old_dirs": (vectors, f"a list of at most {history} vectors of size {total}"),
                     "old_stps": (vectors, f"a list of at most {history} vectors of size {total}"),
                     "ro": (lambda x: isinstance(x, list) and all(_is_scalar(r) for r in x),
                            "a list of numbers"),
                     "H_diag": (_is_scalar, "a finite number"),
                     "prev_flat_grad": (flat, f"a finite vector of size {total}"),
                     "prev_loss": (_is_scalar, "a finite number")}, path, where)
    if not len(state["old_dirs"]) == len(state["old_stps"]) == len(state["ro"]):
        raise damaged(path, f"{where}old_dirs, old_stps and ro differ in length")
    if "al" in state and not (isinstance(state["al"], list) and len(state["al"]) == history
                              and all(a is None or _is_scalar(a) for a in state["al"])):
        raise damaged(path, f"{where}'al' must be a list of {history} numbers or None")


def _same_kind(value, like) -> bool:
    if isinstance(like, bool) or like is None:
        return value is None or isinstance(value, bool)
    if isinstance(like, numbers.Integral):
        return _is_int(value)
    if isinstance(like, numbers.Real):
        return _is_real(value)
    if isinstance(like, (tuple, list)):
        return isinstance(value, (tuple, list)) and len(value) == len(like) \
            and all(_same_kind(v, w) for v, w in zip(value, like))
    if isinstance(like, str):
        return value == like
    return True
