"""``until = "decided"``: the planner that adds repeats to a sweep until its answer is decided.

:func:`first_repeat` names the first batch (one repeat of every cell, ``<cell>__r0``);
:class:`UntilDecided` is the :class:`~velocity.engine.sweep.Planner` that
:func:`~velocity.engine.sweep.run_sweep` asks once a batch is done: it reads the
sweep's results as the report does, applies :func:`velocity.engine.decide.decide`
and returns the next repeat of the strategies still in the running, each with the
repeat's seed (:func:`velocity.spec.repeat_run`), or nothing once decided,
at ``max_repeats`` or at the ``budget``. Its state (leader, margin, eliminated,
runs spent) is ``plan.json``'s ``decision``, so a resume goes on where it stopped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from velocity.engine.decide import DecisionState, decide, describe
from velocity.errors import SpecError
from velocity.report.comparison import observations_of
from velocity.spec import MAX_REPEATS, RankBy, RunSpec, repeat_run
from velocity.sweepdir.models import Decision
from velocity.sweepdir.runs import read_runs


def first_repeat(runs: Sequence[RunSpec]) -> list[RunSpec]:
    """Repeat 0 of every cell of ``runs`` (a sweep planned with one repeat), named
    ``<cell>__r0`` like the first repeat of a sweep with repeats."""
    if any(spec.repeat for spec in runs):
        raise SpecError("--until decided chooses the repeats: plan one repeat of every cell")
    return [repeat_run(spec, 0) for spec in runs]


def check_limits(max_repeats: int, budget: int | None, cells: int) -> None:
    """Refuse a ``max_repeats`` or ``budget`` out of range (one line naming the value)."""
    if isinstance(max_repeats, bool) or not 1 <= max_repeats <= MAX_REPEATS:
        raise SpecError(f"max_repeats = {max_repeats} is out of range: allowed 1 to {MAX_REPEATS}")
    if budget is not None and (isinstance(budget, bool) or budget < cells):
        raise SpecError(
            f"budget = {budget} runs is less than one repeat of every cell ({cells} runs): "
            f"allowed at least {cells}"
        )


class UntilDecided:
    """Adds repeats until decided, ``max_repeats`` or ``budget`` (a sweep's planner)."""

    def __init__(
        self,
        *,
        max_repeats: int,
        budget: int | None,
        rank_by: RankBy,
        previous: Decision | None = None,
        progress: bool = True,
    ) -> None:
        self.max_repeats, self.budget, self.rank_by = max_repeats, budget, rank_by
        self.progress = progress
        self.eliminated: dict[str, int] = dict(previous.eliminated) if previous else {}
        self.settled: dict[str, int] = dict(previous.settled) if previous else {}
        self.state: DecisionState | None = None
        self.record: Decision | None = previous
        self.full_grid_runs = previous.full_grid_runs if previous else 0

    def more(self, out_dir: Path, runs: Sequence[RunSpec]) -> list[RunSpec]:
        """The next repeat of the strategies still in the running ([] when it is over)."""
        observations, gaps = observations_of(read_runs(out_dir))
        by_strategy: dict[str, dict[str, RunSpec]] = defaultdict(dict)
        for spec in sorted(runs, key=lambda s: s.repeat):
            by_strategy[spec.strategy.label()].setdefault(spec.cell, spec)
        cells = {s: len(c) for s, c in by_strategy.items()}
        next_repeat = max(spec.repeat for spec in runs) + 1
        self.full_grid_runs = sum(cells.values()) * self.max_repeats
        state = decide(
            observations,
            gaps,
            rank_by=self.rank_by,
            cells=cells,
            next_repeat=next_repeat,
            max_repeats=self.max_repeats,
            runs_spent=len(runs),
            budget=self.budget,
            eliminated=self.eliminated,
            settled=self.settled,
        )
        self.state, self.eliminated = state, dict(state.eliminated)
        self.settled = dict(state.settled)
        self.record = state.record(runs_spent=len(runs), full_grid_runs=self.full_grid_runs)
        if self.progress:
            line = describe(state, runs_spent=len(runs), full_grid_runs=self.full_grid_runs)
            print(line, flush=True)
        if state.ended:
            return []
        return [
            repeat_run(template, next_repeat)
            for strategy in state.active
            for template in by_strategy.get(strategy, {}).values()
        ]

    def plan_fields(self) -> dict[str, Any]:
        return {
            "until": "decided",
            "max_repeats": self.max_repeats,
            "budget": self.budget,
            "decision": self.record,
        }


__all__ = ["UntilDecided", "check_limits", "first_repeat"]
