"""The options of :func:`pikan.fit` as small validated groups, and their resolution.

::

    pikan.fit(model, data,
              loss=LossOptions("rollout", window=12),
              optimizer=OptimizerOptions(lr=3e-3, batch_size=256),
              schedule=ScheduleOptions(steps=2000, time_limit=60),
              checkpoint=CheckpointOptions("runs/trap/ckpt.pt", every=200))

Five groups, one class each, each validating its own fields when it is made:

==========================  ============================================================
:class:`LossOptions`        what is minimized: the loss kind, derivative estimates, rollout
                            windows and their integrator, the sparsity weight
:class:`OptimizerOptions`   how a step moves: the optimizers, learning rate, batch size,
                            weight decay, gradient clipping
:class:`ScheduleOptions`    how long training runs and what stops it: steps, the recipe,
                            validation split and checks, faults in a row, time
:class:`CheckpointOptions`  where and how often the state is saved, what to resume
:class:`ProgressOptions`    the progress display
==========================  ============================================================

Each group has a short form (a string for ``loss`` and ``optimizer``: the kind; a path for
``checkpoint``; a bool for ``progress``), and each field is also a flat keyword of
:func:`pikan.fit` (:data:`FLAT_KEYWORDS`: ``lr=`` fills :attr:`OptimizerOptions.lr`), so
``fit(model, data, loss="rollout", lr=3e-3)`` works as well; a group object and a flat
keyword of the same group together are refused. :func:`gather` makes the groups from
fit's arguments (:class:`FitOptions`).

A field left None is chosen by fit from the data and the model: :func:`resolve` turns the
groups into the resolved options (a flat dict, :data:`CONFIG_KEYS`) with the reason of
each automatic choice; a checkpoint stores that dict, and :func:`check_resume_options`
refuses options given with ``resume`` that differ from it, and :func:`check_stored_config`
checks it when a checkpoint is read back. :func:`loss_kind_of` turns that dict into the
:class:`pikan.train.losses.LossKind` the fit trains on.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass

import torch

from pikan.data.derivatives import ESTIMATORS
from pikan.errors import SpecError
from pikan.train import losses
from pikan.train.recipe import OPTIMIZERS, Recipe, Stage

__all__ = [
    "CONFIG_KEYS",
    "FIRST_ORDER_LOSSES",
    "FLAT_KEYWORDS",
    "LOSSES",
    "LOSS_SETTINGS",
    "RECIPES",
    "ROLLOUT_METHODS",
    "SEED_LIMIT",
    "CheckpointOptions",
    "FitOptions",
    "LossOptions",
    "OptimizerOptions",
    "ProgressOptions",
    "ScheduleOptions",
    "check_resume_options",
    "check_seed",
    "check_stored_config",
    "float_dtype",
    "gather",
    "loss_kind_of",
    "resolve",
]

LOSSES = ("auto", *losses.LOSS_KINDS)
"""Loss kinds: ``"auto"`` (follows :func:`pikan.train.losses.choose_loss`) and every name of
:data:`pikan.train.losses.LOSS_KINDS`."""

LOSS_SETTINGS = {"rollout": {"method": "rollout_method", "length": "window", "every": "every"},
                 "weak": {"length": "window", "every": "every"},
                 "weak_rate": {"length": "window", "every": "every"}}
"""Which resolved options (:data:`CONFIG_KEYS`) become a loss kind's settings, by kind name:
``{kind: {setting: config key}}``. A kind that is absent takes no settings
(:func:`loss_kind_of`)."""

FIRST_ORDER_LOSSES = ("rate", "weak_rate")
"""The loss kinds of first-order systems (and the only ones they take)."""

ROLLOUT_METHODS = ("auto", "rk4", "verlet")
"""Integrators of the rollout loss."""

RECIPES = ("auto", "default", "plain")
"""Recipes fit builds by name (``"auto"`` and ``"default"`` are the same)."""

CONFIG_KEYS = ("loss", "derivatives", "dtype", "seed", "val_fraction", "rollout_method",
               "window", "every", "steps", "batch_size", "lbfgs_batch", "eval_size", "lr",
               "weight_decay", "clip", "sparsity", "sparsity_weights", "max_faults",
               "eval_every", "optimizer", "recipe", "reasons")
"""The resolved options, in the order ``result.choices`` lists them (fit adds
``checkpoint_every`` and ``log_every``). A checkpoint stores them as this flat dict."""


# ----------------------------------------------------------------------------- field checks


def _where(cls, field: str, flat: str) -> str:
    """How a message names a field: the flat keyword, and the group's field when it differs
    from the keyword's spelling (``checkpoint_every (CheckpointOptions.every)``)."""
    return f"{flat} ({cls.__name__}.{field})"


