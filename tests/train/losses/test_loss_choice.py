"""The rule behind fit(loss="auto") (pikan/train/losses/choice.py)."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from pikan.data.trajectories import Trajectories
from pikan.train import losses


def test_choose_loss_rule(clean):
    assert losses.choose_loss(clean)[0] == "acceleration"
    positions = Trajectories.from_arrays([r.t for r in clean], [r.q for r in clean], coords=["x"])
    loss, reason = losses.choose_loss(positions)
    assert loss == "acceleration" and "clean" in reason
    noisy = clean.with_noise(1e-3, seed=1)
    assert not noisy.has_accelerations
    loss, reason = losses.choose_loss(noisy)
    assert loss == "weak" and "noisy" in reason
    # noise is 1e-3 of the std over all trajectories; each trajectory's own spread is smaller
    assert 1e-3 < losses.position_noise(noisy) < 3e-3
    assert losses.position_noise(clean) < losses.CLEAN_NOISE


def test_a_clean_large_swing_pendulum_is_clean_and_noise_is_still_seen():
    g = 9.1  # swings up to theta = 3 rad: sixth differences alone read 1.3e-6 ("noisy")
    rng = np.random.default_rng(1)
    t = np.arange(0, 10 + 1e-9, 0.05)
    qs, vs = [], []
    for _ in range(6):
        y0 = [rng.uniform(-3, 3), rng.uniform(-1, 1)]
        sol = solve_ivp(lambda _, y: [y[1], -g * np.sin(y[0])], (0, 10), y0, t_eval=t,
                        method="DOP853", rtol=1e-10, atol=1e-12)
        qs.append(sol.y[:1].T)
        vs.append(sol.y[1:].T)
    data = Trajectories.from_arrays([t] * 6, qs, v=vs, coords=["theta"])
    assert losses.position_noise(data) < 1e-7
    assert losses.choose_loss(data)[0] == "acceleration"
    noisy = data.with_noise(1e-3, seed=0)
    assert losses.position_noise(noisy) == pytest.approx(1e-3, rel=0.5)
    assert losses.choose_loss(noisy)[0] == "weak"
