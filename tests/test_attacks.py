"""Attacks: the Rust registry, validation, Byzantine assignment, and each attack vs numpy."""

from statistics import NormalDist

import numpy as np
import pytest

import velocity
from velocity import _core
from velocity.attacks import AttackSpec, attack_schemas, parse_attack, valid_attacks

N, D = 10, 4000
RNG = np.random.default_rng(11)
UPDATES = RNG.normal(size=(N, D)).astype(np.float32)
IDS = np.arange(N, dtype=np.int64)


def orchestrator(attack: str, seed: int = 5, **params: object) -> _core.Orchestrator:
    spec = parse_attack({"type": attack, **params})
    return _core.Orchestrator(_core.Strategy.fedavg(), [(spec.type, spec.params)], N, seed)


def attacked_rows(orch: _core.Orchestrator, rnd: int = 1) -> np.ndarray:
    """Every row after the round's attacks: FedAvg with one-hot weights returns row i."""
    rows = []
    for i in range(N):
        w = np.zeros(N)
        w[i] = 1.0
        new, _ = orch.run_round(rnd, np.zeros(D, np.float32), UPDATES, w, IDS)
        rows.append(new)
    return np.array(rows)


def byzantine_mask(orch: _core.Orchestrator) -> np.ndarray:
    mask = np.zeros(N, bool)
    mask[list(orch.byzantine_clients)] = True
    return mask


def test_registry_lists_every_attack_with_documented_parameters() -> None:
    names = valid_attacks()
    assert names == sorted(names)
    expected = {
        "gaussian_noise",
        "model_poisoning",
        "sign_flipping",
        "alie",
        "ipm",
        "zero",
        "label_flipping",
        "targeted_label_flipping",
    }
    assert expected <= set(names)
    schemas = attack_schemas()
    for name in names:
        schema = schemas[name]
        assert schema["kind"] in ("update", "data")
        assert schema["description"] and schema["reference"] is not None
        for common in ("fraction", "count", "start_round", "end_round"):
            assert common in schema["params"]
        for pname, param in schema["params"].items():
            assert param["description"], (name, pname)
            assert param["type"] in ("int", "float")
    assert schemas["label_flipping"]["kind"] == "data"
    assert schemas["gaussian_noise"]["kind"] == "update"


def test_every_attack_is_valid_with_defaults_alone() -> None:
    for name in valid_attacks():
        spec = parse_attack(name)
        assert spec.params["fraction"] == pytest.approx(0.2)


