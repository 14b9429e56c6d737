r"""What every constraint shares: mode and weight, where it attaches, and how it measures itself.

A constraint is a small frozen dataclass. Module constraints (``Even("x")``) attach to a
module's ``constraints`` and name the module's inputs; system constraints
(``Conserved("energy")``) attach to ``System(constraints=...)``.

Each constraint reduces itself to a pair of tensors on a batch of states: a *residual*
(zero exactly when the constraint holds) and a *scale* of the same shape (what the
residual is measured against). From them:

.. math::

    \text{violation} = \frac{\operatorname{rms}(r)}{\operatorname{rms}(s)}, \qquad
    \text{penalty} = \operatorname{mean}(r^2)

The violation is scale-free (a number to report and compare). The penalty is the plain
mean square of the residual, in the squared units of the module's output (module
constraints) or of the rate of change (conservation): the same units as a squared error
on that quantity, so a training loss can weigh it like one. (A penalty divided by the
scale would be scale-free too, but it rewards shrinking the scale: near a small
initialization it drives the module to zero.) One signature for all constraints::

    constraint.penalty(model, q, v, module=None) -> Tensor     # scalar, differentiable
    constraint.violation(model, q, v, module=None) -> float    # scale-free, >= 0
    constraint.data_violation(data, model=None) -> float | None

``q, v`` are states of shape ``(batch, n_coords)``. ``module`` names the module a module
constraint belongs to; when omitted it is looked up in ``model.spec`` (an error when the
same constraint is attached to several modules). System constraints ignore it.

A module constraint is measured on the module's *original* inputs (the names the user
wrote), even when a hard constraint rewrote the block's inputs (see
:func:`module_function`), so a hard and a soft version of one constraint are measured the
same way.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from pikan.errors import DataError, SpecError
from pikan.model.torch_expr import to_torch
from pikan.spec.expr import did_you_mean, symbol
from pikan.spec.system import apply_rewrites, feature_map  # noqa: F401 (re-exported)

MODES = ("hard", "soft")


@dataclass(frozen=True)
class Constraint:
    """Base of all constraints (not registered; use a concrete class).

    Parameters
    ----------
    mode : "hard" or "soft"
        ``"hard"``: enforced by construction; ``"soft"``: a weighted penalty in training.
    weight : float
        Multiplies the penalty of a soft constraint in the training loss.
    """

    scope: ClassVar[str] = "module"
    soft_only: ClassVar[bool] = False

    _: KW_ONLY
    mode: str = "hard"
    weight: float = 1.0

    def __post_init__(self) -> None:
        kind = type(self).__name__
        if self.mode not in MODES:
            raise SpecError(f"{kind} mode: expected 'hard' or 'soft', got {self.mode!r}.")
        if self.soft_only and self.mode == "hard":
            raise SpecError(f"{kind}: there is no hard version (no construction enforces it "
                            "exactly); use mode='soft'.")
        if isinstance(self.weight, (bool, str)):
            raise SpecError(f"{kind} weight: expected a number >= 0, got {self.weight!r}.")
        try:
            weight = float(self.weight)
        except (TypeError, ValueError):
            raise SpecError(f"{kind} weight: expected a number >= 0, "
                            f"got {self.weight!r}.") from None
        if not math.isfinite(weight) or weight < 0:
            raise SpecError(f"{kind} weight: expected a finite number >= 0, got {self.weight!r}.")
        object.__setattr__(self, "weight", weight)

    # ----------------------------------------------------------------- description
    @property
    def label(self) -> str:
        """Short readable form, e.g. ``Even(x)``."""
        return f"{type(self).__name__}({', '.join(self._label_parts())})"

    def _label_parts(self) -> list[str]:
        return []

    # ----------------------------------------------------------------- measures
    def residual(self, model, q: Tensor, v: Tensor, module: str | None = None
                 ) -> tuple[Tensor, Tensor]:
        """Residual ``r`` and scale ``s`` on states ``q, v`` of shape ``(batch, n)``.

        Both are tensors with a leading batch axis (not necessarily of one shape); ``r`` is
        zero exactly where the constraint holds. Deterministic: no random sampling.
        """
        raise NotImplementedError

    def penalty(self, model, q: Tensor, v: Tensor, module: str | None = None) -> Tensor:
        """Differentiable penalty ``mean(r**2)``, in the squared units of the residual.

        Parameters
        ----------
        model : pikan.model.compile.Model
        q, v : Tensor of shape (batch, n_coords)
        module : str, optional
            The module a module constraint is attached to (looked up when omitted).

        Returns
        -------
        Tensor, scalar
        """
        q, v = as_states(model, q, v)
        r, _ = self.residual(model, q, v, module)
        return (r**2).mean()

    def violation(self, model, q, v, module: str | None = None) -> float:
        """Scale-free violation ``rms(r) / rms(s)`` on states ``q, v`` (0: satisfied).

        Parameters
        ----------
        model : pikan.model.compile.Model
        q, v : array or Tensor of shape (batch, n_coords)
        module : str, optional
            The module a module constraint is attached to (looked up when omitted).

        Returns
        -------
        float
            0 when the constraint holds; ``inf`` when the scale vanishes but the residual
            does not.
        """
        q, v = as_states(model, q, v)
        with torch.enable_grad():  # some measures differentiate the module
            r, s = self.residual(model, q, v, module)
        return ratio(r.detach(), s.detach())

    def data_violation(self, data, model=None) -> float | None:
        """The same measure on the data itself, where it makes sense (None otherwise)."""
        return None

    # ----------------------------------------------------------------- spec hook
    def check_spec(self, system, module) -> None:
        """Called by :meth:`pikan.spec.system.System.validate`; raises :class:`SpecError`."""
        where = f"system {system.name!r}"
        if self.scope == "module" and module is None:
            raise SpecError(f"{where} constraints: {self.label} is a module constraint; attach it "
                            "to a module (Potential(..., constraints=[...])), not to the system.")
        if self.scope == "system" and module is not None:
            raise SpecError(f"module {module.name!r} constraints: {self.label} is a system "
                            "constraint; attach it to System(..., constraints=[...]).")
        self._check(system, module)

    def _check(self, system, module) -> None:
        pass


def ratio(r: Tensor, s: Tensor) -> float:
    """``rms(r) / rms(s)`` as a float; 0 when both vanish, ``inf`` when only ``s`` does."""
    num = float(torch.sqrt((r**2).mean())) if r.numel() else 0.0
    den = float(torch.sqrt((s**2).mean())) if s.numel() else 0.0
    if num == 0.0:
        return 0.0
    return num / den if den > 0.0 else math.inf


def centered(values: Tensor) -> Tensor:
    """Values minus their mean over the batch (per output column): a scale that ignores
    the additive constant every potential is defined up to."""
    return values - values.mean(0, keepdim=True)


def as_states(model, q, v) -> tuple[Tensor, Tensor]:
    """``q, v`` as tensors of the model's dtype and device, shape ``(batch, n_coords)``."""
    reference = next(iter(model.parameters()), None)
    if reference is None:
        reference = next(iter(model.buffers()), torch.zeros((), dtype=torch.float64))
    out = []
    for name, x in (("q", q), ("v", v)):
        x = torch.as_tensor(x)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[-1] != len(model.coords):
            raise DataError(f"{name} must have shape (batch, {len(model.coords)}) for the "
                            f"coordinates {list(model.coords)}; got {tuple(x.shape)}.")
        out.append(x.to(dtype=reference.dtype, device=reference.device))
    return out[0], out[1]


