"""The ray backend: same files as the local pool, failures isolated, resume across backends.

Most tests share one local Ray instance (``ray.init(num_cpus=2)``, started once for
the module: it takes seconds) and call :func:`velocity.engine.sweep.run_sweep` with
``backend="ray"``; one runs ``velocity sweep --backend ray --ray-address ADDR``
against that instance, as a user would against a cluster. They are skipped when
Ray is not installed (``make install`` installs the ``ray`` extra). The refusals
(Ray missing, ``--ray-address`` without the ray backend) need no Ray.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from velocity.engine.pool import TEST_CRASH_ENV, TEST_RAISE_ENV, TEST_SLOW_ENV
from velocity.engine.sweep import run_sweep
from velocity.errors import SpecError
from velocity.spec import build_sweep, matrix_spec

TINY = {"rounds": 3, "clients": 5}
STRATEGIES = ["FedAvg", "FedMedian"]
ATTACKS = ["gaussian_noise:sigma=10,fraction=0.2"]
NO_RAY = "Ray is not installed (pip install 'velocity-fl[ray]'; make install does)"


def tiny_runs() -> list[Any]:
    """2 strategies × (no attack + 1 attack), 3 rounds: four runs."""
    return matrix_spec(STRATEGIES, ATTACKS, **TINY).expand()


def read(path: Path) -> Any:
    return json.loads(path.read_text())


def velocity(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m velocity ARGS`` (or ``python -c CODE ARGS``) as a user runs it."""
    command = ["-c", code, *args] if code else ["-m", "velocity", *args]
    return subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "RAY_ADDRESS": ""},
    )


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the same sweep on the local backend (before Ray starts threads here)."""
    out = tmp_path_factory.mktemp("local") / "sweep"
    assert run_sweep(tiny_runs(), out, progress=False).state == "done"
    return out


@pytest.fixture(scope="module")
def ray_session(local_sweep: Path) -> Iterator[None]:
    """One local Ray instance for the module; run_sweep uses it and leaves it running."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_writes_the_local_backends_files(
    ray_session: None, local_sweep: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    result = run_sweep(tiny_runs(), out, progress=False, backend="ray")
    assert (result.state, result.backend, result.exit_code) == ("done", "ray", 0)
    assert result.parallel == 2  # the cluster's CPUs
    for spec in tiny_runs():
        ours, theirs = out / spec.name, local_sweep / spec.name
        for name in ("rounds.csv", "config.json", "checkpoint/final.npz"):
            assert (ours / name).read_bytes() == (theirs / name).read_bytes(), (spec.name, name)
        assert (ours / "timings.csv").is_file()
        assert read(ours / "progress.json") == {"state": "done", "round": 3, "rounds": 3}
        summary = read(ours / "summary.json")
        assert summary["status"] == "done"
        assert summary["final_loss"] == read(theirs / "summary.json")["final_loss"]
        worker = result.runs[spec.name].worker
        assert worker and worker["node"]  # where it ran
    assert "backend" not in read(out / tiny_runs()[0].name / "config.json")
    assert read(out / "plan.json")["backend"] == "ray"
    status = read(out / "status.json")
    assert (status["state"], status["done_runs"], status["failed_runs"]) == ("done", 4, 0)
    ours, theirs = read(out / "comparison.json"), read(local_sweep / "comparison.json")
    for key in ("winner", "most_robust", "failed", "caveats"):
        assert ours[key] == theirs[key], key
    timeless = [{k: v for k, v in row.items() if k != "elapsed_s"} for row in ours["ranking"]]
    assert timeless == [
        {k: v for k, v in row.items() if k != "elapsed_s"} for row in theirs["ranking"]
    ]


