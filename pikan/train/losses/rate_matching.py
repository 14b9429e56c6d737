r"""Rate matching: a first-order system's ``dq/dt`` against measured or estimated rates.

.. math:: L_r = \frac{1}{B n} \sum_{b, j} \left(\frac{f_j(q_b, t_b) - \dot q_{bj}}{s_j}\right)^2,

with :math:`f = \mathrm{Model.rate}` (the Flows plus :math:`-\nabla V` of the potentials) and
:math:`s_j` the root mean square of the data's rates of coordinate ``j``. A first-order
system's velocities *are* its rates: measured ones are used as they are, missing ones are
estimated from the positions (Savitzky–Golay by default, whose window adapts to the noise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from torch import Tensor

from pikan.train.losses.base import LossKind, coordinate_scale, driven_times


def rate_loss(model, q: Tensor, rate: Tensor, scale: Tensor, t: Tensor | None = None) -> Tensor:
    """Normalized rate matching (see the module docstring).

    Parameters
    ----------
    model : pikan Model of a first-order system (anything with ``rate(q[, t])``)
    q, rate : Tensor, shape (batch, n)
        States and their target rates ``dq/dt``.
    scale : Tensor, shape (n,)
    t : Tensor, shape (batch,), optional
        Times of the states (driven systems).

    Returns
    -------
    Tensor, scalar.
    """
    t = driven_times(model, t)
    predicted = model.rate(q) if t is None else model.rate(q, t)
    return (((predicted - rate) / scale) ** 2).mean()


@dataclass(frozen=True)
class RateLoss(LossKind):
    """The loss kind ``"rate"``: :func:`rate_loss` on single samples (first-order systems).

    Samples: ``q`` and ``v`` (the rates), each (N, n), and ``t`` (N,). Scale: the root mean
    square of the training rates per coordinate.
    """

    name: ClassVar[str] = "rate"

    def needs_derivatives(self, data) -> bool:
        """True when ``data`` carries no rates (velocities)."""
        return not data.has_velocities

    def samples(self, data) -> dict[str, np.ndarray]:
        """Every sample's ``q`` and rate ``v``, (N, n) each, and time ``t`` (N,)."""
        q, v, _ = data.states()
        return {"q": q, "v": v, "t": data.times()}

    def scales(self, train: dict[str, Tensor], q: Tensor, v: Tensor,
               measured_velocities: bool) -> dict[str, Tensor]:
        """``{"v": coordinate_scale(train["v"], center=False)}``."""
        return {"v": coordinate_scale(train["v"], center=False)}

    def states(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """The batch's own samples (no velocities: a first-order state is ``q``)."""
        return batch["q"], batch["q"][:, :0], batch["t"]

    def __call__(self, model, batch: dict[str, Tensor], scales: dict[str, Tensor]) -> Tensor:
        """:func:`rate_loss` of ``model`` on ``batch``."""
        return rate_loss(model, batch["q"], batch["v"], scales["v"], batch["t"])
