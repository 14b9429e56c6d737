r"""Continuous invariances of a module: rotations of vectors, translations of groups.

Hard versions change what the block sees (a ``rewrite`` of the module spec before
compilation): instead of the components, the block is fed invariant features, so any
function of them is invariant.

- ``TranslationInvariant(("x1", "x2", "x3"))`` feeds the differences ``x2 - x1`` and
  ``x3 - x1`` (named ``x2_minus_x1``, ``x3_minus_x1``) instead of ``x1, x2, x3``.
- ``RotationInvariant(("x", "y"))`` feeds the squared norm ``x**2 + y**2`` (named
  ``x_y_sq``); several vectors ``RotationInvariant(("x1", "y1"), ("x2", "y2"))`` are
  rotated together and feed their squared norms and pairwise dot products
  (``x1_y1_sq``, ``x1_y1_dot_x2_y2``, ``x2_y2_sq``): by the first fundamental theorem of
  invariant theory every O(d)-invariant function of vectors is a function of these.
  Squared norms rather than norms keep the features smooth at the origin (the gradient
  of ``sqrt(x**2 + y**2)`` is undefined at 0).
- Both on aligned inputs, ``TranslationInvariant(("x1", "x2"), ("y1", "y2"))`` with
  ``RotationInvariant(("x1", "y1"), ("x2", "y2"))``, feed the invariants of the
  difference vectors ``r_k - r_1``: here one feature, ``x2_y2_minus_x1_y1_sq``, the squared
  distance of the two particles.

Inputs not named by a constraint pass through unchanged. The block's input names change
(that is the point); the violation of every constraint is still measured on the
module's original inputs. A module with a law is not rewritten (a law is what it is).

Soft versions penalize the infinitesimal form of the invariance at the training states
(Lie derivatives, exact at the data and free of extrapolation): for a translation group
:math:`G`, :math:`\sum_{i \in G} \partial f / \partial z_i`; for rotations, every generator
:math:`\sum_k (u_{k,a}\, \partial f/\partial u_{k,b} - u_{k,b}\, \partial f/\partial u_{k,a})`,
:math:`a < b`, over the listed vectors :math:`u_k`. The measure divides by the bound these
sums obey (:math:`\sqrt{|G|}\,|\nabla_G f|` and :math:`\sum_k |u_k|\,|\nabla_{u_k} f|`), so
it lies in [0, 1]. A rotation generator tests proper rotations (SO(d)); the hard version
is invariant under reflections too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sympy
import torch

from pikan.errors import SpecError
from pikan.spec.expr import is_valid_name, symbol
from pikan.spec.system import register_constraint

from .base import (
    Constraint,
    attached_module,
    check_input_names,
    gradients,
    module_function,
    module_inputs,
    names_tuple,
    substitute_inputs,
)


def _groups_from_args(args: tuple, keyword, kind: str, what: str) -> tuple[tuple[str, ...], ...]:
    """``("x", "y")`` -> one group; ``(("x1", "y1"), ("x2", "y2"))`` -> several."""
    if keyword is not None:
        if args:
            raise SpecError(f"{kind}: give the {what}s either positionally or as {what}s=, "
                            "not both.")
        args = tuple(keyword)
    if not args:
        raise SpecError(f"{kind}: expected at least one {what} of input names, got none.")
    if all(isinstance(a, str) for a in args):
        args = (args,)
    groups = tuple(names_tuple(g, f"{kind} {what}") for g in args)
    flat = [n for g in groups for n in g]
    if len(set(flat)) != len(flat):
        raise SpecError(f"{kind}: an input appears twice in {[list(g) for g in groups]}.")
    return groups


def _label(vector: Sequence[str]) -> str:
    return "_".join(vector)


@register_constraint
@dataclass(frozen=True, init=False)
class RotationInvariant(Constraint):
    """The module depends on vectors only through their norms and dot products.

    Parameters
    ----------
    *vectors : tuples of str, or str
        ``RotationInvariant("x", "y")`` or ``RotationInvariant(("x", "y"))``: one vector.
        ``RotationInvariant(("x1", "y1"), ("x2", "y2"))``: vectors rotated together. All
        have the same dimension (>= 2).
    mode : "hard" or "soft"
        Hard: the block is fed squared norms and dot products (see the module docstring).
        Soft: penalty on the rotation generators applied to ``f``.
    weight : float
    """

    vectors: tuple

    def __init__(self, *args, vectors=None, mode: str = "hard", weight: float = 1.0) -> None:
        groups = _groups_from_args(args, vectors, "RotationInvariant", "vector")
        if len({len(g) for g in groups}) != 1 or len(groups[0]) < 2:
            raise SpecError(f"RotationInvariant: vectors need two or more components and one "
                            f"dimension for all, got {[list(g) for g in groups]}.")
        object.__setattr__(self, "vectors", groups)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "weight", weight)
        self.__post_init__()

    @property
    def used_inputs(self) -> tuple[str, ...]:
        return tuple(n for g in self.vectors for n in g)

    def _label_parts(self) -> list[str]:
        return ["(" + ", ".join(g) + ")" for g in self.vectors]

    def residual(self, model, q, v, module=None):
        """Rotation generators applied to ``f`` and their bound (see the module docstring)."""
        name = attached_module(model, self, module)
        fn = module_function(model, name)
        z = module_inputs(model, name, q, v)
        names = model.spec.module(name).input_names
        grad = gradients(fn, z)  # (batch, n_out, n_in)
        index = [[names.index(n) for n in u] for u in self.vectors]
        d = len(self.vectors[0])
        generators = []
        for a in range(d):
            for b in range(a + 1, d):
                generators.append(sum(z[:, None, u[a]] * grad[:, :, u[b]]
                                      - z[:, None, u[b]] * grad[:, :, u[a]] for u in index))
        bound = sum(z[:, u].norm(dim=-1)[:, None] * grad[:, :, u].norm(dim=-1) for u in index)
        residual = torch.stack(generators, dim=-1)
        return residual, bound[..., None].expand_as(residual)

    def rewrite(self, module, system):
        """Hard version: feed invariant features instead of components (module docstring)."""
        return _rewrite(self, module)

    def _check(self, system, module) -> None:
        check_input_names(self, module, self.used_inputs)
        if self.mode == "hard" and module.law is None:
            invariant_features(module)  # raises for combinations pikan cannot build


@register_constraint
@dataclass(frozen=True, init=False)
class TranslationInvariant(Constraint):
    """The module depends on each group of inputs only through differences.

    Parameters
    ----------
    *groups : tuples of str, or str
        ``TranslationInvariant("x1", "x2")``: one group (shifting ``x1`` and ``x2``
        together leaves the module unchanged). ``TranslationInvariant(("x1", "x2"),
        ("y1", "y2"))``: two groups, each shifted on its own (translations in x and y).
        Each group has at least two inputs.
    mode : "hard" or "soft"
        Hard: the block is fed ``x_k - x_1`` instead of ``x_1, ..., x_k``. Soft: penalty
        on ``sum_k df/dx_k`` (the derivative along a shift of the group).
    weight : float
    """

    groups: tuple

    def __init__(self, *args, groups=None, mode: str = "hard", weight: float = 1.0) -> None:
        normalized = _groups_from_args(args, groups, "TranslationInvariant", "group")
        for g in normalized:
            if len(g) < 2:
                raise SpecError(f"TranslationInvariant: the group {list(g)} has one input; a "
                                "function invariant under shifting its only input is constant "
                                "in it. Give groups of two or more inputs that move together.")
        object.__setattr__(self, "groups", normalized)
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "weight", weight)
        self.__post_init__()

    @property
    def used_inputs(self) -> tuple[str, ...]:
        return tuple(n for g in self.groups for n in g)

    def _label_parts(self) -> list[str]:
        return ["(" + ", ".join(g) + ")" for g in self.groups]

    def residual(self, model, q, v, module=None):
        """``sum_{i in G} df/dz_i`` per group and its bound (see the module docstring)."""
        name = attached_module(model, self, module)
        fn = module_function(model, name)
        z = module_inputs(model, name, q, v)
        names = model.spec.module(name).input_names
        grad = gradients(fn, z)
        index = [[names.index(n) for n in g] for g in self.groups]
        residual = torch.stack([grad[:, :, g].sum(-1) for g in index], dim=-1)
        bound = torch.stack([len(g) ** 0.5 * grad[:, :, g].norm(dim=-1) for g in index], dim=-1)
        return residual, bound

    def rewrite(self, module, system):
        """Hard version: feed differences instead of the group members (module docstring)."""
        return _rewrite(self, module)

    def _check(self, system, module) -> None:
        check_input_names(self, module, self.used_inputs)
        if self.mode == "hard" and module.law is None:
            invariant_features(module)


# ------------------------------------------------------------------ the combined rewrite


def _hard_geometric(module) -> tuple[list[TranslationInvariant], list[RotationInvariant]]:
    hard = [c for c in module.constraints if getattr(c, "mode", None) == "hard"]
    return ([c for c in hard if isinstance(c, TranslationInvariant)],
            [c for c in hard if isinstance(c, RotationInvariant)])


def consumed_inputs(module) -> set[str]:
    """Inputs of ``module`` that its hard invariance constraints replace by features."""
    translations, rotations = _hard_geometric(module)
    return {n for c in translations + rotations for n in c.used_inputs}


def invariant_features(module) -> list[tuple[str, sympy.Expr]]:
    """The block inputs after all hard invariance constraints of ``module``.

    Returns
    -------
    list of (name, expression)
        In input order; each expression is in the module's original input names.

    Raises
    ------
    SpecError
        Overlapping groups, or translations and rotations that do not line up (see the
        module docstring for the supported combination).
    """
    where = f"module {module.name!r}"
    translations, rotations = _hard_geometric(module)
    groups = [g for c in translations for g in c.groups]
    group_of: dict[str, int] = {}
    for i, g in enumerate(groups):
        for n in g:
            if n in group_of:
                raise SpecError(f"{where}: {n!r} is in two TranslationInvariant groups "
                                f"({list(groups[group_of[n]])} and {list(g)}); merge them.")
            group_of[n] = i
    seen: set[str] = set()
    for c in rotations:
        for n in c.used_inputs:
            if n in seen:
                raise SpecError(f"{where}: {n!r} is in two RotationInvariant constraints; list "
                                "vectors that rotate together in one RotationInvariant.")
            seen.add(n)
    anchors: dict[str, list[tuple[str, sympy.Expr]]] = {}
    used_groups: set[int] = set()
    for c in rotations:
        names = c.used_inputs
        inside = [n in group_of for n in names]
        if not any(inside):
            vectors = [(_label(u), [symbol(n) for n in u]) for u in c.vectors]
        elif all(inside):
            for j in range(len(c.vectors[0])):
                members = {u[j] for u in c.vectors}
                index = group_of[c.vectors[0][j]]
                if {group_of[n] for n in members} != {index} or set(groups[index]) != members:
                    raise _misaligned(where, c)
                used_groups.add(index)
            base = c.vectors[0]
            vectors = [(f"{_label(u)}_minus_{_label(base)}",
                        [symbol(a) - symbol(b) for a, b in zip(u, base)]) for u in c.vectors[1:]]
        else:
            raise _misaligned(where, c)
        features = []
        for i, (label_i, u) in enumerate(vectors):
            features.append((f"{label_i}_sq", sum(x**2 for x in u)))
            for label_j, w in vectors[i + 1:]:
                features.append((f"{label_i}_dot_{label_j}", sum(a * b for a, b in zip(u, w))))
        anchors[c.vectors[0][0]] = features
    for i, g in enumerate(groups):
        if i not in used_groups:
            anchors[g[0]] = [(f"{b}_minus_{g[0]}", symbol(b) - symbol(g[0])) for b in g[1:]]
    consumed = consumed_inputs(module)
    out: list[tuple[str, sympy.Expr]] = []
    for name in module.input_names:
        if name in anchors:
            out += anchors[name]
        elif name not in consumed:
            out.append((name, symbol(name)))
    names = [n for n, _ in out]
    for n in names:
        if not is_valid_name(n) or names.count(n) > 1:
            raise SpecError(f"{where}: the invariant feature name {n!r} is not valid or clashes "
                            "with another input; rename the inputs.")
    return out


def _misaligned(where: str, c: RotationInvariant) -> SpecError:
    return SpecError(
        f"{where}: hard {c.label} and hard TranslationInvariant overlap in a way pikan cannot "
        "combine. Supported: vectors that are not translated, or all vectors translated "
        "together component by component, e.g. TranslationInvariant(('x1', 'x2'), ('y1', 'y2')) "
        "with RotationInvariant(('x1', 'y1'), ('x2', 'y2')). Hint: make one of them "
        "mode='soft'.")


def _rewrite(constraint, module):
    """Apply every hard invariance constraint of ``module`` at once (the first one called
    does the work and removes them all; the others then find themselves gone)."""
    if module.law is not None or constraint not in module.constraints:
        return module
    translations, rotations = _hard_geometric(module)
    features = invariant_features(module)
    consumed = consumed_inputs(module)
    geometric = set(translations) | set(rotations)
    keep = tuple(c for c in module.constraints
                 if c not in geometric and getattr(c, "mode", None) == "hard"
                 and not set(getattr(c, "used_inputs", ())) & consumed)
    if module.bindings:
        bindings = [{name: substitute_inputs(expr, b) for name, expr in features}
                    for b in module.bindings]
        return module.replace(inputs=[n for n, _ in features], bindings=bindings,
                              constraints=keep)
    inputs = {name: substitute_inputs(expr, module.inputs) for name, expr in features}
    return module.replace(inputs=inputs, constraints=keep)
