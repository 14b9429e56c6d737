r"""System-level conservation laws: energy, momentum, angular momentum.

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

:math:`p = m v` (Newtonian) or :math:`p = \partial L / \partial v` (Lagrangian, with
:math:`F = \partial L/\partial q + Q`). When ``groups``/``vectors`` are omitted they are
read from the coordinate names: coordinates that differ only in trailing digits form a
group (``x1, x2, x3``), and groups of equal size zip into vectors (``(x1, y1), (x2, y2)``).

Measures (see :mod:`pikan.constraints.base`): the rate divided by the sum of the
magnitudes that make it up (``|v| sum_m |F_m|`` for energy, ``sum_{G} sum_m |F_m,i|`` for
momentum, ``sum_k |r_k| sum_m |F_m,k| + |v_k||p_k|`` for angular momentum), so each is in
[0, 1]. On data, the drift of the conserved quantity along each trajectory (its standard
deviation over time) relative to the typical size of its terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

QUANTITIES = ("energy", "momentum", "angular_momentum")


@register_constraint
@dataclass(frozen=True)
class Conserved(Constraint):
    """A conserved quantity of the whole system (attach to ``System(constraints=...)``).

    Parameters
    ----------
    quantity : "energy", "momentum" or "angular_momentum"
    groups : list of tuples of coordinate names, optional
        Momentum only: coordinates that translate together (one momentum per group).
    vectors : list of tuples of coordinate names, optional
        Angular momentum only: position vectors (2 or 3 components) rotated together.
    mode : "hard" or "soft"
        Hard: checked to hold by construction (SpecError with a hint otherwise). Soft:
        penalty on the rate of change along the training states.
    weight : float

    Examples
    --------
    >>> System("two_body", coords=["x1", "y1", "x2", "y2"], modules=[...],
    ...        constraints=[Conserved("energy"), Conserved("momentum")])
    """

    scope = "system"

    quantity: str
    groups: tuple | None = None
    vectors: tuple | None = None

    def __post_init__(self) -> None:
        if self.quantity not in QUANTITIES:
            raise SpecError(f"Conserved: unknown quantity {self.quantity!r}; expected one of "
                            f"{', '.join(QUANTITIES)}.")
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
        coords = set(system.coords)
        listed = (self.groups or ()) + (self.vectors or ())
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
                       "angular_momentum": _angular_problem}[self.quantity](self, system)
            if problem:
                raise SpecError(f"{where}: {self.label} cannot hold by construction: {problem} "
                                f"Or use Conserved({self.quantity!r}, mode='soft') for a "
                                "penalty instead.")

    # --------------------------------------------------------------- measures
    def residual(self, model, q, v, module=None):
        """The rate of change of the quantity and the magnitudes it is made of."""
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

    def _quantity(self, model, data, q, v) -> tuple[np.ndarray, np.ndarray]:
        """The conserved quantity ``(T, k)`` along one trajectory and its size ``(T,)``."""
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


# ------------------------------------------------------------------------- helpers


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
    index = [system.state_names.index(_velocity_of(system)[n] if velocities else n)
             for n in names]

    def transform(y: Tensor) -> Tensor:
        s = torch.linspace(-0.7, 0.9, y.shape[0], dtype=y.dtype)
        columns = list(y.unbind(-1))
        for i in index:
            columns[i] = columns[i] + s
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

