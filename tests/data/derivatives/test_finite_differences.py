"""Finite differences (pikan/data/derivatives/finite_differences.py)."""

import numpy as np
import pytest

from pikan.data.derivatives import FiniteDifference, finite_difference
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError


def test_finite_differences_on_clean_oscillator(oscillator, rel_rms):
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


def test_finite_differences_converge_at_second_order_on_non_uniform_steps(rng, oscillator,
                                                                           rel_rms):
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


def test_the_estimator_is_the_function_and_is_second_order_only(rng):
    t = np.cumsum(rng.uniform(0.05, 0.3, size=30))
    y = np.sin(t)[:, None] * np.array([1.0, 2.0])
    estimator = FiniteDifference.from_options(window=7, order=None)  # no window to set
    for deriv in (1, 2):
        np.testing.assert_array_equal(estimator.derivative(t, y, deriv),
                                      finite_difference(t, y, deriv))
    assert set(estimator.derivatives(t, y)) == {1, 2}
    assert FiniteDifference.from_options(order=2) == FiniteDifference()
    with pytest.raises(DataError, match="finite differences are second order; got order=4"):
        FiniteDifference.from_options(order=4)
    with pytest.raises(DataError, match="deriv 1 or 2, got 3"):
        estimator.derivative(t, y, 3)
