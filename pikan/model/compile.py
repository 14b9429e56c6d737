"""Spec -> model: every module becomes a block, the blocks feed the equations of motion.

:func:`compile` turns a :class:`~pikan.spec.system.System` into a :class:`Model` (a
``torch.nn.Module``). Each module becomes a :class:`Block`: a :class:`~pikan.kan.KAN` when
it is learned, or the compiled law when it has one. A block reads its named inputs from
the state through its bindings (feature expressions), and its output enters the equations
of motion according to its kind (see :mod:`pikan.model.mechanics`): a ``Potential`` through the
gradient node ``-dV/dq`` (derived by autograd, never learned separately), a ``Dynamics``
directly as a force on its output coordinates, a ``Dissipation`` through ``-dD/dv`` and a
``Lagrangian`` through the Euler--Lagrange equations.

Hard constraints hook in here. A module constraint object may define

- ``rewrite(module, system) -> module``: a spec-level change applied before the block is
  built (e.g. feed invariants instead of components);
- ``wrap(fn, input_names) -> fn``: an output-level change of the block function
  ``fn(z: (batch, n_inputs)) -> (batch, n_outputs)`` (e.g. symmetrize, softplus).

Both are used only when ``constraint.mode == "hard"``. A system constraint may define
``rewrite_module(module, system) -> module`` to be kept module by module (a conserved
weighted sum of a first-order system projects each learned Flow's rates).

Identifiability
---------------
The data fix the total force; two learned modules that could both produce the same term
would trade it freely. Two conventions make the common pairs identifiable by
construction (each module kind documents its option to turn it off):

- a learned velocity-only :class:`~pikan.spec.system.Dynamics` vanishes at rest, ``F(z) - F(z_0)``
  (``vanish_at_rest``): a constant force belongs to a potential;
- a learned :class:`~pikan.spec.system.Dissipation` is passive (``passive``, see
  :func:`passive_dissipation`): ``D(0) = 0``, ``dD/dv(0) = 0``, ``v . dD/dv >= 0``.

Pairs that can still trade (two learned potentials on a shared coordinate, a potential
and a position-dependent Dynamics, ...) are listed by :func:`exchanges` as
:class:`Exchange` records, kept on the model as ``Model.exchanges``, and
:func:`compile` warns once per pair (:class:`~pikan.errors.IdentifiabilityWarning`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import sympy
import torch
from torch import Tensor, nn

from pikan.constraints import Positive, default_constraints
from pikan.errors import IdentifiabilityWarning, SpecError
from pikan.kan.network import KAN
from pikan.model import mechanics
from pikan.model.torch_expr import to_module, to_torch
from pikan.spec.expr import parse
from pikan.spec.identifiability import exchanges
from pikan.spec.system import (
    VECTOR_KINDS,
    Dissipation,
    Dynamics,
    Lagrangian,
    Module,
    Potential,
    System,
)

_SCALAR_KINDS = (Potential, Dissipation, Lagrangian)

_SCALES = ("input_scale", "output_scale")
"""The buffers of a KAN block's normalisation (see :class:`Block`)."""


def _softplus_inverse(value: float) -> float:
    return float(torch.log(torch.expm1(torch.tensor(value, dtype=torch.float64))))


PASSIVE_DEGREES = (2, 3, 4)
"""Degrees in the velocities of the passive Dissipation's terms (:func:`passive_dissipation`):
linear (``c v^2 / 2``), quadratic (``c |v|^3 / 3``) and cubic (``c v^4 / 4``) damping."""


def homogeneity(exprs: Sequence[sympy.Expr], velocities: Sequence[str]) -> float | None:
    """The common degree ``p > 0`` with ``e(lambda v) = lambda^p e(v)`` for every expression,
    or None when they are not all positively homogeneous of one degree in the velocities.

    Parameters
    ----------
    exprs : sequence of sympy.Expr
        Feature expressions of the velocities (params already substituted).
    velocities : sequence of str
    """
    lam = sympy.Symbol("lambda_", positive=True)
    scale = {sympy.Symbol(v): lam * sympy.Symbol(v) for v in velocities}
    degree = None
    for e in exprs:
        if e.is_zero or not {s.name for s in e.free_symbols} & set(velocities):
            return None
        ratio = sympy.simplify(e.xreplace(scale) / e)
        if ratio.free_symbols - {lam}:
            return None
        p = sympy.simplify(lam * sympy.diff(ratio, lam) / ratio)
        if not p.is_number or not p.is_positive or (degree is not None and p != degree):
            return None
        degree = p
    return float(degree) if degree is not None else None


def passive_dissipation(a: Callable[[Tensor], Tensor], z: Tensor,
                        degrees: Sequence[float]) -> Tensor:
    r"""A Rayleigh function that is passive for any ``a``: the learned Dissipation block.

    .. math::
        D(z) = \sum_k \frac{a_k(u)^2}{\alpha_k} |z|^{\alpha_k}, \qquad u = z / |z|,

    a sum of nonnegative terms, each positively homogeneous of degree
    :math:`\alpha_k > 0` in ``z``. Euler's identity gives the rate along a ray exactly,
    for any ``a`` (any weights):
    .. math:: z \cdot \nabla D = \sum_k a_k(u)^2 |z|^{\alpha_k} \ge 0,

    and ``D >= 0``, ``D(0) = 0``; with every :math:`\alpha_k > 1`, ``dD/dz(0) = 0``
    (``|dD/dz| = O(|z|^{\alpha_k - 1})``). On a velocity ``v`` (one input), the terms
    are the damping laws: :math:`a_2^2 v^2 / 2` is linear damping (force
    :math:`-a_2^2 v`), :math:`a_3^2 |v|^3 / 3` quadratic (:math:`-a_3^2 |v| v`); the
    coefficients may differ for ``v > 0`` and ``v < 0`` (``u = \pm 1``), and in several
    dimensions they depend on the direction (``v^T C v / 2 = |v|^2 (u^T C u) / 2``).

    ``u`` is taken as ``z / |z|`` where ``z != 0`` and 0 at ``z = 0``, and ``|z|`` through
    a masked square root, so value, gradient, Hessian and ``torch.func`` transforms are
    finite at rest (no ``0 / 0``).

    Why this form: ``v^T C(v) v / 2`` with ``C >= 0`` has the rate
    ``v^T C v + v^T (dC/dv . v) v / 2``, not signed; ``|v|^2 softplus(K(v))`` has the
    rate ``|v|^2 (2 softplus(K) + sigma(K) v . dK/dv)``, not signed either; the ray
    integral ``int_0^1 g(s v)/s ds`` of ``g >= 0`` has the rate ``g(v)``, but only up to
    quadrature error, and on random KANs a 6-node Gauss--Legendre rule gave negative
    rates on 1-30 % of the states. Homogeneous terms are exactly passive; the price is a
    radial profile that is a sum of powers (the direction dependence is learned).

    Parameters
    ----------
    a : callable
        ``(m, d) -> (m, len(degrees))``: the coefficient functions of the direction
        (the block's KAN with its hard wraps).
    z : Tensor of shape (batch, d)
        The module's inputs (velocities, or features of them).
    degrees : sequence of float
        The degrees :math:`\alpha_k` in ``z``.

    Returns
    -------
    Tensor of shape (batch, 1)
    """
    r2 = (z * z).sum(-1)
    moving = r2 > 0
    r2_safe = torch.where(moving, r2, torch.ones_like(r2))
    u = z / r2_safe.sqrt()[:, None]
    coefficients = a(u) ** 2
    terms = [torch.where(moving, r2_safe ** (alpha / 2), torch.zeros_like(r2)) / alpha
             for alpha in degrees]
    return (coefficients * torch.stack(terms, dim=-1)).sum(-1, keepdim=True)


