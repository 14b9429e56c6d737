"""RunLock (pikan/data/run_lock.py): one discover per run directory; a second fails at once naming
the holder; the lock of a killed process is taken over; nothing is left on release."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from pikan.data import run_lock
from pikan.data.run_lock import RunLock
from pikan.errors import SpecError

pytestmark = pytest.mark.skipif(run_lock.fcntl is None, reason="advisory locks are POSIX")

_HOLD = ("import sys, time\n"
         "from pikan.data.run_lock import RunLock\n"
         "with RunLock(sys.argv[1]):\n"
         "    print('held', flush=True)\n"
         "    time.sleep(600)\n")


def _holder(run):
    """A process that holds the lock of ``run`` until it is killed."""
    process = subprocess.Popen([sys.executable, "-c", _HOLD, str(run)], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline() == "held\n"
    return process


def _take(run):
    """Hold the lock of ``run`` and release it."""
    with RunLock(run):
        pass


def _kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()


def test_a_second_holder_fails_at_once_naming_the_run_and_the_holder(tmp_path):
    run = tmp_path / "runA"
    process = _holder(run)
    try:
        start = time.monotonic()
        with pytest.raises(SpecError, match=f"run directory {run} is in use: process "
                                            f"{process.pid} on {socket.gethostname()} holds "
                                            f"its lock {run}.lock"):
            _take(run)
        assert time.monotonic() - start < 1.0  # it never waits
        assert process.poll() is None
    finally:
        _kill(process)


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    run = tmp_path / "runA"
    process = _holder(run)
    _kill(process)
    lock = tmp_path / "runA.lock"
    assert lock.read_text().split()[0] == str(process.pid)  # stale: its process is gone
    with RunLock(run):
        assert lock.read_text().split() == [str(os.getpid()), socket.gethostname()]
    assert not lock.exists()


def test_a_lock_file_nobody_holds_is_taken_over_whatever_it_says(tmp_path):
    """A process id is never trusted (it may have been reused): only the lock counts."""
    lock = tmp_path / "runA.lock"
    lock.write_text(f"{os.getpid()} {socket.gethostname()}\n")
    with RunLock(tmp_path / "runA"):
        assert lock.read_text().split()[0] == str(os.getpid())
    assert list(tmp_path.iterdir()) == []


def test_release_removes_the_lock_and_the_folders_it_made(tmp_path):
    run = tmp_path / "a" / "b" / "runA"
    with RunLock(run) as held:
        assert held.path == tmp_path / "a" / "b" / "runA.lock" and held.path.is_file()
        with pytest.raises(SpecError, match="is in use"):  # a second open file, same process
            _take(run)
    assert list(tmp_path.iterdir()) == []  # a refused run leaves the disk as it was
    with RunLock(run):
        run.mkdir()  # the run was written: its folders stay
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == ["runA"]


def test_a_lock_file_removed_while_it_was_opened_is_not_held(tmp_path, monkeypatch):
    """The holder removes the lock file under its lock as it releases it; a process that
    opened that file just before locks a file without a name: it must start over."""
    run = tmp_path / "runA"
    flock, calls = run_lock.fcntl.flock, []

    def released_meanwhile(fd, operation):
        calls.append(fd)
        if len(calls) == 1:
            os.unlink(run.with_name("runA.lock"))  # the previous holder's release
        return flock(fd, operation)

    monkeypatch.setattr(run_lock.fcntl, "flock", released_meanwhile)
    with RunLock(run) as held:
        assert len(calls) == 2
        assert held.path.read_text().split()[0] == str(os.getpid())  # the file now named
