"""Trajectory data: one validated container, an HDF5 schema, CSV input and derivative estimates.

A :class:`Trajectories` holds one or more trajectories of a mechanical system with ``n``
named coordinates. Trajectories may have different lengths and time steps. Per trajectory:
``t`` (T,), ``q`` (T, n), optional ``v`` (T, n) and ``a`` (T, n), all float64. Every
trajectory has velocities or none has; the same holds for accelerations. The arrays are
read-only: operations return new containers.

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

Derivative estimates (pure functions, used by :meth:`Trajectories.with_derivatives`):
:func:`finite_difference` (second order, non-uniform steps) and :func:`savgol_derivative`
(Savitzky–Golay, uniform steps, automatic window by :func:`savgol_window`).
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from math import factorial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.signal
from scipy.ndimage import correlate1d

from pikan.errors import DataError

FORMAT = "pikan-trajectories"
VERSION = 1
UNIFORM_STEP_RTOL = 1e-3
"""Relative spread of time steps below which a trajectory counts as uniformly sampled."""


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
    if array.ndim == 0:
        return float(array)
    if array.shape != (n,) or not np.isfinite(array).all():
        raise DataError(
            f"masses has shape {array.shape}, expected a scalar or ({n},) finite values"
        )
    return _readonly(array)


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

    def _like(self, records: Sequence[Trajectory]) -> Trajectories:
        return Trajectories(
            records, self._coords, system=self.system, masses=self.masses, params=self.params
        )

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
        time: str = "t",
        coords: Sequence[str],
        trajectory: str | None = "id",
        velocities: Sequence[str] | bool | None = None,
        accelerations: Sequence[str] | bool | None = None,
        system: str | None = None,
        masses=None,
        params: dict | None = None,
    ) -> Trajectories:
        """Read a long-format CSV file: a header row, then one row per sample.

        Parameters
        ----------
        path : str or Path
        time : str
            Name of the time column.
        coords : sequence of str
            Position columns, which also name the coordinates.
        trajectory : str or None
            Column holding a trajectory id; rows with equal ids form one trajectory, in file
            order. Trajectories are ordered by id (numerically if all ids are numbers).
            None: the whole file is one trajectory.
        velocities, accelerations : list of column names, False, or None
            None reads ``v_<coord>`` / ``a_<coord>`` columns when all are present;
            False ignores them; a list names the columns explicitly.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(f"no such CSV file: {path}")
        coords = _validated_coords(coords)
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            raise DataError(
                f"{path}: the file is empty; expected a header row and one row per sample"
            )
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
            hint = (
                " (pass trajectory=None for a single trajectory)" if trajectory in missing else ""
            )
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
        ids = (
            [row[columns[trajectory]].strip() for row in rows] if trajectory else ["0"] * len(rows)
        )
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
                Trajectory(
                    block[:, 0],
                    block[:, 1 : 1 + n],
                    block[:, 1 + n : 1 + 2 * n] if vel else None,
                    block[:, 1 + n + (n if vel else 0) :] if acc else None,
                )
            )
            labels.append(f"{path.name}: trajectory {k} (id {key!r})")
        return cls(records, coords, system=system, masses=masses, params=params, _labels=labels)

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
        if method not in ("savgol", "finite_difference"):
            raise DataError(
                f"unknown derivative method {method!r}; expected 'savgol' or 'finite_difference'"
            )
        if method == "finite_difference" and order not in (None, 2):
            raise DataError(f"finite differences are second order; got order={order}")
        polyorder = 4 if order is None else order
        records = []
        for i, r in enumerate(self._records):
            need = [d for d, x in ((1, r.v), (2, r.a)) if overwrite or x is None]
            if not need:
                records.append(r)
                continue
            try:
                if method == "finite_difference":
                    est = {d: finite_difference(r.t, r.q, d) for d in need}
                else:
                    dt = _uniform_step(r.t)
                    est = {
                        d: savgol_derivative(r.q, dt, d, window=window, polyorder=polyorder)
                        for d in need
                    }
            except DataError as error:
                raise DataError(f"trajectory {i}: {error}") from None
            records.append(Trajectory(r.t, r.q, est.get(1, r.v), est.get(2, r.a)))
        return self._like(records)

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
        import torch

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
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
        try:
            with h5py.File(tmp, "w-") as f:
                _write_hdf5(f, self)
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path) -> Trajectories:
        """Read a file in the HDF5 schema (written by pikan or by any h5py code)."""
        path = Path(path)
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
                return _read_hdf5(f, path)
        except OSError as error:
            raise DataError(
                f"{path}: reading failed ({error}); the file may be truncated or corrupt"
            ) from None


