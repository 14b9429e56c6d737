"""Which pairs of learned modules can trade a term, and which convention fixes the split.

The data fix the total force of a system, not how it is split among its modules. A pair of
learned modules that can both produce the same term (two potentials reading the same
coordinates, a potential next to a position-dependent force) is an :class:`Exchange`;
:func:`exchanges` lists every pair of a spec with the convention that fixes it (enforced
by construction in :mod:`pikan.model.compile`) or None, and :func:`pikan.compile` warns about the
pairs nothing fixes. Pure spec analysis: sympy and numpy, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from pikan.spec.system import Dissipation, Dynamics, Module, Potential, System

__all__ = ["Exchange", "exchanges"]


@dataclass(frozen=True)
class Exchange:
    """Two learned modules that could trade a term: the data fix only their sum.

    Attributes
    ----------
    modules : tuple of two str
        The module names, in spec order.
    what : str
        The term that can move between them, e.g. ``"a constant force on x"``.
    convention : str or None
        The convention that fixes the split (enforced by construction), or None when
        nothing does (then :func:`compile` warns).
    """

    modules: tuple[str, str]
    what: str
    convention: str | None = None

    @property
    def fixed(self) -> bool:
        """True when a convention fixes the split."""
        return self.convention is not None

    def message(self) -> str:
        """One line for a warning or a report."""
        a, b = self.modules
        if self.fixed:
            return f"modules {a!r} and {b!r} could exchange {self.what}; fixed: {self.convention}."
        return (f"modules {a!r} and {b!r} can exchange {self.what}: the data fix only their "
                "sum and no convention splits them, so their laws may share it arbitrarily. "
                "Hint: give one of them a law, or inputs or constraints that separate them.")


_KIND_ORDER = {"Potential": 0, "Lagrangian": 1, "Dissipation": 2, "Dynamics": 3, "Flow": 3}


def _reach(module: Module, system: System) -> dict:
    """What a module reads and where its force acts, in coordinate names."""
    depends = {s.name for b in module.input_bindings for e in b.values()
               for s in sympy.sympify(e).free_symbols}
    to_coord = dict(zip(system.velocities, system.coords))
    positions = depends & set(system.coords)
    velocities = {to_coord[n] for n in depends if n in to_coord}
    if isinstance(module, Potential):
        acts = positions
    elif isinstance(module, Dissipation):
        acts = velocities
    elif isinstance(module, Dynamics):
        acts = set(module.outputs)
    else:
        acts = positions | velocities
    kind = None
    if isinstance(module, Dynamics):
        if module.gyroscopic:
            kind = "gyroscopic"
        elif positions and velocities:
            kind = "mixed"
        elif velocities:
            kind = "at rest zero" if module.vanish_at_rest else "velocity"
        elif positions:
            kind = "position"
        else:
            kind = "time"  # a drive: a force of time alone
    return {"acts": acts, "kind": kind}


def _names(coords: set) -> str:
    return ", ".join(sorted(coords))


_DEGREE = 2
"""Degree of the polynomial terms :func:`_share_terms` probes."""


def _terms(module: Module, values: dict) -> np.ndarray:
    """Columns ``(P, k)``: each monomial of degree 1..``_DEGREE`` in the module's inputs,
    summed over its bindings, at the probe states ``values`` (name -> (P,) array)."""
    columns = None
    for binding in module.input_bindings:
        z = []
        for expr in binding.values():
            expr = sympy.sympify(expr)
            f = sympy.lambdify(sorted(expr.free_symbols, key=str), expr, "numpy")
            args = [values[str(s)] for s in sorted(expr.free_symbols, key=str)]
            z.append(np.broadcast_to(np.asarray(f(*args), dtype=np.float64),
                                     next(iter(values.values())).shape))
        cols = list(z) + [z[i] * z[j] for i in range(len(z)) for j in range(i, len(z))]
        stacked = np.stack(cols, axis=1)
        columns = stacked if columns is None else columns + stacked
    return columns


def _share_terms(a: Module, b: Module, system: System) -> bool | None:
    r"""Whether two scalar modules can both write a non-constant term (probed up to degree
    ``_DEGREE`` in their inputs, summed over bindings): the spans of their terms, each with
    the constant, meet in more than the constants at random states. None when a feature
    cannot be evaluated there (treated as sharing).

    ``V1(x, y)`` and ``V2(r)`` with ``r = sqrt(x**2 + y**2)`` share ``r**2``; a one-body
    trap summed over particles and a pair law of their differences share only constants.
    """
    rng = np.random.default_rng(0)
    n_cols = sum(len(m.input_names) * (len(m.input_names) + 3) // 2 for m in (a, b))
    probes = 4 * n_cols + 32
    values = {n: rng.normal(size=probes) for n in system.state_names}
    values.update({n: np.full(probes, float(v)) for n, v in system.params.items()})
    try:
        with np.errstate(all="ignore"):
            ta, tb = _terms(a, values), _terms(b, values)
    except (TypeError, ValueError, KeyError, NameError):
        return None
    if not (np.isfinite(ta).all() and np.isfinite(tb).all()):
        return None
    one = np.ones((probes, 1))

    def rank(m):
        m = m / np.maximum(np.linalg.norm(m, axis=0), 1e-300)
        s = np.linalg.svd(m, compute_uv=False)
        return int(np.sum(s > 1e-8 * s[0]))

    shared = rank(np.hstack([one, ta])) + rank(np.hstack([one, tb])) \
        - rank(np.hstack([one, ta, tb]))
    return shared > 1


def _exchange(a: Module, b: Module, system: System) -> tuple[str, str | None] | None:
    """``(what, convention)`` for two learned modules (``a`` first in :data:`_KIND_ORDER`)."""
    ra, rb = _reach(a, system), _reach(b, system)
    shared = ra["acts"] & rb["acts"]
    if not shared:
        return None
    on = _names(shared)
    # a Flow trades with a gradient flow what a Dynamics trades with a potential
    pair = tuple("Dynamics" if k == "Flow" else k for k in (a.kind, b.kind))
    constant = f"a constant force on {on}"
    same = {("Potential", "Potential"): f"a potential term in {on}",
            ("Lagrangian", "Lagrangian"): f"a Lagrangian term in {on}",
            ("Dissipation", "Dissipation"): f"a dissipation term in the velocities of {on}"}
    if pair in same:
        if _share_terms(a, b, system) is False:
            return (f"a constant only ({on} reach both, but through inputs that share no "
                    f"other term of degree <= {_DEGREE})"), "energies are defined up to a constant"
        return same[pair] + " (any function both can write)", None
    if pair in (("Potential", "Dissipation"), ("Dissipation", "Dynamics")) and (
            pair[0] == "Potential" or rb["kind"] in ("position", "time")):
        dissipation = a if isinstance(a, Dissipation) else b
        if dissipation.passive:
            return constant, (f"{dissipation.name!r} is passive (dD/dv = 0 at rest), so a "
                              "constant force is not dissipation")
        return constant + f" (a term c . v in {dissipation.name!r}; passive=False)", None
    if pair == ("Dissipation", "Dynamics"):
        if rb["kind"] == "gyroscopic":
            return None  # a gradient in v cannot do no work unless it is zero
        return f"a velocity-dependent force on {on} (any -dD/dv)", None
    kb = rb["kind"]
    if pair in (("Potential", "Dynamics"), ("Lagrangian", "Dynamics")):
        if kb == "gyroscopic":
            if pair[0] == "Lagrangian":
                return f"a gyroscopic force on {on} (a magnetic term A(q) . v in L)", None
            return None  # B v vanishes at rest and -dV/dq does not depend on v
        if kb in ("position", "mixed"):
            return f"a position-dependent force on {on} (any conservative part -dU/dq)", None
        if kb == "at rest zero":
            return constant, (f"{b.name!r} reads velocities only and vanishes at rest, so a "
                              f"constant force belongs to {a.name!r}")
        if kb == "time" and pair[0] == "Potential":
            return constant, (f"{b.name!r} is a drive (time alone): extraction moves a "
                              f"constant term of its law into {a.name!r}, so a constant "
                              f"force belongs to the potential")
        return constant + f" ({b.name!r} has vanish_at_rest=False)", None
    # two Dynamics pushing on a shared coordinate
    ka = ra["kind"]
    kinds = {ka, kb}
    if kinds == {"position", "at rest zero"}:
        velocity = a if ka == "at rest zero" else b
        return constant, f"{velocity.name!r} reads velocities only and vanishes at rest"
    if kinds == {"time", "at rest zero"}:
        velocity = a if ka == "at rest zero" else b
        return constant, f"{velocity.name!r} reads velocities only and vanishes at rest"
    if kinds in ({"position", "gyroscopic"}, {"time", "gyroscopic"}):
        return None  # F(q) or F(t) and B(q) v share only zero
    return f"a force on {on}", None


def exchanges(spec: System) -> list[Exchange]:
    """Every pair of learned modules that could trade a term, and what fixes the split.

    The data fix the total force; a term two learned modules can both produce is split
    between them only by a convention. A module with a law cannot trade (it is fixed).
    The rules, for modules acting on a shared coordinate:

    - two Potentials, two Lagrangians, two Dissipations: any common term (not fixed);
    - a Potential (or Lagrangian) and a Dynamics that reads positions: a conservative
      force (not fixed); one that reads velocities only: a constant force, fixed when it
      vanishes at rest (``vanish_at_rest``); a gyroscopic one: nothing beside a
      Potential, a magnetic term beside a Lagrangian (not fixed);
    - a Potential and a Dissipation: a constant force, fixed when it is ``passive``;
    - a Dissipation and a velocity-dependent Dynamics: any ``-dD/dv`` (not fixed);
    - two Dynamics: any common force, except a position-only one beside one that
      vanishes at rest (a constant, fixed) or beside a gyroscopic one (nothing).

    Parameters
    ----------
    spec : System

    Returns
    -------
    list of Exchange
        In spec order of the pairs; ``convention`` None where nothing fixes the split.
    """
    learned = sorted((m for m in spec.modules if m.law is None),
                     key=lambda m: _KIND_ORDER[m.kind])
    order = {m.name: i for i, m in enumerate(spec.modules)}
    out = []
    for i, a in enumerate(learned):
        for b in learned[i + 1:]:
            found = _exchange(a, b, spec)
            if found is not None:
                names = tuple(sorted((a.name, b.name), key=order.get))
                out.append(Exchange(names, found[0], found[1]))
    return sorted(out, key=lambda e: (order[e.modules[0]], order[e.modules[1]]))


