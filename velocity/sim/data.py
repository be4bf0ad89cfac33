"""Datasets and client partitioners.

The dataset ids understood (docs/datasets.md tells where each is found):

- ``"digits"`` (the default): the UCI handwritten digits, embedded in the package
  (``velocity/datasets/digits.csv.gz``), so the default path runs offline.
- ``"synthetic"``: seeded Gaussian-cluster classification at any size.
- ``"fashion_mnist"`` and ``"mnist"``: 28×28×1 grey images, 10 classes, with their
  own 60,000/10,000 train/test split. Fashion-MNIST: Xiao, Rasul and Vollgraf, 2017,
  "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning
  Algorithms", https://arxiv.org/abs/1708.07747 (MIT licence). Found, in order, in
  ``dataset_params.path`` (an IDX directory), Debian's ``dataset-fashion-mnist``
  package (``/usr/share/datasets/fashion-mnist``; no package ships MNIST), then the
  Hugging Face cache (``zalando-datasets/fashion_mnist``, ``ylecun/mnist``).
- ``"idx:DIR"``: a directory of the four MNIST-format IDX files
  (:mod:`velocity.sim.idx`), with their own test split.
- ``"module:callable"``: a loader of your own, imported by name
  (:mod:`velocity.sim.userdata`).
- A Hugging Face id ``"owner/name"`` or a directory written by ``save_to_disk``, read
  through the optional ``datasets`` library from the local cache only.

velocity never downloads at run time. Every dataset comes back as flat samples
(``(N, F)``, C-contiguous) and int64 labels, and :meth:`Dataset.features` gives any rows
of them as float32 features. Tabular features are standardized with the *train* mean
and standard deviation; image data (IDX files, Hugging Face image columns) is scaled to
[0, 1]; a loader's features are used as given. IDX images stay uint8 pixels in memory
(a quarter of float32: 47 MB instead of 188 MB for Fashion-MNIST's train set, shared
with the file cache) and become float32 per client and round, when a client's rows are
gathered anyway.
``test_fraction`` applies only to datasets without a test split of their own.

Partitioners split the train set among clients (:func:`partition`): ``"iid"``
(seeded shuffle, near-equal parts), ``"dirichlet"`` (label skew with per-class
proportions drawn from Dir(alpha); Hsu et al., 2019, https://arxiv.org/abs/1909.06335)
and ``"shards"`` (the pathological non-IID split of McMahan et al., 2017,
"Communication-Efficient Learning of Deep Networks from Decentralized Data", AISTATS,
https://arxiv.org/abs/1602.05629). ``samples_per_client`` caps what each client holds.
A partition is a list of index arrays into the train set, not a copy of its rows.
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
from velocity.catalog import (
    DATASET_FORMS,
    DATASETS,
    IDX_PREFIX,
    MNIST_FAMILY,
    MNIST_IMAGE_SHAPE,
    SYNTHETIC_DEFAULTS,
    known_shape,
)
from velocity.sim.idx import IdxError, read_idx
from velocity.sim.userdata import UserDataError, is_user_id, load_user_data

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
_SCHEMES = ("iid", "dirichlet", "shards")
_DIRICHLET_TRIES = 10
# Stream ids that keep the partitioners' random streams apart from the iid shuffle.
_SHARDS_STREAM = 0x5A4D
_CAP_STREAM = 0xCA9

#: Where Debian's packages install the MNIST family (``apt-get install <package>``).
SYSTEM_DIRS: dict[str, Path] = {"fashion_mnist": Path("/usr/share/datasets/fashion-mnist")}
_PACKAGES = {"fashion_mnist": "dataset-fashion-mnist"}
#: The four files of an IDX directory: (split, kind) -> base name; each raw or ``.gz``.
_IDX_FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
_IDX_LAYOUT = (
    "an IDX directory holds train-images-idx3-ubyte, train-labels-idx1-ubyte, "
    "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each raw or .gz"
)


class DatasetError(ValueError):
    """A dataset id, its parameters or its contents cannot be used."""


class _HfUnavailableError(DatasetError):
    """A Hugging Face dataset that cannot be had offline: ``datasets`` missing or not cached.

    ``reason`` says which, in a few words, for the MNIST family's not-found line.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Dataset:
    """A classification dataset split into train and test.

    Parameters
    ----------
    name : str
        The id it was loaded from.
    x_train : np.ndarray
        The train samples, C-contiguous, shape ``(n_train, num_features)``: float32
        features, or uint8 pixels when ``pixel_max`` is set (read :meth:`features`).
    y_train : np.ndarray
        int64 labels in ``[0, num_classes)``, shape ``(n_train,)``.
    x_test : np.ndarray
        The test samples, shape ``(n_test, num_features)``, stored as ``x_train``.
    y_test : np.ndarray
        int64 labels, shape ``(n_test,)``.
    num_classes : int
        Number of classes.
    feature_shape : tuple of int
        Shape of one sample before flattening, e.g. ``(8, 8)`` for digits.
    pixel_max : float, optional
        None: the samples are the features. A number: they are uint8 pixels (read-only
        views of the cached files) and the features are ``pixels / pixel_max`` in float32.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    feature_shape: tuple[int, ...]
    pixel_max: float | None = None

    @property
    def num_features(self) -> int:
        """Length of one flat feature vector."""
        return int(self.x_train.shape[1])

    def features(self, samples: np.ndarray) -> np.ndarray:
        """The float32 features of stored ``samples`` (rows of ``x_train`` or ``x_test``).

        Pixels are divided in float32, as the images were when loaded whole, so the
        features are the same bits either way; float32 samples come back as they are.
        """
        if self.pixel_max is None:
            return samples
        out = samples.astype(np.float32)
        out /= self.pixel_max
        return out


def estimate_dataset_bytes(
    dataset_id: str, params: Mapping[str, Any] | None = None
) -> tuple[int, str] | None:
    """Peak bytes :func:`load_dataset` plus the client partition need, and how it is counted.

    The synthetic data is drawn in float64 (noise, centres, their sum), then cast to
    float32, split and standardised through float64 temporaries: about 32 bytes per
    value at the peak, i.e. eight float32 copies of the ``n_samples × n_features``
    matrix (a bound; the clients hold row indices, not copies). The MNIST family needs
    about 1 byte per pixel: the uint8 file contents, which the Dataset's pixels are views
    of (clients hold row indices into them, not copies). None when the size
    is only known after loading (a Hugging Face dataset, an IDX directory, a loader).
    """
    shape = known_shape(dataset_id, params)
    if shape is None:
        return None
    n, f, _ = shape
    values = n * f
    if dataset_id in MNIST_FAMILY:
        return values + 16 * n, f"{dataset_id} {n:,} images × {f:,} pixels (uint8)"
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
        ``"digits"``, ``"synthetic"``, ``"fashion_mnist"``, ``"mnist"``,
        ``"idx:DIR"`` (a directory of IDX files), ``"module:callable"`` (a loader of
        your own, see :mod:`velocity.sim.userdata`), a Hugging Face id
        ``"owner/name"`` or a directory written by ``datasets.Dataset.save_to_disk``.
    seed : int
        Seeds the train/test split (and the synthetic data); passed to a loader of
        your own. Non-negative.
    test_fraction : float (default: 0.2)
        Share of samples held out for testing, in (0, 1). Unused by datasets with a
        test split of their own: the MNIST family and IDX directories (the 10,000
        test images), a loader's ``x_test``, a Hugging Face ``"test"`` split.
    params : mapping, optional
        Dataset-specific options. ``"synthetic"``: ``n_samples``, ``n_features``,
        ``n_classes``, ``class_sep``. ``"fashion_mnist"``, ``"mnist"``: ``path`` (an
        IDX directory, searched instead of the usual places). Hugging Face:
        ``config``, ``label_column``, ``feature_column``. A loader: its keyword
        arguments.

    Returns
    -------
    Dataset
        Flat float32 features and int64 labels: the dataset's own train/test split,
        else a stratified seeded split.

    Raises
    ------
    DatasetError
        Unknown id, bad parameters, ``datasets`` missing, a dataset not installed or
        not in the local cache, a damaged IDX file, or a loader that does not resolve,
        raises or returns unusable arrays: one line naming the id and what is wrong.
    """
    _check_seed(seed)
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test_fraction={test_fraction!r} is invalid: must be in (0, 1)")
    try:
        return _load(dataset_id, seed, test_fraction, dict(params or {}))
    except (IdxError, UserDataError) as exc:  # the sources' own errors, one line each
        raise DatasetError(str(exc)) from None


