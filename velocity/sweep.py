"""Run a list of RunSpecs, one run directory each: :func:`run_sweep`.

This module is the public face of a sweep: :func:`run_sweep`, its
:class:`SweepResult`, and the refusals made before any work (:func:`check_setups`,
:func:`ensure_writable_dir`, duplicate names, a non-empty or changed output
directory). Where runs execute is an :class:`~velocity.executors.Executor` chosen by
``backend``: ``"local"``, a process pool with its workers and crash recovery
(:mod:`velocity._pool`), or ``"ray"``, one Ray task per run (:mod:`velocity._ray`).
``status.json`` and :func:`read_status` live in :mod:`velocity._status`. The names
tests and callers use are re-exported here.

The sweep directory follows ``docs/files.md``: ``plan.json`` and ``manifest.json``
first, ``status.json`` rewritten (atomically) whenever a run starts or ends, one
directory per run, and at the end the reports of :func:`velocity.report.render_all`
(``comparison.json``/``comparison.md``, the plots and ``report.html``).

Failures stay local: a run that raises or whose worker dies is recorded as
failed and every other run finishes. SIGINT and SIGTERM stop the sweep cleanly:
pending runs are cancelled, the workers terminated, finished runs left intact,
``status.json`` says ``cancelled`` and the comparison covers what finished;
``resume=True`` later runs the rest. The test-only environment hooks are
described in :mod:`velocity._pool`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velocity._pool import (
    PINNED_ENV,
    START_METHOD_ENV,
    TEST_CRASH_ENV,
    TEST_RAISE_ENV,
    TEST_SLOW_ENV,
)
from velocity._status import (
    FINISHED,
    RunOutcome,
    Tracker,
    pid_alive,
    read_status,
    utc_now,
    write_failure,
)
from velocity.errors import SpecError
from velocity.executors import (
    BACKENDS,
    ExecutionSettings,
    default_parallel,
    make_executor,
    stop_on_signals,
)
from velocity.runio import atomic_write_json, read_json
from velocity.spec import RunSpec
from velocity.verdict import RankBy

__all__ = [
    "BACKENDS",
    "PINNED_ENV",
    "START_METHOD_ENV",
    "TEST_CRASH_ENV",
    "TEST_RAISE_ENV",
    "TEST_SLOW_ENV",
    "RunOutcome",
    "SweepResult",
    "check_setups",
    "default_parallel",
    "ensure_writable_dir",
    "read_status",
    "run_sweep",
    "write_failure",
]


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: the final state, each run's outcome, the comparison."""

    sweep_dir: Path
    state: str  # "done" | "cancelled" | "failed"
    parallel: int
    started: float  # epoch seconds when run_sweep was called
    wall_s: float
    runs: dict[str, RunOutcome]
    comparison: dict[str, Any] | None = None
    error: str | None = None
    start_method: str = ""
    backend: str = "local"

    @property
    def failed(self) -> list[str]:
        """Names of the runs that failed."""
        return [name for name, run in self.runs.items() if run.state == "failed"]

    @property
    def exit_code(self) -> int:
        """0 every run done or diverged, 1 some run failed (or the sweep did), 130 cancelled."""
        if self.state == "cancelled":
            return 130
        return 1 if self.state != "done" or self.failed or self.comparison is None else 0


