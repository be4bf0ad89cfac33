"""The one inline syntax for named components with parameters: ``Name:key=value,key=value``.

Strategies (``Krum:f=2``) and attacks (``gaussian_noise:sigma=0.5,fraction=0.3``) are
both written this way on the command line, in MCP arguments and in TOML strings.
This module only splits the text and converts values to the declared types; what
the names and types are comes from the strategy dataclasses and the Rust attack
schemas.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, Literal

ValueType = Literal["int", "float", "str", "bool"]

_NONE_WORDS = {"none", "null"}


def split_inline(text: str) -> tuple[str, dict[str, str]]:
    """Split ``"Name:k=v,k2=v2"`` into ``("Name", {"k": "v", "k2": "v2"})``.

    Raises
    ------
    ValueError
        On an empty name, a parameter without ``=``, or a repeated key.
    """
    name, sep, rest = text.strip().partition(":")
    name = name.strip()
    if not name:
        raise ValueError(f"missing name in {text!r}; expected 'Name' or 'Name:key=value,...'")
    params: dict[str, str] = {}
    if sep and rest.strip():
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or not key:
                raise ValueError(f"bad parameter {item.strip()!r} in {text!r}; expected key=value")
            if key in params:
                raise ValueError(f"parameter {key!r} given twice in {text!r}")
            params[key] = value.strip()
    return name, params


def coerce(value: Any, kind: ValueType, *, nullable: bool, where: str) -> Any:
    """Convert ``value`` (a string from the command line, or a TOML/JSON value) to ``kind``.

    ``where`` names the parameter in error messages, e.g. ``"Krum.f"``.
    """
    if isinstance(value, str):
        text = value.strip()
        value = None if text.lower() in _NONE_WORDS else _from_text(text, kind, where)
    if value is None:
        if nullable:
            return None
        raise ValueError(f"{where} must be a {kind}, got None")
    if kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{where} must be an integer, got {value!r}")
            value = int(value)
        return value
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where} must be a number, got {value!r}")
        return float(value)
    elif isinstance(value, str):
        return value
    raise ValueError(f"{where} must be a {kind}, got {value!r}")


def _from_text(text: str, kind: ValueType, where: str) -> Any:
    try:
        if kind == "int":
            number = float(text)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if kind == "float":
            return float(text)
    except ValueError:
        raise ValueError(
            f"{where} must be {'an integer' if kind == 'int' else 'a number'}, got {text!r}"
        ) from None
    if kind == "bool":
        lowered = text.lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no"}:
            return False
        raise ValueError(f"{where} must be true or false, got {text!r}")
    return text


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'X'?)"`` for the closest choice, or ``""`` if none is close."""
    by_key = {c.lower(): c for c in choices}
    match = difflib.get_close_matches(name.lower(), list(by_key), n=1, cutoff=0.6)
    return f" (did you mean {by_key[match[0]]!r}?)" if match else ""
