"""Reading HDF5 files in a helper process, with a deadline: the program and its client.

Why. A damaged HDF5 file can make the HDF5 library loop forever inside C code (one byte of
a global-heap object size, changed, sent h5py into a 100 % CPU loop while it read the
``format`` attribute), and nothing in Python can interrupt a C loop or trust the library's
state after one. So :mod:`pikan.data.io` never lets h5py touch a file it loads: a helper
process runs this file as a program and reads it, the loading process waits for the answer
with a deadline, and kills the helper when the deadline passes (the next read starts a new
one). A helper that dies while reading is replaced and asked once more; a second death is
:class:`ReaderCrashed`.

Measured on a 2-core machine shared with other jobs, torch imported, a 9 KB file (median
of 200 loads): reading in the loading process took 1.2 ms; forking the loading process per
read took 50 ms (the page tables of a ~370 MB torch process are copied; and a fork of a
process with threads can leave the child blocked on a lock another thread held); a fresh
interpreter per read took 110 ms. The persistent helper costs one start, 0.1-0.2 s at the
first load, then about 2 ms per load. Large files pay for the copy through the pipe: a
205 MB file took 0.26-0.31 s before and 0.4-1.2 s now, of which ~0.1 s is HDF5 checking
Fletcher-32. Validating the file's structure before h5py reads it was rejected: it means
re-implementing HDF5's parser, and could still not promise that HDF5 itself terminates.

The helper is one per process: started at the first read in a session of its own (a
terminal's Ctrl-C does not reach it), ended when the process exits (:func:`close` at exit;
it also exits when its input closes, so it never outlives a killed parent); a forked child
starts its own. It runs ``sys.executable -I`` with the loading process's module path and
imports only the standard library, numpy and h5py, never ``pikan`` (which would import
torch). Where no helper can be started, the file is read in the loading process, without a
deadline, with a ``RuntimeWarning``.

The program knows where the schema keeps things (the root attributes,
``/trajectories/<name>/{t,q,v,a}`` and their ``crc32``) but judges nothing:
:func:`read_plain` turns what it finds into plain values and raw arrays, any exception of
h5py or HDF5 (``OSError``, ``RuntimeError``, ``KeyError``, ``TypeError``, ...) into an
error answer, and :mod:`pikan.data.io` validates and words the errors.

Protocol, one request at a time: the client writes one line of JSON, ``{"path": ...,
"max_bytes": ...}``; the program answers with an 8-byte big-endian header length, the
header as UTF-8 JSON, then the raw bytes of the arrays the header lists. The header is
``{"ok": true, "file": ..., "blobs": [nbytes, ...]}`` or ``{"ok": false, "stage": "open" |
"read", "error": "<type>: <message>"}``. Arrays travel as bytes with their dtype and shape,
never pickled, so the loading process unpickles nothing a file could have shaped.
"""

from __future__ import annotations

import atexit
import json
import os
import struct
import subprocess
import sys
import threading
import warnings

import h5py
import numpy as np

ATTRIBUTES_CHECKSUM = "attrs_crc32"
"""The root attribute that holds pikan's checksum of the other root attributes."""

ATTRIBUTES = ("format", "version", "coords", "system", "masses", "params", ATTRIBUTES_CHECKSUM)
"""The root attributes of the schema (the only ones read)."""

ARRAYS = ("t", "q", "v", "a")
"""The datasets of one trajectory group (the only ones read)."""

DATASET_CHECKSUM = "crc32"
"""The attribute of a dataset that holds pikan's checksum of its contents."""

HEADER = struct.Struct(">Q")
"""The length prefix of an answer's JSON header."""

# ----------------------------------------------------------------------------- the program


class Unreadable(Exception):
    """h5py or HDF5 failed on the file; ``stage`` is ``"open"`` or ``"read"``."""

    def __init__(self, stage: str, error: BaseException):
        super().__init__(f"{type(error).__name__}: {error}")
        self.stage = stage


