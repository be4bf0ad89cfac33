"""The registries are the one declaration of every strategy and attack: the Python
classes, the README tables, the agent prompts and the doctests are checked against them."""

import dataclasses
import doctest
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import velocity.strategy as strategy_module
from velocity import _core
from velocity.attacks import attack_schemas, parse_attack
from velocity.cli import registry_markdown
from velocity.strategy import (
    ALL_STRATEGIES,
    REGISTRY,
    CenteredClipping,
    FedProx,
    Strategy,
    parse_strategy,
    registry_mismatches,
    strategy_schemas,
)

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- Python classes


def test_every_registry_entry_has_a_class_in_registry_order() -> None:
    assert [cls.name for cls in ALL_STRATEGIES] == list(REGISTRY)
    assert list(strategy_schemas()) == list(REGISTRY)
    for cls in ALL_STRATEGIES:
        assert getattr(strategy_module, cls.__name__) is cls
        assert issubclass(cls, Strategy) and cls.core_name == cls.name


@pytest.mark.parametrize("cls", ALL_STRATEGIES, ids=lambda c: c.name)
def test_written_classes_agree_with_their_entry(cls: type[Strategy]) -> None:
    """Fields, types, defaults and summary line (also enforced at import)."""
    schema = REGISTRY[cls.name]
    assert registry_mismatches(cls, schema) == []
    fields = {f.name: f.default for f in strategy_module.param_fields(cls)}
    assert fields == {name: p["default"] for name, p in schema["params"].items()}
    assert cls.reference == schema["reference"]
    assert cls.aliases == tuple(schema["aliases"])
    assert cls.param_hints == schema["param_hints"]
    assert cls.robust is schema["robust"]
    tolerance = schema["tolerance"]
    assert cls.tolerance_param == (tolerance["param"] if tolerance else None)


def test_a_class_that_disagrees_with_its_entry_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Krum(Strategy):  # f's default differs from the registry's 1
        """Krum: pick the one update closest to its n − f − 2 nearest neighbours."""

        f: int = 2

    problems = registry_mismatches(Krum, REGISTRY["Krum"])
    assert problems == ["f defaults to 2, not 1"]
    with pytest.raises(TypeError, match="no entry in the Rust strategy registry"):

        @strategy_module._registered
        class NotRegistered(Strategy):
            """Nothing."""


def test_an_entry_without_a_class_gets_a_generated_one() -> None:
    """What a new registry entry gets: a frozen dataclass with the entry's fields."""
    cls = strategy_module._generated("Bulyan", REGISTRY["Bulyan"])
    assert cls.__module__ == "velocity.strategy" and cls.__name__ == "Bulyan"
    assert [f.name for f in dataclasses.fields(cls)] == ["pre", "f", "m"]  # type: ignore[arg-type]
    assert [f.name for f in strategy_module.param_fields(cls)] == ["f", "m"]
    assert (cls.__doc__ or "").startswith(REGISTRY["Bulyan"]["description"])
    made = cls(f=2, m="5")  # type: ignore[call-arg]
    assert made.to_core() == _core.Strategy("Bulyan", {"f": 2, "m": 5})
    assert made.label() == "Bulyan:f=2,m=5" and cls().label() == "Bulyan"
    assert cls.tolerance_param == "f" and cls.robust
    with pytest.raises(ValueError, match=r"Bulyan\.m"):
        cls(f=1, m=2)  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.f = 3  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- the Rust side


#: The named factories of the nine original strategies (a new one has none).
FACTORIES = {
    "FedAvg": "fedavg",
    "FedProx": "fedprox",
    "FedMedian": "fedmedian",
    "TrimmedMean": "trimmed_mean",
    "Krum": "krum",
    "MultiKrum": "multi_krum",
    "Bulyan": "bulyan",
    "GeometricMedian": "geometric_median",
    "CenteredClipping": "centered_clipping",
}


