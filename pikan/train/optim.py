"""L-BFGS in rounds, as pikan's static fits run it (the KAN surrogate of ``find_law``, the
benchmarks' and tests' KAN fits).

Twenty iterations per round with a strong-Wolfe line search and no early exit on tiny
gradients or changes (fits to exact data go far below the defaults' thresholds).
Gradients are made contiguous before each step: ``torch.optim.LBFGS`` flattens them with
``view()``, which fails on the strided gradients of some KAN parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["lbfgs_rounds"]


def lbfgs_rounds(params: Sequence[torch.Tensor], loss_fn: Callable[[], torch.Tensor],
                 rounds: int) -> float:
    """Minimize ``loss_fn()`` over ``params`` by ``rounds`` L-BFGS steps; the final loss.

    Parameters
    ----------
    params : sequence of Tensor
        The parameters to move (others stay fixed).
    loss_fn : callable
        Returns the scalar loss (a fresh graph per call).
    rounds : int
        L-BFGS steps of 20 iterations each.
    """
    params = list(params)
    opt = torch.optim.LBFGS(params, max_iter=20, history_size=10, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-32, tolerance_change=1e-32)

    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        for p in params:
            if p.grad is not None and not p.grad.is_contiguous():
                p.grad = p.grad.contiguous()
        return loss

    for _ in range(rounds):
        opt.step(closure)
    return float(loss_fn().detach())
