import numpy as np
import pytest
import torch

from pikan.data.trajectories import Trajectories, Trajectory
from pikan.errors import DataError

# ----------------------------------------------------------------------------- construction


def test_from_arrays_layouts():
    t = np.linspace(0, 1, 6)
    batch = Trajectories.from_arrays(
        t, np.zeros((3, 6, 2)), v=np.ones((3, 6, 2)), coords=["x", "y"]
    )
    assert len(batch) == 3 and batch.has_velocities and not batch.has_accelerations
    single = Trajectories.from_arrays(t, np.arange(6.0), coords=["x"])
    assert len(single) == 1 and single[0].q.shape == (6, 1)
    lists = Trajectories.from_arrays(
        [t, t[:4]], [np.zeros((6, 2)), np.zeros((4, 2))], coords=["x", "y"]
    )
    assert list(lists.lengths) == [6, 4]
    per_row_t = Trajectories.from_arrays(np.stack([t, t + 1]), np.zeros((2, 6, 1)), coords=["x"])
    assert per_row_t[1].t[0] == 1.0
    source = np.zeros((6, 1))
    made = Trajectories.from_arrays(t, source, coords=["x"])
    source[0, 0] = 5.0  # the container holds its own read-only copy
    assert made[0].q[0, 0] == 0.0 and not made[0].q.flags.writeable


@pytest.mark.parametrize(
    "build, message",
    [
        (
            lambda t: Trajectories.from_arrays(
                [t, t], [np.zeros((5, 1)), np.array([0, 1, 2, np.nan, 4.0])[:, None]], coords=["x"]
            ),
            r"trajectory 1: q is NaN at time index 3 \(t = 0.75\), coordinate 'x'",
        ),
        (
            lambda t: Trajectories.from_arrays(
                t, np.zeros((5, 2)), v=np.full((5, 2), np.inf), coords=["x", "y"]
            ),
            r"trajectory 0: v is infinite at time index 0",
        ),
        (
            lambda t: Trajectories.from_arrays(t[::-1], np.zeros((5, 1)), coords=["x"]),
            (
                r"trajectory 0: t is not strictly increasing at time index 1 "
                r"\(t\[0\] = 1.0, t\[1\] = 0.75\)"
            ),
        ),
        (
            lambda t: Trajectories.from_arrays(t, np.zeros((4, 1)), coords=["x"]),
            r"trajectory 0: q has shape \(4, 1\), expected \(5, 1\)",
        ),
        (
            lambda t: Trajectories.from_arrays(t, np.zeros((5, 3)), coords=["x", "y"]),
            r"q has shape \(5, 3\), expected \(5, 2\): 5 samples .* 2 coordinates \['x', 'y'\]",
        ),
        (
            lambda t: Trajectories(
                [
                    Trajectory(t, np.zeros((5, 1)), np.zeros((5, 1))),
                    Trajectory(t, np.zeros((5, 1))),
                ],
                coords=["x"],
            ),
            r"v is present in some trajectories but missing in trajectory 1",
        ),
        (lambda t: Trajectories([], coords=["x"]), r"no trajectories"),
        (lambda t: Trajectories.from_arrays(t, [], coords=["x"]), r"no trajectories"),
        (
            lambda t: Trajectories.from_arrays(t, np.zeros((5, 1)), coords="x"),
            r"coords must be a list",
        ),
        (
            lambda t: Trajectories.from_arrays(
                t, np.zeros((5, 1)), coords=["x"], masses=[1.0, 2.0]
            ),
            r"masses has shape \(2,\)",
        ),
        (
            lambda t: Trajectories.from_arrays(
                t, np.zeros((2, 5, 1)), v=np.zeros((3, 5, 1)), coords=["x"]
            ),
            r"v holds 3 trajectories, q holds 2",
        ),
    ],
)
def test_construction_errors_name_the_problem(build, message):
    with pytest.raises(DataError, match=message):
        build(np.linspace(0, 1, 5))


