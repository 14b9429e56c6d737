"""Regularization terms added to a data loss: the KAN sparsity penalty and soft constraints.

:func:`sparsity` is the KAN 2.0 penalty (l1 + entropy of edge magnitudes) of every learned
block on a batch's module inputs; :func:`soft_penalties` gathers the spec's soft
constraints as weighted terms. Both are measured on states ``(q, v)``, each (batch, n): for
a loss kind, the states :meth:`pikan.train.losses.LossKind.states` picks from a batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor


def kan_inputs(model, name: str, q: Tensor, v: Tensor, t: Tensor | None = None) -> Tensor:
    """Inputs of the KAN of block ``name`` on states ``(q, v)`` at times ``t`` (driven
    systems): ``(n_bindings * batch, in_dim)``.

    A learned gyroscopic block's KAN sees only its field inputs (positions), as in
    ``Model.adapt_grids``; other KANs see their inputs divided by the block's
    ``input_scale`` (ones unless fit normalised the block).
    """
    z = model.module_inputs(name, q, v, t)
    block = model.blocks[name]
    if getattr(block, "gyroscopic_learned", False):
        return block.field_inputs(z)
    return z / block.input_scale


def learned_kans(model) -> dict:
    """``{module name: KAN}`` of every block learned by a KAN."""
    return {name: block.kan for name, block in model.blocks.items() if block.kan is not None}


def sparsity(model, q: Tensor, v: Tensor, l1: float = 1.0, entropy: float = 2.0,
             t: Tensor | None = None) -> Tensor:
    """KAN 2.0 sparsity penalty summed over learned blocks, edge sizes measured on ``(q, v)``.

    Parameters
    ----------
    model : pikan Model
    q, v : Tensor, shape (batch, n)
    l1, entropy : float
        Weights of the l1 and entropy parts (see ``KAN.regularization``).

    Returns
    -------
    Tensor, scalar (zero without learned KAN blocks).
    """
    total = q.new_zeros(())
    for name, kan in learned_kans(model).items():
        total = total + kan.regularization(kan_inputs(model, name, q, v, t), l1=l1,
                                           entropy=entropy)
    return total


@dataclass(frozen=True)
class Penalty:
    """A soft constraint turned into a loss term.

    Attributes
    ----------
    name : str
        ``"<module>.<ConstraintType>"`` or ``"system.<ConstraintType>"``.
    weight : float
    fn : callable ``fn(model, q, v) -> scalar Tensor``
    """

    name: str
    weight: float
    fn: Callable[..., Tensor]


def _penalty_fn(constraint, module_name: str | None) -> Callable[..., Tensor] | None:
    method = getattr(constraint, "penalty", None)
    if not callable(method):
        return None
    if module_name is None:
        return lambda model, q, v: method(model, q, v)
    return lambda model, q, v: method(model, q, v, module=module_name)


def soft_penalties(model) -> list[Penalty]:
    """The soft constraints of ``model.spec`` (``mode == "soft"``) as weighted loss terms.

    A soft constraint contributes ``weight * constraint.penalty(model, q, v, module=name)``
    (module constraints) or ``weight * constraint.penalty(model, q, v)`` (system
    constraints); ``weight`` is the constraint's ``weight`` attribute (default 1).
    Constraints without a ``penalty`` method are skipped.
    """
    spec = model.spec
    found = []
    owners = [(m.name, m.constraints) for m in spec.modules] + [(None, spec.constraints)]
    for owner, constraints in owners:
        for constraint in constraints:
            if getattr(constraint, "mode", None) != "soft":
                continue
            fn = _penalty_fn(constraint, owner)
            if fn is None:
                continue
            label = f"{owner or 'system'}.{type(constraint).__name__}"
            found.append(Penalty(label, float(getattr(constraint, "weight", 1.0)), fn))
    return found
