"""Run a list of RunSpecs in a process pool, one run directory each: :func:`run_sweep`.

Each run is one task of a :class:`~concurrent.futures.ProcessPoolExecutor`; the
worker calls :func:`velocity.server.run_one` with its BLAS and Rust thread pools
pinned to one thread, so P workers use P cores. The sweep directory follows
``docs/files.md``: ``plan.json`` and ``manifest.json`` first, ``status.json``
rewritten (atomically) whenever a run starts or ends, one directory per run, and
``comparison.json``/``comparison.md`` at the end.

Failures stay local. A run whose ``run_one`` raises, or whose worker process dies
(killed, out of memory), is recorded as failed, with a ``summary.json`` saying
why; the pool is rebuilt and every other run finishes. SIGINT and SIGTERM stop
the sweep cleanly: pending runs are cancelled, the workers terminated, finished
runs left intact, ``status.json`` says ``cancelled`` and the comparison covers
what finished; ``resume=True`` later runs the rest.

Test-only hooks (read by the worker; never set them in real use):
``VELOCITY_TEST_CRASH_RUN=<run name>`` makes that run's worker SIGKILL itself after
round 1; ``VELOCITY_TEST_RAISE_RUN=<run name>`` makes that run raise before it
starts; ``VELOCITY_TEST_SLOW_RUN=<run name>:<seconds>`` sleeps after each round.
``VELOCITY_MP_START=fork|forkserver|spawn`` overrides the process start method.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import resource
import shutil
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from velocity.errors import SpecError
from velocity.runio import atomic_write_json, read_json
from velocity.spec import RunSpec

TEST_CRASH_ENV = "VELOCITY_TEST_CRASH_RUN"
TEST_RAISE_ENV = "VELOCITY_TEST_RAISE_RUN"
TEST_SLOW_ENV = "VELOCITY_TEST_SLOW_RUN"
START_METHOD_ENV = "VELOCITY_MP_START"
PINNED_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "RAYON_NUM_THREADS",
)
_MAX_STRIKES = 2  # a run whose worker died this many times (cause unknown) is failed


@dataclass
class RunOutcome:
    """How one run of a sweep ended, and what its worker measured."""

    name: str
    state: str  # "done" | "failed" | "cancelled" | "pending"
    error: str | None = None
    summary: dict[str, Any] | None = None
    skipped: bool = False  # finished by an earlier sweep (resume)
    worker: dict[str, Any] | None = None  # pid, started, first_round (epoch s), peak_rss_mb


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

    @property
    def failed(self) -> list[str]:
        """Names of the runs that failed."""
        return [name for name, run in self.runs.items() if run.state == "failed"]

    @property
    def exit_code(self) -> int:
        """0 all done, 1 some run failed (or the sweep did), 130 cancelled."""
        if self.state == "cancelled":
            return 130
        return 1 if self.state != "done" or self.failed or self.comparison is None else 0


# --------------------------------------------------------------------------- worker side

_events: Any = None
_limiter: Any = None


def _init_worker(events: Any, environ: dict[str, str]) -> None:
    """Pool initializer: the parent's environment, pinned thread pools, Ctrl-C left to the parent.

    A forkserver started earlier holds an older environment; the parent's current
    one is applied, so a worker sees the same settings whatever the start method.
    """
    global _events, _limiter
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(environ)
    for var in PINNED_ENV:
        os.environ[var] = "1"
    from threadpoolctl import threadpool_limits

    _limiter = threadpool_limits(limits=1)
    events.cancel_join_thread()  # a worker never blocks at exit on a queue a crash left dirty
    _events = events


def _emit(*event: Any) -> None:
    if _events is not None:
        _events.put(event)


def _run_in_worker(spec_json: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Execute one run (in a pool worker); returns its summary and the worker's numbers."""
    from velocity.server import run_one

    spec = RunSpec.model_validate(spec_json)
    path = Path(run_dir)
    if path.exists():  # a run restarted after a crash or on resume starts clean
        shutil.rmtree(path)
    started = time.time()
    _emit("start", spec.name, os.getpid(), started)
    first_round: list[float] = []
    crash, delay = _test_hooks(spec.name)

    def on_round(rnd: int, rounds: int) -> None:
        now = time.time()
        if not first_round:
            first_round.append(now)
        _emit("round", spec.name, rnd, rounds, now)
        if delay:
            time.sleep(delay)
        if crash and rnd == 1:
            time.sleep(0.3)  # let the events reach the parent, as they would mid-run
            os.kill(os.getpid(), signal.SIGKILL)

    summary = run_one(spec, path, num_threads=1, on_round=on_round)
    return {
        "summary": summary,
        "worker": {
            "pid": os.getpid(),
            "started": started,
            "first_round": first_round[0] if first_round else None,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        },
    }


