"""The shapes of a sweep directory's files, as pydantic models: what velocity writes.

One model per file (``docs/files.md`` has their field tables, generated from these
models by :mod:`velocity.sweepdir.docs`):

========================  ================================================
file                      model
========================  ================================================
``plan.json``             :class:`Plan`
``status.json``           :class:`Status` (each run: :class:`RunState`)
``<run>/config.json``     :class:`velocity.spec.RunSpec`
``<run>/progress.json``   :class:`Progress`
``<run>/summary.json``    :class:`Summary` (:class:`TimeSplit`, :class:`Detection`)
``<run>/rounds.csv``      :class:`RoundRow` (one per line)
``<run>/timings.csv``     :class:`TimingRow` (one per line)
``results.csv``           :class:`velocity.sweepdir.results.ResultRow`
``comparison.json``       :class:`velocity.sweepdir.comparison.Comparison`
========================  ================================================

Every writer builds the model and writes its dump (:mod:`velocity.sweepdir.files`),
so a file always has the model's keys in the model's order. Readers of files that
may come from an older velocity, another writer or a hand edit read them with
:meth:`FileModel.lenient`: a value that does not validate is left out (it reads as
its field's default), so one damaged field never hides the rest of the file.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from velocity.spec import RankBy, RunSpec
from velocity.sweepdir import names

#: How a run ended (``summary.json``): a result (done, diverged) or not (failed).
RunStatus = Literal["done", "diverged", "failed"]
#: A run's state in ``status.json``.
RunStateName = Literal["pending", "running", "done", "diverged", "failed", "cancelled"]
#: A sweep's state in ``status.json``.
SweepState = Literal["running", "done", "failed", "cancelled"]
#: Where runs execute (``plan.json``).
Backend = Literal["local", "ray"]


def _as_text(value: Any) -> Any:
    """A timestamp or message written as something else (another writer) reads as its text."""
    return value if value is None or isinstance(value, str) else str(value)


#: ISO 8601 UTC time to the second, e.g. ``2026-11-28T15:00:00+00:00``.
Timestamp = Annotated[str, BeforeValidator(_as_text)]


class FileModel(BaseModel):
    """A file's model: written as declared, read back leniently with :meth:`lenient`."""

    model_config = ConfigDict(extra="ignore")

    #: The file this model describes (``velocity.sweepdir.names``).
    FILE: ClassVar[str] = ""

    @classmethod
    def lenient(cls, data: Mapping[str, Any]) -> Self:
        """The model of a file's JSON object, with every value that does not validate left out.

        A wrong value nested in a list or a map (one run's entry) removes that value,
        or its entry; a field without a default that is missing or invalid raises
        ``ValidationError`` (the file is not this model's).
        """
        return _lenient(cls, data)

    def to_json(self) -> dict[str, Any]:
        """The file's JSON object (NaN and infinities are written as null)."""
        return self.model_dump(mode="json")


def _path_key(item: Any) -> tuple[int, Any]:
    return (0, item) if isinstance(item, int) else (1, str(item))


M = TypeVar("M", bound=BaseModel)


def _lenient(model: type[M], data: Mapping[str, Any]) -> M:
    work: Any = copy.deepcopy(dict(data))
    first: ValidationError | None = None
    for _ in range(10_000):
        try:
            return model.model_validate(work)
        except ValidationError as exc:
            first = first or exc
            cuts = []
            for error in exc.errors():
                path = _existing_prefix(work, error["loc"])
                if not path:  # a field without default is missing or was invalid
                    raise _field_errors(model, first, error["loc"][:1]) from None
                cuts.append(path)
            for path in sorted(set(cuts), key=lambda p: [_path_key(k) for k in p], reverse=True):
                _delete(work, path)
    return model.model_validate(work)  # pragma: no cover - pathological nesting


