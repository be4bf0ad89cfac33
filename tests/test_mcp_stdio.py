"""The MCP server over real stdio: the SDK client spawns ``velocity-mcp``.

The flow an agent follows (the prompts -> list_strategies -> sweep_run -> poll
sweep_status -> sweep_compare -> the recommendation), bad inputs answered as tool
errors with the server still healthy, and a sweep that outlives the client that
started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.mcp_calls import err, ok, wait_done

pytestmark = pytest.mark.anyio

SMALL = {
    "strategies": ["FedAvg", "FedMedian"],
    "attacks": ["gaussian_noise"],
    "rounds": 3,
    "clients": 5,
    "dataset": "digits",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def server_command() -> list[str]:
    """The console script next to this interpreter, else ``python -m velocity_mcp``."""
    script = Path(sys.executable).parent / "velocity-mcp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "velocity_mcp"]


def kill_sweeps(root: Path) -> None:
    """SIGKILL every sweep under ``root`` whose status.json says running (test cleanup)."""
    for status_file in root.glob("*/status.json"):
        try:
            status = json.loads(status_file.read_text())
        except (OSError, ValueError):
            continue
        pid = status.get("pid")
        if status.get("state") == "running" and isinstance(pid, int):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "root"
    yield path
    kill_sweeps(path)


def params(root: Path, *extra: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    command, *args = server_command()
    env = dict(env or {})
    if "PYTHONPATH" in os.environ:  # the SDK passes only a safe subset of the environment
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return StdioServerParameters(
        command=command,
        args=[*args, "--root", str(root), *extra],
        env=env or None,
    )


#: The garbage-client case: one client sends huge noise, data skewed across clients.
GARBAGE = {
    "strategies": ["FedAvg", "FedMedian", "TrimmedMean:beta=0.2", "CenteredClipping"],
    "attacks": ["gaussian_noise:sigma=10,count=1"],
    "partition": "dirichlet",
    "alpha": 0.1,
    "rounds": 10,
    "repeats": 2,
    "dataset": "digits",
}


async def test_stdio_agent_flow(root: Path) -> None:
    """What an agent does: read the playbook, list, run, poll, compare, act on the
    recommendation."""
    with anyio.fail_after(240):
        async with Client(params(root, "--max-concurrent-sweeps", "1")) as client:
            prompts = {p.name for p in (await client.list_prompts()).prompts}
            assert {"system", "pick-best-strategy"} <= prompts
            playbook = (await client.get_prompt("pick-best-strategy")).messages[0].content.text
            assert "recommendation" in playbook and "repeats_to_separate" in playbook
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"list_strategies", "sweep_run", "sweep_status", "sweep_compare"} <= tools
            catalog = await ok(client, "list_strategies")
            assert "CenteredClipping" in {s["name"] for s in catalog["strategies"]}

            started = await ok(client, "sweep_run", GARBAGE)
            assert started["status"] == "running" and started["total_runs"] == 16
            status = await wait_done(client, started["sweep_id"])
            assert status["state"] == "done", status
            assert status["done_runs"] + status["diverged_runs"] == 16

            result = await client.call_tool("sweep_compare", {"sweep_id": started["sweep_id"]})
            summary = result.structured_content
            assert not result.is_error and summary is not None
            assert next(iter(summary)) == "recommendation"  # first in the structured result
            assert json.loads(result.content[0].text) == summary
            rec = summary["recommendation"]
            comparison = json.loads((Path(started["sweep_dir"]) / "comparison.json").read_text())
            assert rec["strategy"] == comparison["recommendation"]["strategy"]
            # FedAvg averages the noisy client in and collapses under it
            assert rec["strategy"] != "FedAvg"
            scores = {c["strategy"]: c for c in rec["candidates"]}
            assert scores["FedAvg"]["worst_case_accuracy"] < rec["worst_case_accuracy"]
            assert rec["binding"] in ("none", "gaussian_noise:sigma=10.0,count=1")
            assert rec["reason"].endswith(".") and rec["strategy"] in rec["reason"]
            assert summary["verdict"] == rec["reason"]
            assert isinstance(rec["decided"], bool) and rec["noise_measured"] is True
            assert rec["decided"] is (not rec["tie"])
            if rec["tie"]:
                assert rec["strategy"] in rec["tie"] and "Tie" in rec["reason"]
            assert rec["price_of_robustness"] is not None and rec["price_of_robustness"] >= 0
            assert summary["header"]["setting"]["partition"] == "dirichlet"
            assert "conditions" not in rec["candidates"][0]
            assert len(summary["ranking"]) == 5 and "winner" not in summary

            full = await ok(
                client, "sweep_compare", {"sweep_id": started["sweep_dir"], "detail": "full"}
            )
            assert full["recommendation"] == comparison["recommendation"]
            assert full["ranking"] == comparison["ranking"] and len(full["ranking"]) == 8
            assert full["by_attack"] == comparison["most_robust"]["by_attack"]
            assert full["winner"] == comparison["winner"]
            assert len(json.dumps(summary)) < len(json.dumps(full))
            md = (await client.read_resource(summary["comparison_uri"])).contents[0]
            assert rec["strategy"] in md.text


async def test_stdio_bad_inputs_leave_the_server_healthy(root: Path) -> None:
    env = {"VELOCITY_TEST_SLOW_RUN": "FedAvg:0.2"}  # inherited by the sweep it starts
    with anyio.fail_after(180):
        async with Client(params(root, "--max-concurrent-sweeps", "1", env=env)) as client:
            text = await err(client, "sweep_run", {"strategies": ["Krumm"]})
            assert "did you mean 'Krum'" in text
            text = await err(client, "sweep_run", {"strategies": ["FedAvg"], "rounds": 10**6})
            assert "rounds" in text and "less than or equal to" in text
            text = await err(client, "sweep_status", {"sweep_id": "../../etc"})
            assert "escapes" in text
            text = await err(client, "sweep_compare", {"sweep_id": "no-such-sweep"})
            assert "no sweep 'no-such-sweep'" in text

            slow = await ok(client, "sweep_run", {"strategies": ["FedAvg"], "rounds": 40})
            text = await err(client, "sweep_compare", {"sweep_id": slow["sweep_id"]})
            assert "still running" in text and "of 1 runs done" in text
            text = await err(client, "sweep_run", SMALL)
            assert "max_concurrent_sweeps=1" in text

            await ok(client, "list_strategies")  # still healthy
            cancelled = await ok(client, "sweep_cancel", {"sweep_id": slow["sweep_id"]})
            assert cancelled["cancelled"] is True


async def test_sweep_outlives_the_client(root: Path) -> None:
    """The stdio client kills the server's process group on exit; the sweep survives it,
    and a new server (a restart) reads its status and verdict from the directory."""
    env = {"VELOCITY_TEST_SLOW_RUN": "FedAvg:0.2"}
    with anyio.fail_after(180):
        async with Client(params(root, env=env)) as client:
            started = await ok(client, "sweep_run", {"strategies": ["FedAvg"], "rounds": 25})
        async with Client(params(root)) as client:
            status = await ok(client, "sweep_status", {"sweep_id": started["sweep_id"]})
            assert status["state"] in ("starting", "running"), status
            status = await wait_done(client, started["sweep_id"])
            assert status["state"] == "done", status
            verdict = await ok(client, "sweep_compare", {"sweep_id": started["sweep_id"]})
            assert verdict["recommendation"]["strategy"] == "FedAvg"  # the only candidate
