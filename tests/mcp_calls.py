"""Calling velocity's MCP tools from a test client: success, expected error, wait for a sweep."""

from __future__ import annotations

import time
from typing import Any

import anyio
from mcp import Client


async def ok(client: Client, tool: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call ``tool``; it must succeed with structured content, which is returned."""
    result = await client.call_tool(tool, args or {})
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert not result.is_error, text
    assert result.structured_content is not None
    return result.structured_content


async def err(client: Client, tool: str, args: dict[str, Any] | None = None) -> str:
    """Call ``tool``; it must fail with a message (never the bare tool name), which is returned."""
    result = await client.call_tool(tool, args or {})
    assert result.is_error, result.structured_content
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert text.strip() != f"Error executing tool {tool}", text
    return text


async def wait_done(client: Client, sweep_id: str, timeout: float = 180) -> dict[str, Any]:
    """Poll ``sweep_status`` until the sweep is no longer starting or running."""
    deadline = time.monotonic() + timeout
    while True:
        status = await ok(client, "sweep_status", {"sweep_id": sweep_id})
        if status["state"] not in ("starting", "running"):
            return status
        assert time.monotonic() < deadline, status
        await anyio.sleep(0.3)
