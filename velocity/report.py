r"""The ranked verdict of a sweep: ``comparison.json`` and ``comparison.md``, from files only.

Everything here is a pure function of the files in a sweep directory (see
``docs/files.md``): each run directory's ``config.json``, ``summary.json`` and
``rounds.csv``, plus the sweep's ``plan.json`` and ``status.json`` when present. So
``velocity compare DIR`` re-renders the same verdict at any time, and the MCP
server reads ``comparison.json`` without running anything.

Runs are grouped into *cells* by :attr:`velocity.spec.RunSpec.cell` (the run name
without its ``__r<k>`` repeat suffix); a cell's repeats are summarised as mean ±
sample standard deviation (ddof=1; null with one repeat). Cells are ranked by mean
final loss, lowest first. With repeats, when the runner-up's mean differs from the
top's by less than twice the combined standard error,

.. math:: |m_1 - m_2| < 2\sqrt{s_1^2/n_1 + s_2^2/n_2}

where :math:`m_i`, :math:`s_i`, :math:`n_i` are a cell's mean final loss, its
sample standard deviation and its number of finished repeats, the top is reported
as *within noise* instead of as a winner. An attacked cell's robustness is its
``loss_increase``: its mean final loss minus that of the same strategy with no
attack (its *baseline*).

``comparison.json``::

    {
      "sweep_dir": str,                  # as given to build_comparison
      "generated_at": ISO-8601 UTC,
      "header": {
        "state": str | null,             # status.json state
        "runs_total": int,               # done + failed + not_run
        "runs_done": int, "runs_failed": int, "runs_not_run": int,
        "cells": int,                    # ranked cells (at least one run done)
        "repeats": int,                  # plan.json repeats, else the most repeats of a cell
        "parallel": int | null,          # argument, else plan.json parallel
        "wall_s": float | null,          # argument, else status.json elapsed_s
        "serial_s": float,               # Σ elapsed_s of every run that wrote a summary
        "speedup": float | null,         # serial_s / wall_s
        "rounds": int | [int] | null,    # one value when shared by every run, else the values
        "clients": int | [int] | null,
        "dataset": str | [str] | null,
        "model": str | [str] | null
      },
      "ranking": [                       # one entry per cell, best first
        {"rank": int, "run": str,        # the cell name (= the run name with one repeat)
         "runs": [str],                  # the finished runs of the cell
         "strategy": str, "attack": str, # labels, e.g. "Krum:f=2", "none", "alie+label_flip"
         "repeats": int,                 # finished repeats
         "final_loss": float | null, "final_loss_std": float | null,
         "mean_loss": float | null,
         "final_accuracy": float | null, "final_accuracy_std": float | null,  # fractions
         "elapsed_s": float | null,      # mean over repeats
         "loss_increase": float | null,  # vs the same strategy's baseline cell; null if none
         "accuracy_drop": float | null,  # baseline accuracy − this accuracy (fraction)
         "detection": {"kept_honest", "kept_byzantine", "excluded_honest",
                       "excluded_byzantine": int} | null}   # summed over repeats
      ],
      "winner": str | null,              # ranking[0].run; check winner_within_noise
      "winner_within_noise": bool,
      "tied_with": [str],                # the top cell and every cell within noise of it
      "most_robust": {
        "by_attack": {attack: {"strategy", "run", "baseline": str,
                               "loss_increase": float, "accuracy_drop": float | null}
                              | null},   # null: no strategy has a baseline and this attack
        "overall": {"strategy": str, "mean_loss_increase": float, "attacks": [str]} | null
      },
      "failed": [{"run": str, "error": str}],
      "not_run": [{"run": str, "state": str}],   # pending / cancelled / still running
      "caveats": [str]
    }

API: :func:`build_comparison` (the dict), :func:`render_markdown`,
:func:`render_console`, :func:`write_comparison` (builds and writes both files
atomically), and :func:`render_all`, the one entry point of the end of a sweep,
``velocity compare`` and ``velocity report``: the comparison files plus the
pictures (:mod:`velocity.plots`) and ``report.html`` (:mod:`velocity.html_report`).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from velocity.runio import atomic_write_json, atomic_write_text
from velocity.runio import finite_float as _float
from velocity.spec import RunSpec

if TYPE_CHECKING:
    from velocity.plots import Plot

DETECTION_KEYS = ("kept_honest", "kept_byzantine", "excluded_honest", "excluded_byzantine")
NO_ATTACK = "none"
_MINUS = "\u2212"


@dataclass
class _Run:
    """One run directory, as read from its files."""

    name: str
    cell: str
    strategy: str
    attack: str
    config: dict[str, Any]
    done: bool = False
    error: str | None = None
    not_run_state: str | None = None
    final_loss: float | None = None
    final_accuracy: float | None = None
    mean_loss: float | None = None
    elapsed_s: float | None = None
    detection: dict[str, int] | None = None
    diverged: bool = False
    stale: bool = False


@dataclass
class _Cell:
    """The finished repeats of one (strategy, attacks) configuration."""

    name: str
    strategy: str
    attack: str
    runs: list[_Run] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        loss, loss_std = _mean_std([r.final_loss for r in self.runs])
        acc, acc_std = _mean_std([r.final_accuracy for r in self.runs])
        elapsed = [r.elapsed_s for r in self.runs if r.elapsed_s is not None]
        return {
            "run": self.name,
            "runs": [r.name for r in self.runs],
            "strategy": self.strategy,
            "attack": self.attack,
            "repeats": len(self.runs),
            "final_loss": loss,
            "final_loss_std": loss_std,
            "mean_loss": _mean_std([r.mean_loss for r in self.runs])[0],
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
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_rounds(path: Path) -> list[dict[str, str]]:
    """The rows of a run's ``rounds.csv`` (``[]`` when absent or unreadable)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def _labels(config: dict[str, Any], fallback_name: str) -> tuple[str, str, str, str, bool]:
    """``(name, cell, strategy label, attack label, validated)`` of a run's config.

    A config that no longer validates against this version of velocity (a strategy
    or attack renamed since the sweep ran) is still reported, with labels taken from
    the raw JSON, so an old sweep directory always renders.
    """
    name = str(config.get("name") or fallback_name)
    cell = RunSpec.model_construct(name=name).cell  # the name rule only; no validation
    try:
        spec = RunSpec.model_validate(config)
    except Exception:  # any failure of a stale config must not stop the report
        strategy = config.get("strategy")
        strategy_label = str(strategy.get("type")) if isinstance(strategy, dict) else str(strategy)
        attacks = config.get("attacks") or []
        attack_label = "+".join(
            str(a.get("type")) if isinstance(a, dict) else str(a) for a in attacks
        )
        return name, cell, strategy_label, attack_label or NO_ATTACK, False
    return spec.name, spec.cell, spec.strategy.label(), spec.attack_label, True


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


