"""One driver per sweep directory: an advisory lock held for the driver's whole life.

A sweep (``velocity sweep``, a resume, an MCP launch) takes an exclusive
``fcntl.flock`` on ``<sweep_dir>/.lock`` before it reads or writes anything else
there, and holds it until it exits. The kernel releases a flock when the last
process holding the open file goes away — however it dies — so a lock left by a
dead process is never stale, and a pid reused after a reboot cannot block a
resume: the pid written into the file is only there to name the holder in the
refusal ("sweep D is running (pid N)").

Pool workers forked by the driver (the ``fork`` start method) share the open file,
so the directory stays locked while any of them is alive: a resume cannot start
while an orphaned worker might still write into it. Workers started otherwise
(``forkserver``, ``spawn``) do not hold it; every worker checks with :func:`holder`
that its driver still holds the lock before it touches a run (``velocity.engine.pool``).

The lock file also holds a little disk space in reserve (:meth:`SweepLock.reserve`),
which a sweep that meets a full disk frees to record how it ended. The file is
created with a plain file's mode (0666 less the umask) and is never deleted by a
sweep that wrote anything (deleting a lock file others may have open races).

:func:`pid_alive` is the one zombie-aware liveness test of a process id.
Readers that only need to know whether a sweep is live (``list_sweeps``, the MCP
server's concurrency limit, across any number of server processes) call
:func:`holder`, which probes the lock without taking it for more than an instant.
This module depends on nothing but the standard library (and the file names,
:mod:`velocity.sweepdir.names`): the MCP server imports it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import suppress
from pathlib import Path
from types import TracebackType

from velocity.sweepdir.names import LOCK as LOCK_FILE

#: How long :func:`acquire` retries when the lock is busy (a probe by :func:`holder`
#: holds it for microseconds; a real driver holds it for the whole sweep).
RETRY_S = 1.0


class SweepLockedError(RuntimeError):
    """Another live process is driving this sweep directory."""

    def __init__(self, sweep_dir: Path, pid: int | None) -> None:
        self.sweep_dir, self.pid = sweep_dir, pid
        if pid and not _pid_exists(pid):
            # the driver is gone but a process it started still holds the lock
            message = (
                f"sweep {sweep_dir} is still locked by a process its driver (pid {pid}, "
                "gone) left running; retry in a moment"
            )
        else:
            who = f" (pid {pid})" if pid else ""
            message = f"sweep {sweep_dir} is running{who}; wait for it or cancel it"
        super().__init__(message)


class SweepLock:
    """An acquired lock; release it with :meth:`release` or by leaving a ``with`` block.

    :meth:`reserve` pads the lock file with ``nbytes`` of real disk space that
    :meth:`free_reserve` gives back: a sweep that meets a full disk frees it to
    record how it ended (``status.json``).
    """

    def __init__(self, sweep_dir: Path, fd: int, pid_line: bytes) -> None:
        self.sweep_dir, self._fd, self._pid_line = sweep_dir, fd, pid_line
        self.reserved = 0

    @property
    def path(self) -> Path:
        return self.sweep_dir / LOCK_FILE

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def reserve(self, nbytes: int) -> None:
        """Hold ``nbytes`` of disk space in the lock file (after the pid line).

        Random bytes, so that a compressing file system really allocates them.
        Raises ``OSError`` (nothing held) when the disk does not have them.
        """
        if self._fd < 0 or nbytes <= 0:
            return
        self.reserved = nbytes
        try:
            written = os.pwrite(self._fd, os.urandom(nbytes), len(self._pid_line))
        except OSError as exc:
            self.free_reserve()
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        if written < nbytes:  # a nearly full disk took part of it
            self.free_reserve()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    def shrink_reserve(self, nbytes: int) -> None:
        """Give back all but ``nbytes`` of the reserved space."""
        if self._fd >= 0 and 0 <= nbytes < self.reserved:
            with suppress(OSError):
                os.ftruncate(self._fd, len(self._pid_line) + nbytes)
                self.reserved = nbytes

    def free_reserve(self) -> None:
        """Give the reserved space back (the lock file holds only the pid again)."""
        if self._fd >= 0:
            with suppress(OSError):
                os.ftruncate(self._fd, len(self._pid_line))
        self.reserved = 0

    def remove(self) -> None:
        """Delete the lock file and release the lock (undoing a sweep that wrote nothing).

        Safe while held: :func:`acquire` checks that the file it locked is still the
        one at the path, so a process waiting on the deleted file retries.
        """
        if self._fd >= 0:
            with suppress(OSError):
                os.unlink(self.path)
        self.release()

    def release(self) -> None:
        if self._fd >= 0:
            if self.reserved:
                self.free_reserve()
            os.close(self._fd)  # closing the last descriptor releases the flock
            self._fd = -1

    def __enter__(self) -> SweepLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    try:  # a zombie has exited: it holds nothing
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace")
    except OSError:
        return None
    first = text.split("\n", 1)[0].strip()
    return int(first) if first.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path`` (it was not deleted or replaced)."""
    try:
        here, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def acquire(sweep_dir: Path) -> SweepLock:
    """Lock ``sweep_dir`` (which must exist) for this process, or raise :class:`SweepLockedError`.

    Writes this process's pid into the lock file (created with a plain file's mode,
    0666 less the umask). Other ``OSError`` s (a read-only directory, a full disk)
    propagate.
    """
    sweep_dir = Path(sweep_dir)
    path = sweep_dir / LOCK_FILE
    deadline = time.monotonic() + RETRY_S
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise
            if time.monotonic() >= deadline:
                pid = _read_pid(fd)
                os.close(fd)
                raise SweepLockedError(sweep_dir, pid) from None
            os.close(fd)
            time.sleep(0.02)
            continue
        if _same_file(fd, path):
            break
        os.close(fd)  # locked a lock file someone deleted meanwhile: lock the new one
    pid_line = f"{os.getpid()}\n".encode()
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, pid_line, 0)
    except OSError:
        os.close(fd)
        raise
    return SweepLock(sweep_dir, fd, pid_line)


def holder(sweep_dir: Path) -> int | None:
    """The pid driving ``sweep_dir`` now (0 when it is locked by an unknown pid), else None.

    None when there is no lock file, or nobody holds it (the sweep ended, or died).
    """
    path = Path(sweep_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return _read_pid(fd) or 0
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def pid_alive(pid: object) -> bool:
    """Whether process ``pid`` exists and is not a zombie (False unless an int in (0, 2³¹))."""
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux) or no such process
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = stat.rsplit(")", 1)[-1].split()
    return bool(fields) and fields[0] not in ("Z", "X")


def is_live(sweep_dir: Path) -> bool:
    """Whether some process holds ``sweep_dir``'s lock (its sweep is running)."""
    return holder(sweep_dir) is not None


__all__ = [
    "LOCK_FILE",
    "SweepLock",
    "SweepLockedError",
    "acquire",
    "holder",
    "is_live",
    "pid_alive",
]
