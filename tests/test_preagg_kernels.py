"""The Rust pre-aggregators (NNM, Bucketing, Clipping, ARC) against numpy references.

Each pre-aggregator runs through ``_core.aggregate`` in front of a rule. FedAvg with
a one-hot weight vector returns one pre-aggregated row exactly (NNM, Clipping and
ARC ignore the weights), so those three are compared row by row; Bucketing, which
averages by weight and shuffles, is seen through Krum(f=0): the value is the kept
bucket's row and ``kept`` its members.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.kernels.inputs import assert_close, matrices, weights
from velocity import _core


def pre_rows(pre: list[tuple[str, dict[str, Any] | None]], x: np.ndarray) -> np.ndarray:
    """Every row the stages ``pre`` output for ``x`` (stages that keep the row count)."""
    n = x.shape[0]
    fedavg = _core.Strategy("FedAvg", None, pre=pre)
    return np.stack([_core.aggregate(fedavg, x, np.eye(n)[i])[0] for i in range(n)])


def sq_distances(x: np.ndarray) -> np.ndarray:
    """Squared distances summed coordinate by coordinate in float64 (the kernel's
    order for d < 64, so tied neighbours are the kernel's)."""
    x64 = x.astype(np.float64)
    dist = np.zeros((x.shape[0], x.shape[0]))
    for k in range(x.shape[1]):
        dist += (x64[:, None, k] - x64[None, :, k]) ** 2
    return dist


def nnm(x: np.ndarray, f: int) -> np.ndarray:
    """y_i = mean of the n - f rows nearest x_i, ties by the lower index."""
    k = x.shape[0] - f
    near = np.argsort(sq_distances(x), axis=1, kind="stable")[:, :k]
    return x.astype(np.float64)[near].mean(axis=1)


def byzfl_nnm(x: np.ndarray, f: int) -> np.ndarray:
    """ByzFL 0.0.11's NNM.__call__, with numpy's cdist in place of scipy's."""
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2))
    k = len(x) - f
    indices = np.argpartition(dist, k - 1, axis=1)[:, :k]
    return np.mean(x[indices], axis=1)


def clipping(x: np.ndarray, tau: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    norms = np.linalg.norm(x64, axis=1)
    scale = np.where(norms > tau, tau / np.where(norms > 0, norms, 1.0), 1.0)
    return x64 * scale[:, None]


def byzfl_arc(x: np.ndarray, f: int) -> np.ndarray:
    """ByzFL 0.0.11's ARC.__call__ (float64 norms; its k formula, exact for n < 121)."""
    vectors = x.astype(np.float64)
    magnitudes = sorted(((np.linalg.norm(v), i) for i, v in enumerate(vectors)), key=lambda m: m[0])
    n = len(vectors)
    nb_clipped = int((2 * f / n) * (n - f))
    cut_off = n - nb_clipped
    threshold = magnitudes[cut_off - 1][0]
    for norm, i in magnitudes[cut_off:]:
        if norm > threshold:
            vectors[i] = vectors[i] * (threshold / norm)
    return vectors


@given(data=st.data())
def test_nnm_matches_reference(data: st.DataObject) -> None:
    x = data.draw(matrices(min_n=1))
    f = data.draw(st.integers(0, x.shape[0] - 1))
    assert_close(pre_rows([("NNM", {"f": f})], x), nnm(x, f), x)


def test_nnm_equals_byzfl_formula() -> None:
    rng = np.random.default_rng(7)
    for n, d, f in [(10, 20, 3), (7, 300, 1), (15, 5000, 6), (4, 3, 0)]:
        x = rng.normal(size=(n, d)).astype(np.float32)
        x[0] += 25  # an outlier, mixed away from the others
        assert_close(pre_rows([("NNM", {"f": f})], x), byzfl_nnm(x, f), x)


def test_nnm_through_fedavg_and_krum() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 40)).astype(np.float32)
    w = rng.integers(1, 50, size=9).astype(np.float64)
    mixed = nnm(x, 2)
    got, kept = _core.aggregate(_core.Strategy("FedAvg", None, pre=[("NNM", {"f": 2})]), x, w)
    assert kept is None
    assert_close(got, np.average(mixed, axis=0, weights=w), x)
    # Krum on the mixed rows keeps one of them: the client it stands for.
    value, kept = _core.aggregate(_core.Strategy("Krum", {"f": 2}, pre=[("NNM", {"f": 2})]), x, w)
    assert kept is not None and len(kept) == 1
    assert_close(value, mixed[kept[0]], x)