def _apply_summary(run: _Run, summary: dict[str, Any], rounds: list[dict[str, str]]) -> None:
    """Fill a run's metrics from its summary, falling back to ``rounds.csv``."""
    losses = [_float(row.get("global_loss")) for row in rounds]
    run.final_loss = _float(summary.get("final_loss"))
    if run.final_loss is None and losses and losses[-1] is not None:
        run.final_loss = losses[-1]
    run.diverged = run.final_loss is None and bool(rounds)
    run.mean_loss = _float(summary.get("mean_loss"))
    if run.mean_loss is None and losses and None not in losses:
        run.mean_loss = statistics.fmean(x for x in losses if x is not None)
    run.final_accuracy = _float(summary.get("final_accuracy"))
    if run.final_accuracy is None and rounds:
        run.final_accuracy = _float(rounds[-1].get("accuracy"))
    run.elapsed_s = _float(summary.get("elapsed_s"))
    detection = summary.get("detection")
    if isinstance(detection, dict):
        run.detection = {k: int(detection.get(k) or 0) for k in DETECTION_KEYS}
    else:
        run.detection = _rounds_detection(rounds)


def _read_run(run_dir: Path, status_runs: Mapping[str, Any], sweep_state: str | None) -> _Run:
    """One run directory: its labels, whether it finished, and its metrics or error."""
    try:
        config = _read_json(run_dir / "config.json")
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        return _Run(
            run_dir.name, run_dir.name, "?", "?", {}, error=f"unreadable config.json: {exc}"
        )
    name, cell, strategy, attack, valid = _labels(config, run_dir.name)
    run = _Run(name, cell, strategy, attack, config, stale=not valid)
    rounds = _read_rounds(run_dir / "rounds.csv")
    entry = status_runs.get(name) or {}
    state = entry.get("state") if isinstance(entry, dict) else None
    try:
        summary = _read_json(run_dir / "summary.json")
    except FileNotFoundError:
        if state in ("pending", "cancelled") or (state == "running" and sweep_state == "running"):
            run.not_run_state = state
        elif state == "failed" and entry.get("error"):
            run.error = str(entry["error"])
        else:
            run.error = f"did not finish (no summary.json; {_last_round_note(rounds, config)})"
        return run
    except (OSError, ValueError) as exc:
        run.error = f"unreadable summary.json: {exc}"
        return run
    if not isinstance(summary, dict):
        run.error = "unreadable summary.json: not a JSON object"
        return run
    _apply_summary(run, summary, rounds)
    if summary.get("status") == "done":
        run.done = True
    else:
        run.error = str(summary.get("error") or f"status {summary.get('status')!r}")
    return run


