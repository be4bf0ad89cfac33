"""velocity: fast, honest federated-learning strategy × attack sweeps.

The numerics run in a Rust core (``velocity._core``); this package is its typed
Python face: strategies, attacks, data, models, one FL run, sweeps and reports.
"""

from velocity._core import __version__
from velocity.aggregate import aggregate
from velocity.attacks import AttackSpec, attack_schemas, parse_attack, valid_attacks
from velocity.results import load_results
from velocity.strategy import ALL_STRATEGIES, Strategy, parse_strategy, strategy_schemas

__all__ = [
    "ALL_STRATEGIES",
    "AttackSpec",
    "Strategy",
    "__version__",
    "aggregate",
    "attack_schemas",
    "load_results",
    "parse_attack",
    "parse_strategy",
    "strategy_schemas",
    "valid_attacks",
]