@pytest.mark.parametrize("name", list(REGISTRY))
def test_generic_constructor_fills_defaults_and_round_trips(name: str) -> None:
    core = _core.Strategy(name)
    assert core.name == name and core.params == {
        p: s["default"] for p, s in REGISTRY[name]["params"].items()
    }
    assert eval(repr(core), {"Strategy": _core.Strategy, "None": None}) == core


@pytest.mark.parametrize(("name", "factory"), FACTORIES.items())
def test_named_factories_build_the_same_strategy(name: str, factory: str) -> None:
    core = _core.Strategy(name)
    assert getattr(_core.Strategy, factory)(*core.params.values()) == core


def test_generic_constructor_validates_like_the_attacks() -> None:
    assert _core.Strategy("trmean", {"beta": 0.2}) == _core.Strategy.trimmed_mean(0.2)
    with pytest.raises(ValueError, match=r"^invalid Krum\.f: got True; allowed: an int in"):
        _core.Strategy("Krum", {"f": True})
    with pytest.raises(ValueError, match=r"^invalid zero\.count: got True; allowed: an int in"):
        _core.validate_attack("zero", {"count": True})
    with pytest.raises(ValueError, match="unknown parameter 'g' for strategy 'Krum'"):
        _core.Strategy("Krum", {"g": 1})
    with pytest.raises(ValueError, match="unknown strategy 'Krumm'; did you mean 'Krum'"):
        _core.Strategy("Krumm")


def test_parameter_schemas_have_one_shape() -> None:
    keys = {frozenset(p) for s in _core.strategy_schemas().values() for p in s["params"].values()}
    keys |= {frozenset(p) for s in attack_schemas().values() for p in s["params"].values()}
    assert len(keys) == 1, keys


# --------------------------------------------------------------------------- capabilities


def test_proximal_term_is_a_declared_capability() -> None:
    assert FedProx(mu=0.3).proximal_mu == 0.3
    assert parse_strategy("FedProx").proximal_mu == 0.01
    for cls in ALL_STRATEGIES:
        declared = REGISTRY[cls.name]["proximal_param"]
        assert (declared is not None) == (cls is FedProx)
        if declared is None:
            assert cls().proximal_mu == 0.0
        assert isinstance(cls().proximal_mu, float)


def test_memory_of_the_previous_aggregate_is_a_declared_capability() -> None:
    users = [cls for cls in ALL_STRATEGIES if cls().uses_previous_aggregate]
    assert users == [CenteredClipping]
    # The orchestrator gives it the previous aggregate: the second round starts there.
    orch = _core.Orchestrator(CenteredClipping(tau=1.0, iters=1).to_core(), [], 2, 0)
    x = np.full((2, 1), 10.0, np.float32)
    ids = np.arange(2, dtype=np.int64)
    g, _ = orch.run_round(1, np.zeros(1, np.float32), x, np.ones(2), ids)
    assert g.tolist() == [1.0]
    g, _ = orch.run_round(2, np.zeros(1, np.float32), x, np.ones(2), ids)
    assert g.tolist() == [2.0]


@pytest.mark.parametrize("n", [1, 2, 5, 7, 10, 13, 100])
def test_configured_byzantine_comes_from_the_tolerance_parameter(n: int) -> None:
    for beta in (0.0, 0.1, 0.2, 0.29, 0.3, 0.49):
        got = parse_strategy({"type": "TrimmedMean", "beta": beta}).configured_byzantine(n)
        assert got == math.floor(beta * n)
    for text in ("Krum:f=2", "MultiKrum:f=3", "Bulyan:f=0"):
        s = parse_strategy(text)
        assert s.configured_byzantine(n) == s.f  # type: ignore[attr-defined]
    for text in ("FedAvg", "FedProx", "FedMedian", "GeometricMedian", "CenteredClipping"):
        assert parse_strategy(text).configured_byzantine(n) is None


