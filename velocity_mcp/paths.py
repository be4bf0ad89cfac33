"""Every path an agent gives is resolved inside one root directory.

``safe_join`` (from the ``mcp`` SDK) rejects ``..`` traversal, absolute parts, NUL
bytes and symlinks that lead outside the root. Sweeps are named by id (the
directory name under the root); a path to a sweep directory is accepted too, as
long as it lies inside the root. Listing the root (:func:`sweep_dirs`) is confined
the same way: an entry that is a symlink, or resolves outside the root, is not a
sweep of this root.

Every failure is a ``ToolError`` naming the argument: a path the operating system
refuses (a component over 255 bytes, a permission error) included.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.path_security import PathEscapeError, safe_join

from velocity.catalog import DATASETS, IDX_PREFIX, names_code
from velocity.sweepdir.files import is_sweep_dir

#: The longest file name (one path component) the file systems here take, in bytes.
NAME_MAX = 255
#: How much of an agent's text a message repeats.
SHOWN_CHARS = 80


def shown(text: str, limit: int = SHOWN_CHARS) -> str:
    """``repr(text)``, cut to ``limit`` characters with the full length named."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def _confined(root: Path, path: Path) -> bool:
    """``path`` (an entry of ``root``) is a real directory inside the root, no symlink."""
    try:
        return not path.is_symlink() and path.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return False


def sweep_dirs(root: Path) -> list[Path]:
    """The sweep directories directly under ``root``, newest name last.

    Symlinks are skipped (one pointing out of the root would expose a directory the
    server must not read; one pointing inside would list a sweep twice).
    """
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    real_root = root.resolve()
    return sorted(
        p
        for p in entries
        if not p.name.startswith(".") and _confined(real_root, p) and is_sweep_dir(p)
    )


__all__ = [
    "NAME_MAX",
    "code_refusal",
    "confine_dataset",
    "is_sweep_dir",
    "resolve_config",
    "resolve_sweep",
    "shown",
    "sweep_dirs",
]


def _check_components(what: str, text: str) -> None:
    for part in text.replace("\\", "/").split("/"):
        size = len(os.fsencode(part)) if part else 0
        if size > NAME_MAX:
            raise ToolError(
                f"{what} {shown(text)} has a path component of {size} bytes: no file or "
                f"directory under the root has a name over {NAME_MAX} bytes"
                + (
                    "; give a sweep id from sweep_run or list_sweeps (like 20260101-120000-abcdef)"
                    if what == "sweep_id"
                    else ""
                )
            )


def code_refusal(field: str, value: str) -> str:
    """The one line refusing a ``module:callable`` id over MCP."""
    return (
        f"{field} {shown(value)} names code to import (module:callable); this server does "
        "not import code an agent names: use a built-in id from list_strategies, or run "
        "your own loader or model with the velocity CLI"
    )


def _inside(root: Path, text: str, what: str = "path") -> Path:
    """``text`` (relative to the root, or absolute inside it) resolved inside ``root``."""
    if "\0" in text:
        raise ToolError(f"{what} contains a NUL byte; give a sweep id or a path under the root")
    _check_components(what, text)
    candidate = Path(text)
    try:
        if candidate.is_absolute():
            resolved = candidate.resolve()
            if not resolved.is_relative_to(root.resolve()):
                raise ToolError(
                    f"{what} {shown(text)} is outside the server's root {root}; only sweeps "
                    "and config files under the root are accessible"
                )
            return resolved
        return safe_join(root, text)
    except PathEscapeError:
        raise ToolError(
            f"{what} {shown(text)} escapes the server's root {root} (no '..', absolute paths "
            "or symlinks out of the root); give a sweep id from sweep_run or list_sweeps, or "
            "a path under the root"
        ) from None
    except (OSError, RuntimeError) as exc:
        raise ToolError(f"{what} {shown(text)} cannot be resolved: {_os_reason(exc)}") from None


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
    return str(exc) or type(exc).__name__


def resolve_sweep(root: Path, sweep_id: str) -> Path:
    """The sweep directory named by ``sweep_id``: an id, or a path inside the root.

    Raises
    ------
    ToolError
        Empty id, a path that escapes the root, or no sweep directory there (the
        message lists the most recent sweep ids).
    """
    text = sweep_id.strip()
    if not text:
        raise ToolError("sweep_id is empty; give the sweep_id that sweep_run returned")
    path = _inside(root, text, "sweep_id")
    if not is_sweep_dir(path) and not Path(text).is_absolute():
        # A path relative to the server's working directory (e.g. "out/<id>") that
        # still lies inside the root.
        try:
            cwd_path = (Path.cwd() / text).resolve()
        except (OSError, RuntimeError):
            cwd_path = path
        if cwd_path.is_relative_to(root.resolve()) and is_sweep_dir(cwd_path):
            path = cwd_path
    if not is_sweep_dir(path):
        recent = [p.name for p in sweep_dirs(root)][-5:]
        hint = f"recent sweeps: {', '.join(recent)}" if recent else "there are no sweeps yet"
        raise ToolError(
            f"no sweep {shown(sweep_id)} under the root {root}; {hint} (call list_sweeps for all)"
        )
    return path


def resolve_config(root: Path, config: str) -> Path:
    """An experiment file (``.toml`` or ``.json``) named relative to the root.

    Raises
    ------
    ToolError
        A path that escapes the root, a missing file or a wrong suffix.
    """
    text = config.strip()
    if not text:
        raise ToolError("config is empty; give a .toml or .json path relative to the root")
    path = _inside(root, text, "config")
    if path.suffix not in (".toml", ".json"):
        raise ToolError(f"config {shown(config)} must be a .toml or .json experiment file")
    try:
        found = path.is_file()
    except OSError as exc:
        raise ToolError(f"config {shown(config)} cannot be read: {_os_reason(exc)}") from None
    if not found:
        raise ToolError(
            f"config file {shown(config)} not found under the root {root}; paths are relative "
            "to the root"
        )
    return path


def confine_dataset(root: Path, dataset: str) -> str:
    """A dataset id, with a local dataset directory resolved inside the root.

    The built-in ids (``digits``, ``fashion_mnist``, ...) and Hugging Face ids
    (``owner/name``) pass unchanged. A path (absolute, ``~``, ``.``/``..``, or an
    existing directory) names a ``save_to_disk`` directory relative to the root, and
    ``idx:DIR`` a directory of IDX files relative to the root; one outside it is
    refused. A loader of your own (``module:callable``) is refused: this server does
    not import code an agent names.
    """
    if dataset in DATASETS:
        return dataset
    if "\0" in dataset:
        raise ToolError("dataset contains a NUL byte; give a dataset id or a path under the root")
    if names_code(dataset):
        raise ToolError(code_refusal("dataset", dataset))
    if dataset.startswith(IDX_PREFIX):
        directory = dataset[len(IDX_PREFIX) :]
        _check_components("dataset", directory)
        return IDX_PREFIX + str(_inside(root, directory, "dataset"))
    _check_components("dataset", dataset)
    parts = dataset.replace("\\", "/").split("/")
    try:
        looks_like_path = (
            dataset.startswith(("~", "."))
            or ".." in parts
            or Path(dataset).is_absolute()
            or Path(dataset).is_dir()
            or (root / dataset).is_dir()
        )
    except OSError as exc:
        raise ToolError(f"dataset {shown(dataset)} cannot be resolved: {_os_reason(exc)}") from None
    if not looks_like_path:
        return dataset
    return str(_inside(root, dataset, "dataset"))
