"""``comparison.json``: the verdict of a sweep, as pydantic models.

:class:`Comparison` is the whole file; ``velocity.report.comparison.build_comparison``
builds it from the other files of the sweep directory, and the MCP server's
``sweep_compare`` result is made of the same models. Its parts, in file order: the
:class:`Recommendation` (the strategy whose worst case over {no attack} ∪ the
sweep's attacks is best, with its :class:`StrategyScore` candidates and their
:class:`ConditionResult` s), the :class:`Header` (counts, timing and the
:class:`Setting`), :class:`MostRobust` (per attack an :class:`AttackBest`, with the
non-robust :class:`ReferenceResult`), the :class:`RankRow` s of every cell, the
lowest-loss winner line, the runs without a result (:class:`RunError`,
:class:`NotRun`) and the caveats.

Accuracies are fractions; every "drop" or "price" is positive when worse. How the
recommendation is computed: ``velocity.report.verdict``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from velocity.spec import RankBy
from velocity.sweepdir import names
from velocity.sweepdir.models import Decision, Detection, FileModel

#: A setting as the sweep's runs have it: one value when every run shares it, else the
#: sorted distinct values (null when no run says).
SharedValue = Annotated[JsonValue, Field(json_schema_extra={"shown": "value | [values]"})]


# --------------------------------------------------------------------------- the recommendation


class ConditionResult(BaseModel):
    """A strategy under one condition, over its finished repeats."""

    condition: str = Field(description="'none' (no attack) or the attack label")
    cell: str = Field(description="the cell name (the run name with one repeat)")
    accuracy: float | None = Field(description="mean final accuracy; a diverged run counts 0")
    accuracy_std: float | None = Field(description="sample std over repeats; null with one")
    loss: float | None = Field(description="mean final loss; null when a repeat diverged")
    repeats: int = Field(description="finished repeats (done or diverged)")
    diverged: int = Field(description="repeats that diverged (the strategy broke)")


class StrategyScore(BaseModel):
    """One strategy's worst case over the sweep's conditions."""

    strategy: str = Field(description="the strategy's label")
    rank: int | None = Field(description="1 = best worst case; null for incomplete strategies")
    worst_case: float | None = Field(
        description="mean per-seed worst case of the ranking metric (accuracy or loss)"
    )
    worst_case_se: float | None = Field(description="its standard error; null with one repeat")
    worst_case_accuracy: float | None = Field(description="mean per-seed worst accuracy")
    worst_case_loss: float | None = Field(
        description="mean per-seed worst loss; null when a run diverged (infinite)"
    )
    binding: str | None = Field(description="the condition with the worst mean: what limits it")
    clean_accuracy: float | None = Field(description="accuracy with no attack")
    price_of_robustness: float | None = Field(
        description="best clean accuracy of any strategy minus this one's (positive = costs)"
    )
    elapsed_s: float | None = Field(description="mean run time over its runs")
    repeats: int = Field(description="seeds with every condition finished")
    conditions: list[ConditionResult] = Field(description="its result under each condition")
    missing: list[str] = Field(description="why it is incomplete (empty for candidates)")


class Recommendation(BaseModel):
    """The strategy to use: best worst case over {no attack} ∪ the sweep's attacks."""

    strategy: str | None = Field(description="the recommended strategy; null when none is complete")
    rank_by: RankBy = Field(description="what the worst case is of: accuracy or loss")
    decided: bool = Field(
        False, description="true only when its worst case beats every other candidate's by > 2·SE"
    )
    noise_measured: bool = Field(
        False,
        description="false when noise could not be estimated (one repeat and no floor: loss "
        "ranking, or summaries without the test-set size)",
    )
    worst_case: float | None = Field(None, description="its mean worst case (ranking metric)")
    worst_case_se: float | None = Field(None, description="its standard error")
    worst_case_accuracy: float | None = Field(None, description="its mean worst-case accuracy")
    binding: str | None = Field(None, description="the condition that sets its worst case")
    runner_up: str | None = Field(None, description="second best worst case")
    margin: float | None = Field(
        None,
        description="paired mean worst-case difference, best minus runner-up (ranking metric; "
        "positive = the best is better)",
    )
    two_se: float | None = Field(
        None, description="2·SE of that difference: decided needs margin > it"
    )
    tie: list[str] = Field(
        default_factory=list, description="candidates within noise of the best (empty if decided)"
    )
    repeats_to_separate: int | None = Field(
        None, description="repeats likely to separate the tie; null when not estimable"
    )
    clean_accuracy: float | None = Field(None, description="its accuracy with no attack")
    best_clean_strategy: str | None = Field(None, description="highest no-attack accuracy of any")
    best_clean_accuracy: float | None = Field(None, description="that strategy's accuracy")
    price_of_robustness: float | None = Field(
        None, description="best clean accuracy minus the recommendation's clean accuracy"
    )
    conditions: dict[str, float | None] = Field(
        default_factory=dict, description="the recommendation's mean accuracy per condition"
    )
    nothing_survives: bool = Field(
        False,
        description="the best worst-case accuracy of any candidate is > 10 pp below the best "
        "clean accuracy",
    )
    breaking_attack: str | None = Field(
        None, description="with nothing_survives: the attack under which every candidate stays low"
    )
    reason: str = Field(description="one sentence an agent can quote")
    candidates: list[StrategyScore] = Field(description="complete strategies, best first")
    incomplete: list[StrategyScore] = Field(description="strategies missing a condition")


