"""Trajectory files (pikan/data/io.py, pikan/data/hdf5_reader.py): the HDF5 schema and CSV
input, through Trajectories.save / load / from_csv; checksums, the reader's deadline."""

import json
import re
import sys

import h5py
import numpy as np
import pytest

from pikan.data import hdf5_reader
from pikan.data import io as trajectory_io
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


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("masses", np.nan, r"masses must be positive finite numbers, got nan"),
        (
            "masses",
            np.array([1.0, -2.0]),
            r"masses must be positive finite numbers, got \[1.0, -2.0\]",
        ),
        ("system", 3, r"attribute 'system' must be text, got 3"),
        ("params", "[" * 100_000, r"attribute 'params' is not JSON text"),
    ],
)
def test_load_rejects_bad_metadata(tmp_path, name, value, message):
    path = tmp_path / "meta.h5"
    _write(path, groups={"0000": {"t": np.arange(4.0), "q": np.zeros((4, 2))}}, coords="xy")
    with h5py.File(path, "a") as f:
        f.attrs[name] = value
    with pytest.raises(DataError, match=rf"meta\.h5.*{message}"):
        Trajectories.load(path)


def test_groups_named_by_non_ascii_digits_sort_as_text(tmp_path):
    path = tmp_path / "digits.h5"
    _write(path, groups={"1": GOOD["0000"], "\u00b2": {"t": np.arange(2.0), "q": np.ones((2, 1))}})
    assert list(Trajectories.load(path).lengths) == [4, 2]  # "1" < "\u00b2" as text


# ----------------------------------------------------------------------------- integrity


def test_saved_files_carry_checksums_and_plain_h5py_reads_them(tmp_path, ragged):
    path = tmp_path / "run.h5"
    ragged.save(path)
    assert path.read_bytes()[8] == 3  # superblock version 3: the HDF5 1.10 format, checksummed
    with h5py.File(path, "r") as f:
        names = ("t", "q", "v", "a")
        for k, r in enumerate(ragged):
            for name in names:
                dataset = f[f"trajectories/{k:04d}/{name}"]
                assert dataset.fletcher32 and dataset.chunks is not None
                assert np.array_equal(dataset[()], getattr(r, name))
                assert dataset.attrs["crc32"] == trajectory_io.dataset_checksum(getattr(r, name))
        stored = {name: f.attrs[name] for name in f.attrs}
    assert stored["format"] == "pikan-trajectories" and "attrs_crc32" in stored


def _flip(path, at, value=None):
    """A copy of ``path`` named bad.h5 with the byte at ``at`` changed."""
    blob = bytearray(path.read_bytes())
    blob[at] = blob[at] ^ 0x10 if value is None else value
    out = path.with_name("bad.h5")
    out.write_bytes(bytes(blob))
    return out


def test_a_flipped_data_byte_is_refused(tmp_path):
    data = Trajectories.from_arrays(np.linspace(0, 1, 9), np.arange(9.0) / 7, coords=["x"])
    data.save(tmp_path / "good.h5")
    blob = (tmp_path / "good.h5").read_bytes()
    bad = _flip(tmp_path / "good.h5", blob.index(data[0].q.tobytes()) + 20)
    with pytest.raises(DataError, match=r"bad\.h5: reading failed \(OSError: .*filter"):
        Trajectories.load(bad)


def test_what_fletcher32_misses_the_crc32_catches(tmp_path):
    # Fletcher-32 adds 16-bit words modulo 65535, so a word 0xffff zeroed leaves it unchanged
    t = np.linspace(0, 0.6, 7)
    assert t[5].tobytes()[:2] == b"\xff\xff"  # 0.49999999999999994
    Trajectories.from_arrays(t, np.cos(t), coords=["x"]).save(tmp_path / "good.h5")
    blob = bytearray((tmp_path / "good.h5").read_bytes())
    at = blob.index(t.tobytes()) + 5 * 8
    blob[at : at + 2] = b"\0\0"
    (tmp_path / "bad.h5").write_bytes(bytes(blob))
    with h5py.File(tmp_path / "bad.h5", "r") as f:  # plain HDF5 reads a changed value
        assert f["trajectories/0000/t"][5] != t[5]
    with pytest.raises(DataError, match=r"bad\.h5: trajectory 0 .*t does not match its checksum"):
        Trajectories.load(tmp_path / "bad.h5")


