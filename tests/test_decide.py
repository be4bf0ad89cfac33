"""Decide with the fewest runs: the rule (:mod:`velocity.engine.decide`) and real sweeps run
until decided (:mod:`velocity.engine.until`).

The rule is checked on hand-made observations whose statistics are computed here by
hand; the sweeps are tiny digits sweeps (5 rounds, 6 clients: seconds).
"""

from __future__ import annotations

import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from velocity.engine.decide import DecisionState, decide, describe
from velocity.engine.pool import TEST_SLOW_ENV
from velocity.engine.sweep import run_sweep
from velocity.engine.until import UntilDecided, check_limits, first_repeat
from velocity.errors import SpecError
from velocity.report.verdict import Observation
from velocity.spec import matrix_spec

N_TEST = 360
GARBAGE = "gaussian_noise:sigma=10,count=1"


def obs(strategy: str, accuracy: float, seed: int, condition: str = "none") -> Observation:
    return Observation(
        strategy=strategy,
        condition=condition,
        cell=f"{strategy}__{condition}",
        seed=seed,
        diverged=False,
        accuracy=accuracy,
        loss=1 - accuracy,
        test_samples=N_TEST,
    )


def series(values: dict[str, list[float]]) -> list[Observation]:
    return [obs(s, a, seed) for s, accs in values.items() for seed, a in enumerate(accs)]


def state_of(observations: list[Observation], **kw: object) -> DecisionState:
    strategies = {o.strategy for o in observations}
    args = {
        "rank_by": "accuracy",
        "cells": dict.fromkeys(strategies, 1),
        "next_repeat": max(o.seed for o in observations) + 1,
        "max_repeats": 10,
        "runs_spent": len(observations),
        "budget": None,
        "eliminated": {},
    }
    return decide(observations, [], **{**args, **kw})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the rule


def test_elimination_uses_the_paired_difference() -> None:
    # B trails A by 3 pp on every seed, while the seeds themselves vary by 10 pp: the
    # unpaired intervals overlap, the paired difference (constant) is far beyond 2·SE
    a = [0.80, 0.90, 0.95]
    observations = series({"A": a, "B": [x - 0.03 for x in a]})
    mean_b = statistics.fmean(a) - 0.03
    se_a, se_b = statistics.stdev(a) / math.sqrt(3), statistics.stdev(a) / math.sqrt(3)
    assert statistics.fmean(a) - 2 * se_a < mean_b + 2 * se_b  # unpaired: overlapping
    floor = math.sqrt(0.87 * 0.13 / N_TEST)  # paired: sd 0, the binomial floor
    assert 2 * floor / math.sqrt(3) < 0.03
    state = state_of(observations, max_repeats=3)
    assert state.eliminated == {"B": 3}
    assert state.ended == "decided"


def test_nothing_is_eliminated_by_loss_with_one_repeat() -> None:
    state = state_of(series({"A": [0.95], "B": [0.60]}), rank_by="loss")
    assert state.eliminated == {} and state.ended is None
    assert state.active == ["A", "B"]


def test_one_clearly_best_strategy_is_decided_after_one_repeat() -> None:
    state = state_of(series({"A": [0.95], "B": [0.60]}))
    assert state.ended == "decided"
    assert state.recommendation.decided and state.recommendation.strategy == "A"
    assert state.next_runs == 0


def test_a_dominated_strategy_is_eliminated_and_the_close_ones_go_on() -> None:
    state = state_of(series({"A": [0.930], "B": [0.925], "C": [0.50]}))
    assert state.ended is None
    assert state.eliminated == {"C": 1}
    assert state.active == ["A", "B"]
    assert state.next_runs == 2 and state.next_repeat == 1
    line = describe(state, runs_spent=3, full_grid_runs=30)
    assert "eliminated C after 1 repeat" in line and "next: repeat 2 of A, B" in line


def test_a_strategy_inside_the_leaders_bound_is_not_eliminated() -> None:
    # B is 2 pp behind, within the paired 2·SE of one repeat (2·√(p(1−p)/360) ≈ 2.9 pp):
    # the verdict does not separate them, so B gets the next repeat
    state = state_of(series({"A": [0.93], "B": [0.91]}))
    assert state.eliminated == {}
    assert state.active == ["A", "B"]


