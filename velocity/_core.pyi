"""Type stub for ``velocity._core``, the Rust core (crates/velocity-core).

Everything numeric is float32 and C-contiguous on the way in; the Python layer
(``velocity.strategy``, ``velocity.attacks``, ``velocity.sim.server``) coerces before
calling. Bad input raises ``ValueError`` (bad values; its subclass ``NonFiniteError``
for NaN/Inf) or ``TypeError`` (wrong dtype/type); no Rust panic ever reaches Python.
Integer arguments are Python ints (or ``__index__`` objects), never bools or floats,
and counts are at most 1,000,000: a larger int is a ``ValueError`` naming the
argument, never an ``OverflowError``.
"""

from typing import Any, Literal, TypedDict, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "NonFiniteError",
    "Orchestrator",
    "Strategy",
    "__version__",
    "aggregate",
    "attack_name",
    "attack_schemas",
    "byzantine_counts",
    "preaggregator_name",
    "preaggregator_schemas",
    "strategy_schemas",
    "valid_attacks",
    "validate_attack",
]

__version__: str

class ParamSchema(TypedDict):
    """One strategy or attack parameter: its type, default and allowed range.

    Ints are bounded by ``max`` (1,000,000 unless the registry says otherwise).
    """

    type: Literal["float", "int"]
    default: float | int | None
    min: float | None
    max: float | None
    min_inclusive: bool
    max_inclusive: bool
    nullable: bool
    class_id: bool
    """The value is a class id: below the dataset's number of classes."""
    description: str

class ToleranceSchema(TypedDict):
    """The parameter that sets how many Byzantine clients per round a rule tolerates."""

    param: str
    kind: Literal["count", "fraction"]
    """``count``: the parameter is that number (Krum's f); ``fraction``: ⌊β·n⌋."""

class StrategySchema(TypedDict):
    """One strategy's registry entry: what it computes, its paper, its parameters
    (the attacks' ``ParamSchema`` shape), its other names and its capabilities."""

    description: str
    reference: str
    params: dict[str, ParamSchema]
    aliases: list[str]
    """Other accepted names (ByzFL's, Flower's, papers')."""
    suggested_for: list[str]
    """Names of similar but different rules: suggested for this one, never accepted."""
    param_hints: dict[str, str]
    """Other libraries' parameter names -> this rule's: suggested, never accepted."""
    robust: bool
    """False for plain means (FedAvg, FedProx), the non-robust reference."""
    selection: bool
    """Keeps a subset of the rows and reports it (Krum, MultiKrum, Bulyan)."""
    tolerance: ToleranceSchema | None
    proximal_param: str | None
    """The parameter μ of the proximal term μ/2·‖w − wᵗ‖² clients add to their
    local loss (FedProx's ``mu``); None: clients minimise their plain loss."""
    uses_previous_aggregate: bool
    """Aggregation reads the previous round's aggregate (CenteredClipping)."""

class PreAggSchema(TypedDict):
    """One pre-aggregator's registry entry: what it computes, its paper, its
    parameters (the strategies' ``ParamSchema`` shape) and its other names."""

    description: str
    reference: str
    params: dict[str, ParamSchema]
    aliases: list[str]
    """Other accepted names (ByzFL's, papers')."""
    tolerance: str | None
    """The count parameter that sets the Byzantine clients it is tuned for (NNM's
    and ARC's ``f``); None when it has none."""
    seeded: bool
    """Draws randomness keyed by (seed, round): Bucketing's permutation."""

class AttackSchema(TypedDict):
    """One attack: its kind, what it does, its paper, and its parameters."""

    kind: Literal["update", "data"]
    adaptive: bool
    """In the adaptive set (``--attacks adaptive``): it optimises against the
    robust rules."""
    description: str
    reference: str
    params: dict[str, ParamSchema]

class Detection(TypedDict):
    """Byzantine detection of a selection strategy among this round's clients."""

    kept_honest: int
    kept_byzantine: int
    excluded_honest: int
    excluded_byzantine: int

class AttackedClient(TypedDict):
    client: int
    attack: str

class RoundReport(TypedDict):
    """What one call of ``Orchestrator.run_round`` did."""

    round: int
    num_clients: int
    byzantine: list[int]
    attacked: list[AttackedClient]
    selected: list[int] | None
    detection: Detection | None

class NonFiniteError(ValueError):
    """A NaN or ±Inf value: an update to aggregate, or the new global model (the run diverged)."""

