"""A sweep's state on disk: the ``status.json`` tracker, :func:`read_status`, failed runs.

:class:`Tracker` holds every run's state and error and rewrites ``status.json``
(atomically) whenever a run starts or ends. :func:`read_status` reads it back,
merged with each running run's ``progress.json``. :func:`write_failure` writes
the ``summary.json`` of a run that could not write its own (it raised, or its
worker process died). :func:`verify_finished_run` is what ``--resume`` trusts: a
run counts as finished only when its files are complete.
"""

from __future__ import annotations

import csv
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from velocity.spec import RunSpec
from velocity.sweepdir.io import atomic_write_json, describe_write_error, read_json_object
from velocity.sweepdir.lock import pid_alive


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

    Adds ``"stale": true`` when the status says running but no process drives the
    sweep any more (its lock is free: it was killed without a chance to record it).
    Raises ``OSError`` when the file cannot be read and ``ValueError`` (naming it)
    when it is not a JSON object (truncated, ``null``, a list, binary).
    """
    sweep_dir = Path(sweep_dir)
    status = read_json_object(sweep_dir / "status.json")
    runs = status.get("runs")
    for name, entry in runs.items() if isinstance(runs, dict) else ():
        if not isinstance(entry, dict) or entry.get("state") != "running":
            continue
        try:
            progress = read_json_object(sweep_dir / str(name) / "progress.json")
        except (OSError, ValueError):
            continue
        entry["round"] = progress.get("round")
        entry["rounds"] = progress.get("rounds")
    status["stale"] = status.get("state") == "running" and not _driven(sweep_dir, status)
    return status


def _driven(sweep_dir: Path, status: dict[str, Any]) -> bool:
    """Whether a live process drives the sweep: its lock is held (older sweeps, without a
    lock file: the pid in status.json is alive)."""
    from velocity.sweepdir import lock as sweeplock

    if os.path.lexists(sweep_dir / sweeplock.LOCK_FILE):
        return sweeplock.holder(sweep_dir) is not None
    return pid_alive(status.get("pid"))


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
            try:
                atomic_write_json(self.out_dir / "status.json", status)
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


def failure_summary(spec: RunSpec, run_dir: Path, error: str) -> dict[str, Any]:
    """The ``summary.json`` of a run that never ended (metrics null), without writing it.

    ``rounds_completed`` comes from ``progress.json`` when the run got that far.
    """
    try:
        completed = int(read_json_object(run_dir / "progress.json").get("round") or 0)
    except (OSError, ValueError, TypeError):
        completed = 0
    return {
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
        "finished_at": utc_now(),
    }


def write_failure(spec: RunSpec, run_dir: Path, error: str) -> dict[str, Any]:
    """Write the ``summary.json`` (and ``config.json`` if missing) of a run that never ended.

    For runs whose ``run_one`` raised or whose worker died: it could not write
    its own summary (see :func:`failure_summary`). Raises ``OSError`` when the
    files cannot be written (a full disk).
    """
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        run_dir.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / "config.json").is_file():
        atomic_write_json(run_dir / "config.json", spec.to_json())
    summary = failure_summary(spec, run_dir, error)
    atomic_write_json(run_dir / "summary.json", summary)
    atomic_write_json(
        run_dir / "progress.json",
        {"state": "failed", "round": summary["rounds_completed"], "rounds": spec.rounds},
    )
    return summary


# --------------------------------------------------------------------------- resume


class FinishedCheck(NamedTuple):
    """What :func:`verify_finished_run` found in a run directory.

    ``summary`` is set only for a finished run whose files are complete (resume
    keeps it); ``problem`` says why a run that claims to be finished, or whose
    files are unreadable, is not trusted (resume reruns it). Both None: the run
    did not finish (no summary, or it failed or was cancelled) and simply reruns.
    """

    summary: dict[str, Any] | None
    problem: str | None


_METRICS = ("final_loss", "final_accuracy", "mean_loss", "mean_accuracy", "best_accuracy")


def verify_finished_run(run_dir: Path, spec: RunSpec) -> FinishedCheck:
    """Whether ``run_dir`` holds a complete finished (done or diverged) run of ``spec``.

    Complete means: ``summary.json`` is a JSON object for this run with status done
    or diverged, ``rounds_completed`` equal to ``spec.rounds`` (done) or below it
    (diverged: the rounds before the one that broke), and finite metrics;
    ``rounds.csv`` and ``timings.csv`` have exactly ``rounds_completed`` rows,
    rounds 1, 2, ... with finite loss and accuracy, the last matching the summary;
    and the checkpoint the summary names (``checkpoint/final.npz``) loads, with
    finite parameters, of this run and its last completed round. The config is
    checked by the caller (a changed config is a refusal, not a rerun).
    """
    try:
        summary = read_json_object(run_dir / "summary.json")
    except FileNotFoundError:
        return FinishedCheck(None, None)
    except (OSError, ValueError) as exc:
        return FinishedCheck(None, f"summary.json is unreadable ({_oneline(exc)})")
    status = summary.get("status")
    if status not in FINISHED:
        return FinishedCheck(None, None)
    problem = _summary_problem(summary, spec)
    if problem is None:
        problem = _rounds_problem(run_dir, summary)
    if problem is None:
        problem = _checkpoint_problem(run_dir, summary, spec)
    return FinishedCheck(None, problem) if problem else FinishedCheck(summary, None)


def _oneline(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def _number(value: Any) -> float | None:
    """A finite number from a summary value (bools and strings are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _summary_problem(summary: dict[str, Any], spec: RunSpec) -> str | None:
    if summary.get("name") not in (None, spec.name):
        return f"summary.json is run {summary.get('name')!r}'s"
    completed = summary.get("rounds_completed")
    if isinstance(completed, bool) or not isinstance(completed, int):
        return "summary.json has no rounds_completed"
    if summary.get("status") == "done" and completed != spec.rounds:
        return f"summary.json says done after {completed} of {spec.rounds} rounds"
    if not 0 <= completed <= spec.rounds:
        return f"summary.json says {completed} rounds of {spec.rounds}"
    if completed:
        bad = [key for key in _METRICS if _number(summary.get(key)) is None]
        if bad:
            return f"summary.json has non-finite or missing {', '.join(bad)}"
    return None


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _rounds_problem(run_dir: Path, summary: dict[str, Any]) -> str | None:
    completed: int = summary["rounds_completed"]
    for name in ("rounds.csv", "timings.csv"):
        path = run_dir / name
        if completed == 0 and not path.exists():
            continue  # a run that diverged in round 1 writes no rows
        try:
            rows = _read_csv(path)
        except FileNotFoundError:
            return f"{name} is missing"
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            return f"{name} is unreadable ({_oneline(exc)})"
        if len(rows) != completed:
            return f"{name} has {len(rows)} of its {completed} rounds"
        for row in rows:
            if None in row or None in row.values():  # more or fewer fields than the header
                return f"{name} round {row.get('round')} is cut short or malformed"
        if [row.get("round") for row in rows] != [str(r) for r in range(1, completed + 1)]:
            return f"{name} does not hold rounds 1..{completed}"
        if name == "rounds.csv":
            for row in rows:
                loss, acc = _csv_number(row.get("global_loss")), _csv_number(row.get("accuracy"))
                if loss is None or acc is None:
                    return f"rounds.csv round {row.get('round')} has a non-finite loss or accuracy"
            if rows and not (
                _close(_csv_number(rows[-1]["global_loss"]), summary.get("final_loss"))
                and _close(_csv_number(rows[-1]["accuracy"]), summary.get("final_accuracy"))
            ):
                return "rounds.csv's last round does not match summary.json"
    return None


def _csv_number(text: str | None) -> float | None:
    try:
        number = float(text or "")
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _close(a: float | None, b: Any) -> bool:
    other = _number(b)
    return a is not None and other is not None and math.isclose(a, other, rel_tol=1e-9)


def _checkpoint_problem(run_dir: Path, summary: dict[str, Any], spec: RunSpec) -> str | None:
    completed: int = summary["rounds_completed"]
    checkpoint = summary.get("checkpoint")
    if checkpoint is None and completed == 0:
        return None  # no round completed: no model to save
    if not isinstance(checkpoint, str) or not checkpoint:
        return "summary.json names no checkpoint"
    path = Path(checkpoint)
    own = not path.is_absolute()
    path = run_dir / path if own else path
    from velocity.sweepdir.checkpoints import load_checkpoint

    try:
        saved = load_checkpoint(path)
    except FileNotFoundError:
        return f"its checkpoint {checkpoint} is missing"
    except Exception as exc:  # a corrupt .npz raises zipfile, pickle, OSError, ValueError...
        return f"its checkpoint {checkpoint} does not load ({type(exc).__name__}: {_oneline(exc)})"
    import numpy as np

    if saved.params.size == 0 or not bool(np.isfinite(saved.params).all()):
        return f"its checkpoint {checkpoint} holds non-finite parameters"
    # a storage directory outside the run may be shared by several runs: only a
    # checkpoint in the run's own directory must be this run's last round
    if own and (saved.run, saved.round, saved.model_id) != (spec.name, completed, spec.model_id):
        return (
            f"its checkpoint {checkpoint} is round {saved.round} of run {saved.run!r}, "
            f"not round {completed} of {spec.name!r}"
        )
    return None
