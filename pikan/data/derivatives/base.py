"""The interface every derivative estimator implements.

An estimator turns the sampled positions of one trajectory into estimates of their first
and second time derivatives (velocities and accelerations). Each estimator is one file of
this package, with a ``name`` by which options choose it
(``Trajectories.with_derivatives(method=...)``, ``fit(derivatives=...)``) through
:func:`pikan.data.derivatives.derivative_estimator`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import ClassVar

import numpy as np


class DerivativeEstimator(ABC):
    """Time derivatives of one sampled trajectory.

    Subclasses set ``name`` and implement :meth:`derivative`; their settings (a window, an
    order) are attributes given at construction. Estimators raise
    :class:`pikan.errors.DataError` when a trajectory cannot be differentiated (too short,
    or sampled in a way the estimator does not support).
    """

    name: ClassVar[str]
    """The name options choose the estimator by, e.g. ``"savgol"``."""

    @classmethod
    @abstractmethod
    def from_options(cls, window: int | None = None,
                     order: int | None = None) -> DerivativeEstimator:
        """The estimator set up from the two options its callers offer.

        Parameters
        ----------
        window : int, optional
            Samples in the estimator's stencil, where it has a choice (None: its default).
        order : int, optional
            Order of the estimator's local polynomial, where it has a choice (None: its
            default).

        Raises
        ------
        DataError
            An option the estimator cannot honour.
        """

    @abstractmethod
    def derivative(self, t: np.ndarray, y: np.ndarray, deriv: int) -> np.ndarray:
        """The ``deriv``-th time derivative of ``y`` sampled at times ``t``.

        Parameters
        ----------
        t : ndarray, shape (T,)
            Strictly increasing sample times.
        y : ndarray, shape (T,) or (T, n)
            Samples, e.g. the positions of one trajectory.
        deriv : int
            1 (velocities) or 2 (accelerations).

        Returns
        -------
        ndarray, same shape as y, float64
        """

    def derivatives(self, t: np.ndarray, y: np.ndarray,
                    derivs: Iterable[int] = (1, 2)) -> dict[int, np.ndarray]:
        """Several derivatives of the same samples: ``{deriv: derivative(t, y, deriv)}``."""
        return {d: self.derivative(t, y, d) for d in derivs}
