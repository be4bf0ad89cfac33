"""``velocity.aggregate``: the Rust kernels (rules and pipelines) as a function, e.g. inside
your own Flower server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from velocity import _core
from velocity.strategy import Strategy, parse_strategy


def as_update_matrix(updates: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The n×d float32 C-contiguous matrix the kernels read (no copy when it already is one)."""
    matrix = np.ascontiguousarray(updates, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(
            f"updates must be a 2-D array (clients × parameters), got shape {matrix.shape}"
        )
    return matrix


def as_weights(num_samples: npt.ArrayLike | None, n: int) -> npt.NDArray[np.float64]:
    """Per-client weights as float64; ``None`` weighs every client equally."""
    if num_samples is None:
        return np.ones(n, dtype=np.float64)
    weights = np.ascontiguousarray(num_samples, dtype=np.float64)
    if weights.shape != (n,):
        raise ValueError(f"num_samples must have shape ({n},), got {weights.shape}")
    return weights


def aggregate(
    strategy: str | Mapping[str, Any] | Strategy,
    updates: npt.ArrayLike,
    num_samples: npt.ArrayLike | Sequence[float] | None = None,
    *,
    num_threads: int | None = None,
    seed: int = 0,
    round: int = 0,
) -> npt.NDArray[np.float32]:
    """Aggregate an n×d matrix of client updates with a robust strategy.

    Parameters
    ----------
    strategy : str | Mapping | Strategy
        Anything :func:`velocity.parse_strategy` accepts, e.g. ``"Krum:f=2"`` or a
        pipeline, ``"NNM>Krum:f=2"``.
    updates : array-like, shape (n, d)
        One row per client. Converted to float32 C-contiguous (zero copy when it
        already is); the Rust kernel reads it in place with the GIL released.
    num_samples : array-like, shape (n,), optional
        Per-client sample counts (weights of FedAvg, MultiKrum, GeometricMedian).
    num_threads : int, optional
        Threads for the kernel; the result is bit-identical for any value.
    seed, round : int (default: 0)
        Seed the random draws of a seeded pre-aggregator (Bucketing's permutation):
        the same seed and round give the same result, as in a run with that seed.
        Strategies that draw nothing ignore them.

    Returns
    -------
    numpy.ndarray, shape (d,), float32
    """
    matrix = as_update_matrix(updates)
    weights = as_weights(num_samples, matrix.shape[0])
    result, _kept = _core.aggregate(
        parse_strategy(strategy).to_core(), matrix, weights, num_threads, seed=seed, round=round
    )
    return result
