"""Fault injection for the sweep engine: real processes, real signals, real files.

Nothing here is mocked. A sweep runs as ``python -m velocity sweep`` (the test-only
hook ``VELOCITY_TEST_SLOW_RUN`` keeps one run busy) and is then hit for real:
``kill -9`` of its driver or of a worker, SIGINT/SIGTERM, a second driver on the same
directory, a lock left by a dead process, files damaged on disk, a full disk (a
small tmpfs, when this machine lets the tests mount one), corrupt JSON of every
kind. Every test checks what a user would: exit status, one-line errors, no
traceback, no process left behind, no half-written or temp file, and that
``--resume`` then finishes with every run's files complete and nothing lost.

Orphans are found by scanning ``/proc`` for processes whose environment carries
the test's own marker (``VELOCITY_FAULT_TAG=<uuid>``): a driver's workers, its fork
server and resource tracker all inherit it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from velocity import cli
from velocity.engine.pool import START_METHOD_ENV, TEST_NO_PDEATHSIG_ENV, TEST_SLOW_ENV
from velocity.engine.sweep import read_status, run_sweep, verify_finished_run
from velocity.errors import SpecError
from velocity.spec import RunSpec, matrix_spec
from velocity.sweepdir import lock as sweeplock
from velocity.sweepdir.io import (
    atomic_write_bytes,
    atomic_write_json,
    read_json,
    remove_stray_temp_files,
    temp_writer,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="fault injection reads Linux /proc"
)

TAG_ENV = "VELOCITY_FAULT_TAG"
STRATEGIES = "FedAvg,FedMedian,TrimmedMean,CenteredClipping"
SLOW = "FedMedian"


# --------------------------------------------------------------------------- helpers


def sweep_args(out: Path, *extra: str, strategies: str = STRATEGIES) -> list[str]:
    return [
        "sweep",
        "--strategies",
        strategies,
        "--rounds",
        "3",
        "--clients",
        "4",
        "--out",
        str(out),
        *extra,
    ]


def start(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    """``python -m velocity ARGS`` in the background, marked with a fresh tag."""
    tag = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, "-m", "velocity", *args],
        env={**os.environ, **(env or {}), TAG_ENV: tag},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, tag


def velocity(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "velocity", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def tagged(tag: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries ``tag``."""
    marker = f"{TAG_ENV}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def run_states(out: Path) -> dict[str, str]:
    try:
        status = read_status(out)
    except (OSError, ValueError):
        return {}
    return {name: entry.get("state") for name, entry in status.get("runs", {}).items()}


def wait_slow_run_busy(out: Path, proc: subprocess.Popen[str]) -> None:
    """Until the slow run is running and another has finished (queued runs remain)."""

    def ready() -> bool:
        assert proc.poll() is None, proc.communicate()
        states = run_states(out)
        return states.get(SLOW) == "running" and "done" in states.values()

    wait_until(ready, 60, "the slow run to start after a run finished")


def _progress_round(run_dir: Path) -> int | None:
    """The last round a run's progress.json reports (None before it exists)."""
    try:
        return int(read_json(run_dir / "progress.json").get("round") or 0)
    except (OSError, ValueError):
        return None


def kill_and_reap(proc: subprocess.Popen[str], sig: int = signal.SIGKILL) -> None:
    proc.send_signal(sig)
    proc.communicate(timeout=30)


def assert_no_orphans(tag: str, within: float = 5.0) -> float:
    """No process of the sweep survives ``within`` seconds; returns how long it took."""
    began = time.monotonic()
    deadline = began + within
    while time.monotonic() < deadline:
        if not tagged(tag):
            return time.monotonic() - began
        time.sleep(0.02)
    survivors = {pid: cmdline(pid)[:100] for pid in tagged(tag)}
    for pid in survivors:  # do not leave them running after the test
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    pytest.fail(f"processes outlived their sweep driver: {survivors}")


def planned(out: Path) -> list[RunSpec]:
    return [RunSpec.model_validate(run) for run in read_json(out / "plan.json")["runs"]]


