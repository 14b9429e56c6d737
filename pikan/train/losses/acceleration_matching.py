r"""Acceleration matching: the equations of motion against measured or estimated accelerations.

.. math:: L_a = \frac{1}{B n} \sum_{b, j} \left(\frac{a_j(q_b, v_b) - a_{bj}}{s_j}\right)^2,

with :math:`s_j` the root mean square of the data's accelerations of coordinate ``j``
(:func:`pikan.train.losses.base.coordinate_scale`). Potentials enter through ``-dV/dq``
computed by autograd, so the gradient of this loss needs a double backward. Accelerations
the data lacks are estimated from the positions (Savitzky–Golay by default), which is
accurate only on clean positions (:func:`pikan.train.losses.choose_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch import Tensor

from pikan.train.losses.base import LossKind, accelerations, coordinate_scale, driven_times


def acceleration_loss(model, q: Tensor, v: Tensor, a: Tensor, scale: Tensor,
                      t: Tensor | None = None) -> Tensor:
    """Normalized acceleration matching (see the module docstring).

    Parameters
    ----------
    model : pikan Model (anything with ``acceleration(q, v)``)
    q, v, a : Tensor, shape (batch, n)
        Positions, velocities and target accelerations.
    scale : Tensor, shape (n,)
        Per-coordinate normalization, usually :func:`coordinate_scale` of the training
        accelerations.
    t : Tensor, shape (batch,), optional
        Times of the states (driven systems).

    Returns
    -------
    Tensor, scalar.
    """
    return (((accelerations(model, q, v, t) - a) / scale) ** 2).mean()


@dataclass(frozen=True)
class AccelerationLoss(LossKind):
    """The loss kind ``"acceleration"``: :func:`acceleration_loss` on single samples.

    Samples: ``q``, ``v``, ``a``, each (N, n), and ``t`` (N,). Scale: the root mean square
    of the training accelerations per coordinate.
    """

    name: ClassVar[str] = "acceleration"

    def needs_derivatives(self, data) -> bool:
        """True when ``data`` carries no accelerations."""
        return not data.has_accelerations

    def samples(self, data) -> dict[str, np.ndarray]:
        """Every sample's ``q``, ``v`` and ``a``, (N, n) each, and time ``t`` (N,)."""
        q, v, _ = data.states()
        a, _ = data.accelerations()
        return {"q": q, "v": v, "a": a, "t": data.times()}

    def scales(self, train: dict[str, Tensor], q: Tensor, v: Tensor,
               measured_velocities: bool) -> dict[str, Tensor]:
        """``{"a": coordinate_scale(train["a"], center=False)}``."""
        return {"a": coordinate_scale(train["a"], center=False)}

    def states(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """The batch's own samples."""
        return batch["q"], batch["v"], batch["t"]

    def __call__(self, model, batch: dict[str, Tensor], scales: dict[str, Tensor]) -> Tensor:
        """:func:`acceleration_loss` of ``model`` on ``batch``."""
        t = driven_times(model, batch["t"])
        if t is None:
            return acceleration_loss(model, batch["q"], batch["v"], batch["a"], scales["a"])
        return acceleration_loss(model, batch["q"], batch["v"], batch["a"], scales["a"], t)