@final
class Strategy:
    """An immutable, validated aggregation rule: a registry entry and its parameters,
    after the pre-aggregators ``pre`` (run in order).

    ``Strategy(name, params, pre)`` checks ``params`` against the entry of ``name``
    (or an alias) and fills the defaults; a bad value is a ``ValueError`` naming
    ``Name.param``, the value and the range. ``pre`` is a list of ``(name, params)``
    pairs (``params`` a dict or None), checked the same way (``NNM.f``). The named
    factories below are the nine original rules' typed constructors (a wrong type
    is a ``TypeError``) and have no pre-aggregators; a newly registered strategy
    has none. The properties describe the rule; ``pre`` the stages before it.
    """

    def __new__(
        cls,
        name: str,
        params: dict[str, Any] | None = None,
        pre: list[tuple[str, dict[str, Any] | None]] | None = None,
    ) -> Strategy: ...
    @staticmethod
    def fedavg() -> Strategy: ...
    @staticmethod
    def fedprox(mu: float) -> Strategy: ...
    @staticmethod
    def fedmedian() -> Strategy: ...
    @staticmethod
    def trimmed_mean(beta: float) -> Strategy: ...
    @staticmethod
    def krum(f: int) -> Strategy: ...
    @staticmethod
    def multi_krum(f: int, m: int | None) -> Strategy: ...
    @staticmethod
    def bulyan(f: int, m: int | None) -> Strategy: ...
    @staticmethod
    def geometric_median(eps: float, max_iter: int) -> Strategy: ...
    @staticmethod
    def centered_clipping(tau: float, iters: int) -> Strategy: ...
    @property
    def name(self) -> str:
        """The rule's registered name."""
    @property
    def params(self) -> dict[str, Any]:
        """Every parameter of the rule with its value (defaults filled), in schema order."""
    @property
    def pre(self) -> list[tuple[str, dict[str, int | float | None]]]:
        """The pre-aggregators run before the rule, in order: (registered name,
        every parameter with its value)."""
    @property
    def is_selection(self) -> bool: ...
    @property
    def is_robust(self) -> bool: ...
    @property
    def proximal_mu(self) -> float:
        """μ of the proximal term μ/2·‖w − wᵗ‖² each client adds to its local loss
        (0.0 when clients minimise their plain loss)."""
    @property
    def uses_previous_aggregate(self) -> bool:
        """Whether aggregation reads the previous round's aggregate."""
    def check_clients(self, n: int) -> None:
        """Raise ValueError when n clients are too few for this strategy (each
        pre-aggregator on the rows it receives, then the rule)."""
    def configured_byzantine(self, n: int) -> int | None:
        """Byzantine clients per round among n this configuration tolerates (None
        for rules without such a parameter)."""

def aggregate(
    strategy: Strategy,
    updates: npt.NDArray[np.float32],
    weights: npt.NDArray[np.float64],
    num_threads: int | None = None,
    seed: int = 0,
    round: int = 0,
) -> tuple[npt.NDArray[np.float32], list[int] | None]:
    """Aggregate an n×d update matrix into a d-vector.

    Runs the strategy's pre-aggregators, then its rule; ``seed`` and ``round`` key
    the seeded pre-aggregators (Bucketing's permutation). Returns the aggregate
    and, for selection strategies (Krum, MultiKrum, Bulyan), the sorted input
    row indices they kept (``None`` otherwise).
    """

def strategy_schemas() -> dict[str, StrategySchema]:
    """Every strategy's registry entry, in registry (catalog) order."""

def preaggregator_schemas() -> dict[str, PreAggSchema]:
    """Every pre-aggregator's registry entry, in registry order."""

def preaggregator_name(name: str) -> str:
    """The registered name for a pre-aggregator name or alias, ignoring case, ``_``,
    ``-``, spaces and dots (ValueError with the close match otherwise)."""

def valid_attacks() -> list[str]: ...
def attack_name(name: str) -> str:
    """The registered name for a name or alias, ignoring case, ``_``, ``-`` and spaces."""

def byzantine_counts(attacks: list[tuple[str, dict[str, Any]]], num_clients: int) -> list[int]:
    """Byzantine clients per attack among ``num_clients``; ValueError beyond ``num_clients``."""

def attack_schemas() -> dict[str, AttackSchema]: ...
def validate_attack(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Check an attack against its schema; return all its parameters, defaults filled."""

@final
class Orchestrator:
    """One run's server side: strategy, attack plan, seeded RNG."""

    def __new__(
        cls,
        strategy: Strategy,
        attacks: list[tuple[str, dict[str, Any]]],
        num_clients: int,
        seed: int,
        num_threads: int | None = None,
    ) -> Orchestrator: ...
    @property
    def byzantine_clients(self) -> dict[int, str]:
        """Byzantine client id -> the attack it runs (fixed for the run)."""
    def poison_labels(
        self,
        round: int,
        client_id: int,
        labels: npt.NDArray[np.int64],
        num_classes: int,
    ) -> npt.NDArray[np.int64]:
        """The labels this client trains on in this round (a new array)."""
    def run_round(
        self,
        round: int,
        global_params: npt.NDArray[np.float32],
        updates: npt.NDArray[np.float32],
        num_samples: npt.NDArray[np.float64],
        client_ids: npt.NDArray[np.int64],
    ) -> tuple[npt.NDArray[np.float32], RoundReport]:
        """Attack the Byzantine rows, aggregate, return (global + aggregate, report)."""