def test_edits_by_other_tools_fail_the_checksums_until_dropped(tmp_path, ragged):
    path = tmp_path / "run.h5"
    ragged.save(path)
    with h5py.File(path, "a") as f:
        f.attrs["system"] = "edited"
        f["trajectories/0001/q"][0, 0] = 5.0
    with pytest.raises(DataError, match=r"attributes do not match their checksum.*'attrs_crc32'"):
        Trajectories.load(path)
    with h5py.File(path, "a") as f:
        del f.attrs["attrs_crc32"]
    with pytest.raises(DataError, match=r"trajectory 1 .*q does not match its checksum.*'crc32'"):
        Trajectories.load(path)
    with h5py.File(path, "a") as f:
        del f["trajectories/0001/q"].attrs["crc32"]
    loaded = Trajectories.load(path)
    assert loaded.system == "edited" and loaded[1].q[0, 0] == 5.0
    np.testing.assert_array_equal(loaded[1].q[1:], ragged[1].q[1:])


def _old_layout(path, data):
    """The layout pikan wrote before checksums: default HDF5 format, no filters."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "pikan-trajectories"
        f.attrs["version"] = np.int64(1)
        f.attrs.create("coords", np.array(data.coords, dtype=object), dtype=h5py.string_dtype())
        for i, r in enumerate(data):
            for name in ("t", "q"):
                f[f"trajectories/{i:04d}/{name}"] = getattr(r, name)


def test_files_written_before_checksums_still_load(tmp_path, ragged):
    _old_layout(tmp_path / "old.h5", ragged)
    loaded = Trajectories.load(tmp_path / "old.h5")
    for r, s in zip(ragged, loaded):
        assert np.array_equal(r.t, s.t) and np.array_equal(r.q, s.q)


@pytest.mark.parametrize("signature", [b"HEAP", b"TREE", b"SNOD", b"GCOL"])
def test_damaged_structures_raise_data_error(tmp_path, ragged, signature):
    # zeroing a local heap's signature raised RuntimeError('Link iteration failed (bad local
    # heap signature)'), a B-tree's 'Unable to get group info (wrong B-tree signature)'
    _old_layout(tmp_path / "old.h5", ragged)
    blob = (tmp_path / "old.h5").read_bytes()
    found = [m.start() for m in re.finditer(re.escape(signature), blob)]
    assert found
    for at in found:
        damaged = bytearray(blob)
        damaged[at : at + 4] = bytes(4)
        (tmp_path / "bad.h5").write_bytes(bytes(damaged))
        with pytest.raises(DataError, match=r"bad\.h5"):
            Trajectories.load(tmp_path / "bad.h5")


@pytest.mark.parametrize("layout", ["saved", "old"])
def test_the_file_that_hung_the_loader_raises_data_error(tmp_path, layout):
    # the recipe: HDF5 looped forever on this byte while reading 'format'
    t = np.linspace(0, 1, 11)
    data = Trajectories.from_arrays([t], [np.cos(t)[:, None]], coords=["x"])
    if layout == "saved":
        data.save(tmp_path / "h.h5")
    else:
        _old_layout(tmp_path / "h.h5", data)
    blob = (tmp_path / "h.h5").read_bytes()
    bad = _flip(tmp_path / "h.h5", blob.index(b"pikan-trajectories") - 8, 0x84)
    with pytest.raises(DataError, match=r"bad\.h5"):
        Trajectories.load(bad, timeout=1.0)
    assert np.array_equal(Trajectories.load(tmp_path / "h.h5")[0].q, data[0].q)


@pytest.fixture
def fresh_reader():
    """No helper process before or after the test (a test may change how it starts)."""
    hdf5_reader.close()
    yield
    hdf5_reader.close()


STUCK = "import sys, time\nsys.stdout.write('ready\\n'); sys.stdout.flush()\nsys.stdin.readline()\n"


@pytest.mark.parametrize(
    "program, message",
    [
        (STUCK + "time.sleep(600)\n", r"did not finish within 0\.5 s and was stopped"),
        (STUCK + "sys.exit(3)\n", r"crashed while reading it .*exit status 3"),
    ],
)
def test_a_reader_that_hangs_or_dies_is_a_data_error(
    tmp_path, ragged, monkeypatch, fresh_reader, program, message
):
    ragged.save(tmp_path / "run.h5")
    (tmp_path / "fake_reader.py").write_text(program)
    monkeypatch.setattr(hdf5_reader, "PROGRAM", str(tmp_path / "fake_reader.py"))
    with pytest.raises(DataError, match=rf"run\.h5: .*{message}"):
        Trajectories.load(tmp_path / "run.h5", timeout=0.5)
    monkeypatch.undo()
    hdf5_reader.close()
    assert np.array_equal(Trajectories.load(tmp_path / "run.h5")[2].a, ragged[2].a)


def test_without_a_reader_process_the_file_is_read_here_with_a_warning(
    tmp_path, ragged, monkeypatch, fresh_reader
):
    ragged.save(tmp_path / "run.h5")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    with pytest.warns(RuntimeWarning, match=r"could not start the HDF5 reader process"):
        loaded = Trajectories.load(tmp_path / "run.h5")
    assert_same(ragged, loaded)


@pytest.mark.parametrize("timeout", [0, -1.0, "10", float("nan")])
def test_load_timeout_must_be_positive(tmp_path, ragged, timeout):
    ragged.save(tmp_path / "run.h5")
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        Trajectories.load(tmp_path / "run.h5", timeout=timeout)


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
        Trajectories.from_csv(path, coords=["x", "y"], trajectory="id")
    with pytest.raises(DataError, match=r"missing column\(s\) \['speed'\]"):
        Trajectories.from_csv(path, coords=["x"], trajectory=None, velocities=["speed"])
    path.write_text("t,x\n0,1\n1,oops\n")
    with pytest.raises(DataError, match=r"line 3, column 'x' holds 'oops'"):
        Trajectories.from_csv(path, coords=["x"], trajectory=None)
    path.write_text("t,x\n0,1\n1,nan\n")
    with pytest.raises(DataError, match=r"lab.csv: trajectory 0 .*q is NaN at time index 1"):
        Trajectories.from_csv(path, coords=["x"], trajectory=None)


@pytest.mark.parametrize("column", ["id", "traj", "Trajectory", "run", "trajectory_id"])
def test_from_csv_recognises_the_usual_columns_and_says_which(tmp_path, column):
    path = tmp_path / "lab.csv"
    lines = [f"{column},Time,x,y,v_x,v_y"]
    for key in (2, 1):
        lines += [f"{key},{0.5 * k},{k + key},{-k},1,0" for k in range(4)]
    path.write_text("\n".join(lines) + "\n")
    data = Trajectories.from_csv(path)
    assert data.coords == ("x", "y") and len(data) == 2 and data.has_velocities
    np.testing.assert_array_equal(data[0].q[:, 0], [1.0, 2.0, 3.0, 4.0])  # id 1 first
    assert data.source == (f"lab.csv: time 'Time' (recognised), coordinates ['x', 'y'] "
                           f"(recognised), velocities ['v_x', 'v_y'], 2 trajectories by column "
                           f"'{column}' (recognised)")


def test_from_csv_recognition_drops_no_column_silently(tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text("t,x,v_y\n0,1,2\n1,2,3\n")
    with pytest.raises(DataError, match=r"column\(s\) \['v_y'\] match no coordinate .*coords="):
        Trajectories.from_csv(path)
    path.write_text("step,x\n0,1\n1,2\n")
    with pytest.raises(DataError, match=r"no time column: expected one named t or time"):
        Trajectories.from_csv(path)
    one = Trajectories.from_csv(path, time="step")  # named: the rest recognised
    assert one.coords == ("x",) and "time 'step', coordinates ['x'] (recognised)" in one.source


def test_from_npz_reads_long_and_per_row_arrays(tmp_path):
    t = np.linspace(0.0, 1.0, 6)
    rows = np.cos(t)[None, :] + np.arange(3)[:, None]
    np.savez(tmp_path / "rows.npz", time=t, x=rows, v_x=-np.sin(t)[None, :].repeat(3, 0))
    data = Trajectories.from_npz(tmp_path / "rows.npz")
    assert len(data) == 3 and data.coords == ("x",) and data.has_velocities
    np.testing.assert_array_equal(data[2].q[:, 0], rows[2])
    np.testing.assert_array_equal(data[1].t, t)
    assert "3 trajectories (one per row)" in data.source
    np.savez(tmp_path / "long.npz", t=np.tile(t, 2), x=np.arange(12.0),
             run=np.repeat([2.0, 1.0], 6))
    data = Trajectories.read(tmp_path / "long.npz")
    np.testing.assert_array_equal(data[0].q[:, 0], np.arange(6.0, 12.0))  # run 1.0 first
    assert "2 trajectories by column 'run' (recognised)" in data.source


def test_from_npz_refuses_what_is_not_named_number_arrays(tmp_path):
    t = np.linspace(0.0, 1.0, 4)
    np.savez(tmp_path / "objects.npz", t=t, x=np.array([{}, {}, {}, {}], dtype=object))
    with pytest.raises(DataError, match=r"objects\.npz: cannot be read without unpickling"):
        Trajectories.from_npz(tmp_path / "objects.npz")
    np.save(tmp_path / "single.npy", t)
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(DataError, match=r"single\.npz: is not an NPZ archive; hint: this is a "
                                        r"single \.npy array"):
        Trajectories.from_npz(tmp_path / "single.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all" * 4)
    with pytest.raises(DataError, match=r"junk\.npz: is not an NPZ archive"):
        Trajectories.read(tmp_path / "junk.npz")
    np.savez(tmp_path / "ragged.npz", t=t, x=np.arange(5.0))
    with pytest.raises(DataError, match=r"differ in length"):
        Trajectories.from_npz(tmp_path / "ragged.npz")
    np.savez(tmp_path / "text.npz", t=t, x=np.array(["a", "b", "c", "d"]))
    with pytest.raises(DataError, match=r"array 'x' holds <U1 .*expected real numbers"):
        Trajectories.from_npz(tmp_path / "text.npz")


def test_read_chooses_the_reader_by_suffix(tmp_path, ragged):
    ragged.save(tmp_path / "run.h5")
    assert_same(ragged, Trajectories.read(tmp_path / "run.h5"))
    assert Trajectories.read(tmp_path / "run.h5").source is None
    with pytest.raises(DataError, match=r"column options \['coords'\] apply to CSV and NPZ"):
        Trajectories.read(tmp_path / "run.h5", coords=["x"])
    (tmp_path / "run.txt").write_text("t,x\n0,1\n")
    with pytest.raises(DataError, match=r"unknown kind of data file '\.txt'"):
        Trajectories.read(tmp_path / "run.txt")
    with pytest.raises(DataError, match=r"not found"):
        Trajectories.read(tmp_path / "nope.csv")


def test_save_names_the_file_not_a_temporary_one(tmp_path, ragged):
    target = tmp_path / "missing" / "run.h5"
    with pytest.raises(DataError, match=r"run\.h5: the folder .*missing' does not exist") as error:
        ragged.save(target)
    assert ".tmp" not in str(error.value)
    with pytest.raises(DataError, match=r"is a folder"):
        ragged.save(tmp_path)


def test_from_csv_refuses_files_that_are_not_text(tmp_path, ragged):
    path = tmp_path / "blob.csv"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(
        DataError, match=r"blob\.csv: is not UTF-8 text \(byte 0x80 at offset 128\)"
    ):
        Trajectories.from_csv(path, coords=["x"])
    ragged.save(tmp_path / "run.h5")
    with pytest.raises(DataError, match=r"not UTF-8 text .*hint: this is an HDF5 file"):
        Trajectories.from_csv(tmp_path / "run.h5", coords=["x"])


def test_from_csv_skips_a_byte_order_mark(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("t,x\n0,1\n1,2\n".encode("utf-8-sig"))
    one = Trajectories.from_csv(path, coords=["x"], trajectory=None)
    np.testing.assert_array_equal(one[0].q[:, 0], [1.0, 2.0])


@pytest.mark.parametrize("cell", ["1_000", "\uff11\uff12", "\u0661", "1e_3"])
def test_from_csv_refuses_numbers_only_python_reads(tmp_path, cell):
    # float() reads '1_000' as 1000 and full-width or Arabic-Indic digits as numbers
    path = tmp_path / "lab.csv"
    path.write_text(f"t,x\n0,1\n1,{cell}\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"line 3, column 'x' holds '{cell}', expected a number"):
        Trajectories.from_csv(path, coords=["x"], trajectory=None)


def test_from_csv_reads_plain_numbers_exactly(tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text("t, x\n0, 1e3\n.5,-2.\n 1 ,+0.1\n")
    one = Trajectories.from_csv(path, coords=["x"], trajectory=None)
    np.testing.assert_array_equal(one[0].t, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(one[0].q[:, 0], [1000.0, -2.0, 0.1])


@pytest.mark.parametrize(
    "text, message",
    [
        ("t,x\n0,1\n1,2,3\n", r"line 3 has 3 cells, the header has 2"),
        ("t,x\n0,1,\n", r"line 2 has 3 cells, the header has 2"),
        ("t,x,note\n0,1,a\n1,2\n", r"line 3 has 2 cells, the header has 3"),
        ("t,x\n\n0,1\n\n1,oops\n", r"line 5, column 'x' holds 'oops'"),
        ('t,x\n0,"1\n', r"line 2: unexpected end of data; expected a CSV file"),
        ("t,x,x\n0,1,2\n", r"column\(s\) \['x'\] appear more than once in the header"),
        ("id,t,x\n1,0,1\n ,1,2\n", r"line 3: the trajectory id \(column 'id'\) is empty"),
    ],
)
def test_from_csv_refuses_malformed_rows(tmp_path, text, message):
    path = tmp_path / "lab.csv"
    path.write_text(text)
    trajectory = "id" if text.startswith("id") else None
    with pytest.raises(DataError, match=rf"lab\.csv: .*(?:{message})"):
        Trajectories.from_csv(path, coords=["x"], trajectory=trajectory)


def test_from_csv_ids_that_are_equal_numbers_are_one_trajectory(tmp_path):
    path = tmp_path / "lab.csv"
    lines = ["id,t,x", "1,0,0", "1.0,1,1", "01,2,2", "b,0,7", "10,0,5", "9,0,3", "a,0,6", "1e0,3,3"]
    path.write_text("\n".join(lines) + "\n")
    data = Trajectories.from_csv(path, coords=["x"])
    # numbers first, ascending and compared exactly, then the other ids as text
    assert [r.q[0, 0] for r in data] == [0.0, 3.0, 5.0, 6.0, 7.0]
    np.testing.assert_array_equal(data[0].t, [0.0, 1.0, 2.0, 3.0])
    big = tmp_path / "big.csv"  # ids beyond float64's integers stay apart
    big.write_text("id,t,x\n9007199254740993,0,1\n9007199254740992,0,2\n")
    assert [r.q[0, 0] for r in Trajectories.from_csv(big, coords=["x"])] == [2.0, 1.0]
