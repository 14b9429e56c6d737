from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch
from pikan.constraints import Even

from pikan.data.integrate import simulate
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError
from pikan.model.compile import compile
from pikan.spec.system import Potential, System
from pikan.train import loop as train
from pikan.train import losses
from pikan.train import options as fit_options
from pikan.train.loop import (
    FitResult,
    Recipe,
    Stage,
    TrainingError,
    fit,
    load_model,
    read_checkpoint,
)
from pikan.train.losses import acceleration_matching

HARMONIC = System("harmonic", coords=["x"], params={"k": 1.0},
                  modules=[Potential("V", inputs=["x"], law="k*x**2/2")])
ANISOTROPIC = System("anisotropic", coords=["x", "y"], params={"k": 1.0},
                     modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + 2*y**2)/2")])
X_ONLY = System("x_only", coords=["x", "y"], modules=[Potential("V", inputs=["x", "y"], law="x**2")])


@pytest.fixture(scope="module")
def harmonic_data():
    return simulate(HARMONIC, n_trajectories=8, t=(0, 2), dt=0.01, seed=0)


@pytest.fixture(scope="module")
def anisotropic_data():
    return simulate(ANISOTROPIC, n_trajectories=8, t=(0, 2), dt=0.01, seed=0)


def acceleration_error(model, data) -> float:
    q, v, _ = data.states()
    a, _ = data.accelerations()
    q, v, a = (torch.tensor(x) for x in (q, v, a))
    return losses.relative_error(model.acceleration(q, v), a)


