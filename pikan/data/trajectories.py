"""Trajectory data: one validated container, :class:`Trajectories`.

A :class:`Trajectories` holds one or more trajectories of a mechanical system with ``n``
named coordinates. Trajectories may have different lengths and time steps. Per trajectory:
``t`` (T,), ``q`` (T, n), optional ``v`` (T, n) and ``a`` (T, n), all float64. Every
trajectory has velocities or none has; the same holds for accelerations. The arrays are
read-only: operations return new containers.

Files: :meth:`Trajectories.save` / :meth:`Trajectories.load` use the HDF5 schema and
:meth:`Trajectories.from_csv` reads long-format CSV, both described in
:mod:`pikan.data.io`. Missing velocities and accelerations are estimated by
:meth:`Trajectories.with_derivatives` with the pure functions of :mod:`pikan.data.derivatives`
(:func:`finite_difference`, :func:`savgol_derivative`, :func:`savgol_window`,
:func:`noise_level`), which this module re-exports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pikan.data.derivatives import (
    UNIFORM_STEP_RTOL,
    derivative_estimator,
    finite_difference,
    noise_level,
    savgol_derivative,
    savgol_window,
)
from pikan.data.io import FORMAT, VERSION, read_csv, read_hdf5, read_npz, write_hdf5
from pikan.errors import DataError

__all__ = [
    "FORMAT",
    "UNIFORM_STEP_RTOL",
    "VERSION",
    "Trajectories",
    "Trajectory",
    "Windows",
    "finite_difference",
    "noise_level",
    "savgol_derivative",
    "savgol_window",
]


@dataclass(frozen=True, eq=False)
class Trajectory:
    """One trajectory: read-only float64 arrays.

    Attributes
    ----------
    t : ndarray, shape (T,)
        Strictly increasing sample times.
    q : ndarray, shape (T, n)
        Positions.
    v, a : ndarray, shape (T, n), or None
        Velocities and accelerations, when known.
    """

    t: np.ndarray
    q: np.ndarray
    v: np.ndarray | None = None
    a: np.ndarray | None = None

    def __len__(self) -> int:
        return self.t.shape[0]


@dataclass(frozen=True, eq=False)
class Windows:
    """Fixed-length windows cut from trajectories, for rollout training.

    Attributes
    ----------
    t : ndarray, shape (n_windows, length)
    q : ndarray, shape (n_windows, length, n)
    v, a : ndarray, shape (n_windows, length, n), or None
    trajectory : ndarray of int, shape (n_windows,)
        Index of the trajectory each window was cut from.
    start : ndarray of int, shape (n_windows,)
        Time index of each window's first sample in its trajectory.
    """

    t: np.ndarray
    q: np.ndarray
    v: np.ndarray | None
    a: np.ndarray | None
    trajectory: np.ndarray
    start: np.ndarray

    def __len__(self) -> int:
        return self.t.shape[0]


# ----------------------------------------------------------------------------- validation


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _as_float(x: Any, name: str, label: str) -> np.ndarray:
    """A private read-only float64 copy of ``x`` (no copy when it already is one)."""
    if isinstance(x, np.ndarray) and x.dtype == np.float64 and not x.flags.writeable:
        return x
    if np.iscomplexobj(x):
        raise DataError(f"{label}: {name} has complex values; expected real numbers")
    try:
        return _readonly(np.array(x, dtype=np.float64))
    except (TypeError, ValueError) as error:
        raise DataError(f"{label}: {name} is not an array of real numbers ({error})") from None


def _check_finite(array: np.ndarray, name: str, label: str, t: np.ndarray, coords) -> None:
    bad = ~np.isfinite(array)
    if not bad.any():
        return
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    kind = "NaN" if np.isnan(array[where]) else "infinite"
    if name == "t":
        raise DataError(
            f"{label}: t is {kind} at time index {where[0]}; "
            "hint: drop the sample or fix its time stamp"
        )
    raise DataError(
        f"{label}: {name} is {kind} at time index {where[0]} (t = {t[where[0]]:g}), "
        f"coordinate '{coords[where[1]]}'; hint: drop or interpolate missing samples"
    )


def _validated(t, q, v, a, coords: tuple[str, ...], label: str) -> Trajectory:
    n = len(coords)
    t = _as_float(t, "t", label)
    if t.ndim != 1:
        raise DataError(f"{label}: t has shape {t.shape}, expected (T,)")
    T = t.shape[0]
    if T == 0:
        raise DataError(f"{label}: has no samples (t is empty)")
    _check_finite(t, "t", label, t, coords)
    steps = np.diff(t)
    if (steps <= 0).any():
        k = int(np.argmax(steps <= 0))
        raise DataError(
            f"{label}: t is not strictly increasing at time index {k + 1} "
            f"(t[{k}] = {float(t[k])!r}, t[{k + 1}] = {float(t[k + 1])!r}); "
            "hint: sort samples by time and drop duplicates"
        )
    arrays = {}
    for name, x in (("q", q), ("v", v), ("a", a)):
        if x is None:
            arrays[name] = None
            continue
        x = _as_float(x, name, label)
        if x.shape != (T, n):
            raise DataError(
                f"{label}: {name} has shape {x.shape}, expected ({T}, {n}): "
                f"{T} samples (the length of t) by {n} coordinates {list(coords)}"
            )
        _check_finite(x, name, label, t, coords)
        arrays[name] = x
    return Trajectory(t, arrays["q"], arrays["v"], arrays["a"])


def _validated_coords(coords) -> tuple[str, ...]:
    if isinstance(coords, str) or coords is None:
        raise DataError(
            f"coords must be a list of coordinate names, got {coords!r}; "
            "hint: coords=['x'] for a single coordinate"
        )
    coords = tuple(coords)
    if not coords or not all(isinstance(c, str) and c for c in coords):
        raise DataError(f"coords must be a non-empty list of non-empty names, got {list(coords)}")
    if len(set(coords)) != len(coords):
        raise DataError(f"coords has repeated names: {list(coords)}")
    return coords


def _validated_masses(masses, n: int):
    if masses is None:
        return None
    try:
        array = np.array(masses, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"masses must be a number or {n} numbers, got {masses!r}") from None
    if array.ndim != 0 and array.shape != (n,):
        raise DataError(
            f"masses has shape {array.shape}, expected a scalar or ({n},) positive finite values"
        )
    if not (np.isfinite(array) & (array > 0)).all():
        raise DataError(
            f"masses must be positive finite numbers, got {array.tolist()}; "
            "hint: a mass is in the units of the data, for example 1.0"
        )
    return float(array) if array.ndim == 0 else _readonly(array)


def _validated_params(params) -> dict | None:
    if params is None:
        return None
    if not isinstance(params, dict):
        raise DataError(f"params must be a dict of named constants, got {type(params).__name__}")
    try:
        return json.loads(json.dumps(params))
    except (TypeError, ValueError) as error:
        raise DataError(
            f"params must be JSON-serializable (numbers, strings, lists): {error}"
        ) from None


# ----------------------------------------------------------------------------- container


def _column_options(time, coords, trajectory, velocities, accelerations) -> dict:
    """A table reader's column options, checked (the coordinates' names validated)."""
    if time is not None and not isinstance(time, str):
        raise DataError(f"time must be a column name (str) or None, got {time!r}")
    if trajectory is not None and not isinstance(trajectory, str):
        raise DataError(f"trajectory must be a column name (str), 'auto' or None, got "
                        f"{trajectory!r}")
    return {"time": time, "coords": None if coords is None else _validated_coords(coords),
            "trajectory": trajectory, "velocities": velocities,
            "accelerations": accelerations}


class Trajectories:
    """A validated set of trajectories with coordinate names and system metadata.

    Parameters
    ----------
    trajectories : sequence of Trajectory
        Per trajectory t (T_i,), q (T_i, n), optional v and a (T_i, n).
    coords : sequence of str
        The n coordinate names, in the column order of q.
    system : str, optional
        Name of the system the data comes from.
    masses : float or sequence of n floats, optional
    params : dict, optional
        Named constants of the system (JSON-serializable).

    Raises
    ------
    DataError
        Empty data, NaN/inf values, non-increasing t, shape mismatches, velocities or
        accelerations present in some trajectories only, bad metadata.
    """

    def __init__(
        self,
        trajectories: Sequence[Trajectory],
        coords: Sequence[str],
        *,
        system: str | None = None,
        masses=None,
        params: dict | None = None,
        _labels: Sequence[str] | None = None,
        _estimated: Sequence[str] = (),
    ):
        self._coords = _validated_coords(coords)
        trajectories = list(trajectories)
        if not trajectories:
            raise DataError(
                "no trajectories: expected at least one; hint: check the input arrays or file"
            )
        labels = (
            list(_labels)
            if _labels is not None
            else [f"trajectory {i}" for i in range(len(trajectories))]
        )
        self._records = tuple(
            _validated(r.t, r.q, r.v, r.a, self._coords, label)
            for r, label in zip(trajectories, labels)
        )
        for name in ("v", "a"):
            have = [getattr(r, name) is not None for r in self._records]
            if any(have) and not all(have):
                missing = [labels[i] for i, h in enumerate(have) if not h]
                raise DataError(
                    f"{name} is present in some trajectories but missing in "
                    f"{', '.join(missing[:5])}"
                    f"{' ...' if len(missing) > 5 else ''}; hint: give {name} for every "
                    "trajectory or for none (with_derivatives() can estimate it)"
                )
        if system is not None and not isinstance(system, str):
            raise DataError(f"system must be a name (str), got {system!r}")
        self.system = system
        self.masses = _validated_masses(masses, len(self._coords))
        self.params = _validated_params(params)
        self._estimated = frozenset(_estimated) & {
            name for name in ("v", "a") if getattr(self._records[0], name) is not None}
        self._source: str | None = None

    def _like(self, records: Sequence[Trajectory], estimated=None) -> Trajectories:
        return Trajectories(
            records, self._coords, system=self.system, masses=self.masses, params=self.params,
            _estimated=self._estimated if estimated is None else estimated,
        )

    @property
    def estimated(self) -> frozenset[str]:
        """Which of ``"v"`` and ``"a"`` were estimated from the positions
        (:meth:`with_derivatives`) rather than given: consumers that compare a model with
        the data's accelerations treat estimates of noisy positions differently."""
        return self._estimated

    @property
    def measured_accelerations(self) -> bool:
        """Whether the data carries accelerations that were given, not estimated."""
        return self.has_accelerations and "a" not in self._estimated

    # ---------------------------------------------------------------- constructors

    @classmethod
    def from_arrays(
        cls,
        t,
        q,
        v=None,
        a=None,
        *,
        coords: Sequence[str],
        system: str | None = None,
        masses=None,
        params: dict | None = None,
    ) -> Trajectories:
        """Build from arrays: one trajectory, a batch of equal-length ones, or lists of ragged ones.

        Parameters
        ----------
        t : array (T,), array (N, T), or list of N arrays (T_i,)
            Times; an (T,) array is shared by all trajectories.
        q : array (T, n), array (N, T, n), or list of N arrays (T_i, n)
            Positions. With a single coordinate, q may also be (T,).
        v, a : same layout as q, optional
            Velocities and accelerations.
        coords : sequence of str
            The n coordinate names.
        system, masses, params
            Metadata, see :class:`Trajectories`.
        """
        coords = _validated_coords(coords)
        if isinstance(q, (list, tuple)) and len(q) == 0:
            raise DataError("no trajectories: q is an empty list")
        ragged = isinstance(q, (list, tuple)) and (
            isinstance(t, (list, tuple)) or np.ndim(q[0]) >= 2
        )
        if ragged:
            qs = list(q)
        else:
            q_array = _as_float(q, "q", "from_arrays")
            if q_array.ndim == 1 and len(coords) == 1:
                q_array = q_array[:, None]
            qs = list(q_array) if q_array.ndim == 3 else [q_array]
        N = len(qs)

        def per_trajectory(x, name):
            if x is None:
                return [None] * N
            if isinstance(x, (list, tuple)):
                items = list(x)
            else:
                array = np.asarray(x)
                if name != "t" and array.ndim == 1 and len(coords) == 1:
                    array = array[:, None]
                shared = array.ndim == (1 if name == "t" else 2)
                items = [array] * N if shared else list(array)
            if len(items) != N:
                raise DataError(f"from_arrays: {name} holds {len(items)} trajectories, q holds {N}")
            return items

        ts, vs, as_ = per_trajectory(t, "t"), per_trajectory(v, "v"), per_trajectory(a, "a")
        records = [Trajectory(*parts) for parts in zip(ts, qs, vs, as_)]
        return cls(records, coords, system=system, masses=masses, params=params)

    @classmethod
    def from_csv(
        cls,
        path,
        *,
        time: str | None = None,
        coords: Sequence[str] | None = None,
        trajectory: str | None = "auto",
        velocities: Sequence[str] | bool | None = None,
        accelerations: Sequence[str] | bool | None = None,
        system: str | None = None,
        masses=None,
        params: dict | None = None,
    ) -> Trajectories:
        """Read a long-format CSV file: a header row, then one row per sample.

        What was read from which column is in :attr:`source` (``pikan discover`` prints it).

        Parameters
        ----------
        path : str or Path
        time : str, optional
            Name of the time column; default: the column named ``t`` or ``time`` (any case).
        coords : sequence of str, optional
            Position columns, which also name the coordinates; default: every column that
            is not the time, the trajectory id or a ``v_`` / ``a_`` column, in file order
            (a ``v_`` / ``a_`` column that then matches no coordinate is an error).
        trajectory : str, None or "auto"
            Column holding a trajectory id; rows with equal ids form one trajectory, in file
            order. An id that is a number names one trajectory however it is written
            (``1``, ``1.0`` and ``01`` are the same); other ids are compared as text.
            Trajectories are ordered by id: numbers first, ascending, then text.
            ``"auto"`` (default): the column named ``id``, ``traj``, ``trajectory``,
            ``trajectory_id``, ``traj_id``, ``run`` or ``run_id`` (any case) if there is
            one; None: the whole file is one trajectory.
        velocities, accelerations : list of column names, False, or None
            None reads ``v_<coord>`` / ``a_<coord>`` columns when all are present;
            False ignores them; a list names the columns explicitly.
        system, masses, params
            Metadata, as for :meth:`from_arrays`.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"no such CSV file: {path}")
        raw = read_csv(path, **_column_options(time, coords, trajectory, velocities,
                                                accelerations))
        return cls._from_table(raw, system, masses, params)

    @classmethod
    def from_npz(
        cls,
        path,
        *,
        time: str | None = None,
        coords: Sequence[str] | None = None,
        trajectory: str | None = "auto",
        velocities: Sequence[str] | bool | None = None,
        accelerations: Sequence[str] | bool | None = None,
        system: str | None = None,
        masses=None,
        params: dict | None = None,
    ) -> Trajectories:
        """Read a NumPy ``.npz`` file of named arrays (``numpy.savez(path, t=T, x=X)``).

        Each array is a column: 1-D arrays of one length as a CSV file's columns, or 2-D
        arrays of one shape ``(trajectories, samples)`` with one trajectory per row (the
        time may then be 1-D, shared by every row). Pickled objects are never loaded.

        Parameters
        ----------
        path : str or Path
        time, coords, trajectory, velocities, accelerations, system, masses, params
            As for :meth:`from_csv`, naming arrays instead of columns.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"no such NPZ file: {path}")
        raw = read_npz(path, **_column_options(time, coords, trajectory, velocities,
                                                accelerations))
        return cls._from_table(raw, system, masses, params)

    @classmethod
    def _from_table(cls, raw, system, masses, params) -> Trajectories:
        records = [Trajectory(**arrays) for arrays in raw.arrays]
        data = cls(records, raw.coords, system=system, masses=masses, params=params,
                   _labels=raw.labels)
        data._source = raw.columns
        return data

    @classmethod
    def read(cls, path, **columns) -> Trajectories:
        """Read trajectories from a file of any supported kind, by its suffix.

        ``.h5`` / ``.hdf5``: :meth:`load` (the pikan schema); ``.csv``: :meth:`from_csv`;
        ``.npz``: :meth:`from_npz`, which take ``columns`` (``time=``, ``coords=``,
        ``trajectory=``, ...).

        Raises
        ------
        DataError
            A missing file, another suffix, column options for an HDF5 file, and every
            error of the reader.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if not path.is_file():
            raise DataError(f"data file {str(path)!r} not found")
        if suffix in (".h5", ".hdf5"):
            given = sorted(k for k, v in columns.items() if v is not None
                           and not (k == "trajectory" and v == "auto"))
            if given:
                raise DataError(f"{path}: column options {given} apply to CSV and NPZ files; "
                                "an HDF5 file names its own coordinates")
            return cls.load(path)
        if suffix == ".csv":
            return cls.from_csv(path, **columns)
        if suffix == ".npz":
            return cls.from_npz(path, **columns)
        raise DataError(f"{path}: unknown kind of data file {suffix or '(no suffix)'!r}; "
                        "expected .h5 (the pikan schema), .csv or .npz")

    @property
    def source(self) -> str | None:
        """For data read from a table (CSV, NPZ): which column was read as what, and what
        was recognised rather than named; None otherwise."""
        return self._source

    # ---------------------------------------------------------------- accessors

    @property
    def coords(self) -> tuple[str, ...]:
        """Coordinate names, in the column order of q."""
        return self._coords

    @property
    def n_coords(self) -> int:
        return len(self._coords)

    @property
    def has_velocities(self) -> bool:
        return self._records[0].v is not None

    @property
    def has_accelerations(self) -> bool:
        return self._records[0].a is not None

    @property
    def lengths(self) -> np.ndarray:
        """Number of samples per trajectory, shape (n_trajectories,)."""
        return np.array([len(r) for r in self._records])

    @property
    def n_samples(self) -> int:
        return int(self.lengths.sum())

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[Trajectory]:
        return iter(self._records)

    def __getitem__(self, index):
        """An int gives one :class:`Trajectory`; a slice, index list or mask gives a subset."""
        if isinstance(index, (int, np.integer)):
            return self._records[index]
        return self.subset(index)

    def _concat(self, name: str) -> np.ndarray:
        return np.concatenate([getattr(r, name) for r in self._records])

    def trajectory_ids(self) -> np.ndarray:
        """Trajectory index of every sample, shape (n_samples,), in the order of :meth:`states`."""
        return np.repeat(np.arange(len(self)), self.lengths)

    def times(self) -> np.ndarray:
        """All sample times, flattened, shape (n_samples,)."""
        return self._concat("t")

    def states(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flattened states.

        Returns
        -------
        q, v : ndarray, shape (n_samples, n)
        trajectory_ids : ndarray of int, shape (n_samples,)
        """
        if not self.has_velocities:
            raise DataError(
                "the data has no velocities; hint: call data.with_derivatives() to estimate them"
            )
        return self._concat("q"), self._concat("v"), self.trajectory_ids()

    def accelerations(self) -> tuple[np.ndarray, np.ndarray]:
        """Flattened accelerations (n_samples, n) and trajectory ids (n_samples,)."""
        if not self.has_accelerations:
            raise DataError(
                "the data has no accelerations; hint: call data.with_derivatives() to estimate them"
            )
        return self._concat("a"), self.trajectory_ids()

    def check_coords(self, coords: Sequence[str]) -> None:
        """Raise DataError unless ``coords`` equals the data's coordinate names, in order."""
        if tuple(coords) != self._coords:
            raise DataError(
                f"the data's coordinates {list(self._coords)} do not match the system's "
                f"coordinates {list(coords)}; hint: rename or reorder the data's columns "
                "(same names, same order) or fix the spec's coords"
            )

    # ---------------------------------------------------------------- selections

    def subset(self, indices) -> Trajectories:
        """The trajectories at ``indices`` (ints, a slice or a boolean mask), metadata kept."""
        try:
            chosen = np.arange(len(self))[indices]
        except IndexError as error:
            raise DataError(f"subset: {error} (the data has {len(self)} trajectories)") from None
        return self._like([self._records[i] for i in np.atleast_1d(chosen)])

    def split(self, fraction: float = 0.8, seed: int = 0) -> tuple[Trajectories, Trajectories]:
        """Split by trajectory, never by time point, into (first, second) parts.

        The first part holds ``round(fraction * N)`` trajectories (at least 1, at most N - 1),
        drawn at random with ``seed``; both parts keep the original order.
        """
        N = len(self)
        if N < 2:
            raise DataError(
                f"cannot split {N} trajectory: split is by trajectory, never by time point, "
                "so it needs at least 2; hint: simulate or load more trajectories, or cut "
                "the long one into pieces with from_arrays"
            )
        if not 0.0 < fraction < 1.0:
            raise DataError(f"split fraction must lie strictly between 0 and 1, got {fraction}")
        n_first = min(max(round(fraction * N), 1), N - 1)
        order = np.random.default_rng(seed).permutation(N)
        return self.subset(np.sort(order[:n_first])), self.subset(np.sort(order[n_first:]))

    def windows(self, length: int, stride: int = 1) -> Windows:
        """All windows of ``length`` consecutive samples, starting every ``stride`` samples.

        Raises DataError when a trajectory is shorter than ``length``.
        """
        if int(length) != length or length < 2 or int(stride) != stride or stride < 1:
            raise DataError(
                f"windows needs an integer length >= 2 and stride >= 1, got {length}, {stride}"
            )
        length, stride = int(length), int(stride)
        for i, r in enumerate(self._records):
            if len(r) < length:
                raise DataError(
                    f"trajectory {i} has {len(r)} samples, too short for windows of length "
                    f"{length} (needs at least {length}); hint: use a shorter window or drop it "
                    "with subset()"
                )

        def cut(name):
            if getattr(self._records[0], name) is None:
                return None
            parts = []
            for r in self._records:
                x = getattr(r, name)
                view = np.lib.stride_tricks.sliding_window_view(x, length, axis=0)[::stride]
                parts.append(np.moveaxis(view, -1, 1) if x.ndim == 2 else view)
            return np.concatenate(parts)

        counts = [(len(r) - length) // stride + 1 for r in self._records]
        trajectory = np.repeat(np.arange(len(self)), counts)
        start = np.concatenate([np.arange(c) * stride for c in counts])
        return Windows(cut("t"), cut("q"), cut("v"), cut("a"), trajectory, start)

    # ---------------------------------------------------------------- transformations

    def with_noise(self, level: float, seed=0, keep_accelerations: bool = False) -> Trajectories:
        """Add Gaussian noise to positions (and velocities if present), like a measurement.

        The noise on coordinate j has standard deviation ``level * std_j``, with ``std_j`` the
        standard deviation of that coordinate over all samples (separately for q and v).
        Accelerations are dropped, since they would no longer match the noisy positions,
        unless ``keep_accelerations`` (then they stay clean).

        Parameters
        ----------
        level : float
            Relative noise level, e.g. 0.01 for 1 %.
        seed : int or numpy Generator
        """
        if not np.isfinite(level) or level < 0:
            raise DataError(f"noise level must be a finite number >= 0, got {level}")
        if level == 0:
            return self
        rng = np.random.default_rng(seed)
        scale_q = level * self._concat("q").std(axis=0)
        scale_v = level * self._concat("v").std(axis=0) if self.has_velocities else None
        records = []
        for r in self._records:
            q = r.q + scale_q * rng.standard_normal(r.q.shape)
            v = r.v + scale_v * rng.standard_normal(r.v.shape) if r.v is not None else None
            records.append(Trajectory(r.t, q, v, r.a if keep_accelerations else None))
        return self._like(records)

    def with_derivatives(
        self,
        method: str = "savgol",
        window: int | None = None,
        order: int | None = None,
        overwrite: bool = False,
    ) -> Trajectories:
        """Estimate missing velocities and accelerations from the positions.

        Both are differentiated from q (never a from v), so they are consistent with q.

        Parameters
        ----------
        method : {"savgol", "finite_difference"}
            Savitzky–Golay (needs uniform time steps; robust to noise) or second-order central
            finite differences (any steps; for clean data).
        window : int, optional
            Savitzky–Golay window in samples (odd). Default: chosen per trajectory and
            coordinate by :func:`savgol_window`.
        order : int, optional
            Savitzky–Golay polynomial order (default 4, at least 2). Finite differences are
            second order; ``order`` must then be None or 2.
        overwrite : bool
            Recompute v and a even when present.
        """
        estimator = derivative_estimator(method, window=window, order=order)
        records = []
        for i, r in enumerate(self._records):
            need = [d for d, x in ((1, r.v), (2, r.a)) if overwrite or x is None]
            if not need:
                records.append(r)
                continue
            try:
                est = estimator.derivatives(r.t, r.q, need)
            except DataError as error:
                raise DataError(f"trajectory {i}: {error}") from None
            records.append(Trajectory(r.t, r.q, est.get(1, r.v), est.get(2, r.a)))
        made = {"v"} if overwrite or not self.has_velocities else set()
        if overwrite or not self.has_accelerations:
            made.add("a")
        return self._like(records, self._estimated | made)

    def to_tensors(self, device="cpu", dtype=None, pin_memory: bool | None = None) -> dict:
        """Flattened samples as torch tensors, for the trainer.

        Returns
        -------
        dict
            ``"t"`` (n_samples,), ``"q"`` (n_samples, n), ``"v"`` and ``"a"`` (n_samples, n)
            when present, ``"trajectory"`` (n_samples,) int64 trajectory ids.
            ``dtype`` defaults to float64. With a CUDA device the host copies are pinned
            (unless ``pin_memory=False``) and moved without blocking.
        """

        device = torch.device(device)
        dtype = torch.float64 if dtype is None else dtype
        pin = device.type == "cuda" if pin_memory is None else pin_memory
        arrays = {"t": self.times(), "q": self._concat("q")}
        for name in ("v", "a"):
            if getattr(self._records[0], name) is not None:
                arrays[name] = self._concat(name)
        tensors = {k: torch.tensor(x, dtype=dtype) for k, x in arrays.items()}
        tensors["trajectory"] = torch.tensor(self.trajectory_ids(), dtype=torch.int64)
        if pin:
            tensors = {k: x.pin_memory() for k, x in tensors.items()}
        return {k: x.to(device, non_blocking=pin) for k, x in tensors.items()}

    def __repr__(self) -> str:
        lengths = self.lengths
        steps = np.concatenate([np.diff(r.t) for r in self._records])
        t0, t1 = min(r.t[0] for r in self._records), max(r.t[-1] for r in self._records)
        parts = [
            f"system={self.system!r}, " if self.system else "",
            f"coords={list(self._coords)}, {len(self)} trajectories, {self.n_samples} samples ",
            f"(T = {lengths.min()})"
            if lengths.min() == lengths.max()
            else f"(T = {lengths.min()}..{lengths.max()})",
            f", t in [{t0:g}, {t1:g}]",
        ]
        if steps.size:
            parts.append(
                f", dt = {steps.min():g}"
                if np.ptp(steps) <= UNIFORM_STEP_RTOL * steps.mean()
                else f", dt = {steps.min():g}..{steps.max():g}"
            )
        known = [
            name
            for name, flag in (("v", self.has_velocities), ("a", self.has_accelerations))
            if flag
        ]
        parts.append(f", with {', '.join(known)}" if known else ", positions only")
        return f"Trajectories({''.join(parts)})"

    # ---------------------------------------------------------------- HDF5

    def save(self, path) -> None:
        """Write the HDF5 schema to ``path`` atomically: a temp file in the same folder, renamed."""
        write_hdf5(Path(path), self)

    @classmethod
    def load(cls, path, *, timeout: float | None = None) -> Trajectories:
        """Read a file in the HDF5 schema (written by pikan or by any h5py code).

        Parameters
        ----------
        path : str or Path
        timeout : float, optional
            Seconds the read may take before it is stopped (a damaged file can make the
            HDF5 library loop forever); default 10 s plus 1 s per 10 MB of file.

        Raises
        ------
        DataError
            For every problem with the file: missing, unreadable, damaged (a checksum does
            not match, the read failed, crashed or did not finish within ``timeout``), not
            in the schema, or holding invalid values; the message names the file.
        """
        path = Path(path)
        raw = read_hdf5(path, timeout=timeout)
        records = [Trajectory(**arrays) for arrays in raw.arrays]
        try:
            return Trajectories(
                records,
                raw.coords,
                system=raw.system,
                masses=raw.masses,
                params=raw.params,
                _labels=raw.labels,
            )
        except DataError as error:
            message = str(error)
            raise DataError(
                message if message.startswith(path.name) else f"{path}: {message}"
            ) from None
