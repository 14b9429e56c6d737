import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def float64_default():
    """Numerical tests run in float64; the previous default is restored afterwards."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture
def rng():
    """A seeded numpy Generator; torch is seeded too."""
    torch.manual_seed(0)
    return np.random.default_rng(0)
