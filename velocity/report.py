r"""The verdict of a sweep: ``comparison.json``, ``comparison.md`` and ``results.csv``, from files.

Everything here is a pure function of the files in a sweep directory (see
``docs/files.md``): each run directory's ``config.json``, ``summary.json`` and
``rounds.csv``, plus the sweep's ``plan.json`` and ``status.json`` when present. So
``velocity compare DIR`` re-renders the same verdict at any time, and the MCP
server reads ``comparison.json`` without running anything.

The comparison opens with the **recommendation** (:mod:`velocity.verdict`): the
strategy whose worst case over {no attack} ∪ the sweep's attacks is best, paired by
seed, with its noise test, the binding attack, the price of robustness and a
one-sentence reason. A run that *diverged* counts as accuracy 0 (the strategy
broke); a run that failed for another reason (crash, killed) leaves its cell
incomplete. Then, per attack, the strategy with the best accuracy under it (ties
listed) with its drop from its own clean run and the non-robust reference's (e.g.
FedAvg's) for context.

Runs are grouped into *cells* by :attr:`velocity.spec.RunSpec.cell` (the run name
without its ``__r<k>`` repeat suffix); a cell's repeats are summarised as mean ±
sample standard deviation (ddof=1; null with one repeat). The cell table is ranked
by ``rank_by`` (final accuracy, highest first, by default; or final loss). The
*winner* line of the first version stays — the cell with the lowest final loss, which
is usually a no-attack run and says so — and, with repeats, when the runner-up's
mean loss differs from the top's by less than twice the combined standard error,

.. math:: |m_1 - m_2| < 2\sqrt{s_1^2/n_1 + s_2^2/n_2}

(:math:`m_i`, :math:`s_i`, :math:`n_i`: a cell's mean final loss, its sample
standard deviation and its finished repeats) the top is reported *within noise*.
Accuracy drops and loss increases are always "positive = worse".

The schema of ``comparison.json`` is in ``docs/files.md``; its recommendation and
per-attack entries are the pydantic models of :mod:`velocity.verdict`.

API: :func:`build_comparison` (the dict), :func:`render_markdown`,
:func:`render_console`, :func:`write_comparison` (builds and writes both files
atomically), and :func:`render_all`, the one entry point of the end of a sweep and
of ``velocity compare`` / ``velocity report``: ``results.csv`` (:mod:`velocity.results`),
the comparison files, the pictures (:mod:`velocity.plots`) and ``report.html``
(:mod:`velocity.html_report`).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from velocity.fmt import cell_accuracy, num, pct, pp, seconds, signed, with_std
from velocity.runio import atomic_write_json, atomic_write_text
from velocity.runio import finite_float as _float
from velocity.spec import RunSpec, cell_of
from velocity.verdict import (
    NO_ATTACK,
    RANK_BY,
    Gap,
    Observation,
    RankBy,
    Recommendation,
    best_under_attacks,
    ceiling_caveat,
    recommend,
    sweep_conditions,
)

if TYPE_CHECKING:
    from velocity.plots import Plot

DETECTION_KEYS = ("kept_honest", "kept_byzantine", "excluded_honest", "excluded_byzantine")
DEFAULT_RANK_BY: RankBy = "accuracy"


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


@dataclass
class _Cell:
    """The finished repeats of one (strategy, attacks) configuration."""

    name: str
    strategy: str
    attack: str
    runs: list[RunFiles] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        diverged = sum(r.status == "diverged" for r in self.runs)
        losses = [None if r.status == "diverged" else r.final_loss for r in self.runs]
        loss, loss_std = _mean_std(losses)
        acc, acc_std = _mean_std(
            [0.0 if r.status == "diverged" else r.final_accuracy for r in self.runs]
        )
        elapsed = [r.elapsed_s for r in self.runs if r.elapsed_s is not None]
        return {
            "run": self.name,
            "runs": [r.name for r in self.runs],
            "strategy": self.strategy,
            "attack": self.attack,
            "repeats": len(self.runs),
            "diverged": diverged,
            "final_loss": loss,
            "final_loss_std": loss_std,
            "mean_loss": _mean_std([r.mean_loss for r in self.runs])[0] if not diverged else None,
            "final_accuracy": acc,
            "final_accuracy_std": acc_std,
            "elapsed_s": statistics.fmean(elapsed) if elapsed else None,
            "loss_increase": None,
            "accuracy_drop": None,
            "detection": _sum_detection(r.detection for r in self.runs),
        }


# --------------------------------------------------------------------------- reading


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _read_optional_json(path: Path) -> dict[str, Any]:
    """A sweep-level JSON file, or ``{}`` when absent or unreadable."""
    try:
        data = _read_json(path)
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_rounds(path: Path) -> list[dict[str, str]]:
    """The rows of a run's ``rounds.csv`` (``[]`` when absent or unreadable)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


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


