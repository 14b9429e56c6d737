"""Acceleration matching (pikan/train/losses/acceleration_matching.py)."""

import pytest
import torch

from pikan.data.trajectories import Trajectories
from pikan.model.compile import compile
from pikan.train import losses


def test_acceleration_loss_is_zero_for_the_truth_and_normalized(clean, oscillator_spec):
    q, v, a = (torch.tensor(x) for x in (*clean.states()[:2], clean.accelerations()[0]))
    truth = compile(oscillator_spec)
    scale = losses.coordinate_scale(a, center=False)
    assert float(losses.acceleration_loss(truth, q, v, a, scale)) < 1e-24
    # a model with twice the stiffness is off by exactly a, so the normalized loss is 1
    stiff = compile(oscillator_spec.replace(params={"k": 4.0}))
    assert float(losses.acceleration_loss(stiff, q, v, a, scale)) == pytest.approx(1.0, rel=1e-12)


def test_the_kind_reads_samples_and_rms_scale_and_gives_the_function(clean, oscillator_spec):
    kind = losses.AccelerationLoss()
    assert not kind.needs_derivatives(clean)
    positions = Trajectories.from_arrays([r.t for r in clean], [r.q for r in clean],
                                         coords=["x"])
    assert kind.needs_derivatives(positions)
    train = {k: torch.as_tensor(x) for k, x in kind.samples(clean).items()}
    assert list(train) == ["q", "v", "a", "t"] and train["a"].shape == (len(clean.times()), 1)
    q, v, _ = (torch.as_tensor(x) for x in clean.states())
    scales = kind.scales(train, q, v, measured_velocities=True)
    assert list(scales) == ["a"]
    assert torch.equal(scales["a"], losses.coordinate_scale(train["a"], center=False))
    batch = {k: x[10:50] for k, x in train.items()}
    stiff = compile(oscillator_spec.replace(params={"k": 3.0}))
    assert torch.equal(kind(stiff, batch, scales),
                       losses.acceleration_loss(stiff, batch["q"], batch["v"], batch["a"],
                                                scales["a"]))
    sq, sv, st = kind.states(batch)
    assert sq is batch["q"] and sv is batch["v"] and st is batch["t"]
