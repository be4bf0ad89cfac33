"""Run a list of RunSpecs, one run directory each: :func:`run_sweep`.

This module is the public face of a sweep: :func:`run_sweep`, its
:class:`SweepResult`, and the refusals made before any work (:func:`check_setups`,
:func:`ensure_writable_dir`, duplicate names, a non-empty or changed output
directory). Where runs execute is an :class:`~velocity.engine.executors.Executor` chosen by
``backend``: ``"local"``, a process pool with its workers and crash recovery
(:mod:`velocity.engine.pool`), or ``"ray"``, one Ray task per run (:mod:`velocity.engine.ray`).
``status.json`` and :func:`read_status` live in :mod:`velocity.engine.status`. The names
tests and callers use are re-exported here.

The sweep directory follows ``docs/files.md``: ``plan.json`` and ``manifest.json``
first, ``status.json`` rewritten (atomically) whenever a run starts or ends, one
directory per run, and at the end the reports of :func:`velocity.report.render.render_all`
(``comparison.json``/``comparison.md``, the plots and ``report.html``).

One driver per sweep directory: :func:`run_sweep` holds the directory's lock
(:mod:`velocity.sweepdir.lock`, ``<dir>/.lock``) for its whole life — a fresh sweep from
the moment the directory is created, a resume before it reads anything — and a
second driver is refused (``SpecError``: ``sweep D is running (pid N)``). The lock
is the kernel's, so one left by a killed driver never blocks a resume.

A resume trusts only what it verifies (:func:`verify_finished_run`): a run is
kept when its summary, ``rounds.csv`` and checkpoint are complete, else rerun.

Failures stay local: a run that raises or whose worker dies is recorded as
failed and every other run finishes. SIGINT and SIGTERM stop the sweep cleanly:
pending runs are cancelled, the workers terminated, finished runs left intact,
``status.json`` says ``cancelled`` and the comparison covers what finished;
``resume=True`` later runs the rest. A full disk (any file that cannot be
written) stops the sweep as ``failed`` with the reason (``disk full (No space
left on device) while writing F``): the run that could not write is failed, the
others cancelled, and ``status.json`` records it (the lock file holds a little
disk space in reserve for that). The test-only environment hooks are described
in :mod:`velocity.engine.pool`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from velocity.engine.executors import (
    BACKENDS,
    ExecutionSettings,
    default_parallel,
    make_executor,
    stop_on_signals,
)
from velocity.engine.pool import (
    PINNED_ENV,
    START_METHOD_ENV,
)
from velocity.engine.status import (
    FinishedCheck,
    RunOutcome,
    Tracker,
    read_status,
    verify_finished_run,
    write_failure,
)
from velocity.errors import SpecError, format_validation_error
from velocity.spec import RankBy, RunSpec
from velocity.sweepdir import files, names
from velocity.sweepdir import lock as sweeplock
from velocity.sweepdir import queue as sweepqueue
from velocity.sweepdir.io import describe_write_error, remove_stray_temp_files, utc_now
from velocity.sweepdir.models import Plan

__all__ = [
    "BACKENDS",
    "PINNED_ENV",
    "START_METHOD_ENV",
    "FinishedCheck",
    "Planner",
    "RunOutcome",
    "SweepBusyError",
    "SweepResult",
    "check_setups",
    "default_parallel",
    "ensure_writable_dir",
    "read_status",
    "run_sweep",
    "verify_finished_run",
    "write_failure",
]


class SweepBusyError(SpecError):
    """Another live process drives the sweep directory (``sweep D is running (pid N)``)."""


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
    planner: Planner | None = None,
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
    directory and ``resume`` is false, when it cannot be written, when another
    process is driving it (``sweep D is running (pid N)``), when run names repeat,
    on resume when a finished run's ``config.json`` differs from its planned spec,
    when the backend is unknown or its package is missing, or when the Ray cluster
    cannot be reached. With ``resume``, runs whose files are complete
    (:func:`verify_finished_run`) are kept and skipped; every other run is rerun.

    Runs come in batches: when a batch is done, the runs queued into the directory by
    an extension (:mod:`velocity.sweepdir.queue`; a resume takes those a killed driver
    left) are added, else those ``planner`` asks for (the next repeat of a sweep run
    until decided, :mod:`velocity.engine.until`); each batch is written into
    ``plan.json`` before it starts, so a resume finishes it. The sweep ends when a
    batch brings neither.
    """
    started = time.time()
    clock = time.perf_counter()
    out_dir = Path(out_dir)
    runs = list(runs)
    if not runs:
        raise SpecError("the sweep has no runs")
    _check_names(runs)
    if parallel is not None and parallel < 1:
        raise SpecError(f"parallel must be >= 1, got {parallel}")
    with ExitStack() as ending, ExitStack() as held:  # ending: let go after the lock
        lock: sweeplock.SweepLock | None = None
        taken: list[Path] = []  # queued files whose runs join the plan
        if resume:  # lock before reading anything: another driver may be writing
            lock = held.enter_context(_lock_to_resume(out_dir))
            queued, taken = _take_queued(out_dir, runs)
            runs += queued
            _check_names(runs)
            finished, reruns = _previous_runs(out_dir, runs)
        else:
            finished, reruns = _check_fresh(out_dir), {}
        todo = [spec for spec in runs if spec.name not in finished]
        executor = make_executor(
            backend,
            ExecutionSettings(
                start_method=start_method, ray_address=ray_address, ray_gpus=ray_gpus
            ),
        )
        check_setups(todo)

        from velocity.engine.progress import make_progress

        with executor:  # starts or joins Ray after the other refusals; stops what it started
            created: list[Path] = []
            if lock is None:
                lock, created = _lock_fresh(out_dir)
                held.enter_context(lock)
            else:
                ensure_writable_dir(out_dir)
            workers = executor.default_parallel(len(todo)) if parallel is None else parallel
            try:
                _reserve(lock, len(runs))
                _write_plan(
                    out_dir,
                    Plan.of(
                        runs,
                        parallel=workers,
                        backend=executor.name,  # type: ignore[arg-type]
                        rank_by=rank_by,
                        created_at=utc_now(),
                        **(planner.plan_fields() if planner else {}),
                    ),
                )
                _write_manifest(out_dir, command, config_path, resume)
                sweepqueue.discard(taken)
                if resume:  # stale until the end writes it again (the MCP server waits)
                    files.discard(out_dir, names.COMPARISON)
            except SpecError:
                if not resume:  # a refused fresh sweep leaves nothing behind
                    _undo_fresh(out_dir, lock, created)
                raise
            if progress:
                skipped = f", {len(finished)} already done" if finished else ""
                print(
                    f"sweep: {len(todo)} runs{skipped}, parallel {workers} "
                    f"({executor.describe()}) -> {out_dir}",
                    flush=True,
                )
                for name, problem in reruns.items():
                    print(f"resume: rerunning {name}: {problem}", flush=True)
            display = make_progress(len(runs), enabled=progress, done=len(finished))
            tracker = Tracker(out_dir, runs, finished, display)
            tracker.on_write_error = executor.abort
            tracker.write("running")
            try:
                with stop_on_signals(executor.cancel):
                    state, error = executor.run(todo, out_dir, tracker, workers)
                    while state == "done" and not executor.cancel.is_set():
                        batch = _next_batch(out_dir, runs, planner, progress, ending)
                        if not batch:
                            break
                        runs += batch
                        check_setups(batch)
                        size = executor.default_parallel(len(batch))
                        batch_workers = size if parallel is None else parallel
                        workers = max(workers, batch_workers)
                        tracker.add(batch)
                        display.add_runs(len(batch))
                        tracker.write("running")
                        state, error = executor.run(batch, out_dir, tracker, batch_workers)
            except BaseException as exc:  # a bug or an interrupt outside the handlers
                lock.free_reserve()
                tracker.write("failed", error=f"{type(exc).__name__}: {exc}", final=True)
                raise
            finally:
                display.close()
            wall_s = time.perf_counter() - clock
        remove_stray_temp_files(out_dir)  # of workers killed in mid-write; all are gone now
        if tracker.write_error is not None and state != "failed":
            state, error = "failed", tracker.write_error
        if state == "failed":
            lock.free_reserve()  # the space to record how the sweep ended
        if not tracker.write(state, error=error, final=True, elapsed_s=wall_s):
            lock.free_reserve()
            state, error = "failed", error or tracker.write_error
            tracker.write(state, error=error, final=True, elapsed_s=wall_s)
        # how it ended is on disk: the reports may use the space, all but enough to
        # record that they could not be written
        lock.shrink_reserve(files.size(out_dir, names.STATUS) + 16 * 1024)
        comparison = None
        try:
            from velocity.report.render import render_all

            comparison = render_all(
                out_dir, wall_s=wall_s, parallel=workers, rank_by=rank_by
            ).comparison
        except Exception as exc:
            detail = (
                describe_write_error(exc)
                if isinstance(exc, OSError)
                else f"{type(exc).__name__}: {exc}"
            )
            note = f"writing the comparison failed: {detail}"
            if isinstance(exc, OSError):
                note += f" (velocity compare {out_dir} writes it again)"
            error = f"{error}; {note}" if error else note
            remove_stray_temp_files(out_dir, recursive=False)
            lock.free_reserve()
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


