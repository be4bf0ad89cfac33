"""Run and sweep specifications: TOML files, JSON files and CLI flags all become ``list[RunSpec]``.

A :class:`RunSpec` fully determines one FL run (its seed included): the same spec
gives bit-identical results. A :class:`SweepSpec` is what an experiment file says —
``[shared]`` settings plus ``[[runs]]`` — and :meth:`SweepSpec.expand` turns it into
the RunSpecs to execute, ``repeats`` times each with one seed per repeat, so runs of
the same repeat share data partition, model init and Byzantine clients (a paired
comparison). :func:`matrix_spec` builds the same SweepSpec from flags: every
strategy × (no attack + each attack). Nothing downstream knows which one was used.

``byzantine`` (``[shared]``, ``--byzantine``) is one Byzantine count for every run:
attacks without their own ``fraction``/``count`` take it, and every rule's tolerance
parameter left open is set to the expected Byzantine clients per round
(:mod:`velocity.byzantine`). The word ``adaptive`` in an attack list stands for every
adaptive attack: one matrix column each, or in a ``[[runs]]`` table one run each.

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

from velocity import _core
from velocity._inline import did_you_mean, short_repr, shown
from velocity.attacks import (
    AttackSpec,
    adaptive_variants,
    attack_schemas,
    expand_adaptive,
    gives_byzantine_share,
    is_word,
    parse_attack,
)
from velocity.byzantine import check_against_clients, check_byzantine, per_round, per_round_formula
from velocity.catalog import known_num_classes
from velocity.errors import SpecError, format_validation_error
from velocity.strategy import Strategy, parse_strategy

#: The attack label of a run without attack (its condition in every report).
NO_ATTACK = "none"
#: What a verdict can rank strategies by.
RankBy = Literal["accuracy", "loss"]
RANK_BY: tuple[RankBy, ...] = ("accuracy", "loss")
#: How the training data is split among clients (``Settings.partition``).
Partition = Literal["iid", "dirichlet", "shards"]
PARTITIONS: tuple[Partition, ...] = ("iid", "dirichlet", "shards")
#: Where torch models train (``Settings.device``).
Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[Device, ...] = ("auto", "cpu", "cuda")

#: How a repeat's run name ends: ``<cell>__r<k>``.
REPEAT_SUFFIX = re.compile(r"__r\d+$")

#: How deeply an experiment may nest tables and lists (velocity's own use 4).
MAX_DEPTH = 32

#: The most repeats per cell (a RunSpec's repeat index is below it).
MAX_REPEATS = 1000
#: ``max_repeats`` of a sweep run until decided, unless given.
DEFAULT_MAX_REPEATS = 10

#: The largest experiment file read.
MAX_EXPERIMENT_BYTES = 16 * 1024 * 1024


def _no_bool(value: Any) -> Any:
    """Booleans are not numbers: ``rounds = true`` is refused, not one round."""
    if isinstance(value, bool):
        raise ValueError(f"a boolean is not a number (got {str(value).lower()})")
    return value


Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool)]


def _one_of(*allowed: str) -> BeforeValidator:
    """A name out of ``allowed``, refused with the close match (``dirchlet``)."""

    def check(value: Any) -> Any:
        if isinstance(value, str) and value not in allowed:
            raise ValueError(
                f"{short_repr(value)} is not one of {', '.join(allowed)}"
                f"{did_you_mean(value, allowed)}"
            )
        return value

    return BeforeValidator(check)


StrategyField = Annotated[
    Any,
    BeforeValidator(parse_strategy),
    PlainSerializer(lambda s: s.to_dict(), return_type=dict),
]
AttackField = Annotated[AttackSpec, BeforeValidator(parse_attack)]


class Settings(BaseModel):
    """Everything about a run except its name, strategy and attacks (the TOML ``[shared]``)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    dataset: str = Field("digits", description="dataset id: digits, synthetic, or a HF id")
    dataset_params: dict[str, Any] = Field(
        default_factory=dict, description="dataset options, e.g. n_samples for synthetic"
    )
    model_id: str = Field(
        "logreg",
        validation_alias=AliasChoices("model_id", "model"),
        description="model id: logreg, mlp, cnn, or your own torch model module:callable",
    )
    model_params: dict[str, Any] = Field(
        default_factory=dict, description="model options, e.g. hidden for mlp"
    )
    test_fraction: Float = Field(0.2, gt=0, lt=1, description="held-out test share")
    rounds: Int = Field(
        20,
        ge=1,
        le=100_000,
        validation_alias=AliasChoices("rounds", "num_rounds"),
        description="FL rounds",
    )
    clients: Int = Field(
        10,
        ge=1,
        le=100_000,
        validation_alias=AliasChoices("clients", "min_clients", "num_clients"),
        description="number of clients",
    )
    fraction_fit: Float = Field(
        1.0, gt=0, le=1, description="share of clients sampled each round, in (0, 1]"
    )
    partition: Annotated[Partition, _one_of(*PARTITIONS)] = Field(
        "iid",
        description="client data split: iid, dirichlet (label skew, alpha) or shards "
        "(sorted by label, shards_per_client shards each; McMahan et al. 2017)",
    )
    alpha: Float = Field(
        0.5, gt=0, le=10_000, description="Dirichlet concentration (label skew), in (0, 10000]"
    )
    shards_per_client: Int = Field(
        2, ge=1, le=10_000, description="label-sorted shards per client (partition = 'shards')"
    )
    samples_per_client: Int | None = Field(
        None,
        ge=1,
        le=100_000_000,
        description="training samples each client holds at most; None: the whole split",
    )
    local_epochs: Int = Field(1, ge=1, le=1000, description="local epochs per round")
    local_steps: Int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="local minibatch steps per round instead of local_epochs (1: distributed "
        "SGD, as in Baruch et al. 2019); None: local_epochs",
    )
    momentum: Float = Field(
        0.0,
        ge=0,
        lt=1,
        description="client-side SGD momentum, in [0, 1) (Karimireddy et al. 2021); 0: plain SGD",
    )
    device: Annotated[Device, _one_of(*DEVICES)] = Field(
        "auto",
        description="where torch models train: auto (a GPU when torch sees one), cpu or cuda; "
        "numpy models always run on the CPU",
    )
    batch_size: Int = Field(32, ge=1, le=1_000_000, description="local minibatch size")
    lr: Float = Field(
        0.1,
        gt=0,
        le=1e38,
        description="local SGD learning rate, in (0, 1e38] (training computes in float32)",
    )
    seed: Int = Field(42, ge=0, lt=2**63, description="seed: data split, init, clients")
    storage: str | None = Field(
        None, description="checkpoint location 'local://DIR'; None: the run's own directory"
    )
    checkpoint_every: Int | None = Field(
        None, ge=1, le=100_000, description="also checkpoint every k rounds (final model always)"
    )
    byzantine: Annotated[int | float | None, BeforeValidator(check_byzantine)] = Field(
        None,
        description="Byzantine clients: a fraction in (0, 1) or a count >= 1 of all clients; "
        "sets every attack's share and every rule's tolerance (f per round) not given "
        "explicitly; None: each attack's own, the rules' defaults",
    )

    @model_validator(mode="after")
    def _byzantine_fits(self) -> Settings:
        if self.byzantine is not None:
            check_against_clients(self.byzantine, self.clients)
        return self

    @property
    def clients_per_round(self) -> int:
        """How many clients train each round: ``fraction_fit`` of them, rounded, at least one."""
        if self.fraction_fit >= 1.0:
            return self.clients
        return max(1, math.floor(self.fraction_fit * self.clients + 0.5))