def run_sweep(
    runs: Sequence[RunSpec],
    out_dir: Path,
    *,
    parallel: int | None = None,
    resume: bool = False,
    command: list[str] | None = None,
    config_path: Path | None = None,
    progress: bool = True,
    start_method: str | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    ray_gpus: float = 0.0,
    rank_by: RankBy = "accuracy",
) -> SweepResult:
    """Run every spec into ``out_dir/<spec.name>/`` and write the sweep's files.

    ``backend`` is where runs execute (:data:`BACKENDS`): ``"local"``, a process
    pool on this machine, or ``"ray"``, one Ray task per run declaring one CPU
    (and ``ray_gpus`` GPUs), on the cluster at ``ray_address`` or, when None (and
    ``$RAY_ADDRESS`` is unset), on a Ray instance started for the sweep and
    stopped after it; a Ray session already initialised in this process is used
    as it is. ``parallel`` defaults to min(CPUs, runs): this machine's CPUs, or
    the cluster's. The backend never changes results. ``rank_by`` is what the
    verdict ranks by (``"accuracy"`` or ``"loss"``); it is recorded in plan.json.

    ``start_method`` is how local worker processes start: ``"fork"`` where the
    platform has it (default: milliseconds; the Rust core keeps its thread pools
    per process, so a forked worker never waits on its parent's threads), else
    ``"forkserver"`` or ``"spawn"``. ``$VELOCITY_MP_START`` overrides it. With
    forkserver or spawn, a script calling this must do so under
    ``if __name__ == "__main__":`` (the children re-import it).

    Refuses (``SpecError``, nothing written) when ``out_dir`` is a non-empty
    directory and ``resume`` is false, when it cannot be written, when run names
    repeat, on resume when a finished run's ``config.json`` differs from its
    planned spec, when the backend is unknown or its package is missing, or when
    the Ray cluster cannot be reached. With ``resume``, runs already done are
    kept and skipped.
    """
    started = time.time()
    clock = time.perf_counter()
    out_dir = Path(out_dir)
    runs = list(runs)
    if not runs:
        raise SpecError("the sweep has no runs")
    _check_names(runs)
    finished = _previous_runs(out_dir, runs) if resume else _check_fresh(out_dir)
    todo = [spec for spec in runs if spec.name not in finished]
    if parallel is not None and parallel < 1:
        raise SpecError(f"parallel must be >= 1, got {parallel}")
    executor = make_executor(
        backend,
        ExecutionSettings(start_method=start_method, ray_address=ray_address, ray_gpus=ray_gpus),
    )
    check_setups(todo)

    from velocity._progress import make_progress
    from velocity.manifest import capture_manifest

    with executor:  # starts or joins Ray after the other refusals; stops what it started
        ensure_writable_dir(out_dir)
        workers = executor.default_parallel(len(todo)) if parallel is None else parallel
        repeats = max(spec.repeat for spec in runs) + 1
        atomic_write_json(
            out_dir / "plan.json",
            {
                "runs": [spec.to_json() for spec in runs],
                "parallel": workers,
                "backend": executor.name,
                "repeats": repeats,
                "rank_by": rank_by,
                "created_at": utc_now(),
            },
        )
        manifest = capture_manifest(command or sys.argv, config_path)
        if resume:
            manifest["previous"] = _previous_manifests(out_dir)
        atomic_write_json(out_dir / "manifest.json", manifest)
        if progress:
            skipped = f", {len(finished)} already done" if finished else ""
            print(
                f"sweep: {len(todo)} runs{skipped}, parallel {workers} ({executor.describe()}) "
                f"-> {out_dir}",
                flush=True,
            )
        display = make_progress(len(runs), enabled=progress, done=len(finished))
        tracker = Tracker(out_dir, runs, finished, display)
        tracker.write("running")
        try:
            with stop_on_signals(executor.cancel):
                state, error = executor.run(todo, out_dir, tracker, workers)
        except BaseException as exc:  # a bug or an interrupt outside the handlers: say so on disk
            tracker.write("failed", error=f"{type(exc).__name__}: {exc}", final=True)
            raise
        finally:
            display.close()
        wall_s = time.perf_counter() - clock
    tracker.write(state, error=error, final=True, elapsed_s=wall_s)
    comparison = None
    try:
        from velocity.report import render_all

        comparison = render_all(
            out_dir, wall_s=wall_s, parallel=workers, rank_by=rank_by
        ).comparison
    except Exception as exc:
        error = error or f"writing the comparison failed: {type(exc).__name__}: {exc}"
        tracker.write(state, error=error, final=True, elapsed_s=wall_s)
    return SweepResult(
        sweep_dir=out_dir,
        state=state,
        parallel=workers,
        started=started,
        wall_s=wall_s,
        runs=tracker.outcomes(),
        comparison=comparison,
        error=error,
        start_method=executor.start_method,
        backend=executor.name,
    )


