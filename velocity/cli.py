"""The ``velocity`` command line: ``sweep``, ``run``, ``report`` (or ``compare``), ``strategies``.

Every form ends in the one spec code path (``velocity.spec``): an experiment
file, or flags turned into the same ``SweepSpec`` by ``matrix_spec``. Nothing
here names a strategy or an attack: they come from ``velocity.strategy`` and the
Rust attack registry, so adding one needs no change in this file.

Lists on the command line: ``--strategies`` and ``--attacks`` take comma-separated
items, and a comma followed by ``key=value`` continues the parameters of the item
before it, so ``--attacks gaussian_noise:sigma=0.5,fraction=0.3,sign_flipping``
is two attacks. Both flags can also be repeated, one item each. In ``--attacks``,
``adaptive`` stands for every adaptive attack (one column each) and ``none`` for the
no-attack column, which is always run.

``--byzantine X`` is one Byzantine count (a fraction in (0, 1) or an integer count):
attacks without their own ``fraction``/``count`` take it, and each rule's tolerance
left open is set to the expected Byzantine clients per round (``velocity.byzantine``).

A user error (bad name or parameter, unknown key, missing or malformed file,
duplicate run names, an output directory that cannot be written, a run that could
not start or would not fit in memory) prints one line, ``velocity: error:
<message>``, exits with status 2 and writes nothing: every check runs before the
first file is written. No input reaches the user as a traceback: an ``OverflowError``,
``RecursionError`` or ``MemoryError`` is reported as that one line too.
Exit status otherwise: 0 success (a sweep whose runs diverged included: that is a result),
1 a run failed (or `velocity run` diverged), 130 interrupted. Output cut short by
its reader (``velocity strategies --json | head -1``) ends quietly with status 0.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from velocity.errors import SpecError, check_path_name, format_validation_error
from velocity.sweepdir import names

PROG = "velocity"

# flag -> Settings field, for the flags that override [shared]
_SHARED_FLAGS = {
    "rounds": "rounds",
    "clients": "clients",
    "seed": "seed",
    "dataset": "dataset",
    "model": "model_id",
    "partition": "partition",
    "alpha": "alpha",
    "shards_per_client": "shards_per_client",
    "samples_per_client": "samples_per_client",
    "local_epochs": "local_epochs",
    "local_steps": "local_steps",
    "momentum": "momentum",
    "device": "device",
    "batch_size": "batch_size",
    "lr": "lr",
    "fraction_fit": "fraction_fit",
    "byzantine": "byzantine",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as the one ``velocity: error:`` line."""

    def error(self, message: str) -> NoReturn:
        _print_error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(2)


