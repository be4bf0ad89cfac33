"""Real faults against the MCP server: nothing escapes the root, no input gets a traceback.

* two ``velocity-mcp`` processes on one root share ``max_concurrent_sweeps`` (counted
  from the sweep directories' locks, not from one server's memory);
* a symlink inside the root to a directory outside it is neither listed nor read;
* ``dataset_params`` / ``model_params`` are bounded, and the dataset is built in the
  sweep process only (the server's peak RSS stays small);
* every tool refuses unknown arguments, and a table of bad inputs and of corrupt
  sweep files each gets a specific message, never a bare "Error executing tool".
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from tests.mcp_calls import FAKE_SWEEP, err, ok
from tests.test_mcp_stdio import params
from velocity.sweepdir.lock import holder
from velocity_mcp.limits import Limits
from velocity_mcp.server import build_server

pytestmark = pytest.mark.anyio

LIMITS = Limits(max_runs=12, max_rounds=50, max_clients=20, max_parallel=2, max_concurrent_sweeps=2)
SLOW = {"strategies": ["FedAvg"], "rounds": 40, "clients": 3}
SLOW_ENV = {"VELOCITY_TEST_SLOW_RUN": "FedAvg:0.2"}  # inherited by the sweeps


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def kill_sweeps(root: Path) -> None:
    """SIGKILL every live sweep under ``root``: its lock's holder, else its status.json pid."""
    if not root.is_dir():
        return
    for path in root.iterdir():
        pids = {holder(path)} if path.is_dir() and not path.is_symlink() else set()
        with contextlib.suppress(OSError, ValueError):
            status = json.loads((path / "status.json").read_text())
            if isinstance(status, dict) and status.get("state") == "running":
                pids.add(status.get("pid"))
        for pid in pids:
            if isinstance(pid, int) and pid > 0 and pid != os.getpid():
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "root"
    path.mkdir()
    yield path
    kill_sweeps(path)


@pytest.fixture
def server(root: Path, tmp_path: Path) -> Iterator[Any]:
    script = tmp_path / "fake_velocity_sweep.py"
    script.write_text(FAKE_SWEEP)
    srv = build_server(
        root, LIMITS, sweep_command=[sys.executable, str(script), "sweep"], start_wait_s=30
    )
    yield srv
    srv.service.launcher.kill_all()


@pytest.fixture
async def client(server: Any) -> AsyncIterator[Client]:
    async with Client(server) as c:
        yield c


