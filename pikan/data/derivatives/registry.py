"""The derivative estimators by name, and the one function that turns a name into one.

A new estimator is a new file with a :class:`~pikan.data.derivatives.base.DerivativeEstimator`
subclass and one entry in :data:`ESTIMATORS`.
"""

from __future__ import annotations

from pikan.data.derivatives.base import DerivativeEstimator
from pikan.data.derivatives.finite_differences import FiniteDifference
from pikan.data.derivatives.savitzky_golay import SavitzkyGolay
from pikan.errors import DataError

ESTIMATORS: dict[str, type[DerivativeEstimator]] = {
    SavitzkyGolay.name: SavitzkyGolay,
    FiniteDifference.name: FiniteDifference,
}
"""Every derivative estimator by its ``name``; the first is the default."""


def derivative_estimator(method: str, window: int | None = None,
                         order: int | None = None) -> DerivativeEstimator:
    """The estimator named ``method``, set up from the options of ``with_derivatives``.

    Parameters
    ----------
    method : str
        A key of :data:`ESTIMATORS`: ``"savgol"`` or ``"finite_difference"``.
    window, order : int, optional
        Passed to the estimator's ``from_options`` (Savitzky–Golay: window in samples and
        polynomial order; finite differences: no window, order None or 2).

    Raises
    ------
    DataError
        An unknown name, or options the estimator cannot honour.
    """
    if method not in ESTIMATORS:
        expected = " or ".join(repr(name) for name in ESTIMATORS)
        raise DataError(f"unknown derivative method {method!r}; expected {expected}")
    return ESTIMATORS[method].from_options(window=window, order=order)
