"""Detached sweep processes: start, find, check and stop them.

A sweep runs as ``python -m velocity sweep SWEEP_DIR/experiment.json --out SWEEP_DIR`` in its
own session (``start_new_session``), with stdin from ``/dev/null`` and its output in
``SWEEP_DIR/sweep.log``. So it survives the MCP client killing the server's
process group, and all that the server knows about it afterwards comes from the
sweep directory: status, compare and cancel work after a server restart, and on
sweeps started from the CLI.

Whether a sweep is live comes from the root too, never from one server's memory:
the sweep process holds an advisory lock on ``SWEEP_DIR/.lock``
(:mod:`velocity.sweepdir.lock`) for its whole life, so every server process on the root
sees the same live sweeps. Between its spawn and taking that lock a sweep is
counted through the launching server's child list, and the launching server holds
the root's launch lock (``ROOT/.velocity-mcp.lock``) from counting until the new
sweep holds its own lock: two servers cannot both take the last slot. A directory
without a ``.lock`` file (a sweep from a velocity without sweep locks) falls back
to its ``status.json`` pid.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from velocity.sweepdir import files, names
from velocity.sweepdir.files import log_tail
from velocity.sweepdir.lock import holder, pid_alive
from velocity_mcp.paths import sweep_dirs

logger = logging.getLogger(__name__)

#: The command that runs one sweep; the experiment file and ``--out DIR`` follow. The
#: server makes the directory and writes the experiment in it; ``velocity sweep``
#: starts a fresh sweep into a directory that holds only those (``names.LAUNCH_FILES``),
#: validates it, and writes the plan and every other file itself (or refuses, exit 2).
SWEEP_COMMAND: tuple[str, ...] = (sys.executable, "-m", "velocity", "sweep")
#: Held (flock) by a server from counting the live sweeps until the sweep it starts
#: holds its own lock.
LAUNCH_LOCK = ".velocity-mcp.lock"
#: The exit status of ``velocity sweep`` when it refuses its input (nothing written).
REFUSED = 2
#: The prefix of ``velocity``'s one-line refusal on stderr.
REFUSAL_PREFIX = "velocity: error: "


def pid_cmdline(pid: int) -> list[str]:
    """The command line of ``pid`` (empty when unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_sweep_process(pid: Any) -> bool:
    """Whether ``pid`` is alive and looks like a velocity sweep (guards against pid reuse)."""
    if not pid_alive(pid):
        return False
    cmdline = pid_cmdline(pid)
    if not cmdline:  # no /proc: trust the liveness check
        return not Path("/proc/self").exists()
    text = " ".join(cmdline)
    return "velocity" in text and "sweep" in cmdline


def find_sweep_process(sweep_dir: Path) -> int | None:
    """The pid of a live velocity sweep whose command line names ``sweep_dir`` (Linux /proc)."""
    target = str(sweep_dir)
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return None
    for entry in entries:
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        cmdline = pid_cmdline(pid)
        if target in cmdline and "sweep" in cmdline and is_sweep_process(pid):
            return pid
    return None


def refusal_message(sweep_dir: Path) -> str | None:
    """The one-line refusal ``velocity sweep`` wrote to sweep.log (without its prefix)."""
    for line in reversed(log_tail(sweep_dir, 50).splitlines()):
        if line.startswith(REFUSAL_PREFIX):
            return line.removeprefix(REFUSAL_PREFIX).strip()
    return None


class Launcher:
    """Starts detached sweeps and answers which sweeps under the root are running.

    Parameters
    ----------
    root : Path
        The directory that holds the sweep directories.
    command : sequence of str (default: :data:`SWEEP_COMMAND`)
        The sweep command; tests substitute a fake sweep.
    """

    def __init__(self, root: Path, command: Sequence[str] | None = None) -> None:
        self.root = root
        self.command = tuple(command or SWEEP_COMMAND)
        self.lock = threading.Lock()  # this process's threads; the root lock is for others
        self._children: dict[Path, subprocess.Popen[bytes]] = {}

    @contextlib.contextmanager
    def launching(self, timeout: float) -> Iterator[None]:
        """Hold this root's launch lock (every server process on it) for a count and a spawn.

        Raises ``TimeoutError`` when another server holds it for over ``timeout`` s.
        """
        with self.lock:
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.root / LAUNCH_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                deadline = time.monotonic() + timeout
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError as exc:
                        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                            raise
                        if time.monotonic() >= deadline:
                            raise TimeoutError(
                                f"another server has held {self.root / LAUNCH_LOCK} for "
                                f"{timeout:.0f} s"
                            ) from None
                        time.sleep(0.02)
                yield
            finally:
                os.close(fd)  # releases the flock

    def start(self, sweep_dir: Path, experiment: Path) -> subprocess.Popen[bytes]:
        """Spawn the sweep of ``experiment`` into ``sweep_dir``, detached from this process."""
        args = [*self.command, str(experiment), "--out", str(sweep_dir)]
        proc = _spawn(sweep_dir, args)
        logger.info("started sweep %s (pid %d): %s", sweep_dir.name, proc.pid, " ".join(args))
        self._children[sweep_dir] = proc
        return proc

    def start_extension(
        self, sweep_dir: Path, args: Sequence[str], *, driver: bool
    ) -> subprocess.Popen[bytes]:
        """Spawn ``velocity sweep --extend sweep_dir ARGS``, detached, its output in sweep.log.

        ``driver``: the sweep is not running, so the extension will drive it (it is then
        this server's child for ``sweep_dir``); else it queues its runs and exits.
        """
        cmd = [*self.command, "--extend", str(sweep_dir), *args]
        proc = _spawn(sweep_dir, cmd)
        logger.info("extending sweep %s (pid %d): %s", sweep_dir.name, proc.pid, " ".join(cmd))
        if driver:
            self._children[sweep_dir] = proc
        return proc

    def forget(self, sweep_dir: Path) -> None:
        """Drop a finished child from the child list (its directory was removed)."""
        proc = self._children.pop(sweep_dir, None)
        if proc is not None:
            proc.poll()

    def child(self, sweep_dir: Path) -> subprocess.Popen[bytes] | None:
        """The process this server started for ``sweep_dir``, if any (reaped when done)."""
        proc = self._children.get(sweep_dir)
        if proc is not None:
            proc.poll()  # reaps a finished child so it is not counted as alive
        return proc

    def _child_alive(self, sweep_dir: Path) -> bool:
        proc = self.child(sweep_dir)
        return proc is not None and proc.returncode is None

    def wait_locked(self, sweep_dir: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
        """Wait until the new sweep holds its lock, wrote ``status.json``, or exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                holder(sweep_dir) is not None
                or files.has(sweep_dir, names.STATUS)
                or proc.poll() is not None
            ):
                return
            time.sleep(0.02)

    def wait_started(self, sweep_dir: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
        """Wait until ``status.json`` appears or the process exits (whichever is first).

        The sweep validates its input before it writes status.json, and exits with
        :data:`REFUSED` when it refuses it.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if files.has(sweep_dir, names.STATUS) or proc.poll() is not None:
                return
            time.sleep(0.05)

    def wait_status(self, sweep_dir: Path, timeout: float) -> None:
        """Wait until ``status.json`` appears or no sweep process is running ``sweep_dir``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if files.has(sweep_dir, names.STATUS) or not self.is_running(sweep_dir):
                return
            time.sleep(0.05)

    def _status_pid(self, sweep_dir: Path) -> tuple[str | None, Any]:
        status = files.read_optional_status(sweep_dir)
        return (status.state, status.pid) if status is not None else (None, None)

    def sweep_pid(self, sweep_dir: Path) -> int | None:
        """The pid of the sweep's driver: its lock's holder, else status.json, else our child."""
        locked = holder(sweep_dir)
        if locked:
            return locked
        _, pid = self._status_pid(sweep_dir)
        if isinstance(pid, int) and not isinstance(pid, bool):
            return pid
        proc = self.child(sweep_dir)
        if proc is not None:
            return proc.pid
        # started by another server process, before it wrote status.json
        return find_sweep_process(sweep_dir)

    def _locking(self, sweep_dir: Path) -> bool:
        """The sweep directory has a lock file: its sweep is live exactly while it is held."""
        return files.exists(sweep_dir, names.LOCK)

    def process_alive(self, sweep_dir: Path) -> bool:
        """Whether the sweep's process still exists, whatever its status.json says."""
        if holder(sweep_dir) is not None or self._child_alive(sweep_dir):
            return True
        if self._locking(sweep_dir):
            return False
        _, pid = self._status_pid(sweep_dir)
        return is_sweep_process(pid)

    def is_running(self, sweep_dir: Path) -> bool:
        """Whether a live sweep process is working on ``sweep_dir``.

        Its lock is held, or it is this server's child that has not taken the lock
        yet; for a directory without a lock file, its status.json's pid is a live
        sweep, or (no status.json yet) a sweep process names the directory.
        """
        if holder(sweep_dir) is not None or self._child_alive(sweep_dir):
            return True
        if self._locking(sweep_dir):
            return False
        if not files.exists(sweep_dir, names.STATUS):
            # launched by another server, not locked yet
            return self.child(sweep_dir) is None and find_sweep_process(sweep_dir) is not None
        state, pid = self._status_pid(sweep_dir)
        return state == "running" and is_sweep_process(pid)

    def running(self) -> list[Path]:
        """Every sweep directory under the root with a live sweep process."""
        dirs = set(sweep_dirs(self.root)) | {d for d in self._children if self._child_alive(d)}
        return sorted(d for d in dirs if self.is_running(d))

    def cancel(self, sweep_dir: Path, wait_s: float) -> bool:
        """SIGTERM the sweep's process; wait up to ``wait_s`` for it to end.

        Returns whether the process has ended. Raises ``ProcessLookupError`` when no
        live velocity sweep process belongs to ``sweep_dir``.
        """
        pid = self.sweep_pid(sweep_dir)
        if pid is None or not is_sweep_process(pid):
            raise ProcessLookupError(pid)
        os.kill(pid, signal.SIGTERM)
        proc = self.child(sweep_dir)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return True
            if not pid_alive(pid):
                return True
            time.sleep(0.1)
        return False

    def kill_all(self) -> None:
        """SIGKILL every sweep this server started that is still running (tests, shutdown)."""
        for proc in self._children.values():
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _spawn(sweep_dir: Path, args: list[str]) -> subprocess.Popen[bytes]:
    """``args`` as a detached process (its own session, no stdin), output in sweep.log."""
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    with files.open_log(sweep_dir) as log:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