class Planner(Protocol):
    """What :func:`run_sweep` asks for more runs once a batch is done (until decided)."""

    def more(self, out_dir: Path, runs: Sequence[RunSpec]) -> list[RunSpec]:
        """The next batch, given the runs planned so far (all ended); [] when it is over."""
        ...

    def plan_fields(self) -> dict[str, Any]:
        """Its fields of ``plan.json`` (``until``, ``max_repeats``, ``budget``, ``decision``)."""
        ...


def _next_batch(
    out_dir: Path,
    runs: list[RunSpec],
    planner: Planner | None,
    progress: bool,
    ending: ExitStack,
) -> list[RunSpec]:
    """The runs queued into the sweep, else the planner's; written into ``plan.json``.

    When there are none, the queue's lock is taken and kept in ``ending`` (released
    after the sweep's own lock): an extension started from now on waits for this
    driver to end, then runs itself.
    """
    while True:
        batch, taken = _take_queued(out_dir, runs)
        if batch and progress:
            print(f"extend: {len(batch)} queued runs join the sweep", flush=True)
        if not batch and planner is not None:
            batch = planner.more(out_dir, runs)
        if batch:
            _check_names([*runs, *batch])
            _rewrite_plan(out_dir, [*runs, *batch], planner)
            sweepqueue.discard(taken)
            return batch
        closing = sweepqueue.QueueLock(out_dir)
        if sweepqueue.pending(out_dir):
            closing.release()
            continue
        ending.callback(closing.release)
        if planner is not None:  # the final decision record
            _rewrite_plan(out_dir, runs, planner)
        return []