def test_an_eliminated_strategy_back_in_the_tie_rejoins() -> None:
    state = state_of(series({"A": [0.93, 0.92], "B": [0.925, 0.93]}), eliminated={"B": 1})
    assert "B" in state.recommendation.tie
    assert state.eliminated == {}
    assert state.active == ["A", "B"] or state.active == ["B", "A"]


def test_a_tie_ends_at_max_repeats_and_reports_a_tie() -> None:
    state = state_of(series({"A": [0.93, 0.92, 0.93], "B": [0.93, 0.92, 0.93]}), max_repeats=3)
    assert state.ended == "max-repeats"
    assert not state.recommendation.decided
    assert set(state.recommendation.tie) == {"A", "B"}


def test_a_tie_no_repeat_left_can_separate_is_settled_and_ends() -> None:
    # Identical worst cases: d = 0, σ = the binomial floor √(p(1−p)/360) ≈ 1.3 pp;
    # k = 3, K = 10: 0 + σ/√3 ≤ 2σ/√10 ⇔ 0.577 ≤ 0.632. Settled.
    values = {"A": [0.93, 0.92, 0.93], "B": [0.93, 0.92, 0.93]}
    state = state_of(series(values), max_repeats=10)
    assert state.ended == "settled"
    assert state.settled == {"B": 3}
    assert state.next_runs == 0 and state.active == []
    assert set(state.recommendation.tie) == {"A", "B"}
    assert not state.recommendation.decided
    # K = 13: 2σ/√13 = 0.555σ < 0.577σ: thirteen repeats might, so it goes on.
    assert state_of(series(values), max_repeats=13).ended is None
    # Two repeats: σ not measured enough to settle anything.
    assert state_of(series({"A": [0.93, 0.92], "B": [0.93, 0.92]})).settled == {}
    assert "settled in the tie B after 3 repeats" in describe(
        state, runs_spent=6, full_grid_runs=20
    )


def test_settling_one_tie_member_keeps_the_others_and_the_top_running() -> None:
    # B equals A; C trails by ~1 pp with little spread: separable within K = 10.
    values = {
        "A": [0.93, 0.92, 0.93],
        "B": [0.93, 0.92, 0.93],
        "C": [0.921, 0.909, 0.918],
    }
    state = state_of(series(values), max_repeats=10)
    assert "C" in state.recommendation.tie
    assert state.settled == {"B": 3}
    assert state.ended is None
    assert sorted(state.active) == ["A", "C"]
    assert state.next_runs == 2


def test_at_max_repeats_only_members_left_out_of_a_repeat_are_listed_as_settled() -> None:
    values = {"A": [0.93, 0.92, 0.93, 0.92], "B": [0.93, 0.92, 0.93, 0.92], "C": [0.93, 0.92, 0.93]}
    # Repeat 4 ran without C (settled after 3); the cap is reached: B, settleable now but
    # never left out, is not listed; C is, with the repeats it had.
    state = state_of(series(values), max_repeats=4, settled={"C": 3})
    assert state.ended == "max-repeats"
    assert state.settled == {"C": 3}
    assert state_of(series(values), max_repeats=4).settled == {}


def test_the_budget_stops_before_a_repeat_that_would_pass_it() -> None:
    observations = series({"A": [0.93], "B": [0.925]})
    assert state_of(observations, budget=4).ended is None  # 2 spent + 2 next = 4
    assert state_of(observations, budget=3).ended == "budget"


def test_no_candidate_ends_it() -> None:
    from velocity.report.verdict import Gap

    state = decide(
        [],
        [Gap("A", "none", "run failed: boom")],
        rank_by="accuracy",
        cells={"A": 1},
        next_repeat=1,
        max_repeats=5,
        runs_spent=1,
        budget=None,
        eliminated={},
    )
    assert state.ended == "no-candidate" and state.active == []


def test_limits_are_checked_with_the_allowed_range() -> None:
    check_limits(5, 12, 4)
    with pytest.raises(SpecError, match=r"max_repeats = 0 is out of range: allowed 1 to 1000"):
        check_limits(0, None, 4)
    with pytest.raises(SpecError, match=r"budget = 3 runs is less than one repeat of every cell"):
        check_limits(5, 3, 4)


# --------------------------------------------------------------------------- real sweeps


def tiny(strategies: str, attacks: tuple[str, ...] = (GARBAGE,), repeats: int = 1) -> list:
    spec = matrix_spec(strategies.split(","), attacks, rounds=5, clients=6, repeats=repeats)
    return spec.expand()


