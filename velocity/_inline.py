"""The one inline syntax for named components with parameters: ``Name:key=value,key=value``.

Strategies (``Krum:f=2``) and attacks (``gaussian_noise:sigma=0.5,fraction=0.3``) are
both written this way on the command line, in MCP arguments and in TOML strings.
This module only splits the text and converts values to the declared types; what
the names and types are comes from the Rust registries, whose ``ParamSchema`` dicts
(``_core.strategy_schemas()``, ``_core.attack_schemas()``) both go through
:func:`coerce_params`: one dialect for every parameter, whoever owns it.
"""

from __future__ import annotations

import dataclasses
import numbers
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
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


def inline_form(name: str, params: Mapping[str, Any]) -> str:
    """The inverse of :func:`split_inline`: ``"Name"`` or ``"Name:k=v,k2=v2"``.

    ``params`` holds what the form shows (callers leave out values at their default).
    """
    return name + (":" + ",".join(f"{k}={v}" for k, v in params.items()) if params else "")


def non_defaults(value: Any) -> dict[str, Any]:
    """A dataclass instance's fields that differ from their defaults (what a label shows)."""
    return {
        f.name: getattr(value, f.name)
        for f in dataclasses.fields(value)
        if getattr(value, f.name) != f.default
    }


def schema_fields(schema: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, Any, Any]]:
    """``dataclasses.make_dataclass`` fields for a registry's ``ParamSchema`` dicts:
    each parameter typed ``int`` or ``float`` (``| None`` when nullable), with its default."""
    fields: list[tuple[str, Any, Any]] = []
    for name, param in schema.items():
        base: Any = int if param["type"] == "int" else float
        fields.append(
            (
                name,
                base | None if param["nullable"] else base,
                dataclasses.field(default=param["default"]),
            )
        )
    return fields


def coerce(value: Any, kind: ValueType, *, nullable: bool, where: str) -> Any:
    """Convert ``value`` (a string from the command line, or a TOML/JSON value) to ``kind``.

    ``where`` names the parameter in error messages, e.g. ``"Krum.f"``. Integers are
    parsed exactly (``9007199254740993`` stays itself; ``1e3`` and ``2.0`` are read
    as the integers they spell); numpy scalars are numbers like Python's; booleans
    (Python's or numpy's) are never numbers. Ranges are checked by whoever owns the
    parameter (the Rust registries).
    """
    if isinstance(value, str):
        text = value.strip()
        value = None if text.lower() in _NONE_WORDS else _from_text(text, kind, where)
    if value is None:
        if nullable:
            return None
        raise ValueError(f"{where} must be {_KIND_TEXT[kind]}, got None")
    if kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "int":
        if _is_bool(value) or not _is_number(value):
            raise ValueError(f"{where} must be an integer, got {short_repr(value)}")
        if isinstance(value, numbers.Integral) or not isinstance(value, numbers.Real):
            return int(value.__index__())
        try:
            integral = float(value).is_integer()
        except OverflowError:
            integral = False
        if not integral:
            raise ValueError(f"{where} must be an integer, got {short_repr(value)}")
        return int(float(value))
    elif kind == "float":
        if _is_bool(value) or not _is_number(value):
            raise ValueError(f"{where} must be a number, got {short_repr(value)}")
        try:
            return float(value if isinstance(value, numbers.Real) else value.__index__())
        except OverflowError:
            raise ValueError(f"{where} must be a finite number, got {short_repr(value)}") from None
    elif isinstance(value, str):
        return value
    raise ValueError(f"{where} must be {_KIND_TEXT[kind]}, got {short_repr(value)}")


def _is_bool(value: Any) -> bool:
    """Python's and numpy's booleans (never numbers here; Rust's ``args::is_bool``)."""
    return isinstance(value, bool) or type(value).__name__ in {"bool", "bool_"}


def _is_number(value: Any) -> bool:
    """A real number (Python's, numpy's, ``Fraction``) or an integer-like (``__index__``)."""
    return isinstance(value, numbers.Real) or hasattr(type(value), "__index__")


def coerce_params(
    raw: Mapping[Any, Any],
    schema: Mapping[str, Mapping[str, Any]],
    *,
    owner: str,
    what: str,
    hints: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check parameter names against a registry's ``ParamSchema`` dicts and convert
    each value to its declared type with :func:`coerce`.

    ``owner`` prefixes a parameter in messages (``Krum.f``); ``what`` names the owner
    in an unknown-parameter message (``Krum``, ``attack 'alie'``); ``hints`` maps other
    libraries' parameter names to ours (only suggested). Ranges are left to Rust.

    Raises
    ------
    ValueError
        An unknown parameter (with the close match and the valid names, sorted), or
        a value that is not of the declared type.
    """
    unknown = sorted((k for k in raw if not isinstance(k, str) or k not in schema), key=str)
    if unknown:
        valid = sorted(schema)
        hint = did_you_mean(str(unknown[0]), {**(hints or {}), **{a: a for a in valid}})
        raise ValueError(
            f"unknown parameter {short_repr(unknown[0])} for {what}{hint}; "
            f"valid: {', '.join(valid) if valid else 'none'}"
        )
    return {
        key: coerce(
            value, schema[key]["type"], nullable=schema[key]["nullable"], where=f"{owner}.{key}"
        )
        for key, value in raw.items()
    }


def range_text(param: Mapping[str, Any]) -> str:
    """A ``ParamSchema``'s range as text: ``[0.0, 0.5)``, ``>= 0.0``, ``> 0.0`` or ``any``."""
    lo, hi = param.get("min"), param.get("max")
    if lo is not None and hi is not None:
        left = "[" if param.get("min_inclusive", True) else "("
        right = "]" if param.get("max_inclusive", True) else ")"
        return f"{left}{lo}, {hi}{right}"
    if lo is not None:
        return f"{'>=' if param.get('min_inclusive', True) else '>'} {lo}"
    if hi is not None:
        return f"{'<=' if param.get('max_inclusive', True) else '<'} {hi}"
    return "any"


_KIND_TEXT = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}
_PLAIN_INT = re.compile(r"[+-]?[0-9](?:_?[0-9])*")
#: Integers longer than this are refused as text: no parameter is anywhere near it,
#: and Python's int() refuses 4300+ digits with a message that names nothing.
MAX_INT_DIGITS = 30


