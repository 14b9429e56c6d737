r"""System-level conservation laws: energy, momentum, angular momentum, and a linear
combination of a first-order system's coordinates (a total population, a total amount).

``Conserved("energy")``: :math:`dE/dt = v \cdot Q = 0`, with :math:`Q` the forces of the
Dynamics and Dissipation modules (Potentials and Lagrangians conserve by construction).
Hard when the spec is conservative by construction: only Potentials, Lagrangians and
``gyroscopic=True`` Dynamics (parametrized as :math:`F = B(q)\,v`, :math:`B = -B^T`,
which does no work). A Dissipation contradicts it (SpecError in both modes).

``Conserved("momentum", groups=[("x1", "x2"), ("y1", "y2")])``: for each group :math:`G`
of coordinates that translate together, :math:`\frac{d}{dt}\sum_{i \in G} p_i =
\sum_{i \in G} F_i = 0`. Hard when every module exerts zero total force on every group
by construction: its features are invariant under translating the group (learned
Potentials and Lagrangians; Dissipations under shifting the group's velocities), its law
gives zero total force (modules with laws), or it does not act on the group at all.
A learned Dynamics acting on a group cannot be hard (use soft).

``Conserved("angular_momentum", vectors=[("x1", "y1"), ("x2", "y2")])``: with position
vectors :math:`r_k` and momenta :math:`p_k`,
:math:`\frac{d}{dt}\sum_k r_k \times p_k = \sum_k (v_k \times p_k + r_k \times F_k) = 0`
(2-D: the scalar :math:`x F_y - y F_x`; 3-D: the vector). Hard when every module is
invariant under rotating all listed vectors together (positions and their velocities),
or has a law with zero torque, or does not act on them; Newtonian systems also need one
fixed mass per vector.

``Conserved("linear", weights={"a": 1, "c": 1})`` (first-order systems only, ``order=1``):
:math:`\frac{d}{dt}\sum_i w_i q_i = \sum_i w_i \dot q_i = 0`. Hard when every module keeps
it by construction: a law whose rates have a zero weighted sum; a learned Flow, whose output
is projected onto the rates that keep every such sum (:class:`Projected`, added when the
model is compiled; a Flow with one output among the weighted coordinates would be forced to
zero, so it is refused); a learned Potential whose inputs do not change when the coordinates
move along ``w``. (In mechanics a fixed linear combination of positions is a holonomic
constraint on the coordinates, not a law of motion: second-order systems refuse it.)

:math:`p = m v` (Newtonian) or :math:`p = \partial L / \partial v` (Lagrangian, with
:math:`F = \partial L/\partial q + Q`). When ``groups``/``vectors`` are omitted they are
read from the coordinate names: coordinates that differ only in trailing digits form a
group (``x1, x2, x3``), and groups of equal size zip into vectors (``(x1, y1), (x2, y2)``).

Measures (see :mod:`pikan.constraints.base`): the rate divided by the sum of the
magnitudes that make it up (``|v| sum_m |F_m|`` for energy, ``sum_{G} sum_m |F_m,i|`` for
momentum, ``sum_k |r_k| sum_m |F_m,k| + |v_k||p_k|`` for angular momentum, ``sum_i |w_i|
|dq_i/dt|`` for a linear combination), so each is in [0, 1]. On data, the drift of the
conserved quantity along each trajectory (its standard deviation over time) relative to the
typical size of its terms.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import numpy as np
import sympy
import torch
from torch import Tensor

from pikan.errors import SpecError
from pikan.spec.expr import symbol
from pikan.spec.system import Dissipation, Dynamics, Lagrangian, Potential, register_constraint

from .base import (
    Constraint,
    apply_rewrites,
    as_states,
    evaluate,
    random_states,
    same_values,
    substitute_inputs,
    trajectories,
)

QUANTITIES = ("energy", "momentum", "angular_momentum", "linear")


@register_constraint
@dataclass(frozen=True)
class Conserved(Constraint):
    """A conserved quantity of the whole system (attach to ``System(constraints=...)``).

    Parameters
    ----------
    quantity : "energy", "momentum", "angular_momentum" or "linear"
    groups : list of tuples of coordinate names, optional
        Momentum only: coordinates that translate together (one momentum per group).
    vectors : list of tuples of coordinate names, optional
        Angular momentum only: position vectors (2 or 3 components) rotated together.
    weights : mapping of coordinate name to number, or a list of coordinate names
        ``"linear"`` only (and required there): the conserved ``sum_i w_i q_i`` of a
        first-order system; a list of names means weights 1 (a total).
    mode : "hard" or "soft"
        Hard: checked to hold by construction (SpecError with a hint otherwise). Soft:
        penalty on the rate of change along the training states.
    weight : float

    Examples
    --------
    >>> System("two_body", coords=["x1", "y1", "x2", "y2"], modules=[...],
    ...        constraints=[Conserved("energy"), Conserved("momentum")])
    >>> System("binding", coords=["a", "b", "c"], order=1, modules=[...],
    ...        constraints=[Conserved("linear", weights=["a", "c"]),
    ...                     Conserved("linear", weights=["b", "c"])])
    """

    scope = "system"

    quantity: str
    groups: tuple | None = None
    vectors: tuple | None = None
    weights: tuple | None = dataclass_field(default=None, metadata={"json_omit_none": True})

    def __post_init__(self) -> None:
        if self.quantity not in QUANTITIES:
            raise SpecError(f"Conserved: unknown quantity {self.quantity!r}; expected one of "
                            f"{', '.join(QUANTITIES)}.")
        object.__setattr__(self, "weights", _weights(self.quantity, self.weights))
        for field, wanted in (("groups", "momentum"), ("vectors", "angular_momentum")):
            value = getattr(self, field)
            if value is None:
                continue
            if self.quantity != wanted:
                raise SpecError(f"Conserved({self.quantity!r}): {field}= belongs to "
                                f"Conserved({wanted!r}).")
            if isinstance(value, str) or not all(
                    isinstance(g, (list, tuple)) and g and all(isinstance(n, str) for n in g)
                    for g in value) or not value:
                raise SpecError(f"Conserved({self.quantity!r}) {field}: expected a list of tuples "
                                f"of coordinate names, got {value!r}.")
            object.__setattr__(self, field, tuple(tuple(g) for g in value))
        if self.vectors is not None and (len({len(u) for u in self.vectors}) != 1
                                         or len(self.vectors[0]) not in (2, 3)):
            raise SpecError(f"Conserved('angular_momentum') vectors: expected vectors of 2 or 3 "
                            f"components, all of one size, got {self.vectors!r}.")
        super().__post_init__()

    def _label_parts(self) -> list[str]:
        parts = [self.quantity]
        if self.groups is not None:
            parts += ["(" + ", ".join(g) + ")" for g in self.groups]
        if self.vectors is not None:
            parts += ["(" + ", ".join(u) + ")" for u in self.vectors]
        if self.weights is not None:
            parts.append(_weighted_sum(self.weights))
        return parts

    # --------------------------------------------------------------- which coordinates
    def resolved_groups(self, system) -> tuple[tuple[str, ...], ...]:
        """Momentum groups: as given, or read from the coordinate names."""
        if self.groups is not None:
            return self.groups
        families = _families(system.coords)
        if all(len(f) >= 2 for f in families):
            return tuple(families)
        return (tuple(system.coords),)

    def resolved_vectors(self, system) -> tuple[tuple[str, ...], ...]:
        """Angular-momentum vectors: as given, or zipped from coordinate families."""
        if self.vectors is not None:
            return self.vectors
        families = _families(system.coords)
        if len(families) in (2, 3) and len({len(f) for f in families}) == 1:
            return tuple(zip(*families))
        raise SpecError(f"system {system.name!r}: Conserved('angular_momentum') cannot tell the "
                        f"position vectors from the coordinates {list(system.coords)}; give "
                        "vectors=[('x1', 'y1'), ('x2', 'y2'), ...].")

    # --------------------------------------------------------------- spec checks
    def _check(self, system, module) -> None:
        where = f"system {system.name!r}"
        dissipations = [m.name for m in system.modules if isinstance(m, Dissipation)]
        if self.quantity == "energy" and dissipations:
            raise SpecError(f"{where}: Conserved('energy') contradicts the Dissipation module(s) "
                            f"{', '.join(map(repr, dissipations))}, which remove energy. Hint: "
                            "drop one of them.")
        first_order = getattr(system, "order", 2) == 1
        if (self.quantity == "linear") != first_order:
            raise SpecError(
                f"{where}: Conserved('linear') belongs to first-order systems (order=1), where "
                "the rates are the equations; in mechanics a fixed combination of positions "
                "is a constraint on the coordinates, not a law of motion."
                if first_order is False else
                f"{where}: Conserved({self.quantity!r}) needs velocities and forces; a "
                "first-order system has rates only. Conserved('linear', weights=...) keeps a "
                "weighted sum of its coordinates.")
        coords = set(system.coords)
        listed = (self.groups or ()) + (self.vectors or ()) \
            + ((tuple(n for n, _ in self.weights),) if self.weights else ())
        for name in (n for g in listed for n in g):
            if name not in coords:
                raise SpecError(f"{where}: {self.label} names {name!r}, which is not a "
                                f"coordinate ({', '.join(system.coords)}).")
        if self.quantity == "momentum":
            groups = self.resolved_groups(system)
            flat = [n for g in groups for n in g]
            if len(set(flat)) != len(flat):
                raise SpecError(f"{where}: {self.label}: a coordinate is in two groups.")
        if self.quantity == "angular_momentum":
            vectors = self.resolved_vectors(system)
            flat = [n for u in vectors for n in u]
            if len(set(flat)) != len(flat):
                raise SpecError(f"{where}: {self.label}: a coordinate is in two vectors.")
        if self.mode == "hard":
            problem = {"energy": _energy_problem, "momentum": _momentum_problem,
                       "angular_momentum": _angular_problem,
                       "linear": _linear_problem}[self.quantity](self, system)
            if problem:
                raise SpecError(f"{where}: {self.label} cannot hold by construction: {problem} "
                                f"Or use Conserved({self.quantity!r}, mode='soft') for a "
                                "penalty instead.")

    # --------------------------------------------------------------- measures
    def residual(self, model, q, v, module=None):
        """The rate of change of the quantity and the magnitudes it is made of."""
        if self.quantity == "linear":
            w = _weight_vector(self, model.spec.coords).to(q)
            rate = model.rate(q)
            return (rate @ w)[:, None], (rate.abs() @ w.abs())[:, None]
        forces, momentum, kinds = _generalized_forces(model, q, v)
        spec = model.spec
        if self.quantity == "energy":
            q_nc = sum((f for f, k in zip(forces, kinds) if k in ("Dynamics", "Dissipation")),
                       torch.zeros_like(q))
            rate = (v * q_nc).sum(-1)
            size = v.norm(dim=-1) * sum((f.norm(dim=-1) for f in forces), torch.zeros_like(rate))
            return rate, size
        coords = list(spec.coords)
        total = sum(forces, torch.zeros_like(q))
        magnitude = sum((f.abs() for f in forces), torch.zeros_like(q))
        if self.quantity == "momentum":
            index = [[coords.index(n) for n in g] for g in self.resolved_groups(spec)]
            rate = torch.stack([total[:, i].sum(-1) for i in index], dim=-1)
            size = torch.stack([magnitude[:, i].sum(-1) for i in index], dim=-1)
            return rate, size
        index = [[coords.index(n) for n in u] for u in self.resolved_vectors(spec)]
        rate = sum(_cross(v[:, i], momentum[:, i]) + _cross(q[:, i], total[:, i]) for i in index)
        size = sum(v[:, i].norm(dim=-1) * momentum[:, i].norm(dim=-1)
                   + q[:, i].norm(dim=-1) * magnitude[:, i].norm(dim=-1) for i in index)
        return rate, size[:, None].expand_as(rate)

    def data_violation(self, data, model=None) -> float | None:
        """Drift of the quantity along each trajectory of ``data``, relative to its terms.

        ``sqrt(mean over trajectories of var_t(Q))`` divided by the rms size of the terms
        of ``Q`` (kinetic energy ``v.p/2`` for energy; ``sum |p_i|`` for momentum;
        ``sum |r_k||p_k|`` for angular momentum). Energy needs ``model`` (its energy
        function); momenta use ``model``'s masses (or ``data.masses``, else 1). None when
        the data has no time order (a plain set of states).
        """
        if self.quantity == "linear" and hasattr(data, "coords") and hasattr(data, "__iter__"):
            runs = [(np.asarray(r.q), None) for r in data]  # positions suffice (order 1)
        else:
            runs = trajectories(data)
        if runs is None or (self.quantity == "energy" and model is None):
            return None
        values, sizes = [], []
        for q, v in runs:
            quantity, size = self._quantity(model, data, q, v)
            values.append(quantity)
            sizes.append(size)
        drift = np.mean([np.var(x, axis=0).mean() for x in values])
        scale = np.sqrt(np.mean(np.concatenate(sizes) ** 2))
        drift = float(np.sqrt(drift))
        if drift == 0.0:
            return 0.0
        return drift / float(scale) if scale > 0 else float("inf")

    def for_laws(self) -> Conserved:
        """This constraint in a spec whose learned modules got found laws
        (:meth:`pikan.System.with_laws`): a hard ``"linear"`` one turns soft, since the
        projection that kept a learned Flow's sum is not part of its law; the others as
        they are (their checks read the laws exactly)."""
        if self.quantity == "linear" and self.mode == "hard":
            return dataclasses.replace(self, mode="soft")
        return self

    def rewrite_module(self, module, system):
        """A learned Flow with the projection that keeps every hard ``Conserved('linear')``
        of ``system`` (one :class:`Projected` for all of them); other modules unchanged."""
        if self.quantity != "linear" or module.kind != "Flow" or module.law is not None:
            return module
        rows = [_weight_vector(c, module.outputs).tolist() for c in system.constraints
                if isinstance(c, Conserved) and c.quantity == "linear" and c.mode == "hard"]
        rows = tuple(tuple(r) for r in rows if any(r))
        if not rows or any(isinstance(c, Projected) for c in module.constraints):
            return module
        return module.replace(constraints=(*module.constraints, Projected(rows)))

    def _quantity(self, model, data, q, v) -> tuple[np.ndarray, np.ndarray]:
        """The conserved quantity ``(T, k)`` along one trajectory and its size ``(T,)``."""
        if self.quantity == "linear":
            coords = list(model.spec.coords) if model is not None else list(data.coords)
            w = _weight_vector(self, coords).numpy()
            return (np.asarray(q) @ w)[:, None], np.abs(np.asarray(q)) @ np.abs(w)
        momentum = _data_momentum(model, data, q, v)
        if self.quantity == "energy":
            qt, vt = _tensors(model, q, v)
            energy = model.energy(qt, vt).detach().cpu().numpy()
            return energy[:, None], 0.5 * np.abs((v * momentum).sum(-1))
        coords = list(model.spec.coords) if model is not None else list(data.coords)
        if self.quantity == "momentum":
            system = model.spec if model is not None else _CoordsOnly(data.coords)
            index = [[coords.index(n) for n in g] for g in self.resolved_groups(system)]
            quantity = np.stack([momentum[:, i].sum(-1) for i in index], axis=-1)
            return quantity, np.abs(momentum).sum(-1)
        system = model.spec if model is not None else _CoordsOnly(data.coords)
        index = [[coords.index(n) for n in u] for u in self.resolved_vectors(system)]
        quantity = sum(_cross_np(q[:, i], momentum[:, i]) for i in index)
        size = sum(np.linalg.norm(q[:, i], axis=-1) * np.linalg.norm(momentum[:, i], axis=-1)
                   for i in index)
        return quantity, size


@dataclass(frozen=True)
class Projected(Constraint):
    """A learned Flow's rates projected so that every weighted sum in ``rows`` stays fixed:
    ``f -> f P``, ``P = I - W^+ W`` (``W`` the rows, each the weights of one
    ``Conserved("linear")`` on the Flow's outputs). Added by :meth:`Conserved.rewrite_module`
    when a model is compiled; not a spec element of its own."""

    rows: tuple = ()

    def wrap(self, fn, input_names):
        """The hard version: the block's outputs times ``P``."""
        projector = torch.tensor(np.array(self.projector(), dtype=float))

        def projected(z: Tensor) -> Tensor:
            out = fn(z)
            return out @ projector.to(dtype=out.dtype, device=out.device)

        return projected

    def project(self, exprs) -> list:
        """Laws of the Flow's outputs projected the same way (exactly, in sympy): refined
        constants that moved apart output by output agree again, and every weighted sum
        of the rates is zero."""
        projector = self.projector()
        return [sympy.expand(sum((e * projector[j, k] for j, e in enumerate(exprs)),
                                 sympy.Integer(0))) for k in range(projector.cols)]

    def projector(self) -> sympy.Matrix:
        """``P`` exactly (symmetric): the rows' weights as exact numbers."""
        weights = sympy.Matrix([[sympy.nsimplify(w) for w in row] for row in self.rows])
        return sympy.eye(weights.cols) - weights.pinv() * weights

    def _label_parts(self) -> list[str]:
        return [str(list(r)) for r in self.rows]


# ------------------------------------------------------------------------- helpers


def _weights(quantity: str, weights) -> tuple | None:
    """``weights`` as ``((name, value), ...)``; checked against the quantity."""
    if quantity != "linear":
        if weights is not None:
            raise SpecError("Conserved: weights= belongs to Conserved('linear').")
        return None
    if weights is None or isinstance(weights, str):
        raise SpecError("Conserved('linear'): give weights={'a': 1, 'c': 1} (or a list of "
                        f"coordinate names for a plain total), got {weights!r}.")
    if isinstance(weights, Mapping):
        pairs = list(weights.items())
    else:
        pairs = [(w, 1.0) if isinstance(w, str) else tuple(w) for w in weights]
    out = []
    for pair in pairs:
        if len(pair) != 2 or not isinstance(pair[0], str) or isinstance(pair[1], (bool, str)):
            raise SpecError(f"Conserved('linear') weights: expected coordinate names and "
                            f"numbers, got {weights!r}.")
        try:
            value = float(pair[1])
        except (TypeError, ValueError):
            raise SpecError(f"Conserved('linear') weights: {pair[1]!r} for {pair[0]!r} is not "
                            "a number.") from None
        if not np.isfinite(value):
            raise SpecError(f"Conserved('linear') weights: {pair[0]!r} has weight {value}.")
        out.append((pair[0], value))
    names = [n for n, _ in out]
    if not out or not any(v for _, v in out) or len(set(names)) != len(names):
        raise SpecError(f"Conserved('linear') weights: expected distinct coordinates with at "
                        f"least one nonzero weight, got {weights!r}.")
    return tuple(out)


def _weighted_sum(weights) -> str:
    return " + ".join(name if value == 1 else f"{value:g}*{name}" for name, value in weights)


def _weight_vector(constraint: Conserved, names) -> Tensor:
    """The weights on ``names`` (zero for a name without one), float64."""
    given = dict(constraint.weights)
    return torch.tensor([given.get(n, 0.0) for n in names], dtype=torch.float64)



class _CoordsOnly:
    """Stand-in for a System when only coordinate names are known (data without a model)."""

    def __init__(self, coords) -> None:
        self.coords, self.name = tuple(coords), "data"


def _families(coords) -> list[tuple[str, ...]]:
    """Coordinates grouped by their name without trailing digits, in order of appearance."""
    families: dict[str, list[str]] = {}
    for c in coords:
        families.setdefault(re.sub(r"\d+$", "", c), []).append(c)
    return [tuple(f) for f in families.values()]


def _cross(a: Tensor, b: Tensor) -> Tensor:
    """``a x b`` for 2-D (scalar, shape (batch, 1)) or 3-D vectors (shape (batch, 3))."""
    if a.shape[-1] == 2:
        return (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])[:, None]
    return torch.linalg.cross(a, b, dim=-1)


