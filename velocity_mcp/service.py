"""What the tools do, independent of MCP: validate, limit, launch, read.

:class:`SweepService` holds the root, the limits and the :class:`Launcher`. Each
public method is one tool; every failure an agent can cause is a ``ToolError``
whose message says what was wrong and what to do instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from velocity._inline import range_text
from velocity.attacks import expand_adaptive
from velocity.catalog import names_code
from velocity.sweepdir import files, names
from velocity.sweepdir.comparison import Comparison
from velocity.sweepdir.io import CorruptFileError
from velocity.sweepdir.models import RunState, Status
from velocity_mcp.inputs import (
    check_data_numbers,
    check_finite_settings,
    check_inline_numbers,
    check_params,
    dataset_params_model,
    model_params_model,
    read_experiment,
)
from velocity_mcp.launcher import REFUSED, Launcher, log_tail, refusal_message
from velocity_mcp.limits import Limits
from velocity_mcp.models import (
    SUMMARY_ROWS,
    AttackInfo,
    CancelResult,
    Catalog,
    Detail,
    ExtendStarted,
    ParamInfo,
    RunError,
    RunProgress,
    StrategyInfo,
    SweepList,
    SweepStarted,
    SweepStatus,
    SweepSummary,
    Verdict,
    VerdictRecommendation,
)
from velocity_mcp.paths import (
    code_refusal,
    confine_dataset,
    resolve_config,
    resolve_sweep,
    sweep_dirs,
)

logger = logging.getLogger(__name__)

INLINE_SYNTAX = (
    "Strategies and attacks are strings 'Name' or 'Name:key=value,key=value', e.g. "
    "'Krum:f=2', 'TrimmedMean:beta=0.2', 'gaussian_noise:sigma=10,fraction=0.2'. Names are "
    "case-insensitive. A strategy may be a pipeline of pre-aggregators and a rule joined by "
    "'>', e.g. 'NNM>Krum'. The attack 'adaptive' stands for every adaptive attack. "
    "sweep_run runs every strategy with no attack (its baseline) and under each attack "
    "separately: runs = len(strategies) × (1 + len(attacks)) × repeats; byzantine sets "
    "every attack's share and every strategy's tolerance left open at once."
)
COMPARISON_URI = f"velocity://sweeps/{{sweep_id}}/{names.COMPARISON_MD}"
ACTIVE = ("starting", "running")
#: Run states in status.json that mean the run ended (with a result or not).
ENDED = ("done", "diverged", "failed")


def comparison_uri(sweep_id: str) -> str:
    """The resource URI of a sweep's comparison.md."""
    return COMPARISON_URI.format(sweep_id=sweep_id)


def _spec_error(exc: Exception) -> ToolError:
    return ToolError(f"invalid sweep: {exc}")


def _corrupt(sweep_dir: Path, exc: CorruptFileError, what: str) -> ToolError:
    """The refusal for a sweep-directory file that is not what velocity writes."""
    return ToolError(f"sweep {sweep_dir.name}: {exc.unreadable}; {what}")


