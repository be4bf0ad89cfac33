"""The MCP tools for deciding with the fewest runs, over real stdio (the SDK client spawns
``velocity-mcp``): ``sweep_run(until="decided")`` and ``sweep_extend`` to answer a
follow-up question without rerunning, and their refusals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.mcp_calls import err, ok, wait_done
from tests.test_mcp_stdio import kill_sweeps, params

pytestmark = pytest.mark.anyio

GARBAGE = "gaussian_noise:sigma=10,count=1"
TINY = {"rounds": 5, "clients": 6, "dataset": "digits"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "root"
    yield path
    kill_sweeps(path)


async def test_until_decided_then_a_follow_up_with_sweep_extend(root: Path) -> None:
    with anyio.fail_after(240):
        async with Client(params(root)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            props = tools["sweep_run"].input_schema["properties"]
            assert props["until"]["anyOf"][0]["const"] == "decided"
            assert props["max_repeats"]["anyOf"][0]["maximum"] <= 1000
            extend = tools["sweep_extend"].input_schema["properties"]
            assert extend["repeats"]["anyOf"][0]["maximum"] <= 1000
            assert extend["strategies"]["maxItems"] > 0

            started = await ok(
                client,
                "sweep_run",
                {
                    "strategies": ["FedAvg", "FedMedian"],
                    "attacks": [GARBAGE],
                    "until": "decided",
                    "max_repeats": 4,
                    **TINY,
                },
            )
            assert started["until"] == "decided" and started["max_runs"] == 16
            assert started["total_runs"] == 4
            assert all(name.endswith("__r0") for name in started["planned_runs"])
            status = await wait_done(client, started["sweep_id"])
            assert status["state"] == "done", status
            verdict = await ok(client, "sweep_compare", {"sweep_id": started["sweep_id"]})
            assert verdict["recommendation"]["strategy"] == "FedMedian"
            assert verdict["recommendation"]["decided"] is True
            decision = verdict["decision"]
            assert decision["ended"] == "decided"
            assert (decision["runs_spent"], decision["full_grid_runs"]) == (4, 16)

            # the follow-up: "and TrimmedMean?" without rerunning the four runs
            sweep_dir = Path(started["sweep_dir"])
            before = (sweep_dir / "FedMedian__r0" / "rounds.csv").stat().st_mtime_ns
            extended = await ok(
                client,
                "sweep_extend",
                {"sweep_id": started["sweep_id"], "strategies": ["TrimmedMean:beta=0.2"]},
            )
            assert extended["status"] == "running"
            assert (extended["added_runs"], extended["total_runs"]) == (2, 6)
            status = await wait_done(client, started["sweep_id"])
            assert status["state"] == "done" and status["total_runs"] >= 6, status
            assert (sweep_dir / "FedMedian__r0" / "rounds.csv").stat().st_mtime_ns == before
            verdict = await ok(client, "sweep_compare", {"sweep_id": started["sweep_id"]})
            candidates = {c["strategy"] for c in verdict["recommendation"]["candidates"]}
            assert candidates == {"FedAvg", "FedMedian", "TrimmedMean:beta=0.2"}
            plan = json.loads((sweep_dir / "plan.json").read_text())
            assert plan["until"] == "decided" and plan["decision"]["ended"] is not None


async def test_bad_decide_and_extend_requests_are_one_line_errors(root: Path) -> None:
    with anyio.fail_after(180):
        async with Client(params(root)) as client:
            text = await err(
                client,
                "sweep_run",
                {"strategies": ["FedAvg"], "until": "decided", "repeats": 3, **TINY},
            )
            assert "until decided chooses the repeats" in text
            text = await err(
                client, "sweep_run", {"strategies": ["FedAvg"], "until": "decided", "budget": 0}
            )
            assert "budget" in text and "greater than or equal to 1" in text
            text = await err(client, "sweep_extend", {"sweep_id": "no-such-sweep", "repeats": 2})
            assert "no sweep 'no-such-sweep'" in text

            started = await ok(client, "sweep_run", {"strategies": ["FedAvg"], **TINY})
            await wait_done(client, started["sweep_id"])
            text = await err(client, "sweep_extend", {"sweep_id": started["sweep_id"]})
            assert "give repeats, strategies or attacks" in text
            text = await err(
                client, "sweep_extend", {"sweep_id": started["sweep_id"], "strategies": ["FedAvg"]}
            )
            assert "invalid extension" in text and "FedAvg is already in the sweep" in text
            text = await err(
                client, "sweep_extend", {"sweep_id": started["sweep_id"], "strategies": ["Krumm"]}
            )
            assert "did you mean" in text
            await ok(client, "list_strategies")  # still healthy