def text_of(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def specific_error(client: Client, tool: str, args: dict[str, Any]) -> str:
    """A refusal with a message of its own: not the SDK's bare one, not a crash, not huge."""
    text = await err(client, tool, args)
    assert text.strip() and not text.startswith("Error executing tool"), text
    assert "failed unexpectedly" not in text, text  # the crash safety net was not needed
    assert len(text) < 3000, len(text)  # an agent's megabyte argument is not echoed back
    return text


def sweeps_in(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


# --------------------------------------------------------------------------- two servers


async def test_two_servers_share_the_concurrency_limit(root: Path) -> None:
    """Limit 2, two server processes, three sweeps: the third is refused, whichever
    server it asks, even when two arrive at once."""
    limit = ("--max-concurrent-sweeps", "2")
    with anyio.fail_after(150):
        async with (
            Client(params(root, *limit, env=SLOW_ENV)) as a,
            Client(params(root, *limit, env=SLOW_ENV)) as b,
        ):
            first = await ok(a, "sweep_run", SLOW)
            results: dict[str, Any] = {}

            async def start(name: str, client: Client) -> None:
                results[name] = await client.call_tool("sweep_run", SLOW)

            async with anyio.create_task_group() as group:  # a race for the last slot
                group.start_soon(start, "a", a)
                group.start_soon(start, "b", b)
            started = [r for r in results.values() if not r.is_error]
            refused = [text_of(r) for r in results.values() if r.is_error]
            assert len(started) == 1 and len(refused) == 1, [text_of(r) for r in started]
            assert "limit max_concurrent_sweeps=2 exceeded" in refused[0], refused
            assert "--max-concurrent-sweeps" in refused[0]
            second = started[0].structured_content["sweep_id"]

            # b started at most one of the two, yet counts both from the root
            text = await err(b, "sweep_run", SLOW)
            assert "max_concurrent_sweeps=2" in text
            assert first["sweep_id"] in text and second in text
            listed = await ok(b, "list_sweeps")
            live = [
                s["sweep_id"] for s in listed["sweeps"] if s["state"] in ("starting", "running")
            ]
            assert sorted(live) == sorted([first["sweep_id"], second])

            # b stops a's sweep: the process comes from the sweep directory's lock
            cancelled = await ok(b, "sweep_cancel", {"sweep_id": first["sweep_id"]})
            assert cancelled["cancelled"] is True and cancelled["state"] == "cancelled"
            third = await ok(b, "sweep_run", SLOW)  # the slot is free again, for either
            assert third["sweep_id"] not in (first["sweep_id"], second)
            text = await err(a, "sweep_run", SLOW)
            assert "max_concurrent_sweeps=2" in text


# --------------------------------------------------------------------------- confinement


def finished_sweep(path: Path, name: str = "secret") -> Path:
    """A handmade finished sweep directory (status, comparison.json and .md)."""
    path.mkdir(parents=True)
    status = {"state": "done", "pid": 1, "total_runs": 1, "done_runs": 1, "runs": {}}
    (path / "status.json").write_text(json.dumps(status))
    (path / "comparison.json").write_text(json.dumps({"recommendation": {}}))
    (path / "comparison.md").write_text(f"# Sweep comparison\n{name}\n")
    return path


async def test_symlink_out_of_the_root_is_not_listed_or_read(
    client: Client, root: Path, tmp_path: Path
) -> None:
    outside = finished_sweep(tmp_path / "outside")
    (outside / "exp.toml").write_text('[[runs]]\nstrategy = "FedAvg"\n')
    (root / "escape").symlink_to(outside, target_is_directory=True)
    finished_sweep(root / "real", name="inside")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)  # not listed twice
    (root / "exp.toml").symlink_to(outside / "exp.toml")

    listed = await ok(client, "list_sweeps")
    assert [s["sweep_id"] for s in listed["sweeps"]] == ["real"]
    uris = [str(r.uri) for r in (await client.list_resources()).resources]
    assert uris == ["velocity://sweeps/real/comparison.md"]

    for tool in ("sweep_status", "sweep_compare", "sweep_cancel"):
        text = await specific_error(client, tool, {"sweep_id": "escape"})
        assert "escapes the server's root" in text
        text = await specific_error(client, tool, {"sweep_id": str(root / "escape")})
        assert "outside the server's root" in text
    with pytest.raises(Exception, match="escapes the server's root"):
        await client.read_resource("velocity://sweeps/escape/comparison.md")
    for config in ("escape/exp.toml", "exp.toml"):
        text = await specific_error(client, "sweep_run", {"config": config})
        assert "escapes the server's root" in text
    assert "inside" in (await client.read_resource(uris[0])).contents[0].text


# --------------------------------------------------------------------------- bounded inputs


@pytest.mark.parametrize(
    ("extra", "expected", "from_config"),
    [
        ({"dataset_params": {"n_samples": 4_000_000}}, "less than or equal to 1000000", None),
        ({"dataset_params": {"n_features": 10**6}}, "less than or equal to 4096", None),
        ({"dataset_params": {"n_classes": 10**5}}, "less than or equal to 1000", None),
        (
            {"dataset_params": {"n_samples": 2**70}},
            "less than or equal to 1000000",
            "n_samples=1180591620717411303424 is too large",
        ),
        (
            {"dataset_params": {"n_samples": 1_000_000, "n_features": 4096}},
            "limit max_dataset_values=50000000 exceeded: the synthetic dataset's n_samples × "
            "n_features is 4096000000",
            None,
        ),
        ({"model_params": {"hidden": 10**9}}, "less than or equal to 4096", None),
    ],
)
async def test_oversized_params_are_refused_with_the_bound(
    client: Client, root: Path, extra: dict[str, Any], expected: str, from_config: str | None
) -> None:
    args = {"strategies": ["FedAvg"], "dataset": "synthetic", **extra}
    text = await specific_error(client, "sweep_run", args)
    assert expected in text
    # a config file's [shared] gets the same bounds
    experiment = {"shared": {"dataset": "synthetic", **extra}, "runs": [{"strategy": "FedAvg"}]}
    (root / "big.json").write_text(json.dumps(experiment))
    text = await specific_error(client, "sweep_run", {"config": "big.json"})
    assert (from_config or expected) in text
    assert sweeps_in(root) == ["big.json"]  # nothing was started


async def test_params_bounds_are_in_the_schema(client: Client) -> None:
    (tool,) = [t for t in (await client.list_tools()).tools if t.name == "sweep_run"]
    defs = tool.input_schema["$defs"]
    n_samples = defs["DatasetParams"]["properties"]["n_samples"]["anyOf"][0]
    assert n_samples["maximum"] == Limits().max_samples
    assert defs["DatasetParams"]["additionalProperties"] is False
    assert defs["ModelParams"]["properties"]["hidden"]["anyOf"][0]["maximum"] == 4096


def _peak_rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError(f"no VmHWM for {pid}")


def _server_pid(root: Path) -> int:
    """The ``velocity-mcp --root ROOT`` process the stdio client started."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(root).encode() in cmdline and b"--root" in cmdline and b"sweep" not in cmdline:
            return int(entry.name)
    raise AssertionError("server process not found")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
async def test_the_dataset_is_built_in_the_sweep_process_only(root: Path) -> None:
    """1M × 20 synthetic samples (allowed): the sweep process builds them (hundreds of
    MB at its peak); the server, which used to build them to validate, stays small."""
    big = {
        "strategies": ["FedAvg"],
        "rounds": 2,
        "clients": 2,
        "dataset": "synthetic",
        "dataset_params": {"n_samples": 1_000_000, "n_features": 20},
    }
    with anyio.fail_after(120):
        async with Client(params(root, env={"VELOCITY_TEST_SLOW_RUN": "FedAvg:1"})) as client:
            await ok(client, "list_strategies")
            server_pid = _server_pid(root)
            before = _peak_rss_mb(server_pid)
            started = await ok(client, "sweep_run", big)  # returns once the sweep accepted
            sweep_pid = holder(Path(started["sweep_dir"]))
            assert sweep_pid, "the sweep holds its directory's lock"
            sweep_peak = _peak_rss_mb(sweep_pid)
            server_peak = _peak_rss_mb(server_pid)
            await ok(client, "sweep_cancel", {"sweep_id": started["sweep_id"]})
    assert sweep_peak > 250, sweep_peak  # 20M float32 values and their float64 draws
    assert server_peak < 200 and server_peak - before < 30, (before, server_peak)


# --------------------------------------------------------------------------- unknown args


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("sweep_run", {"strategies": ["FedAvg"], "bogus": 1}, "no argument 'bogus'"),
        ("sweep_run", {"strategies": ["FedAvg"], "round": 3}, "did you mean 'rounds'?"),
        ("sweep_run", {"strategies": ["FedAvg"], "storage": "local:///tmp"}, "'storage' cannot"),
        ("sweep_run", {"strategies": ["FedAvg"], "ray_address": "h:1"}, "$RAY_ADDRESS"),
        ("sweep_run", {"strategies": ["FedAvg"], "ray_gpus": 1}, "'ray_gpus' cannot"),
        ("sweep_status", {"sweep_id": "x", "verbose": True}, "no argument 'verbose'"),
        ("sweep_compare", {"sweep_id": "x", "detial": "full"}, "did you mean 'detail'?"),
        ("sweep_cancel", {"sweep_id": "x", "force": True}, "no argument 'force'"),
        ("list_sweeps", {"root": "/"}, "no argument 'root'"),
        ("list_strategies", {"kind": "robust"}, "no argument 'kind'"),
    ],
)
async def test_unknown_arguments_are_refused(
    client: Client, root: Path, tool: str, args: dict[str, Any], expected: str
) -> None:
    text = await specific_error(client, tool, args)
    assert expected in text and text.startswith(f"{tool}: ")
    assert "Its arguments: " in text
    assert sweeps_in(root) == []


# --------------------------------------------------------------------------- bad inputs

DEEP = "[" * 100_000 + "]" * 100_000
CONFIGS: dict[str, str | bytes] = {
    "deep.json": json.dumps({"shared": {}, "runs": [{"strategy": "FedAvg"}]})[:-1]
    + ', "x": '
    + DEEP
    + "}",
    "deep.toml": "x = " + DEEP + "\n",
    "nested.json": json.dumps(
        {"shared": {"dataset_params": {"a": [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}}}
    ),
    "huge.json": '{"shared": {}, "runs": [' + '{"strategy": "FedAvg"},' * 60_000 + "{}]}",
    "nan.json": '{"shared": {"alpha": NaN}, "runs": [{"strategy": "FedAvg"}]}',
    "inf.json": '{"shared": {"lr": Infinity}, "runs": [{"strategy": "FedAvg"}]}',
    "bigint.json": json.dumps({"runs": [{"strategy": "Krum", "params": {"f": 2**70}}]}),
    "list.json": "[1, 2]",
    "null.json": "null",
    "bad.toml": "[shared\n",
    "binary.toml": b"\xff\xfe\x00garbage",
    "unknown.toml": '[shared]\nroundz = 3\n[[runs]]\nstrategy = "FedAvg"\n',
    "norun.toml": "[shared]\nrounds = 3\n",
}

RUN = "sweep_run"
BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    # integers: too large, fractional, text, out of range
    (RUN, {"strategies": ["FedAvg"], "rounds": 2**70}, "rounds: Input should be less than or"),
    (RUN, {"strategies": ["FedAvg"], "rounds": 2.5}, "rounds: Input should be a valid integer"),
    (RUN, {"strategies": ["FedAvg"], "rounds": "many"}, "rounds: Input should be a valid integer"),
    (RUN, {"strategies": ["FedAvg"], "clients": 0}, "clients: Input should be greater than or"),
    (RUN, {"strategies": ["FedAvg"], "seed": 2**70}, "seed: Input should be less than"),
    (RUN, {"strategies": ["FedAvg"], "seed": -1}, "seed: Input should be greater than or equal"),
    (RUN, {"strategies": ["FedAvg"], "batch_size": 2**40}, "batch_size: Input should be less than"),
    (RUN, {"strategies": ["FedAvg"], "repeats": 10**30}, "repeats: Input should be less than"),
    # floats: out of range, huge
    (RUN, {"strategies": ["FedAvg"], "alpha": 0}, "alpha: Input should be greater than 0"),
    (RUN, {"strategies": ["FedAvg"], "alpha": 1e300}, "alpha: Input should be less than or"),
    (RUN, {"strategies": ["FedAvg"], "fraction_fit": 1.5}, "fraction_fit: Input should be less"),
    (RUN, {"strategies": ["FedAvg"], "test_fraction": 1}, "test_fraction: Input should be less"),
    (RUN, {"strategies": ["FedAvg"], "lr": "fast"}, "lr: Input should be a valid number"),
    # choices
    (RUN, {"strategies": ["FedAvg"], "partition": "zipf"}, "partition: Input should be 'iid'"),
    (RUN, {"strategies": ["FedAvg"], "rank_by": "speed"}, "rank_by: Input should be 'accuracy'"),
    (RUN, {"strategies": ["FedAvg"], "backend": "spark"}, "backend: Input should be 'local'"),
    # lists and strings
    (RUN, {"strategies": "FedAvg"}, "strategies: Input should be a valid list"),
    (RUN, {"strategies": [""]}, "strategies.0: String should have at least 1 character"),
    (RUN, {"strategies": ["x" * 10**6]}, "strategies.0: String should have at most 500"),
    (RUN, {"strategies": ["FedAvg"] * 13}, "strategies: List should have at most 12 items"),
    (RUN, {"strategies": [7]}, "strategies.0: Input should be a valid string"),
    (RUN, {"strategies": ["FedAvg"], "dataset": "x" * 10**6}, "dataset: String should have at"),
    (RUN, {"strategies": ["FedAvg"], "model_id": "m" * 101}, "model_id: String should have at"),
    (RUN, {"strategies": ["FedAvg"], "dataset": "d" * 300}, "path component of 300 bytes"),
    (RUN, {"strategies": ["FedAvg"], "dataset": "/etc"}, "outside the server's root"),
    # values inside strategies and attacks
    (RUN, {"strategies": [f"Krum:f={2**70}"]}, "parameter f=1180591620717411303424 is too large"),
    (RUN, {"strategies": ["FedAvg"], "attacks": [f"zero:count={2**64}"]}, "count="),
    (RUN, {"strategies": ["TrimmedMean:beta=inf"]}, "beta: got inf"),
    (RUN, {"strategies": ["FedAvg"], "attacks": ["gaussian_noise:sigma=nan"]}, "got NaN"),
    (RUN, {"strategies": ["Krumm"]}, "did you mean 'Krum'"),
    (RUN, {"strategies": ["FedAvg"], "attacks": ["gausian"]}, "gaussian_noise"),
    # dataset_params / model_params
    (RUN, {"strategies": ["FedAvg"], "dataset_params": {"n_samples": "many"}}, "valid integer"),
    (RUN, {"strategies": ["FedAvg"], "dataset_params": {"bogus": 1}}, "valid keys: n_samples"),
    (RUN, {"strategies": ["FedAvg"], "dataset_params": {"n_sample": 9}}, "mean 'n_samples'"),
    (RUN, {"strategies": ["FedAvg"], "dataset_params": [1]}, "dataset_params: Input should be"),
    (RUN, {"strategies": ["FedAvg"], "model_params": {"hiden": 3}}, "did you mean 'hidden'"),
    (RUN, {"strategies": ["FedAvg"], "model_params": {"hidden": 0}}, "greater than or equal to 1"),
    # config files
    (RUN, {"config": "c" * 1000}, "path component of 1000 bytes"),
    (RUN, {"config": "c" * 1001}, "config: String should have at most 1000 characters"),
    (RUN, {"config": "../x.toml"}, "escapes the server's root"),
    (RUN, {"config": "exp.yaml"}, "must be a .toml or .json"),
    (RUN, {"config": "missing.json"}, "not found under the root"),
    (RUN, {"config": "deep.json"}, "malformed JSON: nested too deeply"),
    (RUN, {"config": "deep.toml"}, "malformed TOML: nested too deeply"),
    (RUN, {"config": "nested.json"}, "more than 16 levels deep"),
    (RUN, {"config": "huge.json"}, "at most 1048576 bytes"),
    (RUN, {"config": "nan.json"}, "shared.alpha=nan is not a finite number"),
    (RUN, {"config": "inf.json"}, "shared.lr=inf is not a finite number"),
    (RUN, {"config": "bigint.json"}, "runs[0].params.f=1180591620717411303424 is too large"),
    (RUN, {"config": "list.json"}, "must hold a JSON object"),
    (RUN, {"config": "null.json"}, "not null"),
    (RUN, {"config": "bad.toml"}, "malformed TOML"),
    (RUN, {"config": "binary.toml"}, "is not UTF-8 text"),
    (RUN, {"config": "unknown.toml"}, "roundz"),
    (RUN, {"config": "norun.toml"}, "runs"),
    # the other tools
    ("sweep_compare", {"sweep_id": "x", "detail": "huge"}, "detail: Input should be 'summary'"),
    ("sweep_compare", {"sweep_id": "x", "include_heatmap": "maybe"}, "valid boolean"),
    ("sweep_runn", {}, "unknown tool 'sweep_runn'; the tools are: list_strategies"),
]
SWEEP_IDS: list[tuple[Any, str]] = [
    ("x" * 1000, "has a path component of 1000 bytes"),
    ("x" * 1001, "sweep_id: String should have at most 1000 characters"),
    (5, "sweep_id: Input should be a valid string"),
    ("", "sweep_id: String should have at least 1 character"),
    ("   ", "sweep_id is empty"),
    ("a\x00b", "NUL byte"),
    ("../../etc", "escapes the server's root"),
    ("/etc", "outside the server's root"),
    ("nope", "no sweep 'nope'"),
    ("a/" * 400, "no sweep 'a/a/a/"),
]
ID_TOOLS = ("sweep_status", "sweep_compare", "sweep_cancel")
ID_CASES = [(tool, {"sweep_id": sid}, want) for sid, want in SWEEP_IDS for tool in ID_TOOLS]


@pytest.fixture
def configs(root: Path) -> Path:
    for name, content in CONFIGS.items():
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    BAD_INPUTS + ID_CASES,
    ids=[f"{i}-{case[0]}" for i, case in enumerate(BAD_INPUTS + ID_CASES)],
)
async def test_bad_input_gets_a_specific_error(
    client: Client, configs: Path, tool: str, args: dict[str, Any], expected: str
) -> None:
    text = await specific_error(client, tool, args)
    assert expected in text, text
    assert sweeps_in(configs) == sorted(CONFIGS)  # nothing was started


async def test_non_finite_floats_refused(server: Any) -> None:
    """NaN and inf: the SDK client sends them as null (JSON has neither), but a raw
    client or the fallback CLI (--alpha nan) hands them to the server as floats."""
    cases = [
        ({"alpha": float("nan")}, "alpha: Input should be a finite number (got nan)"),
        ({"lr": float("inf")}, "lr: Input should be a finite number (got inf)"),
        ({"dataset_params": {"class_sep": float("-inf")}}, "class_sep: Input should be a finite"),
    ]
    for extra, expected in cases:
        with pytest.raises(ToolError) as info:
            await server.call_tool("sweep_run", {"strategies": ["FedAvg"], **extra})
        assert expected in str(info.value), str(info.value)


# --------------------------------------------------------------------------- corrupt files


VELOCITY_SWEEP = (sys.executable, "-m", "velocity", "sweep")
SMALL_SWEEP = ("--strategies", "FedAvg", "--rounds", "2", "--clients", "3")


@pytest.fixture(scope="module")
def done_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real finished sweep (one run), copied into each test's root."""
    out = tmp_path_factory.mktemp("done") / "finished"
    subprocess.run(
        [*VELOCITY_SWEEP, *SMALL_SWEEP, "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return out


def copy_sweep(done_sweep: Path, root: Path) -> Path:
    target = root / "finished"
    shutil.copytree(done_sweep, target)
    return target


CORRUPT: dict[str, str | bytes] = {
    "truncated": '{"state": "done", "pid": ',
    "null": "null",
    "list": "[1, 2, 3]",
    "empty": "",
    "binary": b"\xff\xfe\x00\x01",
    "unknown-state": '{"state": "exploded", "pid": 1}',
}


def write(path: Path, content: str | bytes) -> None:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


@pytest.mark.parametrize("kind", sorted(CORRUPT))
async def test_corrupt_status_json_is_named_by_every_tool(
    client: Client, root: Path, done_sweep: Path, kind: str
) -> None:
    sweep = copy_sweep(done_sweep, root)
    write(sweep / "status.json", CORRUPT[kind])
    args = {"sweep_id": "finished"}
    for tool in ("sweep_status", "sweep_compare"):
        text = await specific_error(client, tool, args)
        assert "sweep finished: status.json is unreadable (" in text, text
    text = await specific_error(client, "sweep_cancel", args)
    assert "nothing to cancel" in text and "status.json is unreadable" in text
    listed = await ok(client, "list_sweeps")
    (entry,) = listed["sweeps"]
    assert entry["state"] is None and "status.json is unreadable" in entry["error"]
    with pytest.raises(Exception, match=r"status\.json is unreadable"):
        await client.read_resource("velocity://sweeps/finished/comparison.md")
    assert (await client.list_resources()).resources  # the listing survives it


async def test_a_live_sweep_with_a_corrupt_status_is_still_cancelled(
    client: Client, root: Path
) -> None:
    started = await ok(client, "sweep_run", {"strategies": ["FedAvg"], "rounds": 3})
    sweep_dir = Path(started["sweep_dir"])
    (sweep_dir / "status.json").write_text("null")
    text = await specific_error(client, "sweep_status", {"sweep_id": started["sweep_id"]})
    assert "status.json is unreadable (holds null, not a JSON object)" in text
    # the process comes from the directory's lock, not from the damaged status.json
    cancelled = await ok(client, "sweep_cancel", {"sweep_id": started["sweep_id"]})
    assert cancelled["cancelled"] is True and cancelled["state"] == "cancelled"
    assert holder(sweep_dir) is None


@pytest.mark.parametrize("kind", ["truncated", "null", "list", "binary"])
async def test_corrupt_comparison_json_is_rebuilt_and_named(
    client: Client, root: Path, done_sweep: Path, kind: str
) -> None:
    sweep = copy_sweep(done_sweep, root)
    write(sweep / "comparison.json", CORRUPT[kind])
    verdict = await ok(client, "sweep_compare", {"sweep_id": "finished"})
    assert verdict["recommendation"]["strategy"] == "FedAvg"
    assert "comparison.json is unreadable" in verdict["caveats"][0]
    assert "velocity compare" in verdict["caveats"][0]
    result = await client.call_tool(
        "sweep_compare", {"sweep_id": "finished", "include_heatmap": True}
    )
    assert not result.is_error and result.content[-1].type == "image"
    status = await ok(client, "sweep_status", {"sweep_id": "finished"})
    assert status["state"] == "done"
    cancelled = await ok(client, "sweep_cancel", {"sweep_id": "finished"})
    assert cancelled["cancelled"] is False and "already done" in cancelled["message"]
    assert (await ok(client, "list_sweeps"))["sweeps"][0]["state"] == "done"
    md = (await client.read_resource("velocity://sweeps/finished/comparison.md")).contents[0]
    assert md.text.startswith("# Sweep comparison")


@pytest.mark.parametrize("kind", ["truncated", "null", "list", "binary"])
async def test_corrupt_summary_json_makes_its_run_failed_by_name(
    client: Client, root: Path, done_sweep: Path, kind: str
) -> None:
    sweep = copy_sweep(done_sweep, root)
    write(sweep / "FedAvg" / "summary.json", CORRUPT[kind])
    (sweep / "comparison.json").unlink()  # the verdict is rebuilt from the run files
    (sweep / "robustness.png").unlink()
    full = await ok(client, "sweep_compare", {"sweep_id": "finished", "detail": "full"})
    assert full["failed"][0]["run"] == "FedAvg"
    assert "unreadable summary.json" in full["failed"][0]["error"]
    assert any("unreadable summary.json" in c for c in full["caveats"])
    assert full["recommendation"]["strategy"] is None
    result = await client.call_tool(
        "sweep_compare", {"sweep_id": "finished", "include_heatmap": True}
    )
    assert not result.is_error, text_of(result)  # no heatmap, but a verdict
    status = await ok(client, "sweep_status", {"sweep_id": "finished"})
    assert status["state"] == "done"


async def test_other_damaged_files(client: Client, root: Path, done_sweep: Path) -> None:
    sweep = copy_sweep(done_sweep, root)
    (sweep / "comparison.md").write_bytes(b"# Sweep comparison\n\xff\xfe garbage\n")
    md = (await client.read_resource("velocity://sweeps/finished/comparison.md")).contents[0]
    assert md.text.startswith("# Sweep comparison") and "\ufffd" in md.text
    status = json.loads((sweep / "status.json").read_text())
    status.update(started_at=12, finished_at=["x"], total_runs="many")  # wrong types
    (sweep / "status.json").write_text(json.dumps(status))
    got = await ok(client, "sweep_status", {"sweep_id": "finished"})
    assert got["state"] == "done" and got["started_at"] == "12"
    assert (await ok(client, "list_sweeps"))["sweeps"][0]["started_at"] == "12"
    # a sweep directory with a damaged plan and no status: failed, not a crash
    (root / "odd").mkdir()
    (root / "odd" / "plan.json").write_text("{")
    (root / "odd" / "experiment.json").write_text('{"runs": 5}')
    got = await ok(client, "sweep_status", {"sweep_id": "odd"})
    assert got["state"] == "failed" and got["total_runs"] == 0
    text = await specific_error(client, "sweep_compare", {"sweep_id": "odd"})
    assert "no results to compare" in text


# --------------------------------------------------------------------------- boundaries

BOUNDARY = textwrap.dedent(
    """
    import anyio, json, sys
    from pathlib import Path
    from mcp import Client
    from velocity_mcp.limits import Limits
    from velocity_mcp.server import build_server

    root, fake = Path(sys.argv[1]), sys.argv[2]
    import velocity.spec  # the vocabulary, and what it imports itself
    vocabulary = set(sys.modules)
    srv = build_server(root, Limits(), sweep_command=[sys.executable, fake, "sweep"])

    async def main():
        async with Client(srv) as c:
            for tool, args in [
                ("list_strategies", {}),
                ("sweep_run", {"strategies": ["FedAvg", "Krum:f=1"], "attacks": ["zero"],
                               "dataset": "synthetic", "dataset_params": {"n_samples": 500}}),
                ("list_sweeps", {}),
            ]:
                result = await c.call_tool(tool, args)
                assert not result.is_error, result.content
            sweep_id = result.structured_content["sweeps"][0]["sweep_id"]
            for tool in ("sweep_status", "sweep_compare", "sweep_cancel"):
                await c.call_tool(tool, {"sweep_id": sweep_id})
        srv.service.launcher.kill_all()

    anyio.run(main)
    print(json.dumps({"loaded": sorted(sys.modules), "vocabulary": sorted(vocabulary)}))
    """
)
FORBIDDEN = {
    "velocity.engine.sweep",
    "velocity.engine.pool",
    "velocity.engine.executors",
    "velocity.engine.status",
    "velocity.engine.ray",
    "velocity.sim.server",
    "velocity.sim.data",
    "velocity.sim.models",
}


def test_the_server_imports_neither_engine_nor_simulation(tmp_path: Path) -> None:
    fake = tmp_path / "fake_velocity_sweep.py"
    fake.write_text(FAKE_SWEEP)
    (tmp_path / "root").mkdir()
    done = subprocess.run(
        [sys.executable, "-c", BOUNDARY, str(tmp_path / "root"), str(fake)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = set(report["loaded"]) & FORBIDDEN
    # velocity.spec (the vocabulary the server parses with) may itself import a module
    # of the simulation for a constant; the server must add none of them
    assert loaded <= set(report["vocabulary"]), loaded - set(report["vocabulary"])
    kill_sweeps(tmp_path / "root")
