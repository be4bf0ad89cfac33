r"""``comparison.json``: the verdict of a sweep, built from its files only.

Everything here is a pure function of the files in a sweep directory (see
``docs/files.md``, read through :func:`velocity.sweepdir.runs.read_runs`), so
``velocity report DIR`` re-renders the same verdict at any time, and the MCP server
reads ``comparison.json`` without running anything.

The comparison opens with the **recommendation** (:mod:`velocity.report.verdict`): the
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
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from velocity.byzantine import per_round, per_round_formula
from velocity.report.verdict import (
    Gap,
    Observation,
    best_under_attacks,
    ceiling_caveat,
    recommend,
    sweep_conditions,
)
from velocity.spec import NO_ATTACK, RANK_BY, RankBy, RunSpec
from velocity.sweepdir import files, names
from velocity.sweepdir.comparison import (
    Comparison,
    Header,
    MostRobust,
    NotRun,
    Overall,
    RankRow,
    Recommendation,
    RunError,
    Setting,
)
from velocity.sweepdir.io import utc_now
from velocity.sweepdir.models import DETECTION_KEYS, Detection, Plan, Status
from velocity.sweepdir.runs import RunFiles, read_runs

DEFAULT_RANK_BY: RankBy = "accuracy"


@dataclass
class _Cell:
    """The finished repeats of one (strategy, attacks) configuration."""

    name: str
    strategy: str
    attack: str
    runs: list[RunFiles] = field(default_factory=list)

    def stats(self) -> RankRow:
        """The cell's row of the ranking (``rank`` is set once the rows are sorted)."""
        diverged = sum(r.status == "diverged" for r in self.runs)
        losses = [None if r.status == "diverged" else r.final_loss for r in self.runs]
        loss, loss_std = _mean_std(losses)
        acc, acc_std = _mean_std(
            [0.0 if r.status == "diverged" else r.final_accuracy for r in self.runs]
        )
        elapsed = [r.elapsed_s for r in self.runs if r.elapsed_s is not None]
        return RankRow(
            rank=0,
            run=self.name,
            runs=[r.name for r in self.runs],
            strategy=self.strategy,
            attack=self.attack,
            repeats=len(self.runs),
            diverged=diverged,
            final_loss=loss,
            final_loss_std=loss_std,
            mean_loss=_mean_std([r.mean_loss for r in self.runs])[0] if not diverged else None,
            final_accuracy=acc,
            final_accuracy_std=acc_std,
            elapsed_s=statistics.fmean(elapsed) if elapsed else None,
            loss_increase=None,
            accuracy_drop=None,
            detection=_sum_detection(r.detection for r in self.runs),
        )


# --------------------------------------------------------------------------- statistics


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof=1). Null mean if any value is null; null std with one value."""
    if not values or any(v is None for v in values):
        return None, None
    finite = [v for v in values if v is not None]
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else None)


def _sum_detection(items: Iterable[dict[str, int] | None]) -> Detection | None:
    present = [d for d in items if d is not None]
    if not present:
        return None
    return Detection(**{k: sum(d.get(k, 0) for d in present) for k in DETECTION_KEYS})


def loss_noise(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[float, float] | None:
    """``(|Δ mean|, 2·SE)`` of two cells' final losses (ranking rows of comparison.json);
    None unless both have repeats."""
    return _loss_noise(
        (a["final_loss"], a["final_loss_std"], a["repeats"]),
        (b["final_loss"], b["final_loss_std"], b["repeats"]),
    )


def _loss_noise(
    a: tuple[float | None, float | None, int], b: tuple[float | None, float | None, int]
) -> tuple[float, float] | None:
    (loss_a, std_a, n_a), (loss_b, std_b, n_b) = a, b
    if std_a is None or std_b is None or loss_a is None or loss_b is None:
        return None
    delta = abs(loss_a - loss_b)
    se = math.sqrt(std_a**2 / n_a + std_b**2 / n_b)
    return delta, 2 * se


def _within_noise(a: RankRow, b: RankRow) -> bool:
    noise = _loss_noise(
        (a.final_loss, a.final_loss_std, a.repeats), (b.final_loss, b.final_loss_std, b.repeats)
    )
    return noise is not None and (noise[0] < noise[1] or noise[0] == 0)


# --------------------------------------------------------------------------- building


def _group(runs: list[RunFiles]) -> list[_Cell]:
    cells: dict[str, _Cell] = {}
    for run in runs:
        if run.finished:
            cell = cells.setdefault(run.cell, _Cell(run.cell, run.strategy, run.attack))
            cell.runs.append(run)
    return list(cells.values())


def _rank(cells: list[_Cell], rank_by: RankBy) -> list[RankRow]:
    """Cell rows sorted by ``rank_by`` (accuracy: highest first; loss: lowest first)."""
    rows = [cell.stats() for cell in cells]
    if rank_by == "accuracy":
        rows.sort(
            key=lambda r: (
                r.final_accuracy is None,
                -(r.final_accuracy or 0.0),
                r.final_loss is None,
                r.final_loss or 0.0,
                r.run,
            )
        )
    else:
        rows.sort(key=lambda r: (r.final_loss is None, r.final_loss or 0.0, r.run))
    for i, row in enumerate(rows, start=1):
        row.rank = i
    return rows


def _fill_increases(rows: list[RankRow]) -> None:
    """Set ``loss_increase`` and ``accuracy_drop`` (positive = worse) of attacked cells
    against the same strategy's first no-attack cell."""
    baselines: dict[str, RankRow] = {}
    for row in rows:
        if row.attack == NO_ATTACK:
            baselines.setdefault(row.strategy, row)
    for row in rows:
        base = baselines.get(row.strategy)
        if row.attack == NO_ATTACK or base is None:
            continue
        if row.final_loss is not None and base.final_loss is not None:
            row.loss_increase = row.final_loss - base.final_loss
        if row.final_accuracy is not None and base.final_accuracy is not None:
            row.accuracy_drop = base.final_accuracy - row.final_accuracy


