"""The options :func:`pikan.fit` decides on its own: every option resolved from the data
and the model, with the reason of each automatic choice, and the check that a resumed fit
is not given options that differ from its checkpoint's."""

from __future__ import annotations

import torch

from pikan.train import losses
from pikan.train.recipe import Recipe

LOSSES = ("auto", "acceleration", "rollout")

_NUMERIC_OPTIONS = ("loss", "steps", "optimizer", "lr", "batch_size", "weight_decay", "clip",
                    "val_fraction", "sparsity", "derivatives", "window", "rollout_method",
                    "dtype", "seed", "max_faults", "eval_every")


def resolve(model, data, opts: dict, device) -> tuple[dict, Recipe]:
    """Every option resolved, with the reasons of the automatic choices."""
    config = {}
    reasons = {}
    loss = opts["loss"] or "auto"
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if loss == "auto":
        loss, reasons["loss"] = losses.choose_loss(data)
    else:
        reasons["loss"] = "given"
    config["loss"] = loss
    config["derivatives"] = opts["derivatives"] or "savgol"
    dtype = opts["dtype"] or (torch.float64 if device.type == "cpu" else torch.float32)
    config["dtype"] = str(dtype).replace("torch.", "")
    config["seed"] = int(opts["seed"] or 0)
    config["val_fraction"] = 0.2 if opts["val_fraction"] is None else float(opts["val_fraction"])
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if loss == "rollout":
        method = opts["rollout_method"] or "auto"
        if method not in ("auto", "rk4", "verlet"):
            raise ValueError(f"rollout_method must be 'auto', 'rk4' or 'verlet', got {method!r}")
        if method == "auto":
            method = "verlet" if losses.velocity_free(model) else "rk4"
            reasons["rollout_method"] = (
                "velocity Verlet: the accelerations do not depend on velocities (symplectic, "
                "one force evaluation per step)" if method == "verlet" else
                "RK4: the accelerations depend on velocities")
        config["rollout_method"] = method
        length, every, reasons["window"] = losses.rollout_window(data, opts["window"])
        config["window"], config["every"] = length, every
        default_steps, default_batch, full = 300, 64, 128
    else:
        config["rollout_method"], config["window"], config["every"] = None, None, None
        default_steps = 800 if n_params <= 2000 else 2000
        default_batch, full = 1024, 8192
    steps = opts["steps"]
    config["steps"] = int(steps) if steps is not None else default_steps
    reasons["steps"] = "given" if steps is not None else (
        f"default for the {loss} loss and {n_params} parameters")
    config["batch_size"] = int(opts["batch_size"] or default_batch)
    config["lbfgs_batch"] = max(full, config["batch_size"])
    config["eval_size"] = 8192 if loss == "acceleration" else 512
    config["lr"] = float(opts["lr"] or 1e-2)
    config["weight_decay"] = float(opts["weight_decay"] or 0.0)
    config["clip"] = 10.0 if opts["clip"] is None else (None if opts["clip"] is False
                                                        else float(opts["clip"]))
    config["sparsity"] = 1e-3 if opts["sparsity"] is None else float(opts["sparsity"])
    config["sparsity_weights"] = [1.0, 2.0]
    config["max_faults"] = int(opts["max_faults"] or 5)
    recipe = opts["recipe"]
    if isinstance(recipe, Recipe) or (recipe is not None and not isinstance(recipe, str)):
        if steps is not None or opts["optimizer"] is not None:
            raise ValueError("give steps and optimizers in the recipe's stages, not as fit "
                             "options, when passing a Recipe")
        recipe = recipe if isinstance(recipe, Recipe) else Recipe(recipe)
        reasons["recipe"] = "given"
        config["steps"] = recipe.total_steps
    elif recipe in (None, "auto", "default"):
        learned = bool(losses.learned_kans(model))
        if learned and loss == "rollout":
            recipe = Recipe.default(config["steps"], sparsity=config["sparsity"],
                                    optimizer=opts["optimizer"], refine=False)
            reasons["recipe"] = ("the progressive KAN recipe without grid refinement (noisy "
                                 "data: a finer grid fits the noise)")
        elif learned:
            recipe = Recipe.default(config["steps"], sparsity=config["sparsity"],
                                    optimizer=opts["optimizer"])
            reasons["recipe"] = "the progressive KAN recipe (the model has learned KAN blocks)"
        else:
            recipe = Recipe.plain(config["steps"], opts["optimizer"] or "adam+lbfgs")
            reasons["recipe"] = "a single fit stage (no learned KAN blocks to prune or refine)"
    elif recipe == "plain":
        recipe = Recipe.plain(config["steps"], opts["optimizer"] or "adam+lbfgs")
        reasons["recipe"] = "given"
    else:
        raise ValueError(f"recipe must be a Recipe, a list of Stage, 'default' or 'plain', "
                         f"got {recipe!r}")
    config["eval_every"] = int(opts["eval_every"] or max(1, recipe.total_steps // 100))
    config["optimizer"] = opts["optimizer"]
    config["recipe"] = str(recipe)
    config["reasons"] = reasons
    return config, recipe


def check_resume_options(opts: dict, config: dict, resume) -> None:
    """Options passed together with ``resume`` must agree with the stored ones."""
    stored = dict(config)
    stored["recipe"] = None  # a recipe object cannot be compared to its text; refuse changes
    for key in _NUMERIC_OPTIONS:
        value = opts.get(key)
        if value is None:
            continue
        if key == "dtype":
            value = str(value).replace("torch.", "")
        if value != stored.get(key):
            raise ValueError(f"resume={str(resume)!r}: option {key}={value!r} differs from the "
                             f"checkpoint's {stored.get(key)!r}; a resumed fit continues with the "
                             "stored options (leave them out)")
    if opts.get("recipe") is not None:
        raise ValueError(f"resume={str(resume)!r}: the recipe is stored in the checkpoint; "
                         "leave recipe out")
