"""What datasets exist: their ids, descriptions and, for the built-in ones, their shapes.

Part of the vocabulary (what a spec can name, checked without loading anything):
:func:`known_shape` tells the samples, features and classes of ``digits`` and of
``synthetic`` with its parameters, so a spec can refuse a class id the dataset does
not have before any file is written. Loading and partitioning live in
:mod:`velocity.sim.data`.
"""

from __future__ import annotations

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
DATASETS = {
    "digits": "UCI handwritten digits, 1,797 8x8 images, 10 classes (embedded, offline)",
    "synthetic": (
        "seeded Gaussian clusters; params n_samples (2000), n_features (20), "
        "n_classes (10), class_sep (1.0)"
    ),
    "owner/name": (
        "a Hugging Face dataset already in the local cache, or a save_to_disk directory "
        "(needs the hf extra)"
    ),
}


def list_datasets() -> dict[str, str]:
    """Return the known dataset ids, each with a one-line description.

    Returns
    -------
    dict of str to str
        Dataset id to description. ``"owner/name"`` stands for any Hugging Face id.
    """
    return dict(DATASETS)


def known_shape(
    dataset_id: str, params: Mapping[str, Any] | None = None
) -> tuple[int, int, int] | None:
    """``(samples, features, classes)`` of a built-in dataset without loading it.

    None for a Hugging Face dataset (only loading it tells) and for synthetic
    parameters that :func:`velocity.sim.data.load_dataset` would refuse anyway.
    """
    if dataset_id == "digits":
        return DIGITS_SHAPE
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
    "DIGITS_SHAPE",
    "SYNTHETIC_DEFAULTS",
    "known_num_classes",
    "known_shape",
    "list_datasets",
]
