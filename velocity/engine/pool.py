"""The ``local`` backend: a process pool, its worker setup, the worker function, crash recovery.

Each run is one task of a :class:`~concurrent.futures.ProcessPoolExecutor`; the
worker calls :func:`velocity.sim.server.run_one` (through :func:`execute_run`, which the
``ray`` backend shares) with its BLAS and Rust thread pools pinned to one thread,
so P workers use P cores. The worker function lives here, in an importable module,
because multiprocessing pickles it by module path. :class:`PoolRunner` is this
backend's :class:`~velocity.engine.executors.Executor`.

Failures stay local. A run whose ``run_one`` raises, or whose worker process dies
(killed, out of memory), is recorded as failed, with a ``summary.json`` saying
why; the pool is rebuilt and every other run finishes. SIGINT and SIGTERM stop
the sweep cleanly (:func:`~velocity.engine.executors.stop_on_signals`): pending runs are
cancelled, the workers terminated, finished runs left intact. A run that cannot
write its files (a full disk) is failed with that reason and stops the sweep.

Workers never outlive their driver (the process running the sweep). A worker
asks the kernel to SIGKILL it when its parent dies (``prctl(PR_SET_PDEATHSIG)``
on Linux; with ``forkserver`` the parent is the fork server, which exits with the
driver once the workers let go of its keep-alive pipe), and checks that the
driver is alive (known by pid and start time, so a reused pid does not pass)
right after it starts (the parent may have died before the ``prctl``), from a
watchdog thread every 0.2 s (an idle worker, waiting for a run, included), before
each run it takes and after every round: an orphaned worker exits at once, where
``prctl`` exists or not. Before it deletes or creates a run directory it also
checks that the sweep directory's lock (:mod:`velocity.sweepdir.lock`) is held by its
driver, so a worker never touches a run that a live driver did not hand it: a
``--resume`` started after the driver died owns every run.

Test-only hooks (read by the worker; never set them in real use):
``VELOCITY_TEST_CRASH_RUN=<run name>`` makes that run's worker SIGKILL itself after
round 1; ``VELOCITY_TEST_RAISE_RUN=<run name>`` makes that run raise before it
starts; ``VELOCITY_TEST_SLOW_RUN=<run name>:<seconds>`` sleeps after each round.
``VELOCITY_TEST_NO_PDEATHSIG=1`` makes workers skip the ``prctl``, so that only
the liveness checks stop an orphan (as on platforms without it).
``VELOCITY_MP_START=fork|forkserver|spawn`` overrides the process start method.
"""

from __future__ import annotations

import ctypes
import errno
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
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from pathlib import Path
from typing import Any, ClassVar

from velocity.engine.executors import ExecutionSettings, Executor
from velocity.spec import RunSpec
from velocity.sweepdir import lock as sweeplock
from velocity.sweepdir.lock import pid_alive

TEST_CRASH_ENV = "VELOCITY_TEST_CRASH_RUN"
TEST_RAISE_ENV = "VELOCITY_TEST_RAISE_RUN"
TEST_SLOW_ENV = "VELOCITY_TEST_SLOW_RUN"
TEST_HOOK_ENV = (TEST_CRASH_ENV, TEST_RAISE_ENV, TEST_SLOW_ENV)
TEST_NO_PDEATHSIG_ENV = "VELOCITY_TEST_NO_PDEATHSIG"
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
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_ORPHAN_EXIT = 75  # the exit status of a worker that found its driver gone
_WATCH_S = 0.2  # how often a worker's watchdog thread checks that its driver is alive


# --------------------------------------------------------------------------- worker side

_events: Any = None
_limiter: Any = None
_driver_pid: int | None = None  # the sweep's driver (None: not a pool worker)
_driver_started: int | None = None  # the driver's start time (process_start)
_parent_pid: int | None = None  # this worker's parent when it started