def _cross_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.shape[-1] == 2:
        return (a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])[:, None]
    return np.cross(a, b)


def _tensors(model, q, v) -> tuple[Tensor, Tensor]:
    return as_states(model, q, v)


def _lagrangian(model):
    blocks = [b for b in model.blocks.values() if b.kind == "Lagrangian"]

    def total(q: Tensor, v: Tensor) -> Tensor:
        state = torch.cat([q, v], dim=-1)
        return sum(b.evaluate(state)[:, 0] for b in blocks)

    return total


def _generalized_forces(model, q: Tensor, v: Tensor) -> tuple[list[Tensor], Tensor, list[str]]:
    """Every module's generalized force ``(batch, n)``, the momentum ``p`` and the kinds.

    Newtonian: ``p = m v`` and the forces of :meth:`Model.forces`. Lagrangian: ``p =
    dL/dv`` and ``dL/dq`` counts as the Lagrangian's force.
    """
    per_module = model.forces(q, v)
    forces = list(per_module.values())
    kinds = [model.blocks[name].kind for name in per_module]
    if model.formulation == "lagrangian":
        lagrangian = _lagrangian(model)
        forces.append(torch.func.grad(lambda q_: lagrangian(q_, v).sum())(q))
        kinds.append("Lagrangian")
        momentum = torch.func.grad(lambda v_: lagrangian(q, v_).sum())(v)
    else:
        momentum = model.masses * v
    return forces, momentum, kinds