def assert_complete(out: Path) -> None:
    """Every planned run is finished with complete files, and no temp file is left."""
    for spec in planned(out):
        check = verify_finished_run(out / spec.name, spec)
        assert check.summary is not None, (spec.name, check.problem)
        rows = (out / spec.name / "rounds.csv").read_text().splitlines()
        assert len(rows) == 1 + check.summary["rounds_completed"]
    assert not list(out.rglob("*.tmp")), list(out.rglob("*.tmp"))
    status = read_json(out / "status.json")
    assert status["state"] == "done" and status["error"] is None
    assert status["done_runs"] + status["diverged_runs"] == len(planned(out))


RUN_FILES = ("summary.json", "rounds.csv", "timings.csv", "config.json", "checkpoint/final.npz")


def snapshot(out: Path, names: list[str]) -> dict[str, bytes]:
    return {f"{n}/{f}": (out / n / f).read_bytes() for n in names for f in RUN_FILES}


def finished_names(out: Path) -> list[str]:
    return [name for name, state in run_states(out).items() if state == "done"]


def assert_unchanged(out: Path, before: dict[str, bytes]) -> None:
    for path, data in before.items():
        assert (out / path).read_bytes() == data, f"{path} changed"


# --------------------------------------------------------------------------- kill -9


KILL_CASES = {
    "fork": {START_METHOD_ENV: "fork"},
    "forkserver": {START_METHOD_ENV: "forkserver"},
    "spawn": {START_METHOD_ENV: "spawn"},
    # no parent-death signal: only the workers' own liveness checks stop them
    "fork-no-pdeathsig": {START_METHOD_ENV: "fork", TEST_NO_PDEATHSIG_ENV: "1"},
    "forkserver-no-pdeathsig": {START_METHOD_ENV: "forkserver", TEST_NO_PDEATHSIG_ENV: "1"},
}


