"""Checkpoints (pikan/train/checkpoint.py): what fit writes, atomic writes, safe loading,
the fingerprint of the data and spec, damaged files and the temp files of killed writers.

Resuming from a checkpoint is a property of fit and is tested in tests/train/test_loop.py.
"""

import copy
import functools
import os
import random
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch

from pikan.data.integrate import simulate
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError
from pikan.model.compile import compile
from pikan.spec.system import Potential, System
from pikan.train import checkpoint as checkpoint_module
from pikan.train.checkpoint import (
    STALE_TEMP_AGE,
    data_fingerprint,
    load_model,
    read_checkpoint,
)
from pikan.train.loop import Recipe, Stage, fit

try:
    import fcntl
except ImportError:
    fcntl = None

ANISOTROPIC = System("anisotropic", coords=["x", "y"], params={"k": 1.0},
                     modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + 2*y**2)/2")])


@pytest.fixture(scope="module")
def anisotropic_data():
    return simulate(ANISOTROPIC, n_trajectories=8, t=(0, 2), dt=0.01, seed=0)


def test_checkpoint_contents_and_safe_load(anisotropic_data, tmp_path):
    path = tmp_path / "run" / "ckpt.pt"
    model = compile(ANISOTROPIC.learn("V", hidden=[], grid=4))
    result = fit(model, anisotropic_data, recipe="plain", steps=10, checkpoint=path,
                 checkpoint_every=4, progress=False)
    assert result.checkpoint == str(path)
    ck = torch.load(path, weights_only=True)
    assert ck["format"] == "pikan-checkpoint" and ck["position"]["global_step"] == 10
    assert System.from_json(ck["spec"]) == model.spec
    assert {"model", "optimizer", "rng", "history", "config", "recipe", "sampler"} <= ck.keys()
    assert len(ck["history"]["rows"]) == 10
    assert sorted(os.listdir(path.parent)) == ["ckpt.pt"]  # no temp files left
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a readable pikan checkpoint"):
        load_model(garbage)
    with pytest.raises(DataError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.pt")


def test_interrupted_save_never_leaves_a_truncated_checkpoint(anisotropic_data, tmp_path,
                                                              monkeypatch):
    path = tmp_path / "ckpt.pt"
    model = compile(ANISOTROPIC.learn("V", hidden=[], grid=4))
    fit(model, anisotropic_data, recipe="plain", steps=4, checkpoint=path, progress=False)
    good = path.read_bytes()
    real_save = torch.save

    def killed_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(100)  # half-written file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed_save)
    with pytest.raises(KeyboardInterrupt):
        fit(compile(ANISOTROPIC.learn("V", hidden=[], grid=4)), anisotropic_data, recipe="plain",
            steps=4, checkpoint=path, progress=False)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]
    load_model(path)


# ----------------------------------------------------------------------------- fingerprints

SMALL_RECIPE = Recipe([Stage.fit(6, "adam"), Stage.refine(6), Stage.fit(4, "lbfgs")])


def small_fit(data, **kw):
    """A fresh model and its fit (a resumed fit takes its options from the checkpoint)."""
    model = compile(ANISOTROPIC.learn("V", hidden=[], grid=4), seed=0)
    options = {} if "resume" in kw else {"recipe": SMALL_RECIPE, "batch_size": 16,
                                         "eval_every": 2}
    return model, fit(model, data, progress=False, **options, **kw)


@pytest.fixture(scope="module")
def small_data():
    return simulate(ANISOTROPIC, n_trajectories=4, t=(0, 1), dt=0.05, seed=0)


def stop_at(step):
    return lambda model, row: row["step"] == step