def _data_momentum(model, data, q: np.ndarray, v: np.ndarray) -> np.ndarray:
    if model is not None and model.formulation == "lagrangian":
        qt, vt = _tensors(model, q, v)
        lagrangian = _lagrangian(model)
        p = torch.func.grad(lambda v_: lagrangian(qt, v_).sum())(vt)
        return p.detach().cpu().numpy()
    if model is not None:
        masses = model.masses.detach().cpu().numpy()
    else:
        masses = getattr(data, "masses", None)
        masses = 1.0 if masses is None else np.asarray(masses, dtype=float)
    return np.asarray(v) * masses


# ------------------------------------------------------------------ by construction


def _energy_problem(constraint: Conserved, system) -> str | None:
    plain = [m.name for m in system.modules if isinstance(m, Dynamics) and not m.gyroscopic]
    if plain:
        return (f"the Dynamics module(s) {', '.join(map(repr, plain))} are not gyroscopic, so "
                "their work is unconstrained. If a force does no work (a magnetic-type force), "
                "declare it Dynamics(..., gyroscopic=True).")
    return None


def _velocity_of(system) -> dict[str, str]:
    return dict(zip(system.coords, system.velocities))


def _module_expressions(module, system) -> tuple[list, bool]:
    """Expressions of the state a module depends on: its law composed with its bindings
    (summed over bindings; one per output), or, when learned, every input feature after
    the hard rewrites. The flag says whether they are laws."""
    if module.law is not None:
        laws = []
        for component in module.laws:
            laws.append(sum(substitute_inputs(component, b) for b in module.input_bindings))
        return laws, True
    rewritten = apply_rewrites(module, system)
    return [e for b in rewritten.input_bindings for e in b.values()], False