@pytest.mark.parametrize("case", sorted(KILL_CASES))
def test_kill9_driver_leaves_no_orphans_and_resume_loses_nothing(tmp_path: Path, case: str) -> None:
    out = tmp_path / "s"
    env = {**KILL_CASES[case], TEST_SLOW_ENV: f"{SLOW}:0.5"}
    proc, tag = start(sweep_args(out, "--parallel", "2"), env)
    try:
        wait_slow_run_busy(out, proc)
        workers = [pid for pid in tagged(tag) if pid != proc.pid]
        assert workers, "the sweep has no worker processes"
        done = finished_names(out)
        before = snapshot(out, done)
        kill_and_reap(proc)
        assert_no_orphans(tag)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_unchanged(out, before)  # no orphan redid (deleted) a finished run
    assert read_status(out)["stale"] is True
    resumed = velocity("sweep", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert "already done" in resumed.stdout and len(done) >= 1
    assert_complete(out)
    assert_unchanged(out, before)


def test_resume_right_after_kill9_while_runs_were_queued(tmp_path: Path) -> None:
    """The reported failure: an orphan redid a run under a resume that said "done"."""
    out = tmp_path / "s"
    proc, tag = start(sweep_args(out, "--parallel", "2"), {TEST_SLOW_ENV: f"{SLOW}:0.5"})
    try:
        wait_slow_run_busy(out, proc)
        before = snapshot(out, finished_names(out))
        kill_and_reap(proc)
        resumed = velocity("sweep", "--resume", str(out))  # at once: no waiting for orphans
    finally:
        if proc.poll() is None:
            proc.kill()
    assert resumed.returncode == 0, resumed.stderr
    assert not tagged(tag)
    assert_complete(out)
    assert_unchanged(out, before)


def worker_of(driver: int, tag: str) -> int:
    """The pool worker among the driver's processes (not its fork server or tracker)."""

    def find() -> int | None:
        for pid in tagged(tag):
            text = cmdline(pid)
            if pid == driver or "resource_tracker" in text or "forkserver import" in text:
                continue
            return pid
        return None

    pid: int = wait_until(find, 30, "a worker process")
    return pid


def test_kill9_worker_fails_that_run_only(tmp_path: Path) -> None:
    out = tmp_path / "s"
    proc, tag = start(sweep_args(out, "--parallel", "1"), {TEST_SLOW_ENV: f"{SLOW}:1"})
    try:
        wait_slow_run_busy(out, proc)
        wait_until(
            lambda: (_progress_round(out / SLOW) or 0) >= 1, 60, "the slow run's first round"
        )
        worker = worker_of(proc.pid, tag)
        assert parent_of(worker) == proc.pid
        os.kill(worker, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    status = read_json(out / "status.json")
    assert status["state"] == "done" and status["failed_runs"] == 1
    assert "killed by SIGKILL" in status["runs"][SLOW]["error"]
    summary = read_json(out / SLOW / "summary.json")
    assert summary["status"] == "failed" and summary["rounds_completed"] >= 1
    assert {s for n, s in run_states(out).items() if n != SLOW} == {"done"}
    assert not list(out.rglob("*.tmp"))
    assert not tagged(tag)
    resumed = velocity("sweep", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert "sweep: 1 runs, 3 already done" in resumed.stdout
    assert_complete(out)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_driver_and_workers(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "s"
    proc, tag = start(sweep_args(out, "--parallel", "2"), {TEST_SLOW_ENV: f"{SLOW}:1"})
    try:
        wait_slow_run_busy(out, proc)
        before = snapshot(out, finished_names(out))
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert_no_orphans(tag, within=3)
    status = read_json(out / "status.json")
    assert status["state"] == "cancelled" and status["runs"][SLOW]["state"] == "cancelled"
    assert not list(out.rglob("*.tmp"))  # a worker terminated in mid-write leaves none
    assert sweeplock.holder(out) is None
    resumed = velocity("sweep", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert_complete(out)
    assert_unchanged(out, before)


# --------------------------------------------------------------------------- one driver


def assert_refused_running(done: subprocess.CompletedProcess[str], pid: int) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("velocity: error: "), done.stderr
    assert f"is running (pid {pid})" in lines[0], lines[0]


def test_second_driver_refused_then_resume_after_kill9(tmp_path: Path) -> None:
    out = tmp_path / "s"
    proc, tag = start(sweep_args(out, "--parallel", "2"), {TEST_SLOW_ENV: f"{SLOW}:2"})
    try:
        wait_slow_run_busy(out, proc)
        assert sweeplock.holder(out) == proc.pid
        assert_refused_running(velocity("sweep", "--resume", str(out)), proc.pid)
        assert_refused_running(velocity(*sweep_args(out)), proc.pid)
        with pytest.raises(SpecError, match=rf"is running \(pid {proc.pid}\)"):
            run_sweep(planned(out), out, resume=True, progress=False)
        assert proc.poll() is None  # the refusals did not disturb the running sweep
        before = snapshot(out, finished_names(out))
        kill_and_reap(proc)
        began = time.monotonic()
        resumed = velocity("sweep", "--resume", str(out))
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
    assert resumed.returncode == 0, resumed.stderr
    assert took < 30
    assert not tagged(tag)
    assert_complete(out)
    assert_unchanged(out, before)


LOCKER = """
import sys, time
from velocity.sweepdir import lock as sweeplock
lock = sweeplock.acquire(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


@contextlib.contextmanager
def lock_held_elsewhere(directory: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(directory)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def tiny(strategies: list[str], **shared: Any) -> list[RunSpec]:
    return matrix_spec(strategies, [], **{"rounds": 2, "clients": 4, **shared}).expand()


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished sweep of two runs, one of which diverges after one round."""
    out = tmp_path_factory.mktemp("finished") / "sweep"
    runs = matrix_spec(
        ["FedAvg"], ["gaussian_noise:sigma=1e38,fraction=0.5,start_round=2"], rounds=3, clients=4
    ).expand()
    result = run_sweep(runs, out, parallel=2, progress=False)
    assert result.state == "done" and not result.failed
    states = {name: run.state for name, run in result.runs.items()}
    assert sorted(states.values()) == ["diverged", "done"], states
    return out


def copy_of(sweep: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(sweep, out, symlinks=True)
    return out


def resume(out: Path) -> Any:
    return run_sweep(planned(out), out, resume=True, progress=False)


def test_lock_of_a_dead_process_does_not_block(finished_sweep: Path, tmp_path: Path) -> None:
    out = copy_of(finished_sweep, tmp_path)
    with lock_held_elsewhere(out) as locker:
        assert sweeplock.holder(out) == locker.pid
        with pytest.raises(SpecError, match=rf"is running \(pid {locker.pid}\)"):
            resume(out)
        locker.kill()
        locker.wait()
    assert sweeplock.holder(out) is None
    assert (out / ".lock").read_text().strip() == str(locker.pid)  # the dead pid stays
    result = resume(out)
    assert result.state == "done" and all(run.skipped for run in result.runs.values())


def test_live_pid_in_lock_or_status_does_not_block(finished_sweep: Path, tmp_path: Path) -> None:
    """A pid reused after a reboot (here: pid 1, alive) names no driver: the flock decides."""
    out = copy_of(finished_sweep, tmp_path)
    (out / ".lock").write_text("1\n")
    status = read_json(out / "status.json")
    status.update(state="running", pid=1)
    atomic_write_json(out / "status.json", status)
    assert sweeplock.holder(out) is None
    assert resume(out).state == "done"
    assert read_json(out / "status.json")["pid"] == os.getpid()


def test_fresh_sweep_refusals_leave_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with lock_held_elsewhere(empty) as locker:
        with pytest.raises(SpecError, match=rf"is running \(pid {locker.pid}\)"):
            run_sweep(tiny(["FedAvg"]), empty, progress=False)
        assert [p.name for p in empty.iterdir()] == [".lock"]  # the other driver's
    # the lock file alone (its process dead) does not make the directory "not empty"
    assert run_sweep(tiny(["FedAvg"]), empty, progress=False).state == "done"
    # a resume of a directory that is not a sweep leaves no lock file in it
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SpecError, match="not a sweep directory"):
        run_sweep(tiny(["FedAvg"]), other, resume=True, progress=False)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    with pytest.raises(SpecError, match="not a sweep directory"):
        run_sweep(tiny(["FedAvg"]), tmp_path / "absent", resume=True, progress=False)
    assert not (tmp_path / "absent").exists()


# --------------------------------------------------------------------------- verify on resume


def _rewrite(path: Path, edit: Callable[[str], str]) -> None:
    path.write_text(edit(path.read_text()))


def _summary(run: Path, **changes: Any) -> None:
    summary = read_json(run / "summary.json")
    summary.update(changes)
    (run / "summary.json").write_text(json.dumps(summary))


def _drop_last_row(path: Path) -> None:
    _rewrite(path, lambda text: "".join(text.splitlines(keepends=True)[:-1]))


DAMAGE: dict[str, Callable[[Path, Path], object]] = {
    # (run directory, the other run's directory)
    "rounds.csv missing its last round": lambda run, _: _drop_last_row(run / "rounds.csv"),
    "rounds.csv cut in mid-line": lambda run, _: (run / "rounds.csv").write_bytes(
        (run / "rounds.csv").read_bytes()[:-7]
    ),
    "rounds.csv with a NaN accuracy": lambda run, _: _rewrite(
        run / "rounds.csv", lambda t: t.replace(t.splitlines()[1].split(",")[3], "nan", 1)
    ),
    "rounds.csv missing": lambda run, _: (run / "rounds.csv").unlink(),
    "rounds.csv with an extra round": lambda run, _: _rewrite(
        run / "rounds.csv", lambda t: t + t.splitlines()[-1].replace("1,", "4,", 1) + "\n"
    ),
    "rounds.csv of another run": lambda run, other: shutil.copy(
        other / "rounds.csv", run / "rounds.csv"
    ),
    "timings.csv missing": lambda run, _: (run / "timings.csv").unlink(),
    "checkpoint truncated": lambda run, _: (run / "checkpoint/final.npz").write_bytes(
        (run / "checkpoint/final.npz").read_bytes()[:300]
    ),
    "checkpoint garbage": lambda run, _: (run / "checkpoint/final.npz").write_bytes(
        os.urandom(2000)
    ),
    "checkpoint missing": lambda run, _: (run / "checkpoint/final.npz").unlink(),
    "checkpoint of another run": lambda run, other: shutil.copy(
        other / "checkpoint/final.npz", run / "checkpoint/final.npz"
    ),
    "checkpoint with NaN parameters": lambda run, _: _nan_checkpoint(run / "checkpoint/final.npz"),
    "summary with NaN final_loss": lambda run, _: _rewrite(
        run / "summary.json",
        lambda t: t.replace(
            f'"final_loss": {read_json(run / "summary.json")["final_loss"]!r}', '"final_loss": NaN'
        ),
    ),
    "summary with Infinity accuracy": lambda run, _: _summary(run, best_accuracy=float("inf")),
    "summary with a null metric": lambda run, _: _summary(run, mean_accuracy=None),
    "summary with a string metric": lambda run, _: _summary(run, final_accuracy="0.9"),
    "summary rounds_completed short": lambda run, _: _summary(
        run, rounds_completed=read_json(run / "summary.json")["rounds_completed"] - 1
    ),
    "summary without a checkpoint": lambda run, _: _summary(run, checkpoint=None),
    "summary of another run": lambda run, other: shutil.copy(
        other / "summary.json", run / "summary.json"
    ),
    "summary null": lambda run, _: (run / "summary.json").write_text("null"),
    "summary a list": lambda run, _: (run / "summary.json").write_text("[1, 2]"),
    "summary truncated": lambda run, _: (run / "summary.json").write_bytes(
        (run / "summary.json").read_bytes()[:40]
    ),
    "summary binary": lambda run, _: (run / "summary.json").write_bytes(b"\xff\xfe\x00garbage"),
    "summary deeply nested": lambda run, _: (run / "summary.json").write_text(
        "[" * 100_000 + "]" * 100_000
    ),
    "summary a directory": lambda run, _: _replace_with_dir(run / "summary.json"),
    "config.json null": lambda run, _: (run / "config.json").write_text("null"),
    "config.json truncated": lambda run, _: (run / "config.json").write_bytes(
        (run / "config.json").read_bytes()[:30]
    ),
    "run directory replaced by a file": lambda run, _: _replace_with_file(run),
}


def _nan_checkpoint(path: Path) -> None:
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["params"] = np.full_like(arrays["params"], np.nan)
    with path.open("wb") as handle:
        np.savez(handle, **arrays)


def _replace_with_dir(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _replace_with_file(path: Path) -> None:
    shutil.rmtree(path)
    path.write_text("not a run")


@pytest.mark.parametrize("which", ["done", "diverged"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_resume_reruns_a_run_whose_files_are_incomplete(
    finished_sweep: Path, tmp_path: Path, damage: str, which: str
) -> None:
    out = copy_of(finished_sweep, tmp_path)
    states = run_states(out)
    name = next(n for n, s in states.items() if s == which)
    other = next(n for n in states if n != name)
    original = (out / name / "rounds.csv").read_bytes()
    DAMAGE[damage](out / name, out / other)
    if not damage.startswith("config.json"):  # the config is the caller's to check
        check = verify_finished_run(out / name, next(s for s in planned(out) if s.name == name))
        assert check.summary is None and check.problem, check
    result = resume(out)
    assert result.state == "done", result.error
    assert not result.runs[name].skipped and result.runs[other].skipped
    assert result.runs[name].state == which
    assert_complete(out)
    assert (out / name / "rounds.csv").read_bytes() == original  # the same, deterministic


def test_resume_keeps_complete_runs_as_they_are(finished_sweep: Path, tmp_path: Path) -> None:
    out = copy_of(finished_sweep, tmp_path)
    before = {p: p.read_bytes() for p in out.glob("*/*") if p.is_file()}
    result = resume(out)
    assert all(run.skipped for run in result.runs.values())
    assert {p: p.read_bytes() for p in out.glob("*/*") if p.is_file()} == before


def test_resume_prints_why_it_reruns(finished_sweep: Path, tmp_path: Path) -> None:
    out = copy_of(finished_sweep, tmp_path)
    _drop_last_row(out / "FedAvg" / "rounds.csv")
    done = velocity("sweep", "--resume", str(out))
    assert done.returncode == 0, done.stderr
    assert "resume: rerunning FedAvg: rounds.csv has 2 of its 3 rounds" in done.stdout


# --------------------------------------------------------------------------- stray temp files


def test_stray_temp_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    code = (
        "import sys, time\nfrom pathlib import Path\nfrom velocity.sweepdir.io import _open_temp\n"
        "fd, tmp = _open_temp(Path(sys.argv[1]) / 'status.json')\n"
        "import os; os.write(fd, b'{\"half')\nprint(tmp, flush=True)\ntime.sleep(120)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        tmp = Path(writer.stdout.readline().strip())
        assert tmp.is_file() and temp_writer(tmp) == writer.pid
        assert remove_stray_temp_files(tmp_path) == []  # its writer is alive: a write in progress
        writer.kill()
        writer.wait()
    finally:
        if writer.poll() is None:
            writer.kill()
    foreign = tmp_path / ".notes.txt.tmp"  # not ours: no pid in the name
    foreign.write_text("x")
    assert remove_stray_temp_files(tmp_path) == [tmp]
    assert not tmp.exists() and foreign.exists()


def test_resume_removes_a_killed_drivers_temp_files(finished_sweep: Path, tmp_path: Path) -> None:
    out = copy_of(finished_sweep, tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    strays = [
        out / f".status.json.{dead}-0a1b2c3d.tmp",
        out / "FedAvg" / f".rounds.csv.{dead}-beef.tmp",
    ]
    for path in strays:
        path.write_text("half")
    assert resume(out).state == "done"
    assert not any(path.exists() for path in strays)


# --------------------------------------------------------------------------- disk full


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (needs root or CAP_SYS_ADMIN; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0777", "tmpfs", str(mount)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs for the disk-full tests: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the disk-full tests: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` so that only about ``leave`` bytes stay free; returns the filler file."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        handle.write(b"\0" * max(free - leave, 0))
    return filler


def test_atomic_write_on_a_full_disk_leaves_the_old_file(small_disk: Path) -> None:
    target = small_disk / "status.json"
    atomic_write_json(target, {"state": "running"})
    old = target.read_bytes()
    fill(small_disk, 0)
    with pytest.raises(OSError) as caught:
        atomic_write_bytes(target, b"x" * 200_000)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert target.read_bytes() == old
    assert [p.name for p in small_disk.iterdir() if p.name.endswith(".tmp")] == []


def assert_recorded_disk_full(done: subprocess.CompletedProcess[str], out: Path) -> dict[str, Any]:
    """The sweep ended with exit 1, one error line, no traceback, and status.json says why."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "disk full (No space left on device) while writing" in lines[0]
    status: dict[str, Any] = read_json(out / "status.json")
    assert status["finished_at"] and status["error"] and status["error"] in lines[0], status
    assert set(run_states(out).values()) <= {"done", "diverged", "failed", "cancelled"}
    for entry in status["runs"].values():
        if entry["state"] == "failed":
            assert "disk full (No space left on device) while writing" in entry["error"]
    assert not list(out.rglob("*.tmp"))
    for path in out.rglob("*.json"):  # every file whole: the old or the new, never half
        read_json(path)
    return status


def assert_compares_and_resumes(out: Path, filler: Path) -> None:
    filler.unlink()  # space is freed
    finished = {s.name for s in planned(out) if verify_finished_run(out / s.name, s).summary}
    assert finished >= {n for n, state in run_states(out).items() if state == "done"}
    compared = velocity("compare", str(out))
    assert compared.returncode == 0, compared.stderr
    comparison = read_json(out / "comparison.json")
    assert {row["run"] for row in comparison["ranking"]} == finished
    resumed = velocity("sweep", "--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert_complete(out)


def test_disk_fills_up_mid_sweep(small_disk: Path) -> None:
    """Another process fills the disk while runs are going: failed, with the reason."""
    out = small_disk / "s"
    proc, tag = start(sweep_args(out, "--parallel", "2"), {TEST_SLOW_ENV: f"{SLOW}:0.5"})
    try:
        wait_slow_run_busy(out, proc)
        before = snapshot(out, finished_names(out))
        filler = fill(small_disk, 0)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    status = assert_recorded_disk_full(done, out)
    assert status["state"] == "failed" and status["runs"][SLOW]["state"] in ("failed", "cancelled")
    assert not tagged(tag)
    assert_unchanged(out, before)
    assert_compares_and_resumes(out, filler)
    assert_unchanged(out, before)


@pytest.mark.parametrize("leave_kib", [60, 90, 120, 150, 200])
def test_disk_full_at_any_point_is_recorded(small_disk: Path, leave_kib: int) -> None:
    """Little free space: the sweep stops wherever it runs out (a run, status.json, the
    comparison) and says so, or refuses to start (leaving nothing)."""
    out = small_disk / "s"
    filler = fill(small_disk, leave_kib * 1024)
    done = velocity(*sweep_args(out, "--parallel", "2"))
    if done.returncode == 2:  # not even plan.json fitted
        assert "disk full (No space left on device)" in done.stderr
        assert not out.exists()
        return
    if done.returncode == 0:  # it all fitted (only the pictures may not have)
        return
    status = assert_recorded_disk_full(done, out)
    if status["state"] == "done":
        assert "writing the comparison failed: disk full" in status["error"]
    else:
        assert status["state"] == "failed"
    assert_compares_and_resumes(out, filler)


def test_disk_full_before_the_sweep_starts_leaves_nothing(small_disk: Path) -> None:
    out = small_disk / "s"
    fill(small_disk, 6 * 1024)
    done = velocity(*sweep_args(out))
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "disk full (No space left on device)" in lines[0], done.stderr
    assert not out.exists() or not any(out.iterdir())


def test_status_json_unwritable_mid_sweep_stops_the_sweep(tmp_path: Path) -> None:
    """The driver's own write fails (in its listener thread): recorded, no traceback."""
    out = tmp_path / "s"
    proc, tag = start(sweep_args(out, "--parallel", "1"), {TEST_SLOW_ENV: f"{SLOW}:1"})
    try:
        wait_slow_run_busy(out, proc)
        (out / "status.json").unlink()
        (out / "status.json").mkdir()  # every later replace of status.json fails
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "while writing" in stderr and "status.json" in stderr
    assert not tagged(tag)
    assert not list(out.rglob("*.tmp"))


# --------------------------------------------------------------------------- corrupt files


CORRUPTIONS: dict[str, Callable[[Path], object]] = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: max(len(p.read_bytes()) // 2, 1)]),
    "empty": lambda p: p.write_bytes(b""),
    "null": lambda p: p.write_text("null"),
    "list": lambda p: p.write_text("[1, 2, 3]"),
    "binary": lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + os.urandom(64)),
    "deeply nested": lambda p: p.write_text('{"a": ' * 50_000 + "1" + "}" * 50_000),
    "directory": lambda p: _replace_with_dir(p),
    "wrong types": lambda p: p.write_text(
        json.dumps(
            {
                "runs": 5,
                "state": [],
                "status": {},
                "error": 3,
                "detection": "x",
                "rounds_completed": "2",
                "checkpoint": 7,
                "name": None,
                "pid": "x",
                "final_loss": "nan",
                "test_samples": "many",
                "rank_by": 4,
            }
        )
    ),
    "wrong nested types": lambda p: p.write_text(
        json.dumps(
            {
                "runs": [5, None, {"name": 3}, {"name": "FedAvg", "strategy": 5, "attacks": 7}],
                "name": "FedAvg",
                "status": "done",
                "rounds_completed": 3,
                "detection": {"kept_honest": "abc", "kept_byzantine": [1]},
                "byzantine_clients": [1, 2],
                "strategy": {"type": None},
                "attacks": [3, {"type": []}],
                "seed": "x",
                "repeat": -1,
                "rounds": "three",
                "final_accuracy": [],
                "elapsed_s": {},
                "parallel": "2",
                "repeats": None,
                "created_at": 5,
                "git": "x",
                "packages": [],
                "previous": {},
            }
        )
    ),
}
SWEEP_FILES = ("status.json", "plan.json", "comparison.json", "manifest.json")
RUN_JSON = ("summary.json", "config.json", "progress.json")


def corrupt(out: Path, file: str, how: str) -> Path:
    path = out / file if file in SWEEP_FILES else out / "FedAvg" / file
    CORRUPTIONS[how](path)
    return path


def cli_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_answer(code: int, err: str, path: Path) -> None:
    """Success, or one line (no traceback) that names the file."""
    assert "Traceback" not in err
    if code != 0:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert path.name in lines[0], (path, lines[0])


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
@pytest.mark.parametrize("file", [*SWEEP_FILES, *RUN_JSON, "rounds.csv"])
def test_compare_answers_corrupt_files(
    finished_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, how: str
) -> None:
    out = copy_of(finished_sweep, tmp_path)
    path = corrupt(out, file, how)
    code, _, err = cli_main(["compare", str(out)], capsys)
    assert_answer(code, err, path)
    if code == 0:
        comparison = read_json(out / "comparison.json")
        assert comparison["header"]["runs_total"] >= 1
    code, _, err = cli_main(["report", str(out)], capsys)
    assert "Traceback" not in err and code in (0, 1, 2)


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
def test_read_status_names_a_corrupt_status_file(
    finished_sweep: Path, tmp_path: Path, how: str
) -> None:
    out = copy_of(finished_sweep, tmp_path)
    corrupt(out, "status.json", how)
    try:
        status = read_status(out)
    except (OSError, ValueError) as exc:
        assert "status.json" in str(exc)
    else:
        assert isinstance(status, dict) and isinstance(status["stale"], bool)


@pytest.mark.parametrize("how", sorted(CORRUPTIONS))
@pytest.mark.parametrize("file", [*SWEEP_FILES, *RUN_JSON])
def test_resume_answers_corrupt_files(
    finished_sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str, how: str
) -> None:
    out = copy_of(finished_sweep, tmp_path)
    path = corrupt(out, file, how)
    code, _, err = cli_main(["sweep", "--resume", str(out)], capsys)
    assert_answer(code, err, path)
    refused = (
        file == "plan.json"  # the plan is what --resume runs
        or (how == "directory" and file in SWEEP_FILES)  # a file it must rewrite
        or (how.startswith("wrong") and file == "config.json")  # maybe another version's
    )
    if refused:
        assert code != 0
        return
    assert code == 0, err
    assert_complete(out)
    if file in RUN_JSON and file != "progress.json":
        assert read_json(out / "FedAvg" / "summary.json")["status"] == "done"


# --------------------------------------------------------------------------- file modes


SWEEP_CMD = (sys.executable, "-m", "velocity", "sweep", "--clients", "4")


def _modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): p.stat().st_mode & 0o7777
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink()
    }


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_every_file_has_a_plain_files_mode(tmp_path: Path, umask: int) -> None:
    """In a process started under the umask (as a user's shell would), every file matches."""
    pytest.importorskip("matplotlib")
    old = os.umask(umask)
    try:
        plain = tmp_path / "plain"
        plain.write_text("x")
        expected = plain.stat().st_mode & 0o7777
    finally:
        os.umask(old)
    out = tmp_path / "s"
    done = subprocess.run(
        [*SWEEP_CMD, "--strategies", "FedAvg,FedMedian", "--rounds", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(umask),
    )
    assert done.returncode == 0, done.stderr
    modes = _modes(out)
    for name in (
        ".lock",
        "results.csv",
        "report.html",
        "curves.png",
        "robustness.png",
        "comparison.json",
        "status.json",
        "FedAvg/checkpoint/final.npz",
    ):
        assert name in modes, sorted(modes)
    wrong = {name: oct(mode) for name, mode in modes.items() if mode != expected}
    assert not wrong, (oct(expected), wrong)