def test_failed_runs_on_ray_are_isolated_and_resume_on_local(
    ray_session: None, local_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raised, crashed = tiny_runs()[0].name, tiny_runs()[3].name
    monkeypatch.setenv(TEST_RAISE_ENV, raised)  # raises in the task
    monkeypatch.setenv(TEST_CRASH_ENV, crashed)  # SIGKILLs its Ray worker after round 1
    out = tmp_path / "sweep"
    result = run_sweep(tiny_runs(), out, progress=False, backend="ray")
    assert result.state == "done" and result.exit_code == 1
    assert sorted(result.failed) == sorted([raised, crashed])
    assert "test hook" in read(out / raised / "summary.json")["error"]
    died = read(out / crashed / "summary.json")
    assert died["status"] == "failed" and "WorkerCrashedError" in died["error"]
    assert died["rounds_completed"] == 1  # progress.json streamed back before the crash
    status = read(out / "status.json")
    assert (status["state"], status["done_runs"], status["failed_runs"]) == ("done", 2, 2)
    assert (out / "comparison.json").is_file()

    monkeypatch.delenv(TEST_RAISE_ENV)
    monkeypatch.delenv(TEST_CRASH_ENV)
    again = run_sweep(tiny_runs(), out, progress=False, resume=True)  # the backend is no setting
    assert (again.state, again.exit_code, again.backend) == ("done", 0, "local")
    assert sorted(n for n, run in again.runs.items() if not run.skipped) == sorted(
        [raised, crashed]
    )
    for name in (raised, crashed):
        assert (out / name / "rounds.csv").read_bytes() == (
            local_sweep / name / "rounds.csv"
        ).read_bytes()


def test_ray_driver_that_cannot_write_a_run_stops_the_sweep(
    ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver writes a Ray run's files: when it cannot (here progress.json became a
    directory under it), that run fails with the reason and the sweep stops, recorded."""
    runs = matrix_spec(["FedAvg", "FedMedian", "TrimmedMean"], rounds=3, clients=4).expand()
    monkeypatch.setenv(TEST_SLOW_ENV, "FedAvg:1")
    out = tmp_path / "sweep"
    progress = out / "FedAvg" / "progress.json"

    def break_progress() -> None:  # the fault, injected while the run goes
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if read(progress)["round"] >= 1:
                    progress.unlink()
                    progress.mkdir()
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.02)

    injector = threading.Thread(target=break_progress, daemon=True)
    injector.start()
    result = run_sweep(runs, out, progress=False, backend="ray", parallel=1)
    injector.join(timeout=5)
    assert result.state == "failed" and result.exit_code == 1
    assert result.error and "while writing" in result.error and "progress.json" in result.error
    status = read(out / "status.json")
    assert status["state"] == "failed" and status["error"] == result.error
    assert status["runs"]["FedAvg"]["state"] == "failed"
    assert {status["runs"][n]["state"] for n in ("FedMedian", "TrimmedMean")} <= {
        "cancelled",
        "done",
    }
    assert not list(out.rglob("*.tmp"))
    monkeypatch.delenv(TEST_SLOW_ENV)
    again = run_sweep(runs, out, progress=False, resume=True)
    assert again.state == "done" and not again.failed


def test_ray_writes_storage_checkpoints_on_the_driver(
    ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers_cwd = Path.cwd()  # Ray's workers started here, with the instance
    monkeypatch.chdir(tmp_path)
    storage = f"ckpt-{tmp_path.name}"
    runs = matrix_spec(
        ["FedAvg"], storage=f"local://{storage}", checkpoint_every=2, rounds=3, clients=5
    ).expand()
    result = run_sweep(runs, tmp_path / "sweep", progress=False, backend="ray")
    assert result.state == "done"
    assert sorted(p.name for p in (tmp_path / storage).iterdir()) == ["final.npz", "round_2.npz"]
    summary = read(tmp_path / "sweep" / "FedAvg" / "summary.json")
    assert summary["checkpoint"] == str((tmp_path / storage / "final.npz").resolve())
    assert read(tmp_path / "sweep" / "FedAvg" / "config.json")["storage"] == f"local://{storage}"
    assert not (workers_cwd / storage).exists()  # nothing left on the worker's side


def test_cli_sweep_joins_a_running_cluster(ray_session: None, tmp_path: Path) -> None:
    import ray

    address = ray.get_runtime_context().gcs_address  # as `ray start --head` prints it
    out = tmp_path / "sweep"
    done = velocity(
        "sweep", "--strategies", "FedAvg", "--rounds", "2", "--clients", "4",
        "--backend", "ray", "--ray-address", address, "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"(ray, 2 CPUs on {address})" in done.stdout
    assert "Sweep done: 1 of 1 runs done" in done.stdout
    assert read(out / "FedAvg" / "summary.json")["status"] == "done"
    assert ray.is_initialized()  # the CLI's sweep left the cluster it joined running


def test_ray_refusals_write_nothing(ray_session: None, tmp_path: Path) -> None:
    import ray

    out = tmp_path / "sweep"
    with pytest.raises(SpecError, match="ray_gpus = 1 per run, but the Ray cluster has 0 GPUs"):
        run_sweep(tiny_runs(), out, progress=False, backend="ray", ray_gpus=1)
    assert ray.is_initialized() and not out.exists()  # the caller's session is left alone
    done = velocity(
        "sweep", "--strategies", "FedAvg", "--backend", "ray",
        "--ray-address", "127.0.0.1:1", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 2 and not out.exists()
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in done.stderr


def test_backend_from_toml_is_not_part_of_a_run() -> None:
    spec = build_sweep(
        {
            "shared": {"backend": "ray", "ray_address": "10.0.0.5:6379", "ray_gpus": 0.5},
            "runs": [{"strategy": "FedAvg"}],
        }
    )
    assert spec.shared.backend == "ray" and spec.shared.ray_gpus == 0.5
    run = spec.expand()[0].to_json()
    assert not {"backend", "ray_address", "ray_gpus", "parallel", "repeats"} & set(run)


def test_missing_ray_is_one_clear_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    out = tmp_path / "sweep"
    with pytest.raises(SpecError, match=r"pip install 'velocity-fl\[ray\]'"):
        run_sweep(tiny_runs(), out, progress=False, backend="ray")
    assert not out.exists()


def test_cli_refusals_without_ray(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    code = "import sys; sys.modules['ray'] = None; from velocity.cli import main; sys.exit(main())"
    done = velocity(
        "sweep", "--strategies", "FedAvg", "--backend", "ray", "--out", str(out), code=code
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "velocity: error: the ray backend needs Ray, which is not installed: "
        "pip install 'velocity-fl[ray]'"
    ]
    assert not out.exists()
    done = velocity("sweep", "--strategies", "FedAvg", "--ray-address", "auto", "--out", str(out))
    assert done.returncode == 2 and "--ray-address needs --backend ray" in done.stderr
    done = velocity("sweep", "--strategies", "FedAvg", "--backend", "spark", "--out", str(out))
    assert done.returncode == 2 and "invalid choice: 'spark'" in done.stderr