#: OSErrors caused by a path the user gave (exit 2, like any bad input); others exit 1.
_USER_PATH_ERRORS = frozenset(
    {
        errno.ENAMETOOLONG,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ELOOP,
        errno.EEXIST,
        errno.EINVAL,
    }
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``velocity`` console script; returns the exit status."""
    try:
        _take_over_interrupts()
        argv = list(sys.argv[1:] if argv is None else argv)
        args = build_parser().parse_args(argv)
        handler: Callable[[argparse.Namespace, list[str]], int] = args.handler
        status = handler(args, argv)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
        return status
    except ValidationError as exc:
        _print_error(format_validation_error(exc))
        return 2
    except (SpecError, ValueError) as exc:
        _print_error(str(exc))
        return 2
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        _print_error(f"{exc.strerror or exc}{where}")
        return 2 if exc.errno in _USER_PATH_ERRORS else 1
    except OverflowError as exc:
        _print_error(f"a number is too large: {exc}")
        return 2
    except RecursionError:
        _print_error("the input nests too deeply")
        return 2
    except MemoryError:
        _print_error("out of memory; use a smaller dataset, model or number of clients")
        return 1
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130


def _take_over_interrupts() -> None:
    """From here on a Ctrl-C raises KeyboardInterrupt into ``main``'s ``try``: put back
    Python's handler where ``velocity.__main__`` installed its start-up one."""
    try:
        handler = signal.getsignal(signal.SIGINT)
        if getattr(handler, "velocity_startup", False):
            signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread
        pass


def _silence_stdout() -> None:
    """The reader closed stdout (``| head``): drop what is left, and the final flush."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("velocity-fl")
    except Exception:  # not installed as a distribution (a bare checkout)
        from velocity._core import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(
        prog=PROG,
        description="Which federated-learning strategy holds up against the attacks you fear?",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sweep = sub.add_parser(
        "sweep",
        help="run a strategy × attack matrix in parallel and rank it",
        description=(
            "Run an experiment file, or every --strategies × (no attack + each of --attacks). "
            "Flags given with CONFIG override its [shared] values."
        ),
    )
    sweep.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="experiment file (.toml or .json): [shared] + [[runs]]",
    )
    sweep.add_argument(
        "--strategies",
        "--strategy",
        action="append",
        metavar="LIST",
        help="e.g. FedAvg,FedMedian,Krum:f=2 (repeatable)",
    )
    sweep.add_argument(
        "--attacks",
        "--attack",
        action="append",
        metavar="LIST",
        help="e.g. gaussian_noise:sigma=0.5,fraction=0.3,sign_flipping "
        "(repeatable); 'adaptive': every adaptive attack; every strategy also runs with "
        "no attack ('none')",
    )
    _add_shared_flags(sweep)
    sweep.add_argument("--repeats", type=int, help="seeds per cell (mean ± std)")
    sweep.add_argument(
        "--parallel", type=int, help="runs executing at once (default: min(CPUs, runs))"
    )
    _add_rank_by(sweep)
    sweep.add_argument("--out", metavar="DIR", help="sweep directory (default out/<time>-sweep)")
    sweep.add_argument(
        "--resume",
        metavar="DIR",
        help="finish the sweep in DIR: skip its finished runs, run the rest",
    )
    from velocity.spec import DEFAULT_MAX_REPEATS

    sweep.add_argument(
        "--until",
        choices=("decided",),
        help="decided: one repeat of every cell, then repeats only for the strategies still "
        "in the running, until the recommendation is decided, --max-repeats or --budget "
        "(instead of --repeats)",
    )
    sweep.add_argument(
        "--max-repeats",
        type=int,
        metavar="K",
        help=f"with --until decided: at most K repeats per cell (default {DEFAULT_MAX_REPEATS})",
    )
    sweep.add_argument(
        "--budget",
        type=int,
        metavar="RUNS",
        help="with --until decided: at most RUNS runs in all (default: no limit)",
    )
    sweep.add_argument(
        "--extend",
        metavar="DIR",
        help="add runs to the sweep in DIR, finished or running: --repeats N (repeats per "
        "cell), --strategies (each in every condition), --attacks (each against every "
        "strategy); its settings stay",
    )
    sweep.add_argument(
        "--backend",
        choices=("local", "ray"),
        help="where runs execute: local processes (default) or Ray (pip install "
        "'velocity-fl[ray]'); overrides [shared] backend",
    )
    sweep.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --backend ray: the cluster to run on, e.g. 10.0.0.5:6379 or auto "
        "(default: $RAY_ADDRESS, else a Ray instance started for this sweep)",
    )
    sweep.set_defaults(handler=_cmd_sweep)

    run = sub.add_parser(
        "run",
        help="one FL run with a progress bar",
        description="Run one strategy (with any attacks) and write its files.",
    )
    run.add_argument("--strategy", required=True, help="e.g. FedMedian or Krum:f=2")
    run.add_argument(
        "--attack",
        "--attacks",
        dest="attacks",
        action="append",
        metavar="ATTACK",
        help="e.g. sign_flipping:fraction=0.3 (repeatable; all act in this run)",
    )
    _add_shared_flags(run)
    run.add_argument("--name", help="run name (default from strategy and attacks)")
    run.add_argument(
        "--storage",
        metavar="URI",
        help="checkpoint location local://DIR (default DIR/<name>/checkpoint)",
    )
    run.add_argument(
        "--out", metavar="DIR", help="files go to DIR/<name>/ (default out/<time>-run)"
    )
    run.set_defaults(handler=_cmd_run)

    report = sub.add_parser(
        "report",
        aliases=["compare"],
        help=f"re-render a sweep dir's reports: {names.COMPARISON}/.md, PNGs, {names.REPORT}",
        description=f"Re-render {names.COMPARISON}, {names.COMPARISON_MD}, {names.RESULTS}, "
        f"{names.CURVES}, {names.ROBUSTNESS} and {names.REPORT} from the files of an existing "
        "sweep (any velocity version's) and print its verdict. `velocity compare` is the same "
        "command.",
    )
    report.add_argument("sweep_dir", metavar="DIR")
    _add_rank_by(report, default_text=f"the sweep's own ({names.PLAN}), else accuracy")
    report.set_defaults(handler=_cmd_report)

    strategies = sub.add_parser(
        "strategies", help="list strategies, attacks, datasets and models with parameters"
    )
    output = strategies.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_argument(
        "--markdown",
        action="store_true",
        help="the strategies and attacks tables of README.md (generated from the registries)",
    )
    strategies.set_defaults(handler=_cmd_strategies)
    return parser


def _add_rank_by(parser: argparse.ArgumentParser, default_text: str = "accuracy") -> None:
    from velocity.spec import RANK_BY

    parser.add_argument(
        "--rank-by",
        choices=RANK_BY,
        help="what the verdict ranks by: worst-case final test accuracy or loss "
        f"(default: {default_text}; overrides [shared] rank_by)",
    )


def _add_shared_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, help="FL rounds (default 20)")
    parser.add_argument("--clients", type=int, help="number of clients (default 10)")
    parser.add_argument("--seed", type=int, help="seed (default 42)")
    parser.add_argument(
        "--dataset",
        metavar="ID",
        help="digits (default), synthetic, fashion_mnist, mnist, idx:DIR, module:callable, "
        "owner/name",
    )
    parser.add_argument("--model", metavar="ID", help="logreg (default), mlp, ...")
    parser.add_argument("--partition", help="iid (default), dirichlet or shards")
    parser.add_argument("--alpha", type=float, help="Dirichlet concentration (default 0.5)")
    parser.add_argument(
        "--shards-per-client", type=int, help="label-sorted shards per client (default 2)"
    )
    parser.add_argument(
        "--samples-per-client", type=int, help="training samples per client, at most (default all)"
    )
    parser.add_argument("--local-epochs", type=int, help="local epochs per round (default 1)")
    parser.add_argument(
        "--local-steps", type=int, help="local minibatch steps per round instead of epochs"
    )
    parser.add_argument("--momentum", type=float, help="client SGD momentum in [0, 1) (default 0)")
    parser.add_argument("--device", help="torch models: auto (default), cpu or cuda")
    parser.add_argument("--batch-size", type=int, help="local minibatch size (default 32)")
    parser.add_argument("--lr", type=float, help="local learning rate (default 0.1)")
    parser.add_argument(
        "--fraction-fit",
        type=float,
        help="share of clients sampled per round, in (0, 1] (default 1)",
    )
    parser.add_argument(
        "--byzantine",
        type=_byzantine_number,
        metavar="X",
        help="Byzantine clients: a fraction in (0, 1) (0.2) or an integer count (2) of all "
        "clients; sets each attack's fraction/count and each rule's f per round "
        "(round(X × clients per round)) where they are not given",
    )


def _byzantine_number(text: str) -> int | float:
    from velocity.byzantine import from_text

    return from_text(text)


_byzantine_number.__name__ = "number"  # argparse: "invalid number value: 'x'"


def split_items(values: Sequence[str] | None) -> list[str]:
    """Split repeated, comma-separated list flags into items (``velocity.spec.split_items``).

    >>> split_items(["Krum:f=2,FedAvg", "gaussian_noise:sigma=0.5,fraction=0.3,zero"])
    ['Krum:f=2', 'FedAvg', 'gaussian_noise:sigma=0.5,fraction=0.3', 'zero']
    """
    from velocity.spec import split_items as split

    return split(values)


# --------------------------------------------------------------------------- sweep


def _cmd_sweep(args: argparse.Namespace, argv: list[str]) -> int:
    from velocity.engine.sweep import run_sweep

    if args.extend:
        return _cmd_extend(args, argv)
    out, resume = _sweep_out(args)
    if args.until and args.repeats is not None:
        raise SpecError(
            "--repeats and --until decided conflict: --until decided chooses the repeats; "
            "use --max-repeats to bound them"
        )
    runs, shared, config_path = _sweep_runs(args, resume_dir=out if resume else None)
    parallel = shared.parallel if args.parallel is None else _setting("parallel", args.parallel)
    execution = _execution(args, shared)
    runs, planner = _until(args, shared, runs, out if resume else None, execution["rank_by"])
    result = run_sweep(
        runs,
        out,
        parallel=parallel,
        resume=resume,
        command=[PROG, *argv],
        config_path=config_path,
        planner=planner,
        **execution,
    )
    _print_sweep_result(result)
    return result.exit_code


def _until(
    args: argparse.Namespace, shared: Any, runs: list[Any], resume_dir: Path | None, rank_by: Any
) -> tuple[list[Any], Any]:
    """``(runs, planner)``: a sweep run until decided gets its first repeat and a planner.

    A resumed sweep keeps its ``plan.json`` settings (``--max-repeats``/``--budget``
    may raise them); a new one takes the flags, else ``[shared]``.
    """
    from velocity.engine.until import UntilDecided, check_limits, first_repeat
    from velocity.sweepdir import files

    plan = files.read_plan_settings(resume_dir) if resume_dir is not None else None
    resumed = plan is not None and plan.until == "decided"
    until = args.until or ("decided" if resumed else shared.until)
    if until != "decided":
        for flag, value in (("--max-repeats", args.max_repeats), ("--budget", args.budget)):
            if value is not None:
                raise SpecError(f"{flag} needs --until decided (it bounds its repeats)")
        return runs, None
    if plan is not None and not resumed:
        raise SpecError(
            f"--until decided cannot resume {resume_dir}: it was planned with fixed repeats; "
            f"add repeats with --extend {resume_dir} --repeats N"
        )
    limits: Any = plan if resumed else shared
    from velocity.spec import DEFAULT_MAX_REPEATS

    max_repeats = args.max_repeats
    if max_repeats is None:
        max_repeats = limits.max_repeats or DEFAULT_MAX_REPEATS
    budget = args.budget if args.budget is not None else limits.budget
    if not resumed:
        runs = first_repeat(runs)
    check_limits(max_repeats, budget, len({spec.cell for spec in runs}))
    planner = UntilDecided(
        max_repeats=max_repeats,
        budget=budget,
        rank_by=rank_by,
        previous=plan.decision if plan is not None else None,
    )
    return runs, planner


def _cmd_extend(args: argparse.Namespace, argv: list[str]) -> int:
    """``velocity sweep --extend DIR [--repeats N] [--strategies ...] [--attacks ...]``."""
    from velocity.engine.extend import Queued, extend_sweep, plan_extension, planned_runs
    from velocity.engine.sweep import run_sweep

    sweep_dir = check_path_name(args.extend, "--extend")
    for flag, value in (
        ("CONFIG", args.config),
        ("--out", args.out),
        ("--resume", args.resume),
        ("--until", args.until),
    ):
        if value:
            raise SpecError(f"--extend adds runs to DIR as it is: it takes no {flag}")
    runs = planned_runs(sweep_dir)
    new = plan_extension(
        runs,
        repeats=args.repeats,
        strategies=split_items(args.strategies),
        attacks=split_items(args.attacks),
        settings=_shared_overrides(args),
    )
    from velocity.report.comparison import plan_rank_by
    from velocity.spec import SharedSettings

    shared = SharedSettings(rank_by=plan_rank_by(sweep_dir))
    execution = _execution(args, shared)
    parallel = None if args.parallel is None else _setting("parallel", args.parallel)

    def resume() -> Any:
        runs, planner = _until(args, shared, planned_runs(sweep_dir), sweep_dir, shared.rank_by)
        return run_sweep(
            runs,
            sweep_dir,
            parallel=parallel,
            resume=True,
            command=[PROG, *argv],
            planner=planner,
            **execution,
        )

    result = extend_sweep(sweep_dir, new, run=resume)
    if isinstance(result, Queued):
        who = f" (pid {result.pid})" if result.pid else ""
        print(
            f"extend: {len(new)} runs queued into the running sweep {sweep_dir}{who}; its "
            "driver runs them when its current runs are done"
        )
        return 0
    _print_sweep_result(result)
    return int(result.exit_code)


def _sweep_out(args: argparse.Namespace) -> tuple[Path, bool]:
    if args.resume:
        resume = check_path_name(args.resume, "--resume")
        if args.out and check_path_name(args.out, "--out") != resume:
            raise SpecError("give either --out or --resume (the sweep directory), not both")
        return resume, True
    return (check_path_name(args.out, "--out") if args.out else default_out("sweep")), False


def _execution(args: argparse.Namespace, shared: Any) -> dict[str, Any]:
    """run_sweep's backend arguments: the flags, else the experiment's [shared] values."""
    backend = args.backend or shared.backend
    if args.ray_address and backend != "ray":
        raise SpecError(f"--ray-address needs --backend ray (the backend is {backend!r})")
    return {
        "backend": backend,
        "ray_address": args.ray_address or shared.ray_address,
        "ray_gpus": shared.ray_gpus,
        "rank_by": args.rank_by or shared.rank_by,
    }


def _sweep_runs(
    args: argparse.Namespace, resume_dir: Path | None
) -> tuple[list[Any], Any, Path | None]:
    """(runs, the experiment's [shared] settings, experiment file) from CONFIG, flags or a plan."""
    from velocity.spec import SharedSettings, build_sweep, load_experiment, matrix_spec

    overrides = _shared_overrides(args)
    if args.repeats is not None:
        overrides["repeats"] = args.repeats
    if args.config and (args.strategies or args.attacks):
        raise SpecError("give an experiment file or --strategies/--attacks, not both")
    if args.config:
        config_path = check_path_name(args.config, "CONFIG")
        spec = load_experiment(config_path)
        if overrides:
            spec = build_sweep(
                {
                    "shared": {**spec.shared.model_dump(), **overrides},
                    "runs": [entry.model_dump() for entry in spec.runs],
                }
            )
        return spec.expand(), spec.shared, config_path
    if args.strategies:
        if not split_items(args.strategies):
            raise SpecError("--strategies is empty; e.g. --strategies FedAvg,FedMedian")
        spec = matrix_spec(split_items(args.strategies), split_items(args.attacks), **overrides)
        return spec.expand(), spec.shared, None
    if args.attacks:
        raise SpecError("--attacks needs --strategies (which strategies face the attacks?)")
    if resume_dir is not None:
        if overrides:
            raise SpecError(
                f"--resume {resume_dir} without CONFIG reruns its {names.PLAN} as it is; "
                f"it cannot change {', '.join(sorted(overrides))}"
            )
        from velocity.report.comparison import plan_rank_by

        return _planned_runs(resume_dir), SharedSettings(rank_by=plan_rank_by(resume_dir)), None
    raise SpecError(
        "give an experiment file or --strategies, e.g. velocity sweep "
        "--strategies FedAvg,FedMedian --rounds 10"
    )


def _planned_runs(sweep_dir: Path) -> list[Any]:
    from velocity.sweepdir import files

    try:
        return files.read_plan_runs(sweep_dir)
    except FileNotFoundError:
        raise SpecError(
            f"cannot resume {sweep_dir}: not a sweep directory (no {names.PLAN})"
        ) from None
    except files.NoRunsError:
        raise SpecError(f"cannot resume {sweep_dir}: {names.PLAN} has no runs") from None
    except ValidationError as exc:
        raise SpecError(f"{sweep_dir / names.PLAN}: {format_validation_error(exc)}") from None
    except ValueError as exc:
        raise SpecError(f"cannot resume {sweep_dir}: {names.PLAN} is malformed: {exc}") from None


def _print_sweep_result(result: Any) -> None:
    from velocity.report.markdown import render_console

    total = len(result.runs)
    done = sum(1 for r in result.runs.values() if r.state == "done")
    diverged = sum(1 for r in result.runs.values() if r.state == "diverged")
    if result.state == "cancelled":
        print(
            f"Sweep cancelled: {done} of {total} runs finished. "
            f"Resume with: velocity sweep --resume {result.sweep_dir}"
        )
    else:
        failed = len(result.failed)
        print(
            f"Sweep {result.state}: {done} of {total} runs done"
            + (f", {diverged} diverged" if diverged else "")
            + (f", {failed} failed" if failed else "")
            + f" in {result.wall_s:.1f}s with {result.parallel} worker"
            + ("s" if result.parallel != 1 else "")
        )
    if result.comparison is not None:
        print(render_console(result.comparison, result.sweep_dir))
    if result.error:
        _print_error(result.error)


# --------------------------------------------------------------------------- run


def _cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from velocity.engine.progress import describe, make_progress
    from velocity.engine.sweep import ensure_writable_dir
    from velocity.sim.server import check_spec, run_one
    from velocity.spec import build_sweep

    shared = _shared_overrides(args)
    if args.storage:
        shared["storage"] = args.storage
    entry: dict[str, Any] = {"strategy": args.strategy, "attacks": split_items(args.attacks)}
    if args.name:
        entry["name"] = args.name
    spec = build_sweep({"shared": shared, "runs": [entry]}).expand()[0]
    names.check_run_name(spec.name)  # its directory goes where a sweep keeps its files
    out = check_path_name(args.out, "--out") if args.out else default_out("run")
    check_spec(spec)
    run_dir = out / spec.name
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise SpecError(f"output directory {run_dir} is not empty; choose another --out")
    ensure_writable_dir(run_dir)
    display = make_progress(1)
    display.run_started(spec.name, spec.rounds)
    try:
        summary = run_one(
            spec,
            run_dir,
            num_threads=None,
            on_round=lambda r, n: display.run_round(spec.name, r, n),
        )
    except KeyboardInterrupt:
        display.close()
        _print_error(f"interrupted; partial files in {run_dir}")
        return 130
    display.run_finished(
        spec.name, summary["status"], describe(summary) if summary["status"] == "done" else ""
    )
    display.close()
    if summary["status"] == "diverged":
        _print_error(f"run {spec.name} diverged: {summary.get('error')}")
        print(f"Files: {run_dir}")
        return 1
    if summary["status"] != "done":
        _print_error(f"run {spec.name} failed: {summary.get('error')}")
        print(f"Files: {run_dir}")
        return 1
    print(
        f"{spec.name}: final loss {summary['final_loss']:.4f}, "
        f"accuracy {100 * summary['final_accuracy']:.1f}% after {summary['rounds_completed']} "
        f"rounds ({summary['elapsed_s']:.1f}s)"
    )
    written = ", ".join((names.CONFIG, names.ROUNDS, names.SUMMARY, str(summary["checkpoint"])))
    print(f"Files: {run_dir} ({written})")
    return 0


# --------------------------------------------------------------------------- report, strategies


def _sweep_dir_arg(args: argparse.Namespace) -> Path:
    from velocity.sweepdir import files

    sweep_dir = check_path_name(args.sweep_dir, "DIR")
    if not sweep_dir.is_dir():
        raise SpecError(f"no such directory: {sweep_dir}")
    if not files.has_runs(sweep_dir):
        raise SpecError(f"{sweep_dir} holds no runs (no <run>/{names.CONFIG})")
    return sweep_dir


def _cmd_report(args: argparse.Namespace, argv: list[str]) -> int:
    """``velocity report`` (alias ``compare``): every report rewritten, the verdict printed.

    Exit 0 when every report the data allows was written (a sweep where nothing
    finished has no plots to draw, and says so), 1 when a plot or the page failed.
    """
    from velocity.report.markdown import render_console
    from velocity.report.render import render_all
    from velocity.sweepdir import files

    sweep_dir = _sweep_dir_arg(args)
    rendered = render_all(sweep_dir, rank_by=args.rank_by)
    print(render_console(rendered.comparison, sweep_dir))
    written = ", ".join(path.name for path in rendered.files)
    print(f"Wrote {written} in {sweep_dir} ({rendered.elapsed_s:.2f} s)")
    for note in rendered.notes:
        _print_error(note)
    html = files.report_path(sweep_dir, names.REPORT)
    if html in rendered.files:
        print(f"Report: {html}")
    return 1 if rendered.failures or html not in rendered.files else 0


def catalog() -> dict[str, Any]:
    """Every strategy, pre-aggregator, attack, dataset and model, with parameters
    (``strategies --json``)."""
    from velocity.attacks import attack_schemas
    from velocity.catalog import list_datasets
    from velocity.preagg import preaggregator_schemas
    from velocity.sim.models import list_models
    from velocity.strategy import strategy_schemas

    return {
        "strategies": strategy_schemas(),
        "preaggregators": preaggregator_schemas(),
        "attacks": attack_schemas(),
        "datasets": list_datasets(),
        "models": list_models(),
    }


def _cmd_strategies(args: argparse.Namespace, argv: list[str]) -> int:
    info = catalog()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    if args.markdown:
        print(registry_markdown(info), end="")
        return 0
    lines = ["Strategies (--strategies Name:param=value,...)"]
    for name, schema in info["strategies"].items():
        lines.append(f"  {name}: {schema['description']}")
        lines += [
            f"      {p}: {s['type']} = {s['default']}  ({_range(s)})  {s['description']}"
            for p, s in schema["params"].items()
        ]
    lines += ["", "Pre-aggregators, before a rule (--strategies 'Pre:param=value>...>Rule')"]
    for name, schema in info["preaggregators"].items():
        lines.append(f"  {name}: {schema['description']}")
        lines += [
            f"      {p}: {s['type']} = {s['default']}  ({_range(s)})  {s['description']}"
            for p, s in schema["params"].items()
        ]
    lines += ["", "Attacks (--attacks name:param=value,...)"]
    for name, schema in info["attacks"].items():
        kind = schema["kind"] + (", adaptive" if schema["adaptive"] else "")
        lines.append(f"  {name} [{kind}]: {schema['description']}")
        lines += [
            f"      {p}: {s['type']} = {s['default']}  ({_range(s)})  {s['description']}"
            for p, s in schema["params"].items()
        ]
    lines += ["", "Datasets (--dataset)"]
    lines += [f"  {name}: {text}" for name, text in info["datasets"].items()]
    lines += ["", "Models (--model)"]
    lines += [f"  {name}: {text}" for name, text in info["models"].items()]
    print("\n".join(lines))
    return 0


def _range(param: dict[str, Any]) -> str:
    """A strategy's or an attack's parameter range (``(0.0, 1.0]``, ``>= 0.0``), ``or None``."""
    from velocity._inline import range_text

    return range_text(param) + (" or None" if param.get("nullable") else "")


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _params_cell(params: dict[str, Any]) -> str:
    """``name``=default (range) for each parameter, or – for none."""
    shown = [f"`{p}`={s['default']} ({_range(s)})" for p, s in params.items()]
    return "; ".join(shown) if shown else "–"


def _capabilities(schema: dict[str, Any]) -> str:
    """What a strategy's registry entry declares beyond aggregating one round."""
    declared = []
    if not schema["robust"]:
        declared.append("non-robust reference")
    if schema["selection"]:
        declared.append("selection (reports kept clients)")
    if schema["tolerance"]:
        declared.append(f"tolerance `{schema['tolerance']['param']}`")
    if schema["proximal_param"]:
        declared.append(f"proximal client term `{schema['proximal_param']}`")
    if schema["uses_previous_aggregate"]:
        declared.append("uses the previous aggregate")
    return ", ".join(declared) if declared else "–"


def registry_markdown(info: dict[str, Any] | None = None) -> str:
    """The strategies and attacks tables of README.md, from the registries
    (``velocity strategies --markdown``)."""
    info = catalog() if info is None else info
    lines = [
        "| strategy | parameters (default, range) | rule | declares | paper |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, schema in info["strategies"].items():
        aliases = f" (also {', '.join(f'`{a}`' for a in schema['aliases'])})"
        cells = [
            f"`{name}`" + (aliases if schema["aliases"] else ""),
            _params_cell(schema["params"]),
            schema["description"],
            _capabilities(schema),
            schema["reference"],
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += [
        "",
        "Pre-aggregators run before a rule, written `Pre>Rule` (docs/strategies.md):",
        "",
        "| pre-aggregator | parameters (default, range) | what it does | paper |",
        "| --- | --- | --- | --- |",
    ]
    for name, schema in info["preaggregators"].items():
        aliases = f" (also {', '.join(f'`{a}`' for a in schema['aliases'])})"
        cells = [
            f"`{name}`" + (aliases if schema["aliases"] else ""),
            _params_cell(schema["params"]),
            schema["description"],
            schema["reference"],
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    attacks = info["attacks"]
    common = [
        p
        for p in next(iter(attacks.values()))["params"]
        if all(p in a["params"] for a in attacks.values())
    ]
    first = next(iter(attacks.values()))["params"]
    lines += [
        "",
        "Every attack also takes "
        + ", ".join(f"`{p}`={first[p]['default']} ({_range(first[p])})" for p in common)
        + ": how many clients are Byzantine (`count`, else `fraction` of them, fixed by the "
        "seed) and in which rounds the attack is active.",
        "",
        "| attack | kind | parameters (default, range) | what it does | paper |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, schema in attacks.items():
        own = {p: s for p, s in schema["params"].items() if p not in common}
        cells = [
            f"`{name}`",
            schema["kind"] + (", adaptive" if schema["adaptive"] else ""),
            _params_cell(own),
            schema["description"],
            schema["reference"],
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- helpers


def _setting(field: str, value: Any) -> Any:
    """One ``[shared]`` execution setting given as a flag, checked like in a file."""
    from velocity.spec import SharedSettings

    try:
        return getattr(SharedSettings.model_validate({field: value}), field)
    except ValidationError as exc:
        message = format_validation_error(exc).removeprefix(f"{field}: ")
        raise SpecError(f"--{field}: {message}") from None


def _shared_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        field: getattr(args, flag)
        for flag, field in _SHARED_FLAGS.items()
        if getattr(args, flag, None) is not None
    }


def default_out(kind: str) -> Path:
    """``out/<UTC timestamp>-<kind>``, e.g. ``out/20261128T153000Z-sweep`` (never reused)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = Path("out") / f"{stamp}-{kind}"
    suffix = 2
    while path.exists():
        path = Path("out") / f"{stamp}-{kind}-{suffix}"
        suffix += 1
    return path


def _print_error(message: str) -> None:
    one_line = " ".join(message.split())
    print(f"{PROG}: error: {one_line}", file=sys.stderr, flush=True)
