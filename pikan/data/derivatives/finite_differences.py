r"""Second-order finite differences on any strictly increasing time grid.

Exact for low-degree polynomials and free of tuning: the estimator for clean data, and the
only one here for non-uniform time steps. Noise is amplified by :math:`1/h` (velocities)
and :math:`1/h^2` (accelerations); for measured positions use Savitzky–Golay
(:mod:`pikan.data.derivatives.savitzky_golay`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from pikan.data.derivatives.base import DerivativeEstimator
from pikan.errors import DataError


def finite_difference(t: np.ndarray, y: np.ndarray, deriv: int = 1) -> np.ndarray:
    r"""Second-order finite-difference derivative on a possibly non-uniform grid.

    First derivative: central three-point differences inside, one-sided three-point at the
    ends (``numpy.gradient``, ``edge_order=2``); needs T >= 3. Second derivative: the second
    derivative of the cubic through four neighbouring samples, stencil (i-1, i, i+1, i+2)
    inside and one-sided at the ends, :math:`w_j = 2(3t_i - \sum_{k \ne j} t_k) /
    \prod_{k \ne j}(t_j - t_k)`; on uniform steps it is the central
    :math:`(y_{i-1} - 2y_i + y_{i+1})/h^2`; needs T >= 4. Both are second-order accurate.

    Parameters
    ----------
    t : ndarray, shape (T,)
        Strictly increasing times.
    y : ndarray, shape (T,) or (T, n)
    deriv : {1, 2}

    Returns
    -------
    ndarray, same shape as y
    """
    t, y = np.asarray(t, dtype=np.float64), np.asarray(y, dtype=np.float64)
    T = t.shape[0]
    need = {1: 3, 2: 4}.get(deriv)
    if need is None:
        raise DataError(f"finite_difference computes deriv 1 or 2, got {deriv}")
    if T < need:
        raise DataError(
            f"has {T} samples, too short for the finite-difference stencil of derivative "
            f"{deriv} (needs at least {need})"
        )
    if deriv == 1:
        return np.gradient(y, t, axis=0, edge_order=2)
    start = np.clip(np.arange(T) - 1, 0, T - 4)
    stencil = start[:, None] + np.arange(4)
    x = t[stencil]
    weights = np.empty((T, 4))
    for j in range(4):
        others = x[:, [k for k in range(4) if k != j]]
        weights[:, j] = 2.0 * (3.0 * t - others.sum(axis=1)) / np.prod(x[:, [j]] - others, axis=1)
    return np.einsum("tk,tk...->t...", weights, y[stencil])


@dataclass(frozen=True)
class FiniteDifference(DerivativeEstimator):
    """The estimator :func:`finite_difference`, chosen by the name ``"finite_difference"``.

    It has no settings: its stencils are fixed (three samples for velocities, four for
    accelerations) and its accuracy is second order.
    """

    name: ClassVar[str] = "finite_difference"

    @classmethod
    def from_options(cls, window: int | None = None, order: int | None = None) -> FiniteDifference:
        """The estimator for ``with_derivatives``' options: ``window`` does not apply (fixed
        stencils) and ``order`` must be None or 2 (DataError otherwise)."""
        if order not in (None, 2):
            raise DataError(f"finite differences are second order; got order={order}")
        return cls()

    def derivative(self, t: np.ndarray, y: np.ndarray, deriv: int) -> np.ndarray:
        """:func:`finite_difference` of ``y`` (T,) or (T, n) at times ``t`` (T,)."""
        return finite_difference(t, y, deriv)
