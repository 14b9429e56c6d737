"""Tests for pikan/laws/verify.py: re-simulation of a system with its laws."""

import numpy as np
import pytest

import pikan
from pikan import Dissipation, Potential, System
from pikan.errors import DataError, SpecError
from pikan.laws.verify import CLOSE, FIT_FORCE, VerifyReport, judge, n_terms, verify


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


def test_one_conservative_trajectory_has_no_drift_to_speak_of(data):
    # its states share one energy: the drift is measured against the kinetic energy's
    # size, not against the energy's spread over the states (rounding noise, 1e-9)
    report = verify(_oscillator(), data[:1], n_initial=1, seed=0)
    assert report.energy_drift < 1e-5 and report.energy_error < 1e-5
    assert "(1 trajectory)" in str(report)


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


# ------------------------------------------------------------------ force error and verdicts


def _laws(expr, error=1e-6, name="V", kind="Potential", inputs=("x", "y")):
    from pikan.laws.law import Law, Laws
    from pikan.spec.expr import parse

    return Laws([Law(name, kind, tuple(inputs), parse(expr, inputs), error=error)])


def test_force_error_and_noise_are_measured_on_the_verified_trajectories(data):
    exact = verify(_oscillator(), data, n_initial=4, seed=0)
    assert exact.force_error < 1e-3  # Savitzky-Golay accelerations of clean positions
    assert exact.noise < 1e-4
    wrong = verify(_oscillator(k=1.1), data, n_initial=4, seed=0)
    assert 0.05 < wrong.force_error < 0.2  # a 10 % stiffer spring: 10 % larger forces
    noisy = data.with_noise(0.02, seed=3)
    measured = verify(_oscillator(), noisy.with_derivatives(overwrite=True), n_initial=4)
    assert 0.005 < measured.noise < 0.05  # estimated from the positions alone


def test_exact_laws_against_a_worse_model_are_recovered(data):
    report = verify(_oscillator(), data, model=pikan.compile(_oscillator(k=1.01)), n_initial=4)
    laws = judge(_laws("(x**2 + 2*y**2)/2"), report)
    assert laws["V"].verdict == "recovered", laws["V"].verdict_reason
    assert "rollout error" in laws["V"].verdict_reason
    assert str(laws["V"]).endswith("[recovered]")


def test_a_law_worse_than_its_model_is_not_recovered(data):
    # the law is 3 % off; the KAN it came from was exact: the law must not pass as recovered
    report = verify(_oscillator(k=1.03), data, model=pikan.compile(_oscillator()), n_initial=4)
    laws = judge(_laws("1.03*(x**2 + 2*y**2)/2"), report)
    assert laws["V"].verdict == "approximate"
    assert "worse than the KAN" in laws["V"].verdict_reason


def test_a_spec_that_does_not_match_its_data_is_never_recovered():
    # harmonic laws (and a harmonic "KAN") on Duffing data: both miss the data
    duffing = System("duffing", coords=["x"], modules=[
        Potential("V", inputs=["x"], law="x**2/2 + 0.8*x**4/4")])
    harmonic = System("duffing", coords=["x"], modules=[
        Potential("V", inputs=["x"], law="1.6*x**2/2")])
    data = pikan.simulate(duffing, n_trajectories=4, t=(0.0, 8.0), dt=0.05, seed=4)
    report = verify(harmonic, data, model=pikan.compile(harmonic), n_initial=4)
    assert not report.laws_fit and not report.model_fits
    verdict = judge(_laws("1.6*x**2/2", inputs=("x",)), report)["V"].verdict
    assert verdict in ("approximate", "not found")
    assert "KAN model itself does not fit" in str(report)


def test_an_exact_law_stands_without_a_kan_that_fits_and_a_near_one_does_not(data):
    # the "KAN" misses the data by far (as KANs do off the curves a 3-D rate was learned on)
    bad_kan = pikan.compile(_oscillator(k=1.6))
    exact = verify(_oscillator(), data, model=bad_kan, n_initial=4)
    assert not exact.model_fits and exact.laws_stand_alone
    law = judge(_laws("(x**2 + 2*y**2)/2"), exact)["V"]
    assert law.verdict == "recovered", law.verdict_reason
    assert "stand on their own" in str(exact)
    # 3 % off fits the data within rule 1, but not closely enough to stand alone
    near = verify(_oscillator(k=1.03), data, model=bad_kan, n_initial=4)
    assert near.laws_fit and not near.laws_stand_alone
    law = judge(_laws("1.03*(x**2 + 2*y**2)/2"), near)["V"]
    assert law.verdict == "approximate" and "KAN model it was read from" in law.verdict_reason


