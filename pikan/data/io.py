"""Trajectory files: the HDF5 schema (version 1) and long-format CSV input.

HDF5 schema (version 1), readable and writable with plain h5py::

    /                      attrs: format = "pikan-trajectories", version = 1,
                                  coords = array of utf-8 strings, optional: system (str), masses, params (JSON text)
    /trajectories/0000     one group per trajectory, names sorted
        t  (T,)   float64, strictly increasing
        q  (T, n) float64
        v  (T, n) float64  optional
        a  (T, n) float64  optional

Group names are sorted numerically when they are all digits ("0", "1", "10"), otherwise as
strings. ``masses`` is a float64 scalar or an (n,) array. ``params`` is a JSON object.

CSV (long format): a header row, then one row per sample, with a time column, one column
per coordinate, optional velocity and acceleration columns and an optional trajectory id.

The readers turn a file into plain arrays and metadata (:class:`RawTrajectories`) and check
only the file's own structure; :class:`pikan.data.trajectories.Trajectories` validates the values. Users
call :meth:`Trajectories.save <pikan.data.trajectories.Trajectories.save>`,
:meth:`~pikan.data.trajectories.Trajectories.load` and :meth:`~pikan.data.trajectories.Trajectories.from_csv`.
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pikan.errors import DataError

FORMAT = "pikan-trajectories"
VERSION = 1


@dataclass(frozen=True)
class RawTrajectories:
    """Arrays and metadata as read from a file, before validation.

    Attributes
    ----------
    arrays : list of dict
        Per trajectory: ``"t"`` (T,), ``"q"`` (T, n), ``"v"`` and ``"a"`` (T, n) or None.
    labels : list of str
        Per trajectory: where it is in the file, for error messages.
    coords : list of str
        The n coordinate names.
    system, masses, params
        Metadata stored in the file (None when absent; CSV files hold none).
    """

    arrays: list
    labels: list
    coords: list
    system: str | None = None
    masses: Any = None
    params: dict | None = None


# ----------------------------------------------------------------------------- HDF5


def write_hdf5(path: Path, data) -> None:
    """Write ``data`` (:class:`~pikan.data.trajectories.Trajectories`) in the HDF5 schema
    atomically: a temp file in the same folder, renamed."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with h5py.File(tmp, "w-") as f:
            _write_groups(f, data)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_groups(f: h5py.File, data) -> None:
    f.attrs["format"] = FORMAT
    f.attrs["version"] = np.int64(VERSION)
    f.attrs.create("coords", np.array(data.coords, dtype=object), dtype=h5py.string_dtype("utf-8"))
    if data.system is not None:
        f.attrs["system"] = data.system
    if data.masses is not None:
        f.attrs["masses"] = np.float64(data.masses) if np.ndim(data.masses) == 0 else data.masses
    if data.params is not None:
        f.attrs["params"] = json.dumps(data.params, sort_keys=True)
    group = f.create_group("trajectories")
    width = max(4, len(str(len(data) - 1)))
    for i, r in enumerate(data):
        g = group.create_group(f"{i:0{width}d}")
        for name in ("t", "q", "v", "a"):
            if getattr(r, name) is not None:
                g.create_dataset(name, data=getattr(r, name))


def read_hdf5(path: Path) -> RawTrajectories:
    """Read a file in the HDF5 schema (written by pikan or by any h5py code).

    Raises
    ------
    DataError
        Missing, unreadable or truncated files, another format or schema version, missing
        attributes or datasets.
    """
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise DataError(
            f"{path} is not a readable HDF5 file ({error}); expected a pikan "
            f"trajectories file; hint: the file may be truncated (an interrupted copy) "
            "or another format (for CSV use Trajectories.from_csv)"
        ) from None
    try:
        with f:
            return _read_groups(f, path)
    except OSError as error:
        raise DataError(
            f"{path}: reading failed ({error}); the file may be truncated or corrupt"
        ) from None


def _text(value) -> str | None:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    return value if isinstance(value, str) else None


