"""Figures: every function takes data and returns a matplotlib ``Figure``.

This is the only pikan module that imports matplotlib. Nothing is shown here; :func:`save`
writes a figure atomically (the run directory uses it), ``fig.savefig(path)`` works as
usual, and a notebook displays the figure. Labels use the spec's variable names, typeset as
LaTeX where sympy can.
"""

from __future__ import annotations

import itertools
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg", force=False)  # files only; a notebook keeps its inline backend
import matplotlib.pyplot as plt
import numpy as np
import sympy
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from pikan.data.integrate import simulate
from pikan.errors import DataError, SpecError
from pikan.inspect.analysis import model_states
from pikan.kan import symbolic

FIT_R2_TOLERANCE = 0.01
"""How far below the best R² an edge fit may be and still be drawn in its place
(:func:`activations`): among fits this close to the best, the law's forms come first,
then the simplest."""


def _tex(name: str) -> str:
    """A variable name as inline LaTeX (``v_x`` -> ``$v_{x}$``, ``theta`` -> ``$\\theta$``)."""
    try:
        return f"${sympy.latex(sympy.Symbol(name))}$"
    except Exception:  # noqa: BLE001 - a label must never break a plot
        return name


def save(fig: Figure, path, *, dpi: float | None = None, close: bool = False) -> Path:
    """Write a figure to ``path`` atomically: a temp file in the same folder, renamed.

    A failing ``savefig`` (a full disk, an unknown format) removes its temp file and leaves
    an existing file at ``path`` as it was.

    Parameters
    ----------
    fig : Figure
    path : str or Path
        The file; its suffix names the format (``.png``, ``.pdf``, ``.svg``, ...).
    dpi : float, optional
        Resolution (default: matplotlib's).
    close : bool
        Close the figure afterwards (also on failure), freeing its memory.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        kind = path.suffix.lstrip(".").lower() or matplotlib.rcParams["savefig.format"]
        fig.savefig(tmp, dpi=dpi, format=kind)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if close:
            plt.close(fig)
    return path


def _figure(n_panels: int, width: float = 3.2, height: float = 2.6, cols: int | None = None):
    cols = cols or min(n_panels, 4)
    rows = int(np.ceil(n_panels / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.remove()
    return fig, list(axes.flat[:n_panels])


def _law_forms(law, name: str | None) -> set[str]:
    """Names of the library primitives that ``law`` applies to an affine function of the
    input ``name`` (of any input when None): ``x**2/2 + cos(2*y)`` gives ``{"x^2"}`` for
    ``x`` and ``{"cos"}`` for ``y``; a term linear in the input gives ``"x"``."""
    exprs = list(law.expr) if isinstance(law.expr, (list, tuple)) else [law.expr]
    names = law.inputs if name is None else (name,)
    inputs = [sympy.Symbol(n) for n in names]
    u = sympy.Wild("u")
    forms = set()
    for expr in exprs:
        for term in sympy.Add.make_args(sympy.expand(expr)):
            if term.as_independent(*inputs, as_Add=False)[1] in inputs:
                forms.add("x")
        for node in sympy.preorder_traversal(expr):
            if not node.has(*inputs):
                continue
            for prim in symbolic.LIBRARY.values():
                if prim.name in ("0", "x"):
                    continue
                match = node.match(prim.sympy_fn(u))
                inner = match.get(u) if match else None
                if (inner is not None and inner.has(*inputs) and inner.is_polynomial(*inputs)
                        and sympy.Poly(inner, *inputs).total_degree() == 1):
                    forms.add(prim.name)
    return forms


def _faithful_fit(fits: Sequence, forms: set[str], tolerance: float):
    """The fit to draw: of the fits whose R² is within ``tolerance`` of the best, the first
    of the law's forms, else the simplest (:func:`pikan.kan.symbolic.rank_fits` order)."""
    ranked = symbolic.rank_fits(fits, factor=1.0, floor=tolerance)
    best = max(fit.r2 for fit in fits)
    close = [fit for fit in ranked if fit.ok and fit.r2 >= best - tolerance]
    return next((fit for fit in close if fit.name in forms), close[0] if close else None)


