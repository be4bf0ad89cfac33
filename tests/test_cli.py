"""The ``velocity`` command as a user runs it: errors, listings, one run, compare."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from velocity import cli
from velocity.attacks import valid_attacks
from velocity.errors import SpecError
from velocity.strategy import ALL_STRATEGIES

ROOT = Path(__file__).resolve().parents[1]


def velocity(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "velocity", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=dict(os.environ),
    )


def assert_user_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("velocity: error: "), lines[0]
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


TOML_CASES = {
    "unknown_key": ("[shared]\nroundz = 3\n[[runs]]\nstrategy = 'FedAvg'\n", "roundz"),
    "malformed": ("[shared\nrounds = 3\n", "malformed"),
    "duplicate_names": (
        "[[runs]]\nname = 'a'\nstrategy = 'FedAvg'\n[[runs]]\nname = 'a'\nstrategy = 'Krum'\n",
        "duplicate run name 'a'",
    ),
    "unknown_run_key": ("[[runs]]\nstrategy = 'FedAvg'\nattackz = []\n", "attackz"),
}


@pytest.mark.parametrize("case", sorted(TOML_CASES))
def test_bad_experiment_file(tmp_path: Path, case: str) -> None:
    text, needle = TOML_CASES[case]
    config = tmp_path / "exp.toml"
    config.write_text(text)
    out = tmp_path / "out"
    assert_user_error(velocity("sweep", str(config), "--out", str(out)), needle)
    assert not out.exists()


FLAG_CASES = {
    "unknown_strategy": (["--strategies", "FedAvg,FedMedain"], ["FedMedain", "FedMedian"]),
    "unknown_attack": (
        ["--strategies", "FedAvg", "--attacks", "gausian_noise"],
        ["gausian_noise", "gaussian_noise"],
    ),
    "krum_negative_f": (["--strategies", "Krum:f=-1"], ["Krum.f", "-1"]),
    "trimmed_beta": (["--strategies", "TrimmedMean:beta=0.7"], ["beta", "0.7"]),
    "attack_param": (["--strategies", "FedAvg", "--attacks", "gaussian_noise:sigma=-1"], ["sigma"]),
    "bad_rounds": (["--strategies", "FedAvg", "--rounds", "0"], ["rounds"]),
    "bad_parallel": (["--strategies", "FedAvg", "--parallel", "0"], ["parallel"]),
    "dangling_param": (["--strategies", "FedAvg,f=2"], ["f=2"]),
    "no_runs": ([], ["--strategies"]),
    "unknown_flag": (["--strategies", "FedAvg", "--roundz", "3"], ["--roundz"]),
    "unknown_dataset": (["--strategies", "FedAvg", "--dataset", "nope"], ["nope"]),
}


@pytest.mark.parametrize("case", sorted(FLAG_CASES))
def test_bad_flags(tmp_path: Path, case: str) -> None:
    args, needles = FLAG_CASES[case]
    out = tmp_path / "out"
    assert_user_error(velocity("sweep", *args, "--out", str(out)), *needles)
    assert not out.exists()


def test_missing_experiment_file(tmp_path: Path) -> None:
    assert_user_error(
        velocity("sweep", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")), "nope.toml"
    )
    assert not (tmp_path / "o").exists()


def test_unwritable_out(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = blocker / "sweep"
    assert_user_error(
        velocity("sweep", "--strategies", "FedAvg", "--rounds", "2", "--out", str(out)), str(out)
    )
    assert blocker.read_text() == "not a directory"
    done = velocity("run", "--strategy", "FedAvg", "--rounds", "2", "--out", str(out))
    assert_user_error(done, str(out))


def test_non_empty_out_needs_resume(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert_user_error(
        velocity("sweep", "--strategies", "FedAvg", "--out", str(tmp_path)), "not empty"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_config_and_strategies_are_exclusive(tmp_path: Path) -> None:
    done = velocity(
        "sweep",
        str(ROOT / "examples" / "experiment.toml"),
        "--strategies",
        "FedAvg",
        "--out",
        str(tmp_path / "o"),
    )
    assert_user_error(done, "not both")


def test_split_items() -> None:
    assert cli.split_items(["Krum:f=2,FedAvg", "TrimmedMean:beta=0.2"]) == [
        "Krum:f=2",
        "FedAvg",
        "TrimmedMean:beta=0.2",
    ]
    assert cli.split_items(["gaussian_noise:sigma=0.5,fraction=0.3,zero,alie:z=1.5"]) == [
        "gaussian_noise:sigma=0.5,fraction=0.3",
        "zero",
        "alie:z=1.5",
    ]
    assert cli.split_items([" FedAvg , ,FedMedian,"]) == ["FedAvg", "FedMedian"]
    assert cli.split_items(None) == []
    with pytest.raises(SpecError, match="does not follow a name"):
        cli.split_items(["FedAvg,f=2"])
    with pytest.raises(SpecError):
        cli.split_items(["gaussian_noise:sigma=1", "fraction=0.3"])  # not across flags


def test_repeated_attack_flags(tmp_path: Path) -> None:
    out = tmp_path / "s"
    done = velocity(
        "sweep",
        "--strategy",
        "FedAvg",
        "--attack",
        "gaussian_noise:sigma=5,fraction=0.3",
        "--attack",
        "zero",
        "--rounds",
        "2",
        "--clients",
        "4",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    plan = json.loads((out / "plan.json").read_text())
    attacks = [run["attacks"] for run in plan["runs"]]
    assert attacks[0] == []
    assert attacks[1][0]["type"] == "gaussian_noise"
    assert attacks[1][0]["params"]["sigma"] == 5.0 and attacks[1][0]["params"]["fraction"] == 0.3
    assert attacks[2][0]["type"] == "zero"


def test_config_with_overrides(tmp_path: Path) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(
        "[shared]\nrounds = 50\nclients = 5\nseed = 7\n"
        "[[runs]]\nname = 'avg'\nstrategy = 'FedAvg'\n"
        "[[runs]]\nname = 'krum'\nstrategy = 'Krum'\nparams = { f = 1 }\n"
        "[[runs.attacks]]\ntype = 'sign_flipping'\nparams = { fraction = 0.2 }\n"
    )
    out = tmp_path / "s"
    done = velocity("sweep", str(config), "--rounds", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    plan = json.loads((out / "plan.json").read_text())
    assert [r["rounds"] for r in plan["runs"]] == [2, 2]  # the flag overrides [shared]
    assert [r["seed"] for r in plan["runs"]] == [7, 7]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["sha256"] and manifest["config"]["path"].endswith("exp.toml")


def test_run_command(tmp_path: Path) -> None:
    done = velocity(
        "run",
        "--strategy",
        "FedMedian",
        "--attack",
        "sign_flipping:fraction=0.2",
        "--rounds",
        "3",
        "--clients",
        "5",
        "--seed",
        "1",
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "FedMedian__sign_flipping"
    assert "final loss" in done.stdout and str(run_dir) in done.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "done" and summary["rounds_completed"] == 3
    assert (run_dir / "checkpoint" / "final.npz").is_file()
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 1


def test_compare_rerenders(tmp_path: Path) -> None:
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
    (out / "comparison.md").unlink()
    done = velocity("compare", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "comparison.md").is_file() and "comparison.md" in done.stdout
    assert_user_error(velocity("compare", str(tmp_path / "nope")), "nope")


def test_rank_by_is_recorded_and_compare_can_rerank(tmp_path: Path) -> None:
    config = tmp_path / "exp.toml"
    config.write_text(
        "[shared]\nrounds = 2\nclients = 4\nrank_by = 'loss'\n"
        "[[runs]]\nstrategy = 'FedAvg'\n[[runs]]\nstrategy = 'FedMedian'\n"
    )
    out = tmp_path / "s"
    done = velocity("sweep", str(config), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "plan.json").read_text())["rank_by"] == "loss"
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["recommendation"]["rank_by"] == "loss"
    assert "rank_by" not in json.loads((out / "FedAvg" / "config.json").read_text())
    assert velocity("compare", str(out), "--rank-by", "accuracy").returncode == 0
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["recommendation"]["rank_by"] == "accuracy"
    assert velocity("report", str(out)).returncode in (0, 1)  # 1 only if a plot is missing
    assert json.loads((out / "comparison.json").read_text())["header"]["rank_by"] == "loss"


def test_bad_rank_by_is_one_line(tmp_path: Path) -> None:
    assert_user_error(
        velocity("sweep", "--strategies", "FedAvg", "--rank-by", "speed", "--out", str(tmp_path)),
        "--rank-by",
        "speed",
        "accuracy",
    )
    config = tmp_path / "exp.toml"
    config.write_text("[shared]\nrank_by = 'speed'\n[[runs]]\nstrategy = 'FedAvg'\n")
    assert_user_error(
        velocity("sweep", str(config), "--out", str(tmp_path / "o")), "shared.rank_by", "speed"
    )
    assert not (tmp_path / "o").exists()


def test_strategies_lists_registry() -> None:
    done = velocity("strategies", "--json")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert list(info["strategies"]) == [cls.name for cls in ALL_STRATEGIES]
    assert sorted(info["attacks"]) == valid_attacks()
    assert "digits" in info["datasets"] and "logreg" in info["models"]
    text = velocity("strategies")
    assert text.returncode == 0
    for name in [*info["strategies"], *info["attacks"], *info["datasets"], *info["models"]]:
        assert name in text.stdout


def test_no_strategy_or_attack_is_named_in_the_plumbing() -> None:
    """Extensibility: the CLI, the spec, the engine, the reports and the sweep directory
    never branch on a strategy or attack name."""
    names = {cls.name for cls in ALL_STRATEGIES} | set(valid_attacks())
    package = ROOT / "velocity"
    modules = [package / "cli.py", package / "spec.py"]
    for layer in ("engine", "report", "sweepdir"):
        modules += sorted((package / layer).glob("*.py"))
    assert len(modules) > 10
    for module in modules:
        tree = ast.parse(module.read_text())
        constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        assert not names & constants, (module, names & constants)


PLUGIN = """
import sys
from dataclasses import dataclass
from typing import ClassVar
import velocity.strategy as strategy
from velocity.cli import main