class SweepService:
    """The tools' behaviour over one root directory.

    Parameters
    ----------
    root : Path
        Directory holding every sweep directory; created on the first sweep_run.
    limits : Limits
        What one request may ask for.
    launcher : Launcher, optional
        Starts sweep processes (tests pass one with a fake sweep command).
    start_wait_s : float (default: 10.0)
        How long sweep_run waits for the sweep to write status.json, so that a sweep
        that dies at once is reported as an error instead of as running.
    cancel_wait_s : float (default: 20.0)
        How long sweep_cancel waits for the sweep to stop.
    """

    def __init__(
        self,
        root: Path,
        limits: Limits,
        launcher: Launcher | None = None,
        *,
        start_wait_s: float = 10.0,
        cancel_wait_s: float = 20.0,
    ) -> None:
        self.root = Path(root).resolve()
        self.limits = limits
        self.launcher = launcher or Launcher(self.root)
        self.start_wait_s = start_wait_s
        self.cancel_wait_s = cancel_wait_s
        self.dataset_params_model = dataset_params_model(limits)
        self.model_params_model = model_params_model(limits)
        self._registry: dict[str, dict[str, str]] | None = None

    # ------------------------------------------------------------------- catalog

    def catalog(self) -> Catalog:
        """Every strategy, attack, dataset and model, and the limits."""
        from velocity.attacks import attack_schemas
        from velocity.strategy import strategy_schemas

        registry = self._datasets_and_models()
        strategies = [
            StrategyInfo(
                name=name,
                description=info["description"],
                reference=info["reference"],
                selection=bool(info["selection"]),
                params={k: _param_info(v) for k, v in info["params"].items()},
                example=_example(name, info["params"]),
            )
            for name, info in strategy_schemas().items()
        ]
        attacks = []
        for name, info in sorted(attack_schemas().items()):
            params = {k: _param_info(p) for k, p in info["params"].items()}
            attacks.append(
                AttackInfo(
                    name=name,
                    kind=info["kind"],
                    adaptive=info["adaptive"],
                    description=info["description"],
                    reference=info["reference"],
                    params=params,
                    example=_example(name, info["params"]),
                )
            )
        return Catalog(
            strategies=strategies,
            attacks=attacks,
            datasets=registry["datasets"],
            models=registry["models"],
            limits=self.limits.as_dict(),
            syntax=INLINE_SYNTAX,
        )

    def _datasets_and_models(self) -> dict[str, dict[str, str]]:
        """The dataset and model ids with descriptions, from ``velocity strategies --json``.

        Asked of a child process (once per server): importing ``velocity.sim.data`` and
        ``velocity.sim.models`` would load the simulation (numpy models, dataset code) into
        the server, which only needs their names.
        """
        if self._registry is None:
            command = [sys.executable, "-m", "velocity", "strategies", "--json"]
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=60, check=False
                )
                data = json.loads(done.stdout) if done.returncode == 0 else None
            except (OSError, subprocess.SubprocessError, ValueError) as exc:
                data, done = None, None
                logger.warning("%s failed: %s", " ".join(command), exc)
            if not isinstance(data, dict):
                tail = (done.stderr.strip().splitlines() or [""])[-1] if done else ""
                raise ToolError(
                    "cannot list the datasets and models: `velocity strategies --json` failed"
                    + (f" ({tail})" if tail else "")
                )
            self._registry = {  # without the module:callable forms: never imported here
                key: {str(k): str(v) for k, v in (data.get(key) or {}).items() if not names_code(k)}
                for key in ("datasets", "models")
            }
        return self._registry

    # ------------------------------------------------------------------- sweep_run

    def run(
        self,
        *,
        strategies: list[str],
        attacks: list[str],
        config: str | None,
        settings: dict[str, Any],
    ) -> SweepStarted:
        """Check the server's limits, create the sweep directory and launch the sweep.

        The server parses the request only as far as its limits need (the runs, rounds,
        clients, parameter bounds; nothing is loaded or built here). The sweep process
        validates everything (names, dataset, model, each strategy's client
        precondition) before it writes a file, and exits with status 2 and one line
        when it refuses: that line is this call's ``ToolError``, and its directory is
        removed.
        """
        from velocity.spec import repeat_run

        settings = {k: v for k, v in settings.items() if v is not None}
        spec = self._build_spec(strategies, attacks, config, settings)
        runs = spec.expand()
        most = len(runs)
        if spec.shared.until == "decided":  # its first repeat now, more repeats later
            runs = [repeat_run(r, 0) for r in runs]
            most = len(runs) * spec.shared.max_repeats
            most = min(most, spec.shared.budget or most)
        self._check_limits(spec, runs, most)
        parallel = spec.shared.parallel or min(self.limits.max_parallel, len(runs))
        data = spec.model_dump(mode="json", exclude_none=True)
        data["shared"]["parallel"] = parallel

        try:
            with self.launcher.launching(self.launcher_start_wait()):
                running = self.launcher.running()
                if len(running) >= self.limits.max_concurrent_sweeps:
                    raise ToolError(
                        self.limits.refusal(
                            "max_concurrent_sweeps",
                            len(running) + 1,
                            f"the number of sweeps running at once under the root with this "
                            f"one (running: {', '.join(p.name for p in running)})",
                        )
                        + " Wait for one to finish (sweep_status) or stop one (sweep_cancel)."
                    )
                sweep_dir = self._new_sweep_dir()
                experiment = files.write_experiment(sweep_dir, data)
                proc = self.launcher.start(sweep_dir, experiment)
                # every server on the root counts the new sweep once it holds its lock
                self.launcher.wait_locked(sweep_dir, proc, self.launcher_start_wait())
        except TimeoutError as exc:
            raise ToolError(f"cannot start a sweep now: {exc}; retry in a few seconds") from None
        except OSError as exc:
            raise ToolError(
                f"cannot create a sweep under the root {self.root}: {exc.strerror or exc}"
            ) from None
        self.launcher.wait_started(sweep_dir, proc, self.start_wait_s)
        if proc.poll() not in (None, 0) and not files.has(sweep_dir, names.STATUS):
            refusal = refusal_message(sweep_dir) if proc.returncode == REFUSED else None
            if refusal is not None:
                # refused before it wrote anything: no sweep exists
                self.launcher.forget(sweep_dir)
                shutil.rmtree(sweep_dir, ignore_errors=True)
                raise ToolError(f"invalid sweep: {refusal}")
            raise ToolError(
                f"the sweep process exited with code {proc.returncode} before starting "
                f"(sweep {sweep_dir.name}); its log says:\n{log_tail(sweep_dir)}"
            )
        return SweepStarted(
            sweep_id=sweep_dir.name,
            sweep_dir=str(sweep_dir),
            status="running",
            total_runs=len(runs),
            planned_runs=[r.name for r in runs],
            parallel=parallel,
            repeats=spec.shared.repeats,
            rounds=spec.shared.rounds,
            clients=spec.shared.clients,
            comparison_uri=comparison_uri(sweep_dir.name),
            until=spec.shared.until,
            max_runs=most if spec.shared.until else None,
            next_step=(
                f"poll sweep_status(sweep_id={sweep_dir.name!r}) every few seconds until state "
                "is 'done', then call sweep_compare"
            ),
        )

    # ------------------------------------------------------------------- sweep_extend

    def extend(
        self,
        sweep_id: str,
        *,
        repeats: int | None,
        strategies: list[str],
        attacks: list[str],
    ) -> ExtendStarted:
        """Add runs to a sweep: ``velocity sweep --extend DIR ...`` in a detached process.

        The server checks its limits on the runs the sweep would have; the process
        validates the extension against the sweep's plan and refuses (exit 2, one line:
        this call's ``ToolError``) before it writes anything. A running sweep gets the
        runs queued and the process exits at once; an ended one is driven by it.
        """
        sweep_dir = resolve_sweep(self.root, sweep_id)
        check_inline_numbers("strategy", strategies)
        check_inline_numbers("attack", attacks)
        if repeats is None and not strategies and not attacks:
            raise ToolError("give repeats, strategies or attacks: the runs to add to the sweep")
        planned = self._planned(sweep_dir, sweep_id)
        try:
            columns = len(expand_adaptive(attacks))
        except ValueError as exc:
            raise _spec_error(exc) from None
        total = _extended_total(planned, repeats, len(strategies), columns)
        if total > self.limits.max_runs:
            raise ToolError(
                self.limits.refusal("max_runs", total, "the number of runs of the extended sweep")
            )
        args = [] if repeats is None else ["--repeats", str(repeats)]
        args += [a for s in strategies for a in ("--strategies", s)]
        args += [a for s in attacks for a in ("--attacks", s)]
        try:
            with self.launcher.launching(self.launcher_start_wait()):
                driver = not self.launcher.is_running(sweep_dir)
                running = self.launcher.running()
                if driver and len(running) >= self.limits.max_concurrent_sweeps:
                    raise ToolError(
                        self.limits.refusal(
                            "max_concurrent_sweeps",
                            len(running) + 1,
                            "the number of sweeps running at once with this one ended sweep "
                            "run again",
                        )
                    )
                proc = self.launcher.start_extension(sweep_dir, args, driver=driver)
                drives = self._wait_extension(sweep_dir, proc)
        except TimeoutError as exc:
            raise ToolError(f"cannot extend a sweep now: {exc}; retry in a few seconds") from None
        if not drives and proc.returncode not in (None, 0):
            refusal = refusal_message(sweep_dir) if proc.returncode == REFUSED else None
            if refusal is not None:
                raise ToolError(f"invalid extension: {refusal}")
            raise ToolError(
                f"the extension exited with code {proc.returncode}; {names.SWEEP_LOG} says:\n"
                f"{log_tail(sweep_dir)}"
            )
        return ExtendStarted(
            sweep_id=sweep_dir.name,
            sweep_dir=str(sweep_dir),
            status="running" if drives else "queued",
            added_runs=total - len(planned),
            total_runs=total,
            next_step=(
                f"poll sweep_status(sweep_id={sweep_dir.name!r}) until state is 'done', then "
                "call sweep_compare: the comparison covers the old and the new runs"
            ),
        )

    def _planned(self, sweep_dir: Path, sweep_id: str) -> list[Any]:
        try:
            return files.read_plan_runs(sweep_dir)
        except FileNotFoundError:
            raise ToolError(
                f"sweep {sweep_id!r} has no {names.PLAN}: it is not a sweep, or it has not "
                "started yet (poll sweep_status)"
            ) from None
        except (CorruptFileError, ValidationError, ValueError) as exc:
            raise ToolError(f"cannot extend sweep {sweep_id!r}: {names.PLAN}: {exc}") from None

    def _wait_extension(self, sweep_dir: Path, proc: subprocess.Popen[bytes]) -> bool:
        """Wait until the extension exits or drives the sweep; True when it drives it."""
        deadline = time.monotonic() + max(self.start_wait_s, 60.0)
        while time.monotonic() < deadline:
            status = _read_status(sweep_dir)
            if status is not None and status.pid == proc.pid:
                return True
            if proc.poll() is not None:
                status = _read_status(sweep_dir)
                return status is not None and status.pid == proc.pid
            time.sleep(0.05)
        return False

    def _build_spec(
        self,
        strategies: list[str],
        attacks: list[str],
        config: str | None,
        settings: dict[str, Any],
    ) -> Any:
        """The sweep's spec from the inline lists or the config file, checked but not run."""
        from velocity.errors import SpecError
        from velocity.spec import build_sweep, matrix_spec

        check_inline_numbers("strategy", strategies)
        check_inline_numbers("attack", attacks)
        check_data_numbers(settings, "")
        try:
            if config:
                if strategies or attacks:
                    raise ToolError(
                        "give either config or strategies/attacks, not both: the config file "
                        "lists its own runs (settings such as rounds may still override it)"
                    )
                path = resolve_config(self.root, config)
                spec = build_sweep(read_experiment(path, config))
                if settings:
                    data = spec.model_dump(mode="json", exclude_none=True)
                    data["shared"].update(settings)
                    spec = build_sweep(data)
            else:
                if not strategies:
                    raise ToolError(
                        "give strategies (e.g. ['FedAvg', 'FedMedian', 'Krum']) or a config "
                        "file path; call list_strategies to see every strategy and attack"
                    )
                spec = matrix_spec(strategies, attacks, **settings)
        except (SpecError, ValueError) as exc:
            raise _spec_error(exc) from None
        except (OverflowError, RecursionError) as exc:  # a number or a nesting velocity refuses
            raise ToolError(
                f"invalid sweep: a value is out of range for the simulation "
                f"({type(exc).__name__}: {exc})"
            ) from None
        if spec.shared.storage is not None:
            raise ToolError(
                "shared.storage is not allowed through the MCP server: checkpoints are written "
                "inside each run's directory under the root; remove 'storage' from the config"
            )
        check_finite_settings(spec.shared)
        check_params(spec.shared, self.limits, self.dataset_params_model, self.model_params_model)
        if names_code(spec.shared.model_id):
            raise ToolError(code_refusal("model_id", spec.shared.model_id))
        dataset = confine_dataset(self.root, spec.shared.dataset)
        if dataset != spec.shared.dataset:
            data = spec.model_dump(mode="json", exclude_none=True)
            data["shared"]["dataset"] = dataset
            spec = build_sweep(data)
        return spec

    def _check_limits(self, spec: Any, runs: list[Any], most: int) -> None:
        shared = spec.shared
        checks = (
            ("max_runs", most, f"the number of runs ({_runs_formula(spec, len(runs))})"),
            ("max_rounds", shared.rounds, "rounds"),
            ("max_clients", shared.clients, "clients"),
            ("max_parallel", shared.parallel or 0, "parallel"),
        )
        for name, asked, what in checks:
            if asked > getattr(self.limits, name):
                raise ToolError(self.limits.refusal(name, asked, what))

    def launcher_start_wait(self) -> float:
        """Seconds to wait for a just-launched sweep to write status.json."""
        return max(self.start_wait_s, 10.0)

    def _new_sweep_dir(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        while True:
            path = self.root / f"{stamp}-{secrets.token_hex(3)}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return path

    # ------------------------------------------------------------------- status

    def status(self, sweep_id: str) -> SweepStatus:
        """Where the sweep stands (state, runs done of total, current rounds, errors)."""
        sweep_dir = resolve_sweep(self.root, sweep_id)
        return self._status(sweep_dir)

    def _status(self, sweep_dir: Path) -> SweepStatus:
        status = _read_status(sweep_dir)
        comparison_ready = files.has(sweep_dir, names.COMPARISON)
        if status is None:
            return self._status_without_file(sweep_dir, comparison_ready)
        alive = True
        if status.state == "running" and not self.launcher.is_running(sweep_dir):
            # re-read: the sweep writes its final status just before it exits
            status = _read_status(sweep_dir) or status
            alive = status.state != "running" or self.launcher.is_running(sweep_dir)
        runs = status.runs
        state: str = status.state
        error = status.error
        if not alive and _all_ended(runs, status):
            state, error = "done", None  # killed after its last run: nothing left to resume
        elif not alive:
            state = "interrupted"
            error = (
                f"the sweep process (pid {status.pid}) ended without finishing; "
                f"finished runs are kept. Resume from a shell with: velocity sweep "
                f"--resume {sweep_dir}"
            )
            tail = log_tail(sweep_dir, 5)
            if tail:
                error += f". Last log lines:\n{tail}"
        running = [
            RunProgress(run=name, **_progress(sweep_dir, name))
            for name, entry in runs.items()
            if alive and entry.state == "running"
        ]
        errors = _run_errors(runs, "failed")
        diverged = _run_errors(runs, "diverged")
        return SweepStatus(
            sweep_id=sweep_dir.name,
            sweep_dir=str(sweep_dir),
            state=state,  # type: ignore[arg-type]
            total_runs=_or(status.total_runs, len(runs)),
            done_runs=_or(status.done_runs, _count(runs, "done")),
            diverged_runs=_or(status.diverged_runs, len(diverged)),
            failed_runs=_or(status.failed_runs, len(errors)),
            running=running,
            pending_runs=_count(runs, "pending"),
            elapsed_s=status.elapsed_s,
            started_at=status.started_at,
            finished_at=status.finished_at,
            errors=errors,
            diverged=diverged,
            error=error or None,
            comparison_ready=comparison_ready,
            next_step=_next_step(sweep_dir.name, state, comparison_ready),
        )

    def _status_without_file(self, sweep_dir: Path, comparison_ready: bool) -> SweepStatus:
        """A sweep directory without status.json: just launched, or it never started."""
        total = self._planned_total(sweep_dir)
        if self.launcher.is_running(sweep_dir):
            state, error = "starting", None
        else:
            state = "failed"
            error = f"the sweep process ended before writing {names.STATUS}"
            tail = log_tail(sweep_dir)
            if tail:
                error += f"; its log says:\n{tail}"
        return SweepStatus(
            sweep_id=sweep_dir.name,
            sweep_dir=str(sweep_dir),
            state=state,  # type: ignore[arg-type]
            total_runs=total,
            done_runs=0,
            diverged_runs=0,
            failed_runs=0,
            running=[],
            pending_runs=total,
            elapsed_s=None,
            started_at=None,
            finished_at=None,
            errors=[],
            diverged=[],
            error=error,
            comparison_ready=comparison_ready,
            next_step=_next_step(sweep_dir.name, state, comparison_ready),
        )

    def _planned_total(self, sweep_dir: Path) -> int:
        planned = files.read_planned_configs(sweep_dir)
        if planned is not None:
            return len(planned)
        experiment = files.read_experiment(sweep_dir)
        if experiment:
            from velocity.spec import build_sweep

            try:
                return len(build_sweep(experiment).expand())
            except (ValueError, ArithmeticError, RecursionError):
                return 0
        return 0

    # ------------------------------------------------------------------- compare

    def compare(self, sweep_id: str, detail: Detail = "summary") -> Verdict:
        """The verdict of a finished (or cancelled) sweep, its recommendation first."""
        sweep_dir = resolve_sweep(self.root, sweep_id)
        status = self._status(sweep_dir)
        finished = status.done_runs + status.diverged_runs
        if status.state in ACTIVE:
            raise ToolError(
                f"still running: {finished} of {status.total_runs} runs done; poll "
                f"sweep_status(sweep_id={sweep_dir.name!r}) until state is 'done', then call "
                "sweep_compare again"
            )
        extra_caveats: list[str] = []
        comparison: Comparison | dict[str, Any] | None
        try:
            comparison = self._wait_comparison(sweep_dir)
        except CorruptFileError as exc:
            comparison = _rebuild(sweep_dir)
            extra_caveats.append(
                f"its {exc.unreadable}; this verdict was rebuilt from the run files (re-render "
                f"the file with: velocity compare {sweep_dir})"
            )
        if comparison is None:
            if not files.has_runs(sweep_dir):
                raise ToolError(
                    f"sweep {sweep_dir.name} has no results to compare (state {status.state}"
                    + (f": {status.error}" if status.error else "")
                    + ")"
                )
            comparison = _rebuild(sweep_dir)
            extra_caveats.append(
                f"the sweep is {status.state} and wrote no {names.COMPARISON}; this verdict covers "
                f"only the {finished} of {status.total_runs} runs that finished"
            )
        elif isinstance(comparison, dict) and "recommendation" not in comparison:
            comparison = _rebuild(sweep_dir)
            extra_caveats.append(
                f"its {names.COMPARISON} predates the recommendation (an older velocity); this "
                "verdict was rebuilt from the run files"
            )
        return _verdict(sweep_dir, comparison, extra_caveats, detail)

    def heatmap(self, verdict: Verdict) -> tuple[bytes | None, str | None]:
        """The robustness heatmap (PNG bytes) of a compared sweep, or ``(None, why not)``.

        Its ``robustness.png`` when the sweep wrote one, else drawn now from its
        comparison (a sweep made before plots existed, or while matplotlib was missing).
        """
        sweep_dir = Path(verdict.sweep_dir)
        try:
            return files.read_picture(sweep_dir, names.ROBUSTNESS), None
        except OSError:
            pass
        from velocity.report.plots import INSTALL_HINT, plot_robustness

        try:
            comparison: Mapping[str, Any] | None = None
            with contextlib.suppress(CorruptFileError):
                comparison = files.read_comparison_object(sweep_dir)
            if not comparison:
                comparison = _rebuild(sweep_dir).model_dump()
            return plot_robustness(comparison).png, None
        except ImportError:
            reason = f"matplotlib is not installed on the server ({INSTALL_HINT})"
        except Exception as exc:  # a plot failure must not lose the verdict
            logger.warning("heatmap of %s failed", sweep_dir, exc_info=True)
            reason = f"{type(exc).__name__}: {exc}"
        return None, f"heatmap not included: {reason}"

    def _wait_comparison(self, sweep_dir: Path, timeout: float = 15.0) -> dict[str, Any] | None:
        """comparison.json as written, once the sweep has written both comparison files
        (None: none).

        The sweep writes its final status.json, then comparison.json, then
        comparison.md; while its process is still alive this waits for the last one.
        Raises :class:`CorruptFileError` when the file is there but not a JSON object.
        """
        deadline = time.monotonic() + timeout
        while (
            not files.has(sweep_dir, names.COMPARISON_MD)
            and time.monotonic() < deadline
            and self.launcher.process_alive(sweep_dir)
        ):
            time.sleep(0.1)
        return files.read_comparison_object(sweep_dir)

    def comparison_markdown(self, sweep_id: str) -> str:
        """The text of a finished sweep's comparison.md."""
        sweep_dir = resolve_sweep(self.root, sweep_id)
        if self._status(sweep_dir).state not in ACTIVE:
            with contextlib.suppress(CorruptFileError):
                self._wait_comparison(sweep_dir)
        try:
            return files.read_comparison_md(sweep_dir)
        except IsADirectoryError:
            raise ToolError(
                f"sweep {sweep_dir.name}: {names.COMPARISON_MD} is unreadable (a directory, not "
                "a file)"
            ) from None
        except FileNotFoundError:
            state = self._status(sweep_dir).state
            raise ToolError(
                f"sweep {sweep_dir.name} has no {names.COMPARISON_MD} yet (state {state}); it is "
                "written when the sweep ends"
            ) from None

    # ------------------------------------------------------------------- cancel

    def cancel(self, sweep_id: str) -> CancelResult:
        """Stop a running sweep (SIGTERM); finished runs are kept.

        A live sweep is stopped even when its status.json is unreadable; a dead one
        with an unreadable status.json is a ``ToolError`` naming the file.
        """
        sweep_dir = resolve_sweep(self.root, sweep_id)
        try:
            before: SweepStatus | None = self._status(sweep_dir)
        except ToolError as exc:
            if not self.launcher.is_running(sweep_dir):
                raise ToolError(
                    f"nothing to cancel: no sweep process is running for {exc}"
                ) from None
            before = None
        if before is not None and before.state not in ACTIVE:
            return CancelResult(
                sweep_id=sweep_dir.name,
                sweep_dir=str(sweep_dir),
                cancelled=False,
                state=before.state,
                message=f"nothing to cancel: the sweep is already {before.state}",
            )
        if before is not None and before.state == "starting":
            # let the sweep install its signal handling first, so it stops cleanly
            self.launcher.wait_status(sweep_dir, self.launcher_start_wait())
        try:
            ended = self.launcher.cancel(sweep_dir, self.cancel_wait_s)
        except ProcessLookupError:
            state = self._state_or(sweep_dir, "interrupted")
            return CancelResult(
                sweep_id=sweep_dir.name,
                sweep_dir=str(sweep_dir),
                cancelled=False,
                state=state,
                message=f"no live sweep process found; the sweep is {state}",
            )
        try:
            after: SweepStatus | None = self._status(sweep_dir)
        except ToolError:
            after = None
        state = after.state if after is not None else ("cancelled" if ended else "running")
        if not ended:
            message = (
                f"sent SIGTERM; the sweep is still stopping (state {state}): poll sweep_status"
            )
        elif after is None:
            message = (
                f"stopped; its {names.STATUS} is unreadable, so the finished runs are not known"
            )
        else:
            message = (
                f"stopped: {after.done_runs} of {after.total_runs} runs had finished and are "
                "kept; sweep_compare gives a partial verdict over them"
            )
        return CancelResult(
            sweep_id=sweep_dir.name,
            sweep_dir=str(sweep_dir),
            cancelled=True,
            state=state,  # type: ignore[arg-type]
            message=message,
        )

    def _state_or(self, sweep_dir: Path, default: str) -> Any:
        """The sweep's state, or ``default`` when its status.json is unreadable."""
        try:
            return self._status(sweep_dir).state
        except ToolError:
            return default

    # ------------------------------------------------------------------- list

    def sweeps(self) -> SweepList:
        """Every sweep directory under the root, oldest first.

        A sweep whose status.json is unreadable is listed with ``state`` null and the
        problem in ``error``; it does not hide the others.
        """
        sweeps = []
        for path in sweep_dirs(self.root):
            status = files.read_optional_status(path)
            try:
                state: Any = self._status(path).state
                error = None
            except ToolError as exc:
                state, error = None, str(exc)
            sweeps.append(
                SweepSummary(
                    sweep_id=path.name,
                    state=state,
                    total_runs=status.total_runs if status is not None else None,
                    done_runs=status.done_runs if status is not None else None,
                    started_at=status.started_at if status is not None else None,
                    comparison_ready=files.has(path, names.COMPARISON),
                    error=error,
                )
            )
        return SweepList(root=str(self.root), sweeps=sweeps)


# --------------------------------------------------------------------------- helpers


def _read_status(sweep_dir: Path) -> Status | None:
    """status.json (None when absent), a damaged field read as null; each running run's
    progress is read by :func:`_progress`.

    Raises
    ------
    ToolError
        status.json is not a JSON object, or names a state velocity never writes.
    """
    try:
        return files.read_status(sweep_dir)
    except FileNotFoundError:
        return None
    except CorruptFileError as exc:
        raise _corrupt(
            sweep_dir,
            exc,
            "velocity rewrites it whenever a run starts or ends; if "
            "no sweep process is running, start a new sweep with sweep_run",
        ) from None


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _count(runs: Mapping[str, RunState], state: str) -> int:
    """How many of status.json's runs are in ``state``."""
    return sum(1 for e in runs.values() if e.state == state)


def _run_errors(
    runs: Mapping[str, RunState], state: Literal["failed", "diverged"]
) -> list[RunError]:
    """The runs in ``state`` (failed or diverged) with their error."""
    return [
        RunError(run=name, error=str(entry.error or state))
        for name, entry in runs.items()
        if entry.state == state
    ]


def _all_ended(runs: Mapping[str, RunState], status: Status) -> bool:
    """Every planned run ended (done, diverged or failed)."""
    total = _or(status.total_runs, len(runs))
    return bool(runs) and len(runs) == total and sum(_count(runs, s) for s in ENDED) == total


def _progress(sweep_dir: Path, name: str) -> dict[str, int | None]:
    """A running run's round and rounds, from its progress.json."""
    progress = files.read_progress(files.run_dir(sweep_dir, name))
    if progress is None:
        return {"round": None, "rounds": None}
    return {"round": progress.round, "rounds": progress.rounds}


def _next_step(sweep_id: str, state: str, comparison_ready: bool) -> str:
    if state in ACTIVE:
        return f"poll sweep_status(sweep_id={sweep_id!r}) again in a few seconds"
    if state == "done":
        return f"call sweep_compare(sweep_id={sweep_id!r}) for the verdict"
    if comparison_ready or state in ("cancelled", "interrupted"):
        return (
            f"sweep_compare(sweep_id={sweep_id!r}) gives a partial verdict over the finished "
            "runs; start a new sweep with sweep_run to finish the matrix"
        )
    return "read error, fix the request and start a new sweep with sweep_run"


def _runs_formula(spec: Any, runs: int) -> str:
    if spec.shared.until == "decided":
        budget = f", at most budget = {spec.shared.budget}" if spec.shared.budget else ""
        return f"until decided: {runs} cells × max_repeats = {spec.shared.max_repeats}{budget}"
    repeats = spec.shared.repeats
    cells = runs // repeats
    return f"{cells} cells × {repeats} repeat{'s' if repeats != 1 else ''}"


def _extended_total(planned: list[Any], repeats: int | None, strategies: int, attacks: int) -> int:
    """The runs a sweep would have once extended (each new strategy in every condition,
    each new attack against every strategy, every cell with ``repeats`` repeats)."""
    cells = {spec.cell for spec in planned}
    labels = {spec.strategy.label() for spec in planned}
    conditions = {spec.attack_label for spec in planned}
    have = max((spec.repeat for spec in planned), default=0) + 1
    new_cells = strategies * len(conditions) + attacks * (len(labels) + strategies)
    if repeats is None:  # the cells keep their repeats; new ones get the sweep's
        return len(planned) + new_cells * have
    return (len(cells) + new_cells) * max(repeats, have)


def _param_info(param: Mapping[str, Any]) -> ParamInfo:
    """A strategy's or an attack's parameter (one schema dialect), its range as the CLI shows it."""
    return ParamInfo(
        type=param["type"],
        default=param["default"],
        nullable=param["nullable"],
        allowed=range_text(param),
        description=param["description"],
    )


def _example(name: str, params: dict[str, Any]) -> str:
    shown = [f"{k}={p['default']}" for k, p in params.items() if p.get("default") is not None]
    return name + (":" + ",".join(shown) if shown else "")


def _rebuild(sweep_dir: Path) -> Comparison:
    """The comparison of a sweep directory, built now from its files (nothing is written).

    A run file velocity cannot read makes that run failed (its error names the file);
    anything else that stops the rebuild is a ``ToolError``.
    """
    from velocity.report.comparison import comparison_of

    try:
        return comparison_of(sweep_dir)
    except Exception as exc:  # a damaged run file must not crash the tool
        logger.warning("rebuilding the comparison of %s failed", sweep_dir, exc_info=True)
        raise ToolError(
            f"sweep {sweep_dir.name}: cannot build its comparison from the run files "
            f"({type(exc).__name__}: {exc}); check each run's {names.SUMMARY} and {names.ROUNDS}"
        ) from None


def _recommendation(comparison: Comparison, detail: Detail) -> VerdictRecommendation:
    """comparison.json's recommendation; the summary drops each candidate's conditions."""
    data = comparison.recommendation.model_dump()
    if detail == "summary":
        data = {
            **data,
            "candidates": [_without_conditions(c) for c in data["candidates"]],
            "incomplete": [_without_conditions(c) for c in data["incomplete"]],
        }
    return VerdictRecommendation.model_validate(data)


def _without_conditions(score: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in score.items() if k != "conditions"}


def _verdict(
    sweep_dir: Path,
    comparison: Comparison | Mapping[str, Any],
    extra_caveats: list[str],
    detail: Detail,
) -> Verdict:
    """The tool's result from a comparison (see :class:`Verdict`); a comparison.json of
    another shape is a ``ToolError`` saying how to rebuild it."""
    try:
        if not isinstance(comparison, Comparison):
            comparison = Comparison.model_validate(comparison)
        recommendation = _recommendation(comparison, detail)
        ranking = comparison.ranking
        return Verdict(
            recommendation=recommendation,
            verdict=recommendation.reason,
            decision=comparison.decision,
            detail=detail,
            sweep_id=sweep_dir.name,
            sweep_dir=str(sweep_dir),
            state=comparison.header.state,
            by_attack=comparison.most_robust.by_attack,
            caveats=[*extra_caveats, *comparison.caveats],
            header=comparison.header,
            ranking=ranking if detail == "full" else ranking[:SUMMARY_ROWS],
            generated_at=comparison.generated_at,
            comparison_uri=comparison_uri(sweep_dir.name),
            **(_full_only(comparison) if detail == "full" else {}),
        )
    except (ValidationError, KeyError, TypeError, AttributeError) as exc:
        raise ToolError(
            f"the comparison of sweep {sweep_dir.name} does not match this server's schema "
            f"({type(exc).__name__}: {exc}); re-render it with: velocity compare {sweep_dir}"
        ) from None


def _full_only(comparison: Comparison) -> dict[str, Any]:
    """The fields only detail='full' carries: the lowest-loss winner and the runs without
    a normal result."""
    return {
        "winner": comparison.winner,
        "winner_attack": comparison.winner_attack,
        "winner_within_noise": comparison.winner_within_noise,
        "tied_with": comparison.tied_with,
        "failed": comparison.failed,
        "diverged": comparison.diverged,
        "not_run": comparison.not_run,
    }
