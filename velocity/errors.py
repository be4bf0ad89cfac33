"""Errors a user can cause, and their one-line messages."""

from __future__ import annotations

from pydantic import ValidationError


class SpecError(ValueError):
    """A specification that cannot run; the message names the field, the value and the rule."""


def format_validation_error(exc: ValidationError) -> str:
    """One clause per problem, e.g. ``shared.rounds: Input should be greater than 0 (got 0)``."""
    clauses = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        got = err.get("input")
        shown = (
            f" (got {got!r})"
            if err["type"] != "value_error" and not isinstance(got, dict | list) and got is not None
            else ""
        )
        clauses.append(f"{loc}: {msg}{shown}" if loc else f"{msg}{shown}")
    return "; ".join(clauses)
