r"""Discrete symmetries of a module: parity in one input, invariance under permutations.

Hard versions average the block over the symmetry group, so they hold exactly for any
weights:

.. math::
    f_\text{even}(z) = \tfrac12\,[f(z) + f(Pz)], \quad
    f_\text{odd}(z) = \tfrac12\,[f(z) - f(Pz)], \quad
    f_\text{sym}(z) = \frac{1}{|G|} \sum_{\pi \in G} f(\pi z)

with :math:`P` negating one input and :math:`G` the permutations of the listed inputs.
Soft versions penalize :math:`f(Tz) - f(z)` (odd: :math:`f(Pz) + f(z)`) on the training
states, for the generators :math:`T` of the group (one negation; a swap and a cycle of the
permuted groups). The measure (see :mod:`pikan.constraints.base`) divides the rms of
that residual by the rms of ``f`` over all evaluated points, centered for even and
symmetric constraints (a potential is defined up to a constant), not for odd ones (a
constant offset violates oddness).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from pikan.errors import SpecError
from pikan.spec.system import register_constraint

from .base import (
    Constraint,
    attached_module,
    centered,
    check_input_names,
    evaluate,
    input_index,
    module_function,
    module_inputs,
    names_tuple,
    random_states,
    same_values,
)
from .invariance import consumed_inputs, invariant_features

MAX_HARD_GROUPS = 5
"""Hard Symmetric averages over all k! permutations; above this many groups use soft."""


class _FiniteSymmetry(Constraint):
    """``f(T z) = sign * f(z)`` for the elements ``T`` of a finite group of input
    transformations; hard: the block averaged over the group."""

    sign: ClassVar[float] = 1.0

    @property
    def used_inputs(self) -> tuple[str, ...]:
        """The module inputs this constraint refers to."""
        raise NotImplementedError

    def _transforms(self, names: Sequence[str], generators_only: bool
                    ) -> list[Callable[[Tensor], Tensor]]:
        """Input transformations ``(batch, n_inputs) -> (batch, n_inputs)``: the group's
        generators (for measures) or all its non-identity elements (for averaging)."""
        raise NotImplementedError

    def residual(self, model, q, v, module=None):
        """``f(T z) - sign f(z)`` for every generator ``T``, and the centered values of ``f``."""
        name = attached_module(model, self, module)
        fn = module_function(model, name)
        z = module_inputs(model, name, q, v)
        names = model.spec.module(name).input_names
        transforms = self._transforms(names, generators_only=True)
        batch = z.shape[0]
        out = fn(torch.cat([z] + [t(z) for t in transforms], dim=0))
        f0, moved = out[:batch], out[batch:].reshape(len(transforms), batch, -1)
        # an even function is measured against its variation (potentials are defined up to
        # a constant); an odd one against its size (a constant offset violates oddness)
        scale = centered(out) if self.sign == 1.0 else out
        return (moved - self.sign * f0).reshape(-1, out.shape[-1]), scale

    def wrap(self, fn: Callable[[Tensor], Tensor], input_names: Sequence[str]
             ) -> Callable[[Tensor], Tensor]:
        """The hard version of ``fn``: averaged over the group (see the module docstring)."""
        transforms = self._transforms(input_names, generators_only=False)
        k = len(transforms)
        sign = self.sign

        def symmetrized(z: Tensor) -> Tensor:
            batch = z.shape[0]
            out = fn(torch.cat([z] + [t(z) for t in transforms], dim=0))
            out = out.reshape(k + 1, batch, -1)
            if sign == 1.0:
                return out.mean(0)
            return (out[0] - out[1:].sum(0)) / (k + 1)

        return symmetrized

    def _check(self, system, module) -> None:
        check_input_names(self, module, self.used_inputs)
        if self.mode == "hard" and module.law is None:
            _check_against_rewrites(self, system, module)


def _check_against_rewrites(constraint, system, module) -> None:
    """A hard symmetry on inputs a hard invariance rewrites away must already be implied."""

    consumed = consumed_inputs(module)
    if not set(constraint.used_inputs) & consumed:
        return
    features = invariant_features(module)
    names = module.input_names
    z = random_states(names, seed=1)
    columns = z.unbind(-1)
    implied = True
    for transform in constraint._transforms(names, generators_only=True):
        moved = transform(z).unbind(-1)
        for _, expr in features:
            if not same_values(evaluate(expr, names, system.params, columns),
                               evaluate(expr, names, system.params, moved)):
                implied = False
    if implied and constraint.sign == 1.0:
        return  # the invariant features already have this symmetry
    if implied:
        raise SpecError(f"module {module.name!r}: {constraint.label} contradicts the hard "
                        "invariance constraints: their features are unchanged by this "
                        "transformation, so an odd function of them is zero.")
    raise SpecError(f"module {module.name!r}: hard {constraint.label} and a hard "
                    "RotationInvariant/TranslationInvariant act on the same inputs "
                    f"({', '.join(sorted(set(constraint.used_inputs) & consumed))}); pikan cannot "
                    "enforce both by construction. Hint: make one of them mode='soft'.")


# ------------------------------------------------------------------------------ parity


def _flip(index: int) -> Callable[[Tensor], Tensor]:
    def flip(z: Tensor) -> Tensor:
        sign = torch.ones(z.shape[-1], dtype=z.dtype, device=z.device)
        sign = torch.where(torch.arange(z.shape[-1], device=z.device) == index, -sign, sign)
        return z * sign

    return flip


@register_constraint
@dataclass(frozen=True)
class Even(_FiniteSymmetry):
    """The module is even in one input: ``f(..., -x, ...) = f(..., x, ...)``.

    Parameters
    ----------
    name : str
        A module input.
    mode : "hard" or "soft"
        Hard: ``(f(z) + f(z with x negated)) / 2``. Soft: penalty on the difference.
    weight : float

    Examples
    --------
    >>> Potential("V", inputs=["x", "y"], constraints=[Even("x"), Even("y")])
    """

    name: str

    def __post_init__(self) -> None:
        names_tuple(self.name, f"{type(self).__name__} name")
        super().__post_init__()

    @property
    def used_inputs(self) -> tuple[str, ...]:
        return (self.name,)

    def _label_parts(self) -> list[str]:
        return [self.name]

    def _transforms(self, names, generators_only):
        return [_flip(input_index(names, self.name, self))]

    def _check(self, system, module) -> None:
        super()._check(system, module)
        for other in module.constraints:
            if (isinstance(other, Even) and type(other) is not type(self)
                    and other.name == self.name):
                raise SpecError(f"module {module.name!r}: Even({self.name}) and Odd({self.name}) "
                                "together force the module to zero; keep one of them.")


@register_constraint
@dataclass(frozen=True)
class Odd(Even):
    """The module is odd in one input: ``f(..., -x, ...) = -f(..., x, ...)``.

    Hard: ``(f(z) - f(z with x negated)) / 2``. Not compatible with ``Positive`` (an odd,
    nonnegative function is zero). See :class:`Even` for the parameters.
    """

    sign = -1.0

    # Positive checks that it is not combined with Odd (output.py sits above this file)


# ------------------------------------------------------------------------ permutations


def _permutation(positions: Sequence[Sequence[int]], order: Sequence[int], n: int
                 ) -> Callable[[Tensor], Tensor]:
    index = list(range(n))
    for target, source in zip(positions, (positions[i] for i in order)):
        for t, s in zip(target, source):
            index[t] = s

    def permute(z: Tensor) -> Tensor:
        return z.index_select(-1, torch.tensor(index, device=z.device))

    return permute


@register_constraint
@dataclass(frozen=True, init=False)
class Symmetric(_FiniteSymmetry):
    """The module is invariant under permuting some inputs (or groups of inputs).

    ``Symmetric("x", "y")``: ``f(x, y) = f(y, x)``. ``Symmetric(("x1", "y1"), ("x2", "y2"))``:
    invariant under exchanging the two particles (whole groups move together; all groups
    have the same length).

    Parameters
    ----------
    *names : str, or tuples of str
        At least two inputs, or at least two equal-length groups of inputs.
    mode : "hard" or "soft"
        Hard: the average of ``f`` over all permutations (at most
        ``MAX_HARD_GROUPS = 5`` groups, 120 evaluations). Soft: penalty over the
        generators of the permutation group (a swap and a cycle).
    weight : float
    """

    names: tuple

    def __init__(self, *args, names=None, mode: str = "hard", weight: float = 1.0) -> None:
        if names is not None:  # keyword form, as read back from JSON
            if args:
                raise SpecError("Symmetric: give the inputs either positionally or as names=, "
                                "not both.")
            args = tuple(names)
        names = args
        if len(names) == 1 and isinstance(names[0], (list, tuple)) and all(
                isinstance(g, (list, tuple)) for g in names[0]):
            names = tuple(names[0])  # one list of groups
        if len(names) == 1 and isinstance(names[0], (list, tuple)) and all(
                isinstance(g, str) for g in names[0]) and len(names[0]) > 1:
            names = tuple(names[0])  # names=["x", "y"]
        if all(isinstance(n, str) for n in names):
            normalized: tuple = names_tuple(names, "Symmetric names")
        else:
            normalized = tuple(names_tuple(g, "Symmetric group") for g in names)
            if len({len(g) for g in normalized}) != 1:
                raise SpecError(f"Symmetric: groups must have equal lengths (they are exchanged "
                                f"as wholes), got {[list(g) for g in normalized]}.")
            flat = [n for g in normalized for n in g]
            if len(set(flat)) != len(flat):
                raise SpecError(f"Symmetric: an input appears in two groups: {flat}.")
        if len(normalized) < 2:
            raise SpecError(f"Symmetric needs at least two inputs or groups to exchange, got "
                            f"{list(names)}.")
        object.__setattr__(self, "names", normalized)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "weight", weight)
        self.__post_init__()
        if self.mode == "hard" and len(normalized) > MAX_HARD_GROUPS:
            raise SpecError(f"Symmetric over {len(normalized)} groups: the hard version averages "
                            f"over all {len(normalized)}! permutations; at most "
                            f"{MAX_HARD_GROUPS} groups are supported. Hint: use mode='soft', or "
                            "bindings (one pair law summed over pairs is symmetric by design).")

    @property
    def groups(self) -> tuple[tuple[str, ...], ...]:
        """The exchanged groups, each a tuple of input names."""
        return tuple((g,) if isinstance(g, str) else g for g in self.names)

    @property
    def used_inputs(self) -> tuple[str, ...]:
        return tuple(n for g in self.groups for n in g)

    def _label_parts(self) -> list[str]:
        return [g[0] if len(g) == 1 else "(" + ", ".join(g) + ")" for g in self.groups]

    def _transforms(self, names, generators_only):
        positions = [[input_index(names, n, self) for n in g] for g in self.groups]
        k, n = len(positions), len(names)
        if generators_only:
            orders = [[1, 0, *range(2, k)]] + ([[*range(1, k), 0]] if k > 2 else [])
        else:
            orders = [list(p) for p in itertools.permutations(range(k))][1:]
        return [_permutation(positions, order, n) for order in orders]

