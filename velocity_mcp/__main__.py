"""``velocity-mcp``: the stdio MCP server, and a fallback CLI for clients without MCP.

    velocity-mcp [--root DIR] [--max-rounds N ...]            # serve MCP over stdio
    velocity-mcp [--root DIR] sweep --strategies FedAvg,Krum:f=1 --attacks label_flipping --rounds 5
    velocity-mcp [--root DIR] status SWEEP_ID | compare SWEEP_ID [--detail full] | cancel SWEEP_ID
    velocity-mcp [--root DIR] strategies | sweeps

The fallback commands call the same tools in-process (same validation, same
limits) and print the JSON a tool returns; a refusal goes to stderr with exit
status 1. ``sweep`` takes exactly the arguments of the ``sweep_run`` tool, read
from its input schema (``--model-id`` for ``model_id``; objects as JSON). Lists
are the comma lists of ``velocity sweep`` (``velocity.spec.split_items``: a comma
followed by ``key=value`` continues the item before it), and may also be given as
several values or repeated flags: ``--strategies FedAvg,Krum:f=2 --attacks
gaussian_noise:sigma=0.5,fraction=0.3,zero``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from velocity_mcp.limits import Limits

ROOT_ENV = "VELOCITY_MCP_ROOT"

#: Fallback subcommand -> (tool, whether it takes a sweep id).
COMMANDS: dict[str, tuple[str, bool]] = {
    "status": ("sweep_status", True),
    "compare": ("sweep_compare", True),
    "cancel": ("sweep_cancel", True),
    "strategies": ("list_strategies", False),
    "sweeps": ("list_sweeps", False),
}


def _global_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="velocity-mcp",
        description="velocity's MCP stdio server (no command), or a fallback CLI over the "
        "same tools: sweep, status, compare, cancel, strategies, sweeps.",
        add_help=False,
    )
    parser.add_argument(
        "--root",
        default=os.environ.get(ROOT_ENV, "out"),
        help=f"directory of the sweeps; every agent path stays inside it (env {ROOT_ENV}, "
        "default ./out)",
    )
    defaults = Limits.from_env()
    for name, value in defaults.as_dict().items():
        parser.add_argument(
            Limits.flag(name),
            dest=name,
            type=int,
            default=value,
            metavar="N",
            help=f"limit {name} (env {Limits.env_var(name)}, default {value})",
        )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("VELOCITY_MCP_LOG_LEVEL", "WARNING"),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (env VELOCITY_MCP_LOG_LEVEL)",
    )
    return parser


def _schema_type(prop: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of a property schema (``anyOf [T, null]`` -> T; a model's
    ``$ref`` -> an object)."""
    for branch in prop.get("anyOf", []):
        if branch.get("type") != "null":
            if "$ref" in branch:
                branch = {**branch, "type": "object"}
            return {**branch, "description": prop.get("description", "")}
    return prop


def _add_tool_options(parser: argparse.ArgumentParser, schema: dict[str, Any]) -> None:
    """One option per property of a tool's input schema."""
    for name, raw in schema.get("properties", {}).items():
        prop = _schema_type(raw)
        kind = prop.get("type")
        flags = ["--" + name.replace("_", "-")] + (["--" + name] if "_" in name else [])
        help_text = (raw.get("description") or prop.get("description") or "").replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": name, "help": help_text, "default": None}
        if kind == "array":
            kwargs.update(action="extend", nargs="+", metavar="ITEM[,ITEM...]")
        elif kind == "object":
            kwargs.update(type=_json_object, metavar="JSON")
        elif kind == "integer" and "number" in _branch_types(raw):
            kwargs.update(type=_int_or_float, metavar="X")  # byzantine: a count or a fraction
        elif kind == "integer":
            kwargs.update(type=int, metavar="N")
        elif kind == "number":
            kwargs.update(type=float, metavar="X")
        elif "enum" in prop:
            kwargs.update(choices=prop["enum"])
        parser.add_argument(*flags, **kwargs)


def _branch_types(prop: dict[str, Any]) -> set[str]:
    """The JSON types a property's ``anyOf`` branches allow."""
    return {str(b.get("type")) for b in prop.get("anyOf", [prop])}


def _int_or_float(text: str) -> int | float:
    from velocity.byzantine import from_text

    return from_text(text)


_int_or_float.__name__ = "number"  # argparse: "invalid number value: 'x'"


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object, e.g. '{\"hidden\": 32}'")
    return value


async def _tool_schemas(server: Any) -> dict[str, dict[str, Any]]:
    return {tool.name: tool.input_schema for tool in await server.list_tools()}


async def _call(server: Any, tool: str, arguments: dict[str, Any]) -> int:
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        result = await server.call_tool(tool, arguments)
    except ToolError as exc:
        print(f"velocity-mcp: {exc}", file=sys.stderr)
        return 1
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        print(f"velocity-mcp: {text}", file=sys.stderr)
        return 1
    print(json.dumps(result.structured_content, indent=2))
    return 0


def _run_cli(server: Any, rest: Sequence[str], parent: argparse.ArgumentParser) -> int:
    schemas = anyio.run(_tool_schemas, server)
    parser = argparse.ArgumentParser(prog="velocity-mcp", parents=[parent])
    sub = parser.add_subparsers(dest="command", required=True)
    sweep = sub.add_parser("sweep", help="start a sweep (the sweep_run tool); prints its JSON")
    _add_tool_options(sweep, schemas["sweep_run"])
    for command, (tool, takes_id) in COMMANDS.items():
        cmd = sub.add_parser(command, help=f"the {tool} tool; prints its JSON")
        if takes_id:
            cmd.add_argument("sweep_id", help="sweep id or sweep directory under the root")
        if tool == "sweep_compare":
            detail = schemas[tool]["properties"]["detail"]
            cmd.add_argument("--detail", choices=detail["enum"], help=detail["description"])
    args = parser.parse_args(rest)
    if args.command == "sweep":
        from velocity.errors import SpecError
        from velocity.spec import split_items

        names = schemas["sweep_run"].get("properties", {})
        arguments = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
        for name, value in arguments.items():
            if _schema_type(names[name]).get("type") == "array":
                try:  # the comma lists of `velocity sweep`: FedAvg,Krum:f=2
                    arguments[name] = split_items(value)
                except SpecError as exc:
                    sweep.error(f"--{name}: {exc}")
        return anyio.run(_call, server, "sweep_run", arguments)
    tool, takes_id = COMMANDS[args.command]
    arguments = {"sweep_id": args.sweep_id} if takes_id else {}
    if getattr(args, "detail", None):
        arguments["detail"] = args.detail
    return anyio.run(_call, server, tool, arguments)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve MCP over stdio, or run one fallback command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parent = _global_parser()
    if argv and argv[0] in ("-h", "--help"):
        parent.print_help()
        print(
            "\ncommands: sweep, status, compare, cancel, strategies, sweeps "
            "(velocity-mcp COMMAND --help)"
        )
        return 0
    ns, rest = parent.parse_known_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=ns.log_level, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        limits = Limits(**{k: getattr(ns, k) for k in Limits().as_dict()})
    except ValueError as exc:
        parent.error(str(exc))
    # Nothing may reach stdout but protocol messages: anything printed while importing
    # velocity goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        from velocity_mcp.server import build_server

        server = build_server(Path(ns.root), limits)
    if rest:
        return _run_cli(server, rest, parent)
    logging.getLogger(__name__).info("serving MCP over stdio; root %s", server.service.root)
    server.run("stdio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
