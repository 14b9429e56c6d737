"""Small fits shared by the constraint tests: tiny KANs, a few hundred states, Adam."""

import pytest
import torch

from pikan.model.compile import compile


def uniform(batch: int, n: int, seed: int = 0, low: float = -1.0,
            high: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(batch, n, generator=g)


def adam(model, loss, steps: int, lr: float = 0.02) -> float:
    """Minimize ``loss()`` over the model's parameters; returns the final loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
    return float(value)


@pytest.fixture
def states():
    return uniform


@pytest.fixture
def fit():
    return adam


@pytest.fixture
def build():
    return compile
