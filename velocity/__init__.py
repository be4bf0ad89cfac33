"""velocity: fast, honest federated-learning strategy × attack sweeps.

The numerics run in a Rust core (``velocity._core``); this package is its typed
Python face: strategies, attacks, data, models, one FL run, sweeps and reports.

The names below are imported on first use (PEP 562), so ``import velocity`` and
the ``velocity`` command's start-up import nothing heavy before the command has
its Ctrl-C handling in place.
"""

TYPE_CHECKING = False

_EXPORTS = {
    "__version__": "velocity._core",
    "aggregate": "velocity.aggregate",
    "AttackSpec": "velocity.attacks",
    "attack_schemas": "velocity.attacks",
    "parse_attack": "velocity.attacks",
    "valid_attacks": "velocity.attacks",
    "load_results": "velocity.sweepdir.results",
    "PreAggregator": "velocity.preagg",
    "parse_preaggregator": "velocity.preagg",
    "preaggregator_schemas": "velocity.preagg",
    "ALL_STRATEGIES": "velocity.strategy",
    "Strategy": "velocity.strategy",
    "parse_strategy": "velocity.strategy",
    "strategy_schemas": "velocity.strategy",
}

if TYPE_CHECKING:  # the same names for type checkers (``x as x``: an explicit re-export)
    from velocity._core import __version__ as __version__
    from velocity.aggregate import aggregate as aggregate
    from velocity.attacks import AttackSpec as AttackSpec
    from velocity.attacks import attack_schemas as attack_schemas
    from velocity.attacks import parse_attack as parse_attack
    from velocity.attacks import valid_attacks as valid_attacks
    from velocity.preagg import PreAggregator as PreAggregator
    from velocity.preagg import parse_preaggregator as parse_preaggregator
    from velocity.preagg import preaggregator_schemas as preaggregator_schemas
    from velocity.strategy import ALL_STRATEGIES as ALL_STRATEGIES
    from velocity.strategy import Strategy as Strategy
    from velocity.strategy import parse_strategy as parse_strategy
    from velocity.strategy import strategy_schemas as strategy_schemas
    from velocity.sweepdir.results import load_results as load_results


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'velocity' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = sorted(_EXPORTS)