def _write_hdf5(f: h5py.File, data: Trajectories) -> None:
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


def _text(value) -> str | None:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    return value if isinstance(value, str) else None


def _read_hdf5(f: h5py.File, path: Path) -> Trajectories:
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
        records.append(Trajectory(**arrays))
        labels.append(label)
    try:
        return Trajectories(
            records, coords, system=system, masses=masses, params=params, _labels=labels
        )
    except DataError as error:
        message = str(error)
        raise DataError(
            message if message.startswith(path.name) else f"{path}: {message}"
        ) from None


# ----------------------------------------------------------------------------- derivative estimates


def finite_difference(t: np.ndarray, y: np.ndarray, deriv: int = 1) -> np.ndarray:
    r"""Second-order finite-difference derivative on a possibly non-uniform grid.

    First derivative: central three-point differences inside, one-sided three-point at the
    ends (``numpy.gradient``, ``edge_order=2``); needs T >= 3. Second derivative: the second
    derivative of the cubic through four neighbouring samples, stencil (i-1, i, i+1, i+2)
    inside and one-sided at the ends, :math:`w_j = 2(3t_i - \sum_{k \ne j} t_k) /
    \prod_{k \ne j}(t_j - t_k)`; on uniform steps it is the central
    :math:`(y_{i-1} - 2y_i + y_{i+1})/h^2`; needs T >= 4. Both are second-order accurate.

    Parameters
    ----------
    t : ndarray, shape (T,)
        Strictly increasing times.
    y : ndarray, shape (T,) or (T, n)
    deriv : {1, 2}

    Returns
    -------
    ndarray, same shape as y
    """
    t, y = np.asarray(t, dtype=np.float64), np.asarray(y, dtype=np.float64)
    T = t.shape[0]
    need = {1: 3, 2: 4}.get(deriv)
    if need is None:
        raise DataError(f"finite_difference computes deriv 1 or 2, got {deriv}")
    if T < need:
        raise DataError(
            f"has {T} samples, too short for the finite-difference stencil of derivative "
            f"{deriv} (needs at least {need})"
        )
    if deriv == 1:
        return np.gradient(y, t, axis=0, edge_order=2)
    start = np.clip(np.arange(T) - 1, 0, T - 4)
    stencil = start[:, None] + np.arange(4)
    x = t[stencil]
    weights = np.empty((T, 4))
    for j in range(4):
        others = x[:, [k for k in range(4) if k != j]]
        weights[:, j] = 2.0 * (3.0 * t - others.sum(axis=1)) / np.prod(x[:, [j]] - others, axis=1)
    return np.einsum("tk,tk...->t...", weights, y[stencil])


def _uniform_step(t: np.ndarray) -> float:
    steps = np.diff(t)
    if steps.size == 0:
        raise DataError("has 1 sample, too short for a Savitzky–Golay estimate")
    dt = float(steps.mean())
    if np.ptp(steps) > UNIFORM_STEP_RTOL * dt:
        raise DataError(
            f"time steps are not uniform (dt from {steps.min():g} to {steps.max():g}); "
            "Savitzky–Golay needs uniform steps; hint: use method='finite_difference' "
            "(non-uniform steps) or resample onto a uniform grid"
        )
    return dt


