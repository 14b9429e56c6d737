r"""Equations of motion from energy functions, as pure functions of tensors.

Every function takes callables of the state ``(q, v)`` (each ``(batch, n)``) and returns
tensors; derivatives come from ``torch.func`` so that the results can be differentiated
again (training on forces needs double backward) and the functions work under
``torch.func.vmap``.

Newtonian form, with masses :math:`m`, potential :math:`V(q)`, direct forces
:math:`F(q, v)` and Rayleigh dissipation :math:`D(v)`:

.. math:: m \, a = -\partial_q V + F - \partial_v D .

Lagrangian form, with :math:`L(q, v)` and generalized forces :math:`Q`:

.. math:: \partial^2_{vv} L \; a = \partial_q L - (\partial_q \partial_v L)\, v + Q .
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

ScalarFn = Callable[[Tensor, Tensor], Tensor]  # (q, v) -> (batch,)
VectorFn = Callable[[Tensor, Tensor], Tensor]  # (q, v) -> (batch, n)


def gradient_q(energy: ScalarFn, q: Tensor, v: Tensor) -> Tensor:
    """:math:`\\partial E / \\partial q` of a per-sample energy, shape (batch, n)."""
    return torch.func.grad(lambda q_: energy(q_, v).sum())(q)


def gradient_v(energy: ScalarFn, q: Tensor, v: Tensor) -> Tensor:
    """:math:`\\partial E / \\partial v` of a per-sample energy, shape (batch, n)."""
    return torch.func.grad(lambda v_: energy(q, v_).sum())(v)


def mass_matrix(lagrangian: ScalarFn, q: Tensor, v: Tensor) -> Tensor:
    """The generalized mass matrix :math:`\\partial^2 L / \\partial v \\partial v`, shape
    (batch, n, n)."""
    rows = [torch.func.grad(lambda v_, i=i: gradient_v(lagrangian, q, v_)[:, i].sum())(v)
            for i in range(v.shape[-1])]
    return torch.stack(rows, dim=-2)


def newtonian_acceleration(
    masses: Tensor,
    q: Tensor,
    v: Tensor,
    potential: ScalarFn | None = None,
    force: VectorFn | None = None,
    dissipation: ScalarFn | None = None,
    potential_gradient: VectorFn | None = None,
) -> Tensor:
    """Accelerations :math:`a = (-\\partial_q V + F - \\partial_v D) / m`.

    Parameters
    ----------
    masses : Tensor of shape (n,)
    q, v : Tensor of shape (batch, n)
        Positions and velocities.
    potential, dissipation : callable (q, v) -> (batch,), optional
    force : callable (q, v) -> (batch, n), optional
    potential_gradient : callable (q, v) -> (batch, n), optional
        :math:`\\partial_q V` computed by the caller (a KAN potential writes it out from its
        spline slopes); used instead of differentiating ``potential``.

    Returns
    -------
    Tensor of shape (batch, n)
    """
    total = torch.zeros_like(q)
    if potential_gradient is not None:
        total = total - potential_gradient(q, v)
    elif potential is not None:
        total = total - gradient_q(potential, q, v)
    if force is not None:
        total = total + force(q, v)
    if dissipation is not None:
        total = total - gradient_v(dissipation, q, v)
    return total / masses


def lagrangian_acceleration(
    lagrangian: ScalarFn, q: Tensor, v: Tensor, generalized_force: Tensor | None = None
) -> Tensor:
    """Accelerations from the Euler--Lagrange equations.

    Solves :math:`\\partial^2_{vv} L \\, a = \\partial_q L - (\\partial_v \\partial_q L) v + Q`
    per sample. Samples are independent, so row ``i`` of both Hessians for the whole batch is
    one vector-Jacobian product of :math:`p = \\partial_v L` with the unit vector ``e_i``:
    ``n`` batched products instead of a per-sample ``vmap``.

    Parameters
    ----------
    lagrangian : callable (q, v) -> (batch,)
    q, v : Tensor of shape (batch, n)
    generalized_force : Tensor of shape (batch, n), optional
        Non-conservative forces :math:`Q` (dissipation, direct forces).

    Returns
    -------
    Tensor of shape (batch, n)
    """
    def momentum(q_: Tensor, v_: Tensor) -> Tensor:
        return gradient_v(lagrangian, q_, v_)

    dl_dq = gradient_q(lagrangian, q, v)
    p, pullback = torch.func.vjp(momentum, q, v)
    n = q.shape[-1]
    eye = torch.eye(n, dtype=q.dtype, device=q.device)
    rows_q, rows_v = zip(*(pullback(eye[i].expand_as(p)) for i in range(n)))
    hess_vv = torch.stack(rows_v, dim=-2)  # [b, i, j] = d p_i / d v_j
    mixed = torch.stack(rows_q, dim=-2)  # [b, i, j] = d p_i / d q_j
    rhs = dl_dq - (mixed @ v[..., None])[..., 0]
    if generalized_force is not None:
        rhs = rhs + generalized_force
    # a learned L can have a singular d2L/dv2 somewhere: those states get NaN accelerations
    # (training counts them as faults, verification as a failed rollout) instead of an error
    solution, info = torch.linalg.solve_ex(hess_vv, rhs[..., None])
    singular = (info != 0)[..., None]
    return torch.where(singular, torch.full_like(rhs, float("nan")), solution[..., 0])


def lagrangian_energy(lagrangian: ScalarFn, q: Tensor, v: Tensor) -> Tensor:
    """Energy :math:`E = v \\cdot \\partial_v L - L`, shape (batch,)."""
    return (v * gradient_v(lagrangian, q, v)).sum(-1) - lagrangian(q, v)


def kinetic_energy(masses: Tensor, v: Tensor) -> Tensor:
    """:math:`T = \\sum_i m_i v_i^2 / 2`, shape (batch,)."""
    return 0.5 * (masses * v**2).sum(-1)