def _number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_count(cls, field: str, flat: str, value, least: int = 1) -> None:
    """``value`` is None or a whole number >= ``least``."""
    if value is None:
        return
    if not (_number(value) and math.isfinite(value) and value == int(value) and value >= least):
        raise ValueError(f"{_where(cls, field, flat)} must be a whole number >= {least}, got "
                         f"{value!r}; hint: leave it out (None) for the automatic choice")


def _check_real(cls, field: str, flat: str, value, *, positive: bool = False,
                below: float | None = None) -> None:
    """``value`` is None or a finite number >= 0 (> 0 with ``positive``, < ``below``)."""
    if value is None:
        return
    ok = _number(value) and math.isfinite(value) and (value > 0 if positive else value >= 0)
    if ok and below is not None:
        ok = value < below
    if not ok:
        bound = "> 0" if positive else ">= 0"
        if below is not None:
            bound += f" and < {below:g}"
        raise ValueError(f"{_where(cls, field, flat)} must be a finite number {bound}, got "
                         f"{value!r}; hint: leave it out (None) for the automatic choice")


def _check_choice(cls, field: str, flat: str, value, choices: tuple) -> None:
    if value is not None and value not in choices:
        raise ValueError(f"{flat} must be one of {choices}, got {value!r} "
                         f"({cls.__name__}.{field})")


def _check_path(cls, field: str, flat: str, value) -> None:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{_where(cls, field, flat)} must be a path (str or pathlib.Path), got "
                        f"{type(value).__name__} {value!r}")


SEED_LIMIT = 2**64 - 1
"""Seeds are whole numbers in ``[0, SEED_LIMIT)``: the batch sampler's torch generator takes
``seed + 1``, and torch seeds stop at ``2**64 - 1``."""


def check_seed(seed, name: str = "seed") -> None:
    """``seed`` is None or a whole number in ``[0, SEED_LIMIT)`` (not a bool).

    Raises
    ------
    ValueError
        Naming ``name`` and the allowed range.
    """
    if seed is None:
        return
    ok = isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
    if not ok or not 0 <= int(seed) < SEED_LIMIT:
        raise ValueError(f"{name} must be a whole number in [0, 2**64 - 1), got {seed!r}")


def float_dtype(dtype) -> torch.dtype | None:
    """The torch floating dtype ``dtype`` names (a ``torch.dtype`` or its name, e.g.
    ``"float64"``), or None when it names none."""
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
        return dtype
    return None


# ----------------------------------------------------------------------------- the groups


@dataclass(frozen=True)
class LossOptions:
    """What a fit minimizes. Every field None: chosen by fit from the data and the model.

    Parameters
    ----------
    kind : {"auto", "acceleration", "rollout", "weak", "rate", "weak_rate"}, optional
        The data term (fit's ``loss=``): a name of :data:`pikan.train.losses.LOSS_KINDS`
        (:data:`LOSSES`). ``"auto"`` (the default) follows
        :func:`pikan.train.losses.choose_loss`: accelerations when the data has them or its
        positions are clean, weak-form matching of noisy positions otherwise; for a
        first-order system :func:`pikan.train.losses.choose_rate_loss` (``"rate"`` or
        ``"weak_rate"``, the only kinds it takes).
    derivatives : str, optional
        How missing velocities and accelerations are estimated from positions (default
        ``"savgol"``; ``"finite_difference"`` for clean data). The data layer checks the name.
    window : int, optional
        Points per rollout window, at least 2 (default 16, spaced to cover a quarter of the
        time scale; :func:`pikan.train.losses.rollout_window`), or per weak-form window, at
        least 9 (default: up to 48 covering half the time scale;
        :func:`pikan.train.losses.weak_window`).
    rollout_method : {"auto", "rk4", "verlet"}, optional
        Integrator of the rollout loss. ``"auto"``: velocity Verlet when the accelerations
        cannot depend on velocities (potentials of positions only; symplectic, one force
        evaluation per step, frequency error about (omega h)^2/24 ~ 5e-4 with the default
        window), else RK4.
    sparsity : float, optional
        Weight of the KAN sparsity penalty in the coarse stage of the default recipe
        (default 1e-3; >= 0).
    """

    kind: str | None = None
    derivatives: str | None = None
    window: int | None = None
    rollout_method: str | None = None
    sparsity: float | None = None

    def __post_init__(self) -> None:
        _check_choice(LossOptions, "kind", "loss", self.kind, LOSSES)
        if self.derivatives is not None and not isinstance(self.derivatives, str):
            raise TypeError(f"derivatives must be the name of a derivative estimate (str), got "
                            f"{self.derivatives!r} (LossOptions.derivatives)")
        _check_count(LossOptions, "window", "window", self.window, least=2)
        _check_choice(LossOptions, "rollout_method", "rollout_method", self.rollout_method,
                      ROLLOUT_METHODS)
        _check_real(LossOptions, "sparsity", "sparsity", self.sparsity)


