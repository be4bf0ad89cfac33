"""The structured results of the tools (pydantic models give each tool an outputSchema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
    comparison_uri: str = Field(description="resource with comparison.md once the sweep is done")
    next_step: str


class RunProgress(BaseModel):
    """A run that is running now."""

    run: str
    round: int | None = Field(description="last completed round")
    rounds: int | None = Field(description="rounds in the run")


class RunError(BaseModel):
    """A run that failed, and why."""

    run: str
    error: str


class SweepStatus(BaseModel):
    """Where a sweep stands."""

    sweep_id: str
    sweep_dir: str
    state: SweepState = Field(
        description="starting (process launched, no status yet), running, done (every run "
        "ended; some may have failed), failed (the sweep itself stopped), cancelled, or "
        "interrupted (the process died without finishing)"
    )
    total_runs: int
    done_runs: int
    failed_runs: int
    running: list[RunProgress]
    pending_runs: int
    elapsed_s: float | None
    started_at: str | None
    finished_at: str | None
    errors: list[RunError] = Field(description="failed runs with their error")
    error: str | None = Field(description="why the sweep itself failed or was interrupted")
    comparison_ready: bool = Field(description="comparison.json exists: call sweep_compare")
    next_step: str


class SweepSummary(BaseModel):
    """One sweep under the root."""

    sweep_id: str
    state: SweepState | None
    total_runs: int | None
    done_runs: int | None
    started_at: str | None
    comparison_ready: bool


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


class RankRow(BaseModel):
    """One cell (strategy × attack) of the ranking, best first."""

    model_config = ConfigDict(extra="allow")

    rank: int
    run: str = Field(description="cell name (the run name when repeats=1)")
    strategy: str
    attack: str = Field(description="'none' for the no-attack baseline")
    repeats: int
    final_loss: float | None = Field(description="mean over repeats; ranking key (lower wins)")
    final_loss_std: float | None = Field(description="sample std over repeats; null with 1")
    mean_loss: float | None = None
    final_accuracy: float | None = Field(default=None, description="fraction in [0, 1]")
    final_accuracy_std: float | None = None
    elapsed_s: float | None = None
    loss_increase: float | None = Field(
        default=None, description="final loss minus the same strategy's no-attack baseline"
    )
    accuracy_drop: float | None = Field(
        default=None, description="baseline accuracy minus this accuracy (fraction)"
    )
    detection: dict[str, int] | None = Field(
        default=None, description="selection strategies: kept/excluded honest/byzantine counts"
    )


class RobustEntry(BaseModel):
    """The strategy that lost least to one attack."""

    model_config = ConfigDict(extra="allow")

    strategy: str
    run: str
    baseline: str | None = None
    loss_increase: float
    accuracy_drop: float | None = None


class OverallRobust(BaseModel):
    """The strategy with the smallest mean loss increase over every attack."""

    model_config = ConfigDict(extra="allow")

    strategy: str
    mean_loss_increase: float
    attacks: list[str]


class MostRobust(BaseModel):
    """Robustness verdicts."""

    by_attack: dict[str, RobustEntry | None] = Field(
        description="attack -> most robust strategy (null: no strategy had a baseline)"
    )
    overall: OverallRobust | None


class NotRun(BaseModel):
    """A planned run that did not run to the end (pending, cancelled)."""

    run: str
    state: str | None = None


class Verdict(BaseModel):
    """The ranked verdict of a finished sweep (from its comparison.json)."""

    sweep_id: str
    sweep_dir: str
    state: str | None
    verdict: str = Field(description="one sentence: the winner, or why there is none")
    winner: str | None = Field(description="best cell by final loss; see winner_within_noise")
    winner_within_noise: bool = Field(
        description="true: the top cells are within noise (2·SE); no clear winner"
    )
    tied_with: list[str] = Field(description="the top cell and every cell within noise of it")
    most_robust: MostRobust
    ranking: list[RankRow]
    failed: list[RunError]
    not_run: list[NotRun]
    caveats: list[str] = Field(description="read before trusting the verdict")
    header: dict[str, Any] = Field(description="runs, repeats, timing, rounds, clients, dataset")
    generated_at: str | None
    comparison_uri: str = Field(description="resource with the full comparison.md")