def _depends_on(expressions, names) -> bool:
    names = set(names)
    return any({s.name for s in sympy.sympify(e).free_symbols} & names for e in expressions)


def _invariant(expressions, system, transform) -> bool:
    """Whether every expression of the state is unchanged by ``transform`` (numerically,
    on reproducible random states)."""
    names = system.state_names
    y = random_states(names, seed=2)
    moved = transform(y)
    return all(same_values(evaluate(e, names, system.params, y.unbind(-1)),
                           evaluate(e, names, system.params, moved.unbind(-1)))
               for e in expressions)


def _vanishes(expressions, system) -> bool:
    """Whether every expression of the state is zero on random states (relative to the
    sizes of its terms)."""
    names = system.state_names
    columns = random_states(names, seed=3).unbind(-1)
    for e in expressions:
        e = sympy.expand(e)
        terms = e.args if isinstance(e, sympy.Add) else (e,)
        size = sum(evaluate(t, names, system.params, columns).abs() for t in terms)
        value = evaluate(e, names, system.params, columns)
        if not bool((value.abs() <= 1e-9 * (1.0 + size)).all()):
            return False
    return True


def _forces_of_law(module, system) -> dict[str, sympy.Expr]:
    """Generalized force of a module with a law, per coordinate (sympy)."""
    laws, _ = _module_expressions(module, system)
    velocities = _velocity_of(system)
    if isinstance(module, Dynamics):
        return dict(zip(module.outputs, laws))
    if isinstance(module, Potential):
        return {c: -sympy.diff(laws[0], symbol(c)) for c in system.coords}
    if isinstance(module, Dissipation):
        return {c: -sympy.diff(laws[0], symbol(velocities[c])) for c in system.coords}
    return {c: sympy.diff(laws[0], symbol(c)) for c in system.coords}  # Lagrangian: dL/dq


