"""The structured results of the tools (pydantic models give each tool an outputSchema).

The verdict is made of the sweep directory's own models
(:mod:`velocity.sweepdir.comparison`: the recommendation, the header, the ranking,
the best strategy per attack, the runs without a result): ``sweep_compare`` returns
``comparison.json`` as that module declares it, and only what the summary leaves out
is shaped here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from velocity.sweepdir import names
from velocity.sweepdir.comparison import (
    AttackBest,
    ConditionResult,
    Header,
    NotRun,
    RankRow,
    Recommendation,
    RunError,
    StrategyScore,
)
from velocity.sweepdir.models import Decision

SweepState = Literal["starting", "running", "done", "failed", "cancelled", "interrupted"]


# --------------------------------------------------------------------------- catalog


class ParamInfo(BaseModel):
    """One parameter of a strategy or an attack."""

    type: str = Field(description="int, float, str or bool")
    default: Any = Field(description="value used when the parameter is not given")
    nullable: bool = Field(description="whether 'none' is allowed (e.g. f=none: estimated)")
    allowed: str = Field(description="allowed range, e.g. '>= 0' or '[0, 0.5)'")
    description: str


class StrategyInfo(BaseModel):
    """One aggregation strategy."""

    name: str
    description: str
    reference: str = Field(description="paper")
    selection: bool = Field(
        description="selects clients (Krum, MultiKrum, Bulyan): reports Byzantine detection"
    )
    params: dict[str, ParamInfo]
    example: str = Field(description="inline form for sweep_run's strategies list")


class AttackInfo(BaseModel):
    """One attack."""

    name: str
    kind: str = Field(description="'update' rewrites Byzantine updates; 'data' poisons labels")
    adaptive: bool = Field(
        description="optimises its update against the run's own strategy; the attacks "
        "item 'adaptive' stands for every such attack"
    )
    description: str
    reference: str = Field(description="paper")
    params: dict[str, ParamInfo]
    example: str = Field(description="inline form for sweep_run's attacks list")


class Catalog(BaseModel):
    """Everything a sweep can be made of, and the server's limits."""

    strategies: list[StrategyInfo]
    attacks: list[AttackInfo]
    datasets: dict[str, str] = Field(description="dataset id -> description")
    models: dict[str, str] = Field(description="model id -> description")
    limits: dict[str, int] = Field(description="this server's limits per sweep_run")
    syntax: str = Field(description="how to write strategies and attacks with parameters")


# --------------------------------------------------------------------------- sweeps


class SweepStarted(BaseModel):
    """A sweep that sweep_run started in the background."""

    sweep_id: str = Field(description="pass to sweep_status / sweep_compare / sweep_cancel")
    sweep_dir: str = Field(description="the sweep directory (accepted as sweep_id too)")
    status: Literal["running"]
    total_runs: int
    planned_runs: list[str] = Field(description="run names, one directory each")
    parallel: int = Field(description="worker processes")
    repeats: int
    rounds: int
    clients: int
    comparison_uri: str = Field(
        description=f"resource with {names.COMPARISON_MD} once the sweep is done"
    )
    until: Literal["decided"] | None = Field(
        None,
        description="decided: repeats are added until the recommendation is decided; "
        "total_runs and planned_runs are then its first repeat",
    )
    max_runs: int | None = Field(
        None, description="until decided: the most runs it may take (max_repeats, budget)"
    )
    next_step: str


class ExtendStarted(BaseModel):
    """An extension that sweep_extend added to a sweep."""

    sweep_id: str = Field(description="the extended sweep (poll it with sweep_status)")
    sweep_dir: str
    status: Literal["queued", "running"] = Field(
        description="queued: the sweep was running and its driver runs the new runs when its "
        "current runs are done; running: the sweep had ended and runs the new runs now"
    )
    added_runs: int = Field(description="runs added (finished runs are never rerun)")
    total_runs: int = Field(description="runs of the sweep with the new ones")
    next_step: str


class RunProgress(BaseModel):
    """A run that is running now."""

    run: str
    round: int | None = Field(description="last completed round")
    rounds: int | None = Field(description="rounds in the run")


class SweepStatus(BaseModel):
    """Where a sweep stands."""

    sweep_id: str
    sweep_dir: str
    state: SweepState = Field(
        description="starting (process launched, no status yet), running, done (every run "
        "ended: done, diverged or failed), failed (the sweep itself stopped), cancelled, or "
        "interrupted (the process died without finishing)"
    )
    total_runs: int
    done_runs: int = Field(description="runs that finished normally")
    diverged_runs: int = Field(
        description="runs that ended with non-finite values: the strategy broke under this "
        "setting. A result (the verdict counts it as accuracy 0), not a failure"
    )
    failed_runs: int = Field(description="runs that crashed or were killed: no result")
    running: list[RunProgress]
    pending_runs: int
    elapsed_s: float | None
    started_at: str | None
    finished_at: str | None
    errors: list[RunError] = Field(description="failed runs with their error")
    diverged: list[RunError] = Field(description="diverged runs with what went non-finite")
    error: str | None = Field(description="why the sweep itself failed or was interrupted")
    comparison_ready: bool = Field(description=f"{names.COMPARISON} exists: call sweep_compare")
    next_step: str


class SweepSummary(BaseModel):
    """One sweep under the root (state null: see error)."""

    sweep_id: str
    state: SweepState | None
    total_runs: int | None
    done_runs: int | None
    started_at: str | None
    comparison_ready: bool
    error: str | None = Field(
        default=None, description=f"why its state is unknown (an unreadable {names.STATUS})"
    )


class SweepList(BaseModel):
    """The sweeps under the server's root, oldest first."""

    root: str
    sweeps: list[SweepSummary]


class CancelResult(BaseModel):
    """What sweep_cancel did."""

    sweep_id: str
    sweep_dir: str
    cancelled: bool = Field(description="whether this call stopped a running sweep")
    state: SweepState
    message: str


# --------------------------------------------------------------------------- verdict


class Candidate(StrategyScore):
    """One strategy's worst case (``StrategyScore``); the summary leaves out its conditions."""

    conditions: list[ConditionResult] | None = Field(  # type: ignore[assignment]
        default=None,
        description="its result under each condition; only with detail='full'",
    )


class VerdictRecommendation(Recommendation):
    """The recommendation (``velocity.sweepdir.comparison.Recommendation``): act on this."""

    candidates: list[Candidate] = Field(  # type: ignore[assignment]
        description="complete strategies, best first"
    )
    incomplete: list[Candidate] = Field(  # type: ignore[assignment]
        description="strategies missing a condition"
    )


#: Cells of the ranking that the summary shows.
SUMMARY_ROWS = 5
Detail = Literal["summary", "full"]


class Verdict(BaseModel):
    """The verdict of a finished sweep (its comparison.json), the recommendation first.

    The summary leaves out the fields marked "detail='full'" (they are absent, not null).
    """

    recommendation: VerdictRecommendation
    verdict: str = Field(description="recommendation.reason: one sentence to quote")
    decision: Decision | None = Field(
        default=None,
        description="a sweep run until='decided': what ended it (decided, max-repeats, budget), "
        "the runs spent against the full grid's (full_grid_runs), the strategies eliminated "
        "with their repeats; null for a fixed grid",
    )
    detail: Detail = Field(
        description="summary: the recommendation, the best strategy under each attack, the "
        f"caveats, the header and the top {SUMMARY_ROWS} cells; full: everything in "
        f"{names.COMPARISON} (every cell, each candidate's conditions, failed/diverged runs)"
    )
    sweep_id: str
    sweep_dir: str
    state: str | None
    by_attack: dict[str, AttackBest | None] = Field(
        description="per attack, the strategy with the best accuracy under it, with its drop "
        "from its own clean run and the non-robust reference's result for context (null: no "
        "strategy finished a run under it). Context, not the recommendation"
    )
    caveats: list[str] = Field(description="read before trusting the verdict")
    header: Header = Field(
        description="runs (done, diverged, failed, not run), cells, repeats, timing, rank_by, "
        "and setting: dataset, model, partition, alpha, clients, clients_per_round, "
        "fraction_fit, rounds, local_epochs, batch_size, lr, test_samples, byzantine "
        "{attack: count}"
    )
    ranking: list[RankRow] = Field(
        description=f"cells (strategy × attack) ranked by header.rank_by; the summary has the "
        f"top {SUMMARY_ROWS} of header.cells"
    )
    winner: str | None = Field(
        default=None,
        description="detail='full': the cell with the lowest final loss, usually a no-attack "
        "run. Not a recommendation: use recommendation",
    )
    winner_attack: str | None = Field(default=None, description="detail='full': its attack")
    winner_within_noise: bool | None = Field(
        default=None, description="detail='full': other cells' losses are within 2·SE of it"
    )
    tied_with: list[str] | None = Field(
        default=None, description="detail='full': the winner and the cells within noise of it"
    )
    failed: list[RunError] | None = Field(
        default=None, description="detail='full': runs that crashed or were killed"
    )
    diverged: list[RunError] | None = Field(
        default=None, description="detail='full': runs that diverged (counted as accuracy 0)"
    )
    not_run: list[NotRun] | None = Field(
        default=None, description="detail='full': planned runs that did not run"
    )
    generated_at: str | None
    comparison_uri: str = Field(description=f"resource with the full {names.COMPARISON_MD}")


__all__ = [
    "SUMMARY_ROWS",
    "AttackInfo",
    "CancelResult",
    "Candidate",
    "Catalog",
    "Detail",
    "ExtendStarted",
    "NotRun",
    "ParamInfo",
    "RankRow",
    "RunError",
    "RunProgress",
    "StrategyInfo",
    "SweepList",
    "SweepStarted",
    "SweepState",
    "SweepStatus",
    "SweepSummary",
    "Verdict",
    "VerdictRecommendation",
]
