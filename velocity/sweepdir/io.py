"""Writing result files so that no reader ever sees half of one (temp file + rename).

Every file goes through :func:`atomic_write_bytes`: the data is written to a temp
file in the same directory, which then replaces the target (``os.replace``). A
reader sees the old file or the new one, never half of one; a write that fails (a
full disk) raises ``OSError`` naming the *target* file and leaves the old file and
no temp file behind. Temp files are named ``.<name>.<pid>-<random>.tmp``: one left
by a process that was killed in mid-write (``kill -9``, out of memory) names its
writer, so :func:`remove_stray_temp_files` can tell it from a write in progress.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]+\.tmp$")
#: errno values that mean "this file system cannot take our files now": a sweep that
#: meets one stops (every other run would fail the same way) and records why.
STORAGE_ERRNOS = frozenset(
    code
    for code in (
        errno.ENOSPC,
        getattr(errno, "EDQUOT", None),
        errno.EROFS,
        errno.EIO,
        errno.EFBIG,
    )
    if code is not None
)


def _open_temp(path: Path) -> tuple[int, Path]:
    """Create an empty temp file next to ``path``; its mode is a plain file's (0666 - umask).

    ``os.open`` with mode 0666 lets the kernel apply the umask at creation (and a
    directory's default ACL), exactly as for a file created with ``open()``: results
    are meant to be shared, unlike ``tempfile.mkstemp``'s 0600.
    """
    stem = path.name[:180]  # room for the pid and random part within NAME_MAX
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = path.parent / f".{stem}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temp file name", str(path))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same directory and ``os.replace``.

    On any failure (``OSError`` such as a full disk, or an interrupt) the temp file is
    removed and ``path`` is left as it was; an ``OSError`` is raised again with
    ``filename`` set to ``path`` (the write of a temp file would otherwise name
    nothing, or a name the user never asked for).
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        fd, tmp = _open_temp(path)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with suppress(OSError):
                tmp.unlink()
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename != str(path):
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (NaN/Inf become null: JSON has no such values)."""
    atomic_write_text(path, json.dumps(_finite(obj), indent=2, sort_keys=False) + "\n")


def atomic_write_csv(path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Atomically write rows (mappings keyed by column) as CSV with a header line."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


#: The largest JSON file a reader that must stay small (the MCP server) takes.
MAX_JSON_BYTES = 64 * 1024 * 1024


class CorruptFileError(ValueError):
    """A file of a sweep directory exists but is not what velocity writes there.

    ``str()`` is ``<path>: <reason>``; :attr:`unreadable` the short form the MCP
    server shows, ``status.json is unreadable (<reason>)``.
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = Path(path), reason
        super().__init__(f"{path}: {reason}")

    @property
    def unreadable(self) -> str:
        return f"{self.path.name} is unreadable ({self.reason})"


def read_json(path: Path, *, max_bytes: int | None = None) -> Any:
    """Read a JSON file; :class:`CorruptFileError` (a ``ValueError`` naming the file) when
    it is not valid UTF-8 JSON, or larger than ``max_bytes``.

    Whatever is wrong with the text — truncated, binary, nested too deeply for the
    parser (which would raise ``RecursionError``) — is a ``CorruptFileError``;
    ``OSError`` when the file cannot be read (absent, a directory).
    """
    path = Path(path)
    if max_bytes is not None:
        size = path.stat().st_size
        if size > max_bytes:
            raise CorruptFileError(path, f"{size} bytes, over {max_bytes}")
    raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise CorruptFileError(path, "not UTF-8 text (binary or corrupt)") from None
    except RecursionError:
        raise CorruptFileError(path, "JSON nested too deeply to read") from None
    except ValueError as exc:
        raise CorruptFileError(path, f"invalid JSON ({exc})") from None


def read_json_object(path: Path, *, max_bytes: int | None = None) -> dict[str, Any]:
    """:func:`read_json` of a file that must hold a JSON object (else :class:`CorruptFileError`)."""
    data = read_json(path, max_bytes=max_bytes)
    if not isinstance(data, dict):
        kind = "null" if data is None else type(data).__name__
        raise CorruptFileError(path, f"holds {kind}, not a JSON object")
    return data


def load_object(path: Path, *, max_bytes: int | None = MAX_JSON_BYTES) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when the file does not exist.

    :class:`CorruptFileError` when it exists but cannot be read (a directory, no
    permission), is not JSON, is too large, or holds something other than an object.
    """
    try:
        return read_json_object(path, max_bytes=max_bytes)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorruptFileError(path, exc.strerror or str(exc)) from None


def read_optional_json(path: Path) -> dict[str, Any]:
    """A JSON object file, or ``{}`` when it is absent, unreadable or not an object.

    For the files a report can do without (``plan.json``, ``status.json``,
    ``manifest.json``): a damaged one never stops a report.
    """
    try:
        return read_json_object(path)
    except (OSError, ValueError):
        return {}


def read_csv(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file with a header line; ``OSError``, ``csv.Error`` or
    ``UnicodeDecodeError`` when it cannot be read."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def read_optional_csv(path: Path) -> list[dict[str, str]]:
    """:func:`read_csv`, or ``[]`` when the file is absent or unreadable."""
    try:
        return read_csv(path)
    except (OSError, csv.Error, UnicodeDecodeError):
        return []


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (every timestamp in a sweep directory)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def describe_write_error(exc: OSError) -> str:
    """One line for a failed write: ``disk full (No space left on device) while writing F``."""
    where = f" while writing {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return f"disk full ({reason}){where}"
    if exc.errno == getattr(errno, "EDQUOT", None):
        return f"disk quota exceeded ({reason}){where}"
    if exc.errno == errno.EROFS:
        return f"read-only file system ({reason}){where}"
    return f"cannot write ({reason}){where}" if where else f"cannot write: {reason}"


def is_storage_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the file system cannot take files now (full, quota, read-only, I/O)."""
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


def temp_writer(path: Path) -> int | None:
    """The pid that created temp file ``path`` (None when the name is not one of ours)."""
    match = _TEMP_NAME.match(path.name)
    return int(match["pid"]) if match else None


def remove_stray_temp_files(
    directory: Path, *, alive: Callable[[int], bool] | None = None, recursive: bool = True
) -> list[Path]:
    """Remove the temp files under ``directory`` whose writer is gone; returns them.

    A temp file whose writer is alive (a write in progress) is kept, except this
    process's own (it is not writing now: its writes are synchronous). ``alive``
    is the liveness test (default :func:`velocity.sweepdir.lock.pid_alive`). Temp files
    named by an older velocity (no pid) are kept: their writer is unknown.
    """
    if alive is None:
        from velocity.sweepdir.lock import pid_alive

        alive = pid_alive
    directory = Path(directory)
    pattern = f"**/.*{TEMP_SUFFIX}" if recursive else f".*{TEMP_SUFFIX}"
    removed = []
    try:
        candidates = list(directory.glob(pattern))
    except OSError:
        return []
    for path in candidates:
        pid = temp_writer(path)
        if pid is None or (pid != os.getpid() and alive(pid)):
            continue
        try:
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed


def finite_float(value: Any) -> float | None:
    """A finite float read from a file's value, or None (missing, empty, NaN or infinite)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj
