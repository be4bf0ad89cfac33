"""The ``local`` backend: a process pool, its worker setup, the worker function, crash recovery.

Each run is one task of a :class:`~concurrent.futures.ProcessPoolExecutor`; the
worker calls :func:`velocity.server.run_one` (through :func:`execute_run`, which the
``ray`` backend shares) with its BLAS and Rust thread pools pinned to one thread,
so P workers use P cores. The worker function lives here, in an importable module,
because multiprocessing pickles it by module path. :class:`PoolRunner` is this
backend's :class:`~velocity.executors.Executor`.

Failures stay local. A run whose ``run_one`` raises, or whose worker process dies
(killed, out of memory), is recorded as failed, with a ``summary.json`` saying
why; the pool is rebuilt and every other run finishes. SIGINT and SIGTERM stop
the sweep cleanly (:func:`~velocity.executors.stop_on_signals`): pending runs are
cancelled, the workers terminated, finished runs left intact.

Test-only hooks (read by the worker; never set them in real use):
``VELOCITY_TEST_CRASH_RUN=<run name>`` makes that run's worker SIGKILL itself after
round 1; ``VELOCITY_TEST_RAISE_RUN=<run name>`` makes that run raise before it
starts; ``VELOCITY_TEST_SLOW_RUN=<run name>:<seconds>`` sleeps after each round.
``VELOCITY_MP_START=fork|forkserver|spawn`` overrides the process start method.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import resource
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, ClassVar

from velocity.executors import ExecutionSettings, Executor
from velocity.spec import RunSpec

TEST_CRASH_ENV = "VELOCITY_TEST_CRASH_RUN"
TEST_RAISE_ENV = "VELOCITY_TEST_RAISE_RUN"
TEST_SLOW_ENV = "VELOCITY_TEST_SLOW_RUN"
TEST_HOOK_ENV = (TEST_CRASH_ENV, TEST_RAISE_ENV, TEST_SLOW_ENV)
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
    return execute_run(RunSpec.model_validate(spec_json), Path(run_dir), _emit)


def execute_run(spec: RunSpec, path: Path, emit: Callable[..., None]) -> dict[str, Any]:
    """Run ``spec`` into ``path`` in this (worker) process, emitting its events.

    ``emit("start", name, pid, t)`` first, then ``emit("round", name, r, R, t)``
    after each round; returns ``{"summary": ..., "worker": {pid, started,
    first_round, peak_rss_mb}}``. Applies the test-only hooks (module docstring).
    """
    from velocity.server import run_one

    if path.exists():  # a run restarted after a crash or on resume starts clean
        shutil.rmtree(path)
    started = time.time()
    emit("start", spec.name, os.getpid(), started)
    first_round: list[float] = []
    crash, delay = _test_hooks(spec.name)

    def on_round(rnd: int, rounds: int) -> None:
        now = time.time()
        if not first_round:
            first_round.append(now)
        emit("round", spec.name, rnd, rounds, now)
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


# --------------------------------------------------------------------------- the pool


class PoolRunner(Executor):
    """The ``local`` backend: submits runs to a process pool; rebuilds it when a worker dies."""

    name: ClassVar[str] = "local"

    def __init__(self, settings: ExecutionSettings) -> None:
        super().__init__(settings)
        self.requested = settings.start_method
        self._procs: dict[int, Any] = {}  # pid -> multiprocessing Process (exit codes)

    def _execute(self, todo: list[RunSpec]) -> tuple[str, str | None]:
        pending = list(todo)
        strikes: Counter[str] = Counter()
        breaks = 0
        while pending:
            if self.cancel.is_set():
                return self.cancelled()
            broken, pending = self._one_pool(pending)
            if self.cancel.is_set():
                return self.cancelled()
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
                    self.fail(spec, error)
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
            ctx.set_forkserver_preload(["velocity._pool", "velocity.server"])
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
            self.fail(spec, f"{type(exc).__name__}: {exc}")
            return False
        self.finished(spec, result)
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
            self.fail(spec, f"worker process died ({_describe_exit(code)}) during the run")
        if not culprits:  # cause unknown: whoever was running takes a strike
            for spec in running:
                strikes[spec.name] += 1
                if strikes[spec.name] >= _MAX_STRIKES:
                    self.fail(
                        spec, f"worker process died during the run ({strikes[spec.name]} times)"
                    )
        for spec in broken:
            if self.tracker.state_of(spec.name) == "running":
                self.tracker.requeue(spec.name)

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