@dataclass(frozen=True)
class OptimizerOptions:
    """How each step moves the parameters. Every field None: fit's default.

    Parameters
    ----------
    kind : {"adam", "adamw", "lbfgs", "adam+lbfgs"}, optional
        Replaces the optimizers of the automatic recipe (fit's ``optimizer=``); a given
        :class:`Recipe` names its own in its stages.
    lr : float, optional
        Adam/AdamW base learning rate, > 0 (default 1e-2; cosine decay to a tenth per
        stage). L-BFGS uses 1 with a strong-Wolfe line search.
    batch_size : int, optional
        States (acceleration) or windows (rollout, weak) per Adam step, over all processes
        of a distributed fit (default 1024 / 64 / 64). L-BFGS uses a fixed subset of up to
        8192 states / 128 / 256 windows, or ``batch_size`` when larger.
    weight_decay : float, optional
        AdamW decay, >= 0 (default 0).
    clip : float or False, optional
        Gradient norm clipping for Adam, > 0 (default 10; False: off).
    """

    kind: str | None = None
    lr: float | None = None
    batch_size: int | None = None
    weight_decay: float | None = None
    clip: float | bool | None = None

    def __post_init__(self) -> None:
        _check_choice(OptimizerOptions, "kind", "optimizer", self.kind, OPTIMIZERS)
        _check_real(OptimizerOptions, "lr", "lr", self.lr, positive=True)
        _check_count(OptimizerOptions, "batch_size", "batch_size", self.batch_size)
        _check_real(OptimizerOptions, "weight_decay", "weight_decay", self.weight_decay)
        if self.clip is not False:
            if self.clip is True:
                raise ValueError("clip must be a positive gradient norm or False (no clipping), "
                                 "got True (OptimizerOptions.clip)")
            _check_real(OptimizerOptions, "clip", "clip", self.clip, positive=True)


