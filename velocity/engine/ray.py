"""The ``ray`` backend: one Ray task per run, its files returned to the driver.

Each run is one Ray task declaring ``num_cpus=1`` (and ``ray_gpus`` GPUs). The
task runs :func:`velocity.engine.pool.execute_run`, the local worker's own code, into a
temporary directory on whichever node Ray picked, with BLAS and Rust thread pools
pinned to one thread, and *returns* the run's files as bytes: ``rounds.csv``,
``timings.csv``, ``progress.json``, ``summary.json``, the checkpoints. The driver,
the process running the sweep, writes them atomically into the sweep directory
(and ``config.json``, from the spec), so a worker never needs a path that exists
only on the driver's machine. A ``storage = "local://DIR"`` is the driver's DIR
too: the worker checkpoints into its temporary directory instead (results do not
depend on where checkpoints go) and the driver writes them into DIR.

The task is a Ray streaming generator: it yields the same ``start`` and ``round``
events as a local worker, then its files. Events stream back as they happen
(``ray.wait``), so ``status.json`` and each run's ``progress.json`` (the current
round) are as live as with the local backend. What is coarser: a running run's
``rounds.csv``, ``timings.csv`` and checkpoints appear when it finishes, not
after every round.

Failures stay local. A task that raises, or whose worker process or node dies
(killed, out of memory), makes that run failed with the reason; tasks are not
retried (``max_retries=0``: a rerun is ``--resume``), and the other runs go on.
A worker whose velocity version differs from the driver's refuses its run.
When the driver cannot write a run's files (a full disk), that run is failed with
the reason and the sweep stops (:meth:`~velocity.engine.executors.Executor.abort`).

Ray is an optional dependency (``pip install 'velocity-fl[ray]'``), imported
only when this backend is chosen.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from velocity.engine.executors import ExecutionSettings, Executor
from velocity.engine.pool import TEST_HOOK_ENV, clean_run_dir, execute_run
from velocity.errors import SpecError
from velocity.spec import RunSpec
from velocity.sweepdir import files, names
from velocity.sweepdir.checkpoints import resolve_storage
from velocity.sweepdir.io import describe_write_error
from velocity.sweepdir.models import Progress

INSTALL_HINT = "pip install 'velocity-fl[ray]'"
#: The files the driver writes itself, last and in this order.
_WRITTEN_LAST = (names.CONFIG, names.SUMMARY, names.PROGRESS)
_WAIT_S = 0.1  # how often the driver looks at the cancel flag while waiting


def import_ray() -> ModuleType:
    """The ``ray`` module, or a ``SpecError`` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise SpecError(
            f"the ray backend needs Ray, which is not installed: {INSTALL_HINT}"
        ) from None
    return ray


# --------------------------------------------------------------------------- worker side


def _run_task(spec_json: dict[str, Any], hooks: dict[str, str], version: str) -> Iterator[Any]:
    """One run on a Ray worker (a streaming generator): its events, then its files.

    Yields ``("start", ...)`` and ``("round", ...)`` tuples as
    :func:`~velocity.engine.pool.execute_run` emits them, then ``{"summary", "worker",
    "files", "storage"}``: the run directory's files and the checkpoints meant for
    the spec's ``storage``, as ``{relative path: bytes}``. ``hooks`` are the
    driver's test-only hook variables (:data:`~velocity.engine.pool.TEST_HOOK_ENV`).
    """
    import ray
    from threadpoolctl import threadpool_limits

    import velocity

    if velocity.__version__ != version:
        raise RuntimeError(
            f"velocity {velocity.__version__} is installed on Ray node "
            f"{ray.util.get_node_ip_address()}, but the driver runs {version}: install the "
            "same version on every node"
        )
    spec = RunSpec.model_validate(spec_json)
    events: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
    outcome: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="velocity-ray-") as tmp,
        _hook_environment(hooks),
        threadpool_limits(limits=1),
    ):
        run_dir, storage = Path(tmp) / spec.name, Path(tmp) / "storage"
        here = spec.model_copy(update={"storage": f"local://{storage}"}) if spec.storage else spec

        def work() -> None:  # in a thread, so that this generator can yield its events
            try:
                outcome["result"] = execute_run(here, run_dir, lambda *event: events.put(event))
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                events.put(None)

        thread = threading.Thread(target=work, name=f"velocity-run-{spec.name}", daemon=True)
        thread.start()
        while (event := events.get()) is not None:
            yield event
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        result = outcome["result"]
        result["worker"]["node"] = ray.util.get_node_ip_address()
        yield {**result, "files": _read_tree(run_dir), "storage": _read_tree(storage)}


