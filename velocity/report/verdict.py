r"""The recommendation: the strategy whose worst case is best, and whether the data decide it.

Pure functions of per-run :class:`Observation`\ s (no files, no simulation), so the
verdict can be checked against an independent computation from the summaries.

**Conditions.** A sweep's conditions are "no attack" (``"none"``) and each attack
label that any of its runs uses. A strategy is a *candidate* when it has a finished
run in every condition for at least one repeat seed; otherwise it is *incomplete*
and listed with what is missing.

**Score.** For candidate s and repeat seed r (runs of one seed share the data
split, the model init and the Byzantine set, so strategies are compared paired),

.. math:: W_s(r) = \min_{c \in C} a_{s,c}(r), \qquad
          \bar W_s = \frac{1}{k} \sum_{r} W_s(r), \qquad
          \mathrm{SE}_s = \frac{\mathrm{sd}_r\, W_s(r)}{\sqrt{k}}

where C is the set of conditions, :math:`a_{s,c}(r)` the final test accuracy of s
under condition c with seed r (0 when the run *diverged*: the strategy broke), and
k the number of seeds with every condition finished — the max–min ranking ByzFL
uses for aggregators, taken per seed. With ``rank_by="loss"`` the score is the
worst (largest) final test loss instead, +∞ for a diverged run, lower is better.
The *binding* condition is the one with the worst mean.

**Noise.** Candidates are ranked by :math:`\bar W`. The top one is *decided* only
when, for every other candidate b, the paired mean difference beats twice its
standard error:

.. math:: \bar d = \frac{1}{k} \sum_r \big(W_a(r) - W_b(r)\big) > 2\,\mathrm{SE}, \qquad
          \mathrm{SE} = \frac{\max\!\big(\mathrm{sd}_r(W_a - W_b),\;
          \sqrt{\bar p (1 - \bar p) / n_{\mathrm{test}}}\big)}{\sqrt k}

over the k seeds both have. The second term is the binomial standard error of a
test accuracy :math:`\bar p` measured on :math:`n_{\mathrm{test}}` images: with one
repeat it is the only noise estimate, and with a few repeats it keeps lucky seeds
from claiming a difference finer than the test set can resolve. (Loss has no such
floor: with one repeat its noise is not measured, and the verdict says so.)
Otherwise the candidates within noise of the top form a *tie*; the recommendation
is the tie's member with the best clean (no-attack) accuracy, then the cheapest
(mean elapsed time), and :math:`\lceil (2\sigma / \bar d)^2 \rceil` estimates the
repeats that would separate the top two, σ being the per-repeat deviation above.

**Nothing survives** when the recommendation's worst-case accuracy is more than
:data:`NOTHING_SURVIVES` below the best clean accuracy of any strategy; the
attack under which even the best candidate stays that low is named.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from velocity.report.fmt import pct, pp
from velocity.spec import NO_ATTACK, RANK_BY, RankBy
from velocity.sweepdir.comparison import (
    AttackBest,
    ConditionResult,
    Recommendation,
    ReferenceResult,
    StrategyScore,
)

#: Worst case this far (a fraction of accuracy) below the best clean accuracy: nothing survives.
NOTHING_SURVIVES = 0.10
#: Beyond this many repeats, a tie is reported as "equivalent in practice".
MAX_REPEATS_ESTIMATE = 100


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Observation:
    """One run that finished (``done``) or diverged, as the verdict sees it."""

    strategy: str  # the strategy's label, e.g. "Krum:f=2"
    condition: str  # "none" or the attack label
    cell: str
    seed: int
    diverged: bool
    accuracy: float | None  # final test accuracy (a fraction); ignored when diverged
    loss: float | None  # final test loss; ignored when diverged
    test_samples: int | None = None  # size of the test split (the binomial floor)
    elapsed_s: float | None = None

    def value(self, rank_by: RankBy) -> float | None:
        """The run's score: accuracy (0 when diverged) or loss (+∞ when diverged)."""
        if rank_by == "accuracy":
            return 0.0 if self.diverged else self.accuracy
        return math.inf if self.diverged else self.loss


@dataclass(frozen=True)
class Gap:
    """A planned (strategy, condition) whose run has no result: failed, pending or cancelled."""

    strategy: str
    condition: str
    reason: str