class RunSpec(Settings):
    """One fully resolved FL run; serialised as the run's ``config.json``."""

    name: str = Field(description="run name, unique in its sweep; a directory name")
    strategy: StrategyField = Field(description="aggregation strategy")
    attacks: list[AttackField] = Field(default_factory=list, description="attacks in the run")
    repeat: Int = Field(0, ge=0, le=1000, description="repeat index within its sweep cell")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        check_run_name(name)
        return name

    @model_validator(mode="before")
    @classmethod
    def _fill_byzantine(cls, data: Any) -> Any:
        """A strategy or attacks given as text or mappings with ``byzantine`` set
        (``VelocityServer(..., byzantine=0.2)``) get its share and tolerance, as in a sweep.

        Those :meth:`SweepSpec.expand` resolved are instances and stay as they are; a
        stored ``config.json`` spells every parameter out, so reading it back changes nothing.
        """
        if not isinstance(data, dict) or data.get("byzantine") is None or "strategy" not in data:
            return data
        try:
            settings = Settings.model_validate(
                {k: v for k, v in data.items() if k not in _RUN_FIELDS}
            )
        except ValidationError:
            return data  # the fields' own validation reports it
        return {
            **data,
            "strategy": parse_run_strategy(data["strategy"], settings),
            "attacks": parse_run_attacks(data.get("attacks") or [], settings.byzantine),
        }

    @property
    def attack_label(self) -> str:
        """``"none"`` or the attacks' inline forms joined by ``+``."""
        return "+".join(a.label() for a in self.attacks) or NO_ATTACK

    @property
    def cell(self) -> str:
        """The run's name without its repeat suffix: repeats of one cell share it."""
        return cell_of(self.name)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


