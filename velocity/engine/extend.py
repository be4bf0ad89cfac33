"""Add runs to an existing sweep directory: ``velocity sweep --extend DIR``.

:func:`plan_extension` is the plan, a pure function of the sweep's runs: more
repeats of every cell (``repeats``: the new number per cell), new strategies (each
in every condition of the sweep) and new attacks (each against every strategy),
every new run with the seed of its repeat (:func:`velocity.spec.repeat_seed`), so
it is paired with the runs of that repeat; the sweep's settings are the new runs'
settings, and a setting given that differs from them is refused, naming the keys
(new cells would be incomparable with the old). The runs it adds are exactly those
a sweep planned with them from the start would have, names aside: an existing run
keeps its name (finished runs are never touched).

:func:`extend_sweep` runs them. A sweep no process drives is resumed with the new
runs (its lock, its checks, its plan rewritten first); a running one gets them
queued (:mod:`velocity.sweepdir.queue`), and its driver runs them once its current
runs are done. Either way the runs are on disk (queued or in ``plan.json``) before
any is executed, so a kill -9 loses nothing: ``--resume`` completes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from velocity.attacks import AttackSpec
from velocity.errors import SpecError, format_validation_error
from velocity.spec import (
    EXECUTION_FIELDS,
    MAX_REPEATS,
    RunSpec,
    Settings,
    base_seed,
    build_sweep,
    repeat_run,
)
from velocity.strategy import Strategy
from velocity.sweepdir import files, names
from velocity.sweepdir import queue as sweepqueue

#: RunSpec fields that tell a sweep's runs apart (the rest are its settings).
_PER_RUN = ("name", "strategy", "attacks", "repeat", "seed")


def sweep_settings(runs: Sequence[RunSpec]) -> dict[str, Any]:
    """The settings every run of the sweep shares (``seed``: the sweep's), as JSON values.

    Refuses runs that do not share them (``SpecError`` naming the keys): cells that
    differ in more than strategy and attacks cannot be extended as one grid.
    """
    settings: dict[str, Any] | None = None
    for spec in runs:
        mine = {k: v for k, v in spec.to_json().items() if k not in _PER_RUN}
        mine["seed"] = base_seed(spec)
        if settings is None:
            settings = mine
            continue
        differ = sorted(k for k in settings.keys() | mine.keys() if settings.get(k) != mine.get(k))
        if differ:
            raise SpecError(
                f"cannot extend: the sweep's runs differ in {', '.join(differ)} (run "
                f"{spec.name!r}); only a sweep whose cells share their settings can be extended"
            )
    if settings is None:
        raise SpecError("cannot extend: the sweep has no runs")
    return settings


def check_compatible(settings: Mapping[str, Any], given: Mapping[str, Any]) -> None:
    """Refuse settings ``given`` with the extension that differ from the sweep's, naming them.

    ``given`` holds ``[shared]`` keys (``rounds``, ``lr``, ...); execution settings
    (``parallel``, ``backend``, ...) may differ, since they do not change results.
    """
    relevant = {k: v for k, v in given.items() if k not in EXECUTION_FIELDS}
    try:
        wanted = Settings.model_validate({**settings, **relevant}).model_dump(mode="json")
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc)) from None
    differ = [k for k in sorted(wanted) if k in settings and wanted[k] != settings[k]]
    if differ:
        shown = ", ".join(f"{k} = {wanted[k]!r} (the sweep's: {settings[k]!r})" for k in differ)
        raise SpecError(
            f"--extend cannot change {shown}: new cells would not be comparable with the "
            f"sweep's; drop {', '.join('--' + k.replace('_', '-') for k in differ)}"
        )


def plan_extension(
    runs: Sequence[RunSpec],
    *,
    repeats: int | None = None,
    strategies: Sequence[str] = (),
    attacks: Sequence[str] = (),
    settings: Mapping[str, Any] | None = None,
) -> list[RunSpec]:
    """The runs to add to a sweep planned as ``runs`` (the module docstring has the rule).

    New cells get ``repeats`` repeats, else as many as the sweep's most repeated cell;
    existing cells get more only with ``repeats`` (a cell eliminated in a sweep run until
    decided keeps its few).

    Refuses (``SpecError``, one line): settings that differ from the sweep's, fewer
    repeats than it has, a strategy or attack already in it, and an extension that
    adds nothing.
    """
    shared = sweep_settings(runs)
    check_compatible(shared, settings or {})
    have = max(spec.repeat for spec in runs) + 1
    target = have if repeats is None else repeats
    if isinstance(target, bool) or not 1 <= target <= MAX_REPEATS:
        raise SpecError(f"--repeats {target} is out of range: allowed 1 to {MAX_REPEATS}")
    if target < have:
        raise SpecError(
            f"--repeats {target} is fewer than the sweep's {have} repeats: an extension only "
            f"adds runs (finished runs are never removed); give --repeats {have + 1} or more"
        )
    cells: dict[str, RunSpec] = {}
    for spec in sorted(runs, key=lambda s: s.repeat):
        cells.setdefault(spec.cell, spec)
    labels = list(dict.fromkeys(spec.strategy.label() for spec in cells.values()))
    conditions = list(dict.fromkeys(spec.attack_label for spec in cells.values()))
    condition_attacks = {spec.attack_label: spec.attacks for spec in cells.values()}
    strategy_of = {spec.strategy.label(): spec.strategy for spec in cells.values()}
    entries: list[dict[str, Any]] = []
    new_labels = _new_strategies(strategies, labels)
    for strategy in new_labels.values():
        for condition in conditions:
            entries.append(_entry(strategy, condition_attacks[condition]))
    for attack in _new_attacks(attacks, conditions, shared):
        for label in [*labels, *new_labels]:
            strategy = strategy_of.get(label) or new_labels[label]
            entries.append(_entry(strategy, [attack]))
    added = _expand(shared, entries, target) if entries else []
    planned = {(spec.cell, spec.repeat) for spec in runs}
    for cell, template in cells.items() if repeats is not None else ():
        added += [repeat_run(template, k) for k in range(target) if (cell, k) not in planned]
    if not added:
        raise SpecError(
            "the extension adds no run: give --repeats more than the sweep's "
            f"{have}, a new --strategies or a new --attacks"
        )
    taken = {spec.name for spec in runs}
    clash = [spec.name for spec in added if spec.name in taken]
    if clash:
        raise SpecError(f"the extension's run {clash[0]!r} is already in the sweep")
    return added


def _entry(strategy: Strategy, attacks: Sequence[AttackSpec]) -> dict[str, Any]:
    """A ``[[runs]]`` table of one new cell."""
    return {"strategy": strategy.to_dict(), "attacks": [a.model_dump(mode="json") for a in attacks]}


def _new_strategies(given: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    from velocity.strategy import parse_strategy

    out: dict[str, Any] = {}
    for text in given:
        try:
            strategy = parse_strategy(text)
        except ValueError as exc:
            raise SpecError(f"--strategies {text}: {exc}") from None
        label = strategy.label()
        if label in labels or label in out:
            raise SpecError(f"--strategies {text}: {label} is already in the sweep")
        out[label] = strategy
    return out


def _new_attacks(
    given: Sequence[str], conditions: Sequence[str], shared: Mapping[str, Any]
) -> list[AttackSpec]:
    """The attacks to add; the word ``adaptive`` adds every adaptive attack not yet in the
    sweep, an attack named that is already in it is refused."""
    from velocity.attacks import ADAPTIVE, expand_adaptive, is_word, parse_attack

    out: list[AttackSpec] = []
    named = [a for a in given if not is_word(a, ADAPTIVE)]
    for text, from_word in [(a, False) for a in named] + [
        (a, True) for a in expand_adaptive([a for a in given if is_word(a, ADAPTIVE)])
    ]:
        try:
            attack = parse_attack(text, byzantine=shared.get("byzantine"))
        except ValueError as exc:
            raise SpecError(f"--attacks {text}: {exc}") from None
        if attack.label() in conditions or attack.label() in [a.label() for a in out]:
            if from_word:
                continue
            raise SpecError(f"--attacks {text}: {attack.label()} is already in the sweep")
        out.append(attack)
    return out


def _expand(
    shared: Mapping[str, Any], entries: list[dict[str, Any]], repeats: int
) -> list[RunSpec]:
    """The new cells' runs, built as a sweep of them with the sweep's settings would be."""
    return build_sweep({"shared": {**shared, "repeats": repeats}, "runs": entries}).expand()


# --------------------------------------------------------------------------- running it


@dataclass(frozen=True)
class Queued:
    """An extension queued into a running sweep: its driver runs it."""

    sweep_dir: Path
    runs: list[RunSpec]
    pid: int  # the driver (0: unknown)


def planned_runs(sweep_dir: Path) -> list[RunSpec]:
    """The sweep's runs: ``plan.json``'s and those queued into it; refuses a non-sweep."""
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / names.PLAN).is_file():
        raise SpecError(f"--extend {sweep_dir}: not a sweep directory (no {names.PLAN})")
    try:
        runs = files.read_plan_runs(sweep_dir)
    except files.NoRunsError:
        raise SpecError(f"--extend {sweep_dir}: {names.PLAN} has no runs") from None
    except ValidationError as exc:
        raise SpecError(f"{sweep_dir / names.PLAN}: {format_validation_error(exc)}") from None
    except (OSError, ValueError) as exc:
        raise SpecError(f"--extend {sweep_dir}: {names.PLAN} is unreadable: {exc}") from None
    known = {spec.name for spec in runs}
    for _, queued in sweepqueue.pending(sweep_dir):
        runs += [spec for spec in queued if spec.name not in known]
        known |= {spec.name for spec in queued}
    return runs


def extend_sweep(sweep_dir: Path, new: Sequence[RunSpec], *, run: Callable[[], Any]) -> Any:
    """Add the runs ``new`` (from :func:`plan_extension`) to the sweep in ``sweep_dir``.

    Checks that they can run (:func:`~velocity.engine.sweep.check_setups`), then
    queues them: into its driver when one runs (returns :class:`Queued`), else
    ``run()`` — a resume of the sweep (``run_sweep(..., resume=True)``), which
    takes the queued runs into its plan — runs them and its result is returned. A
    driver that is ending is waited for (the queue's lock is held until it ends).
    """
    from velocity.engine.sweep import SweepBusyError, check_setups

    sweep_dir = Path(sweep_dir)
    check_setups(new)
    path: Path | None = None
    while True:
        with sweepqueue.QueueLock(sweep_dir):
            if path is None:
                path = sweepqueue.put(sweep_dir, new)
            pid = sweepqueue.accepting(sweep_dir)
            if pid is not None or not path.exists():  # a driver takes them, or took them
                return Queued(sweep_dir, list(new), pid or 0)
        try:
            return run()
        except SweepBusyError:
            continue  # a driver started meanwhile: queue into it, or wait for it to end
        except BaseException:
            sweepqueue.discard([path])  # refused: the sweep stays as it was
            raise


__all__ = [
    "Queued",
    "check_compatible",
    "extend_sweep",
    "plan_extension",
    "planned_runs",
    "sweep_settings",
]
