"""Damaged HDF5 files: seeded byte flips, zeroings and truncations of a small valid file.

Every load is bounded by the reader's deadline (``timeout=``), and its outcome is either the
data exactly as saved or a ``DataError`` naming the file: never another exception, never
changed values, never a hang. Before checksums and the reader process, 400 such cases of a
file like this gave 224 DataErrors, 39 silently changed values, 12 raw RuntimeErrors or
KeyErrors and 2 hangs.
"""

import h5py
import numpy as np
import pytest

from pikan.data.trajectories import Trajectories
from pikan.errors import DataError

TIMEOUT = 5.0
"""Seconds per load: a valid read of these files takes milliseconds, a hang forever."""


def small_data() -> Trajectories:
    t1, t2 = np.linspace(0, 1, 11), np.linspace(0, 0.6, 7)
    return Trajectories.from_arrays(
        [t1, t2],
        [np.c_[np.cos(t1), np.sin(t1)], np.c_[t2, t2**2]],
        [np.c_[-np.sin(t1), np.cos(t1)], np.c_[np.ones(7), 2 * t2]],
        coords=["x", "y"],
        system="toy",
        masses=[1.0, 2.5],
        params={"k": 0.5},
    )


def old_layout(path, data: Trajectories) -> None:
    """The layout pikan wrote before checksums: default HDF5 format, no filters."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "pikan-trajectories"
        f.attrs["version"] = np.int64(1)
        f.attrs.create("coords", np.array(data.coords, dtype=object), dtype=h5py.string_dtype())
        f.attrs["system"] = data.system
        f.attrs["masses"] = data.masses
        for i, r in enumerate(data):
            for name in ("t", "q", "v"):
                f[f"trajectories/{i:04d}/{name}"] = getattr(r, name)


def damaged(blob: bytes, rng: np.random.Generator, kind: str) -> bytes:
    """``blob`` with one random byte flipped, 1 to 8 bytes zeroed, or its tail cut off."""
    out = bytearray(blob)
    at = int(rng.integers(len(out)))
    if kind == "flip":
        out[at] ^= int(rng.integers(1, 256))
    elif kind == "zero":
        end = min(len(out), at + int(rng.integers(1, 9)))
        out[at:end] = bytes(end - at)
    else:
        del out[at:]
    return bytes(out)


def same(a: Trajectories, b: Trajectories) -> bool:
    if (len(a), a.coords, a.system, a.params) != (len(b), b.coords, b.system, b.params):
        return False
    if not np.array_equal(a.masses, b.masses):
        return False
    return all(
        (x is None and y is None)
        or (x is not None and y is not None and x.dtype == y.dtype and np.array_equal(x, y))
        for r, s in zip(a, b)
        for x, y in ((r.t, s.t), (r.q, s.q), (r.v, s.v), (r.a, s.a))
    )


def outcomes(path, blob: bytes, seed: int, n: int, original: Trajectories | None) -> dict:
    """Counts over n damaged copies of blob: "DataError" (of which "stopped" by the deadline),
    and loads "identical" to or "changed" from ``original`` (all "loaded" when it is None)."""
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(("DataError", "stopped", "identical", "changed", "loaded"), 0)
    for case in range(n):
        path.write_bytes(damaged(blob, rng, ("flip", "flip", "zero", "truncate")[case % 4]))
        try:
            loaded = Trajectories.load(path, timeout=TIMEOUT)
        except DataError as error:
            assert path.name in str(error)
            counts["DataError"] += 1
            counts["stopped"] += "did not finish" in str(error)
            continue
        if original is None:
            counts["loaded"] += 1
        else:
            counts["identical" if same(original, loaded) else "changed"] += 1
    return counts


def test_damaged_saved_files_load_exactly_or_raise_data_error(tmp_path):
    data = small_data()
    data.save(tmp_path / "valid.h5")
    # with HDF5 2.0, seed 2 includes a file on which the library loops forever (stopped)
    counts = outcomes(tmp_path / "case.h5", (tmp_path / "valid.h5").read_bytes(), 2, 300, data)
    assert counts["changed"] == 0, counts
    assert counts["identical"] > 50 and counts["DataError"] > 50, counts  # both were exercised


def test_damaged_files_without_checksums_raise_nothing_but_data_error(tmp_path):
    # no checksums: a changed value can pass, but no other exception and no hang
    old_layout(tmp_path / "valid.h5", small_data())
    counts = outcomes(tmp_path / "case.h5", (tmp_path / "valid.h5").read_bytes(), 1, 100, None)
    assert counts["DataError"] > 20 and counts["loaded"] > 20, counts


@pytest.mark.parametrize("kind", ["flip", "zero", "truncate"])
def test_damage_is_what_it_says(kind):
    blob = bytes(range(1, 200))
    out = damaged(blob, np.random.default_rng(3), kind)
    if kind == "truncate":
        assert len(out) < len(blob) and blob.startswith(out)
    else:
        changed = [i for i in range(len(blob)) if out[i] != blob[i]]
        assert len(out) == len(blob) and 1 <= len(changed) <= (1 if kind == "flip" else 8)
        if kind == "zero":
            assert all(out[i] == 0 for i in changed)