def observations_of(runs: Sequence[RunFiles]) -> tuple[list[Observation], list[Gap]]:
    """The verdict's inputs: finished runs, and planned cells without a result."""
    observations, gaps = [], []
    for run in runs:
        if run.finished:
            observations.append(
                Observation(
                    strategy=run.strategy,
                    condition=run.attack,
                    cell=run.cell,
                    seed=run.seed,
                    diverged=run.status == "diverged",
                    accuracy=run.final_accuracy,
                    loss=run.final_loss,
                    test_samples=run.test_samples,
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
) -> MostRobust:
    """Per attack, the best strategy under it; overall, the recommendation."""
    best = best_under_attacks(observations, rank_by=rank_by, reference=_reference_strategy(runs))
    attacks = [c for c in sweep_conditions(observations, gaps) if c != NO_ATTACK]
    overall = None
    if recommendation.strategy is not None and attacks:
        overall = Overall(
            strategy=recommendation.strategy,
            worst_case_accuracy=recommendation.worst_case_accuracy,
            binding=recommendation.binding,
            attacks=attacks,
        )
    return MostRobust(by_attack={a: best.get(a) for a in attacks}, overall=overall)


def _shared(values: Iterable[Any]) -> Any:
    """One value when every run shares it, the sorted distinct values otherwise."""
    distinct = sorted({json.dumps(v) for v in values if v is not None})
    if not distinct:
        return None
    parsed = [json.loads(v) for v in distinct]
    return parsed[0] if len(parsed) == 1 else parsed


def _setting(runs: Sequence[RunFiles]) -> Setting:
    """The experiment's setting, as the runs' configs say (one value, or the distinct ones)."""
    specs = [r.spec for r in runs if r.spec is not None]
    configs = [r.config for r in runs if r.config]

    def shared(key: str) -> Any:
        return _shared(c.get(key) for c in configs)

    dirichlet = [s for s in specs if s.partition == "dirichlet"]
    shards = [s for s in specs if s.partition == "shards"]
    byzantine: dict[str, int] = {}
    for run in runs:
        clients = run.byzantine_clients
        if run.attack != NO_ATTACK and clients is not None:
            byzantine[run.attack] = max(byzantine.get(run.attack, 0), len(clients))
    tests = [t for r in runs if (t := r.test_samples) is not None]
    return Setting(
        dataset=shared("dataset"),
        model=shared("model_id"),
        partition=shared("partition"),
        alpha=_shared(s.alpha for s in dirichlet) if dirichlet else None,
        shards_per_client=_shared(s.shards_per_client for s in shards) if shards else None,
        samples_per_client=shared("samples_per_client"),
        clients=shared("clients"),
        clients_per_round=_shared(s.clients_per_round for s in specs),
        fraction_fit=shared("fraction_fit"),
        rounds=shared("rounds"),
        local_epochs=shared("local_epochs"),
        local_steps=shared("local_steps"),
        momentum=shared("momentum"),
        batch_size=shared("batch_size"),
        lr=shared("lr"),
        test_samples=_shared(tests),
        byzantine=dict(sorted(byzantine.items())),
    )


def _header(
    runs: list[RunFiles],
    rows: list[RankRow],
    plan: Plan | None,
    status: Status | None,
    wall_s: float | None,
    parallel: int | None,
    rank_by: RankBy,
) -> Header:
    started = [r for r in runs if not r.not_run]
    wall = wall_s
    if wall is None and status is not None and status.elapsed_s is not None:
        wall = status.elapsed_s if math.isfinite(status.elapsed_s) else None
    if parallel is None and plan is not None:
        parallel = plan.parallel
    serial = sum(r.elapsed_s for r in started if r.elapsed_s is not None)
    repeats = plan.repeats if plan is not None else None
    if repeats is None:
        repeats = max((row.repeats for row in rows), default=1)
    setting = _setting(runs)
    return Header(
        state=status.state if status is not None else None,
        runs_total=len(runs),
        runs_done=sum(r.status == "done" for r in runs),
        runs_diverged=sum(r.status == "diverged" for r in runs),
        runs_failed=sum(r.status == "failed" for r in runs),
        runs_not_run=sum(r.not_run for r in runs),
        cells=len(rows),
        repeats=repeats,
        parallel=parallel,
        wall_s=wall,
        serial_s=serial,
        speedup=serial / wall if wall else None,
        rank_by=rank_by,
        rounds=setting.rounds,
        clients=setting.clients,
        dataset=setting.dataset,
        model=setting.model,
        setting=setting,
    )


def _configured_caveats(runs: Sequence[RunFiles]) -> list[str]:
    """Strategies set to tolerate fewer Byzantine clients per round than an attack puts in.

    With ``byzantine`` set, the caveat also says where the tolerance came from: set
    explicitly below what ``byzantine`` gives, or from ``byzantine`` itself, the
    *expected* count per round, which a sampled round can exceed.
    """
    seen: dict[tuple[str, str], tuple[int, int, str]] = {}
    for run in runs:
        if run.spec is None or not run.finished or not run.max_byzantine:
            continue
        strategy = run.spec.strategy
        tolerated = strategy.configured_byzantine(run.spec.clients_per_round)
        if tolerated is not None and run.max_byzantine > tolerated:
            key = (run.strategy, run.attack)
            worst = max(seen.get(key, (tolerated, 0, ""))[1], run.max_byzantine)
            seen[key] = (tolerated, worst, _tolerance_source(run.spec, tolerated))
    return [
        f"{strategy} is configured for {tolerated} Byzantine client"
        f"{'s' if tolerated != 1 else ''} per round, but {attack} puts up to {count} in a "
        f"round: its result under that attack is outside what it is set to tolerate{source}"
        for (strategy, attack), (tolerated, count, source) in seen.items()
    ]


def _tolerance_source(spec: RunSpec, tolerated: int) -> str:
    """`` (raise f)``, and with ``byzantine`` set, whether f came from it."""
    param = spec.strategy.tolerance_param
    raise_it = f" (raise {param})" if param else ""
    if spec.byzantine is None:
        return raise_it
    f = per_round(spec.byzantine, spec.clients, spec.clients_per_round)
    formula = per_round_formula(spec.byzantine, spec.clients, spec.clients_per_round)
    if tolerated == f:
        return (
            f"; it is set from byzantine = {spec.byzantine}, {formula}: the expected count per "
            "round, which sampled rounds exceed"
        )
    return (
        f"; its tolerance is set explicitly, not from byzantine = {spec.byzantine} ({formula})"
        + (f"; leave {param} out to take it from byzantine" if param else "")
    )


def _run_caveats(runs: list[RunFiles], rows: list[RankRow]) -> list[str]:
    caveats = []
    stale = [r.name for r in runs if r.stale]
    if stale:
        caveats.append(
            f"{len(stale)} {names.CONFIG} file(s) do not validate against this version of velocity "
            f"({', '.join(stale[:3])}{', …' if len(stale) > 3 else ''}); "
            "their labels are read from the raw files"
        )
    diverged = [row for row in rows if row.diverged]
    if diverged:
        listed = ", ".join(
            f"{row.run}" + (f" ({row.diverged} of {row.repeats})" if row.repeats > 1 else "")
            for row in diverged
        )
        caveats.append(f"diverged (counted as broken, accuracy 0, in the recommendation): {listed}")
    counts = {row.run: row.repeats for row in rows}
    planned = Counter(run.cell for run in runs)
    for cell, done in counts.items():
        if planned.get(cell, done) > done:
            caveats.append(f"{cell}: only {done} of {planned[cell]} repeats finished")
    cells_per_condition = Counter((row.strategy, row.attack) for row in rows)
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
            f"the test-set size is unknown ({names.SUMMARY} files from an older velocity) and "
            "there is one repeat: the recommendation's noise is not measured"
        )
    if recommendation.candidates and any(
        c.repeats < max(c.repeats for c in recommendation.candidates)
        for c in recommendation.candidates
    ):
        short = [f"{c.strategy} ({c.repeats})" for c in recommendation.candidates]
        caveats.append("candidates have different numbers of complete repeats: " + ", ".join(short))
    return caveats