def test_a_long_series_or_a_law_that_can_trade_terms_is_approximate(data):
    from types import SimpleNamespace

    report = verify(_oscillator(), data, model=pikan.compile(_oscillator(k=1.01)), n_initial=4)
    series = "x**2/2 + y**2 + 1e-9*(x**3 + y**3 + x**4 + y**4 + x*y)"  # 7 terms in 2 inputs
    loose = judge(_laws(series), report)["V"]
    assert loose.verdict == "approximate" and "a series of 7 terms" in loose.verdict_reason
    # a poorer fit to the module alone is no reason: the refined law may beat the KAN
    assert judge(_laws("(x**2 + 2*y**2)/2", error=0.2), report)["V"].verdict == "recovered"
    exchange = SimpleNamespace(modules=("V", "W"), fixed=False)
    traded = judge(_laws("(x**2 + 2*y**2)/2"), report, [exchange])["V"]
    assert traded.verdict == "approximate" and "'W'" in traded.verdict_reason
    fixed = SimpleNamespace(modules=("V", "W"), fixed=True)
    assert judge(_laws("(x**2 + 2*y**2)/2"), report, [fixed])["V"].verdict == "recovered"


def test_a_law_model_that_blows_up_is_not_found():
    from pikan import Lagrangian

    truth = System("osc", coords=["x"], modules=[
        Lagrangian("L", inputs=["x", "v_x"], law="v_x**2/2 - x**2/2")])
    data = pikan.simulate(truth, n_trajectories=2, t=(0.0, 1.0), dt=0.05, seed=0)
    report = verify(truth.with_laws({"L": "v_x - x**2/2"}), data, model=pikan.compile(truth))
    laws = judge(_laws("v_x - x**2/2", name="L", kind="Lagrangian", inputs=("x", "v_x")), report)
    assert laws["L"].verdict == "not found"


def test_n_terms_counts_additive_terms_after_expansion():
    import sympy

    x, y = sympy.symbols("x y")
    assert n_terms(2 * (1 - sympy.exp(-1.5 * (x - 1))) ** 2) == 1
    assert n_terms(sympy.expand((x**2 + y**2) / 2 + x**2 * y - y**3 / 3 + 7)) == 4
    assert n_terms(-3.2 * x**5 + 22 * x**4 - 63 * x**3 + 93 * x**2 - 69 * x) == 5
    assert n_terms(sympy.Integer(3)) == 0


def test_a_law_with_a_caveat_is_never_recovered(data):
    import dataclasses

    report = verify(_oscillator(), data, model=pikan.compile(_oscillator(k=1.01)), n_initial=4)
    laws = _laws("(x**2 + 2*y**2)/2")
    doubtful = pikan.Laws([dataclasses.replace(laws["V"], caveats=("constants undetermined",))])
    judged = judge(doubtful, report)["V"]
    assert judged.verdict == "approximate" and "constants undetermined" in judged.verdict_reason
    back = pikan.Laws.from_json(doubtful.to_json())
    assert back["V"].caveats == ("constants undetermined",)


def test_noisy_positions_are_verified_on_windows_from_fitted_starts():
    clean = pikan.simulate(_oscillator(), n_trajectories=4, t=(0.0, 12.0), dt=0.05, seed=4)
    positions = pikan.Trajectories.from_arrays([r.t for r in clean], [r.q for r in clean],
                                               coords=["x", "y"])
    noisy = positions.with_noise(0.02, seed=5).with_derivatives()
    exact = verify(_oscillator(), noisy, n_initial=4, seed=0)
    assert exact.windows > 4 and exact.horizon == pytest.approx(2 * np.pi / 2 ** 0.5, rel=0.1)
    assert "windows of" in str(exact) and len(exact.per_trajectory) == 4
    # the truth misses by about the noise, whatever the noise of its starting states
    assert exact.rollout_error < 0.05 + 3 * exact.noise and exact.rollout_error < 0.04
    stiffer = verify(_oscillator(k=1.1), noisy, model=pikan.compile(_oscillator()),
                     n_initial=4, seed=0)
    assert stiffer.rollout_error > 1.5 * exact.rollout_error
    assert stiffer.force_error > 2 * stiffer.model_force_error and stiffer.worse_than_model
    assert not stiffer.as_good_as_model


