import json

import h5py
import numpy as np
import pytest
import scipy.signal
import torch

from pikan.data import (
    Trajectories,
    Trajectory,
    finite_difference,
    noise_level,
    savgol_derivative,
    savgol_window,
)
from pikan.errors import DataError


def oscillator(t, phase=0.0, omega=1.0):
    """Closed-form harmonic oscillator q = cos(omega t + phase): q, v, a of shape (T, 1)."""
    arg = omega * t + phase
    return np.cos(arg)[:, None], -omega * np.sin(arg)[:, None], -(omega**2) * np.cos(arg)[:, None]


def rel_rms(estimate, truth):
    return float(np.sqrt(np.mean((estimate - truth) ** 2) / np.mean(truth**2)))


@pytest.fixture
def ragged(rng):
    """Three trajectories of different lengths and steps, with v, a and full metadata."""
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


def assert_same(a: Trajectories, b: Trajectories):
    assert len(a) == len(b) and a.coords == b.coords
    for r, s in zip(a, b):
        for name in ("t", "q", "v", "a"):
            x, y = getattr(r, name), getattr(s, name)
            assert (x is None) == (y is None)
            if x is not None:
                assert y.dtype == np.float64 and np.array_equal(x, y)
    assert a.system == b.system and a.params == b.params
    assert (a.masses is None) == (b.masses is None)
    if a.masses is not None:
        assert np.array_equal(a.masses, b.masses)


# ----------------------------------------------------------------------------- HDF5


def test_save_load_round_trip_is_bit_for_bit(tmp_path, ragged):
    path = tmp_path / "run.h5"
    ragged.save(path)
    loaded = Trajectories.load(path)
    assert_same(ragged, loaded)
    assert list(loaded.lengths) == [5, 17, 1]
    assert isinstance(loaded.masses, np.ndarray) and loaded.params == {"k": 0.1, "g": 9.81}
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "pikan-trajectories" and f.attrs["version"] == 1
        assert list(f["trajectories"]) == ["0000", "0001", "0002"]
        assert json.loads(f.attrs["params"]) == {"g": 9.81, "k": 0.1}


def test_round_trip_positions_only_without_metadata(tmp_path):
    data = Trajectories.from_arrays(
        np.linspace(0, 1, 11), np.arange(22.0).reshape(11, 2), coords=["a", "b"]
    )
    data.save(tmp_path / "plain.h5")
    loaded = Trajectories.load(tmp_path / "plain.h5")
    assert_same(data, loaded)
    assert loaded.system is None and loaded.masses is None and not loaded.has_velocities