def activations(model, data, module: str, fits: bool = True, max_points: int = 2000, *,
                law=None, tolerance: float = FIT_R2_TOLERANCE) -> Figure:
    """Every live edge of a module's KAN on its data: the familiar KAN picture.

    One axes per live edge (layer, input, output), scatter of the edge's value against its
    input on the data; with ``fits``, the simplest faithful symbolic form
    :math:`a\\,f(b x + c) + d` is overlaid and named in the title. Faithful: its
    :math:`R^2` is within ``tolerance`` of the best of :func:`pikan.kan.symbolic.fit_edge`'s
    fits. Among those, a form the module's ``law`` applies to that input comes first (any
    input for a hidden layer's edge), then the simplest (``x``, ``x^2`` before ``tan``).

    Parameters
    ----------
    model : pikan.Model
    data : Trajectories or (q, v)
    module : str
        A module whose block is a KAN.
    fits : bool
        Overlay a symbolic fit per edge.
    max_points : int
        At most this many states (a seeded random subset) are drawn and fitted.
    law : pikan.Law, optional
        The law extracted for the module (``run.laws[module]``): its forms are preferred and
        its formula is shown in the figure title.
    tolerance : float
        See above (default :data:`FIT_R2_TOLERANCE`).

    Returns
    -------
    Figure
    """

    block = model.block(module)
    kan = block.kan
    if kan is None:
        raise SpecError(f"module {module!r} is not a learned KAN block (it has a law); "
                        "activations exist only for KAN blocks.")
    q, v, t = model_states(model, data)
    z = model.module_inputs(module, q, v, t).detach()
    # what the KAN reads: field inputs, or the inputs in the units fit normalised them to
    divisors = [1.0] * kan.in_dim if block.gyroscopic_learned else block.input_scale.tolist()
    z = block.field_inputs(z) if block.gyroscopic_learned else z / block.input_scale
    if z.shape[0] > max_points:
        z = z[torch.randperm(z.shape[0], generator=torch.Generator().manual_seed(0))[:max_points]]
    with torch.no_grad():
        acts = kan.activations(z)
    edges = kan.live_edges()
    fig, axes = _figure(max(len(edges), 1))
    title = f"edge activations of module {module} (points: KAN edge; line: simplest fit)"
    if law is not None:
        title += f"\nlaw: {law.formula()}"
    fig.suptitle(title, fontsize=10)
    if not edges:
        axes[0].text(0.5, 0.5, "all edges pruned", ha="center")
        return fig
    forms: dict[str | None, set[str]] = {}
    for ax, (layer, i, j) in zip(axes, edges):
        x = acts[layer].inputs[:, i].cpu().numpy()
        y = acts[layer].edges[:, i, j].cpu().numpy()
        order = np.argsort(x)
        ax.plot(x[order], y[order], ".", ms=2, color="C0", label="KAN edge")
        name = kan.input_names[i] if layer == 0 else f"h{layer},{i}"
        title = f"layer {layer}: {name} -> {j}"
        if fits and np.ptp(y) > 0:
            key = name if layer == 0 else None
            if law is not None and key not in forms:
                forms[key] = _law_forms(law, key)
            try:
                shown = _faithful_fit(symbolic.fit_edge(x, y), forms.get(key, set()), tolerance)
            except ValueError:  # too few finite samples to fit: the edge alone
                shown = None
            if shown is not None:
                tag = ", the law's form" if shown.name in forms.get(key, ()) else ""
                ax.plot(x[order], shown(x[order]), "-", color="C3", lw=1.2,
                        label=f"{shown.name} (R²={shown.r2:.4f}{tag})")
                title += f"\n{shown.name}"
        ax.set_title(title, fontsize=9)
        unit = f" / {divisors[i]:g}" if layer == 0 and divisors[i] != 1 else ""
        ax.set_xlabel((_tex(name) if layer == 0 else name) + unit)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def importance(imp, module: str | None = None) -> Figure:
    """Bar charts of :func:`pikan.importance` scores (one panel per module/acceleration)."""
    tables = imp.modules if module is None else {module: imp[module]}
    if module is None:
        tables = {**tables, **imp.system}
    fig, axes = _figure(len(tables))
    for ax, (name, table) in zip(axes, tables.items()):
        names = list(table)
        ax.bar(range(len(names)), [table[n] for n in names], color="C0")
        ax.set_xticks(range(len(names)), [_tex(n) for n in names])
        ax.set_ylim(0, 1)
        ax.set_ylabel("importance")
        ax.set_title(name)
    fig.tight_layout()
    return fig


