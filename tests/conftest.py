import numpy as np
import pytest
import torch

from pikan.data.trajectories import Trajectories, Trajectory

# Test problems are small: OpenMP threads only add synchronization cost (on a loaded 2-core
# machine a 256x16 matmul took 5 ms with two threads and 10 us with one).
torch.set_num_threads(1)


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


@pytest.fixture
def ragged(rng):
    """Three trajectories of different lengths and steps, with v, a and full metadata
    (shared by the data and trajectory-file tests)."""
    ts = [np.cumsum(rng.uniform(0.01, 0.02, size=T)) for T in (5, 17, 1)]
    return Trajectories(
        [
            Trajectory(
                t,
                rng.normal(size=(len(t), 2)),
                rng.normal(size=(len(t), 2)),
                rng.normal(size=(len(t), 2)),
            )
            for t in ts
        ],
        coords=["x", "y"],
        system="ragged",
        masses=[1.0, 2.5],
        params={"k": 0.1, "g": 9.81},
    )
