"""One writer per run directory: the lock that :func:`pikan.discover` holds on ``RUN``.

``discover`` builds a run in ``RUN.partial`` and renames it into place; two processes doing
that for the same ``RUN`` at once would remove each other's partial folder, overwrite each
other's checkpoints and race in the final renames. So the whole of it (the checks of what is
there, the building, the renames) runs under :class:`RunLock`, an advisory lock on the file
``RUN.lock`` beside ``RUN`` that records its holder's process id and host. A second
``discover`` of the same ``RUN`` fails at once with a :class:`~pikan.errors.SpecError`
naming the directory and the holder; it never waits.

The lock is the mechanism of the checkpoint writer's temp files
(:mod:`pikan.train.checkpoint`): ``flock`` on an open file, which the system releases when
its process dies, so the lock of a killed ``discover`` (SIGKILL, power loss) is stale by
construction and the next ``discover`` takes it over; a process id that may have been
reused is never trusted. The file is removed when the lock is released, under the lock; a
process that opened it just before checks, once it holds the lock, that the name still
leads to the file it locked, and starts over otherwise. Without ``flock`` (Windows) the
file is created exclusively, and one left by a killed process must be removed by hand (the
error says so).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pikan.errors import SpecError

try:  # advisory locks die with their process (POSIX)
    import fcntl
except ImportError:  # Windows: exclusive creation only
    fcntl = None

__all__ = ["LOCK_SUFFIX", "RunLock"]

LOCK_SUFFIX = ".lock"
"""``RUN.lock`` sits beside the run directory ``RUN``."""


class RunLock:
    """Exclusive hold of a run directory for one process, as a context manager.

    Parameters
    ----------
    run : str or Path
        The run directory (it need not exist). Its parent folders are created if missing
        and removed again on release when they are still empty.

    Raises
    ------
    SpecError
        On entering, when another live process holds the lock: the message names the run
        directory, the lock file and the holder's process id and host.
    """

    def __init__(self, run) -> None:
        self.run = Path(run)
        self.path = self.run.with_name(self.run.name + LOCK_SUFFIX)
        self._fd: int | None = None
        self._made: list[Path] = []

    def __enter__(self):  # -> RunLock (typing.Self needs Python 3.11)
        self._made = [p for p in reversed(self.run.parents) if not p.exists()]
        self.run.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._fd = self._acquire()
        except BaseException:
            self._remove_made()
            raise
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.path.unlink(missing_ok=True)  # under the lock: see _acquire
        finally:
            os.close(self._fd)  # releases the lock
            self._fd = None
            self._remove_made()

    def _acquire(self) -> int:
        """An open descriptor of ``self.path`` that this process holds the lock of."""
        if fcntl is None:
            try:
                return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                raise self._busy(self._holder_of_file(),
                                 " If that process no longer runs, remove the lock file.") \
                    from None
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held by a live process
                holder = _read(fd)
                os.close(fd)
                raise self._busy(holder, "") from None
            if _same_file(fd, self.path):
                return fd
            os.close(fd)  # its holder removed it as we opened it: lock the current one

    def _holder_of_file(self) -> str:
        try:
            return self.path.read_text(errors="replace")
        except OSError:
            return ""

    def _busy(self, holder: str, more: str) -> SpecError:
        words = holder.split()
        who = (f"process {words[0]}" + (f" on {words[1]}" if len(words) > 1 else "")
               if words else "another process (its id not yet written)")
        return SpecError(f"run directory {self.run} is in use: {who} holds its lock "
                         f"{self.path} (a discover writing this run now). Hint: wait for it "
                         f"to finish, or write this run to another directory.{more}")

    def _remove_made(self) -> None:
        """Remove the parent folders this lock created, deepest first, while empty."""
        for folder in reversed(self._made):
            try:
                folder.rmdir()
            except OSError:  # not empty (the run is there), or gone
                break
        self._made = []


def _read(fd: int) -> str:
    """The text of an open lock file (its holder), read from the start."""
    try:
        return os.pread(fd, 256, 0).decode(errors="replace")
    except OSError:
        return ""


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
