r"""The interface every training loss kind implements, and the normalization they share.

A loss kind is one way of measuring a model against trajectories: matching accelerations
(:mod:`pikan.train.losses.acceleration_matching`) or matching rollouts
(:mod:`pikan.train.losses.rollout_matching`), chosen by name (``fit(loss=...)``) through
:func:`pikan.train.losses.loss_kind`. A kind says which samples it reads, how it
normalizes them, what it computes on a batch, and on which states of a batch the
regularization terms (sparsity, soft constraints) are measured.

Every loss is a mean of squared errors normalized per coordinate by
:func:`coordinate_scale`, so a loss of ``1e-6`` means a relative RMS error of about
``1e-3`` whatever the units.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor


def coordinate_scale(x: Tensor, center: bool = True, floor: float = 0.1) -> Tensor:
    """Per-coordinate size of ``x`` used to normalize a loss.

    The standard deviation (``center=True``, for positions and velocities, whose offsets
    carry no information) or the root mean square (``center=False``, for accelerations, so
    that the loss measures relative error even when an acceleration is mostly constant).
    A coordinate that hardly varies (a free particle's zero acceleration) gets
    ``floor * max_j scale_j`` (or 1 when every scale is zero): its absolute errors then count
    on the scale of the other coordinates instead of being blown up.

    Parameters
    ----------
    x : Tensor, shape (N, n)
    center : bool
    floor : float

    Returns
    -------
    Tensor, shape (n,)
    """
    if center:
        x = x - x.mean(0)
    size = x.pow(2).mean(0).sqrt()
    top = size.max()
    low = floor * top if bool(top > 0) else torch.ones((), dtype=x.dtype, device=x.device)
    return torch.maximum(size, low)


def driven_times(model, t: Tensor | None) -> Tensor | None:
    """``t`` for a driven model (one that reads time), None for any other: a loss passes
    times only to the models that take them, so any object with ``acceleration(q, v)``
    still trains."""
    return t if getattr(model, "driven", False) else None


def accelerations(model, q: Tensor, v: Tensor, t: Tensor | None = None) -> Tensor:
    """``model.acceleration(q, v)``, with the times ``t`` when the model is driven."""
    t = driven_times(model, t)
    return model.acceleration(q, v) if t is None else model.acceleration(q, v, t)


def time_derivatives(model, q: Tensor, v: Tensor, t: Tensor | None = None) -> Tensor:
    """What a model's equations give: its rates ``Model.derivative`` for a first-order model
    (``order == 1``), :func:`accelerations` for any other (anything with
    ``acceleration(q, v)``)."""
    if getattr(model, "order", 2) != 1:
        return accelerations(model, q, v, t)
    return model.derivative(q, v, driven_times(model, t))


def relative_error(prediction: Tensor, target: Tensor) -> float:
    r"""Relative RMS error :math:`\|p - t\| / \|t\|` over all entries."""
    prediction, target = prediction.detach(), target.detach()
    return float((prediction - target).norm() / target.norm().clamp_min(1e-300))


class LossKind(ABC):
    """A data loss ``fit`` can train on: which samples it reads and what it computes on them.

    Subclasses set ``name`` and implement the five methods below; their settings (an
    integrator, a window) are attributes given at construction. A batch is a dict of
    tensors with the keys of :meth:`samples`, indexed along the first axis.
    """

    name: ClassVar[str]
    """The name ``fit(loss=...)`` chooses the kind by, e.g. ``"acceleration"``."""

    @abstractmethod
    def needs_derivatives(self, data) -> bool:
        """Whether ``data`` (Trajectories) lacks what this loss reads, so that velocities and
        accelerations must first be estimated (``data.with_derivatives``)."""

    @abstractmethod
    def samples(self, data) -> dict[str, np.ndarray]:
        """The arrays this loss reads from ``data`` (Trajectories), by key; the first axis
        indexes the samples a batch draws from."""

    @abstractmethod
    def scales(self, train: dict[str, Tensor], q: Tensor, v: Tensor,
               measured_velocities: bool) -> dict[str, Tensor]:
        """The normalization of the loss, fixed once from the training data.

        Parameters
        ----------
        train : dict of Tensor
            :meth:`samples` of the training trajectories, as tensors.
        q, v : Tensor, shape (N, n)
            Every training state.
        measured_velocities : bool
            Whether the data's velocities were measured rather than estimated.
        """

    @abstractmethod
    def states(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """The states ``(q, v)``, each (batch, n), and their times ``t`` (batch,), that a
        batch's sparsity penalty and soft constraints are measured on."""

    @abstractmethod
    def __call__(self, model, batch: dict[str, Tensor], scales: dict[str, Tensor]) -> Tensor:
        """The loss of ``model`` on ``batch`` with the normalization ``scales``: a scalar."""