@dataclass(frozen=True)
class ScheduleOptions:
    """How long training runs and what stops it. Every field None: fit's default.

    Parameters
    ----------
    steps : int, optional
        Total optimizer steps of the automatic recipe (default 800 for accelerations, 2000
        for models over 2000 parameters, 300 for rollouts).
    recipe : Recipe, list of Stage, "auto", "default" or "plain", optional
        Default: the progressive recipe (:meth:`Recipe.default`) when the model has learned
        KAN blocks, else one fit stage. A given recipe names its steps and optimizers in its
        stages (``steps`` and the optimizer kind are then refused). A list of stages is made
        a :class:`Recipe` here.
    eval_every : int, optional
        Adam steps between validation checks (default steps/100; L-BFGS: every step).
    val_fraction : float, optional
        Share of trajectories held out for validation, in [0, 1) (default 0.2; split by
        trajectory; 0: the checks watch a fixed training subset). Each fit stage stops early
        when the validation objective stalls and restores its best.
    max_faults : int, optional
        Non-finite steps in a row before :class:`pikan.train.loop.TrainingError` (default 5).
    time_limit : float, optional
        Seconds of wall time for the fit call, > 0. When they are used up, training stops
        after the current step (or before the next structural stage) with the current fit
        stage's best state, a ``time_limit`` event and ``result.stopped == "time limit"``.
        The preparation before the first step (derivative estimates, moving the data)
        counts too.
    deadline : float, optional
        The same as an absolute :func:`time.perf_counter` instant, for a caller sharing one
        budget over several stages (``discover``); with both, the earlier one holds.
    """

    steps: int | None = None
    recipe: Recipe | str | None = None
    eval_every: int | None = None
    val_fraction: float | None = None
    max_faults: int | None = None
    time_limit: float | None = None
    deadline: float | None = None

    def __post_init__(self) -> None:
        _check_count(ScheduleOptions, "steps", "steps", self.steps)
        recipe = self.recipe
        if isinstance(recipe, str) or recipe is None:
            if recipe is not None and recipe not in RECIPES:
                raise ValueError(f"recipe must be a Recipe, a list of Stage, 'default' or "
                                 f"'plain', got {recipe!r}")
        elif not isinstance(recipe, Recipe):
            if isinstance(recipe, Stage) or not hasattr(recipe, "__iter__"):
                raise ValueError(f"recipe must be a Recipe, a list of Stage, 'default' or "
                                 f"'plain', got {recipe!r}")
            object.__setattr__(self, "recipe", Recipe(recipe))  # checks the stages
        if isinstance(self.recipe, Recipe):
            for stage in self.recipe.stages:
                if stage.params != "all":
                    raise ValueError(f"recipe stage {stage}: fit trains every parameter of a "
                                     f"fit stage; params={stage.params!r} is for static KAN "
                                     "fits (pikan.laws.find_law.fit_static).")
        _check_count(ScheduleOptions, "eval_every", "eval_every", self.eval_every)
        _check_real(ScheduleOptions, "val_fraction", "val_fraction", self.val_fraction,
                    below=1.0)
        _check_count(ScheduleOptions, "max_faults", "max_faults", self.max_faults)
        if self.time_limit is not None and not (_number(self.time_limit)
                                                and self.time_limit > 0):
            raise ValueError(f"time_limit must be a positive number of seconds, got "
                             f"{self.time_limit!r} (ScheduleOptions.time_limit)")
        if self.deadline is not None and not (_number(self.deadline)
                                              and not math.isnan(self.deadline)):
            raise ValueError(f"deadline must be a time.perf_counter() instant (a number), got "
                             f"{self.deadline!r} (ScheduleOptions.deadline)")

    @property
    def given_recipe(self) -> bool:
        """Whether the recipe is a :class:`Recipe` (not a name fit builds from)."""
        return isinstance(self.recipe, Recipe)


@dataclass(frozen=True)
class CheckpointOptions:
    """Where and how often a fit saves its state, and what it resumes.

    Parameters
    ----------
    path : str or Path, optional
        Written every ``every`` steps, after interrupts and at the end (fit's
        ``checkpoint=``); default: the ``resume`` file, else no checkpoint.
    every : int, optional
        Steps between checkpoints (default: the resumed checkpoint's, else 100).
    resume : str or Path, optional
        A checkpoint of an earlier fit of this model's spec on the same data: continue
        exactly where it stopped, with the options stored in it (options passed with it
        must agree). Data other than the checkpoint's (its fingerprint,
        :func:`pikan.train.checkpoint.data_fingerprint`) are refused unless ``other_data``.
    other_data : bool
        Resume on data other than the checkpoint's (fit's ``resume_other_data=``; default
        False). The model, optimizer, options and recipe position continue; the loss
        scales, the sampler's epoch and the stage's best state come from the new data.
    """

    path: str | os.PathLike | None = None
    every: int | None = None
    resume: str | os.PathLike | None = None
    other_data: bool = False

    def __post_init__(self) -> None:
        _check_path(CheckpointOptions, "path", "checkpoint", self.path)
        _check_count(CheckpointOptions, "every", "checkpoint_every", self.every)
        _check_path(CheckpointOptions, "resume", "resume", self.resume)
        if not isinstance(self.other_data, bool):
            raise TypeError(f"{_where(CheckpointOptions, 'other_data', 'resume_other_data')} "
                            f"must be True or False, got {self.other_data!r}")
        if self.other_data and self.resume is None:
            raise ValueError("resume_other_data=True (CheckpointOptions.other_data) needs "
                             "resume= (the checkpoint to continue on other data)")


@dataclass(frozen=True)
class ProgressOptions:
    """The progress display (:mod:`pikan.train.progress`).

    Parameters
    ----------
    show : bool
        tqdm on a terminal, else a line every ``every`` steps on stderr (fit's
        ``progress=``; default True). In a distributed fit only rank 0 shows it.
    every : int, optional
        Steps between lines when stderr is not a terminal (default: a twentieth of the
        recipe's steps).
    """

    show: bool = True
    every: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.show, bool):
            raise TypeError(f"progress must be True or False, got {self.show!r} "
                            "(ProgressOptions.show)")
        _check_count(ProgressOptions, "every", "log_every", self.every)


