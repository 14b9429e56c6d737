"""Trajectory files (pikan/trajectory_io.py): the HDF5 schema and CSV input, through
Trajectories.save / load / from_csv."""

import json

import h5py
import numpy as np
import pytest

from pikan.data.trajectories import Trajectories
from pikan.errors import DataError


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
