"""Every read and write of a sweep directory's files, each in one function.

Writers take the file's model (:mod:`velocity.sweepdir.models`,
:mod:`velocity.sweepdir.comparison`) and write its JSON atomically
(:mod:`velocity.sweepdir.io`); a failed write raises ``OSError`` naming the file and
leaves the old one whole. Readers come in the forms their callers need:

* strict (``read_plan_runs``, ``read_config``): what a resume trusts, raising
  ``FileNotFoundError``, :class:`~velocity.sweepdir.io.CorruptFileError` (a
  ``ValueError`` naming the file) or a ``ValidationError``;
* lenient (``read_status``, ``read_progress``, ``read_plan_settings``): the model with
  any damaged value left out (:meth:`~velocity.sweepdir.models.FileModel.lenient`), so
  files of an older velocity, another writer or a hand edit still read;
* optional (``read_manifest``, ``read_optional_rounds``): what a report can do without,
  empty when absent or unreadable.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import ValidationError

from velocity.errors import format_validation_error
from velocity.spec import RunSpec
from velocity.sweepdir import names
from velocity.sweepdir.comparison import Comparison
from velocity.sweepdir.io import (
    CorruptFileError,
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    atomic_write_text,
    finite_float,
    load_object,
    read_csv,
    read_json,
    read_json_object,
    read_optional_csv,
    read_optional_json,
    utc_now,
)
from velocity.sweepdir.models import (
    ROUND_COLUMNS,
    TIMING_COLUMNS,
    FileModel,
    Plan,
    Progress,
    Status,
    Summary,
)

# --------------------------------------------------------------------------- the directory


def is_sweep_dir(path: Path) -> bool:
    """Whether ``path`` is a directory written by ``velocity sweep`` or the MCP server."""
    try:
        return path.is_dir() and any((path / m).is_file() for m in names.MARKERS)
    except OSError:  # a name too long, a permission error: not a sweep
        return False


def run_config_paths(sweep_dir: Path) -> list[Path]:
    """Every run directory's ``config.json``, sorted by run name."""
    return sorted(Path(sweep_dir).glob(f"*/{names.CONFIG}"))


def has_runs(sweep_dir: Path) -> bool:
    """Whether any run directory holds a ``config.json``."""
    return any(Path(sweep_dir).glob(f"*/{names.CONFIG}"))


def has(sweep_dir: Path, name: str) -> bool:
    """Whether the sweep file ``name`` (a :mod:`~velocity.sweepdir.names` constant) is a file."""
    try:
        return (Path(sweep_dir) / name).is_file()
    except OSError:
        return False


def exists(sweep_dir: Path, name: str) -> bool:
    """Whether the sweep file ``name`` exists (as a file or anything else)."""
    try:
        return (Path(sweep_dir) / name).exists()
    except OSError:
        return False


def size(sweep_dir: Path, name: str) -> int:
    """The size of a sweep file in bytes (0 when it cannot be seen)."""
    try:
        return (Path(sweep_dir) / name).stat().st_size
    except OSError:
        return 0


def discard(sweep_dir: Path, *files: str) -> None:
    """Remove sweep files (absent ones and errors are ignored)."""
    for name in files:
        with suppress(OSError):
            (Path(sweep_dir) / name).unlink()


def not_files(sweep_dir: Path, files: Iterable[str]) -> list[Path]:
    """Of ``files``, those present in ``sweep_dir`` as something else than a plain file."""
    out = []
    for name in files:
        path = Path(sweep_dir) / name
        if os.path.lexists(path) and (path.is_symlink() or not path.is_file()):
            out.append(path)
    return out


def _model_error(path: Path, exc: ValidationError) -> CorruptFileError:
    return CorruptFileError(path, format_validation_error(exc))


M = TypeVar("M", bound=FileModel)


def _lenient(path: Path, model: type[M]) -> M:
    """``path``'s object read leniently as ``model``; FileNotFoundError when absent,
    CorruptFileError when unreadable or not this model's."""
    data = load_object(path)
    if data is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    try:
        return model.lenient(data)
    except ValidationError as exc:
        raise _model_error(path, exc) from None


# --------------------------------------------------------------------------- plan.json


