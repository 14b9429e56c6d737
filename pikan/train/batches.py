"""The data of a fit on its device: training and validation tensors for one loss, made once.

:class:`FitData` asks the fit's loss kind (:class:`pikan.train.losses.LossKind`) what it
needs: whether velocities and accelerations must first be estimated, which samples it reads
(single states, rollout windows, ...) and how it normalizes them. It splits by trajectory,
moves everything to the device once (through pinned memory for large arrays on CUDA) and
fixes the validation and full-batch subsets. Nothing here depends on which kind it is.
"""

from __future__ import annotations

import numpy as np
import torch

from pikan.errors import DataError
from pikan.train.losses import LossKind

__all__ = ["SIZE_LIMIT", "FitData", "check_data", "to_device"]

_PIN_BYTES = 1 << 20

SIZE_LIMIT = 1e150
"""The largest magnitude of a position, velocity or acceleration that fit accepts (and the
inverse of the smallest nonzero one): squares of larger values (in losses, norms, energies)
overflow float64 (about 1.8e308), those of smaller ones underflow to zero. Inside, data far
from unit size are normalised (:mod:`pikan.train.normalise`), not refused."""


def check_data(data) -> list[str]:
    """Degenerate data, recognised before training: an error when nothing can be learned,
    warnings when the result is doubtful.

    Parameters
    ----------
    data : Trajectories

    Returns
    -------
    list of str
        Warnings, each starting with ``"data: "``: a coordinate that never moves, every
        trajectory a single sample. (Sizes far from 1 are no warning here: fit normalises
        them, :mod:`pikan.train.normalise`, and warns with what it did.)

    Raises
    ------
    DataError
        No motion at all: in every trajectory the positions stay where they start (there
        are no forces to learn but "zero at these points"); given velocities (or
        accelerations) that are all zero while the positions (velocities) change; positions,
        velocities or accelerations whose squares leave float64 (:data:`SIZE_LIMIT`).
    """
    records = list(data)
    coords = list(data.coords)
    _check_sizes(records, coords)
    spread = np.max([np.ptp(r.q, axis=0) for r in records], axis=0)  # (n,)
    moving_v = data.has_velocities and any(np.any(r.v != 0) for r in records)
    if not np.any(spread > 0) and not moving_v:
        raise DataError(f"the data show no motion: in all {len(records)} trajectories every "
                        "position stays where it starts (and no velocity is given or all are "
                        "zero), so no force can be learned; hint: record trajectories that "
                        "move, e.g. start them away from equilibrium or with a velocity")
    for given, of, what in (("v", "q", "positions"), ("a", "v", "velocities")):
        arrays = [getattr(r, given) for r in records]
        if arrays[0] is None or any(np.any(x != 0) for x in arrays):
            continue
        if any(np.ptp(getattr(r, of), axis=0).max() > 0 for r in records):
            name = "velocities" if given == "v" else "accelerations"
            raise DataError(f"the data's {name} are all zero while the {what} change: they "
                            f"contradict each other; hint: drop the {name} (give q and t "
                            "only, or fewer arrays) so that they are estimated from the "
                            "positions")
    out = []
    if len(coords) > 1:
        for name, moved in zip(coords, spread):
            if moved == 0:
                out.append(f"data: coordinate {name} does not move in any trajectory: the "
                           f"forces along {name} are not seen by the fit")
    if all(len(r) == 1 for r in records):
        out.append(f"data: every trajectory holds a single sample ({len(records)} states in "
                   "all): the fit sees isolated states, not motion, and a law read from so "
                   "few states may be wrong; hint: give time series")
    return out


def _check_sizes(records, coords) -> None:
    """A DataError for positions, velocities or accelerations beyond :data:`SIZE_LIMIT`."""
    for given, what in (("q", "positions"), ("v", "velocities"), ("a", "accelerations")):
        arrays = [getattr(r, given) for r in records]
        if arrays[0] is None:
            continue
        top = np.max([np.max(np.abs(x), axis=0) for x in arrays], axis=0)  # (n,)
        for name, size in zip(coords, top):
            if size > SIZE_LIMIT or 0 < size < 1 / SIZE_LIMIT:
                raise DataError(f"the {what} of {name} reach a magnitude of {size:.3g}: their "
                                "squares (in losses, norms and energies) leave float64, whose "
                                f"range ends near 1.8e308, so fit accepts magnitudes from "
                                f"{1 / SIZE_LIMIT:g} to {SIZE_LIMIT:g}; hint: express the data "
                                "in other units (fit normalises sizes far from 1 inside this "
                                "range)")