def _load(dataset_id: str, seed: int, test_fraction: float, params: dict[str, Any]) -> Dataset:
    if dataset_id == "digits":
        _check_params(dataset_id, params, ())
        x, y = _digits_raw()
        return _finish(dataset_id, x, y, 10, (8, 8), seed, test_fraction, standardize=True)
    if dataset_id == "synthetic":
        _check_params(dataset_id, params, tuple(SYNTHETIC_DEFAULTS))
        x, y, num_classes = _synthetic(seed, {**SYNTHETIC_DEFAULTS, **params})
        shape = (x.shape[1],)
        return _finish(dataset_id, x, y, num_classes, shape, seed, test_fraction, standardize=True)
    if dataset_id in MNIST_FAMILY:
        _check_params(dataset_id, params, ("path",))
        return _load_mnist_family(dataset_id, params)
    if dataset_id.startswith(IDX_PREFIX):
        _check_params(dataset_id, params, ())
        return _load_idx_id(dataset_id)
    if _is_dir(dataset_id) or _HF_ID.match(dataset_id):
        _check_params(dataset_id, params, _HF_PARAMS)
        return _load_hf(dataset_id, seed, test_fraction, params)
    if is_user_id(dataset_id):
        arrays = load_user_data(dataset_id, seed=seed, params=params)
        return Dataset(
            name=dataset_id,
            x_train=arrays.x_train,
            y_train=arrays.y_train,
            x_test=arrays.x_test,
            y_test=arrays.y_test,
            num_classes=arrays.num_classes,
            feature_shape=arrays.feature_shape,
        )
    raise DatasetError(_unknown_id_message(dataset_id))


