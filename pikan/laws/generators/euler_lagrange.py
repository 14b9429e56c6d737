r"""Lagrangian laws by sparse regression on the Euler--Lagrange equations.

The values of a learned Lagrangian cannot be read as its law: ``L``, ``c L`` and ``L +
dF/dt`` give the same motion, so a KAN block holds one arbitrary member of that family,
and when training has not pinned it down, not even that. What the motion does fix is
linear in ``L``: for a candidate :math:`L = \sum_k c_k \phi_k(q, v)` over a term library,
the Euler--Lagrange equations at every observed state read

.. math::

    \sum_k c_k \Big[ \frac{\partial^2 \phi_k}{\partial v \partial v} a
    + \frac{\partial^2 \phi_k}{\partial v \partial q} v - \frac{\partial \phi_k}{\partial q}
    \Big] = Q,

with ``a`` the observed accelerations and ``Q`` the other modules' generalized forces
(Dynamics and Dissipation). Every coefficient enters linearly, so the law is a sparse
least-squares problem. Total derivatives (``v f(q)`` with a gradient ``f``) and constants
give zero columns and drop out by themselves. Without forces the equations are
homogeneous (the scale of ``L`` is free): each diagonal kinetic term ``v_i**2`` in turn is
anchored at coefficient 1, and the law is scaled at the end to the trained model's own
mass matrix ``d2L/dv2`` (its scale is as arbitrary as any, but it is the model's), or to
unit mean mass when the model's is unusable.

The library is built from the module's inputs: velocity monomials up to degree two
(inputs that depend on a velocity) times position factors ``1, p, ..., p**4, cos(p),
sin(p)`` (and ``1/p`` for an input that stays positive on the data) of each position
input. Sparsity by sequentially thresholded least squares (STLSQ) over a sweep of
thresholds; every support found is one candidate, scored by the relative RMS error of
the accelerations it predicts.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import sympy
import torch

from pikan.spec.expr import symbol
from pikan.laws.numpy_expr import numpy_function
from pikan.laws.law import in_state
from pikan.model.mechanics import mass_matrix
from pikan.laws.candidates import Fit, complexity

__all__ = ["euler_lagrange_fits", "library_terms"]

THRESHOLDS = (0.0, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3)
"""STLSQ thresholds on coefficients of unit-scaled columns, relative to the largest."""


def library_terms(module, system, z: np.ndarray | None = None) -> list[sympy.Expr]:
    """Candidate terms of a Lagrangian in the module's input names (see module docstring).

    ``z`` (samples of the inputs, columns in input order) decides which inputs stay
    positive and get a ``1/p`` factor.
    """
    velocities = {symbol(n) for n in system.velocities}
    names = list(module.input_names)
    moving = [symbol(n) for n in names if module.inputs[n].free_symbols & velocities]
    still = [(k, symbol(n)) for k, n in enumerate(names) if symbol(n) not in moving]
    monomials = [sympy.Integer(1), *moving,
                 *(a * b for a, b in itertools.combinations_with_replacement(moving, 2))]
    factors = [sympy.Integer(1)]
    for k, p in still:
        factors += [p, p**2, p**3, p**4, sympy.cos(p), sympy.sin(p)]
        if z is not None and np.all(z[:, k] > 0):
            factors.append(1 / p)
    return [m * f for m in monomials for f in factors]


class _Columns:
    """Per-term Euler--Lagrange columns and mass matrices on the samples."""

    def __init__(self, terms, module, system, q, v, a):
        coords = [symbol(c) for c in system.coords]
        vels = [symbol(c) for c in system.velocities]
        names = [*system.coords, *system.velocities]
        cols = [*q.T, *v.T]
        n, samples = len(coords), q.shape[0]
        self.columns, self.masses, self.forces, self.terms = [], [], [], []
        for term in terms:
            t = in_state(term, module)
            if t.free_symbols - set(coords) - set(vels):
                continue  # a term on params only: a constant
            hess = np.empty((samples, n, n))
            mixed = np.empty((samples, n, n))
            dq = np.empty((samples, n))
            for i in range(n):
                dv = sympy.diff(t, vels[i])
                dq[:, i] = _values(sympy.diff(t, coords[i]), names, cols, samples)
                for j in range(n):
                    hess[:, i, j] = _values(sympy.diff(dv, vels[j]), names, cols, samples)
                    mixed[:, i, j] = _values(sympy.diff(dv, coords[j]), names, cols, samples)
            force = dq - np.einsum("sij,sj->si", mixed, v)  # dL/dq - (d2L/dv dq) v
            column = np.einsum("sij,sj->si", hess, a) - force
            if not (np.all(np.isfinite(column)) and np.all(np.isfinite(hess))):
                continue
            self.terms.append(term)
            self.columns.append(column.reshape(-1))
            self.masses.append(hess)
            self.forces.append(force)
        self.matrix = np.stack(self.columns, axis=1) if self.columns else np.zeros((0, 0))

    def accelerations(self, coef: np.ndarray, q_force: np.ndarray | None) -> np.ndarray:
        rhs = sum(c * f for c, f in zip(coef, self.forces) if c)
        if q_force is not None:
            rhs = rhs + q_force
        return np.linalg.solve(self.mass(coef), rhs[..., None])[..., 0]

    def mass(self, coef: np.ndarray) -> np.ndarray:
        return sum(c * h for c, h in zip(coef, self.masses) if c)


def _values(expr, names, cols, samples) -> np.ndarray:
    out = numpy_function(expr, names)(*cols)
    return np.broadcast_to(np.asarray(out, dtype=np.float64), (samples,))


def _stlsq(matrix: np.ndarray, rhs: np.ndarray, threshold: float,
           iterations: int = 10) -> np.ndarray:
    """Sequentially thresholded least squares on unit-scaled columns."""
    scale = np.linalg.norm(matrix, axis=0)
    scale[scale == 0] = 1.0
    x = matrix / scale
    active = np.linalg.norm(matrix, axis=0) > 0
    coef = np.zeros(matrix.shape[1])
    for _ in range(iterations):
        if not active.any():
            break
        sol = np.linalg.lstsq(x[:, active], rhs, rcond=None)[0]
        coef[:] = 0.0
        coef[active] = sol
        keep = np.abs(coef) >= threshold * np.max(np.abs(coef))
        if (keep == active).all():
            break
        active = keep
    return coef / scale


def euler_lagrange_fits(model, name: str, q: np.ndarray, v: np.ndarray, a: np.ndarray,
                        terms: Sequence[sympy.Expr] | None = None,
                        thresholds: Sequence[float] = THRESHOLDS) -> list[Fit]:
    """Candidate laws of Lagrangian module ``name``, scored on the accelerations ``a``.

    Parameters
    ----------
    model : Model
        The compiled model; ``name`` must be its only Lagrangian module (the others' forces
        are taken from the model).
    q, v, a : ndarray of shape (samples, n)
        States and accelerations (observed or estimated).
    terms : sequence of sympy.Expr, optional
        The term library in the module's input names (default :func:`library_terms`).

    Returns
    -------
    list of Fit
        ``error`` is the relative RMS error of the predicted accelerations; one fit per
        distinct support found.
    """
    spec = model.spec
    module = spec.module(name)
    dtype = next((p.dtype for p in model.parameters()), torch.float64)
    qt, vt = torch.as_tensor(q, dtype=dtype), torch.as_tensor(v, dtype=dtype)
    force = model.generalized_force(qt, vt)
    q_force = None if force is None else force.detach().cpu().numpy().astype(np.float64)
    if q_force is not None and not np.any(q_force != 0):
        q_force = None  # no force: the equations are homogeneous, the scale of L is free
    if terms is None:
        z = model.module_inputs(name, qt, vt).detach().cpu().numpy()
        terms = library_terms(module, spec, z)
    cols = _Columns(terms, module, spec, q, v, a)
    if not cols.terms:
        return []
    matrix = cols.matrix
    scale_a = float(np.sqrt(np.mean(a**2))) or 1.0
    vels = [symbol(c) for c in spec.velocities]
    model_mass = None
    if q_force is not None:
        problems = [(None, matrix, q_force.reshape(-1))]
    else:  # homogeneous: anchor each diagonal kinetic term in turn
        model_mass = mass_matrix(model.scalar_sum("Lagrangian"), qt, vt).detach().cpu().numpy()
        problems = [(k, np.delete(matrix, k, axis=1), -matrix[:, k])
                    for k, t in enumerate(cols.terms)
                    if sympy.expand(in_state(t, module)) in {w**2 for w in vels}]
    seen, fits = set(), []
    for anchor, mat, rhs in problems:
        for threshold in thresholds:
            coef = _stlsq(mat, rhs, threshold)
            if anchor is not None:
                coef = np.insert(coef, anchor, 1.0)
            support = tuple(np.flatnonzero(coef))
            if support in seen:
                continue
            seen.add(support)
            fit = _score(cols, coef, q_force, a, scale_a, model_mass)
            if fit is not None:
                fits.append(fit)
    return fits


def _score(cols: _Columns, coef, q_force, a, scale_a, model_mass) -> Fit | None:
    if model_mass is not None:
        coef = coef * _model_scale(cols.mass(coef), model_mass)
    try:
        pred = cols.accelerations(coef, q_force)
    except np.linalg.LinAlgError:
        return None
    rmse = float(np.sqrt(np.mean((pred - a) ** 2)))
    error = rmse / scale_a
    if not math.isfinite(error):
        return None
    expr = sympy.Add(*[sympy.Float(float(c), 8) * t for c, t in zip(coef, cols.terms) if c])
    return Fit(expr, error, rmse, complexity(expr), "euler-lagrange")


def _model_scale(law: np.ndarray, model_mass: np.ndarray) -> float:
    """Scale of a homogeneous solution with mass matrices ``law``: the model's mass matrix
    in least squares, or unit mean mass when that gives no positive scale."""
    s = float(np.sum(law * model_mass) / np.sum(law * law))
    if math.isfinite(s) and s > 0:
        return s
    trace = float(np.mean(np.trace(law, axis1=1, axis2=2)))
    return law.shape[-1] / trace if trace > 0 else 1.0
