"""The field tables of ``docs/files.md``, generated from the sweep directory's models.

Each model of a file (or of a part of one) has a table in ``docs/files.md`` between
two markers::

    <!-- fields: Summary -->
    | field | type | what |
    ...
    <!-- /fields -->

The tables are written from the models (field name, type, description), so a field
is described once, in its model, and the page cannot drift from it: ``python -m
velocity.sweepdir.docs --write docs/files.md`` regenerates every table in place,
``--check`` fails (status 1, naming the tables) when one is stale or missing, and
without a flag the tables are printed. A test runs the check.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from velocity.spec import RunSpec
from velocity.sweepdir import comparison, models, queue, results

#: Every model with a table, in the order of ``docs/files.md``.
MODELS: tuple[type[BaseModel], ...] = (
    RunSpec,
    models.Progress,
    models.RoundRow,
    models.TimingRow,
    models.Summary,
    models.TimeSplit,
    models.Detection,
    models.Plan,
    models.Decision,
    queue.QueuedRuns,
    models.Status,
    models.RunState,
    results.ResultRow,
    comparison.Comparison,
    comparison.Recommendation,
    comparison.StrategyScore,
    comparison.ConditionResult,
    comparison.Header,
    comparison.Setting,
    comparison.MostRobust,
    comparison.AttackBest,
    comparison.ReferenceResult,
    comparison.Overall,
    comparison.RankRow,
    comparison.RunError,
    comparison.NotRun,
)

#: Types the tables spell out where the Python type says little (a parsed strategy).
_SHOWN_TYPES: dict[tuple[type[BaseModel], str], str] = {
    (RunSpec, "strategy"): '{"type": name, parameter: value, ...}',
    (RunSpec, "attacks"): '[{"type": name, "params": {parameter: value}}]',
}

_BLOCK = re.compile(r"<!-- fields: (?P<name>\w+) -->\n(?P<body>.*?)<!-- /fields -->", re.DOTALL)
_SCALARS = {str: "str", int: "int", float: "float", bool: "bool", type(None): "null"}


def type_text(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """How a field's type reads in the tables: ``int | null``, ``[RunSpec]``, ``{str: int}``."""
    for meta in metadata:
        shown = _shown(meta)
        if shown:
            return shown
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.__name__
    if getattr(annotation, "__name__", None) == "JsonValue":
        return "any"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0], args[1:])
    if origin is Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [type_text(a) for a in args if a is not type(None)]
        return " | ".join([*parts, "null"] if type(None) in args else parts)
    if origin is list:
        return f"[{type_text(args[0])}]" if args else "[any]"
    if origin is dict:
        return f"{{{type_text(args[0])}: {type_text(args[1])}}}" if args else "{str: any}"
    return "any"


def _shown(meta: Any) -> str | None:
    extra = getattr(meta, "json_schema_extra", None)
    if isinstance(extra, dict) and isinstance(extra.get("shown"), str):
        return extra["shown"]
    return None


def _field_type(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    shown = _SHOWN_TYPES.get((model, name)) or _shown(info)
    return shown or type_text(info.annotation, info.metadata)


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def table(model: type[BaseModel]) -> str:
    """The markdown table of one model's fields, in their order."""
    lines = ["| field | type | what |", "| --- | --- | --- |"]
    for name, info in model.model_fields.items():
        kind, what = _cell(_field_type(model, name, info)), _cell(info.description or "")
        lines.append(f"| `{name}` | {kind} | {what} |")
    return "\n".join(lines) + "\n"


def block(model: type[BaseModel]) -> str:
    """A table with its markers, as it stands in ``docs/files.md``."""
    return f"<!-- fields: {model.__name__} -->\n{table(model)}<!-- /fields -->"


def render(text: str) -> str:
    """``text`` (``docs/files.md``) with every table regenerated from its model."""
    by_name = {m.__name__: m for m in MODELS}

    def fill(match: re.Match[str]) -> str:
        model = by_name.get(match["name"])
        return block(model) if model is not None else match.group(0)

    return _BLOCK.sub(fill, text)


def problems(text: str) -> list[str]:
    """What is wrong with the tables of ``text``: stale, missing, unknown or repeated ones."""
    found = [m["name"] for m in _BLOCK.finditer(text)]
    known = {m.__name__ for m in MODELS}
    out = [f"{name}: no such model" for name in found if name not in known]
    out += [f"{name}: no table" for name in sorted(known - set(found))]
    out += [f"{name}: more than one table" for name in sorted(set(found)) if found.count(name) > 1]
    fresh = render(text)
    if fresh != text:
        new = {m["name"]: m.group(0) for m in _BLOCK.finditer(fresh)}
        old = {m["name"]: m.group(0) for m in _BLOCK.finditer(text)}
        out += [
            f"{name}: stale (fields differ from the model)"
            for name in old
            if old[name] != new[name]
        ]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m velocity.sweepdir.docs", description=__doc__.split("\n", 1)[0]
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", type=Path, help="regenerate FILE's tables")
    group.add_argument("--check", metavar="FILE", type=Path, help="fail if FILE's are stale")
    args = parser.parse_args(argv)
    if args.write:
        args.write.write_text(render(args.write.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    if args.check:
        found = problems(args.check.read_text(encoding="utf-8"))
        for problem in found:
            print(f"{args.check}: {problem}", file=sys.stderr)
        if found:
            print(
                f"regenerate with: python -m velocity.sweepdir.docs --write {args.check}",
                file=sys.stderr,
            )
        return 1 if found else 0
    print("\n\n".join(block(m) for m in MODELS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
