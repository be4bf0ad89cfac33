"""Datasets and client partitioners.

Three kinds of dataset ids are understood:

- ``"digits"`` (the default): the UCI handwritten digits, embedded in the package
  (``velocity/datasets/digits.csv.gz``), so the default path runs offline.
- ``"synthetic"``: seeded Gaussian-cluster classification at any size.
- A Hugging Face id ``"owner/name"`` or a directory written by ``save_to_disk``, read
  through the optional ``datasets`` library from the local cache only; velocity never
  downloads at run time.

Every dataset comes back as flat float32 features (``(N, F)``, C-contiguous) and int64
labels. Tabular features are standardized with the *train* mean and standard deviation;
image columns are scaled to [0, 1].

Partitioners split the train set among clients: ``"iid"`` (seeded shuffle, near-equal
shards) and ``"dirichlet"`` (label skew with per-class proportions drawn from
Dir(alpha); Hsu et al., 2019, https://arxiv.org/abs/1909.06335).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from velocity._inline import did_you_mean, short_repr, shown
from velocity.catalog import DATASETS, SYNTHETIC_DEFAULTS, known_shape

__all__ = [
    "Dataset",
    "DatasetError",
    "estimate_dataset_bytes",
    "load_dataset",
    "partition",
]

_DIGITS_PATH = Path(__file__).parents[1] / "datasets" / "digits.csv.gz"
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LABEL_COLUMNS = ("label", "labels")
_IMAGE_COLUMNS = ("image", "img", "pixels")
_SYNTHETIC_INT_MINIMA = {"n_samples": 4, "n_features": 1, "n_classes": 2}
_HF_PARAMS = ("config", "label_column", "feature_column")
_HF_EXAMPLES = ("ylecun/mnist", "zalando-datasets/fashion_mnist", "uoft-cs/cifar10")
#: Largest class_sep of the synthetic data (centres ~ N(0, class_sep²)).
_MAX_CLASS_SEP = 1e6
_SCHEMES = ("iid", "dirichlet")
_DIRICHLET_TRIES = 10


class DatasetError(ValueError):
    """A dataset id, its parameters or its contents cannot be used."""


@dataclass(frozen=True)
class Dataset:
    """A classification dataset split into train and test.

    Parameters
    ----------
    name : str
        The id it was loaded from.
    x_train : np.ndarray
        float32, C-contiguous, shape ``(n_train, num_features)``.
    y_train : np.ndarray
        int64 labels in ``[0, num_classes)``, shape ``(n_train,)``.
    x_test : np.ndarray
        float32, C-contiguous, shape ``(n_test, num_features)``.
    y_test : np.ndarray
        int64 labels, shape ``(n_test,)``.
    num_classes : int
        Number of classes.
    feature_shape : tuple of int
        Shape of one sample before flattening, e.g. ``(8, 8)`` for digits.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    feature_shape: tuple[int, ...]

    @property
    def num_features(self) -> int:
        """Length of one flat feature vector."""
        return int(self.x_train.shape[1])


