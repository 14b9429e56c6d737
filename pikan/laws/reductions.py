r"""Decomposition before search: is ``y`` a function of fewer inputs than it was given?

A law of ``d`` inputs is often a law of ``d - 1``: of ``n2/n1`` rather than ``n1`` and
``n2`` (``atan(n2/n1)``), of ``E - mu`` (a Fermi occupation), of ``m*lam`` or ``x1 + x2``.
Such a law is found far more easily in the reduced inputs, and the reduction applies
again to the smaller problem. :func:`reductions` tests every pair of inputs under
:data:`OPERATIONS` on the samples themselves, with no model:

- inputs standardized, each sample's nearest neighbour found (a k-d tree);
- the *roughness* is the mean squared difference of ``y`` between neighbours over twice
  its variance: near 0 when ``y`` is a smooth function of the inputs, about 1 when the
  neighbours' values are unrelated;
- with a pair replaced by its combination ``u``, the neighbours are closer (one dimension
  fewer) when ``y`` is a function of ``u`` and the rest, so the roughness falls; when it is
  not, samples far apart in the pair but close in ``u`` become neighbours and it rises.

A pair is kept when its roughness is at most :data:`KEEP` of the full problem's. A wrong
reduction costs only time: every law found in the reduced inputs is mapped back and
judged on the original samples (:func:`pikan.find_law`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.spatial
import sympy

from pikan.laws.candidates import Target

__all__ = ["KEEP", "OPERATIONS", "Reduction", "reductions", "roughness"]

OPERATIONS = ("ratio", "product", "difference", "sum")
"""How two inputs may combine into one (``ratio`` and ``product`` for inputs of one sign
only; a ratio of pure numbers or a product of groups keeps the law dimensionally sound)."""

KEEP = 0.5
"""A reduction is kept when its roughness is at most this fraction of the full problem's."""


@dataclass(frozen=True)
class Reduction:
    """Inputs ``i`` and ``j`` of a target replaced by one combination ``u``.

    Attributes
    ----------
    operation : str
        One of :data:`OPERATIONS`.
    i, j : int
        The two inputs' columns.
    roughness : float
        :func:`roughness` of the reduced problem.
    relative : float
        That roughness over the full problem's (at most :data:`KEEP`; near 0: ``y`` is
        clearly a function of the reduced inputs).
    """

    operation: str
    i: int
    j: int
    roughness: float = float("nan")
    relative: float = float("nan")

    def expr(self, names) -> sympy.Expr:
        """``u`` in the target's input names."""
        a, b = sympy.Symbol(names[self.i]), sympy.Symbol(names[self.j])
        return {"ratio": a / b, "product": a * b, "difference": a - b,
                "sum": a + b}[self.operation]

    def values(self, z: np.ndarray) -> np.ndarray:
        a, b = z[:, self.i], z[:, self.j]
        return {"ratio": lambda: a / b, "product": lambda: a * b,
                "difference": lambda: a - b, "sum": lambda: a + b}[self.operation]()

    def reduce(self, target: Target, name: str) -> Target:
        """The reduced value target: ``u`` (called ``name``) in place of inputs i and j."""
        keep = [k for k in range(target.z.shape[1]) if k not in (self.i, self.j)]
        z = np.column_stack([target.z[:, keep], self.values(target.z)])
        return Target((*[target.names[k] for k in keep], name), z, "values", target.y,
                      weights=target.weights)


def roughness(z: np.ndarray, y: np.ndarray) -> float:
    """Mean squared difference of ``y`` between nearest neighbours in standardized ``z``,
    over twice the variance of ``y`` (0: a smooth function of ``z``; about 1: none)."""
    spread = z.std(axis=0)
    zs = z / np.where(spread > 0, spread, 1.0)
    variance = float(np.var(y))
    if variance == 0 or not np.all(np.isfinite(zs)):
        return float("inf")
    _, index = scipy.spatial.cKDTree(zs).query(zs, k=2)
    return float(np.mean((y - y[index[:, 1]]) ** 2) / (2 * variance))


def _one_sign(column: np.ndarray) -> bool:
    return bool(np.all(column > 0) or np.all(column < 0))


def reductions(target: Target, max_rows: int = 1000, max_keep: int = 2,
               seed: int = 0) -> list[Reduction]:
    """The pair reductions of a value target that the samples support, best first.

    Parameters
    ----------
    target : Target
        A value target with at least two inputs.
    max_rows : int
        Samples the test uses (a seeded subset).
    max_keep : int
        Reductions returned at most (a ratio counts twice: both ways up).
    seed : int

    Returns
    -------
    list of Reduction
        Those with roughness at most :data:`KEEP` times the full problem's, smoothest
        first.
    """
    d = target.z.shape[1]
    if target.kind != "values" or d < 2:
        return []
    rng = np.random.default_rng(seed)
    n = target.y.size
    rows = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, False))
    z, y = target.z[rows], target.y[rows]
    full = roughness(z, y)
    if not np.isfinite(full) or full == 0:
        return []
    found = []
    for i in range(d):
        for j in range(i + 1, d):
            signed = _one_sign(z[:, i]) and _one_sign(z[:, j])
            for operation in OPERATIONS:
                if operation in ("ratio", "product") and not signed:
                    continue
                reduction = Reduction(operation, i, j)
                u = reduction.values(z)
                rest = [k for k in range(d) if k not in (i, j)]
                score = roughness(np.column_stack([z[:, rest], u]), y)
                if score <= KEEP * full:
                    found.append(Reduction(operation, i, j, score, score / full))
                    if operation == "ratio":  # a law may be simple in n2/n1 but not n1/n2
                        found.append(Reduction(operation, j, i, score, score / full))
    found.sort(key=lambda r: r.roughness)
    return found[:max_keep]
