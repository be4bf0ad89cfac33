"""Detached sweep processes: start, find, check and stop them.

A sweep runs as ``python -m velocity sweep EXPERIMENT --resume SWEEP_DIR`` in its
own session (``start_new_session``), with stdin from ``/dev/null`` and its output in
``SWEEP_DIR/sweep.log``. So it survives the MCP client killing the server's
process group, and all that the server knows about it afterwards comes from the
sweep directory (``status.json``): status, compare and cancel work after a
server restart, and on sweeps started from the CLI.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from velocity._status import pid_alive
from velocity_mcp.paths import sweep_dirs

logger = logging.getLogger(__name__)

#: The command that runs one sweep; the experiment file and ``--resume DIR`` follow.
#: The server writes ``plan.json`` before it starts the sweep, so the sweep directory
#: is a sweep directory from the first moment; ``--resume`` on a plan with no finished
#: run directories runs every run.
SWEEP_COMMAND: tuple[str, ...] = (sys.executable, "-m", "velocity", "sweep")
LOG_NAME = "sweep.log"
EXPERIMENT_NAME = "experiment.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when absent, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def pid_cmdline(pid: int) -> list[str]:
    """The command line of ``pid`` (empty when unknown)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def is_sweep_process(pid: int) -> bool:
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


def log_tail(sweep_dir: Path, lines: int = 15) -> str:
    """The last lines of the sweep's ``sweep.log`` (empty when none)."""
    try:
        text = (sweep_dir / LOG_NAME).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


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
        self.lock = threading.Lock()  # held across the concurrency check and the spawn
        self._children: dict[Path, subprocess.Popen[bytes]] = {}

    def start(self, sweep_dir: Path, experiment: Path) -> subprocess.Popen[bytes]:
        """Spawn the sweep of ``experiment`` into ``sweep_dir``, detached from this process."""
        args = [*self.command, str(experiment), "--resume", str(sweep_dir)]
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with (sweep_dir / LOG_NAME).open("ab") as log:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                env=env,
            )
        logger.info("started sweep %s (pid %d): %s", sweep_dir.name, proc.pid, " ".join(args))
        self._children[sweep_dir] = proc
        return proc

    def child(self, sweep_dir: Path) -> subprocess.Popen[bytes] | None:
        """The process this server started for ``sweep_dir``, if any (reaped when done)."""
        proc = self._children.get(sweep_dir)
        if proc is not None:
            proc.poll()  # reaps a finished child so it is not counted as alive
        return proc

    def wait_started(self, sweep_dir: Path, proc: subprocess.Popen[bytes], timeout: float) -> None:
        """Wait until ``status.json`` appears or the process exits (whichever is first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (sweep_dir / "status.json").is_file() or proc.poll() is not None:
                return
            time.sleep(0.05)

    def wait_status(self, sweep_dir: Path, timeout: float) -> None:
        """Wait until ``status.json`` appears or no sweep process is running ``sweep_dir``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (sweep_dir / "status.json").is_file() or not self.is_running(sweep_dir):
                return
            time.sleep(0.05)

    def sweep_pid(self, sweep_dir: Path) -> int | None:
        """The pid of the process running ``sweep_dir`` (status.json, else our own child)."""
        status = read_json(sweep_dir / "status.json") or {}
        pid = status.get("pid")
        if isinstance(pid, int) and not isinstance(pid, bool):
            return pid
        proc = self.child(sweep_dir)
        if proc is not None:
            return proc.pid
        # started by another server process, before it wrote status.json
        return find_sweep_process(sweep_dir)

    def process_alive(self, sweep_dir: Path) -> bool:
        """Whether the sweep's process still exists, whatever its status.json says."""
        proc = self.child(sweep_dir)
        if proc is not None:
            return proc.returncode is None
        pid = self.sweep_pid(sweep_dir)
        return pid is not None and is_sweep_process(pid)

    def is_running(self, sweep_dir: Path) -> bool:
        """Whether a live sweep process is working on ``sweep_dir``."""
        proc = self.child(sweep_dir)
        if proc is not None and proc.returncode is None:
            return True
        status = read_json(sweep_dir / "status.json")
        if status is None:  # launched, status.json not written yet
            return proc is None and find_sweep_process(sweep_dir) is not None
        pid = status.get("pid")
        return status.get("state") == "running" and isinstance(pid, int) and is_sweep_process(pid)

    def running(self) -> list[Path]:
        """Every sweep directory under the root with a live sweep process."""
        dirs = set(sweep_dirs(self.root)) | set(self._children)
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
