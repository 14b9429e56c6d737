"""fit's options as validated groups (pikan/train/options.py): the groups and the flat
keywords train alike, each group checks its fields, and the resolved options are the flat
dict a checkpoint stores."""

import re
import warnings

import numpy as np
import pytest
import torch

from pikan.data.integrate import simulate
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError
from pikan.model.compile import compile
from pikan.spec.system import Potential, System
from pikan.train import losses
from pikan.train.loop import fit, load_model
from pikan.train.options import (
    CONFIG_KEYS,
    FLAT_KEYWORDS,
    LOSSES,
    CheckpointOptions,
    LossOptions,
    OptimizerOptions,
    ProgressOptions,
    ScheduleOptions,
    check_stored_config,
    gather,
    loss_kind_of,
    resolve,
)
from pikan.train.recipe import Recipe, Stage

HARMONIC = System("harmonic", coords=["x"], params={"k": 1.0},
                  modules=[Potential("V", inputs=["x"], law="k*x**2/2")])


@pytest.fixture(scope="module")
def data():
    return simulate(HARMONIC, n_trajectories=6, t=(0, 2), dt=0.02, seed=0)


def learned():
    return compile(HARMONIC.learn("V", hidden=[], grid=5), seed=0)


def state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert torch.equal(value, b[key]), key


def test_groups_and_flat_keywords_train_the_same_model(data):
    flat = learned()
    by_keyword = fit(flat, data, loss="acceleration", derivatives="finite_difference",
                     sparsity=0.0, optimizer="adam+lbfgs", lr=0.03, batch_size=100, clip=1.0,
                     steps=24, recipe="plain", eval_every=4, val_fraction=0.3, max_faults=3,
                     log_every=6, seed=2, progress=False)
    grouped = learned()
    by_group = fit(grouped, data,
                   loss=LossOptions("acceleration", derivatives="finite_difference",
                                    sparsity=0.0),
                   optimizer=OptimizerOptions("adam+lbfgs", lr=0.03, batch_size=100, clip=1.0),
                   schedule=ScheduleOptions(steps=24, recipe="plain", eval_every=4,
                                            val_fraction=0.3, max_faults=3),
                   progress=ProgressOptions(False, every=6), seed=2)
    assert_same_state(state(flat), state(grouped))
    assert by_group.history.rows == by_keyword.history.rows
    assert by_group.choices == by_keyword.choices
    choices = by_group.choices
    assert choices["lr"] == 0.03 and choices["batch_size"] == 100 and choices["clip"] == 1.0
    assert choices["eval_every"] == 4 and choices["log_every"] == 6 and choices["steps"] == 24


def test_resolved_options_are_the_flat_dict_a_checkpoint_stores(data):
    config, recipe = resolve(learned(), data, gather(), torch.device("cpu"))
    assert tuple(config) == CONFIG_KEYS
    assert config["loss"] == "acceleration" and config["lr"] == 1e-2 and config["clip"] == 10.0
    assert config["recipe"] == str(recipe) and config["dtype"] == "float64"
    assert set(config["reasons"]) == {"loss", "steps", "recipe"}
    # a list of stages becomes a Recipe; its steps are the recipe's
    config, recipe = resolve(learned(), data, gather(recipe=[Stage.fit(7, "adam")], clip=False),
                             torch.device("cpu"))
    assert recipe == Recipe([Stage.fit(7, "adam")]) and config["steps"] == 7
    assert config["clip"] is None and config["reasons"]["recipe"] == "given"


