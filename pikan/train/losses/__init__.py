"""Training losses: pure functions of a model and tensors, and the rule that picks one.

A family behind one interface (:class:`LossKind`, in ``base.py`` with the shared
normalization :func:`coordinate_scale`), one file per kind, chosen by name through
:func:`loss_kind` (``registry.py``):

- ``"acceleration"`` (:class:`AccelerationLoss`, ``acceleration_matching.py``): the
  equations of motion against accelerations, :func:`acceleration_loss`;
- ``"rollout"`` (:class:`RolloutLoss`, ``rollout_matching.py``): the model integrated
  through windows of the data against the positions, :func:`rollout_loss`, with
  :func:`rollout_window` and :func:`velocity_free` picking its window and integrator;
- ``"weak"`` (:class:`WeakFormLoss`, ``weak_form.py``): the equations against weak-form
  averages of the positions on windows, :func:`weak_loss`;
- ``"rate"`` (:class:`RateLoss`, ``rate_matching.py``): a first-order system's ``dq/dt``
  against its measured or estimated rates, :func:`rate_loss`;
- ``"weak_rate"`` (:class:`WeakRateLoss`, ``weak_form.py``): a first-order system's rates
  against weak-form averages of noisy positions.

``regularization.py`` holds the terms added to either (:func:`sparsity`,
:func:`soft_penalties`); ``choice.py`` the rule behind ``fit(loss="auto")``
(:func:`choose_loss`).
"""

from pikan.train.losses.acceleration_matching import AccelerationLoss, acceleration_loss
from pikan.train.losses.base import LossKind, coordinate_scale, relative_error, time_derivatives
from pikan.train.losses.choice import CLEAN_NOISE, choose_loss, choose_rate_loss, position_noise
from pikan.train.losses.rate_matching import RateLoss, rate_loss
from pikan.train.losses.registry import LOSS_KINDS, loss_kind
from pikan.train.losses.regularization import (
    Penalty,
    kan_inputs,
    learned_kans,
    soft_penalties,
    sparsity,
)
from pikan.train.losses.rollout_matching import (
    BOX_MARGIN,
    RolloutLoss,
    rollout,
    rollout_loss,
    rollout_window,
    state_box,
    velocity_free,
)
from pikan.train.losses.weak_form import (
    WeakFormLoss,
    WeakRateLoss,
    WeakWindows,
    bump,
    bump_rate,
    correlation_time,
    trapezoid_weights,
    weak_averages,
    weak_loss,
    weak_weights,
    weak_window,
    weak_windows,
)

__all__ = [
    "BOX_MARGIN",
    "CLEAN_NOISE",
    "LOSS_KINDS",
    "AccelerationLoss",
    "LossKind",
    "Penalty",
    "RateLoss",
    "RolloutLoss",
    "WeakFormLoss",
    "WeakRateLoss",
    "WeakWindows",
    "acceleration_loss",
    "bump",
    "bump_rate",
    "choose_loss",
    "choose_rate_loss",
    "coordinate_scale",
    "correlation_time",
    "kan_inputs",
    "learned_kans",
    "loss_kind",
    "position_noise",
    "rate_loss",
    "relative_error",
    "rollout",
    "rollout_loss",
    "rollout_window",
    "soft_penalties",
    "sparsity",
    "state_box",
    "time_derivatives",
    "trapezoid_weights",
    "velocity_free",
    "weak_averages",
    "weak_loss",
    "weak_weights",
    "weak_window",
    "weak_windows",
]
