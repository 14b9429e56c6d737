"""The loss-kind family: the shared normalization, the base interface and the registry
(pikan/train/losses/base.py, registry.py)."""

import numpy as np
import pytest
import torch

from pikan.data.integrate import simulate
from pikan.data.trajectories import Trajectories
from pikan.model.compile import compile
from pikan.spec.system import Potential, System
from pikan.train import losses

PLANAR = System("planar", coords=["x", "y"], params={"k": 2.0},
                modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + 2*y**2)/2")])


def test_coordinate_scale_std_rms_and_floor():
    x = torch.tensor([[1.0, 5.0, 0.0], [3.0, 5.0, 0.0], [5.0, 5.0, 0.0]])
    std = losses.coordinate_scale(x)
    # population std of (1, 3, 5) is sqrt(8/3); constant columns get 0.1 * the largest
    assert torch.allclose(std, torch.tensor([(8 / 3) ** 0.5, 0.1 * (8 / 3) ** 0.5,
                                             0.1 * (8 / 3) ** 0.5]))
    rms = losses.coordinate_scale(x, center=False)
    assert torch.allclose(rms, torch.tensor([(35 / 3) ** 0.5, 5.0, 0.5]))
    assert torch.equal(losses.coordinate_scale(torch.zeros(4, 2)), torch.ones(2))


def test_relative_error():
    assert losses.relative_error(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0])) == 0.0
    assert losses.relative_error(torch.tensor([0.0, 0.0]), torch.tensor([3.0, 4.0])) == 1.0
    assert np.isfinite(losses.relative_error(torch.ones(2), torch.zeros(2)))


def test_every_kind_is_registered_under_its_own_name():
    assert set(losses.LOSS_KINDS) == {"acceleration", "rollout", "weak", "rate", "weak_rate"}
    for name, cls in losses.LOSS_KINDS.items():
        assert issubclass(cls, losses.LossKind) and cls.name == name
    assert losses.loss_kind("rollout", method="verlet", length=5, every=2) == \
        losses.RolloutLoss("verlet", 5, 2)
    assert losses.loss_kind("weak", length=9, every=2) == losses.WeakFormLoss(9, 2)
    assert losses.loss_kind("weak_rate", length=9, every=2) == losses.WeakRateLoss(9, 2)
    with pytest.raises(ValueError, match=r"one of \('acceleration', 'rollout', 'weak', "
                                         r"'rate', 'weak_rate'\), got 'auto'"):
        losses.loss_kind("auto")
    with pytest.raises(ValueError, match="'rk4' or 'verlet', got 'euler'"):
        losses.loss_kind("rollout", method="euler")
    with pytest.raises(ValueError, match="length >= 2"):
        losses.loss_kind("rollout", length=1)
    with pytest.raises(TypeError):
        losses.loss_kind("acceleration", method="rk4")


@pytest.mark.parametrize("kind", [losses.AccelerationLoss(),
                                  losses.RolloutLoss("rk4", length=6, every=3),
                                  losses.WeakFormLoss(length=41, every=1)])
def test_a_kind_reads_its_samples_and_scales_and_is_zero_for_the_truth(kind):
    data = simulate(PLANAR, n_trajectories=3, t=(0, 2), dt=0.01, seed=1)
    assert not kind.needs_derivatives(data)
    positions = Trajectories.from_arrays([r.t for r in data], [r.q for r in data],
                                         coords=["x", "y"])
    assert kind.needs_derivatives(positions)
    train = {k: torch.as_tensor(x) for k, x in kind.samples(data).items()}
    q, v, _ = (torch.as_tensor(x) for x in data.states())
    scales = kind.scales(train, q, v, measured_velocities=True)
    truth, softer = compile(PLANAR), compile(PLANAR.replace(params={"k": 1.0}))
    batch = {k: x[:9] for k, x in train.items()}
    # the truth is off only by the integrator's error (RK4 over 3 data steps: ~3e-8 relative)
    assert float(kind(truth, batch, scales)) < 1e-12
    assert float(kind(softer, batch, scales)) > 1e-3
    sq, sv, st = kind.states(batch)
    assert sq.shape == sv.shape == (9, 2) and st.shape == (9,)