#: The RunSpec fields that are not Settings.
_RUN_FIELDS = frozenset({"name", "strategy", "attacks", "repeat"})


def parse_run_strategy(spec: Any, settings: Settings) -> Strategy:
    """:func:`parse_strategy`, with each tolerance parameter ``spec`` leaves open set
    from ``settings.byzantine``: f = the expected Byzantine clients per round.

    When that f breaks the rule (a range, or a client precondition such as Krum's
    n ≥ 2f+3 against the clients per round), the message says where f came from.
    """
    byzantine = settings.byzantine
    plain = parse_strategy(spec)
    if byzantine is None:
        return plain
    n = settings.clients_per_round
    f = per_round(byzantine, settings.clients, n)
    try:
        strategy = parse_strategy(spec, byzantine=f, clients_per_round=n)
        if strategy != plain:
            strategy.to_core().check_clients(n)
    except ValueError as exc:
        raise ValueError(
            f"{exc}; that f = {f} comes from byzantine = {byzantine} (--byzantine): "
            f"{per_round_formula(byzantine, settings.clients, n)}; give the rule's tolerance "
            "explicitly, a smaller byzantine, or more clients per round"
        ) from None
    return strategy


def parse_run_attacks(attacks: Sequence[Any], byzantine: int | float | None) -> list[AttackSpec]:
    """The attacks of one run, those without their own share given ``byzantine``'s.

    Several attacks act together in a run; one Byzantine count cannot say how to share
    it among them, so with ``byzantine`` set each must give its own fraction or count.
    """
    parsed: list[AttackSpec] = []
    open_: list[str] = []
    for i, attack in enumerate(attacks):
        try:
            parsed.append(parse_attack(attack, byzantine=byzantine))
            if not gives_byzantine_share(attack):
                open_.append(parsed[-1].type)
        except ValueError as exc:
            raise ValueError(f"attacks[{i}]: {exc}") from None
    if byzantine is not None and len(parsed) > 1 and open_:
        raise ValueError(
            f"attacks: byzantine = {byzantine} is one Byzantine share, but {len(parsed)} "
            f"attacks act together here and {', '.join(open_)} give no fraction or count of "
            f"their own: give each attack its own (e.g. {parsed[0].type}:fraction=0.1)"
        )
    return parsed


def cell_of(run_name: str) -> str:
    """A run name without its ``__r<k>`` repeat suffix: the name of its cell."""
    return REPEAT_SUFFIX.sub("", run_name)


def check_run_name(name: str) -> None:
    """Refuse a name that cannot be a directory name.

    That it may not also be one of a sweep directory's own files is checked where the
    sweep directory is known (``velocity.sweepdir.names.check_run_names``, before a
    sweep writes anything).
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.=+-]{0,150}", name):
        raise ValueError(
            f"run name {short_repr(name)} must be 1-151 characters of letters, digits and "
            "_.=+- starting with a letter or digit (it names a directory)"
        )


def check_entry_name(name: str) -> None:
    """A ``[[runs]]`` name: a run name that does not look like another cell's repeat."""
    check_run_name(name)
    suffix = REPEAT_SUFFIX.search(name)
    if suffix:
        raise ValueError(
            f"run name {name!r} ends like a repeat ({suffix.group()}): "
            f"its runs would be taken for repeats of {cell_of(name)!r}; rename it "
            f"(e.g. {cell_of(name) + '_r' + name.rsplit('__r', 1)[1]!r})"
        )