def _indices(index, n_trajectories: int) -> list[int]:
    """``index`` (an int or a sequence of ints, negative from the end) as a list of
    positions in ``range(n_trajectories)``."""
    items = [index] if isinstance(index, (int, np.integer)) else list(index)
    if not items:
        raise DataError("index is empty: give a trajectory index or a list of them.")
    positions = []
    for item in items:
        if not isinstance(item, (int, np.integer)) or isinstance(item, bool) \
                or not -n_trajectories <= item < n_trajectories:
            raise DataError(f"trajectory index {item!r} is not one of the {n_trajectories} "
                            f"trajectories (0..{n_trajectories - 1}, or negative from the end).")
        positions.append(int(item) % n_trajectories)
    return positions


def _which(indices: Sequence[int], n_trajectories: int) -> str:
    """``"trajectory 2 of 6"``, ``"trajectories 0, 3 of 6"`` or ``"all 6 trajectories"``."""
    if len(indices) == n_trajectories > 1 and list(indices) == list(range(n_trajectories)):
        return f"all {n_trajectories} trajectories"
    noun = "trajectory" if len(indices) == 1 else "trajectories"
    return f"{noun} {', '.join(map(str, indices))} of {n_trajectories}"


def _need_velocities(data) -> None:
    if not data.has_velocities:
        raise DataError("the data has no velocities, so no initial states or energies; hint: "
                        "call data.with_derivatives() to estimate them")