def _read_tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` as ``{relative path: bytes}`` (empty when it is absent)."""
    return {
        path.relative_to(directory).as_posix(): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@contextmanager
def _hook_environment(hooks: Mapping[str, str]) -> Iterator[None]:
    """The driver's test-hook variables, set exactly (others unset) and restored after.

    A Ray worker process serves many tasks and may have started before the driver
    set a hook, so they travel with each task instead of through the environment.
    """
    saved = {name: os.environ.get(name) for name in TEST_HOOK_ENV}
    for name in TEST_HOOK_ENV:
        os.environ.pop(name, None)
    os.environ.update({k: v for k, v in hooks.items() if k in TEST_HOOK_ENV})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --------------------------------------------------------------------------- driver side


class RayExecutor(Executor):
    """The ``ray`` backend: submits each run as a Ray task and writes what it returns."""

    name: ClassVar[str] = "ray"

    def __init__(self, settings: ExecutionSettings) -> None:
        super().__init__(settings)
        self.ray = import_ray()
        self._started = False  # this executor called ray.init (and so calls ray.shutdown)

    def open(self) -> None:
        """Join the cluster at ``ray_address`` ($RAY_ADDRESS), or start a local instance.

        A Ray session this process already started (a notebook, a test) is used as
        it is and left running. Refuses ``ray_gpus`` the cluster does not have (no
        run could ever be scheduled).
        """
        if not self.ray.is_initialized():
            self._init()
        gpus = self.ray.cluster_resources().get("GPU", 0)
        if self.settings.ray_gpus > gpus:
            self.close()
            raise SpecError(
                f"ray_gpus = {self.settings.ray_gpus:g} per run, but the Ray cluster has "
                f"{gpus:g} GPUs: no run could be scheduled"
            )

    def _init(self) -> None:
        address = self.settings.ray_address
        options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
        if address is None and not os.environ.get("RAY_ADDRESS"):
            options["include_dashboard"] = False  # a fresh local instance: nothing to show
        else:
            _check_reachable(address or os.environ["RAY_ADDRESS"])
        try:
            self.ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "Ray"
            raise SpecError(f"cannot start or reach {where}: {exc}") from None
        self._started = True

    def close(self) -> None:
        """Shut Ray down if :meth:`open` started this session."""
        if self._started:
            self.ray.shutdown()
            self._started = False

    def default_parallel(self, num_runs: int) -> int:
        """min(the cluster's CPUs, number of runs), at least 1."""
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        return max(1, min(cpus, num_runs))

    def describe(self) -> str:
        """``ray, 2 CPUs at 10.0.0.5`` style: the backend and what it runs on."""
        cpus = int(self.ray.cluster_resources().get("CPU", 0))
        address = self.settings.ray_address or os.environ.get("RAY_ADDRESS") or "a local instance"
        return f"ray, {cpus} CPUs on {address}"

    def _execute(self, todo: list[RunSpec]) -> tuple[str, str | None]:
        import velocity

        ray = self.ray
        task = ray.remote(num_cpus=1, num_gpus=self.settings.ray_gpus, max_retries=0)(_run_task)
        hooks = {name: os.environ[name] for name in TEST_HOOK_ENV if name in os.environ}
        waiting = deque(todo)
        running: dict[Any, RunSpec] = {}  # the task's generator -> its run
        while waiting or running:
            if self.cancel.is_set():
                for generator in running:
                    ray.cancel(generator, force=True)
                return self.cancelled()
            while waiting and len(running) < self.workers and not self.cancel.is_set():
                spec = waiting.popleft()
                try:
                    clean_run_dir(self.out_dir / spec.name)  # a rerun starts clean
                except OSError as exc:
                    self.fail_on_exception(spec, exc)
                    continue
                running[task.remote(spec.to_json(), hooks, velocity.__version__)] = spec
            ready, _ = ray.wait(list(running), num_returns=1, timeout=_WAIT_S)
            for generator in ready:
                if self._advance(generator, running[generator]):
                    del running[generator]
        return "done", None

    def _advance(self, generator: Any, spec: RunSpec) -> bool:
        """Take the next item a task yielded; True when its run has ended."""
        ray = self.ray
        try:
            item = ray.get(next(generator))
        except StopIteration:
            self.fail(spec, "the Ray task ended without returning the run's files")
            return True
        except ray.exceptions.RayTaskError as exc:  # the task raised: report its exception
            cause = exc.cause if isinstance(exc.cause, BaseException) else exc
            self.fail(spec, f"{type(cause).__name__}: {cause}")
            return True
        except ray.exceptions.RayError as exc:  # its worker or node died, or Ray could not run it
            lines = str(exc).strip().splitlines()
            detail = f"{type(exc).__name__}: {lines[0] if lines else ''}".strip()
            self.fail(spec, f"Ray could not finish the run: {detail}")
            return True
        try:
            if isinstance(item, tuple):
                self._event(spec, item)
                return False
            self._write_files(spec, item)
        except OSError as exc:  # the driver cannot write the run's files: fail it, stop
            if isinstance(item, tuple):  # the task is still running: stop it
                with suppress(Exception):
                    ray.cancel(generator, force=True)
            reason = describe_write_error(exc)
            self.fail(spec, reason)
            self.abort(reason)
            return True
        self.finished(spec, item)
        return True

    def _event(self, spec: RunSpec, event: tuple[Any, ...]) -> None:
        """A run's start or round: keep its progress.json live on the driver, tell the tracker."""
        run_dir = files.run_dir(self.out_dir, spec.name)
        if event[0] == "start":
            run_dir.mkdir(parents=True, exist_ok=True)
            files.write_config(run_dir, spec)
            progress = Progress(state="running", round=0, rounds=spec.rounds)
        else:
            progress = Progress(state="running", round=int(event[2]), rounds=spec.rounds)
        files.write_progress(run_dir, progress)
        self.tracker.event(event)

    def _write_files(self, spec: RunSpec, result: dict[str, Any]) -> None:
        """Write a finished run's files: storage checkpoints, then its directory.

        ``config.json`` comes from the spec and ``summary.json`` names the driver's
        storage path (the worker ran with a storage of its own); both are written
        as :func:`~velocity.sim.server.run_one` writes them, then ``progress.json``.
        """
        summary = result["summary"]
        if spec.storage is not None:
            directory = resolve_storage(spec.storage)
            for name, data in result["storage"].items():
                files.write_run_file(directory, name, data)
            if summary.get("checkpoint"):
                summary["checkpoint"] = str((directory / names.FINAL_CHECKPOINT).resolve())
        run_dir = files.run_dir(self.out_dir, spec.name)
        returned: dict[str, bytes] = result["files"]
        for name in sorted(set(returned) - set(_WRITTEN_LAST)):
            files.write_run_file(run_dir, name, returned[name])
        files.write_config(run_dir, spec)
        result["summary"] = files.write_summary(run_dir, summary)
        files.write_run_file(run_dir, names.PROGRESS, returned[names.PROGRESS])


def _check_reachable(address: str) -> None:
    """Refuse a ``host:port`` nobody listens on at once (Ray itself retries for minutes).

    Other forms (``auto``, ``ray://...``) are left to ``ray.init``.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise SpecError(
            f"cannot reach the Ray cluster at {address}: {exc.strerror or exc} "
            "(is `ray start --head` running there?)"
        ) from None
