import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

import pikan  # noqa: E402
from pikan.inspect import plot  # noqa: E402
from pikan.inspect.analysis import importance  # noqa: E402
from pikan.errors import SpecError  # noqa: E402


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
    assert len(fig.axes[0].lines) == len(data)
    rows = [{"step": s, "train_loss": 1.0 / (s + 1), "val_loss": 2.0 / (s + 1)} for s in range(50)]
    fig = _save(plot.history(rows), tmp_path, "history")
    assert len(fig.axes[0].lines) == 2
    fig = _save(plot.graph(model, imp), tmp_path, "graph")
    labels = {t.get_text() for t in fig.axes[0].texts}
    assert "Potential V(x, y) [KAN]" in labels and "-dV/dq" in labels
    with pytest.raises(SpecError, match="empty"):
        plot.history([])


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
