"""System specs: coordinates, masses, parameters and modules, as plain immutable data.

A :class:`System` is what a physicist writes down: generalized coordinates, masses,
named constants and a list of modules, each one physical subsystem (a
:class:`Potential`, :class:`Dynamics`, :class:`Dissipation` or :class:`Lagrangian`).
A module with a ``law`` is known; one without is learned by a KAN. ``compile`` turns a
spec into a torch model; this file only holds the data and checks it. It never imports
torch.

Two neighbours hold the rest of the spec language, and this file re-exports their
public names: :mod:`pikan.spec.json` writes specs to and reads them from JSON (and
keeps the constraint registry, :func:`register_constraint`); :mod:`pikan.spec.bindings`
writes ``bindings=`` lists (:func:`chain_pairs`, :func:`all_pairs`).

Conventions
-----------
- Velocities are ``v_<coord>`` and accelerations ``a_<coord>`` unless ``velocities``
  is given.
- Every expression (laws, feature expressions, bindings) is parsed by
  :func:`pikan.spec.expr.parse` and stored as a sympy expression over plain
  ``sympy.Symbol(name)`` symbols.
- Containers are tuples and :class:`FrozenMap` so specs are hashable and compare with
  ``==`` (order matters: it fixes the order of a KAN's inputs).
- Users' mistakes raise :class:`~pikan.errors.SpecError` naming the module and the
  offending name, with a did-you-mean where one is close.

Lagrangian systems
------------------
A system with :class:`Lagrangian` modules takes its equations of motion from the
Euler-Lagrange equations of the sum of their ``L``. ``L`` already contains the kinetic
and potential energy, so such a system may not also have :class:`Potential` modules
(the potential would be counted twice) and its ``masses`` must stay at the default 1.0
(they are not used). :class:`Dynamics` and :class:`Dissipation` modules are allowed
beside a Lagrangian: they are generalized forces on the right-hand side,
``d/dt dL/dv - dL/dq = F - dD/dv``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar

import sympy

from pikan.errors import SpecError
from pikan.spec import json as spec_json
from pikan.spec.bindings import all_pairs, chain_pairs
from pikan.spec.expr import did_you_mean, free_names, is_valid_name, parse, symbol
from pikan.spec.json import register_constraint
from pikan.spec.units import Unit, check_dimensions, parse_units

__all__ = [
    "Dissipation",
    "Dynamics",
    "Flow",
    "FrozenMap",
    "KAN_OPTION_RANGES",
    "Lagrangian",
    "MAX_HIDDEN_LAYERS",
    "MODULE_KINDS",
    "VECTOR_KINDS",
    "Module",
    "Potential",
    "System",
    "all_pairs",
    "chain_pairs",
    "register_constraint",
]

SPEC_VERSION = spec_json.SPEC_VERSION
"""Version of the JSON layout written by :meth:`System.to_json` (see :mod:`pikan.spec.json`)."""


class FrozenMap(Mapping):
    """An immutable, hashable, ordered mapping (what specs use instead of ``dict``).

    Equality is order-sensitive and holds against any mapping with the same items in
    the same order.
    """

    __slots__ = ("_dict", "_items")

    def __init__(self, items: Mapping | Iterable[tuple[Any, Any]] = ()):
        pairs = tuple(items.items() if isinstance(items, Mapping) else items)
        object.__setattr__(self, "_items", pairs)
        object.__setattr__(self, "_dict", dict(pairs))

    def __getitem__(self, key: Any) -> Any:
        return self._dict[key]

    def __iter__(self) -> Iterator:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._items == tuple(other.items())

    def __hash__(self) -> int:
        return hash(self._items)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenMap is immutable")

    def __reduce__(self):
        # rebuild through __init__ (copy, deepcopy and pickle cannot set attributes)
        return (FrozenMap, (self._items,))

    def __repr__(self) -> str:
        return repr(self._dict)


# ------------------------------------------------------------------- small validators


def _names(value: Any, what: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    """A tuple of valid, distinct variable names (a single string is one name)."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise SpecError(f"{what}: expected a list of names, got {value!r}.")
    names = tuple(value)
    if not names and not allow_empty:
        raise SpecError(f"{what}: expected at least one name, got none.")
    for name in names:
        _check_name(name, what)
    seen = set()
    for name in names:
        if name in seen:
            raise SpecError(f"{what}: the name {name!r} appears twice.")
        seen.add(name)
    return names


def _check_name(name: Any, what: str) -> None:
    if not is_valid_name(name):
        if isinstance(name, str) and name.isidentifier():
            raise SpecError(f"{what}: {name!r} is reserved (a function, constant or keyword); "
                            "choose another name.")
        raise SpecError(f"{what}: {name!r} is not a valid name; use letters, digits and "
                        "underscores, not starting with a digit (e.g. 'x1', 'theta').")


KAN_OPTION_RANGES: Mapping[str, tuple[int, int]] = FrozenMap({
    "hidden": (1, 10_000),  # the width of each hidden layer
    "grid": (1, 1_000),
    "order": (1, 5),        # pikan.kan.spline.MAX_ORDER
    "mult": (0, 10_000),
})
"""The integers a module's KAN options may take, ``option -> (lowest, highest)``,
checked when the module is built. Beyond these bounds a KAN either cannot be built
(the spline order) or would not fit in memory (a grid of 10**9 intervals); a
refined grid of a trained KAN (:meth:`pikan.kan.network.KAN.refine`) is not bounded
by them."""

MAX_HIDDEN_LAYERS = 64
"""Most hidden layers a module's KAN may have (``len(hidden)``)."""


