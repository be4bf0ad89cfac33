"""Datasets and partitioners: shapes, determinism, scaling, skew, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velocity.catalog import list_datasets
from velocity.sim.data import Dataset, DatasetError, load_dataset, partition


def _assert_well_formed(ds: Dataset) -> None:
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        assert x.dtype == np.float32 and x.flags.c_contiguous and x.ndim == 2
        assert y.dtype == np.int64 and y.shape == (x.shape[0],)
        assert np.isfinite(x).all()
        assert y.min() >= 0 and y.max() < ds.num_classes
    assert ds.x_train.shape[1] == ds.x_test.shape[1] == np.prod(ds.feature_shape)


def _label_skew(labels: np.ndarray, shards: list[np.ndarray]) -> float:
    """Mean total-variation distance between each client's label mix and the global one."""
    k = int(labels.max()) + 1
    overall = np.bincount(labels, minlength=k) / labels.size
    mixes = [np.bincount(labels[s], minlength=k) / s.size for s in shards]
    return float(np.mean([0.5 * np.abs(m - overall).sum() for m in mixes]))


# --- digits ---------------------------------------------------------------------------


def test_digits_shapes_and_types():
    ds = load_dataset("digits", seed=0)
    _assert_well_formed(ds)
    assert ds.name == "digits"
    assert ds.num_classes == 10
    assert ds.feature_shape == (8, 8)
    assert ds.num_features == 64
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 1797
    assert ds.x_test.shape[0] == pytest.approx(0.2 * 1797, abs=10)


