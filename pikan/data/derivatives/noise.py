r"""White measurement noise read from high-order differences of a sampled signal.

A smooth signal sampled finely has negligible high-order differences, while white noise of
variance :math:`\sigma^2` gives differences of order ``k`` the variance
:math:`\binom{2k}{k} \sigma^2`. :func:`noise_level` inverts that with a robust spread (the
median absolute deviation), so a few outliers or a slowly varying signal do not inflate it.
The Savitzky–Golay window choice (:func:`pikan.data.derivatives.savgol_window`) and the
training loss rule (:func:`pikan.train.losses.position_noise`) both read the noise here.
"""

from __future__ import annotations

import math

import numpy as np


def noise_level(y: np.ndarray, order: int = 6) -> np.ndarray:
    r"""Robust estimate of white measurement noise per column, from ``order``-th differences.

    .. math:: \sigma = 1.4826 \, \mathrm{MAD}(\Delta^k y) / \sqrt{\tbinom{2k}{k}},

    with :math:`k` = ``order``: at the default 6, ``1.4826 * MAD(diff(y, 6)) / sqrt(924)``.
    Higher orders see through a signal whose own differences are still large at order 6
    (fast motion sampled coarsely), at the price of a noisier estimate.

    Parameters
    ----------
    y : ndarray, shape (T,) or (T, n), T > order
    order : int
        Order of the differences.

    Returns
    -------
    ndarray, shape () or (n,)
    """
    d = np.diff(np.asarray(y, dtype=np.float64), order, axis=0)
    mad = np.median(np.abs(d - np.median(d, axis=0)), axis=0)
    return 1.4826 * mad / np.sqrt(math.comb(2 * order, order))