def test_data_fingerprint_sees_every_value_name_and_order(small_data):
    base = data_fingerprint(small_data)
    t = [tr.t for tr in small_data]
    q = [tr.q.copy() for tr in small_data]
    v = [tr.v for tr in small_data]
    a = [tr.a for tr in small_data]
    same = Trajectories.from_arrays(t, q, v=v, a=a, coords=["x", "y"])
    assert data_fingerprint(same) == base
    assert base["trajectories"] == 4 and base["samples"] == small_data.n_samples
    q[2][5, 1] = np.nextafter(q[2][5, 1], np.inf)  # one value, one ulp
    changed = [Trajectories.from_arrays(t, q, v=v, a=a, coords=["x", "y"]),
               Trajectories.from_arrays(t, [tr.q for tr in small_data], v=v, a=a,
                                        coords=["x", "z"]),
               small_data.subset([1, 0, 2, 3]),
               Trajectories.from_arrays(t, [tr.q for tr in small_data], v=v,
                                        coords=["x", "y"])]
    digests = {data_fingerprint(d)["sha256"] for d in changed}
    assert len(digests) == len(changed) and base["sha256"] not in digests


def test_resume_on_other_data_is_refused_unless_asked(small_data, tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    small_fit(small_data, checkpoint=path, callback=stop_at(3))
    ck = read_checkpoint(path)
    assert ck["fingerprint"]["data"] == data_fingerprint(small_data)
    other = simulate(ANISOTROPIC, n_trajectories=4, t=(0, 1), dt=0.05, seed=1)
    fewer = small_data.subset([0, 1, 2])
    with pytest.raises(DataError, match=rf"checkpoint {path} was trained on other data .*given "
                                        "the same sizes, other values.*resume_other_data=True"):
        small_fit(other, resume=path)
    with pytest.raises(DataError, match=r"\(4 trajectories, 84 samples of \(x, y\) with "
                                        r"velocities and accelerations; given 3 trajectories"):
        small_fit(fewer, resume=path)
    assert read_checkpoint(path)["position"] == ck["position"]  # nothing was written
    with pytest.raises(DataError, match="another spec"):
        fit(compile(ANISOTROPIC.learn("V", hidden=[2], grid=4)), small_data, resume=path,
            progress=False)

    # asked for: the model goes on from the checkpoint on the new data, which the new
    # checkpoints record; the stage's best and the loss scales come from the new data
    calls = []
    real = checkpoint_module.data_fingerprint
    monkeypatch.setattr(checkpoint_module, "data_fingerprint",
                        lambda data: calls.append(1) or real(data))
    _, result = small_fit(fewer, resume=path, resume_other_data=True, checkpoint_every=1)
    assert calls == [1]  # once per fit, not once per write
    assert result.steps == 10 and not result.interrupted
    resumed = [e for e in result.events if e["kind"] == "resume"]
    assert resumed == [{"kind": "resume", "step": 3, "stage": 0, "path": str(path),
                        "other_data": True}]
    assert read_checkpoint(path)["fingerprint"]["data"] == real(fewer)
    small_fit(fewer, resume=path)  # now these are its data


def test_same_data_resume_is_exact_and_old_checkpoints_resume_with_a_warning(small_data,
                                                                            tmp_path):
    reference, _ = small_fit(small_data)
    path = tmp_path / "ckpt.pt"
    small_fit(small_data, checkpoint=path, callback=stop_at(4))
    ck = torch.load(path, weights_only=True)
    del ck["fingerprint"]  # as written before fingerprints
    old, older = tmp_path / "old.pt", tmp_path / "older.pt"
    torch.save(ck, old)
    torch.save(ck, older)
    model, result = small_fit(small_data, resume=path)
    assert not result.warnings
    assert_same_state(model, reference)
    with pytest.warns(UserWarning, match=rf"checkpoint {old} has no fingerprint of its training "
                                         "data .* cannot be checked"):
        model, result = small_fit(small_data, resume=old)
    assert any("no fingerprint" in w for w in result.warnings)
    assert_same_state(model, reference)
    assert "fingerprint" in read_checkpoint(old)  # rewritten with one

    # without a fingerprint, other data show only where they do not fit (here the sampler)
    fewer = small_data.subset([0, 1, 2])
    with pytest.warns(UserWarning, match="no fingerprint"), \
            pytest.raises(DataError, match=rf"checkpoint {older} .*permutation .*"
                                           "resume_other_data=True"):
        small_fit(fewer, resume=older)
    with pytest.warns(UserWarning, match="no fingerprint"):
        model, result = small_fit(fewer, resume=older, resume_other_data=True)
    assert result.steps == 10
    assert next(e for e in result.events if e["kind"] == "resume")["other_data"] is True


def assert_same_state(model, reference):
    a, b = model.state_dict(), reference.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# ----------------------------------------------------------------------------- damaged files


@pytest.fixture(scope="module")
def checkpoints(small_data, tmp_path_factory):
    """Two real checkpoints: stopped in the Adam stage (sampler permutation, Adam moments,
    the stage's best) and in the L-BFGS stage after a grid refinement."""
    folder = tmp_path_factory.mktemp("checkpoints")
    out = {}
    for name, step in (("adam", 3), ("lbfgs", 8)):
        small_fit(small_data, checkpoint=folder / f"{name}.pt", callback=stop_at(step))
        out[name] = torch.load(folder / f"{name}.pt", weights_only=True)
    assert out["adam"]["sampler"]["perm"] is not None and out["adam"]["best"] is not None
    assert "old_dirs" in out["lbfgs"]["optimizer"]["state"][0]
    return out


def tamper_paths(node, prefix=(), depth=0):
    """Every place in a checkpoint to tamper with: dict entries, first and last list items."""
    if prefix:
        yield prefix
    if depth == 5:
        return
    if isinstance(node, dict):
        for key in node:
            yield from tamper_paths(node[key], prefix + (key,), depth + 1)
    elif isinstance(node, list) and node:
        for index in sorted({0, len(node) - 1}):
            yield from tamper_paths(node[index], prefix + (index,), depth + 1)


WRONG = ["x", None, [], {}, True, -1, 2.5, torch.zeros(3, 3, 3)]


def tampered(ck: dict, where: tuple, rng: random.Random) -> tuple[dict, str]:
    ck = copy.deepcopy(ck)
    parent = ck
    for key in where[:-1]:
        parent = parent[key]
    key, value = where[-1], parent[where[-1]]
    ops = ["delete", "replace"] + (["shape", "dtype"] if isinstance(value, torch.Tensor) else [])
    op = rng.choice(ops)
    if op == "delete":
        del parent[key]
    elif op == "replace":
        parent[key] = rng.choice(WRONG)
    elif op == "shape":
        parent[key] = (value.unsqueeze(0) if value.dim() == 0 or value.shape[0] == 0 else
                       rng.choice([value[:-1], torch.cat([value, value[:1]]), value[None]]))
    else:
        parent[key] = value.to(rng.choice([torch.int64, torch.bool, torch.uint8]))
    return ck, f"{op} {where}"


def load_and_resume(path, data) -> list:
    """The two ways a checkpoint is read: load_model, and a fit resumed from it."""
    return [functools.partial(load_model, path), functools.partial(small_fit, data, resume=path)]


def outcome(call, path):
    """None when ``call`` works, else the DataError's message (which must name the file)."""
    try:
        call()
    except DataError as error:
        assert str(path) in str(error), str(error)
        return str(error)
    return None


def test_tampered_checkpoints_are_data_errors_naming_the_file(checkpoints, small_data, tmp_path):
    rng = random.Random(22)
    cases = []
    for name, ck in checkpoints.items():
        places = list(tamper_paths(ck))
        cases += [(name, *tampered(ck, rng.choice(places), rng)) for _ in range(90)]
    refused = 0
    for index, (name, ck, how) in enumerate(cases):
        path = tmp_path / f"case{index}.pt"
        torch.save(ck, path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an old checkpoint's warning, compile's
            try:
                errors = [outcome(call, path) for call in load_and_resume(path, small_data)]
            except Exception as error:  # report which tampering got through
                raise AssertionError(f"{name} checkpoint, {how}: {type(error).__name__}: "
                                     f"{error}") from error
        refused += any(errors)
    assert refused > len(cases) // 2  # most tamperings break the file; harmless ones resume

    good = tmp_path / "good.pt"
    torch.save(checkpoints["lbfgs"], good)
    data = good.read_bytes()
    for length in sorted(rng.sample(range(len(data)), 25)) + [0]:
        cut = tmp_path / f"cut{length}.pt"
        cut.write_bytes(data[:length])
        for call in load_and_resume(cut, small_data):
            with pytest.raises(DataError, match=str(cut)):
                call()


@pytest.mark.parametrize("edit, match", [
    (lambda ck: ck.pop("model"), "'model' is missing"),
    (lambda ck: ck.update(spec=3), "'spec' must be the spec's JSON text"),
    (lambda ck: ck.update(spec=ck["spec"].replace('"V"', '"W"', 1)), "spec was edited"),
    (lambda ck: ck.update(dtype="int64"), "'dtype' must be a torch floating dtype"),
    (lambda ck: ck["model"].update({"blocks.V.core.layers.0.coef":
                                    ck["model"]["blocks.V.core.layers.0.coef"][:, :-1]}),
     "weights do not fit its spec"),
    (lambda ck: ck["model"].update({"blocks.V.core.layers.0.knots":
                                    ck["model"]["blocks.V.core.layers.0.knots"][:, :-2]}),
     "weights do not fit its spec"),
    (lambda ck: ck["model"]["blocks.V.core.layers.0.w_base"].fill_(float("nan")),
     "non-finite values"),
    (lambda ck: ck["model"].update({"blocks.V.core.layers.0.sym_index":
                                    ck["model"]["blocks.V.core.layers.0.sym_index"].double()}),
     "has dtype torch.float64, expected torch.int64"),
])
def test_damaged_weights_are_named(checkpoints, tmp_path, edit, match):
    ck = copy.deepcopy(checkpoints["lbfgs"])
    edit(ck)
    path = tmp_path / "ckpt.pt"
    torch.save(ck, path)
    with pytest.raises(DataError, match=rf"checkpoint {path} is damaged .*{match}"):
        load_model(path)


@pytest.mark.parametrize("name, edit, match", [
    ("adam", lambda ck: ck["config"].update(lr="fast"), "stored option lr='fast' is not"),
    ("adam", lambda ck: ck["recipe"][0].update(steps="6"), "recipe stage 'steps'"),
    ("adam", lambda ck: ck["recipe"][0].update(kind="train"), "its recipe is invalid"),
    ("adam", lambda ck: ck["position"].update(stage_step=7), "stage_step 7 is past stage 0"),
    ("adam", lambda ck: ck["sampler"].update(perm=ck["sampler"]["perm"] + 1),
     "permutation is not one of the 63 training samples"),
    ("adam", lambda ck: ck["sampler"].update(generator=ck["sampler"]["generator"][:-8]),
     "an RNG state is invalid"),
    ("adam", lambda ck: ck["optimizer"]["state"][0].update(
        exp_avg=ck["optimizer"]["state"][0]["exp_avg"][:1]), "optimizer state of parameter 0: 'exp_avg' must be a finite tensor"),
    ("adam", lambda ck: ck["optimizer"]["param_groups"][0].update(betas=(0.9,)),
     "optimizer hyperparameter 'betas'"),
    ("adam", lambda ck: ck["optimizer"]["param_groups"][0].update(params=[0]),
     "optimizer state does not fit the model"),
    ("adam", lambda ck: ck["best"]["state"].popitem(), "best state does not fit the model"),
    ("adam", lambda ck: ck["scales"].update(a=ck["scales"]["a"][:1]), "loss scales"),
    ("adam", lambda ck: ck.update(history_len=[50, 1]), "history_len"),
    ("lbfgs", lambda ck: ck["optimizer"]["state"][0].update(d=ck["optimizer"]["state"][0]["d"][1:]),
     "L-BFGS state: 'd' must be a finite vector"),
    ("lbfgs", lambda ck: ck["optimizer"]["param_groups"][0].update(line_search_fn="none"),
     "optimizer hyperparameter 'line_search_fn'"),
])
def test_damaged_training_state_is_named_and_leaves_the_model(checkpoints, small_data, tmp_path,
                                                              name, edit, match):
    ck = copy.deepcopy(checkpoints[name])
    edit(ck)
    path = tmp_path / "ckpt.pt"
    torch.save(ck, path)
    model = compile(ANISOTROPIC.learn("V", hidden=[], grid=4), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DataError, match=rf"checkpoint {path} is damaged .*{match}"):
        fit(model, small_data, resume=path, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ----------------------------------------------------------------------------- temp files


@pytest.mark.skipif(fcntl is None, reason="advisory locks (POSIX)")
def test_temp_files_of_killed_writers_are_removed_and_live_ones_kept(anisotropic_data,
                                                                    tmp_path):
    path = tmp_path / "ckpt.pt"
    stale = tmp_path / ".ckpt.pt.0123456789ab.tmp"   # its writer was killed: no lock
    locked = tmp_path / ".ckpt.pt.bbbbbbbbbbbb.tmp"  # a live writer (slow, or another fit)
    other = tmp_path / ".other.pt.cccccccccccc.tmp"  # another checkpoint's
    for tmp in (stale, locked, other):
        tmp.write_bytes(b"")
    with open(locked, "rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        fit(compile(ANISOTROPIC.learn("V", hidden=[], grid=4)), anisotropic_data,
            recipe="plain", steps=2, checkpoint=path, progress=False)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            ["ckpt.pt", locked.name, other.name])
    load_model(path)


def test_without_locks_temp_files_are_stale_by_age(anisotropic_data, tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, "fcntl", None)  # as on Windows
    path = tmp_path / "ckpt.pt"
    stale = tmp_path / ".ckpt.pt.0123456789ab.tmp"
    young = tmp_path / ".ckpt.pt.aaaaaaaaaaaa.tmp"  # may be a live writer's
    for tmp in (stale, young):
        tmp.write_bytes(b"")
    old = time.time() - 2 * STALE_TEMP_AGE
    os.utime(stale, (old, old))
    fit(compile(ANISOTROPIC.learn("V", hidden=[], grid=4)), anisotropic_data, recipe="plain",
        steps=2, checkpoint=path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ckpt.pt", young.name])
    load_model(path)


KILLED_WRITER = """
import os, signal, sys, torch
from pikan.data.integrate import simulate
from pikan.model.compile import compile
from pikan.spec.system import Potential, System
from pikan.train.loop import fit
spec = System("anisotropic", coords=["x", "y"], params={"k": 1.0},
              modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + 2*y**2)/2")])
data = simulate(spec, n_trajectories=2, t=(0, 1), dt=0.05, seed=0)
real_save = torch.save
def save(obj, handle, *args, **kwargs):
    if os.path.exists(sys.argv[1]):  # the second write dies half-way, as under SIGKILL
        handle.write(b"PK")
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real_save(obj, handle, *args, **kwargs)
torch.save = save
fit(compile(spec.learn("V", hidden=[], grid=4)), data, recipe="plain", steps=4,
    checkpoint=sys.argv[1], checkpoint_every=2, progress=False)
"""


@pytest.mark.skipif(fcntl is None, reason="SIGKILL and advisory locks (POSIX)")
def test_a_run_killed_while_writing_leaves_a_temp_file_that_the_next_write_removes(
        anisotropic_data, tmp_path):
    path = tmp_path / "ckpt.pt"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], env=env,
                          capture_output=True, timeout=300, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(temps) == 1 and temps[0].stat().st_size == 2
    read_checkpoint(path)  # the previous checkpoint is intact
    fit(compile(ANISOTROPIC.learn("V", hidden=[], grid=4)), anisotropic_data, recipe="plain",
        steps=2, checkpoint=path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]
