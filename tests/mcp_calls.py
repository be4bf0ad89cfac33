"""Calling velocity's MCP tools from a test client: success, expected error, wait for a
sweep; and a fake sweep process for deterministic state transitions."""

from __future__ import annotations

import textwrap
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


FAKE_SWEEP = textwrap.dedent(
    """
    # Behaves like `velocity sweep DIR/experiment.json --out DIR` on the file side.
    import json, os, signal, sys, time
    from pathlib import Path

    from velocity.sweepdir.lock import acquire

    mode = os.environ.get("FAKE_SWEEP_MODE", "hang")
    if mode == "crash":
        print("fake sweep: refusing to start", file=sys.stderr)
        sys.exit(3)
    from velocity.spec import build_sweep
    from velocity.sweepdir.files import write_plan
    from velocity.sweepdir.models import Plan

    out = Path(sys.argv[sys.argv.index("--out") + 1])
    lock = acquire(out)  # held until exit, as `velocity sweep` does
    if mode == "refuse":
        print("velocity: error: run 'FedAvg': fake refusal of the input", file=sys.stderr)
        sys.exit(2)
    spec = build_sweep(json.loads(Path(sys.argv[sys.argv.index("--out") - 1]).read_text()))
    runs = spec.expand()
    write_plan(out, Plan.of(runs, parallel=1, rank_by=spec.shared.rank_by, created_at="now"))
    names = [r.name for r in runs]

    def write(state, runs):
        status = {"state": state, "pid": os.getpid(), "started_at": "2026-01-01T00:00:00+00:00",
                  "updated_at": "2026-01-01T00:00:01+00:00",
                  "finished_at": None if state == "running" else "2026-01-01T00:00:02+00:00",
                  "elapsed_s": 1.0, "total_runs": len(names), "done_runs": 0,
                  "failed_runs": 0, "runs": runs, "error": None}
        tmp = out / ".status.tmp"
        tmp.write_text(json.dumps(status))
        os.replace(tmp, out / "status.json")

    runs = {n: {"state": "pending", "error": None} for n in names}
    runs[names[0]]["state"] = "running"
    (out / names[0]).mkdir(exist_ok=True)
    (out / names[0] / "progress.json").write_text(
        json.dumps({"state": "running", "round": 2, "rounds": 7}))

    def stop(signum, frame):
        for entry in runs.values():
            entry["state"] = "cancelled"
        write("cancelled", runs)
        sys.exit(130)

    signal.signal(signal.SIGTERM, stop)
    write("running", runs)
    while True:
        time.sleep(0.1)
    """
)