def check_attacks(spec: RunSpec) -> None:
    """Refuse attacks that could never act as written in this run.

    Part of building a sweep (:meth:`SweepSpec.expand`) and of the pre-run checks
    (``velocity.sim.server.check_spec``), not of reading a RunSpec back: a stored
    ``config.json`` stays readable whatever later versions refuse.

    * an attack window that never opens (``start_round`` after the last round);
    * more Byzantine clients in total than clients (the Rust core's count rule);
    * a ``fraction`` of the clients that rounds to no client at all;
    * a class-id parameter (e.g. a label attack's source/target) outside the
      dataset's classes, where they are known without loading it.
    """
    attacks = spec.attacks
    if not attacks:
        return
    schemas = attack_schemas()
    for i, attack in enumerate(attacks):
        where = f"attacks[{i}] ({attack.label()})"
        start, end = attack.params["start_round"], attack.params["end_round"]
        if start > spec.rounds:
            raise ValueError(
                f"{where}: {attack.type}.start_round={start} is after the last round "
                f"(rounds = {spec.rounds}): the attack would never act; give start_round "
                f"<= {spec.rounds} or more rounds"
            )
        if end is not None and end < start:  # the Rust schema refuses it too
            raise ValueError(f"{where}: {attack.type}.end_round={end} < start_round={start}")
        count, fraction = attack.params["count"], attack.params["fraction"]
        if count is None and math.floor(fraction * spec.clients + 0.5) < 1:
            raise ValueError(
                f"{where}: {attack.type}.fraction={fraction} of {spec.clients} clients is "
                f"{fraction * spec.clients:.3g} clients, which rounds to none; give "
                f"count=1 or a fraction >= {0.5 / spec.clients:.3g}"
            )
        classes = known_num_classes(spec.dataset, spec.dataset_params)
        check_class_ids(attack, classes, schemas, where=where)
    _core.byzantine_counts([(a.type, a.params) for a in attacks], spec.clients)


def check_class_ids(
    attack: AttackSpec, num_classes: int | None, schemas: Any = None, *, where: str = ""
) -> None:
    """Refuse a class-id parameter of ``attack`` that is not below ``num_classes``."""
    if num_classes is None:
        return
    params = (schemas or attack_schemas())[attack.type]["params"]
    for key, value in attack.params.items():
        if params[key].get("class_id") and value is not None and value >= num_classes:
            prefix = f"{where}: " if where else ""
            raise ValueError(
                f"{prefix}{attack.type}.{key}={value} is not a class of the dataset: "
                f"allowed a class in [0, {num_classes - 1}] ({num_classes} classes)"
            )


