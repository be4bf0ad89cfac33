"""What datasets exist: their ids, descriptions and, for the built-in ones, their shapes.

Part of the vocabulary (what a spec can name, checked without loading anything):
:func:`known_shape` tells the samples, features and classes of ``digits``, of
``synthetic`` with its parameters and of the MNIST family (``fashion_mnist``,
``mnist``: 28×28×1 images, 10 classes), so a spec can refuse a class id the dataset
does not have before any file is written. Loading and partitioning live in
:mod:`velocity.sim.data`; where each dataset is found is told in docs/datasets.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

SYNTHETIC_DEFAULTS: dict[str, float] = {
    "n_samples": 2000,
    "n_features": 20,
    "n_classes": 10,
    "class_sep": 1.0,
}
#: The embedded digits: samples, features, classes (checked by tests against the file).
DIGITS_SHAPE = (1797, 64, 10)
#: The MNIST family (Fashion-MNIST, MNIST): 60,000 train + 10,000 test images of
#: 28×28×1 (grey, channels-last), 10 classes.
MNIST_SHAPE = (70_000, 784, 10)
#: The per-sample shape of an MNIST-family image, as ``Dataset.feature_shape`` gives it.
MNIST_IMAGE_SHAPE = (28, 28, 1)
#: Datasets of the MNIST family by id, with their sample counts (train, test) and
#: Hugging Face ids (the cache fallback).
MNIST_FAMILY: dict[str, dict[str, Any]] = {
    "fashion_mnist": {
        "splits": (60_000, 10_000),
        "hf_id": "zalando-datasets/fashion_mnist",
    },
    "mnist": {"splits": (60_000, 10_000), "hf_id": "ylecun/mnist"},
}
DATASETS = {
    "digits": "UCI handwritten digits, 1,797 8x8 images, 10 classes (embedded, offline)",
    "synthetic": (
        "seeded Gaussian clusters; params n_samples (2000), n_features (20), "
        "n_classes (10), class_sep (1.0)"
    ),
    "fashion_mnist": (
        "Fashion-MNIST (Xiao et al. 2017, MIT licence): 60,000 train + 10,000 test 28x28x1 "
        "images of clothing, 10 classes; from apt-get install dataset-fashion-mnist, the "
        "Hugging Face cache or params path (an IDX directory)"
    ),
    "mnist": (
        "MNIST handwritten digits (LeCun et al. 1998): 60,000 train + 10,000 test 28x28x1 "
        "images, 10 classes; from the Hugging Face cache (ylecun/mnist) or params path"
    ),
    "idx:DIR": (
        "a directory of the four MNIST-format IDX files (train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-..., raw or .gz) with their own test split"
    ),
    "module:callable": (
        "your own data: a function load(*, seed, **dataset_params) returning "
        "(x_train, y_train, x_test, y_test), imported by name (see docs/datasets.md)"
    ),
    "owner/name": (
        "a Hugging Face dataset already in the local cache, or a save_to_disk directory "
        "(needs the hf extra)"
    ),
}

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
#: An id that names code to import, ``package.module:callable``: a dataset loader or a
#: model of your own (dotted names on both sides).
IMPORT_ID = re.compile(rf"^{_DOTTED}:{_DOTTED}$")
#: The prefix of a dataset id naming a directory of IDX files, ``idx:DIR``.
IDX_PREFIX = "idx:"

#: Entries of :data:`DATASETS` that are forms, not ids: any IDX directory, any loader,
#: any Hugging Face id.
DATASET_FORMS = ("idx:DIR", "module:callable", "owner/name")


def names_code(identifier: str) -> bool:
    """Whether a dataset or model id names code to import (``module:callable``).

    ``idx:DIR`` is a directory of IDX files, not code (so no module named ``idx``).
    """
    return not identifier.startswith(IDX_PREFIX) and IMPORT_ID.match(identifier) is not None


def list_datasets() -> dict[str, str]:
    """Return the known dataset ids, each with a one-line description.

    Returns
    -------
    dict of str to str
        Dataset id to description. ``"idx:DIR"``, ``"module:callable"`` and
        ``"owner/name"`` are forms (any IDX directory, any loader, any Hugging Face id).
    """
    return dict(DATASETS)


def known_shape(
    dataset_id: str, params: Mapping[str, Any] | None = None
) -> tuple[int, int, int] | None:
    """``(samples, features, classes)`` of a built-in dataset without loading it.

    None for a Hugging Face dataset, an IDX directory and a loader of your own (only
    loading them tells), and for synthetic parameters that
    :func:`velocity.sim.data.load_dataset` would refuse anyway. The MNIST family's
    shape is the published one, wherever its files are found.
    """
    if dataset_id == "digits":
        return DIGITS_SHAPE
    if dataset_id in MNIST_FAMILY:
        return MNIST_SHAPE
    if dataset_id != "synthetic":
        return None
    p = {**SYNTHETIC_DEFAULTS, **(params or {})}
    values = [p.get(key) for key in ("n_samples", "n_features", "n_classes")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        return None
    n, f, c = (int(v) for v in values)  # type: ignore[arg-type]
    return n, f, c


def known_num_classes(dataset_id: str, params: Mapping[str, Any] | None = None) -> int | None:
    """The number of classes of a built-in dataset, without loading it (else None)."""
    shape = known_shape(dataset_id, params)
    return shape[2] if shape else None


__all__ = [
    "DATASETS",
    "DATASET_FORMS",
    "DIGITS_SHAPE",
    "IDX_PREFIX",
    "IMPORT_ID",
    "MNIST_FAMILY",
    "MNIST_IMAGE_SHAPE",
    "MNIST_SHAPE",
    "SYNTHETIC_DEFAULTS",
    "known_num_classes",
    "known_shape",
    "list_datasets",
    "names_code",
]
