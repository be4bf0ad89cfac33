"""A sweep directory's runs, as read from their files: :func:`read_runs`.

Each run directory holding a ``config.json`` (sorted by name), then the runs
``plan.json`` lists that have no directory yet, become one :class:`RunFiles`: its
labels (from the validated config, or from the raw JSON when the config no longer
validates against this version — a renamed strategy), how it ended (``done``,
``diverged``, ``failed``, or ``pending``/``running``/``cancelled`` from
``status.json``), its metrics from ``summary.json`` with ``rounds.csv`` as the
fallback, and its error. Unreadable or damaged files make a run failed with a
message naming the file; they never raise.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from velocity.spec import NO_ATTACK, RunSpec, cell_of
from velocity.sweepdir import files, names
from velocity.sweepdir.io import finite_float as _float
from velocity.sweepdir.models import DETECTION_KEYS, RunState


@dataclass
class RunFiles:
    """One run directory (or a planned run without one), as read from its files."""

    name: str
    cell: str
    strategy: str
    attack: str
    config: dict[str, Any]
    spec: RunSpec | None = None  # None when the config no longer validates (stale)
    status: str = "failed"  # done | diverged | failed | pending | cancelled | running
    error: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    final_loss: float | None = None
    final_accuracy: float | None = None
    mean_loss: float | None = None
    elapsed_s: float | None = None
    detection: dict[str, int] | None = None
    max_byzantine: int | None = None  # most attacked clients in one round (rounds.csv)

    @property
    def finished(self) -> bool:
        """A result: done, or diverged (the strategy broke)."""
        return self.status in ("done", "diverged")

    @property
    def not_run(self) -> bool:
        return self.status in ("pending", "cancelled", "running")

    @property
    def seed(self) -> int:
        seed = self.config.get("seed")
        return seed if isinstance(seed, int) else 0

    @property
    def repeat(self) -> int:
        repeat = self.config.get("repeat")
        return repeat if isinstance(repeat, int) else 0

    @property
    def stale(self) -> bool:
        return self.spec is None and bool(self.config)

    @property
    def test_samples(self) -> int | None:
        """The size of its test split (``summary.json``), when known."""
        test = self.summary.get("test_samples")
        return test if isinstance(test, int) and not isinstance(test, bool) and test > 0 else None

    @property
    def byzantine_clients(self) -> dict[str, Any] | None:
        """Its Byzantine clients and their attacks (``summary.json``), when known."""
        clients = self.summary.get("byzantine_clients")
        return clients if isinstance(clients, dict) else None


def _labels(
    config: dict[str, Any], fallback_name: str
) -> tuple[str, str, str, str, RunSpec | None]:
    """``(name, cell, strategy label, attack label, spec)`` of a run's config.

    A config that no longer validates against this version of velocity (a strategy
    or attack renamed since the sweep ran) is still reported, with labels taken from
    the raw JSON and no spec, so an old sweep directory always renders.
    """
    name = str(config.get("name") or fallback_name)
    cell = cell_of(name)
    try:
        spec = RunSpec.model_validate(config)
    except Exception:  # any failure of a stale config must not stop the report
        strategy = config.get("strategy")
        strategy_label = str(strategy.get("type")) if isinstance(strategy, dict) else str(strategy)
        strategy_label = strategy_label if strategy else "?"
        attacks = config.get("attacks") or []
        attack_label = "+".join(
            str(a.get("type")) if isinstance(a, dict) else str(a) for a in attacks
        )
        return name, cell, strategy_label, attack_label or NO_ATTACK, None
    return spec.name, spec.cell, spec.strategy.label(), spec.attack_label, spec


def _last_round_note(rounds: list[dict[str, str]], config: dict[str, Any]) -> str:
    total = config.get("rounds")
    if not rounds:
        return "no round completed"
    last = rounds[-1].get("round", "?")
    return f"last round {last} of {total}" if total else f"last round {last}"


def _rounds_detection(rounds: list[dict[str, str]]) -> dict[str, int] | None:
    """Detection counts summed over ``rounds.csv`` rows that have them."""
    totals = dict.fromkeys(DETECTION_KEYS, 0)
    seen = False
    for row in rounds:
        for key in DETECTION_KEYS:
            value = _float(row.get(key))
            if value is not None:
                totals[key] += int(value)
                seen = True
    return totals if seen else None


def _apply_summary(run: RunFiles, summary: dict[str, Any], rounds: list[dict[str, str]]) -> None:
    """Fill a run's metrics from its summary, falling back to ``rounds.csv``."""
    losses = [_float(row.get("global_loss")) for row in rounds]
    run.summary = summary
    run.final_loss = _float(summary.get("final_loss"))
    if run.final_loss is None and losses and losses[-1] is not None:
        run.final_loss = losses[-1]
    run.mean_loss = _float(summary.get("mean_loss"))
    if run.mean_loss is None and losses and None not in losses:
        run.mean_loss = statistics.fmean(x for x in losses if x is not None)
    run.final_accuracy = _float(summary.get("final_accuracy"))
    if run.final_accuracy is None and rounds:
        run.final_accuracy = _float(rounds[-1].get("accuracy"))
    run.elapsed_s = _float(summary.get("elapsed_s"))
    detection = summary.get("detection")
    if isinstance(detection, dict):
        run.detection = {k: int(_float(detection.get(k)) or 0) for k in DETECTION_KEYS}
    else:
        run.detection = _rounds_detection(rounds)
    attacked = [_float(row.get("byzantine")) for row in rounds]
    run.max_byzantine = int(max((a for a in attacked if a is not None), default=0))