# --------------------------------------------------------------------- module functions


def attached_module(model, constraint: Constraint, module: str | None) -> str:
    """The name of the module ``constraint`` is attached to in ``model.spec``."""
    spec = model.spec
    if module is not None:
        spec.module(module)  # SpecError for an unknown name
        return module
    owners = [m.name for m in spec.modules if constraint in m.constraints]
    if len(owners) == 1:
        return owners[0]
    if not owners:
        raise SpecError(f"{constraint.label} is not attached to any module of system "
                        f"{spec.name!r}; pass module=<name>.")
    raise SpecError(f"{constraint.label} is attached to several modules ({', '.join(owners)}); "
                    "pass module=<name>.")


@functools.lru_cache(maxsize=256)
def _feature_map(module, system) -> tuple[tuple[str, ...], tuple]:
    """Rewritten input names and their compiled expressions in the original input names."""
    probe = module.replace(inputs=list(module.input_names), bindings=())
    rewritten = apply_rewrites(probe, system)
    names = tuple(module.input_names)
    fns = tuple(to_torch(e, names, system.params) for e in rewritten.inputs.values())
    return tuple(rewritten.input_names), fns


@functools.lru_cache(maxsize=256)
def _binding_functions(module, system) -> tuple:
    names = tuple(system.state_names)
    return tuple(tuple(to_torch(binding[n], names, system.params) for n in module.input_names)
                 for binding in module.input_bindings)