class RunEntry(BaseModel):
    """One ``[[runs]]`` table of an experiment file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    strategy: str | dict[str, Any]
    params: dict[str, Any] = Field(default_factory=dict)
    attacks: list[str | dict[str, Any]] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _entry_name(cls, name: str | None) -> str | None:
        if name is not None:
            check_entry_name(name)
        return name


class SharedSettings(Settings):
    """``[shared]``: run settings plus how the sweep executes.

    The execution fields (:data:`EXECUTION_FIELDS`) never reach a RunSpec: they
    do not change results, so a sweep can be resumed with other values.
    """

    repeats: Int = Field(1, ge=1, le=1000, description="seeds per cell (mean ± std)")
    parallel: Int | None = Field(None, ge=1, le=1024, description="runs executing at once")
    backend: Annotated[Literal["local", "ray"], _one_of("local", "ray")] = Field(
        "local", description="where runs execute: local processes or a Ray cluster"
    )
    ray_address: str | None = Field(
        None, description="Ray cluster address (backend ray); unset: a local Ray instance"
    )
    ray_gpus: Float = Field(
        0.0, ge=0, le=1024, description="GPUs each run reserves on Ray (fractions ok)"
    )
    rank_by: Annotated[RankBy, _one_of(*RANK_BY)] = Field(
        "accuracy",
        description="what the verdict ranks by: final test accuracy (default) or final test loss",
    )
    until: Annotated[Literal["decided"], _one_of("decided")] | None = Field(
        None,
        description="decided: one repeat of every cell, then repeats only for the strategies "
        "still in the running, until the recommendation is decided (or max_repeats, or "
        "budget); unset: exactly `repeats` repeats",
    )
    max_repeats: Int = Field(
        DEFAULT_MAX_REPEATS,
        ge=1,
        le=MAX_REPEATS,
        description=f"until decided: at most this many repeats per cell, in [1, {MAX_REPEATS}]",
    )
    budget: Int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="until decided: at most this many runs in all; unset: no limit",
    )

    @model_validator(mode="after")
    def _until_chooses_repeats(self) -> SharedSettings:
        given = self.model_fields_set
        if self.until == "decided" and "repeats" in given and self.repeats != 1:
            raise ValueError(
                f'repeats = {self.repeats} and until = "decided" conflict: until decided '
                "chooses the repeats; give max_repeats instead"
            )
        if self.until is None:
            if self.max_repeats != DEFAULT_MAX_REPEATS:
                raise ValueError('max_repeats needs until = "decided" (it bounds its repeats)')
            if self.budget is not None:
                raise ValueError('budget needs until = "decided" (it bounds its runs)')
        return self


#: ``[shared]`` fields about how a sweep executes or is judged rather than what a run
#: computes: they never reach a RunSpec, so a resume may change them.
EXECUTION_FIELDS = frozenset(
    {
        "repeats",
        "parallel",
        "backend",
        "ray_address",
        "ray_gpus",
        "rank_by",
        "until",
        "max_repeats",
        "budget",
    }
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
        seen: dict[str, int] = {}
        for index, entry, member, attack_items in self._entries():
            try:
                strategy = parse_run_strategy(_entry_strategy(entry), self.shared)
            except ValueError as exc:
                raise ValueError(f"runs[{index}].strategy: {exc}") from None
            try:
                attacks = parse_run_attacks(attack_items, self.shared.byzantine)
            except ValueError as exc:
                raise ValueError(f"runs[{index}].{exc}") from None
            base = entry.name or default_run_name(strategy, attacks)
            if entry.name and member is not None:
                base = f"{entry.name}__{member}"
            if base.lower() in seen:
                raise ValueError(
                    f"runs[{index}]: duplicate run name {base!r} (also runs[{seen[base.lower()]}]);"
                    " give each [[runs]] table its own name"
                )
            seen[base.lower()] = index
            for repeat in range(self.shared.repeats):
                name = f"{base}__r{repeat}" if self.shared.repeats > 1 else base
                try:
                    spec = RunSpec(
                        **settings,
                        seed=repeat_seed(self.shared.seed, repeat),
                        name=name,
                        strategy=strategy,
                        attacks=attacks,
                        repeat=repeat,
                    )
                    if repeat == 0:  # the attacks act alike in every repeat
                        check_attacks(spec)
                except ValidationError as exc:
                    raise ValueError(
                        f"runs[{index}] ({base}): {format_validation_error(exc)}"
                    ) from None
                except ValueError as exc:
                    raise ValueError(f"runs[{index}] ({base}): {exc}") from None
                specs.append(spec)
        return specs

    def _entries(self) -> list[tuple[int, RunEntry, str | None, list[Any]]]:
        """Each ``[[runs]]`` entry's runs: (index, entry, the adaptive attack that stands
        for the word ``adaptive`` or None, the run's attacks)."""
        entries = []
        for index, entry in enumerate(self.runs):
            try:
                variants = adaptive_variants(entry.attacks)
            except ValueError as exc:
                raise ValueError(f"runs[{index}].attacks: {exc}") from None
            entries += [(index, entry, member, items) for member, items in variants]
        return entries


def _entry_strategy(entry: RunEntry) -> str | dict[str, Any]:
    """A ``[[runs]]`` table's strategy with its ``params`` (not yet parsed)."""
    if isinstance(entry.strategy, str) and entry.params:
        return {"type": entry.strategy, **entry.params}
    if entry.params:
        raise ValueError("give parameters either in 'strategy' or in 'params', not both")
    return entry.strategy


def repeat_seed(seed: int, repeat: int) -> int:
    """The seed of one repeat: every run of that repeat uses it (paired comparison)."""
    return seed + repeat


