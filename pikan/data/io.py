"""Trajectory files: the HDF5 schema (version 1), and long-format CSV and NPZ input.

HDF5 schema (version 1), readable and writable with plain h5py::

    /                      attrs: format = "pikan-trajectories", version = 1,
                                  coords = array of utf-8 strings, optional: system (str), masses,
                                  params (JSON text), attrs_crc32 (uint32)
    /trajectories/0000     one group per trajectory, names sorted
        t  (T,)   float64, strictly increasing
        q  (T, n) float64
        v  (T, n) float64  optional
        a  (T, n) float64  optional
                           each dataset optionally with attrs: crc32 (uint32)

Group names are sorted numerically when they are all digits ("0", "1", "10"), otherwise as
strings. ``masses`` is a positive float64 scalar or an (n,) array. ``params`` is a JSON object.

Integrity. A file pikan writes loads exactly as written or raises :class:`DataError`:

- every dataset is stored with HDF5's Fletcher-32 filter (chunked), which HDF5 checks on
  every read, in any reader;
- the file uses the HDF5 1.10 format (``libver="v110"``, readable by HDF5 >= 1.10, 2016),
  whose object headers, links and chunk indexes carry checksums, so a damaged name, shape,
  dtype or chunk address is an error rather than other data;
- each dataset's ``crc32`` (:func:`dataset_checksum`) covers its dtype, shape and bytes
  end to end, since Fletcher-32 misses some changes (a 16-bit word 0xffff read as 0x0000);
- ``attrs_crc32`` (:func:`attributes_checksum`) covers the root attributes, since HDF5
  keeps variable-length strings (format, coords, system, params) in a global heap that has
  no checksum.

A file edited with another tool must drop or update the checksum of what it changed (the
error says which). Files without checksums (older pikan, other tools) still load; damage
to them is caught only where HDF5 or the validation notices it.

Reading never hangs, and fails only with :class:`DataError`: h5py reads the file in a helper
process (:mod:`pikan.data.hdf5_reader`, where the design is measured and explained) and
:func:`read_hdf5` waits with a deadline (:func:`read_timeout`: 10 s plus 1 s per 10 MB, or
``timeout=``). Every failure of h5py or HDF5, a read stopped at the deadline and a crashed
reader become a :class:`DataError` that names the file.

CSV (long format): a header row, then one row per sample, with a time column, one column
per coordinate, optional velocity and acceleration columns and an optional trajectory id.
The file must be UTF-8 text (a byte-order mark is skipped); every row has as many cells as
the header; number cells are plain decimal numbers as ``float()`` reads them, but without
``_`` separators or non-ASCII digits (``1_000`` and ``１２`` are refused); ``nan`` and
``inf`` are read and then refused by the validation with the time index. A trajectory id
that is a number names one trajectory however it is written (``1``, ``1.0``, ``01`` and
``1e0`` are the same trajectory, compared exactly); other ids are compared as text.

NPZ (``numpy.savez``): one named array per column, 1-D as a CSV file's columns, or 2-D
``(trajectories, samples)`` with one trajectory per row (:func:`read_npz`).

Columns of both are named by the caller or recognised (:func:`table_columns`): the time
as ``t`` or ``time``, the trajectory id as one of :data:`TRAJECTORY_COLUMNS`, the
coordinates as every other column but ``v_`` and ``a_`` ones; what was read from which
column is kept for the user (:attr:`RawTrajectories.columns`).

The readers turn a file into plain arrays and metadata (:class:`RawTrajectories`) and check
only the file's own structure; :class:`pikan.data.trajectories.Trajectories` validates the values. Users
call :meth:`Trajectories.save <pikan.data.trajectories.Trajectories.save>`,
:meth:`~pikan.data.trajectories.Trajectories.load` and :meth:`~pikan.data.trajectories.Trajectories.from_csv`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
import zlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pikan.data import hdf5_reader
from pikan.errors import DataError

FORMAT = "pikan-trajectories"
VERSION = 1
CHECKSUM = hdf5_reader.ATTRIBUTES_CHECKSUM
"""The root attribute holding :func:`attributes_checksum` of the other attributes."""

LIBVER = ("v110", "v110")
"""HDF5 file format written: 1.10, the oldest with checksums on every kind of metadata."""

READ_TIMEOUT = 10.0
"""Seconds the reader may take on any file, plus one per :data:`READ_RATE` bytes."""

READ_RATE = 10e6
"""Bytes per second that even a slow disk or network file system reads."""

MAX_EXPANSION = 1100
"""A dataset may claim at most this many times the file's size (deflate's largest ratio
is 1032:1); a larger claim is a damaged shape and is refused before memory is allocated."""


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
    columns : str or None
        For a table (CSV, NPZ): which column was read as what (:meth:`Columns.describe`).
    """

    arrays: list
    labels: list
    coords: list
    system: str | None = None
    masses: Any = None
    params: dict | None = None
    columns: str | None = None