def estimate_dataset_bytes(
    dataset_id: str, params: Mapping[str, Any] | None = None
) -> tuple[int, str] | None:
    """Peak bytes :func:`load_dataset` plus the client partition need, and how it is counted.

    The synthetic data is drawn in float64 (noise, centres, their sum), then cast to
    float32, split and standardised through float64 temporaries, and every client
    gets its own copy of its rows: about 32 bytes per value at the peak, i.e. eight
    float32 copies of the ``n_samples × n_features`` matrix. None when the size is
    only known after loading (a Hugging Face dataset).
    """
    shape = known_shape(dataset_id, params)
    if shape is None:
        return None
    n, f, _ = shape
    values = n * f
    return 32 * values + 16 * n, f"{dataset_id} {n:,} samples × {f:,} features (float32)"


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation: ``MemAvailable`` in /proc/meminfo
    (Linux), else free physical pages; None when neither can be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def format_bytes(n: float) -> str:
    """``1.5 GiB``, ``300 MiB``, ``12 KiB``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 100 else f"{math.floor(value):,} {unit}"
    return f"{int(n)} B"


def load_dataset(
    dataset_id: str,
    *,
    seed: int,
    test_fraction: float = 0.2,
    params: Mapping[str, Any] | None = None,
) -> Dataset:
    """Load a dataset and split it into train and test.

    Parameters
    ----------
    dataset_id : str
        ``"digits"``, ``"synthetic"``, a Hugging Face id ``"owner/name"`` or a
        directory written by ``datasets.Dataset.save_to_disk``.
    seed : int
        Seeds the train/test split (and the synthetic data). Non-negative.
    test_fraction : float (default: 0.2)
        Share of samples held out for testing, in (0, 1). Unused when a Hugging Face
        dataset has its own ``"test"`` split.
    params : mapping, optional
        Dataset-specific options. ``"synthetic"``: ``n_samples``, ``n_features``,
        ``n_classes``, ``class_sep``. Hugging Face: ``config``, ``label_column``,
        ``feature_column``.

    Returns
    -------
    Dataset
        Flat float32 features and int64 labels, split with a stratified seeded split.

    Raises
    ------
    DatasetError
        Unknown id, bad parameters, ``datasets`` missing, or a dataset not in the
        local cache.
    """
    _check_seed(seed)
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction={test_fraction!r} is invalid: must be in (0, 1)")
    params = dict(params or {})
    if dataset_id == "digits":
        _check_params(dataset_id, params, ())
        x, y = _digits_raw()
        return _finish(dataset_id, x, y, 10, (8, 8), seed, test_fraction, standardize=True)
    if dataset_id == "synthetic":
        _check_params(dataset_id, params, tuple(SYNTHETIC_DEFAULTS))
        x, y, num_classes = _synthetic(seed, {**SYNTHETIC_DEFAULTS, **params})
        shape = (x.shape[1],)
        return _finish(dataset_id, x, y, num_classes, shape, seed, test_fraction, standardize=True)
    if _is_dir(dataset_id) or _HF_ID.match(dataset_id):
        _check_params(dataset_id, params, _HF_PARAMS)
        return _load_hf(dataset_id, seed, test_fraction, params)
    raise DatasetError(_unknown_id_message(dataset_id))


def partition(
    labels: np.ndarray,
    num_clients: int,
    *,
    scheme: str = "iid",
    alpha: float = 0.5,
    seed: int,
    min_samples: int = 2,
) -> list[np.ndarray]:
    """Split sample indices among clients.

    ``"iid"`` shuffles the indices with the seed and cuts them into near-equal shards.
    ``"dirichlet"`` follows Hsu et al. (2019): for each class :math:`c`, the class's
    samples are shared out by proportions :math:`p_c \\sim \\mathrm{Dir}(\\alpha
    \\mathbf{1}_K)` over the :math:`K` clients, so a small ``alpha`` gives each client
    few classes. If a client ends with fewer than ``min_samples``, the draw is
    repeated with derived seeds (up to 10 tries); if still short, the best draw is
    topped up by moving samples from the largest clients.

    Parameters
    ----------
    labels : np.ndarray
        Integer train labels, shape ``(n,)``.
    num_clients : int
        Number of clients, at least 1.
    scheme : str (default: "iid")
        ``"iid"`` or ``"dirichlet"``.
    alpha : float (default: 0.5)
        Dirichlet concentration, > 0; smaller is more skewed. Ignored by ``"iid"``.
    seed : int
        Seed; the result is a pure function of the arguments. Non-negative.
    min_samples : int (default: 2)
        Least number of samples per client; ``num_clients * min_samples <= n``.

    Returns
    -------
    list of np.ndarray
        One sorted int64 index array per client; together they cover every index once.

    Raises
    ------
    ValueError
        Bad ``num_clients``, ``min_samples``, ``alpha``, ``scheme`` or ``seed``.
    """
    labels = np.asarray(labels)
    _check_partition_args(labels, num_clients, scheme, alpha, seed, min_samples)
    if scheme == "iid":
        order = np.random.default_rng(seed).permutation(labels.shape[0])
        shards = np.array_split(order, num_clients)
    else:
        shards = _dirichlet(labels, num_clients, alpha, seed, min_samples)
    return [np.sort(s).astype(np.int64, copy=False) for s in shards]


# --- validation -----------------------------------------------------------------------


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed={seed!r} is invalid: must be a non-negative integer")


def _check_params(dataset_id: str, params: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed), key=str)
    if unknown:
        allowed_text = ", ".join(allowed) if allowed else "none"
        hint = did_you_mean(str(unknown[0]), allowed) if allowed else ""
        raise DatasetError(
            f"dataset '{dataset_id}' does not take params {short_repr(unknown)}{hint}; "
            f"allowed: {allowed_text}"
        )


def _check_partition_args(
    labels: np.ndarray, num_clients: int, scheme: str, alpha: float, seed: int, min_samples: int
) -> None:
    _check_seed(seed)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if num_clients < 1:
        raise ValueError(f"num_clients={num_clients} is invalid: must be >= 1")
    if min_samples < 0:
        raise ValueError(f"min_samples={min_samples} is invalid: must be >= 0")
    n = labels.shape[0]
    if num_clients * min_samples > n:
        raise ValueError(
            f"num_clients={num_clients} is invalid: more clients than samples "
            f"(num_clients * min_samples = {num_clients * min_samples} > {n} samples)"
        )
    if not (isinstance(alpha, int | float) and 0 < alpha < math.inf):
        raise ValueError(f"alpha={short_repr(alpha)} is invalid: must be a finite number > 0")
    if scheme not in _SCHEMES:
        raise ValueError(
            f"scheme={scheme!r} is invalid{_suggest(scheme, _SCHEMES)}; "
            f"allowed: {', '.join(_SCHEMES)}"
        )


def _suggest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    return did_you_mean(name, choices)


def _is_dir(path: str) -> bool:
    """``Path(path).is_dir()``, False (not an error) for a path the OS cannot even look up
    (a component longer than NAME_MAX, a NUL byte)."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for a path the OS cannot look up (see :func:`_is_dir`)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _unknown_id_message(dataset_id: str) -> str:
    known = [k for k in DATASETS if k != "owner/name"]
    spellings = {k: k for k in known}
    for hf_id in _HF_EXAMPLES:
        spellings[hf_id] = spellings[hf_id.split("/")[1]] = hf_id
    hint = did_you_mean(dataset_id, spellings)
    return (
        f"dataset '{shown(dataset_id)}' is unknown{hint}; available: {', '.join(known)}, "
        "a Hugging Face id 'owner/name' in the local cache (e.g. 'ylecun/mnist'), "
        "or a directory written by save_to_disk"
    )


