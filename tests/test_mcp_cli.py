"""``velocity-mcp``'s command line: limits from flags and env, the fallback commands,
and a stdout that carries nothing but protocol messages."""

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

from velocity_mcp.__main__ import main
from velocity_mcp.limits import Limits


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "root"
    yield path
    for status_file in path.glob("*/status.json"):
        status = json.loads(status_file.read_text())
        if status.get("state") == "running" and isinstance(status.get("pid"), int):
            with contextlib.suppress(OSError):
                os.killpg(status["pid"], signal.SIGKILL)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(list(argv)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_limits_from_env_and_validation() -> None:
    limits = Limits.from_env({"VELOCITY_MCP_MAX_ROUNDS": "7", "VELOCITY_MCP_MAX_RUNS": " "})
    assert limits.max_rounds == 7 and limits.max_runs == Limits().max_runs
    with pytest.raises(ValueError, match="VELOCITY_MCP_MAX_CLIENTS"):
        Limits.from_env({"VELOCITY_MCP_MAX_CLIENTS": "many"})
    with pytest.raises(ValueError, match="max_parallel"):
        Limits(max_parallel=0)
    message = Limits(max_rounds=9).refusal("max_rounds", 20, "rounds")
    assert "max_rounds=9" in message and "--max-rounds" in message and "20" in message


def test_bad_limit_flag_exits(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--root", str(tmp_path), "--max-rounds", "0", "strategies"])


def test_fallback_strategies_and_errors(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = run_json(capsys, "--root", str(root), "strategies")
    assert "Krum" in {s["name"] for s in catalog["strategies"]}

    assert main(["--root", str(root), "sweep", "--strategies", "Krumm"]) == 1
    assert "did you mean 'Krum'" in capsys.readouterr().err

    monkeypatch.setenv("VELOCITY_MCP_MAX_ROUNDS", "5")
    assert main(["--root", str(root), "sweep", "--strategies", "FedAvg", "--rounds", "10"]) == 1
    assert "less than or equal to 5" in capsys.readouterr().err

    assert main(["--root", str(root), "status", "../../etc"]) == 1
    assert "escapes" in capsys.readouterr().err


def test_fallback_sweep_status_compare(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    started = run_json(
        capsys,
        "--root",
        str(root),
        "sweep",
        "--strategies",
        "FedAvg",
        "FedMedian",
        "--attacks",
        "sign_flipping:scale=2",
        "--rounds",
        "2",
        "--clients",
        "5",
        "--model-id",
        "logreg",
    )
    assert started["total_runs"] == 4 and started["rounds"] == 2
    deadline = time.monotonic() + 180
    while True:
        status = run_json(capsys, "--root", str(root), "status", started["sweep_id"])
        if status["state"] not in ("starting", "running"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.3)
    assert status["state"] == "done", status
    verdict = run_json(capsys, "--root", str(root), "compare", started["sweep_id"])
    comparison = json.loads((root / started["sweep_id"] / "comparison.json").read_text())
    assert verdict["recommendation"]["strategy"] == comparison["recommendation"]["strategy"]
    assert verdict["detail"] == "summary" and "winner" not in verdict
    full = run_json(capsys, "--root", str(root), "compare", started["sweep_id"], "--detail", "full")
    assert full["recommendation"] == comparison["recommendation"]
    assert full["winner"] == comparison["winner"]
    listed = run_json(capsys, "--root", str(root), "sweeps")
    assert [s["sweep_id"] for s in listed["sweeps"]] == [started["sweep_id"]]


def test_stdout_is_protocol_only(tmp_path: Path) -> None:
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "raw", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "sweep_status", "arguments": {"sweep_id": "missing"}},
        },
        {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
    ]
    log = (tmp_path / "stderr.log").open("w")  # DEBUG logs go to stderr, never stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "velocity_mcp", "--root", str(tmp_path), "--log-level", "DEBUG"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    replies: dict[int, Any] = {}
    assert proc.stdin is not None and proc.stdout is not None
    for message in messages:
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
        if "id" in message:
            line = proc.stdout.readline()
            reply = json.loads(line)  # every stdout line is a JSON-RPC message
            replies[reply["id"]] = reply
    proc.stdin.close()  # EOF: the server exits
    rest = proc.stdout.read()
    assert proc.wait(timeout=30) == 0
    log.close()
    for line in rest.splitlines():
        json.loads(line)
    assert replies[2]["result"]["isError"] is True
    assert "no sweep 'missing'" in replies[2]["result"]["content"][0]["text"]
    assert "sweep_run" in {t["name"] for t in replies[3]["result"]["tools"]}


def test_fallback_sweep_takes_comma_lists(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the same lists as `velocity sweep` (velocity.cli.split_items); the sweep is slowed
    # down so that the test can stop it
    monkeypatch.setenv("VELOCITY_TEST_SLOW_RUN", "FedAvg:0.5")
    started = run_json(
        capsys,
        "--root",
        str(root),
        "sweep",
        "--strategies",
        "FedAvg,Krum:f=1",
        "--attacks",
        "gaussian_noise:sigma=0.5,fraction=0.3,zero",
        "--rounds",
        "2",
        "--clients",
        "5",
        "--dataset-params",
        '{"n_samples": 400}',
        "--dataset",
        "synthetic",
    )
    assert started["total_runs"] == 6  # 2 strategies × (1 + 2 attacks)
    plan = json.loads((Path(started["sweep_dir"]) / "plan.json").read_text())
    assert sorted({r["strategy"]["type"] for r in plan["runs"]}) == ["FedAvg", "Krum"]
    attacks = [a for run in plan["runs"] for a in run["attacks"]]
    assert sorted({a["type"] for a in attacks}) == ["gaussian_noise", "zero"]
    noise = next(a for a in attacks if a["type"] == "gaussian_noise")
    assert noise["params"]["sigma"] == 0.5 and noise["params"]["fraction"] == 0.3
    assert plan["runs"][0]["dataset_params"] == {"n_samples": 400}
    assert main(["--root", str(root), "cancel", started["sweep_id"]]) == 0
    capsys.readouterr()


def test_fallback_refusals(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a parameter with no name before it is a usage error, as in `velocity sweep`
    with pytest.raises(SystemExit) as exc:
        main(["--root", str(root), "sweep", "--strategies", "f=2,FedAvg"])
    assert exc.value.code == 2
    assert "does not follow a name" in capsys.readouterr().err
    # NaN reaches the server as a float here (JSON cannot carry it): refused by name
    assert main(["--root", str(root), "sweep", "--strategies", "FedAvg", "--alpha", "nan"]) == 1
    assert "alpha: Input should be a finite number (got nan)" in capsys.readouterr().err
    argv = ["--root", str(root), "sweep", "--strategies", "FedAvg", "--dataset-params"]
    assert main([*argv, '{"n_samples": 5000000}']) == 1
    assert "dataset_params.n_samples: Input should be less than or equal to" in (
        capsys.readouterr().err
    )
    assert not root.exists() or not [p for p in root.iterdir() if not p.name.startswith(".")]
