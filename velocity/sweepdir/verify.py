"""What ``--resume`` trusts: :func:`verify_finished_run` says whether a run's files are complete.

A run counts as finished only when its summary, its ``rounds.csv`` and
``timings.csv`` and its checkpoint are complete and agree; anything less is rerun,
and the sweep says why (``rounds.csv has 2 of its 3 rounds``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, NamedTuple

from velocity.spec import RunSpec
from velocity.sweepdir import files, names

#: Run states that are results: a diverged run broke under its setting, which is an
#: outcome of the experiment (deterministic, so a resume keeps it), not a fault.
FINISHED = ("done", "diverged")


class FinishedCheck(NamedTuple):
    """What :func:`verify_finished_run` found in a run directory.

    ``summary`` is set only for a finished run whose files are complete (resume
    keeps it); ``problem`` says why a run that claims to be finished, or whose
    files are unreadable, is not trusted (resume reruns it). Both None: the run
    did not finish (no summary, or it failed or was cancelled) and simply reruns.
    """

    summary: dict[str, Any] | None
    problem: str | None


_METRICS = ("final_loss", "final_accuracy", "mean_loss", "mean_accuracy", "best_accuracy")


def verify_finished_run(run_dir: Path, spec: RunSpec) -> FinishedCheck:
    """Whether ``run_dir`` holds a complete finished (done or diverged) run of ``spec``.

    Complete means: ``summary.json`` is a JSON object for this run with status done
    or diverged, ``rounds_completed`` equal to ``spec.rounds`` (done) or below it
    (diverged: the rounds before the one that broke), and finite metrics;
    ``rounds.csv`` and ``timings.csv`` have exactly ``rounds_completed`` rows,
    rounds 1, 2, ... with finite loss and accuracy, the last matching the summary;
    and the checkpoint the summary names (``checkpoint/final.npz``) loads, with
    finite parameters, of this run and its last completed round. The config is
    checked by the caller (a changed config is a refusal, not a rerun).
    """
    try:
        summary = files.read_summary_object(run_dir)
    except FileNotFoundError:
        return FinishedCheck(None, None)
    except (OSError, ValueError) as exc:
        return FinishedCheck(None, f"summary.json is unreadable ({_oneline(exc)})")
    status = summary.get("status")
    if status not in FINISHED:
        return FinishedCheck(None, None)
    problem = _summary_problem(summary, spec)
    if problem is None:
        problem = _rounds_problem(run_dir, summary)
    if problem is None:
        problem = _checkpoint_problem(run_dir, summary, spec)
    return FinishedCheck(None, problem) if problem else FinishedCheck(summary, None)


def _oneline(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def _number(value: Any) -> float | None:
    """A finite number from a summary value (bools and strings are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _summary_problem(summary: dict[str, Any], spec: RunSpec) -> str | None:
    if summary.get("name") not in (None, spec.name):
        return f"summary.json is run {summary.get('name')!r}'s"
    completed = summary.get("rounds_completed")
    if isinstance(completed, bool) or not isinstance(completed, int):
        return "summary.json has no rounds_completed"
    if summary.get("status") == "done" and completed != spec.rounds:
        return f"summary.json says done after {completed} of {spec.rounds} rounds"
    if not 0 <= completed <= spec.rounds:
        return f"summary.json says {completed} rounds of {spec.rounds}"
    if completed:
        bad = [key for key in _METRICS if _number(summary.get(key)) is None]
        if bad:
            return f"summary.json has non-finite or missing {', '.join(bad)}"
    return None


def _rounds_problem(run_dir: Path, summary: dict[str, Any]) -> str | None:
    completed: int = summary["rounds_completed"]
    for name in (names.ROUNDS, names.TIMINGS):
        path = run_dir / name
        if completed == 0 and not path.exists():
            continue  # a run that diverged in round 1 writes no rows
        try:
            rows = files.read_rounds(run_dir, name)
        except FileNotFoundError:
            return f"{name} is missing"
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            return f"{name} is unreadable ({_oneline(exc)})"
        if len(rows) != completed:
            return f"{name} has {len(rows)} of its {completed} rounds"
        for row in rows:
            if None in row or None in row.values():  # more or fewer fields than the header
                return f"{name} round {row.get('round')} is cut short or malformed"
        if [row.get("round") for row in rows] != [str(r) for r in range(1, completed + 1)]:
            return f"{name} does not hold rounds 1..{completed}"
        if name == names.ROUNDS:
            for row in rows:
                loss, acc = _csv_number(row.get("global_loss")), _csv_number(row.get("accuracy"))
                if loss is None or acc is None:
                    return f"{name} round {row.get('round')} has a non-finite loss or accuracy"
            if rows and not (
                _close(_csv_number(rows[-1]["global_loss"]), summary.get("final_loss"))
                and _close(_csv_number(rows[-1]["accuracy"]), summary.get("final_accuracy"))
            ):
                return f"{name}'s last round does not match {names.SUMMARY}"
    return None


def _csv_number(text: str | None) -> float | None:
    try:
        number = float(text or "")
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _close(a: float | None, b: Any) -> bool:
    other = _number(b)
    return a is not None and other is not None and math.isclose(a, other, rel_tol=1e-9)


def _checkpoint_problem(run_dir: Path, summary: dict[str, Any], spec: RunSpec) -> str | None:
    completed: int = summary["rounds_completed"]
    checkpoint = summary.get("checkpoint")
    if checkpoint is None and completed == 0:
        return None  # no round completed: no model to save
    if not isinstance(checkpoint, str) or not checkpoint:
        return "summary.json names no checkpoint"
    path = Path(checkpoint)
    own = not path.is_absolute()
    path = run_dir / path if own else path
    from velocity.sweepdir.checkpoints import load_checkpoint

    try:
        saved = load_checkpoint(path)
    except FileNotFoundError:
        return f"its checkpoint {checkpoint} is missing"
    except Exception as exc:  # a corrupt .npz raises zipfile, pickle, OSError, ValueError...
        return f"its checkpoint {checkpoint} does not load ({type(exc).__name__}: {_oneline(exc)})"
    import numpy as np

    if saved.params.size == 0 or not bool(np.isfinite(saved.params).all()):
        return f"its checkpoint {checkpoint} holds non-finite parameters"
    # a storage directory outside the run may be shared by several runs: only a
    # checkpoint in the run's own directory must be this run's last round
    if own and (saved.run, saved.round, saved.model_id) != (spec.name, completed, spec.model_id):
        return (
            f"its checkpoint {checkpoint} is round {saved.round} of run {saved.run!r}, "
            f"not round {completed} of {spec.name!r}"
        )
    return None
