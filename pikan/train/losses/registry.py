"""The training loss kinds by name, and the one function that turns a name into one.

A new loss kind is a new file with a :class:`~pikan.train.losses.base.LossKind` subclass
and one entry in :data:`LOSS_KINDS`: ``fit(loss=name)`` accepts it
(:data:`pikan.train.options.LOSSES` reads this registry), and the trainer and its data
(:mod:`pikan.train.loop`, :mod:`pikan.train.batches`) reach it through the interface alone.
A kind with settings also names the options that fill them
(:data:`pikan.train.options.LOSS_SETTINGS`).
"""

from __future__ import annotations

from pikan.train.losses.acceleration_matching import AccelerationLoss
from pikan.train.losses.base import LossKind
from pikan.train.losses.rate_matching import RateLoss
from pikan.train.losses.rollout_matching import RolloutLoss
from pikan.train.losses.weak_form import WeakFormLoss, WeakRateLoss

LOSS_KINDS: dict[str, type[LossKind]] = {
    AccelerationLoss.name: AccelerationLoss,
    RolloutLoss.name: RolloutLoss,
    WeakFormLoss.name: WeakFormLoss,
    RateLoss.name: RateLoss,
    WeakRateLoss.name: WeakRateLoss,
}
"""Every loss kind by its ``name``."""


def loss_kind(name: str, **settings) -> LossKind:
    """The loss kind ``name`` with its settings.

    Parameters
    ----------
    name : str
        A key of :data:`LOSS_KINDS`: ``"acceleration"``, ``"rollout"`` or ``"weak"``
        (``fit(loss="auto")`` resolves to one of them by :func:`pikan.train.losses.choose_loss`),
        or ``"rate"`` and ``"weak_rate"``, the losses of first-order systems.
    **settings
        The kind's attributes, e.g. ``method``, ``length`` and ``every`` for ``"rollout"``,
        ``length`` and ``every`` for ``"weak"``.

    Raises
    ------
    ValueError
        An unknown name, or a setting out of range.
    TypeError
        A setting the kind does not have.
    """
    if name not in LOSS_KINDS:
        raise ValueError(f"loss kind must be one of {tuple(LOSS_KINDS)}, got {name!r}")
    return LOSS_KINDS[name](**settings)
