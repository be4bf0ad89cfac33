"""Where a sweep's runs execute: the :class:`Executor` interface and :func:`make_executor`.

:func:`velocity.engine.sweep.run_sweep` does everything that does not depend on where runs
execute (checks, ``plan.json``, ``manifest.json``, ``status.json``, the comparison)
and hands the runs to an executor, a backend chosen by name:

- ``"local"``: :class:`velocity.engine.pool.PoolRunner`, a process pool on this machine
  (the default: no start-up tax);
- ``"ray"``: :class:`velocity.engine.ray.RayExecutor`, one Ray task per run, on a local
  Ray instance or an existing cluster (the optional ``ray`` extra).

An executor reports back through the sweep's :class:`~velocity.engine.status.Tracker` as
things happen, so progress, failure isolation, resume and the comparison are the
same whatever the backend:

- ``tracker.event(("start", name, pid, t))`` when a run begins,
- ``tracker.event(("round", name, r, R, t))`` after each of its rounds,
- ``tracker.finish(name, state, ...)`` when it ends, its files already in
  ``out_dir/<name>/``; a run that raised or whose worker died is recorded failed
  (:meth:`Executor.fail`) and every other run goes on.

Setting :attr:`Executor.cancel` (SIGINT/SIGTERM do, through :func:`stop_on_signals`)
stops the sweep: runs not finished are cancelled, finished ones stay intact.
:meth:`Executor.abort` stops it the same way but as a failure with a reason: the
sweep's files cannot be written (a full disk, a read-only file system), so every
other run would fail too; the sweep ends ``failed`` with that reason and
``--resume`` finishes it once the cause is fixed.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, get_args

from velocity.engine.status import FINISHED, Tracker, failure_summary, write_failure
from velocity.errors import SpecError
from velocity.spec import RunSpec
from velocity.sweepdir.io import describe_write_error, is_storage_error

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = get_args(Backend)

# backend name -> (module, class): imported on demand, so `ray` is only needed for "ray"
_IMPLEMENTATIONS = {
    "local": ("velocity.engine.pool", "PoolRunner"),
    "ray": ("velocity.engine.ray", "RayExecutor"),
}


@dataclass(frozen=True)
class ExecutionSettings:
    """How to execute a sweep's runs; each backend reads the settings that concern it.

    None of these change a run's results, so none is part of a RunSpec: a sweep
    started on one backend can be resumed on another.
    """

    start_method: str | None = None  # local: fork | forkserver | spawn (None: fork where possible)
    ray_address: str | None = None  # ray: cluster address; None starts a local Ray instance
    ray_gpus: float = 0.0  # ray: GPUs each run reserves (fractions allowed)


def default_parallel(num_runs: int) -> int:
    """min(cpu count, number of runs), at least 1."""
    return max(1, min(os.cpu_count() or 1, num_runs))


class Executor(ABC):
    """Runs a sweep's RunSpecs somewhere and reports to its tracker as they go.

    Use as a context manager: entering :meth:`open`\\ s the backend (a cluster
    connection, say), leaving :meth:`close`\\ s it.
    """

    name: ClassVar[str]
    out_dir: Path
    tracker: Tracker
    workers: int

    def __init__(self, settings: ExecutionSettings) -> None:
        self.settings = settings
        self.cancel = threading.Event()
        self.failure: str | None = None  # why the sweep was aborted (abort), if it was
        self.start_method = ""  # how local worker processes started (empty elsewhere)

    def __enter__(self) -> Executor:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:  # noqa: B027 - an optional hook: the pool needs nothing
        """Acquire what the backend needs; raise ``SpecError`` when it cannot."""

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release what :meth:`open` acquired."""

    def default_parallel(self, num_runs: int) -> int:
        """How many runs execute at once when the user does not say."""
        return default_parallel(num_runs)

    def describe(self) -> str:
        """Where runs execute, for the sweep's first line of output."""
        return self.name

    def run(
        self, todo: Sequence[RunSpec], out_dir: Path, tracker: Tracker, workers: int
    ) -> tuple[str, str | None]:
        """Run ``todo`` (at most ``workers`` at once) into ``out_dir/<name>/``.

        Returns the sweep's final state (``"done"``, ``"cancelled"`` or ``"failed"``)
        and its error, if any.
        """
        self.out_dir, self.tracker, self.workers = out_dir, tracker, workers
        return self._execute(list(todo))

    @abstractmethod
    def _execute(self, todo: list[RunSpec]) -> tuple[str, str | None]:
        """The backend's part of :meth:`run`."""

    def finished(self, spec: RunSpec, result: dict[str, Any]) -> None:
        """Record a run that returned: ``{"summary": ..., "worker": ...}``."""
        summary = result["summary"]
        state = summary.get("status") if summary.get("status") in FINISHED else "failed"
        self.tracker.finish(
            spec.name, state, error=summary.get("error"), summary=summary, worker=result["worker"]
        )

    def fail(self, spec: RunSpec, error: str) -> None:
        """Record a run that could not write its own summary (it raised, its worker died).

        When its ``summary.json`` cannot be written either (a full disk), the run is
        failed in ``status.json`` only, and the sweep is aborted with the reason.
        """
        try:
            summary = write_failure(spec, self.out_dir / spec.name, error)
        except OSError as exc:
            summary = failure_summary(spec, self.out_dir / spec.name, error).to_json()
            self.abort(describe_write_error(exc))
        self.tracker.finish(spec.name, "failed", error=error, summary=summary)

    def fail_on_exception(self, spec: RunSpec, exc: BaseException) -> None:
        """Record a run that raised ``exc``; a storage error (full disk) also aborts the sweep."""
        if isinstance(exc, OSError) and is_storage_error(exc):
            reason = describe_write_error(exc)
            self.fail(spec, reason)
            self.abort(reason)
        else:
            self.fail(spec, f"{type(exc).__name__}: {exc}")

    def abort(self, reason: str) -> None:
        """Stop the sweep as failed because of ``reason`` (the first reason is kept).

        Thread-safe: a listener thread that cannot write ``status.json`` calls it.
        """
        if self.failure is None:
            self.failure = reason
        self.cancel.set()

    def cancelled(self) -> tuple[str, str | None]:
        """Mark every run not finished as cancelled; the sweep's state and error.

        ``("failed", reason)`` after :meth:`abort`, else ``("cancelled", None)``.
        """
        with self.tracker.lock:
            for run in self.tracker.runs.values():
                if run.state in ("pending", "running"):
                    run.state = "cancelled"
        if self.failure is not None:
            return "failed", self.failure
        return "cancelled", None


def make_executor(backend: str, settings: ExecutionSettings | None = None) -> Executor:
    """The executor of ``backend`` (see :data:`BACKENDS`); refuses an unknown name.

    Nothing is started yet (that is :meth:`Executor.open`), but a backend whose
    package is missing refuses here, with the command that installs it.
    """
    if backend not in _IMPLEMENTATIONS:
        raise SpecError(f"backend {backend!r} is not one of {', '.join(BACKENDS)}")
    module, cls = _IMPLEMENTATIONS[backend]
    implementation: type[Executor] = getattr(importlib.import_module(module), cls)
    return implementation(settings or ExecutionSettings())


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
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
