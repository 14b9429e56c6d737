"""Normalisation (pikan/train/normalise.py): a KAN whose data are far from unit size trains
on inputs and outputs rescaled to order 1, so a fit in other units is the fit in unit size;
the block, its checkpoint and its law stay in the data's units."""

import math
import warnings

import numpy as np
import pytest
import torch

from pikan.data.integrate import simulate
from pikan.data.trajectories import Trajectories
from pikan.model.compile import compile
from pikan.spec.system import Dissipation, Dynamics, Potential, System
from pikan.train.loop import fit, load_model
from pikan.train.normalise import NORMAL_RANGE, describe, scalings, typical_size

HARMONIC = System("harmonic", coords=["x"], params={"k": 1.0},
                  modules=[Potential("V", inputs=["x"], law="k*x**2/2")])


@pytest.fixture(scope="module")
def data():
    return simulate(HARMONIC, n_trajectories=6, t=(0, 4), dt=0.05, seed=0)


def learned(spec=HARMONIC, name="V"):
    return compile(spec.learn(name, hidden=[], grid=5), seed=0)


def scaled(data, s, tau=1.0):
    """``data`` in other units: positions times ``s``, times times ``tau``."""
    return Trajectories.from_arrays(
        [tau * r.t for r in data], [s * r.q for r in data], [s / tau * r.v for r in data],
        [s / tau ** 2 * r.a for r in data], coords=data.coords)