class ReferenceResult(BaseModel):
    """The non-robust reference (e.g. FedAvg) under the same attack, for context."""

    strategy: str = Field(description="the reference strategy's label")
    accuracy: float | None = Field(description="its accuracy under the attack")
    accuracy_drop: float | None = Field(description="vs its clean accuracy; positive = worse")
    loss_increase: float | None = Field(description="its loss minus its clean loss")


class AttackBest(BaseModel):
    """The strategy that does best under one attack (by accuracy under it, noise-aware)."""

    attack: str = Field(description="the attack's label")
    strategy: str = Field(description="the strategy that does best under it")
    run: str = Field(description="its cell")
    accuracy: float | None = Field(description="its mean accuracy under the attack")
    accuracy_std: float | None = Field(description="sample std over repeats; null with one")
    loss: float | None = Field(description="its mean loss; null when a repeat diverged")
    repeats: int = Field(description="finished repeats")
    diverged: int = Field(description="repeats that diverged")
    decided: bool = Field(
        description="beats every other strategy under this attack by > 2·SE (false too when "
        "the noise is not measured)"
    )
    tied_with: list[str] = Field(description="other strategies within noise of it")
    baseline: str | None = Field(description="its no-attack cell")
    accuracy_drop: float | None = Field(description="its clean accuracy minus this; + = worse")
    loss_increase: float | None = Field(description="this loss minus its clean loss")
    reference: ReferenceResult | None = Field(
        description="the non-robust reference strategy under this attack, when in the sweep"
    )


# --------------------------------------------------------------------------- header


class Setting(BaseModel):
    """The experiment's setting, as the runs' config.json files say."""

    dataset: SharedValue = Field(description="dataset id")
    model: SharedValue = Field(description="model id (config.json's model_id)")
    partition: SharedValue = Field(description="iid, dirichlet or shards")
    alpha: SharedValue = Field(description="Dirichlet concentration (dirichlet runs only)")
    shards_per_client: SharedValue = Field(
        default=None, description="label-sorted shards per client (shards runs only)"
    )
    samples_per_client: SharedValue = Field(
        default=None, description="training samples per client, at most (null: the whole split)"
    )
    clients: SharedValue = Field(description="clients per run")
    clients_per_round: SharedValue = Field(description="clients sampled each round")
    fraction_fit: SharedValue = Field(description="share of clients sampled each round")
    rounds: SharedValue = Field(description="rounds per run")
    local_epochs: SharedValue = Field(description="local epochs per round")
    local_steps: SharedValue = Field(
        default=None, description="local steps per round instead of epochs (null: epochs)"
    )
    momentum: SharedValue = Field(default=None, description="client-side SGD momentum")
    batch_size: SharedValue = Field(description="local minibatch size")
    lr: SharedValue = Field(description="local learning rate")
    test_samples: SharedValue = Field(description="size of the test split")
    byzantine: dict[str, int] = Field(
        description="per attack, the most Byzantine clients one of its runs had"
    )


class Header(BaseModel):
    """What the sweep ran and how it went."""

    state: str | None = Field(description="status.json's state (null when unreadable)")
    runs_total: int = Field(description="runs planned or found")
    runs_done: int = Field(description="runs done")
    runs_diverged: int = Field(description="runs that diverged (counted as accuracy 0)")
    runs_failed: int = Field(description="runs that failed (no result)")
    runs_not_run: int = Field(description="pending, running or cancelled")
    cells: int = Field(description="cells (strategy × attacks) with a finished run")
    repeats: int = Field(description="seeds per cell")
    parallel: int | None = Field(description="runs executing at once")
    wall_s: float | None = Field(description="wall seconds of the sweep")
    serial_s: float = Field(description="the runs' seconds added up")
    speedup: float | None = Field(description="serial_s / wall_s")
    rank_by: RankBy = Field(description="what the verdict ranks by")
    rounds: SharedValue = Field(description="setting.rounds")
    clients: SharedValue = Field(description="setting.clients")
    dataset: SharedValue = Field(description="setting.dataset")
    model: SharedValue = Field(description="setting.model")
    setting: Setting = Field(description="the experiment's setting")


