"""One real FL run, round by round: :class:`VelocityServer` and :func:`run_one`.

Each round: broadcast the global model → the sampled clients train locally, all
together in one :meth:`~velocity.sim.models.Model.train_clients` call, each on its own
data (a Byzantine client under a data attack trains on poisoned labels) →
the updates Δᵢ = wᵢ − w go to the Rust ``Orchestrator.run_round`` (update attacks
on the Byzantine rows, then robust aggregation, w ← w + agg(Δ)) → the new global
model is evaluated on the held-out test split.

A :class:`~velocity.spec.RunSpec` fully determines a run: the seed fixes the data
split, the partition, the model init, each client's minibatch order, the sampled
clients and the Byzantine set, so the same spec gives bit-identical rounds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from velocity import _core
from velocity.attacks import AttackSpec, attack_schemas, parse_attack
from velocity.errors import check_writable_location
from velocity.sim.data import (
    Dataset,
    available_memory,
    estimate_dataset_bytes,
    format_bytes,
    load_dataset,
    partition,
)
from velocity.sim.models import Model, estimate_training_bytes, get_model
from velocity.sim.torch_models import TorchModel
from velocity.spec import RunSpec, check_attacks, check_class_ids
from velocity.sweepdir import files, names
from velocity.sweepdir.checkpoints import Checkpoint, resolve_storage, save_checkpoint
from velocity.sweepdir.models import (
    DETECTION_KEYS,
    ROUND_COLUMNS,
    TIMING_COLUMNS,
    Detection,
    Progress,
    RunStatus,
    Summary,
    TimeSplit,
)

# Least time between two rewrites of a running run's rounds.csv/timings.csv/progress.json.
PROGRESS_INTERVAL_S = 0.25

# Stream ids that keep the run's random streams apart (client sampling, local training).
_SAMPLING_STREAM = 0x5A3B1E
_TRAINING_STREAM = 0x7E41


@dataclass(frozen=True)
class RoundRecord:
    """What one round did and measured."""

    round: int
    num_clients: int
    global_loss: float
    accuracy: float
    byzantine: int
    attacked: str
    detection: Mapping[str, int] | None
    train_s: float
    aggregate_s: float
    evaluate_s: float

    def row(self) -> dict[str, Any]:
        """The deterministic ``rounds.csv`` row (no wall times)."""
        detection = self.detection or {}
        return {
            "round": self.round,
            "num_clients": self.num_clients,
            "global_loss": repr(self.global_loss),
            "accuracy": repr(self.accuracy),
            "byzantine": self.byzantine,
            "attacked": self.attacked,
            **{key: detection.get(key, "") for key in DETECTION_KEYS},
        }

    def timing_row(self) -> dict[str, Any]:
        """The ``timings.csv`` row."""
        total = self.train_s + self.aggregate_s + self.evaluate_s
        return {
            "round": self.round,
            "train_s": f"{self.train_s:.6f}",
            "aggregate_s": f"{self.aggregate_s:.6f}",
            "evaluate_s": f"{self.evaluate_s:.6f}",
            "round_s": f"{total:.6f}",
        }


@dataclass
class RunResult:
    """A finished, diverged or failed run: its rounds, final model and error if any.

    ``diverged`` marks a run stopped by a non-finite value (a client's training, an
    update, the new global model or its test loss): a result of the experiment — the
    strategy broke under its attack or setting — not a fault of the run.
    """

    spec: RunSpec
    rounds: list[RoundRecord] = field(default_factory=list)
    params: npt.NDArray[np.float32] | None = None
    error: str | None = None
    diverged: bool = False
    byzantine_clients: dict[int, str] = field(default_factory=dict)
    test_samples: int | None = None
    notes: list[str] = field(default_factory=list)


class DivergedError(ValueError):
    """A round produced a non-finite value: the run diverged."""


@dataclass(frozen=True)
class _Client:
    """A client's share of the training set: row indices (not a copy) and its labels."""

    client_id: int
    rows: npt.NDArray[np.int64]
    y: npt.NDArray[np.int64]