def parse_int(text: str, where: str) -> int:
    """The integer ``text`` spells, exactly: ``"42"``, ``"-3"``, ``"1_000"``, ``"1e3"``, ``"2.0"``.

    Never goes through a float, so ``9007199254740993`` is not rounded to ``…992``.
    """
    text = text.strip()
    digits = text.lstrip("+-").replace("_", "")
    if _PLAIN_INT.fullmatch(text):
        if len(digits) > MAX_INT_DIGITS:
            raise ValueError(
                f"{where} must be an integer of at most {MAX_INT_DIGITS} digits, "
                f"got {short_repr(text)}"
            )
        return int(text)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{where} must be an integer, got {short_repr(text)}") from None
    if not number.is_finite() or number.adjusted() >= MAX_INT_DIGITS:
        raise ValueError(f"{where} must be a finite integer, got {short_repr(text)}")
    if number != number.to_integral_value():
        raise ValueError(f"{where} must be an integer, got {short_repr(text)}")
    return int(number)


def _from_text(text: str, kind: ValueType, where: str) -> Any:
    if kind == "int":
        return parse_int(text, where)
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{where} must be a number, got {short_repr(text)}") from None
    if kind == "bool":
        lowered = text.lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no"}:
            return False
        raise ValueError(f"{where} must be true or false, got {short_repr(text)}")
    return text


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)``, shortened to ``limit`` characters for a one-line message."""
    try:
        text = repr(value)
    except Exception:  # a repr that raises (or recurses) must not hide the real error
        text = f"<{type(value).__name__}>"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def shown(text: str, limit: int = 60) -> str:
    """``text`` for a one-line message: control characters escaped, cut to ``limit``."""
    escaped = text if text.isprintable() else repr(text)[1:-1]
    if len(escaped) <= limit:
        return escaped
    return f"{escaped[:limit]}… ({len(text)} characters)"


# --------------------------------------------------------------------------- suggestions
#
# The one "did you mean" of the Python side; the Rust core's ``error::closest`` uses
# the same rule (same key, same similarity, same cutoff), so a name gets the same
# suggestion whichever side refuses it.

#: Least similarity for a suggestion (Rust: ``error::SUGGEST_CUTOFF``).
SUGGEST_CUTOFF = 0.6


def name_key(name: str) -> str:
    """A name as it is compared: lower case, no ``_``, ``-``, spaces or dots."""
    return "".join(c for c in name.lower() if c not in "_- .")


def _edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions and
    swaps of two neighbours (``mpl`` → ``mlp``) cost 1 each."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(rows[i - 1][j - 1] + (ca != cb), rows[i - 1][j] + 1, row[j - 1] + 1)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, rows[i - 2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


def similarity(a: str, b: str) -> float:
    """1 − edit distance / longer length, and ≥ 0.9 when one key (≥ 4 chars) begins the other."""
    longer = max(len(a), len(b))
    if longer == 0:
        return 1.0
    plain = 1.0 - _edit_distance(a, b) / longer
    if min(len(a), len(b)) >= 4 and (a.startswith(b) or b.startswith(a)):
        return max(plain, 0.9)
    return plain


def closest(name: str, choices: Iterable[str] | Mapping[str, str]) -> str | None:
    """The choice closest to ``name`` if it is close enough to be a typo, else None.

    ``choices`` may map spellings (aliases, other libraries' names) to the name to
    suggest for them.
    """
    pairs = choices.items() if isinstance(choices, Mapping) else ((c, c) for c in choices)
    key = name_key(name)[:200]
    if not key:
        return None
    best: tuple[float, str] | None = None
    for spelling, suggestion in pairs:
        score = similarity(key, name_key(spelling))
        if score >= SUGGEST_CUTOFF and (best is None or score > best[0]):
            best = (score, suggestion)
    return best[1] if best else None


def did_you_mean(name: str, choices: Iterable[str] | Mapping[str, str]) -> str:
    """``" (did you mean 'X'?)"`` for the closest choice, or ``""`` if none is close."""
    match = closest(name, choices)
    return f" (did you mean {match!r}?)" if match else ""