# --------------------------------------------------------------------------- most robust


class Overall(BaseModel):
    """The recommendation, as the most robust strategy over every attack."""

    strategy: str = Field(description="the recommended strategy")
    worst_case_accuracy: float | None = Field(description="its mean worst-case accuracy")
    binding: str | None = Field(description="the condition that sets its worst case")
    attacks: list[str] = Field(description="the sweep's attacks")


class MostRobust(BaseModel):
    """Per attack, the strategy that does best under it; overall, the recommendation."""

    by_attack: dict[str, AttackBest | None] = Field(
        description="every attack of the sweep; null when no strategy finished a run under it"
    )
    overall: Overall | None = Field(description="null without a recommendation or attacks")


# --------------------------------------------------------------------------- ranking and runs


class RankRow(BaseModel):
    """One cell (strategy × attack) of the ranking, best first by header.rank_by."""

    model_config = ConfigDict(extra="allow")

    rank: int = Field(description="1 = best")
    run: str = Field(description="cell name (the run name when repeats=1)")
    runs: list[str] = Field(default_factory=list, description="its finished runs, one per repeat")
    strategy: str = Field(description="the strategy's label")
    attack: str = Field(description="'none' for the no-attack baseline")
    repeats: int = Field(description="its finished repeats")
    diverged: int = Field(
        default=0, description="repeats that diverged (the strategy broke; counted as accuracy 0)"
    )
    final_loss: float | None = Field(description="mean over repeats; null when a repeat diverged")
    final_loss_std: float | None = Field(description="sample std over repeats; null with 1")
    mean_loss: float | None = Field(default=None, description="mean over rounds and repeats")
    final_accuracy: float | None = Field(
        default=None, description="mean over repeats, a fraction; a diverged repeat counts 0"
    )
    final_accuracy_std: float | None = Field(default=None, description="sample std over repeats")
    elapsed_s: float | None = Field(default=None, description="mean run time")
    loss_increase: float | None = Field(
        default=None, description="final loss minus the same strategy's no-attack baseline"
    )
    accuracy_drop: float | None = Field(
        default=None,
        description="the same strategy's no-attack accuracy minus this one (positive = worse)",
    )
    detection: Detection | None = Field(
        default=None, description="selection strategies: kept/excluded honest/byzantine counts"
    )


class RunError(BaseModel):
    """A run that failed or diverged, and why."""

    run: str = Field(description="the run's name")
    error: str = Field(description="one line")


class NotRun(BaseModel):
    """A planned run that did not run to the end (pending, running, cancelled)."""

    run: str = Field(description="the run's name")
    state: str | None = Field(None, description="pending, running or cancelled")


# --------------------------------------------------------------------------- the file


class Comparison(FileModel):
    """``comparison.json``: the verdict, recommendation first; a pure function of the files."""

    FILE: ClassVar[str] = names.COMPARISON

    recommendation: Recommendation = Field(
        description="the answer: best worst case over {no attack} ∪ the attacks"
    )
    decision: Decision | None = Field(
        None,
        description="a sweep run until decided: what ended it, the runs spent against the "
        "full grid's, the strategies eliminated or settled (plan.json's decision); null for a "
        "fixed grid",
    )
    sweep_dir: str = Field(description="the sweep directory it was built from")
    generated_at: str = Field(description="when (ISO 8601, UTC)")
    header: Header = Field(description="what ran and how it went")
    most_robust: MostRobust = Field(description="per attack, the best strategy under it")
    ranking: list[RankRow] = Field(
        description="every cell, by rank_by (a diverged repeat counts 0)"
    )
    winner: str | None = Field(
        description="the cell with the lowest final loss (the first version's line; usually a "
        "no-attack run: not a recommendation)"
    )
    winner_attack: str | None = Field(description="its attack, 'none' without one")
    winner_within_noise: bool = Field(description="other cells' losses are within 2·SE of it")
    tied_with: list[str] = Field(description="the winner and the cells within noise of it")
    failed: list[RunError] = Field(description="runs that could not run, with the error")
    diverged: list[RunError] = Field(description="runs that diverged, with what broke")
    not_run: list[NotRun] = Field(description="planned runs that did not run to the end")
    caveats: list[str] = Field(description="read before trusting the verdict")


__all__ = [
    "AttackBest",
    "Comparison",
    "ConditionResult",
    "Header",
    "MostRobust",
    "NotRun",
    "Overall",
    "RankRow",
    "Recommendation",
    "ReferenceResult",
    "RunError",
    "Setting",
    "SharedValue",
    "StrategyScore",
]
