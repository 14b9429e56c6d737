"""L-BFGS for pikan's fits: the one closure every L-BFGS step uses, and L-BFGS in rounds.

``torch.optim.LBFGS`` calls a closure that zeroes the gradients, evaluates the loss and
back-propagates. pikan's closure (:func:`lbfgs_closure`) also makes the gradients
contiguous: LBFGS flattens them with ``view()``, which fails on the strided gradients of
some KAN parameters. :func:`pikan.fit`'s L-BFGS stages (:mod:`pikan.train.loop`) and
:func:`lbfgs_rounds` both use it.

:func:`lbfgs_rounds` runs L-BFGS as pikan's static fits do (the KAN surrogate of
``find_law``, the benchmarks' and tests' KAN fits): twenty iterations per round with a
strong-Wolfe line search and no early exit on tiny gradients or changes (fits to exact data
go far below the defaults' thresholds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["contiguous_gradients", "lbfgs_closure", "lbfgs_rounds"]


def contiguous_gradients(params: Sequence[torch.Tensor]) -> None:
    """Replace every strided ``p.grad`` of ``params`` by a contiguous copy (same values)."""
    for p in params:
        if p.grad is not None and not p.grad.is_contiguous():
            p.grad = p.grad.contiguous()


def lbfgs_closure(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor],
                  loss_fn: Callable[[], torch.Tensor],
                  after_backward: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  ) -> Callable[[], torch.Tensor]:
    """The closure for ``optimizer.step(closure)`` of a ``torch.optim.LBFGS``.

    Each call zeroes the gradients (``set_to_none``), evaluates ``loss = loss_fn()``,
    back-propagates it and makes the gradients of ``params`` contiguous.

    Parameters
    ----------
    optimizer : torch.optim.LBFGS
    params : sequence of Tensor
        The optimizer's parameters.
    loss_fn : callable
        Returns the scalar loss to differentiate (a fresh graph per call).
    after_backward : callable, optional
        Called with the loss once the gradients are in place; what it returns is what
        L-BFGS sees (e.g. the loss summed over the processes of a distributed fit, after
        their gradients were summed). It may raise to reject the evaluation. Default: the
        loss itself.

    Returns
    -------
    callable
        ``closure() -> Tensor`` (a scalar).
    """
    params = list(params)

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        contiguous_gradients(params)
        return loss if after_backward is None else after_backward(loss)

    return closure


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
    closure = lbfgs_closure(opt, params, loss_fn)
    for _ in range(rounds):
        opt.step(closure)
    return float(loss_fn().detach())
