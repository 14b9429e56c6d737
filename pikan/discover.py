"""The whole pipeline in one call: compile -> recipe fit -> extract -> fix and refine -> verify.

:func:`discover` returns a :class:`Run` and, with ``out``, writes a run directory::
    RUN/
      spec.json      the learning spec
      data.h5        the trajectories used (HDF5 schema of pikan.data.trajectories)
      model.pt       checkpoint of the trained KAN model (pikan.load_model reads it)
      laws.json      extracted laws after constant refinement (pikan.Laws.from_json)
      laws.md        the same as a Markdown table
      report.json    losses, verification, constraint violations, importance, timings, versions
      plots/*.png    edge activations, trajectories, energy, loss curves, importance, graph

A run is built in ``RUN.partial`` beside ``RUN`` and renamed into place only when every file
is written, so ``RUN`` is either the whole new run or whatever was there before (an existing
run, left untouched when anything fails or the process is killed). An existing non-empty
``RUN`` is replaced only when asked: ``overwrite=True``, or ``resume`` of a checkpoint of
that run (which keeps its ``data.h5``). Training checkpoints go to ``RUN.partial/model.pt``:
a killed run is continued with ``resume="RUN.partial/model.pt"``, and the next run into
``RUN`` that does not resume it removes it. One process at a time writes a run: from its
first check to the last rename ``discover`` holds ``RUN.lock`` (:mod:`pikan.data.run_lock`), and a
second ``discover`` into the same ``RUN`` meanwhile fails at once, naming the holder.
"""

from __future__ import annotations

import copy
import ctypes
import json
import math
import numbers
import os
import platform
import shutil
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import sympy
import torch

from pikan._version import __version__
from pikan.data.integrate import check_device
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError, SpecError, VerdictWarning
from pikan.inspect import plot
from pikan.inspect.analysis import importance
from pikan.inspect.check import check_constraints
from pikan.laws.evidence import evidence_for
from pikan.laws.extract import extract
from pikan.laws.law import Laws
from pikan.laws.uncertainty import with_error_bars
from pikan.laws.verify import TIE_FORCE, TIE_ROLLOUT, judge, verify
from pikan.model.compile import Model, compile
from pikan.model.torch_expr import lift_constants
from pikan.data.run_lock import RunLock
from pikan.spec.system import VECTOR_KINDS, System
from pikan.train.batches import check_data
from pikan.train.checkpoint import read_checkpoint
from pikan.train.distributed import is_main_process
from pikan.train.loop import TrainingError, fit, load_model
from pikan.train.normalise import NORMAL_RANGE, scalings
from pikan.train.options import SEED_LIMIT
from pikan.train.threads import with_call_threads