def test_nnm_needs_f_plus_one_clients() -> None:
    strategy = _core.Strategy("FedAvg", None, pre=[("NNM", {"f": 2})])
    with pytest.raises(
        ValueError, match=r"NNM needs at least 3 clients \(n ≥ f\+1 with f = 2\), got n = 2"
    ):
        _core.aggregate(strategy, np.ones((2, 3), np.float32), np.ones(2))


@given(data=st.data())
def test_clipping_matches_reference(data: st.DataObject) -> None:
    x = data.draw(matrices())
    tau = data.draw(st.floats(0.01, 500.0))
    assert_close(pre_rows([("Clipping", {"tau": tau})], x), clipping(x, tau), x)


def test_clipping_default_is_byzfl_c() -> None:
    schema = _core.preaggregator_schemas()["Clipping"]
    assert schema["params"]["tau"]["default"] == 2.0
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], np.float32)
    got = pre_rows([("Clipping", {})], x)
    # ByzFL's doctest output for Clipping() on this matrix.
    want = [[0.5345, 1.0690, 1.6036], [0.9117, 1.1396, 1.3675], [1.0051, 1.1487, 1.2923]]
    np.testing.assert_allclose(got, want, atol=1e-4)


@given(data=st.data())
def test_arc_matches_byzfl(data: st.DataObject) -> None:
    x = data.draw(matrices())
    f = data.draw(st.integers(0, x.shape[0]))
    assert_close(pre_rows([("ARC", {"f": f})], x), byzfl_arc(x, f), x)


def test_arc_byzfl_doctest_and_precondition() -> None:
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], np.float32)
    want = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [4.41, 5.04, 5.6701]]
    np.testing.assert_allclose(pre_rows([("ARC", {"f": 1})], x), want, atol=1e-4)
    with pytest.raises(
        ValueError, match=r"ARC needs at least 4 clients \(n ≥ f with f = 4\), got n = 3"
    ):
        _core.Strategy("FedAvg", None, pre=[("ARC", {"f": 4})]).check_clients(3)


