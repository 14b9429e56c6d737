"""The documented rule behind ``fit(loss="auto")``: which loss kind the data calls for.

:func:`choose_loss` picks acceleration matching when accelerations are given or can be
estimated accurately (clean positions, :func:`position_noise` at most :data:`CLEAN_NOISE`),
and weak-form matching otherwise.
"""

from __future__ import annotations

import numpy as np

from pikan.data.derivatives import noise_level
from pikan.data.trajectories import Trajectories

CLEAN_NOISE = 1e-4
"""Relative position noise (noise std / signal std) below which positions count as clean.

Simulated data read 1e-9 to 2e-5 (the top of that range where a steep wall makes every
difference order large: a Lennard-Jones bounce); measured positions, 1e-3 and up. Clean
data trained on rollouts (300 steps) instead of accelerations fit 100x worse: the KAN of a
Lennard-Jones well reached validation 1.3e-3 and rolled out to inf, against 8.7e-4 and a
finite rollout on accelerations."""


def position_noise(data: Trajectories) -> float:
    """Median relative noise of the positions: noise std / signal std.

    The noise std is the smallest estimate from 6th, 8th and 10th differences
    (:func:`pikan.data.derivatives.noise_level`). White noise gives the same value at every order; the signal's
    own differences shrink with the order (by about ``(omega dt)**2`` every two orders, times
    the falling normalization), so on fast but clean motion (a pendulum swinging near the
    top: 6th differences read 1.3e-6 of the spread, a "noisy" verdict) the higher orders
    see through to the noise floor. Trajectories shorter than 24 samples are skipped; 1.0
    (noisy) when none is long enough.
    """
    ratios = []
    for record in data:
        if len(record) < 24:
            continue
        spread = record.q.std(axis=0)
        sigma = np.atleast_1d(noise_level(record.q))
        for order in (8, 10):
            sigma = np.minimum(sigma, noise_level(record.q, order))
        ratios += [s / d for s, d in zip(sigma, spread) if d > 0]
    return float(np.median(ratios)) if ratios else 1.0


def choose_loss(data: Trajectories) -> tuple[str, str]:
    """The loss ``fit(loss="auto")`` uses, and why.

    The rule:

    1. the data carries accelerations -> ``"acceleration"`` on them;
    2. the positions are clean (relative noise from :func:`position_noise` at most
       ``CLEAN_NOISE``, as from a simulator) -> ``"acceleration"`` on Savitzky--Golay
       estimates, which are then accurate;
    3. otherwise -> ``"weak"``: derivative estimates of noisy positions amplify the noise;
       the weak form (:mod:`pikan.train.losses.weak_form`) moves both derivatives onto
       smooth bumps and averages the noise down, without the bias of smoothing. It
       replaced ``"rollout"`` here: on the generalization suite's noisy rows ...

    Returns
    -------
    (loss, reason) : (str, str)
    """
    if data.measured_accelerations:
        return "acceleration", "the data carries accelerations"
    noise = position_noise(data)
    if noise <= CLEAN_NOISE:
        return "acceleration", (f"positions are clean (relative noise {noise:.1e} <= "
                                f"{CLEAN_NOISE:.0e}): accelerations estimated by Savitzky-Golay")
    return "weak", (f"positions are noisy (relative noise {noise:.1e} > {CLEAN_NOISE:.0e}) "
                    "and the data has no accelerations: weak-form matching needs no "
                    "acceleration estimates")


def choose_rate_loss(data: Trajectories) -> tuple[str, str]:
    """The loss ``fit(loss="auto")`` uses for a first-order system, and why.

    The rule, as :func:`choose_loss` one derivative lower:

    1. the data carries rates (velocities, measured) -> ``"rate"`` on them;
    2. the positions are clean (:func:`position_noise` at most ``CLEAN_NOISE``) ->
       ``"rate"`` on Savitzky--Golay estimates;
    3. otherwise -> ``"weak_rate"``: one integration by parts against smooth bumps, no
       derivative of the noisy positions taken.

    Returns
    -------
    (loss, reason) : (str, str)
    """
    if data.has_velocities and "v" not in data.estimated:
        return "rate", "a first-order system whose data carries its rates"
    noise = position_noise(data)
    if noise <= CLEAN_NOISE:
        return "rate", (f"a first-order system, positions clean (relative noise {noise:.1e} <= "
                        f"{CLEAN_NOISE:.0e}): rates estimated by Savitzky-Golay")
    return "weak_rate", (f"a first-order system, positions noisy (relative noise {noise:.1e} > "
                         f"{CLEAN_NOISE:.0e}): weak-form rates need no derivative estimates")