def _rewritten(model, name: str) -> bool:
    return tuple(model.blocks[name].input_names) != tuple(model.spec.module(name).input_names)


def module_function(model, name: str) -> Callable[[Tensor], Tensor]:
    """Module ``name`` as a function of its original inputs, hard constraints applied.

    Returns
    -------
    callable ``f(z) -> out`` with ``z`` of shape ``(batch, n_inputs)`` in the order of the
    spec module's ``input_names`` and ``out`` of shape ``(batch, n_outputs)``.
    """
    block = model.blocks[name]
    if not _rewritten(model, name):
        return block.function
    names, fns = _feature_map(model.spec.module(name), model.spec)
    if names != tuple(block.input_names):
        raise RuntimeError(f"module {name!r}: the block's inputs {list(block.input_names)} do not "
                           f"match the rewritten inputs {list(names)}.")

    def function(z: Tensor) -> Tensor:
        columns = z.unbind(-1)
        return block.function(torch.stack([f(*columns) for f in fns], dim=-1))

    return function


def module_inputs(model, name: str, q: Tensor, v: Tensor) -> Tensor:
    """Original inputs of module ``name`` for every binding: ``(n_bindings * batch, n_inputs)``."""
    if not _rewritten(model, name):
        return model.module_inputs(name, q, v)
    columns = torch.cat([q, v], dim=-1).unbind(-1)
    per_binding = [torch.stack([f(*columns) for f in fns], dim=-1)
                   for fns in _binding_functions(model.spec.module(name), model.spec)]
    return torch.cat(per_binding, dim=0)


def gradients(fn: Callable[[Tensor], Tensor], z: Tensor) -> Tensor:
    """Per-sample input gradients of every output: ``(batch, n_outputs, n_inputs)``.

    Differentiable again (``torch.func.grad`` composes with autograd), so a penalty built
    on it trains.
    """
    n_out = fn(z[:1]).shape[-1]
    return torch.stack([torch.func.grad(lambda z_, k=k: fn(z_)[:, k].sum())(z)
                        for k in range(n_out)], dim=1)


def input_index(names: Sequence[str], name: str, constraint: Constraint) -> int:
    """Position of ``name`` among a block's inputs, or a SpecError naming the constraint."""
    names = tuple(names)
    if name not in names:
        raise SpecError(f"{constraint.label}: the input {name!r} is not among the block's "
                        f"inputs {list(names)}." + did_you_mean(name, names))
    return names.index(name)


def check_input_names(constraint: Constraint, module, names: Sequence[str]) -> None:
    """SpecError unless every name is an input of ``module``."""
    inputs = module.input_names
    for name in names:
        if name not in inputs:
            raise SpecError(
                f"module {module.name!r} constraint {constraint.label}: {name!r} is not an input "
                f"of the module (inputs: {', '.join(inputs)})." + did_you_mean(name, inputs))