def _cut(record, t_max: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(t, q, v)`` of a trajectory, up to ``t_max`` after its start."""
    t = np.asarray(record.t)
    keep = slice(None) if t_max is None else t <= t[0] + t_max
    v = None if record.v is None else np.asarray(record.v)[keep]
    return t[keep], np.asarray(record.q)[keep], v


def _rollouts(model, pieces: Sequence[tuple]) -> list:
    """The motion of ``model`` from the first state of each ``(t, q, v)`` piece, by RK4 at
    its times: ``(t, q, v)`` each, None where :func:`pikan.simulate` failed (its states
    left the finite numbers). Pieces on the same times are integrated together."""
    t = pieces[0][0]
    initial = np.stack([np.concatenate([q[0], v[0]]) for _, q, v in pieces])
    if len(pieces) == 1 or all(np.array_equal(p[0], t) for p in pieces):
        try:
            sim = simulate(model, initial=initial, t=t, method="rk4")
            return [(np.asarray(r.t), np.asarray(r.q), np.asarray(r.v)) for r in sim]
        except DataError:
            if len(pieces) == 1:
                return [None]
    return [_rollouts(model, [piece])[0] for piece in pieces]  # alone: one diverging hides no other


def trajectories(data, *models, labels: Sequence[str] | None = None,
                 index: int | Sequence[int] = 0, t_max: float | None = None) -> Figure:
    """Trajectories of the data with the same initial states simulated by each model.

    One row of panels per trajectory, one panel per coordinate: the data as points, each
    model as a line (RK4 at the data's times, from the trajectory's first state). The
    figure title names the trajectories shown and how many the data hold.

    Parameters
    ----------
    data : Trajectories
    *models : pikan.Model or System
        Each is simulated from each trajectory's first state.
    labels : list of str, optional
        Legend names for the models (default ``model 1``, ...).
    index : int or sequence of int
        Which trajectories (positions in ``data``; negative from the end).
    t_max : float, optional
        Show only the first ``t_max`` time units of each trajectory.

    Returns
    -------
    Figure

    Raises
    ------
    DataError
        An index outside the data; models to simulate but no velocities in the data.
    """

    indices = _indices(index, len(data))
    if models:
        _need_velocities(data)
    names = [labels[m] if labels and m < len(labels) else f"model {m + 1}"
             for m in range(len(models))]
    pieces = [_cut(data[k], t_max) for k in indices]
    simulated = [_rollouts(model, pieces) for model in models]
    n = len(data.coords)
    fig, axes = _figure(len(indices) * n, width=4.5, cols=n)
    for row, (k, (t, q, _)) in enumerate(zip(indices, pieces)):
        panels = axes[row * n:(row + 1) * n]
        for c, (ax, coord) in enumerate(zip(panels, data.coords)):
            ax.plot(t, q[:, c], "k.", ms=2, label="data")
            for m, name in enumerate(names):
                sim = simulated[m][row]
                if sim is None:
                    ax.plot([], [], "-", color=f"C{m}", label=f"{name} (rollout failed)")
                else:
                    ax.plot(sim[0], sim[1][:, c], "-", lw=1.2, color=f"C{m}", label=name)
            ax.set_title(f"trajectory {k}: {_tex(coord)}", fontsize=9)
            ax.set_xlabel("$t$")
            ax.set_ylabel(_tex(coord))
        panels[0].legend(fontsize=8)
    shown = "data" + (f" and {', '.join(names)} from the same initial states" if names else "")
    fig.suptitle(f"{_which(indices, len(data))}: {shown}", fontsize=10)
    fig.tight_layout()
    return fig


def energy(model, data, index: int | Sequence[int] | None = None, *, label: str = "model",
           rollout: bool = True) -> Figure:
    """The model's energy along trajectories of the data and along its own motion.

    Solid lines: the model's energy :math:`E(q, v)` on the data's states (flat where the data
    conserve it). Dashed, with ``rollout``: :math:`E` along the model's own motion from each
    trajectory's first state (RK4 at the data's times; flat where the model conserves
    it). One colour per trajectory; a trajectory whose rollout fails (leaves the finite
    numbers) has no dashed line.

    Parameters
    ----------
    model : pikan.Model
    data : Trajectories
    index : int or sequence of int, optional
        Which trajectories (default all).
    label : str
        The model's name in the legend and title (``"laws"``, ``"KAN"``).
    rollout : bool
        Also draw the energy along the model's rollouts.

    Returns
    -------
    Figure

    Raises
    ------
    DataError
        An index outside the data, or data without velocities.
    """
    _need_velocities(data)
    indices = list(range(len(data))) if index is None else _indices(index, len(data))
    pieces = [_cut(data[k], None) for k in indices]
    simulated = _rollouts(model, pieces) if rollout else [None] * len(pieces)

    def energy_along(t, q, v):
        q, v, t = model_states(model, (q, v, t))
        with torch.enable_grad():
            return model.energy(q, v, t).detach().cpu().numpy()

    fig, axes = _figure(1, width=5.5, height=3.4)
    ax = axes[0]
    for n, ((t, q, v), sim) in enumerate(zip(pieces, simulated)):
        ax.plot(t, energy_along(t, q, v), "-", lw=1, color=f"C{n % 10}")
        if sim is not None:
            ax.plot(sim[0], energy_along(*sim), "--", lw=1, color=f"C{n % 10}")
    handles = [Line2D([], [], color="0.3", ls="-", label=f"$E$ of {label} on the data's states")]
    if rollout:
        handles.append(Line2D([], [], color="0.3", ls="--",
                              label=f"$E$ of {label} along its own rollout"))
    ax.legend(handles=handles, fontsize=8)
    ax.set_xlabel("$t$")
    ax.set_ylabel("energy $E$")
    ax.set_title(f"energy of {label} ({model.spec.name}), {_which(indices, len(data))}",
                 fontsize=10)
    fig.tight_layout()
    return fig


_BETWEEN_FITS = ("prune", "adapt", "refine")
"""Recipe stages without optimizer steps, named at the next fit stage's start."""


def _stage_starts(rows: Sequence[dict], events: Sequence[dict]) -> list[tuple[int, str]]:
    """``(step, label)`` of every row that starts a new recipe stage (the first row
    excepted): ``"stage 5: adam after prune, adapt, refine"``."""
    starts = []
    for before, row in itertools.pairwise(rows):
        if row.get("stage") is None or row["stage"] == before.get("stage"):
            continue
        between = [e["kind"] for e in events if e.get("kind") in _BETWEEN_FITS
                   and before.get("stage", -1) < e.get("stage", -1) < row["stage"]]
        label = f"stage {row['stage']}: {row.get('optimizer', 'fit')}"
        starts.append((row["step"], label + (f" after {', '.join(between)}" if between else "")))
    return starts