def _rewrite_plan(out_dir: Path, runs: Sequence[RunSpec], planner: Planner | None) -> None:
    """``plan.json`` with ``runs`` (and the planner's fields), its other settings kept."""
    plan = files.read_plan_settings(out_dir)
    _write_plan(
        out_dir,
        Plan.of(
            runs,
            parallel=plan.parallel if plan and plan.parallel else 1,
            backend=plan.backend if plan else None,
            rank_by=plan.rank_by if plan else "accuracy",
            created_at=utc_now(),
            **(planner.plan_fields() if planner else {}),
        ),
    )


def _take_queued(out_dir: Path, runs: Sequence[RunSpec]) -> tuple[list[RunSpec], list[Path]]:
    """The queued runs not yet planned, and the queued files they came from."""
    known = {spec.name for spec in runs}
    batch: list[RunSpec] = []
    paths: list[Path] = []
    for path, specs in sweepqueue.pending(out_dir):
        paths.append(path)
        for spec in specs:
            if spec.name not in known:
                known.add(spec.name)
                batch.append(spec)
    return batch, paths


def _write_plan(out_dir: Path, plan: Plan) -> None:
    """Write ``plan.json``; a failed write is a ``SpecError``."""
    try:
        files.write_plan(out_dir, plan)
    except OSError as exc:
        reason = describe_write_error(exc)
        raise SpecError(f"cannot start the sweep in {out_dir}: {reason}") from None


def _write_manifest(
    out_dir: Path, command: list[str] | None, config_path: Path | None, resume: bool
) -> None:
    """Write ``manifest.json`` (a resume keeps the earlier ones); a failed write is a
    ``SpecError``."""
    from velocity.engine.manifest import capture_manifest

    try:
        manifest = capture_manifest(command or sys.argv, config_path)
        if resume:
            manifest["previous"] = _previous_manifests(out_dir)
        files.write_manifest(out_dir, manifest)
    except OSError as exc:
        reason = describe_write_error(exc)
        raise SpecError(f"cannot start the sweep in {out_dir}: {reason}") from None