def _shift(system, names, velocities: bool):
    """Translate the coordinates ``names`` (or their velocities) together."""
    velocity = _velocity_of(system)
    return _shift_along(system, {velocity[n] if velocities else n: 1.0 for n in names})


def _linear_problem(constraint: Conserved, system) -> str | None:
    w = dict(constraint.weights)
    for m in system.modules:
        expressions, is_law = _module_expressions(m, system)
        if is_law:
            if isinstance(m, Potential):
                rates = [-sympy.diff(expressions[0], symbol(c)) for c in system.coords]
                total = sum((w.get(c, 0.0) * r for c, r in zip(system.coords, rates)),
                            sympy.Integer(0))
            else:
                total = sum((w.get(c, 0.0) * e for c, e in zip(m.outputs, expressions)),
                            sympy.Integer(0))
            if _vanishes([total], system):
                continue
            return (f"the law of {m.name!r} changes {_weighted_sum(constraint.weights)}.")
        if m.kind == "Flow":
            touched = [c for c in m.outputs if w.get(c, 0.0)]
            if touched and len(m.outputs) == 1:
                return (f"the learned Flow {m.name!r} has the one output {m.outputs[0]!r}, "
                        "whose rate the projection would force to zero. Hint: learn the rates "
                        "that exchange the amount as one Flow with all of them as outputs, "
                        f"outputs={sorted(w)}.")
            continue
        shift = _shift_along(system, w)
        if not _invariant(expressions, system, shift):
            return (f"the learned {m.kind} {m.name!r} has inputs that change when the "
                    f"coordinates move along the weights of {_weighted_sum(constraint.weights)}, "
                    "so its gradient changes that sum.")
    return None