def _status_runs(status: dict[str, Any]) -> dict[str, Any]:
    """``status.json``'s per-run map (``{}`` when absent)."""
    runs = status.get("runs")
    return runs if isinstance(runs, dict) else {}


def _read_runs(sweep_dir: Path, status: dict[str, Any]) -> list[_Run]:
    """Every run directory (one holding ``config.json``), sorted by name."""
    status_runs = _status_runs(status)
    return [
        _read_run(path.parent, status_runs, status.get("state"))
        for path in sorted(sweep_dir.glob("*/config.json"))
    ]


def _planned_without_dir(
    plan: dict[str, Any], status: dict[str, Any], seen: set[str]
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """``(failed, not_run)`` among the runs in ``plan.json`` that have no directory.

    A run whose worker died before writing ``config.json`` is failed when
    ``status.json`` says so; every other one has not run yet.
    """
    status_runs = _status_runs(status)
    failed, not_run = [], []
    for spec in plan.get("runs") or []:
        name = spec.get("name") if isinstance(spec, dict) else None
        if not isinstance(name, str) or name in seen:
            continue
        entry = status_runs.get(name)
        entry = entry if isinstance(entry, dict) else {}
        if entry.get("state") == "failed":
            failed.append({"run": name, "error": str(entry.get("error") or "failed")})
        else:
            not_run.append({"run": name, "state": str(entry.get("state") or "pending")})
    return failed, not_run


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


def _noise(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float] | None:
    """``(|Δ mean|, 2·SE)`` of two cells' final losses; None unless both have repeats."""
    if a["final_loss_std"] is None or b["final_loss_std"] is None:
        return None
    delta = abs(a["final_loss"] - b["final_loss"])
    se = math.sqrt(
        a["final_loss_std"] ** 2 / a["repeats"] + b["final_loss_std"] ** 2 / b["repeats"]
    )
    return delta, 2 * se


def _within_noise(a: dict[str, Any], b: dict[str, Any]) -> bool:
    noise = _noise(a, b)
    return noise is not None and (noise[0] < noise[1] or noise[0] == 0)


def _rank(cells: list[_Cell]) -> list[dict[str, Any]]:
    """Cell rows sorted by mean final loss (null losses last), with their rank."""
    rows = [cell.stats() for cell in cells]
    rows.sort(key=lambda r: (r["final_loss"] is None, r["final_loss"] or 0.0, r["run"]))
    return [{"rank": i, **row} for i, row in enumerate(rows, start=1)]


def _baselines(rows: list[dict[str, Any]], caveats: list[str]) -> dict[str, dict[str, Any]]:
    """Each strategy's no-attack cell (the best-ranked one when several exist)."""
    baselines: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["attack"] != NO_ATTACK:
            continue
        if row["strategy"] in baselines:
            caveats.append(
                f"{row['strategy']} has several no-attack cells; "
                f"{baselines[row['strategy']]['run']} is used as its baseline"
            )
            continue
        baselines[row["strategy"]] = row
    return baselines


def _fill_increases(rows: list[dict[str, Any]], baselines: dict[str, dict[str, Any]]) -> None:
    """Set ``loss_increase`` and ``accuracy_drop`` of attacked cells with a baseline."""
    for row in rows:
        base = baselines.get(row["strategy"])
        if row["attack"] == NO_ATTACK or base is None:
            continue
        if row["final_loss"] is not None and base["final_loss"] is not None:
            row["loss_increase"] = row["final_loss"] - base["final_loss"]
        if row["final_accuracy"] is not None and base["final_accuracy"] is not None:
            row["accuracy_drop"] = base["final_accuracy"] - row["final_accuracy"]


def _most_robust(
    rows: list[dict[str, Any]], baselines: dict[str, dict[str, Any]], caveats: list[str]
) -> dict[str, Any]:
    """Per attack, the smallest loss increase over its baseline; overall, the smallest mean."""
    attacks = sorted({r["attack"] for r in rows if r["attack"] != NO_ATTACK})
    if attacks and not baselines:
        caveats.append(
            "the robustness verdict needs baseline runs (each strategy with no attack); "
            "this sweep has none"
        )
    by_attack: dict[str, dict[str, Any] | None] = {}
    increases: dict[str, dict[str, float]] = {}
    for attack in attacks:
        candidates = [r for r in rows if r["attack"] == attack and r["loss_increase"] is not None]
        candidates.sort(key=lambda r: (r["loss_increase"], r["accuracy_drop"] or 0.0, r["run"]))
        for r in candidates:
            increases.setdefault(r["strategy"], {}).setdefault(attack, r["loss_increase"])
        by_attack[attack] = None
        if candidates:
            best = candidates[0]
            by_attack[attack] = {
                "strategy": best["strategy"],
                "run": best["run"],
                "baseline": baselines[best["strategy"]]["run"],
                "loss_increase": best["loss_increase"],
                "accuracy_drop": best["accuracy_drop"],
            }
    complete = {s: v for s, v in increases.items() if len(v) == len(attacks)}
    overall = None
    if complete:
        strategy, mean = min(
            ((s, statistics.fmean(v.values())) for s, v in complete.items()),
            key=lambda item: (item[1], item[0]),
        )
        overall = {"strategy": strategy, "mean_loss_increase": mean, "attacks": attacks}
    elif attacks and baselines:
        caveats.append(
            "no overall robustness verdict: no strategy was run with a baseline and "
            f"under every attack ({', '.join(attacks)})"
        )
    return {"by_attack": by_attack, "overall": overall}


# --------------------------------------------------------------------------- building


def _shared(values: Iterable[Any]) -> Any:
    """One value when every run shares it, the sorted distinct values otherwise."""
    distinct = sorted({v for v in values if v is not None}, key=str)
    if not distinct:
        return None
    return distinct[0] if len(distinct) == 1 else distinct


def _header(
    runs: list[_Run],
    rows: list[dict[str, Any]],
    failed: list[dict[str, str]],
    not_run: list[dict[str, str]],
    plan: dict[str, Any],
    status: dict[str, Any],
    wall_s: float | None,
    parallel: int | None,
) -> dict[str, Any]:
    started = [r for r in runs if r.not_run_state is None]
    wall = wall_s if wall_s is not None else _float(status.get("elapsed_s"))
    if parallel is None and isinstance(plan.get("parallel"), int):
        parallel = plan["parallel"]
    serial = sum(r.elapsed_s for r in started if r.elapsed_s is not None)
    repeats = plan.get("repeats")
    if not isinstance(repeats, int):
        repeats = max((row["repeats"] for row in rows), default=1)
    done = sum(r.done for r in started)
    return {
        "state": status.get("state"),
        "runs_total": done + len(failed) + len(not_run),
        "runs_done": done,
        "runs_failed": len(failed),
        "runs_not_run": len(not_run),
        "cells": len(rows),
        "repeats": repeats,
        "parallel": parallel,
        "wall_s": wall,
        "serial_s": serial,
        "speedup": serial / wall if wall else None,
        "rounds": _shared(r.config.get("rounds") for r in runs),
        "clients": _shared(r.config.get("clients") for r in runs),
        "dataset": _shared(r.config.get("dataset") for r in runs),
        "model": _shared(r.config.get("model_id") for r in runs),
    }


def _group(runs: list[_Run]) -> list[_Cell]:
    cells: dict[str, _Cell] = {}
    for run in runs:
        if run.done:
            cell = cells.setdefault(run.cell, _Cell(run.cell, run.strategy, run.attack))
            cell.runs.append(run)
    return list(cells.values())


def _run_caveats(runs: list[_Run], rows: list[dict[str, Any]]) -> list[str]:
    caveats = []
    stale = [r.name for r in runs if r.stale]
    if stale:
        caveats.append(
            f"{len(stale)} config.json file(s) do not validate against this version of velocity "
            f"({', '.join(stale[:3])}{', …' if len(stale) > 3 else ''}); "
            "their labels are read from the raw files"
        )
    for run in runs:
        if run.done and run.diverged:
            caveats.append(f"{run.name} diverged (final loss not finite); its cell ranks last")
    counts = {row["run"]: row["repeats"] for row in rows}
    planned: dict[str, int] = {}
    for run in runs:
        planned[run.cell] = planned.get(run.cell, 0) + 1
    for cell, done in counts.items():
        if planned.get(cell, done) > done:
            caveats.append(f"{cell}: only {done} of {planned[cell]} repeats finished")
    if len(rows) > 1 and max(counts.values()) == 1:
        caveats.append(
            "one repeat per cell: run-to-run noise is not measured, so small differences "
            "may be luck; use --repeats 3 to get mean ± std and a noise check"
        )
    return caveats


def _winner(rows: list[dict[str, Any]]) -> tuple[str | None, bool, list[str]]:
    ranked = [r for r in rows if r["final_loss"] is not None]
    if not ranked:
        return None, False, []
    top = ranked[0]
    tied = [r["run"] for r in ranked[1:] if _within_noise(top, r)]
    return top["run"], bool(tied), [top["run"], *tied] if tied else []


def build_comparison(
    sweep_dir: Path, *, wall_s: float | None = None, parallel: int | None = None
) -> dict[str, Any]:
    """The comparison of a sweep directory, as the ``comparison.json`` dict (see module doc).

    ``wall_s`` and ``parallel`` default to ``status.json``'s ``elapsed_s`` and
    ``plan.json``'s ``parallel``, so a re-render gives the same header.
    """
    sweep_dir = Path(sweep_dir)
    plan = _read_optional_json(sweep_dir / "plan.json")
    status = _read_optional_json(sweep_dir / "status.json")
    runs = _read_runs(sweep_dir, status)
    failed = [
        {"run": r.name, "error": r.error or "failed"}
        for r in runs
        if not r.done and r.not_run_state is None
    ]
    not_run = [{"run": r.name, "state": r.not_run_state} for r in runs if r.not_run_state]
    planned_failed, planned_not_run = _planned_without_dir(plan, status, {r.name for r in runs})
    failed += planned_failed
    not_run += planned_not_run
    rows = _rank(_group(runs))
    caveats = _run_caveats(runs, rows)
    baselines = _baselines(rows, caveats)
    _fill_increases(rows, baselines)
    most_robust = _most_robust(rows, baselines, caveats)
    winner, within_noise, tied = _winner(rows)
    if winner is None:
        caveats.append("no run finished with a finite loss: there is no winner")
    return {
        "sweep_dir": str(sweep_dir),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "header": _header(runs, rows, failed, not_run, plan, status, wall_s, parallel),
        "ranking": rows,
        "winner": winner,
        "winner_within_noise": within_noise,
        "tied_with": tied,
        "most_robust": most_robust,
        "failed": failed,
        "not_run": not_run,
        "caveats": caveats,
    }


# --------------------------------------------------------------------------- rendering


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def _signed(x: float, digits: str = ".3g") -> str:
    """``+0.012`` / ``−0.4`` (a true minus sign)."""
    text = format(abs(x), digits)
    return ("+" if x >= 0 else _MINUS) + text


def _seconds(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.2f} s" if x < 10 else f"{x:.1f} s"


def _pct(x: float | None, std: float | None = None) -> str:
    if x is None:
        return "–"
    return f"{100 * x:.1f}%" if std is None else f"{100 * x:.1f} ± {100 * std:.1f}%"


def _with_std(x: float | None, std: float | None) -> str:
    return _num(x) if std is None or x is None else f"{_num(x)} ± {std:.2g}"


def _describe(row: Mapping[str, Any]) -> str:
    """``FedMedian`` or ``FedMedian under gaussian_noise``."""
    if row["attack"] == NO_ATTACK:
        return str(row["strategy"])
    return f"{row['strategy']} under {row['attack']}"


def _robust_phrase(entry: Mapping[str, Any]) -> str:
    """``FedMedian (+0.012 loss, −0.4 pp accuracy vs its baseline)``."""
    parts = [f"{_signed(entry['loss_increase'])} loss"]
    if entry.get("accuracy_drop") is not None:
        parts.append(f"{_signed(-100 * entry['accuracy_drop'], '.1f')} pp accuracy")
    return f"{entry['strategy']} ({', '.join(parts)} vs its baseline)"


def _verdict_line(comparison: Mapping[str, Any]) -> str:
    """The winner sentence, or the within-noise sentence that replaces it."""
    rows = {r["run"]: r for r in comparison["ranking"]}
    winner = comparison["winner"]
    if winner is None:
        return "No winner: no run finished with a finite loss."
    top = rows[winner]
    if not comparison["winner_within_noise"]:
        return (
            f"Winner (lowest final loss): {winner} ({_describe(top)}), "
            f"final loss {_with_std(top['final_loss'], top['final_loss_std'])}."
        )
    others = [rows[name] for name in comparison["tied_with"][1:]]
    if len(others) == 1:
        delta, two_se = _noise(top, others[0]) or (0.0, 0.0)
        return (
            f"No clear winner: {_describe(top)} and {_describe(others[0])} are within noise of "
            f"each other (Δ={delta:.3g}, 2·SE={two_se:.3g}); run more repeats to separate them."
        )
    details = []
    for other in others:
        delta, two_se = _noise(top, other) or (0.0, 0.0)
        details.append(f"{_describe(other)} (Δ={delta:.3g}, 2·SE={two_se:.3g})")
    return (
        f"No clear winner: {_describe(top)} has the lowest mean final loss, but "
        f"{', '.join(details)} are within noise of it; run more repeats to separate them."
    )


def _header_lines(header: Mapping[str, Any]) -> list[str]:
    runs = (
        f"{header['runs_total']} runs ({header['runs_done']} done, "
        f"{header['runs_failed']} failed"
        + (f", {header['runs_not_run']} not run" if header["runs_not_run"] else "")
        + f") in {header['cells']} cells × {header['repeats']} repeat"
        + ("s" if header["repeats"] != 1 else "")
    )
    parts = [runs]
    if header["parallel"] is not None:
        parts.append(f"parallel {header['parallel']}")
    timing = f"serial Σ {_seconds(header['serial_s'])}"
    if header["wall_s"] is not None:
        parts.append(f"wall {_seconds(header['wall_s'])}")
        if header["speedup"] is not None:
            timing += f" ({header['speedup']:.1f}× speedup)"
    parts.append(timing)
    setting = [
        f"{label} {header[key]}"
        for key, label in (
            ("dataset", "dataset"),
            ("model", "model"),
            ("rounds", "rounds"),
            ("clients", "clients"),
        )
        if header[key] is not None
    ]
    return [" · ".join(parts), " · ".join(setting)] if setting else [" · ".join(parts)]


def _table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| Rank | Run | Strategy | Attack | Final loss | Mean loss | Final acc | Elapsed |",
        "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cells = [
            str(r["rank"]),
            f"`{r['run']}`",
            r["strategy"],
            r["attack"],
            _with_std(r["final_loss"], r["final_loss_std"]),
            _num(r["mean_loss"]),
            _pct(r["final_accuracy"], r["final_accuracy_std"]),
            _seconds(r["elapsed_s"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _robust_lines(most_robust: Mapping[str, Any]) -> list[str]:
    by_attack = most_robust["by_attack"]
    if not by_attack:
        return ["No attacks in this sweep."]
    lines = []
    for attack, entry in by_attack.items():
        if entry is None:
            lines.append(f"- {attack}: no strategy has both a baseline and this attack")
        else:
            lines.append(f"- {attack}: {_robust_phrase(entry)}")
    overall = most_robust["overall"]
    if overall is not None:
        n = len(overall["attacks"])
        lines.append(
            f"- Overall: {overall['strategy']} ({_signed(overall['mean_loss_increase'])} "
            f"mean loss increase over {n} attack{'s' if n != 1 else ''})"
        )
    else:
        lines.append("- Overall: no verdict (see caveats)")
    return lines


def render_markdown(comparison: Mapping[str, Any], images: Sequence[str] = ()) -> str:
    """``comparison.md``: header, ranked table, verdicts, failures, caveats, then plots.

    ``images`` are paths relative to the sweep directory (e.g. ``"plots/loss.png"``);
    each is linked in the *Plots* section at the end.
    """
    name = Path(comparison["sweep_dir"]).name or comparison["sweep_dir"]
    lines = [f"# Sweep comparison: {name}", "", *_header_lines(comparison["header"]), ""]
    if comparison["ranking"]:
        lines += [*_table(comparison["ranking"]), ""]
    lines += [_verdict_line(comparison), ""]
    lines += ["## Most robust under attack", "", *_robust_lines(comparison["most_robust"]), ""]
    if comparison["failed"]:
        lines += ["## Failed runs", ""]
        lines += [f"- `{f['run']}`: {f['error']}" for f in comparison["failed"]] + [""]
    if comparison["not_run"]:
        lines += ["## Not run", ""]
        lines += [f"- `{n['run']}` ({n['state']})" for n in comparison["not_run"]] + [""]
    if comparison["caveats"]:
        lines += ["## Caveats", "", *[f"- {c}" for c in comparison["caveats"]], ""]
    # Plots: report plots are linked here (the images argument); nothing else goes below.
    if images:
        lines += ["## Plots", "", *[f"![{Path(i).stem}]({i})" for i in images], ""]
    lines.append(f"_Generated {comparison['generated_at']}._")
    return "\n".join(lines) + "\n"


def render_console(comparison: Mapping[str, Any], sweep_dir: Path) -> str:
    """A few lines for the terminal: verdict, most robust per attack, failures, the file paths."""
    lines = [_verdict_line(comparison)]
    for attack, entry in comparison["most_robust"]["by_attack"].items():
        if entry is not None:
            lines.append(f"Most robust under {attack}: {_robust_phrase(entry)}")
    overall = comparison["most_robust"]["overall"]
    if overall is not None and len(comparison["most_robust"]["by_attack"]) > 1:
        lines.append(
            f"Most robust overall: {overall['strategy']} "
            f"({_signed(overall['mean_loss_increase'])} mean loss increase)"
        )
    failed = len(comparison["failed"])
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
) -> dict[str, Any]:
    """Build the comparison and write ``comparison.json`` and ``comparison.md`` atomically."""
    sweep_dir = Path(sweep_dir)
    comparison = build_comparison(sweep_dir, wall_s=wall_s, parallel=parallel)
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
    sweep_dir: Path, *, wall_s: float | None = None, parallel: int | None = None
) -> RenderedReport:
    """Write every report of a sweep directory from its files; plotting never makes it fail.

    Writes ``curves.png``, ``robustness.png`` and ``plots.json`` (when matplotlib is
    installed), ``report.html``, then ``comparison.json`` and, last, ``comparison.md``
    (linking the PNGs). A plot or the HTML page that cannot be rendered becomes a
    caveat (e.g. ``plots not rendered: matplotlib is not installed (...)``) instead of
    an error; only a failure to write the comparison files raises.
    """
    from velocity.html_report import FILE as HTML_FILE
    from velocity.html_report import render_html

    clock = time.perf_counter()
    sweep_dir = Path(sweep_dir)
    comparison = build_comparison(sweep_dir, wall_s=wall_s, parallel=parallel)
    plots: list[Plot] = []
    notes: list[str] = []
    try:
        from velocity.plots import write_plots

        plots, notes = write_plots(sweep_dir, comparison)
    except Exception as exc:  # write_plots does not raise; this guards its import
        notes = [f"plots not rendered: {type(exc).__name__}: {exc}"]
    comparison["caveats"] = [*comparison["caveats"], *notes]
    files = [sweep_dir / p.file for p in plots]
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
