"""Tests for pikan/train/optim.py: the L-BFGS closure and L-BFGS in rounds."""

import pytest
import torch

from pikan.train.optim import lbfgs_closure, lbfgs_rounds


def test_lbfgs_rounds_solves_least_squares_and_leaves_other_parameters():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 3, generator=g), torch.randn(50, generator=g)
    w = torch.zeros(3, requires_grad=True)
    fixed = torch.ones(1, requires_grad=True)
    loss = lbfgs_rounds([w], lambda: ((a @ w - b) ** 2).mean() + 0 * fixed.sum(), rounds=2)
    exact = torch.linalg.lstsq(a, b[:, None]).solution[:, 0]
    torch.testing.assert_close(w.detach(), exact, atol=1e-8, rtol=0)
    assert abs(loss - float(((a @ exact - b) ** 2).mean())) < 1e-12
    assert float(fixed) == 1.0


def test_strided_gradients_are_made_contiguous():
    # a transposed view as the parameter: its gradient is not contiguous, which LBFGS's
    # view() would reject
    p = torch.zeros(3, 4).t().requires_grad_()  # a non-contiguous leaf
    target = torch.arange(12.0).reshape(4, 3)
    assert not p.is_contiguous()
    lbfgs_rounds([p], lambda: ((p - target) ** 2).sum(), rounds=1)
    torch.testing.assert_close(p.detach(), target, atol=1e-8, rtol=0)


def test_closure_hands_contiguous_gradients_to_the_hook_and_returns_its_value():
    target = torch.arange(12.0, dtype=torch.float64).reshape(4, 3)
    p = torch.zeros(3, 4, dtype=torch.float64).t().requires_grad_()  # strided gradient
    opt = torch.optim.LBFGS([p], max_iter=1)
    seen = []

    def hook(loss):
        seen.append((p.grad.is_contiguous(), float(loss)))
        return loss.detach() * 0 + 7.0

    closure = lbfgs_closure(opt, [p], lambda: ((p - target) ** 2).sum(), hook)
    assert float(closure()) == 7.0
    assert seen == [(True, float((target ** 2).sum()))]
    torch.testing.assert_close(p.grad, -2 * target, atol=0, rtol=0)
    # a second call starts from zeroed gradients (not accumulated)
    closure()
    torch.testing.assert_close(p.grad, -2 * target, atol=0, rtol=0)


def test_a_hook_that_raises_rejects_the_step():
    p = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([p], max_iter=1)

    def reject(loss):
        raise FloatingPointError("rejected")

    with pytest.raises(FloatingPointError, match="rejected"):
        opt.step(lbfgs_closure(opt, [p], lambda: (p ** 2).sum(), reject))
    assert torch.equal(p.detach(), torch.ones(2, dtype=torch.float64))