class VelocityServer:
    """One FL simulation with real data, real local training and a Rust aggregator.

    Parameters
    ----------
    model_id, dataset, strategy, storage
        As in :class:`~velocity.spec.RunSpec`; ``strategy`` is anything
        :func:`velocity.parse_strategy` accepts. ``storage="local://DIR"`` saves the
        final global model (and every ``checkpoint_every`` rounds) under DIR.
    **settings
        Any other RunSpec field: rounds, clients, fraction_fit, partition, alpha,
        local_epochs, batch_size, lr, seed, name, ...

    >>> server = VelocityServer("logreg", "digits", "FedMedian", rounds=3, clients=5)
    >>> _ = server.simulate_attack("sign_flipping", fraction=0.2)
    >>> result = server.run()
    >>> len(result.rounds)
    3
    """

    def __init__(
        self,
        model_id: str = "logreg",
        dataset: str = "digits",
        strategy: Any = "FedAvg",
        storage: str | None = None,
        **settings: Any,
    ) -> None:
        settings.setdefault("name", "run")
        spec = RunSpec(
            model_id=model_id, dataset=dataset, strategy=strategy, storage=storage, **settings
        )
        self._init(spec)

    @classmethod
    def from_spec(cls, spec: RunSpec) -> VelocityServer:
        """A server for a validated RunSpec."""
        server = cls.__new__(cls)
        server._init(spec)
        return server

    def _init(self, spec: RunSpec) -> None:
        if spec.storage is not None:
            resolve_storage(spec.storage)
        spec.strategy.to_core().check_clients(spec.clients_per_round)
        self.spec = spec
        self.dataset: Dataset = load_dataset(
            spec.dataset,
            seed=spec.seed,
            test_fraction=spec.test_fraction,
            params=spec.dataset_params,
        )
        self.model: Model = get_model(
            spec.model_id,
            input_dim=self.dataset.num_features,
            num_classes=self.dataset.num_classes,
            feature_shape=self.dataset.feature_shape,
            params=spec.model_params,
            device=spec.device,
        )
        parts = partition(
            self.dataset.y_train,
            spec.clients,
            scheme=spec.partition,
            alpha=spec.alpha,
            shards_per_client=spec.shards_per_client,
            samples_per_client=spec.samples_per_client,
            seed=spec.seed,
        )
        # The samples stay in the dataset, once: a round gathers its clients' rows (and
        # makes them float32 features); the test features are made once, for every round.
        self._test_features = self.dataset.features(self.dataset.x_test)
        self._clients = [
            _Client(cid, idx, np.ascontiguousarray(self.dataset.y_train[idx]))
            for cid, idx in enumerate(parts)
        ]

    def simulate_attack(self, attack_type: str, **params: Any) -> AttackSpec:
        """Add an attack to this run; its parameters are checked against the Rust schema."""
        attack = parse_attack({"type": attack_type, **params})
        spec = self.spec.model_copy(update={"attacks": [*self.spec.attacks, attack]})
        check_attacks(spec)  # a window that never opens or a count beyond the clients
        self.spec = spec
        return attack

    def run(
        self,
        *,
        num_threads: int | None = None,
        on_round: Callable[[RoundRecord], None] | None = None,
        checkpoint_dir: Path | None = None,
    ) -> RunResult:
        """Run every round; a failure mid-run is returned in ``RunResult.error``.

        The final model (and every ``checkpoint_every`` rounds) is saved to
        ``checkpoint_dir``, by default the spec's ``storage`` (none if unset).
        ``num_threads`` pins the Rust core's pool and the threads a torch model trains
        with (:meth:`TorchModel.set_num_threads`: intra-op threads, or clients trained
        concurrently); None leaves the pool at its default and gives torch one thread
        per core.
        """
        spec = self.spec
        if isinstance(self.model, TorchModel):
            self.model.set_num_threads(num_threads)
        orchestrator = _core.Orchestrator(
            spec.strategy.to_core(),
            [(a.type, a.params) for a in spec.attacks],
            spec.clients,
            spec.seed,
            num_threads,
        )
        data_attacks = {
            cid
            for cid, name in orchestrator.byzantine_clients.items()
            if attack_schemas()[name]["kind"] == "data"
        }
        result = RunResult(
            spec=spec,
            byzantine_clients=dict(orchestrator.byzantine_clients),
            test_samples=int(self.dataset.y_test.size),
            notes=list(self.model.notes),
        )
        params = self.model.init_params(spec.seed)
        # Every client's momentum buffer, kept across rounds (zeros before its first).
        momenta = (
            np.zeros((spec.clients, self.model.num_params), dtype=np.float32)
            if spec.momentum > 0
            else None
        )
        checkpoints = checkpoint_dir or _checkpoint_dir(spec)
        for rnd in range(1, spec.rounds + 1):
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    params, record = self._round(rnd, params, orchestrator, data_attacks, momenta)
            except ValueError as exc:  # DivergedError and _core.NonFiniteError: diverged
                result.error = f"round {rnd}: {exc}"
                result.diverged = isinstance(exc, DivergedError | _core.NonFiniteError)
                break
            result.rounds.append(record)
            result.params = params
            if on_round is not None:
                on_round(record)
            every = spec.checkpoint_every
            if checkpoints is not None and every and rnd % every == 0 and rnd < spec.rounds:
                save_checkpoint(checkpoints, self._checkpoint(params, rnd), final=False)
        if checkpoints is not None and result.params is not None:
            save_checkpoint(
                checkpoints, self._checkpoint(result.params, len(result.rounds)), final=True
            )
        return result

    def _round(
        self,
        rnd: int,
        params: npt.NDArray[np.float32],
        orchestrator: _core.Orchestrator,
        data_attacks: set[int],
        momenta: npt.NDArray[np.float32] | None,
    ) -> tuple[npt.NDArray[np.float32], RoundRecord]:
        spec = self.spec
        started = time.perf_counter()
        clients = self._sample_clients(rnd)
        ids = np.array([c.client_id for c in clients], dtype=np.int64)
        round_momenta = None if momenta is None else momenta[ids]
        updates = self.model.train_clients(
            params,
            [
                (
                    self.dataset.features(self.dataset.x_train[c.rows]),
                    self._labels(rnd, c, orchestrator, data_attacks),
                )
                for c in clients
            ],
            epochs=spec.local_epochs,
            batch_size=spec.batch_size,
            lr=spec.lr,
            seeds=[_client_seed(spec.seed, rnd, c.client_id) for c in clients],
            prox_mu=spec.strategy.proximal_mu,
            local_steps=spec.local_steps,
            momentum=spec.momentum,
            momenta=round_momenta,
        )
        if momenta is not None and round_momenta is not None:
            momenta[ids] = round_momenta
        updates -= params
        finite = np.isfinite(updates).all(axis=1)
        if not finite.all():
            diverged = clients[int(np.argmin(finite))].client_id
            raise DivergedError(
                f"client {diverged}'s local training diverged (non-finite "
                f"parameters); try a smaller lr than {spec.lr}"
            )
        trained = time.perf_counter()
        new_params, report = orchestrator.run_round(
            rnd,
            params,
            updates,
            np.array([c.y.size for c in clients], dtype=np.float64),
            ids,
        )
        aggregated = time.perf_counter()
        loss, accuracy = self.model.evaluate(new_params, self._test_features, self.dataset.y_test)
        if not math.isfinite(loss):
            raise DivergedError(f"test loss is {loss}: the global model diverged")
        evaluated = time.perf_counter()
        record = RoundRecord(
            round=rnd,
            num_clients=report["num_clients"],
            global_loss=float(loss),
            accuracy=float(accuracy),
            byzantine=len(report["byzantine"]),
            attacked=";".join(f"{a['client']}:{a['attack']}" for a in report["attacked"]),
            detection=cast("Mapping[str, int] | None", report["detection"]),
            train_s=trained - started,
            aggregate_s=aggregated - trained,
            evaluate_s=evaluated - aggregated,
        )
        return new_params, record

    def _labels(
        self,
        rnd: int,
        client: _Client,
        orchestrator: _core.Orchestrator,
        data_attacks: set[int],
    ) -> npt.NDArray[np.int64]:
        """The labels ``client`` trains on in round ``rnd``: poisoned under a data attack."""
        if client.client_id not in data_attacks:
            return client.y
        return orchestrator.poison_labels(rnd, client.client_id, client.y, self.dataset.num_classes)

    def _sample_clients(self, rnd: int) -> list[_Client]:
        spec = self.spec
        k = spec.clients_per_round
        if k == spec.clients:
            return self._clients
        rng = np.random.default_rng([spec.seed, rnd, _SAMPLING_STREAM])
        chosen = np.sort(rng.choice(spec.clients, size=k, replace=False))
        return [self._clients[i] for i in chosen]

    def _checkpoint(self, params: npt.NDArray[np.float32], rnd: int) -> Checkpoint:
        return Checkpoint(params=params, model_id=self.spec.model_id, round=rnd, run=self.spec.name)