def until_decided(out: Path, strategies: str, max_repeats: int, **kw: object) -> dict:
    planner = UntilDecided(
        max_repeats=max_repeats, budget=kw.pop("budget", None), rank_by="accuracy", progress=False
    )  # type: ignore[arg-type]
    result = run_sweep(
        first_repeat(tiny(strategies)), out, parallel=2, progress=False, planner=planner
    )
    assert result.state == "done" and result.comparison is not None
    plan = json.loads((out / "plan.json").read_text())
    return {"comparison": result.comparison, "plan": plan, "runs": result.runs}


def test_a_clearly_best_strategy_stops_early_with_the_full_grids_answer(tmp_path: Path) -> None:
    got = until_decided(tmp_path / "d", "FedAvg,FedMedian", max_repeats=5)
    decision = got["plan"]["decision"]
    assert decision["ended"] == "decided"
    assert decision["runs_spent"] == 4 and decision["full_grid_runs"] == 20
    assert sorted(got["runs"]) == [
        "FedAvg__gaussian_noise-sigma=10.0-count=1__r0",
        "FedAvg__r0",
        "FedMedian__gaussian_noise-sigma=10.0-count=1__r0",
        "FedMedian__r0",
    ]
    full = run_sweep(tiny("FedAvg,FedMedian", repeats=5), tmp_path / "g", progress=False)
    assert full.comparison is not None
    grid, early = full.comparison["recommendation"], got["comparison"]["recommendation"]
    assert early["decided"] and grid["decided"]
    assert early["strategy"] == grid["strategy"] == "FedMedian"


def test_a_tie_runs_to_max_repeats_and_reports_a_tie(tmp_path: Path) -> None:
    got = until_decided(tmp_path / "t", "FedMedian,TrimmedMean:beta=0.2", max_repeats=3)
    decision = got["plan"]["decision"]
    assert decision["ended"] == "max-repeats"
    assert decision["runs_spent"] == 12 == decision["full_grid_runs"]
    rec = got["comparison"]["recommendation"]
    assert not rec["decided"]
    assert set(rec["tie"]) == {"FedMedian", "TrimmedMean:beta=0.2"}
    seeds = {
        json.loads((tmp_path / "t" / n / "config.json").read_text())["seed"] for n in got["runs"]
    }
    assert seeds == {42, 43, 44}  # paired: one seed per repeat, the same for every cell


def test_a_dominated_strategy_is_eliminated_in_a_sweep(tmp_path: Path) -> None:
    got = until_decided(tmp_path / "e", "FedAvg,FedMedian,TrimmedMean:beta=0.2", max_repeats=3)
    decision = got["plan"]["decision"]
    assert decision["eliminated"] == {"FedAvg": 1}
    assert decision["runs_spent"] == 6 + 4 + 4 < decision["full_grid_runs"] == 18
    fedavg = [n for n in got["runs"] if n.startswith("FedAvg")]
    assert sorted(fedavg) == ["FedAvg__gaussian_noise-sigma=10.0-count=1__r0", "FedAvg__r0"]
    scores = {c["strategy"]: c for c in got["comparison"]["recommendation"]["candidates"]}
    assert scores["FedAvg"]["repeats"] == 1  # its cells stay in the report


def test_the_budget_ends_a_sweep(tmp_path: Path) -> None:
    got = until_decided(tmp_path / "b", "FedMedian,TrimmedMean:beta=0.2", max_repeats=5, budget=9)
    decision = got["plan"]["decision"]
    assert decision["ended"] == "budget"
    assert decision["runs_spent"] == 8  # a third repeat (4 more runs) would pass 9


# --------------------------------------------------------------------------- the command