class NoRunsError(CorruptFileError):
    """A ``plan.json`` without a list of runs."""


def write_plan(sweep_dir: Path, plan: Plan) -> None:
    """Write ``plan.json`` (its one writer: ``velocity sweep``, which the MCP server launches)."""
    atomic_write_json(Path(sweep_dir) / names.PLAN, plan.to_json())


def read_plan_runs(sweep_dir: Path) -> list[RunSpec]:
    """The runs of ``plan.json``, validated (what ``--resume`` without CONFIG runs).

    Raises ``FileNotFoundError``, :class:`CorruptFileError` (not JSON),
    :class:`NoRunsError` or ``ValidationError`` (a run that does not validate).
    """
    path = Path(sweep_dir) / names.PLAN
    plan = read_json(path)
    runs = plan.get("runs") if isinstance(plan, dict) else None
    if not isinstance(runs, list):
        raise NoRunsError(path, "has no runs")
    return [RunSpec.model_validate(run) for run in runs]


def read_planned_configs(sweep_dir: Path) -> list[Any] | None:
    """``plan.json``'s runs as written (configs, not validated); None without a readable list."""
    runs = read_optional_json(Path(sweep_dir) / names.PLAN).get("runs")
    return runs if isinstance(runs, list) else None


def read_plan_settings(sweep_dir: Path) -> Plan | None:
    """``plan.json`` without its runs (``runs`` is empty), read leniently; None when it is
    absent or unreadable."""
    data = read_optional_json(Path(sweep_dir) / names.PLAN)
    if not data:
        return None
    try:
        return Plan.lenient({**data, "runs": []})
    except ValidationError:
        return None


# --------------------------------------------------------------------------- status.json


def write_status(sweep_dir: Path, status: Status) -> None:
    """Rewrite ``status.json``."""
    atomic_write_json(Path(sweep_dir) / names.STATUS, status.to_json())


def read_status(sweep_dir: Path) -> Status:
    """``status.json``, read leniently (a damaged field reads as null).

    Raises ``FileNotFoundError`` when absent and :class:`CorruptFileError` when it is
    unreadable, not a JSON object, or its ``state`` is not one velocity writes.
    """
    return _lenient(Path(sweep_dir) / names.STATUS, Status)


def read_optional_status(sweep_dir: Path) -> Status | None:
    """:func:`read_status`, or None when it is absent or unreadable."""
    try:
        return read_status(sweep_dir)
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- manifest.json