def _field_errors(
    model: type[BaseModel], first: ValidationError, field: tuple[int | str, ...]
) -> ValidationError:
    """The errors of ``first`` (the file as it was) about one top-level field."""
    related = [e for e in first.errors() if tuple(e["loc"][:1]) == field]
    details: list[Any] = [
        {k: e[k] for k in ("type", "loc", "input", "ctx") if k in e} for e in related
    ]
    if not details:
        details = [{"type": "missing", "loc": field, "input": {}}]
    return ValidationError.from_exception_data(model.__name__, details)


def _existing_prefix(data: Any, loc: Sequence[int | str]) -> tuple[int | str, ...]:
    """The longest prefix of ``loc`` that names a value in ``data`` (a union's member
    names and a missing key end it)."""
    path: list[int | str] = []
    node = data
    for key in loc:
        found = (isinstance(node, dict) and key in node) or (
            isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        )
        if not found:
            break
        node = node[key]
        path.append(key)
    return tuple(path)


def _delete(data: Any, path: tuple[int | str, ...]) -> None:
    node = data
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
        del node[last]


# --------------------------------------------------------------------------- plan.json

#: What ends a sweep run ``until = "decided"`` (:class:`Decision`).
DecisionEnd = Literal["decided", "max-repeats", "budget", "settled", "no-candidate"]


class Decision(BaseModel):
    """How a sweep run until decided stands (``plan.json``'s ``decision``), after each repeat."""

    ended: DecisionEnd | None = Field(
        None,
        description="what ended it: decided (the recommendation is separated from every "
        "other candidate beyond 2·SE), max-repeats, budget (the next repeat would pass it), "
        "settled (no repeat up to max_repeats is expected to separate the tie), "
        "no-candidate (no strategy has a result in every condition); null while it goes on",
    )
    leader: str | None = Field(None, description="the candidate with the best worst case")
    runner_up: str | None = Field(None, description="the second best candidate")
    margin: float | None = Field(
        None, description="paired worst-case difference leader − runner-up (goodness)"
    )
    two_se: float | None = Field(None, description="twice its standard error")
    repeats: int = Field(0, description="repeats the leader has had")
    active: list[str] = Field(
        default_factory=list, description="the strategies that get the next repeat"
    )
    eliminated: dict[str, int] = Field(
        default_factory=dict,
        description="strategies given no more repeats (successive elimination), with the "
        "repeats they had",
    )
    settled: dict[str, int] = Field(
        default_factory=dict,
        description="candidates tied with the leader that no repeat up to max_repeats is "
        "expected to separate from it (given no more repeats, still in the tie), with the "
        "repeats they had",
    )
    runs_spent: int = Field(0, description="runs planned so far")
    full_grid_runs: int = Field(
        0, description="runs of the fixed grid: every cell × max_repeats repeats"
    )


class Plan(FileModel):
    """``plan.json``: what the sweep runs and where; rewritten on ``--resume``.

    velocity writes every field (``backend`` aside, see there); a reader gets null for
    one that a plan lacks or holds damaged.
    """

    FILE: ClassVar[str] = names.PLAN

    runs: list[RunSpec] = Field(
        description="every run of the sweep, as its config.json (RunSpec), repeats included"
    )
    parallel: int | None = Field(None, description="runs executing at once")
    backend: Backend | None = Field(
        None,
        description="where the runs execute: local processes or Ray (a resume may use "
        "another); absent from the plan the MCP server writes before the sweep starts",
    )
    repeats: int | None = Field(None, description="seeds per cell")
    rank_by: RankBy = Field("accuracy", description="what the verdict ranks by")
    created_at: Timestamp | None = Field(
        None, description="when the plan was written (ISO 8601, UTC)"
    )
    until: Literal["decided"] | None = Field(
        None,
        description="decided: repeats are added until the recommendation is decided "
        "(null: the fixed plan)",
    )
    max_repeats: int | None = Field(None, description="until decided: at most this many repeats")
    budget: int | None = Field(None, description="until decided: at most this many runs")
    decision: Decision | None = Field(
        None, description="until decided: how it stands after the last repeat"
    )

    @classmethod
    def of(
        cls,
        runs: Sequence[RunSpec],
        *,
        parallel: int,
        rank_by: RankBy,
        backend: Backend | None = None,
        created_at: str,
        until: Literal["decided"] | None = None,
        max_repeats: int | None = None,
        budget: int | None = None,
        decision: Decision | None = None,
    ) -> Plan:
        """The plan of ``runs``: its repeats are the runs' (one more than the last repeat)."""
        return cls(
            runs=list(runs),
            parallel=parallel,
            backend=backend,
            repeats=max(spec.repeat for spec in runs) + 1 if runs else 1,
            rank_by=rank_by,
            created_at=created_at,
            until=until,
            max_repeats=max_repeats,
            budget=budget,
            decision=decision,
        )

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"backend"} if self.backend is None else None)


