"""parse_strategy: the one way strings, mappings and instances become a Strategy."""

import dataclasses

import pytest

from velocity.strategy import (
    ALL_STRATEGIES,
    Bulyan,
    FedMedian,
    Krum,
    MultiKrum,
    TrimmedMean,
    parse_strategy,
    strategy_schemas,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("FedMedian", FedMedian()),
        ("fedmedian", FedMedian()),
        ("FED_MEDIAN", FedMedian()),
        ("Krum:f=2", Krum(f=2)),
        ("trimmed-mean:beta=0.2", TrimmedMean(beta=0.2)),
        ("MultiKrum:f=1,m=none", MultiKrum(f=1, m=None)),
        ("Bulyan: f = 1 , m = 5", Bulyan(f=1, m=5)),
    ],
)
def test_strings(text: str, expected: object) -> None:
    assert parse_strategy(text) == expected


def test_mappings_and_instances() -> None:
    assert parse_strategy({"type": "Krum", "f": 2}) == Krum(f=2)
    assert parse_strategy({"type": "krum", "params": {"f": 3}}) == Krum(f=3)
    k = Krum(f=1)
    assert parse_strategy(k) is k


@pytest.mark.parametrize("cls", ALL_STRATEGIES)
def test_round_trip_through_label_and_dict(cls: type) -> None:
    s = cls()
    assert parse_strategy(s.label()) == s
    assert parse_strategy(s.to_dict()) == s


def test_unknown_name_suggests_the_close_match() -> None:
    with pytest.raises(ValueError, match="did you mean 'FedMedian'"):
        parse_strategy("FedMedain")


def test_unknown_parameter_is_named() -> None:
    with pytest.raises(ValueError, match="unknown parameter 'g' for Krum"):
        parse_strategy("Krum:g=2")


@pytest.mark.parametrize(
    "text",
    [
        "Krum:f=-1",
        "Krum:f=1.5",
        "Krum:f=abc",
        "TrimmedMean:beta=0.5",
        "GeometricMedian:eps=0",
        "CenteredClipping:tau=-1",
        "FedProx:mu=-0.1",
        "GeometricMedian:max_iter=0",
    ],
)
def test_bad_values_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_strategy(text)


def test_strategies_are_frozen_values() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Krum(f=1).f = 2  # type: ignore[misc]
    assert {Krum(f=1), Krum(f=1)} == {Krum(f=1)}


def test_schemas_describe_every_strategy_and_parameter() -> None:
    schemas = strategy_schemas()
    assert list(schemas) == [cls.name for cls in ALL_STRATEGIES]
    assert schemas["Krum"]["params"]["f"]["default"] == 1
    assert schemas["Krum"]["selection"] is True
    assert schemas["FedAvg"]["selection"] is False
    assert "arxiv" in schemas["FedMedian"]["reference"]


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("Median", "FedMedian"),
        ("CoordinateWiseMedian", "FedMedian"),
        ("TrMean", "TrimmedMean"),
        ("FedTrimmedAvg", "TrimmedMean"),
        ("GeoMed", "GeometricMedian"),
        ("RFA", "GeometricMedian"),
        ("CC", "CenteredClipping"),
        ("multi_krum", "MultiKrum"),
    ],
)
def test_aliases_from_other_libraries_are_accepted(alias: str, name: str) -> None:
    s = parse_strategy(alias)
    assert s.name == name
    assert s.label() == name  # written back under its own name


@pytest.mark.parametrize(("name", "suggested"), [("Average", "FedAvg"), ("FedAvgM", "FedAvg")])
def test_similar_but_different_rules_are_only_suggested(name: str, suggested: str) -> None:
    with pytest.raises(ValueError, match=f"did you mean '{suggested}'"):
        parse_strategy(name)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Krum:f=9007199254740993", "9007199254740993"),  # not rounded through a float
        ("Krum:f=9223372036854775807", "9223372036854775807"),
        ("Bulyan:f=4611686018427387904", "4611686018427387904"),
        ("Krum:f=1e400", "1e400"),
        ("MultiKrum:m=99999999999999999999", "99999999999999999999"),
        ("Krum:f=true", "true"),
        ("FedProx:mu=inf", "inf"),
        ("GeometricMedian:eps=nan", "NaN"),
    ],
)
def test_out_of_range_values_name_the_parameter(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_strategy(text)
    assert needle in str(info.value) and "." in str(info.value), str(info.value)


def test_integers_are_exact_and_bounded() -> None:
    assert parse_strategy("Krum:f=1e3") == Krum(f=1000)
    assert parse_strategy("Krum:f=1000000").f == 1_000_000
    with pytest.raises(ValueError, match=r"Krum\.f.*\[0, 1000000\]"):
        parse_strategy("Krum:f=1000001")
    for value in (True, 2.5, "1.5", 2**64):
        with pytest.raises(ValueError):
            Krum(f=value)  # type: ignore[arg-type]


def test_parameter_names_of_other_libraries_are_suggested() -> None:
    with pytest.raises(ValueError, match="did you mean 'mu'"):
        parse_strategy("FedProx:proximal_mu=0.1")
    with pytest.raises(ValueError, match="did you mean 'f'"):
        parse_strategy({"type": "Krum", "num_malicious_clients": 1})
    with pytest.raises(ValueError, match="given twice"):
        parse_strategy({"type": "Krum", "f": 1, "params": {"f": 2}})
    with pytest.raises(ValueError, match="params must be a table"):
        parse_strategy({"type": "Krum", "params": [1, 2]})
