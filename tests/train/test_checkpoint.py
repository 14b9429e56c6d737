"""Checkpoints (pikan/train/checkpoint.py): what fit writes, atomic writes, safe loading.

Resuming from a checkpoint is a property of fit and is tested in tests/test_train.py.
"""

import os

import pytest
import torch

from pikan.data.integrate import simulate
from pikan.errors import DataError
from pikan.model.compile import compile
from pikan.spec.system import Potential, System
from pikan.train.checkpoint import load_model, read_checkpoint
from pikan.train.loop import fit

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
