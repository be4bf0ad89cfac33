"""The MCP server in-process (``mcp.Client(build_server(...))``): every tool, error paths.

Most sweeps here are a fake sweep process (a small script that behaves like
``velocity sweep`` on the file side: status.json with its pid, a running run's
progress.json, SIGTERM -> cancelled), so state transitions are deterministic. The
real sweep runs in ``test_real_sweep_*`` and in ``test_mcp_stdio.py``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.mcp_calls import FAKE_SWEEP, err, ok, wait_done
from velocity.spec import SharedSettings
from velocity.sweepdir.lock import pid_alive
from velocity_mcp.limits import Limits
from velocity_mcp.server import EXCLUDED_SETTINGS, build_server

pytestmark = pytest.mark.anyio

LIMITS = Limits(max_runs=12, max_rounds=50, max_clients=20, max_parallel=2, max_concurrent_sweeps=1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture
def fake_command(tmp_path: Path) -> list[str]:
    script = tmp_path / "fake_velocity_sweep.py"
    script.write_text(FAKE_SWEEP)
    return [sys.executable, str(script), "sweep"]


@pytest.fixture
def server(root: Path, fake_command: list[str]) -> Iterator[Any]:
    srv = build_server(root, LIMITS, sweep_command=fake_command, start_wait_s=30, cancel_wait_s=10)
    yield srv
    srv.service.launcher.kill_all()


@pytest.fixture
async def client(server: Any) -> AsyncIterator[Client]:
    async with Client(server) as c:
        yield c


SMALL = {"strategies": ["FedAvg", "FedMedian"], "attacks": ["gaussian_noise"], "rounds": 3}


# --------------------------------------------------------------------------- listing


async def test_tools_have_bounded_schemas_and_output_schemas(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {
        "list_strategies",
        "sweep_run",
        "sweep_status",
        "sweep_compare",
        "sweep_cancel",
        "sweep_extend",
        "list_sweeps",
    }
    for tool in tools.values():
        assert tool.description and len(tool.description) > 40
        assert tool.output_schema is not None
    props = tools["sweep_run"].input_schema["properties"]
    assert props["rounds"]["anyOf"][0]["maximum"] == LIMITS.max_rounds
    assert props["clients"]["anyOf"][0]["maximum"] == LIMITS.max_clients
    assert props["parallel"]["anyOf"][0]["maximum"] == LIMITS.max_parallel
    assert "--max-rounds" in props["rounds"]["description"]
    # 1:1 with the TOML [shared] table: every setting but storage is a parameter
    settings = set(SharedSettings.model_fields) - EXCLUDED_SETTINGS
    assert settings <= set(props), settings - set(props)


async def test_list_strategies(client: Client) -> None:
    catalog = await ok(client, "list_strategies")
    strategies = {s["name"]: s for s in catalog["strategies"]}
    assert {"FedAvg", "FedMedian", "Krum", "TrimmedMean"} <= set(strategies)
    assert strategies["Krum"]["selection"] is True
    assert "f" in strategies["Krum"]["params"]
    attacks = {a["name"]: a for a in catalog["attacks"]}
    assert "gaussian_noise" in attacks
    assert attacks["gaussian_noise"]["params"]["fraction"]["allowed"] == "(0.0, 1.0]"
    assert {"digits", "fashion_mnist", "idx:DIR"} <= set(catalog["datasets"])
    assert {"logreg", "mlp", "cnn"} <= set(catalog["models"])
    # the forms naming code to import are the CLI's only: this server refuses them
    assert "module:callable" not in catalog["datasets"] | catalog["models"]
    assert catalog["limits"] == LIMITS.as_dict()


async def test_prompts_and_resource_template(client: Client) -> None:
    prompts = {p.name: p for p in (await client.list_prompts()).prompts}
    assert {"system", "pick-best-strategy"} <= set(prompts)
    assert not prompts["system"].arguments
    prompt = await client.get_prompt("system")
    assert "sweep_run" in prompt.messages[0].content.text
    playbook = (await client.get_prompt("pick-best-strategy")).messages[0].content.text
    terms = ("recommendation", "price_of_robustness", "repeats_to_separate", "nothing_survives")
    assert all(term in playbook for term in terms)
    templates = (await client.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["velocity://sweeps/{sweep_id}/comparison.md"]


# --------------------------------------------------------------------------- bad input


async def test_unknown_strategy_gets_a_suggestion(client: Client, root: Path) -> None:
    text = await err(client, "sweep_run", {"strategies": ["Krumm"], "rounds": 3})
    assert "unknown strategy 'Krumm'" in text and "did you mean 'Krum'" in text
    text = await err(client, "sweep_run", {"strategies": ["FedAvg"], "attacks": ["gausian"]})
    assert "gausian" in text and "gaussian_noise" in text
    assert sweeps_in(root) == []  # nothing was started


def sweeps_in(root: Path) -> list[Path]:
    """The sweep directories under ``root`` (not the server's launch lock)."""
    return sorted(p for p in root.iterdir() if not p.name.startswith("."))


async def test_bad_parameter(client: Client, root: Path) -> None:
    text = await err(client, "sweep_run", {"strategies": ["TrimmedMean:beta=0.7"]})
    assert "beta" in text
    text = await err(client, "sweep_run", {"strategies": ["Krum:g=1"]})
    assert "unknown parameter 'g'" in text
    assert sweeps_in(root) == []


async def test_sweep_refusal_is_the_error(
    client: Client, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the sweep process refuses (exit 2, one line): that line is the error, no sweep is left
    monkeypatch.setenv("FAKE_SWEEP_MODE", "refuse")
    text = await err(client, "sweep_run", SMALL)
    assert text == "invalid sweep: run 'FedAvg': fake refusal of the input"
    assert sweeps_in(root) == []
    assert (await ok(client, "list_sweeps"))["sweeps"] == []


@pytest.mark.parametrize("rounds", [0, 51, 100_000])
async def test_rounds_out_of_range_rejected_by_schema(client: Client, rounds: int) -> None:
    text = await err(client, "sweep_run", {"strategies": ["FedAvg"], "rounds": rounds})
    assert "rounds" in text
    assert ("less than or equal to 50" in text) or ("greater than or equal to 1" in text)


async def test_limits_name_the_limit(client: Client, root: Path) -> None:
    # 3 strategies × (1 + 1 attack) × 3 repeats = 18 runs > max_runs=12
    args = {"strategies": ["FedAvg", "FedMedian", "Krum"], "attacks": ["zero"], "repeats": 3}
    text = await err(client, "sweep_run", args)
    assert "max_runs=12" in text and "18" in text and "--max-runs" in text
    # a config file over a limit is refused the same way
    (root / "big.json").write_text(
        json.dumps({"shared": {"rounds": 400}, "runs": [{"strategy": "FedAvg"}]})
    )
    text = await err(client, "sweep_run", {"config": "big.json"})
    assert "max_rounds=50" in text and "VELOCITY_MCP_MAX_ROUNDS" in text


async def test_config_and_inline_are_exclusive(client: Client, root: Path) -> None:
    (root / "exp.toml").write_text('[[runs]]\nstrategy = "FedAvg"\n')
    text = await err(client, "sweep_run", {"config": "exp.toml", "strategies": ["FedAvg"]})
    assert "either config or strategies" in text
    text = await err(client, "sweep_run", {})
    assert "give strategies" in text and "list_strategies" in text
    text = await err(client, "sweep_run", {"config": "missing.toml"})
    assert "not found" in text
    (root / "bad.toml").write_text("[shared\n")
    text = await err(client, "sweep_run", {"config": "bad.toml"})
    assert "malformed" in text
    (root / "store.toml").write_text(
        '[shared]\nstorage = "local:///tmp/x"\n[[runs]]\nstrategy = "FedAvg"\n'
    )
    text = await err(client, "sweep_run", {"config": "store.toml"})
    assert "storage" in text


@pytest.mark.parametrize(
    "sweep_id", ["../../etc", "/etc", "a/../../..", "x\x00y", "../root-sibling"]
)
async def test_path_traversal_refused(client: Client, sweep_id: str) -> None:
    for tool in ("sweep_status", "sweep_compare", "sweep_cancel"):
        text = await err(client, tool, {"sweep_id": sweep_id})
        assert "root" in text.lower() or "nul" in text.lower(), text
    text = await err(client, "sweep_run", {"config": "../../etc/passwd"})
    assert "escapes" in text or "outside" in text or ".toml" in text


@pytest.mark.parametrize(
    "dataset", ["../../etc", "/etc", "a/../../etc", "idx:/usr/share/datasets", "idx:../.."]
)
async def test_dataset_paths_stay_inside_the_root(client: Client, dataset: str) -> None:
    text = await err(client, "sweep_run", {"strategies": ["FedAvg"], "dataset": dataset})
    assert "escapes the server's root" in text or "outside the server's root" in text


@pytest.mark.parametrize(
    ("field", "value"), [("dataset", "os:getcwd"), ("model_id", "antigravity:fly")]
)
async def test_code_named_by_an_agent_is_never_imported(
    client: Client, root: Path, field: str, value: str
) -> None:
    before = sorted(root.iterdir())
    text = await err(client, "sweep_run", {"strategies": ["FedAvg"], field: value})
    assert f"{field} '{value}' names code to import (module:callable)" in text
    assert "antigravity" not in sys.modules
    assert sorted(root.iterdir()) == before  # refused before anything was written


async def test_symlink_escape_refused(client: Client, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "status.json").write_text(json.dumps({"state": "done", "pid": 1}))
    (outside / "exp.toml").write_text('[[runs]]\nstrategy = "FedAvg"\n')
    (root / "link").symlink_to(outside, target_is_directory=True)
    text = await err(client, "sweep_status", {"sweep_id": "link"})
    assert "escapes" in text
    text = await err(client, "sweep_run", {"config": "link/exp.toml"})
    assert "escapes" in text


async def test_nonexistent_sweep_id(client: Client) -> None:
    for tool in ("sweep_status", "sweep_compare", "sweep_cancel"):
        text = await err(client, tool, {"sweep_id": "20990101-000000-abcdef"})
        assert "no sweep '20990101-000000-abcdef'" in text and "list_sweeps" in text


async def test_resource_for_missing_sweep_is_a_clear_error(client: Client) -> None:
    with pytest.raises(Exception, match="no sweep"):
        await client.read_resource("velocity://sweeps/nope/comparison.md")


# --------------------------------------------------------------------------- lifecycle (fake)


async def test_run_status_compare_while_running_concurrency_cancel(
    client: Client, root: Path
) -> None:
    started = await ok(client, "sweep_run", SMALL)
    assert started["status"] == "running"
    assert started["total_runs"] == 4
    assert started["planned_runs"] == [
        "FedAvg",
        "FedAvg__gaussian_noise",
        "FedMedian",
        "FedMedian__gaussian_noise",
    ]
    assert started["parallel"] == LIMITS.max_parallel
    sweep_id = started["sweep_id"]
    sweep_dir = Path(started["sweep_dir"])
    assert sweep_dir.parent == root and sweep_dir.name == sweep_id
    experiment = json.loads((sweep_dir / "experiment.json").read_text())
    assert experiment["shared"]["rounds"] == 3 and len(experiment["runs"]) == 4

    status = await ok(client, "sweep_status", {"sweep_id": sweep_id})
    assert status["state"] == "running"
    assert status["total_runs"] == 4 and status["done_runs"] == 0
    assert status["running"] == [{"run": "FedAvg", "round": 2, "rounds": 7}]
    assert status["pending_runs"] == 3
    # the sweep_dir path works as an id too, absolute or relative to the root
    again = await ok(client, "sweep_status", {"sweep_id": str(sweep_dir)})
    assert again["sweep_id"] == sweep_id

    text = await err(client, "sweep_compare", {"sweep_id": sweep_id})
    assert "still running: 0 of 4 runs done" in text and "sweep_status" in text

    text = await err(client, "sweep_run", SMALL)
    assert "max_concurrent_sweeps=1" in text and sweep_id in text and "sweep_cancel" in text

    listed = await ok(client, "list_sweeps")
    assert [s["sweep_id"] for s in listed["sweeps"]] == [sweep_id]

    pid = json.loads((sweep_dir / "status.json").read_text())["pid"]
    cancelled = await ok(client, "sweep_cancel", {"sweep_id": sweep_id})
    assert cancelled["cancelled"] is True and cancelled["state"] == "cancelled"
    assert not pid_alive(pid)
    again = await ok(client, "sweep_cancel", {"sweep_id": sweep_id})
    assert again["cancelled"] is False and "already cancelled" in again["message"]

    # the slot is free again; rank_by reaches the experiment's [shared] table and the plan
    second = await ok(client, "sweep_run", {**SMALL, "rank_by": "loss"})
    assert second["sweep_id"] != sweep_id
    second_dir = Path(second["sweep_dir"])
    assert json.loads((second_dir / "experiment.json").read_text())["shared"]["rank_by"] == "loss"
    assert json.loads((second_dir / "plan.json").read_text())["rank_by"] == "loss"
    assert experiment["shared"]["rank_by"] == "accuracy"  # the default
    # and the server is still healthy after all the errors
    await ok(client, "list_strategies")


async def test_sweep_that_dies_at_start_is_an_error(
    client: Client, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_SWEEP_MODE", "crash")
    text = await err(client, "sweep_run", SMALL)
    assert "exited with code 3" in text and "refusing to start" in text
    (sweep_dir,) = sweeps_in(root)
    status = await ok(client, "sweep_status", {"sweep_id": sweep_dir.name})
    assert status["state"] == "failed" and "refusing to start" in status["error"]


async def test_killed_sweep_is_interrupted(client: Client) -> None:
    started = await ok(client, "sweep_run", SMALL)
    sweep_dir = Path(started["sweep_dir"])
    pid = json.loads((sweep_dir / "status.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = await ok(client, "sweep_status", {"sweep_id": started["sweep_id"]})
        if status["state"] != "running":
            break
        await anyio.sleep(0.1)
    assert status["state"] == "interrupted"
    assert "--resume" in status["error"]
    text = await err(client, "sweep_compare", {"sweep_id": started["sweep_id"]})
    assert "no results to compare" in text


def write_status(sweep_dir: Path, state: str, runs: dict[str, tuple[str, str | None]]) -> None:
    """A handmade status.json (pid: this test process, alive but not a sweep)."""
    sweep_dir.mkdir()
    entries = {name: {"state": s, "error": e} for name, (s, e) in runs.items()}
    status = {"state": state, "pid": os.getpid(), "total_runs": len(runs), "runs": entries}
    (sweep_dir / "status.json").write_text(json.dumps(status))


async def test_status_counts_diverged_runs_apart_from_errors(client: Client, root: Path) -> None:
    runs = {
        "FedAvg": ("done", None),
        "FedAvg__gaussian_noise": ("diverged", "non-finite global loss at round 3"),
        "Krum": ("failed", "worker died"),
    }
    write_status(root / "mixed", "done", runs)
    status = await ok(client, "sweep_status", {"sweep_id": "mixed"})
    assert status["state"] == "done"
    assert (status["done_runs"], status["diverged_runs"], status["failed_runs"]) == (1, 1, 1)
    assert status["errors"] == [{"run": "Krum", "error": "worker died"}]
    assert status["diverged"] == [
        {"run": "FedAvg__gaussian_noise", "error": "non-finite global loss at round 3"}
    ]


async def test_dead_sweep_whose_runs_all_ended_is_done(client: Client, root: Path) -> None:
    runs = {"FedAvg": ("done", None), "FedAvg__zero": ("diverged", "nan")}
    write_status(root / "ended", "running", runs)  # killed after its last run
    status = await ok(client, "sweep_status", {"sweep_id": "ended"})
    assert status["state"] == "done" and status["error"] is None
    runs["FedMedian"] = ("pending", None)
    write_status(root / "cut", "running", runs)
    status = await ok(client, "sweep_status", {"sweep_id": "cut"})
    assert status["state"] == "interrupted" and "--resume" in status["error"]


async def test_compare_refuses_a_comparison_it_cannot_read(client: Client, root: Path) -> None:
    write_status(root / "odd", "done", {"FedAvg": ("done", None)})
    for name in ("comparison.json", "comparison.md"):
        (root / "odd" / name).write_text(json.dumps({"recommendation": {"strategy": 3}}))
    text = await err(client, "sweep_compare", {"sweep_id": "odd"})
    assert "does not match this server's schema" in text and "velocity compare" in text


async def test_cancel_refuses_a_pid_that_is_not_a_sweep(client: Client, root: Path) -> None:
    sweep_dir = root / "handmade"
    sweep_dir.mkdir()
    # a "running" status whose pid is this test process (alive, but not a sweep)
    (sweep_dir / "status.json").write_text(
        json.dumps({"state": "running", "pid": os.getpid(), "total_runs": 1, "runs": {}})
    )
    status = await ok(client, "sweep_status", {"sweep_id": "handmade"})
    assert status["state"] == "interrupted"
    result = await ok(client, "sweep_cancel", {"sweep_id": "handmade"})
    assert result["cancelled"] is False
    assert pid_alive(os.getpid())


# --------------------------------------------------------------------------- real sweeps


@pytest.fixture
async def real_client(root: Path) -> AsyncIterator[Client]:
    srv = build_server(root, LIMITS, start_wait_s=30, cancel_wait_s=30)
    try:
        async with Client(srv) as c:
            yield c
    finally:
        srv.service.launcher.kill_all()


async def test_real_sweep_refuses_what_it_cannot_run(real_client: Client, root: Path) -> None:
    # checked by the sweep process (it loads the data), before it writes a run file;
    # its one-line refusal is the tool's error and no sweep directory is left
    text = await err(real_client, "sweep_run", {"strategies": ["Krum:f=3"], "clients": 5})
    assert "needs at least 9 clients" in text and text.startswith("invalid sweep: ")
    text = await err(real_client, "sweep_run", {"strategies": ["FedAvg"], "dataset": "nosuch"})
    assert "dataset 'nosuch' is unknown" in text and "digits" in text
    assert sweeps_in(root) == []


async def test_real_sweep_end_to_end(real_client: Client, root: Path) -> None:
    started = await ok(real_client, "sweep_run", {**SMALL, "clients": 5})
    status = await wait_done(real_client, started["sweep_id"])
    assert status["state"] == "done", status
    assert status["done_runs"] + status["diverged_runs"] == 4
    # the sweep writes comparison.json just after its final status: compare waits for it
    sweep_dir = Path(started["sweep_dir"])
    summary = await ok(real_client, "sweep_compare", {"sweep_id": started["sweep_id"]})
    comparison = json.loads((sweep_dir / "comparison.json").read_text())
    rec = summary["recommendation"]
    assert rec["strategy"] == comparison["recommendation"]["strategy"] is not None
    assert summary["verdict"] == rec["reason"] == comparison["recommendation"]["reason"]
    assert summary["detail"] == "summary"
    assert {c["strategy"] for c in rec["candidates"]} == {"FedAvg", "FedMedian"}
    assert all("conditions" not in c for c in rec["candidates"])
    assert set(summary["by_attack"]) == {"gaussian_noise"}
    assert summary["caveats"] == comparison["caveats"]
    assert summary["header"] == comparison["header"]
    assert [r["run"] for r in summary["ranking"]] == [r["run"] for r in comparison["ranking"]]
    assert not {"winner", "failed", "diverged", "not_run"} & set(summary)

    full = await ok(real_client, "sweep_compare", {"sweep_id": sweep_dir.name, "detail": "full"})
    assert full["recommendation"] == comparison["recommendation"]
    assert full["by_attack"] == comparison["most_robust"]["by_attack"]
    for key in ("ranking", "winner", "winner_attack", "tied_with", "failed", "diverged"):
        assert full[key] == comparison[key], key
    assert all(row["diverged"] == 0 for row in full["ranking"])

    # a comparison.json from before the recommendation is rebuilt from the run files
    old = {k: v for k, v in comparison.items() if k != "recommendation"}
    (sweep_dir / "comparison.json").write_text(json.dumps(old))
    rebuilt = await ok(real_client, "sweep_compare", {"sweep_id": sweep_dir.name})
    assert rebuilt["recommendation"]["strategy"] == rec["strategy"]
    assert "predates the recommendation" in rebuilt["caveats"][0]

    uri = summary["comparison_uri"]
    resources = [str(r.uri) for r in (await real_client.list_resources()).resources]
    assert uri in resources
    contents = (await real_client.read_resource(uri)).contents
    assert contents[0].text.startswith("# Sweep comparison")
    status = await ok(real_client, "sweep_status", {"sweep_id": started["sweep_id"]})
    assert status["comparison_ready"] is True


async def test_real_sweep_cancel(real_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # the sweep inherits the environment: its one run sleeps 0.2 s after each round
    monkeypatch.setenv("VELOCITY_TEST_SLOW_RUN", "FedAvg:0.2")
    started = await ok(real_client, "sweep_run", {"strategies": ["FedAvg"], "rounds": 50})
    sweep_id = started["sweep_id"]
    deadline = time.monotonic() + 60
    while True:  # until the run has completed a round
        status = await ok(real_client, "sweep_status", {"sweep_id": sweep_id})
        if status["running"] and (status["running"][0]["round"] or 0) >= 1:
            break
        assert status["state"] in ("starting", "running"), status
        assert time.monotonic() < deadline, status
        await anyio.sleep(0.1)
    text = await err(real_client, "sweep_compare", {"sweep_id": sweep_id})
    assert "still running: 0 of 1 runs done" in text
    cancelled = await ok(real_client, "sweep_cancel", {"sweep_id": sweep_id})
    assert cancelled["cancelled"] is True
    assert cancelled["state"] == "cancelled", cancelled
    status = await ok(real_client, "sweep_status", {"sweep_id": sweep_id})
    assert status["state"] == "cancelled"


def test_an_idx_directory_under_the_root_is_resolved_inside_it(tmp_path: Path) -> None:
    from velocity_mcp.paths import confine_dataset

    (tmp_path / "fashion").mkdir()
    assert confine_dataset(tmp_path, "idx:fashion") == f"idx:{tmp_path.resolve() / 'fashion'}"
    assert confine_dataset(tmp_path, "fashion_mnist") == "fashion_mnist"
