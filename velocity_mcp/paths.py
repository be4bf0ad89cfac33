"""Every path an agent gives is resolved inside one root directory.

``safe_join`` (from the ``mcp`` SDK) rejects ``..`` traversal, absolute parts, NUL
bytes and symlinks that lead outside the root. Sweeps are named by id (the
directory name under the root); a path to a sweep directory is accepted too, as
long as it lies inside the root.
"""

from __future__ import annotations

from pathlib import Path

from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.path_security import PathEscapeError, safe_join

#: A directory holding any of these is a sweep directory (see docs/files.md).
SWEEP_MARKERS = ("status.json", "plan.json", "experiment.json")


def is_sweep_dir(path: Path) -> bool:
    """Whether ``path`` is a directory written by ``velocity sweep`` or this server."""
    return path.is_dir() and any((path / m).is_file() for m in SWEEP_MARKERS)


def sweep_dirs(root: Path) -> list[Path]:
    """The sweep directories directly under ``root``, newest name last."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not p.name.startswith(".") and is_sweep_dir(p))


def _inside(root: Path, text: str) -> Path:
    """``text`` (relative to the root, or absolute inside it) resolved inside ``root``."""
    if "\0" in text:
        raise ToolError("path contains a NUL byte; give a sweep id or a path under the root")
    candidate = Path(text)
    if candidate.is_absolute():
        resolved = candidate.resolve()
        if not resolved.is_relative_to(root.resolve()):
            raise ToolError(
                f"path {text!r} is outside the server's root {root}; only sweeps and "
                "config files under the root are accessible"
            )
        return resolved
    try:
        return safe_join(root, text)
    except PathEscapeError:
        raise ToolError(
            f"path {text!r} escapes the server's root {root} (no '..', absolute paths or "
            "symlinks out of the root); give a sweep id from sweep_run or list_sweeps, or "
            "a path under the root"
        ) from None


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
    path = _inside(root, text)
    if not is_sweep_dir(path) and not Path(text).is_absolute():
        # A path relative to the server's working directory (e.g. "out/<id>") that
        # still lies inside the root.
        cwd_path = (Path.cwd() / text).resolve()
        if cwd_path.is_relative_to(root.resolve()) and is_sweep_dir(cwd_path):
            path = cwd_path
    if not is_sweep_dir(path):
        recent = [p.name for p in sweep_dirs(root)][-5:]
        hint = f"recent sweeps: {', '.join(recent)}" if recent else "there are no sweeps yet"
        raise ToolError(
            f"no sweep {sweep_id!r} under the root {root}; {hint} (call list_sweeps for all)"
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
    path = _inside(root, text)
    if path.suffix not in (".toml", ".json"):
        raise ToolError(f"config {config!r} must be a .toml or .json experiment file")
    if not path.is_file():
        raise ToolError(
            f"config file {config!r} not found under the root {root}; paths are relative "
            "to the root"
        )
    return path


def confine_dataset(root: Path, dataset: str) -> str:
    """A dataset id, with a local dataset directory resolved inside the root.

    ``digits``, ``synthetic`` and Hugging Face ids (``owner/name``) pass unchanged.
    A path (absolute, ``~``, ``.``/``..``, or an existing directory) names a
    ``save_to_disk`` directory relative to the root; one outside it is refused.
    """
    if dataset in ("digits", "synthetic"):
        return dataset
    parts = dataset.replace("\\", "/").split("/")
    looks_like_path = (
        dataset.startswith(("~", "."))
        or ".." in parts
        or Path(dataset).is_absolute()
        or "\0" in dataset
        or Path(dataset).is_dir()
        or (root / dataset).is_dir()
    )
    if not looks_like_path:
        return dataset
    return str(_inside(root, dataset))