def history(rows: Sequence[dict], keys: Sequence[str] | None = None,
            events: Sequence[dict] = ()) -> Figure:
    """Loss curves of a fit, with a dotted vertical line where the recipe's stage changes.

    Parameters
    ----------
    rows : sequence of dict
        :attr:`pikan.train.history.History.rows`: one per optimizer step, with ``step``;
        a ``stage`` (the recipe position) marks the stage changes, at the first step of each
        new stage, labelled with its optimizer.
    keys : sequence of str, optional
        Columns to draw (default: the numeric ones named ``*loss*``, ``train`` and
        ``val``); non-positive and missing values are skipped (log scale).
    events : sequence of dict
        :attr:`pikan.train.history.History.events`: the prune, adapt and refine stages
        between two fit stages are named in the label of the change.

    Returns
    -------
    Figure

    Raises
    ------
    SpecError
        No row has a ``step``.
    """
    rows = [r for r in rows if "step" in r]
    if not rows:
        raise SpecError("history is empty: nothing to plot; train with pikan.fit first.")
    if keys is None:
        keys = sorted({k for r in rows for k, val in r.items() if k != "step" and
                       isinstance(val, (int, float)) and ("loss" in k or k in ("train", "val"))})
    fig, axes = _figure(1, width=5.5, height=3.2)
    ax = axes[0]
    for key in keys:
        pts = [(r["step"], r[key]) for r in rows
               if isinstance(r.get(key), (int, float)) and np.isfinite(r[key]) and r[key] > 0]
        if pts:
            s, val = zip(*pts)
            ax.semilogy(s, val, label=key)
    starts = _stage_starts(rows, events)
    for n, (step, label) in enumerate(starts):
        ax.axvline(step, color="0.5", ls=":", lw=1, label="stage change" if n == 0 else None)
        ax.text(step, 0.98, label, transform=ax.get_xaxis_transform(), rotation=90,
                ha="right", va="top", fontsize=6, color="0.3")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("training loss per step" + (", recipe stages marked" if starts else ""),
                 fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def pareto(law) -> Figure:
    """The Pareto front of a law: error against complexity, the chosen law marked."""
    candidates = list(getattr(law, "alternatives", None) or [])
    fig, axes = _figure(1, width=5.0, height=3.4)
    ax = axes[0]
    points = [(c.complexity, max(c.rmse, 1e-16)) for c in candidates]
    if points:
        xs, ys = zip(*points)
        ax.semilogy(xs, ys, "o-", color="C0", label="alternatives")
    ax.semilogy([law.complexity], [max(law.rmse, 1e-16)], "*", ms=14, color="C3", label="chosen")
    ax.set_xlabel("complexity")
    ax.set_ylabel("RMSE")
    ax.set_title(str(law), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def graph(model, imp=None) -> Figure:
    """The module graph (state -> features -> modules -> gradient nodes -> accelerations).

    With ``imp`` (from :func:`pikan.importance`), edges from state variables into modules
    are drawn with thickness by the module's input importance.
    """
    g = model.graph()
    columns = {"state": 0, "feature": 1, "module": 2, "gradient": 3, "acceleration": 4}
    placed: dict[str, tuple[float, float]] = {}
    for kind, col in columns.items():
        keys = [k for k, n in g["nodes"].items() if n["kind"] == kind]
        for row, key in enumerate(keys):
            placed[key] = (col, -(row - (len(keys) - 1) / 2))
    height = max(3.0, 0.6 * max(sum(1 for n in g["nodes"].values() if n["kind"] == k)
                                for k in columns))
    fig, axes = _figure(1, width=10.0, height=height)
    ax = axes[0]
    colors = {"state": "#dde8f5", "feature": "#f5f0dd", "module": "#e0f5dd",
              "gradient": "#f5dde0", "acceleration": "#eeeeee"}
    for a, b in g["edges"]:
        (x0, y0), (x1, y1) = placed[a], placed[b]
        width = 1.0
        if imp is not None and g["nodes"][b]["kind"] == "module":
            width = 0.5 + 5.0 * imp.modules.get(b, {}).get(a, 0.2)
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "->", "lw": width, "color": "0.4"})
    for key, (x, y) in placed.items():
        node = g["nodes"][key]
        ax.text(x, y, node["label"], ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round", "fc": colors[node["kind"]], "ec": "0.5"})
    ys = [y for _, y in placed.values()]
    ax.set_xlim(-0.6, 4.6)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.axis("off")
    ax.set_title(f"{g['system']}: {g['formulation']} graph")
    return fig