def test_the_loss_kinds_are_the_registry_and_the_config_names_one(data):
    assert LOSSES == ("auto", "acceleration", "rollout", "weak", "rate", "weak_rate") == (
        "auto", *losses.LOSS_KINDS)
    config, _ = resolve(learned(), data, gather(), torch.device("cpu"))
    assert loss_kind_of(config) == losses.AccelerationLoss()
    config, _ = resolve(learned(), data, gather(loss="rollout", window=5), torch.device("cpu"))
    _, every, _ = losses.rollout_window(data, 5)
    # the harmonic potential's accelerations cannot depend on v: Verlet
    assert loss_kind_of(config) == losses.RolloutLoss("verlet", length=5, every=every)
    assert (config["rollout_method"], config["window"], config["every"]) == ("verlet", 5, every)
    config, _ = resolve(learned(), data, gather(loss="weak", window=11), torch.device("cpu"))
    assert loss_kind_of(config) == losses.WeakFormLoss(length=11, every=config["every"])
    assert config["rollout_method"] is None and "time scale" in config["reasons"]["window"]
    with pytest.raises(ValueError, match=r"loss must be one of \('auto', 'acceleration', "
                                         r"'rollout', 'weak', 'rate', 'weak_rate'\), "
                                         r"got 'energy'"):
        LossOptions("energy")


def test_a_group_and_its_flat_keyword_together_are_refused(data):
    model = learned()
    before = state(model)
    with pytest.raises(ValueError, match=r"loss=LossOptions\(...\) and window=5; give window "
                                         r"inside the LossOptions"):
        fit(model, data, loss=LossOptions("rollout"), window=5, progress=False)
    with pytest.raises(ValueError, match="checkpoint_every=10; give checkpoint_every inside "
                                         r"the CheckpointOptions \(CheckpointOptions\(..., "
                                         "every=10"):
        fit(model, data, checkpoint=CheckpointOptions("x.pt"), checkpoint_every=10)
    with pytest.raises(ValueError, match="log_every"):
        fit(model, data, progress=ProgressOptions(False), log_every=5)
    assert_same_state(state(model), before)
    # a flat keyword of another group is fine
    result = fit(model, data, loss=LossOptions("acceleration"), lr=0.02, steps=3,
                 recipe="plain", progress=False)
    assert result.choices["lr"] == 0.02


def test_unknown_keywords_and_misplaced_groups_are_type_errors(data):
    model = learned()
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rate'"):
        fit(model, data, learning_rate=0.1)
    with pytest.raises(TypeError, match=r"fit\(loss=...\) takes a LossOptions, got a "
                                        "OptimizerOptions"):
        fit(model, data, loss=OptimizerOptions(lr=0.1))
    with pytest.raises(TypeError, match=r"fit\(schedule=...\) takes a ScheduleOptions"):
        fit(model, data, schedule=100)


