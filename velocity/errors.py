"""Errors a user can cause, and their one-line messages."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from velocity._inline import short_repr, shown


class SpecError(ValueError):
    """A specification that cannot run; the message names the field, the value and the rule."""


def _loc_part(part: str | int) -> str:
    if isinstance(part, int):
        return f"[{part}]"
    return f".{shown(part)}"


def format_validation_error(exc: ValidationError) -> str:
    """One clause per problem, e.g. ``shared.rounds: Input should be greater than 0 (got 0)``."""
    clauses = []
    for err in exc.errors():
        loc = "".join(_loc_part(p) for p in err["loc"]).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        got = err.get("input")
        shown = (
            f" (got {short_repr(got)})"
            if err["type"] != "value_error" and not isinstance(got, dict | list) and got is not None
            else ""
        )
        clauses.append(f"{loc}: {msg}{shown}" if loc else f"{msg}{shown}")
    return "; ".join(clauses)


#: Longest file name component when the file system cannot say (Linux: NAME_MAX).
NAME_MAX = 255
#: Longest path when the system cannot say (Linux: PATH_MAX).
PATH_MAX = 4096


def check_path_name(path: str | os.PathLike[str], what: str) -> Path:
    """Refuse a path the OS cannot even look up, before anything is written.

    A component longer than the file system's NAME_MAX (``File name too long``), a
    path longer than PATH_MAX and a NUL byte become one :class:`SpecError` naming
    ``what`` (``--out``, ``storage``) instead of an ``OSError`` halfway through.
    """
    text = os.fspath(path)
    if "\0" in text:
        raise SpecError(f"{what} {short_repr(text)} contains a NUL byte")
    resolved = Path(text)
    encoded = os.fsencode(text)
    if len(encoded) > PATH_MAX:
        raise SpecError(
            f"{what} is {len(encoded)} bytes long ({short_repr(text, 40)}); paths are at most "
            f"{PATH_MAX} bytes"
        )
    limit = _name_max(resolved)
    for part in resolved.parts:
        size = len(os.fsencode(part))
        if size > limit:
            raise SpecError(
                f"{what} {short_repr(text, 40)}: the name {short_repr(part, 30)} is {size} bytes; "
                f"file names are at most {limit} bytes on this file system"
            )
    return resolved


def _name_max(path: Path) -> int:
    """NAME_MAX of the file system holding the nearest existing ancestor of ``path``."""
    probe = path if path.is_absolute() else Path.cwd() / path
    for candidate in (probe, *probe.parents):
        try:
            if candidate.is_dir():
                return int(os.pathconf(candidate, "PC_NAME_MAX"))
        except (OSError, ValueError):
            continue
    return NAME_MAX


def check_writable_location(path: Path, what: str) -> None:
    """Refuse a directory that could not be created and written later: its nearest
    existing ancestor must be a directory this process may write into."""
    check_path_name(path, what)
    probe = path if path.is_absolute() else Path.cwd() / path
    for candidate in (probe, *probe.parents):
        try:
            exists = candidate.exists()
        except OSError:
            continue
        if not exists:
            continue
        if not candidate.is_dir():
            raise SpecError(f"{what} {path}: {candidate} exists and is not a directory")
        if not os.access(candidate, os.W_OK | os.X_OK):
            raise SpecError(f"{what} {path}: {candidate} is not writable")
        return