# --------------------------------------------------------------------------- status.json


class RunState(BaseModel):
    """One run in ``status.json``."""

    state: RunStateName = Field(
        description="pending, running, done, diverged (a result: the strategy broke), failed "
        "or cancelled"
    )
    error: str | None = Field(None, description="why it failed or diverged")


class Status(FileModel):
    """``status.json``: the sweep's state, rewritten atomically whenever a run starts or ends.

    velocity always writes every field; a reader gets null for any but ``state`` that a
    file lacks or holds damaged (a sweep of an older velocity, another writer).
    """

    FILE: ClassVar[str] = names.STATUS

    state: SweepState = Field(
        description="running; done (every run ended, some may have failed); cancelled "
        "(Ctrl-C, SIGTERM: --resume finishes it); failed (the sweep itself could not go on)",
    )
    pid: int | None = Field(None, description="the process driving the sweep")
    started_at: Timestamp | None = Field(None, description="when this session of it started")
    updated_at: Timestamp | None = Field(None, description="when this file was written")
    finished_at: Timestamp | None = Field(None, description="when it ended; null while running")
    elapsed_s: float | None = Field(None, description="wall seconds of this session so far")
    total_runs: int | None = Field(None, description="runs in the plan")
    done_runs: int | None = Field(None, description="runs done")
    diverged_runs: int | None = Field(None, description="runs that diverged")
    failed_runs: int | None = Field(None, description="runs that failed")
    runs: dict[str, RunState] = Field(default_factory=dict, description="every run by name")
    error: str | None = Field(None, description="why the sweep failed, or what went wrong")


# --------------------------------------------------------------------------- run files


class Progress(FileModel):
    """``<run>/progress.json``: how far a run got."""

    FILE: ClassVar[str] = names.PROGRESS

    state: Literal["running", "done", "diverged", "failed"] = Field(
        description="running, then how the run ended"
    )
    round: int = Field(description="rounds completed")
    rounds: int = Field(description="rounds in the run")


class TimeSplit(BaseModel):
    """Where a run's time went, in seconds summed over its rounds."""

    train: float = Field(description="local training of the sampled clients")
    aggregate: float = Field(description="attacks and aggregation (the Rust core)")
    evaluate: float = Field(description="evaluating the global model on the test split")


class Detection(BaseModel):
    """A selection strategy's choices (Krum, MultiKrum, Bulyan), summed over rounds."""

    kept_honest: int = Field(description="honest updates it kept")
    kept_byzantine: int = Field(description="Byzantine updates it kept")
    excluded_honest: int = Field(description="honest updates it left out")
    excluded_byzantine: int = Field(description="Byzantine updates it left out")


#: The detection counts, in the order files give them.
DETECTION_KEYS: tuple[str, ...] = tuple(Detection.model_fields)