def partition(
    labels: np.ndarray,
    num_clients: int,
    *,
    scheme: str = "iid",
    alpha: float = 0.5,
    shards_per_client: int = 2,
    samples_per_client: int | None = None,
    seed: int,
    min_samples: int = 2,
) -> list[np.ndarray]:
    """Split sample indices among clients.

    ``"iid"`` shuffles the indices with the seed and cuts them into near-equal parts.

    ``"dirichlet"`` follows Hsu et al. (2019): for each class :math:`c`, the class's
    samples are shared out by proportions :math:`p_c \\sim \\mathrm{Dir}(\\alpha
    \\mathbf{1}_K)` over the :math:`K` clients, so a small ``alpha`` gives each client
    few classes. If a client ends with fewer than ``min_samples``, the draw is
    repeated with derived seeds (up to 10 tries); if still short, the best draw is
    topped up by moving samples from the largest clients.

    ``"shards"`` is the pathological non-IID split of McMahan et al. (2017,
    Communication-Efficient Learning of Deep Networks from Decentralized Data,
    AISTATS, https://arxiv.org/abs/1602.05629; 100 clients × 2 shards of 300 MNIST
    images):

    .. math::

        S = K s, \\qquad m = \\lfloor n / S \\rfloor

    where :math:`K` is ``num_clients``, :math:`s` is ``shards_per_client`` and
    :math:`n` the number of samples. The indices are sorted by label (ties by index),
    cut into :math:`S` shards of :math:`m` consecutive samples, and each client is
    given :math:`s` shards drawn at random without replacement, so every client holds
    exactly :math:`s m` samples of at most about :math:`s` labels (a shard spans two
    labels where a class boundary falls inside it). When :math:`S` does not divide
    :math:`n`, the :math:`n - S m < S` samples left over are chosen at random and
    given to no client.

    ``samples_per_client`` then caps every part: a client holding more keeps a seeded
    random subset of that many (as FL benchmarks do, e.g. 100 clients × 600 images).
    For ``"iid"`` this is a sample without replacement from the whole set: disjoint
    clients, each with ``samples_per_client`` samples when ``num_clients ×
    samples_per_client <= n``; when the set is smaller than that, the cap does not
    bind and each client keeps its near-equal share (about ``n / num_clients``). It
    is never refused for being large; only a cap below ``min_samples`` is.

    Parameters
    ----------
    labels : np.ndarray
        Integer train labels, shape ``(n,)``.
    num_clients : int
        Number of clients, at least 1.
    scheme : str (default: "iid")
        ``"iid"``, ``"dirichlet"`` or ``"shards"``.
    alpha : float (default: 0.5)
        Dirichlet concentration, > 0; smaller is more skewed. Used by ``"dirichlet"``.
    shards_per_client : int (default: 2)
        Shards per client, >= 1; ``num_clients * shards_per_client <= n``. Used by
        ``"shards"``.
    samples_per_client : int, optional
        Most samples a client holds, >= ``min_samples``; None: no cap. With None the
        result is the same as before this option existed, for every seed.
    seed : int
        Seed; the result is a pure function of the arguments. Non-negative.
    min_samples : int (default: 2)
        Least number of samples per client; ``num_clients * min_samples <= n``.

    Returns
    -------
    list of np.ndarray
        One sorted int64 index array per client, pairwise disjoint. Without a cap,
        ``"iid"`` and ``"dirichlet"`` cover every index once.

    Raises
    ------
    ValueError
        Bad ``num_clients``, ``min_samples``, ``alpha``, ``scheme``, ``seed``,
        ``shards_per_client`` (more shards than samples) or ``samples_per_client``.

    >>> labels = np.repeat(np.arange(4), 6)  # 24 samples, 4 classes: 8 shards of 3
    >>> parts = partition(labels, 4, scheme="shards", shards_per_client=2, seed=0)
    >>> [len(p) for p in parts], [len(set(labels[p])) <= 2 for p in parts]
    ([6, 6, 6, 6], [True, True, True, True])
    """
    labels = np.asarray(labels)
    _check_partition_args(labels, num_clients, scheme, alpha, seed, min_samples)
    _check_size_args(shards_per_client, samples_per_client, min_samples)
    if scheme == "iid":
        order = np.random.default_rng(seed).permutation(labels.shape[0])
        shards = np.array_split(order, num_clients)
    elif scheme == "dirichlet":
        shards = _dirichlet(labels, num_clients, alpha, seed, min_samples)
    else:
        shards = _shards(labels, num_clients, shards_per_client, seed, min_samples)
    parts = [np.sort(s).astype(np.int64, copy=False) for s in shards]
    if samples_per_client is not None:
        parts = _cap(parts, samples_per_client, seed)
    return parts


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
            f"scheme={scheme!r} is invalid{did_you_mean(scheme, _SCHEMES)}; "
            f"allowed: {', '.join(_SCHEMES)}"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_size_args(
    shards_per_client: int, samples_per_client: int | None, min_samples: int
) -> None:
    if not _is_int(shards_per_client) or shards_per_client < 1:
        raise ValueError(
            f"shards_per_client={short_repr(shards_per_client)} is invalid: must be an integer >= 1"
        )
    if samples_per_client is None:
        return
    if not _is_int(samples_per_client) or samples_per_client < max(1, min_samples):
        raise ValueError(
            f"samples_per_client={short_repr(samples_per_client)} is invalid: must be an "
            f"integer >= {max(1, min_samples)} (the least samples a client holds)"
        )


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
    known = [k for k in DATASETS if k not in DATASET_FORMS]
    spellings = {k: k for k in known}
    for hf_id in _HF_EXAMPLES:
        spellings[hf_id] = hf_id
        spellings.setdefault(hf_id.split("/")[1], hf_id)
    hint = did_you_mean(dataset_id, spellings)
    return (
        f"dataset '{shown(dataset_id)}' is unknown{hint}; available: {', '.join(known)}, "
        "'idx:DIR' (a directory of IDX files), a loader of your own 'module:callable', "
        "a Hugging Face id 'owner/name' in the local cache (e.g. 'uoft-cs/cifar10'), "
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


# --- the MNIST family and IDX directories --------------------------------------------


def _load_mnist_family(name: str, params: dict[str, Any]) -> Dataset:
    """``fashion_mnist`` / ``mnist``: ``params["path"]``, the Debian package, the HF cache."""
    if "path" in params:
        path = params["path"]
        if not isinstance(path, str) or not path:
            raise DatasetError(
                f"dataset '{name}': param path={short_repr(path)} is invalid: must be the "
                "directory of its IDX files"
            )
        return _idx_dataset(name, Path(path).expanduser(), num_classes=10)
    system = SYSTEM_DIRS.get(name)
    if system is not None and _is_dir(str(system)):
        return _idx_dataset(name, system, num_classes=10)
    hf_id = MNIST_FAMILY[name]["hf_id"]
    try:
        parsed = _hf_parse(hf_id, None, None, None)
    except _HfUnavailableError as exc:
        raise DatasetError(_not_found_message(name, system, hf_id, exc.reason)) from None
    if parsed.test is None or parsed.num_classes != 10 or parsed.train[0].shape[1] != 784:
        raise DatasetError(
            f"dataset '{name}': the Hugging Face copy {hf_id} is not 28×28 images of 10 "
            f"classes with a test split (got {parsed.train[0].shape[1]} features, "
            f"{parsed.num_classes} classes)"
        )
    return _assemble(
        name, parsed.train, parsed.test, 10, MNIST_IMAGE_SHAPE, standardize=not parsed.is_image
    )


def _not_found_message(name: str, system: Path | None, hf_id: str, hf_reason: str) -> str:
    fetch = f"python -c \"import datasets; datasets.load_dataset('{hf_id}')\" once online"
    if system is not None:
        where = f"not found in {system} (apt-get install {_PACKAGES[name]}), nor in"
    else:
        where = "not found: no package ships it, and it is not in"
    return (
        f"dataset '{name}': {where} the Hugging Face cache ({hf_id}: {hf_reason}; {fetch}); "
        f"or give --dataset idx:DIR (a directory of its four IDX files) or "
        f"dataset_params.path"
    )


def _load_idx_id(dataset_id: str) -> Dataset:
    text = dataset_id[len(IDX_PREFIX) :]
    if not text:
        raise DatasetError(
            f"dataset '{dataset_id}': give the directory after idx:, e.g. idx:data/fashion; "
            f"{_IDX_LAYOUT}"
        )
    return _idx_dataset(dataset_id, Path(text).expanduser(), num_classes=None)


def _idx_files(name: str, directory: Path) -> list[Path]:
    """The four IDX files of ``directory`` in :data:`_IDX_FILES` order (raw before ``.gz``;
    ``train-images.idx3-ubyte`` spellings too)."""
    if not _is_dir(str(directory)):
        what = "not a directory" if os.path.lexists(directory) else "no such directory"
        raise DatasetError(f"dataset '{shown(name, 200)}': {what}: {directory}; {_IDX_LAYOUT}")
    found, missing = [], []
    for base in _IDX_FILES.values():
        dotted = base.replace("-idx", ".idx")
        names = (base, f"{base}.gz", dotted, f"{dotted}.gz")
        path = next((directory / n for n in names if _is_file(directory / n)), None)
        if path is None:
            missing.append(f"{base}[.gz]")
        else:
            found.append(path)
    if missing:
        raise DatasetError(
            f"dataset '{shown(name, 200)}': {directory} lacks {', '.join(missing)}; {_IDX_LAYOUT}"
        )
    return found


def _idx_dataset(name: str, directory: Path, *, num_classes: int | None) -> Dataset:
    """A Dataset of the four IDX files in ``directory``: its own train/test split, uint8
    pixels whose features are scaled to [0, 1], labels checked below ``num_classes``
    (None: the largest + 1)."""
    paths = _idx_files(name, directory)
    try:
        stamps = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    except OSError as exc:
        raise DatasetError(f"dataset '{shown(name, 200)}': {exc}") from None
    try:
        x_train, y_train, x_test, y_test = _read_idx_files(stamps)
    except IdxError as exc:
        raise DatasetError(f"dataset '{shown(name, 200)}': {exc}") from None
    images, labels = {0: paths[0], 1: paths[2]}, {0: paths[1], 1: paths[3]}
    for split, (x, y) in enumerate(((x_train, y_train), (x_test, y_test))):
        problem = _idx_pair_problem(x, y, images[split], labels[split])
        if problem:
            raise DatasetError(f"dataset '{shown(name, 200)}': {problem}")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(
            f"dataset '{shown(name, 200)}': the train images are {x_train.shape[1:]}, the test "
            f"images {x_test.shape[1:]} ({images[0]}, {images[1]}); both need one shape"
        )
    largest = int(max(y_train.max(), y_test.max()))
    if num_classes is not None and largest >= num_classes:
        where = labels[0] if int(y_train.max()) == largest else labels[1]
        raise DatasetError(
            f"dataset '{shown(name, 200)}': {where} holds the label {largest}; {name} has "
            f"{num_classes} classes (labels 0..{num_classes - 1})"
        )
    shape = x_train.shape[1:]
    feature_shape = (*shape, 1) if len(shape) == 2 else shape
    return Dataset(
        name=name,
        x_train=_flat(x_train),
        y_train=y_train.astype(np.int64),
        x_test=_flat(x_test),
        y_test=y_test.astype(np.int64),
        num_classes=largest + 1 if num_classes is None else num_classes,
        feature_shape=tuple(int(d) for d in feature_shape),
        pixel_max=255.0,
    )


@functools.lru_cache(maxsize=2)
def _read_idx_files(
    stamps: tuple[tuple[str, int, int], ...],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four uint8 arrays, cached per process by path, mtime and size (read-only)."""
    x_train, y_train, x_test, y_test = (read_idx(path) for path, _, _ in stamps)
    return x_train, y_train, x_test, y_test


def _idx_pair_problem(x: np.ndarray, y: np.ndarray, x_path: Path, y_path: Path) -> str | None:
    """What is wrong with one split's images and labels, or None."""
    if y.ndim != 1:
        return f"{y_path}: a label file is 1-D (magic 0x00000801), this one has shape {y.shape}"
    if x.ndim not in (3, 4):
        return (
            f"{x_path}: an image file is images × rows × cols (magic 0x00000803), this one "
            f"has shape {x.shape}"
        )
    if x.shape[0] != y.shape[0]:
        return f"{x_path} holds {x.shape[0]:,} images but {y_path} {y.shape[0]:,} labels"
    if x.shape[0] == 0 or math.prod(x.shape[1:]) == 0:
        return f"{x_path} holds no images (shape {x.shape})"
    return None


def _flat(images: np.ndarray) -> np.ndarray:
    """``(n, H, W[, C])`` images as ``(n, H·W·C)`` rows: a view, no copy."""
    return images.reshape(images.shape[0], -1)


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


def _shards(
    labels: np.ndarray, num_clients: int, per_client: int, seed: int, min_samples: int
) -> list[np.ndarray]:
    """McMahan et al.'s split: label-sorted shards of equal size, ``per_client`` each."""
    n = labels.shape[0]
    count = num_clients * per_client
    if count > n:
        raise ValueError(
            f"partition 'shards' needs at least clients × shards_per_client = {num_clients} × "
            f"{per_client} = {count} training samples (one per shard), got {n}; use fewer "
            "clients or a smaller shards_per_client"
        )
    size = n // count
    if per_client * size < min_samples:
        raise ValueError(
            f"partition 'shards' gives each client shards_per_client × ⌊n / shards⌋ = "
            f"{per_client} × {size} = {per_client * size} samples, fewer than {min_samples}; "
            "use fewer clients"
        )
    rng = np.random.default_rng([seed, _SHARDS_STREAM])
    kept = np.sort(rng.permutation(n)[: count * size])  # the n mod S left over: at random
    pieces = kept[np.argsort(labels[kept], kind="stable")].reshape(count, size)
    owners = rng.permutation(count).reshape(num_clients, per_client)
    return [pieces[row].ravel() for row in owners]


def _cap(parts: list[np.ndarray], cap: int, seed: int) -> list[np.ndarray]:
    """Each part larger than ``cap`` replaced by a seeded random subset of ``cap`` (sorted)."""
    capped = []
    for client, part in enumerate(parts):
        if part.size > cap:
            rng = np.random.default_rng([seed, _CAP_STREAM, client])
            part = np.sort(rng.choice(part, size=cap, replace=False))
        capped.append(part)
    return capped


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
        raise _HfUnavailableError(
            f"dataset '{dataset_id}' needs the Hugging Face `datasets` library: "
            "pip install 'velocity-fl[hf]' (or pip install datasets); the built-in 'digits' "
            "and 'synthetic' datasets work without it",
            "the datasets library is not installed: pip install 'velocity-fl[hf]'",
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
        raise _HfUnavailableError(
            f"dataset '{dataset_id}' is not in the local Hugging Face cache and velocity "
            "never downloads at run time. Fetch it once while online with: "
            f"python -c \"import datasets; datasets.load_dataset('{dataset_id}')\" "
            f"(or, if '{dataset_id}' is meant as a local directory, it does not exist)",
            "not cached",
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