def velocity(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "velocity", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


SMALL = ("--strategies", "FedAvg,FedMedian", "--attacks", GARBAGE, "--rounds", "5", "--clients")


def test_cli_until_decided_says_how_it_was_decided(tmp_path: Path) -> None:
    out = tmp_path / "s"
    done = velocity(
        "sweep", *SMALL, "6", "--until", "decided", "--max-repeats", "3", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "decide: leader FedMedian" in done.stdout and "ended: decided" in done.stdout
    assert (
        "Run until decided: it stopped after 1 repeat because the recommendation was decided"
        in (done.stdout)
    )
    markdown = (out / "comparison.md").read_text()
    assert "4 runs spent, against 12 for the full grid (8 saved, 3.0× fewer)" in markdown
    assert "FedAvg (eliminated after 1 repeat)" in markdown
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["decision"]["ended"] == "decided"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ("--until", "decided", "--repeats", "3"),
            "--repeats and --until decided conflict: --until decided chooses the repeats; "
            "use --max-repeats to bound them",
        ),
        (
            ("--until", "decided", "--max-repeats", "0"),
            "max_repeats = 0 is out of range: allowed 1 to 1000",
        ),
        (
            ("--until", "decided", "--max-repeats", "1001"),
            "max_repeats = 1001 is out of range: allowed 1 to 1000",
        ),
        (
            ("--until", "decided", "--budget", "3"),
            "budget = 3 runs is less than one repeat of every cell (4 runs): allowed at least 4",
        ),
        (("--max-repeats", "3"), "--max-repeats needs --until decided"),
        (("--budget", "30"), "--budget needs --until decided"),
        (("--until", "decide"), "argument --until: invalid choice: 'decide'"),
    ],
)
def test_cli_refuses_bad_decide_flags_before_writing(
    tmp_path: Path, flags: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "s"
    done = velocity("sweep", *SMALL, "6", *flags, "--out", str(out))
    assert done.returncode == 2
    assert message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not out.exists()


def test_shared_until_in_an_experiment_file(tmp_path: Path) -> None:
    config = tmp_path / "e.toml"
    config.write_text(
        '[shared]\nrounds = 5\nclients = 6\nuntil = "decided"\nmax_repeats = 2\n\n'
        '[[runs]]\nstrategy = "FedAvg"\n\n[[runs]]\nstrategy = "FedMedian"\n'
        f'attacks = ["{GARBAGE}"]\n'
    )
    out = tmp_path / "s"
    done = velocity("sweep", str(config), "--out", str(out))
    assert done.returncode == 0, done.stderr
    plan = json.loads((out / "plan.json").read_text())
    assert (plan["until"], plan["max_repeats"]) == ("decided", 2)
    bad = tmp_path / "bad.toml"
    bad.write_text(config.read_text().replace("max_repeats = 2", "repeats = 3"))
    refused = velocity("sweep", str(bad), "--out", str(tmp_path / "b"))
    assert refused.returncode == 2
    assert 'repeats = 3 and until = "decided" conflict' in refused.stderr


def test_a_killed_sweep_run_until_decided_resumes_to_the_same_end(tmp_path: Path) -> None:
    args = ("--strategies", "FedMedian,TrimmedMean:beta=0.2", "--attacks", GARBAGE, "--rounds")
    args += ("5", "--clients", "6", "--until", "decided", "--max-repeats", "3")
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    child = subprocess.Popen(
        [sys.executable, "-m", "velocity", "sweep", *args, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, TEST_SLOW_ENV: "FedMedian__r1:3"},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (killed / "FedMedian__r1" / "progress.json").exists():
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    resumed = velocity("sweep", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr
    assert velocity("sweep", *args, "--out", str(whole)).returncode == 0
    plans = [json.loads((d / "plan.json").read_text()) for d in (killed, whole)]
    assert plans[0]["decision"]["ended"] == plans[1]["decision"]["ended"] == "max-repeats"
    names_of = [sorted(r["name"] for r in p["runs"]) for p in plans]
    assert names_of[0] == names_of[1] and len(names_of[0]) == 12
    for name in names_of[0]:
        assert (killed / name / "rounds.csv").read_bytes() == (
            whole / name / "rounds.csv"
        ).read_bytes()


def test_comparison_md_says_a_tie_was_settled() -> None:
    from velocity.report.markdown import decision_line

    line = decision_line(
        {
            "ended": "settled",
            "repeats": 3,
            "runs_spent": 14,
            "full_grid_runs": 40,
            "eliminated": {"FedAvg": 1},
            "settled": {"FedMedian": 3},
        }
    )
    assert line == (
        "Run until decided: it stopped after 3 repeats because no repeat up to max_repeats "
        "was expected to separate the tie; 14 runs spent, against 40 for the full grid "
        "(26 saved, 2.9× fewer); eliminated (no more repeats once separated from the leader): "
        "FedAvg after 1 repeat; settled in the tie (no repeat left expected to separate it): "
        "FedMedian after 3 repeats."
    )
