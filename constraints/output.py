r"""Constraints on a module's output: its sign and its slope.

- ``Positive()``: a scalar module is nonnegative. Hard: ``softplus(f)`` (or ``f**2`` with
  ``transform="square"``); soft: penalty on the negative part. Measure: the relative size
  of the negative part, ``rms(max(-f, 0)) / rms(f)`` (0 when ``f >= 0`` everywhere).
  A learned ``Dissipation`` is Positive by default (:func:`default_constraints`).
- ``Monotonic("x", increasing=True)``: soft only; penalty on the wrong-signed part of
  ``df/dx``. Measure: ``rms(max(-s df/dx, 0)) / rms(df/dx)`` with ``s = +1`` (increasing)
  or ``-1``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass

import torch
from torch import Tensor

from pikan.errors import SpecError
from pikan.spec.system import Dissipation, Dynamics, register_constraint

from .base import (
    Constraint,
    attached_module,
    check_input_names,
    gradients,
    input_index,
    module_function,
    module_inputs,
    names_tuple,
)
from .symmetry import Even

TRANSFORMS = ("softplus", "square")


@register_constraint
@dataclass(frozen=True)
class Positive(Constraint):
    """A scalar module's output is nonnegative: ``f >= 0``.

    Supported on scalar modules (Potential, Dissipation, Lagrangian); a Dynamics output is
    a force vector, whose components have no sign to constrain (SpecError).

    Parameters
    ----------
    transform : "softplus" or "square"
        The hard construction: ``softplus(f)`` (smooth, no spurious zero) or ``f**2``.
    mode : "hard" or "soft"
        Hard: the transform of the block. Soft: penalty ``mean(max(-f, 0)**2)``.
    weight : float

    Examples
    --------
    >>> Dissipation("D", inputs=["v_x"], constraints=[Even("v_x"), Positive()])
    """

    transform: str = "softplus"

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise SpecError(f"Positive transform: expected one of {', '.join(TRANSFORMS)}, got "
                            f"{self.transform!r}.")
        super().__post_init__()

    @property
    def used_inputs(self) -> tuple[str, ...]:
        return ()

    def wrap(self, fn: Callable[[Tensor], Tensor], input_names: Sequence[str]
             ) -> Callable[[Tensor], Tensor]:
        """The hard version: ``softplus(fn(z))`` or ``fn(z)**2``."""
        if self.transform == "square":
            return lambda z: fn(z) ** 2
        return lambda z: torch.nn.functional.softplus(fn(z))

    def residual(self, model, q, v, module=None):
        """The negative part ``max(-f, 0)`` and ``f`` on the module's inputs."""
        name = attached_module(model, self, module)
        f = module_function(model, name)(module_inputs(model, name, q, v))
        return torch.relu(-f), f

    def _check(self, system, module) -> None:
        if isinstance(module, Dynamics):
            raise SpecError(f"module {module.name!r}: Positive() applies to scalar modules "
                            "(Potential, Dissipation, Lagrangian); a Dynamics output is a force "
                            "vector. Hint: put a sign condition on a scalar module instead "
                            "(e.g. a Dissipation, whose force -dD/dv opposes the motion).")
        for other in module.constraints:
            if isinstance(other, Even) and other.sign == -1.0:
                raise SpecError(f"module {module.name!r}: Odd({other.name}) and Positive() "
                                "together force the module to zero; keep one of them.")


def default_constraints(module) -> tuple:
    """Constraints a module gets unless it declares them: a learned Dissipation is Positive.

    Parameters
    ----------
    module : pikan.spec.system.Module

    Returns
    -------
    tuple of constraints to append to ``module.constraints`` before compiling (empty
    for every other module, for a Dissipation with a law, and for one that already has a
    Positive constraint).
    """
    if isinstance(module, Dissipation) and module.law is None and not any(
            isinstance(c, Positive) for c in module.constraints):
        return (Positive(),)
    return ()


@register_constraint
@dataclass(frozen=True)
class Monotonic(Constraint):
    """The module is monotonic in one input (soft only).

    Parameters
    ----------
    name : str
        A module input.
    increasing : bool
        True: ``df/dx >= 0``; False: ``df/dx <= 0``. For a Dynamics, every output.
    mode : "soft"
        There is no hard version.
    weight : float
    """

    soft_only = True

    name: str
    increasing: bool = True
    _: KW_ONLY
    mode: str = "soft"

    def __post_init__(self) -> None:
        names_tuple(self.name, "Monotonic name")
        if not isinstance(self.increasing, bool):
            raise SpecError(f"Monotonic increasing: expected True or False, got "
                            f"{self.increasing!r}.")
        super().__post_init__()

    @property
    def used_inputs(self) -> tuple[str, ...]:
        return (self.name,)

    def _label_parts(self) -> list[str]:
        return [self.name] + ([] if self.increasing else ["decreasing"])

    def residual(self, model, q, v, module=None):
        """The wrong-signed part of ``df/dx`` and ``df/dx`` itself, per output."""
        name = attached_module(model, self, module)
        fn = module_function(model, name)
        z = module_inputs(model, name, q, v)
        index = input_index(model.spec.module(name).input_names, self.name, self)
        slopes = gradients(fn, z)[:, :, index]
        sign = 1.0 if self.increasing else -1.0
        return torch.relu(-sign * slopes), slopes

    def _check(self, system, module) -> None:
        check_input_names(self, module, (self.name,))

        for other in module.constraints:
            if isinstance(other, Even) and other.name == self.name and other.sign == 1.0:
                raise SpecError(f"module {module.name!r}: {self.label} and Even({self.name}) "
                                f"together make the module constant in {self.name}; keep one.")
            if isinstance(other, Monotonic) and other.name == self.name and (
                    other.increasing != self.increasing):
                raise SpecError(f"module {module.name!r}: Monotonic({self.name}) both increasing "
                                f"and decreasing makes the module constant in {self.name}; keep "
                                "one.")