def _kan_int(value: Any, option: str, where: str) -> int:
    """A KAN option's integer (numpy integers too), in :data:`KAN_OPTION_RANGES`."""
    lo, hi = KAN_OPTION_RANGES[option]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= value <= hi:
        what = "a layer width" if option == "hidden" else "an integer"
        raise SpecError(f"{where} {option}: expected {what} in {lo}..{hi}, got {value!r}.")
    return int(value)


def _number(value: Any, what: str) -> float:
    if isinstance(value, (bool, str)):
        raise SpecError(f"{what}: expected a number, got {value!r}.")
    try:
        number = float(value)  # also numpy scalars
    except (TypeError, ValueError):
        raise SpecError(f"{what}: expected a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise SpecError(f"{what}: expected a finite number, got {value!r}.")
    return number


def _unwrap_law(law: Any) -> Any:
    """A law may be text, sympy, a number, or an object with an ``.expr`` (a pikan Law)."""
    if law is not None and not isinstance(law, (str, sympy.Basic)) and hasattr(law, "expr"):
        law = law.expr
        if callable(law):
            law = law()
    return law


def apply_rewrites(module, system):
    """The module after its hard ``rewrite`` constraints (what :func:`pikan.compile` builds)."""
    for constraint in module.constraints:
        if getattr(constraint, "mode", "hard") == "hard" and hasattr(constraint, "rewrite"):
            module = constraint.rewrite(module, system)
    return module


def feature_map(module, system) -> dict:
    """How the hard rewrites change a module's inputs: new input name -> sympy expression
    of the original input names (identity entries for untouched inputs).

    Use it to write a law learned on rewritten inputs in the original names:
    ``law.xreplace({symbol(k): e for k, e in feature_map(module, system).items()})``.
    """
    probe = module.replace(inputs=list(module.input_names), bindings=())
    return dict(apply_rewrites(probe, system).inputs)


def _in_original_inputs(law: Any, module: Module, system: System) -> Any:
    """A law learned on the inputs a hard constraint rewrote, written in the module's own.

    A learned module with a hard invariance (``RotationInvariant``, ...) is fed invariant
    features (``x2_y2_minus_x1_y1_sq``), so its extracted law is written in them. A module
    with a law is not rewritten, so the features' expressions are substituted. Laws that
    already use the module's inputs pass unchanged.
    """
    if law is None:
        return law
    exprs = law if isinstance(law, (list, tuple)) else [law]
    where = f"module {module.name!r} law"
    exprs = [parse(e, where=where) if isinstance(e, str) else sympy.sympify(e) for e in exprs]
    known = set(module.input_names) | set(system.params)
    if all({s.name for s in e.free_symbols} <= known for e in exprs):
        return law
    features = {symbol(k): e for k, e in feature_map(module, system).items()}
    exprs = [e.xreplace(features) for e in exprs]
    return exprs if isinstance(law, (list, tuple)) else exprs[0]


# ---------------------------------------------------------------------------- modules


@dataclass(frozen=True)
class Module:
    """Base of the module kinds; not used directly.

    Parameters
    ----------
    name : str
        Unique within the system.
    inputs : list of str or dict of str to str
        Names of coordinates, velocities or params; or, as a dict, input names mapped to
        feature expressions of the state (``{"r": "sqrt(x**2 + y**2)"}``; an entry
        ``"x": "x"`` is a plain input). With ``bindings``, the input names are formal
        names the bindings assign.
    law : str, sympy.Expr, or None
        The closed form in the input names and the system's params. None: learned.
    hidden : list of int
        Hidden layer widths of the KAN (``[]``: a single KAN layer), each in 1..10000,
        at most :data:`MAX_HIDDEN_LAYERS` layers.
    grid : int
        Number of B-spline grid intervals, 1..1000.
    order : int
        B-spline order (3: cubic), 1..5.
    mult : int
        Number of multiplication nodes in the first hidden layer, 0..10000.
        (The ranges are :data:`KAN_OPTION_RANGES`; others raise :class:`SpecError`.)
    jump : bool
        Add a linear skip path to the KAN, ``y = KAN(z) + z W`` (linear terms need no
        spline, and extraction reads them from ``W``).
    constraints : list
        Constraint objects (see :mod:`pikan.constraints`).
    bindings : list of dict
        Apply the module, with one set of weights, to several assignments of its
        inputs; each dict maps every input name to an expression of the state. The
        module's contribution is the sum over bindings. See :func:`chain_pairs`.
    """

    kind: ClassVar[str] = "Module"
    JSON_EXTRA: ClassVar[tuple[str, ...]] = ()
    """Fields of this kind that :func:`pikan.spec.json.module_to_dict` writes after the
    common ones."""

    name: str
    inputs: Mapping[str, sympy.Expr]
    _: KW_ONLY
    law: Any = None
    hidden: tuple[int, ...] = (8,)
    grid: int = 5
    order: int = 3
    mult: int = 0
    jump: bool = False
    constraints: tuple = ()
    bindings: tuple[FrozenMap, ...] = ()

    def __post_init__(self) -> None:
        if type(self) is Module:
            raise SpecError("Module is the base class; use Potential, Dynamics, Dissipation or "
                            "Lagrangian.")
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise SpecError(f"{self.kind} name {self.name!r} is not a valid name; use letters, "
                            "digits and underscores (e.g. 'V', 'bond').")
        where = f"module {self.name!r}"
        set_ = object.__setattr__
        set_(self, "inputs", self._normalize_inputs(self.inputs, where))
        hidden = self.hidden
        if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
            hidden = (hidden,)
        if not isinstance(hidden, Iterable) or isinstance(hidden, (str, bytes, Mapping)):
            lo, hi = KAN_OPTION_RANGES["hidden"]
            raise SpecError(f"{where} hidden: expected a list of layer widths (integers in "
                            f"{lo}..{hi}), got {hidden!r}.")
        hidden = tuple(hidden)
        if len(hidden) > MAX_HIDDEN_LAYERS:
            raise SpecError(f"{where} hidden: expected at most {MAX_HIDDEN_LAYERS} hidden layers, "
                            f"got {len(hidden)}.")
        set_(self, "hidden", tuple(_kan_int(h, "hidden", where) for h in hidden))
        for option in ("grid", "order", "mult"):
            set_(self, option, _kan_int(getattr(self, option), option, where))
        if not isinstance(self.jump, bool):
            raise SpecError(f"{where} jump: expected True or False, got {self.jump!r}.")
        if self.mult and not self.hidden:
            raise SpecError(f"{where} mult: multiplication nodes live in the first hidden layer, "
                            "but hidden is empty; give hidden=[...] too.")
        constraints = self.constraints
        if dataclasses.is_dataclass(constraints) or not isinstance(constraints, Iterable):
            constraints = (constraints,)
        set_(self, "constraints", tuple(constraints))
        for c in self.constraints:
            if isinstance(c, type) or not dataclasses.is_dataclass(c):
                raise SpecError(f"{where} constraints: expected constraint objects such as "
                                f"Even('x'), got {c!r}.")
        set_(self, "bindings", self._normalize_bindings(self.bindings, where))
        set_(self, "law", self._normalize_law(_unwrap_law(self.law), where))

    # ------------------------------------------------------------ normalization

    @staticmethod
    def _normalize_inputs(inputs: Any, where: str) -> FrozenMap:
        if isinstance(inputs, Mapping):
            items = []
            for name, expression in inputs.items():
                _check_name(name, f"{where} inputs")
                items.append((name, parse(expression, where=f"{where} feature {name!r}")))
            if not items:
                raise SpecError(f"{where} inputs: expected at least one input, got none.")
            return FrozenMap(items)
        names = _names(inputs, f"{where} inputs")
        return FrozenMap((name, symbol(name)) for name in names)

    def _normalize_bindings(self, bindings: Any, where: str) -> tuple[FrozenMap, ...]:
        if bindings is None:
            return ()
        if isinstance(bindings, Mapping):
            bindings = (bindings,)
        out = []
        for i, binding in enumerate(bindings):
            if not isinstance(binding, Mapping):
                raise SpecError(f"{where} binding {i}: expected a dict of input name -> "
                                f"expression, got {binding!r}.")
            keys, names = set(binding), set(self.inputs)
            if keys != names:
                missing, extra = sorted(names - keys), sorted(keys - names)
                hint = "".join(did_you_mean(k, names) for k in extra[:1])
                raise SpecError(
                    f"{where} binding {i}: keys must be the module's inputs "
                    f"({', '.join(self.inputs)}); missing: {', '.join(missing) or 'none'}, "
                    f"unknown: {', '.join(map(repr, extra)) or 'none'}.{hint}")
            out.append(FrozenMap(
                (name, parse(binding[name], where=f"{where} binding {i} input {name!r}"))
                for name in self.inputs))
        if out and self.features:
            raise SpecError(f"{where}: give either feature expressions in inputs or bindings, not "
                            f"both; with bindings, inputs are plain names ({', '.join(self.inputs)}) "
                            "and each binding gives their expressions.")
        return tuple(out)

    def _normalize_law(self, law: Any, where: str) -> Any:
        if law is None:
            return None
        return parse(law, where=f"{where} law")

    # ------------------------------------------------------------- properties

    @property
    def input_names(self) -> tuple[str, ...]:
        """The input names, in the order they feed the block."""
        return tuple(self.inputs)

    @property
    def features(self) -> FrozenMap:
        """The derived inputs: name -> expression (plain inputs left out)."""
        return FrozenMap((k, e) for k, e in self.inputs.items() if e != symbol(k))

    @property
    def input_bindings(self) -> tuple[FrozenMap, ...]:
        """Every binding as input name -> sympy expression of the state and params.

        Without ``bindings`` this is one binding: the inputs themselves (a plain input
        maps to its own symbol, a feature to its expression).
        """
        return self.bindings if self.bindings else (self.inputs,)

    @property
    def is_learned(self) -> bool:
        """True when the module has no law and is learned by a KAN."""
        return self.law is None

    @property
    def laws(self) -> tuple[sympy.Expr, ...]:
        """The law as a tuple of expressions, one per output (empty when learned)."""
        if self.law is None:
            return ()
        return self.law if isinstance(self.law, tuple) else (self.law,)

    def replace(self, **changes: Any) -> Module:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """A JSON-ready dict; :meth:`System.from_dict` reads it back.

        See :func:`pikan.spec.json.module_to_dict` for the layout.
        """
        return spec_json.module_to_dict(self)


@dataclass(frozen=True)
class Potential(Module):
    """A scalar potential energy ``V`` of the coordinates; its force is ``-dV/dq``.

    Inputs may depend on coordinates and params only (a velocity-dependent term belongs
    in a :class:`Dynamics` or a :class:`Lagrangian`). See :class:`Module` for the fields.
    """

    kind: ClassVar[str] = "Potential"


@dataclass(frozen=True)
class Dissipation(Module):
    r"""A Rayleigh dissipation function ``D(v) >= 0``; its force is ``-dD/dv``.

    Inputs may depend on velocities and params only. See :class:`Module` for the fields.

    Parameters
    ----------
    passive : bool
        True (default): a learned ``D`` is passive by construction, for any weights:
        ``D(0) = 0``, ``dD/dz(0) = 0``, ``D >= 0`` and ``z . dD/dz >= 0`` on the module's
        inputs ``z`` (energy can only decrease). A constant force (``D = c . v``) then
        cannot hide in ``D``: it belongs to a potential. The block is a sum of
        homogeneous terms (see :func:`pikan.model.compile.passive_dissipation`),

        .. math:: D(z) = \sum_k a_k(u)^2 |z|^{\alpha_k} / \alpha_k, \quad u = z / |z|,

        the KAN giving the coefficients ``a_k`` of the direction ``u``, with degrees
        ``alpha`` = 2, 3, 4 in the velocities: linear damping ``c v^2 / 2``, quadratic
        damping ``c |v|^3 / 3``, cubic damping and their sums are exact; other radial
        profiles are approximated by these powers. With passivity on, the default
        ``Positive()`` of a learned Dissipation is not added and a hard ``Positive()`` is
        not applied (its softplus would break ``D(0) = 0`` and the exact forms above):
        ``D >= 0`` already holds. When the inputs are features positively homogeneous of
        one degree ``p`` in the velocities (``v_x``, ``v_x - v_y``: ``p = 1``;
        ``v_x**2 + v_y**2``: ``p = 2``), the degrees in ``z`` are ``alpha / p`` and
        passivity in ``z`` is passivity in ``v``; for other features it holds along rays
        in ``z`` only. False: the KAN output is ``D`` itself (``Positive()`` by default),
        for a user who knows better; ``compile`` then reports the constant force that can
        move between it and a potential.
    """

    kind: ClassVar[str] = "Dissipation"
    JSON_EXTRA: ClassVar[tuple[str, ...]] = ("passive",)

    _: KW_ONLY
    passive: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.passive, bool):
            raise SpecError(f"module {self.name!r} passive: expected True or False, got "
                            f"{self.passive!r}. Hint: passive=False turns off the passive "
                            "construction of a learned Dissipation.")
        super().__post_init__()