# --- built-in datasets ----------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    """Parse the embedded digits once per process (read-only arrays)."""
    with gzip.open(_DIGITS_PATH, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    x = np.ascontiguousarray(table[:, :-1])
    y = table[:, -1].astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _synthetic(seed: int, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """Gaussian clusters: class centers ~ N(0, class_sep^2 I), unit-variance noise."""
    n, f, c = (_int_param(p, key, low) for key, low in _SYNTHETIC_INT_MINIMA.items())
    sep = p["class_sep"]
    if (
        isinstance(sep, bool)
        or not isinstance(sep, int | float)
        or not 0 <= sep <= _MAX_CLASS_SEP  # also refuses NaN
    ):
        raise DatasetError(
            f"synthetic param class_sep={short_repr(sep)} is invalid: must be a finite number in "
            f"[0, {_MAX_CLASS_SEP:g}]"
        )
    if n < 2 * c:
        raise DatasetError(
            f"synthetic param n_samples={n} is invalid: must be >= 2 * n_classes = {2 * c}"
        )
    rng = np.random.default_rng([seed, 1])
    centers = rng.normal(scale=float(sep), size=(c, f))
    y = rng.permutation(np.arange(n) % c).astype(np.int64)
    x = (centers[y] + rng.standard_normal((n, f))).astype(np.float32)
    return x, y, c


def _int_param(p: dict[str, Any], key: str, low: int) -> int:
    value = p[key]
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise DatasetError(
            f"synthetic param {key}={short_repr(value)} is invalid: must be an integer >= {low}"
        )
    return int(value)


# --- split and scale ------------------------------------------------------------------


def _stratified_split(
    y: np.ndarray, seed: int, test_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split holding out ``round(test_fraction * n_c)`` samples of each class."""
    rng = np.random.default_rng([seed, 0])
    test_parts = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test_parts.append(members[: round(test_fraction * members.size)])
    test = np.sort(np.concatenate(test_parts))
    train = np.setdiff1d(np.arange(y.size), test, assume_unique=True)
    return train, test


def _standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scale both splits with the train mean and std (a zero std counts as 1)."""
    mean = x_train.mean(axis=0, dtype=np.float64)
    std = x_train.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


def _finish(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    feature_shape: tuple[int, ...],
    seed: int,
    test_fraction: float,
    *,
    standardize: bool,
) -> Dataset:
    """Split one pool of samples with the seed and build the Dataset."""
    train, test = _stratified_split(y, seed, test_fraction)
    if train.size == 0 or test.size == 0:
        raise DatasetError(
            f"dataset '{name}' has too few samples ({y.size}) to split with "
            f"test_fraction={test_fraction}: train and test must both be non-empty"
        )
    return _assemble(
        name,
        (x[train], y[train]),
        (x[test], y[test]),
        num_classes,
        feature_shape,
        standardize=standardize,
    )


def _assemble(
    name: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    feature_shape: tuple[int, ...],
    *,
    standardize: bool,
) -> Dataset:
    (x_train, y_train), (x_test, y_test) = train, test
    if standardize:
        x_train, x_test = _standardize(x_train, x_test)
    # np.array copies: a Dataset owns its arrays, never a view of a cached parse.
    return Dataset(
        name=name,
        x_train=np.array(x_train, dtype=np.float32, order="C"),
        y_train=np.array(y_train, dtype=np.int64, order="C"),
        x_test=np.array(x_test, dtype=np.float32, order="C"),
        y_test=np.array(y_test, dtype=np.int64, order="C"),
        num_classes=int(num_classes),
        feature_shape=tuple(int(d) for d in feature_shape),
    )


# --- partitioners ---------------------------------------------------------------------


def _dirichlet_draw(
    labels: np.ndarray, num_clients: int, alpha: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """One Hsu et al. draw: each class shared out by Dir(alpha) proportions."""
    parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        proportions = rng.dirichlet(np.full(num_clients, alpha))
        cuts = (np.cumsum(proportions)[:-1] * members.size).astype(np.int64)
        for client, chunk in enumerate(np.split(members, cuts)):
            parts[client].append(chunk)
    return [np.concatenate(p) for p in parts]


def _dirichlet(
    labels: np.ndarray, num_clients: int, alpha: float, seed: int, min_samples: int
) -> list[np.ndarray]:
    best: list[np.ndarray] = []
    for attempt in range(_DIRICHLET_TRIES):
        shards = _dirichlet_draw(labels, num_clients, alpha, np.random.default_rng([seed, attempt]))
        if min(s.size for s in shards) >= min_samples:
            return shards
        if not best or min(s.size for s in shards) > min(s.size for s in best):
            best = shards
    return _top_up(best, min_samples)


def _top_up(shards: list[np.ndarray], min_samples: int) -> list[np.ndarray]:
    """Move samples, one at a time, from the largest client to each short client.

    Feasible because ``len(shards) * min_samples <= total``: while any client is short,
    the largest holds more than ``min_samples``.
    """
    pools = [list(s) for s in shards]
    for client, pool in enumerate(pools):
        while len(pool) < min_samples:
            donor = max(range(len(pools)), key=lambda i: (len(pools[i]), -i))
            pools[client].append(pools[donor].pop())
    return [np.asarray(p, dtype=np.int64) for p in pools]


# --- Hugging Face -----------------------------------------------------------------------


class _HfArrays(NamedTuple):
    """One parsed Hugging Face dataset, cached per process (read-only arrays)."""

    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray] | None
    num_classes: int
    feature_shape: tuple[int, ...]
    is_image: bool


def _load_hf(dataset_id: str, seed: int, test_fraction: float, params: dict[str, Any]) -> Dataset:
    for key, value in params.items():
        if not isinstance(value, str):
            raise DatasetError(f"param {key}={short_repr(value)} is invalid: must be a string")
    parsed = _hf_parse(
        dataset_id, params.get("config"), params.get("label_column"), params.get("feature_column")
    )
    standardize = not parsed.is_image
    if parsed.test is not None:
        return _assemble(
            dataset_id,
            parsed.train,
            parsed.test,
            parsed.num_classes,
            parsed.feature_shape,
            standardize=standardize,
        )
    x, y = parsed.train
    return _finish(
        dataset_id,
        x,
        y,
        parsed.num_classes,
        parsed.feature_shape,
        seed,
        test_fraction,
        standardize=standardize,
    )


@functools.lru_cache(maxsize=4)
def _hf_parse(
    dataset_id: str, config: str | None, label_column: str | None, feature_column: str | None
) -> _HfArrays:
    """Read the train (and test, if any) split into flat arrays."""
    splits = _hf_splits(dataset_id, config)
    train_name = _pick_train_split(dataset_id, list(splits))
    train_ds = splits[train_name]
    label_col = _pick_label_column(dataset_id, train_ds, label_column)
    feature_cols, is_image = _pick_feature_columns(dataset_id, train_ds, label_col, feature_column)
    x, y, shape = _hf_arrays(dataset_id, train_ds, label_col, feature_cols, is_image)
    num_classes = _num_classes(train_ds, label_col, y)
    test = None
    if "test" in splits and train_name != "test":
        x_test, y_test, _ = _hf_arrays(
            dataset_id, splits["test"], label_col, feature_cols, is_image
        )
        num_classes = max(num_classes, int(y_test.max(initial=-1)) + 1)
        test = (x_test, y_test)
    for array in (x, y, *(test or ())):
        array.setflags(write=False)
    return _HfArrays((x, y), test, num_classes, shape, is_image)


def _import_datasets(dataset_id: str) -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise DatasetError(
            f"dataset '{dataset_id}' needs the Hugging Face `datasets` library: "
            "pip install 'velocity-fl[hf]' (or pip install datasets); the built-in 'digits' "
            "and 'synthetic' datasets work without it"
        ) from exc
    return datasets


@contextlib.contextmanager
def _hf_offline(datasets: Any) -> Iterator[None]:
    """Force the Hugging Face libraries offline for the duration of one load."""
    from huggingface_hub import constants as hub_constants

    saved = datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def _hf_splits(dataset_id: str, config: str | None) -> dict[str, Any]:
    """Return ``{split name: datasets.Dataset}`` from a directory or the local cache."""
    datasets = _import_datasets(dataset_id)
    path = Path(dataset_id)
    if _is_file(path / "state.json") or _is_file(path / "dataset_dict.json"):
        loaded = datasets.load_from_disk(dataset_id)
    else:
        loaded = _load_offline(datasets, dataset_id, config)
    if isinstance(loaded, datasets.Dataset):
        return {"train": loaded}
    return dict(loaded)


def _load_offline(datasets: Any, dataset_id: str, config: str | None) -> Any:
    """``datasets.load_dataset`` restricted to local files and the local cache."""
    try:
        with _hf_offline(datasets):
            return datasets.load_dataset(
                dataset_id, config, download_config=datasets.DownloadConfig(local_files_only=True)
            )
    except OSError as exc:
        if _is_dir(dataset_id):
            raise DatasetError(
                f"directory '{dataset_id}' holds neither a save_to_disk dataset nor data files "
                f"the datasets library can read: {exc}"
            ) from exc
        raise DatasetError(
            f"dataset '{dataset_id}' is not in the local Hugging Face cache and velocity "
            "never downloads at run time. Fetch it once while online with: "
            f"python -c \"import datasets; datasets.load_dataset('{dataset_id}')\" "
            f"(or, if '{dataset_id}' is meant as a local directory, it does not exist)"
        ) from exc


def _pick_train_split(dataset_id: str, names: list[str]) -> str:
    if "train" in names:
        return "train"
    if len(names) == 1:
        return names[0]
    raise DatasetError(f"dataset '{dataset_id}' has no 'train' split; splits: {names}")


def _pick_label_column(dataset_id: str, ds: Any, requested: str | None) -> str:
    candidates = (requested,) if requested else _LABEL_COLUMNS
    for name in candidates:
        if name in ds.column_names:
            return name
    raise DatasetError(
        f"dataset '{dataset_id}' has no label column {list(candidates)}; columns: "
        f"{ds.column_names}; pass params={{'label_column': ...}}"
    )


def _pick_feature_columns(
    dataset_id: str, ds: Any, label_col: str, requested: str | None
) -> tuple[list[str], bool]:
    """Return the feature columns and whether they hold one image-like array per sample."""
    if requested:
        if requested not in ds.column_names:
            raise DatasetError(
                f"feature_column={requested!r} is not a column of dataset '{dataset_id}'; "
                f"columns: {ds.column_names}"
            )
        return [requested], not _is_numeric_scalar(ds.features[requested])
    for name in _IMAGE_COLUMNS:
        if name in ds.column_names:
            return [name], True
    numeric = [c for c in ds.column_names if c != label_col and _is_numeric_scalar(ds.features[c])]
    if not numeric:
        raise DatasetError(
            f"dataset '{dataset_id}' has no image column {list(_IMAGE_COLUMNS)} and no numeric "
            f"feature columns; columns: {ds.column_names}; pass params={{'feature_column': ...}}"
        )
    return numeric, False


def _is_numeric_scalar(feature: Any) -> bool:
    dtype = getattr(feature, "dtype", "")
    return type(feature).__name__ == "Value" and dtype.startswith(("int", "uint", "float", "bool"))


def _hf_arrays(
    dataset_id: str, ds: Any, label_col: str, feature_cols: list[str], is_image: bool
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Flat float32 features, int64 labels and the per-sample shape of one split."""
    try:
        table = ds.select_columns([*feature_cols, label_col]).with_format("numpy")[:]
    except ImportError as exc:
        raise DatasetError(f"decoding dataset '{dataset_id}' needs: {exc}") from exc
    y = np.asarray(table[label_col])
    if not np.issubdtype(y.dtype, np.integer) or y.min(initial=0) < 0:
        raise DatasetError(
            f"label column '{label_col}' of dataset '{dataset_id}' must hold non-negative "
            f"integers (class ids), got dtype {y.dtype}"
        )
    if is_image:
        x = np.asarray(table[feature_cols[0]])
        if x.dtype == object:
            raise DatasetError(
                f"column '{feature_cols[0]}' of dataset '{dataset_id}' holds samples of "
                "different shapes; velocity needs one fixed shape"
            )
        shape = x.shape[1:]
        x = _scale_unit(x.reshape(x.shape[0], -1).astype(np.float32))
    else:
        x = np.stack([np.asarray(table[c], dtype=np.float32) for c in feature_cols], axis=1)
        shape = (x.shape[1],)
    return np.ascontiguousarray(x), y.astype(np.int64), tuple(shape)


def _scale_unit(x: np.ndarray) -> np.ndarray:
    """Scale pixels to [0, 1]: 0..255 data is divided by 255, larger ranges by the max."""
    high = float(x.max(initial=0.0))
    if high > 1.0:
        x /= 255.0 if high <= 255.0 else high
    return x


def _num_classes(ds: Any, label_col: str, y: np.ndarray) -> int:
    feature = ds.features[label_col]
    if type(feature).__name__ == "ClassLabel":
        return int(feature.num_classes)
    return int(y.max(initial=-1)) + 1