def _shift_along(system, weights: dict):
    """Translate the state along ``weights`` (state name -> component), by a different
    amount in each state of the batch."""
    index = {system.state_names.index(name): value for name, value in weights.items()}

    def transform(y: Tensor) -> Tensor:
        s = torch.linspace(-0.7, 0.9, y.shape[0], dtype=y.dtype)
        columns = list(y.unbind(-1))
        for i, value in index.items():
            columns[i] = columns[i] + value * s
        return torch.stack(columns, dim=-1)

    return transform


def _momentum_problem(constraint: Conserved, system) -> str | None:
    for group in constraint.resolved_groups(system):
        velocities = [_velocity_of(system)[c] for c in group]
        for m in system.modules:
            expressions, is_law = _module_expressions(m, system)
            if isinstance(m, Dynamics):
                touched = [c for c in m.outputs if c in group]
                if not touched:
                    continue
                if is_law and _vanishes([sum((dict(zip(m.outputs, expressions))[c]
                                              for c in touched), sympy.Integer(0))], system):
                    continue
                return (f"the Dynamics {m.name!r} pushes on {touched}, and its total force on "
                        f"the group {list(group)} is not zero by construction.")
            if isinstance(m, Dissipation):
                if not _depends_on(expressions, velocities) or _invariant(
                        expressions, system, _shift(system, group, velocities=True)):
                    continue
                return (f"the Dissipation {m.name!r} is not invariant under shifting the "
                        f"velocities of {list(group)} together, so it brakes their total "
                        "momentum. Hint: make it depend on relative velocities only.")
            if not _invariant(expressions, system, _shift(system, group, velocities=False)):
                what = "law" if is_law else "inputs"
                members = tuple(c for c in group if c in _inputs_of(m))
                hint = (f"Hint: feed differences, e.g. TranslationInvariant({members}) on module "
                        f"{m.name!r}." if len(members) > 1 and not is_law else
                        "It exerts an external force on the group.")
                return (f"the {m.kind} {m.name!r} has {what} that change when {list(group)} are "
                        f"translated together. {hint}")
    return None