def test_file_written_by_plain_h5py_loads(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "pikan-trajectories"
        f.attrs["version"] = 1
        f.attrs["coords"] = ["theta"]
        f.attrs["masses"] = 2.0
        group = f.create_group("trajectories")
        for k in (0, 1, 2, 10):  # "10" must sort after "2"
            g = group.create_group(str(k))
            t = k + np.linspace(0.0, 1.0, 3 + k)
            g["t"] = t
            g["q"] = np.sin(t)[:, None]
    data = Trajectories.load(path)
    assert data.coords == ("theta",) and data.masses == 2.0 and data.system is None
    assert [r.t[0] for r in data] == [0.0, 1.0, 2.0, 10.0]
    assert list(data.lengths) == [3, 4, 5, 13]
    np.testing.assert_array_equal(data[3].q[:, 0], np.sin(10 + np.linspace(0.0, 1.0, 13)))


def test_file_with_byte_string_attributes_loads(tmp_path):
    path = tmp_path / "bytes.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = np.bytes_(b"pikan-trajectories")
        f.attrs["version"] = np.int32(1)
        f.attrs["coords"] = np.array([b"x", b"y"])
        f.create_group("trajectories/a")
        f["trajectories/a/t"] = np.arange(3.0)
        f["trajectories/a/q"] = np.zeros((3, 2), dtype=np.float32)
    data = Trajectories.load(path)
    assert data.coords == ("x", "y") and data[0].q.dtype == np.float64


def test_interrupted_save_keeps_old_file_intact(tmp_path, ragged, monkeypatch):
    path = tmp_path / "run.h5"
    old = Trajectories.from_arrays(np.arange(4.0), np.ones((4, 2)), coords=["x", "y"])
    old.save(path)
    original = h5py.Group.create_dataset
    calls = []

    def failing(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        ragged.save(path)
    monkeypatch.undo()
    assert_same(old, Trajectories.load(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]  # no temp file left behind
    calls.clear()
    monkeypatch.setattr(h5py.Group, "create_dataset", failing)
    with pytest.raises(RuntimeError):
        ragged.save(tmp_path / "new.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5"]


def _write(path, *, format="pikan-trajectories", version=1, groups=None, coords=("x",)):
    with h5py.File(path, "w") as f:
        if format is not None:
            f.attrs["format"] = format
        if version is not None:
            f.attrs["version"] = version
        f.attrs["coords"] = list(coords)
        if groups is not None:
            top = f.create_group("trajectories")
            for name, arrays in groups.items():
                g = top.create_group(name)
                for key, value in arrays.items():
                    g[key] = value


GOOD = {"0000": {"t": np.arange(4.0), "q": np.zeros((4, 1))}}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"format": "something-else", "groups": GOOD},
            r"attribute 'format' is .*something-else.*expected 'pikan-trajectories'",
        ),
        ({"format": None, "groups": GOOD}, r"attribute 'format' is missing"),
        ({"version": 2, "groups": GOOD}, r"unsupported schema version 2.*reads version 1"),
        (
            {"groups": {"0000": {"t": np.arange(4.0)}}},
            r"trajectory 0 \(/trajectories/0000\) has no dataset 'q'",
        ),
        ({"groups": None}, r"contains no trajectories"),
        ({"groups": {}}, r"contains no trajectories"),
        (
            {"groups": {"0000": {"t": np.arange(4.0), "q": np.zeros((3, 1))}}},
            r"/trajectories/0000\): q has shape \(3, 1\), expected \(4, 1\)",
        ),
        (
            {
                "groups": {
                    "0000": {"t": np.arange(4.0), "q": np.array([[0.0], [1.0], [np.nan], [2.0]])}
                }
            },
            r"/trajectories/0000\): q is NaN at time index 2 \(t = 2\), coordinate 'x'",
        ),
        (
            {"groups": {"0000": {"t": np.array([0.0, 1.0, 1.0, 2.0]), "q": np.zeros((4, 1))}}},
            r"/trajectories/0000\): t is not strictly increasing at time index 2",
        ),
        ({"groups": GOOD, "coords": ("x", "y")}, r"q has shape \(4, 1\), expected \(4, 2\)"),
    ],
)
def test_load_rejects_bad_files(tmp_path, kwargs, message):
    path = tmp_path / "bad.h5"
    _write(path, **kwargs)
    with pytest.raises(DataError, match=message):
        Trajectories.load(path)