def _winner(rows: list[RankRow]) -> tuple[RankRow | None, bool, list[str]]:
    ranked = sorted(
        (r for r in rows if r.final_loss is not None), key=lambda r: (r.final_loss or 0.0, r.run)
    )
    if not ranked:
        return None, False, []
    top = ranked[0]
    tied = [r.run for r in ranked[1:] if _within_noise(top, r)]
    return top, bool(tied), [top.run, *tied] if tied else []


def plan_rank_by(sweep_dir: Path) -> RankBy:
    """The ``rank_by`` a sweep was started with (``plan.json``), else the default."""
    plan = files.read_plan_settings(sweep_dir)
    return plan.rank_by if plan is not None else DEFAULT_RANK_BY


def build_comparison(
    sweep_dir: Path,
    *,
    wall_s: float | None = None,
    parallel: int | None = None,
    rank_by: RankBy | None = None,
) -> dict[str, Any]:
    """The comparison of a sweep directory, as the ``comparison.json`` dict (docs/files.md):
    :func:`comparison_of`'s :class:`~velocity.sweepdir.comparison.Comparison`, dumped."""
    return comparison_of(sweep_dir, wall_s=wall_s, parallel=parallel, rank_by=rank_by).model_dump()


def comparison_of(
    sweep_dir: Path,
    *,
    wall_s: float | None = None,
    parallel: int | None = None,
    rank_by: RankBy | None = None,
) -> Comparison:
    """The comparison of a sweep directory (the model of ``comparison.json``).

    ``wall_s`` and ``parallel`` default to ``status.json``'s ``elapsed_s`` and
    ``plan.json``'s ``parallel``, and ``rank_by`` to ``plan.json``'s (else
    accuracy), so a re-render gives the same verdict.
    """
    sweep_dir = Path(sweep_dir)
    plan = files.read_plan_settings(sweep_dir)
    status = files.read_optional_status(sweep_dir)
    rank_by = rank_by or (plan.rank_by if plan is not None else DEFAULT_RANK_BY)
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {', '.join(RANK_BY)}, got {rank_by!r}")
    runs = read_runs(sweep_dir)
    rows = _rank(_group(runs), rank_by)
    _fill_increases(rows)
    observations, gaps = observations_of(runs)
    recommendation = recommend(observations, gaps, rank_by=rank_by)
    caveats = _run_caveats(runs, rows)
    caveats += _verdict_caveats(recommendation, observations)
    caveats += _configured_caveats(runs)
    winner, within_noise, tied = _winner(rows)
    if not rows:
        caveats.append("no run finished: there is no recommendation")
    return Comparison(
        recommendation=recommendation,
        decision=plan.decision if plan is not None else None,
        sweep_dir=str(sweep_dir),
        generated_at=utc_now(),
        header=_header(runs, rows, plan, status, wall_s, parallel, rank_by),
        most_robust=_most_robust(runs, observations, gaps, recommendation, rank_by),
        ranking=rows,
        winner=winner.run if winner else None,
        winner_attack=winner.attack if winner else None,
        winner_within_noise=within_noise,
        tied_with=tied,
        failed=[
            RunError(run=r.name, error=r.error or "failed") for r in runs if r.status == "failed"
        ],
        diverged=[
            RunError(run=r.name, error=r.error or "diverged")
            for r in runs
            if r.status == "diverged"
        ],
        not_run=[NotRun(run=r.name, state=r.status) for r in runs if r.not_run],
        caveats=caveats,
    )