def _client_seed(seed: int, rnd: int, client_id: int) -> int:
    return int(
        np.random.SeedSequence([seed, rnd, client_id, _TRAINING_STREAM]).generate_state(1)[0]
    )


def _checkpoint_dir(spec: RunSpec) -> Path | None:
    return resolve_storage(spec.storage) if spec.storage is not None else None


def check_spec(spec: RunSpec) -> int:
    """Raise ``ValueError`` now if the run cannot start or could not finish; else the
    dataset's number of classes (for :func:`check_run_attacks` on runs that share the setup).

    Checks, before anything is written (``velocity.engine.sweep.check_setups`` calls it for
    each distinct setup, ``velocity run`` for its one run):

    * the memory the dataset and the training would need (estimated, and compared
      with ``MemAvailable`` in /proc/meminfo) before any of it is allocated;
    * the checkpoint storage: a directory that can be created and written;
    * the dataset, the model, the partition, and the strategy's client
      precondition (e.g. Krum n >= 2f+3) against the clients sampled per round;
    * the attacks against the loaded dataset (class ids below its classes) and
      the Byzantine clients they need against the clients (the Rust core's rule).
    """
    data = estimate_dataset_bytes(spec.dataset, spec.dataset_params)
    if data is not None:
        _check_memory(data[0], data[1])
    if spec.storage is not None:
        check_writable_location(resolve_storage(spec.storage), "storage")
    try:
        server = VelocityServer.from_spec(spec)
    except MemoryError:
        raise ValueError(
            f"does not fit in memory: loading {spec.dataset} for {spec.clients} clients "
            f"ran out ({_available_text()})"
        ) from None
    dataset = server.dataset
    train_bytes, what = estimate_training_bytes(
        server.model,
        clients=spec.clients_per_round,
        batch_size=spec.batch_size,
        train_samples=int(dataset.y_train.size),
        test_samples=int(dataset.y_test.size),
    )
    # A round gathers its clients' rows, makes them float32 and stacks them: at most the
    # k largest clients. The test features are float32 once.
    k = spec.clients_per_round
    largest = sum(sorted((c.y.size for c in server._clients), reverse=True)[:k])
    gathered = largest * dataset.num_features * (dataset.x_train.itemsize + 2 * 4)
    stored = dataset.x_train.nbytes + dataset.x_test.nbytes
    if server._test_features is not dataset.x_test:
        stored += server._test_features.nbytes
    _check_memory(train_bytes + stored + gathered, what)
    check_run_attacks(spec, dataset.num_classes)
    return int(dataset.num_classes)


