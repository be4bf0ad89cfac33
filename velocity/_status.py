"""A sweep's state on disk: the ``status.json`` tracker, :func:`read_status`, failed runs.

:class:`Tracker` holds every run's state and error and rewrites ``status.json``
(atomically) whenever a run starts or ends. :func:`read_status` reads it back,
merged with each running run's ``progress.json``. :func:`write_failure` writes
the ``summary.json`` of a run that could not write its own (it raised, or its
worker process died).
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from velocity.runio import atomic_write_json, read_json
from velocity.spec import RunSpec


@dataclass
class RunOutcome:
    """How one run of a sweep ended, and what its worker measured."""

    name: str
    state: str  # "done" | "diverged" | "failed" | "cancelled" | "pending"
    error: str | None = None
    summary: dict[str, Any] | None = None
    skipped: bool = False  # finished by an earlier sweep (resume)
    worker: dict[str, Any] | None = None  # pid, started, first_round (epoch s), peak_rss_mb


#: Run states that are results: a diverged run broke under its setting, which is an
#: outcome of the experiment (deterministic, so a resume keeps it), not a fault.
FINISHED = ("done", "diverged")


def read_status(sweep_dir: Path) -> dict[str, Any]:
    """``status.json`` with each running run's current ``round``/``rounds`` from progress.json.

    Adds ``"stale": true`` when the status says running but its process is gone
    (the sweep was killed without a chance to record it).
    """
    sweep_dir = Path(sweep_dir)
    status = read_json(sweep_dir / "status.json")
    for name, entry in (status.get("runs") or {}).items():
        if entry.get("state") != "running":
            continue
        try:
            progress = read_json(sweep_dir / name / "progress.json")
        except (OSError, ValueError):
            continue
        entry["round"] = progress.get("round")
        entry["rounds"] = progress.get("rounds")
    status["stale"] = status.get("state") == "running" and not pid_alive(status.get("pid"))
    return status


def pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` exists and is not a zombie (False unless a positive int)."""
    if not isinstance(pid, int) or pid <= 0:
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
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


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
        from velocity._progress import describe

        with self.lock:
            run = self.runs[name]
            run.state, run.error, run.summary, run.worker = state, error, summary, worker
            self.write("running")
        self.display.run_finished(
            name, state, describe(summary) if state in FINISHED else (error or "")
        )

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
    ) -> None:
        with self.lock:
            counts = Counter(run.state for run in self.runs.values())
            status = {
                "state": state,
                "pid": os.getpid(),
                "started_at": self.started_at,
                "updated_at": utc_now(),
                "finished_at": utc_now() if final else None,
                "elapsed_s": elapsed_s
                if elapsed_s is not None
                else time.perf_counter() - self.clock,
                "total_runs": len(self.runs),
                "done_runs": counts["done"],
                "diverged_runs": counts["diverged"],
                "failed_runs": counts["failed"],
                "runs": {
                    name: {"state": run.state, "error": run.error}
                    for name, run in self.runs.items()
                },
                "error": error,
            }
            atomic_write_json(self.out_dir / "status.json", status)


def write_failure(spec: RunSpec, run_dir: Path, error: str) -> dict[str, Any]:
    """Write the ``summary.json`` (and ``config.json`` if missing) of a run that never ended.

    For runs whose ``run_one`` raised or whose worker died: it could not write
    its own summary. Metrics are null; ``rounds_completed`` comes from
    ``progress.json`` when the run got that far.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.json").exists():
        atomic_write_json(run_dir / "config.json", spec.to_json())
    try:
        completed = int(read_json(run_dir / "progress.json").get("round") or 0)
    except (OSError, ValueError, AttributeError):
        completed = 0
    now = utc_now()
    summary: dict[str, Any] = {
        "name": spec.name,
        "status": "failed",
        "error": error,
        "strategy": spec.strategy.label(),
        "attack": spec.attack_label,
        "seed": spec.seed,
        "repeat": spec.repeat,
        "rounds": spec.rounds,
        "rounds_completed": completed,
        "final_loss": None,
        "final_accuracy": None,
        "mean_loss": None,
        "mean_accuracy": None,
        "best_accuracy": None,
        "elapsed_s": None,
        "time_s": None,
        "byzantine_clients": None,
        "detection": None,
        "checkpoint": None,
        "started_at": None,
        "finished_at": now,
    }
    atomic_write_json(run_dir / "summary.json", summary)
    atomic_write_json(
        run_dir / "progress.json", {"state": "failed", "round": completed, "rounds": spec.rounds}
    )
    return summary
