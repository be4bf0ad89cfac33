"""The names of a sweep directory's files: the one place they are spelled.

Every module that reads or writes a sweep directory takes its file names from
here (a test checks that no other module spells one); ``docs/files.md`` describes
each file. A sweep directory holds the sweep's own files (:data:`SWEEP_FILES`) and
one directory per run (:data:`RUN_FILES` and :data:`CHECKPOINT_DIR`).

A run is a directory beside the sweep's own files, so a run may not be named like
one of them: :func:`check_run_names` refuses that, before a sweep writes anything.

This module depends on nothing but the standard library: the lock (and with it the
MCP server's liveness checks) imports it.
"""

from __future__ import annotations

from collections.abc import Iterable

# --------------------------------------------------------------------------- the sweep's files

#: What this sweep runs and where: the RunSpecs, parallel, backend, repeats, rank_by.
PLAN = "plan.json"
#: The sweep's state and every run's, rewritten whenever a run starts or ends.
STATUS = "status.json"
#: Reproducibility: git, lock file, host, versions, command line.
MANIFEST = "manifest.json"
#: The experiment the MCP server was asked for (sweeps it starts).
EXPERIMENT = "experiment.json"
#: The detached sweep's stdout and stderr (sweeps the MCP server starts).
SWEEP_LOG = "sweep.log"
#: The driver's advisory lock (``velocity.sweepdir.lock``).
LOCK = ".lock"
#: One tidy row per run (``velocity.sweepdir.results``).
RESULTS = "results.csv"
#: The verdict, recommendation first (``velocity.sweepdir.comparison``).
COMPARISON = "comparison.json"
#: The verdict for people; written last, links the pictures.
COMPARISON_MD = "comparison.md"
#: Test accuracy per round: small multiples, one panel per condition.
CURVES = "curves.png"
#: Strategy × condition heatmap of final accuracy and accuracy drop.
ROBUSTNESS = "robustness.png"
#: The data each picture was drawn from.
PLOTS = "plots.json"
#: One self-contained page: verdict, tables, pictures, caveats, manifest.
REPORT = "report.html"

#: The pictures, in the order the reports show them.
PICTURES = (CURVES, ROBUSTNESS)
#: The reports ``velocity.report.render.render_all`` writes (rebuilt from the other files).
REPORTS = (RESULTS, CURVES, ROBUSTNESS, PLOTS, REPORT, COMPARISON, COMPARISON_MD)
#: The sweep-level files a sweep (re)writes; a resume refuses when one is not a file.
REWRITTEN = (PLAN, MANIFEST, STATUS, *REPORTS)
#: The start of the name of a file of runs queued into a running sweep by ``--extend``
#: (``.extend-<time>-<pid>.json``, :mod:`velocity.sweepdir.queue`).
QUEUED_PREFIX = ".extend-"
#: The lock that the driver and the extenders of a sweep take to queue runs.
QUEUE_LOCK = ".extend.lock"
#: What a launcher (the MCP server) puts in a directory before it starts a sweep into
#: it with ``velocity sweep DIR/experiment.json --out DIR``: the directory still
#: counts as empty for a fresh sweep.
LAUNCH_FILES = (EXPERIMENT, SWEEP_LOG, LOCK)
#: A directory holding any of these is a sweep directory.
MARKERS = (STATUS, PLAN, EXPERIMENT)
#: Every file (and the lock) at the top of a sweep directory: no run may be named so.
SWEEP_FILES = (
    PLAN,
    MANIFEST,
    STATUS,
    COMPARISON,
    COMPARISON_MD,
    RESULTS,
    REPORT,
    CURVES,
    ROBUSTNESS,
    PLOTS,
    EXPERIMENT,
    SWEEP_LOG,
    LOCK,
)

# --------------------------------------------------------------------------- a run's files

#: The resolved RunSpec (``RunSpec.model_validate`` reads it back).
CONFIG = "config.json"
#: ``{"state", "round", "rounds"}`` while the run goes, and at its end.
PROGRESS = "progress.json"
#: The deterministic per-round results.
ROUNDS = "rounds.csv"
#: Per-round wall times (never bit-identical, so kept out of ``rounds.csv``).
TIMINGS = "timings.csv"
#: How the run ended, its metrics and its error.
SUMMARY = "summary.json"
#: The run's own checkpoint directory (without a ``storage``).
CHECKPOINT_DIR = "checkpoint"
#: The final global model, in the checkpoint directory.
FINAL_CHECKPOINT = "final.npz"

#: The files of a run directory (the checkpoint directory aside).
RUN_FILES = (CONFIG, PROGRESS, ROUNDS, TIMINGS, SUMMARY)


def round_checkpoint(round_: int) -> str:
    """The file name of the checkpoint taken after round ``round_``: ``round_<k>.npz``."""
    return f"round_{round_}.npz"


def final_checkpoint_path() -> str:
    """Where a run's final model lies relative to its directory: ``checkpoint/final.npz``."""
    return f"{CHECKPOINT_DIR}/{FINAL_CHECKPOINT}"


# --------------------------------------------------------------------------- run names


def reserved(name: str) -> str | None:
    """The sweep file ``name`` would collide with (compared ignoring case), else None."""
    return {f.lower(): f for f in SWEEP_FILES}.get(name.lower())


def check_run_name(name: str) -> None:
    """Refuse (``ValueError``) a run name that is a sweep file's (ignoring case: file
    systems that ignore it would put the run's directory in the file's place)."""
    taken = reserved(name)
    if taken is not None:
        raise ValueError(
            f"run name {name!r} is the name of a sweep file ({taken}); "
            f"run names may not be any of {', '.join(SWEEP_FILES)}"
        )


def check_run_names(names: Iterable[str]) -> None:
    """:func:`check_run_name` of each name: the first that is a sweep file's is refused."""
    for name in names:
        check_run_name(name)


__all__ = [
    "CHECKPOINT_DIR",
    "COMPARISON",
    "COMPARISON_MD",
    "CONFIG",
    "CURVES",
    "EXPERIMENT",
    "FINAL_CHECKPOINT",
    "LOCK",
    "MANIFEST",
    "MARKERS",
    "PICTURES",
    "PLAN",
    "PLOTS",
    "PROGRESS",
    "QUEUED_PREFIX",
    "QUEUE_LOCK",
    "REPORT",
    "REPORTS",
    "RESULTS",
    "REWRITTEN",
    "ROBUSTNESS",
    "ROUNDS",
    "RUN_FILES",
    "STATUS",
    "SUMMARY",
    "SWEEP_FILES",
    "SWEEP_LOG",
    "TIMINGS",
    "check_run_name",
    "check_run_names",
    "final_checkpoint_path",
    "reserved",
    "round_checkpoint",
]