def quiet_fit(model, data, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fit(model, data, progress=False, seed=0, **options)


@pytest.mark.parametrize("s, tau", [(1e-6, 1.0), (1e-3, 1.0), (1e9, 1.0), (1e30, 1.0),
                                    (1e-3, 1e-3), (1e9, 1e9)])
def test_a_fit_in_other_units_is_the_fit_in_unit_size(data, s, tau):
    """Without normalisation the loss ended near 1 (a model of no force) at s = 1e9 and
    training diverged at s = 1e-3; normalised, the relative loss is the unit-size run's and
    the block is the unit-size block in the data's units, V(x) = (s/tau)**2 V_1(x/s)."""
    unit = learned()
    reference = quiet_fit(unit, data, steps=40)
    model = learned()
    result = quiet_fit(model, scaled(data, s, tau), steps=40)
    assert result.best_val == pytest.approx(reference.best_val, rel=1e-6)
    x = torch.linspace(-1.0, 1.0, 9)[:, None]
    energy = (s / tau) ** 2
    with torch.no_grad():
        got, want = model.block("V")(s * x) / energy, unit.block("V")(x)
    got, want = got - got[4], want - want[4]  # an energy is defined up to a constant
    assert torch.allclose(got, want, rtol=1e-6, atol=1e-9 * float(want.abs().max()))
    block = model.block("V")
    assert block.input_scale.tolist() == [10.0 ** round(math.log10(s))]


def test_data_of_ordinary_size_are_left_as_they_are(data):
    model = learned()
    result = quiet_fit(model, scaled(data, 40.0), steps=4)
    assert not any(e["kind"] == "normalise" for e in result.events)
    block = model.block("V")
    assert block.input_scale.tolist() == [1.0] and block.output_scale.tolist() == [1.0]
    assert scalings(model) == [] and describe(model) == []
    assert NORMAL_RANGE[0] < 40.0 * float(typical_size(torch.as_tensor(data.states()[0]))[0]) \
        < NORMAL_RANGE[1]


@pytest.mark.filterwarnings("ignore:modules 'V' and 'F' can exchange")
def test_each_kind_gets_the_size_of_the_forces_it_makes():
    """Positions and velocities near 1e6 (time as it is): a potential V ~ F x ~ 1e12, a
    direct force ~ 1e6, a passive dissipation's coefficients a_k with a_k**2 |v|**(k+1)
    ~ F |v|, each within a decade."""
    truth = System("damped", coords=["x"], modules=[
        Potential("V", inputs=["x"], law="x**2/2"),
        Dissipation("D", inputs=["v_x"], law="0.1*v_x**2/2"),
        Dynamics("F", inputs=["x"], outputs=["x"], law="-0.2*x")])
    s = 1e6
    made = scaled(simulate(truth, n_trajectories=4, t=(0, 4), dt=0.05, seed=0), s)
    spec = truth.learn("V", hidden=[], grid=5).learn("D", hidden=[], grid=5) \
        .learn("F", hidden=[], grid=5)
    model = compile(spec, seed=0)
    result = quiet_fit(model, made, steps=2, recipe="plain")
    event = next(e for e in result.events if e["kind"] == "normalise")["modules"]
    assert event["V"]["inputs"] == {"x": s} and event["F"]["inputs"] == {"x": s}
    assert event["D"]["inputs"] == {"v_x": 1.0}  # a passive D's KAN reads directions
    force = event["V"]["sizes"]["force"]
    assert 0.1 < event["V"]["outputs"]["V"] / (force * s) < 10
    assert 0.1 < event["F"]["outputs"]["x"] / force < 10
    speed = event["D"]["sizes"]["v_x"]
    for k, alpha in enumerate(model.block("D").passive_degrees):
        a = event["D"]["outputs"][f"a{k}"]
        assert 0.1 < a * a * speed ** (alpha - 1) / force < 100, (k, a)
    for name in ("V", "D", "F"):
        block = model.block(name)
        assert block.output_scale.tolist() == list(event[name]["outputs"].values())


def test_scales_are_saved_with_the_weights_and_a_resumed_fit_keeps_them(data, tmp_path):
    path = tmp_path / "ckpt.pt"
    model = learned()
    far = scaled(data, 1e9)
    first = quiet_fit(model, far, steps=30, checkpoint=path)
    notes = [w for w in first.warnings if w.startswith("data: values far from unit size")]
    assert len(notes) == 1 and "x/1e+09; V = 1e+18*KAN" in notes[0]
    loaded = load_model(path)
    x = torch.tensor([[3e8], [-7e8]])
    assert torch.equal(loaded.block("V")(x), model.block("V")(x))
    assert loaded.block("V").output_scale.tolist() == [1e18]
    again = quiet_fit(loaded, far, resume=path)
    assert notes[0] in again.warnings
    assert not any(e["kind"] == "normalise" for e in again.events[len(first.events):])


def test_a_model_trained_before_is_not_normalised_again(data):
    """A second fit of a trained model keeps its function: its KANs are not fresh."""
    model = learned()
    far = scaled(data, 1e-4)
    quiet_fit(model, far, steps=20)
    before = model.block("V").output_scale.clone()
    second = quiet_fit(model, scaled(data, 1e-7), steps=2)
    assert not any(e["kind"] == "normalise" for e in second.events)
    assert torch.equal(model.block("V").output_scale, before)


def test_typical_size_does_not_overflow():
    x = torch.tensor([[1e200, 0.0], [-1e200, 3.0]], dtype=torch.float64)
    assert typical_size(x).tolist() == pytest.approx([1e200, 3.0 / np.sqrt(2)])


def test_a_gyroscopic_field_far_from_unit_size_is_left_as_it_is_and_says_so():
    """Its extraction reads the KAN directly, so fit does not rescale it; it warns instead
    of training silently on sizes it was not made for."""
    truth = System("bottle", coords=["x", "y"], modules=[
        Dynamics("B", inputs=["x", "v_x", "v_y"], outputs=["x", "y"], gyroscopic=True,
                 law=["(1 + 0.2*x)*v_y", "-(1 + 0.2*x)*v_x"]),
        Potential("trap", inputs=["x", "y"], law="(x**2 + y**2)/2")])
    made = simulate(truth, n_trajectories=3, t=(0, 2), dt=0.05, seed=0)
    model = compile(truth.learn("B", hidden=[], grid=3), seed=0)
    with pytest.warns(UserWarning, match="data: module 'B' is a learned gyroscopic field, "
                                         "which fit does not normalise, and its data are far "
                                         r"from unit size \(RMS x [0-9.]+e\+08"):
        result = fit(model, scaled(made, 1e9), steps=2, recipe="plain", progress=False)
    assert any(w.startswith("data: module 'B' is a learned gyroscopic") for w in result.warnings)
    assert scalings(model) == []