class Summary(FileModel):
    """``<run>/summary.json``: how a run ended, its metrics and its error."""

    FILE: ClassVar[str] = names.SUMMARY

    name: str = Field(description="the run's name")
    status: RunStatus = Field(
        description="done; diverged (a round produced a non-finite value: the strategy broke, "
        "a result); failed (the run could not run)"
    )
    error: str | None = Field(description="one line when diverged or failed, else null")
    strategy: str = Field(description="the strategy's label, e.g. Krum:f=2")
    attack: str = Field(description="the attacks' label, 'none' without attack")
    seed: int = Field(description="the run's seed (its repeat's)")
    repeat: int = Field(description="its repeat within its cell")
    rounds: int = Field(description="rounds planned")
    rounds_completed: int = Field(description="rounds that completed")
    final_loss: float | None = Field(description="test loss after the last completed round")
    final_accuracy: float | None = Field(description="test accuracy (a fraction) after it")
    mean_loss: float | None = Field(description="mean test loss over the completed rounds")
    mean_accuracy: float | None = Field(description="mean test accuracy over them")
    best_accuracy: float | None = Field(description="best test accuracy of any round")
    elapsed_s: float | None = Field(description="wall seconds of the run")
    time_s: TimeSplit | None = Field(description="where the time went")
    byzantine_clients: dict[str, str] | None = Field(
        description="each Byzantine client (its id as text) and its attack"
    )
    test_samples: int | None = Field(
        None, description="size of the test split (the verdict's binomial noise floor)"
    )
    notes: list[str] = Field(
        default_factory=list,
        description="one-line facts about how the run trained, e.g. a torch model whose "
        "clients could not be vectorized",
    )
    detection: Detection | None = Field(description="selection strategies only, else null")
    checkpoint: str | None = Field(
        description="the final model: relative to the run directory (checkpoint/final.npz) "
        "or an absolute path (a storage directory); null when no round completed"
    )
    started_at: Timestamp | None = Field(description="when the run started")
    finished_at: Timestamp | None = Field(description="when it ended")


class RoundRow(BaseModel):
    """One line of ``<run>/rounds.csv``: deterministic, bit-identical for the same RunSpec."""

    FILE: ClassVar[str] = names.ROUNDS

    round: int = Field(description="1, 2, ...")
    num_clients: int = Field(description="clients that trained this round")
    global_loss: float = Field(description="test loss of the new global model (repr: exact)")
    accuracy: float = Field(description="its test accuracy, a fraction (repr: exact)")
    byzantine: int = Field(description="participating clients whose attack is active")
    attacked: str = Field(description="client:attack pairs joined by ';' (empty when none)")
    kept_honest: int | None = Field(description="selection strategies only (else empty)")
    kept_byzantine: int | None = Field(description="selection strategies only")
    excluded_honest: int | None = Field(description="selection strategies only")
    excluded_byzantine: int | None = Field(description="selection strategies only")


class TimingRow(BaseModel):
    """One line of ``<run>/timings.csv``: wall times, never bit-identical."""

    FILE: ClassVar[str] = names.TIMINGS

    round: int = Field(description="1, 2, ...")
    train_s: float = Field(description="local training, seconds (6 decimals)")
    aggregate_s: float = Field(description="attacks and aggregation")
    evaluate_s: float = Field(description="evaluation on the test split")
    round_s: float = Field(description="the three together")


#: The columns of ``rounds.csv`` and ``timings.csv``, in their order.
ROUND_COLUMNS: tuple[str, ...] = tuple(RoundRow.model_fields)
TIMING_COLUMNS: tuple[str, ...] = tuple(TimingRow.model_fields)


__all__ = [
    "DETECTION_KEYS",
    "ROUND_COLUMNS",
    "TIMING_COLUMNS",
    "Backend",
    "Decision",
    "DecisionEnd",
    "Detection",
    "FileModel",
    "Plan",
    "Progress",
    "RoundRow",
    "RunSpec",
    "RunState",
    "RunStateName",
    "RunStatus",
    "Status",
    "Summary",
    "SweepState",
    "TimeSplit",
    "Timestamp",
    "TimingRow",
]