# --------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Difference:
    """Paired difference of two per-seed series in *goodness* (higher is better)."""

    mean: float
    sigma: float | None  # per-repeat deviation used for the noise test
    repeats: int

    @property
    def two_se(self) -> float | None:
        return None if self.sigma is None else 2 * self.sigma / math.sqrt(self.repeats)

    @property
    def decided(self) -> bool:
        """The first series is better beyond noise."""
        two_se = self.two_se
        return two_se is not None and self.mean > two_se

    def repeats_to_separate(self) -> int | None:
        """Repeats at which this mean difference would exceed 2·SE (None: not estimable)."""
        if self.sigma is None or not math.isfinite(self.mean) or self.mean <= 0:
            return None
        return max(math.ceil((2 * self.sigma / self.mean) ** 2), self.repeats + 1)


def _goodness(value: float, rank_by: RankBy) -> float:
    return value if rank_by == "accuracy" else -value


def binomial_sd(p: float, n: int | None) -> float | None:
    """√(p(1−p)/n): the standard error of an accuracy p measured on n test samples."""
    if n is None or n <= 0 or not math.isfinite(p):
        return None
    p = min(max(p, 0.0), 1.0)
    return math.sqrt(p * (1 - p) / n)


def paired_difference(
    a: Mapping[int, float],
    b: Mapping[int, float],
    rank_by: RankBy,
    test_samples: int | None,
) -> Difference | None:
    """``a − b`` in goodness over their common seeds; None when they share no seed."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    ga = [_goodness(a[s], rank_by) for s in seeds]
    gb = [_goodness(b[s], rank_by) for s in seeds]
    if any(math.isinf(x) for x in (*ga, *gb)):
        # Only loss has infinities: a diverged run is infinitely worse than any finite one.
        a_broke, b_broke = any(math.isinf(x) for x in ga), any(math.isinf(x) for x in gb)
        mean = 0.0 if a_broke == b_broke else (-math.inf if a_broke else math.inf)
        return Difference(mean, 0.0, len(seeds))
    diffs = [x - y for x, y in zip(ga, gb, strict=True)]
    measured = statistics.stdev(diffs) if len(diffs) > 1 else None
    floor = None
    if rank_by == "accuracy":
        floor = binomial_sd(statistics.fmean([*ga, *gb]), test_samples)
    sigmas = [s for s in (measured, floor) if s is not None]
    return Difference(statistics.fmean(diffs), max(sigmas) if sigmas else None, len(seeds))


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if any(math.isinf(v) for v in values):
        return math.inf, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


# --------------------------------------------------------------------------- scoring


@dataclass
class _Scored:
    score: StrategyScore
    per_seed: dict[int, float]  # worst case of the ranking metric per complete seed
    per_seed_accuracy: dict[int, float]
    test_samples: int | None


class _Table:
    """Observations indexed by strategy, condition and seed."""

    def __init__(self, observations: Iterable[Observation]) -> None:
        self.by: dict[str, dict[str, dict[int, Observation]]] = defaultdict(dict)
        self.order: list[str] = []
        for obs in observations:
            if obs.strategy not in self.by:
                self.order.append(obs.strategy)
            self.by[obs.strategy].setdefault(obs.condition, {}).setdefault(obs.seed, obs)

    def test_samples(self, strategies: Iterable[str]) -> int | None:
        sizes = [
            o.test_samples
            for s in strategies
            for runs in self.by.get(s, {}).values()
            for o in runs.values()
            if o.test_samples
        ]
        return min(sizes) if sizes else None

    def condition_result(self, strategy: str, condition: str) -> ConditionResult | None:
        runs = self.by.get(strategy, {}).get(condition)
        if not runs:
            return None
        obs = list(runs.values())
        accuracies = [o.value("accuracy") for o in obs]
        acc, acc_std = (
            _mean_std([a for a in accuracies if a is not None])
            if None not in accuracies
            else (None, None)
        )
        losses = [x for o in obs if (x := o.value("loss")) is not None]
        loss = _finite(_mean_std(losses)[0]) if len(losses) == len(obs) else None
        return ConditionResult(
            condition=condition,
            cell=obs[0].cell,
            accuracy=acc,
            accuracy_std=acc_std,
            loss=loss,
            repeats=len(obs),
            diverged=sum(o.diverged for o in obs),
        )

    def clean_accuracy(self, strategy: str) -> float | None:
        result = self.condition_result(strategy, NO_ATTACK)
        return None if result is None else result.accuracy

    def elapsed(self, strategy: str) -> float | None:
        times = [
            o.elapsed_s
            for runs in self.by.get(strategy, {}).values()
            for o in runs.values()
            if o.elapsed_s is not None
        ]
        return statistics.fmean(times) if times else None


def _worst_per_seed(
    table: _Table, strategy: str, conditions: Sequence[str], rank_by: RankBy
) -> dict[int, float]:
    """``{seed: worst value over conditions}`` for the seeds with every condition."""
    by_condition = table.by.get(strategy, {})
    if any(c not in by_condition for c in conditions):
        return {}
    seeds = set.intersection(*(set(by_condition[c]) for c in conditions))
    out: dict[int, float] = {}
    for seed in sorted(seeds):
        values = [by_condition[c][seed].value(rank_by) for c in conditions]
        if None in values:
            continue
        finite = [v for v in values if v is not None]
        out[seed] = min(finite) if rank_by == "accuracy" else max(finite)
    return out


def _missing(
    table: _Table, strategy: str, conditions: Sequence[str], gaps: Sequence[Gap], rank_by: RankBy
) -> list[str]:
    have = table.by.get(strategy, {})
    missing = []
    for condition in conditions:
        if condition in have:
            continue
        reasons = [g.reason for g in gaps if g.strategy == strategy and g.condition == condition]
        what = "no attack" if condition == NO_ATTACK else condition
        missing.append(f"{what}: {reasons[0] if reasons else 'not in the sweep'}")
    if not missing and not _worst_per_seed(table, strategy, conditions, rank_by):
        missing.append("no repeat seed has every condition finished")
    return missing


def _score(
    table: _Table,
    strategy: str,
    conditions: Sequence[str],
    gaps: Sequence[Gap],
    rank_by: RankBy,
    best_clean: float | None,
) -> _Scored:
    results = [r for c in conditions if (r := table.condition_result(strategy, c)) is not None]
    per_seed = _worst_per_seed(table, strategy, conditions, rank_by)
    per_seed_acc = _worst_per_seed(table, strategy, conditions, "accuracy")
    per_seed_loss = _worst_per_seed(table, strategy, conditions, "loss")
    mean, std = _mean_std(list(per_seed.values()))
    acc_mean, _ = _mean_std(list(per_seed_acc.values()))
    loss_mean, _ = _mean_std(list(per_seed_loss.values()))
    clean = table.clean_accuracy(strategy)
    binding = None
    if results:
        keyed = [(r, r.accuracy if rank_by == "accuracy" else r.loss) for r in results]
        if rank_by == "accuracy":
            binding = min(keyed, key=lambda item: (item[1] is None, item[1] or 0.0))[0]
        else:
            binding = max(keyed, key=lambda item: math.inf if item[1] is None else item[1])[0]
    missing = _missing(table, strategy, conditions, gaps, rank_by)
    score = StrategyScore(
        strategy=strategy,
        rank=None,
        worst_case=_finite(mean) if not missing else None,
        worst_case_se=(std / math.sqrt(len(per_seed)) if std is not None else None)
        if not missing
        else None,
        worst_case_accuracy=acc_mean if not missing else None,
        worst_case_loss=_finite(loss_mean) if not missing else None,
        binding=binding.condition if binding is not None and not missing else None,
        clean_accuracy=clean,
        price_of_robustness=None if clean is None or best_clean is None else best_clean - clean,
        elapsed_s=table.elapsed(strategy),
        repeats=len(per_seed),
        conditions=results,
        missing=missing,
    )
    return _Scored(score, per_seed, per_seed_acc, table.test_samples([strategy]))


def _sort_key(item: _Scored, rank_by: RankBy) -> tuple[float, float, float, str]:
    values = list(item.per_seed.values())
    mean = statistics.fmean(values) if values and not any(map(math.isinf, values)) else None
    goodness = -math.inf if mean is None else _goodness(mean, rank_by)
    clean = item.score.clean_accuracy
    elapsed = item.score.elapsed_s
    return (
        -goodness,
        -(clean if clean is not None else -1.0),
        elapsed if elapsed is not None else math.inf,
        item.score.strategy,
    )


def _difference(a: _Scored, b: _Scored, rank_by: RankBy) -> Difference | None:
    sizes = [n for n in (a.test_samples, b.test_samples) if n]
    return paired_difference(a.per_seed, b.per_seed, rank_by, min(sizes) if sizes else None)


def sweep_conditions(observations: Iterable[Observation], gaps: Iterable[Gap]) -> list[str]:
    """``["none", *attacks]``: every condition any run of the sweep was planned with."""
    attacks = {o.condition for o in observations} | {g.condition for g in gaps}
    return [NO_ATTACK, *sorted(attacks - {NO_ATTACK})]


def recommend(
    observations: Sequence[Observation],
    gaps: Sequence[Gap] = (),
    *,
    rank_by: RankBy = "accuracy",
) -> Recommendation:
    """The recommendation over every strategy in ``observations`` (see the module doc)."""
    table = _Table(observations)
    strategies = _strategies(table, gaps)
    conditions = sweep_conditions(observations, gaps)
    cleans = {s: c for s in strategies if (c := table.clean_accuracy(s)) is not None}
    best_clean_strategy = max(cleans, key=lambda s: cleans[s]) if cleans else None
    best_clean = cleans.get(best_clean_strategy) if best_clean_strategy else None
    scored, candidates = _ranked(table, strategies, conditions, gaps, rank_by, best_clean)
    incomplete = [s.score for s in scored if s.score.missing]
    empty = Recommendation(
        strategy=None,
        rank_by=rank_by,
        best_clean_strategy=best_clean_strategy,
        best_clean_accuracy=best_clean,
        reason=_no_candidate_reason(strategies, incomplete, conditions),
        candidates=[c.score for c in candidates],
        incomplete=incomplete,
    )
    if not candidates:
        return empty
    top = candidates[0]
    runner = candidates[1] if len(candidates) > 1 else None
    to_runner = _difference(top, runner, rank_by) if runner else None
    differences = {c.score.strategy: _difference(top, c, rank_by) for c in candidates[1:]}
    noise_measured = all(d is not None and d.two_se is not None for d in differences.values())
    within = [s for s, d in differences.items() if d is None or not d.decided]
    tie = [top.score.strategy, *within] if within and noise_measured else []
    decided = not within and noise_measured
    pick = top
    if tie:
        members = [c for c in candidates if c.score.strategy in tie]
        pick = min(
            members,
            key=lambda c: (
                -(c.score.clean_accuracy if c.score.clean_accuracy is not None else -1.0),
                c.score.elapsed_s if c.score.elapsed_s is not None else math.inf,
                c.score.rank or 0,
            ),
        )
    chosen = pick.score
    surviving = _nothing_survives(chosen, candidates, best_clean, conditions)
    recommendation = empty.model_copy(
        update={
            "strategy": chosen.strategy,
            "decided": decided,
            "noise_measured": noise_measured,
            "worst_case": chosen.worst_case,
            "worst_case_se": chosen.worst_case_se,
            "worst_case_accuracy": chosen.worst_case_accuracy,
            "binding": chosen.binding,
            "runner_up": runner.score.strategy if runner else None,
            "margin": _finite(to_runner.mean) if to_runner else None,
            "two_se": to_runner.two_se if to_runner else None,
            "tie": tie,
            "repeats_to_separate": _repeats_to_separate(
                [d for s in tie[1:] if (d := differences[s]) is None or d.mean != 0]
            ),
            "clean_accuracy": chosen.clean_accuracy,
            "price_of_robustness": chosen.price_of_robustness,
            "conditions": {r.condition: r.accuracy for r in chosen.conditions},
            "nothing_survives": surviving is not None,
            "breaking_attack": surviving,
        }
    )
    recommendation.reason = _reason(recommendation, top.score, len(conditions) > 1)
    return recommendation


def _strategies(table: _Table, gaps: Sequence[Gap]) -> list[str]:
    """The strategies with results, in their order, then those only with gaps."""
    return [*table.order, *sorted({g.strategy for g in gaps} - set(table.order))]


def _ranked(
    table: _Table,
    strategies: Sequence[str],
    conditions: Sequence[str],
    gaps: Sequence[Gap],
    rank_by: RankBy,
    best_clean: float | None,
) -> tuple[list[_Scored], list[_Scored]]:
    """Every strategy scored, and the candidates among them in rank order (ranks set)."""
    scored = [_score(table, s, conditions, gaps, rank_by, best_clean) for s in strategies]
    candidates = sorted(
        (s for s in scored if not s.score.missing), key=lambda s: _sort_key(s, rank_by)
    )
    for rank, item in enumerate(candidates, start=1):
        item.score.rank = rank
    return scored, candidates


def differences_to_top(
    observations: Sequence[Observation],
    gaps: Sequence[Gap] = (),
    *,
    rank_by: RankBy = "accuracy",
) -> dict[str, Difference | None]:
    """The paired worst-case difference top − b for every other candidate b, as
    :func:`recommend` tests it (None: they share no seed)."""
    table = _Table(observations)
    strategies = _strategies(table, gaps)
    _, candidates = _ranked(
        table, strategies, sweep_conditions(observations, gaps), gaps, rank_by, None
    )
    if not candidates:
        return {}
    top = candidates[0]
    return {c.score.strategy: _difference(top, c, rank_by) for c in candidates[1:]}


def _repeats_to_separate(differences: Sequence[Difference | None]) -> int | None:
    """Repeats likely to separate the best from these tied candidates (None: > the cap)."""
    if not differences:
        return None
    needed = [d.repeats_to_separate() if d is not None else None for d in differences]
    if any(n is None for n in needed):
        return None
    most = max(n for n in needed if n is not None)
    return most if most <= MAX_REPEATS_ESTIMATE else None


def _nothing_survives(
    chosen: StrategyScore,
    candidates: Sequence[_Scored],
    best_clean: float | None,
    conditions: Sequence[str],
) -> str | None:
    """The attack that breaks every candidate, when the best worst case is far below clean."""
    worst = max(
        (w for c in candidates if (w := c.score.worst_case_accuracy) is not None), default=None
    )
    if worst is None or best_clean is None or best_clean - worst <= NOTHING_SURVIVES:
        return None
    best_under: dict[str, float] = {}
    for condition in conditions:
        if condition == NO_ATTACK:
            continue
        values = [
            r.accuracy
            for c in candidates
            for r in c.score.conditions
            if r.condition == condition and r.accuracy is not None
        ]
        if values:
            best_under[condition] = max(values)
    if not best_under:
        return chosen.binding or NO_ATTACK
    attack = min(best_under, key=lambda a: (best_under[a], a))
    return attack if best_clean - best_under[attack] > NOTHING_SURVIVES else chosen.binding


# --------------------------------------------------------------------------- sentences


def _metric(x: float | None, rank_by: RankBy) -> str:
    if x is None:
        return "–"
    return pct(x) if rank_by == "accuracy" else f"{x:.4g}"


def _metric_delta(x: float, rank_by: RankBy) -> str:
    return pp(x) if rank_by == "accuracy" else f"{x:.3g}"


def _reason(rec: Recommendation, top: StrategyScore, attacked: bool) -> str:
    """One sentence: what is recommended, why, at what price, how sure."""
    what = "worst-case" if attacked else "clean"
    metric = "accuracy" if rec.rank_by == "accuracy" else "loss"
    score = _metric(rec.worst_case, rec.rank_by)
    if rec.worst_case_se is not None:
        score += f" ± {_metric_delta(rec.worst_case_se, rec.rank_by)}"
    binding = f" (binding: {rec.binding})" if attacked and rec.binding else ""
    price = ""
    if attacked and rec.price_of_robustness is not None and rec.best_clean_strategy:
        if rec.best_clean_strategy == rec.strategy or rec.price_of_robustness <= 0:
            price = "; it also has the best clean accuracy"
        else:
            price = (
                f"; it gives up {pp(rec.price_of_robustness)} of clean accuracy against "
                f"{rec.best_clean_strategy} ({pct(rec.best_clean_accuracy)})"
            )
    if rec.runner_up is None:
        sentence = (
            f"{rec.strategy} is the only complete candidate: "
            f"{what} {metric} {score}{binding}{price}."
        )
    elif rec.decided:
        margin = _metric_delta(rec.margin or 0.0, rec.rank_by) if rec.margin is not None else "∞"
        two_se = _metric_delta(rec.two_se or 0.0, rec.rank_by)
        sentence = (
            f"{rec.strategy} has the best {what} {metric}, {score}{binding}, {margin} ahead of "
            f"{rec.runner_up} (2·SE = {two_se}){price}."
        )
    elif not rec.noise_measured:
        sentence = (
            f"{rec.strategy} has the best {what} {metric}, {score}{binding}, but with one repeat "
            f"and no noise floor the noise is not measured: not decided; run --repeats 3{price}."
        )
    else:
        scores = {c.strategy: c.worst_case for c in rec.candidates}
        names = ", ".join(_metric(scores.get(s), rec.rank_by) for s in rec.tie)
        chosen = f"{rec.strategy} is recommended for its clean accuracy ({pct(rec.clean_accuracy)})"
        gap = (top.worst_case or 0.0) - (rec.worst_case or 0.0)
        if rec.strategy != top.strategy and rec.rank_by == "loss":
            gap = -gap
        if rec.strategy != top.strategy and gap > 0:
            chosen += (
                f", although its {what} {metric} is {_metric_delta(gap, rec.rank_by)} worse "
                f"than {top.strategy}'s"
            )
        same = [s for s in rec.tie[1:] if scores.get(s) == scores.get(rec.tie[0])]
        if len(same) == len(rec.tie) - 1:
            separate = "their worst cases are equal here: no number of repeats will separate them"
        elif rec.repeats_to_separate is not None:
            separate = f"about {rec.repeats_to_separate} repeats would likely separate them"
        else:
            separate = f"separating them would take more than {MAX_REPEATS_ESTIMATE} repeats"
        if same and len(same) < len(rec.tie) - 1:
            separate += f" ({_and(same)} equal to {rec.tie[0]}'s)"
        if not (rec.price_of_robustness or 0.0) > 0:
            price = ""
        sentence = (
            f"{_and(rec.tie)} are tied within 2·SE on {what} {metric} ({names}); "
            f"{chosen}; {separate}{price}."
        )
    if rec.nothing_survives:
        under = [
            c.accuracy
            for score in rec.candidates
            for c in score.conditions
            if c.condition == rec.breaking_attack and c.accuracy is not None
        ]
        best_worst = max(
            (w for c in rec.candidates if (w := c.worst_case_accuracy) is not None), default=None
        )
        sentence += (
            f" Nothing survives: the best worst case ({pct(best_worst)}) is more "
            f"than {pp(NOTHING_SURVIVES)} below the best clean accuracy "
            f"({pct(rec.best_clean_accuracy)}); under {rec.breaking_attack} no candidate does "
            f"better than {pct(max(under, default=None))}."
        )
    return sentence


def _and(names: Sequence[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _no_candidate_reason(
    strategies: Sequence[str], incomplete: Sequence[StrategyScore], conditions: Sequence[str]
) -> str:
    if not strategies:
        return "No recommendation: no run finished."
    first = incomplete[0] if incomplete else None
    detail = f" (e.g. {first.strategy}: {first.missing[0]})" if first and first.missing else ""
    return (
        "No recommendation: no strategy has a finished run in every condition "
        f"({', '.join(conditions)}){detail}."
    )


# --------------------------------------------------------------------------- per attack


def best_under_attacks(
    observations: Sequence[Observation],
    *,
    rank_by: RankBy = "accuracy",
    reference: str | None = None,
) -> dict[str, AttackBest]:
    """Per attack: the strategy with the best score under it, with ties and context.

    ``reference`` names the non-robust strategy (e.g. FedAvg) whose result under the
    same attack is attached for context, when it ran.
    """
    table = _Table(observations)
    attacks = sorted({o.condition for o in observations} - {NO_ATTACK})
    out: dict[str, AttackBest] = {}
    for attack in attacks:
        series: dict[str, dict[int, float]] = {}
        for strategy in table.order:
            runs = table.by[strategy].get(attack)
            if not runs:
                continue
            values = {seed: o.value(rank_by) for seed, o in runs.items()}
            if None not in values.values():
                series[strategy] = {k: v for k, v in values.items() if v is not None}
        if not series:
            continue
        ordered = sorted(
            series,
            key=lambda s: (
                -_goodness(_mean_std(list(series[s].values()))[0] or 0.0, rank_by),
                -(table.clean_accuracy(s) or 0.0),
                s,
            ),
        )
        best = ordered[0]
        tied, decided = [], True
        for other in ordered[1:]:
            diff = paired_difference(
                series[best], series[other], rank_by, table.test_samples([best, other])
            )
            if diff is not None and diff.two_se is None:
                decided = False  # noise not measured: no tie can be claimed either
            elif diff is None or not diff.decided:
                tied.append(other)
        result = table.condition_result(best, attack)
        assert result is not None  # best has runs under this attack
        drop, increase = _versus_clean(table, best, attack)
        out[attack] = AttackBest(
            attack=attack,
            strategy=best,
            run=result.cell,
            accuracy=result.accuracy,
            accuracy_std=result.accuracy_std,
            loss=result.loss,
            repeats=result.repeats,
            diverged=result.diverged,
            decided=decided and not tied,
            tied_with=tied,
            baseline=_cell(table, best, NO_ATTACK),
            accuracy_drop=drop,
            loss_increase=increase,
            reference=_reference(table, reference, attack),
        )
    return out


def _cell(table: _Table, strategy: str, condition: str) -> str | None:
    result = table.condition_result(strategy, condition)
    return None if result is None else result.cell


def _versus_clean(table: _Table, strategy: str, attack: str) -> tuple[float | None, float | None]:
    """``(accuracy drop, loss increase)`` of a strategy under an attack vs its clean run."""
    clean = table.condition_result(strategy, NO_ATTACK)
    under = table.condition_result(strategy, attack)
    if clean is None or under is None:
        return None, None

    def delta(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    return delta(clean.accuracy, under.accuracy), delta(under.loss, clean.loss)


def _reference(table: _Table, reference: str | None, attack: str) -> ReferenceResult | None:
    if reference is None:
        return None
    under = table.condition_result(reference, attack)
    if under is None:
        return None
    drop, increase = _versus_clean(table, reference, attack)
    return ReferenceResult(
        strategy=reference, accuracy=under.accuracy, accuracy_drop=drop, loss_increase=increase
    )


# --------------------------------------------------------------------------- caveats


def ceiling_caveat(observations: Sequence[Observation]) -> str | None:
    """A caveat when every cell is within noise of the best one (nothing to separate)."""
    table = _Table(observations)
    if len(table.order) < 2:
        return None
    cells = [
        r
        for s in table.order
        for c in table.by[s]
        if (r := table.condition_result(s, c)) is not None and r.accuracy is not None
    ]
    if not cells:
        return None
    ceiling = max(r.accuracy for r in cells if r.accuracy is not None)
    sd = binomial_sd(ceiling, table.test_samples(table.order))
    if sd is None:
        return None
    two_se = 2 * sd / math.sqrt(min(r.repeats for r in cells))
    if all(ceiling - (r.accuracy or 0.0) <= two_se for r in cells):
        return (
            f"every cell is within noise of the best ({pct(ceiling)} ± {pp(two_se)} at 2·SE): "
            "this task is too easy to separate these strategies; try --partition dirichlet "
            "--alpha 0.1, stronger attacks or harder data"
        )
    return None


__all__ = [
    "NOTHING_SURVIVES",
    "NO_ATTACK",
    "RANK_BY",
    "AttackBest",
    "ConditionResult",
    "Difference",
    "Gap",
    "Observation",
    "RankBy",
    "Recommendation",
    "ReferenceResult",
    "StrategyScore",
    "best_under_attacks",
    "binomial_sd",
    "ceiling_caveat",
    "differences_to_top",
    "paired_difference",
    "recommend",
    "sweep_conditions",
]
