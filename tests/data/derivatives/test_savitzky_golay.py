"""Savitzky–Golay (pikan/data/derivatives/savitzky_golay.py): the filter, its automatic
window, and the estimator."""

import numpy as np
import pytest
import scipy.signal

from pikan.data.derivatives import (
    SavitzkyGolay,
    noise_level,
    savgol_derivative,
    savgol_window,
    uniform_step,
)
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError


def test_savgol_accelerations_at_one_percent_noise_with_default_window(rng, oscillator, rel_rms):
    t = np.arange(0, 20 + 1e-9, 0.01)
    q, v, a = oscillator(t, phase=0.7)
    noisy = q + 0.01 * q.std() * rng.standard_normal(q.shape)
    data = Trajectories.from_arrays(t, noisy, coords=["x"]).with_derivatives("savgol")
    assert rel_rms(data[0].a, a) < 0.05
    assert rel_rms(data[0].v, v) < 0.01
    # the automatic window adapts: wide for noisy data, smallest for clean data
    assert savgol_window(noisy[:, 0], 0.01, 2) > 50
    assert savgol_window(q[:, 0], 0.01, 2) == 5
    assert rel_rms(savgol_derivative(q, 0.01, 2), a) < 1e-4
    np.testing.assert_allclose(noise_level(noisy), 0.01 * q.std(), rtol=0.1)


def test_the_window_sees_fast_motion_on_the_slope_of_a_slow_drift(rel_rms):
    # a charged particle on a spring in the field 1.37 + 0.41 x: x drifts slowly and its
    # cyclotron motion shows as a shoulder on the drift's spectral peak, not a peak of its
    # own; read at the drift's frequency, that shoulder gave a 53-sample window and
    # velocities 3.4 % off at 1 % noise
    from scipy.integrate import solve_ivp

    def rhs(_, y):
        x, z, vx, vz = y
        field = 1.37 + 0.41 * x
        return [vx, vz, (-1.19 * x + field * vz) / 0.83, (-1.19 * z - field * vx) / 0.83]

    t = np.arange(201) * 0.05
    sol = solve_ivp(rhs, (0, 10), [0.3, -0.6, 0.5, 0.2], t_eval=t, method="DOP853",
                    rtol=1e-10, atol=1e-12)
    q, v = sol.y[:2].T, sol.y[2:].T
    noisy = q + 0.01 * q.std(0) * np.random.default_rng(1).standard_normal(q.shape)
    assert savgol_window(noisy[:, 0], 0.05, deriv=1) < 40
    data = Trajectories.from_arrays(t, noisy, coords=["x", "z"]).with_derivatives("savgol")
    assert rel_rms(data[0].v, v) < 0.025


@pytest.mark.parametrize("deriv", [1, 2])
def test_savgol_matches_scipy_where_scipy_is_well_conditioned(rng, deriv):
    y = rng.normal(size=200)
    ours = savgol_derivative(y, 0.1, deriv, window=21, polyorder=3)
    theirs = scipy.signal.savgol_filter(y, 21, 3, deriv=deriv, delta=0.1, mode="interp")
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


def test_savgol_stays_accurate_for_high_order_and_wide_windows(oscillator, rel_rms):
    t = np.arange(0, 20 + 1e-9, 0.01)
    q, _, a = oscillator(t)
    # scipy's savgol_coeffs loses all digits here (normal equations in sample units); what
    # remains is the true bias of a 6th-order fit over 3.6 radians of phase
    estimate = savgol_derivative(q, 0.01, 2, window=365, polyorder=6)
    assert rel_rms(estimate[182:-182], a[182:-182]) < 1e-3
    assert rel_rms(estimate, a) < 1e-2


def test_the_estimator_reads_the_step_from_the_times_and_needs_uniform_steps(rng):
    t = 0.5 + 0.02 * np.arange(300)
    y = np.cumsum(rng.normal(size=(300, 2)), axis=0)
    estimator = SavitzkyGolay.from_options(window=None, order=None)
    assert estimator == SavitzkyGolay(window=None, polyorder=4)
    for deriv in (1, 2):
        np.testing.assert_array_equal(estimator.derivative(t, y, deriv),
                                      savgol_derivative(y, uniform_step(t), deriv))
    fixed = SavitzkyGolay.from_options(window=21, order=3)
    np.testing.assert_array_equal(fixed.derivative(t, y, 2),
                                  savgol_derivative(y, uniform_step(t), 2, 21, 3))
    with pytest.raises(DataError, match="time steps are not uniform"):
        estimator.derivative(t**2, y, 1)
    with pytest.raises(DataError, match="window must be an odd integer"):
        SavitzkyGolay(window=20).derivative(t, y, 1)