def parameters(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_parameters(a: dict, b: dict, tol: float = 1e-10):
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert value.shape == b[key].shape, key
        assert float((value - b[key]).abs().max()) <= tol, key


# ----------------------------------------------------------------------------- accuracy


def test_fit_with_no_options_learns_the_harmonic_oscillator(harmonic_data):
    model = compile(HARMONIC.learn("V", hidden=[], grid=5))
    result = fit(model, harmonic_data, progress=False)
    error = acceleration_error(model, harmonic_data)
    print(f"harmonic: relative acceleration error {error:.2e} in {result.steps} steps")
    assert error < 1e-3
    assert isinstance(result, FitResult) and result.steps == len(result.history)
    choices = result.choices
    assert choices["loss"] == "acceleration" and "accelerations" in choices["reasons"]["loss"]
    assert choices["device"] == "cpu" and choices["dtype"] == "float64"
    assert choices["steps"] == 800 and "progressive" in choices["reasons"]["recipe"]
    assert result.best_val < 1e-6 and result.wall_time > 0
    kinds = [e["kind"] for e in result.events]
    assert kinds[0] == "adapt" and {"prune", "refine", "restore_best"} <= set(kinds)
    refine = next(e for e in result.events if e["kind"] == "refine")
    assert refine["grid_from"] == [5] and refine["grid_to"] == [10]
    assert model.blocks["V"].kan.layers[0].grid == 10
    row = result.history.rows[-1]
    assert {"step", "stage", "optimizer", "lr", "loss", "train", "val", "acceleration"} <= row.keys()


def test_fit_learns_the_anisotropic_oscillator(anisotropic_data):
    model = compile(ANISOTROPIC.learn("V", hidden=[], grid=5))
    result = fit(model, anisotropic_data, steps=500, progress=False)
    error = acceleration_error(model, anisotropic_data)
    print(f"anisotropic: relative acceleration error {error:.2e} in {result.steps} steps")
    assert error < 1e-3
    # the force field off the data too: F = -(x, 2y) on a grid inside the data range
    g = torch.linspace(-0.8, 0.8, 9)
    q = torch.cartesian_prod(g, g)
    force = model.acceleration(q, torch.zeros_like(q)).detach()
    assert losses.relative_error(force, -q * torch.tensor([1.0, 2.0])) < 1e-3


def test_the_weak_form_on_noisy_positions_beats_finite_difference_accelerations():
    clean = simulate(HARMONIC, n_trajectories=4, t=(0, 10), dt=0.01, seed=0)
    noisy = clean.with_noise(0.01, seed=1)  # 1 % of the position spread
    positions = Trajectories.from_arrays([r.t for r in noisy], [r.q for r in noisy], coords=["x"])
    spec = HARMONIC.learn("V", hidden=[], grid=5)
    x = torch.linspace(-1, 1, 101)[:, None]

    def force_error(model):
        return losses.relative_error(model.acceleration(x, torch.zeros_like(x)), -x)

    weak = compile(spec)
    result = fit(weak, positions, progress=False)
    assert result.choices["loss"] == "weak" and "noisy" in result.choices["reasons"]["loss"]
    finite = compile(spec)
    fit(finite, positions, loss="acceleration", derivatives="finite_difference", progress=False)
    e_weak, e_finite = force_error(weak), force_error(finite)
    print(f"force field error: weak form {e_weak:.2%}, finite-difference accelerations "
          f"{e_finite:.2%}")
    assert e_weak < 0.03
    assert e_finite > 10 * e_weak


def test_initial_grids_restart_a_fresh_kan_on_far_away_data():
    # positions up to ~7, far outside the construction grid (-1, 1)
    data = simulate(HARMONIC, n_trajectories=4, t=(0, 2), dt=0.01, seed=0,
                    initial=np.array([[5.0, 0.0], [-4.0, 3.0], [2.0, -5.0], [0.5, 6.0]]))
    q, v, _ = (torch.tensor(x) for x in data.states())
    model = compile(HARMONIC.learn("V", hidden=[3], grid=5))
    kan = model.blocks["V"].kan
    extrapolated = float(model.acceleration(q, v).detach().abs().max())
    train.initial_grids(model, q, v)
    placed = float(model.acceleration(q, v).detach().abs().max())
    first = kan.layers[0]
    assert float(first.knots[0, first.order]) == pytest.approx(float(q.min()), rel=1e-4)
    assert float(first.knots[0, -first.order - 1]) == pytest.approx(float(q.max()), rel=1e-4)
    print(f"largest initial force: {extrapolated:.3g} extrapolated, {placed:.3g} re-initialized")
    assert extrapolated > 100 and placed < 10
    # an adapted KAN is not re-initialized: its grids move keeping its function (adapt_grids)
    twin = compile(HARMONIC.learn("V", hidden=[3], grid=5))
    twin.load_state_dict(model.state_dict())
    half = len(q) // 2
    train.initial_grids(model, q[:half], v[:half])
    twin.adapt_grids(q[:half], v[:half])
    assert_same_parameters(parameters(model), parameters(twin), tol=1e-12)


# ----------------------------------------------------------------------------- recipe


def test_recipe_prunes_the_irrelevant_input():
    data = simulate(X_ONLY, n_trajectories=16, t=(0, 1), dt=0.01, seed=0)
    model = compile(X_ONLY.learn("V", hidden=[], grid=5))
    result = fit(model, data, progress=False)
    mask = model.blocks["V"].kan.layers[0].mask
    assert torch.equal(mask, torch.tensor([[1.0], [0.0]]))  # edge from y gone, from x kept
    (prune,) = [e for e in result.events if e["kind"] == "prune"]
    assert prune["inputs_removed"] == ["y"] and prune["pruned"] == [[0, 1, 0]]
    assert prune["edges_pruned"] == 1 and prune["alive"] == 1
    assert acceleration_error(model, data) < 1e-3


def test_soft_constraint_penalty_enters_the_loss():
    # the truth has an odd part; a soft Even(x) trades data fit for evenness
    truth = System("cubic", coords=["x"], modules=[Potential("V", inputs=["x"], law="x**2/2 + x**3/5")])
    data = simulate(truth, n_trajectories=4, t=(0, 2), dt=0.02, seed=0)
    q, v, _ = (torch.tensor(x) for x in data.states())
    penalties = {}
    for weight in (0.0, 10.0):
        constraint = Even("x", mode="soft", weight=weight)
        model = compile(truth.learn("V", hidden=[], grid=5, constraints=[constraint]))
        result = fit(model, data, recipe="plain", steps=40, progress=False)
        rows = result.history.rows
        assert all(row["loss"] == pytest.approx(row["acceleration"] + row["V.Even"])
                   for row in rows)
        penalties[weight] = float(constraint.penalty(model, q, v, module="V").detach())
    print(f"Even(x) penalty mean((V(-x) - V(x))^2) after 40 steps: {penalties}")
    assert penalties[10.0] < 0.1 * penalties[0.0]


# ----------------------------------------------------------------------------- loss kinds


@dataclass(frozen=True)
class AbsoluteAcceleration(losses.LossKind):
    """A loss kind fit has never heard of: unnormalized acceleration matching, on samples
    stored under keys no built-in kind uses."""

    name: ClassVar[str] = "absolute"

    def needs_derivatives(self, data) -> bool:
        return not data.has_accelerations

    def samples(self, data) -> dict:
        q, v, _ = data.states()
        a, _ = data.accelerations()
        return {"positions": q, "velocities": v, "targets": a}

    def scales(self, train, q, v, measured_velocities) -> dict:
        return {}

    def states(self, batch):
        return batch["positions"], batch["velocities"]

    def __call__(self, model, batch, scales):
        q, v = self.states(batch)
        return ((model.acceleration(q, v) - batch["targets"]) ** 2).mean()


def test_a_new_loss_kind_trains_through_the_interface_alone(harmonic_data, monkeypatch):
    # a new kind is a file and a registry entry; LOSSES reads the registry when the options
    # module is imported, which the second patch stands in for
    monkeypatch.setitem(losses.LOSS_KINDS, "absolute", AbsoluteAcceleration)
    monkeypatch.setattr(fit_options, "LOSSES", (*fit_options.LOSSES, "absolute"))
    model = compile(HARMONIC.learn("V", hidden=[], grid=5), seed=0)
    result = fit(model, harmonic_data, loss="absolute", progress=False)
    assert result.choices["loss"] == "absolute" and result.choices["reasons"]["loss"] == "given"
    assert "progressive" in result.choices["reasons"]["recipe"]  # a sparsity stage: states()
    rows = result.history.rows
    assert all("absolute" in row and row["train"] == row["absolute"] for row in rows)
    assert any("sparsity" in row for row in rows)
    assert rows[-1]["absolute"] < 1e-8 * rows[0]["absolute"]  # 0.34 -> 1.7e-11
    assert acceleration_error(model, harmonic_data) < 1e-4  # 1.4e-5


# ----------------------------------------------------------------------------- resume


RESUME_RECIPE = Recipe([Stage.fit(12, "adam", sparsity=1e-3), Stage.prune(0.05), Stage.adapt(),
                        Stage.refine(7), Stage.fit(8, "adam"), Stage.fit(6, "lbfgs")])


def resume_fit(model, data, **kw):
    return fit(model, data, recipe=RESUME_RECIPE, batch_size=256, eval_every=3,
               progress=False, **kw)


def test_resume_gives_the_uninterrupted_parameters(anisotropic_data, tmp_path):
    spec = ANISOTROPIC.learn("V", hidden=[3], grid=4)
    reference = compile(spec)
    full = resume_fit(reference, anisotropic_data)
    assert full.steps == 26 and not full.interrupted

    path = tmp_path / "ckpt.pt"

    def interrupt_at_7(model, row):
        if row["step"] == 7:
            raise KeyboardInterrupt

    model = compile(spec)
    first = resume_fit(model, anisotropic_data, checkpoint=path, callback=interrupt_at_7)
    assert first.interrupted and first.steps == 7 and len(first.history) == 7
    assert first.events[-1]["kind"] == "interrupt"

    # resume a fresh model twice: stop again inside the L-BFGS stage (after the refine)
    second = fit(compile(spec), anisotropic_data, resume=path, progress=False,
                 callback=lambda model, row: row["step"] == 23)
    assert second.interrupted and second.steps == 23
    model = load_model(path)
    assert model.blocks["V"].kan.layers[0].grid == 7
    final = fit(model, anisotropic_data, resume=path, progress=False)
    assert final.steps == 26 and not final.interrupted
    assert_same_parameters(parameters(model), parameters(reference))
    assert [r["step"] for r in final.history] == [r["step"] for r in full.history]
    assert final.best_val == pytest.approx(full.best_val, rel=1e-10)
    kinds = [e["kind"] for e in final.events]
    assert kinds.count("interrupt") == 2 and kinds.count("resume") == 2

    # the final checkpoint rebuilds the trained model (refined grid, pruning masks)
    loaded = load_model(path)
    assert_same_parameters(parameters(loaded), parameters(reference))
    q = torch.tensor(anisotropic_data.states()[0][:50])
    assert torch.equal(loaded.acceleration(q, q).detach(), reference.acceleration(q, q).detach())


def test_resume_rejects_changed_options(anisotropic_data, tmp_path):
    path = tmp_path / "ckpt.pt"
    model = compile(ANISOTROPIC.learn("V", hidden=[], grid=4))
    fit(model, anisotropic_data, recipe="plain", steps=3, checkpoint=path, progress=False)
    with pytest.raises(ValueError, match="lr=0.5 differs"):
        fit(model, anisotropic_data, resume=path, lr=0.5, progress=False)
    other = compile(HARMONIC.learn("V", hidden=[], grid=4))
    with pytest.raises(DataError, match="another spec"):
        fit(other, simulate(HARMONIC, n_trajectories=2, t=(0, 1), seed=0), resume=path,
            progress=False)


# ----------------------------------------------------------------------------- faults


def test_nan_batch_is_rejected_and_training_recovers(harmonic_data, monkeypatch):
    real = acceleration_matching.acceleration_loss  # what AccelerationLoss calls
    calls = {"n": 0}

    def poisoned(model, q, v, a, scale):
        calls["n"] += 1
        # one batch with a NaN target: call 1 is the stage's first validation check, calls
        # 2-4 steps 1-3, call 5 the check after step 3, call 6 step 4's batch
        if calls["n"] == 6:
            a = a.clone()
            a[3] = float("nan")
        return real(model, q, v, a, scale)

    monkeypatch.setattr(acceleration_matching, "acceleration_loss", poisoned)
    model = compile(HARMONIC.learn("V", hidden=[], grid=5))
    result = fit(model, harmonic_data, recipe="plain", steps=300, progress=False)
    (fault,) = [e for e in result.events if e["kind"] == "fault"]
    assert "non-finite loss" in fault["reason"] and fault["lr_scale"] == 0.5
    assert fault["step"] not in [row["step"] for row in result.history]
    after = [row["lr"] for row in result.history.rows if row["step"] > fault["step"]]
    assert after[0] == pytest.approx(0.5 * result.history.rows[0]["lr"], rel=0.05)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert acceleration_error(model, harmonic_data) < 1e-3


def test_nan_parameter_is_restored(harmonic_data):
    def corrupt(model, row):
        if row["step"] == 6:
            with torch.no_grad():
                model.blocks["V"].kan.layers[0].coef[0, 2, 0] = float("nan")
        return False

    model = compile(HARMONIC.learn("V", hidden=[], grid=5))
    result = fit(model, harmonic_data, recipe=Recipe([Stage.fit(20, "adam")]),
                 progress=False, callback=corrupt)
    (fault,) = [e for e in result.events if e["kind"] == "fault"]
    assert fault["step"] == 7 and fault["in_row"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert result.steps == 20 and len(result.history) == 19


def test_repeated_faults_stop_with_training_error_and_keep_the_checkpoint(
        harmonic_data, tmp_path, monkeypatch):
    real = acceleration_matching.acceleration_loss  # what AccelerationLoss calls
    calls = {"n": 0}

    def broken_after_10(model, q, v, a, scale):
        calls["n"] += 1
        loss = real(model, q, v, a, scale)
        # call 1 is the stage's first validation check, calls 2-11 steps 1-10
        return loss * float("nan") if calls["n"] > 11 else loss

    monkeypatch.setattr(acceleration_matching, "acceleration_loss", broken_after_10)
    path = tmp_path / "ckpt.pt"
    model = compile(HARMONIC.learn("V", hidden=[], grid=5))
    with pytest.raises(TrainingError, match="5 non-finite steps in a row") as error:
        fit(model, harmonic_data, recipe=Recipe([Stage.fit(50, "adam")]), eval_every=100,
            checkpoint=path, checkpoint_every=5, progress=False)
    assert "left as it was" in str(error.value)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    ck = read_checkpoint(path)
    assert ck["position"]["global_step"] == 10
    loaded = load_model(path)
    assert_same_parameters(parameters(loaded), parameters(model), tol=0.0)


# ----------------------------------------------------------------------------- options


def test_coordinate_mismatch_is_a_data_error_before_training(harmonic_data):
    model = compile(ANISOTROPIC.learn("V", hidden=[], grid=4))
    before = parameters(model)
    with pytest.raises(DataError, match="do not match"):
        fit(model, harmonic_data, progress=False)
    swapped = Trajectories.from_arrays([r.t for r in harmonic_data][:2],
                                       [np.hstack([r.q, r.q]) for r in harmonic_data][:2],
                                       coords=["y", "x"])
    with pytest.raises(DataError, match="do not match"):
        fit(model, swapped, progress=False)
    assert_same_parameters(parameters(model), before, tol=0.0)


def test_early_stopping_restores_the_best_validation_state(harmonic_data):
    model = compile(HARMONIC.learn("V", hidden=[], grid=5))
    result = fit(model, harmonic_data, recipe=Recipe([Stage.fit(400, "adam", patience=3)]),
                 eval_every=5, lr=0.05, progress=False)
    kinds = [e["kind"] for e in result.events]
    assert "early_stop" in kinds and result.steps < 400
    vals = [v for v in result.history.column("val") if v is not None]
    assert result.best_val == min(vals)
    restore = next(e for e in result.events if e["kind"] == "restore_best")
    assert restore["val"] == min(vals)
    # the model holds the best state: its validation loss is the best one
    trainer_val = result.history.rows[[r["val"] for r in result.history.rows].index(min(vals))]
    assert trainer_val["step"] == restore["best_step"]


def test_resume_right_at_an_early_stop_decision(harmonic_data, tmp_path):
    recipe = Recipe([Stage.fit(400, "adam", patience=3), Stage.fit(5, "lbfgs")])
    options = {"recipe": recipe, "eval_every": 5, "lr": 0.05, "progress": False}
    reference = compile(HARMONIC.learn("V", hidden=[], grid=5))
    full = fit(reference, harmonic_data, **options)
    stop = next(e for e in full.events if e["kind"] == "early_stop")["step"]
    path = tmp_path / "ckpt.pt"
    model = compile(HARMONIC.learn("V", hidden=[], grid=5))
    fit(model, harmonic_data, checkpoint=path, callback=lambda m, row: row["step"] == stop,
        **options)
    resumed = fit(compile(HARMONIC.learn("V", hidden=[], grid=5)), harmonic_data, resume=path,
                  progress=False)
    assert resumed.steps == full.steps
    assert_same_parameters(parameters(load_model(path)), parameters(reference))


def test_model_without_trainable_parameters_is_refused(harmonic_data):
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(compile(HARMONIC), harmonic_data, progress=False)


def test_float32_and_progress_lines(harmonic_data, capsys):
    model = compile(HARMONIC.learn("V", hidden=[], grid=5))
    result = fit(model, harmonic_data, recipe="plain", steps=20, dtype=torch.float32,
                 log_every=5, device="auto")
    assert result.choices["dtype"] == "float32"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert np.isfinite(result.best_val)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[pikan fit]")]
    steps = [line for line in lines if " step " in line and "eta" in line]
    assert 3 <= len(steps) <= 6 and "step 5/20" in steps[0]
    # each stage announced by name, and a last line that says where training stopped
    assert "[pikan fit] stage 1/2: Adam fit" in lines and "[pikan fit] stage 2/2: L-BFGS fit" in lines
    assert lines[-1].startswith("[pikan fit] ") and "/20" in lines[-1]
    assert lines[-1].split()[2] in ("done", "stopped")
    fit(model, harmonic_data, recipe="plain", steps=5, dtype=torch.float32, progress=False)
    assert capsys.readouterr().err == ""


def test_model_without_learned_blocks_fits_its_constants(harmonic_data):
    model = compile(HARMONIC.learn("V", hidden=[], grid=3))
    model.fix("V", "0.3*x**2", trainable=True)  # the truth is 0.5 x^2
    result = fit(model, harmonic_data, progress=False)
    assert "single fit stage" in result.choices["reasons"]["recipe"]
    assert acceleration_error(model, harmonic_data) < 1e-6
    assert train.Recipe.plain(10).total_steps == 10
