"""Derivative estimates (pikan/derivatives.py): finite differences and Savitzky–Golay."""

import numpy as np
import pytest
import scipy.signal

from pikan.data.trajectories import Trajectories
from pikan.data.derivatives import finite_difference, noise_level, savgol_derivative, savgol_window


def oscillator(t, phase=0.0, omega=1.0):
    """Closed-form harmonic oscillator q = cos(omega t + phase): q, v, a of shape (T, 1)."""
    arg = omega * t + phase
    return np.cos(arg)[:, None], -omega * np.sin(arg)[:, None], -(omega**2) * np.cos(arg)[:, None]


def rel_rms(estimate, truth):
    return float(np.sqrt(np.mean((estimate - truth) ** 2) / np.mean(truth**2)))


def test_finite_differences_on_clean_oscillator():
    t = np.arange(0, 20 + 1e-9, 0.01)
    q, v, a = oscillator(t, phase=0.3)
    assert rel_rms(finite_difference(t, q, 1), v) < 1e-4
    assert rel_rms(finite_difference(t, q, 2), a) < 1e-4
    data = Trajectories.from_arrays(t, q, coords=["x"]).with_derivatives("finite_difference")
    assert rel_rms(data[0].a, a) < 1e-4 and rel_rms(data[0].v, v) < 1e-4


def test_finite_differences_are_exact_for_low_degree_polynomials_on_non_uniform_steps(rng):
    t = np.cumsum(rng.uniform(0.05, 0.3, size=30))
    y = np.stack([1 + 2 * t - 3 * t**2, 0.5 * t**3 - t], axis=1)
    np.testing.assert_allclose(
        finite_difference(t, y[:, :1], 1), (2 - 6 * t)[:, None], rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        finite_difference(t, y, 2),
        np.stack([np.full_like(t, -6.0), 3 * t], 1),
        rtol=1e-8,
        atol=1e-8,
    )


def test_finite_differences_converge_at_second_order_on_non_uniform_steps(rng):
    errors, steps = [], []
    jitter = rng.uniform(-0.3, 0.3, size=100_000)
    for n in (100, 200, 400, 800):
        h = 10.0 / n
        t = np.arange(n + 1) * h
        t[1:-1] += h * jitter[: n - 1]
        q, _v, a = oscillator(t)
        errors.append(rel_rms(finite_difference(t, q, 2), a))
        steps.append(h)
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert 1.7 < slope < 2.3


def test_savgol_accelerations_at_one_percent_noise_with_default_window(rng):
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


@pytest.mark.parametrize("deriv", [1, 2])
def test_savgol_matches_scipy_where_scipy_is_well_conditioned(rng, deriv):
    y = rng.normal(size=200)
    ours = savgol_derivative(y, 0.1, deriv, window=21, polyorder=3)
    theirs = scipy.signal.savgol_filter(y, 21, 3, deriv=deriv, delta=0.1, mode="interp")
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


def test_savgol_stays_accurate_for_high_order_and_wide_windows():
    t = np.arange(0, 20 + 1e-9, 0.01)
    q, _, a = oscillator(t)
    # scipy's savgol_coeffs loses all digits here (normal equations in sample units); what
    # remains is the true bias of a 6th-order fit over 3.6 radians of phase
    estimate = savgol_derivative(q, 0.01, 2, window=365, polyorder=6)
    assert rel_rms(estimate[182:-182], a[182:-182]) < 1e-3
    assert rel_rms(estimate, a) < 1e-2
