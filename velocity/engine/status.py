"""A sweep's state on disk: the ``status.json`` tracker, :func:`read_status`, failed runs.

:class:`Tracker` holds every run's state and error and rewrites ``status.json``
(atomically, :func:`velocity.sweepdir.files.write_status`) whenever a run starts or
ends. :func:`read_status` reads it back, merged with each running run's
``progress.json``. :func:`write_failure` writes the ``summary.json`` of a run that
could not write its own (it raised, or its worker process died), and
:func:`verify_finished_run` is what ``--resume`` trusts; both live with the files
(:mod:`velocity.sweepdir.files`, :mod:`velocity.sweepdir.verify`).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velocity.spec import RunSpec
from velocity.sweepdir import files, names
from velocity.sweepdir.files import failure_summary, write_failure
from velocity.sweepdir.io import describe_write_error, utc_now
from velocity.sweepdir.lock import pid_alive
from velocity.sweepdir.models import RunState, Status
from velocity.sweepdir.verify import FINISHED, FinishedCheck, verify_finished_run


@dataclass
class RunOutcome:
    """How one run of a sweep ended, and what its worker measured."""

    name: str
    state: str  # "done" | "diverged" | "failed" | "cancelled" | "pending"
    error: str | None = None
    summary: dict[str, Any] | None = None
    skipped: bool = False  # finished by an earlier sweep (resume)
    worker: dict[str, Any] | None = None  # pid, started, first_round (epoch s), peak_rss_mb


def read_status(sweep_dir: Path) -> dict[str, Any]:
    """``status.json`` with each running run's current ``round``/``rounds`` from progress.json.

    Adds ``"stale": true`` when the status says running but no process drives the
    sweep any more (its lock is free: it was killed without a chance to record it).
    Raises ``OSError`` when the file cannot be read and ``ValueError`` (naming it)
    when it is not a status (truncated, ``null``, a list, binary, an unknown state);
    a field of the wrong type reads as null.
    """
    sweep_dir = Path(sweep_dir)
    status = files.read_status(sweep_dir)
    merged = status.to_json()
    for name, entry in status.runs.items():
        if entry.state != "running":
            continue
        progress = files.read_progress(files.run_dir(sweep_dir, name))
        if progress is not None:
            merged["runs"][name].update(round=progress.round, rounds=progress.rounds)
    merged["stale"] = status.state == "running" and not _driven(sweep_dir, status)
    return merged


def _driven(sweep_dir: Path, status: Status) -> bool:
    """Whether a live process drives the sweep: its lock is held (older sweeps, without a
    lock file: the pid in status.json is alive)."""
    from velocity.sweepdir import lock as sweeplock

    if os.path.lexists(sweep_dir / names.LOCK):
        return sweeplock.holder(sweep_dir) is not None
    return pid_alive(status.pid)


class Tracker:
    """The sweep's state: every run's state and error, written to ``status.json``."""

    def __init__(
        self,
        out_dir: Path,
        runs: Sequence[RunSpec],
        finished: dict[str, dict[str, Any]],
        display: Any,
    ) -> None:
        self.out_dir = out_dir
        self.specs = {spec.name: spec for spec in runs}
        self.display = display
        self.runs = {
            name: RunOutcome(name, finished[name]["status"], summary=finished[name], skipped=True)
            if name in finished
            else RunOutcome(name, "pending")
            for name in self.specs
        }
        self.pids: dict[str, int] = {}
        self.started_at = utc_now()
        self.clock = time.perf_counter()
        self.lock = threading.RLock()
        #: Called (once per failure, from whichever thread wrote) with the reason when
        #: ``status.json`` cannot be written: the sweep sets it to stop itself.
        self.on_write_error: Callable[[str], None] | None = None
        self.write_error: str | None = None  # the first failed write of status.json

    def event(self, event: tuple[Any, ...]) -> None:
        """An event from a worker: ``("start", name, pid, t)`` or ``("round", name, r, R, t)``."""
        kind, name = event[0], event[1]
        with self.lock:
            run = self.runs.get(name)
            if run is None or run.state not in ("pending", "running"):
                return
            if kind == "start":
                run.state, run.error = "running", None
                self.pids[name] = int(event[2])
                self.write("running")
        if kind == "start":
            self.display.run_started(name, self.specs[name].rounds)
        elif kind == "round":
            self.display.run_round(name, int(event[2]), int(event[3]))

    def finish(
        self,
        name: str,
        state: str,
        *,
        error: str | None = None,
        summary: dict[str, Any] | None = None,
        worker: dict[str, Any] | None = None,
    ) -> None:
        from velocity.engine.progress import describe

        with self.lock:
            run = self.runs[name]
            run.state, run.error, run.summary, run.worker = state, error, summary, worker
            self.write("running")
        self.display.run_finished(
            name, state, describe(summary) if state in FINISHED else (error or "")
        )

    def add(self, runs: Sequence[RunSpec]) -> None:
        """Add runs (pending) to the sweep: a batch planned after it started."""
        with self.lock:
            for spec in runs:
                self.specs[spec.name] = spec
                self.runs.setdefault(spec.name, RunOutcome(spec.name, "pending"))

    def requeue(self, name: str) -> None:
        with self.lock:
            self.runs[name].state = "pending"
            self.pids.pop(name, None)

    def state_of(self, name: str) -> str:
        with self.lock:
            return self.runs[name].state

    def outcomes(self) -> dict[str, RunOutcome]:
        with self.lock:
            return dict(self.runs)

    def write(
        self,
        state: str,
        *,
        error: str | None = None,
        final: bool = False,
        elapsed_s: float | None = None,
    ) -> bool:
        """Rewrite ``status.json``; False when it could not be written (never raises).

        A failed write (a full disk) is remembered in :attr:`write_error` and
        reported to :attr:`on_write_error`; the old ``status.json`` stays whole.
        """
        with self.lock:
            counts = Counter(run.state for run in self.runs.values())
            now = utc_now()
            status = Status(
                state=state,  # type: ignore[arg-type]
                pid=os.getpid(),
                started_at=self.started_at,
                updated_at=now,
                finished_at=now if final else None,
                elapsed_s=elapsed_s if elapsed_s is not None else time.perf_counter() - self.clock,
                total_runs=len(self.runs),
                done_runs=counts["done"],
                diverged_runs=counts["diverged"],
                failed_runs=counts["failed"],
                runs={
                    name: RunState(state=run.state, error=run.error)  # type: ignore[arg-type]
                    for name, run in self.runs.items()
                },
                error=error,
            )
            try:
                files.write_status(self.out_dir, status)
            except OSError as exc:
                reason = describe_write_error(exc)
                if self.write_error is None:
                    self.write_error = reason
                callback = self.on_write_error
            else:
                return True
        if callback is not None:
            callback(reason)
        return False


__all__ = [
    "FINISHED",
    "FinishedCheck",
    "RunOutcome",
    "Tracker",
    "failure_summary",
    "read_status",
    "utc_now",
    "verify_finished_run",
    "write_failure",
]