def _init_worker(
    events: Any,
    environ: dict[str, str],
    driver_pid: int | None = None,
    driver_started: int | None = None,
) -> None:
    """Pool initializer: die with the driver, the parent's environment, pinned thread pools.

    A forkserver started earlier holds an older environment; the parent's current
    one is applied, so a worker sees the same settings whatever the start method.
    Ctrl-C is left to the parent.
    """
    global _events, _limiter, _driver_pid, _driver_started, _parent_pid
    if not environ.get(TEST_NO_PDEATHSIG_ENV):
        set_parent_death_signal()
    _driver_pid, _driver_started, _parent_pid = driver_pid, driver_started, os.getppid()
    exit_if_orphaned()  # the driver may have died before the prctl: no signal would come
    _release_forkserver()
    if driver_pid is not None:  # an idle worker (waiting for a run) checks too
        threading.Thread(target=_watch_driver, name="velocity-watch-driver", daemon=True).start()
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


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies (Linux only).

    Returns whether it was set. (The parent is the thread that started this
    process; the pool starts its workers from the sweep's own thread, which lives
    as long as the sweep.)
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, Linux ``/proc``); None if unknown.

    With the pid, it names one process for good: a pid reused later starts later.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[-1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def driver_alive() -> bool:
    """Whether this worker's driver is alive (and, when it was, still this worker's parent).

    A worker whose parent died has been re-parented; with ``forkserver`` the parent
    is the fork server, and the driver is known by its pid and start time, so a
    pid reused by another process does not pass for it.
    """
    if _driver_pid is None:
        return True
    parent = os.getppid()
    if parent != _parent_pid:
        return False  # re-parented: the parent (the driver or the fork server) died
    if parent == _driver_pid:
        return True
    if _driver_started is None:  # no /proc: the pid alone
        return pid_alive(_driver_pid)
    return pid_alive(_driver_pid) and process_start(_driver_pid) == _driver_started


def exit_if_orphaned() -> None:
    """Exit this worker at once (no cleanup, no more writes) when its driver is gone."""
    if not driver_alive():
        os._exit(_ORPHAN_EXIT)


def _watch_driver() -> None:
    while True:
        time.sleep(_WATCH_S)
        exit_if_orphaned()


def _release_forkserver() -> None:
    """Close this worker's copy of the fork server's keep-alive pipe.

    The fork server exits when every holder of that pipe is gone, and it hands a
    copy to each worker it starts (a forked worker inherits the driver's): without
    this, a fork server outlives a dead driver as long as its workers do, and their
    parent-death signal (the fork server's death) never comes. A worker never
    starts processes, so it never needs the pipe.
    """
    try:
        from multiprocessing import forkserver

        server = forkserver._forkserver
    except (ImportError, AttributeError):
        return
    fd = getattr(server, "_forkserver_alive_fd", None)
    if not isinstance(fd, int):
        return
    with suppress(OSError):
        os.close(fd)
    setattr(server, "_forkserver_alive_fd", None)  # noqa: B010 - a private attribute


def _emit(*event: Any) -> None:
    exit_if_orphaned()  # between rounds: an orphan writes nothing more
    if _events is not None:
        _events.put(event)


def _check_handed(run_dir: Path) -> None:
    """Refuse a run unless a live driver that holds the sweep's lock handed it out.

    An orphan exits; a worker whose sweep directory is now locked by another
    process (a resume started after the driver died) raises without touching it.
    """
    exit_if_orphaned()
    if _driver_pid is None:
        return
    holder = sweeplock.holder(run_dir.parent)
    if holder is not None and holder != _driver_pid:
        exit_if_orphaned()
        raise RuntimeError(
            f"run {run_dir.name!r} was not handed out by this sweep's driver (pid "
            f"{_driver_pid}): {run_dir.parent} is locked by pid {holder}"
        )


def _run_in_worker(spec_json: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Execute one run (in a pool worker); returns its summary and the worker's numbers."""
    path = Path(run_dir)
    _check_handed(path)  # before deleting or creating anything in it
    return execute_run(RunSpec.model_validate(spec_json), path, _emit)


def clean_run_dir(path: Path) -> None:
    """Remove whatever is at ``path`` (a run directory, or a file or link in its place)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
        return
    for attempt in range(3):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:  # a file appeared while it was being removed
            if exc.errno != errno.ENOTEMPTY or attempt == 2:
                raise
            time.sleep(0.05)


def execute_run(spec: RunSpec, path: Path, emit: Callable[..., None]) -> dict[str, Any]:
    """Run ``spec`` into ``path`` in this (worker) process, emitting its events.

    ``emit("start", name, pid, t)`` first, then ``emit("round", name, r, R, t)``
    after each round; returns ``{"summary": ..., "worker": {pid, started,
    first_round, peak_rss_mb}}``. Applies the test-only hooks (module docstring).
    """
    from velocity.sim.server import run_one

    clean_run_dir(path)  # a run restarted after a crash or on resume starts clean
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
            import velocity.sim.server  # noqa: F401 - forked workers inherit it, imported once
        if method == "forkserver":
            ctx.set_forkserver_preload(["velocity.engine.pool", "velocity.sim.server"])
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
            initargs=(events, dict(os.environ), os.getpid(), process_start(os.getpid())),
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
                for future, spec in list(futures.items()):  # record the runs that ended
                    if future.done() and not future.cancelled():
                        futures.pop(future)
                        if self._collect(future, spec):
                            broken.append(spec)
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
            self.fail_on_exception(spec, exc)
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
            try:
                if event[0] == "start":
                    proc = getattr(pool, "_processes", {}).get(event[2])
                    if proc is not None:
                        self._procs[event[2]] = proc
                self.tracker.event(event)
            except Exception as exc:  # never die silently: stop the sweep and say why
                self.abort(f"recording an event of run {event[1]!r} failed: {exc!r}")
                return

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