def repeat_run(spec: RunSpec, repeat: int) -> RunSpec:
    """Run ``spec``'s cell in repeat ``repeat``: that repeat's seed, named ``<cell>__r<repeat>``."""
    data = spec.to_json()
    data.update(
        name=f"{spec.cell}__r{repeat}", repeat=repeat, seed=repeat_seed(base_seed(spec), repeat)
    )
    return RunSpec.model_validate(data)


def base_seed(spec: RunSpec) -> int:
    """The sweep's seed of a run: :func:`repeat_seed` undone (``repeat_seed(base_seed(s),
    s.repeat) == s.seed``)."""
    return spec.seed - spec.repeat


def default_run_name(strategy: Strategy, attacks: Sequence[AttackSpec]) -> str:
    """``FedAvg``, ``Krum-f=2__gaussian_noise-sigma=0.5``: readable, filesystem-safe."""
    parts = [strategy.label()] + [a.label() for a in attacks]
    return "__".join(re.sub(r"[^A-Za-z0-9_.=+-]", "-", p) for p in parts)


def matrix_spec(
    strategies: Iterable[str],
    attacks: Iterable[str] = (),
    **shared: Any,
) -> SweepSpec:
    """The flags form: every strategy × (no attack + each attack).

    ``none`` among the attacks is the no-attack column (always there); ``adaptive``
    is one column per adaptive attack.
    """
    strategy_list = [s for s in strategies if s.strip()]
    if not strategy_list:
        raise SpecError("give at least one strategy, e.g. --strategies FedAvg,FedMedian")
    try:
        attack_list = expand_adaptive(
            [a for a in attacks if a.strip() and not is_word(a, NO_ATTACK)]
        )
    except ValueError as exc:
        raise SpecError(f"attacks: {exc}") from None
    runs = [
        {"strategy": s, "attacks": [a] if a else []}
        for s in strategy_list
        for a in [None, *attack_list]
    ]
    return build_sweep({"shared": {k: v for k, v in shared.items() if v is not None}, "runs": runs})


def split_items(values: Sequence[str] | None) -> list[str]:
    """Split repeated, comma-separated list flags into items.

    A comma starts a new item unless the text after it is ``key=value`` (an
    ``=`` before any ``:``): that continues the parameters of the item before it.

    >>> split_items(["Krum:f=2,FedAvg", "gaussian_noise:sigma=0.5,fraction=0.3,zero"])
    ['Krum:f=2', 'FedAvg', 'gaussian_noise:sigma=0.5,fraction=0.3', 'zero']
    """
    items: list[str] = []
    for value in values or []:
        current: list[str] = []
        for piece in (p.strip() for p in value.split(",")):
            if not piece:
                continue
            colon = piece.find(":")
            is_param = "=" in piece and (colon < 0 or piece.index("=") < colon)
            if not is_param:
                current.append(piece)
            elif current and ":" in current[-1]:
                current[-1] += "," + piece
            else:
                raise SpecError(
                    f"parameter {piece!r} in {value!r} does not follow a name; "
                    "write it as Name:key=value,key=value"
                )
        items += current
    return items


