"""Runs queued into a sweep directory by ``velocity sweep --extend`` while its driver runs.

An extension of a sweep that no process drives runs at once (it locks the directory
like a resume). One of a running sweep is *queued*: written as a file
``.extend-<time>-<pid>.json`` (:class:`QueuedRuns`) that the driver takes between
its batches of runs, adds to ``plan.json`` and runs before the sweep ends; a resume
takes the files a killed driver left, so a queued run is never lost.

The driver and the extenders agree through a second lock, ``.extend.lock``
(:class:`QueueLock`): an extender holds it for an instant, to queue its runs only
while a driver holds the directory; the driver, about to end, takes it, finds no
queued file, and keeps it until it has let go of the directory. An extender that
waited for it finds no driver and runs the extension itself: a run is queued only
where a driver will take it.

Depends on the standard library, the file names and the models (no engine).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import ClassVar

from pydantic import Field, ValidationError

from velocity.spec import RunSpec
from velocity.sweepdir import names
from velocity.sweepdir.io import atomic_write_json, read_json_object, utc_now
from velocity.sweepdir.lock import holder
from velocity.sweepdir.models import FileModel, Timestamp


class QueuedRuns(FileModel):
    """``.extend-<time>-<pid>.json``: runs an extension queued into a running sweep."""

    FILE: ClassVar[str] = names.QUEUED_PREFIX + "<time>-<pid>.json"

    runs: list[RunSpec] = Field(description="the runs to add, as their config.json (RunSpec)")
    queued_at: Timestamp | None = Field(None, description="when (ISO 8601, UTC)")
    pid: int | None = Field(None, description="the extending process")


class QueueLock:
    """``<sweep_dir>/.extend.lock``, held (blocking) until :meth:`release` or the ``with`` ends."""

    def __init__(self, sweep_dir: Path) -> None:
        path = Path(sweep_dir) / names.QUEUE_LOCK
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self._fd)
            raise

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the flock
            self._fd = -1

    def __enter__(self) -> QueueLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def accepting(sweep_dir: Path) -> int | None:
    """The pid of the driver that will take queued runs (0: unknown pid), else None.

    Call it holding :class:`QueueLock`: a driver that holds the directory then is
    one that has not begun to end.
    """
    return holder(Path(sweep_dir))


def put(sweep_dir: Path, runs: Sequence[RunSpec]) -> Path:
    """Queue ``runs`` (call it holding :class:`QueueLock`, after :func:`accepting`)."""
    path = Path(sweep_dir) / f"{names.QUEUED_PREFIX}{time.time_ns()}-{os.getpid()}.json"
    model = QueuedRuns(runs=list(runs), queued_at=utc_now(), pid=os.getpid())
    atomic_write_json(path, model.to_json())
    return path


def pending(sweep_dir: Path) -> list[tuple[Path, list[RunSpec]]]:
    """The queued files, oldest first, with their runs (a damaged file has none)."""
    out = []
    for path in sorted(Path(sweep_dir).glob(f"{names.QUEUED_PREFIX}*.json")):
        try:
            out.append((path, QueuedRuns.model_validate(read_json_object(path)).runs))
        except (OSError, ValueError, ValidationError):
            out.append((path, []))
    return out


def discard(paths: Sequence[Path]) -> None:
    """Remove queued files once their runs are in ``plan.json``."""
    for path in paths:
        with suppress(FileNotFoundError):
            path.unlink()


__all__ = [
    "QueueLock",
    "QueuedRuns",
    "accepting",
    "discard",
    "pending",
    "put",
]