# ----------------------------------------------------------------------------- HDF5 writing


def write_hdf5(path: Path, data) -> None:
    """Write ``data`` (:class:`~pikan.data.trajectories.Trajectories`) in the HDF5 schema
    atomically: a temp file in the same folder, renamed.

    Raises
    ------
    DataError
        The folder does not exist, or ``path`` is a folder (named as given, never by the
        temporary file's name).
    """
    if not path.parent.is_dir():
        raise DataError(f"{path}: the folder {str(path.parent)!r} does not exist; hint: create "
                        "it first, or choose another path")
    if path.is_dir():
        raise DataError(f"{path} is a folder; hint: name an .h5 file")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with h5py.File(tmp, "w-", libver=LIBVER) as f:
            _write_groups(f, data)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:  # permissions, a full disk: said of the file the user named
        tmp.unlink(missing_ok=True)
        reason = os.strerror(error.errno) if error.errno else type(error).__name__
        raise DataError(f"{path}: cannot be written ({reason})") from None
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
    # the checksum covers the attributes as a reader will see them: read them back
    written = {name: hdf5_reader.plain(f.attrs[name]) for name in f.attrs}
    f.attrs[CHECKSUM] = np.uint32(attributes_checksum(written))
    group = f.create_group("trajectories")
    width = max(4, len(str(len(data) - 1)))
    for i, r in enumerate(data):
        g = group.create_group(f"{i:0{width}d}")
        for name in ("t", "q", "v", "a"):
            if getattr(r, name) is not None:
                array = getattr(r, name)
                dataset = g.create_dataset(name, data=array, fletcher32=True)
                dataset.attrs[hdf5_reader.DATASET_CHECKSUM] = np.uint32(dataset_checksum(array))


def attributes_checksum(attrs: dict) -> int:
    """CRC-32 of a file's schema attributes, the value of its ``attrs_crc32``.

    Parameters
    ----------
    attrs : dict
        Root attributes as :func:`pikan.data.hdf5_reader.plain` values; ``attrs_crc32``
        itself and names outside the schema are left out.

    Returns
    -------
    int
        ``zlib.crc32`` of the attributes as JSON with sorted keys (ASCII, floats written
        exactly).
    """
    covered = {k: v for k, v in attrs.items() if k in hdf5_reader.ATTRIBUTES and k != CHECKSUM}
    return zlib.crc32(json.dumps(covered, sort_keys=True).encode("ascii"))


def dataset_checksum(array: np.ndarray) -> int:
    """CRC-32 of an array as a dataset stores it, the value of the dataset's ``crc32``.

    ``zlib.crc32`` of the text ``"<dtype> <shape>"`` (numpy's ``dtype.str`` and the shape
    tuple, for example ``"<f8 (11, 2)"``) continued over the array's bytes in C order. It
    backs up Fletcher-32, which cannot tell a 16-bit word 0xffff from 0x0000 (both are 0
    modulo 65535), so zeroing the low bytes of 0.49999999999999994 passes it unnoticed.
    """
    array = np.ascontiguousarray(array)
    start = zlib.crc32(f"{array.dtype.str} {tuple(array.shape)}".encode("ascii"))
    return zlib.crc32(array.data if array.size else b"", start)


# ----------------------------------------------------------------------------- HDF5 reading


def read_timeout(size: int) -> float:
    """The default deadline, in seconds, for reading an HDF5 file of ``size`` bytes."""
    return READ_TIMEOUT + size / READ_RATE


def read_hdf5(path: Path, *, timeout: float | None = None) -> RawTrajectories:
    """Read a file in the HDF5 schema (written by pikan or by any h5py code), with a deadline.

    Parameters
    ----------
    path : Path
    timeout : float, optional
        Seconds the helper process may take to read the file; default
        :func:`read_timeout` of its size.

    Raises
    ------
    DataError
        Missing, unreadable, truncated or damaged files (any failure of h5py or HDF5, a
        checksum that does not match, a read that does not finish within ``timeout`` or
        that crashes the helper), another format or schema version, missing attributes or
        datasets.
    ValueError
        ``timeout`` is not a positive number.
    """
    if timeout is not None and not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    try:
        size = path.stat().st_size if path.is_file() else None
    except OSError:  # removed in between
        size = None
    if size is None:
        raise DataError(f"no such file: {path}")
    request = {"path": os.path.abspath(path), "max_bytes": MAX_EXPANSION * size + 2**20}
    header, blobs = _read(request, read_timeout(size) if timeout is None else timeout, path)
    if not header["ok"]:
        if header["stage"] == "open":
            raise DataError(
                f"{path} is not a readable HDF5 file ({header['error']}); expected a pikan "
                f"trajectories file; hint: the file may be truncated (an interrupted copy) "
                "or another format (for CSV use Trajectories.from_csv)"
            )
        raise DataError(
            f"{path}: reading failed ({header['error']}); the file may be truncated or corrupt"
        )
    return _schema(header["file"], blobs, path)


def _read(request: dict, seconds: float, path: Path) -> tuple[dict, list]:
    """The helper's answer for one file; a timeout or a crash is a DataError."""
    try:
        return hdf5_reader.read(request, seconds)
    except hdf5_reader.ReadTimeout:
        raise DataError(
            f"{path}: reading did not finish within {seconds:g} s and was stopped; "
            "a damaged HDF5 file can make the HDF5 library loop forever; hint: check "
            "the file (h5dump), or pass a larger timeout= for a very large file on a "
            "slow disk"
        ) from None
    except hdf5_reader.ReaderCrashed as error:
        raise DataError(
            f"{path}: the HDF5 library crashed while reading it ({error}); "
            "the file is damaged or not an HDF5 file"
        ) from None


# ----------------------------------------------------------------------------- HDF5 schema


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _shown(value) -> str:
    """A plain attribute value for a message, shortened."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _attributes(attrs: dict, path: Path) -> dict:
    """The schema's root attributes, checked: format, version, coords, system, masses, params."""
    if CHECKSUM in attrs:
        stored = attrs[CHECKSUM]
        if isinstance(stored, bool) or stored != attributes_checksum(attrs):
            raise DataError(
                f"{path}: the attributes do not match their checksum ({CHECKSUM}); the file "
                "is damaged, or its attributes were edited by another tool; hint: restore the "
                f"file, or delete the attribute {CHECKSUM!r} if the edit was deliberate"
            )
    fmt = attrs.get("format")
    if fmt != FORMAT:
        found = "missing" if "format" not in attrs else _shown(fmt)
        raise DataError(
            f"{path}: attribute 'format' is {found}, expected {FORMAT!r}; "
            "hint: this HDF5 file does not follow the pikan trajectories schema"
        )
    version = attrs.get("version")
    if isinstance(version, bool) or not isinstance(version, (int, float)) or version != VERSION:
        raise DataError(
            f"{path}: unsupported schema version {_shown(version)}; this pikan reads version "
            f"{VERSION}; hint: upgrade pikan or rewrite the file"
        )
    raw = attrs.get("coords")
    if raw is None:
        raise DataError(f"{path}: attribute 'coords' is missing; expected the coordinate names")
    coords = raw["array"] if isinstance(raw, dict) and "array" in raw else [raw]
    if not all(isinstance(c, str) for c in coords):
        raise DataError(f"{path}: attribute 'coords' must hold strings, got {_shown(raw)}")
    system = attrs.get("system")
    if system is not None and not isinstance(system, str):
        raise DataError(f"{path}: attribute 'system' must be text, got {_shown(system)}")
    masses = attrs.get("masses")
    if isinstance(masses, dict):
        masses = masses.get("array")
    if "masses" in attrs and (
        isinstance(masses, bool) or not isinstance(masses, (int, float, list))
    ):
        raise DataError(
            f"{path}: attribute 'masses' must be a number or numbers, got {_shown(attrs['masses'])}"
        )
    params = None
    if "params" in attrs:
        try:
            params = json.loads(_text(attrs["params"]) or "")
        except (ValueError, RecursionError):
            raise DataError(
                f"{path}: attribute 'params' is not JSON text: {_shown(attrs['params'])}"
            ) from None
    return {"coords": coords, "system": system, "masses": masses, "params": params}


def _array(entry: dict, blobs: list, label: str, key: str) -> np.ndarray:
    """One dataset's array from the helper's raw bytes (read-only, dtype as stored)."""
    if entry.get("kind") != "dataset" or "blob" not in entry:
        what = (
            f"a dataset of dtype {entry.get('dtype')} and shape {entry.get('shape')}"
            if entry.get("kind") == "dataset"
            else f"a {entry.get('kind')}"
        )
        raise DataError(f"{label}: {key} must be a numeric dataset, got {what}")
    dtype = np.dtype(entry["dtype"])
    if dtype.kind not in "fiu" or dtype.fields is not None:
        raise DataError(f"{label}: {key} must be a numeric dataset, got dtype {dtype}")
    array = np.frombuffer(blobs[entry["blob"]], dtype=dtype).reshape(entry["shape"])
    array.setflags(write=False)
    stored = entry.get(hdf5_reader.DATASET_CHECKSUM)
    if stored is not None and (isinstance(stored, bool) or stored != dataset_checksum(array)):
        raise DataError(
            f"{label}: {key} does not match its checksum ({hdf5_reader.DATASET_CHECKSUM}); "
            "the file is damaged, or the dataset was rewritten by another tool; hint: restore "
            f"the file, or delete the dataset's attribute "
            f"{hdf5_reader.DATASET_CHECKSUM!r} if the edit was deliberate"
        )
    return array


def _schema(found: dict, blobs: list, path: Path) -> RawTrajectories:
    """A file's plain values (see :func:`pikan.data.hdf5_reader.read_plain`) checked
    against the schema."""
    meta = _attributes(found["attrs"], path)
    members = found["members"]
    if found["trajectories"] != "group" or not members:
        raise DataError(
            f"{path}: contains no trajectories (expected groups under /trajectories); "
            "hint: the file is empty or was written by another tool"
        )
    members = sorted(members, key=lambda m: m["name"])
    if all(m["name"].isascii() and m["name"].isdigit() for m in members):
        members.sort(key=lambda m: int(m["name"]))
    records, labels = [], []
    for i, member in enumerate(members):
        where = f"/trajectories/{member['name']}"
        label = f"{path.name}: trajectory {i} ({where})"
        if member["kind"] != "group":
            raise DataError(f"{label} is not a group; expected datasets t, q (and v, a) inside it")
        found_arrays = member["arrays"]
        for required in ("t", "q"):
            if found_arrays.get(required, {}).get("kind") != "dataset":
                raise DataError(
                    f"{label} has no dataset {required!r}; expected "
                    f"{'t (T,)' if required == 't' else 'q (T, n)'}"
                )
        arrays = {
            key: _array(found_arrays[key], blobs, label, key) if key in found_arrays else None
            for key in ("t", "q", "v", "a")
        }
        records.append(arrays)
        labels.append(label)
    return RawTrajectories(
        records,
        labels,
        meta["coords"],
        system=meta["system"],
        masses=meta["masses"],
        params=meta["params"],
    )


# ----------------------------------------------------------------------------- CSV


TIME_COLUMNS = ("t", "time")
"""Names (any case) a table's time column is recognised by when none is named."""

TRAJECTORY_COLUMNS = ("id", "traj", "trajectory", "trajectory_id", "traj_id", "run", "run_id")
"""Names (any case) a table's trajectory-id column is recognised by (``trajectory="auto"``)."""


@dataclass(frozen=True)
class Columns:
    """Which columns of a table (CSV, NPZ) hold what.

    Attributes
    ----------
    time : str
    coords : tuple of str
    trajectory : str or None
        The trajectory-id column; None: the table is one trajectory (or, in an NPZ file of
        2-D arrays, one trajectory per row).
    velocities, accelerations : list of str or None
    sniffed : tuple of str
        What was recognised rather than named by the caller (``"time"``, ``"coords"``,
        ``"trajectory"``), for the description.
    """

    time: str
    coords: tuple
    trajectory: str | None
    velocities: list | None
    accelerations: list | None
    sniffed: tuple = ()

    @property
    def numeric(self) -> list[str]:
        """The number columns, in record order: time, positions, velocities, accelerations."""
        return [self.time, *self.coords, *(self.velocities or []), *(self.accelerations or [])]

    def describe(self, path: Path, n_trajectories: int, by_rows: bool = False) -> str:
        """One line: what was read from which column, marking what was recognised
        (``by_rows``: the arrays hold one trajectory per row)."""

        def mark(item: str) -> str:
            return " (recognised)" if item in self.sniffed else ""

        parts = [f"time '{self.time}'{mark('time')}",
                 f"coordinates {list(self.coords)}{mark('coords')}"]
        if self.velocities:
            parts.append(f"velocities {self.velocities}")
        if self.accelerations:
            parts.append(f"accelerations {self.accelerations}")
        if self.trajectory:
            parts.append(f"{n_trajectories} trajectories by column "
                         f"'{self.trajectory}'{mark('trajectory')}")
        else:
            parts.append(f"{n_trajectories} trajector{'y' if n_trajectories == 1 else 'ies'} "
                         f"({'one per row' if by_rows else 'no id column'})")
        return f"{path.name}: " + ", ".join(parts)


def table_columns(path: Path, header: list[str], *, time: str | None, coords, trajectory,
                  velocities, accelerations) -> Columns:
    """The columns of a table with the named ``header``, as named or recognised.

    Parameters
    ----------
    path : Path
        For messages.
    header : list of str
    time : str or None
        None: the column named one of :data:`TIME_COLUMNS` (any case).
    coords : tuple of str or None
        None: every column that is not the time, the trajectory id or a ``v_`` / ``a_``
        column, in header order.
    trajectory : str, None or "auto"
        ``"auto"``: the column named one of :data:`TRAJECTORY_COLUMNS` (any case), else none.
    velocities, accelerations : list of str, False or None
        None: the ``v_<coord>`` / ``a_<coord>`` columns when all are present.

    Raises
    ------
    DataError
        Missing or repeated columns, no time column to recognise, no coordinate left, and
        (columns recognised, not named) ``v_`` / ``a_`` columns that match no coordinate.
    """
    present = {name: j for j, name in enumerate(header)}
    sniffed = []

    def recognised(choices: tuple) -> str | None:
        return next((name for name in header if name.lower() in choices), None)

    if time is None:
        time = recognised(TIME_COLUMNS)
        if time is None:
            raise DataError(f"{path}: no time column: expected one named {' or '.join(TIME_COLUMNS)} "
                            f"(any case); found {header}; hint: name it with time=... "
                            "(--time on the command line)")
        sniffed.append("time")
    if trajectory == "auto":
        trajectory = recognised(TRAJECTORY_COLUMNS)
        if trajectory is not None:
            sniffed.append("trajectory")
    derivative = ("v_", "a_")
    if coords is None:
        coords = tuple(name for name in header if name not in (time, trajectory)
                       and not name.startswith(derivative))
        if not coords:
            raise DataError(f"{path}: no coordinate columns besides the time '{time}'"
                            f"{f' and the trajectory id {trajectory!r}' if trajectory else ''}"
                            f"; found {header}")
        sniffed.append("coords")

    def optional(names, prefix):
        if names is False:
            return None
        if names is None:
            names = [f"{prefix}_{c}" for c in coords]
            have = [c in present for c in names]
            if any(have) and not all(have):
                missing = [c for c, h in zip(names, have) if not h]
                raise DataError(f"{path}: has some {prefix}_ columns but lacks {missing}")
            return names if all(have) else None
        return list(names)

    vel, acc = optional(velocities, "v"), optional(accelerations, "a")
    wanted = [time, *coords, *(vel or []), *(acc or []), *([trajectory] if trajectory else [])]
    missing = [c for c in wanted if c not in present]
    if missing:
        hint = " (pass trajectory=None for a single trajectory)" if trajectory in missing else ""
        raise DataError(f"{path}: missing column(s) {missing}; found {header}{hint}")
    repeated = sorted({c for c in wanted if header.count(c) > 1})
    if repeated:
        raise DataError(f"{path}: column(s) {repeated} appear more than once in the header")
    if "coords" in sniffed:  # nothing recognised is dropped without a word
        unused = [name for name in header if name not in wanted]
        if unused:
            raise DataError(f"{path}: column(s) {unused} match no coordinate (coordinates "
                            f"recognised: {list(coords)}); hint: name the coordinates with "
                            "coords=[...] (--coords on the command line)")
    return Columns(time, tuple(coords), trajectory, vel, acc, tuple(sniffed))


def _records(path: Path, layout: Columns, values: np.ndarray, groups: list,
             by_rows: bool = False) -> RawTrajectories:
    """Per-trajectory arrays from a table's number columns (``values``, in
    :attr:`Columns.numeric` order) and its rows per trajectory (``by_rows``: the arrays
    held one trajectory per row)."""
    n = len(layout.coords)
    vel, acc = layout.velocities, layout.accelerations
    records, labels = [], []
    for k, (key, members) in enumerate(groups):
        block = values[members]
        records.append({
            "t": block[:, 0],
            "q": block[:, 1: 1 + n],
            "v": block[:, 1 + n: 1 + 2 * n] if vel else None,
            "a": block[:, 1 + n + (n if vel else 0):] if acc else None,
        })
        labels.append(f"{path.name}: trajectory {k} (id {key!r})")
    return RawTrajectories(records, labels, list(layout.coords),
                           columns=layout.describe(path, len(records), by_rows))


def read_csv(path: Path, *, time: str | None, coords: tuple[str, ...] | None,
             trajectory: str | None, velocities, accelerations) -> RawTrajectories:
    """Read a long-format CSV file: a header row, then one row per sample.

    Parameters
    ----------
    path : Path
        An existing file.
    time, coords, trajectory, velocities, accelerations
        Column names or None / ``"auto"`` to recognise them (:func:`table_columns`); see
        :meth:`pikan.data.trajectories.Trajectories.from_csv`; ``coords`` already validated.

    Raises
    ------
    DataError
        Not UTF-8 text, empty file, missing or repeated columns, rows with more or fewer
        cells than the header, no samples, cells that are not plain numbers, empty
        trajectory ids.
    """
    header, rows, lines = _csv_rows(path)
    layout = table_columns(path, header, time=time, coords=coords, trajectory=trajectory,
                           velocities=velocities, accelerations=accelerations)
    if not rows:
        raise DataError(f"{path}: has a header but no samples")
    index = {name: j for j, name in enumerate(header)}
    cells = np.array([[row[index[c]] for c in layout.numeric] for row in rows], dtype=str)
    places = [f"line {line}" for line in lines]
    values = _numbers(cells, layout.numeric, places, path)
    ids = [row[index[layout.trajectory]] for row in rows] if layout.trajectory else None
    return _records(path, layout, values, _groups(ids, layout.trajectory, places, path))