def build_sweep(data: dict[str, Any]) -> SweepSpec:
    """Validate an experiment mapping; every problem becomes one :class:`SpecError` line.

    Unknown keys are named with a close match (``shared.round``: did you mean
    ``rounds``?), including the names other tools use (Flower's ``num_rounds`` is an
    alias; ``min_fit_clients`` is suggested as ``clients``).
    """
    try:
        check_depth(data)
        check_keys(data)
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc)) from None
    except RecursionError:
        raise SpecError(f"the experiment nests more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise SpecError(str(exc)) from None


def check_depth(data: Any, limit: int = MAX_DEPTH) -> None:
    """Refuse tables and lists nested more than ``limit`` deep (no recursion used)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > limit:
            raise ValueError(
                f"{where or 'the experiment'} nests more than {limit} levels deep; "
                "experiments need at most a handful"
            )
        if isinstance(value, dict):
            stack.extend(
                (v, f"{where}.{k}" if where else str(k), depth + 1) for k, v in value.items()
            )
        elif isinstance(value, list | tuple):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))


#: Names other tools (Flower, ByzFL, common scripts) use for a setting: suggested,
#: not accepted. Accepted aliases are the fields' ``validation_alias`` instead.
KEY_HINTS = {
    "min_fit_clients": "clients",
    "min_available_clients": "clients",
    "min_evaluate_clients": "clients",
    "nb_honest_clients": "clients",
    "n_clients": "clients",
    "learning_rate": "lr",
    "epochs": "local_epochs",
    "num_epochs": "local_epochs",
    "batch": "batch_size",
    "dirichlet_alpha": "alpha",
    "non_iid_alpha": "alpha",
    "workers": "parallel",
    "num_workers": "parallel",
    "jobs": "parallel",
    "seeds": "repeats",
    "num_repeats": "repeats",
    "dataset_name": "dataset",
    "model_name": "model_id",
    "attack": "attacks",
    "strategies": "strategy",
    "aggregator": "strategy",
    "strategy_params": "params",
    "run": "runs",
    "experiments": "runs",
    "settings": "shared",
    "config": "shared",
}


def _accepted_keys(model: type[BaseModel]) -> dict[str, str]:
    """Every key ``model`` accepts (field names and validation aliases) -> the field."""
    keys: dict[str, str] = {}
    for name, field in model.model_fields.items():
        keys[name] = name
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            keys.update({str(choice): name for choice in alias.choices})
        elif isinstance(alias, str):
            keys[alias] = name
    return keys


def check_keys(data: Any) -> None:
    """Refuse unknown keys at the top, in ``shared`` and in each run, with a close match;
    a setting given twice (``rounds`` and its alias ``num_rounds``) is refused too."""
    if not isinstance(data, dict):
        return
    _check_table("", data, _accepted_keys(SweepSpec), other=None)
    shared = data.get("shared")
    if isinstance(shared, dict):
        _check_table("shared", shared, _accepted_keys(SharedSettings), other=("runs", RunEntry))
    runs = data.get("runs")
    if isinstance(runs, list):
        for i, run in enumerate(runs):
            if isinstance(run, dict):
                _check_table(
                    f"runs[{i}]", run, _accepted_keys(RunEntry), other=("shared", SharedSettings)
                )


def _check_table(
    where: str,
    table: dict[str, Any],
    accepted: dict[str, str],
    other: tuple[str, type[BaseModel]] | None,
) -> None:
    given: dict[str, str] = {}
    for key in table:
        field = accepted.get(key) if isinstance(key, str) else None
        name = shown(key) if isinstance(key, str) else short_repr(key)
        loc = f"{where}.{name}" if where else name
        if field is None:
            if other is not None and isinstance(key, str) and key in _accepted_keys(other[1]):
                belongs = "each [[runs]] table" if other[0] == "runs" else "[shared]"
                raise ValueError(f"{loc}: unknown key here; {key} belongs in {belongs}")
            hints = {**{k: k for k in accepted}, **KEY_HINTS}
            hint = did_you_mean(str(key), hints)
            valid = ", ".join(sorted({k for k, f in accepted.items() if k == f}))
            raise ValueError(f"{loc}: unknown key{hint}; valid: {valid}")
        if field in given:
            raise ValueError(
                f"{loc}: {field} given twice (as {given[field]!r} and {key!r}); keep one"
            )
        given[field] = key


def load_experiment(path: str | Path) -> SweepSpec:
    """Read a ``.toml`` (or ``.json``) experiment file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_EXPERIMENT_BYTES:
            raise SpecError(
                f"experiment file {path} is {size / 2**20:.0f} MiB; experiment files are at "
                f"most {MAX_EXPERIMENT_BYTES // 2**20} MiB"
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"experiment file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            f"experiment file {path} is not UTF-8 text (byte {exc.start}): is it a TOML or "
            "JSON file?"
        ) from None
    except OSError as exc:
        raise SpecError(f"cannot read experiment file {path}: {exc.strerror or exc}") from None
    kind = "JSON" if path.suffix == ".json" else "TOML"
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except RecursionError:
        raise SpecError(
            f"{path}: the {kind} nests too deeply (at most {MAX_DEPTH} levels)"
        ) from None
    except ValueError as exc:  # TOMLDecodeError, JSONDecodeError, and int() of 4300+ digits
        raise SpecError(f"{path}: malformed {kind}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise SpecError(
            f"{path}: an experiment is a table with [shared] and [[runs]], got a "
            f"{type(data).__name__}"
        )
    return build_sweep(data)
