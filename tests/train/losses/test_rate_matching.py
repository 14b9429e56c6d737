"""The rate loss: a first-order system's dq/dt against the data's rates."""

import numpy as np
import pytest
import torch

import pikan
from pikan.spec.system import Flow
from pikan.train import losses

LV = pikan.System("lv", coords=["x", "y"], order=1, modules=[
    Flow("prey", inputs=["x", "y"], outputs=["x"], law=["1.1*x - 0.4*x*y"]),
    Flow("predator", inputs=["x", "y"], outputs=["y"], law=["0.1*x*y - 0.4*y"])])


@pytest.fixture(scope="module")
def data():
    return pikan.simulate(LV, n_trajectories=3, t=(0, 2), dt=0.05, seed=0,
                          initial=lambda rng: rng.uniform(2, 6, 2))


def test_the_kind_reads_rates_and_is_zero_for_the_truth(data):
    kind = losses.loss_kind("rate")
    assert not kind.needs_derivatives(data)
    positions = pikan.Trajectories.from_arrays([r.t for r in data], [r.q for r in data],
                                               coords=["x", "y"])
    assert kind.needs_derivatives(positions)
    batch = {k: torch.as_tensor(np.array(x)) for k, x in kind.samples(data).items()}
    assert set(batch) == {"q", "v", "t"} and batch["v"].shape == batch["q"].shape
    scales = kind.scales(batch, batch["q"], batch["v"], True)
    q, v, t = kind.states(batch)
    assert q is batch["q"] and v.shape == (q.shape[0], 0) and t is batch["t"]
    truth = pikan.compile(LV)
    assert float(kind(truth, batch, scales)) < 1e-20
    wrong = pikan.compile(LV.with_laws({"prey": ["x - 0.4*x*y"]}))
    assert float(kind(wrong, batch, scales)) > 1e-3


def test_the_loss_must_fit_the_order(data):
    with pytest.raises(pikan.SpecError, match="first-order system; use 'auto', 'rate' or 'weak_rate'"):
        pikan.fit(pikan.compile(LV.learn("prey")), data, loss="acceleration", steps=2,
                  progress=False)
    oscillator = pikan.System("osc", coords=["x"], modules=[
        pikan.Potential("V", inputs=["x"])])
    clean = pikan.simulate(pikan.System("osc", coords=["x"], modules=[
        pikan.Potential("V", inputs=["x"], law="x**2/2")]), n_trajectories=2, t=(0, 2),
        dt=0.05)
    with pytest.raises(pikan.SpecError, match="second-order system"):
        pikan.fit(pikan.compile(oscillator), clean, loss="rate", steps=2, progress=False)