def test_digits_split_is_seeded():
    a, b, c = (load_dataset("digits", seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.x_train.shape != c.x_train.shape or not np.array_equal(a.x_train, c.x_train)


def test_digits_split_is_stratified():
    ds = load_dataset("digits", seed=0, test_fraction=0.25)
    train_counts = np.bincount(ds.y_train, minlength=10)
    test_counts = np.bincount(ds.y_test, minlength=10)
    expected = 0.25 * (train_counts + test_counts)
    assert np.all(np.abs(test_counts - expected) <= 1)


def test_standardization_uses_train_statistics():
    ds = load_dataset("digits", seed=0)
    std = ds.x_train.std(axis=0)
    varying = std > 0
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(std[varying], 1.0, atol=1e-4)
    # Constant pixels (std 0) stay finite: divided by 1, not 0.
    assert not varying.all()
    assert np.isfinite(ds.x_test).all()
    # The test split was scaled with train statistics, so its own mean is not zero.
    assert np.abs(ds.x_test.mean(axis=0)).max() > 1e-2


def test_test_fraction_is_validated():
    with pytest.raises(DatasetError, match="test_fraction"):
        load_dataset("digits", seed=0, test_fraction=1.0)


def test_negative_seed_is_refused():
    with pytest.raises(ValueError, match="seed"):
        load_dataset("digits", seed=-1)


# --- synthetic ------------------------------------------------------------------------


def test_synthetic_respects_params_and_seed():
    params = {"n_samples": 500, "n_features": 7, "n_classes": 4, "class_sep": 2.0}
    a = load_dataset("synthetic", seed=1, params=params)
    b = load_dataset("synthetic", seed=1, params=params)
    c = load_dataset("synthetic", seed=2, params=params)
    _assert_well_formed(a)
    assert a.num_classes == 4 and a.feature_shape == (7,)
    assert a.x_train.shape[0] + a.x_test.shape[0] == 500
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)


def test_synthetic_defaults():
    ds = load_dataset("synthetic", seed=0)
    assert ds.num_classes == 10 and ds.feature_shape == (20,)
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 2000


def test_synthetic_rejects_unknown_and_bad_params():
    with pytest.raises(DatasetError, match="n_samples"):
        load_dataset("synthetic", seed=0, params={"samples": 10})
    with pytest.raises(DatasetError, match="n_classes=1 is invalid: must be an integer >= 2"):
        load_dataset("synthetic", seed=0, params={"n_classes": 1})
    with pytest.raises(DatasetError, match=r"n_samples=12\.5"):
        load_dataset("synthetic", seed=0, params={"n_samples": 12.5})


# --- ids and errors -------------------------------------------------------------------


def test_list_datasets_describes_every_builtin():
    listing = list_datasets()
    assert {"digits", "synthetic"} <= set(listing)
    assert all(isinstance(v, str) and v for v in listing.values())


def test_unknown_id_suggests_close_match_and_lists_ids():
    with pytest.raises(DatasetError) as err:
        load_dataset("digitz", seed=0)
    message = str(err.value)
    assert "did you mean 'digits'" in message
    assert "synthetic" in message and "owner/name" in message


def test_bare_hf_name_suggests_the_full_id():
    with pytest.raises(DatasetError, match="did you mean 'uoft-cs/cifar10'"):
        load_dataset("cifar10", seed=0)
    with pytest.raises(DatasetError, match="did you mean 'fashion_mnist'"):
        load_dataset("fashion-mnist", seed=0)


def test_hf_id_without_datasets_library(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(DatasetError) as err:
        load_dataset("ylecun/mnist", seed=0)
    assert "dataset 'ylecun/mnist' needs the Hugging Face `datasets` library" in str(err.value)
    assert "pip install 'velocity-fl[hf]'" in str(err.value)


# --- Hugging Face (local only) --------------------------------------------------------


@pytest.fixture
def hf():
    return pytest.importorskip("datasets", reason="the optional `datasets` extra is not installed")


def _pixel_dataset(hf, n: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 3).tolist()
    pixels = rng.integers(0, 256, size=(n, 4, 4)).tolist()
    ds = hf.Dataset.from_dict({"pixels": pixels, "label": labels})
    return ds.cast_column("label", hf.ClassLabel(names=["a", "b", "c"]))


def test_hf_directory_with_single_split(hf, tmp_path):
    _pixel_dataset(hf, 30, seed=0).save_to_disk(str(tmp_path))
    a = load_dataset(str(tmp_path), seed=5)
    b = load_dataset(str(tmp_path), seed=5)
    _assert_well_formed(a)
    assert a.num_classes == 3 and a.feature_shape == (4, 4)
    assert a.x_train.shape[0] + a.x_test.shape[0] == 30
    assert a.x_train.min() >= 0.0 and a.x_train.max() <= 1.0
    np.testing.assert_array_equal(a.x_train, b.x_train)


def test_hf_directory_keeps_its_test_split(hf, tmp_path):
    splits = hf.DatasetDict(train=_pixel_dataset(hf, 24, 0), test=_pixel_dataset(hf, 9, 1))
    splits.save_to_disk(str(tmp_path))
    ds = load_dataset(str(tmp_path), seed=0)
    assert ds.x_train.shape == (24, 16) and ds.x_test.shape == (9, 16)
    expected = np.asarray(splits["test"]["pixels"], dtype=np.float32).reshape(9, -1) / 255
    np.testing.assert_allclose(ds.x_test, expected)
    # A Dataset owns its arrays: changing one does not leak into the next load.
    ds.x_test[:] = 0.0
    np.testing.assert_allclose(load_dataset(str(tmp_path), seed=0).x_test, expected)


def test_hf_numeric_columns_are_standardized(hf, tmp_path):
    rng = np.random.default_rng(0)
    table = {
        "a": rng.normal(5.0, 3.0, 40).tolist(),
        "b": rng.integers(0, 100, 40).tolist(),
        "labels": (np.arange(40) % 2).tolist(),
        "note": ["x"] * 40,
    }
    hf.Dataset.from_dict(table).save_to_disk(str(tmp_path))
    ds = load_dataset(str(tmp_path), seed=0)
    assert ds.feature_shape == (2,) and ds.num_classes == 2
    np.testing.assert_allclose(ds.x_train.mean(axis=0), 0.0, atol=1e-5)


def test_hf_missing_label_column_is_explained(hf, tmp_path):
    table = {"pixels": [[1, 2]] * 10, "target": [0, 1] * 5}
    hf.Dataset.from_dict(table).save_to_disk(str(tmp_path))
    with pytest.raises(DatasetError, match="label_column"):
        load_dataset(str(tmp_path), seed=0)
    ds = load_dataset(str(tmp_path), seed=0, params={"label_column": "target"})
    assert ds.num_classes == 2


def test_hf_too_few_samples_to_split(hf, tmp_path):
    hf.Dataset.from_dict({"pixels": [[1, 2]] * 4, "label": [0, 1] * 2}).save_to_disk(str(tmp_path))
    with pytest.raises(DatasetError, match="too few samples"):
        load_dataset(str(tmp_path), seed=0)


def test_hf_directory_of_data_files(hf, tmp_path, monkeypatch):
    monkeypatch.setattr(hf.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    data_dir = tmp_path / "csv"
    data_dir.mkdir()
    rows = "\n".join(f"{i % 7},{i * 0.5},{i % 2}" for i in range(30))
    (data_dir / "train.csv").write_text("a,b,label\n" + rows + "\n")
    ds = load_dataset(str(data_dir), seed=0)
    assert ds.feature_shape == (2,) and ds.num_classes == 2
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 30


def test_hf_directory_without_data_is_explained(hf, tmp_path, monkeypatch):
    monkeypatch.setattr(hf.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="holds neither a save_to_disk dataset"):
        load_dataset(str(tmp_path / "empty"), seed=0)


def test_hf_id_not_in_cache_is_never_downloaded(hf, tmp_path, monkeypatch):
    monkeypatch.setattr(hf.config, "HF_DATASETS_CACHE", tmp_path)
    offline_before = hf.config.HF_HUB_OFFLINE
    with pytest.raises(DatasetError) as err:
        load_dataset("velocity-tests/not-cached", seed=0)
    message = str(err.value)
    assert "never downloads" in message
    assert "datasets.load_dataset('velocity-tests/not-cached')" in message
    assert offline_before == hf.config.HF_HUB_OFFLINE


# --- partition: iid -------------------------------------------------------------------


def test_iid_partition_covers_every_index_once_in_near_equal_shards():
    labels = np.arange(103) % 10
    shards = partition(labels, 7, seed=0)
    assert len(shards) == 7
    sizes = [s.size for s in shards]
    assert max(sizes) - min(sizes) <= 1
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(103))
    for s in shards:
        assert s.dtype == np.int64
        assert np.all(np.diff(s) > 0)


def test_partition_is_a_pure_function_of_its_arguments():
    labels = np.arange(500) % 10
    for scheme in ("iid", "dirichlet"):
        a = partition(labels, 8, scheme=scheme, seed=11)
        b = partition(labels, 8, scheme=scheme, seed=11)
        c = partition(labels, 8, scheme=scheme, seed=12)
        assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
        assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


# --- partition: dirichlet -------------------------------------------------------------


def test_dirichlet_small_alpha_is_visibly_non_iid():
    labels = load_dataset("digits", seed=0).y_train
    iid = partition(labels, 10, scheme="iid", seed=0)
    skewed = partition(labels, 10, scheme="dirichlet", alpha=0.1, seed=0)
    near_iid = partition(labels, 10, scheme="dirichlet", alpha=1000.0, seed=0)
    assert _label_skew(labels, iid) < 0.15
    assert _label_skew(labels, near_iid) < 0.15
    assert _label_skew(labels, skewed) > 0.5


def test_dirichlet_guarantees_min_samples_even_when_draws_fall_short():
    labels = np.arange(300) % 10
    shards = partition(labels, 50, scheme="dirichlet", alpha=0.01, seed=3, min_samples=5)
    assert min(s.size for s in shards) >= 5
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(300))
    again = partition(labels, 50, scheme="dirichlet", alpha=0.01, seed=3, min_samples=5)
    assert all(np.array_equal(x, y) for x, y in zip(shards, again, strict=True))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 200),
    num_classes=st.integers(1, 12),
    num_clients=st.integers(1, 30),
    min_samples=st.integers(0, 6),
    alpha=st.floats(0.01, 10.0),
    scheme=st.sampled_from(["iid", "dirichlet"]),
    seed=st.integers(0, 2**32),
)
def test_partition_properties(n, num_classes, num_clients, min_samples, alpha, scheme, seed):
    labels = np.random.default_rng(seed).integers(0, num_classes, n)
    if num_clients * min_samples > n:
        with pytest.raises(ValueError, match="more clients than samples"):
            partition(
                labels, num_clients, scheme=scheme, alpha=alpha, seed=seed, min_samples=min_samples
            )
        return
    shards = partition(
        labels, num_clients, scheme=scheme, alpha=alpha, seed=seed, min_samples=min_samples
    )
    assert len(shards) == num_clients
    assert min(s.size for s in shards) >= min_samples
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)), np.arange(n))