def read_npz(path: Path, *, time: str | None, coords: tuple[str, ...] | None,
             trajectory: str | None, velocities, accelerations) -> RawTrajectories:
    """Read a NumPy ``.npz`` file of named arrays, one array per column.

    Arrays are either 1-D of one length (long format, as a CSV file's columns: a
    trajectory-id array groups the samples) or 2-D of one shape ``(trajectories, samples)``
    (one trajectory per row; the time may also be 1-D, shared by every row). Arrays must be
    real numbers (trajectory ids may also be text); pickled objects are refused.

    Parameters
    ----------
    path : Path
        An existing file.
    time, coords, trajectory, velocities, accelerations
        As for :func:`read_csv`.

    Raises
    ------
    DataError
        Not an NPZ archive (or damaged), object arrays, arrays of other shapes or kinds,
        and every column problem of :func:`table_columns`.
    """
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror})") from None
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip archive's first record
        hint = ("this is a single .npy array: save named arrays with numpy.savez(path, t=..., "
                "x=...)" if magic == b"\x93NUM" else "expected numpy.savez's output")
        raise DataError(f"{path}: is not an NPZ archive; hint: {hint}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as error:
        raise DataError(f"{path}: cannot be read without unpickling objects ({error}); hint: "
                        "store number arrays only") from None
    except Exception as error:  # noqa: BLE001 - a damaged archive fails in zipfile's ways
        raise DataError(f"{path}: is not a readable NPZ file ({type(error).__name__}: "
                        f"{error})") from None
    header = list(arrays)
    layout = table_columns(path, header, time=time, coords=coords, trajectory=trajectory,
                           velocities=velocities, accelerations=accelerations)
    for name in layout.numeric:
        kind = arrays[name].dtype.kind
        if kind not in "iuf" or arrays[name].ndim not in (1, 2):
            raise DataError(f"{path}: array '{name}' holds {arrays[name].dtype} of shape "
                            f"{arrays[name].shape}; expected real numbers, 1-D (one sample "
                            "each) or 2-D (trajectories, samples)")
    data = [arrays[name] for name in layout.numeric]
    if all(a.ndim == 1 for a in data):
        length = {len(a) for a in data}
        ids_array = arrays[layout.trajectory] if layout.trajectory else None
        if ids_array is not None:
            length.add(len(ids_array) if ids_array.ndim == 1 else -1)
        if len(length) != 1:
            raise DataError(f"{path}: 1-D arrays {layout.numeric} (and the trajectory ids) "
                            "differ in length; expected one sample per entry in each")
        places = [f"sample {i}" for i in range(len(data[0]))]
        ids = None if ids_array is None else [str(value) for value in ids_array.tolist()]
        groups = _groups(ids, layout.trajectory, places, path)
        return _records(path, layout, np.stack(data, axis=1).astype(np.float64), groups)
    if layout.trajectory is not None:
        raise DataError(f"{path}: 2-D arrays hold one trajectory per row; the trajectory-id "
                        f"array '{layout.trajectory}' is not needed with them; hint: pass "
                        "trajectory=None")
    shape = next(a.shape for a in data if a.ndim == 2)
    if data[0].ndim == 1 and len(data[0]) == shape[1]:  # one time axis for every row
        data[0] = np.broadcast_to(data[0], shape)
    if any(a.shape != shape for a in data):
        raise DataError(f"{path}: arrays {layout.numeric} have shapes "
                        f"{[a.shape for a in data]}; expected one shape (trajectories, "
                        "samples), or a 1-D time of the samples' length")
    values = np.stack([a.reshape(-1) for a in data], axis=1).astype(np.float64)
    groups = [(str(k), list(range(k * shape[1], (k + 1) * shape[1])))
              for k in range(shape[0])]
    return _records(path, layout, values, groups, by_rows=True)


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """The header (names stripped), the non-blank rows and each row's line number."""
    try:
        blob = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error})") from None
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        hint = (
            "this is an HDF5 file: use Trajectories.load"
            if blob.startswith(b"\x89HDF")
            else "save the table as CSV (UTF-8)"
        )
        raise DataError(
            f"{path}: is not UTF-8 text (byte {blob[error.start]:#04x} at offset "
            f"{error.start}); expected a CSV file; hint: {hint}"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, lines = [], []
    try:
        for row in reader:
            if row:
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num}: {error}; expected a CSV file") from None
    if not rows:
        raise DataError(f"{path}: the file is empty; expected a header row and one row per sample")
    header = [name.strip() for name in rows[0]]
    for row, line in zip(rows[1:], lines[1:]):
        if len(row) != len(header):
            raise DataError(
                f"{path}: line {line} has {len(row)} cells, the header has {len(header)}; "
                "hint: a stray or missing delimiter, or a quote left open"
            )
    return header, rows[1:], lines[1:]


def _plain_number(text: str) -> bool:
    """Whether ``float()`` reads ``text`` with no ``_`` separators and no non-ASCII digits."""
    if not text.isascii() or "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numbers(cells: np.ndarray, names: list[str], places: list[str], path: Path) -> np.ndarray:
    """float64 values of a (rows, columns) array of cells, which must be plain numbers;
    ``places`` names each row in messages (``"line 7"``)."""
    codes = cells.view(np.uint32) if cells.size else np.zeros(0, np.uint32)
    if not (codes >= 128).any() and not (codes == ord("_")).any():
        try:
            return cells.astype(np.float64)
        except ValueError:
            pass
    for i, j in np.ndindex(cells.shape):
        if not _plain_number(cells[i, j]):
            raise DataError(
                f"{path}: {places[i]}, column '{names[j]}' holds {str(cells[i, j])!r}, "
                "expected a number"
            )
    raise AssertionError("every cell read as a number")


def _groups(ids: list[str] | None, column: str | None, places: list[str], path: Path) -> list:
    """Rows per trajectory: (first spelling of the id, row indices), ordered by id;
    ``places`` names each row in messages.

    An id that is a plain number is keyed by its exact value (``1``, ``1.0`` and ``01``
    are one trajectory); numeric ids come first, ascending, then the others as text.
    """
    if ids is None:
        return [("0", list(range(len(places))))]
    groups: dict = {}
    for i, raw in enumerate(ids):
        text = raw.strip()
        if not text:
            raise DataError(
                f"{path}: {places[i]}: the trajectory id (column '{column}') is empty"
            )
        number = Decimal(text) if _plain_number(text) else None
        key = (0, number, "") if number is not None and number.is_finite() else (1, 0, text)
        groups.setdefault(key, (text, []))[1].append(i)
    return [groups[key] for key in sorted(groups)]
