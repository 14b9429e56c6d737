"""Constraints on modules and systems (installed as ``pikan.constraints``).

Module constraints attach to a module's ``constraints`` and name its inputs:

- :class:`Symmetric`, :class:`Even`, :class:`Odd`: discrete symmetries (hard: averaged block);
- :class:`RotationInvariant`, :class:`TranslationInvariant`: continuous invariances (hard:
  invariant features fed to the block);
- :class:`Positive`: nonnegative scalar output (hard: softplus); :class:`Monotonic`: sign of
  a partial derivative (soft only).

System constraints attach to ``System(constraints=...)``: :class:`Conserved` (energy,
momentum, angular momentum; hard when the spec conserves by construction).

Every constraint has ``mode`` ("hard" | "soft"), ``weight``, and the same three measures
(see :mod:`pikan.constraints.base`)::

    constraint.penalty(model, q, v, module=None) -> Tensor   # soft loss term (x weight)
    constraint.violation(model, q, v, module=None) -> float  # scale-free, 0 = satisfied
    constraint.data_violation(data, model=None) -> float | None

Hard constraints enter :func:`pikan.compile` through two hooks: ``rewrite(module,
system)`` (a spec change before the block is built) and ``wrap(fn, input_names)`` (a
change of the block function).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Constraint, apply_rewrites, feature_map, module_function, module_inputs
from .conservation import Conserved
from .invariance import RotationInvariant, TranslationInvariant, invariant_features
from .output import Monotonic, Positive, default_constraints
from .symmetry import Even, Odd, Symmetric

__all__ = [
    "Conserved",
    "Constraint",
    "Even",
    "Monotonic",
    "Odd",
    "Positive",
    "RotationInvariant",
    "Symmetric",
    "TranslationInvariant",
    "apply_rewrites",
    "declared",
    "default_constraints",
    "feature_map",
    "invariant_features",
    "module_function",
    "module_inputs",
    "soft_penalty",
]


def declared(spec, defaults: bool = False) -> list[tuple[str | None, object]]:
    """Every constraint of a spec as ``(module name or None for the system, constraint)``.

    Parameters
    ----------
    spec : pikan.System
    defaults : bool
        Also list the constraints modules get by default (:func:`default_constraints`).
    """
    out = []
    for m in spec.modules:
        out += [(m.name, c) for c in m.constraints]
        if defaults:
            out += [(m.name, c) for c in default_constraints(m)]
    return out + [(None, c) for c in spec.constraints]


def soft_penalty(model, q: Tensor, v: Tensor) -> Tensor:
    """Sum of ``weight * penalty`` over the soft constraints of ``model.spec``.

    Parameters
    ----------
    model : pikan.model.compile.Model
    q, v : Tensor of shape (batch, n_coords)

    Returns
    -------
    Tensor, scalar (zero without soft constraints); differentiable in the parameters.
    """
    total = torch.zeros((), dtype=q.dtype, device=q.device)
    for module, constraint in declared(model.spec):
        if getattr(constraint, "mode", None) == "soft" and constraint.weight > 0:
            total = total + constraint.weight * constraint.penalty(model, q, v, module=module)
    return total