@lru_cache(maxsize=512)
def _savgol_table(window: int, polyorder: int, deriv: int):
    """Savitzky–Golay rows for unit step, positions 0..m of a window of 2m+1 samples.

    Built by QR in the scaled coordinate u = (x - m)/m, which stays well conditioned where
    normal equations in sample units (scipy's ``savgol_coeffs``) lose all digits (order >= 6,
    windows of hundreds of samples).

    Returns
    -------
    rows : (m+1, window)  estimator of the deriv-th derivative at position j (row j)
    gain : (m+1,)          noise variance gain, sum of squared weights
    m1, m2 : (m+1,)        bias moments: estimate - truth = f^{(p+1)} m1 + f^{(p+2)} m2 + ...
    """
    p, d, m = polyorder, deriv, (window - 1) // 2
    s = float(max(m, 1))
    u = (np.arange(window) - m) / s
    Q, R = np.linalg.qr(u[:, None] ** np.arange(p + 1))
    uj = (np.arange(m + 1) - m) / s
    G = np.zeros((m + 1, p + 1))
    for k in range(d, p + 1):
        G[:, k] = np.prod(np.arange(k, k - d, -1)) * uj ** (k - d)
    Z = np.linalg.solve(R.T, G.T)
    rows = (Q @ Z).T / s**d
    gain = np.sum(Z * Z, axis=0) / s ** (2 * d)
    # residual of the least-squares fit of u^k, differentiated: the estimator's error on u^k
    err = {}
    for k in (p + 1, p + 2):
        coeffs = np.zeros(k + 1)
        coeffs[: p + 1] = np.linalg.solve(R, Q.T @ u**k)
        coeffs[k] -= 1.0
        err[k] = np.polynomial.polynomial.polyval(uj, np.polynomial.polynomial.polyder(coeffs, d))
    m1 = err[p + 1] * s ** (p + 1 - d) / factorial(p + 1)
    m2 = (err[p + 2] - (p + 2) * uj * err[p + 1]) * s ** (p + 2 - d) / factorial(p + 2)
    return rows, gain, m1, m2


def noise_level(y: np.ndarray) -> np.ndarray:
    """Robust estimate of white measurement noise per column, from sixth differences.

    ``sigma = 1.4826 * MAD(diff(y, 6)) / sqrt(924)``: a smooth signal sampled finely has
    negligible sixth differences, white noise of variance sigma^2 gives variance 924 sigma^2.

    Parameters
    ----------
    y : ndarray, shape (T,) or (T, n), T >= 7

    Returns
    -------
    ndarray, shape () or (n,)
    """
    d6 = np.diff(np.asarray(y, dtype=np.float64), 6, axis=0)
    mad = np.median(np.abs(d6 - np.median(d6, axis=0)), axis=0)
    return 1.4826 * mad / np.sqrt(924.0)


def _derivative_scales(y: np.ndarray, dt: float, sigma: float, orders: Sequence[int]) -> np.ndarray:
    """RMS size of the k-th time derivatives of the signal in ``y`` (T,), read from its spectrum.

    Two estimates, each biased high by a different mechanism, and the smaller one is kept:
    (1) spectral moments of the Hann-windowed periodogram from the lowest frequency up to the
    first bin above the dominant one where the power falls below ten times the noise floor
    (biased high by the width of the window's main lobe on short records); (2) spectral lines:
    peaks of the Blackman–Harris periodogram above that floor, each at its frequency refined by
    a parabola through the log power, carrying its lobe's power (biased high by side lobes
    and overlapping lobes).
    """
    x = y - y.mean()
    T, total_std = x.shape[0], x.std()
    orders = np.asarray(orders, dtype=np.float64)
    bin_width = 2 * np.pi / (T * dt)
    estimates = []
    for taper in (np.hanning(T), scipy.signal.windows.blackmanharris(T)):
        power = np.abs(np.fft.rfft(x * taper)) ** 2
        total, floor = power[1:].sum(), 10.0 * sigma**2 * np.sum(taper**2)
        if total == 0.0:
            return np.zeros_like(orders)
        if not estimates:
            peak = 1 + int(np.argmax(power[1:]))
            below = np.nonzero(power[peak:] < floor)[0]
            band = np.arange(1, peak + (int(below[0]) if below.size else power.shape[0] - peak))
            weights, omega = power[band], band * bin_width
        else:
            peaks = scipy.signal.find_peaks(power, height=floor)[0]
            peaks = peaks[(peaks > 0) & (peaks < power.shape[0] - 1)]
            if peaks.size == 0:
                continue
            left, mid, right = (np.log(power[peaks + k]) for k in (-1, 0, 1))
            offset = 0.5 * (left - right) / np.minimum(left - 2 * mid + right, -1e-12)
            omega = (peaks + offset) * bin_width
            minima = np.concatenate([[0], scipy.signal.find_peaks(-power)[0], [power.shape[0]]])
            cells = np.searchsorted(minima, peaks, side="right")
            weights = np.array([power[minima[c - 1] : minima[c]].sum() for c in cells])
        moments = (weights[:, None] * omega[:, None] ** (2 * orders)).sum(axis=0) / total
        estimates.append(total_std * np.sqrt(moments))
    return np.min(estimates, axis=0)


