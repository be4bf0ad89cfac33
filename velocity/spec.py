"""Run and sweep specifications: TOML files, JSON files and CLI flags all become ``list[RunSpec]``.

A :class:`RunSpec` fully determines one FL run (its seed included): the same spec
gives bit-identical results. A :class:`SweepSpec` is what an experiment file says —
``[shared]`` settings plus ``[[runs]]`` — and :meth:`SweepSpec.expand` turns it into
the RunSpecs to execute, ``repeats`` times each with one seed per repeat, so runs of
the same repeat share data partition, model init and Byzantine clients (a paired
comparison). :func:`matrix_spec` builds the same SweepSpec from flags: every
strategy × (no attack + each attack). Nothing downstream knows which one was used.

Experiment file (TOML; a ``.json`` file with the same structure works too)::

    [shared]
    dataset = "digits"
    model_id = "logreg"
    rounds = 20
    clients = 10
    seed = 42
    repeats = 1

    [[runs]]
    name = "krum_vs_noise"
    strategy = "Krum"
    params = { f = 1 }
    [[runs.attacks]]
    type = "gaussian_noise"
    params = { sigma = 10.0, fraction = 0.1 }
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from velocity.attacks import AttackSpec, parse_attack
from velocity.errors import SpecError, format_validation_error
from velocity.strategy import Strategy, parse_strategy
from velocity.verdict import RankBy

StrategyField = Annotated[
    Any,
    BeforeValidator(parse_strategy),
    PlainSerializer(lambda s: s.to_dict(), return_type=dict),
]
AttackField = Annotated[AttackSpec, BeforeValidator(parse_attack)]


class Settings(BaseModel):
    """Everything about a run except its name, strategy and attacks (the TOML ``[shared]``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    dataset: str = Field("digits", description="dataset id: digits, synthetic, or a HF id")
    dataset_params: dict[str, Any] = Field(
        default_factory=dict, description="dataset options, e.g. n_samples for synthetic"
    )
    model_id: str = Field("logreg", description="model id: logreg, mlp, demo/mnist-cnn")
    model_params: dict[str, Any] = Field(
        default_factory=dict, description="model options, e.g. hidden for mlp"
    )
    test_fraction: float = Field(0.2, gt=0, lt=1, description="held-out test share")
    rounds: int = Field(20, ge=1, le=100_000, description="FL rounds")
    clients: int = Field(
        10,
        ge=1,
        le=100_000,
        validation_alias=AliasChoices("clients", "min_clients"),
        description="number of clients",
    )
    fraction_fit: float = Field(
        1.0, gt=0, le=1, description="share of clients sampled each round, in (0, 1]"
    )
    partition: Literal["iid", "dirichlet"] = Field("iid", description="client data split")
    alpha: float = Field(0.5, gt=0, description="Dirichlet concentration (label skew)")
    local_epochs: int = Field(1, ge=1, le=1000, description="local epochs per round")
    batch_size: int = Field(32, ge=1, description="local minibatch size")
    lr: float = Field(0.1, gt=0, description="local SGD learning rate")
    seed: int = Field(42, ge=0, lt=2**63, description="seed: data split, init, clients")
    storage: str | None = Field(
        None, description="checkpoint location 'local://DIR'; None: the run's own directory"
    )
    checkpoint_every: int | None = Field(
        None, ge=1, description="also checkpoint every k rounds (final model always)"
    )


class RunSpec(Settings):
    """One fully resolved FL run; serialised as the run's ``config.json``."""

    name: str = Field(description="run name, unique in its sweep; a directory name")
    strategy: StrategyField = Field(description="aggregation strategy")
    attacks: list[AttackField] = Field(default_factory=list, description="attacks in the run")
    repeat: int = Field(0, ge=0, description="repeat index within its sweep cell")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.=+-]{0,150}", name):
            raise ValueError(
                f"run name {name!r} must be 1-151 characters of letters, digits and _.=+- "
                "(it names a directory)"
            )
        return name

    @property
    def attack_label(self) -> str:
        """``"none"`` or the attacks' inline forms joined by ``+``."""
        return "+".join(a.label() for a in self.attacks) or "none"

    @property
    def clients_per_round(self) -> int:
        """How many clients train each round: ``fraction_fit`` of them, rounded, at least one."""
        if self.fraction_fit >= 1.0:
            return self.clients
        return max(1, math.floor(self.fraction_fit * self.clients + 0.5))

    @property
    def cell(self) -> str:
        """The run's name without its repeat suffix: repeats of one cell share it."""
        return cell_of(self.name)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def cell_of(run_name: str) -> str:
    """A run name without its ``__r<k>`` repeat suffix: the name of its cell."""
    return re.sub(r"__r\d+$", "", run_name)