# ----------------------------------------------------------------------------- fit's arguments

_GROUPS = {"loss": (LossOptions, "kind"), "optimizer": (OptimizerOptions, "kind"),
           "schedule": (ScheduleOptions, None), "checkpoint": (CheckpointOptions, "path"),
           "progress": (ProgressOptions, "show")}
"""fit's group arguments: the class and the field its short form fills."""

FLAT_KEYWORDS = {
    "derivatives": ("loss", "derivatives"), "window": ("loss", "window"),
    "rollout_method": ("loss", "rollout_method"), "sparsity": ("loss", "sparsity"),
    "lr": ("optimizer", "lr"), "batch_size": ("optimizer", "batch_size"),
    "weight_decay": ("optimizer", "weight_decay"), "clip": ("optimizer", "clip"),
    "steps": ("schedule", "steps"), "recipe": ("schedule", "recipe"),
    "eval_every": ("schedule", "eval_every"), "val_fraction": ("schedule", "val_fraction"),
    "max_faults": ("schedule", "max_faults"), "time_limit": ("schedule", "time_limit"),
    "deadline": ("schedule", "deadline"),
    "checkpoint_every": ("checkpoint", "every"), "resume": ("checkpoint", "resume"),
    "resume_other_data": ("checkpoint", "other_data"),
    "log_every": ("progress", "every"),
}
"""fit's flat keywords: keyword -> (group argument, field of its class)."""


@dataclass(frozen=True)
class FitOptions:
    """Every option of one fit call: the five groups, the dtype and the seed.

    Made by :func:`gather` from fit's arguments; :func:`resolve` chooses what is left None.
    """

    loss: LossOptions
    optimizer: OptimizerOptions
    schedule: ScheduleOptions
    checkpoint: CheckpointOptions
    progress: ProgressOptions
    dtype: torch.dtype | str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.schedule.given_recipe and (self.schedule.steps is not None
                                           or self.optimizer.kind is not None):
            raise ValueError("give steps and optimizers in the recipe's stages, not as fit "
                             "options, when passing a Recipe")
        check_seed(self.seed, "seed")
        if self.dtype is not None and float_dtype(self.dtype) is None:
            raise ValueError(f"dtype must be a torch floating dtype (torch.float64, "
                             f"torch.float32, or its name such as 'float64'), got "
                             f"{self.dtype!r}; hint: leave it out for float64 on the CPU, "
                             "float32 elsewhere")

    def given(self) -> dict:
        """The options the caller set, by fit's keyword (``loss``, ``lr``, ``steps``, ...,
        ``dtype``, ``seed``); the ones left None are left out."""
        out = {"loss": self.loss.kind, "optimizer": self.optimizer.kind,
               "dtype": self.dtype, "seed": self.seed}
        for key, (group, field) in FLAT_KEYWORDS.items():
            out[key] = getattr(getattr(self, group), field)
        return {k: v for k, v in out.items() if v is not None}


def gather(*, loss=None, optimizer=None, schedule=None, checkpoint=None, progress=True,
           dtype=None, seed=None, **flat) -> FitOptions:
    """fit's option arguments as a :class:`FitOptions`.

    Each of ``loss``, ``optimizer``, ``schedule``, ``checkpoint`` and ``progress`` is its
    group's object, or its short form (a loss kind, an optimizer kind, a checkpoint path, a
    bool; None: the defaults), which the flat keywords of the group (:data:`FLAT_KEYWORDS`)
    complete.

    Raises
    ------
    TypeError
        An unknown keyword, or a group argument of another group's class.
    ValueError
        A group object together with a flat keyword of the same group; an invalid field.
    """
    unknown = sorted(set(flat) - set(FLAT_KEYWORDS))
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {unknown[0]!r}; its options "
                        f"are loss=, optimizer=, schedule=, checkpoint=, progress= (see "
                        f"pikan.train.options) and the keywords {sorted(FLAT_KEYWORDS)}")
    heads = {"loss": loss, "optimizer": optimizer, "schedule": schedule,
             "checkpoint": checkpoint, "progress": progress}
    groups = {}
    for name, (cls, head_field) in _GROUPS.items():
        head = heads[name]
        fields = {field: flat[key] for key, (group, field) in FLAT_KEYWORDS.items()
                  if group == name and flat.get(key) is not None}
        if isinstance(head, cls):
            if fields:
                key = next(k for k, (g, f) in FLAT_KEYWORDS.items() if g == name and f in fields)
                raise ValueError(f"fit got {name}={cls.__name__}(...) and {key}={flat[key]!r}; "
                                 f"give {key} inside the {cls.__name__} ({cls.__name__}(..., "
                                 f"{FLAT_KEYWORDS[key][1]}={flat[key]!r})) or pass the flat "
                                 "keywords alone, not both")
            groups[name] = head
            continue
        others = tuple(c for c, _ in _GROUPS.values() if c is not cls)
        if isinstance(head, others):
            raise TypeError(f"fit({name}=...) takes a {cls.__name__}, got a "
                            f"{type(head).__name__}")
        if head_field is None:
            if head is not None:
                raise TypeError(f"fit({name}=...) takes a {cls.__name__}, got {head!r}")
        elif name == "progress":
            fields[head_field] = bool(head)  # progress=None turned the display off
        elif head is not None:
            fields[head_field] = head
        groups[name] = cls(**fields)
    return FitOptions(**groups, dtype=dtype, seed=seed)