def write_manifest(sweep_dir: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest.json``."""
    atomic_write_json(Path(sweep_dir) / names.MANIFEST, dict(manifest))


def read_manifest(sweep_dir: Path) -> dict[str, Any]:
    """``manifest.json`` (``{}`` when absent or unreadable)."""
    return read_optional_json(Path(sweep_dir) / names.MANIFEST)


# --------------------------------------------------------------------------- experiment.json


def write_experiment(sweep_dir: Path, experiment: Mapping[str, Any]) -> Path:
    """Write ``experiment.json`` (the experiment the MCP server was asked for); its path."""
    path = Path(sweep_dir) / names.EXPERIMENT
    atomic_write_json(path, dict(experiment))
    return path


def read_experiment(sweep_dir: Path) -> dict[str, Any] | None:
    """``experiment.json``, or None when absent or unreadable."""
    return read_optional_json(Path(sweep_dir) / names.EXPERIMENT) or None


# --------------------------------------------------------------------------- sweep.log


def open_log(sweep_dir: Path) -> IO[bytes]:
    """``sweep.log`` opened for appending (the detached sweep's stdout and stderr)."""
    return (Path(sweep_dir) / names.SWEEP_LOG).open("ab")


def log_tail(sweep_dir: Path, lines: int = 15) -> str:
    """The last lines of ``sweep.log`` (empty when none)."""
    try:
        with (Path(sweep_dir) / names.SWEEP_LOG).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


# --------------------------------------------------------------------------- a run's files


def run_dir(sweep_dir: Path, run: str) -> Path:
    """The directory of run ``run``."""
    return Path(sweep_dir) / run


def write_config(run_dir: Path, spec: RunSpec) -> None:
    """Write a run's ``config.json`` (its RunSpec)."""
    atomic_write_json(Path(run_dir) / names.CONFIG, spec.to_json())


def has_config(run_dir: Path) -> bool:
    return (Path(run_dir) / names.CONFIG).is_file()


def read_config_object(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.json`` as written (not validated: it may be another version's).

    Raises ``FileNotFoundError``, other ``OSError`` s, or :class:`CorruptFileError`.
    """
    return read_json_object(Path(run_dir) / names.CONFIG)


def read_config(run_dir: Path) -> RunSpec:
    """A run's ``config.json`` validated as a RunSpec (``ValidationError`` when it is not)."""
    return RunSpec.model_validate(read_config_object(run_dir))


def read_optional_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.json`` as written, or ``{}`` when absent or unreadable."""
    return read_optional_json(Path(run_dir) / names.CONFIG)


def write_progress(run_dir: Path, progress: Progress) -> None:
    """Rewrite a run's ``progress.json``."""
    atomic_write_json(Path(run_dir) / names.PROGRESS, progress.to_json())


def read_progress(run_dir: Path) -> Progress | None:
    """A run's ``progress.json`` (leniently), or None when absent or unreadable."""
    try:
        return _lenient(Path(run_dir) / names.PROGRESS, Progress)
    except (OSError, ValueError):
        return None


def write_rounds(run_dir: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Rewrite a run's ``rounds.csv`` (rows keyed by :data:`ROUND_COLUMNS`)."""
    atomic_write_csv(Path(run_dir) / names.ROUNDS, ROUND_COLUMNS, rows)


def write_timings(run_dir: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    """Rewrite a run's ``timings.csv`` (rows keyed by :data:`TIMING_COLUMNS`)."""
    atomic_write_csv(Path(run_dir) / names.TIMINGS, TIMING_COLUMNS, rows)


def read_rounds(run_dir: Path, name: str = names.ROUNDS) -> list[dict[str, str]]:
    """The rows of ``rounds.csv`` (or ``timings.csv``: ``name``), as text.

    Raises ``OSError`` (``FileNotFoundError`` when absent), ``csv.Error`` or
    ``UnicodeDecodeError``.
    """
    return read_csv(Path(run_dir) / name)


def read_optional_rounds(run_dir: Path) -> list[dict[str, str]]:
    """The rows of ``rounds.csv``, ``[]`` when it is absent or unreadable."""
    return read_optional_csv(Path(run_dir) / names.ROUNDS)


def round_accuracy(run_dir: Path) -> dict[int, float]:
    """``{round: accuracy}`` of a run's ``rounds.csv``: rows with a finite loss and accuracy
    (``{}`` when the file is absent or unreadable)."""
    out: dict[int, float] = {}
    for row in read_optional_rounds(run_dir):
        r, acc = finite_float(row.get("round")), finite_float(row.get("accuracy"))
        if r is not None and acc is not None and finite_float(row.get("global_loss")) is not None:
            out[int(r)] = acc
    return out


def write_summary(run_dir: Path, summary: Summary | Mapping[str, Any]) -> dict[str, Any]:
    """Write a run's ``summary.json``; returns it as written (a mapping is validated first)."""
    model = summary if isinstance(summary, Summary) else Summary.model_validate(summary)
    data = model.to_json()
    atomic_write_json(Path(run_dir) / names.SUMMARY, data)
    return data


def read_summary_object(run_dir: Path) -> dict[str, Any]:
    """A run's ``summary.json`` as written; ``FileNotFoundError`` when absent, another
    ``OSError`` or :class:`CorruptFileError` when unreadable."""
    return read_json_object(Path(run_dir) / names.SUMMARY)


def write_run_file(run_dir: Path, relative: str, data: bytes) -> None:
    """Write one file of a run directory from its bytes (a Ray worker's), creating its
    directory (``checkpoint/``)."""
    path = Path(run_dir) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


# --------------------------------------------------------------------------- the reports


def write_comparison(sweep_dir: Path, comparison: Comparison | Mapping[str, Any]) -> None:
    """Write ``comparison.json`` (a mapping is validated as a :class:`Comparison` first)."""
    model = (
        comparison if isinstance(comparison, Comparison) else Comparison.model_validate(comparison)
    )
    atomic_write_json(Path(sweep_dir) / names.COMPARISON, model.to_json())


def read_comparison_object(sweep_dir: Path) -> dict[str, Any] | None:
    """``comparison.json`` as written (None when absent): an older velocity's may lack parts.

    :class:`CorruptFileError` when it is there but unreadable or not a JSON object.
    """
    return load_object(Path(sweep_dir) / names.COMPARISON)


def read_comparison(sweep_dir: Path) -> Comparison | None:
    """``comparison.json`` validated (None when absent); ``ValidationError`` when it is not
    this version's shape, :class:`CorruptFileError` when unreadable."""
    data = read_comparison_object(sweep_dir)
    return None if data is None else Comparison.model_validate(data)


def write_comparison_md(sweep_dir: Path, text: str) -> None:
    """Write ``comparison.md`` (last: its presence says the reports are complete)."""
    atomic_write_text(Path(sweep_dir) / names.COMPARISON_MD, text)


def read_comparison_md(sweep_dir: Path) -> str:
    """The text of ``comparison.md`` (bytes that are not UTF-8 replaced); ``OSError``."""
    return (Path(sweep_dir) / names.COMPARISON_MD).read_text(encoding="utf-8", errors="replace")


def write_picture(sweep_dir: Path, name: str, png: bytes) -> None:
    """Write one of the pictures (:data:`~velocity.sweepdir.names.PICTURES`)."""
    atomic_write_bytes(Path(sweep_dir) / name, png)


def remove_picture(sweep_dir: Path, name: str) -> None:
    """Remove a picture that was not drawn this time (absent is fine)."""
    (Path(sweep_dir) / name).unlink(missing_ok=True)


def read_picture(sweep_dir: Path, name: str) -> bytes:
    """A picture's PNG bytes; ``OSError`` when absent or unreadable."""
    return (Path(sweep_dir) / name).read_bytes()


def write_plots_data(sweep_dir: Path, plots: Mapping[str, Any], notes: Sequence[str]) -> None:
    """Write ``plots.json``: the data each picture was drawn from, and the notes."""
    atomic_write_json(Path(sweep_dir) / names.PLOTS, {"plots": dict(plots), "notes": list(notes)})


def write_report_html(sweep_dir: Path, html: str) -> Path:
    """Write ``report.html``; its path."""
    path = Path(sweep_dir) / names.REPORT
    atomic_write_text(path, html)
    return path


def report_path(sweep_dir: Path, name: str) -> Path:
    """The path of a report file (what a user is told to open)."""
    return Path(sweep_dir) / name


# --------------------------------------------------------------------------- a run that never ended


def failure_summary(spec: RunSpec, run_dir: Path, error: str) -> Summary:
    """The ``summary.json`` of a run that never ended (metrics null), without writing it.

    ``rounds_completed`` comes from ``progress.json`` when the run got that far.
    """
    progress = read_progress(run_dir)
    return Summary(
        name=spec.name,
        status="failed",
        error=error,
        strategy=spec.strategy.label(),
        attack=spec.attack_label,
        seed=spec.seed,
        repeat=spec.repeat,
        rounds=spec.rounds,
        rounds_completed=progress.round if progress is not None else 0,
        final_loss=None,
        final_accuracy=None,
        mean_loss=None,
        mean_accuracy=None,
        best_accuracy=None,
        elapsed_s=None,
        time_s=None,
        byzantine_clients=None,
        detection=None,
        checkpoint=None,
        started_at=None,
        finished_at=utc_now(),
    )


def write_failure(spec: RunSpec, run_dir: Path, error: str) -> dict[str, Any]:
    """Write the ``summary.json`` (and ``config.json`` if missing) of a run that never ended.

    For runs whose ``run_one`` raised or whose worker died: it could not write
    its own summary (see :func:`failure_summary`). Raises ``OSError`` when the
    files cannot be written (a full disk). Returns the summary as written.
    """
    run_dir = Path(run_dir)
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        run_dir.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    if not has_config(run_dir):
        write_config(run_dir, spec)
    summary = failure_summary(spec, run_dir, error)
    written = write_summary(run_dir, summary)
    write_progress(
        run_dir, Progress(state="failed", round=summary.rounds_completed, rounds=spec.rounds)
    )
    return written
