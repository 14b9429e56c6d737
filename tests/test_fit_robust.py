"""Divergence recovery, the time limit and the stop line of the progress display (fit)."""

import math
import time

import pytest
import torch

from pikan.data.integrate import simulate
from pikan.model.compile import compile
from pikan.spec.system import Dissipation, Potential, System
from pikan.train import loop as train
from pikan.train.loop import Recipe, Stage, fit

HARMONIC = System("harmonic", coords=["x"], params={"k": 1.3},
                  modules=[Potential("V", inputs=["x"], law="k*x**2/2")])


@pytest.fixture(scope="module")
def data():
    return simulate(HARMONIC, n_trajectories=6, t=(0, 2), dt=0.02, seed=0)


def learned(seed: int = 0):
    torch.manual_seed(seed)
    return compile(HARMONIC.learn("V", hidden=[], grid=5)).double()


def all_finite(model) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.state_dict().values()
               if p.is_floating_point())


def blow_up_recipe():
    # a sane stage, then one whose Adam step (lr 1e3) throws the spline coefficients
    # a thousand units per step: the validation loss explodes at its first check
    return Recipe([Stage.fit(30, "adam"), Stage.fit(30, "adam", lr=1e3, patience=100)])


def test_an_exploding_stage_is_detected_and_recovered(data):
    model = learned()
    result = fit(model, data, recipe=blow_up_recipe(), eval_every=2, progress=False)
    divergences = [e for e in result.events if e["kind"] == "divergence"]
    assert divergences and divergences[0]["stage"] == 1
    assert "exploded" in divergences[0]["reason"] or "non-finite" in divergences[0]["reason"]
    assert result.diverged and all_finite(model)
    # the scale of every recovery is a tenth of the last
    scales = [e["lr_scale"] for e in divergences]
    assert scales == pytest.approx([0.1 ** (i + 1) for i in range(len(scales))])
    first_stage = [r["val"] for r in result.history.rows if r["stage"] == 0 and r["val"]]
    assert math.isfinite(result.best_val) and result.best_val <= min(first_stage) * (1 + 1e-9)
    assert result.stopped in ("steps done", "early stop", "diverged")
    if result.stopped == "diverged":
        assert result.warnings and "diverged" in result.warnings[0]


def test_recoveries_used_up_stop_with_the_best_state_and_a_warning(data, monkeypatch):
    monkeypatch.setattr(train, "MAX_RECOVERIES", 0)
    model = learned()
    result = fit(model, data, recipe=blow_up_recipe(), eval_every=2, progress=False)
    assert result.stopped == "diverged" and len(result.warnings) == 1
    event = [e for e in result.events if e["kind"] == "divergence"][-1]
    assert event["gave_up"] and event["stage"] == 1
    assert all(r["stage"] <= 1 for r in result.history.rows)
    first_stage = [r["val"] for r in result.history.rows if r["stage"] == 0 and r["val"]]
    assert result.best_val <= min(first_stage) * (1 + 1e-9) and all_finite(model)
    # the model holds that best state: its loss is the reported one
    again = fit(model, data, recipe=Recipe([Stage.fit(1, "adam", lr=1e-12)]), eval_every=1,
                progress=False)
    assert again.history.rows[0]["val"] == pytest.approx(result.best_val, rel=1e-6)


def test_a_time_limit_is_honoured_and_keeps_the_best_state(data, capsys):
    model = learned()
    limit = 3.0
    start = time.perf_counter()
    # 200000 steps would take minutes
    result = fit(model, data, recipe=Recipe([Stage.fit(200000, "adam", patience=10**6)]),
                 eval_every=5, time_limit=limit)
    elapsed = time.perf_counter() - start
    assert elapsed < limit * 1.2 + 1.0
    assert result.stopped == "time limit"
    assert [e["kind"] for e in result.events].count("time_limit") == 1
    vals = [r["val"] for r in result.history.rows if r["val"] is not None]
    assert math.isfinite(result.best_val) and result.best_val < vals[0] / 10
    assert result.best_val == pytest.approx(min(vals))
    err = capsys.readouterr().err
    assert "[pikan fit] stage 1/1: Adam fit" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("[pikan fit] stopped by the time limit (3 s) at step ")
    assert "/200000" in last and "best state restored" in last


def test_a_deadline_stops_before_the_next_stage(data):
    model = learned()
    recipe = Recipe([Stage.fit(20, "adam"), Stage.adapt(), Stage.fit(20, "adam")])
    result = fit(model, data, recipe=recipe, deadline=time.perf_counter() - 1, progress=False)
    assert result.stopped == "time limit" and not result.history.rows
    assert not [e for e in result.events if e["kind"] == "adapt" and not e.get("initial")]
    with pytest.raises(ValueError, match="time_limit"):
        fit(model, data, recipe=recipe, time_limit=0, progress=False)


def test_progress_names_the_stages_and_says_why_it_stopped_early(data, capsys):
    model = learned()
    recipe = Recipe([Stage.fit(30, "adam", sparsity=1e-3), Stage.prune(),
                     Stage.fit(4000, "adam", lr=1e-6, patience=2)])
    result = fit(model, data, recipe=recipe, eval_every=5, log_every=10**6)
    err = capsys.readouterr().err
    for line in ("stage 1/3: Adam fit with sparsity", "stage 2/3: prune edges",
                 "stage 3/3: Adam fit"):
        assert f"[pikan fit] {line}" in err
    assert result.stopped == "early stop"
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"[pikan fit] stopped early at step {result.history.rows[-1]['step']}"
                           "/4030: validation loss did not improve for 2 evaluations (best ")
    assert "stage 3/3 (Adam fit) stopped early at step" in err


def test_initial_grids_leave_a_passive_dissipation_alone():
    damped = System("damped", coords=["x"], modules=[
        Potential("V", ["x"], law="x**2/2"), Dissipation("D", ["v_x"], law="0.07*v_x**2")])
    data = simulate(damped, n_trajectories=3, t=(0, 2), dt=0.02, seed=0)
    model = compile(damped.learn("V").learn("D")).double()
    assert model.blocks["D"].passive
    before = {k: v.clone() for k, v in model.blocks["D"].kan.state_dict().items()}
    q, v, _ = (torch.tensor(x) for x in data.states())
    train.initial_grids(model, q, v)
    after = model.blocks["D"].kan.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # the potential's KAN was placed on the data
    first = model.blocks["V"].kan.layers[0]
    assert float(first.knots[0, first.order]) == pytest.approx(float(q.min()), rel=1e-4)
