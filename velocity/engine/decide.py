r"""Decide with the fewest runs: after each repeat, who gets the next one, and when to stop.

A sweep run ``until = "decided"`` runs one repeat of every cell, then adds repeats
(new seeds, the same seed for every cell of a repeat: paired) only to the strategies
that can still change the answer. This module is the rule, a pure function of the
results so far (:func:`decide`); :mod:`velocity.engine.until` applies it to a sweep.

**Decided** is the verdict's own notion (:func:`velocity.report.verdict.recommend`):
the top candidate a beats every other candidate b by more than twice the standard
error of their paired worst-case difference, :math:`\bar d_{ab} > 2\,\mathrm{SE}`.

**Successive elimination** (Even-Dar, Mannor and Mansour 2006, "Action Elimination
and Stopping Conditions for the Multi-Armed Bandit and Reinforcement Learning
Problems", JMLR 7, https://jmlr.org/papers/v7/evendar06a.html): an arm whose upper
confidence bound falls below the leader's lower bound is dropped for good. Here the
arms are the candidates and, because repeats are paired (every strategy runs each
seed), the bounds are taken on the paired difference to the leader a, as racing
with blocking does (Moore and Lee 1994, "Efficient Algorithms for Minimizing Cross
Validation Error", ICML): b is *eliminated* — it gets no more repeats, its cells
stay in the report — when

.. math:: \bar d_{ab} - 2\,\mathrm{SE}_{ab} > 0,

the verdict's own test (b is outside the verdict's tie with the top). The unpaired
form, :math:`\bar W_b + 2\,\mathrm{SE}_b < \bar W_a - 2\,\mathrm{SE}_a`, implies it
(:math:`\mathrm{SE}_{ab} \le \mathrm{SE}_a + \mathrm{SE}_b`, up to the floors) but drops fewer,
since it ignores that a seed that is hard for one strategy is hard for all. With one
repeat the SE is the binomial floor of the verdict; ranked by loss there is no floor,
so nothing is eliminated before the second repeat. A strategy that falls back into
the verdict's tie with the top (the leader changed) rejoins. Since eliminated means
"already separated from the top", eliminating never keeps a sweep from being decided.

**Settled ties** (futility stopping, the stochastic curtailment of sequential trials:
Lan, Simon and Halperin 1982, "Stochastically curtailed tests in long-term clinical
trials", Communications in Statistics C 1(3), https://doi.org/10.1080/07474948208836014):
a candidate b in the tie with the top a gets no more repeats once the repeats left
cannot be expected to separate them, even if their true difference were one standard
error larger than measured. With k ≥ :data:`SETTLE_AFTER` paired repeats, per-repeat
deviation σ (the verdict's, binomial floor included) and K = ``max_repeats``, b is
*settled* when

.. math:: \bar d_{ab} + \sigma / \sqrt{k} \le 2\,\sigma / \sqrt{K},

that is, at K repeats even that larger difference would stay inside 2·SE (the noise
held at today's σ). A settled candidate stays in the tie, and in the report; it is
recomputed after every repeat, so one that a new leader can separate gets repeats
again. Running it to K would most likely report the same tie at 5/3 of the cost
(k = 3, K = 5). Three repeats at least, so that σ is measured, not only floored.

**The next repeat** goes to every cell of every candidate neither eliminated nor
settled (and to the top while any other does), all with the same new seed. The loop
ends, and says which ended it (:data:`DecisionEnd`), when the recommendation is
*decided*, when the next repeat would pass ``max_repeats`` (*max-repeats*: a tie is
reported as a tie), when its runs would pass the ``budget`` (*budget*), when every
candidate tied with the top is settled (*settled*: the tie is reported, with what
separating it would take), or when no strategy has a result in every condition
(*no-candidate*: more seeds cannot mend failed runs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from velocity.report.fmt import pp
from velocity.report.verdict import Difference, Gap, Observation, differences_to_top, recommend
from velocity.spec import RankBy
from velocity.sweepdir.comparison import Recommendation
from velocity.sweepdir.models import Decision, DecisionEnd

#: Paired repeats a tie member needs before it can be settled (σ measured, 2 dof).
SETTLE_AFTER = 3


def is_settled(difference: Difference | None, max_repeats: int) -> bool:
    """Whether ``max_repeats`` repeats are not expected to separate the top from a tie
    member, even with a difference one SE larger than ``difference`` (module doc)."""
    if difference is None or difference.sigma is None or difference.repeats < SETTLE_AFTER:
        return False
    sigma, k = difference.sigma, difference.repeats
    return difference.mean + sigma / math.sqrt(k) <= 2 * sigma / math.sqrt(max_repeats)


@dataclass(frozen=True)
class DecisionState:
    """Where a sweep run until decided stands after the results so far."""

    recommendation: Recommendation
    active: list[str]  # the strategies whose cells get the next repeat
    eliminated: dict[str, int]  # strategy -> the repeats it had when it was eliminated
    settled: dict[str, int]  # tie member -> its repeats, when no repeat left would separate it
    ended: DecisionEnd | None  # None: run the next repeat
    next_repeat: int
    next_runs: int  # runs the next repeat costs (0 once ended)

    @property
    def leader(self) -> str | None:
        candidates = self.recommendation.candidates
        return candidates[0].strategy if candidates else None

    def record(self, *, runs_spent: int, full_grid_runs: int) -> Decision:
        """The ``plan.json`` record of this state."""
        rec = self.recommendation
        top = rec.candidates[0] if rec.candidates else None
        return Decision(
            ended=self.ended,
            leader=self.leader,
            runner_up=rec.runner_up,
            margin=rec.margin,
            two_se=rec.two_se,
            repeats=top.repeats if top is not None else 0,
            active=[] if self.ended else list(self.active),
            eliminated=dict(self.eliminated),
            settled=dict(self.settled),
            runs_spent=runs_spent,
            full_grid_runs=full_grid_runs,
        )


def decide(
    observations: Sequence[Observation],
    gaps: Sequence[Gap],
    *,
    rank_by: RankBy,
    cells: Mapping[str, int],
    next_repeat: int,
    max_repeats: int,
    runs_spent: int,
    budget: int | None,
    eliminated: Mapping[str, int],
    settled: Mapping[str, int] | None = None,
) -> DecisionState:
    """The decision state after the results so far (the module docstring has the rule).

    ``cells`` maps each strategy to its number of cells (the conditions it runs in),
    ``next_repeat`` is the repeat index the next repeat would have (the repeats
    planned so far), ``runs_spent`` the runs planned so far, and ``eliminated`` and
    ``settled`` the strategies eliminated and settled earlier, with their repeats.

    A state that goes on (or ends ``settled``) lists the tie members the next repeat
    leaves out; a state that ends otherwise lists those left out of earlier repeats and
    still in the tie (none is left out of a repeat that does not happen).
    """
    rec = recommend(observations, gaps, rank_by=rank_by)
    out = {s: k for s, k in eliminated.items() if s not in rec.tie}
    if rec.noise_measured:
        for c in rec.candidates[1:]:
            if c.strategy not in rec.tie:  # separated from the top beyond 2·SE
                out.setdefault(c.strategy, c.repeats)
    prior = {s: k for s, k in (settled or {}).items() if s in rec.tie}
    settle: dict[str, int] = {}
    if rec.tie and next_repeat < max_repeats:
        differences = differences_to_top(observations, gaps, rank_by=rank_by)
        settle = {
            c.strategy: prior.get(c.strategy, c.repeats)
            for c in rec.candidates[1:]
            if c.strategy in rec.tie and is_settled(differences.get(c.strategy), max_repeats)
        }
    others = [c.strategy for c in rec.candidates[1:] if c.strategy not in {*out, *settle}]
    active = [rec.candidates[0].strategy, *others] if others else []
    cost = sum(cells.get(s, 0) for s in active)
    ended: DecisionEnd | None = None
    if not rec.candidates:
        ended = "no-candidate"
    elif rec.decided:
        ended = "decided"
    elif next_repeat >= max_repeats:
        ended = "max-repeats"
    elif not others:
        ended = "settled"
    elif budget is not None and runs_spent + cost > budget:
        ended = "budget"
    return DecisionState(
        recommendation=rec,
        active=active,
        eliminated=out,
        settled=settle if ended in (None, "settled") else prior,
        ended=ended,
        next_repeat=next_repeat,
        next_runs=0 if ended else cost,
    )


def describe(state: DecisionState, *, runs_spent: int, full_grid_runs: int) -> str:
    """One progress line: the leader, its margin against 2·SE, the eliminated, runs saved."""
    rec = state.recommendation
    if state.leader is None:
        head = "no candidate yet"
    elif rec.runner_up is None:
        head = f"leader {state.leader} (the only candidate)"
    else:
        margin = "–" if rec.margin is None else f"{_signed(rec.margin, rec.rank_by)}"
        two_se = "not measured" if rec.two_se is None else _signed(rec.two_se, rec.rank_by)
        head = f"leader {state.leader}, {margin} ahead of {rec.runner_up} (2·SE {two_se})"
    out = ""
    if state.eliminated:
        out = "; eliminated " + ", ".join(
            f"{s} after {k} repeat{'s' if k != 1 else ''}" for s, k in state.eliminated.items()
        )
    if state.settled:
        out += "; settled in the tie " + ", ".join(
            f"{s} after {k} repeat{'s' if k != 1 else ''}" for s, k in state.settled.items()
        )
    spent = f"{runs_spent} of the {full_grid_runs} runs of the full grid spent"
    if state.ended:
        then = f"{spent} ({max(full_grid_runs - runs_spent, 0)} saved); ended: {state.ended}"
    else:
        then = f"{spent}; next: repeat {state.next_repeat + 1} of {', '.join(state.active)}"
    return f"decide: {head}{out}; {then}"


def _signed(x: float, rank_by: RankBy) -> str:
    return pp(x) if rank_by == "accuracy" else f"{x:.3g}"


__all__ = [
    "SETTLE_AFTER",
    "DecisionState",
    "decide",
    "describe",
    "is_settled",
]
