"""The data of a fit on its device: training and validation tensors for one loss, made once.

:class:`FitData` derives what the loss needs (estimated accelerations or velocities,
rollout windows), splits by trajectory, moves everything to the device once (through
pinned memory for large arrays on CUDA) and fixes the validation and full-batch subsets.
"""

from __future__ import annotations

import numpy as np
import torch

from pikan.train import losses

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
    """Training and validation tensors for one loss, on the device, made once."""

    def __init__(self, data, config: dict, device, dtype, seed: int) -> None:
        kind = config["loss"]
        self.kind = kind
        measured_v = data.has_velocities
        need = (not data.has_accelerations) if kind == "acceleration" else not measured_v
        if need:
            data = data.with_derivatives(method=config["derivatives"])
        if len(data) >= 2 and config["val_fraction"] > 0:
            train, val = data.split(1.0 - config["val_fraction"], seed=seed)
        else:
            train, val = data, None

        def tensor(x):
            return to_device(x, dtype, device)

        q, v, _ = train.states()
        self.q, self.v = tensor(q), tensor(v)  # training states (grids, pruning)
        self.tensors, self.val = {}, {}
        if kind == "acceleration":
            for part, target in (("train", train), ("val", val)):
                if target is None:
                    continue
                qp, vp, _ = target.states()
                ap, _ = target.accelerations()
                store = self.tensors if part == "train" else self.val
                store.update(q=tensor(qp), v=tensor(vp), a=tensor(ap))
            self.scales = {"a": losses.coordinate_scale(self.tensors["a"], center=False)}
        else:
            length, every = config["window"], config["every"]
            for part, target in (("train", train), ("val", val)):
                if target is None:
                    continue
                w = target.windows((length - 1) * every + 1, stride=every)
                store = self.tensors if part == "train" else self.val
                store.update(t=tensor(w.t[:, ::every]), q=tensor(w.q[:, ::every]),
                             v=tensor(w.v[:, ::every]))
            self.scales = {"q": losses.coordinate_scale(self.q)}
            # where the rollout loss evaluates the model (losses.rollout: a model that leaves
            # the data meets held forces, not extrapolated polynomials)
            self.scales["box_lo"], self.scales["box_hi"] = losses.state_box(
                self.tensors["q"], self.tensors["v"])
            if measured_v:
                self.scales["v"] = losses.coordinate_scale(self.v)
        self.n_train = self.tensors["q"].shape[0]
        self.has_val = bool(self.val)
        if not self.has_val:  # early stopping then watches a fixed training subset
            self.val = self.tensors
        generator = torch.Generator().manual_seed(seed + 1)
        n_val = self.val["q"].shape[0]
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


def first_states(kind: str, q: torch.Tensor, v: torch.Tensor) -> tuple:
    """The states a batch's sparsity and penalties are measured on: the samples themselves
    (acceleration), or the first state of each window (rollout)."""
    return (q, v) if kind == "acceleration" else (q[:, 0], v[:, 0])