@pytest.mark.parametrize(
    "masses, shown",
    [(np.nan, "nan"), (-1.0, r"-1\.0"), (0.0, r"0\.0"), ([1.0, np.inf], r"\[1\.0, inf\]")],
)
def test_masses_must_be_positive_and_finite(masses, shown):
    t = np.linspace(0, 1, 5)
    with pytest.raises(DataError, match=rf"masses must be positive finite numbers, got {shown}"):
        Trajectories.from_arrays(t, np.zeros((5, 2)), coords=["x", "y"], masses=masses)
    good = Trajectories.from_arrays(t, np.zeros((5, 2)), coords=["x", "y"], masses=[1.0, 2.5])
    assert list(good.masses) == [1.0, 2.5]


def test_check_coords_names_both_lists():
    data = Trajectories.from_arrays(np.arange(3.0), np.zeros((3, 2)), coords=["x", "y"])
    data.check_coords(["x", "y"])
    with pytest.raises(
        DataError, match=r"data's coordinates \['x', 'y'\] .* system's coordinates \['y', 'x'\]"
    ):
        data.check_coords(["y", "x"])


# ----------------------------------------------------------------------------- accessors


def test_states_accelerations_and_tensors(ragged):
    q, v, ids = ragged.states()
    assert q.shape == v.shape == (23, 2)
    np.testing.assert_array_equal(ids, [0] * 5 + [1] * 17 + [2])
    np.testing.assert_array_equal(q[5:22], ragged[1].q)
    a, ids_a = ragged.accelerations()
    np.testing.assert_array_equal(a[22], ragged[2].a[0])
    np.testing.assert_array_equal(ids_a, ids)
    tensors = ragged.to_tensors("cpu", torch.float32)
    assert set(tensors) == {"t", "q", "v", "a", "trajectory"}
    assert tensors["q"].dtype == torch.float32 and tensors["trajectory"].dtype == torch.int64
    torch.testing.assert_close(tensors["v"], torch.tensor(v, dtype=torch.float32))
    positions_only = Trajectories.from_arrays(np.arange(3.0), np.zeros((3, 1)), coords=["x"])
    with pytest.raises(DataError, match="no velocities.*with_derivatives"):
        positions_only.states()
    with pytest.raises(DataError, match="no accelerations"):
        positions_only.accelerations()
    assert "3 trajectories, 23 samples (T = 1..17)" in repr(ragged) and "system='ragged'" in repr(
        ragged
    )


