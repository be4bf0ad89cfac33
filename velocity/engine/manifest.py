"""``manifest.json``: everything needed to say where a sweep's numbers came from.

Git commit and dirty flag of the velocity checkout, the lock file's hash, the
host (CPU model and count, RAM, OS), Python and package versions, the command
line and the experiment file's checksum. Every probe is best effort: a missing
``git``, an unreadable ``/proc`` or an uninstalled package gives ``null``, never
an exception.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

LOCK_FILES = ("uv.lock", "poetry.lock", "pdm.lock", "Pipfile.lock")
PACKAGES = {"velocity": "velocity-fl", "numpy": "numpy", "pydantic": "pydantic", "mcp": "mcp"}


def capture_manifest(command: list[str], config_path: Path | None) -> dict[str, Any]:
    """The reproducibility record of a sweep started by ``command`` (from ``config_path``)."""
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": list(command),
        "cwd": os.getcwd(),
        "config": _config(config_path),
        "git": git_info(Path(__file__).resolve().parent),
        "lock_file": lock_file_hash(Path.cwd()),
        "host": host_info(),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "packages": {name: _version(dist) for name, dist in PACKAGES.items()},
    }


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_info(where: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty", "root"}`` of the git checkout holding ``where``, else ``None``."""
    root = _git(where, "rev-parse", "--show-toplevel")
    commit = _git(where, "rev-parse", "HEAD")
    if root is None or commit is None:
        return None
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None, "root": root}


def lock_file_hash(directory: Path) -> dict[str, str] | None:
    """``{"path", "sha256"}`` of the first lock file in ``directory``, else ``None``."""
    candidates = [directory / name for name in LOCK_FILES]
    candidates += sorted(directory.glob("requirements*.txt"))
    for path in candidates:
        if path.is_file():
            try:
                return {"path": path.name, "sha256": sha256_file(path)}
            except OSError:
                continue
    return None


def host_info() -> dict[str, Any]:
    """CPU model and count, RAM in bytes, OS and machine."""
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "ram_bytes": _ram_bytes(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
    }


def _config(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        return {"path": str(Path(path).resolve()), "sha256": sha256_file(Path(path))}
    except OSError:
        return {"path": str(path), "sha256": None}


def _git(where: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or None


def _ram_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
