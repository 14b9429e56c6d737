"""The derivative-estimator family: the base interface and the registry by name
(pikan/data/derivatives/base.py, registry.py)."""

import numpy as np
import pytest

from pikan.data.derivatives import ESTIMATORS, DerivativeEstimator, derivative_estimator
from pikan.data.trajectories import Trajectories
from pikan.errors import DataError


def test_every_estimator_is_registered_under_its_own_name():
    assert list(ESTIMATORS) == ["savgol", "finite_difference"]  # the first is the default
    for name, cls in ESTIMATORS.items():
        assert issubclass(cls, DerivativeEstimator) and cls.name == name
        assert derivative_estimator(name).name == name


def test_unknown_names_and_impossible_options_raise_data_errors():
    with pytest.raises(DataError, match="unknown derivative method 'spline'; expected "
                                        "'savgol' or 'finite_difference'"):
        derivative_estimator("spline")
    with pytest.raises(DataError, match="second order; got order=3"):
        derivative_estimator("finite_difference", order=3)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_with_derivatives_gives_what_the_named_estimator_gives(rng, name):
    # two trajectories of different lengths and steps, two coordinates, noisy positions
    ts = [0.01 * np.arange(400), 0.5 + 0.03 * np.arange(150)]
    qs = [np.stack([np.sin(1.3 * t), np.cos(0.4 * t)], 1) + 1e-3 * rng.normal(size=(len(t), 2))
          for t in ts]
    data = Trajectories.from_arrays(ts, qs, coords=["x", "y"]).with_derivatives(name)
    estimator = derivative_estimator(name)
    for record, t, q in zip(data, ts, qs):
        expected = estimator.derivatives(t, q)
        np.testing.assert_array_equal(record.v, expected[1])
        np.testing.assert_array_equal(record.a, expected[2])