# --------------------------------------------------------------------------- one dialect


@pytest.mark.parametrize(
    ("strategy", "attack", "needle"),
    [
        ("Krum:f=x", "zero:count=x", "must be an integer, got 'x'"),
        ("Krum:f=true", "zero:count=true", "must be an integer, got 'true'"),
        ("Krum:f=1.5", "zero:count=1.5", "must be an integer, got '1.5'"),
        ("FedProx:mu=abc", "gaussian_noise:sigma=abc", "must be a number, got 'abc'"),
    ],
)
def test_strategies_and_attacks_share_the_coercion(strategy: str, attack: str, needle: str) -> None:
    for text, where in ((strategy, strategy.split(":")[0]), (attack, attack.split(":")[0])):
        with pytest.raises(ValueError) as info:
            parse_strategy(text) if text == strategy else parse_attack(text)
        assert needle in str(info.value) and where in str(info.value), str(info.value)


def test_numbers_read_the_same_for_strategies_and_attacks() -> None:
    values: list[Any] = [np.int64(2), 2.0, "2", "2e0"]
    for value in values:
        expected = 2
        assert parse_strategy({"type": "Krum", "f": value}).f == expected  # type: ignore[attr-defined]
        assert parse_attack({"type": "zero", "count": value}).params["count"] == expected
    values = [np.float32(0.5), 0.5, "0.5"]
    for value in values:
        assert parse_strategy({"type": "FedProx", "mu": value}).proximal_mu == 0.5
        assert parse_attack({"type": "zero", "fraction": value}).params["fraction"] == 0.5
    values = [True, np.bool_(True)]
    for value in values:
        with pytest.raises(ValueError, match=r"Krum\.f"):
            parse_strategy({"type": "Krum", "f": value})
        with pytest.raises(ValueError, match=r"zero\.count"):
            parse_attack({"type": "zero", "count": value})


# --------------------------------------------------------------------------- docs


def _between(text: str, start: str, end: str) -> str:
    return text[text.index(start) + len(start) : text.index(end)].strip("\n") + "\n"


def test_readme_tables_are_the_registry() -> None:
    readme = (ROOT / "README.md").read_text()
    tables = _between(readme, "tests/test_registry.py checks -->\n", "<!-- end of registry tables")
    assert tables == registry_markdown(), (
        "README.md's strategies/attacks tables are stale: replace them with "
        "`velocity strategies --markdown`"
    )


def test_markdown_command_prints_the_tables() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "velocity", "strategies", "--markdown"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == registry_markdown()


def _names(text: str) -> set[str]:
    return set(re.findall(r"`([A-Za-z_]+)`", text))


def test_agent_prompts_list_every_strategy_and_attack() -> None:
    system = (ROOT / "velocity_mcp" / "agent_prompts" / "system.md").read_text()
    bullets = {b.split(":")[0].strip(): b for b in re.split(r"\n- ", system)}
    strategies = _names(bullets["Strategies"])
    robust = {name for name, s in REGISTRY.items() if s["robust"]}
    assert robust <= strategies, robust - strategies
    assert strategies <= set(REGISTRY), strategies - set(REGISTRY)
    attacks = bullets["Attacks"]
    for kind, words in (("update", "Update attacks ("), ("data", "data attacks (")):
        flat = " ".join(attacks.split())
        listed = _names(flat[flat.index(words) :].split(")")[0])
        registered = {name for name, s in attack_schemas().items() if s["kind"] == kind}
        assert listed == registered, (kind, listed ^ registered)


def test_strategy_doctests_run() -> None:
    """Every docstring example in velocity/strategy.py (also: pytest --doctest-modules)."""
    result = doctest.testmod(strategy_module)
    assert result.failed == 0
    written = strategy_module._WRITTEN.values()
    assert written and all(">>>" in (cls.__doc__ or "") for cls in written)
    assert result.attempted >= 2 * len(written)