# --- partition: errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"num_clients": 0}, r"num_clients=0 .*>= 1"),
        ({"num_clients": 6}, r"more clients than samples .*12 > 10"),
        ({"num_clients": 2, "alpha": 0.0}, r"alpha=0.0 .*> 0"),
        ({"num_clients": 2, "scheme": "dirichet"}, r"did you mean 'dirichlet'.*iid, dirichlet"),
        ({"num_clients": 2, "scheme": "shard"}, r"did you mean 'shards'.*dirichlet, shards"),
        ({"num_clients": 2, "shards_per_client": 0}, r"shards_per_client=0 .*>= 1"),
        ({"num_clients": 2, "samples_per_client": 1}, r"samples_per_client=1 .*>= 2"),
        ({"num_clients": 2, "samples_per_client": True}, r"samples_per_client=True"),
        ({"num_clients": 2, "min_samples": -1}, r"min_samples=-1"),
    ],
)
def test_partition_errors_name_field_value_and_allowed(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        partition(np.arange(10) % 2, seed=0, **kwargs)


# --- known without loading: shapes, classes, memory ----------------------------------


def test_known_shape_matches_what_loading_gives():
    from velocity.catalog import known_num_classes, known_shape

    ds = load_dataset("digits", seed=0)
    samples, features, classes = known_shape("digits")
    assert samples == ds.y_train.size + ds.y_test.size
    assert (features, classes) == (ds.num_features, ds.num_classes)
    params = {"n_samples": 300, "n_features": 7, "n_classes": 3}
    ds = load_dataset("synthetic", seed=0, params=params)
    assert known_shape("synthetic", params) == (300, 7, 3) and ds.num_classes == 3
    assert known_num_classes("synthetic") == 10
    assert known_num_classes("synthetic", {"n_classes": True}) is None  # load refuses it
    assert known_num_classes("ylecun/mnist") is None


def test_dataset_memory_is_estimated_before_loading():
    from velocity.sim.data import available_memory, estimate_dataset_bytes, format_bytes

    needed, what = estimate_dataset_bytes(
        "synthetic", {"n_samples": 1_000_000_000, "n_features": 100_000}
    )
    assert needed >= 4 * 10**14 and "1,000,000,000 samples" in what
    assert estimate_dataset_bytes("ylecun/mnist") is None
    available = available_memory()
    assert available is None or available > 0
    assert format_bytes(1.5 * 2**30) == "1.5 GiB" and format_bytes(512) == "512 B"


@pytest.mark.parametrize("sep", [float("inf"), float("nan"), 1e7, -1.0, True])
def test_class_sep_is_finite_and_bounded(sep):
    with pytest.raises(DatasetError, match="class_sep"):
        load_dataset("synthetic", seed=0, params={"class_sep": sep})


def test_dataset_param_typos_get_the_close_match():
    with pytest.raises(DatasetError, match="did you mean 'n_samples'"):
        load_dataset("synthetic", seed=0, params={"n_sample": 100})


@pytest.mark.parametrize("alpha", [float("inf"), float("nan"), 0.0, -1.0])
def test_dirichlet_alpha_must_be_finite_and_positive(alpha):
    with pytest.raises(ValueError, match="alpha"):
        partition(np.arange(100) % 10, 4, scheme="dirichlet", alpha=alpha, seed=0)


@pytest.mark.parametrize("dataset_id", ["a" * 300, "x/" + "a" * 300, "bad\0id"])
def test_ids_the_os_cannot_look_up_are_unknown_not_oserror(dataset_id):
    with pytest.raises(DatasetError):
        load_dataset(dataset_id, seed=0)


# --- partition: unchanged without samples_per_client ---------------------------------


def _reference_partition(labels, num_clients, scheme, alpha, seed, min_samples=2):
    """iid and dirichlet as they were before shards and samples_per_client existed."""
    if scheme == "iid":
        order = np.random.default_rng(seed).permutation(labels.shape[0])
        shards = np.array_split(order, num_clients)
        return [np.sort(s).astype(np.int64, copy=False) for s in shards]
    best = []
    for attempt in range(10):
        rng = np.random.default_rng([seed, attempt])
        parts = [[] for _ in range(num_clients)]
        for c in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == c))
            proportions = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(proportions)[:-1] * members.size).astype(np.int64)
            for client, chunk in enumerate(np.split(members, cuts)):
                parts[client].append(chunk)
        draw = [np.concatenate(p) for p in parts]
        if min(d.size for d in draw) >= min_samples:
            return [np.sort(d).astype(np.int64, copy=False) for d in draw]
        if not best or min(d.size for d in draw) > min(d.size for d in best):
            best = draw
    pools = [list(d) for d in best]
    for client, pool in enumerate(pools):
        while len(pool) < min_samples:
            donor = max(range(len(pools)), key=lambda i: (len(pools[i]), -i))
            pools[client].append(pools[donor].pop())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in pools]


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(20, 400),
    num_classes=st.integers(1, 12),
    num_clients=st.integers(1, 10),
    alpha=st.floats(0.05, 5.0),
    scheme=st.sampled_from(["iid", "dirichlet"]),
    seed=st.integers(0, 2**32),
    shards_per_client=st.integers(1, 5),
)
def test_iid_and_dirichlet_are_unchanged_for_every_seed(
    n, num_classes, num_clients, alpha, scheme, seed, shards_per_client
):
    labels = np.random.default_rng(seed).integers(0, num_classes, n)
    new = partition(
        labels,
        num_clients,
        scheme=scheme,
        alpha=alpha,
        seed=seed,
        shards_per_client=shards_per_client,
        samples_per_client=None,
    )
    old = _reference_partition(labels, num_clients, scheme, alpha, seed)
    assert len(new) == len(old)
    for a, b in zip(new, old, strict=True):
        np.testing.assert_array_equal(a, np.sort(b))
        assert a.dtype == np.int64


