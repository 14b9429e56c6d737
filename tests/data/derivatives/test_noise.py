"""Noise estimates from high-order differences (pikan/data/derivatives/noise.py)."""

import numpy as np

from pikan.data.derivatives import noise_level


def test_white_noise_reads_the_same_level_at_every_order(rng):
    sigma = np.array([1e-3, 5e-2])
    t = np.linspace(0, 10, 4000)
    smooth = np.stack([np.sin(t), 3 * np.cos(0.5 * t)], axis=1)
    noisy = smooth + sigma * rng.standard_normal(smooth.shape)
    for order in (4, 6, 8, 10):
        np.testing.assert_allclose(noise_level(noisy, order), sigma, rtol=0.1)
    # the default is sixth differences
    np.testing.assert_array_equal(noise_level(noisy), noise_level(noisy, 6))
    assert noise_level(noisy[:, 0]).shape == ()


def test_a_smooth_signal_reads_less_noise_at_higher_orders():
    # a fast clean oscillation sampled coarsely: each two orders shrink its differences by
    # about (omega dt)^2 = 0.09 (times the falling normalization)
    t = np.arange(0, 60, 0.1)
    q = np.sin(3.0 * t)
    levels = [float(noise_level(q, order)) for order in (6, 8, 10)]
    assert levels[0] > 0 and levels[1] < 0.2 * levels[0] and levels[2] < 0.2 * levels[1]
