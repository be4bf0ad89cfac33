"""Checkpoints: where the global model is saved, and how to load it back.

A storage location is a URI. Today one scheme exists, ``local://DIR`` (a directory
on this machine, relative paths against the working directory). A checkpoint is
an ``.npz`` holding the flat float32 parameter vector and what is needed to use
it again (model id, round, the run's name).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from velocity.sweepdir.io import atomic_write_bytes

SCHEMES = ("local://",)


@dataclass(frozen=True)
class Checkpoint:
    """A saved global model."""

    params: npt.NDArray[np.float32]
    model_id: str
    round: int
    run: str


def resolve_storage(uri: str) -> Path:
    """The directory a storage URI points to; unknown schemes raise ``ValueError``."""
    if uri.startswith("local://"):
        path = uri.removeprefix("local://")
        if not path:
            raise ValueError(f"storage {uri!r} names no directory; use local://DIR")
        return Path(path)
    scheme = uri.split("://", 1)[0] + "://" if "://" in uri else uri
    raise ValueError(
        f"unsupported storage {scheme!r} in {uri!r}; supported: {', '.join(SCHEMES)} "
        "(e.g. local://checkpoints)"
    )


def save_checkpoint(directory: Path, checkpoint: Checkpoint, *, final: bool) -> Path:
    """Write ``final.npz`` or ``round_<k>.npz`` into ``directory`` atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ("final.npz" if final else f"round_{checkpoint.round}.npz")
    buffer = io.BytesIO()
    np.savez(
        buffer,
        params=checkpoint.params,
        model_id=np.array(checkpoint.model_id),
        round=np.array(checkpoint.round),
        run=np.array(checkpoint.run),
    )
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    with np.load(Path(path), allow_pickle=False) as data:
        return Checkpoint(
            params=data["params"].astype(np.float32, copy=False),
            model_id=str(data["model_id"]),
            round=int(data["round"]),
            run=str(data["run"]),
        )