@dataclass(frozen=True)
class Lagrangian(Module):
    """A Lagrangian ``L(q, v)``; accelerations come from the Euler-Lagrange equations.

    A system with Lagrangian modules may not also have Potential modules and does not
    use ``masses`` (``L`` contains both energies). See :class:`Module` for the fields.
    """

    kind: ClassVar[str] = "Lagrangian"


@dataclass(frozen=True)
class Dynamics(Module):
    """A direct force on named coordinates: non-conservative or unknown physics.

    Parameters
    ----------
    outputs : list of str
        The coordinates the force pushes on, one force component each.
    law : list of str or sympy.Expr, optional
        One expression per output.
    gyroscopic : bool
        Parametrize the force as ``F = B v`` with ``B`` antisymmetric over the outputs'
        velocities (the magnetic-force form): it does no work, so energy is conserved by
        construction. Needs at least two outputs. A law may then also use the outputs'
        velocities, and must do no work (``sum_i v_i F_i == 0``, checked symbolically).
    vanish_at_rest : bool
        True (default): a learned, non-gyroscopic Dynamics whose inputs all depend on
        velocities only (plain velocity names, or features of velocities and params, at
        least one velocity) vanishes at rest by construction: its output is
        ``F(z) - F(z_0)``, ``z_0`` its inputs at ``v = 0``. A constant force then belongs
        to a potential. It has no effect on a Dynamics that reads positions (a force
        field need not vanish at rest), on a gyroscopic one (``B v`` already vanishes)
        or on one with a law. False: the KAN output is the force, for a user who knows a
        constant force belongs to this module; ``compile`` then reports the constant
        force that can move between it and a potential.

    Bindings are not supported on Dynamics (the outputs are fixed per module).
    See :class:`Module` for the other fields.
    """

    kind: ClassVar[str] = "Dynamics"
    JSON_EXTRA: ClassVar[tuple[str, ...]] = ("outputs", "gyroscopic", "vanish_at_rest")

    _: KW_ONLY
    outputs: tuple[str, ...] = ()
    gyroscopic: bool = False
    vanish_at_rest: bool = True

    def __post_init__(self) -> None:
        where = f"module {self.name!r}"
        if not isinstance(self.vanish_at_rest, bool):
            raise SpecError(f"{where} vanish_at_rest: expected True or False, got "
                            f"{self.vanish_at_rest!r}. Hint: vanish_at_rest=False lets a learned "
                            "velocity Dynamics keep a force at rest.")
        object.__setattr__(self, "outputs", _names(self.outputs, f"{where} outputs"))
        if not isinstance(self.gyroscopic, bool):
            raise SpecError(f"{where} gyroscopic: expected True or False, got {self.gyroscopic!r}.")
        if self.gyroscopic and len(self.outputs) < 2:
            raise SpecError(f"{where}: a gyroscopic force F = B v with B antisymmetric needs at "
                            f"least two outputs, got {list(self.outputs)}.")
        super().__post_init__()
        if self.bindings:
            raise SpecError(f"{where}: bindings are supported on Potential, Dissipation and "
                            "Lagrangian modules, not on Dynamics; write one Dynamics per force "
                            "or a scalar module whose gradient gives the force.")

    def _normalize_law(self, law: Any, where: str) -> Any:
        if law is None:
            return None
        if isinstance(law, (str, sympy.Expr, int, float)):
            law = (law,)
        elif isinstance(law, sympy.MatrixBase):
            law = tuple(law)
        if not isinstance(law, Iterable):
            raise SpecError(f"{where} law: expected one expression per output "
                            f"({', '.join(self.outputs)}), got {law!r}.")
        law = tuple(_unwrap_law(component) for component in law)
        if len(law) != len(self.outputs):
            raise SpecError(f"{where} law: expected {len(self.outputs)} expressions, one per "
                            f"output ({', '.join(self.outputs)}), got {len(law)}.")
        return tuple(parse(component, where=f"{where} law for {output!r}")
                     for component, output in zip(law, self.outputs))


