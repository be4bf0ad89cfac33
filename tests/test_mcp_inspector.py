"""The agent flow through a third-party client: the MCP Inspector's CLI mode.

Needs ``node_modules/.bin/mcp-inspector`` (``make ci`` installs
``@modelcontextprotocol/inspector@0.15.0``); skipped without it. Each call starts
a fresh server process, so this also shows that status and compare work across
server restarts: everything lives in the sweep directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
INSPECTOR = REPO / "node_modules" / ".bin" / "mcp-inspector"

pytestmark = pytest.mark.skipif(
    not INSPECTOR.exists(),
    reason="MCP Inspector not installed: npm install --no-save --no-package-lock "
    "@modelcontextprotocol/inspector@0.15.0 (make ci does this)",
)


def server_command() -> list[str]:
    script = Path(sys.executable).parent / "velocity-mcp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "velocity_mcp"]


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "root"
    yield path
    for status_file in path.glob("*/status.json"):  # never leave a sweep behind
        status = json.loads(status_file.read_text())
        if status.get("state") == "running" and isinstance(status.get("pid"), int):
            with contextlib.suppress(OSError):
                os.killpg(status["pid"], signal.SIGKILL)


def inspector(root: Path, method: str, *args: str) -> dict[str, Any]:
    """Run one Inspector CLI call against a fresh ``velocity-mcp``; its JSON output."""
    command = [
        str(INSPECTOR),
        "--cli",
        "-e",
        f"VELOCITY_MCP_ROOT={root}",
        *(["-e", f"PYTHONPATH={os.environ['PYTHONPATH']}"] if "PYTHONPATH" in os.environ else []),
        *server_command(),
        "--method",
        method,
        *args,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=90, cwd=REPO)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)


def call(root: Path, tool: str, **arguments: str) -> dict[str, Any]:
    args = ["--tool-name", tool]
    for key, value in arguments.items():
        args += ["--tool-arg", f"{key}={value}"]
    return inspector(root, "tools/call", *args)


def test_inspector_cli_agent_flow(root: Path) -> None:
    listed = inspector(root, "tools/list")
    assert {"list_strategies", "sweep_run", "sweep_status", "sweep_compare"} <= {
        t["name"] for t in listed["tools"]
    }
    catalog = call(root, "list_strategies")
    assert catalog["isError"] is False
    assert "FedMedian" in {s["name"] for s in catalog["structuredContent"]["strategies"]}

    started = call(
        root,
        "sweep_run",
        strategies='["FedAvg", "FedMedian"]',
        attacks='["gaussian_noise"]',
        rounds="3",
        clients="5",
    )
    assert started["isError"] is False, started
    sweep_id = started["structuredContent"]["sweep_id"]
    assert started["structuredContent"]["total_runs"] == 4

    deadline = time.monotonic() + 180
    while True:
        status = call(root, "sweep_status", sweep_id=sweep_id)["structuredContent"]
        if status["state"] not in ("starting", "running"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["state"] == "done", status

    verdict = call(root, "sweep_compare", sweep_id=sweep_id)
    assert verdict["isError"] is False
    comparison = json.loads((root / sweep_id / "comparison.json").read_text())
    recommendation = verdict["structuredContent"]["recommendation"]
    assert recommendation == {
        **comparison["recommendation"],
        "candidates": [
            {k: v for k, v in c.items() if k != "conditions"}
            for c in comparison["recommendation"]["candidates"]
        ],
    }

    resource = inspector(
        root, "resources/read", "--uri", f"velocity://sweeps/{sweep_id}/comparison.md"
    )
    assert resource["contents"][0]["text"].startswith("# Sweep comparison")
    prompts = inspector(root, "prompts/list")
    assert {"system", "pick-best-strategy"} <= {p["name"] for p in prompts["prompts"]}


def test_inspector_cli_errors_are_tool_errors(root: Path) -> None:
    unknown = call(root, "sweep_run", strategies='["Krumm"]')
    assert unknown["isError"] is True
    assert "did you mean 'Krum'" in unknown["content"][0]["text"]
    traversal = call(root, "sweep_status", sweep_id="../../etc")
    assert traversal["isError"] is True and "escapes" in traversal["content"][0]["text"]
    too_many = call(root, "sweep_run", strategies='["FedAvg"]', rounds="100000")
    assert too_many["isError"] is True and "rounds" in too_many["content"][0]["text"]