def _read_run(run_dir: Path, status_runs: Mapping[str, Any], sweep_state: str | None) -> RunFiles:
    """One run directory: its labels, how it ended, and its metrics or error."""
    try:
        config = _read_json(run_dir / "config.json")
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError, RecursionError) as exc:
        return RunFiles(
            run_dir.name, run_dir.name, "?", "?", {}, error=f"unreadable config.json: {exc}"
        )
    name, cell, strategy, attack, spec = _labels(config, run_dir.name)
    run = RunFiles(name, cell, strategy, attack, config, spec=spec)
    rounds = _read_rounds(run_dir / "rounds.csv")
    entry = status_runs.get(name) or {}
    state = entry.get("state") if isinstance(entry, dict) else None
    try:
        summary = _read_json(run_dir / "summary.json")
    except FileNotFoundError:
        if state in ("pending", "cancelled") or (state == "running" and sweep_state == "running"):
            run.status = state
        elif state == "failed" and entry.get("error"):
            run.error = str(entry["error"])
        else:
            run.error = f"did not finish (no summary.json; {_last_round_note(rounds, config)})"
        return run
    except (OSError, ValueError, RecursionError) as exc:
        run.error = f"unreadable summary.json: {exc}"
        return run
    if not isinstance(summary, dict):
        run.error = "unreadable summary.json: not a JSON object"
        return run
    _apply_summary(run, summary, rounds)
    run.status = _status_of(summary, rounds)
    if run.status != "done":
        run.error = str(summary.get("error") or f"status {summary.get('status')!r}")
    return run


def _status_runs(status: dict[str, Any]) -> dict[str, Any]:
    """``status.json``'s per-run map (``{}`` when absent)."""
    runs = status.get("runs")
    return runs if isinstance(runs, dict) else {}


def _planned_without_dir(
    plan: dict[str, Any], status: dict[str, Any], seen: set[str]
) -> list[RunFiles]:
    """The runs in ``plan.json`` that have no directory: failed (their worker died
    before writing ``config.json``, as ``status.json`` says) or not run yet."""
    status_runs = _status_runs(status)
    planned = plan.get("runs")
    out = []
    for config in planned if isinstance(planned, list) else []:
        name = config.get("name") if isinstance(config, dict) else None
        if not isinstance(name, str) or name in seen:
            continue
        _, cell, strategy, attack, spec = _labels(config, name)
        entry = status_runs.get(name)
        entry = entry if isinstance(entry, dict) else {}
        run = RunFiles(name, cell, strategy, attack, config, spec=spec)
        if entry.get("state") == "failed":
            run.error = str(entry.get("error") or "failed")
        else:
            run.status = str(entry.get("state") or "pending")
        out.append(run)
    return out


def read_runs(sweep_dir: Path) -> list[RunFiles]:
    """Every run of a sweep: each directory holding ``config.json`` (sorted by name),
    then the planned runs that have no directory yet."""
    sweep_dir = Path(sweep_dir)
    plan = _read_optional_json(sweep_dir / "plan.json")
    status = _read_optional_json(sweep_dir / "status.json")
    status_runs = _status_runs(status)
    runs = [
        _read_run(path.parent, status_runs, status.get("state"))
        for path in sorted(sweep_dir.glob("*/config.json"))
    ]
    return runs + _planned_without_dir(plan, status, {r.name for r in runs})


# --------------------------------------------------------------------------- statistics


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof=1). Null mean if any value is null; null std with one value."""
    if not values or any(v is None for v in values):
        return None, None
    finite = [v for v in values if v is not None]
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else None)


def _sum_detection(items: Iterable[dict[str, int] | None]) -> dict[str, int] | None:
    present = [d for d in items if d is not None]
    if not present:
        return None
    return {k: sum(d.get(k, 0) for d in present) for k in DETECTION_KEYS}


def _noise(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[float, float] | None:
    """``(|Δ mean|, 2·SE)`` of two cells' final losses; None unless both have repeats."""
    if a["final_loss_std"] is None or b["final_loss_std"] is None:
        return None
    delta = abs(a["final_loss"] - b["final_loss"])
    se = math.sqrt(
        a["final_loss_std"] ** 2 / a["repeats"] + b["final_loss_std"] ** 2 / b["repeats"]
    )
    return delta, 2 * se