@dataclass(frozen=True)
class Flow(Dynamics):
    """A direct term of ``dq/dt`` in a first-order system (``System(..., order=1)``): the
    first-order counterpart of a :class:`Dynamics` force.

    Parameters
    ----------
    outputs : list of str
        The coordinates whose rate it adds to, one component each.
    law : list of str or sympy.Expr, optional
        One expression per output.

    Bindings are not supported (the outputs are fixed per module). See :class:`Module` for
    the other fields.
    """

    kind: ClassVar[str] = "Flow"
    JSON_EXTRA: ClassVar[tuple[str, ...]] = ("outputs",)

    def __post_init__(self) -> None:
        if self.gyroscopic:
            raise SpecError(f"module {self.name!r}: a Flow is not gyroscopic (there are no "
                            "velocities in a first-order system).")
        super().__post_init__()


VECTOR_KINDS = ("Dynamics", "Flow")
"""Module kinds with one output per named coordinate (a force, or a term of dq/dt): their
laws are lists, one expression per output."""

MODULE_KINDS: dict[str, type[Module]] = {
    cls.kind: cls for cls in (Potential, Dynamics, Dissipation, Lagrangian, Flow)
}
"""Module kind name -> class: how the JSON reader builds modules."""


# ----------------------------------------------------------------------------- system