def vanishing_at_rest(fn: Callable[[Tensor], Tensor], z: Tensor,
                      rest: Sequence[float] | Tensor) -> Tensor:
    """``fn(z) - fn(z_0)``: a force that is zero at rest, ``z_0`` the inputs at ``v = 0``.

    One call of ``fn`` on the batch with ``z_0`` appended (no in-place update, so
    ``torch.func`` transforms see one pure function).

    Parameters
    ----------
    fn : callable ``(m, d) -> (m, n_out)``
    z : Tensor of shape (batch, d)
    rest : sequence of d floats, or Tensor of shape (1, d)

    Returns
    -------
    Tensor of shape (batch, n_out)
    """
    z0 = rest if isinstance(rest, Tensor) else torch.tensor(list(rest), dtype=z.dtype,
                                                             device=z.device)[None]
    out = fn(torch.cat([z, z0], dim=0))
    return out[:-1] - out[-1:]


_DENSE_LIMIT = 1 << 16
"""Binding matrices up to this many entries are one dense product; larger sparse ones
(a chain of N masses has an (2N, N + 1) matrix with two entries per column) gather."""


class _Bindings(nn.Module):
    """Maps a state to a block's inputs, for every binding.

    Linear bindings (plain coordinates, differences such as ``x2 - x1``) are one matrix
    product; other feature expressions are compiled expressions evaluated per binding.
    """

    def __init__(self, module: Module, system: System) -> None:
        super().__init__()
        names = list(system.state_names)
        symbols = [sympy.Symbol(n) for n in names]
        params = {sympy.Symbol(k): v for k, v in system.params.items()}
        bindings = [[sympy.sympify(b[name]).xreplace(params) for name in module.input_names]
                    for b in module.input_bindings]
        self.n_bindings, self.n_inputs = len(bindings), len(module.input_names)
        state_symbols = set(symbols)
        terms = [[self._linear_terms(e, state_symbols) for e in b] for b in bindings]
        linear = all(t is not None for b in terms for t in b)
        self.linear, self.sparse = linear, False
        if linear:
            index = {n: i for i, n in enumerate(names)}
            matrix = torch.zeros(len(names), self.n_bindings * self.n_inputs, dtype=torch.float64)
            offset = torch.zeros(self.n_bindings * self.n_inputs, dtype=torch.float64)
            for k, row in enumerate(terms):
                for j, (coeffs, constant) in enumerate(row):
                    col = k * self.n_inputs + j
                    offset[col] = constant
                    for name, c in coeffs.items():
                        matrix[index[name], col] = c
            self.register_buffer("offset", offset)
            nonzero = (matrix != 0).sum(0)
            self.sparse = matrix.numel() > _DENSE_LIMIT and int(nonzero.max()) * 8 < len(names)
            if self.sparse:  # many bindings of few coordinates each (a long chain): gather
                width = max(int(nonzero.max()), 1)
                index = torch.zeros(matrix.shape[1], width, dtype=torch.long)
                coef = torch.zeros(matrix.shape[1], width, dtype=torch.float64)
                for col in range(matrix.shape[1]):
                    rows = torch.nonzero(matrix[:, col]).flatten()
                    index[col, :len(rows)] = rows
                    coef[col, :len(rows)] = matrix[rows, col]
                self.register_buffer("index", index)
                self.register_buffer("coef", coef)
            else:
                self.register_buffer("matrix", matrix)
            self._exprs = []
        else:
            self._exprs = [[to_torch(e, names) for e in exprs] for exprs in bindings]

    @staticmethod
    def _linear_terms(expr: sympy.Expr,
                      symbols: set[sympy.Symbol]) -> tuple[dict[str, float], float] | None:
        """``({name: coefficient}, constant)`` of an affine expression of the state, else None.

        By derivatives rather than ``sympy.Poly`` over every state symbol: a Poly in 2,000
        generators (a chain of 1,000 masses) recurses once per generator and overflows the
        stack.
        """
        free = expr.free_symbols
        if not free <= symbols:
            return None
        coeffs = {}
        for s in free:
            d = sympy.diff(expr, s)
            if not d.is_number:
                return None
            coeffs[s.name] = float(d)
        constant = sympy.sympify(expr.xreplace({s: 0 for s in free}))
        return (coeffs, float(constant)) if constant.is_number else None

    def forward_and_pullback(self, state: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """Inputs (as :meth:`forward`) and the map from a gradient on them,
        ``(n_bindings, batch, n_inputs)``, to the gradient on the state ``(batch, 2n)``."""
        if self.linear and not self.sparse:  # the transposed matrix, no autograd needed
            z = self(state)
            matrix = self.matrix.to(state.dtype)
            return z, lambda g: g.transpose(0, 1).reshape(state.shape[0], -1) @ matrix.t()
        z, pullback = torch.func.vjp(self, state)
        return z, lambda g: pullback(g)[0]

    def forward(self, state: Tensor) -> Tensor:
        """State ``(batch, 2n)`` -> inputs ``(n_bindings, batch, n_inputs)``."""
        if self.linear and self.sparse:
            z = (state[:, self.index] * self.coef.to(state.dtype)).sum(-1) \
                + self.offset.to(state.dtype)
            return z.reshape(-1, self.n_bindings, self.n_inputs).transpose(0, 1)
        if self.linear:
            z = state @ self.matrix.to(state.dtype) + self.offset.to(state.dtype)
            return z.reshape(-1, self.n_bindings, self.n_inputs).transpose(0, 1)
        columns = state.unbind(-1)
        return torch.stack([torch.stack([f(*columns) for f in exprs], dim=-1)
                            for exprs in self._exprs])


class Block(nn.Module):
    """What a module compiles to: a KAN (learned) or a compiled law (fixed).

    Call it on the module's named inputs: ``block(z)`` with ``z`` of shape
    ``(batch, n_inputs)`` in the order of ``input_names``, or ``block(x=..., y=...)``.
    Scalar modules (Potential, Dissipation, Lagrangian) return ``(batch,)``; a Dynamics
    block returns ``(batch, n_outputs)``.

    Attributes
    ----------
    name, kind : str
    input_names : tuple of str
    output_names : tuple of str
        Coordinates a Dynamics block pushes on; ``(name,)`` for scalar modules.
    core : KAN or ExprModule or None
    passive : bool
        A Dissipation built passive (:func:`passive_dissipation`): while learned, the
        block is ``D(z)`` of its KAN, whose inputs are the direction ``z / |z|`` placed
        in its grid box (see :meth:`kan_inputs`) and whose outputs are one coefficient
        per degree.
    passive_degrees : tuple of float
        The degrees in ``z`` of the passive terms (empty when not passive).
    rest_inputs : tuple of float or None
        For a velocity-only Dynamics that vanishes at rest: its inputs at ``v = 0``; while
        learned, the block is ``F(z) - F(rest_inputs)`` (:func:`vanishing_at_rest`), ``F``
        the KAN with its hard wraps. None otherwise.
    wrappers : list
        The module's hard constraints that wrap its function (``constraint.wrap``).
    field_slots, velocity_slots : list of int
        For a learned gyroscopic Dynamics: the positions in ``input_names`` of the field
        inputs (what its KAN reads, see :meth:`field_inputs`) and of its outputs'
        velocities. Unset for other blocks.
    input_scale, output_scale : Tensor, shapes (kan in_dim,) and (kan out_dim,)
        Buffers of a block learned by a KAN (absent once it holds a law): the KAN reads its
        inputs divided by ``input_scale`` and its outputs are multiplied by
        ``output_scale``, ``F(z) = output_scale * KAN(z / input_scale)``, so that data in
        any units train a KAN that works at order 1 while the block stays a function of
        the data's units. Ones (no change) unless fit normalised the block
        (:func:`pikan.train.normalise.normalise`); a gyroscopic field keeps ones.
    """

    def __init__(self, module: Module, system: System, dtype: torch.dtype,
                 seed: int | None = None) -> None:
        super().__init__()
        self.name, self.kind = module.name, module.kind
        self.spec = module
        self.input_names = tuple(module.input_names)
        self.scalar = isinstance(module, _SCALAR_KINDS)
        self.output_names = (module.name,) if self.scalar else tuple(module.outputs)
        self.gyroscopic = isinstance(module, Dynamics) and module.gyroscopic
        self.output_velocities = tuple(
            system.velocities[system.coords.index(c)] for c in module.outputs
        ) if self.gyroscopic else ()
        self.params = dict(system.params)
        self.bindings = _Bindings(module, system)
        self._state_size = 2 * len(system.coords)
        self.law_inputs = self.input_names
        self.passive = isinstance(module, Dissipation) and module.passive
        self.passive_degrees = self._passive_degrees(module, system) if self.passive else ()
        if module.law is not None:
            self.core = self._law_core(module.laws, trainable=False)
            self.gyroscopic_learned = False
        else:
            self.core = self._kan_core(module, system, seed)
            if isinstance(self.core, KAN):
                self.register_buffer("input_scale", torch.ones(self.core.in_dim, dtype=dtype))
                self.register_buffer("output_scale",
                                     torch.ones(self.core.out_dim, dtype=dtype))
        self.core.to(dtype)
        hard = [c for c in module.constraints if getattr(c, "mode", "hard") == "hard"]
        self.wrappers = [c for c in hard if hasattr(c, "wrap")]
        self.rest_inputs = self._rest_inputs(module, system)

    @staticmethod
    def _passive_degrees(module: Module, system: System) -> tuple[float, ...]:
        """Degrees in ``z`` of the passive terms: :data:`PASSIVE_DEGREES` in ``v`` divided by
        the inputs' common homogeneity degree (1 when they have none: then the terms have
        these degrees in ``z``, and passivity holds along rays in ``z``)."""
        params = {sympy.Symbol(k): v for k, v in system.params.items()}
        exprs = [sympy.sympify(e).xreplace(params) for b in module.input_bindings
                 for e in b.values()]
        p = homogeneity(exprs, system.velocities) or 1.0
        return tuple(d / p for d in PASSIVE_DEGREES)

    def _rest_inputs(self, module: Module, system: System) -> tuple[float, ...] | None:
        """The inputs at ``v = 0`` of a velocity-only Dynamics that vanishes at rest."""
        if not (isinstance(module, Dynamics) and module.vanish_at_rest and not self.gyroscopic):
            return None
        exprs = [sympy.sympify(module.input_bindings[0][n]) for n in module.input_names]
        depends = {s.name for e in exprs for s in e.free_symbols}
        velocities, params = set(system.velocities), set(system.params)
        if not depends & velocities or not depends <= velocities | params:
            return None
        at_rest = {sympy.Symbol(k): v for k, v in system.params.items()}
        at_rest.update({sympy.Symbol(v): 0 for v in system.velocities})
        values = []
        for name, e in zip(module.input_names, exprs):
            value = sympy.sympify(e.xreplace(at_rest))
            number = complex(value) if value.is_number else math.nan
            if number.imag != 0 or not math.isfinite(number.real):
                raise SpecError(
                    f"module {module.name!r}: a velocity-only Dynamics vanishes at rest, "
                    f"F(z) - F(z at v = 0), but its input {name!r} = {e} is {value} at v = 0. "
                    "Hint: use features that are finite at rest, or vanish_at_rest=False.")
            values.append(number.real)
        return tuple(values)

    # ------------------------------------------------------------------ construction
    def _law_core(self, laws: Sequence[sympy.Expr], trainable: bool) -> nn.Module:
        if self.gyroscopic and set(self.output_velocities) <= set(self.input_names):
            velocities = [sympy.Symbol(v) for v in self.output_velocities]
            entries = field_entries(laws, velocities)
            if entries is not None:  # F = B v: B's constants, once for every output
                return _LawField([to_module(b, self.input_names, self.params,
                                            trainable_constants=trainable) for b in entries],
                                 [self.input_names.index(v) for v in self.output_velocities],
                                 velocities)
        return nn.ModuleList([to_module(law, self.input_names, self.params,
                                        trainable_constants=trainable) for law in laws])

    def law_exprs(self) -> list[sympy.Expr]:
        """The fixed law's expression per output, with its current constants."""
        if isinstance(self.core, _LawField):
            return self.core.compose([entry.expr() for entry in self.core])
        return [piece.expr() for piece in self.core]

    def law_templates(self) -> tuple[list[sympy.Expr], list[sympy.Dummy]]:
        """The fixed law's expression per output with its trainable constants as dummies,
        and the dummies in the order of the constants' parameters (a gyroscopic law's
        field constants appear in every output they enter, as one dummy)."""
        pieces = list(self.core)
        lifted = [piece._lifted for piece in pieces]
        if isinstance(self.core, _LawField):
            lifted = self.core.compose(lifted)
        return lifted, [d for piece in pieces for d in piece._dummies]

    def _kan_core(self, module: Module, system: System, seed: int | None) -> nn.Module:
        self.gyroscopic_learned = self.gyroscopic
        if self.gyroscopic:
            velocities = dict(zip(system.velocities, system.coords))
            moving = [velocities[n] for n in self.input_names if n in velocities]
            if sorted(moving) != sorted(module.outputs):
                raise SpecError(
                    f"module {module.name!r}: a learned gyroscopic Dynamics computes F = B(q) v "
                    f"on its outputs, so its velocity inputs must be exactly the velocities of "
                    f"its outputs {list(module.outputs)}; got velocity inputs "
                    f"{[n for n in self.input_names if n in velocities]}. Hint: inputs="
                    f"{[system.velocities[system.coords.index(c)] for c in module.outputs]} "
                    "plus any positions B depends on.")
            self.velocity_slots = [self.input_names.index(
                system.velocities[system.coords.index(c)]) for c in module.outputs]
            self.field_slots = [i for i, n in enumerate(self.input_names) if n not in velocities]
            n_pairs = len(module.outputs) * (len(module.outputs) - 1) // 2
            if not self.field_slots:
                generator = torch.Generator().manual_seed(seed or 0)
                return _ConstantField(0.1 * torch.randn(n_pairs, generator=generator,
                                                        dtype=torch.float64))
            widths = [len(self.field_slots), *self._hidden(module), n_pairs]
            names = [self.input_names[i] for i in self.field_slots]
        else:
            n_out = 1 if self.scalar else len(module.outputs)
            widths = [len(self.input_names), *self._hidden(module), n_out]
            names = list(self.input_names)
        outputs = list(self.output_names)
        if self.passive:  # one coefficient of the direction per degree (passive_dissipation)
            outputs = [f"a{k}" for k in range(len(self.passive_degrees))]
            widths[-1] = len(outputs)
        return KAN(widths, grid=module.grid, order=module.order, seed=seed,
                   input_names=names, output_names=outputs if not self.gyroscopic else None,
                   jump=module.jump)

    @staticmethod
    def _hidden(module: Module) -> list:
        hidden = list(module.hidden)
        if module.mult and hidden:
            hidden[0] = [hidden[0], module.mult]
        return hidden

    def kan_inputs(self, z: Tensor) -> Tensor:
        """What the block's KAN reads, from the module's inputs ``(batch, n_inputs)``.

        The inputs themselves, except for a learned gyroscopic Dynamics (its field
        inputs, the positions) and a passive Dissipation (the direction ``z / |z|``, 0 at
        rest, placed in the first layer's grid box: ``-1 -> lo``, ``1 -> hi`` per input).
        Use it to refine, prune or regularize the KAN on data. A passive Dissipation's
        grid is not moved by :meth:`Model.adapt_grids`: the direction always lies inside
        it, and moving it would change the function.
        """
        if self.gyroscopic_learned:
            return self.field_inputs(z)
        if self.passive and self.kan is not None:
            r2 = (z * z).sum(-1, keepdim=True)
            return self._grid_point(z / torch.where(r2 > 0, r2, torch.ones_like(r2)).sqrt())
        if self.kan is not None:
            return z / self.input_scale
        return z

    def field_inputs(self, z):
        """The field inputs of a learned gyroscopic Dynamics, ``z[:, field_slots]`` (a
        tensor or an array of the module's inputs, ``(batch, n_inputs)``)."""
        return z[:, self.field_slots]

    def _grid_point(self, u: Tensor) -> Tensor:
        """A direction ``u`` in ``[-1, 1]^d`` mapped into the first layer's grid box
        ``[lo, hi]`` per input (``u = -1 -> lo``, ``u = 1 -> hi``)."""
        layer = self.kan.layers[0]
        lo, hi = layer.knots[:, layer.order], layer.knots[:, -layer.order - 1]
        return (lo + hi).to(u.dtype) / 2 + (hi - lo).to(u.dtype) / 2 * u

    @property
    def is_learned(self) -> bool:
        """True when the block is a KAN (or a learned gyroscopic field)."""
        return isinstance(self.core, (KAN, _ConstantField))

    @property
    def kan(self) -> KAN | None:
        return self.core if isinstance(self.core, KAN) else None

    def fix(self, law: sympy.Expr | Sequence[sympy.Expr], trainable: bool = True) -> None:
        """Replace the core by a compiled law whose constants are trainable parameters."""
        laws = list(law) if isinstance(law, (list, tuple)) else [law]
        if len(laws) != len(self.output_names) and not self.scalar:
            raise SpecError(f"module {self.name!r}: fix needs {len(self.output_names)} "
                            f"expressions (one per output), got {len(laws)}.")
        dtype = next(iter(self.bindings.buffers()), torch.zeros((), dtype=torch.float64)).dtype
        self.core = self._law_core(laws, trainable).to(dtype)
        self.gyroscopic_learned = False
        for name in _SCALES:  # a law is in the data's units: the block of a compiled law
            self._buffers.pop(name, None)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # weights saved before blocks had scales (an older pikan) trained without them
        for name in _SCALES:
            if name in self._buffers and prefix + name not in state_dict:
                state_dict[prefix + name] = torch.ones_like(self._buffers[name])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ evaluation
    def _raw(self, z: Tensor) -> Tensor:
        """Core on inputs ``(batch, n_inputs)`` -> ``(batch, n_outputs)``."""
        if isinstance(self.core, _LawField):
            return self.core(z)
        if isinstance(self.core, nn.ModuleList):
            columns = z.unbind(-1)
            return torch.stack([law(*columns) for law in self.core], dim=-1)
        if self.gyroscopic_learned:
            field = self.core(z[:, self.field_slots]) if self.field_slots else \
                self.core(z[:, :0])
            return _antisymmetric_apply(field, z[:, self.velocity_slots])
        return self.core(z / self.input_scale) * self.output_scale

    def function(self, z: Tensor) -> Tensor:
        """The module function with hard constraints applied: ``(batch, n_in) -> (batch, n_out)``."""
        fn = self._raw
        if self.passive and self.kan is not None:
            # the KAN reads the direction placed in its grid box, wherever training puts
            # the grid; the wraps below then act on directions (a sign flip of u is a flip
            # of v), so Even, Odd and Symmetric keep their meaning on D
            fn = lambda u: self._raw(self._grid_point(u))  # noqa: E731
        if self.is_learned:  # a law (given, or fixed after extraction) is the module's output
            for constraint in self.wrappers:
                fn = constraint.wrap(fn, self.input_names)
            if self.passive:
                return passive_dissipation(fn, z, self.passive_degrees)
            if self.rest_inputs is not None:
                # the features at rest through the same compiled bindings as the data's
                # (a float constant in a feature then cancels to the last bit)
                rest = self.bindings(z.new_zeros(1, self._state_size))[0]
                return vanishing_at_rest(fn, z, rest)
        return fn(z)

    def forward(self, z: Tensor | None = None, **named: Tensor) -> Tensor:
        if z is None:
            missing = [n for n in self.input_names if n not in named]
            if missing or set(named) - set(self.input_names):
                raise SpecError(f"module {self.name!r} takes inputs {list(self.input_names)}; "
                                f"got {sorted(named)}.")
            z = torch.stack([torch.as_tensor(named[n]) for n in self.input_names], dim=-1)
        if z.shape[-1] != len(self.input_names):
            raise SpecError(f"module {self.name!r} takes {len(self.input_names)} inputs "
                            f"{list(self.input_names)}; got a tensor of shape {tuple(z.shape)}.")
        out = self.function(z.reshape(-1, z.shape[-1]))
        out = out.reshape(*z.shape[:-1], out.shape[-1])
        return out[..., 0] if self.scalar else out

    def inputs(self, state: Tensor) -> Tensor:
        """Inputs for every binding: ``(n_bindings, batch, n_inputs)`` from a state ``(batch, 2n)``."""
        return self.bindings(state)

    @property
    def has_state_gradient(self) -> bool:
        """:meth:`value_and_state_gradient` applies: a scalar module whose output is its KAN
        unwrapped (no hard output constraint, not a passive Dissipation), with spline edges
        only."""
        kan = self.kan
        return (self.scalar and kan is not None and not self.wrappers and not self.passive
                and kan.has_input_gradient)

    def value_and_state_gradient(self, state: Tensor) -> tuple[Tensor, Tensor]:
        """Output summed over bindings ``(batch,)`` and its gradient with respect to the state
        ``(batch, 2n)``, the KAN's part written out (:meth:`KAN.value_and_input_gradient`):
        a force from it trains with a first-order backward pass."""
        if not self.has_state_gradient:
            raise ValueError(f"module {self.name!r}: value_and_state_gradient needs a scalar "
                             "module with a spline-only KAN and no hard output constraint")
        z, pullback = self.bindings.forward_and_pullback(state)
        n_bind, batch = z.shape[0], z.shape[1]
        value, gradient = self.kan.value_and_input_gradient(
            z.reshape(n_bind * batch, -1) / self.input_scale)
        value = value * self.output_scale
        gradient = gradient * (self.output_scale / self.input_scale)
        return value.reshape(n_bind, batch).sum(0), pullback(gradient.reshape(z.shape))

    def evaluate(self, state: Tensor) -> Tensor:
        """Output summed over bindings: ``(batch, n_outputs)`` from a state ``(batch, 2n)``."""
        z = self.inputs(state)
        n_bind, batch = z.shape[0], z.shape[1]
        out = self.function(z.reshape(n_bind * batch, -1))
        return out.reshape(n_bind, batch, -1).sum(0)


class _ConstantField(nn.Module):
    """A learned constant antisymmetric field (e.g. a uniform magnetic field)."""

    def __init__(self, init: Tensor) -> None:
        super().__init__()
        self.values = nn.Parameter(init)

    def forward(self, z: Tensor) -> Tensor:
        return self.values.expand(z.shape[0], -1)


def field_entries(exprs: Sequence[sympy.Expr], velocities: Sequence[sympy.Symbol]
                  ) -> list[sympy.Expr] | None:
    """The entries ``B_ij`` (i < j, row by row) of a force ``F = B v`` with ``B``
    antisymmetric and free of the velocities, read off the law's outputs ``exprs`` (one per
    velocity); None when the law is not of that form."""
    n = len(velocities)
    if len(exprs) != n:
        return None
    moving = set(velocities)
    entries = {}
    for i in range(n):
        for j in range(i + 1, n):
            entry = sympy.diff(exprs[i], velocities[j])
            if entry.free_symbols & moving:
                return None
            entries[i, j] = entry
    for i in range(n):
        rebuilt = sum((entries[i, j] * velocities[j] for j in range(i + 1, n)),
                      sympy.Integer(0))
        rebuilt -= sum((entries[j, i] * velocities[j] for j in range(i)), sympy.Integer(0))
        if sympy.expand(exprs[i] - rebuilt) != 0:
            return None
    return [entries[i, j] for i in range(n) for j in range(i + 1, n)]


class _LawField(nn.Module):
    """A gyroscopic Dynamics law held as its field, ``F = B v`` with ``B`` antisymmetric:
    one compiled expression per entry ``B_ij`` (i < j). Each constant of the field is one
    parameter however many outputs it enters, so a refit or an estimate of the constants
    moves them together and the law keeps doing no work (fitted output by output, the
    two components of ``(1.37 + 0.41 x) (v_y, -v_x)`` drift apart).

    Iterating gives the entries' modules (their ``constants`` are the law's).
    """

    def __init__(self, entries: Sequence[nn.Module], velocity_slots: Sequence[int],
                 velocities: Sequence[sympy.Symbol]) -> None:
        super().__init__()
        self.entries = nn.ModuleList(entries)
        self.velocity_slots = list(velocity_slots)
        self.velocities = list(velocities)

    def __iter__(self):
        return iter(self.entries)

    def forward(self, z: Tensor) -> Tensor:
        columns = z.unbind(-1)
        upper = torch.stack([entry(*columns).expand(z.shape[0]) for entry in self.entries],
                            dim=-1)
        return _antisymmetric_apply(upper, z[:, self.velocity_slots])

    def compose(self, fields: Sequence[sympy.Expr]) -> list[sympy.Expr]:
        """The outputs ``F_i = sum_j B_ij v_j`` from the entries' expressions, each entry's
        terms times its velocity (one term per field term: a term can be weighed alone)."""
        n = len(self.velocities)
        upper = dict(zip([(i, j) for i in range(n) for j in range(i + 1, n)], fields))
        out = []
        for i in range(n):
            terms = []
            for j in range(n):
                if j == i:
                    continue
                sign, entry = (1, upper[i, j]) if i < j else (-1, upper[j, i])
                terms += [sign * term * self.velocities[j]
                          for term in sympy.Add.make_args(entry)]
            out.append(sympy.Add(*terms))
        return out


def _antisymmetric_apply(upper: Tensor, v: Tensor) -> Tensor:
    """``B v`` with ``B`` antisymmetric from its upper-triangle entries ``(batch, n(n-1)/2)``."""
    n = v.shape[-1]
    rows, cols = torch.triu_indices(n, n, offset=1, device=v.device)
    b = torch.zeros(v.shape[0], n, n, dtype=v.dtype, device=v.device)
    b = b.index_put((torch.arange(v.shape[0], device=v.device)[:, None], rows, cols), upper)
    b = b - b.transpose(1, 2)
    return (b @ v[..., None])[..., 0]


class Model(nn.Module):
    """A compiled system: blocks plus the equations of motion.

    Attributes
    ----------
    spec : System
    coords, velocities : tuple of str
    modules_by_name : dict of str to Block
    exchanges : list of Exchange
        Every pair of learned modules that could trade a term, with the convention that
        fixes the split or None (see :func:`exchanges`).
    """

    def __init__(self, spec: System, dtype: torch.dtype = torch.float64,
                 seed: int | None = 0) -> None:
        super().__init__()
        self.spec = spec
        self.coords, self.velocities = tuple(spec.coords), tuple(spec.velocities)
        n = len(self.coords)
        blocks = {}


        for index, module in enumerate(spec.modules):
            if isinstance(module, Dissipation) and module.passive:
                # D >= 0 holds by construction; a softplus would break D(0) = 0 and the
                # exact c v^2 / 2 (see Dissipation.passive)
                module = module.replace(constraints=tuple(
                    c for c in module.constraints
                    if not (isinstance(c, Positive) and getattr(c, "mode", "hard") == "hard")))
            else:
                module = module.replace(
                    constraints=module.constraints + default_constraints(module))
            for constraint in module.constraints:
                if getattr(constraint, "mode", "hard") == "hard" and hasattr(constraint, "rewrite"):
                    module = constraint.rewrite(module, spec)
            for constraint in spec.constraints:  # a system constraint kept module by module
                if getattr(constraint, "mode", "hard") == "hard" \
                        and hasattr(constraint, "rewrite_module"):
                    module = constraint.rewrite_module(module, spec)
            blocks[module.name] = Block(module, spec, dtype,
                                        seed=None if seed is None else seed + index)
        self.blocks = nn.ModuleDict(blocks)
        self.exchanges = exchanges(spec)
        if spec.masses == "learn":
            raw = torch.full((n,), _softplus_inverse(1.0), dtype=dtype)
            self.mass_raw = nn.Parameter(raw)
        else:
            masses = spec.masses if isinstance(spec.masses, tuple) else (spec.masses,) * n
            self.register_buffer("fixed_masses", torch.tensor(masses, dtype=dtype))
        self.formulation = spec.formulation
        self.driven = spec.driven
        self.order = spec.order
        self._placements = {}
        for name, block in self.blocks.items():
            if block.kind in VECTOR_KINDS:
                matrix = torch.zeros(len(block.output_names), n, dtype=dtype)
                for row, coord in enumerate(block.output_names):
                    matrix[row, self.coords.index(coord)] = 1.0
                self.register_buffer(f"_place_{name}", matrix)
                self._placements[name] = f"_place_{name}"

    # ------------------------------------------------------------------ properties
    @property
    def modules_by_name(self) -> dict[str, Block]:
        return dict(self.blocks.items())

    @property
    def n_coords(self) -> int:
        return len(self.coords)

    @property
    def masses(self) -> Tensor:
        """Masses per coordinate, shape (n,)."""
        if hasattr(self, "mass_raw"):
            return torch.nn.functional.softplus(self.mass_raw)
        return self.fixed_masses

    def _of_kind(self, kind: str) -> list[Block]:
        kinds = VECTOR_KINDS if kind == "Dynamics" else (kind,)
        return [b for b in self.blocks.values() if b.kind in kinds]

    # ------------------------------------------------------------------ energies and forces
    def _state(self, q: Tensor, v: Tensor, t: Tensor | float | None = None) -> Tensor:
        """The state the blocks read, ``(batch, 2n)``, or ``(batch, 2n + 1)`` with time last
        in a driven system (``t`` a number, or a tensor of shape (batch,) or (batch, 1))."""
        parts = [q] if self.order == 1 else [q, v]  # a first-order state has no velocities
        if not self.driven:
            return torch.cat(parts, dim=-1)
        if t is None:
            raise SpecError(f"system {self.spec.name!r} is driven (a module depends on time "
                            "t): pass t, the time of every state, shape (batch,).")
        t = torch.as_tensor(t, dtype=q.dtype, device=q.device)
        t = t.reshape(-1, 1) if t.numel() > 1 else t.reshape(1, 1)
        return torch.cat([*parts, t.expand(q.shape[0], 1)], dim=-1)

    def scalar_sum(self, kind: str, t: Tensor | float | None = None
                   ) -> Callable[[Tensor, Tensor], Tensor] | None:
        """``(q, v) -> (batch,)``: the sum of the blocks of one scalar kind
        (``"Potential"``, ``"Dissipation"`` or ``"Lagrangian"``) at time ``t`` (driven
        systems); None when there are none."""
        blocks = self._of_kind(kind)
        if not blocks:
            return None

        def total(q: Tensor, v: Tensor) -> Tensor:
            state = self._state(q, v, t)
            return sum(b.evaluate(state)[:, 0] for b in blocks)

        return total

    def direct_force(self, t: Tensor | float | None = None
                     ) -> Callable[[Tensor, Tensor], Tensor] | None:
        """``(q, v) -> (batch, n_coords)``: the summed force of the Dynamics blocks, each
        placed on its outputs, at time ``t`` (driven systems); None when there are none."""
        blocks = self._of_kind("Dynamics")
        if not blocks:
            return None

        def total(q: Tensor, v: Tensor) -> Tensor:
            state = self._state(q, v, t)
            return sum(b.evaluate(state) @ getattr(self, self._placements[b.name])
                       for b in blocks)

        return total

    def _block_potential_gradient(self, block: Block, q: Tensor, v: Tensor,
                                  state: Tensor, t: Tensor | float | None = None) -> Tensor:
        """``dV/dq`` of one Potential block: written out from its KAN when it allows it
        (:attr:`Block.has_state_gradient`), by autograd otherwise."""
        if block.has_state_gradient:
            return block.value_and_state_gradient(state)[1][:, :q.shape[-1]]
        return mechanics.gradient_q(
            lambda q_, v_: block.evaluate(self._state(q_, v_, t))[:, 0], q, v)

    def _potential_gradient(self, t: Tensor | float | None = None
                            ) -> Callable[[Tensor, Tensor], Tensor] | None:
        """``dV/dq`` of all Potential modules, block by block, when at least one writes its
        gradient out; None otherwise (autograd then differentiates the summed V once)."""
        blocks = self._of_kind("Potential")
        if not any(b.has_state_gradient for b in blocks):
            return None

        def gradient(q: Tensor, v: Tensor) -> Tensor:
            state = self._state(q, v, t)
            return sum(self._block_potential_gradient(b, q, v, state, t) for b in blocks)

        return gradient

    def potential(self, q: Tensor, v: Tensor | None = None,
                  t: Tensor | float | None = None) -> Tensor:
        """Total potential energy, shape (batch,) (zero without Potential modules)."""
        v = torch.zeros_like(q) if v is None else v
        fn = self.scalar_sum("Potential", t)
        return fn(q, v) if fn is not None else q.new_zeros(q.shape[0])

    def forces(self, q: Tensor, v: Tensor, t: Tensor | float | None = None
               ) -> dict[str, Tensor]:
        """Generalized force of every Newtonian module, ``{name: (batch, n)}``.

        Potentials give ``-dV/dq``, Dissipations ``-dD/dv``, Dynamics their output placed on
        their coordinates. Lagrangian modules have no separate force and are left out.
        ``t`` (shape (batch,) or a number) is needed by driven systems only.
        """
        out = {}
        state = self._state(q, v, t)
        for name, block in self.blocks.items():
            if block.kind == "Potential":
                out[name] = -self._block_potential_gradient(block, q, v, state, t)
            elif block.kind == "Dissipation":
                out[name] = -mechanics.gradient_v(
                    lambda q_, v_, b=block: b.evaluate(self._state(q_, v_, t))[:, 0], q, v)
            elif block.kind in VECTOR_KINDS:
                out[name] = block.evaluate(state) @ getattr(self, self._placements[name])
        return out

    def acceleration(self, q: Tensor, v: Tensor, t: Tensor | float | None = None) -> Tensor:
        """Accelerations from the equations of motion.

        Parameters
        ----------
        q, v : Tensor of shape (batch, n)
            Positions and velocities, in the order of ``coords``.
        t : Tensor of shape (batch,), or a number, optional
            Time of each state: needed by driven systems (:attr:`System.driven`), ignored
            by the others.

        Returns
        -------
        Tensor of shape (batch, n)
        """
        self._check_state(q, v)
        if self.order == 1:
            raise SpecError(f"system {self.spec.name!r} is first order: it has rates dq/dt, "
                            "not accelerations; use model.rate(q, t).")
        if self.formulation == "lagrangian":
            return mechanics.lagrangian_acceleration(self.scalar_sum("Lagrangian", t), q, v,
                                                     self.generalized_force(q, v, t))
        return mechanics.newtonian_acceleration(
            self.masses, q, v, potential=self.scalar_sum("Potential", t),
            force=self.direct_force(t), dissipation=self.scalar_sum("Dissipation", t),
            potential_gradient=self._potential_gradient(t))

    def generalized_force(self, q: Tensor, v: Tensor, t: Tensor | float | None = None
                          ) -> Tensor | None:
        """The non-conservative generalized forces ``Q = F - dD/dv`` of the Dynamics and
        Dissipation modules, shape (batch, n); None when the system has neither."""
        force, dissipation = self.direct_force(t), self.scalar_sum("Dissipation", t)
        if force is None and dissipation is None:
            return None
        total = torch.zeros_like(q) if force is None else force(q, v)
        if dissipation is not None:
            total = total - mechanics.gradient_v(dissipation, q, v)
        return total

    def rate(self, q: Tensor, t: Tensor | float | None = None) -> Tensor:
        r"""``dq/dt`` of a first-order system: the Flows placed on their coordinates minus
        the gradient of the Potentials (a gradient flow, :math:`\dot q = -\nabla V`).

        Parameters
        ----------
        q : Tensor of shape (batch, n)
        t : Tensor of shape (batch,), or a number, optional
            Needed by driven systems only.

        Returns
        -------
        Tensor of shape (batch, n)
        """
        if self.order != 1:
            raise SpecError(f"system {self.spec.name!r} is second order: use "
                            "model.acceleration(q, v, t).")
        if q.shape[-1] != self.n_coords:
            raise SpecError(f"system {self.spec.name!r} has {self.n_coords} coordinates "
                            f"{list(self.coords)}: q must have shape (batch, {self.n_coords}); "
                            f"got {tuple(q.shape)}.")
        none = q[..., :0]
        total = torch.zeros_like(q)
        force = self.direct_force(t)
        if force is not None:
            total = total + force(q, none)
        written = self._potential_gradient(t)  # the KAN's gradient written out, as in Newton
        if written is not None:
            return total - written(q, none)
        potential = self.scalar_sum("Potential", t)
        if potential is not None:
            total = total - mechanics.gradient_q(potential, q, none)
        return total

    def derivative(self, q: Tensor, v: Tensor, t: Tensor | float | None = None) -> Tensor:
        """The highest time derivative the equations give: accelerations (second order) or
        rates ``dq/dt`` (first order; ``v`` is then ignored), shape (batch, n)."""
        return self.rate(q, t) if self.order == 1 else self.acceleration(q, v, t)

    def vector_field(self, t: Tensor | float, y: Tensor) -> Tensor:
        """``dy/dt`` for ``y = concat(q, v)`` of shape (batch, 2n): ``concat(v, a)``; for a
        first-order system ``y = q`` and ``dy/dt`` its rate. ``t`` a number or a tensor of
        shape (batch,) or (batch, 1)."""
        if self.order == 1:
            return self.rate(y, t)
        n = self.n_coords
        q, v = y[..., :n], y[..., n:]
        return torch.cat([v, self.acceleration(q, v, t)], dim=-1)

    def energy(self, q: Tensor, v: Tensor, t: Tensor | float | None = None) -> Tensor:
        """Total energy, shape (batch,): kinetic plus every potential (Lagrangian: v.dL/dv - L).
        In a driven system it is not conserved, and a time-dependent potential needs ``t``."""
        if self.order == 1:  # a gradient flow's potential only decreases along the motion
            return self.potential(q, q[..., :0], t)
        self._check_state(q, v)
        if self.formulation == "lagrangian":
            return mechanics.lagrangian_energy(self.scalar_sum("Lagrangian", t), q, v)
        return mechanics.kinetic_energy(self.masses, v) + self.potential(q, v, t)

    def forward(self, q: Tensor, v: Tensor, t: Tensor | float | None = None) -> Tensor:
        """Same as :meth:`acceleration`."""
        return self.acceleration(q, v, t)

    def _check_state(self, q: Tensor, v: Tensor) -> None:
        n = self.n_coords
        if q.shape[-1] != n or v.shape != q.shape:
            raise SpecError(f"system {self.spec.name!r} has {n} coordinates {list(self.coords)}: "
                            f"q and v must both have shape (batch, {n}); got {tuple(q.shape)} "
                            f"and {tuple(v.shape)}.")

    # ------------------------------------------------------------------ module access
    def module_inputs(self, name: str, q: Tensor, v: Tensor,
                      t: Tensor | float | None = None) -> Tensor:
        """Inputs of module ``name`` on a batch of states (at times ``t`` in a driven
        system), all bindings stacked: ``(n_bindings * batch, n_inputs)``."""
        block = self.block(name)
        z = block.inputs(self._state(q, v, t))
        return z.reshape(-1, z.shape[-1])

    def block(self, name: str) -> Block:
        """The block of module ``name`` (a SpecError naming the modules if there is none)."""
        if name not in self.blocks:
            raise SpecError(f"model of system {self.spec.name!r} has no module {name!r}; "
                            f"modules: {', '.join(self.blocks)}.")
        return self.blocks[name]

    @torch.no_grad()
    def adapt_grids(self, q: Tensor, v: Tensor, adaptivity: float | str = "auto",
                    t: Tensor | None = None) -> None:
        """Adapt the grids of every learned KAN block to its inputs on these states.

        The default ``"auto"`` spreads a uniform grid over each input's data range
        (KAN 2.0 uses sample quantiles, ``0.98``): trajectories cover their range fairly
        evenly, uniform knots give smoother edges to extract laws from, and uniform grids
        take the fast spline path (one shared piece polynomial). Only a layer with a
        heavily skewed input gets half-quantile knots
        (:func:`pikan.kan.layer.auto_adaptivity`).
        """
        for name, block in self.blocks.items():
            if block.kan is not None and not block.passive:
                # a passive Dissipation's KAN reads directions placed in its grid box
                # (Block.kan_inputs): they stay inside whatever box it has
                z = block.kan_inputs(self.module_inputs(name, q, v, t))
                block.kan.update_grid(z, adaptivity=adaptivity)

    def fix(self, name: str, law, trainable: bool = True) -> None:
        """Replace the KAN of module ``name`` by a compiled law with trainable constants.

        ``law`` is a sympy expression (or list, for Dynamics), text, or a pikan Law.
        """

        block = self.block(name)
        law = getattr(law, "expr", law)
        allowed = set(block.input_names) | set(block.params)
        if isinstance(law, (list, tuple)):
            exprs = [parse(e, allowed, where=f"module {name!r} law") for e in law]
        else:
            exprs = [parse(law, allowed, where=f"module {name!r} law")]
        block.fix(exprs, trainable=trainable)

    # ------------------------------------------------------------------ description
    def graph(self, format: str = "dict") -> dict | str:
        """The computation graph: state -> features -> modules -> gradient nodes -> forces -> accelerations.

        Parameters
        ----------
        format : "dict" or "dot"
            A dict with ``nodes`` (id -> {kind, label}) and ``edges`` (list of (from, to)),
            or Graphviz DOT text.
        """
        nodes: dict[str, dict] = {}
        edges: list[tuple[str, str]] = []
        for name in self.coords + self.velocities:
            nodes[name] = {"kind": "state", "label": name}
        for c in self.coords:
            nodes[f"a_{c}"] = {"kind": "acceleration", "label": f"a_{c}"}
        for name, block in self.blocks.items():
            label = f"{block.kind} {name}({', '.join(block.input_names)})"
            label += " [KAN]" if block.is_learned else " [law]"
            nodes[name] = {"kind": "module", "label": label, "learned": block.is_learned}
            spec = block.spec
            for k, binding in enumerate(spec.input_bindings):
                for inp, expr in binding.items():
                    sources = sorted(str(s) for s in sympy.sympify(expr).free_symbols
                                     if str(s) in nodes and nodes[str(s)]["kind"] == "state")
                    if str(expr) == inp and len(sources) == 1:
                        edges.append((sources[0], name))
                        continue
                    feature = f"{name}.{inp}" + (f"[{k}]" if len(spec.input_bindings) > 1 else "")
                    nodes[feature] = {"kind": "feature", "label": f"{inp} = {expr}"}
                    edges += [(s, feature) for s in sources] + [(feature, name)]
            if block.kind in ("Potential", "Dissipation"):
                var = "q" if block.kind == "Potential" else "v"
                grad = f"-d{name}/d{var}"
                nodes[grad] = {"kind": "gradient", "label": grad}
                edges.append((name, grad))
                targets = [f"a_{c}" for c in self.coords]
                edges += [(grad, t) for t in targets]
            elif block.kind in VECTOR_KINDS:
                edges += [(name, f"a_{c}") for c in block.output_names]
            else:
                node = f"Euler-Lagrange({name})"
                nodes[node] = {"kind": "gradient", "label": "Euler-Lagrange"}
                edges.append((name, node))
                edges += [(node, f"a_{c}") for c in self.coords]
        graph = {"system": self.spec.name, "formulation": self.formulation,
                 "nodes": nodes, "edges": edges}
        if format == "dict":
            return graph
        if format != "dot":
            raise SpecError(f"graph format must be 'dict' or 'dot', got {format!r}.")
        shapes = {"state": "ellipse", "feature": "note", "module": "box",
                  "gradient": "diamond", "acceleration": "doublecircle"}
        lines = [f'digraph "{self.spec.name}" {{', "  rankdir=LR;"]
        for key, node in nodes.items():
            lines.append(f'  "{key}" [label="{node["label"]}", shape={shapes[node["kind"]]}];')
        lines += [f'  "{a}" -> "{b}";' for a, b in edges]
        lines.append("}")
        return "\n".join(lines)


def compile(spec: System, dtype: torch.dtype = torch.float64, device=None,
            seed: int | None = 0) -> Model:
    """Compile a system spec into a :class:`Model`.

    Parameters
    ----------
    spec : System
    dtype : torch.dtype
        float64 by default (float32 is a speed option).
    device : str or torch.device, optional
    seed : int, optional
        Seed of the KAN initializations (module ``i`` uses ``seed + i``).

    Returns
    -------
    Model

    Warns
    -----
    IdentifiabilityWarning
        Once per pair of learned modules that can trade a term no convention fixes
        (``model.exchanges`` lists them, with the fixed pairs too).
    """
    if not isinstance(spec, System):
        raise SpecError(f"compile expects a pikan.System, got {type(spec).__name__}.")
    model = Model(spec, dtype=dtype, seed=seed)
    for exchange in model.exchanges:
        if not exchange.fixed:
            warnings.warn(exchange.message(), IdentifiabilityWarning, stacklevel=2)
    return model.to(device) if device is not None else model