# --- partition: shards (McMahan et al. 2017) ------------------------------------------


def test_shards_mcmahan_setup_gives_two_labels_per_client():
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 6000))
    parts = partition(labels, 100, scheme="shards", shards_per_client=2, seed=1)
    assert [p.size for p in parts] == [600] * 100
    assert max(np.unique(labels[p]).size for p in parts) <= 2
    everything = np.concatenate(parts)
    np.testing.assert_array_equal(np.sort(everything), np.arange(60_000))  # 200 × 300 = n
    # each client's samples come in runs of 300 of one label: whole shards
    for p in parts[:10]:
        counts = np.bincount(labels[p], minlength=10)
        assert set(counts[counts > 0]) <= {300, 600}


@settings(max_examples=60, deadline=None)
@given(
    num_classes=st.integers(1, 10),
    per_class=st.integers(5, 60),
    num_clients=st.integers(1, 12),
    shards_per_client=st.integers(1, 4),
    seed=st.integers(0, 2**32),
)
def test_shards_properties(num_classes, per_class, num_clients, shards_per_client, seed):
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(num_classes), per_class))
    n, count = labels.size, num_clients * shards_per_client
    if count > n or shards_per_client * (n // count) < 2:
        with pytest.raises(ValueError, match=r"partition 'shards'|more clients than samples"):
            partition(
                labels,
                num_clients,
                scheme="shards",
                shards_per_client=shards_per_client,
                seed=seed,
                min_samples=2,
            )
        return
    parts = partition(
        labels, num_clients, scheme="shards", shards_per_client=shards_per_client, seed=seed
    )
    size = n // count
    assert [p.size for p in parts] == [shards_per_client * size] * num_clients
    everything = np.concatenate(parts)
    assert np.unique(everything).size == everything.size == count * size  # disjoint
    assert everything.min() >= 0 and everything.max() < n
    # a shard of `size` label-sorted samples spans at most ceil((size - 1) / per_class) + 1
    # labels, so a client at most shards_per_client times that
    per_shard = -(-(size - 1) // per_class) + 1
    assert max(np.unique(labels[p]).size for p in parts) <= shards_per_client * per_shard
    again = partition(
        labels, num_clients, scheme="shards", shards_per_client=shards_per_client, seed=seed
    )
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_shards_differ_by_seed_and_refuse_too_few_samples():
    labels = np.arange(200) % 10
    a = partition(labels, 10, scheme="shards", seed=0)
    b = partition(labels, 10, scheme="shards", seed=1)
    assert not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    with pytest.raises(ValueError) as err:
        partition(labels, 100, scheme="shards", shards_per_client=3, seed=0)
    message = str(err.value)
    assert "\n" not in message
    assert "clients × shards_per_client = 100 × 3 = 300 training samples" in message
    assert "got 200" in message


def test_shards_leave_the_remainder_out_at_random():
    labels = np.arange(103) % 10  # 10 clients × 2 shards of 5; 3 samples left over
    parts = partition(labels, 10, scheme="shards", seed=0)
    assert [p.size for p in parts] == [10] * 10
    left = {
        s: set(range(103))
        - set(np.concatenate(partition(labels, 10, scheme="shards", seed=s)).tolist())
        for s in range(6)
    }
    assert all(len(v) == 3 for v in left.values())
    assert len({frozenset(v) for v in left.values()}) > 1


# --- partition: samples_per_client ---------------------------------------------------


@pytest.mark.parametrize("scheme", ["iid", "dirichlet", "shards"])
def test_samples_per_client_caps_each_client_with_a_subset(scheme):
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(10), 100))
    full = partition(labels, 10, scheme=scheme, alpha=0.3, seed=5)
    capped = partition(labels, 10, scheme=scheme, alpha=0.3, seed=5, samples_per_client=40)
    for whole, part in zip(full, capped, strict=True):
        assert part.size == min(40, whole.size)
        assert set(part.tolist()) <= set(whole.tolist())
        assert np.all(np.diff(part) > 0) and part.dtype == np.int64
    again = partition(labels, 10, scheme=scheme, alpha=0.3, seed=5, samples_per_client=40)
    assert all(np.array_equal(a, b) for a, b in zip(capped, again, strict=True))
    other = partition(labels, 10, scheme=scheme, alpha=0.3, seed=6, samples_per_client=40)
    assert not all(np.array_equal(a, b) for a, b in zip(capped, other, strict=True))


def test_iid_samples_per_client_samples_the_whole_set_without_replacement():
    labels = np.arange(60_000) % 10
    parts = partition(labels, 100, seed=0, samples_per_client=600)
    assert [p.size for p in parts] == [600] * 100
    everything = np.concatenate(parts)
    np.testing.assert_array_equal(np.sort(everything), np.arange(60_000))
    parts = partition(labels, 100, seed=0, samples_per_client=100)
    everything = np.concatenate(parts)
    assert everything.size == np.unique(everything).size == 10_000
    # more asked than there is: the cap does not bind, each keeps its near-equal share
    parts = partition(np.arange(500) % 10, 10, seed=0, samples_per_client=80)
    assert [p.size for p in parts] == [50] * 10


def test_the_server_partitions_with_the_settings():
    from velocity.sim.server import VelocityServer

    server = VelocityServer(
        "logreg",
        "digits",
        "FedAvg",
        clients=8,
        partition="shards",
        shards_per_client=3,
        samples_per_client=50,
        rounds=1,
    )
    sizes = [c.y.size for c in server._clients]
    assert sizes == [50] * 8
    assert max(np.unique(c.y).size for c in server._clients) <= 6
