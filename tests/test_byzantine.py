"""One Byzantine count (``--byzantine``, ``[shared] byzantine``, MCP ``byzantine``) and the
attack word ``adaptive``, through the CLI, the TOML spec, the MCP server and the verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from tests.mcp_calls import err, ok, wait_done
from tests.test_cli import assert_user_error, velocity
from tests.test_mcp_stdio import kill_sweeps, params
from tests.test_report import make_run
from velocity.attacks import attack_schemas, parse_attack
from velocity.byzantine import per_round
from velocity.errors import SpecError
from velocity.report.comparison import build_comparison
from velocity.spec import RunSpec, build_sweep, load_experiment, matrix_spec
from velocity_mcp.inputs import check_inline_numbers

SMALL = ("--rounds", "2", "--clients", "10", "--dataset", "digits")


def configs(sweep: Path) -> dict[str, dict]:
    """Every run's config.json under ``sweep``, by run name."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/config.json")}


def adaptive_set() -> list[str]:
    """The registry's adaptive attacks, in registry order (read from the schemas)."""
    members = [name for name, schema in attack_schemas().items() if schema["adaptive"]]
    assert members, "the registry declares no adaptive attack"
    return members


# --------------------------------------------------------------------------- the CLI


def test_sweep_byzantine_sets_every_rule_and_attack(tmp_path: Path) -> None:
    """--byzantine 0.2 with 10 clients: Krum f = 2, TrimmedMean beta = 0.2, alie's fraction
    0.2; Krum:f=1 keeps its own f and the comparison says it is below the attack's count."""
    out = tmp_path / "sweep"
    done = velocity(
        "sweep",
        "--strategies",
        "Krum,Krum:f=1,TrimmedMean",
        "--attacks",
        "alie",
        "--byzantine",
        "0.2",
        *SMALL,
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    runs = configs(out)
    assert len(runs) == 6
    for config in runs.values():
        assert config["byzantine"] == 0.2
        for attack in config["attacks"]:
            assert attack["type"] == "alie" and attack["params"]["fraction"] == 0.2
            assert attack["params"]["count"] is None
    krum = sorted(c["strategy"]["f"] for c in runs.values() if c["strategy"]["type"] == "Krum")
    assert krum == [1, 1, 2, 2]
    trimmed = [c["strategy"] for c in runs.values() if c["strategy"]["type"] == "TrimmedMean"]
    assert [t["beta"] for t in trimmed] == [0.2, 0.2]
    plan = json.loads((out / "plan.json").read_text())
    assert {run["byzantine"] for run in plan["runs"]} == {0.2}

    comparison = json.loads((out / "comparison.json").read_text())
    flagged = [c for c in comparison["caveats"] if "is configured for" in c]
    assert len(flagged) == 1, comparison["caveats"]
    assert flagged[0].startswith("Krum is configured for 1 Byzantine client per round, but alie")
    assert "set explicitly, not from byzantine = 0.2" in flagged[0]
    assert "round(0.2 × 10 clients per round) = 2" in flagged[0]
    assert flagged[0] in (out / "comparison.md").read_text()


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("0", "byzantine = 0"),
        ("-0.1", "not a fraction in (0, 1)"),
        ("1.0", "a count is an integer (write 1)"),
        ("1.5", "not a fraction in (0, 1)"),
        ("nan", "not a finite number"),
        ("inf", "not a finite number"),
        ("abc", "invalid number value: 'abc'"),
        ("10", "no honest client is left"),
        ("0.01", "rounds to none"),
    ],
)
def test_bad_byzantine_is_one_line_and_writes_nothing(
    tmp_path: Path, value: str, needle: str
) -> None:
    out = tmp_path / "sweep"
    done = velocity(
        "sweep", "--strategies", "Krum", "--byzantine", value, *SMALL, "--out", str(out)
    )
    assert_user_error(done, needle)
    assert not out.exists()


def test_a_precondition_broken_by_byzantine_says_where_f_came_from(tmp_path: Path) -> None:
    """f = round(0.5 × 8) = 4 and Krum needs n ≥ 2f+3 = 11 clients per round."""
    out = tmp_path / "sweep"
    done = velocity(
        "sweep",
        "--strategies",
        "Krum",
        "--byzantine",
        "0.5",
        "--rounds",
        "2",
        "--clients",
        "8",
        "--out",
        str(out),
    )
    assert_user_error(done, "2f+3", "f = 4", "byzantine = 0.5 (--byzantine)", "× 8 clients")
    assert not out.exists()


def test_run_takes_byzantine_too(tmp_path: Path) -> None:
    done = velocity(
        "run",
        "--strategy",
        "Krum",
        "--attack",
        "sign_flipping",
        "--byzantine",
        "2",
        *SMALL,
        "--out",
        str(tmp_path),
    )
    assert done.returncode == 0, done.stderr
    [config] = configs(tmp_path).values()
    assert config["byzantine"] == 2
    assert config["strategy"]["f"] == 2
    assert config["attacks"][0]["params"]["count"] == 2


