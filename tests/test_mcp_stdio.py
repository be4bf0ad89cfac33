"""The MCP server over real stdio: the SDK client spawns ``velocity-mcp``.

The flow an agent follows (list_strategies -> sweep_run -> poll sweep_status ->
sweep_compare), bad inputs answered as tool errors with the server still healthy,
and a sweep that outlives the client that started it.
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


async def test_stdio_agent_flow(root: Path) -> None:
    with anyio.fail_after(240):
        async with Client(params(root, "--max-concurrent-sweeps", "1")) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"list_strategies", "sweep_run", "sweep_status", "sweep_compare"} <= tools
            catalog = await ok(client, "list_strategies")
            assert "gaussian_noise" in {a["name"] for a in catalog["attacks"]}

            started = await ok(client, "sweep_run", SMALL)
            assert started["status"] == "running" and started["total_runs"] == 4
            status = await wait_done(client, started["sweep_id"])
            assert status["state"] == "done", status
            assert status["done_runs"] == 4

            verdict = await ok(client, "sweep_compare", {"sweep_id": started["sweep_id"]})
            comparison = json.loads((Path(started["sweep_dir"]) / "comparison.json").read_text())
            assert verdict["winner"] == comparison["winner"] is not None
            assert verdict["winner_within_noise"] == comparison["winner_within_noise"]
            assert len(verdict["ranking"]) == 4
            # the sweep_dir is accepted as the id
            again = await ok(client, "sweep_compare", {"sweep_id": started["sweep_dir"]})
            assert again["winner"] == verdict["winner"]
            md = (await client.read_resource(verdict["comparison_uri"])).contents[0]
            assert verdict["winner"] in md.text


async def test_stdio_bad_inputs_leave_the_server_healthy(root: Path) -> None:
    env = {"VELOCITY_TEST_SLOW_RUN": "FedAvg:0.2"}  # inherited by the sweep it starts
    with anyio.fail_after(180):
        async with Client(params(root, "--max-concurrent-sweeps", "1", env=env)) as client:
            text = await err(client, "sweep_run", {"strategies": ["Krmu"]})
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
            assert verdict["winner"] == "FedAvg"