def plain(value):
    """An attribute value as JSON data.

    Text (str or UTF-8 bytes) becomes a str, a number or boolean a JSON number or
    boolean (floats as float64), an array ``{"array": nested list}`` (its strings
    decoded), anything else (compound, reference, complex, non-UTF-8 bytes)
    ``{"unsupported": description}``.
    """
    if isinstance(value, np.generic):
        value = value.item()
        if isinstance(value, np.floating):  # a long double has no Python type
            value = float(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"unsupported": f"bytes that are not UTF-8 text: {value[:40]!r}"}
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "biu":
        return {"array": value.tolist()}
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return {"array": value.astype(np.float64).tolist()}
    if isinstance(value, np.ndarray) and value.dtype.kind in "SUO":
        items = [plain(v) for v in value.ravel()]
        if all(isinstance(v, (str, bool, int, float)) for v in items):
            return {"array": np.array(items, dtype=object).reshape(value.shape).tolist()}
    described = f"dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
    return {"unsupported": described}


def _member(obj) -> str:
    if isinstance(obj, h5py.Group):
        return "group"
    return "dataset" if isinstance(obj, h5py.Dataset) else "other"


def _arrays(group: h5py.Group, max_bytes: int, blobs: list) -> dict:
    found = {}
    for key in ARRAYS:
        obj = group.get(key)
        if obj is None:
            continue
        entry = {"kind": _member(obj)}
        if isinstance(obj, h5py.Dataset):
            dtype, shape = obj.dtype, obj.shape
            entry.update(dtype=dtype.str, shape=None if shape is None else list(shape))
            if dtype.kind in "fiu" and dtype.fields is None and shape is not None:
                nbytes = float(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if nbytes > max_bytes:
                    raise ValueError(
                        f"dataset {obj.name} claims {nbytes:.0f} bytes, more than the file "
                        f"can hold ({max_bytes} at most)"
                    )
                array = np.asarray(obj[()])
                if not array.flags.c_contiguous:
                    array = array.copy()
                entry.update(dtype=array.dtype.str, shape=list(array.shape), blob=len(blobs))
                blobs.append(array)
            if DATASET_CHECKSUM in obj.attrs:
                entry[DATASET_CHECKSUM] = plain(obj.attrs[DATASET_CHECKSUM])
        found[key] = entry
    return found


def read_plain(path: str, max_bytes: int) -> tuple[dict, list[np.ndarray]]:
    """Read the schema's parts of the HDF5 file at ``path`` as plain values.

    Parameters
    ----------
    path : str
        An absolute path.
    max_bytes : int
        The most bytes one dataset may claim; a larger one is refused unread (a damaged
        shape must not make the reader allocate memory the file cannot fill).

    Returns
    -------
    file : dict
        ``"attrs"``: the schema's root attributes that are present, as :func:`plain`
        values; ``"trajectories"``: ``"missing"``, ``"group"`` or another member kind;
        ``"members"``: per member of ``/trajectories``, ``{"name", "kind", "arrays"}``,
        where ``arrays`` maps each of t, q, v, a that is present to ``{"kind"}`` plus, for
        datasets, ``"dtype"`` (numpy's dtype string), ``"shape"`` and the attribute
        ``"crc32"`` when present, and, for numeric ones, ``"blob"``: the index of its data
        in ``arrays``.
    arrays : list of ndarray
        The numeric datasets, C-contiguous, in the order the entries name them.

    Raises
    ------
    Unreadable
        Whatever h5py or HDF5 raised, of any type, with the stage it failed at.
    """
    try:
        f = h5py.File(path, "r")
    except Exception as error:  # noqa: BLE001 - every failure of the library is the file's
        raise Unreadable("open", error) from None
    try:
        with f:
            attrs = {name: plain(f.attrs[name]) for name in ATTRIBUTES if name in f.attrs}
            group = f.get("trajectories")
            out = {"attrs": attrs, "trajectories": "missing", "members": []}
            blobs: list = []
            if group is not None:
                out["trajectories"] = _member(group)
            if isinstance(group, h5py.Group):
                for name in group:
                    member = group[name]
                    entry = {"name": name, "kind": _member(member), "arrays": {}}
                    if isinstance(member, h5py.Group):
                        entry["arrays"] = _arrays(member, max_bytes, blobs)
                    out["members"].append(entry)
            return out, blobs
    except Exception as error:  # noqa: BLE001
        raise Unreadable("read", error) from None


def answer(request: dict) -> tuple[bytes, list[np.ndarray]]:
    """The JSON header (UTF-8) and the arrays that answer one request (see the module
    docstring)."""
    try:
        found, arrays = read_plain(request["path"], int(request["max_bytes"]))
        header = {"ok": True, "file": found, "blobs": [a.nbytes for a in arrays]}
        return json.dumps(header).encode("utf-8"), arrays
    except Unreadable as error:
        failed = {"ok": False, "stage": error.stage, "error": str(error)}
    except (TypeError, ValueError) as error:  # a value JSON cannot hold
        failed = {"ok": False, "stage": "read", "error": f"{type(error).__name__}: {error}"}
    return json.dumps(failed).encode("utf-8"), []


def serve(requests, out) -> None:
    """Answer requests, one JSON line each, until ``requests`` ends."""
    out.write(b"ready\n")
    out.flush()
    for line in requests:
        text, arrays = answer(json.loads(line))
        out.write(HEADER.pack(len(text)) + text)
        for array in arrays:
            out.write(array.data if array.size else b"")
        out.flush()


# ----------------------------------------------------------------------------- the client


START_TIMEOUT = 60.0
"""Seconds the helper may take to start (import numpy and h5py)."""

PROGRAM = __file__
"""The program the helper runs: this file."""


class ReadTimeout(Exception):
    """The helper did not answer within the deadline; it has been killed."""


class ReaderCrashed(Exception):
    """The helper died, or its answer broke off or made no sense; it has been killed."""


_BOOT = (
    "import runpy, sys; sys.path[:] = sys.argv[2:]; "
    "runpy.run_path(sys.argv[1], run_name='__main__')"
)
"""The helper's command: take the loading process's module path, then run this file (``-I``:
the start-up itself ignores PYTHON* variables and the working folder)."""


class _Helper:
    """A process running this file as a program, with a deadline on every answer."""

    def __init__(self):
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT, PROGRAM, *sys.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            ready = self._within(START_TIMEOUT, self.process.stdout.readline)
        except ReadTimeout:
            raise
        except Exception as error:  # noqa: BLE001 - any failure to start means no helper
            self.kill()
            raise ReaderCrashed(f"{type(error).__name__}: {error}") from None
        except BaseException:
            self.kill()
            raise
        if ready != b"ready\n":
            self.kill()
            raise ReaderCrashed(f"it exited with status {self.process.returncode}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def close(self) -> None:
        """End the helper: it exits when its input ends; killed if it does not."""
        try:
            self.process.stdin.close()
            self.process.wait(timeout=2.0)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def _within(self, seconds: float, receive):
        """``receive()``, run in a thread, or :class:`ReadTimeout` after ``seconds``."""
        box = {}

        def run():
            try:
                box["value"] = receive()
            except BaseException as error:  # noqa: BLE001 - re-raised by the waiting thread
                box["error"] = error

        thread = threading.Thread(target=run, name="pikan-hdf5-answer", daemon=True)
        thread.start()
        thread.join(seconds)
        if thread.is_alive():
            self.kill()  # the thread then sees the pipe close and ends
            thread.join()
            raise ReadTimeout()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def ask(self, request: dict, seconds: float) -> tuple[dict, list]:
        """The helper's answer to ``request``: its header and the arrays' raw bytes."""
        try:
            self.process.stdin.write(json.dumps(request).encode("utf-8") + b"\n")
            self.process.stdin.flush()
            return self._within(seconds, self._answer)
        except ReadTimeout:
            raise
        except Exception as error:  # noqa: BLE001 - a broken pipe, an answer cut short or garbled
            try:  # a helper that died: let it be reaped, for its exit status
                self.process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
            self.kill()
            raise ReaderCrashed(
                f"{type(error).__name__}: {error}; exit status {self.process.returncode}"
            )
        except BaseException:  # an interrupt mid-answer: the stream's position is unknown
            self.kill()
            raise

    def _answer(self) -> tuple[dict, list]:
        stream = self.process.stdout
        (size,) = HEADER.unpack(_exactly(stream, HEADER.size))
        header = json.loads(_exactly(stream, size))
        return header, [_exactly(stream, int(n)) for n in header.get("blobs", [])]


def _exactly(stream, n: int) -> bytearray:
    buffer = bytearray(n)
    view, filled = memoryview(buffer), 0
    while filled < n:
        got = stream.readinto(view[filled:])
        if not got:
            raise EOFError(f"the answer ended after {filled} of {n} bytes")
        filled += got
    return buffer


_LOCK = threading.Lock()
_HELPER: dict = {"pid": None, "helper": None, "atexit": False}
"""This process's helper; a forked child starts its own and leaves its parent's alone."""


def close() -> None:
    """End this process's helper process, if it runs; the next read starts a new one.

    Called at exit; a forked child never ends its parent's helper.
    """
    with _LOCK:
        if _HELPER["pid"] == os.getpid() and _HELPER["helper"] is not None:
            _HELPER["helper"].close()
            _HELPER["helper"] = None


def _running_helper() -> _Helper:
    """This process's helper, started if needed (call with ``_LOCK`` held)."""
    if _HELPER["pid"] != os.getpid():
        _HELPER.update(pid=os.getpid(), helper=None)
    helper = _HELPER["helper"]
    if helper is None or not helper.alive():
        if helper is not None:
            helper.kill()
        _HELPER["helper"] = helper = _Helper()
        if not _HELPER["atexit"]:
            atexit.register(close)
            _HELPER["atexit"] = True
    return helper


def read(request: dict, seconds: float) -> tuple[dict, list]:
    """Have this process's helper answer ``request`` (see the module docstring).

    Parameters
    ----------
    request : dict
        ``{"path": absolute path, "max_bytes": int}``, see :func:`read_plain`.
    seconds : float
        The deadline for the answer.

    Returns
    -------
    header : dict
        The answer's header; ``header["file"]`` is :func:`read_plain`'s ``file``.
    blobs : list of bytes-like
        The numeric datasets' raw bytes, in the order ``header["file"]`` names them.

    Raises
    ------
    ReadTimeout
        No answer within ``seconds``.
    ReaderCrashed
        The helper died while reading, twice (a fresh helper is asked once more).

    Warns
    -----
    RuntimeWarning
        No helper could be started (no usable ``sys.executable``); the file was read in
        this process, without a deadline.
    """
    with _LOCK:
        for attempt in (1, 2):
            try:
                helper = _running_helper()
            except (OSError, ReaderCrashed, ReadTimeout) as error:
                warnings.warn(
                    f"could not start the HDF5 reader process ({error or 'no answer'}); "
                    f"reading {request['path']} in this process, without a deadline",
                    RuntimeWarning,
                    stacklevel=5,  # read <- io._read <- read_hdf5 <- Trajectories.load <- caller
                )
                text, arrays = answer(request)
                return json.loads(text), arrays
            try:
                return helper.ask(request, seconds)
            except ReaderCrashed:
                if attempt == 2:
                    raise
    raise AssertionError("unreachable")


if __name__ == "__main__":
    # The answers get a private copy of stdout; the C libraries' stray output, if any,
    # goes to /dev/null instead of into the protocol.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)