def check_run_attacks(spec: RunSpec, num_classes: int) -> None:
    """Raise ``ValueError`` if the run's attacks cannot act in its setup: a window that
    never opens, more Byzantine clients than clients, class ids ≥ ``num_classes``."""
    check_attacks(spec)
    for i, attack in enumerate(spec.attacks):
        check_class_ids(attack, num_classes, where=f"attacks[{i}] ({attack.label()})")
    orchestrator = _core.Orchestrator(
        spec.strategy.to_core(), [(a.type, a.params) for a in spec.attacks], spec.clients, spec.seed
    )
    _check_mimic_targets(spec, len(orchestrator.byzantine_clients))


def _check_mimic_targets(spec: RunSpec, byzantine: int) -> None:
    """Mimic's ``target`` indexes a round's honest rows: refuse one that a round can lack
    (every Byzantine client sampled leaves ``clients_per_round − byzantine`` of them)."""
    k = spec.clients_per_round
    fewest = max(k - byzantine, 0)
    for i, attack in enumerate(spec.attacks):
        target = attack.params.get("target") if attack.type == "mimic" else None
        if target is not None and target >= fewest:
            allowed = f"None or an int < {fewest}" if fewest else "None"
            raise ValueError(
                f"attacks[{i}] ({attack.label()}): invalid mimic.target: got {target}; allowed: "
                f"{allowed}, the fewest honest clients a round can have ({k} per round − "
                f"{byzantine} Byzantine)"
            )


def _check_memory(needed: int, what: str) -> None:
    available = available_memory()
    if available is not None and needed > available:
        raise ValueError(
            f"needs ~{format_bytes(needed)} of memory ({what}), {_available_text(available)}; "
            "use a smaller dataset, model or number of clients"
        )


def _available_text(available: int | None = None) -> str:
    available = available_memory() if available is None else available
    if available is None:
        return "available memory unknown"
    return f"{format_bytes(available)} available (MemAvailable in /proc/meminfo)"


