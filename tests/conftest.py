import os

# One BLAS thread, set before numpy loads its BLAS: on a loaded machine two OpenBLAS threads
# oversubscribe the cores and made find_law's least squares up to 20x slower, enough for its
# time limits to cut searches short (the laws tests' threadpoolctl fixture needs an optional
# package; this does not).
for _name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from pikan.data.trajectories import Trajectories, Trajectory  # noqa: E402

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
