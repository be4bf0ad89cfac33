"""Extending a sweep in place (:mod:`velocity.engine.extend`): the plan, its refusals, and
extensions of a finished sweep, of a running one and of one killed mid-way, each
checked against one sweep planned with all those runs from the start.

Sweeps are tiny (3 rounds, 5 clients on the embedded digits); the driver that must
be running or be killed runs in a child process, slowed by the test-only hook
``VELOCITY_TEST_SLOW_RUN``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from velocity.engine.extend import Queued, extend_sweep, plan_extension, planned_runs
from velocity.engine.pool import TEST_SLOW_ENV
from velocity.engine.sweep import run_sweep
from velocity.errors import SpecError
from velocity.spec import RunSpec, matrix_spec
from velocity.sweepdir import names

TINY = {"rounds": 3, "clients": 5}
NOISE = "gaussian_noise:sigma=10,count=1"


def grid(strategies: list[str], attacks: list[str], repeats: int = 1) -> list[RunSpec]:
    return matrix_spec(strategies, attacks, repeats=repeats, **TINY).expand()


def resume(sweep_dir: Path) -> Callable[[], object]:
    return lambda: run_sweep(planned_runs(sweep_dir), sweep_dir, resume=True, progress=False)


def rounds_by_run(sweep_dir: Path) -> dict[tuple[str, int], bytes]:
    """``{(cell, repeat): rounds.csv}`` of every run: names may differ, cells and seeds not."""
    out = {}
    for spec in planned_runs(sweep_dir):
        out[(spec.cell, spec.repeat)] = (sweep_dir / spec.name / names.ROUNDS).read_bytes()
    return out


def assert_same_as_planned(extended: Path, planned: Path) -> None:
    got, want = rounds_by_run(extended), rounds_by_run(planned)
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key] == want[key], key
    status = json.loads((extended / names.STATUS).read_text())
    assert status["state"] == "done"
    assert status["done_runs"] == status["total_runs"] == len(want)
    comparison = json.loads((extended / names.COMPARISON).read_text())
    assert len(comparison["ranking"]) == len({cell for cell, _ in want})


def driver(sweep_dir: Path, runs: list[RunSpec], env: dict[str, str]) -> subprocess.Popen[str]:
    """``run_sweep(runs, sweep_dir)`` in a child process (a new session, to be killed whole)."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from velocity.engine.sweep import run_sweep\n"
        "from velocity.spec import RunSpec\n"
        "runs = [RunSpec.model_validate(r) for r in json.loads(sys.argv[2])]\n"
        "run_sweep(runs, Path(sys.argv[1]), parallel=1, progress=False,\n"
        "          resume=Path(sys.argv[1], 'plan.json').exists())\n"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, str(sweep_dir), json.dumps([r.to_json() for r in runs])],
        env={**os.environ, **env},
        text=True,
        start_new_session=True,
    )