def _status_of(summary: dict[str, Any], rounds: list[dict[str, str]]) -> str:
    """``done``, ``diverged`` or ``failed``; an old sweep's done run with a non-finite
    final loss (written before velocity had a diverged state) is diverged."""
    status = summary.get("status")
    if status == "done" and _float(summary.get("final_loss")) is None and rounds:
        last = rounds[-1].get("global_loss")
        return "diverged" if _float(last) is None else "done"
    return status if status in ("done", "diverged") else "failed"


def _read_run(
    run_dir: Path, status_runs: Mapping[str, RunState], sweep_state: str | None
) -> RunFiles:
    """One run directory: its labels, how it ended, and its metrics or error."""
    try:
        config = files.read_config_object(run_dir)
    except (OSError, ValueError, RecursionError) as exc:
        return RunFiles(
            run_dir.name, run_dir.name, "?", "?", {}, error=f"unreadable {names.CONFIG}: {exc}"
        )
    name, cell, strategy, attack, spec = _labels(config, run_dir.name)
    run = RunFiles(name, cell, strategy, attack, config, spec=spec)
    rounds = files.read_optional_rounds(run_dir)
    entry = status_runs.get(name)
    state = entry.state if entry is not None else None
    try:
        summary = files.read_summary_object(run_dir)
    except FileNotFoundError:
        if state in ("pending", "cancelled") or (state == "running" and sweep_state == "running"):
            run.status = str(state)
        elif state == "failed" and entry is not None and entry.error:
            run.error = str(entry.error)
        else:
            note = _last_round_note(rounds, config)
            run.error = f"did not finish (no {names.SUMMARY}; {note})"
        return run
    except (OSError, ValueError, RecursionError) as exc:
        run.error = f"unreadable {names.SUMMARY}: {exc}"
        return run
    _apply_summary(run, summary, rounds)
    run.status = _status_of(summary, rounds)
    if run.status != "done":
        run.error = str(summary.get("error") or f"status {summary.get('status')!r}")
    return run


def _planned_without_dir(
    planned: Sequence[Any], status_runs: Mapping[str, RunState], seen: set[str]
) -> list[RunFiles]:
    """The runs in ``plan.json`` that have no directory: failed (their worker died
    before writing ``config.json``, as ``status.json`` says) or not run yet."""
    out = []
    for config in planned:
        name = config.get("name") if isinstance(config, dict) else None
        if not isinstance(name, str) or name in seen:
            continue
        _, cell, strategy, attack, spec = _labels(config, name)
        entry = status_runs.get(name)
        run = RunFiles(name, cell, strategy, attack, config, spec=spec)
        if entry is not None and entry.state == "failed":
            run.error = str(entry.error or "failed")
        else:
            run.status = entry.state if entry is not None else "pending"
        out.append(run)
    return out


def read_runs(sweep_dir: Path) -> list[RunFiles]:
    """Every run of a sweep: each directory holding ``config.json`` (sorted by name),
    then the planned runs that have no directory yet."""
    sweep_dir = Path(sweep_dir)
    status = files.read_optional_status(sweep_dir)
    status_runs = status.runs if status is not None else {}
    state = status.state if status is not None else None
    runs = [
        _read_run(path.parent, status_runs, state) for path in files.run_config_paths(sweep_dir)
    ]
    planned = files.read_planned_configs(sweep_dir) or []
    return runs + _planned_without_dir(planned, status_runs, {r.name for r in runs})