# --------------------------------------------------------------------------- checks


def _check_names(runs: Sequence[RunSpec]) -> None:
    seen: set[str] = set()
    for spec in runs:
        if spec.name in seen:
            raise SpecError(f"duplicate run name {spec.name!r}: run names must be unique")
        seen.add(spec.name)


def _check_fresh(out_dir: Path) -> dict[str, dict[str, Any]]:
    if out_dir.exists() and not out_dir.is_dir():
        raise SpecError(f"output path {out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        hint = (
            f"pass --resume {out_dir} to finish that sweep"
            if (out_dir / "plan.json").exists()
            else "choose another --out"
        )
        raise SpecError(f"output directory {out_dir} is not empty; {hint}")
    return {}


def _previous_runs(out_dir: Path, runs: Sequence[RunSpec]) -> dict[str, dict[str, Any]]:
    """Summaries of the runs an earlier sweep in ``out_dir`` finished with the same spec."""
    if not (out_dir / "plan.json").is_file():
        raise SpecError(f"cannot resume {out_dir}: not a sweep directory (no plan.json)")
    try:
        status = read_json(out_dir / "status.json")
    except (OSError, ValueError):
        status = {}
    pid = status.get("pid")
    if status.get("state") == "running" and pid != os.getpid() and pid_alive(pid):
        raise SpecError(f"cannot resume {out_dir}: its sweep is still running (pid {pid})")
    done: dict[str, dict[str, Any]] = {}
    for spec in runs:
        run_dir = out_dir / spec.name
        try:
            config = read_json(run_dir / "config.json")
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise SpecError(f"cannot resume {out_dir}: run {spec.name!r}: {exc}") from None
        differs = _differences(config, spec)
        if differs:
            raise SpecError(
                f"cannot resume {out_dir}: run {spec.name!r} was run with a different "
                f"configuration ({', '.join(differs)} differ); start a new sweep instead"
            )
        try:
            summary = read_json(run_dir / "summary.json")
        except (OSError, ValueError):
            continue
        if isinstance(summary, dict) and summary.get("status") in FINISHED:
            done[spec.name] = summary
    return done


def _previous_manifests(out_dir: Path) -> list[dict[str, Any]]:
    """The manifests of the earlier sessions of a resumed sweep, oldest first."""
    try:
        old = read_json(out_dir / "manifest.json")
    except (OSError, ValueError):
        return []
    if not isinstance(old, dict):
        return []
    earlier = old.pop("previous", None)
    return [*(earlier if isinstance(earlier, list) else []), old]


def check_setups(runs: Sequence[RunSpec]) -> None:
    """Refuse runs that cannot start (strategy vs clients, dataset, model, partition,
    storage) before any work.

    Runs that differ only in name, attacks or repeat share a setup, so each
    distinct setup is checked once.
    """
    from velocity.server import check_spec

    seen: set[str] = set()
    for spec in runs:
        setup = json.dumps(
            spec.model_dump(mode="json", exclude={"name", "attacks", "repeat"}),
            sort_keys=True,
        )
        if setup in seen:
            continue
        seen.add(setup)
        try:
            check_spec(spec)
        except ValueError as exc:
            raise SpecError(f"run {spec.name!r}: {exc}") from None


def _differences(config: Any, spec: RunSpec) -> list[str]:
    planned = spec.to_json()
    try:
        recorded = RunSpec.model_validate(config).to_json()
    except ValueError:
        return ["config.json (unreadable)"]
    keys = sorted(set(planned) | set(recorded))
    return [k for k in keys if planned.get(k) != recorded.get(k)]


def ensure_writable_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and prove it writable, or undo what was created and refuse."""
    created: list[Path] = []
    parent = out_dir
    while not parent.exists() and parent != parent.parent:
        created.append(parent)
        parent = parent.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".velocity-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        for path in created:
            with suppress(OSError):
                path.rmdir()
        raise SpecError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
