"""Derivative estimators: velocities and accelerations from sampled positions.

A family behind one interface (:class:`DerivativeEstimator`, in ``base.py``), one file per
estimator, chosen by name through :func:`derivative_estimator` (``registry.py``):

- ``"savgol"`` (:class:`SavitzkyGolay`, ``savitzky_golay.py``): the derivative of a local
  least-squares polynomial on uniform steps, with an automatic window
  (:func:`savgol_window`); robust to measurement noise.
- ``"finite_difference"`` (:class:`FiniteDifference`, ``finite_differences.py``):
  second-order finite differences on any strictly increasing time grid; for clean data.

``noise.py`` estimates white measurement noise from high-order differences
(:func:`noise_level`). The estimators are pure functions of arrays;
:meth:`pikan.data.trajectories.Trajectories.with_derivatives` applies them trajectory by
trajectory.
"""

from pikan.data.derivatives.base import DerivativeEstimator
from pikan.data.derivatives.finite_differences import FiniteDifference, finite_difference
from pikan.data.derivatives.noise import noise_level
from pikan.data.derivatives.registry import ESTIMATORS, derivative_estimator
from pikan.data.derivatives.savitzky_golay import (
    UNIFORM_STEP_RTOL,
    SavitzkyGolay,
    savgol_derivative,
    savgol_window,
    uniform_step,
)

__all__ = [
    "ESTIMATORS",
    "UNIFORM_STEP_RTOL",
    "DerivativeEstimator",
    "FiniteDifference",
    "SavitzkyGolay",
    "derivative_estimator",
    "finite_difference",
    "noise_level",
    "savgol_derivative",
    "savgol_window",
    "uniform_step",
]
