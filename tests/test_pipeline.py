"""Pipelines: pre-aggregators before a rule, in the one strategy syntax, and one
Byzantine count filling every stage's tolerance parameter."""

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest

import velocity
from velocity.preagg import ALL_PREAGGREGATORS, REGISTRY, PreAggregator, parse_preaggregator
from velocity.strategy import FedMedian, Krum, TrimmedMean, parse_strategy

NNM = type(parse_preaggregator("NNM"))


# --------------------------------------------------------------------------- every form


@pytest.mark.parametrize(
    "spec",
    [
        "NNM>Krum:f=2",
        "nnm > krum:f=2",
        " NearestNeighborMixing>Krum:f=2 ",
        {"type": "Krum", "f": 2, "pre": ["NNM"]},
        {"type": "Krum", "params": {"f": 2}, "pre": [{"type": "nnm"}]},
        {"type": "Krum", "f": 2, "pre": "NNM"},
        {"type": "NNM>Krum", "f": 2},
        {"type": "NNM>Krum:f=2"},
        {"type": "Krum", "f": 2, "pre": [{"type": "NNM", "params": {"f": 1}}]},
    ],
)
def test_every_form_reads_the_same_pipeline(spec: object) -> None:
    s = parse_strategy(spec)  # type: ignore[arg-type]
    assert s == Krum(f=2, pre=(NNM(f=1),))  # type: ignore[call-arg]
    assert s.label() == "NNM>Krum:f=2"
    assert s.to_dict() == {"type": "Krum", "f": 2, "pre": [{"type": "NNM", "f": 1}]}


def test_three_stages_keep_their_order_and_parameters() -> None:
    s = parse_strategy("Bucketing:s=3>NNM:f=2>FedMedian")
    assert isinstance(s, FedMedian) and [p.name for p in s.pre] == ["Bucketing", "NNM"]
    assert s.pre[0].params() == {"s": 3} and s.pre[1].params() == {"f": 2}
    assert s.label() == "Bucketing:s=3>NNM:f=2>FedMedian"
    assert parse_strategy("Clipping:tau=5>FedAvg").label() == "Clipping:tau=5.0>FedAvg"
    assert parse_strategy("NNM>Bucketing>FedAvg") != parse_strategy("Bucketing>NNM>FedAvg")


PIPELINES = [
    "NNM>Krum:f=2",
    "Bucketing:s=3>NNM:f=2>FedMedian",
    "Clipping:tau=5>FedAvg",
    "ARC:f=2>TrimmedMean:beta=0.2",
    "NNM>NNM:f=2>MultiKrum:m=3",
    "Bucketing>CenteredClipping",
]


@pytest.mark.parametrize("text", PIPELINES)
def test_label_and_dict_round_trip(text: str) -> None:
    s = parse_strategy(text)
    assert parse_strategy(s.label()) == s and parse_strategy(s.to_dict()) == s
    assert parse_strategy(json.loads(json.dumps(s.to_dict()))) == s
    assert hash(parse_strategy(s.label())) == hash(s)


@pytest.mark.parametrize("cls", ALL_PREAGGREGATORS, ids=lambda c: c.name)
def test_each_preaggregator_round_trips_in_a_pipeline(cls: type[PreAggregator]) -> None:
    s = parse_strategy(f"{cls.name}>FedAvg")
    assert s.pre == (cls(),) and parse_strategy(s.label()) == s
    assert parse_strategy(s.to_dict()) == s


def test_a_plain_rule_is_unchanged() -> None:
    k = parse_strategy("Krum:f=2")
    assert k.pre == () and k.to_dict() == {"type": "Krum", "f": 2}
    assert repr(k) == "Krum(f=2)" and k != Krum(f=2, pre=("NNM",))  # type: ignore[call-arg]
    assert repr(Krum(pre=["NNM"])) == "Krum(f=1, pre=(NNM(f=1),))"  # type: ignore[call-arg]