UNIT_DEFAULTS = {"t": "s", "energy": "J"}
"""Units of time and energy in a spec with units, unless it names others."""

TIME = "t"
"""The name of time: a module input ``t`` makes the system driven (time-dependent)."""


@dataclass(frozen=True)
class System:
    """A mechanical system: coordinates, masses, params and modules.

    Parameters
    ----------
    name : str
    coords : list of str
        Generalized coordinates ``q``, shape ``(n_coords,)`` in every state tensor.
    modules : list of Module
        Potentials, Dynamics, Dissipations and Lagrangians; their names are unique.
    masses : float, list of float, or "learn"
        One mass for every coordinate, one per coordinate, or learned positive masses.
        Not used (must stay 1.0) when the system has Lagrangian modules.
    params : dict of str to float
        Named constants usable in every expression.
    constraints : list
        System-level constraints such as ``Conserved("energy")``.
    velocities : list of str, optional
        Velocity names; default ``v_<coord>``.
    units : dict of str to str, optional
        Units (:mod:`pikan.spec.units`) of every coordinate and param, and optionally of
        time ``"t"`` (default ``"s"``) and ``"energy"`` (default ``"J"``): ``{"x": "m",
        "theta": "rad", "k": "N/m"}``. Velocities carry coordinate over time; potentials and
        Lagrangians energy, dissipation functions energy over time, a Dynamics force on a
        coordinate energy over that coordinate. With units, every law given in the spec is
        checked for consistency (its numbers may carry units, as in ``0.5*x**2``), and
        extracted laws report the unit of each constant (:meth:`pikan.Law.constant_units`).

    Examples
    --------
    >>> truth = System("trap", coords=["x", "y"], params={"k": 0.8},
    ...                modules=[Potential("V", inputs=["x", "y"], law="k*(x**2 + y**2)/2")])
    >>> spec = truth.learn("V", hidden=[4])
    >>> spec.learned
    ('V',)
    """

    name: str
    coords: tuple[str, ...]
    modules: tuple[Module, ...] = ()
    masses: float | tuple[float, ...] | str = 1.0
    params: Mapping[str, float] = field(default_factory=FrozenMap)
    constraints: tuple = ()
    velocities: tuple[str, ...] | None = None
    units: Mapping[str, str] = field(default_factory=FrozenMap)
    order: int = 2

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.name, str) or not self.name.strip():
            raise SpecError(f"System name: expected a non-empty string, got {self.name!r}.")
        where = f"system {self.name!r}"
        set_(self, "coords", _names(self.coords, f"{where} coords"))
        if isinstance(self.order, bool) or self.order not in (1, 2):
            raise SpecError(f"{where} order: expected 2 (mechanics: forces give accelerations) "
                            f"or 1 (dq/dt = sum of the modules), got {self.order!r}.")
        if self.order == 1:
            if self.velocities not in (None, (), []):
                raise SpecError(f"{where}: a first-order system has no velocities; leave "
                                "velocities out.")
            velocities = ()
        elif self.velocities is None:
            velocities = tuple(f"v_{c}" for c in self.coords)
        else:
            velocities = _names(self.velocities, f"{where} velocities")
            if len(velocities) != len(self.coords):
                raise SpecError(f"{where} velocities: expected one name per coordinate "
                                f"({', '.join(self.coords)}), got {len(velocities)}.")
        set_(self, "velocities", velocities)
        if not isinstance(self.params, Mapping):
            raise SpecError(f"{where} params: expected a dict of name -> number, got "
                            f"{self.params!r}.")
        for name in self.params:
            _check_name(name, f"{where} params")
        set_(self, "params", FrozenMap(
            (k, _number(v, f"{where} param {k!r}")) for k, v in self.params.items()))
        set_(self, "masses", self._normalize_masses(self.masses, where))
        modules = self.modules
        if isinstance(modules, Module):
            modules = (modules,)
        if not isinstance(modules, Iterable):
            raise SpecError(f"{where} modules: expected a list of modules, got {modules!r}.")
        set_(self, "modules", tuple(modules))
        for m in self.modules:
            if not isinstance(m, Module):
                raise SpecError(f"{where} modules: expected Potential, Dynamics, Dissipation or "
                                f"Lagrangian instances, got {m!r}.")
        constraints = self.constraints
        if dataclasses.is_dataclass(constraints) or not isinstance(constraints, Iterable):
            constraints = (constraints,)
        set_(self, "constraints", tuple(constraints))
        set_(self, "units", self._normalize_units(self.units, where))
        self.validate()

    def _normalize_units(self, units: Any, where: str) -> FrozenMap:
        if units is None:
            units = {}
        if not isinstance(units, Mapping):
            raise SpecError(f"{where} units: expected a dict of name -> units text such as "
                            f"{{'x': 'm', 'k': 'N/m'}}, got {units!r}.")
        if not units:
            return FrozenMap()
        allowed = (*self.coords, *self.params, *UNIT_DEFAULTS)
        unknown = [n for n in units if n not in allowed]
        if unknown:
            raise SpecError(f"{where} units: {unknown[0]!r} is not a coordinate, param, 't' or "
                            f"'energy'." + did_you_mean(str(unknown[0]), allowed))
        missing = [n for n in (*self.coords, *self.params) if n not in units]
        if missing:
            raise SpecError(f"{where} units: no units for {', '.join(map(repr, missing))}; "
                            "with units, every coordinate and param needs one ('1' for a pure "
                            "number, 'rad' for an angle).")
        texts = {**UNIT_DEFAULTS, **{str(k): v for k, v in units.items()}}
        for name, text in texts.items():
            try:
                parse_units(text)
            except SpecError as err:
                raise SpecError(f"{where} units of {name!r}: {err}") from None
        return FrozenMap((n, str(texts[n])) for n in (*self.coords, *self.params,
                                                      *UNIT_DEFAULTS))

    # ---------------------------------------------------------------- units

    def unit_of(self, name: str) -> Unit:
        """The unit of a coordinate, velocity, param, ``"t"`` or ``"energy"`` (a spec with
        units only)."""
        if not self.units:
            raise SpecError(f"system {self.name!r} has no units; give System(..., units=...).")
        if name in self.velocities:
            coord = self.coords[self.velocities.index(name)]
            return parse_units(self.units[coord]) / parse_units(self.units["t"])
        if name not in self.units:
            raise SpecError(f"system {self.name!r}: no unit for {name!r}.")
        return parse_units(self.units[name])

    def module_units(self, module: Module | str) -> dict[str, Unit]:
        """The units of a module's inputs and params, and of its value under its own name
        (a Dynamics: ``"<name>[<coord>]"`` per output); empty without units.

        Raises
        ------
        SpecError
            A feature whose expression is not dimensionally consistent.
        """
        m = self.module(module) if isinstance(module, str) else module
        if not self.units:
            return {}
        state = {n: self.unit_of(n) for n in (*self.state_names, *self.params)}
        units = {n: state[n] for n in self.params}
        for i, binding in enumerate(m.input_bindings):
            for name, expression in binding.items():
                check = check_dimensions(expression, state, pure_numbers=True)
                if check.problems or check.unit is None:
                    raise SpecError(f"module {m.name!r} input {name!r} = {expression}: "
                                    f"{'; '.join(check.problems) or 'unit undetermined'}.")
                if name in units and not units[name].same_dimension(check.unit) and i:
                    raise SpecError(f"module {m.name!r} input {name!r} carries "
                                    f"{check.unit.dimension()} in binding {i} but "
                                    f"{units[name].dimension()} before.")
                units[name] = check.unit
        energy, time = self.unit_of("energy"), self.unit_of("t")
        if isinstance(m, Flow):
            for o in m.outputs:
                units[f"{m.name}[{o}]"] = self.unit_of(o) / time
        elif isinstance(m, Dynamics):
            for o in m.outputs:
                units[f"{m.name}[{o}]"] = energy / self.unit_of(o)
            if m.gyroscopic:
                units.update({v: state[v] for v in self.velocities})
        else:
            units[m.name] = energy / time if isinstance(m, Dissipation) else energy
        return units

    def _check_law_units(self, m: Module) -> None:
        units = self.module_units(m)
        outputs = [f"{m.name}[{o}]" for o in m.outputs] if isinstance(m, Dynamics) \
            else [m.name]
        for component, output in zip(m.laws, outputs):
            check = check_dimensions(component, units, units[output])
            if check.problems:
                raise SpecError(f"module {m.name!r} law {component}: not dimensionally "
                                f"consistent ({'; '.join(check.problems)}); the law must carry "
                                f"{units[output].dimension()}.")

    def _normalize_masses(self, masses: Any, where: str) -> float | tuple[float, ...] | str:
        if isinstance(masses, str):
            if masses != "learn":
                raise SpecError(f"{where} masses: expected a number, a list of numbers or "
                                f"'learn', got {masses!r}.")
            return masses
        if isinstance(masses, Iterable):
            values = tuple(_number(m, f"{where} masses") for m in masses)
            if len(values) != len(self.coords):
                raise SpecError(f"{where} masses: expected {len(self.coords)} masses, one per "
                                f"coordinate ({', '.join(self.coords)}), got {len(values)}.")
        else:
            values = (_number(masses, f"{where} masses"),)
        for coord, m in zip(self.coords, values * len(self.coords) if len(values) == 1 else values):
            if m <= 0:
                raise SpecError(f"{where} masses: the mass of {coord!r} is {m}; masses must be "
                                "positive.")
        return values if isinstance(masses, Iterable) else values[0]

    # ---------------------------------------------------------------- names

    @property
    def accelerations(self) -> tuple[str, ...]:
        """Acceleration names ``a_<coord>``."""
        return tuple(f"a_{c}" for c in self.coords)

    @property
    def state_names(self) -> tuple[str, ...]:
        """Coordinates, velocities and, in a driven system, time ``t``: the layout of the
        state a compiled model evaluates its modules on, ``(q, v)`` or ``(q, v, t)``."""
        return self.coords + self.velocities + ((TIME,) if self.driven else ())

    @property
    def driven(self) -> bool:
        """Whether a module depends on time ``t`` (a drive, a time-dependent potential):
        the equations of motion are then not autonomous and the energy not conserved."""
        return any(TIME in free_names(e) for m in self.modules for b in m.input_bindings
                   for e in b.values())

    @property
    def n_coords(self) -> int:
        return len(self.coords)

    @property
    def module_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modules)

    @property
    def learned(self) -> tuple[str, ...]:
        """Names of the modules without a law (learned by a KAN)."""
        return tuple(m.name for m in self.modules if m.law is None)

    @property
    def known(self) -> tuple[str, ...]:
        """Names of the modules with a law."""
        return tuple(m.name for m in self.modules if m.law is not None)

    @property
    def formulation(self) -> str:
        """``"lagrangian"`` when the system has Lagrangian modules, else ``"newtonian"``."""
        return "lagrangian" if any(isinstance(m, Lagrangian) for m in self.modules) else "newtonian"

    def module(self, name: str) -> Module:
        """The module called ``name``."""
        for m in self.modules:
            if m.name == name:
                return m
        raise SpecError(f"system {self.name!r} has no module {name!r}; modules: "
                        f"{', '.join(self.module_names) or 'none'}."
                        + did_you_mean(str(name), self.module_names))

    # ------------------------------------------------------------- copies

    def replace(self, **changes: Any) -> System:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def _replace_module(self, new: Module) -> System:
        return self.replace(modules=tuple(new if m.name == new.name else m for m in self.modules))

    def learn(self, name: str, **kan_options: Any) -> System:
        """A copy in which module ``name`` is learned (its law removed).

        Parameters
        ----------
        name : str
        **kan_options
            Other module fields to change at the same time: ``hidden``, ``grid``,
            ``order``, ``mult``, ``constraints`` (replaces the list), ``inputs``,
            ``bindings``.
        """
        module = self.module(name)
        allowed = {f.name for f in dataclasses.fields(module) if f.init} - {"name", "law"}
        for key in kan_options:
            if key not in allowed:
                raise SpecError(f"learn({name!r}): unknown option {key!r}; options: "
                                f"{', '.join(sorted(allowed))}." + did_you_mean(key, allowed))
        return self._replace_module(module.replace(law=None, **kan_options))

    def with_laws(self, laws: Mapping[str, Any]) -> System:
        """A copy with laws filled in.

        Parameters
        ----------
        laws : mapping of module name -> law
            A law is expression text, a sympy expression, a list of those (one per
            output, for Dynamics) or an object with an ``.expr`` attribute (a pikan Law).
            None makes the module learned.

        A system constraint that held a learned module by construction and cannot be
        checked on a found law exactly (a conserved weighted sum whose projection kept a
        learned Flow's rates) turns soft in the copy (its ``for_laws()``): found laws are
        simulated and judged as they are.
        """
        items = laws.items() if hasattr(laws, "items") else laws
        new = {}
        for name, law in items:
            module = self.module(name)
            new[name] = module.replace(law=_in_original_inputs(_unwrap_law(law), module, self))
        changes = {"modules": tuple(new.get(m.name, m) for m in self.modules)}
        if any(self.module(name).law is None and law.law is not None
               for name, law in new.items()):
            changes["constraints"] = tuple(c.for_laws() if hasattr(c, "for_laws") else c
                                           for c in self.constraints)
        return self.replace(**changes)

    # ----------------------------------------------------------- validation

    def validate(self) -> None:
        """Check the whole spec; raise :class:`SpecError` on the first problem.

        Called at construction. Checks name collisions, that every name in inputs,
        features, bindings and laws is known, what each module kind may depend on,
        Dynamics outputs, the Lagrangian rules (see the module docstring) and each
        constraint's own ``check_spec``.
        """
        where = f"system {self.name!r}"
        owners: dict[str, str] = {TIME: "time"}
        for kind, names in (("coordinate", self.coords), ("velocity", self.velocities),
                            ("acceleration", self.accelerations),
                            ("param", tuple(self.params)), ("module", self.module_names)):
            for name in names:
                if name == TIME:
                    raise SpecError(f"{where}: {name!r} is time (a module input 't' makes the "
                                    f"system driven); give the {kind} another name.")
                if name in owners:
                    uses = (f"by two {kind}s" if owners[name] == kind
                            else f"both as a {owners[name]} and as a {kind}")
                    raise SpecError(f"{where}: the name {name!r} is used {uses}; names must be "
                                    "unique.")
                owners[name] = kind
        self._validate_order(where)
        for m in self.modules:
            self._validate_module(m)
        if self.formulation == "lagrangian":
            potentials = [m.name for m in self.modules if isinstance(m, Potential)]
            if potentials:
                raise SpecError(
                    f"{where}: Potential module(s) {', '.join(map(repr, potentials))} beside a "
                    "Lagrangian would count the potential energy twice: L = T - V already "
                    "contains it. Put V into the Lagrangian or use Potentials with masses "
                    "(Newtonian form) instead.")
            if self.masses != 1.0:
                raise SpecError(f"{where} masses: a Lagrangian contains the kinetic energy, so "
                                f"masses are not used; leave masses at its default (got "
                                f"{self.masses!r}).")
        for c in self.constraints:
            if hasattr(c, "check_spec"):
                c.check_spec(self, None)

    def _validate_order(self, where: str) -> None:
        """What a first-order system may hold (Potentials as gradient flows and Flows), and
        that Flows stay in first-order systems."""
        if self.order == 2:
            flows = [m.name for m in self.modules if isinstance(m, Flow)]
            if flows:
                raise SpecError(f"{where}: Flow module(s) {', '.join(map(repr, flows))} add to "
                                "dq/dt, which only a first-order system has; pass order=1, or "
                                "use a Dynamics for a force.")
            return
        wrong = [f"{m.name!r} ({m.kind})" for m in self.modules
                 if not isinstance(m, (Potential, Flow))]
        if wrong:
            raise SpecError(f"{where}: a first-order system (order=1) holds Potentials "
                            f"(gradient flows, dq/dt = -dV/dq) and Flows (direct terms of "
                            f"dq/dt); not {', '.join(wrong)}.")
        if self.masses != 1.0:
            raise SpecError(f"{where} masses: a first-order system has no masses; leave "
                            f"masses at its default (got {self.masses!r}).")
        # system constraints check their own fit (Conserved('linear') is the first-order one)

    def _validate_module(self, m: Module) -> None:
        where = f"module {m.name!r}"
        state = set(self.state_names) | set(self.params)
        for name in m.inputs:
            is_plain = m.inputs[name] == symbol(name) and not m.bindings
            if is_plain:
                if name not in state:
                    raise SpecError(
                        f"{where} input {name!r} is not a coordinate, velocity or param of "
                        f"system {self.name!r}." + did_you_mean(name, state)
                        + " A derived input needs an expression: inputs={'r': 'sqrt(x**2 + y**2)'}.")
            elif name in state:
                what = "feature" if not m.bindings else "binding input"
                raise SpecError(f"{where} {what} {name!r} shadows a coordinate, velocity or param "
                                "of the same name; give it another name.")
        depends: set[str] = set()
        for i, binding in enumerate(m.input_bindings):
            for name, expression in binding.items():
                label = (f"{where} binding {i} input {name!r}" if m.bindings
                         else f"{where} feature {name!r}")
                unknown = sorted(free_names(expression) - state)
                if unknown:
                    raise SpecError(f"{label}: unknown name {unknown[0]!r}; expressions of the "
                                    "state may use coordinates, velocities and params."
                                    + did_you_mean(unknown[0], state))
                depends |= free_names(expression)
        if isinstance(m, Lagrangian) and TIME in depends:
            raise SpecError(f"{where}: a Lagrangian that depends on time is not supported; put "
                            "the time-dependent part in a Dynamics (a drive) or a Potential.")
        if isinstance(m, Potential) and depends & set(self.velocities):
            raise SpecError(f"{where}: a Potential depends on coordinates only, but its inputs use "
                            f"{', '.join(sorted(depends & set(self.velocities)))}; put "
                            "velocity-dependent terms in a Dynamics or a Lagrangian.")
        if isinstance(m, Dissipation) and depends & set(self.coords):
            raise SpecError(f"{where}: a Dissipation depends on velocities only, but its inputs "
                            f"use {', '.join(sorted(depends & set(self.coords)))}.")
        law_names = set(m.inputs) | set(self.params)
        if isinstance(m, Dynamics):
            for output in m.outputs:
                if output not in self.coords:
                    raise SpecError(f"{where} output {output!r} is not a coordinate of system "
                                    f"{self.name!r} ({', '.join(self.coords)})."
                                    + did_you_mean(output, self.coords))
            if m.gyroscopic:
                law_names |= {self.velocities[self.coords.index(o)] for o in m.outputs}
        for component in m.laws:
            unknown = sorted(free_names(component) - law_names)
            if unknown:
                name = unknown[0]
                hint = (" It is a state variable: add it to the module's inputs."
                        if name in state else did_you_mean(name, law_names))
                raise SpecError(f"{where} law: unknown name {name!r}; a law may use the "
                                f"module's inputs ({', '.join(m.inputs)}) and the system's params "
                                f"({', '.join(self.params) or 'none'}).{hint}")
        if isinstance(m, Dynamics) and m.gyroscopic and m.law is not None:
            power = sum(symbol(self.velocities[self.coords.index(o)]) * f
                        for o, f in zip(m.outputs, m.law))
            if not (sympy.expand(power).is_zero or sympy.simplify(power).is_zero):
                raise SpecError(f"{where} law: a gyroscopic force must do no work, but "
                                f"v . F = {power!s} is not zero; use F = B v with B antisymmetric "
                                "(e.g. ['w*v_y', '-w*v_x']) or set gyroscopic=False.")
        if self.units and m.law is not None:
            self._check_law_units(m)
        for c in m.constraints:
            if hasattr(c, "check_spec"):
                c.check_spec(self, m)

    # ----------------------------------------------------------------- JSON
    # the layout lives in pikan.spec.json; these methods are its entry points

    def to_dict(self) -> dict:
        """A JSON-ready dict (expressions as text); :meth:`from_dict` reads it back."""
        return spec_json.system_to_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """The spec as JSON text; ``System.from_json(spec.to_json()) == spec``."""
        return spec_json.system_to_json(self, indent)

    @classmethod
    def from_dict(cls, data: Any) -> System:
        """Read a spec written by :meth:`to_dict`; expressions go through the safe parser."""
        return spec_json.system_from_dict(cls, data, MODULE_KINDS)

    @classmethod
    def from_json(cls, text: str) -> System:
        """Read a spec written by :meth:`to_json`."""
        return spec_json.system_from_json(cls, text)