# ----------------------------------------------------------------------------- resolution


def _resolve_loss(options: LossOptions, model, data, reasons: dict) -> dict:
    """The loss kind, derivative estimates, rollout window and integrator, sparsity."""
    kind = options.kind or "auto"
    first_order = getattr(model, "order", 2) == 1
    if kind == "auto" and first_order:
        kind, reasons["loss"] = losses.choose_rate_loss(data)
    elif kind == "auto":
        kind, reasons["loss"] = losses.choose_loss(data)
    else:
        reasons["loss"] = "given"
    if first_order != (kind in FIRST_ORDER_LOSSES):
        use = "'auto', 'rate' or 'weak_rate'" if first_order else "'auto'"
        raise SpecError(f"loss={kind!r} does not fit a {'first' if first_order else 'second'}"
                        f"-order system; use {use}")
    out = {"loss": kind, "derivatives": options.derivatives or "savgol"}
    if kind == "rollout":
        method = options.rollout_method or "auto"
        if method == "auto":
            method = "verlet" if losses.velocity_free(model) else "rk4"
            reasons["rollout_method"] = (
                "velocity Verlet: the accelerations do not depend on velocities (symplectic, "
                "one force evaluation per step)" if method == "verlet" else
                "RK4: the system is driven (time is an input)" if model.driven else
                "RK4: the accelerations depend on velocities")
        elif method == "verlet" and model.driven:
            raise SpecError("rollout_method='verlet' does not carry time: system "
                            f"{model.spec.name!r} is driven; use 'rk4' or 'auto'")
        out["rollout_method"] = method
        out["window"], out["every"], reasons["window"] = losses.rollout_window(data,
                                                                               options.window)
    elif kind in ("weak", "weak_rate"):
        out["rollout_method"] = None
        out["window"], out["every"], reasons["window"] = losses.weak_window(
            data, options.window, order=1 if first_order else 2)
    else:
        out["rollout_method"], out["window"], out["every"] = None, None, None
    out["sparsity"] = 1e-3 if options.sparsity is None else float(options.sparsity)
    out["sparsity_weights"] = [1.0, 2.0]
    return out


def _resolve_optimizer(options: OptimizerOptions, loss: str) -> dict:
    """Batch sizes (Adam, the L-BFGS subset), learning rate, decay, clipping."""
    default_batch, full = {"rollout": (64, 128), "weak": (64, 256),
                           "weak_rate": (64, 256)}.get(loss, (1024, 8192))
    batch = int(options.batch_size or default_batch)
    clip = options.clip
    return {"batch_size": batch, "lbfgs_batch": max(full, batch),
            "lr": float(options.lr or 1e-2), "weight_decay": float(options.weight_decay or 0.0),
            "clip": 10.0 if clip is None else (None if clip is False else float(clip)),
            "optimizer": options.kind}


