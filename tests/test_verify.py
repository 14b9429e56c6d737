"""Tests for pikan/verify.py: re-simulation of a system with its laws."""

import numpy as np
import pytest

import pikan
from pikan import Dissipation, Potential, System
from pikan.errors import DataError, SpecError
from pikan.verify import VerifyReport, verify


def _oscillator(k=1.0, c=0.0):
    modules = [Potential("V", inputs=["x", "y"], law=f"{k}*(x**2 + 2*y**2)/2")]
    if c:
        modules.append(Dissipation("D", inputs=["v_x", "v_y"], law=f"{c}*(v_x**2 + v_y**2)/2"))
    return System("osc", coords=["x", "y"], modules=modules)


@pytest.fixture(scope="module")
def data():
    return pikan.simulate(_oscillator(), n_trajectories=6, t=(0.0, 4.0), dt=0.05, seed=1)


def test_true_laws_verify_to_integration_accuracy(data):
    report = verify(_oscillator(), data, n_initial=4, seed=0)
    assert isinstance(report, VerifyReport)
    assert report.rollout_error < 1e-5  # RK4 at dt = 0.05 against DOP853
    assert report.energy_drift < 1e-5 and report.data_energy_drift < 1e-8
    assert report.energy_error < 1e-5
    assert report.n_initial == 4 and len(report.per_trajectory) == 4
    assert len(set(report.trajectories)) == 4
    assert report.horizon == pytest.approx(4.0)
    assert report.model_rollout_error is None and report.worse_than_model is None
    assert "rollout error" in str(report)


def test_a_wrong_constant_shows_in_the_rollout_and_against_the_model(data):
    wrong = _oscillator(k=1.1)
    report = verify(wrong, data, model=pikan.compile(_oscillator()), n_initial=4, seed=0)
    assert 0.05 < report.rollout_error < 1.5
    assert report.model_rollout_error < 1e-5
    assert report.worse_than_model is True
    assert "WORSE than the KAN" in str(report)
    # the other way around: the laws beat a worse model
    better = verify(_oscillator(), data, model=pikan.compile(wrong), n_initial=4, seed=0)
    assert better.worse_than_model is False
    assert better.model_rollout_error > 0.05


def test_dissipation_drifts_in_the_data_as_in_the_simulation():
    damped = _oscillator(c=0.3)
    data = pikan.simulate(damped, n_trajectories=3, t=(0.0, 3.0), dt=0.05, seed=2)
    report = verify(damped, data, seed=0)
    assert report.data_energy_drift > 0.05
    assert report.energy_drift == pytest.approx(report.data_energy_drift, rel=1e-4)
    assert report.rollout_error < 1e-5


def test_horizon_is_cut_and_laws_are_required(data):
    report = verify(_oscillator(), data, horizon=1.0, n_initial=2)
    assert report.horizon == pytest.approx(1.0)
    with pytest.raises(SpecError, match="learned without a law: V"):
        verify(_oscillator().learn("V"), data)
    other = pikan.simulate(System("line", coords=["x"], modules=[
        Potential("V", inputs=["x"], law="x**2/2")]), n_trajectories=2, t=(0, 1), dt=0.1)
    with pytest.raises(DataError):
        verify(_oscillator(), other)


def test_report_is_reproducible_with_a_seed(data):
    a = verify(_oscillator(k=1.05), data, n_initial=3, seed=5)
    b = verify(_oscillator(k=1.05), data, n_initial=3, seed=5)
    assert a == b
    assert np.isfinite(a.rollout_error)


def test_a_law_with_a_singular_mass_matrix_verifies_as_infinitely_wrong():
    # L linear in v_x: d2L/dv2 = 0, no acceleration exists; verification reports, not raises
    from pikan import Lagrangian

    truth = System("osc", coords=["x"], modules=[
        Lagrangian("L", inputs=["x", "v_x"], law="v_x**2/2 - x**2/2")])
    data = pikan.simulate(truth, n_trajectories=2, t=(0.0, 1.0), dt=0.05, seed=0)
    report = verify(truth.with_laws({"L": "v_x - x**2/2"}), data, seed=0)
    assert report.rollout_error == np.inf and report.energy_drift == np.inf
    assert all(e == np.inf for e in report.per_trajectory)
    assert "rollout error inf" in str(report)