def test_load_rejects_missing_non_hdf5_and_truncated_files(tmp_path, ragged):
    with pytest.raises(DataError, match="no such file"):
        Trajectories.load(tmp_path / "absent.h5")
    text = tmp_path / "data.h5"
    text.write_text("t,x\n0,1\n")
    with pytest.raises(DataError, match="not a readable HDF5 file.*truncated"):
        Trajectories.load(text)
    ragged.save(tmp_path / "full.h5")
    blob = (tmp_path / "full.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="truncated"):
        Trajectories.load(tmp_path / "cut.h5")
    (tmp_path / "empty.h5").write_bytes(b"")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        Trajectories.load(tmp_path / "empty.h5")


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


# ----------------------------------------------------------------------------- CSV


def test_from_csv_long_format(tmp_path):
    path = tmp_path / "lab.csv"
    lines = ["id,t,x,y,v_x,v_y,comment"]
    for key in ("10", "2", "1"):
        for k in range(3 + int(key)):
            lines.append(f"{key},{0.1 * k},{k},{-k},{int(key)},0.5,ok")
    path.write_text("\n".join(lines) + "\n")
    data = Trajectories.from_csv(path, coords=["x", "y"], system="lab")
    assert data.coords == ("x", "y") and data.system == "lab" and data.has_velocities
    assert list(data.lengths) == [4, 5, 13]  # ids sorted numerically: 1, 2, 10
    np.testing.assert_allclose(data[2].t, 0.1 * np.arange(13))
    np.testing.assert_array_equal(data[0].v[:, 0], 1.0)
    no_v = Trajectories.from_csv(path, coords=["x", "y"], velocities=False)
    assert not no_v.has_velocities
    single = tmp_path / "single.csv"
    single.write_text("time,theta\n0,1\n0.5,2\n1,3\n")
    one = Trajectories.from_csv(single, time="time", coords=["theta"], trajectory=None)
    np.testing.assert_array_equal(one[0].q[:, 0], [1.0, 2.0, 3.0])


def test_from_csv_errors(tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text("t,x\n0,1\n1,2\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['y', 'id'\].*trajectory=None"):
        Trajectories.from_csv(path, coords=["x", "y"])
    with pytest.raises(DataError, match=r"missing column\(s\) \['speed'\]"):
        Trajectories.from_csv(path, coords=["x"], trajectory=None, velocities=["speed"])
    path.write_text("t,x\n0,1\n1,oops\n")
    with pytest.raises(DataError, match=r"line 3, column 'x' holds 'oops'"):
        Trajectories.from_csv(path, coords=["x"], trajectory=None)
    path.write_text("t,x\n0,1\n1,nan\n")
    with pytest.raises(DataError, match=r"lab.csv: trajectory 0 .*q is NaN at time index 1"):
        Trajectories.from_csv(path, coords=["x"], trajectory=None)


# ----------------------------------------------------------------------------- derivatives


def test_finite_differences_on_clean_oscillator():
    t = np.arange(0, 20 + 1e-9, 0.01)
    q, v, a = oscillator(t, phase=0.3)
    assert rel_rms(finite_difference(t, q, 1), v) < 1e-4
    assert rel_rms(finite_difference(t, q, 2), a) < 1e-4
    data = Trajectories.from_arrays(t, q, coords=["x"]).with_derivatives("finite_difference")
    assert rel_rms(data[0].a, a) < 1e-4 and rel_rms(data[0].v, v) < 1e-4


def test_finite_differences_are_exact_for_low_degree_polynomials_on_non_uniform_steps(rng):
    t = np.cumsum(rng.uniform(0.05, 0.3, size=30))
    y = np.stack([1 + 2 * t - 3 * t**2, 0.5 * t**3 - t], axis=1)
    np.testing.assert_allclose(
        finite_difference(t, y[:, :1], 1), (2 - 6 * t)[:, None], rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(
        finite_difference(t, y, 2),
        np.stack([np.full_like(t, -6.0), 3 * t], 1),
        rtol=1e-8,
        atol=1e-8,
    )


def test_finite_differences_converge_at_second_order_on_non_uniform_steps(rng):
    errors, steps = [], []
    jitter = rng.uniform(-0.3, 0.3, size=100_000)
    for n in (100, 200, 400, 800):
        h = 10.0 / n
        t = np.arange(n + 1) * h
        t[1:-1] += h * jitter[: n - 1]
        q, _v, a = oscillator(t)
        errors.append(rel_rms(finite_difference(t, q, 2), a))
        steps.append(h)
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert 1.7 < slope < 2.3


def test_savgol_accelerations_at_one_percent_noise_with_default_window(rng):
    t = np.arange(0, 20 + 1e-9, 0.01)
    q, v, a = oscillator(t, phase=0.7)
    noisy = q + 0.01 * q.std() * rng.standard_normal(q.shape)
    data = Trajectories.from_arrays(t, noisy, coords=["x"]).with_derivatives("savgol")
    assert rel_rms(data[0].a, a) < 0.05
    assert rel_rms(data[0].v, v) < 0.01
    # the automatic window adapts: wide for noisy data, smallest for clean data
    assert savgol_window(noisy[:, 0], 0.01, 2) > 50
    assert savgol_window(q[:, 0], 0.01, 2) == 5
    assert rel_rms(savgol_derivative(q, 0.01, 2), a) < 1e-4
    np.testing.assert_allclose(noise_level(noisy), 0.01 * q.std(), rtol=0.1)


@pytest.mark.parametrize("deriv", [1, 2])
def test_savgol_matches_scipy_where_scipy_is_well_conditioned(rng, deriv):
    y = rng.normal(size=200)
    ours = savgol_derivative(y, 0.1, deriv, window=21, polyorder=3)
    theirs = scipy.signal.savgol_filter(y, 21, 3, deriv=deriv, delta=0.1, mode="interp")
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)


def test_savgol_stays_accurate_for_high_order_and_wide_windows():
    t = np.arange(0, 20 + 1e-9, 0.01)
    q, _, a = oscillator(t)
    # scipy's savgol_coeffs loses all digits here (normal equations in sample units); what
    # remains is the true bias of a 6th-order fit over 3.6 radians of phase
    estimate = savgol_derivative(q, 0.01, 2, window=365, polyorder=6)
    assert rel_rms(estimate[182:-182], a[182:-182]) < 1e-3
    assert rel_rms(estimate, a) < 1e-2


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
    q, v, a = oscillator(t)
    data = Trajectories.from_arrays(t, q, v=np.zeros_like(v), coords=["x"]).with_derivatives()
    np.testing.assert_array_equal(data[0].v, 0.0)
    assert rel_rms(data[0].a, a) < 1e-4
    redone = data.with_derivatives(overwrite=True)
    assert rel_rms(redone[0].v, v) < 1e-6