# --------------------------------------------------------------------------- the spec


def test_toml_shared_byzantine_count(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(
        "[shared]\nclients = 20\nfraction_fit = 0.5\nbyzantine = 4\n"
        "[[runs]]\nstrategy = 'Krum'\nattacks = ['ipm']\n"
        "[[runs]]\nstrategy = 'Krum'\nparams = { f = 3 }\nattacks = ['ipm:fraction=0.1']\n"
    )
    filled, explicit = load_experiment(path).expand()
    assert filled.byzantine == 4 and filled.clients_per_round == 10
    assert filled.strategy.f == per_round(4, 20, 10) == 2  # the expected count of 10 sampled
    assert filled.attacks[0].params["count"] == 4
    assert explicit.strategy.f == 3
    assert explicit.attacks[0].params["fraction"] == 0.1
    assert explicit.attacks[0].params["count"] is None


@pytest.mark.parametrize(
    ("shared", "needle"),
    [
        ("byzantine = true", "got True"),
        ("byzantine = 0.0", "not a fraction in (0, 1)"),
        ("byzantine = 2.0", "write 2"),
        ("byzantine = 'x'", "got 'x'"),
    ],
)
def test_toml_bad_byzantine(tmp_path: Path, shared: str, needle: str) -> None:
    path = tmp_path / "x.toml"
    path.write_text(f"[shared]\n{shared}\n[[runs]]\nstrategy = 'FedAvg'\n")
    with pytest.raises(SpecError, match=r"shared\.byzantine") as info:
        load_experiment(path)
    assert needle in str(info.value)


def test_several_attacks_in_one_run_need_their_own_share() -> None:
    runs = [{"strategy": "FedAvg", "attacks": ["alie", "ipm:count=1"]}]
    with pytest.raises(SpecError, match=r"runs\[0\]\.attacks: byzantine = 0.3 .* alie give no"):
        build_sweep({"shared": {"byzantine": 0.3}, "runs": runs})
    runs = [{"strategy": "FedAvg", "attacks": ["alie:fraction=0.1", "ipm:count=1"]}]
    [spec] = build_sweep({"shared": {"byzantine": 0.3}, "runs": runs}).expand()
    assert [a.params["fraction"] for a in spec.attacks] == [0.1, 0.2]
    assert spec.attacks[1].params["count"] == 1


def test_a_run_spec_built_directly_applies_byzantine() -> None:
    """VelocityServer(..., byzantine=0.3) builds its RunSpec from text; reading the stored
    config back changes nothing."""
    spec = RunSpec(name="x", strategy="Krum", attacks=["alie"], clients=10, byzantine=0.3)
    assert spec.strategy.f == 3 and spec.attacks[0].params["fraction"] == 0.3
    assert RunSpec.model_validate(spec.to_json()) == spec


def test_parse_attack_keeps_an_explicit_share() -> None:
    assert parse_attack("alie:count=none", byzantine=0.3).params["fraction"] == 0.3
    assert parse_attack("alie:count=3", byzantine=0.3).params["fraction"] == 0.2
    assert parse_attack({"type": "alie", "fraction": 0.4}, byzantine=2).params["count"] is None


# --------------------------------------------------------------------------- adaptive


def test_adaptive_is_the_registrys_adaptive_set() -> None:
    members = adaptive_set()
    spec = matrix_spec(["FedAvg"], ["none", "alie", "adaptive"], rounds=2)
    labels = [run.attack_label for run in spec.expand()]
    assert labels == ["none", "alie", *members]
    assert all(parse_attack(m).adaptive for m in members)
    listed = matrix_spec(["FedAvg"], [members[0], "Adaptive"], rounds=2).expand()
    assert [run.attack_label for run in listed] == ["none", *members]  # not twice


def test_adaptive_in_a_toml_run_is_one_run_per_member(tmp_path: Path) -> None:
    members = adaptive_set()
    path = tmp_path / "x.toml"
    path.write_text(
        "[shared]\nbyzantine = 0.2\n"
        "[[runs]]\nname = 'krum'\nstrategy = 'Krum'\nattacks = ['adaptive']\n"
    )
    runs = load_experiment(path).expand()
    assert [r.name for r in runs] == [f"krum__{m}" for m in members]
    assert [r.attacks[0].type for r in runs] == members
    assert all(r.attacks[0].params["fraction"] == 0.2 for r in runs)


def test_adaptive_takes_no_parameters() -> None:
    with pytest.raises(SpecError, match="'adaptive' takes no parameters"):
        matrix_spec(["FedAvg"], ["adaptive:fraction=0.1"])


def test_velocity_strategies_marks_adaptive_attacks() -> None:
    done = velocity("strategies")
    assert done.returncode == 0, done.stderr
    for member in adaptive_set():
        assert f"  {member} [update, adaptive]:" in done.stdout


# --------------------------------------------------------------------------- the verdict


def test_the_caveat_says_whether_f_came_from_byzantine(tmp_path: Path) -> None:
    """f from byzantine is the expected count per round: a round can hold more."""
    for strategy in ("Krum:f=2", "Krum:f=1"):
        make_run(tmp_path, strategy, None)
        make_run(tmp_path, strategy, "zero", byzantine_per_round=3)
    for path in tmp_path.glob("*/config.json"):
        path.write_text(json.dumps({**json.loads(path.read_text()), "byzantine": 0.2}))
    flagged = [c for c in build_comparison(tmp_path)["caveats"] if "is configured for" in c]
    assert flagged == [
        "Krum is configured for 1 Byzantine client per round, but zero puts up to 3 in a round: "
        "its result under that attack is outside what it is set to tolerate; its tolerance is "
        "set explicitly, not from byzantine = 0.2 (round(0.2 × 10 clients per round) = 2); "
        "leave f out to take it from byzantine",
        "Krum:f=2 is configured for 2 Byzantine clients per round, but zero puts up to 3 in a "
        "round: its result under that attack is outside what it is set to tolerate; it is set "
        "from byzantine = 0.2, round(0.2 × 10 clients per round) = 2: the expected count per "
        "round, which sampled rounds exceed",
    ]


# --------------------------------------------------------------------------- MCP


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "root"
    yield path
    kill_sweeps(path)


@pytest.mark.anyio
async def test_mcp_sweep_run_with_byzantine_and_a_pipeline(root: Path) -> None:
    with anyio.fail_after(240):
        async with Client(params(root)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            schema = tools["sweep_run"].input_schema["properties"]["byzantine"]
            bounds = [b for b in schema["anyOf"] if b["type"] != "null"]
            assert {b["type"] for b in bounds} == {"integer", "number"}
            assert all("maximum" in b or "exclusiveMaximum" in b for b in bounds)
            catalog = await ok(client, "list_strategies")
            flagged = [a["name"] for a in catalog["attacks"] if a["adaptive"]]
            assert sorted(flagged) == sorted(adaptive_set())

            for bad in (1.5, 0, True, 2.0):
                text = await err(client, "sweep_run", {"strategies": ["Krum"], "byzantine": bad})
                assert "byzantine" in text, text
            text = await err(
                client,
                "sweep_run",
                {"strategies": ["Krum"], "byzantine": 0.5, "clients": 8, "rounds": 2},
            )
            assert "2f+3" in text and "byzantine = 0.5" in text, text

            started = await ok(
                client,
                "sweep_run",
                {
                    "strategies": ["Krum", "NNM>Krum"],
                    "attacks": ["alie"],
                    "byzantine": 0.2,
                    "rounds": 2,
                    "clients": 10,
                    "dataset": "digits",
                },
            )
            assert started["total_runs"] == 4
            status = await wait_done(client, started["sweep_id"])
            assert status["state"] == "done", status
    runs = configs(Path(started["sweep_dir"]))
    assert len(runs) == 4
    assert {c["byzantine"] for c in runs.values()} == {0.2}
    attacked = [c for c in runs.values() if c["attacks"]]
    assert [a["attacks"][0]["params"]["fraction"] for a in attacked] == [0.2, 0.2]
    assert '"f": 2' in json.dumps([c["strategy"] for c in runs.values()])


@pytest.mark.anyio
async def test_mcp_adaptive_expands_before_the_limits(root: Path) -> None:
    members = adaptive_set()
    with anyio.fail_after(60):
        async with Client(params(root, "--max-runs", "2")) as client:
            text = await err(
                client, "sweep_run", {"strategies": ["FedAvg"], "attacks": ["none", "adaptive"]}
            )
    assert f"is {1 + len(members)}" in text and f"({1 + len(members)} cells × 1 repeat)" in text


def test_velocity_mcp_command_reads_byzantine_as_a_count_or_a_fraction(tmp_path: Path) -> None:
    def sweep(value: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "velocity_mcp", "--root", str(tmp_path)]
        return subprocess.run(
            [*command, "--max-runs", "1", "sweep", "--strategies", "Krum", "--byzantine", value],
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = sweep("1.5")
    assert refused.returncode == 1 and "byzantine" in refused.stderr, refused.stderr
    garbled = sweep("abc")
    assert garbled.returncode == 2 and "invalid number value: 'abc'" in garbled.stderr


def test_inline_numbers_are_checked_in_every_pipeline_stage() -> None:
    with pytest.raises(ToolError, match=r"strategy 'NNM': parameter f=.* is too large"):
        check_inline_numbers("strategy", [f"NNM:f={2**70}>Krum"])
