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

from pikan.train.losses import LossKind

_PIN_BYTES = 1 << 20


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
        measured_v = data.has_velocities
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
        """Training states (capped at 20000) for grid adaptation and pruning."""
        if self.state_index is None:
            return self.q, self.v
        return self.q[self.state_index], self.v[self.state_index]


def _count(samples: dict) -> int:
    """How many samples a dict of a loss kind's tensors holds (their common first axis)."""
    return next(iter(samples.values())).shape[0]