def run_one(
    spec: RunSpec,
    run_dir: Path,
    *,
    num_threads: int | None = 1,
    on_round: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run ``spec`` and write its files into ``run_dir`` (see docs/files.md).

    Returns the summary. A run that diverges is recorded as ``status: diverged`` and
    one that fails (bad setup) as ``status: failed``, each with its error rather than
    raised; only an unwritable
    ``run_dir`` raises (``OSError``). Without a ``storage`` in the spec, the final
    model goes to ``run_dir/checkpoint/``. Each JSON/CSV file is rewritten
    atomically, so a reader (status, MCP) never sees half a file. While the run
    goes, ``rounds.csv``, ``timings.csv`` and ``progress.json`` are rewritten at
    most every :data:`PROGRESS_INTERVAL_S` (a replacing write costs ~1.5 ms on
    ext4, more than a small model's round) and once more at the end, complete.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC)
    wall_start = time.perf_counter()
    files.write_config(run_dir, spec)
    files.write_progress(run_dir, Progress(state="running", round=0, rounds=spec.rounds))
    records: list[RoundRecord] = []
    written = {"rounds": 0, "at": -math.inf}

    def write_rounds() -> None:
        files.write_rounds(run_dir, (r.row() for r in records))
        files.write_timings(run_dir, (r.timing_row() for r in records))
        files.write_progress(
            run_dir, Progress(state="running", round=len(records), rounds=spec.rounds)
        )
        written.update(rounds=len(records), at=time.perf_counter())

    def record_round(record: RoundRecord) -> None:
        records.append(record)
        if time.perf_counter() - written["at"] >= PROGRESS_INTERVAL_S:
            write_rounds()
        if on_round is not None:
            on_round(record.round, spec.rounds)

    checkpoints = _checkpoint_dir(spec) or run_dir / names.CHECKPOINT_DIR
    try:
        server = VelocityServer.from_spec(spec)
        result = server.run(
            num_threads=num_threads, on_round=record_round, checkpoint_dir=checkpoints
        )
    except ValueError as exc:
        result = RunResult(spec=spec, error=f"setup: {exc}")
    if written["rounds"] != len(records):
        write_rounds()
    summary = _summary(result, started_at, time.perf_counter() - wall_start)
    if result.params is not None:
        final = checkpoints / names.FINAL_CHECKPOINT
        summary.checkpoint = str(
            final.relative_to(run_dir) if final.is_relative_to(run_dir) else final.resolve()
        )
    written_summary = files.write_summary(run_dir, summary)
    files.write_progress(
        run_dir, Progress(state=summary.status, round=len(records), rounds=spec.rounds)
    )
    return written_summary


def _summary(result: RunResult, started_at: datetime, elapsed_s: float) -> Summary:
    spec, rounds = result.spec, result.rounds
    losses = [r.global_loss for r in rounds]
    accuracies = [r.accuracy for r in rounds]
    detection = None
    if rounds and rounds[0].detection is not None:
        detection = Detection(
            **{k: sum(int(r.detection[k]) for r in rounds if r.detection) for k in DETECTION_KEYS}
        )
    status: RunStatus = "diverged" if result.diverged else "failed" if result.error else "done"
    return Summary(
        name=spec.name,
        status=status,
        error=result.error,
        strategy=spec.strategy.label(),
        attack=spec.attack_label,
        seed=spec.seed,
        repeat=spec.repeat,
        rounds=spec.rounds,
        rounds_completed=len(rounds),
        final_loss=losses[-1] if losses else None,
        final_accuracy=accuracies[-1] if accuracies else None,
        mean_loss=float(np.mean(losses)) if losses else None,
        mean_accuracy=float(np.mean(accuracies)) if accuracies else None,
        best_accuracy=max(accuracies) if accuracies else None,
        elapsed_s=elapsed_s,
        time_s=TimeSplit(
            train=sum(r.train_s for r in rounds),
            aggregate=sum(r.aggregate_s for r in rounds),
            evaluate=sum(r.evaluate_s for r in rounds),
        ),
        byzantine_clients={str(k): v for k, v in sorted(result.byzantine_clients.items())},
        test_samples=result.test_samples,
        notes=result.notes,
        detection=detection,
        checkpoint=None,
        started_at=started_at.isoformat(timespec="seconds"),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


__all__ = [
    "DETECTION_KEYS",
    "ROUND_COLUMNS",
    "TIMING_COLUMNS",
    "DivergedError",
    "RoundRecord",
    "RunResult",
    "VelocityServer",
    "check_run_attacks",
    "check_spec",
    "run_one",
]