def to_device(x, dtype, device) -> torch.Tensor:
    """``x`` (array) as a ``dtype`` tensor on ``device``, converted on the host and copied once.

    For CUDA, arrays of 1 MiB or more go through pinned host memory and are copied without
    blocking the host (the copy overlaps with preparing the next array).
    """
    host = torch.as_tensor(np.ascontiguousarray(x), dtype=dtype)
    if device.type != "cuda":
        return host.to(device)
    pin = host.numel() * host.element_size() >= _PIN_BYTES
    if pin:
        host = host.pin_memory()
    return host.to(device, non_blocking=pin)


class FitData:
    """Training and validation tensors for one loss kind, on the device, made once.

    Parameters
    ----------
    data : Trajectories
    kind : LossKind
        The data loss of the fit; its :meth:`~pikan.train.losses.LossKind.samples` of the
        training and validation trajectories become :attr:`tensors` and :attr:`val`, its
        :meth:`~pikan.train.losses.LossKind.scales` :attr:`scales`.
    config : dict
        The resolved options (:func:`pikan.train.options.resolve`): ``derivatives``,
        ``val_fraction``, ``eval_size`` and ``lbfgs_batch`` are read.
    device : torch.device
    dtype : torch.dtype
    seed : int
        Seeds the split and the subsets.

    Attributes
    ----------
    kind : LossKind
    tensors, val : dict of Tensor
        The samples of the training and validation trajectories, by the kind's keys, the
        first axis indexing samples (``val`` is ``tensors`` when there is no validation split).
    scales : dict of Tensor
        The loss's normalization, fixed from the training data.
    q, v : Tensor, shape (N, n)
        Every training state (grids, pruning, normalization).
    n_train, n_val : int
        Samples in ``tensors`` and ``val``.
    """

    def __init__(self, data, kind: LossKind, config: dict, device, dtype, seed: int) -> None:
        self.kind = kind
        measured_v = data.has_velocities and "v" not in data.estimated
        if kind.needs_derivatives(data):
            data = data.with_derivatives(method=config["derivatives"])
        if len(data) >= 2 and config["val_fraction"] > 0:
            train, val = data.split(1.0 - config["val_fraction"], seed=seed)
        else:
            train, val = data, None

        def tensors(part) -> dict:
            return {key: to_device(x, dtype, device) for key, x in kind.samples(part).items()}

        q, v, _ = train.states()
        self.q, self.v = to_device(q, dtype, device), to_device(v, dtype, device)
        self.t = to_device(train.times(), dtype, device)
        self.tensors = tensors(train)
        self.val = {} if val is None else tensors(val)
        self.scales = kind.scales(self.tensors, self.q, self.v, measured_v)
        self.n_train = _count(self.tensors)
        self.has_val = bool(self.val)
        if not self.has_val:  # early stopping then watches a fixed training subset
            self.val = self.tensors
        generator = torch.Generator().manual_seed(seed + 1)
        self.n_val = n_val = _count(self.val)
        cap = config["eval_size"]
        self.val_index = (torch.randperm(n_val, generator=generator)[:cap].sort().values
                          if n_val > cap else torch.arange(n_val)).to(device)
        n_full = min(self.n_train, config["lbfgs_batch"])
        self.full_index = (torch.randperm(self.n_train, generator=generator)[:n_full].sort().values
                           ).to(device)
        self.n_states = self.q.shape[0]
        cap_states = 20000
        self.state_index = (torch.randperm(self.n_states, generator=generator)[:cap_states]
                            .sort().values.to(device) if self.n_states > cap_states else None)

    def states(self):
        """Training states and their times (capped at 20000) for grid adaptation and
        pruning: ``(q, v, t)``."""
        if self.state_index is None:
            return self.q, self.v, self.t
        return tuple(x[self.state_index] for x in (self.q, self.v, self.t))


def _count(samples: dict) -> int:
    """How many samples a dict of a loss kind's tensors holds (their common first axis)."""
    return next(iter(samples.values())).shape[0]