def _within_noise(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    noise = _noise(a, b)
    return noise is not None and (noise[0] < noise[1] or noise[0] == 0)


# --------------------------------------------------------------------------- building


def _group(runs: list[RunFiles]) -> list[_Cell]:
    cells: dict[str, _Cell] = {}
    for run in runs:
        if run.finished:
            cell = cells.setdefault(run.cell, _Cell(run.cell, run.strategy, run.attack))
            cell.runs.append(run)
    return list(cells.values())


def _rank(cells: list[_Cell], rank_by: RankBy) -> list[dict[str, Any]]:
    """Cell rows sorted by ``rank_by`` (accuracy: highest first; loss: lowest first)."""
    rows = [cell.stats() for cell in cells]
    if rank_by == "accuracy":
        rows.sort(
            key=lambda r: (
                r["final_accuracy"] is None,
                -(r["final_accuracy"] or 0.0),
                r["final_loss"] is None,
                r["final_loss"] or 0.0,
                r["run"],
            )
        )
    else:
        rows.sort(key=lambda r: (r["final_loss"] is None, r["final_loss"] or 0.0, r["run"]))
    return [{"rank": i, **row} for i, row in enumerate(rows, start=1)]


def _fill_increases(rows: list[dict[str, Any]]) -> None:
    """Set ``loss_increase`` and ``accuracy_drop`` (positive = worse) of attacked cells
    against the same strategy's first no-attack cell."""
    baselines: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["attack"] == NO_ATTACK:
            baselines.setdefault(row["strategy"], row)
    for row in rows:
        base = baselines.get(row["strategy"])
        if row["attack"] == NO_ATTACK or base is None:
            continue
        if row["final_loss"] is not None and base["final_loss"] is not None:
            row["loss_increase"] = row["final_loss"] - base["final_loss"]
        if row["final_accuracy"] is not None and base["final_accuracy"] is not None:
            row["accuracy_drop"] = base["final_accuracy"] - row["final_accuracy"]


def _observations(runs: Sequence[RunFiles]) -> tuple[list[Observation], list[Gap]]:
    """The verdict's inputs: finished runs, and planned cells without a result."""
    observations, gaps = [], []
    for run in runs:
        if run.finished:
            test = run.summary.get("test_samples")
            observations.append(
                Observation(
                    strategy=run.strategy,
                    condition=run.attack,
                    cell=run.cell,
                    seed=run.seed,
                    diverged=run.status == "diverged",
                    accuracy=run.final_accuracy,
                    loss=run.final_loss,
                    test_samples=test if isinstance(test, int) and test > 0 else None,
                    elapsed_s=run.elapsed_s,
                )
            )
        elif run.strategy != "?":
            reason = f"run {run.status}" if run.not_run else f"run failed: {run.error}"
            gaps.append(Gap(run.strategy, run.attack, reason))
    return observations, gaps


def _reference_strategy(runs: Sequence[RunFiles]) -> str | None:
    """The first non-robust strategy (a plain mean, e.g. FedAvg) in the sweep, if any."""
    for run in runs:
        if run.spec is not None and not run.spec.strategy.robust and run.finished:
            return run.strategy
    return None


def _most_robust(
    runs: Sequence[RunFiles],
    observations: Sequence[Observation],
    gaps: Sequence[Gap],
    recommendation: Recommendation,
    rank_by: RankBy,
) -> dict[str, Any]:
    """Per attack, the best strategy under it; overall, the recommendation."""
    best = best_under_attacks(observations, rank_by=rank_by, reference=_reference_strategy(runs))
    attacks = [c for c in sweep_conditions(observations, gaps) if c != NO_ATTACK]
    by_attack = {a: (best[a].model_dump() if a in best else None) for a in attacks}
    overall = None
    if recommendation.strategy is not None and attacks:
        overall = {
            "strategy": recommendation.strategy,
            "worst_case_accuracy": recommendation.worst_case_accuracy,
            "binding": recommendation.binding,
            "attacks": attacks,
        }
    return {"by_attack": by_attack, "overall": overall}


def _shared(values: Iterable[Any]) -> Any:
    """One value when every run shares it, the sorted distinct values otherwise."""
    distinct = sorted({json.dumps(v) for v in values if v is not None})
    if not distinct:
        return None
    parsed = [json.loads(v) for v in distinct]
    return parsed[0] if len(parsed) == 1 else parsed


def _setting(runs: Sequence[RunFiles]) -> dict[str, Any]:
    """The experiment's setting, as the runs' configs say (one value, or the distinct ones)."""
    specs = [r.spec for r in runs if r.spec is not None]
    configs = [r.config for r in runs if r.config]

    def shared(key: str) -> Any:
        return _shared(c.get(key) for c in configs)

    dirichlet = [s for s in specs if s.partition == "dirichlet"]
    byzantine: dict[str, int] = {}
    for run in runs:
        clients = run.summary.get("byzantine_clients")
        if run.attack != NO_ATTACK and isinstance(clients, dict):
            byzantine[run.attack] = max(byzantine.get(run.attack, 0), len(clients))
    tests = [t for r in runs if isinstance(t := r.summary.get("test_samples"), int)]
    return {
        "dataset": shared("dataset"),
        "model": shared("model_id"),
        "partition": shared("partition"),
        "alpha": _shared(s.alpha for s in dirichlet) if dirichlet else None,
        "clients": shared("clients"),
        "clients_per_round": _shared(s.clients_per_round for s in specs),
        "fraction_fit": shared("fraction_fit"),
        "rounds": shared("rounds"),
        "local_epochs": shared("local_epochs"),
        "batch_size": shared("batch_size"),
        "lr": shared("lr"),
        "test_samples": _shared(tests),
        "byzantine": dict(sorted(byzantine.items())),
    }


def _header(
    runs: list[RunFiles],
    rows: list[dict[str, Any]],
    plan: dict[str, Any],
    status: dict[str, Any],
    wall_s: float | None,
    parallel: int | None,
    rank_by: RankBy,
) -> dict[str, Any]:
    started = [r for r in runs if not r.not_run]
    wall = wall_s if wall_s is not None else _float(status.get("elapsed_s"))
    if parallel is None and isinstance(plan.get("parallel"), int):
        parallel = plan["parallel"]
    serial = sum(r.elapsed_s for r in started if r.elapsed_s is not None)
    repeats = plan.get("repeats")
    if not isinstance(repeats, int):
        repeats = max((row["repeats"] for row in rows), default=1)
    setting = _setting(runs)
    return {
        "state": status.get("state"),
        "runs_total": len(runs),
        "runs_done": sum(r.status == "done" for r in runs),
        "runs_diverged": sum(r.status == "diverged" for r in runs),
        "runs_failed": sum(r.status == "failed" for r in runs),
        "runs_not_run": sum(r.not_run for r in runs),
        "cells": len(rows),
        "repeats": repeats,
        "parallel": parallel,
        "wall_s": wall,
        "serial_s": serial,
        "speedup": serial / wall if wall else None,
        "rank_by": rank_by,
        "rounds": setting["rounds"],
        "clients": setting["clients"],
        "dataset": setting["dataset"],
        "model": setting["model"],
        "setting": setting,
    }


def _configured_caveats(runs: Sequence[RunFiles]) -> list[str]:
    """Strategies set to tolerate fewer Byzantine clients per round than an attack puts in."""
    seen: dict[tuple[str, str], tuple[int, int, str | None]] = {}
    for run in runs:
        if run.spec is None or not run.finished or not run.max_byzantine:
            continue
        strategy = run.spec.strategy
        tolerated = strategy.configured_byzantine(run.spec.clients_per_round)
        if tolerated is not None and run.max_byzantine > tolerated:
            key = (run.strategy, run.attack)
            worst = max(seen.get(key, (tolerated, 0, None))[1], run.max_byzantine)
            seen[key] = (tolerated, worst, strategy.tolerance_param)
    return [
        f"{strategy} is configured for {tolerated} Byzantine client"
        f"{'s' if tolerated != 1 else ''} per round, but {attack} puts up to {count} in a "
        "round: its result under that attack is outside what it is set to tolerate"
        + (f" (raise {param})" if param else "")
        for (strategy, attack), (tolerated, count, param) in seen.items()
    ]


def _run_caveats(runs: list[RunFiles], rows: list[dict[str, Any]]) -> list[str]:
    caveats = []
    stale = [r.name for r in runs if r.stale]
    if stale:
        caveats.append(
            f"{len(stale)} config.json file(s) do not validate against this version of velocity "
            f"({', '.join(stale[:3])}{', …' if len(stale) > 3 else ''}); "
            "their labels are read from the raw files"
        )
    diverged = [row for row in rows if row["diverged"]]
    if diverged:
        listed = ", ".join(
            f"{row['run']}"
            + (f" ({row['diverged']} of {row['repeats']})" if row["repeats"] > 1 else "")
            for row in diverged
        )
        caveats.append(f"diverged (counted as broken, accuracy 0, in the recommendation): {listed}")
    counts = {row["run"]: row["repeats"] for row in rows}
    planned = Counter(run.cell for run in runs)
    for cell, done in counts.items():
        if planned.get(cell, done) > done:
            caveats.append(f"{cell}: only {done} of {planned[cell]} repeats finished")
    cells_per_condition = Counter((row["strategy"], row["attack"]) for row in rows)
    for (strategy, attack), n in cells_per_condition.items():
        if n > 1:
            caveats.append(
                f"{strategy} has {n} cells under {attack}; the verdict pairs their runs by seed "
                "and uses the first name's run for each seed"
            )
    if len(rows) > 1 and max(counts.values()) == 1:
        caveats.append(
            "one repeat per cell: run-to-run noise is not measured (the verdict uses the test "
            "set's binomial error as its floor), so small differences may be luck; use "
            "--repeats 3 to get mean ± std and a paired noise check"
        )
    return caveats


def _verdict_caveats(
    recommendation: Recommendation, observations: Sequence[Observation]
) -> list[str]:
    caveats = []
    ceiling = ceiling_caveat(observations)
    if ceiling:
        caveats.append(ceiling)
    for score in recommendation.incomplete:
        caveats.append(
            f"{score.strategy} is not in the recommendation (incomplete): "
            + "; ".join(score.missing)
        )
    if recommendation.rank_by == "accuracy" and not recommendation.noise_measured:
        caveats.append(
            "the test-set size is unknown (summary.json files from an older velocity) and "
            "there is one repeat: the recommendation's noise is not measured"
        )
    if recommendation.candidates and any(
        c.repeats < max(c.repeats for c in recommendation.candidates)
        for c in recommendation.candidates
    ):
        short = [f"{c.strategy} ({c.repeats})" for c in recommendation.candidates]
        caveats.append("candidates have different numbers of complete repeats: " + ", ".join(short))
    return caveats


def _winner(rows: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, bool, list[str]]:
    ranked = sorted(
        (r for r in rows if r["final_loss"] is not None), key=lambda r: (r["final_loss"], r["run"])
    )
    if not ranked:
        return None, False, []
    top = ranked[0]
    tied = [r["run"] for r in ranked[1:] if _within_noise(top, r)]
    return top, bool(tied), [top["run"], *tied] if tied else []


def plan_rank_by(sweep_dir: Path) -> RankBy:
    """The ``rank_by`` a sweep was started with (``plan.json``), else the default."""
    value = _read_optional_json(Path(sweep_dir) / "plan.json").get("rank_by")
    return value if value in RANK_BY else DEFAULT_RANK_BY


def build_comparison(
    sweep_dir: Path,
    *,
    wall_s: float | None = None,
    parallel: int | None = None,
    rank_by: RankBy | None = None,
) -> dict[str, Any]:
    """The comparison of a sweep directory, as the ``comparison.json`` dict (docs/files.md).

    ``wall_s`` and ``parallel`` default to ``status.json``'s ``elapsed_s`` and
    ``plan.json``'s ``parallel``, and ``rank_by`` to ``plan.json``'s (else
    accuracy), so a re-render gives the same verdict.
    """
    sweep_dir = Path(sweep_dir)
    plan = _read_optional_json(sweep_dir / "plan.json")
    status = _read_optional_json(sweep_dir / "status.json")
    rank_by = rank_by or plan_rank_by(sweep_dir)
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {', '.join(RANK_BY)}, got {rank_by!r}")
    runs = read_runs(sweep_dir)
    rows = _rank(_group(runs), rank_by)
    _fill_increases(rows)
    observations, gaps = _observations(runs)
    recommendation = recommend(observations, gaps, rank_by=rank_by)
    caveats = _run_caveats(runs, rows)
    caveats += _verdict_caveats(recommendation, observations)
    caveats += _configured_caveats(runs)
    winner, within_noise, tied = _winner(rows)
    if not rows:
        caveats.append("no run finished: there is no recommendation")
    return {
        "recommendation": recommendation.model_dump(),
        "sweep_dir": str(sweep_dir),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "header": _header(runs, rows, plan, status, wall_s, parallel, rank_by),
        "most_robust": _most_robust(runs, observations, gaps, recommendation, rank_by),
        "ranking": rows,
        "winner": winner["run"] if winner else None,
        "winner_attack": winner["attack"] if winner else None,
        "winner_within_noise": within_noise,
        "tied_with": tied,
        "failed": [
            {"run": r.name, "error": r.error or "failed"} for r in runs if r.status == "failed"
        ],
        "diverged": [
            {"run": r.name, "error": r.error or "diverged"} for r in runs if r.status == "diverged"
        ],
        "not_run": [{"run": r.name, "state": r.status} for r in runs if r.not_run],
        "caveats": caveats,
    }


# --------------------------------------------------------------------------- rendering


def _describe(strategy: str, attack: str | None) -> str:
    """``FedMedian`` (no attack) or ``FedMedian under gaussian_noise``."""
    return strategy if attack in (None, NO_ATTACK) else f"{strategy} under {attack}"


def winner_line(comparison: Mapping[str, Any]) -> str:
    """The lowest-final-loss cell (the first version's line), or its within-noise sentence."""
    rows = {r["run"]: r for r in comparison["ranking"]}
    winner = comparison["winner"]
    if winner is None:
        return "Winner (lowest final loss): none (no run finished with a finite loss)."
    top = rows[winner]
    baseline = (
        " — a no-attack run, not a robustness verdict (see the recommendation)"
        if top["attack"] == NO_ATTACK
        else ""
    )
    if not comparison["winner_within_noise"]:
        return (
            f"Winner (lowest final loss): {winner} ({_describe(top['strategy'], top['attack'])}), "
            f"final loss {with_std(top['final_loss'], top['final_loss_std'])}{baseline}."
        )
    details = []
    for name in comparison["tied_with"][1:]:
        delta, two_se = _noise(top, rows[name]) or (0.0, 0.0)
        details.append(
            f"{_describe(rows[name]['strategy'], rows[name]['attack'])} "
            f"(Δ={delta:.3g}, 2·SE={two_se:.3g})"
        )
    return (
        f"Lowest final loss: no clear winner: {_describe(top['strategy'], top['attack'])} has the "
        f"lowest mean final loss, but {', '.join(details)} within noise of it."
    )


def setting_line(setting: Mapping[str, Any]) -> str:
    """``dataset digits · model logreg · partition dirichlet (α=0.1) · 10 clients, 10 per round
    (fraction_fit 1) · 20 rounds · 1 local epoch, batch 32, lr 0.1 · test 360``."""

    def show(value: Any) -> str:
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    parts = []
    for key in ("dataset", "model"):
        if setting.get(key) is not None:
            parts.append(f"{key} {show(setting[key])}")
    if setting.get("partition") is not None:
        alpha = f" (α={show(setting['alpha'])})" if setting.get("alpha") is not None else ""
        parts.append(f"partition {show(setting['partition'])}{alpha}")
    if setting.get("clients") is not None:
        parts.append(
            f"{show(setting['clients'])} clients, {show(setting.get('clients_per_round'))} per "
            f"round (fraction_fit {show(setting.get('fraction_fit'))})"
        )
    if setting.get("rounds") is not None:
        parts.append(f"{show(setting['rounds'])} rounds")
    if setting.get("local_epochs") is not None:
        parts.append(
            f"{show(setting['local_epochs'])} local epoch(s), "
            f"batch {show(setting.get('batch_size'))}, lr {show(setting.get('lr'))}"
        )
    if setting.get("test_samples") is not None:
        parts.append(f"{show(setting['test_samples'])} test samples")
    return " · ".join(parts)


def header_lines(header: Mapping[str, Any]) -> list[str]:
    counts = [f"{header['runs_done']} done"]
    if header.get("runs_diverged"):
        counts.append(f"{header['runs_diverged']} diverged")
    counts.append(f"{header['runs_failed']} failed")
    if header["runs_not_run"]:
        counts.append(f"{header['runs_not_run']} not run")
    runs = (
        f"{header['runs_total']} runs ({', '.join(counts)}) in {header['cells']} cells × "
        f"{header['repeats']} repeat" + ("s" if header["repeats"] != 1 else "")
    )
    parts = [runs]
    if header["parallel"] is not None:
        parts.append(f"parallel {header['parallel']}")
    timing = f"serial Σ {seconds(header['serial_s'])}"
    if header["wall_s"] is not None:
        parts.append(f"wall {seconds(header['wall_s'])}")
        if header["speedup"] is not None:
            timing += f" ({header['speedup']:.1f}× speedup)"
    parts.append(timing)
    lines = [" · ".join(parts)]
    setting = header.get("setting") or {}
    if setting_line(setting):
        lines.append(setting_line(setting))
    if setting.get("byzantine"):
        lines.append(
            "Byzantine clients: "
            + ", ".join(f"{attack} {n}" for attack, n in setting["byzantine"].items())
        )
    return lines


def recommendation_title(rec: Mapping[str, Any]) -> str:
    if rec["strategy"] is None:
        return "**No recommendation.**"
    state = (
        "decided"
        if rec["decided"]
        else "tie within noise"
        if rec["tie"]
        else "not decided: noise not measured"
        if not rec["noise_measured"]
        else "not decided"
    )
    return f"**Recommendation: {rec['strategy']}** ({state})"


def _metric_cell(value: float | None, se: float | None, rank_by: str) -> str:
    if value is None:
        return "–"
    if rank_by == "accuracy":
        return pct(value, se)
    return with_std(value, se)


def strategy_table(rec: Mapping[str, Any]) -> list[str]:
    """One row per complete strategy: worst case, binding condition, each condition."""
    candidates = rec["candidates"]
    if not candidates:
        return []
    conditions = [c["condition"] for c in candidates[0]["conditions"]]
    names = ["no attack" if c == NO_ATTACK else c for c in conditions]
    metric = "Worst-case acc" if rec["rank_by"] == "accuracy" else "Worst-case loss"
    lines = [
        f"| Rank | Strategy | {metric} | Binding | {' | '.join(names)} | Price | Elapsed |",
        "| ---: | --- | ---: | --- | " + " | ".join("---:" for _ in names) + " | ---: | ---: |",
    ]
    for score in candidates:
        by_condition = {c["condition"]: c for c in score["conditions"]}
        marker = " ←" if score["strategy"] == rec["strategy"] else ""
        cells = [
            str(score["rank"]),
            f"{score['strategy']}{marker}",
            _metric_cell(score["worst_case"], score["worst_case_se"], rec["rank_by"]),
            "no attack" if score["binding"] == NO_ATTACK else str(score["binding"] or "–"),
            *(
                cell_accuracy(c["accuracy"], c["accuracy_std"], c["diverged"], c["repeats"])
                if (c := by_condition.get(condition))
                else "–"
                for condition in conditions
            ),
            "–"
            if score["price_of_robustness"] is None
            else pp(max(score["price_of_robustness"], 0.0)),
            seconds(score["elapsed_s"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def attack_phrase(entry: Mapping[str, Any]) -> str:
    """``FedMedian 93.1% (accuracy drop 0.3 pp, Δ loss +0.011 vs its clean run; FedAvg: ...)``."""
    accuracy = cell_accuracy(
        entry["accuracy"], entry["accuracy_std"], entry["diverged"], entry["repeats"]
    )
    head = f"{entry['strategy']} {accuracy}"
    context = []
    if entry.get("accuracy_drop") is not None:
        own = f"accuracy drop {pp(entry['accuracy_drop'])}"
        if entry.get("loss_increase") is not None:
            own += f", Δ loss {signed(entry['loss_increase'])}"
        context.append(own + " vs its clean run")
    ref = entry.get("reference")
    if ref and ref["strategy"] != entry["strategy"]:
        text = f"{ref['strategy']}: {pct(ref['accuracy'])}"
        if ref.get("accuracy_drop") is not None:
            text += f", drop {pp(ref['accuracy_drop'])}"
        if ref.get("loss_increase") is not None:
            text += f", Δ loss {signed(ref['loss_increase'])}"
        context.append(text)
    tie = f"; tied within noise with {', '.join(entry['tied_with'])}" if entry["tied_with"] else ""
    return head + (f" ({'; '.join(context)})" if context else "") + tie


def robust_lines(comparison: Mapping[str, Any]) -> list[str]:
    by_attack = comparison["most_robust"]["by_attack"]
    if not by_attack:
        return ["No attacks in this sweep."]
    lines = []
    for attack, entry in by_attack.items():
        if entry is None:
            lines.append(f"- {attack}: no strategy finished a run under this attack")
        else:
            lines.append(f"- {attack}: {attack_phrase(entry)}")
    overall = comparison["most_robust"]["overall"]
    if overall is not None:
        lines.append(f"- Overall: {overall['strategy']} (the recommendation: best worst case)")
    else:
        lines.append("- Overall: no verdict (no strategy is complete: see caveats)")
    return lines


def cell_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| Rank | Run | Strategy | Attack | Final acc | Final loss | Mean loss | Acc drop "
        "| Elapsed |",
        "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        drop = r["accuracy_drop"]
        cells = [
            str(r["rank"]),
            f"`{r['run']}`",
            r["strategy"],
            r["attack"],
            cell_accuracy(
                r["final_accuracy"], r["final_accuracy_std"], r["diverged"], r["repeats"]
            ),
            with_std(r["final_loss"], r["final_loss_std"]),
            num(r["mean_loss"]),
            "–" if drop is None else pp(drop),
            seconds(r["elapsed_s"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(comparison: Mapping[str, Any], images: Sequence[str] = ()) -> str:
    """``comparison.md``: header, recommendation, per-attack verdicts, every cell, failures,
    caveats, then the plots (``images``, paths relative to the sweep directory)."""
    name = Path(comparison["sweep_dir"]).name or comparison["sweep_dir"]
    rec = comparison["recommendation"]
    lines = [f"# Sweep comparison: {name}", "", *header_lines(comparison["header"]), ""]
    lines += ["## Recommendation", "", recommendation_title(rec), "", rec["reason"], ""]
    table = strategy_table(rec)
    if table:
        lines += [*table, ""]
    if rec["incomplete"]:
        lines += ["Incomplete (not ranked):", ""]
        lines += [f"- {s['strategy']}: {'; '.join(s['missing'])}" for s in rec["incomplete"]]
        lines.append("")
    lines += ["## Most robust under each attack", "", *robust_lines(comparison), ""]
    lines += ["## Every cell", "", winner_line(comparison), ""]
    if comparison["ranking"]:
        lines += [*cell_table(comparison["ranking"]), ""]
    if comparison["diverged"]:
        lines += ["## Diverged runs (the strategy broke)", ""]
        lines += [f"- `{f['run']}`: {f['error']}" for f in comparison["diverged"]] + [""]
    if comparison["failed"]:
        lines += ["## Failed runs", ""]
        lines += [f"- `{f['run']}`: {f['error']}" for f in comparison["failed"]] + [""]
    if comparison["not_run"]:
        lines += ["## Not run", ""]
        lines += [f"- `{n['run']}` ({n['state']})" for n in comparison["not_run"]] + [""]
    if comparison["caveats"]:
        lines += ["## Caveats", "", *[f"- {c}" for c in comparison["caveats"]], ""]
    if images:
        lines += ["## Plots", "", *[f"![{Path(i).stem}]({i})" for i in images], ""]
    lines.append(f"_Generated {comparison['generated_at']}._")
    return "\n".join(lines) + "\n"


def render_console(comparison: Mapping[str, Any], sweep_dir: Path) -> str:
    """A few lines for the terminal: the recommendation first, then the details' paths."""
    rec = comparison["recommendation"]
    title = recommendation_title(rec).replace("**", "")
    lines = [f"{title}: {rec['reason']}"]
    for attack, entry in comparison["most_robust"]["by_attack"].items():
        if entry is not None:
            lines.append(f"Best under {attack}: {attack_phrase(entry)}")
    lines.append(winner_line(comparison))
    failed, diverged = len(comparison["failed"]), len(comparison["diverged"])
    if diverged:
        lines.append(f"{diverged} run{'s' if diverged != 1 else ''} diverged (counted as broken)")
    if failed:
        lines.append(f"{failed} run{'s' if failed != 1 else ''} failed (listed in comparison.md)")
    lines.append(f"Comparison: {Path(sweep_dir) / 'comparison.md'}")
    if (Path(sweep_dir) / "report.html").is_file():
        lines.append(f"Report with plots: {Path(sweep_dir) / 'report.html'}")
    return "\n".join(lines)


def write_comparison(
    sweep_dir: Path,
    *,
    wall_s: float | None = None,
    parallel: int | None = None,
    images: Sequence[str] = (),
    rank_by: RankBy | None = None,
) -> dict[str, Any]:
    """Build the comparison and write ``comparison.json`` and ``comparison.md`` atomically."""
    sweep_dir = Path(sweep_dir)
    comparison = build_comparison(sweep_dir, wall_s=wall_s, parallel=parallel, rank_by=rank_by)
    atomic_write_json(sweep_dir / "comparison.json", comparison)
    atomic_write_text(sweep_dir / "comparison.md", render_markdown(comparison, images))
    return comparison


@dataclass
class RenderedReport:
    """What :func:`render_all` wrote: the comparison, the files, the plots and the time."""

    comparison: dict[str, Any]
    files: list[Path]
    plots: list[Plot]
    notes: list[str]
    elapsed_s: float


def render_all(
    sweep_dir: Path,
    *,
    wall_s: float | None = None,
    parallel: int | None = None,
    rank_by: RankBy | None = None,
) -> RenderedReport:
    """Write every report of a sweep directory from its files; plotting never makes it fail.

    Writes ``results.csv``, ``curves.png``, ``robustness.png`` and ``plots.json``
    (when matplotlib is installed), ``report.html``, then ``comparison.json`` and,
    last, ``comparison.md`` (linking the PNGs). A plot or the HTML page that cannot
    be rendered becomes a caveat (e.g. ``plots not rendered: matplotlib is not
    installed (...)``) instead of an error; only a failure to write the comparison
    files or ``results.csv`` raises.
    """
    from velocity.html_report import FILE as HTML_FILE
    from velocity.html_report import render_html
    from velocity.results import RESULTS_FILE, write_results

    clock = time.perf_counter()
    sweep_dir = Path(sweep_dir)
    comparison = build_comparison(sweep_dir, wall_s=wall_s, parallel=parallel, rank_by=rank_by)
    write_results(sweep_dir)
    files = [sweep_dir / RESULTS_FILE]
    plots: list[Plot] = []
    notes: list[str] = []
    try:
        from velocity.plots import write_plots

        plots, notes = write_plots(sweep_dir, comparison)
    except Exception as exc:  # write_plots does not raise; this guards its import
        notes = [f"plots not rendered: {type(exc).__name__}: {exc}"]
    comparison["caveats"] = [*comparison["caveats"], *notes]
    files += [sweep_dir / p.file for p in plots]
    if plots and (sweep_dir / "plots.json").is_file():
        files.append(sweep_dir / "plots.json")
    manifest = _read_optional_json(sweep_dir / "manifest.json")
    try:
        atomic_write_text(sweep_dir / HTML_FILE, render_html(comparison, plots, manifest))
        files.append(sweep_dir / HTML_FILE)
    except Exception as exc:  # the page must not stop the verdict from being written
        comparison["caveats"].append(f"{HTML_FILE} not written: {type(exc).__name__}: {exc}")
    atomic_write_json(sweep_dir / "comparison.json", comparison)
    images = [p.file for p in plots]
    atomic_write_text(sweep_dir / "comparison.md", render_markdown(comparison, images))
    files += [sweep_dir / "comparison.json", sweep_dir / "comparison.md"]
    return RenderedReport(comparison, files, plots, notes, time.perf_counter() - clock)
