import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import sympy
import torch

import pikan
from pikan.data.trajectories import Trajectory
from pikan.errors import DataError, SpecError
from pikan.inspect import plot
from pikan.inspect.analysis import importance


@pytest.fixture(scope="module")
def trained():
    """Anisotropic oscillator; V learned by a single-layer [2, 1] KAN fitted on forces."""
    truth = pikan.System("anisotropic", coords=["x", "y"],
                         modules=[pikan.Potential("V", inputs=["x", "y"], law="x**2/2 + y**2")])
    data = pikan.simulate(truth, n_trajectories=4, t=(0, 4), dt=0.02, seed=0)
    model = pikan.compile(truth.learn("V", hidden=[]))
    q, v, _ = data.states()
    q = torch.as_tensor(q)
    v = torch.as_tensor(v)
    a = torch.as_tensor(data.accelerations()[0])
    model.adapt_grids(q, v)
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(200):
        opt.zero_grad()
        ((model.acceleration(q, v) - a) ** 2).mean().backward()
        opt.step()
    return truth, model, data


def _save(fig, tmp_path, name):
    path = tmp_path / f"{name}.png"
    fig.savefig(path)
    assert path.stat().st_size > 1000
    return fig


def test_activations_one_axes_per_live_edge_with_parabolas(trained, tmp_path):
    _, model, data = trained
    fig = _save(plot.activations(model, data, "V"), tmp_path, "acts")
    assert len(fig.axes) == len(model.blocks["V"].kan.live_edges()) == 2
    titles = [ax.get_title() for ax in fig.axes]
    assert all("x^2" in t for t in titles), titles
    assert [ax.get_xlabel() for ax in fig.axes] == ["$x$", "$y$"]


def test_activations_of_a_normalised_block_show_what_its_kan_reads(trained, tmp_path):
    """The same KAN in a block normalised for data in units 1e9 times larger (fit does this
    for data far from unit size): the same edges, on x / 1e9, so labelled."""
    import copy

    _, model, data = trained
    far = copy.deepcopy(model)
    far.blocks["V"].input_scale.fill_(1e9)
    far.blocks["V"].output_scale.fill_(1e18)
    moved = pikan.Trajectories.from_arrays([r.t for r in data], [1e9 * r.q for r in data],
                                           [1e9 * r.v for r in data], coords=data.coords)
    fig = _save(plot.activations(far, moved, "V"), tmp_path, "acts_far")
    assert [ax.get_title() for ax in fig.axes] == [ax.get_title() for ax in
                                                   plot.activations(model, data, "V").axes]
    assert [ax.get_xlabel() for ax in fig.axes] == ["$x$ / 1e+09", "$y$ / 1e+09"]


def test_activations_of_law_block_is_an_error(trained):
    truth, _, data = trained
    with pytest.raises(SpecError, match="not a learned KAN"):
        plot.activations(pikan.compile(truth), data, "V")


def test_importance_trajectories_energy_history_graph(trained, tmp_path):
    truth, model, data = trained
    imp = importance(model, data)
    fig = _save(plot.importance(imp), tmp_path, "imp")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["$x$", "$y$"]
    fig = _save(plot.trajectories(data, model, truth, labels=["KAN", "truth"], t_max=2.0),
                tmp_path, "traj")
    assert [ax.get_ylabel() for ax in fig.axes] == ["$x$", "$y$"]
    assert len(fig.axes[0].lines) == 3
    fig = _save(plot.energy(model, data), tmp_path, "energy")
    assert len(fig.axes[0].lines) == 2 * len(data)  # on the data's states, along the rollout
    rows = [{"step": s, "train_loss": 1.0 / (s + 1), "val_loss": 2.0 / (s + 1)} for s in range(50)]
    fig = _save(plot.history(rows), tmp_path, "history")
    assert len(fig.axes[0].lines) == 2
    fig = _save(plot.graph(model, imp), tmp_path, "graph")
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert "Potential V(x, y) [KAN]" in labels and "-dV/dq" in labels
    with pytest.raises(SpecError, match="empty"):
        plot.history([])