@dataclass
class Run:
    """What :func:`discover` returns.

    Attributes
    ----------
    model : Model
        The trained KAN model.
    laws : Laws
        One law per learned module, constants refined end to end.
    report : dict
        Everything in ``report.json``.
    path : Path or None
        The run directory (None when ``out`` was not given).
    fit : FitResult
        The training history of the KAN model.
    law_model : Model
        The model with every learned module fixed to its law (constants trained).
    """

    model: Model
    laws: object
    report: dict
    path: Path | None
    fit: object = None
    law_model: Model | None = None
    plots: list = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"run of system {self.model.spec.name!r}" +
                 (f" in {self.path}" if self.path else "")]
        lines += [f"  {line}" for line in str(self.laws).splitlines()]
        verification = self.report.get("verification", {})
        if verification:
            lines.append(f"  verification: {verification.get('summary', '')}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        # short: the dataclass default prints the whole model and report
        return f"Run(system={self.model.spec.name!r}, laws={self.laws!r}, path={self.path!r})"

    def _repr_markdown_(self) -> str:
        """Jupyter display: the system, each law in LaTeX with its verdict (and why, short
        of recovered), the verification summary, the time taken and where the run is."""
        title = f"**pikan run** of system `{self.model.spec.name}`"
        seconds = self.report.get("timings", {}).get("total_s")
        lines = [title + (f" in {seconds:.1f} s" if seconds is not None else ""), ""]
        if self.laws is None:  # a rank other than 0 of a torchrun launch
            lines.append("No laws on this process: rank 0 of the launch extracts them.")
        else:
            for law in self.laws.values():
                item = f"- ${law.latex()}$ : **{law.verdict or 'unchecked'}**"
                if law.verdict not in (None, "recovered") and law.verdict_reason:
                    item += f" ({law.verdict_reason})"
                lines.append(item)
            summary = self.report.get("verification", {}).get("summary")
            lines.append("")
            lines += (["Verification on held-out trajectories:", "", "```text", summary, "```"]
                      if summary else
                      ["Not verified (`verify_laws=False`): the laws are unchecked."])
        lines += ["", f"Saved in `{self.path}`." if self.path is not None else
                  "Not saved (no `out` given)."]
        return "\n".join(lines)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _jsonable(value):
    """Plain JSON types from dataclasses, tensors, numpy and sympy values."""
    if hasattr(value, "to_dict"):
        return _jsonable(value.to_dict())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return value if not (isinstance(value, float) and not math.isfinite(value)) else str(value)
    if isinstance(value, torch.Tensor):
        return _jsonable(value.detach().cpu().tolist())
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if hasattr(value, "__dataclass_fields__"):
        return {k: _jsonable(getattr(value, k)) for k in value.__dataclass_fields__}
    return str(value)


def refine_constants(model: Model, laws, data, steps: int = 200, seed: int = 0,
                     progress: bool = False, time_limit: float | None = None):
    """Fix every learned module to its law and train the law constants end to end.

    Parameters
    ----------
    model : Model
        The trained KAN model (left unchanged; a copy is fixed).
    laws : Laws
    data : Trajectories
    steps : int
        Optimizer steps of the constant refinement (0: fix only).
    time_limit : float, optional
        Seconds the refinement may train (:func:`pikan.fit`).

    Returns
    -------
    (Model, dict)
        The law model and ``{module: refined expression(s)}``.

    When fit normalised ``model`` (its data are far from unit size,
    :mod:`pikan.train.normalise`), a law's constants far from 1 are trained as a number of
    order 1 times a fixed power of ten (:func:`in_decades`): the optimizer's steps are then
    relative, as they are for constants of order 1, instead of leaving ``2.5e-19`` as it
    was or moving it by 1e-2.
    """

    law_model = copy.deepcopy(model)
    decades = bool(scalings(model))
    for name in laws:
        expr = laws[name].expr
        if decades:
            expr = [in_decades(e) for e in expr] if isinstance(expr, (list, tuple)) \
                else in_decades(expr)
        law_model.fix(name, expr, trainable=True)
    if steps > 0 and any(p.requires_grad and p.numel() for p in law_model.parameters()):
        fit(law_model, data, steps=steps, recipe="plain", seed=seed, progress=progress,
            distributed=False, time_limit=time_limit)  # runs on rank 0 alone
    refined = {}
    for name in laws:
        exprs = law_model.blocks[name].law_exprs()
        for constraint in law_model.blocks[name].spec.constraints:
            if hasattr(constraint, "project"):  # a conserved sum the outputs keep together
                exprs = constraint.project(exprs)
        refined[name] = exprs if law_model.blocks[name].kind in VECTOR_KINDS \
            else exprs[0]
    return law_model, refined


DEFAULT_TIME_LIMIT = 120.0
"""Seconds :func:`discover` takes by default: a person waiting at a terminal."""

_SHARES = {"fit": 0.6, "extract": 0.6, "refine": 0.5}
"""Share of the time left (less the reserve) that each stage may use; what a stage does not
use is left to the next."""
_RESERVE = 0.2
"""Share of the limit kept for the verification: the rollouts of the laws and of the KAN
on the held-out trajectories, and the term pruning in what they leave."""


def in_decades(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with each constant that a compiled law trains (:func:`lift_constants`) and
    whose size is outside :data:`~pikan.train.normalise.NORMAL_RANGE` written as a number
    of order 1 times a power of ten kept unevaluated: ``2.5e-19*x**4`` becomes
    ``(2.5/10**19)*x**4``, whose trained constant is ``2.5``. The value is unchanged; a
    compiled law's :meth:`expr` evaluates it back to one number."""
    lifted, dummies, originals = lift_constants(expr)
    low, high = NORMAL_RANGE
    replace = {}
    for dummy, number in zip(dummies, originals):
        value = float(number)
        if value == 0 or not math.isfinite(value) or low <= abs(value) <= high:
            replace[dummy] = number
            continue
        power = round(math.log10(abs(value)))
        replace[dummy] = sympy.Mul(sympy.Float(value / 10.0 ** power),
                                   sympy.Pow(sympy.Integer(10), power, evaluate=False),
                                   evaluate=False)

    def rebuild(node):
        if node in replace:
            return replace[node]
        if node.is_Atom:
            return node
        return node.func(*(rebuild(a) for a in node.args), evaluate=False)

    return rebuild(lifted)


def _whole(value, least: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def _check_options(*, steps, seed, device, refine_steps, time_limit, **flags) -> None:
    """discover's options, checked before anything is trained or written.

    Raises
    ------
    SpecError
        The first option out of its range, named with the range (a device of the wrong
        type: ``TypeError``, a device this machine lacks: ``ValueError``, from
        :func:`pikan.data.integrate.check_device`).
    """
    if steps is not None and not _whole(steps, 1):
        raise SpecError(f"discover: steps must be a whole number >= 1 or None (chosen from the "
                        f"data), got {steps!r}.")
    if not _whole(refine_steps, 0):
        raise SpecError(f"discover: refine_steps must be a whole number >= 0 (0: no constant "
                        f"refinement), got {refine_steps!r}.")
    if not _whole(seed, 0) or seed >= SEED_LIMIT:
        raise SpecError(f"discover: seed must be a whole number in [0, 2**64 - 1), got "
                        f"{seed!r}.")
    if time_limit is not None and not (isinstance(time_limit, numbers.Real)
                                       and not isinstance(time_limit, bool)
                                       and math.isfinite(time_limit) and time_limit > 0):
        raise SpecError(f"discover: time_limit must be a positive number of seconds or None, "
                        f"got {time_limit!r}.")
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise SpecError(f"discover: {name} must be True or False, got {value!r}.")
    check_device(device)


@with_call_threads
def discover(spec: System, data, out=None, *, steps: int | None = None, seed: int = 0,
             device="auto", progress: bool = True, resume=None, refine_steps: int = 200,
             plots: bool = True, verify_laws: bool = True, distributed="auto",
             time_limit: float | None = DEFAULT_TIME_LIMIT, overwrite: bool = False) -> Run:
    """Learn a system from trajectories and return its laws, with a run directory.

    Parameters
    ----------
    spec : System
        The learning spec (modules without a law are learned).
    data : Trajectories
    out : str or Path, optional
        Run directory. The run is built in ``out.partial`` beside it (:func:`partial_path`)
        and renamed to ``out`` when every file is written: a failure or a kill leaves
        ``out`` as it was. An existing non-empty ``out`` is a ``SpecError`` unless
        ``overwrite`` or ``resume`` names one of its checkpoints.
    steps : int, optional
        Training steps of the recipe (default: chosen by :func:`pikan.fit` from the data).
    seed : int
    device : "auto", str or torch.device
    progress : bool
        Progress display of training and the stage lines.
    resume : str or Path, optional
        A ``model.pt`` checkpoint of an interrupted run of the same spec: usually
        ``out.partial/model.pt``, which a killed or failed run leaves (training checkpoints
        go there), or ``out/model.pt`` to train a finished run further. Resuming a checkpoint
        of ``out`` (or of ``out.partial``) replaces ``out`` when done and keeps its
        ``data.h5``: ``data`` must hold the same trajectories (else a ``DataError``).
    refine_steps : int
        Steps of end-to-end constant refinement of the fixed laws.
    plots : bool
        Write ``plots/*.png`` (needs ``out``).
    verify_laws : bool
        Re-simulate with the laws and compare with the data and the KAN model.
    time_limit : float or None
        Seconds for the whole run (default 120; None: no limit). Training, extraction and
        the constant refinement each get a share of what is left (60 %, 60 %, 50 %), less
        a fifth of the limit kept for the verification, and return the best they found
        when their share runs out; the term pruning gets what the verification leaves.
        The laws then get their verdicts as usual, so a run cut short says so. Honoured
        within about 20 % (the last verification and the files are not interrupted).
    distributed : True, False or "auto"
        Train data-parallel over the processes of a torchrun launch (:func:`pikan.fit`);
        "auto": when ``WORLD_SIZE > 1``. Every process trains; rank 0 alone then extracts,
        refines, verifies, prints and writes the run directory, and the other processes
        return a Run with the trained model, ``laws=None``, an empty report and no path.
    overwrite : bool
        Replace an existing run in ``out`` (only a pikan run directory: one with
        ``spec.json``), with ``data`` saved anew.

    Returns
    -------
    Run

    Raises
    ------
    SpecError
        ``out`` exists and is not empty (without ``overwrite`` or a ``resume`` of it);
        another process is writing ``out`` (:class:`pikan.data.run_lock.RunLock`: the message
        names its process id); an option out of its range, before anything is trained or
        written (``steps`` a whole number >= 1 or None, ``refine_steps`` >= 0, ``seed`` in
        [0, 2**64 - 1), ``time_limit`` > 0 or None, ``progress``, ``plots``,
        ``verify_laws`` and ``overwrite`` True or False).
    ValueError
        A ``device`` this machine does not have (``TypeError``: not a device at all).
    DataError
        ``resume`` names no file; resuming a run with data other than its ``data.h5``; data
        that show no motion, or sizes whose squares leave float64
        (:func:`pikan.train.batches.check_data`), before anything is written. Its warnings
        about doubtful data (a single sample per trajectory; values far from unit size,
        which fit normalises, :mod:`pikan.train.normalise`, and says how) are in
        ``report["warnings"]`` (with fit's other warnings) and in every law's
        ``verdict_reason``.
    """

    if not isinstance(spec, System):
        raise SpecError(f"discover expects a pikan.System spec, got {type(spec).__name__}.")
    if not spec.learned:
        raise SpecError(f"system {spec.name!r} has no learned module: every module has a law. "
                        f"Hint: spec.learn({spec.module_names[0]!r}) makes one learned.")
    _check_options(steps=steps, seed=seed, device=device, refine_steps=refine_steps,
                   time_limit=time_limit, progress=progress, plots=plots,
                   verify_laws=verify_laws, overwrite=overwrite)
    data.check_coords(spec.coords)
    check_data(data)  # data without motion: a DataError before anything is written
    if resume is not None and not Path(resume).is_file():
        raise DataError(f"no such checkpoint: {resume}")
    clock = _Clock(time_limit)
    main = is_main_process(distributed)
    say = (lambda text: print(text, flush=True)) if progress and main else (lambda text: None)
    if out is None or not main:  # only rank 0 writes the run; the others need the path
        folder = partial_path(out) if out is not None else None
        return _pipeline(spec, data, folder, None, steps=steps, seed=seed, device=device,
                         progress=progress, resume=resume, refine_steps=refine_steps,
                         plots=plots, verify_laws=verify_laws, distributed=distributed,
                         clock=clock, main=main, say=say)
    with RunLock(_run_path(out)):  # one discover per run directory, from check to rename
        staging = _stage(out, data, resume, overwrite, say)
        try:
            _atomic_write_text(staging.folder / "spec.json", spec.to_json())
            run = _pipeline(spec, data, staging.folder, Path(out), steps=steps, seed=seed,
                            device=device, progress=progress, resume=resume,
                            refine_steps=refine_steps, plots=plots, verify_laws=verify_laws,
                            distributed=distributed, clock=clock, main=main, say=say)
            _commit(staging)
        except BaseException:
            _abandon(staging, say)
            raise
    run.plots = [run.path / "plots" / p.name for p in run.plots]
    say(f"[pikan] run written to {run.path}")
    return run


def _pipeline(spec: System, data, folder: Path | None, path: Path | None, *, steps, seed,
              device, progress, resume, refine_steps, plots, verify_laws, distributed,
              clock: _Clock, main: bool, say) -> Run:
    """compile -> fit -> extract -> refine -> verify, files written into ``folder`` (the
    partial run; None: no files); the Run's path is ``path``, where the run will be."""

    timings = {}

    start = time.perf_counter()
    model = compile(spec, seed=seed)
    say(f"[pikan] training {len(spec.learned)} learned module(s) of {spec.name!r} "
        f"on {len(data)} trajectories" + clock.describe())
    result = fit(model, data, steps=steps, seed=seed, device=device, progress=progress,
                 checkpoint=folder / "model.pt" if folder else None, resume=resume,
                 distributed=distributed, time_limit=clock.share("fit"))
    timings["fit_s"] = time.perf_counter() - start
    model = model.cpu()
    if not main:  # rank 0 extracts, verifies and writes the run; the other ranks are done
        return Run(model, None, {}, None, result)
    if not data.has_velocities:  # positions only: extraction, verification and plots need v
        say("[pikan] estimating velocities from positions (Savitzky-Golay)")
        data = data.with_derivatives()

    start = time.perf_counter()
    say("[pikan] extracting laws" + clock.describe())
    held_out, _ = _held_out(data, result.choices, seed)
    laws = extract(model, data, seed=seed, time_limit=clock.share("extract"),
                   held_out=held_out if len(held_out) < len(data) else None)
    timings["extract_s"] = time.perf_counter() - start

    start = time.perf_counter()
    say("[pikan] refining constants end to end" + clock.describe())
    refine_error = None
    try:
        law_model, refined = refine_constants(model, laws, data, steps=refine_steps, seed=seed,
                                              time_limit=clock.share("refine"))
    except TrainingError as error:  # e.g. a law with a pole inside the data: keep it as is
        refine_error = str(error)
        say(f"[pikan] constant refinement failed, extracted constants kept: {error}")
        law_model, refined = refine_constants(model, laws, data, steps=0, seed=seed)
    timings["refine_s"] = time.perf_counter() - start

    report = {
        "system": spec.name,
        "versions": {"pikan": __version__, "torch": torch.__version__,
                     "python": platform.python_version()},
        "fit": {"best_val": result.best_val, "steps": result.steps,
                "choices": result.choices, "events": result.events},
        "time_limit": clock.limit,
        "warnings": list(result.warnings),
    }
    exchanges = list(getattr(model, "exchanges", ()))
    if exchanges:
        report["exchanges"] = [str(e) for e in exchanges]
    if verify_laws:
        start = time.perf_counter()
        held_out, indices = _held_out(data, result.choices, seed)
        say(f"[pikan] verifying the laws by re-simulation on {len(held_out)} "
            f"{'held-out ' if indices is not None else ''}"
            f"trajector{'y' if len(held_out) == 1 else 'ies'}")
        laws, verification, choice = _pick_refinement(spec, laws, refined, held_out, seed,
                                                       verify)
        one = (time.perf_counter() - start) / (2 if "refined_rollout_error" in choice else 1)
        left = clock.left()  # keep time for the last check, the KAN's rollouts included
        laws, dropped = prune_terms(spec, laws, held_out, verification, seed,
                                    None if left is None else max(left - 3 * one, 0.0))
        if dropped:
            choice["dropped_terms"] = dropped
            say(f"[pikan] dropped {len(dropped)} term(s) the held-out data do not need: "
                + "; ".join(dropped))
        laws = _error_bars(spec, laws, data, seed, choice, say)
        verification = verify(spec.with_laws(laws), held_out, model=model, seed=seed,
                              n_initial=len(held_out))
        laws = judge(laws, verification, exchanges)
        laws = _with_data_warnings(laws, result.warnings)
        report["refinement"] = choice
        if refine_error is not None:
            choice["refine_error"] = refine_error
        report["verification"] = _jsonable(verification)
        report["verification"]["summary"] = str(verification)
        report["verification"]["held_out"] = indices
        report["verdicts"] = {name: law.verdict for name, law in laws.items()}
        timings["verify_s"] = time.perf_counter() - start
        _announce(laws, verification, say, progress and main)
    else:
        laws = _error_bars(spec, laws, data, seed, {}, say)
    report["laws"] = {name: law.to_dict() for name, law in laws.items()}
    law_model = compile(spec.with_laws(laws), seed=seed)
    report.update(_diagnostics(model, data))
    timings["total_s"] = clock.elapsed()
    report["timings"] = timings
    run = Run(model, laws, _jsonable(report), path, result, law_model)
    if folder is not None:
        _atomic_write_text(folder / "laws.json", laws.to_json())
        _atomic_write_text(folder / "laws.md", laws.to_markdown())
        _atomic_write_text(folder / "report.json", json.dumps(run.report, indent=1))
        if plots:
            run.plots = write_plots(run, data, folder / "plots")
    return run


def _error_bars(spec, laws: Laws, data, seed: int, choice: dict, say) -> Laws:
    """The laws with error bars on their constants (:func:`with_error_bars`); the constants
    that noisy data moved are recorded in ``choice["moved_constants"]``."""
    say("[pikan] error bars on the constants (bootstrap over trajectories)")
    out = with_error_bars(spec, laws, data, seed=seed)
    moved = [f"{name}: {laws[name].formula()} -> {out[name].formula()}" for name in laws
             if laws[name].formula() != out[name].formula()]
    if moved:
        choice["moved_constants"] = moved
        say("[pikan] constants the noisy data reject, replaced by their estimates: "
            + "; ".join(moved))
    return out


def _with_data_warnings(laws: Laws, fit_warnings) -> Laws:
    """The laws with fit's warnings about the data (:func:`pikan.train.batches.check_data`:
    those starting with ``"data: "``) added to each verdict's reason; the verdicts stay."""
    notes = [w for w in fit_warnings if w.startswith("data: ")]
    if not notes:
        return laws
    joined = "; ".join(notes)
    return laws.with_verdicts({name: (law.verdict, f"{law.verdict_reason}; {joined}")
                               for name, law in laws.items()})


class _Clock:
    """The time budget of one discover call: what is left, and each stage's share of it."""

    def __init__(self, limit: float | None) -> None:
        self.limit, self.start = limit, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float | None:
        return None if self.limit is None else max(self.limit - self.elapsed(), 0.0)

    def share(self, stage: str) -> float | None:
        left = self.left()
        if left is None:
            return None
        return max(_SHARES[stage] * (left - _RESERVE * self.limit), 0.01)

    def describe(self) -> str:
        left = self.left()
        return "" if left is None else f" ({left:.0f} s of the {self.limit:g} s limit left)"


def _held_out(data, choices: dict, seed: int):
    """The fit's validation trajectories (never trained on) and their indices; all the data
    and None when the fit had no validation split."""
    fraction = choices.get("val_fraction", 0.2) if isinstance(choices, dict) else 0.2
    if len(data) < 2 or not fraction:
        return data, None
    order = np.random.default_rng(seed).permutation(len(data))
    n_first = min(max(round((1.0 - fraction) * len(data)), 1), len(data) - 1)
    indices = sorted(int(i) for i in order[n_first:])  # as Trajectories.split draws them
    return data.subset(indices), indices


def _announce(laws, verification, say, progress: bool) -> None:
    """Print the verification and each verdict; warn about every law short of recovered."""
    say(f"[pikan] verification: {verification}")
    for name, law in laws.items():
        say(f"[pikan] {law}")
        if law.verdict == "recovered":
            continue
        lines = [f"law {name!r} is {law.verdict.upper()}, not recovered: {law.verdict_reason}"]
        best = law.best_alternatives()
        if best:
            lines.append("  best candidates: " + "; ".join(str(a) for a in best))
        text = "\n".join(lines)
        if progress:
            say(f"[pikan] WARNING: {text}")
        else:
            warnings.warn(text, VerdictWarning, stacklevel=3)


def _diagnostics(model: Model, data) -> dict:
    """Constraint violations and importance for the report (empty parts on failure)."""

    out = {}
    try:
        out["importance"] = _jsonable(importance(model, data))
    except (ValueError, RuntimeError) as error:
        out["importance"] = {"error": str(error)}
    try:
        out["constraints"] = _jsonable(check_constraints(model, data))
    except ImportError:
        pass
    except (ValueError, RuntimeError) as error:
        out["constraints"] = {"error": str(error)}
    return out


PRUNE_SLACK = 1.25
"""A term is dropped when the law without it verifies within this factor of the law with
it (rollout and force errors, plus the ties of :mod:`pikan.laws.verify`)."""


def _components(law, module) -> list:
    """The law's additive pieces, each ``(label, exprs without it)``: a term of a scalar law
    or of one Dynamics output (a constant force too); for a gyroscopic law ``F_i = sum_j B_ij v_j`` a term of one
    field entry, removed from both outputs it enters (the law keeps doing no work)."""
    exprs = list(law.expr) if isinstance(law.expr, (list, tuple)) else [law.expr]
    pieces = []
    if getattr(module, "gyroscopic", False):
        velocity = {c: sympy.Symbol(f"v_{c}") for c in module.outputs}
        outputs = list(module.outputs)
        for i, a in enumerate(outputs):
            for j in range(i + 1, len(outputs)):
                entry = sympy.expand(exprs[i]).coeff(velocity[outputs[j]])
                for term in sympy.Add.make_args(entry):
                    if term == 0:
                        continue
                    new = list(exprs)
                    new[i] = sympy.expand(exprs[i] - term * velocity[outputs[j]])
                    new[j] = sympy.expand(exprs[j] + term * velocity[a])
                    pieces.append((f"{term} in B[{a}, {outputs[j]}]", new))
        return pieces
    for k, expr in enumerate(exprs):
        terms = sympy.Add.make_args(sympy.expand(expr))
        for term in terms:
            if len(terms) < 2 or (law.up_to_constant and not term.free_symbols):
                continue  # an energy's constant is no term (it is dropped anyway)
            new = list(exprs)
            new[k] = expr - term
            pieces.append((str(term), new))
    return pieces


def prune_terms(spec: System, laws, data, reference, seed: int = 0,
                time_left: float | None = None):
    """Drop every additive term the data do not need: Occam's razor on held-out data.

    Each term is tried away in turn and dropped when the law model without it verifies within
    :data:`PRUNE_SLACK` of ``reference`` (the laws as given) on ``data``. A spurious small
    term that the extraction fitted to a KAN's imperfection (``-0.003 x**5`` beside a field
    ``1.37 + 0.41 x``) goes; a real term, however small, changes the motion and stays.

    Parameters
    ----------
    spec : System
    laws : Laws
    data : Trajectories
        Held-out trajectories (with velocities).
    reference : VerifyReport
        :func:`pikan.verify` of ``spec.with_laws(laws)`` on ``data``.
    time_left : float, optional
        Seconds available; pruning stops when they are spent.

    Returns
    -------
    (Laws, list of str)
        The pruned laws and a description of each dropped term.
    """

    start = time.perf_counter()
    limit_rollout = PRUNE_SLACK * reference.rollout_error + TIE_ROLLOUT
    limit_force = PRUNE_SLACK * reference.force_error + TIE_FORCE
    if not (math.isfinite(limit_rollout) and math.isfinite(limit_force)):
        return laws, []
    dropped = []
    for name in list(laws):
        progress = True
        while progress:
            progress = False
            for label, exprs in _components(laws[name], spec.module(name)):
                if time_left is not None and time.perf_counter() - start > time_left:
                    return laws, dropped
                law = laws[name]
                candidate = laws.with_exprs({name: exprs if isinstance(law.expr, (list, tuple))
                                             else exprs[0]})
                try:
                    report = verify(spec.with_laws(candidate), data, seed=seed,
                                    n_initial=len(data))
                except (SpecError, ValueError):
                    continue
                if report.rollout_error <= limit_rollout and report.force_error <= limit_force:
                    laws, progress = candidate, True
                    dropped.append(f"{label} from {name!r}")
                    break
    return laws, dropped


REFINED_ROLLOUT = 0.8
"""On clean data, refined constants replace the extracted ones when they cut the held-out
rollout error to this share or less."""
NOISY_ROLLOUT_SLACK = 1.1
"""On noisy positions, refined constants replace the extracted ones when they fit the
held-out weak-form averages better and their rollout error grows by at most this factor."""


def _pick_refinement(spec, laws, refined, data, seed, verify):
    """Keep the end-to-end refined constants only when the held-out data prefer them.

    Extraction snaps constants to simple values when the fit barely moves. On clean data
    (given accelerations, or positions without noise) a snapped value is usually the truth
    and refinement can undo it for noise-level gains, so the refined laws must cut the
    rollout error to :data:`REFINED_ROLLOUT` of the extracted laws'. On noisy positions
    the snapping itself rests on a KAN fitted through noise (``3/10`` for a coupling of
    0.29), while the refinement fits the constants to the trajectories with the weak-form
    loss: there the refined laws are kept when their weak-form error on the held-out
    trajectories (:func:`pikan.laws.evidence.evidence`) is lower, and their rollout error at
    most :data:`NOISY_ROLLOUT_SLACK` times larger. ``data`` are the held-out trajectories,
    all verified; the laws alone are re-simulated (the KAN's rollouts come once, in the last
    check).
    """
    extracted = verify(spec.with_laws(laws), data, seed=seed, n_initial=len(data))
    choice = {"extracted_rollout_error": extracted.rollout_error, "used": "extracted"}
    try:
        candidate = laws.with_exprs(refined)
        improved = verify(spec.with_laws(candidate), data, seed=seed, n_initial=len(data))
    except (SpecError, ValueError) as error:  # e.g. a refined gyroscopic law that does work
        choice["refined_error"] = str(error)
        return laws, extracted, choice
    choice["refined_rollout_error"] = improved.rollout_error
    proof = evidence_for(spec, data, seed=seed)
    if proof.kind == "weak":
        choice["evidence"] = proof.kind
        choice["extracted_force_error"] = extracted.force_error
        choice["refined_force_error"] = improved.force_error
        better = (improved.force_error < extracted.force_error
                  and improved.rollout_error <= NOISY_ROLLOUT_SLACK * extracted.rollout_error)
    else:
        better = improved.rollout_error < REFINED_ROLLOUT * extracted.rollout_error
    if better:
        choice["used"] = "refined"
        return candidate, improved, choice
    return laws, extracted, choice


def write_plots(run: Run, data, folder=None) -> list[Path]:
    """Write the standard figures of a run; returns the files.

    Parameters
    ----------
    run : Run
    data : Trajectories
    folder : str or Path, optional
        Where the ``.png`` files go (default ``run.path / "plots"``). Each is written
        atomically (:func:`pikan.inspect.plot.save`): a failure leaves no partial file.

    The loss curves come from ``run.fit``, or, for a run read back from its directory
    (``run.fit`` None, as ``pikan plot RUN`` does), from the training history stored in
    ``run.path / "model.pt"``: the same files either way. Data without velocities get
    them estimated, as :func:`discover` does.
    """

    folder = Path(folder) if folder is not None else run.path / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    if not data.has_velocities:  # a saved run's data.h5 holds what the user gave
        data = data.with_derivatives()
    figures = {}
    for name, block in run.model.blocks.items():
        if block.kan is not None:
            figures[f"activations_{name}"] = lambda n=name: plot.activations(
                run.model, data, n, law=run.laws.get(n))
    for name in run.laws:
        figures[f"pareto_{name}"] = lambda n=name: plot.pareto(run.laws[n])
    models = [run.model] + ([run.law_model] if run.law_model is not None else [])
    figures["trajectories"] = lambda: plot.trajectories(data, *models, labels=["KAN", "laws"])
    figures["energy"] = lambda: plot.energy(
        run.law_model or run.model, data, label="laws" if run.law_model is not None else "KAN")
    if run.fit is not None:
        history = {"rows": run.fit.history.rows, "events": run.fit.history.events}
    elif run.path is not None and (run.path / "model.pt").is_file():
        history = read_checkpoint(run.path / "model.pt")["history"]
    else:
        history = {"rows": []}
    if history["rows"]:
        figures["loss"] = lambda: plot.history(history["rows"], events=history["events"])
    imp = importance(run.model, data)
    figures["importance"] = lambda: plot.importance(imp)
    figures["graph"] = lambda: plot.graph(run.model, imp)
    return [plot.save(make(), folder / f"{key}.png", dpi=110, close=True)
            for key, make in figures.items()]


# ------------------------------------------------------------------ the run directory on disk

PARTIAL_SUFFIX = ".partial"
"""A run for ``RUN`` is built in ``RUN.partial`` beside it and renamed to ``RUN`` when
complete; a killed run leaves it there, with its checkpoint (see :func:`partial_path`)."""
REPLACED_SUFFIX = ".replaced"
"""Where an old run waits, for the moment between two renames, while a new run takes its
place (only where the two folders cannot be swapped in one step)."""


def partial_path(out) -> Path:
    """The folder beside the run directory ``out`` where :func:`discover` builds the run.

    It exists after a run was killed or failed after its first checkpoint; that run goes on
    with ``discover(..., out=out, resume=partial_path(out) / "model.pt")`` (``pikan discover
    ... -o RUN --resume RUN.partial/model.pt``). A run into ``out`` that does not resume it
    removes it.
    """
    target = _run_path(out)
    return target.with_name(target.name + PARTIAL_SUFFIX)


def _run_path(out) -> Path:
    """``out`` as a path with a name (``"runs/a/"`` -> ``runs/a``; ``"."`` -> absolute)."""
    path = Path(os.path.normpath(out))
    return path if path.name not in ("", ".", "..") else Path(os.path.abspath(out))


def _same_folder(a: Path, b: Path) -> bool:
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def _occupied(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def _same_data(a, b) -> bool:
    """Whether two Trajectories hold the same arrays, coordinates, masses and parameters."""
    if tuple(a.coords) != tuple(b.coords) or len(a) != len(b) or a.params != b.params:
        return False
    if (a.masses is None) != (b.masses is None) or (
            a.masses is not None and not np.array_equal(np.asarray(a.masses),
                                                        np.asarray(b.masses))):
        return False
    for x, y in zip(a, b):
        for u, w in ((x.t, y.t), (x.q, y.q), (x.v, y.v), (x.a, y.a)):
            if (u is None) != (w is None) or (u is not None and not np.array_equal(u, w)):
                return False
    return True


@dataclass
class _Staging:
    """Where a run is built (``folder``), where it goes (``target``), and how it got there.

    ``fresh``: the folder was created by this call (else it is a partial run being resumed);
    ``replace``: the user asked for a non-empty ``target`` to be replaced."""

    target: Path
    folder: Path
    fresh: bool
    replace: bool


def _stage(out, data, resume, overwrite: bool, say) -> _Staging:
    """Check that a run may be written to ``out`` and prepare the folder it is built in.

    Everything that can refuse is checked before anything is written, so a refused run
    leaves the disk as it was. The folder holds ``spec.json`` and ``data.h5`` when this
    returns (``data.h5`` kept from the run when resuming one of its checkpoints).
    """
    target = _run_path(out)
    folder = partial_path(target)
    _restore_replaced(target, say)
    if target.exists() and not target.is_dir():
        raise SpecError(f"run directory {target} is a file; hint: choose a folder name for "
                        "out (`pikan discover -o`).")
    resume_folder = Path(resume).parent if resume is not None else None
    of_target = resume_folder is not None and _same_folder(resume_folder, target)
    of_partial = resume_folder is not None and _same_folder(resume_folder, folder)
    replace = _occupied(target)
    if replace and not (overwrite or of_target or of_partial):
        raise SpecError(f"run directory {target} exists and is not empty; an existing run is "
                        "never replaced unless asked. Hint: choose another directory, pass "
                        "overwrite=True (`--overwrite` on the command line) to replace it, or "
                        "resume one of its checkpoints.")
    if replace and overwrite and not (of_target or of_partial) \
            and not (target / "spec.json").is_file():
        raise SpecError(f"run directory {target} is not a pikan run (no spec.json): "
                        "refusing to replace it even with overwrite; hint: choose another "
                        "directory.")
    source = folder if of_partial else target if of_target else None
    kept = source / "data.h5" if source is not None and not overwrite else None
    if kept is not None and kept.is_file():
        if not _same_data(Trajectories.load(kept), data):
            raise DataError(f"resuming the run {source} with data other than its data.h5; "
                            f"hint: pass {kept} as the data, or overwrite=True "
                            "(`pikan discover --overwrite`) to start the run on these data.")
    else:
        kept = None
    if of_partial:
        if kept is None:
            data.save(folder / "data.h5")
        return _Staging(target, folder, fresh=False, replace=replace)
    if folder.is_dir():
        say(f"[pikan] removing the unfinished run {folder} (not resumed)")
        shutil.rmtree(folder)
    elif folder.exists():
        raise SpecError(f"{folder} is a file; discover needs that name for the run it builds; "
                        "hint: move the file, or choose another run directory.")
    folder.mkdir(parents=True)
    try:
        if kept is not None:
            shutil.copy2(kept, folder / "data.h5")
        else:
            data.save(folder / "data.h5")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _Staging(target, folder, fresh=True, replace=replace)


def _restore_replaced(target: Path, say) -> None:
    """Finish what a run killed between the two renames of :func:`_commit` left: the old run
    goes back into place (the new one stays in the partial folder), or, when the new run is
    in place, the old one is removed."""
    replaced = target.with_name(target.name + REPLACED_SUFFIX)
    if not replaced.is_dir():
        return
    if target.exists():
        shutil.rmtree(replaced)
    else:
        os.replace(replaced, target)
        say(f"[pikan] restored the run {target} from {replaced}")


def _abandon(staging: _Staging, say) -> None:
    """After a failure: keep the partial folder when it holds a checkpoint to resume, else
    remove it. The target is untouched either way."""
    checkpoint = staging.folder / "model.pt"
    if checkpoint.is_file():
        say(f"[pikan] the unfinished run is kept in {staging.folder}; "
            f"resume={str(checkpoint)!r} (`--resume {checkpoint}`) continues it")
    elif staging.fresh:
        shutil.rmtree(staging.folder, ignore_errors=True)


def _commit(staging: _Staging) -> None:
    """Move the complete run into place: one rename onto a missing or empty target; onto a
    run the user asked to replace, an atomic swap where the system has one (Linux), else
    two renames (:func:`_restore_replaced` repairs a kill between them)."""
    folder, target = staging.folder, staging.target
    try:
        os.replace(folder, target)  # POSIX renames onto an empty folder too
        return
    except OSError:
        if not _occupied(target):
            if not target.is_dir():
                raise
            target.rmdir()  # an empty folder, where the system will not rename onto one
            os.replace(folder, target)
            return
    if not staging.replace:  # filled by someone else since the run started
        raise SpecError(f"run directory {target} was filled while the run was built; the "
                        f"run is complete in {folder}.")
    if _exchange(folder, target):
        shutil.rmtree(folder, ignore_errors=True)  # the old run, swapped out
        return
    replaced = target.with_name(target.name + REPLACED_SUFFIX)
    os.replace(target, replaced)
    os.replace(folder, target)
    shutil.rmtree(replaced, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False
    where the system or the file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def load_run(path):
    """Read a run directory back: ``(spec, model, laws, report, data)``."""

    path = Path(path)
    if not (path / "spec.json").is_file():
        raise SpecError(f"{path} is not a pikan run directory (no spec.json); hint: pass the "
                        "folder given to discover(out=...) or `pikan discover -o`.")
    spec = System.from_json((path / "spec.json").read_text())
    model = load_model(path / "model.pt")
    laws = Laws.from_json((path / "laws.json").read_text()) if (path / "laws.json").is_file() else None
    report = json.loads((path / "report.json").read_text()) if (path / "report.json").is_file() else {}
    data = Trajectories.load(path / "data.h5")
    return spec, model, laws, report, data