def _reserve(lock: sweeplock.SweepLock, num_runs: int) -> None:
    """Hold back the disk space to record how the sweep ends (its final status.json).

    Refuses (``SpecError``) to start on a disk too full for it: a sweep that could
    not even say that it failed would leave ``status.json`` saying "running".
    """
    try:
        lock.reserve(min(64 * 1024 + 1024 * num_runs, 8 * 1024 * 1024))
    except OSError as exc:
        reason = describe_write_error(exc)
        raise SpecError(f"cannot start the sweep in {lock.sweep_dir}: {reason}") from None


# --------------------------------------------------------------------------- the lock


def _acquire(out_dir: Path) -> sweeplock.SweepLock:
    """The sweep directory's lock, or a one-line ``SpecError``."""
    try:
        return sweeplock.acquire(out_dir)
    except sweeplock.SweepLockedError as exc:
        raise SweepBusyError(str(exc)) from None
    except OSError as exc:
        if not exc.filename:
            exc.filename = str(out_dir / names.LOCK)
        raise SpecError(f"cannot lock {out_dir}: {describe_write_error(exc)}") from None


def _lock_to_resume(out_dir: Path) -> sweeplock.SweepLock:
    """Lock an existing sweep directory; refuse one that is not a sweep directory."""
    if not out_dir.is_dir():
        raise SpecError(f"cannot resume {out_dir}: not a sweep directory (no {names.PLAN})")
    had_lock_file = os.path.lexists(out_dir / names.LOCK)
    lock = _acquire(out_dir)
    plan = out_dir / names.PLAN
    if not plan.is_file():
        if had_lock_file:
            lock.release()
        else:
            lock.remove()  # leave the directory as it was
        what = f"{names.PLAN} is not a file" if os.path.lexists(plan) else f"no {names.PLAN}"
        raise SpecError(f"cannot resume {out_dir}: not a sweep directory ({what})")
    return lock


def _lock_fresh(out_dir: Path) -> tuple[sweeplock.SweepLock, list[Path]]:
    """Create ``out_dir`` if needed, lock it, and check again (now locked) that it is empty.

    Returns the lock and the directories created. Another driver may have started
    in the same directory since :func:`_check_fresh`; whatever this refuses, it
    undoes what it created (the directories, the lock file).
    """
    created = _make_writable_dir(out_dir)
    try:
        lock = _acquire(out_dir)
    except SpecError:
        if created and sweeplock.holder(out_dir) is None:  # a lock file it could not fill
            with suppress(OSError):
                (out_dir / names.LOCK).unlink()
        _remove_dirs(created)
        raise
    try:
        _check_fresh(out_dir, locked=True)
    except SpecError:
        if created:
            lock.remove()
            _remove_dirs(created)
        else:
            lock.release()
        raise
    return lock, created


def _undo_fresh(out_dir: Path, lock: sweeplock.SweepLock, created: Sequence[Path]) -> None:
    """Remove what a fresh sweep wrote before it could start (its plan, manifest, lock)."""
    files.discard(out_dir, names.PLAN, names.MANIFEST)
    remove_stray_temp_files(out_dir, recursive=False)
    lock.remove()
    _remove_dirs(created)


# --------------------------------------------------------------------------- checks


def _check_names(runs: Sequence[RunSpec]) -> None:
    """Refuse duplicate run names and names of the sweep's own files (each run is a
    directory beside them)."""
    seen: set[str] = set()
    for spec in runs:
        if spec.name in seen:
            raise SpecError(f"duplicate run name {spec.name!r}: run names must be unique")
        seen.add(spec.name)
    try:
        names.check_run_names(seen)
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def _check_fresh(out_dir: Path, *, locked: bool = False) -> dict[str, dict[str, Any]]:
    """Refuse a fresh sweep into a path that is not a directory or holds anything.

    A ``.lock`` alone (left by a sweep refused, or killed, before it wrote anything)
    does not count, unless a live driver holds it (``locked``: this process does);
    nor do a launcher's ``experiment.json`` and ``sweep.log`` (``names.LAUNCH_FILES``:
    the MCP server starts a sweep into the directory it made for it).
    """
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise SpecError(f"output path {out_dir} exists and is not a directory")
    if not out_dir.is_dir():
        return {}
    pid = None if locked else sweeplock.holder(out_dir)
    if pid is not None:
        raise SweepBusyError(str(sweeplock.SweepLockedError(out_dir, pid or None)))
    try:
        entries = [p for p in out_dir.iterdir() if p.name not in names.LAUNCH_FILES]
    except OSError as exc:
        raise SpecError(f"cannot read {out_dir}: {exc.strerror or exc}") from None
    if entries:
        hint = (
            f"pass --resume {out_dir} to finish that sweep"
            if (out_dir / names.PLAN).exists()
            else "choose another --out"
        )
        raise SpecError(f"output directory {out_dir} is not empty; {hint}")
    return {}