def _test_hooks(name: str) -> tuple[bool, float]:
    """The test-only hooks (see the module docstring) that apply to run ``name``."""
    if os.environ.get(TEST_RAISE_ENV) == name:
        raise RuntimeError(f"test hook {TEST_RAISE_ENV} made run {name!r} fail")
    slow_name, _, seconds = os.environ.get(TEST_SLOW_ENV, "").rpartition(":")
    delay = float(seconds) if slow_name == name and seconds else 0.0
    return os.environ.get(TEST_CRASH_ENV) == name, delay


# --------------------------------------------------------------------------- parent side


def default_parallel(num_runs: int) -> int:
    """min(cpu count, number of runs), at least 1."""
    return max(1, min(os.cpu_count() or 1, num_runs))


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
) -> SweepResult:
    """Run every spec into ``out_dir/<spec.name>/`` and write the sweep's files.

    ``start_method`` is how worker processes start: ``"fork"`` where the platform
    has it (default: milliseconds; the Rust core keeps its thread pools per
    process, so a forked worker never waits on its parent's threads), else
    ``"forkserver"`` or ``"spawn"``. ``$VELOCITY_MP_START`` overrides it. With
    forkserver or spawn, a script calling this must do so under
    ``if __name__ == "__main__":`` (the children re-import it).

    Refuses (``SpecError``, nothing written) when ``out_dir`` is a non-empty
    directory and ``resume`` is false, when it cannot be written, when run names
    repeat, or, on resume, when a finished run's ``config.json`` differs from its
    planned spec. With ``resume``, runs already done are kept and skipped.
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
    workers = default_parallel(len(todo)) if parallel is None else parallel
    if workers < 1:
        raise SpecError(f"parallel must be >= 1, got {workers}")
    check_setups(todo)
    ensure_writable_dir(out_dir)

    from velocity._progress import make_progress
    from velocity.manifest import capture_manifest

    repeats = max(spec.repeat for spec in runs) + 1
    atomic_write_json(
        out_dir / "plan.json",
        {
            "runs": [spec.to_json() for spec in runs],
            "parallel": workers,
            "repeats": repeats,
            "created_at": _now(),
        },
    )
    manifest = capture_manifest(command or sys.argv, config_path)
    if resume:
        manifest["previous"] = _previous_manifests(out_dir)
    atomic_write_json(out_dir / "manifest.json", manifest)
    if progress:
        skipped = f", {len(finished)} already done" if finished else ""
        print(f"sweep: {len(todo)} runs{skipped}, parallel {workers} -> {out_dir}", flush=True)
    display = make_progress(len(runs), enabled=progress, done=len(finished))
    tracker = _Tracker(out_dir, runs, finished, display)
    tracker.write("running")
    runner = _PoolRunner(out_dir, tracker, workers, start_method)
    try:
        with _stop_on_signals(runner.cancel):
            state, error = runner.run(todo)
    except BaseException as exc:  # a bug or an interrupt outside the handlers: say so on disk
        tracker.write("failed", error=f"{type(exc).__name__}: {exc}", final=True)
        raise
    finally:
        display.close()
    wall_s = time.perf_counter() - clock
    tracker.write(state, error=error, final=True, elapsed_s=wall_s)
    comparison = None
    try:
        from velocity.report import write_comparison

        comparison = write_comparison(out_dir, wall_s=wall_s, parallel=workers)
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
        start_method=runner.start_method,
    )


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
    status["stale"] = status.get("state") == "running" and not _pid_alive(status.get("pid"))
    return status


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
    if status.get("state") == "running" and pid != os.getpid() and _pid_alive(pid):
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
        if isinstance(summary, dict) and summary.get("status") == "done":
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


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM set ``stop`` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# --------------------------------------------------------------------------- state


class _Tracker:
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
            name: RunOutcome(name, "done", summary=finished[name], skipped=True)
            if name in finished
            else RunOutcome(name, "pending")
            for name in self.specs
        }
        self.pids: dict[str, int] = {}
        self.started_at = _now()
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
            name, state, describe(summary) if state == "done" else (error or "")
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
                "updated_at": _now(),
                "finished_at": _now() if final else None,
                "elapsed_s": elapsed_s
                if elapsed_s is not None
                else time.perf_counter() - self.clock,
                "total_runs": len(self.runs),
                "done_runs": counts["done"],
                "failed_runs": counts["failed"],
                "runs": {
                    name: {"state": run.state, "error": run.error}
                    for name, run in self.runs.items()
                },
                "error": error,
            }
            atomic_write_json(self.out_dir / "status.json", status)


# --------------------------------------------------------------------------- the pool


class _PoolRunner:
    """Submits runs to a process pool; rebuilds the pool when a worker dies."""

    def __init__(
        self, out_dir: Path, tracker: _Tracker, workers: int, start_method: str | None
    ) -> None:
        self.out_dir = out_dir
        self.requested = start_method
        self.tracker = tracker
        self.workers = workers
        self.cancel = threading.Event()
        self.start_method = ""
        self._procs: dict[int, Any] = {}  # pid -> multiprocessing Process (exit codes)

    def run(self, todo: list[RunSpec]) -> tuple[str, str | None]:
        """Run ``todo``; returns the sweep's final state and error."""
        pending = list(todo)
        strikes: Counter[str] = Counter()
        breaks = 0
        while pending:
            if self.cancel.is_set():
                return self._cancelled(pending)
            broken, pending = self._one_pool(pending)
            if self.cancel.is_set():
                return self._cancelled(pending)
            if not broken:
                continue
            breaks += 1
            self._blame(broken, strikes)
            pending = [  # the interrupted runs first, then those not started
                spec for spec in broken + pending if self.tracker.state_of(spec.name) == "pending"
            ]
            if breaks > len(todo) + 2:
                error = "worker processes keep dying before any run starts"
                for spec in pending:
                    self._fail(spec, error)
                return "failed", error
        return "done", None

    def _context(self) -> Any:
        available = multiprocessing.get_all_start_methods()
        method = os.environ.get(START_METHOD_ENV) or self.requested or "fork"
        if method == "fork" and threading.active_count() > 1:
            method = "forkserver"  # forking a multi-threaded parent can deadlock the child
        if method not in available:
            method = "forkserver" if "forkserver" in available else "spawn"
        ctx = multiprocessing.get_context(method)
        if method == "fork":
            import velocity.server  # noqa: F401 - forked workers inherit it, imported once
        if method == "forkserver":
            ctx.set_forkserver_preload(["velocity.sweep", "velocity.server"])
        self.start_method = self.start_method or method
        return ctx

    def _one_pool(self, specs: list[RunSpec]) -> tuple[list[RunSpec], list[RunSpec]]:
        """Run ``specs`` in one pool; returns (runs hit by a pool break, runs not submitted)."""
        ctx = self._context()
        events = ctx.Queue()
        stop = threading.Event()
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(specs)),
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(events, dict(os.environ)),
        )
        futures: dict[Future[dict[str, Any]], RunSpec] = {}
        listener = threading.Thread(target=self._listen, args=(events, stop, pool), daemon=True)
        try:
            for spec in specs:
                futures[
                    pool.submit(_run_in_worker, spec.to_json(), str(self.out_dir / spec.name))
                ] = spec
            listener.start()
            broken: list[RunSpec] = []
            while futures and not self.cancel.is_set():
                done, _ = wait(futures, timeout=0.1, return_when=FIRST_COMPLETED)
                for future in done:
                    spec = futures.pop(future)
                    if self._collect(future, spec):
                        broken.append(spec)
                if broken:  # every other future fails at once; gather them
                    wait(futures, timeout=30)
                    for future, spec in list(futures.items()):
                        if future.done():
                            futures.pop(future)
                            if self._collect(future, spec):
                                broken.append(spec)
                    break
            if self.cancel.is_set():
                self._terminate(pool)
                return [], list(futures.values()) + broken
            return broken, list(futures.values())
        finally:
            self._listen_stop(stop, listener)
            pool.shutdown(wait=not self.cancel.is_set(), cancel_futures=True)

    def _collect(self, future: Future[dict[str, Any]], spec: RunSpec) -> bool:
        """Record a finished future; True when it failed because the pool broke."""
        try:
            result = future.result()
        except BrokenProcessPool:
            return True
        except Exception as exc:
            self._fail(spec, f"{type(exc).__name__}: {exc}")
            return False
        summary = result["summary"]
        state = "done" if summary.get("status") == "done" else "failed"
        self.tracker.finish(
            spec.name, state, error=summary.get("error"), summary=summary, worker=result["worker"]
        )
        return False

    def _blame(self, broken: list[RunSpec], strikes: Counter[str]) -> None:
        """After a pool break: fail the run(s) whose worker died; requeue the others."""
        running = [spec for spec in broken if spec.name in self.tracker.pids]
        culprits = []
        for spec in running:
            proc = self._procs.get(self.tracker.pids[spec.name])
            code = _exit_code(proc)
            if code is not None and code not in (0, -signal.SIGTERM):
                culprits.append((spec, code))
        for spec, code in culprits:
            self._fail(spec, f"worker process died ({_describe_exit(code)}) during the run")
        if not culprits:  # cause unknown: whoever was running takes a strike
            for spec in running:
                strikes[spec.name] += 1
                if strikes[spec.name] >= _MAX_STRIKES:
                    self._fail(
                        spec, f"worker process died during the run ({strikes[spec.name]} times)"
                    )
        for spec in broken:
            if self.tracker.state_of(spec.name) == "running":
                self.tracker.requeue(spec.name)

    def _fail(self, spec: RunSpec, error: str) -> None:
        summary = write_failure(spec, self.out_dir / spec.name, error)
        self.tracker.finish(spec.name, "failed", error=error, summary=summary)

    def _cancelled(self, specs: list[RunSpec]) -> tuple[str, str | None]:
        with self.tracker.lock:
            for run in self.tracker.runs.values():
                if run.state in ("pending", "running"):
                    run.state = "cancelled"
        return "cancelled", None

    def _listen(self, events: Any, stop: threading.Event, pool: ProcessPoolExecutor) -> None:
        while not stop.is_set():
            try:
                event = events.get(timeout=0.05)
            except queue.Empty:
                continue
            except (EOFError, OSError, ValueError):
                return
            if event[0] == "start":
                proc = getattr(pool, "_processes", {}).get(event[2])
                if proc is not None:
                    self._procs[event[2]] = proc
            self.tracker.event(event)

    @staticmethod
    def _listen_stop(stop: threading.Event, listener: threading.Thread) -> None:
        stop.set()
        if listener.is_alive():
            listener.join(timeout=1.0)  # a crash can leave the queue stuck: don't wait forever

    def _terminate(self, pool: ProcessPoolExecutor) -> None:
        procs = list(getattr(pool, "_processes", {}).values()) + list(self._procs.values())
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout=2.0)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=1.0)


def _exit_code(proc: Any) -> int | None:
    if proc is None:
        return None
    proc.join(timeout=2.0)
    return proc.exitcode


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


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
    now = _now()
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
