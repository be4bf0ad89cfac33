"""velocity's MCP stdio server: agents run strategy × attack sweeps and read the verdict.

``build_server(root, limits)`` returns the ``MCPServer``; ``velocity-mcp`` (or
``python -m velocity_mcp``) serves it over stdio. See ``docs/mcp.md``.
"""

from __future__ import annotations

from typing import Any

from velocity_mcp.limits import Limits

__all__ = ["Limits", "build_server"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the server imports velocity (numpy, the Rust core); the CLI
    # sets up stdout protection first.
    if name == "build_server":
        from velocity_mcp.server import build_server

        return build_server
    raise AttributeError(f"module 'velocity_mcp' has no attribute {name!r}")