def _inputs_of(module) -> set[str]:
    return {s.name for b in module.input_bindings for e in b.values()
            for s in sympy.sympify(e).free_symbols}


def _rotation(system, vectors):
    velocity = _velocity_of(system)
    names = system.state_names
    index = [[names.index(c) for c in u] for u in vectors]
    index += [[names.index(velocity[c]) for c in u] for u in vectors]
    d = len(vectors[0])

    def transform(y: Tensor) -> Tensor:
        generator = torch.Generator().manual_seed(4)
        a = torch.randn(y.shape[0], d, d, generator=generator, dtype=y.dtype)
        rotation, r = torch.linalg.qr(a)
        rotation = rotation * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
        flip = torch.where(torch.linalg.det(rotation) < 0, -1.0, 1.0).to(y.dtype)
        rotation = torch.cat([rotation[..., :1] * flip[:, None, None], rotation[..., 1:]], -1)
        columns = list(y.unbind(-1))
        for positions in index:
            u = torch.stack([columns[p] for p in positions], dim=-1)
            u = (rotation @ u[..., None])[..., 0]
            for j, p in enumerate(positions):
                columns[p] = u[:, j]
        return torch.stack(columns, dim=-1)

    return transform


def _angular_problem(constraint: Conserved, system) -> str | None:
    vectors = constraint.resolved_vectors(system)
    listed = [c for u in vectors for c in u]
    velocity = _velocity_of(system)
    if system.formulation == "newtonian":
        if system.masses == "learn":
            return ("masses='learn' learns one mass per coordinate, so p = m v need not be "
                    "parallel to v. Hint: give fixed masses.")
        masses = system.masses if isinstance(system.masses, tuple) else (system.masses,) * len(
            system.coords)
        mass = dict(zip(system.coords, masses))
        for u in vectors:
            if len({mass[c] for c in u}) != 1:
                return (f"the components of {u} have different masses, so p = m v is not "
                        "parallel to v.")
    for m in system.modules:
        expressions, is_law = _module_expressions(m, system)
        acts = (set(m.outputs) & set(listed) if isinstance(m, Dynamics)
                else _depends_on(expressions, listed + [velocity[c] for c in listed]))
        if not acts:
            continue
        if is_law:
            forces = _forces_of_law(m, system)
            total = _sum_torque(vectors, forces)
            if isinstance(m, Lagrangian):
                momentum = {c: sympy.diff(expressions[0], symbol(velocity[c])) for c in listed}
                total = [a + b for a, b in zip(total, _sum_torque(
                    vectors, momentum, positions={c: symbol(velocity[c]) for c in listed}))]
            if _vanishes(total, system):
                continue
            return f"the law of {m.kind} {m.name!r} exerts a torque on {list(vectors)}."
        if isinstance(m, (Potential, Lagrangian)) and _invariant(
                expressions, system, _rotation(system, vectors)):
            continue
        if isinstance(m, (Potential, Lagrangian)):
            return (f"the inputs of {m.kind} {m.name!r} change when {list(vectors)} are rotated "
                    f"together. Hint: RotationInvariant{tuple(vectors)} on module {m.name!r}.")
        return (f"the learned {m.kind} {m.name!r} acts on {list(vectors)} and its torque is not "
                "zero by construction.")
    return None


def _cross_sym(a, b) -> list:
    if len(a) == 2:
        return [a[0] * b[1] - a[1] * b[0]]
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]


def _sum_torque(vectors, forces, positions=None) -> list:
    """``sum_k r_k x F_k`` (sympy), with ``r`` the coordinates (or ``positions``)."""
    total = None
    for u in vectors:
        r = [positions[c] if positions else symbol(c) for c in u]
        f = [forces.get(c, sympy.Integer(0)) for c in u]
        torque = _cross_sym(r, f)
        total = torque if total is None else [a + b for a, b in zip(total, torque)]
    return total