def _exact_edges(truth, *edges):
    """A fresh [2, 1] KAN model of V whose edges are fixed to library functions."""
    model = pikan.compile(truth.learn("V", hidden=[]), seed=0)
    for i, (name, a) in enumerate(edges):
        model.blocks["V"].kan.set_symbolic(0, i, 0, name, a=a)
    return model


def test_activations_draw_the_simplest_faithful_fit_and_prefer_the_laws_form(trained):
    """Issue: a quadratic potential's edges were drawn as log, tan or gaussian. On |x| < 1,
    -cos(x) is matched exactly by sin and cos and to R² > 0.999 by x^2: x^2 is drawn, unless
    the run's law says cos. y^4 is not drawn as y^2 (R² about 0.92)."""
    truth, _, data = trained
    model = _exact_edges(truth, ("cos", -1.0), ("x^4", 1.0))
    fig = plot.activations(model, data, "V")
    assert [ax.get_title().splitlines()[-1] for ax in fig.axes] == ["x^2", "x^4"]
    fit_label = fig.axes[0].get_legend().get_texts()[1].get_text()
    assert fit_label.startswith("x^2 (R²=0.99") and "law" not in fit_label
    assert "law" not in fig.get_suptitle()

    law = pikan.Law("V", "Potential", ("x", "y"), sympy.sympify("-cos(x) + y**4"))
    fig = plot.activations(model, data, "V", law=law)
    assert [ax.get_title().splitlines()[-1] for ax in fig.axes] == ["cos", "x^4"]
    assert [ax.get_legend().get_texts()[1].get_text() for ax in fig.axes] == [
        "cos (R²=1.0000, the law's form)", "x^4 (R²=1.0000, the law's form)"]
    assert "law: V(x, y) = y**4 - cos(x) + const" in fig.get_suptitle()
    _, x_edge = fig.axes[0].lines  # the drawn curve is the fit: -cos(x) itself
    np.testing.assert_allclose(x_edge.get_ydata(), -np.cos(x_edge.get_xdata()), atol=1e-9)

    law = pikan.Law("V", "Potential", ("x", "y"), sympy.sympify("x**2/2 + y**4"))
    fig = plot.activations(model, data, "V", law=law)
    assert [ax.get_title().splitlines()[-1] for ax in fig.axes] == ["x^2", "x^4"]


def test_trajectories_of_several_indices_are_titled_one_row_each(trained, tmp_path):
    truth, model, data = trained
    fig = _save(plot.trajectories(data, model, truth, labels=["KAN", "laws"], index=[3, 1],
                                  t_max=1.0), tmp_path, "traj")
    assert fig.get_suptitle().startswith("trajectories 3, 1 of 4: data and KAN, laws")
    assert [ax.get_title() for ax in fig.axes] == [
        "trajectory 3: $x$", "trajectory 3: $y$", "trajectory 1: $x$", "trajectory 1: $y$"]
    for row, k in enumerate([3, 1]):
        keep = data[k].t <= data[k].t[0] + 1.0
        for c, ax in enumerate(fig.axes[2 * row:2 * row + 2]):
            points, kan, laws = ax.lines
            np.testing.assert_array_equal(points.get_ydata(), data[k].q[keep, c])
            # the truth simulated from the trajectory's first state retraces it (RK4)
            np.testing.assert_allclose(laws.get_ydata(), data[k].q[keep, c], atol=1e-5)
            assert kan.get_ydata()[0] == data[k].q[0, c]
        legend = fig.axes[2 * row].get_legend()
        assert [t.get_text() for t in legend.get_texts()] == ["data", "KAN", "laws"]
    one = plot.trajectories(data, index=-1)
    assert one.get_suptitle() == "trajectory 3 of 4: data"
    with pytest.raises(DataError, match="trajectory index 4 is not one of the 4"):
        plot.trajectories(data, model, index=[0, 4])


