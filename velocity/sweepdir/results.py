"""``results.csv``: one tidy row per run of a sweep, and :func:`load_results` to read it back.

What a pandas user expects instead of joining ``config.json`` files: each run's
cell, strategy and attack (label, type and parameters as JSON), repeat, seed, how
it ended and its metrics. Written at the sweep root by every report render, from
the run files only (so it can be rebuilt for any sweep with ``velocity report``).

Columns (:data:`RESULT_COLUMNS`):

- ``run``, ``cell``: the run's name and its cell (the name without ``__r<k>``)
- ``strategy``: the label (``Krum:f=2``); ``strategy_type``; ``strategy_params``: JSON object
- ``attack``: the label (``none`` without attack); ``attack_types``: the attack names
  joined by ``+`` (empty without attack); ``attack_params``: JSON list of objects
- ``repeat``, ``seed``
- ``status``: ``done``, ``diverged`` (the strategy broke: non-finite values),
  ``failed``, or ``pending`` / ``running`` / ``cancelled`` (not run to the end)
- ``error``: why a run failed or diverged (empty otherwise)
- ``final_accuracy``, ``best_accuracy``, ``mean_accuracy`` (fractions), ``final_loss``,
  ``rounds``, ``rounds_completed``, ``byzantine`` (Byzantine clients in the run),
  ``elapsed_s``: from ``summary.json``; empty when unknown
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from velocity.sweepdir import names
from velocity.sweepdir.io import atomic_write_csv, finite_float, read_csv
from velocity.sweepdir.runs import read_runs

RESULTS_FILE = names.RESULTS


class ResultRow(BaseModel):
    """One line of ``results.csv``: one run (planned runs that have not run included)."""

    FILE: ClassVar[str] = names.RESULTS

    run: str = Field(description="the run's name")
    cell: str = Field(description="its cell: the name without __r<k>")
    strategy: str | None = Field(description="the strategy's label, e.g. Krum:f=2")
    strategy_type: str | None = Field(description="the strategy's name")
    strategy_params: dict[str, Any] = Field(description="its parameters (a JSON object)")
    attack: str | None = Field(description="the attacks' label, 'none' without attack")
    attack_types: str | None = Field(description="the attack names joined by +")
    attack_params: list[dict[str, Any]] = Field(
        description="one JSON object of parameters per attack (a JSON list)"
    )
    repeat: int | None = Field(description="its repeat within its cell")
    seed: int | None = Field(description="its seed")
    status: str | None = Field(
        description="done, diverged, failed, or pending / running / cancelled (not run)"
    )
    error: str | None = Field(description="why it failed or diverged")
    final_accuracy: float | None = Field(description="from summary.json, a fraction")
    best_accuracy: float | None = Field(description="best accuracy of any round")
    mean_accuracy: float | None = Field(description="mean accuracy over the rounds")
    final_loss: float | None = Field(description="test loss after the last round")
    rounds: int | None = Field(description="rounds planned")
    rounds_completed: int | None = Field(description="rounds completed")
    byzantine: int | None = Field(description="Byzantine clients in the run")
    elapsed_s: float | None = Field(description="wall seconds of the run")


RESULT_COLUMNS: tuple[str, ...] = tuple(ResultRow.model_fields)


def _columns(annotation: Any) -> tuple[str, ...]:
    return tuple(n for n, f in ResultRow.model_fields.items() if f.annotation == annotation)


_INT_COLUMNS = _columns(int | None)
_FLOAT_COLUMNS = _columns(float | None)
_JSON_COLUMNS = _columns(dict[str, Any]) + _columns(list[dict[str, Any]])


def result_rows(sweep_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``results.csv`` for a sweep directory, built from its run files."""
    rows = []
    for run in read_runs(sweep_dir):
        config, summary = run.config, run.summary
        strategy = config.get("strategy")
        strategy = strategy if isinstance(strategy, dict) else {"type": strategy}
        attacks = [a for a in config.get("attacks") or [] if isinstance(a, dict)]
        byzantine = run.byzantine_clients
        rows.append(
            {
                "run": run.name,
                "cell": run.cell,
                "strategy": run.strategy,
                "strategy_type": strategy.get("type"),
                "strategy_params": {k: v for k, v in strategy.items() if k != "type"},
                "attack": run.attack,
                "attack_types": "+".join(str(a.get("type")) for a in attacks),
                "attack_params": [a.get("params") or {} for a in attacks],
                "repeat": config.get("repeat"),
                "seed": config.get("seed"),
                "status": run.status,
                "error": run.error if run.status in ("failed", "diverged") else None,
                "final_accuracy": finite_float(summary.get("final_accuracy")),
                "best_accuracy": finite_float(summary.get("best_accuracy")),
                "mean_accuracy": finite_float(summary.get("mean_accuracy")),
                "final_loss": finite_float(summary.get("final_loss")),
                "rounds": config.get("rounds"),
                "rounds_completed": summary.get("rounds_completed"),
                "byzantine": len(byzantine) if byzantine is not None else None,
                "elapsed_s": finite_float(summary.get("elapsed_s")),
            }
        )
    return rows


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return repr(value)
    return value


def write_results(sweep_dir: Path) -> Path:
    """Write ``results.csv`` atomically at the sweep root; returns its path."""
    path = Path(sweep_dir) / RESULTS_FILE
    rows = ({k: _cell(row[k]) for k in RESULT_COLUMNS} for row in result_rows(sweep_dir))
    atomic_write_csv(path, RESULT_COLUMNS, rows)
    return path


def _parse(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in RESULT_COLUMNS:
        text = row.get(key) or ""
        if key in _INT_COLUMNS:
            out[key] = int(text) if text.lstrip("-").isdigit() else None
        elif key in _FLOAT_COLUMNS:
            out[key] = finite_float(text)
        elif key in _JSON_COLUMNS:
            out[key] = json.loads(text) if text else ({} if key == "strategy_params" else [])
        else:
            out[key] = text or None
    return out


def _read(path: Path) -> list[dict[str, Any]]:
    return [_parse(row) for row in read_csv(path)]


def load_results(sweep_dir: str | Path, *, frame: bool | None = None) -> Any:
    """One row per run of a sweep: ``results.csv``, typed (ints, floats, None, dicts).

    Reads ``results.csv``, or builds the rows from the run files when the sweep
    predates it. Returns a pandas ``DataFrame`` when pandas is installed (or
    ``frame=True``, which then needs pandas), else a list of dicts; ``frame=False``
    always gives the list.

    >>> rows = load_results("out/my-sweep", frame=False)  # doctest: +SKIP
    >>> {(r["strategy"], r["attack"]): r["final_accuracy"] for r in rows}  # doctest: +SKIP
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"no such sweep directory: {sweep_dir}")
    path = sweep_dir / RESULTS_FILE
    rows = _read(path) if path.is_file() else [_normalise(r) for r in result_rows(sweep_dir)]
    if frame is False:
        return rows
    try:
        import pandas as pd
    except ImportError:
        if frame:
            raise ImportError("load_results(frame=True) needs pandas: pip install pandas") from None
        return rows
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """A freshly built row typed exactly as one read back from the CSV."""
    return _parse({k: str(_cell(v)) for k, v in row.items()})


__all__ = [
    "RESULTS_FILE",
    "RESULT_COLUMNS",
    "ResultRow",
    "load_results",
    "result_rows",
    "write_results",
]