class RunEntry(BaseModel):
    """One ``[[runs]]`` table of an experiment file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    strategy: str | dict[str, Any]
    params: dict[str, Any] = Field(default_factory=dict)
    attacks: list[str | dict[str, Any]] = Field(default_factory=list)


class SharedSettings(Settings):
    """``[shared]``: run settings plus how the sweep executes.

    The execution fields (:data:`EXECUTION_FIELDS`) never reach a RunSpec: they
    do not change results, so a sweep can be resumed with other values.
    """

    repeats: int = Field(1, ge=1, le=1000, description="seeds per cell (mean ± std)")
    parallel: int | None = Field(None, ge=1, le=1024, description="runs executing at once")
    backend: Literal["local", "ray"] = Field(
        "local", description="where runs execute: local processes or a Ray cluster"
    )
    ray_address: str | None = Field(
        None, description="Ray cluster address (backend ray); unset: a local Ray instance"
    )
    ray_gpus: float = Field(0.0, ge=0, description="GPUs each run reserves on Ray (fractions ok)")
    rank_by: RankBy = Field(
        "accuracy",
        description="what the verdict ranks by: final test accuracy (default) or final test loss",
    )


#: ``[shared]`` fields about how a sweep executes or is judged rather than what a run
#: computes: they never reach a RunSpec, so a resume may change them.
EXECUTION_FIELDS = frozenset(
    {"repeats", "parallel", "backend", "ray_address", "ray_gpus", "rank_by"}
)


class SweepSpec(BaseModel):
    """An experiment: shared settings and the runs; :meth:`expand` gives the RunSpecs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shared: SharedSettings = Field(default_factory=SharedSettings)  # type: ignore[arg-type]
    runs: list[RunEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_unique(self) -> SweepSpec:
        self.expand()  # validates every run (strategy, attacks, names) before any work
        return self

    def expand(self) -> list[RunSpec]:
        """The runs to execute: each entry × each repeat, with the repeat's seed."""
        settings = self.shared.model_dump(exclude={*EXECUTION_FIELDS, "seed"})
        specs: list[RunSpec] = []
        seen: set[str] = set()
        for index, entry in enumerate(self.runs):
            strategy = _parse_run_strategy(entry, index)
            attacks = [parse_attack(a) for a in entry.attacks]
            base = entry.name or default_run_name(strategy, attacks)
            if base in seen:
                raise ValueError(f"runs[{index}]: duplicate run name {base!r}")
            seen.add(base)
            for repeat in range(self.shared.repeats):
                name = f"{base}__r{repeat}" if self.shared.repeats > 1 else base
                specs.append(
                    RunSpec(
                        **settings,
                        seed=repeat_seed(self.shared.seed, repeat),
                        name=name,
                        strategy=strategy,
                        attacks=attacks,
                        repeat=repeat,
                    )
                )
        return specs


def _parse_run_strategy(entry: RunEntry, index: int) -> Strategy:
    try:
        if isinstance(entry.strategy, str) and entry.params:
            return parse_strategy({"type": entry.strategy, **entry.params})
        if entry.params:
            raise ValueError("give parameters either in 'strategy' or in 'params', not both")
        return parse_strategy(entry.strategy)
    except ValueError as exc:
        raise ValueError(f"runs[{index}].strategy: {exc}") from None


def repeat_seed(seed: int, repeat: int) -> int:
    """The seed of one repeat: every run of that repeat uses it (paired comparison)."""
    return seed + repeat


def default_run_name(strategy: Strategy, attacks: Sequence[AttackSpec]) -> str:
    """``FedAvg``, ``Krum-f=2__gaussian_noise-sigma=0.5``: readable, filesystem-safe."""
    parts = [strategy.label()] + [a.label() for a in attacks]
    return "__".join(re.sub(r"[^A-Za-z0-9_.=+-]", "-", p) for p in parts)


def matrix_spec(
    strategies: Iterable[str],
    attacks: Iterable[str] = (),
    **shared: Any,
) -> SweepSpec:
    """The flags form: every strategy × (no attack + each attack)."""
    strategy_list = [s for s in strategies if s.strip()]
    if not strategy_list:
        raise SpecError("give at least one strategy, e.g. --strategies FedAvg,FedMedian")
    attack_list = [a for a in attacks if a.strip()]
    runs = [
        {"strategy": s, "attacks": [a] if a else []}
        for s in strategy_list
        for a in [None, *attack_list]
    ]
    return build_sweep({"shared": {k: v for k, v in shared.items() if v is not None}, "runs": runs})


def build_sweep(data: dict[str, Any]) -> SweepSpec:
    """Validate an experiment mapping; every problem becomes one :class:`SpecError` line."""
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc)) from None
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def load_experiment(path: str | Path) -> SweepSpec:
    """Read a ``.toml`` (or ``.json``) experiment file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"experiment file not found: {path}") from None
    except OSError as exc:
        raise SpecError(f"cannot read experiment file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(f"{path}: malformed {path.suffix.lstrip('.') or 'TOML'}: {exc}") from None
    return build_sweep(data)