def names_tuple(value: Any, what: str) -> tuple[str, ...]:
    """A tuple of distinct strings from a string or a sequence of strings."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Sequence) or not value:
        raise SpecError(f"{what}: expected one or more input names, got {value!r}.")
    for name in value:
        if not isinstance(name, str) or not name:
            raise SpecError(f"{what}: expected input names (strings), got {name!r}.")
    if len(set(value)) != len(value):
        raise SpecError(f"{what}: an input appears twice in {list(value)}.")
    return tuple(value)


def random_states(names: Sequence[str], n: int = 64, seed: int = 0) -> Tensor:
    """Reproducible test states in [0.5, 1.5], shape ``(n, len(names))`` (float64)."""
    generator = torch.Generator().manual_seed(seed)
    return 0.5 + torch.rand(n, len(names), generator=generator, dtype=torch.float64)


def evaluate(expr, names: Sequence[str], params, columns: Sequence[Tensor]) -> Tensor:
    """A sympy expression of ``names`` evaluated on tensors (one per name)."""
    return to_torch(expr, tuple(names), params)(*columns)


def same_values(a: Tensor, b: Tensor, rtol: float = 1e-8) -> bool:
    """Whether two evaluations agree to ``rtol`` relative to their magnitude (NaN == NaN)."""
    scale = max(float(torch.nan_to_num(a).abs().max()), float(torch.nan_to_num(b).abs().max()),
                1e-12)
    return bool(torch.allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True))


def substitute_inputs(expr, binding) -> Any:
    """``expr`` in a module's input names -> expression of the state through one binding."""
    return expr.xreplace({symbol(k): e for k, e in binding.items()})


# ----------------------------------------------------------------------------- data


def trajectories(data) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Per-trajectory ``(q, v)`` arrays in time order, or None when the data has no time order.

    Accepts :class:`pikan.data.trajectories.Trajectories`, ``(q, v, ids)``, or ``(q, v)`` with arrays
    of shape ``(T, batch, n)`` (time first, as :func:`pikan.data.integrate.rk4` returns). A
    plain ``(q, v)`` of shape ``(samples, n)`` is a set of states without time order.
    """
    if hasattr(data, "states") and callable(data.states):
        q, v, ids = data.states()
    elif isinstance(data, (tuple, list)) and len(data) in (2, 3):
        q, v = (_numpy(x) for x in data[:2])
        if len(data) == 2:
            if q.ndim == 3:
                return [(q[:, b], v[:, b]) for b in range(q.shape[1])]
            return None
        ids = _numpy(data[2])
    else:
        raise DataError(f"expected pikan.Trajectories or a tuple (q, v) / (q, v, ids), got "
                        f"{type(data).__name__}.")
    q, v, ids = np.asarray(q), np.asarray(v), np.asarray(ids)
    return [(q[ids == i], v[ids == i]) for i in np.unique(ids)]


def states(data) -> tuple[np.ndarray, np.ndarray]:
    """All states of ``data`` flattened: ``q, v`` of shape ``(samples, n)``."""
    if hasattr(data, "states") and callable(data.states):
        q, v, _ = data.states()
        return np.asarray(q), np.asarray(v)
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        q, v = (_numpy(x) for x in data[:2])
        if q.shape != v.shape or q.ndim not in (2, 3):
            raise DataError(f"q and v must have one shape, (samples, n) or (T, batch, n); got "
                            f"{q.shape} and {v.shape}.")
        return q.reshape(-1, q.shape[-1]), v.reshape(-1, v.shape[-1])
    raise DataError(f"expected pikan.Trajectories or a tuple (q, v) / (q, v, ids), got "
                    f"{type(data).__name__}.")


def _numpy(x) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)
