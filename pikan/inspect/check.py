"""How well a model (and its data) satisfy every declared constraint.

:func:`check_constraints` measures each constraint of ``model.spec`` (module and system
level, plus the defaults a module gets, such as Positive on a learned Dissipation) on the
model and, where it makes sense, on the data, and returns a :class:`ConstraintReport`
that prints as a table. Every number is scale-free; 0 means satisfied (see
:mod:`pikan.constraints.base` for the measures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pikan import constraints as library
from pikan.constraints.base import states
from pikan.errors import SpecError


@dataclass(frozen=True)
class ConstraintCheck:
    """One row of a :class:`ConstraintReport`.

    Attributes
    ----------
    constraint : object
        The constraint itself.
    where : str
        The module name, or ``"system"``.
    mode : str
        ``"hard"`` or ``"soft"``.
    violation : float
        On the model, at the data's states.
    data_violation : float or None
        On the data itself (conservation along trajectories); None where meaningless.
    default : bool
        True for a constraint the module got by default rather than by declaration.
    """

    constraint: Any
    where: str
    mode: str
    violation: float
    data_violation: float | None
    default: bool = False

    @property
    def label(self) -> str:
        """``"V: Even(x)"`` or ``"system: Conserved(energy)"``."""
        return f"{self.where}: {getattr(self.constraint, 'label', repr(self.constraint))}"

    def to_dict(self) -> dict:
        return {"constraint": getattr(self.constraint, "label", repr(self.constraint)),
                "where": self.where, "mode": self.mode, "violation": self.violation,
                "data_violation": self.data_violation, "default": self.default}


@dataclass(frozen=True)
class ConstraintReport:
    """Violations of every constraint of a model; iterate for rows, ``print`` for a table.

    Attributes
    ----------
    rows : tuple of ConstraintCheck
    n_states : int
        Number of states the model was measured on.
    """

    rows: tuple[ConstraintCheck, ...]
    n_states: int

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | str) -> ConstraintCheck:
        """A row by position or by label (``report["V: Even(x)"]``)."""
        if isinstance(key, int):
            return self.rows[key]
        for row in self.rows:
            if row.label == key:
                return row
        raise KeyError(f"no constraint {key!r}; rows: {[r.label for r in self.rows]}")

    def worst(self, mode: str | None = None) -> float:
        """Largest model violation (over rows of one mode if given); 0 without rows."""
        values = [r.violation for r in self.rows if mode is None or r.mode == mode]
        return max(values, default=0.0)

    def to_dict(self) -> dict:
        """JSON-ready: ``{"n_states": ..., "rows": [...]}`` (inf written as None)."""
        def clean(x):
            return None if x is None or not math.isfinite(x) else x

        return {"n_states": self.n_states,
                "rows": [{**r.to_dict(), "violation": clean(r.violation),
                          "data_violation": clean(r.data_violation)} for r in self.rows]}

    def __str__(self) -> str:
        header = ("constraint", "where", "mode", "model", "data")
        lines = [(getattr(r.constraint, "label", repr(r.constraint))
                  + (" [default]" if r.default else ""), r.where, r.mode,
                  f"{r.violation:.2e}",
                  "-" if r.data_violation is None else f"{r.data_violation:.2e}")
                 for r in self.rows]
        if not lines:
            return "no constraints declared"
        widths = [max(len(x) for x in column) for column in zip(header, *lines)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
        out += [fmt.format(*line) for line in lines]
        out = [line.rstrip() for line in out]
        out.append(f"(violations are scale-free, 0 = satisfied; model measured on "
                   f"{self.n_states} states)")
        return "\n".join(out)


def check_constraints(model, data, max_states: int = 4096, seed: int = 0) -> ConstraintReport:
    """Measure every constraint of ``model.spec`` on the model and on the data.

    Parameters
    ----------
    model : pikan.model.compile.Model
    data : pikan.Trajectories, or tuple (q, v) / (q, v, ids)
        States to measure the model on. Arrays ``(samples, n)`` are states without time
        order (no conservation check on the data); ``(T, batch, n)`` or ``ids`` give
        trajectories.
    max_states : int
        The model is measured on at most this many states (a seeded random subset).
    seed : int
        Seed of the subset.

    Returns
    -------
    ConstraintReport
        One row per declared constraint (module ones first, then system ones), plus the
        default constraints the compiled model applies. Constraint types that cannot
        measure themselves (no ``violation`` method) are left out.

    Raises
    ------
    SpecError
        A driven system (constraints are measured on states without their times).
    """

    spec = model.spec
    if spec.driven:
        raise SpecError(f"check_constraints: system {spec.name!r} is driven (a module reads "
                        "time t); constraint violations are not measured on driven systems yet")
    if hasattr(data, "check_coords"):
        data.check_coords(spec.coords)
    q, v = states(data)
    if q.shape[-1] != len(spec.coords):
        raise SpecError(f"the data has {q.shape[-1]} coordinates; system {spec.name!r} has "
                        f"{len(spec.coords)} ({', '.join(spec.coords)}).")
    if len(q) > max_states:
        keep = np.sort(np.random.default_rng(seed).choice(len(q), max_states, replace=False))
        q, v = q[keep], v[keep]
    rows = []
    entries = [(name, c, False) for name, c in library.declared(spec)]
    for m in spec.modules:  # defaults, where the compiled block really carries them
        applied = model.blocks[m.name].spec.constraints
        entries += [(m.name, c, True) for c in library.default_constraints(m) if c in applied]
    entries.sort(key=lambda e: e[0] is None)
    for name, constraint, default in entries:
        if not hasattr(constraint, "violation"):  # a registered type outside the library
            continue
        mode = getattr(constraint, "mode", "hard")
        violation = constraint.violation(model, q, v, module=name)
        data_violation = constraint.data_violation(data, model=model)
        rows.append(ConstraintCheck(constraint, name or "system", mode, violation,
                                    data_violation, default))
    return ConstraintReport(tuple(rows), len(q))