def _previous_runs(
    out_dir: Path, runs: Sequence[RunSpec]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The runs an earlier sweep in ``out_dir`` finished, complete, with the same spec.

    Returns ``(summaries of the runs kept, {run: why it is rerun})``; the second
    names only runs whose files claimed more than they hold (a run that simply did
    not finish is rerun without a word). Called with the sweep's lock held: no
    other driver, and no worker of a dead one, writes here.
    """
    for path in files.not_files(out_dir, names.REWRITTEN):  # what a sweep rewrites
        raise SpecError(f"cannot resume {out_dir}: {path} is not a file; remove it first")
    remove_stray_temp_files(out_dir)  # a killed driver's or worker's half-writes
    done: dict[str, dict[str, Any]] = {}
    reruns: dict[str, str] = {}
    for spec in runs:
        run_dir = out_dir / spec.name
        if not os.path.lexists(run_dir):
            continue
        if not run_dir.is_dir():
            reruns[spec.name] = f"{run_dir} is not a directory"
            continue
        try:
            config = files.read_config_object(run_dir)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            reruns[spec.name] = f"{names.CONFIG} is unreadable ({_oneline(exc)})"
            continue
        try:
            recorded = RunSpec.model_validate(config)
        except ValueError as exc:  # written by another version of velocity, or edited
            first = (
                format_validation_error(exc) if isinstance(exc, ValidationError) else _oneline(exc)
            )
            raise SpecError(
                f"cannot resume {out_dir}: run {spec.name!r}: {run_dir / names.CONFIG} does "
                f"not validate ({first}); start a new sweep instead"
            ) from None
        differs = _differences(recorded, spec)
        if differs:
            raise SpecError(
                f"cannot resume {out_dir}: run {spec.name!r} was run with a different "
                f"configuration ({', '.join(differs)} differ); start a new sweep instead"
            )
        check = verify_finished_run(run_dir, spec)
        if check.summary is not None:
            done[spec.name] = check.summary
        elif check.problem is not None:
            reruns[spec.name] = check.problem
    return done, reruns


def _oneline(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _previous_manifests(out_dir: Path) -> list[dict[str, Any]]:
    """The manifests of the earlier sessions of a resumed sweep, oldest first."""
    old = files.read_manifest(out_dir)
    if not old:
        return []
    earlier = old.pop("previous", None)
    return [*(earlier if isinstance(earlier, list) else []), old]


def check_setups(runs: Sequence[RunSpec]) -> None:
    """Refuse runs that cannot start or finish (strategy vs clients, dataset, model,
    partition, storage, memory, attacks) before any work.

    Runs that differ only in name, attacks or repeat share a setup: each distinct setup
    is loaded and checked once, and every run's attacks are checked against it.
    """
    from velocity.sim.server import check_run_attacks, check_spec

    classes: dict[str, int] = {}
    for spec in runs:
        setup = json.dumps(
            spec.model_dump(mode="json", exclude={"name", "attacks", "repeat"}),
            sort_keys=True,
        )
        try:
            if setup in classes:
                check_run_attacks(spec, classes[setup])
            else:
                classes[setup] = check_spec(spec)
        except ValueError as exc:
            raise SpecError(f"run {spec.name!r}: {exc}") from None


def _differences(recorded: RunSpec, spec: RunSpec) -> list[str]:
    planned, written = spec.to_json(), recorded.to_json()
    keys = sorted(set(planned) | set(written))
    return [k for k in keys if planned.get(k) != written.get(k)]


def ensure_writable_dir(out_dir: Path) -> None:
    """Create ``out_dir`` and prove it writable, or undo what was created and refuse."""
    _make_writable_dir(out_dir)


def _make_writable_dir(out_dir: Path) -> list[Path]:
    """:func:`ensure_writable_dir`; returns the directories it created, deepest first."""
    created: list[Path] = []
    parent = out_dir
    while not os.path.lexists(parent) and parent != parent.parent:
        created.append(parent)
        parent = parent.parent
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".velocity-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        _remove_dirs(created)
        raise SpecError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
    return created


def _remove_dirs(created: Sequence[Path]) -> None:
    for path in created:
        with suppress(OSError):
            path.rmdir()