def _read_groups(f: h5py.File, path: Path) -> RawTrajectories:
    fmt = _text(f.attrs.get("format"))
    if fmt != FORMAT:
        found = "missing" if "format" not in f.attrs else repr(f.attrs["format"])
        raise DataError(
            f"{path}: attribute 'format' is {found}, expected {FORMAT!r}; "
            "hint: this HDF5 file does not follow the pikan trajectories schema"
        )
    version = f.attrs.get("version")
    version = version.item() if isinstance(version, np.generic) else version
    if not isinstance(version, (int, float)) or version != VERSION:
        raise DataError(
            f"{path}: unsupported schema version {version!r}; this pikan reads version "
            f"{VERSION}; hint: upgrade pikan or rewrite the file"
        )
    raw = f.attrs.get("coords")
    if raw is None:
        raise DataError(f"{path}: attribute 'coords' is missing; expected the coordinate names")
    coords = [_text(c) for c in np.atleast_1d(raw)]
    if any(c is None for c in coords):
        raise DataError(f"{path}: attribute 'coords' must hold strings, got {raw!r}")
    system = _text(f.attrs["system"]) if "system" in f.attrs else None
    masses = f.attrs.get("masses", None)
    params = None
    if "params" in f.attrs:
        try:
            params = json.loads(_text(f.attrs["params"]) or "")
        except ValueError:
            raise DataError(
                f"{path}: attribute 'params' is not JSON text: {f.attrs['params']!r}"
            ) from None
    group = f.get("trajectories")
    if not isinstance(group, h5py.Group) or len(group) == 0:
        raise DataError(
            f"{path}: contains no trajectories (expected groups under /trajectories); "
            "hint: the file is empty or was written by another tool"
        )
    names = sorted(group.keys())
    if all(name.isdigit() for name in names):
        names.sort(key=int)
    records, labels = [], []
    for i, name in enumerate(names):
        member, where = group[name], f"/trajectories/{name}"
        label = f"{path.name}: trajectory {i} ({where})"
        if not isinstance(member, h5py.Group):
            raise DataError(f"{label} is not a group; expected datasets t, q (and v, a) inside it")
        for required in ("t", "q"):
            if not isinstance(member.get(required), h5py.Dataset):
                raise DataError(
                    f"{label} has no dataset {required!r}; expected "
                    f"{'t (T,)' if required == 't' else 'q (T, n)'}"
                )
        arrays = {}
        for key in ("t", "q", "v", "a"):
            dataset = member.get(key)
            if dataset is None:
                arrays[key] = None
                continue
            if not isinstance(dataset, h5py.Dataset) or dataset.dtype.kind not in "fiu":
                raise DataError(f"{label}: {key} must be a numeric dataset, got {dataset!r}")
            arrays[key] = dataset[()]
        records.append(arrays)
        labels.append(label)
    return RawTrajectories(records, labels, coords, system=system, masses=masses, params=params)


# ----------------------------------------------------------------------------- CSV


def read_csv(
    path: Path,
    *,
    time: str,
    coords: tuple[str, ...],
    trajectory: str | None,
    velocities,
    accelerations,
) -> RawTrajectories:
    """Read a long-format CSV file: a header row, then one row per sample.

    Parameters
    ----------
    path : Path
        An existing file.
    time, coords, trajectory, velocities, accelerations
        Column names, see :meth:`pikan.data.trajectories.Trajectories.from_csv`; ``coords`` already
        validated.

    Raises
    ------
    DataError
        Empty file, missing columns, no samples, cells that are not numbers.
    """
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        raise DataError(f"{path}: the file is empty; expected a header row and one row per sample")
    header = [name.strip() for name in rows[0]]
    rows = [row for row in rows[1:] if row]
    columns = {name: j for j, name in enumerate(header)}

    def optional(spec, prefix):
        if spec is False:
            return None
        if spec is None:
            names = [f"{prefix}_{c}" for c in coords]
            present = [c in columns for c in names]
            if any(present) and not all(present):
                missing = [c for c, p in zip(names, present) if not p]
                raise DataError(f"{path}: has some {prefix}_ columns but lacks {missing}")
            return names if all(present) else None
        return list(spec)

    vel, acc = optional(velocities, "v"), optional(accelerations, "a")
    wanted = [time, *coords, *(vel or []), *(acc or []), *([trajectory] if trajectory else [])]
    missing = [c for c in wanted if c not in columns]
    if missing:
        hint = " (pass trajectory=None for a single trajectory)" if trajectory in missing else ""
        raise DataError(f"{path}: missing column(s) {missing}; found {header}{hint}")
    if not rows:
        raise DataError(f"{path}: has a header but no samples")
    numeric = [time, *coords, *(vel or []), *(acc or [])]
    cells = np.array(
        [[row[columns[c]] if columns[c] < len(row) else "" for c in numeric] for row in rows]
    )
    try:
        values = cells.astype(np.float64)
    except ValueError:
        for i, j in np.ndindex(cells.shape):
            try:
                float(cells[i, j])
            except ValueError:
                raise DataError(
                    f"{path}: line {i + 2}, column '{numeric[j]}' holds {str(cells[i, j])!r}, "
                    "expected a number"
                ) from None
        raise
    ids = [row[columns[trajectory]].strip() for row in rows] if trajectory else ["0"] * len(rows)
    unique = list(dict.fromkeys(ids))
    try:
        unique.sort(key=float)
    except ValueError:
        unique.sort()
    n = len(coords)
    groups = {key: [] for key in unique}
    for i, key in enumerate(ids):
        groups[key].append(i)
    records, labels = [], []
    for k, key in enumerate(unique):
        block = values[groups[key]]
        records.append(
            {
                "t": block[:, 0],
                "q": block[:, 1 : 1 + n],
                "v": block[:, 1 + n : 1 + 2 * n] if vel else None,
                "a": block[:, 1 + n + (n if vel else 0) :] if acc else None,
            }
        )
        labels.append(f"{path.name}: trajectory {k} (id {key!r})")
    return RawTrajectories(records, labels, list(coords))