def test_windows_shapes_and_content():
    t = np.arange(10.0)
    q = np.stack([np.arange(20.0).reshape(10, 2), 100 + np.arange(20.0).reshape(10, 2)])
    data = Trajectories.from_arrays(
        [t, t[:7]], [q[0], q[1, :7]], v=[-q[0], -q[1, :7]], coords=["x", "y"]
    )
    w = data.windows(4, stride=2)
    # trajectory 0: starts 0, 2, 4, 6; trajectory 1 (7 samples): starts 0, 2
    assert w.q.shape == (6, 4, 2) and w.v.shape == (6, 4, 2) and w.t.shape == (6, 4) and w.a is None
    np.testing.assert_array_equal(w.trajectory, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(w.start, [0, 2, 4, 6, 0, 2])
    np.testing.assert_array_equal(w.q[1], q[0, 2:6])
    np.testing.assert_array_equal(w.t[5], t[2:6])
    np.testing.assert_array_equal(w.v[4], -q[1, 0:4])
    with pytest.raises(
        DataError, match=r"trajectory 1 has 7 samples, too short for windows of length 8"
    ):
        data.windows(8)


def test_split_is_by_trajectory(ragged, rng):
    data = Trajectories.from_arrays(np.arange(5.0), rng.normal(size=(10, 5, 1)), coords=["x"])
    first, second = data.split(0.8, seed=3)
    assert (len(first), len(second)) == (8, 2)
    keys = [{r.q[0, 0] for r in part} for part in (first, second)]
    assert not keys[0] & keys[1] and len(keys[0] | keys[1]) == 10
    again, _ = data.split(0.8, seed=3)
    assert [r.q[0, 0] for r in again] == [r.q[0, 0] for r in first]
    other, _ = data.split(0.8, seed=4)
    assert {r.q[0, 0] for r in other} != keys[0]
    assert first.system == data.system
    with pytest.raises(DataError, match="never by time point, so it needs at least 2"):
        data.subset([0]).split()


def test_subset_and_indexing(ragged):
    part = ragged.subset([2, 0])
    assert list(part.lengths) == [1, 5] and part.params == ragged.params
    assert list(ragged[1:].lengths) == [17, 1]
    assert list(ragged[np.array([True, False, True])].lengths) == [5, 1]
    with pytest.raises(DataError, match="out of bounds"):
        ragged.subset([3])


def test_with_noise_is_relative_and_seeded(rng):
    t = np.linspace(0, 50, 5001)
    q = np.stack([np.cos(t), 10 * np.sin(t)], axis=1)
    clean = Trajectories.from_arrays(t, q, v=q[:, ::-1].copy(), a=-q, coords=["x", "y"])
    noisy = clean.with_noise(0.01, seed=1)
    residual = (noisy[0].q - q) / q.std(axis=0)
    np.testing.assert_allclose(residual.std(axis=0), 0.01, rtol=0.05)
    assert not np.array_equal(noisy[0].v, clean[0].v)
    assert (
        not noisy.has_accelerations
        and clean.with_noise(0.01, keep_accelerations=True).has_accelerations
    )
    np.testing.assert_array_equal(noisy[0].q, clean.with_noise(0.01, seed=1)[0].q)
    assert not np.array_equal(noisy[0].q, clean.with_noise(0.01, seed=2)[0].q)
    assert clean.with_noise(0.0) is clean
    with pytest.raises(DataError, match="noise level must be a finite number >= 0"):
        clean.with_noise(-0.01)


# ----------------------------------------------------------------------------- with_derivatives


def test_derivative_errors_name_the_trajectory():
    t = np.linspace(0, 1, 50)
    short = Trajectories.from_arrays(
        [t, t[:3]], [np.zeros((50, 1)), np.zeros((3, 1))], coords=["x"]
    )
    with pytest.raises(
        DataError, match=r"trajectory 1: has 3 samples, too short for the Savitzky–Golay stencil"
    ):
        short.with_derivatives("savgol")
    with pytest.raises(
        DataError,
        match=r"trajectory 1: has 3 samples, too short for the finite-difference "
        r"stencil of derivative 2 \(needs at least 4\)",
    ):
        short.with_derivatives("finite_difference")
    with pytest.raises(DataError, match=r"trajectory 0: has 50 samples, too short .*window 51"):
        short.with_derivatives("savgol", window=51)
    uneven = Trajectories.from_arrays(t**2, np.zeros((50, 1)), coords=["x"])
    with pytest.raises(
        DataError, match=r"trajectory 0: time steps are not uniform.*finite_difference"
    ):
        uneven.with_derivatives("savgol")
    assert uneven.with_derivatives("finite_difference").has_accelerations


def test_with_derivatives_fills_only_missing_unless_overwrite():
    t = np.arange(0, 10, 0.01)
    q, v, a = np.cos(t)[:, None], -np.sin(t)[:, None], -np.cos(t)[:, None]
    data = Trajectories.from_arrays(t, q, v=np.zeros_like(v), coords=["x"]).with_derivatives()
    np.testing.assert_array_equal(data[0].v, 0.0)
    np.testing.assert_allclose(data[0].a, a, rtol=0, atol=2e-4)  # Savitzky-Golay estimate
    redone = data.with_derivatives(overwrite=True)
    np.testing.assert_allclose(redone[0].v, v, rtol=0, atol=2e-6)


def test_estimated_arrays_are_remembered_through_selections_and_dropped_with_them():
    t = np.arange(0, 10, 0.01)
    q, v = np.cos(t)[:, None], -np.sin(t)[:, None]
    given = Trajectories.from_arrays([t, t], [q, q], v=[v, v], coords=["x"])
    assert given.estimated == frozenset() and not given.measured_accelerations
    filled = given.with_derivatives()
    assert filled.estimated == {"a"} and not filled.measured_accelerations
    assert filled.subset([1]).estimated == {"a"} and filled.split(0.5)[0].estimated == {"a"}
    assert filled.with_derivatives(overwrite=True).estimated == {"v", "a"}
    assert filled.with_noise(0.01).estimated == frozenset()  # the estimates are dropped
    measured = Trajectories.from_arrays(t, q, v=v, a=-q, coords=["x"])
    assert measured.measured_accelerations and measured.with_derivatives().estimated == set()
