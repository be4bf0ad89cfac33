"""Sweeps end to end: files, determinism across --parallel, failure isolation, resume, Ctrl-C.

The CLI tests run ``python -m velocity`` as a user would; the others call
:func:`velocity.engine.sweep.run_sweep` directly. Every sweep is tiny (2-3 rounds).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from velocity.engine.pool import TEST_CRASH_ENV, TEST_RAISE_ENV, TEST_SLOW_ENV
from velocity.engine.sweep import read_status, run_sweep
from velocity.errors import SpecError
from velocity.spec import matrix_spec

TINY = {"rounds": 3, "clients": 5}
RUN_FILES = ("config.json", "progress.json", "rounds.csv", "timings.csv", "summary.json")


def velocity(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "velocity", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def tiny_runs(strategies: list[str], attacks: Sequence[str] = (), **shared: object) -> list:
    return matrix_spec(strategies, attacks, **{**TINY, **shared}).expand()


def test_sweep_cli_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = velocity(
        "sweep",
        "--strategies",
        "FedAvg,FedMedian",
        "--attacks",
        "gaussian_noise:sigma=10,fraction=0.2",
        "--rounds",
        "3",
        "--clients",
        "5",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert str(out / "comparison.md") in done.stdout
    plan = read(out / "plan.json")
    names = [run["name"] for run in plan["runs"]]
    assert len(names) == 4 and plan["repeats"] == 1 and plan["parallel"] >= 1
    for name in names:
        for file in RUN_FILES:
            assert (out / name / file).is_file(), (name, file)
        assert read(out / name / "summary.json")["status"] == "done"
        assert len((out / name / "rounds.csv").read_text().splitlines()) == 1 + 3
    status = read(out / "status.json")
    assert status["state"] == "done" and status["done_runs"] == 4 and status["failed_runs"] == 0
    assert all(run["state"] == "done" for run in status["runs"].values())
    manifest = read(out / "manifest.json")
    assert manifest["command"][:2] == ["velocity", "sweep"]
    assert manifest["packages"]["numpy"]
    comparison = read(out / "comparison.json")
    assert comparison["winner"] in names
    assert (out / "comparison.md").read_text().strip()
    assert not list(out.glob("**/*.tmp"))


def test_same_rounds_with_parallel_1_and_2(tmp_path: Path) -> None:
    runs = tiny_runs(["FedAvg", "Krum"], ["sign_flipping:fraction=0.2"])
    one = run_sweep(runs, tmp_path / "p1", parallel=1, progress=False)
    two = run_sweep(runs, tmp_path / "p2", parallel=2, progress=False)
    assert one.state == two.state == "done" and not one.failed
    for spec in runs:
        first = (tmp_path / "p1" / spec.name / "rounds.csv").read_text()
        assert first == (tmp_path / "p2" / spec.name / "rounds.csv").read_text(), spec.name


def test_failed_runs_are_isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tiny_runs(["FedAvg", "FedMedian", "TrimmedMean"])
    crash, boom = runs[0].name, runs[1].name
    monkeypatch.setenv(TEST_CRASH_ENV, crash)
    monkeypatch.setenv(TEST_RAISE_ENV, boom)
    result = run_sweep(runs, tmp_path, parallel=2, progress=False)
    assert result.state == "done" and result.exit_code == 1
    assert sorted(result.failed) == sorted([crash, boom])
    assert result.runs[runs[2].name].state == "done"
    crashed = read(tmp_path / crash / "summary.json")
    assert crashed["status"] == "failed" and "SIGKILL" in crashed["error"]
    assert crashed["rounds_completed"] >= 1
    assert "RuntimeError" in read(tmp_path / boom / "summary.json")["error"]
    status = read(tmp_path / "status.json")
    assert status["failed_runs"] == 2 and status["done_runs"] == 1
    assert "SIGKILL" in status["runs"][crash]["error"]
    failed = {entry["run"] for entry in read(tmp_path / "comparison.json")["failed"]}
    assert failed == {crash, boom}


def test_crashed_worker_in_cli_sweep_exit_code(tmp_path: Path) -> None:
    out = tmp_path / "s"
    done = velocity(
        "sweep",
        "--strategies",
        "FedAvg,FedMedian",
        "--rounds",
        "2",
        "--clients",
        "4",
        "--parallel",
        "2",
        "--out",
        str(out),
        env={TEST_CRASH_ENV: "FedAvg"},
    )
    assert done.returncode == 1, done.stderr
    assert read(out / "status.json")["runs"]["FedMedian"]["state"] == "done"
    assert read(out / "FedAvg" / "summary.json")["status"] == "failed"


def test_resume_skips_finished_runs(tmp_path: Path) -> None:
    runs = tiny_runs(["FedAvg", "FedMedian"])
    run_sweep(runs, tmp_path, parallel=2, progress=False)
    kept, redo = runs
    (tmp_path / redo.name / "summary.json").unlink()  # as if it had been interrupted
    before = (tmp_path / kept.name / "summary.json").stat().st_mtime_ns
    with pytest.raises(SpecError, match="not empty"):
        run_sweep(runs, tmp_path, progress=False)
    result = run_sweep(runs, tmp_path, resume=True, progress=False)
    assert result.state == "done" and not result.failed
    assert result.runs[kept.name].skipped and not result.runs[redo.name].skipped
    assert (tmp_path / kept.name / "summary.json").stat().st_mtime_ns == before
    assert read(tmp_path / redo.name / "summary.json")["status"] == "done"
    assert read(tmp_path / "status.json")["done_runs"] == 2


def test_resume_refuses_a_changed_run(tmp_path: Path) -> None:
    run_sweep(tiny_runs(["FedAvg"]), tmp_path, progress=False)
    changed = tiny_runs(["FedAvg"], rounds=4)
    with pytest.raises(SpecError, match=r"'FedAvg'.*rounds"):
        run_sweep(changed, tmp_path, resume=True, progress=False)


def test_cli_resume_from_plan(tmp_path: Path) -> None:
    out = tmp_path / "s"
    assert (
        velocity(
            "sweep",
            "--strategies",
            "FedAvg,FedMedian",
            "--rounds",
            "2",
            "--clients",
            "4",
            "--out",
            str(out),
        ).returncode
        == 0
    )
    (out / "FedMedian" / "summary.json").unlink()
    done = velocity("sweep", "--resume", str(out))
    assert done.returncode == 0, done.stderr
    assert read(out / "FedMedian" / "summary.json")["status"] == "done"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_keeps_finished_runs(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "s"
    cmd = [
        sys.executable,
        "-m",
        "velocity",
        "sweep",
        "--strategies",
        "FedAvg,FedMedian,TrimmedMean",
        "--rounds",
        "3",
        "--clients",
        "4",
        "--parallel",
        "1",
        "--out",
        str(out),
    ]
    env = {**os.environ, TEST_SLOW_ENV: "FedMedian:2"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status = read_status(out)
            except (OSError, ValueError):
                status = {}
            runs = status.get("runs", {})
            slow, fast = runs.get("FedMedian", {}), runs.get("FedAvg", {})
            if slow.get("state") == "running" and fast.get("state") == "done":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the slow run never started")
        assert status["runs"]["FedMedian"]["round"] is not None
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    status = read(out / "status.json")
    assert status["state"] == "cancelled" and status["finished_at"]
    assert status["runs"]["FedAvg"]["state"] == "done"
    assert status["runs"]["FedMedian"]["state"] == "cancelled"
    assert status["runs"]["TrimmedMean"]["state"] == "cancelled"
    assert read(out / "FedAvg" / "summary.json")["status"] == "done"
    comparison = read(out / "comparison.json")
    assert comparison["winner"] == "FedAvg"
    assert {e["run"] for e in comparison["not_run"]} == {"FedMedian", "TrimmedMean"}
    assert not read_status(out)["stale"]
    resumed = velocity("sweep", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert read(out / "status.json")["done_runs"] == 3


def test_read_status_adds_current_round(tmp_path: Path) -> None:
    runs = tiny_runs(["FedAvg"])
    run_sweep(runs, tmp_path, progress=False)
    status = json.loads((tmp_path / "status.json").read_text())
    status["state"] = "running"
    status["runs"]["FedAvg"]["state"] = "running"
    status["pid"] = 2**22 + 12345  # no such process
    (tmp_path / "status.json").write_text(json.dumps(status))
    merged = read_status(tmp_path)
    assert merged["runs"]["FedAvg"]["round"] == 3 and merged["runs"]["FedAvg"]["rounds"] == 3
    assert merged["stale"] is True


def test_refuses_bad_output_before_writing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SpecError, match="cannot write"):
        run_sweep(tiny_runs(["FedAvg"]), blocker / "sub", progress=False)
    runs = tiny_runs(["FedAvg"]) * 2
    with pytest.raises(SpecError, match="duplicate run name"):
        run_sweep(runs, tmp_path / "dup", progress=False)
    assert not (tmp_path / "dup").exists()
    with pytest.raises(SpecError, match="not a sweep directory"):
        run_sweep(tiny_runs(["FedAvg"]), tmp_path / "none", resume=True, progress=False)
