"""What the loss tests share: a harmonic oscillator and its clean simulated trajectories."""

import pytest

from pikan.data.integrate import simulate
from pikan.spec.system import Potential, System


@pytest.fixture(scope="module")
def oscillator_spec():
    """``x'' = -2 x``: one coordinate, a Potential with a law."""
    return System("oscillator", coords=["x"], params={"k": 2.0},
                  modules=[Potential("V", inputs=["x"], law="k*x**2/2")])


@pytest.fixture(scope="module")
def clean(oscillator_spec):
    """Four clean trajectories of the oscillator with v and a, 3 time units at dt = 0.01."""
    return simulate(oscillator_spec, n_trajectories=4, t=(0, 3), dt=0.01, seed=0)