@dataclass(frozen=True)
class EchoAvg(strategy.FedAvg):
    \"\"\"FedAvg under another name (it maps to the FedAvg kernel).\"\"\"

    name: ClassVar[str] = "EchoAvg"


# What adding a strategy to strategy.py amounts to, seen from the rest of the code.
strategy.ALL_STRATEGIES = (*strategy.ALL_STRATEGIES, EchoAvg)
strategy._BY_KEY["echoavg"] = EchoAvg
sys.exit(main(sys.argv[1:]))
"""


def test_a_new_strategy_needs_no_cli_or_sweep_change(tmp_path: Path) -> None:
    """Register a strategy as strategy.py would; the CLI lists it and a sweep runs it."""
    plugin = tmp_path / "plugin.py"
    plugin.write_text(PLUGIN)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(plugin), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ),
        )

    listed = run("strategies", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "EchoAvg" in json.loads(listed.stdout)["strategies"]
    out = tmp_path / "s"
    done = run(
        "sweep",
        "--strategies",
        "EchoAvg,FedAvg",
        "--rounds",
        "2",
        "--clients",
        "4",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    echo = (out / "EchoAvg" / "rounds.csv").read_text()
    assert echo == (out / "FedAvg" / "rounds.csv").read_text()


def test_version_through_the_console_script() -> None:
    script = Path(sys.executable).with_name("velocity")
    if not script.exists():
        pytest.skip("the velocity console script is not installed next to this interpreter")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("velocity "), done


def test_parallel_flag_is_checked_like_the_file(tmp_path: Path) -> None:
    for value, needle in (("0", "greater than or equal to 1"), ("5000", "1024")):
        done = velocity(
            "sweep", "--strategies", "FedAvg", "--parallel", value, "--out", str(tmp_path / "o")
        )
        assert_user_error(done, "--parallel", needle)
    assert not (tmp_path / "o").exists()
