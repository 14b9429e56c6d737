"""Training: :func:`fit`, the progressive KAN recipe, checkpoints, and a run that survives faults.

::

    result = pikan.fit(model, data, steps=2000, checkpoint="runs/trap/ckpt.pt")
    model = pikan.load_model("runs/trap/ckpt.pt")
    pikan.fit(model, data, resume="runs/trap/ckpt.pt")       # continues where it stopped

The data loss is a :class:`~pikan.train.losses.LossKind` (:mod:`pikan.train.losses`),
chosen by name: the trainer reads a batch's states and loss through that interface alone,
never asking which kind it is. This module holds the state: the recipe position,
optimizers, mini-batch sampler, validation and restore-best, faults, what goes into a
checkpoint (the file itself: :mod:`pikan.train.checkpoint`) and when the progress display
(:mod:`pikan.train.progress`) is updated. fit's options are small validated groups
(``loss=LossOptions(...)``, ``optimizer=``, ``schedule=``, ``checkpoint=``, ``progress=``),
made and resolved (every automatic choice with its reason) in :mod:`pikan.train.options`;
the data is put on the device by :mod:`pikan.train.batches`, L-BFGS steps use the closure of
:mod:`pikan.train.optim`, and the result records are in :mod:`pikan.train.history`. With
``distributed``, the same trainer runs in every process of a torchrun launch on its share of
each batch (:mod:`pikan.train.distributed`).

A fit runs a :class:`Recipe`, a list of :class:`Stage` records. The default is the KAN 2.0
progressive recipe: fit the coarse grid with sparsity regularization -> prune edges by
attribution -> adapt the grids to the data -> refine the grids -> fit again (Adam, then
L-BFGS). Every stage reports what it did (edges pruned, inputs removed, grid sizes) as an
event in the history. Before the first stage a KAN whose data are far from unit size is
normalised (:mod:`pikan.train.normalise`: it reads its inputs and returns its outputs
rescaled to order 1, the block staying in the data's units), and the grids of every learned
KAN are placed on the training data (the initial grids span (-1, 1), the data usually does
not; see :func:`initial_grids`).

Checkpoints (:mod:`pikan.train.checkpoint`) hold everything a resume needs and are written
atomically. Resuming gives the same parameters as a run that was never stopped (same ops,
same batches). A checkpoint records a fingerprint of the data and spec it was trained on;
resuming on other data is a :class:`DataError` unless asked for (``resume_other_data=True``),
and a damaged checkpoint is a :class:`DataError` naming the file before anything is changed.

Faults: a step whose loss, gradient or new parameters are not finite is rejected, the
last good state is restored, the learning rate is halved and a ``fault`` event is logged
(the check is an Adam step's one host synchronization: it fetches the loss values for the
history and the finiteness flags together); after ``max_faults`` faults in a row
:class:`TrainingError` is raised, the model holding the last good parameters and the
checkpoint on disk left as it was. Ctrl-C saves a checkpoint of the last completed step and
returns the partial :class:`FitResult`.

Divergence: every fit stage starts with a validation check, which is its first best state.
A later check that is non-finite or :data:`EXPLODE` times the stage's best is a divergence:
the best state comes back (at a stage's second divergence before it ever improved on a grid
just changed, the state before the prune/adapt/refine stages), the stage goes on with a
fresh optimizer at :data:`RECOVERY_STEP` times the step, and a ``divergence`` event is
logged. After :data:`MAX_RECOVERIES` recoveries the fit stops with its best state
(``result.stopped == "diverged"``, a warning in ``result.warnings``); it raises only when
nothing finite was ever reached (the fault path above).

Time: ``fit(time_limit=...)`` (or ``deadline=``) stops after the current step once the
time is up, with the stage's best state, a ``time_limit`` event and ``result.stopped ==
"time limit"``. The progress display names each stage and ends with a line that says where
and why training stopped.
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import torch

from pikan.data.integrate import check_device
from pikan.errors import DataError, SpecError
from pikan.kan.spline import uniform_knots
from pikan.train import distributed as _distributed
from pikan.train import losses
from pikan.train.batches import FitData, check_data
from pikan.train.checkpoint import (
    FORMAT,
    VERSION,
    describe_data,
    fingerprint,
    load_model,
    model_from_checkpoint,
    read_checkpoint,
    write_checkpoint,
)
from pikan.train.checkpoint_checks import check_resumable, damaged, load_optimizer_state
from pikan.train.history import FitResult, History
from pikan.train.normalise import describe as describe_scales
from pikan.train.normalise import left_as_they_are, normalise
from pikan.train.optim import lbfgs_closure
from pikan.train.options import (
    LOSSES,
    CheckpointOptions,
    FitOptions,
    LossOptions,
    OptimizerOptions,
    ProgressOptions,
    ScheduleOptions,
    check_resume_options,
    gather,
    loss_kind_of,
    resolve,
)
from pikan.train.progress import Progress
from pikan.train.recipe import Recipe, Stage
from pikan.train.threads import with_call_threads

__all__ = ["FORMAT", "LOSSES", "VERSION", "CheckpointOptions", "FitOptions", "FitResult",
           "History", "LossOptions", "OptimizerOptions", "ProgressOptions", "Recipe",
           "ScheduleOptions", "Stage", "TrainingError", "fit", "initial_grids", "load_model",
           "read_checkpoint"]


class TrainingError(RuntimeError):
    """Training cannot go on: repeated non-finite steps. The last checkpoint stays intact."""


class _Fault(Exception):
    """A rejected step (non-finite loss, gradient or parameters)."""


class _Stop(Exception):
    """The callback asked to stop."""


class _Diverged(Exception):
    """Divergence recoveries are used up: the fit stops with its best state."""


EXPLODE = 1e3
"""A validation objective above this many times the stage's best is a divergence."""

MAX_RECOVERIES = 3
"""Divergence recoveries per fit; one more divergence stops it with the best state."""

RECOVERY_STEP = 0.1
"""Each recovery multiplies the step (Adam learning rate, L-BFGS initial step) by this."""


# ----------------------------------------------------------------------------- the trainer


def _finite_flag(tensors) -> torch.Tensor:
    """Whether every entry of every tensor is finite, as a device tensor (no host sync)."""
    flags = [torch.isfinite(t.detach()).all() for t in tensors]
    return torch.stack(flags).all() if flags else torch.ones((), dtype=torch.bool)


def _to_host(values: torch.Tensor, *flags: torch.Tensor) -> tuple[list, list]:
    """Loss values and boolean flags in one device-to-host copy (a training step's one sync).

    Returns
    -------
    (values, flags) : (list of float, list of bool)
    """
    host = torch.cat([values.reshape(-1)] + [f.to(values).reshape(1) for f in flags]).tolist()
    m = values.numel()
    return host[:m], [bool(x) for x in host[m:]]