def test_a_law_whose_constants_the_data_do_not_pin_is_not_recovered(data):
    report = verify(_oscillator(), data, model=pikan.compile(_oscillator(k=1.01)), n_initial=4)
    laws = _laws("(x**2 + 2*y**2)/2")
    pinned = laws.with_error_bars({"V": (laws["V"].expr, {"c0": (0.5, 0.495, 0.505)},
                                         ((1e-5,),), 0.9)})
    assert judge(pinned, report)["V"].verdict == "recovered"
    for bar in [(0.5, 0.3, 0.7), (0.5, 0.49, 0.51), (0.5, float("nan"), float("nan"))]:
        loose = laws.with_error_bars({"V": (laws["V"].expr, {"c0": bar}, ((1e-2,),), 0.9)})
        judged = judge(loose, report)["V"]
        assert judged.verdict == "approximate" and "do not pin its constants c0" in \
            judged.verdict_reason


def test_a_first_order_system_from_noisy_positions_verifies_every_coordinate():
    kinetics = System("kinetics", coords=["a", "b", "c"], order=1, modules=[
        pikan.Flow("f", inputs=["a", "b", "c"], outputs=["a", "b", "c"],
                   law=["-0.83*a*b + 0.27*c", "-0.83*a*b + 0.27*c", "0.83*a*b - 0.27*c"])])
    clean = pikan.simulate(kinetics, n_trajectories=6, t=(0, 6), dt=0.02, seed=3,
                           initial=lambda rng: rng.uniform(0.2, 2.0, 3))
    noisy = pikan.Trajectories.from_arrays([r.t for r in clean], [r.q for r in clean],
                                           coords=["a", "b", "c"]).with_noise(0.01, seed=5)
    report = verify(kinetics, noisy, seed=0)
    assert report.windows > 0  # fitted starts on windows
    assert report.rollout_error < 0.05  # every coordinate shot from its own start
    wrong = kinetics.with_laws({"f": ["-0.83*a*b + 0.27*c", "-0.83*a*b + 0.27*c",
                                      "0.5*a*b - 0.27*c"]})
    off = verify(wrong, noisy, seed=0)
    assert off.rollout_error > 1.5 * report.rollout_error
    assert off.force_error > 5 * report.force_error


def _binding(kf=0.8):
    from pikan import Flow

    rate = f"{kf}*a*b - 0.3*c"
    return System("binding", coords=["a", "b", "c"], order=1, modules=[
        Flow("reaction", inputs=["a", "b", "c"], outputs=["a", "b", "c"],
             law=[f"-({rate})", f"-({rate})", rate])])


@pytest.mark.parametrize("noise", [0.01, 0.02, 0.05])
def test_on_noisy_data_an_exact_law_stands_alone_beyond_the_noise_and_a_near_one_does_not(
        noise):
    # the data's noise alone keeps an exact law's errors above rule 3's exception at
    # noise 0; its floors are taken out, and a law 4 % off is still caught where the data
    # resolve 4 % (at 5 % noise they do not: there the law's error bars must say so)
    data = pikan.simulate(_binding(), n_trajectories=6, t=(0.0, 6.0), dt=0.025, seed=2,
                          initial=lambda rng: rng.uniform(0.2, 2.0, size=3))
    data = pikan.Trajectories.from_arrays([r.t for r in data], [r.q for r in data],
                                          coords=["a", "b", "c"])  # positions only
    noisy = data.with_noise(noise, seed=3)
    bad_kan = pikan.compile(_binding(kf=1.4))
    exact = verify(_binding(), noisy, model=bad_kan, n_initial=6)
    assert exact.force_floor > 0 and exact.rollout_floor > 0
    assert exact.force_error > CLOSE * (FIT_FORCE + 10 * exact.noise)  # the noise alone
    assert not exact.model_fits and exact.laws_stand_alone
    if noise <= 0.02:
        near = verify(_binding(kf=0.8 * 1.04), noisy, model=bad_kan, n_initial=6)
        assert near.laws_fit and not near.laws_stand_alone
    clean = verify(_binding(), data, model=bad_kan, n_initial=6)
    assert clean.force_floor == 0 and clean.rollout_floor < 1e-6