def _recipe(options: ScheduleOptions, optimizer: str | None, model, loss: str, steps: int,
            sparsity: float, reasons: dict) -> Recipe:
    """The recipe given, or the one fit builds for this model and loss."""
    if options.given_recipe:
        reasons["recipe"] = "given"
        return options.recipe
    if options.recipe == "plain":
        reasons["recipe"] = "given"
        return Recipe.plain(steps, optimizer or "adam+lbfgs")
    learned = bool(losses.learned_kans(model))
    if learned and loss in ("rollout", "weak", "weak_rate"):
        reasons["recipe"] = ("the progressive KAN recipe without grid refinement (noisy data: "
                             "a finer grid fits the noise)")
        return Recipe.default(steps, sparsity=sparsity, optimizer=optimizer, refine=False)
    if learned:
        reasons["recipe"] = "the progressive KAN recipe (the model has learned KAN blocks)"
        return Recipe.default(steps, sparsity=sparsity, optimizer=optimizer)
    reasons["recipe"] = "a single fit stage (no learned KAN blocks to prune or refine)"
    return Recipe.plain(steps, optimizer or "adam+lbfgs")


def _resolve_schedule(options: ScheduleOptions, optimizer: str | None, model, loss: str,
                      sparsity: float, reasons: dict) -> tuple[dict, Recipe]:
    """Steps, the recipe, validation split and checks, faults in a row."""
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if options.steps is not None:
        steps, reasons["steps"] = int(options.steps), "given"
    else:
        steps = 300 if loss == "rollout" else (800 if n_params <= 2000 else 2000)
        reasons["steps"] = f"default for the {loss} loss and {n_params} parameters"
    recipe = _recipe(options, optimizer, model, loss, steps, sparsity, reasons)
    if options.given_recipe:
        steps = recipe.total_steps
    out = {"steps": steps,
           "val_fraction": 0.2 if options.val_fraction is None else float(options.val_fraction),
           "eval_size": 8192 if loss == "acceleration" else 512,
           "max_faults": int(options.max_faults or 5),
           "eval_every": int(options.eval_every or max(1, recipe.total_steps // 100)),
           "recipe": str(recipe)}
    return out, recipe


def resolve(model, data, options: FitOptions, device) -> tuple[dict, Recipe]:
    """Every option resolved, with the reasons of the automatic choices.

    Parameters
    ----------
    model : Model
    data : Trajectories
    options : FitOptions
    device : torch.device
        The default dtype is float64 on the CPU, float32 elsewhere.

    Returns
    -------
    (config, recipe) : (dict, Recipe)
        ``config`` has the keys :data:`CONFIG_KEYS` in that order; ``config["reasons"]``
        says why each automatic choice was made.
    """
    reasons = {}
    loss = _resolve_loss(options.loss, model, data, reasons)
    optimizer = _resolve_optimizer(options.optimizer, loss["loss"])
    schedule, recipe = _resolve_schedule(options.schedule, options.optimizer.kind, model,
                                         loss["loss"], loss["sparsity"], reasons)
    dtype = options.dtype or (torch.float64 if device.type == "cpu" else torch.float32)
    config = {**loss, **optimizer, **schedule, "dtype": str(dtype).replace("torch.", ""),
              "seed": int(options.seed or 0), "reasons": reasons}
    return {key: config[key] for key in CONFIG_KEYS}, recipe


def loss_kind_of(config: dict) -> losses.LossKind:
    """The loss kind the resolved options name, with its settings (:data:`LOSS_SETTINGS`).

    Parameters
    ----------
    config : dict
        Resolved options (:func:`resolve`, or a checkpoint's ``config``).

    Returns
    -------
    LossKind
        e.g. ``RolloutLoss(method=config["rollout_method"], length=config["window"],
        every=config["every"])`` for ``config["loss"] == "rollout"``.
    """
    name = config["loss"]
    settings = {field: config[key] for field, key in LOSS_SETTINGS.get(name, {}).items()}
    return losses.loss_kind(name, **settings)


_STORED_OPTIONS = ("loss", "steps", "optimizer", "lr", "batch_size", "weight_decay", "clip",
                   "val_fraction", "sparsity", "derivatives", "window", "rollout_method",
                   "dtype", "seed", "max_faults", "eval_every")
"""Options a resumed fit takes from its checkpoint: given again, they must agree."""


def check_resume_options(options: FitOptions, config: dict, resume) -> None:
    """Options passed together with ``resume`` must agree with the stored ones.

    Raises
    ------
    ValueError
        An option that differs from the checkpoint's, or a recipe (stored in the checkpoint).
    """
    given = options.given()
    for key in _STORED_OPTIONS:
        value = given.get(key)
        if value is None:
            continue
        if key == "dtype":
            value = str(value).replace("torch.", "")
        if value != config.get(key):
            raise ValueError(f"resume={str(resume)!r}: option {key}={value!r} differs from the "
                             f"checkpoint's {config.get(key)!r}; a resumed fit continues with the "
                             "stored options (leave them out)")
    if given.get("recipe") is not None:
        raise ValueError(f"resume={str(resume)!r}: the recipe is stored in the checkpoint; "
                         "leave recipe out")


def _whole(least: int):
    return lambda x: isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= least


def _finite(*, positive: bool = False, below: float | None = None, optional: bool = False):
    def test(x) -> bool:
        if x is None:
            return optional
        ok = _number(x) and math.isfinite(x) and (x > 0 if positive else x >= 0)
        return ok and (below is None or x < below)
    return test


def _named(choices):
    """A test: a name (str) among ``choices``; with None in ``choices``, None too."""
    return lambda x: (x is None and None in choices) or (isinstance(x, str) and x in choices)


def _dtype_name(x) -> bool:
    return isinstance(x, str) and isinstance(getattr(torch, x, None), torch.dtype) \
        and getattr(torch, x).is_floating_point


_STORED_CHECKS = {
    "loss": (_named(tuple(losses.LOSS_KINDS)), f"one of {tuple(losses.LOSS_KINDS)}"),
    "derivatives": (_named(tuple(ESTIMATORS)), f"one of {tuple(ESTIMATORS)}"),
    "dtype": (_dtype_name, "a torch floating dtype name"),
    "seed": (_whole(0), "a whole number >= 0"),
    "val_fraction": (_finite(below=1.0), "a number in [0, 1)"),
    "rollout_method": (_named((None, *ROLLOUT_METHODS[1:])),
                       f"None or one of {ROLLOUT_METHODS[1:]}"),
    "window": (lambda x: x is None or _whole(2)(x), "None or a whole number >= 2"),
    "every": (lambda x: x is None or _whole(1)(x), "None or a whole number >= 1"),
    "steps": (_whole(1), "a whole number >= 1"),
    "batch_size": (_whole(1), "a whole number >= 1"),
    "lbfgs_batch": (_whole(1), "a whole number >= 1"),
    "eval_size": (_whole(1), "a whole number >= 1"),
    "lr": (_finite(positive=True), "a finite number > 0"),
    "weight_decay": (_finite(), "a finite number >= 0"),
    "clip": (_finite(positive=True, optional=True), "None or a finite number > 0"),
    "sparsity": (_finite(), "a finite number >= 0"),
    "sparsity_weights": (lambda x: isinstance(x, (list, tuple)) and len(x) == 2
                         and all(_finite()(w) for w in x), "two finite numbers >= 0"),
    "max_faults": (_whole(1), "a whole number >= 1"),
    "eval_every": (_whole(1), "a whole number >= 1"),
    "optimizer": (_named((None, *OPTIMIZERS)), f"None or one of {OPTIMIZERS}"),
    "recipe": (lambda x: isinstance(x, str), "the recipe's description (str)"),
    "reasons": (lambda x: isinstance(x, dict), "a dict"),
}
"""How :func:`check_stored_config` checks each key of :data:`CONFIG_KEYS`: (test, expected)."""

_STORED_OPTIONAL = {"checkpoint_every": (_whole(1), "a whole number >= 1"),
                    "log_every": (_whole(1), "a whole number >= 1")}


def check_stored_config(config) -> None:
    """Check resolved options read back from a checkpoint (:func:`resolve`'s dict).

    Every key of :data:`CONFIG_KEYS` must be there with a value :func:`resolve` could have
    made (``lr`` a finite number > 0, ``loss`` a loss kind, ...); a rollout loss needs its
    integrator, window and spacing.

    Raises
    ------
    TypeError
        ``config`` is not a dict.
    ValueError
        The first key missing or out of range, named with the value found.
    """
    if not isinstance(config, dict):
        raise TypeError(f"the stored options must be a dict, found {type(config).__name__}")
    for key, (test, expected) in (*_STORED_CHECKS.items(), *_STORED_OPTIONAL.items()):
        if key not in config:
            if key in _STORED_OPTIONAL:
                continue
            raise ValueError(f"stored option {key!r} is missing")
        if not test(config[key]):
            text = repr(config[key])
            raise ValueError(f"stored option {key}={text[:60]} is not {expected}")
    for key, setting in LOSS_SETTINGS.get(config["loss"], {}).items():
        if config[setting] is None:
            raise ValueError(f"stored option {setting} is None; the {config['loss']} loss "
                             f"needs its {key}")