def savgol_window(y: np.ndarray, dt: float, deriv: int = 2, polyorder: int = 4) -> int:
    r"""Automatic Savitzky–Golay window for one coordinate: minimum predicted mean squared error.

    For each odd candidate window W (about 40, geometrically spaced from polyorder + 2 to T)
    the predicted error of every sample's estimate (edge samples by the polynomial fit of the
    first/last window, as scipy's ``mode="interp"``) is

    .. math:: \sigma^2 \sum_j c_j^2 + (r_{p+1} M_{p+1})^2 + (r_{p+2} M_{p+2})^2

    with :math:`c` the filter weights, :math:`\sigma` the noise from :func:`noise_level`,
    :math:`M_k` the filter's bias moments and :math:`r_k` the RMS k-th derivative of the
    signal read from its spectrum; the window with the smallest total over all samples wins.
    Clean data gets the smallest window, noisy data a window that balances noise against
    bias over the trajectory's dominant frequencies. Trajectories shorter than 16 samples get
    the smallest window.

    Parameters
    ----------
    y : ndarray, shape (T,)
    dt : float
        Uniform time step.
    deriv : int
    polyorder : int

    Returns
    -------
    int
        Odd window length in samples.
    """
    y = np.asarray(y, dtype=np.float64)
    T = y.shape[0]
    smallest = polyorder + 1 + polyorder % 2
    largest = T if T % 2 else T - 1
    if T < 16 or largest <= smallest:
        return smallest
    sigma = float(noise_level(y))
    r1, r2 = _derivative_scales(y, dt, sigma, (polyorder + 1, polyorder + 2))
    candidates = sorted(
        {int(w) | 1 for w in np.geomspace(smallest, largest, 40)}
        & set(range(smallest, largest + 1))
    )
    best, best_cost = smallest, np.inf
    for W in candidates:
        _, gain, m1, m2 = _savgol_table(W, polyorder, deriv)
        mse = (
            sigma**2 * gain
            + (r1 * m1 * dt ** (polyorder + 1)) ** 2
            + (r2 * m2 * dt ** (polyorder + 2)) ** 2
        )
        m = (W - 1) // 2
        cost = (T - 2 * m) * mse[-1] + 2.0 * mse[:-1].sum()
        if cost < best_cost:
            best, best_cost = W, cost
    return best


def savgol_derivative(
    y: np.ndarray, dt: float, deriv: int = 1, window: int | None = None, polyorder: int = 4
) -> np.ndarray:
    """Savitzky–Golay derivative of uniformly sampled data.

    Inside: the derivative at the centre of the least-squares polynomial of order
    ``polyorder`` over ``window`` samples. Within half a window of the ends: the derivative of
    the polynomial fitted to the first (last) window, like scipy's ``mode="interp"``.

    Parameters
    ----------
    y : ndarray, shape (T,) or (T, n)
    dt : float
        Uniform time step.
    deriv : int
        Derivative order (1: velocity, 2: acceleration); at most ``polyorder``.
    window : int, optional
        Odd number of samples; default :func:`savgol_window` per column.
    polyorder : int

    Returns
    -------
    ndarray, same shape as y
    """
    y = np.asarray(y, dtype=np.float64)
    if not 1 <= deriv <= polyorder:
        raise DataError(
            f"Savitzky–Golay needs 1 <= deriv <= polyorder, "
            f"got deriv={deriv}, polyorder={polyorder}"
        )
    columns = y.reshape(y.shape[0], -1)
    T = columns.shape[0]
    if window is not None and (int(window) != window or window % 2 == 0 or window <= polyorder):
        raise DataError(
            f"Savitzky–Golay window must be an odd integer > polyorder ({polyorder}), got {window}"
        )
    need = window if window is not None else polyorder + 1 + polyorder % 2
    if T < need:
        raise DataError(
            f"has {T} samples, too short for the Savitzky–Golay stencil (window {need}, "
            f"polyorder {polyorder}; needs at least {need} samples); hint: use a smaller "
            "window or order, or method='finite_difference'"
        )
    out = np.empty_like(columns)
    for c in range(columns.shape[1]):
        col = columns[:, c]
        W = int(window) if window is not None else savgol_window(col, dt, deriv, polyorder)
        rows = _savgol_table(W, polyorder, deriv)[0] / dt**deriv
        m = (W - 1) // 2
        out[:, c] = correlate1d(col, rows[m], mode="constant")
        out[:m, c] = rows[:m] @ col[:W]
        out[T - m :, c] = ((-1) ** deriv * (rows[:m] @ col[::-1][:W]))[::-1]
    return out.reshape(y.shape)