def wait_for(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def running(sweep_dir: Path, run: str) -> bool:
    try:
        status = json.loads((sweep_dir / names.STATUS).read_text())
    except (OSError, ValueError):
        return False
    return status["runs"].get(run, {}).get("state") == "running"


# --------------------------------------------------------------------------- the plan


def test_more_repeats_new_strategies_and_attacks_are_the_grids_runs() -> None:
    runs = grid(["FedAvg"], [NOISE])
    added = plan_extension(runs, repeats=2, strategies=["FedMedian"], attacks=["sign_flipping"])
    whole = grid(["FedAvg", "FedMedian"], [NOISE, "sign_flipping"], repeats=2)
    twins = {(s.cell, s.repeat): s for s in whole}
    assert len(added) == len(whole) - len(runs) == 10
    assert {(s.cell, s.repeat) for s in [*runs, *added]} == set(twins)
    for spec in added:  # the same run as in the grid, seed included; only names may differ
        assert spec.model_dump(exclude={"name"}) == twins[spec.cell, spec.repeat].model_dump(
            exclude={"name"}
        )
    assert {s.seed for s in added} == {42, 43}


def test_the_word_adaptive_adds_every_adaptive_attack_not_yet_in_the_sweep() -> None:
    from velocity.attacks import adaptive_attacks

    runs = grid(["FedAvg"], ["min_max"])
    added = plan_extension(runs, attacks=["adaptive"])
    assert sorted(s.attack_label for s in added) == sorted(
        a for a in adaptive_attacks() if a != "min_max"
    )
    with pytest.raises(SpecError, match="--attacks min_max: min_max is already in the sweep"):
        plan_extension(runs, attacks=["min_max"])


def test_refusals_name_what_is_wrong() -> None:
    runs = grid(["FedAvg", "FedMedian"], [NOISE])
    with pytest.raises(SpecError, match=r"--extend cannot change rounds = 5 \(the sweep's: 3\)"):
        plan_extension(runs, repeats=2, settings={"rounds": 5, "parallel": 4})
    with pytest.raises(SpecError, match=r"lr = 0.5 \(the sweep's: 0.1\).*drop --lr"):
        plan_extension(runs, strategies=["Krum"], settings={"lr": 0.5, "rounds": 3})
    with pytest.raises(SpecError, match="FedMedian is already in the sweep"):
        plan_extension(runs, strategies=["FedMedian"])
    with pytest.raises(SpecError, match=r"gaussian_noise:sigma=10.0,count=1 is already"):
        plan_extension(runs, attacks=[NOISE])
    with pytest.raises(SpecError, match="the extension adds no run"):
        plan_extension(runs, repeats=1)
    with pytest.raises(SpecError, match="fewer than the sweep's 2 repeats"):
        plan_extension(grid(["FedAvg"], [], repeats=2), repeats=1)
    with pytest.raises(SpecError, match="did you mean"):
        plan_extension(runs, strategies=["FedMedain"])


def test_extend_refuses_a_directory_that_is_not_a_sweep(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"--extend .*: not a sweep directory \(no plan.json\)"):
        planned_runs(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_extension_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "s"
    run_sweep(grid(["FedAvg"], []), out, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(SpecError):
        plan_extension(planned_runs(out), strategies=["FedAvg"])
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


# --------------------------------------------------------------------------- running them


def test_extending_a_finished_sweep_equals_one_planned_sweep(tmp_path: Path) -> None:
    out, planned = tmp_path / "extended", tmp_path / "planned"
    run_sweep(grid(["FedAvg"], [NOISE]), out, progress=False)
    first = {p: (out / p / names.ROUNDS).stat().st_mtime_ns for p in ("FedAvg",)}
    new = plan_extension(planned_runs(out), repeats=2, strategies=["FedMedian"])
    result = extend_sweep(out, new, run=resume(out))
    assert not isinstance(result, Queued) and result.state == "done"
    assert {p: (out / p / names.ROUNDS).stat().st_mtime_ns for p in first} == first  # untouched
    run_sweep(grid(["FedAvg", "FedMedian"], [NOISE], repeats=2), planned, progress=False)
    assert_same_as_planned(out, planned)
    assert not list(out.glob(f"{names.QUEUED_PREFIX}*"))


def test_extending_a_running_sweep_queues_into_it(tmp_path: Path) -> None:
    out, planned = tmp_path / "extended", tmp_path / "planned"
    runs = grid(["FedAvg", "FedMedian"], [])
    child = driver(out, runs, {TEST_SLOW_ENV: "FedMedian:0.5"})
    try:
        wait_for(lambda: running(out, "FedMedian"))
        new = plan_extension(planned_runs(out), repeats=2, attacks=[NOISE])
        queued = extend_sweep(out, new, run=resume(out))
        assert isinstance(queued, Queued) and queued.pid == child.pid
        assert child.wait(timeout=120) == 0
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    run_sweep(grid(["FedAvg", "FedMedian"], [NOISE], repeats=2), planned, progress=False)
    assert_same_as_planned(out, planned)
    assert not list(out.glob(f"{names.QUEUED_PREFIX}*"))


def test_kill_9_during_an_extension_loses_nothing(tmp_path: Path) -> None:
    out, planned = tmp_path / "extended", tmp_path / "planned"
    run_sweep(grid(["FedAvg"], []), out, progress=False)
    new = plan_extension(planned_runs(out), repeats=3)
    slow = {TEST_SLOW_ENV: f"{new[0].name}:2"}
    child = driver(out, planned_runs(out) + new, slow)  # the extension, driven in a child
    try:
        wait_for(lambda: running(out, new[0].name))
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    result = run_sweep(planned_runs(out), out, resume=True, progress=False)
    assert result.state == "done"
    run_sweep(grid(["FedAvg"], [], repeats=3), planned, progress=False)
    assert_same_as_planned(out, planned)


def test_runs_queued_into_a_killed_driver_are_run_by_the_resume(tmp_path: Path) -> None:
    out, planned = tmp_path / "extended", tmp_path / "planned"
    child = driver(out, grid(["FedAvg", "FedMedian"], []), {TEST_SLOW_ENV: "FedAvg:5"})
    try:
        wait_for(lambda: running(out, "FedAvg"))
        new = plan_extension(planned_runs(out), strategies=["TrimmedMean:beta=0.2"])
        assert isinstance(extend_sweep(out, new, run=resume(out)), Queued)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert len(list(out.glob(f"{names.QUEUED_PREFIX}*"))) == 1  # on disk, not lost
    assert [s.name for s in planned_runs(out)][-1] == "TrimmedMean-beta=0.2"
    result = run_sweep(planned_runs(out), out, resume=True, progress=False)
    assert result.state == "done"
    run_sweep(grid(["FedAvg", "FedMedian", "TrimmedMean:beta=0.2"], []), planned, progress=False)
    assert_same_as_planned(out, planned)
    assert not list(out.glob(f"{names.QUEUED_PREFIX}*"))


# --------------------------------------------------------------------------- the command


def velocity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "velocity", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


def test_cli_extend_adds_a_strategy_and_repeats(tmp_path: Path) -> None:
    out = tmp_path / "s"
    first = velocity(
        "sweep",
        "--strategies",
        "FedAvg",
        "--attacks",
        NOISE,
        "--rounds",
        "3",
        "--clients",
        "5",
        "--out",
        str(out),
    )
    assert first.returncode == 0, first.stderr
    done = velocity("sweep", "--extend", str(out), "--strategies", "FedMedian", "--repeats", "2")
    assert done.returncode == 0, done.stderr
    assert "sweep: 6 runs, 2 already done" in done.stdout
    comparison = json.loads((out / names.COMPARISON).read_text())
    assert {c["strategy"] for c in comparison["recommendation"]["candidates"]} == {
        "FedAvg",
        "FedMedian",
    }
    assert all(c["repeats"] == 2 for c in comparison["recommendation"]["candidates"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--rounds", "7", "--repeats", "2"), "--extend cannot change rounds = 7 (the sweep's: 3)"),
        (("--strategies", "FedAvg"), "--strategies FedAvg: FedAvg is already in the sweep"),
        ((), "the extension adds no run"),
        (
            ("--repeats", "2", "--until", "decided"),
            "--extend adds runs to DIR as it is: it takes no --until",
        ),
        (("--strategies", "Krumm"), "did you mean"),
    ],
)
def test_cli_extend_refusals_write_nothing(
    tmp_path: Path, flags: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "s"
    run_sweep(grid(["FedAvg"], []), out, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    done = velocity("sweep", "--extend", str(out), *flags)
    assert done.returncode == 2
    assert message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_cli_extend_refuses_a_directory_that_is_not_a_sweep(tmp_path: Path) -> None:
    done = velocity("sweep", "--extend", str(tmp_path), "--repeats", "2")
    assert done.returncode == 2
    assert "not a sweep directory (no plan.json)" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_extend_of_a_running_sweep_queues_and_returns(tmp_path: Path) -> None:
    out = tmp_path / "s"
    child = driver(out, grid(["FedAvg", "FedMedian"], []), {TEST_SLOW_ENV: "FedMedian:0.5"})
    try:
        wait_for(lambda: running(out, "FedMedian"))
        done = velocity("sweep", "--extend", str(out), "--repeats", "2")
        assert done.returncode == 0, done.stderr
        assert f"extend: 2 runs queued into the running sweep {out} (pid {child.pid})" in (
            done.stdout
        )
        assert child.wait(timeout=120) == 0
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    status = json.loads((out / names.STATUS).read_text())
    assert (status["state"], status["done_runs"], status["total_runs"]) == ("done", 4, 4)
