"""Figures: every function takes data and returns a matplotlib ``Figure``.

This is the only pikan module that imports matplotlib. Nothing is shown here; :func:`save`
writes a figure atomically (the run directory uses it), ``fig.savefig(path)`` works as
usual, and a notebook displays the figure. Labels use the spec's variable names, typeset as
LaTeX where sympy can.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)  # no display needed; a notebook backend still wins
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import sympy  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from pikan.data.integrate import simulate  # noqa: E402
from pikan.errors import SpecError  # noqa: E402
from pikan.inspect.analysis import model_states  # noqa: E402
from pikan.kan.symbolic import fit_edge  # noqa: E402


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


def activations(model, data, module: str, fits: bool = True, max_points: int = 2000) -> Figure:
    """Every live edge of a module's KAN on its data: the familiar KAN picture.

    One axes per live edge (layer, input, output), scatter of the edge's value against its
    input on the data; with ``fits``, the best symbolic form from
    :func:`pikan.kan.symbolic.fit_edge` is overlaid and named in the title.

    Parameters
    ----------
    model : pikan.Model
    data : Trajectories or (q, v)
    module : str
        A module whose block is a KAN.
    """

    block = model.block(module)
    kan = block.kan
    if kan is None:
        raise SpecError(f"module {module!r} is not a learned KAN block (it has a law); "
                        "activations exist only for KAN blocks.")
    q, v = model_states(model, data)
    z = model.module_inputs(module, q, v).detach()
    if block.gyroscopic_learned:
        z = block.field_inputs(z)
    if z.shape[0] > max_points:
        z = z[torch.randperm(z.shape[0], generator=torch.Generator().manual_seed(0))[:max_points]]
    with torch.no_grad():
        acts = kan.activations(z)
    edges = kan.live_edges()
    fig, axes = _figure(max(len(edges), 1))
    if not edges:
        axes[0].text(0.5, 0.5, "all edges pruned", ha="center")
        return fig
    for ax, (layer, i, j) in zip(axes, edges):
        x = acts[layer].inputs[:, i].cpu().numpy()
        y = acts[layer].edges[:, i, j].cpu().numpy()
        order = np.argsort(x)
        ax.plot(x[order], y[order], ".", ms=2, color="C0", label="KAN edge")
        name = kan.input_names[i] if layer == 0 else f"h{layer},{i}"
        title = f"layer {layer}: {name} -> {j}"
        if fits and np.ptp(y) > 0:
            try:
                best = fit_edge(x, y)[0]
                ax.plot(x[order], best(x[order]), "-", color="C3", lw=1.2,
                        label=f"{best.name} (R²={best.r2:.4f})")
                title += f"\n{best.name}"
            except ValueError:
                pass
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(_tex(name) if layer == 0 else name)
        ax.legend(fontsize=7)
    fig.suptitle(f"edge activations of module {module}")
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


def trajectories(data, *models, labels: Sequence[str] | None = None, index: int = 0,
                 t_max: float | None = None) -> Figure:
    """One trajectory of the data with the same initial state simulated by each model.

    Parameters
    ----------
    data : Trajectories
    *models : pikan.Model or System
        Each is simulated from the trajectory's first state (RK4 at the data's times).
    labels : list of str, optional
        Legend names for the models (default ``model 1``, ...).
    index : int
        Which trajectory.
    """

    record = data[index]
    t = np.asarray(record.t)
    if t_max is not None:
        keep = t <= t[0] + t_max
        t = t[keep]
    q = np.asarray(record.q)[: len(t)]
    fig, axes = _figure(len(data.coords), width=4.5)
    for ax, name, k in zip(axes, data.coords, range(len(data.coords))):
        ax.plot(t, q[:, k], "k.", ms=2, label="data")
        ax.set_xlabel("$t$")
        ax.set_ylabel(_tex(name))
    v0 = np.asarray(record.v)[0] if record.v is not None else np.zeros(len(data.coords))
    initial = np.concatenate([q[0], v0])[None]
    for m, model in enumerate(models):
        label = labels[m] if labels and m < len(labels) else f"model {m + 1}"
        sim = simulate(model, initial=initial, t=t, method="rk4")
        sq = np.asarray(sim[0].q)
        for ax, k in zip(axes, range(len(data.coords))):
            ax.plot(sim[0].t, sq[:, k], "-", lw=1.2, color=f"C{m}", label=label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def energy(model, data, index: int | None = None) -> Figure:
    """The model's energy along each trajectory of the data (flat lines: conserved)."""
    fig, axes = _figure(1, width=5.0)
    ax = axes[0]
    items = range(len(data)) if index is None else [index]
    for k in items:
        record = data[k]
        q, v = model_states(model, (record.q, record.v))
        with torch.enable_grad():
            e = model.energy(q, v).detach().cpu().numpy()
        ax.plot(record.t, e, lw=1)
    ax.set_xlabel("$t$")
    ax.set_ylabel("energy $E$")
    ax.set_title(f"energy of {model.spec.name} along the data")
    fig.tight_layout()
    return fig


def history(rows: Sequence[dict], keys: Sequence[str] | None = None) -> Figure:
    """Loss curves from a fit history (a list of per-step dicts with a ``step`` key)."""
    rows = [r for r in rows if "step" in r]
    if not rows:
        raise SpecError("history is empty: nothing to plot; train with pikan.fit first.")
    if keys is None:
        keys = sorted({k for r in rows for k, val in r.items()
                       if k != "step" and isinstance(val, (int, float)) and "loss" in k})
    fig, axes = _figure(1, width=5.5, height=3.2)
    ax = axes[0]
    for key in keys:
        pts = [(r["step"], r[key]) for r in rows
               if isinstance(r.get(key), (int, float)) and np.isfinite(r[key]) and r[key] > 0]
        if pts:
            s, val = zip(*pts)
            ax.semilogy(s, val, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
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