def test_inline_and_mapping_forms_agree() -> None:
    a = parse_attack("gaussian_noise:sigma=0.5,fraction=0.3")
    b = parse_attack({"type": "gaussian_noise", "params": {"sigma": 0.5, "fraction": 0.3}})
    assert a == b
    assert a.params["sigma"] == 0.5
    assert a.label().startswith("gaussian_noise:")
    assert "sigma=0.5" in a.label() and "fraction=0.3" in a.label()


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("gausian_noise", "did you mean 'gaussian_noise'"),
        ("gaussian_noise:sigmaa=1", "sigmaa"),
        ("gaussian_noise:sigma=-1", "sigma"),
        ("gaussian_noise:fraction=0", "fraction"),
        ("gaussian_noise:fraction=1.5", "fraction"),
        ("model_poisoning:intensity=2", "intensity"),
        ("alie:count=0", "count"),
        ("zero:sigma=1", "sigma"),
    ],
)
def test_bad_attacks_are_refused_with_the_field(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_attack(spec)


def test_byzantine_set_is_seeded_sized_and_nested() -> None:
    a = orchestrator("zero", fraction=0.2).byzantine_clients
    b = orchestrator("zero", fraction=0.3).byzantine_clients
    assert len(a) == 2 and len(b) == 3
    assert set(a) <= set(b)
    assert orchestrator("zero", fraction=0.2).byzantine_clients == a
    assert len(orchestrator("zero", count=1).byzantine_clients) == 1
    seeds = {tuple(sorted(orchestrator("zero", seed=s).byzantine_clients)) for s in range(8)}
    assert len(seeds) > 1


def test_sign_flipping_sends_minus_scale_delta() -> None:
    orch = orchestrator("sign_flipping", scale=2.0)
    rows, byz = attacked_rows(orch), byzantine_mask(orch)
    np.testing.assert_allclose(rows[byz], -2.0 * UPDATES[byz], rtol=1e-6)
    np.testing.assert_array_equal(rows[~byz], UPDATES[~byz])


def test_zero_sends_zeros() -> None:
    orch = orchestrator("zero")
    rows, byz = attacked_rows(orch), byzantine_mask(orch)
    assert np.all(rows[byz] == 0)


def test_ipm_sends_minus_epsilon_times_the_honest_mean() -> None:
    orch = orchestrator("ipm", epsilon=0.7)
    rows, byz = attacked_rows(orch), byzantine_mask(orch)
    want = -0.7 * UPDATES[~byz].astype(np.float64).mean(axis=0)
    for row in rows[byz]:
        np.testing.assert_allclose(row, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("z", [1.5, None])
def test_alie_sends_mean_minus_z_std_of_the_honest_updates(z: float | None) -> None:
    orch = orchestrator("alie", fraction=0.3, z=z)
    rows, byz = attacked_rows(orch), byzantine_mask(orch)
    honest = UPDATES[~byz].astype(np.float64)
    if z is None:
        f = int(byz.sum())
        s = N // 2 + 1 - f
        z = NormalDist().inv_cdf((N - s) / N)
    want = honest.mean(axis=0) - z * honest.std(axis=0)
    for row in rows[byz]:
        np.testing.assert_allclose(row, want, rtol=1e-4, atol=1e-5)


def test_gaussian_noise_has_the_requested_std() -> None:
    orch = orchestrator("gaussian_noise", sigma=3.0)
    rows, byz = attacked_rows(orch), byzantine_mask(orch)
    noise = rows[byz]
    assert abs(noise.std() - 3.0) < 0.1
    assert abs(noise.mean()) < 0.1
    assert not np.allclose(noise[0], noise[1])
    np.testing.assert_array_equal(attacked_rows(orchestrator("gaussian_noise", sigma=3.0)), rows)


def test_model_poisoning_flips_signs_with_the_given_probability_then_scales() -> None:
    orch = orchestrator("model_poisoning", intensity=0.25, scale=3.0)
    rows, byz = attacked_rows(orch), byzantine_mask(orch)
    ratio = rows[byz] / UPDATES[byz]
    assert np.all(np.isclose(np.abs(ratio), 3.0, rtol=1e-5))
    assert abs((ratio < 0).mean() - 0.25) < 0.03


def test_attack_window_limits_the_rounds() -> None:
    orch = orchestrator("zero", start_round=3, end_round=4)
    byz = byzantine_mask(orch)
    for rnd, active in [(1, False), (2, False), (3, True), (4, True), (5, False)]:
        rows = attacked_rows(orch, rnd)
        assert np.all(rows[byz] == 0) == active, rnd


def test_label_flipping_maps_y_to_c_minus_1_minus_y_for_byzantine_clients_only() -> None:
    orch = orchestrator("label_flipping", fraction=0.2)
    y = np.arange(10, dtype=np.int64).repeat(3)
    for cid in range(N):
        got = orch.poison_labels(1, cid, y, 10)
        want = 9 - y if cid in orch.byzantine_clients else y
        np.testing.assert_array_equal(got, want)


def test_targeted_label_flipping_moves_a_share_of_source_to_target() -> None:
    orch = orchestrator("targeted_label_flipping", source=1, target=7, ratio=0.5, count=1)
    (cid,) = orch.byzantine_clients
    y = np.array([1] * 200 + [2] * 50, dtype=np.int64)
    got = orch.poison_labels(1, cid, y, 10)
    assert np.all(got[200:] == 2)
    assert set(np.unique(got[:200])) == {1, 7}
    assert abs((got[:200] == 7).mean() - 0.5) < 0.1
    with pytest.raises(ValueError, match="target"):
        orchestrator("targeted_label_flipping", target=12, count=1).poison_labels(1, cid, y, 10)


def test_round_report_names_attacked_clients_and_detection() -> None:
    spec = parse_attack("gaussian_noise:sigma=100,count=2")
    orch = _core.Orchestrator(_core.Strategy.krum(2), [(spec.type, spec.params)], N, 3)
    _, report = orch.run_round(1, np.zeros(D, np.float32), UPDATES, np.ones(N), IDS)
    byz = sorted(orch.byzantine_clients)
    assert report["byzantine"] == byz
    assert sorted(a["client"] for a in report["attacked"]) == byz
    assert {a["attack"] for a in report["attacked"]} == {"gaussian_noise"}
    det = report["detection"]
    assert det is not None and det["kept_byzantine"] == 0 and det["excluded_byzantine"] == 2
    assert report["selected"] is not None and not set(report["selected"]) & set(byz)


def test_attack_spec_is_what_velocity_exports() -> None:
    assert velocity.AttackSpec is AttackSpec


@pytest.mark.parametrize(
    ("given", "name"),
    [
        ("ALIE", "alie"),
        ("Gaussian-Noise", "gaussian_noise"),
        ("Gaussian", "gaussian_noise"),  # ByzFL
        ("ALittleIsEnough", "alie"),  # ByzFL
        ("InnerProductManipulation", "ipm"),  # ByzFL
        ("SignFlipping", "sign_flipping"),  # ByzFL
        ("LabelFlipping", "label_flipping"),  # ByzFL
        ("Sign Flipping", "sign_flipping"),
    ],
)
def test_attack_names_ignore_case_and_accept_aliases(given: str, name: str) -> None:
    spec = parse_attack(f"{given}:fraction=0.3")
    assert spec.type == name and spec.params["fraction"] == 0.3
    assert spec.label() == f"{name}:fraction=0.3"


@pytest.mark.parametrize(
    ("given", "suggestion"),
    [("signflip", "sign_flipping"), ("labelflip", "label_flipping"), ("alei", "alie")],
)
def test_unknown_attack_names_get_the_close_match(given: str, suggestion: str) -> None:
    with pytest.raises(ValueError, match=f"did you mean '{suggestion}'"):
        parse_attack(given)


def test_unknown_attack_parameters_get_hints() -> None:
    with pytest.raises(ValueError, match="did you mean 'count'"):
        parse_attack("zero:num_byzantine=2")
    with pytest.raises(ValueError, match="did you mean 'sigma'"):
        parse_attack("gaussian_noise:std=2")
    with pytest.raises(ValueError, match="given twice"):
        parse_attack({"type": "zero", "count": 1, "params": {"count": 2}})


def test_int_parameters_are_exact_bounded_and_never_bools() -> None:
    assert parse_attack("zero:count=1000000").params["count"] == 1_000_000
    for text in (
        "zero:count=1000001",
        "zero:count=9223372036854775807",
        "zero:count=1e400",
        "zero:start_round=true",
        "zero:count=2.5",
    ):
        with pytest.raises(ValueError, match="zero"):
            parse_attack(text)
    with pytest.raises(ValueError, match="9007199254740993"):
        parse_attack("zero:count=9007199254740993")  # shown as given, not …992
    with pytest.raises(ValueError):
        parse_attack({"type": "zero", "params": {"count": True}})


def test_byzantine_counts_follow_the_orchestrator() -> None:
    plan = [(a.type, a.params) for a in map(parse_attack, ["zero:fraction=0.25", "alie:count=3"])]
    assert _core.byzantine_counts(plan, 10) == [3, 3]
    orch = _core.Orchestrator(_core.Strategy.fedavg(), plan, 10, 1)
    assert len(orch.byzantine_clients) == 6
    with pytest.raises(ValueError, match="11 Byzantine clients"):
        _core.byzantine_counts([*plan, ("zero", {"count": 5})], 10)
    with pytest.raises(ValueError, match="Byzantine clients"):
        _core.Orchestrator(_core.Strategy.fedavg(), [("zero", {"count": 10**6})] * 3, 10, 1)


def test_label_attack_classes_are_schema_marked() -> None:
    params = attack_schemas()["targeted_label_flipping"]["params"]
    assert params["source"]["class_id"] and params["target"]["class_id"]
    assert not params["ratio"]["class_id"] and not params["count"]["class_id"]