@given(data=st.data())
def test_bucketing_buckets_are_weighted_means(data: st.DataObject) -> None:
    x = data.draw(matrices(min_n=3))
    n = x.shape[0]
    s = data.draw(st.integers(1, n // 3))
    w = data.draw(weights(n))
    seed = data.draw(st.integers(0, 2**64 - 1))
    round_ = data.draw(st.integers(0, 1000))
    krum = _core.Strategy("Krum", {"f": 0}, pre=[("Bucketing", {"s": s})])
    value, kept = _core.aggregate(krum, x, w, seed=seed, round=round_)
    assert kept is not None and len(kept) in {s, n % s}
    assert kept == sorted(set(kept))
    assert_close(value, np.average(x[kept].astype(np.float64), axis=0, weights=w[kept]), x)
    again = _core.aggregate(krum, x, w, seed=seed, round=round_, num_threads=1)
    np.testing.assert_array_equal(again[0], value)
    assert again[1] == kept


def test_bucketing_then_fedavg_is_fedavg_and_rounds_reshuffle() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(11, 64)).astype(np.float32)
    w = rng.integers(0, 30, size=11).astype(np.float64)
    w[0] = 1.0
    fedavg = _core.aggregate(_core.Strategy("FedAvg"), x, w)[0]
    for s in [1, 2, 3, 11]:
        got, _ = _core.aggregate(
            _core.Strategy("FedAvg", None, pre=[("Bucketing", {"s": s})]), x, w, seed=4
        )
        np.testing.assert_allclose(got, fedavg, rtol=1e-5, atol=1e-6)
    krum = _core.Strategy("Krum", {"f": 0}, pre=[("Bucket", {"s": 2})])
    kept = {
        tuple(_core.aggregate(krum, x, np.ones(11), seed=9, round=r)[1] or []) for r in range(12)
    }
    assert len(kept) > 1, "buckets differ across rounds"


def test_bucketing_counts_clients_after_grouping() -> None:
    strategy = _core.Strategy("Krum", {"f": 1}, pre=[("Bucketing", {"s": 2})])
    strategy.check_clients(9)
    with pytest.raises(
        ValueError, match=r"Krum needs at least 9 clients .*4 rows.*Bucketing\(s = 2\).*got n = 8"
    ):
        strategy.check_clients(8)


def test_pipeline_facts_and_repr() -> None:
    strategy = _core.Strategy(
        "Krum", {"f": 1}, pre=[("nearest_neighbor_mixing", {"f": 1}), ("clip", None)]
    )
    assert strategy.name == "Krum" and strategy.params == {"f": 1}
    assert strategy.pre == [("NNM", {"f": 1}), ("Clipping", {"tau": 2.0})]
    assert strategy.is_selection and strategy.configured_byzantine(10) == 1
    assert repr(strategy) == (
        'Strategy("Krum", {"f": 1}, pre=[("NNM", {"f": 1}), ("Clipping", {"tau": 2.0})])'
    )
    assert strategy != _core.Strategy("Krum", {"f": 1})
    assert _core.Strategy("Krum", {"f": 1}, pre=[]) == _core.Strategy("Krum", {"f": 1})
    assert _core.Strategy.krum(1).pre == []


@pytest.mark.parametrize(
    ("pre", "message"),
    [
        ("NNM", r"invalid pre: got 'NNM'"),
        ([("NNM",)], r"invalid pre\[0\]: got \('NNM',\)"),
        ([("NNM", {"f": -1})], r"invalid NNM\.f: got -1; allowed: an int in \[0, 1000000\]"),
        ([("Clipping", {"tau": 0.0})], r"invalid Clipping\.tau: got 0\.0"),
        ([("Buckting", {})], r"unknown pre-aggregator 'Buckting'; did you mean 'Bucketing'\?"),
        ([("ARC", {"g": 1})], r"unknown parameter 'g' for pre-aggregator 'ARC'; valid: f"),
        ([("ARC", 3)], r"invalid pre\[0\]"),
    ],
)
def test_bad_pre_is_one_line_value_error(pre: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        _core.Strategy("FedAvg", None, pre=pre)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["NNM", "Bucketing", "Clipping", "ARC"])
def test_non_finite_input_is_located(name: str) -> None:
    x = np.ones((6, 5), np.float32)
    x[4, 3] = np.inf
    strategy = _core.Strategy("FedMedian", None, pre=[(name, {})])
    with pytest.raises(_core.NonFiniteError, match=r"row 4 .* coordinate 3"):
        _core.aggregate(strategy, x, np.ones(6))


def test_registry_schema_and_names() -> None:
    schemas = _core.preaggregator_schemas()
    assert list(schemas) == ["NNM", "Bucketing", "Clipping", "ARC"]
    assert schemas["NNM"]["tolerance"] == "f" and schemas["ARC"]["tolerance"] == "f"
    assert schemas["Bucketing"]["seeded"] and not schemas["NNM"]["seeded"]
    assert set(schemas["NNM"]["params"]["f"]) == set(
        _core.strategy_schemas()["Krum"]["params"]["f"]
    )
    assert _core.preaggregator_name("adaptive-robust-clipping") == "ARC"
    with pytest.raises(ValueError, match="did you mean 'NNM'"):
        _core.preaggregator_name("NMM")
    bad_keys: list[dict[str, int]] = [{"seed": -1}, {"seed": True}, {"round": -1}]
    for bad in bad_keys:
        with pytest.raises(ValueError, match=r"seed|round"):
            _core.aggregate(
                _core.Strategy("FedAvg"), np.ones((2, 2), np.float32), np.ones(2), **bad
            )