def _compiled(fn, option):
    """``fn`` through ``torch.compile`` (``option``: True for the default backend, or a
    backend name), with a clear error when it cannot be compiled."""
    backend = "inductor" if option is True else str(option)
    compiled = torch.compile(fn, backend=backend, dynamic=None)

    def call(*args):
        try:
            return compiled(*args)
        except torch._dynamo.exc.TorchDynamoException as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise RuntimeError(f"fit(compile={option!r}): torch.compile failed on this model's "
                               f"loss ({type(error).__name__}: {first}); hint: compile=False "
                               "(the default) trains the same model without it") from error

    return call


def _clone_state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _clone_tree(obj):
    """A copy of nested dicts, lists and tuples with every tensor cloned (a cheap deepcopy
    for optimizer state dicts)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clone_tree(v) for v in obj)
    return obj


def _never_adapted(layer) -> bool:
    """Whether a KAN layer still has the construction grid: uniform on (-1, 1)."""
    fresh = uniform_knots(layer.grid, layer.order, -1.0, 1.0, layer.in_dim,
                          dtype=layer.knots.dtype, device=layer.knots.device)
    return bool(torch.allclose(layer.knots, fresh))


def _with_time(states: tuple) -> tuple:
    """A loss kind's states as ``(q, v, t)``: kinds written before time was an input give
    ``(q, v)``."""
    return (*states, None) if len(states) == 2 else tuple(states)


@torch.no_grad()
def initial_grids(model, q: torch.Tensor, v: torch.Tensor, t: torch.Tensor | None = None
                  ) -> None:
    """Place every learned KAN's grids on the data before the first fit (fit's first step).

    A KAN that was never adapted holds a random initialization on (-1, 1) whose splines
    are extrapolated polynomials outside that range; keeping that function on data far
    outside (what ``adapt_grids`` does) starts training from forces orders of magnitude
    off. Such a KAN is re-initialized on the data instead: layer by layer, the grid moves to
    the layer's inputs and the spline coefficients are set to zero, so the fit starts from
    the smooth base functions (random weights), which stay tame off the grid too. KANs
    adapted before (a model trained earlier) keep their functions (``adapt_grids``).

    Parameters
    ----------
    model : Model
        Changed in place.
    q, v : Tensor, shape (N, n_coords)
        Training states.
    t : Tensor, shape (N,), optional
        Their times (driven systems).
    """
    kept = False
    for name, kan in losses.learned_kans(model).items():
        if getattr(model.blocks[name], "passive", False):
            # a passive Dissipation's KAN reads directions placed in its own grid box
            # (Block.kan_inputs), which adapt_grids never moves; re-placing it on the two
            # directions of a 1-D velocity (and zeroing its splines, whose outputs enter
            # squared) left a damped pendulum at 2.4e-3 instead of 2.3e-5
            continue
        if not all(_never_adapted(layer) for layer in kan.layers):
            kept = True
            continue
        x0 = losses.kan_inputs(model, name, q, v, t)
        for index, layer in enumerate(kan.layers):
            x = x0 if index == 0 else kan.activations(x0)[index - 1].nodes
            layer.update_grid(x, adaptivity="auto")
            # Zero spline coefficients: the fit starts from the base functions alone. The
            # random initial splines are wiggles on the grid spacing h whose end pieces,
            # continued off the grid, grow like (dx / h)**3: a rollout that leaves the data
            # range by a few cells met forces of 1e3 and more and never returned a finite
            # loss (Morse, soft-core potentials). The random base weights still tell the
            # hidden nodes apart.
            layer.coef.zero_()
    if kept:
        model.adapt_grids(q, v, t=t)


def _grid_report(model) -> dict:
    out = {}
    for name, kan in losses.learned_kans(model).items():
        first = kan.layers[0]
        lo, hi = first.knots[:, first.order], first.knots[:, -first.order - 1]
        out[name] = {"grid": [layer.grid for layer in kan.layers],
                     "ranges": {n: [float(a), float(b)]
                                for n, a, b in zip(kan.input_names, lo.tolist(), hi.tolist())},
                     "edges": len(kan.live_edges())}
    return out


class _Trainer:
    """Runs a recipe on one model and one prepared dataset; owns every piece of state."""

    def __init__(self, model, data: FitData, recipe: Recipe, config: dict, device, callback,
                 progress: bool, checkpoint: Path | None, ctx=None, compile=False) -> None:
        self.model, self.data, self.recipe, self.config = model, data, recipe, config
        self.device, self.callback, self.checkpoint = device, callback, checkpoint
        self.ctx = ctx  # pikan.train.distributed.Context, None for one process
        self.is_main = ctx is None or ctx.is_main
        self.term_fn = _compiled(self._compute_terms, compile) if compile else self._compute_terms
        self.penalties = losses.soft_penalties(model)
        if self.penalties and model.driven:
            raise SpecError(
                f"soft constraints ({', '.join(p.name for p in self.penalties)}) are not "
                f"supported on a driven system (system {model.spec.name!r} has a module of "
                "time t); hint: use mode='hard' or leave them out")
        self.history = History()
        self.stage_index = self.stage_step = self.global_step = 0
        self.started = False
        self.optimizer = None
        self.best = None  # {"state", "objective", "val", "step"}
        self.bad_evals = 0
        self.lr_scale = 1.0
        self.faults_in_row = 0
        self.generator = torch.Generator().manual_seed(int(config["seed"]))
        self.perm, self.perm_device, self.pos = None, None, 0  # the epoch's order (CPU, device)
        self.snapshot = None
        self.show_progress = progress and self.is_main
        self.last_val = None
        self.end = None  # time.perf_counter() at which training stops (time_limit), or None
        self.time_limit = None
        self.stopped = "steps done"
        self.warnings = []
        self.recoveries = 0  # divergence recoveries of the whole fit
        self.stage_recoveries = 0  # ... of the current stage (not checkpointed)
        self.stage_start = None  # {"val", "step"}: the current fit stage's first evaluation
        # the model before the last run of prune/adapt/refine stages (not checkpointed: a
        # resumed fit recovers from a divergence with a smaller step only)
        self.before_structure = None
        self.early = None  # the last early stop: {"stage", "step", "of", "patience", ...}
        self.fingerprint = None  # what the checkpoints record of the data and spec

    # ------------------------------------------------------------------ state
    def _state(self) -> dict:
        """Everything a resume needs except the history (cloned)."""
        opt = self.optimizer
        return {
            "position": {"stage": self.stage_index, "stage_step": self.stage_step,
                         "global_step": self.global_step, "started": self.started},
            "model": _clone_state(self.model),
            "optimizer": _clone_tree(opt.state_dict()) if opt is not None else None,
            "best": None if self.best is None else dict(self.best),
            "bad_evals": self.bad_evals, "lr_scale": self.lr_scale,
            "faults_in_row": self.faults_in_row, "last_val": self.last_val,
            "recoveries": self.recoveries, "stage_start": self.stage_start,
            "sampler": {"generator": self.generator.get_state(), "perm": self.perm,
                        "pos": self.pos},  # perm: a CPU tensor, replaced (never changed) per epoch
            "history_len": [len(self.history.rows), len(self.history.events)],
        }

    def _load_state(self, state: dict, path=None) -> None:
        """Take a state of :meth:`_state` (or a checkpoint read from ``path``, whose optimizer
        state is checked as it is loaded: :func:`load_optimizer_state`)."""
        pos = state["position"]
        self.stage_index, self.stage_step = pos["stage"], pos["stage_step"]
        self.global_step, self.started = pos["global_step"], pos["started"]
        self.model.load_state_dict(state["model"])
        self.optimizer = None
        if state["optimizer"] is not None:
            self.optimizer = self._make_optimizer(self.recipe[self.stage_index])
            if path is None:
                self.optimizer.load_state_dict(_clone_tree(state["optimizer"]))
            else:
                load_optimizer_state(self.optimizer, _clone_tree(state["optimizer"]), path)
        self.best = None if state["best"] is None else dict(state["best"])
        if self.best is not None:
            self.best["state"] = {k: v.to(self.device) for k, v in self.best["state"].items()}
        self.bad_evals, self.lr_scale = state["bad_evals"], state["lr_scale"]
        self.faults_in_row, self.last_val = state["faults_in_row"], state["last_val"]
        self.recoveries = state.get("recoveries", 0)  # checkpoints before divergence recovery
        self.stage_start = state.get("stage_start")
        sampler = state["sampler"]
        self.generator.set_state(sampler["generator"])
        self.perm = sampler["perm"]
        self.perm_device = None if self.perm is None else self.perm.to(self.device)
        self.pos = sampler["pos"]
        rows, events = state["history_len"]
        del self.history.rows[rows:], self.history.events[events:]

    def resume(self, ck: dict, path, other_data: bool = False) -> None:
        """Continue from the checkpoint ``ck`` read from ``path``: its history, torch RNG
        state, recipe position, model, optimizer and sampler.

        ``ck`` passed :func:`check_resumable` and :func:`model_from_checkpoint`; here its
        state is checked against this model and data (the stage's best state, the sampler,
        the optimizer state), and on a :class:`DataError` the model keeps its parameters.
        With ``other_data`` (data other than the checkpoint's, asked for) the sampler starts
        a new epoch and the stage's best is measured again on these data.
        """
        self._check_state(ck, path, other_data)
        before = _clone_state(self.model)
        try:
            self.history = History(list(ck["history"]["rows"]), list(ck["history"]["events"]))
            self._load_state(ck, path)
        except DataError:
            self.model.load_state_dict(before)
            raise
        torch.set_rng_state(ck["rng"]["torch"])
        if other_data:
            self.perm, self.perm_device, self.pos = None, None, 0
            self.best, self.bad_evals, self.stage_start, self.last_val = None, 0, None, None
        self._event("resume", path=str(path), **({"other_data": True} if other_data else {}))
        self.snapshot = self._state()

    def _check_state(self, ck: dict, path, other_data: bool) -> None:
        """What :func:`check_resumable` cannot check without this model and data: the RNG
        states, the stage's best state (the model's keys and shapes) and the sampler's
        permutation (of this training set)."""
        try:
            for state in (ck["rng"]["torch"], ck["sampler"]["generator"]):
                torch.Generator().set_state(state)
        except RuntimeError as error:
            raise damaged(path, f"an RNG state is invalid ({error})") from error
        best = ck["best"]
        if best is not None:
            stored = ck["model"]
            for key in best["state"].keys() | stored.keys():
                a, b = best["state"].get(key), stored.get(key)
                if a is None or b is None or a.shape != b.shape or a.dtype != b.dtype:
                    raise damaged(path, f"the stage's best state does not fit the model at "
                                         f"{key!r}")
                if a.is_floating_point() and not bool(torch.isfinite(a).all()):
                    raise damaged(path, f"the stage's best state holds non-finite values "
                                         f"at {key!r}")
        if other_data:
            return
        sampler, n = ck["sampler"], self.data.n_train
        perm = sampler["perm"]
        if perm is not None and not (perm.numel() == n and torch.equal(
                perm.sort().values, torch.arange(n))):
            raise damaged(path, f"the sampler's permutation is not one of the {n} training "
                                 f"samples{_OTHER_DATA}")
        if sampler["pos"] > n:
            raise damaged(path, f"the sampler's position {sampler['pos']} is past the {n} "
                                 f"training samples{_OTHER_DATA}")

    def _save(self, state: dict | None = None) -> None:
        if self.checkpoint is None or not self.is_main:
            return
        state = self._state() if state is None else state
        ck = {"format": FORMAT, "version": VERSION, "spec": self.model.spec.to_json(),
              "dtype": str(self.config["dtype"]).replace("torch.", ""),
              "config": self.config, "recipe": self.recipe.to_list(),
              "scales": {k: v.cpu() for k, v in self.data.scales.items()},
              "history": {"rows": self.history.rows[:state["history_len"][0]],
                          "events": self.history.events[:state["history_len"][1]]},
              "rng": {"torch": torch.get_rng_state()}, **state}
        if self.fingerprint is not None:
            ck["fingerprint"] = self.fingerprint
        ck["model"] = {k: v.cpu() for k, v in ck["model"].items()}
        if ck["best"] is not None:
            ck["best"] = dict(ck["best"], state={k: v.cpu() for k, v in ck["best"]["state"].items()})
        write_checkpoint(ck, self.checkpoint)

    def _event(self, kind: str, **info) -> None:
        self.history.events.append({"kind": kind, "step": self.global_step,
                                    "stage": self.stage_index, **info})

    # ------------------------------------------------------------------ optimizers
    def _params(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def _make_optimizer(self, stage: Stage):
        params = self._params()
        if stage.optimizer == "lbfgs":
            return torch.optim.LBFGS(params, lr=1.0, max_iter=1, max_eval=25, history_size=20,
                                     line_search_fn="strong_wolfe", tolerance_grad=1e-14,
                                     tolerance_change=1e-16)
        decay = self.config["weight_decay"] if stage.optimizer == "adamw" else 0.0
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups = [{"params": [p for n, p in named if not n.endswith("sym_affine")],
                   "weight_decay": decay},
                  {"params": [p for n, p in named if n.endswith("sym_affine")],
                   "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
        cls = torch.optim.AdamW if stage.optimizer == "adamw" else torch.optim.Adam
        try:  # one fused kernel per step: a third of the per-parameter loop's time on the CPU
            return cls(groups, lr=self._base_lr(stage), fused=True)
        except (RuntimeError, ValueError):  # torch or device without fused Adam
            return cls(groups, lr=self._base_lr(stage))

    def _base_lr(self, stage: Stage) -> float:
        if stage.lr is not None:
            return stage.lr
        return 1.0 if stage.optimizer == "lbfgs" else self.config["lr"]

    def _lr(self, stage: Stage) -> float:
        base = self._base_lr(stage) * self.lr_scale
        if stage.optimizer == "lbfgs":
            return base
        progress = (self.stage_step - 1) / max(stage.steps - 1, 1)
        return base * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))  # cosine to base/10

    # ------------------------------------------------------------------ batches and losses
    def _next_batch(self) -> torch.Tensor:
        """Indices of the next global batch: the same on every process (one seeded sampler)."""
        n, size = self.data.n_train, self.config["batch_size"]
        if size >= n:
            return torch.arange(n, device=self.device)
        if self.perm is None or self.pos + size > n:
            self.perm = torch.randperm(n, generator=self.generator)
            self.perm_device = self.perm.to(self.device)  # once per epoch
            self.pos = 0
        index = self.perm_device[self.pos:self.pos + size]
        self.pos += size
        return index

    def _terms(self, store: dict, index: torch.Tensor, stage: Stage,
               compiled: bool = True) -> dict:
        """This process's share of the loss terms on the global batch ``index``.

        One process: the terms. ``K`` processes: the sample-mean terms (data loss, soft
        penalties) on this process's slice of the batch times its weight, the sparsity
        penalty on the whole batch over ``K``; summed over processes they are the
        one-process terms (see :mod:`pikan.train.distributed`).
        """
        weight = whole = whole_states = None
        local = index
        if self.ctx is not None:
            start, stop, weight = _distributed.shard(index.shape[0], self.ctx)
            local, whole = index[start:stop], 1.0 / self.ctx.world_size
            if stage.sparsity > 0:
                q, v, t = _with_time(self.data.kind.states(store))
                whole_states = tuple(None if x is None else x.index_select(0, index)
                                     for x in (q, v, t))
        # index_select: half the time of x[local] (advanced indexing) for these narrow rows
        batch = {key: x.index_select(0, local) for key, x in store.items()}
        fn = self.term_fn if compiled else self._compute_terms
        return fn(batch, stage.sparsity, weight, whole, whole_states)

    def _compute_terms(self, batch: dict, sparsity: float, weight, whole, whole_states) -> dict:
        """Loss terms on one batch of tensors (what ``compile=True`` compiles).

        ``weight`` multiplies the sample-mean terms and ``whole`` the sparsity penalty, which
        is measured on ``whole_states`` when given (both None for one process).
        """
        model, kind = self.model, self.data.kind
        q, v, t = _with_time(kind.states(batch))
        terms = {kind.name: kind(model, batch, self.data.scales)}
        if sparsity > 0:
            sq, sv, st = (q, v, t) if whole_states is None else whole_states
            terms["sparsity"] = sparsity * losses.sparsity(
                model, sq, sv, *self.config["sparsity_weights"], t=st)
        for penalty in self.penalties:
            terms[penalty.name] = penalty.weight * penalty.fn(model, q, v)
        if weight is not None:
            terms = {k: t * (whole if k == "sparsity" else weight) for k, t in terms.items()}
        return terms

    def _reduce(self, terms: dict, params: list) -> torch.Tensor:
        """The loss terms as one tensor; with ``K`` processes gradients and terms summed over
        them (one all-reduce)."""
        values = torch.stack([t.detach() for t in terms.values()])
        if self.ctx is None:
            return values
        return _distributed.reduce_gradients(params, values, self.ctx)

    def _evaluate(self, stage: Stage) -> tuple[float, float]:
        with torch.no_grad():
            terms = self._terms(self.data.val, self.data.val_index, stage, compiled=False)
            values = torch.stack([t.detach() for t in terms.values()])
            if self.ctx is not None:  # validation reduced across processes: same on every one
                values = _distributed.all_reduce(values, self.ctx)
        values = dict(zip(terms, values.tolist()))
        return values[self.data.kind.name], sum(values.values())

    # ------------------------------------------------------------------ steps
    def _adam_step(self, stage: Stage) -> dict:
        """One Adam/AdamW step. Its only host synchronization fetches the loss values and the
        fault flags together, after ``opt.step()``: a rejected step is undone by
        :meth:`_fault` (parameters and optimizer state from the last snapshot)."""
        opt, params = self.optimizer, self._params()
        opt.zero_grad(set_to_none=True)
        terms = self._terms(self.data.tensors, self._next_batch(), stage)
        sum(terms.values()).backward()
        values = self._reduce(terms, params)
        clip = self.config["clip"]
        norm = torch.nn.utils.clip_grad_norm_(params, math.inf if clip is None else clip)
        opt.step()
        found, (grad_ok, params_ok) = _to_host(values, torch.isfinite(norm), _finite_flag(params))
        total = sum(found)
        if not math.isfinite(total):
            raise _Fault(f"non-finite loss ({total})")
        if not grad_ok:
            raise _Fault("non-finite gradient")
        if not params_ok:
            raise _Fault("non-finite parameters after the step")
        return dict(zip(terms, found))

    def _lbfgs_step(self, stage: Stage) -> dict:
        """One L-BFGS step on the fixed full-batch subset. Every evaluation of its line
        search sums the terms over the processes and rejects a non-finite loss or gradient;
        the values of the first evaluation go into the history."""
        opt, params, seen, terms = self.optimizer, self._params(), {}, {}

        def loss():
            terms.clear()
            terms.update(self._terms(self.data.tensors, self.data.full_index, stage))
            return sum(terms.values())

        def checked(_loss):
            values = self._reduce(terms, params)  # every evaluation: gradients summed too
            found, (grad_ok,) = _to_host(values, _finite_flag(
                [p.grad for p in params if p.grad is not None]))
            total = sum(found)
            if not math.isfinite(total):
                raise _Fault(f"non-finite loss ({total})")
            if not grad_ok:
                raise _Fault("non-finite gradient")
            if not seen:
                seen.update(zip(terms, found))
            return values.sum()

        opt.step(lbfgs_closure(opt, params, loss, checked))
        if not bool(_finite_flag(params)):
            raise _Fault("non-finite parameters after the step")
        return seen

    def _fault(self, reason: str, stage: Stage) -> None:
        good = self.snapshot
        self.model.load_state_dict(good["model"])
        if self.optimizer is not None and good["optimizer"] is not None:
            self.optimizer.load_state_dict(_clone_tree(good["optimizer"]))
        self.faults_in_row += 1
        self.lr_scale *= 0.5
        self._event("fault", reason=reason, lr_scale=self.lr_scale, in_row=self.faults_in_row)
        self.progress.message(f"step {self.global_step}: {reason}; step rejected, last good "
                              f"state restored, learning rate x{self.lr_scale:g}")
        if self.faults_in_row >= self.config["max_faults"]:
            where = (f"the checkpoint {self.checkpoint} is left as it was" if self.checkpoint
                     else "no checkpoint was requested")
            raise TrainingError(
                f"training stopped at step {self.global_step} (stage {self.stage_index + 1}: "
                f"{stage}) after {self.faults_in_row} non-finite steps in a row (last: {reason}). "
                f"The model holds the last good parameters; {where}. Hint: lower lr, set clip, "
                "check the data for outliers, or shorten rollout windows.")
        self.snapshot = self._state()

    def _one_step(self, stage: Stage) -> None:
        self.stage_step += 1
        self.global_step += 1
        lr = self._lr(stage)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        try:
            values = (self._lbfgs_step if stage.optimizer == "lbfgs" else self._adam_step)(stage)
        except _Fault as fault:
            self._fault(str(fault), stage)
            return
        self.faults_in_row = 0
        row = {"step": self.global_step, "stage": self.stage_index, "optimizer": stage.optimizer,
               "lr": lr, "loss": sum(values.values()), **values,
               "train": values[self.data.kind.name], "val": None}
        every = self.config["eval_every"] if stage.optimizer != "lbfgs" else 1
        if self.stage_step % every == 0 or self.stage_step == stage.steps:
            val, objective = self._evaluate(stage)
            reason = self._diverged(val, objective)
            if reason is not None:  # the step's row stays (steps == rows + faults)
                row["val"] = val
                self.history.rows.append(row)
                self.progress.update(row)
                self._recover(reason, stage)
                return
            row["val"] = self.last_val = val
            if self.best is None or objective < self.best["objective"]:
                improved = self.best is None or objective < self.best["objective"] * (1 - 1e-3)
                self.best = {"state": _clone_state(self.model), "objective": objective,
                             "val": val, "step": self.global_step}
                self.bad_evals = 0 if improved else self.bad_evals + 1
            else:
                self.bad_evals += 1
        self.history.rows.append(row)
        self.snapshot = self._state()
        self.progress.update(row)
        if self.checkpoint is not None and self.global_step % self.config["checkpoint_every"] == 0:
            self._save(self.snapshot)
        if self.callback is not None:
            stop = bool(self.callback(self.model, row))
            if self.ctx is not None:  # a stop on one process stops them all
                stop = _distributed.any_true(stop, self.ctx)
            if stop:
                raise _Stop

    def _diverged(self, val: float, objective: float) -> str | None:
        """Why the validation check says the fit diverged, or None.

        Diverged: a non-finite validation loss (a rollout that left the data and blew up),
        or an objective above :data:`EXPLODE` times the stage's best (its start included),
        far beyond the bumps of a healthy fit (the largest seen: 36 times, on Morse data
        after grid refinement, before falling 100-fold)."""
        if not (math.isfinite(val) and math.isfinite(objective)):
            return f"non-finite validation loss ({val:.3g})"
        if self.best is not None and objective > EXPLODE * max(self.best["objective"], 1e-300):
            return (f"validation objective {objective:.3g} exploded to over {EXPLODE:g} times "
                    f"the stage's best {self.best['objective']:.3g}")
        return None

    def _recover(self, reason: str, stage: Stage) -> None:
        """Undo a divergence: back to the stage's best state (or, at the second divergence of
        a stage that never improved on a grid just changed, to the state before the
        prune/adapt/refine stages), a fresh optimizer at a tenth of the step, and a ``divergence`` event. After
        :data:`MAX_RECOVERIES` recoveries the fit stops with the best state (``_Diverged``)."""
        self.recoveries += 1
        back = "the stage's best state"
        if self.best is not None:
            self.model.load_state_dict(self.best["state"])
            at_start = self.stage_start is not None and self.best["step"] == self.stage_start["step"]
        else:
            self.model.load_state_dict(self.snapshot["model"])
            at_start = True
        self.stage_recoveries += 1
        # a smaller step first; a second divergence before the stage ever improved on a grid
        # just changed goes back to the grid before the change
        if at_start and self.stage_recoveries >= 2 and self.before_structure is not None:
            self.model.load_state_dict(self.before_structure)  # the previous grid
            back = "the state before the last prune/adapt/refine stages"
            self.before_structure = None
            self.best = None  # re-measured on the old grid at the next check
        give_up = self.recoveries > MAX_RECOVERIES
        self.lr_scale *= RECOVERY_STEP
        self._event("divergence", reason=reason, restored=back, lr_scale=self.lr_scale,
                    recoveries=self.recoveries, gave_up=give_up)
        if give_up:
            text = (f"training diverged at step {self.global_step} (stage {self.stage_index + 1}: "
                    f"{stage.label}): {reason}; after {self.recoveries - 1} recoveries it stopped "
                    f"with {back}")
            self.warnings.append(text)
            raise _Diverged(text)
        self.progress.message(f"step {self.global_step}: {reason}; diverged: restored {back}, "
                              f"restarting the stage with step x{self.lr_scale:g}")
        self.optimizer = self._make_optimizer(stage)  # fresh moments / L-BFGS memory
        self.bad_evals = 0
        self.snapshot = self._state()

    def _patience(self, stage: Stage) -> int:
        if stage.patience is not None:
            return stage.patience
        if stage.optimizer == "lbfgs":
            return 10
        return max(10, stage.steps // self.config["eval_every"] // 4)

    def _fit_stage(self, stage: Stage) -> None:
        if self.optimizer is None:
            self.optimizer = self._make_optimizer(stage)
            if self.stage_start is None:
                # the stage's first best and its reference for divergence: a stage that only
                # makes things worse ends where it started
                val, objective = self._evaluate(stage)
                if math.isfinite(objective):
                    self.stage_start = {"val": val, "objective": objective,
                                        "step": self.global_step}
                    self.best = {"state": _clone_state(self.model), **self.stage_start}
            self.snapshot = self._state()
        patience = self._patience(stage)
        self.progress.stage(self.stage_index, len(self.recipe), stage.label)
        while self.stage_step < stage.steps:
            # checked before the step, so a run resumed right after the deciding step stops too
            if self.bad_evals >= patience:
                self._event("early_stop", after=self.stage_step, of=stage.steps,
                            patience=patience)
                self.early = {"stage": self.stage_index, "label": stage.label,
                              "step": self.global_step, "patience": patience,
                              "best": None if self.best is None else self.best["val"],
                              "best_step": None if self.best is None else self.best["step"]}
                self.progress.message(
                    f"stage {self.stage_index + 1}/{len(self.recipe)} ({stage.label}) stopped "
                    f"early at step {self.stage_step}/{stage.steps}: validation loss did not "
                    f"improve for {patience} evaluations (best {self.early['best']:.3g} at "
                    f"step {self.early['best_step']})" if self.best is not None else
                    f"stage {self.stage_index + 1} stopped early")
                break
            if self.end is not None and self._out_of_time():
                self.stopped = "time limit"
                self._event("time_limit", after=self.stage_step, of=stage.steps)
                break
            self._one_step(stage)
        self._restore_best()

    def _share(self, events_from: int) -> None:
        """Every process takes rank 0's model (its state dict) and its events since
        ``events_from``: structural decisions are rank 0's."""
        if self.ctx is None:
            return
        payload = None
        if self.is_main:
            payload = {"model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                       "events": self.history.events[events_from:]}
        payload = _distributed.broadcast(payload, self.ctx)
        if not self.is_main:
            self.model.load_state_dict(payload["model"])  # adopts refined grid shapes
            self.history.events[events_from:] = payload["events"]

    def _structure(self, stage: Stage) -> None:
        """A prune, adapt or refine stage: done on rank 0, then shared."""
        events_from = len(self.history.events)
        self.progress.stage(self.stage_index, len(self.recipe), stage.label)
        if self.before_structure is None:  # the first of a run of structural stages
            self.before_structure = _clone_state(self.model)
        if self.is_main:
            self._restructure(stage)
        self._share(events_from)

    def _restructure(self, stage: Stage) -> None:
        q, v, t = self.data.states()
        model = self.model
        if stage.kind == "adapt":
            model.adapt_grids(q, v, t=t)
            self._event("adapt", modules=_grid_report(model))
            return
        for name, kan in losses.learned_kans(model).items():
            x = losses.kan_inputs(model, name, q, v, t)
            if stage.kind == "prune":
                result = kan.prune(x, threshold=stage.threshold)
                first = kan.layers[0].mask
                removed = [n for i, n in enumerate(kan.input_names) if not bool(first[i].any())]
                self._event("prune", module=name, threshold=stage.threshold,
                            pruned=[list(e) for e in result["pruned"]],
                            edges_pruned=len(result["pruned"]), alive=result["alive"],
                            inputs_removed=removed)
                if removed:
                    self.progress.message(f"pruned module {name!r}: inputs {removed} removed")
            else:
                before = [layer.grid for layer in kan.layers]
                kan.refine(stage.grid or 2 * before[0], x)
                self._event("refine", module=name, grid_from=before,
                            grid_to=[layer.grid for layer in kan.layers])

    def _normalise(self) -> None:
        """Rescale the fresh KANs whose data are far from unit size (before the first
        step, before their grids are placed); an event records what and why."""
        fresh = [name for name, kan in losses.learned_kans(self.model).items()
                 if all(_never_adapted(layer) for layer in kan.layers)]
        done = normalise(self.model, self.data, fresh)
        if done:
            self._event("normalise", modules={
                s.module: {"inputs": s.inputs, "outputs": s.outputs, "sizes": s.sizes}
                for s in done})
        for text in left_as_they_are(self.model, self.data, fresh):
            warnings.warn(text, UserWarning, stacklevel=4)
            self.warnings.append(text)

    # ------------------------------------------------------------------ run
    def run(self) -> bool:
        """Run the recipe from the current position; True when interrupted."""
        self.progress = Progress(self.show_progress, self.recipe.total_steps, self.global_step,
                                  self.config["log_every"])
        interrupted = False
        if self.snapshot is None:
            self.snapshot = self._state()
        try:
            events_from = len(self.history.events)
            if not self.started:
                if self.is_main:
                    self._normalise()
                    initial_grids(self.model, *self.data.states())
                    self._event("adapt", modules=_grid_report(self.model), initial=True)
                self.started = True
            self._share(events_from)  # every process starts from rank 0's model
            self.snapshot = self._state()
            while self.stage_index < len(self.recipe):
                stage = self.recipe[self.stage_index]
                if stage.kind == "fit":
                    try:
                        self._fit_stage(stage)
                    except _Diverged:
                        self.stopped = "diverged"
                        self._restore_best()
                else:
                    if self.end is not None and self._out_of_time():
                        self.stopped = "time limit"
                        self._event("time_limit", before=str(stage))
                    else:
                        self._structure(stage)
                if stage.kind == "fit":
                    self.before_structure = None  # a grid change is undone only right after it
                self.stage_index += 1
                self.stage_step = 0
                self.optimizer, self.best, self.bad_evals = None, None, 0
                self.stage_start, self.stage_recoveries = None, 0
                self.snapshot = self._state()
                if self.stopped in ("time limit", "diverged"):
                    self.stage_index = len(self.recipe)  # the remaining stages are skipped
                    self.snapshot = self._state()
            if self.stopped == "steps done" and self.early is not None \
                    and self.early["stage"] == self._last_fit_index():
                self.stopped = "early stop"
        except (KeyboardInterrupt, _Stop) as stop:
            interrupted = True
            self._load_state(self.snapshot)
            self._event("interrupt", reason="callback" if isinstance(stop, _Stop) else "Ctrl-C")
            self.snapshot = self._state()
            self.progress.message(f"interrupted at step {self.global_step}"
                                  + (f"; checkpoint {self.checkpoint}" if self.checkpoint else ""))
            self.stopped = "interrupted"
        finally:
            self.progress.finish(self._final_line())
        self._save(self.snapshot)
        return interrupted

    def _out_of_time(self) -> bool:
        """Whether the time limit is reached (in a distributed fit: on any process, so that
        every process stops at the same step)."""
        out = time.perf_counter() >= self.end
        return _distributed.any_true(out, self.ctx) if self.ctx is not None else out

    def _last_fit_index(self) -> int:
        return max(i for i, s in enumerate(self.recipe) if s.kind == "fit")

    def _restore_best(self) -> None:
        if self.best is not None:
            self.model.load_state_dict(self.best["state"])
            self.last_val = self.best["val"]
            self._event("restore_best", best_step=self.best["step"], val=self.best["val"])

    def _final_line(self) -> str:
        """The progress display's last line: where and why training stopped."""
        total = self.recipe.total_steps
        val = "" if self.last_val is None else f"; validation loss {self.last_val:.3g}"
        where = f"at step {self.global_step}/{total}"
        if self.stopped == "time limit":
            return f"stopped by the time limit ({self.time_limit:g} s) {where}{val} (best state restored)"
        if self.stopped == "diverged":
            return f"stopped {where}: training diverged, best state restored{val}"
        if self.stopped == "interrupted":
            return f"interrupted {where}{val}"
        if self.stopped == "early stop":
            e = self.early
            best = "" if e["best"] is None else f" (best {e['best']:.3g} at step {e['best_step']})"
            return (f"stopped early {where}: validation loss did not improve for "
                    f"{e['patience']} evaluations{best}")
        return f"done {where}{val}"


# ----------------------------------------------------------------------------- fit

@with_call_threads
def fit(model, data, *, loss: str | LossOptions | None = None,
        optimizer: str | OptimizerOptions | None = None, schedule: ScheduleOptions | None = None,
        checkpoint=None, progress: bool | ProgressOptions = True, device="auto",
        dtype: torch.dtype | None = None, seed: int | None = None, callback=None,
        distributed="auto", compile=False, **flat) -> FitResult:
    """Train a compiled model on trajectories.

    Every option has a default chosen from the data and the model; ``result.choices`` says
    what was chosen and why. Options come in small validated groups
    (:mod:`pikan.train.options`); each field of a group is also a flat keyword::

        fit(model, data, loss=LossOptions("rollout", window=12),
            optimizer=OptimizerOptions(lr=3e-3), schedule=ScheduleOptions(steps=2000))
        fit(model, data, loss="rollout", window=12, lr=3e-3, steps=2000)    # the same

    fit leaves process-wide settings alone: malloc (see :mod:`pikan.train.memory` to keep
    freed memory for a whole training program) and torch's thread counts.

    Parameters
    ----------
    model : Model
        A compiled system (:func:`pikan.compile`); trained in place (moved to ``device``
        and ``dtype``).
    data : Trajectories
        Its coordinates must equal the model's (else :class:`DataError`, before training).
    loss : LossOptions or {"auto", "acceleration", "rollout", "weak", "rate", "weak_rate"}, optional
        What is minimized (:class:`~pikan.train.options.LossOptions`): the loss kind, the
        derivative estimates, rollout or weak-form windows, the rollout integrator, the
        sparsity weight. A string is the kind; ``"auto"`` (default) follows
        :func:`pikan.train.losses.choose_loss`: accelerations when the data has them or its
        positions are clean, the weak form of noisy positions otherwise (first-order
        systems: :func:`pikan.train.losses.choose_rate_loss`, rates or weak-form rates).
    optimizer : OptimizerOptions or {"adam", "adamw", "lbfgs", "adam+lbfgs"}, optional
        How a step moves (:class:`~pikan.train.options.OptimizerOptions`): the optimizers
        (a string: they replace those of the automatic recipe), learning rate, batch size,
        weight decay, gradient clipping.
    schedule : ScheduleOptions, optional
        How long training runs and what stops it
        (:class:`~pikan.train.options.ScheduleOptions`): steps, the recipe (default: the
        progressive recipe, :meth:`Recipe.default`, when the model has learned KAN
        blocks), validation split and checks (each fit stage stops early when validation
        stalls and restores its best), faults in a row, a time limit or deadline.
    checkpoint : CheckpointOptions, str or Path, optional
        Where and how often the state is saved and what to resume
        (:class:`~pikan.train.options.CheckpointOptions`); a path: written every 100 steps,
        after interrupts and at the end.
    progress : bool or ProgressOptions
        tqdm on a terminal, else a line every ``log_every`` steps on stderr
        (:class:`~pikan.train.options.ProgressOptions`).
    device : "auto", str or torch.device
        "auto": CUDA when available (``cuda:LOCAL_RANK`` in a distributed fit). The data
        moves to the device once (through pinned host memory for large arrays on CUDA).
    dtype : torch.dtype
        Default float64 on CPU, float32 on CUDA.
    seed : int
        Seeds the split, the batches and the subsets (default 0).
    callback : callable ``callback(model, row) -> bool``, optional
        Called after every accepted step; returning True stops the fit like Ctrl-C (in a
        distributed fit, True on any process stops every process).
    distributed : True, False or "auto"
        Data-parallel training over the processes of a torchrun launch
        (:mod:`pikan.train.distributed`): each global batch of ``batch_size`` is split across the
        ``K`` processes, gradients and validation losses are summed over them, structural
        stages run on rank 0 and are broadcast, and only rank 0 writes checkpoints and
        progress. The result equals a one-process fit (same batches) up to rounding.
        "auto" (default): on when ``WORLD_SIZE > 1``. The process group is created from
        torchrun's environment unless one exists (NCCL on CUDA, gloo on the CPU; timeout
        :data:`pikan.train.distributed.DEFAULT_TIMEOUT`; call :func:`pikan.train.distributed.init` first
        for another).
    compile : bool or str
        Run the batch loss through ``torch.compile`` (True: the default backend; a string
        names a backend). Off by default: compiling takes tens of seconds to minutes, again
        after every grid refinement, and on the CPU it pays off only for rollout losses in
        fits of thousands of steps (measurements in the README).

    Other Parameters
    ----------------
    derivatives, window, rollout_method, sparsity
        Fields of ``loss`` (:class:`~pikan.train.options.LossOptions`).
    lr, batch_size, weight_decay, clip
        Fields of ``optimizer`` (:class:`~pikan.train.options.OptimizerOptions`).
    steps, recipe, eval_every, val_fraction, max_faults, time_limit, deadline
        Fields of ``schedule`` (:class:`~pikan.train.options.ScheduleOptions`).
    checkpoint_every, resume, resume_other_data
        ``CheckpointOptions.every``, ``.resume`` and ``.other_data``. ``resume`` names a
        checkpoint of an earlier fit of this model's spec on these data: the fit continues
        exactly where it stopped, with the options stored in it (options passed here must
        agree). Other data (the checkpoint records a fingerprint of its data) are refused
        unless ``resume_other_data=True``: then the model, optimizer and recipe position
        continue, and the loss scales, the sampler's epoch and the stage's best come from the
        new data. A checkpoint without a fingerprint (an older pikan) resumes with a warning.
    log_every
        ``ProgressOptions.every``.

    Each fills its group; a group object and a flat keyword of the same group together are
    refused (:data:`pikan.train.options.FLAT_KEYWORDS`).

    Returns
    -------
    FitResult
        ``result.stopped`` says why training ended (``"time limit"``: the current fit
        stage's best state restored, a ``time_limit`` event logged); ``result.diverged``
        whether a divergence was detected and ``result.warnings`` what could not be
        recovered.

    Divergence: a validation check that is non-finite or over :data:`EXPLODE` times the
    stage's best restores the best state (at the second divergence of a stage that never
    improved on a grid just changed: the state before the prune/adapt/refine stages),
    restarts the stage's optimizer at a tenth of the step and logs a ``divergence`` event;
    after :data:`MAX_RECOVERIES` recoveries the fit stops with its best state,
    ``result.stopped == "diverged"`` and a warning.

    Raises
    ------
    DataError
        Coordinates of data and model differ; unusable data, such as data without any
        motion or with velocities that are all zero while the positions change
        (:func:`pikan.train.batches.check_data`, which also puts warnings about doubtful
        data, e.g. a single sample per trajectory, in ``result.warnings``, each starting
        with ``"data: "``; so does a KAN normalised because its data are far from unit size,
        :mod:`pikan.train.normalise`); sizes whose squares leave float64; a checkpoint of
        another spec or
        of other data (without ``resume_other_data``); a damaged checkpoint (truncated, or a
        key, type or shape that does not fit: the message names the file).
    ValueError
        An invalid option (the message names it); options that differ from the resumed
        checkpoint's.
    TrainingError
        Repeated non-finite steps.
    """
    wall = time.perf_counter()
    options = gather(loss=loss, optimizer=optimizer, schedule=schedule, checkpoint=checkpoint,
                     progress=progress, dtype=dtype, seed=seed, **flat)
    _check_model(model, data)
    check_device(device)
    data_warnings = check_data(data)  # degenerate data: an error, or warnings for the result
    for text in data_warnings:
        warnings.warn(text, UserWarning, stacklevel=2)
    ctx = None
    if _distributed.requested(distributed):
        ctx = _distributed.init(device)
        device = ctx.device
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    saving, resume = options.checkpoint, options.checkpoint.resume
    path = saving.path if saving.path is not None else resume
    path = Path(path) if path is not None else None
    spec_json = model.spec.to_json()
    # what checkpoints record of the data and spec: one pass over the arrays per fit
    stamp = fingerprint(data, spec_json) if path is not None else None
    ck, other_data = None, False
    if resume is not None:
        ck = read_checkpoint(resume)
        if ck["spec"] != spec_json:
            raise DataError(f"checkpoint {resume} was written for another spec (system "
                            f"{ck['spec'][:60]!r}...); hint: compile the stored spec with "
                            "pikan.load_model(path) and resume that model")
        config, recipe = check_resumable(ck, resume)
        with warnings.catch_warnings():  # compile's warnings were given for this model
            warnings.simplefilter("ignore")
            model_from_checkpoint(ck, resume)  # its weights fit the spec
        check_resume_options(options, config, resume)
        other_data = _same_data(ck, stamp["data"], resume, saving.other_data)
    else:
        config, recipe = resolve(model, data, options, device)
    config["checkpoint_every"] = int(saving.every or config.get("checkpoint_every") or 100)
    config["log_every"] = int(options.progress.every or max(1, recipe.total_steps // 20))
    torch_dtype = getattr(torch, config["dtype"])
    model.to(device=device, dtype=torch_dtype)
    prepared = FitData(data, loss_kind_of(config), config, device, torch_dtype, config["seed"])
    if ctx is not None:
        _distributed.check_same(_fingerprint(prepared, config), "the training data or options",
                                ctx)
    if ck is not None and not other_data:
        _check_scales(ck["scales"], prepared.scales, resume)
        prepared.scales = {k: v.to(device=device, dtype=torch_dtype) for k, v in ck["scales"].items()}
    trainer = _Trainer(model, prepared, recipe, config, device, callback, options.progress.show,
                       path, ctx, compile)
    trainer.fingerprint = stamp
    trainer.warnings.extend(data_warnings)
    limits = options.schedule
    ends = [e for e in (None if limits.time_limit is None else wall + float(limits.time_limit),
                        limits.deadline) if e is not None]
    trainer.end = min(ends) if ends else None
    trainer.time_limit = (trainer.end - wall) if ends else None
    if ck is not None:
        if "fingerprint" not in ck:
            text = (f"checkpoint {resume} has no fingerprint of its training data (written by "
                    "an older pikan): the data given cannot be checked against it")
            warnings.warn(text, UserWarning, stacklevel=2)
            trainer.warnings.append(text)
        trainer.resume(ck, resume, other_data)
    interrupted = trainer.run()
    for text in describe_scales(model):  # also for a resumed fit of a normalised model
        if text not in trainer.warnings:
            warnings.warn(text, UserWarning, stacklevel=2)
            trainer.warnings.append(text)
    choices = {k: v for k, v in config.items() if k != "reasons"}
    choices.update(device=str(device), n_train=prepared.n_train, validation=prepared.has_val,
                   compile=compile, reasons=dict(config["reasons"]),
                   distributed=None if ctx is None else {
                       "world_size": ctx.world_size, "rank": ctx.rank, "backend": ctx.backend})
    best = trainer.last_val if trainer.last_val is not None else float("nan")
    return FitResult(trainer.history, best, choices, time.perf_counter() - wall,
                     trainer.global_step, interrupted, str(path) if path else None,
                     stopped=trainer.stopped, warnings=list(trainer.warnings))


def _check_model(model, data) -> None:
    """A compiled model with trainable parameters, and data with its coordinates."""
    coords = getattr(model, "coords", None)
    if coords is None or not callable(getattr(model, "acceleration", None)):
        raise TypeError(f"fit expects a compiled pikan Model, got {type(model).__name__}")
    data.check_coords(coords)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"model of system {model.spec.name!r} has no trainable parameters: every "
                         "module has a fixed law; hint: spec.learn(name) makes a module learned, "
                         "model.fix(name, law, trainable=True) trains a law's constants")


_OTHER_DATA = (" (or, for a checkpoint without a fingerprint, the data are not its own: "
               "resume_other_data=True)")


def _same_data(ck: dict, found: dict, path, allow: bool) -> bool:
    """Whether the data of a resumed fit differ from the checkpoint's (allowed by ``allow``).

    A checkpoint without a fingerprint (fit warns that it cannot tell) counts as trained on
    these data unless ``allow``.

    Raises
    ------
    DataError
        Other data than the checkpoint's without ``resume_other_data=True``.
    """
    stored = ck.get("fingerprint")
    if stored is None:
        return allow
    if stored["data"]["sha256"] == found["sha256"]:
        return False
    if allow:
        return True
    was, now = describe_data(stored["data"]), describe_data(found)
    what = f"{was}; given {now}" if was != now else f"{was}; given the same sizes, other values"
    raise DataError(f"checkpoint {path} was trained on other data ({what}); a resumed fit "
                    "continues on the data it was trained on. Hint: pass the checkpoint's "
                    "data, or resume_other_data=True to continue training on these data (the "
                    "loss scales, sampler and the stage's best state then come from them)")


def _check_scales(stored: dict, made: dict, path) -> None:
    """A checkpoint's loss scales have the names and shapes of those fit made from the data."""
    for key in stored.keys() | made.keys():
        if key not in stored or key not in made or stored[key].shape != made[key].shape:
            raise damaged(path, f"its loss scales {sorted(stored)} (shapes "
                                f"{[tuple(v.shape) for v in stored.values()]}) do not fit this "
                                f"fit's {sorted(made)}{_OTHER_DATA}")


def _fingerprint(prepared: FitData, config: dict) -> tuple:
    """Sizes, sums and resolved options that must agree between the processes of a
    distributed fit."""
    sums = tuple(f"{float(x.double().sum()):.6g}" for x in prepared.tensors.values())
    options = tuple(str(config[k]) for k in ("loss", "recipe", "batch_size", "seed", "dtype"))
    return prepared.n_train, prepared.n_val, sums, options