@pytest.mark.parametrize("make, error, match", [
    (lambda: LossOptions("bogus"), ValueError, r"loss must be one of \('auto', 'acceleration'"),
    (lambda: LossOptions(window=1), ValueError, r"window \(LossOptions.window\) .* >= 2, got 1"),
    (lambda: LossOptions(rollout_method="euler"), ValueError, "rollout_method must be one of"),
    (lambda: LossOptions(sparsity=-1e-3), ValueError, r"sparsity \(LossOptions.sparsity\) .* >= 0"),
    (lambda: LossOptions(derivatives=3), TypeError, "derivatives must be the name"),
    (lambda: OptimizerOptions("sgd"), ValueError, r"optimizer must be one of \('adam'"),
    (lambda: OptimizerOptions(lr=0), ValueError, r"lr \(OptimizerOptions.lr\) .* > 0, got 0"),
    (lambda: OptimizerOptions(lr=float("nan")), ValueError, "lr"),
    (lambda: OptimizerOptions(batch_size=0), ValueError, "batch_size"),
    (lambda: OptimizerOptions(batch_size=10.5), ValueError, "whole number"),
    (lambda: OptimizerOptions(weight_decay=-1), ValueError, "weight_decay"),
    (lambda: OptimizerOptions(clip=True), ValueError, "clip must be a positive gradient norm"),
    (lambda: OptimizerOptions(clip=0), ValueError, "clip"),
    (lambda: ScheduleOptions(steps=0), ValueError, r"steps \(ScheduleOptions.steps\)"),
    (lambda: ScheduleOptions(steps=True), ValueError, "steps"),
    (lambda: ScheduleOptions(recipe="fancy"), ValueError, "recipe must be a Recipe, a list of"),
    (lambda: ScheduleOptions(recipe=[Stage.fit(3), "prune"]), TypeError, "holds Stage records"),
    (lambda: ScheduleOptions(val_fraction=1.0), ValueError, r"val_fraction .* >= 0 and < 1"),
    (lambda: ScheduleOptions(eval_every=0), ValueError, "eval_every"),
    (lambda: ScheduleOptions(max_faults=0), ValueError, "max_faults"),
    (lambda: ScheduleOptions(time_limit=0), ValueError, "time_limit must be a positive number"),
    (lambda: ScheduleOptions(deadline="soon"), ValueError, "deadline"),
    (lambda: CheckpointOptions(every=0), ValueError, r"checkpoint_every \(CheckpointOptions"),
    (lambda: CheckpointOptions(path=3), TypeError, r"checkpoint \(CheckpointOptions.path\) must"),
    (lambda: CheckpointOptions(resume=["a"]), TypeError, "resume"),
    (lambda: CheckpointOptions(resume="a.pt", other_data="yes"), TypeError,
     r"resume_other_data \(CheckpointOptions.other_data\) must be True or False, got 'yes'"),
    (lambda: CheckpointOptions(other_data=True), ValueError,
     r"resume_other_data=True \(CheckpointOptions.other_data\) needs resume="),
    (lambda: gather(resume_other_data=1), TypeError, "resume_other_data"),
    (lambda: ProgressOptions(every=0), ValueError, r"log_every \(ProgressOptions.every\)"),
    (lambda: ProgressOptions("yes"), TypeError, "progress must be True or False"),
    (lambda: gather(recipe=Recipe.plain(10), steps=10), ValueError, "in the recipe's stages"),
    (lambda: gather(recipe=Recipe.plain(10), optimizer="adam"), ValueError, "recipe's stages"),
])
def test_each_group_checks_its_fields(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_flat_keywords_are_checked_by_their_group(data):
    model = learned()
    for key, value in [("lr", -1.0), ("batch_size", 0), ("val_fraction", 2.0), ("window", 0),
                       ("checkpoint_every", 0), ("log_every", -3), ("time_limit", 0)]:
        with pytest.raises(ValueError, match=key):
            fit(model, data, progress=False, **{key: value})
    assert set(FLAT_KEYWORDS) >= {"lr", "batch_size", "val_fraction", "window",
                                  "checkpoint_every", "log_every", "time_limit", "deadline"}


def test_stored_options_are_checked_like_the_groups(data):
    config, _ = resolve(learned(), data, gather(), torch.device("cpu"))
    check_stored_config(config)  # what resolve makes passes
    check_stored_config({**config, "checkpoint_every": 5, "log_every": 2})
    bad = [("lr", 0.0, "lr=0.0 is not a finite number > 0"),
           ("lr", "0.1", "lr='0.1' is not"),
           ("batch_size", 2.5, "batch_size=2.5 is not a whole number >= 1"),
           ("val_fraction", 1.0, r"val_fraction=1.0 is not a number in \[0, 1\)"),
           ("loss", "auto", "loss='auto' is not one of"),
           ("derivatives", "spline", "derivatives='spline'"),
           ("dtype", "int64", "dtype='int64' is not a torch floating dtype"),
           ("seed", True, "seed=True"),
           ("clip", -1.0, "clip=-1.0 is not None or a finite number > 0"),
           ("sparsity_weights", [1.0], "sparsity_weights"),
           ("optimizer", "sgd", "optimizer='sgd'"),
           ("checkpoint_every", 0, "checkpoint_every=0")]
    for key, value, match in bad:
        with pytest.raises(ValueError, match=match):
            check_stored_config({**config, key: value})
    with pytest.raises(ValueError, match="stored option 'eval_every' is missing"):
        check_stored_config({k: v for k, v in config.items() if k != "eval_every"})
    rollout, _ = resolve(learned(), data, gather(loss="rollout"), torch.device("cpu"))
    check_stored_config(rollout)
    with pytest.raises(ValueError, match="stored option window is None; the rollout loss"):
        check_stored_config({**rollout, "window": None})
    with pytest.raises(TypeError, match="must be a dict"):
        check_stored_config([("lr", 0.1)])


def test_resume_through_checkpoint_options(data, tmp_path):
    options = {"recipe": Recipe([Stage.fit(6, "adam"), Stage.fit(2, "lbfgs")]),
               "eval_every": 2, "progress": False}
    reference = learned()
    fit(reference, data, **options)
    path = tmp_path / "ckpt.pt"
    fit(learned(), data, checkpoint=CheckpointOptions(path, every=2),
        callback=lambda model, row: row["step"] == 4, **options)
    with pytest.raises(ValueError, match="lr=0.5 differs"):
        fit(learned(), data, checkpoint=CheckpointOptions(resume=path),
            optimizer=OptimizerOptions(lr=0.5), progress=False)
    resumed = fit(learned(), data, checkpoint=CheckpointOptions(resume=path), progress=False)
    assert resumed.steps == 8 and resumed.checkpoint == str(path)
    assert_same_state(state(load_model(path)), state(reference))


def test_fit_refuses_a_stage_it_would_not_honour():
    # Stage.params="coefficients" is honoured by the static KAN fits only: fit says so
    with pytest.raises(ValueError, match="params='coefficients'"):
        ScheduleOptions(recipe=[Stage.fit(10, "lbfgs", params="coefficients")])
    assert ScheduleOptions(recipe=[Stage.fit(10, "lbfgs")]).recipe.stages[0].params == "all"


@pytest.mark.parametrize("seed", [-1, 2.5, "3", True, 2**64])
def test_fit_refuses_a_seed_outside_its_range_before_training(data, seed):
    model = learned()
    before = state(model)
    with pytest.raises(ValueError, match=r"seed must be a whole number in \[0, 2\*\*64 - 1\)"):
        fit(model, data, seed=seed, steps=2, progress=False)
    assert_same_state(before, state(model))


@pytest.mark.parametrize("dtype", [torch.int32, torch.complex128, "bogus", 64])
def test_fit_refuses_a_dtype_that_is_not_a_floating_dtype(data, dtype):
    with pytest.raises(ValueError, match="dtype must be a torch floating dtype"):
        fit(learned(), data, dtype=dtype, steps=2, progress=False)


def test_fit_takes_a_dtype_by_object_or_by_name(data):
    by_object = fit(learned(), data, dtype=torch.float32, steps=2, progress=False)
    by_name = fit(learned(), data, dtype="float32", steps=2, progress=False)
    assert by_object.choices["dtype"] == by_name.choices["dtype"] == "float32"


@pytest.mark.parametrize("device, error, match", [
    ("gpu", ValueError, "device='gpu' is not a device name"),
    (["cpu"], TypeError, "device must be 'auto', a device name"),
    (True, TypeError, "device must be 'auto'"),
    ("cuda:99", ValueError, r"device='cuda:99': this machine has \d+ CUDA device"),
])
def test_fit_refuses_a_device_it_cannot_use(data, device, error, match):
    with pytest.raises(error, match=match):
        fit(learned(), data, device=device, steps=2, progress=False)


# ----------------------------------------------------------------------------- degenerate data
# fit recognises degenerate data before training (pikan.train.batches.check_data): an error
# when nothing can be learned, a warning in result.warnings (and a UserWarning) otherwise.


def _arrays(data, scale=1.0, samples=None, v=True, a=True):
    part = slice(None, samples)
    return Trajectories.from_arrays(
        [r.t[part] for r in data], [scale * r.q[part] for r in data],
        [scale * r.v[part] for r in data] if v else None,
        [scale * r.a[part] for r in data] if a else None, coords=["x"])


@pytest.mark.parametrize("given", ["q, v, a", "q"])
def test_fit_refuses_data_without_motion(data, given):
    t = np.linspace(0.0, 2.0, 21)
    q = [np.full((21, 1), c) for c in (-0.5, 0.2, 0.7)]
    zero = [np.zeros((21, 1))] * 3
    still = (Trajectories.from_arrays([t] * 3, q, zero, zero, coords=["x"]) if given == "q, v, a"
             else Trajectories.from_arrays([t] * 3, q, coords=["x"]))
    model = learned()
    before = state(model)
    with pytest.raises(DataError, match="the data show no motion: in all 3 trajectories"):
        fit(model, still, steps=2, progress=False)
    assert_same_state(before, state(model))


@pytest.mark.parametrize("zeroed, match", [
    ("v", "velocities are all zero while the positions change"),
    ("a", "accelerations are all zero while the velocities change"),
])
def test_fit_refuses_derivatives_that_are_all_zero_while_the_motion_is_not(data, zeroed, match):
    arrays = {"v": [r.v for r in data], "a": [r.a for r in data]}
    arrays[zeroed] = [np.zeros_like(x) for x in arrays[zeroed]]
    wrong = Trajectories.from_arrays([r.t for r in data], [r.q for r in data], arrays["v"],
                                     arrays["a"], coords=["x"])
    with pytest.raises(DataError, match=match):
        fit(learned(), wrong, steps=2, progress=False)


@pytest.mark.parametrize("scale, reads", [(1e-3, "x/0.001; V = 1e-06"), (1e9, "x/1e+09; V = 1e+18")])
def test_positions_far_from_unit_size_are_normalised_and_the_result_says_so(data, scale,
                                                                            reads):
    with pytest.warns(UserWarning, match=re.escape("data: values far from unit size, so fit "
                                                   "trained in rescaled units: module 'V': "
                                                   f"its KAN reads {reads}*KAN.")):
        result = fit(learned(), _arrays(data, scale), steps=4, progress=False)
    notes = [w for w in result.warnings if w.startswith("data: ")]
    assert len(notes) == 1 and "The model and its law are in the data's units" in notes[0]


@pytest.mark.parametrize("given, scale, match", [
    ("q", 1e200, "the positions of x reach a magnitude of 1.*e\\+200: their squares"),
    ("v", 1e-160, "the velocities of x reach a magnitude of .*e-160: their squares"),
    ("a", 1e170, "the accelerations of x reach a magnitude of .*e\\+170"),
])
def test_sizes_whose_squares_leave_float64_are_refused(data, given, scale, match):
    arrays = {k: [getattr(r, k) for r in data] for k in "qva"}
    arrays[given] = [scale * x for x in arrays[given]]
    huge = Trajectories.from_arrays([r.t for r in data], arrays["q"], arrays["v"], arrays["a"],
                                    coords=["x"])
    model = learned()
    before = state(model)
    with pytest.raises(DataError, match=match):
        fit(model, huge, steps=2, progress=False)
    assert_same_state(before, state(model))


def test_data_of_unit_size_give_no_warning_and_the_same_numbers(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = fit(learned(), data, steps=6, recipe="plain", progress=False)
    again = fit(learned(), _arrays(data), steps=6, recipe="plain", progress=False)
    assert result.warnings == again.warnings == []
    assert result.best_val == again.best_val


def test_a_single_sample_per_trajectory_is_a_warning(data):
    with pytest.warns(UserWarning, match=r"data: every trajectory holds a single sample \(6 "):
        result = fit(learned(), _arrays(data, samples=1), steps=4, progress=False)
    assert any("single sample" in w for w in result.warnings)


def test_a_coordinate_that_never_moves_is_a_warning():
    plane = System("plane", coords=["x", "y"], params={"k": 1.0},
                   modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + y**2)/2")])
    moving = simulate(plane, n_trajectories=4, t=(0, 2), dt=0.05, seed=0,
                      initial=lambda rng: (np.array([rng.uniform(-1, 1), 0.0]), np.zeros(2)))
    model = compile(plane.learn("V", hidden=[], grid=3), seed=0)
    with pytest.warns(UserWarning, match="data: coordinate y does not move in any trajectory"):
        fit(model, moving, steps=2, progress=False)