def test_energy_shows_the_models_energy_on_the_data_and_along_its_rollout(trained, tmp_path):
    truth, _, data = trained
    law_model = pikan.compile(truth)
    fig = _save(plot.energy(law_model, data, index=[0, 2], label="laws"), tmp_path, "energy")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "$E$ of laws on the data's states", "$E$ of laws along its own rollout"]
    assert ax.get_title() == "energy of laws (anisotropic), trajectories 0, 2 of 4"
    on_data, rollout = ax.lines[:2]
    q, v = data[0].q, data[0].v
    np.testing.assert_allclose(on_data.get_ydata(),
                               (v ** 2).sum(1) / 2 + q[:, 0] ** 2 / 2 + q[:, 1] ** 2, rtol=1e-12)
    assert rollout.get_linestyle() == "--"
    # the true law conserves its energy along its own motion, which retraces the data
    np.testing.assert_allclose(rollout.get_ydata(), on_data.get_ydata(), rtol=1e-6)
    assert np.ptp(rollout.get_ydata()) < 1e-6 * rollout.get_ydata()[0]
    positions = pikan.Trajectories([Trajectory(r.t, r.q) for r in data], data.coords)
    with pytest.raises(DataError, match="no velocities"):
        plot.energy(law_model, positions)


def test_history_marks_where_the_recipes_stages_change(tmp_path):
    """Rows and events as pikan.fit records them: an Adam and an L-BFGS fit with sparsity
    (stages 0, 1), prune, adapt and refine (2, 3, 4), then Adam again (stage 5)."""
    stages = [(0, "adam")] * 10 + [(1, "lbfgs")] * 5 + [(5, "adam")] * 15
    rows = [{"step": s + 1, "stage": stage, "optimizer": optimizer, "loss": 1.0 / (s + 1),
             "train": 0.9 / (s + 1), "val": 2.0 / (s + 1) if s % 5 == 0 else None}
            for s, (stage, optimizer) in enumerate(stages)]
    events = [{"kind": kind, "step": 15, "stage": stage}
              for kind, stage in [("restore_best", 1), ("prune", 2), ("adapt", 3),
                                  ("refine", 4)]]
    fig = _save(plot.history(rows, events=events), tmp_path, "loss")
    ax = fig.axes[0]
    curves = [line for line in ax.lines if line.get_label() in ("loss", "train", "val")]
    assert len(curves) == 3
    marks = [line for line in ax.lines if line.get_label() == "stage change"
             or line.get_label().startswith("_")]
    assert [line.get_xdata()[0] for line in marks] == [11, 16]
    assert all(list(line.get_ydata()) == [0, 1] for line in marks)  # full height
    assert [t.get_text() for t in ax.texts] == ["stage 1: lbfgs",
                                                "stage 5: adam after prune, adapt, refine"]
    assert "stage change" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert "stages marked" in ax.get_title()
    no_stages = plot.history([{"step": s, "loss": 1.0 / s} for s in range(1, 9)])
    assert len(no_stages.axes[0].lines) == 1 and not no_stages.axes[0].texts


def test_pareto_front_of_an_extracted_law(trained, tmp_path):
    _, model, data = trained
    law = pikan.extract(model, data)["V"]
    fig = _save(plot.pareto(law), tmp_path, "pareto")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "complexity" and ax.get_ylabel() == "RMSE"
    assert len(ax.lines) == (2 if law.alternatives else 1)
    assert "V(x, y)" in ax.get_title()


def test_save_writes_whole_files_and_a_failing_savefig_leaves_no_temp_file(tmp_path,
                                                                           monkeypatch):
    """Issue 22: a full disk during savefig once left a temp file beside the plot."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0.0, 1.0], [1.0, 0.0])
    target = tmp_path / "loss.png"
    target.write_bytes(b"the previous plot")

    def disk_full(path, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fig, "savefig", disk_full)
    with pytest.raises(OSError, match="No space left"):
        plot.save(fig, target, dpi=50, close=True)
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]
    assert target.read_bytes() == b"the previous plot"
    assert not plt.fignum_exists(fig.number)  # closed on failure too

    monkeypatch.undo()
    fig, ax = plt.subplots()
    ax.plot([0.0, 1.0], [1.0, 0.0])
    assert plot.save(fig, target, dpi=50) == target
    assert target.read_bytes()[:4] == b"\x89PNG" and plt.fignum_exists(fig.number)
    assert plot.save(fig, tmp_path / "loss.svg", close=True).read_text().count("<svg") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png", "loss.svg"]