def test_a_pipeline_declares_what_its_rule_declares() -> None:
    s = parse_strategy("Clipping>FedAvg")
    assert not s.robust and s.tolerance_param is None
    s = parse_strategy("NNM:f=3>Krum:f=2")
    assert s.robust and s.tolerance_param == "f" and s.configured_byzantine(10) == 2
    assert s.tolerances(10) == [("NNM:f=3", 3), ("Krum:f=2", 2)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.pre = ()  # type: ignore[misc]


def test_values_are_coerced_and_checked_by_rust() -> None:
    assert parse_strategy("NNM:f=2.0>FedAvg").pre[0].params() == {"f": 2}
    with pytest.raises(ValueError, match=r"NNM\.f must be an integer, got 'x'"):
        parse_strategy("NNM:f=x>FedAvg")
    with pytest.raises(ValueError, match=r"NNM\.f"):
        parse_strategy("NNM:f=-1>FedAvg")
    with pytest.raises(ValueError, match=r"Clipping\.tau"):
        parse_strategy({"type": "FedAvg", "pre": [{"type": "Clipping", "tau": 0}]})


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("NNM", "'NNM' is a pre-aggregator: put a rule after it, e.g. 'NNM>Krum'"),
        (
            "NMM>Krum",
            "unknown pre-aggregator 'NMM' (did you mean 'NNM'?); valid: " + ", ".join(REGISTRY),
        ),
        (
            "Krum>FedAvg",
            "'Krum' is a rule, not a pre-aggregator: only a pipeline's last stage "
            f"aggregates, e.g. 'NNM>Krum:f=2' (pre-aggregators: {', '.join(REGISTRY)})",
        ),
        (
            ">Krum",
            "pipeline '>Krum' starts with '>' (a pre-aggregator goes before each '>'); "
            "e.g. 'NNM>Krum:f=2'",
        ),
        (
            "NNM>",
            "pipeline 'NNM>' ends with '>' (the rule goes after the last '>'); e.g. 'NNM>Krum:f=2'",
        ),
        (
            "NNM>>Krum",
            "pipeline 'NNM>>Krum' has an empty stage between two '>'; e.g. 'NNM>Krum:f=2'",
        ),
    ],
)
def test_errors_are_one_line_naming_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_strategy(spec)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"type": "Krum", "params": {"pre": ["NNM"]}}, "'pre' goes beside 'type', not under"),
        ({"type": "NNM>Krum", "pre": ["NNM"]}, "either in 'type' ('NNM>Krum') or in 'pre'"),
        ({"type": "Krum:f=2", "f": 3}, "parameter 'f' given twice (in 'type' and beside it)"),
        ({"type": "Krum", "pre": 3}, "pre must be a list of pre-aggregators"),
        ({"type": "Krum", "pre": [{"s": 2}]}, "pre-aggregator mapping needs a 'type' name"),
        ({"type": "Krum", "pre": ["NNM>Bucketing"]}, "give one stage per item"),
        ("NNM:g=1>Krum", "unknown parameter 'g' for NNM"),
        ("NNM>Krumm", "unknown strategy 'Krumm' (did you mean 'Krum'?)"),
    ],
)
def test_mapping_errors_name_the_key(spec: object, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_strategy(spec)  # type: ignore[arg-type]
    assert needle in str(info.value) and "\n" not in str(info.value), str(info.value)


# --------------------------------------------------------------------------- one Byzantine count


def test_byzantine_fills_every_tolerance_not_given() -> None:
    s = parse_strategy("NNM>Krum", byzantine=3, clients_per_round=10)
    assert s == Krum(f=3, pre=(NNM(f=3),))  # type: ignore[call-arg]
    s = parse_strategy("ARC>Bucketing>TrimmedMean", byzantine=2, clients_per_round=10)
    assert s.label() == "ARC:f=2>Bucketing>TrimmedMean:beta=0.2"
    assert parse_strategy("FedMedian", byzantine=4) == FedMedian()
    assert parse_strategy("Clipping>FedAvg", byzantine=4).label() == "Clipping>FedAvg"


def test_explicit_values_win() -> None:
    s = parse_strategy("NNM:f=1>Krum:f=1", byzantine=3, clients_per_round=10)
    assert s.label() == "NNM>Krum"  # f = 1 is also the default: given, so kept
    s = parse_strategy({"type": "Krum", "f": 2, "pre": ["NNM"]}, byzantine=3)
    assert s.label() == "NNM:f=3>Krum:f=2"
    s = parse_strategy("TrimmedMean:beta=0.1", byzantine=4, clients_per_round=10)
    assert s == TrimmedMean(beta=0.1)
    krum = Krum(f=1)
    assert parse_strategy(krum, byzantine=3) is krum  # an instance gives every value


@pytest.mark.parametrize(("f", "n"), [(1, 49), (1, 3), (2, 10), (3, 7), (7, 15), (33, 100)])
def test_the_fraction_is_f_over_n_and_trims_f(f: int, n: int) -> None:
    s = parse_strategy("TrimmedMean", byzantine=f, clients_per_round=n)
    assert isinstance(s, TrimmedMean) and math.isclose(s.beta, f / n)
    assert s.configured_byzantine(n) == f  # ⌊β·n⌋ = f, even where f/n·n rounds below f


def test_a_fraction_out_of_range_is_refused_with_the_formula() -> None:
    with pytest.raises(ValueError) as info:
        parse_strategy("TrimmedMean", byzantine=5, clients_per_round=10)
    assert str(info.value).startswith(
        "TrimmedMean.beta = byzantine / clients_per_round = 5/10 = 0.5 is out of its range "
        "[0.0, 0.5)"
    )
    with pytest.raises(ValueError, match="needs clients_per_round"):
        parse_strategy("TrimmedMean", byzantine=2)
    for bad in (-1, True, 1.5):
        with pytest.raises(ValueError, match="byzantine"):
            parse_strategy("Krum", byzantine=bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- aggregation


def _nnm(x: np.ndarray, f: int) -> np.ndarray:
    """NNM by its definition: each row -> the mean of its n − f nearest rows (itself in)."""
    dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, : len(x) - f]
    return x[nearest].mean(axis=1)


def test_nnm_then_fedavg_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 5)).astype(np.float32)
    x[0] += 40  # an outlier, mixed away
    for f in (1, 2, 4):
        got = velocity.aggregate(f"NNM:f={f}>FedAvg", x)
        want = _nnm(x.astype(np.float64), f).mean(axis=0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert not np.allclose(velocity.aggregate("NNM>FedAvg", x), x.mean(axis=0), atol=1e-3)


def test_bucketing_of_one_is_the_rule_alone_and_of_n_is_the_mean() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 6)).astype(np.float32)
    for seed in (0, 1, 2):
        got = velocity.aggregate("Bucketing:s=1>FedMedian", x, seed=seed, round=seed)
        np.testing.assert_array_equal(got, velocity.aggregate("FedMedian", x))
        one_bucket = velocity.aggregate("Bucketing:s=7>FedMedian", x, seed=seed)
        np.testing.assert_allclose(one_bucket, x.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_bucketing_is_seeded() -> None:
    x = np.random.default_rng(2).normal(size=(8, 4)).astype(np.float32)
    runs = {
        (seed, rnd): velocity.aggregate("Bucketing:s=2>FedMedian", x, seed=seed, round=rnd)
        for seed in (0, 1)
        for rnd in (0, 1, 2)
    }
    again = velocity.aggregate("Bucketing:s=2>FedMedian", x, seed=1, round=2)
    np.testing.assert_array_equal(again, runs[(1, 2)])
    assert len({r.tobytes() for r in runs.values()}) > 1  # the draws depend on seed and round


def test_a_rule_after_bucketing_is_checked_on_the_buckets() -> None:
    x = np.zeros((10, 2), np.float32)
    velocity.aggregate("Krum:f=1", x)  # 10 rows: enough
    with pytest.raises(ValueError, match="Krum"):
        velocity.aggregate("Bucketing:s=3>Krum:f=1", x)  # 4 buckets < 2f+3


# --------------------------------------------------------------------------- the catalog


def test_the_catalog_lists_the_preaggregators() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "velocity", "strategies", "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = json.loads(out)["preaggregators"]
    assert list(listed) == list(REGISTRY)
    nnm = listed["NNM"]
    assert nnm["params"]["f"]["default"] == 1 and nnm["params"]["f"]["allowed"]
    assert "arxiv" in nnm["reference"] and nnm["tolerance"] == "f"
    assert listed["Bucketing"]["seeded"] is True
