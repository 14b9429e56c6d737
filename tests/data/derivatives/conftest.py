"""What the derivative-estimator tests share: a closed-form oscillator and an error measure."""

import numpy as np
import pytest


def _oscillator(t, phase=0.0, omega=1.0):
    arg = omega * t + phase
    return np.cos(arg)[:, None], -omega * np.sin(arg)[:, None], -(omega**2) * np.cos(arg)[:, None]


def _rel_rms(estimate, truth):
    return float(np.sqrt(np.mean((estimate - truth) ** 2) / np.mean(truth**2)))


@pytest.fixture
def oscillator():
    """Closed-form harmonic oscillator ``q = cos(omega t + phase)``: a function of
    ``(t, phase=0, omega=1)`` returning q, v, a of shape (T, 1)."""
    return _oscillator


@pytest.fixture
def rel_rms():
    """Relative RMS error of an estimate against the truth."""
    return _rel_rms
