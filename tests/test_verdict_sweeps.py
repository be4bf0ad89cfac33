"""The recommendation on real sweeps, run through the ``velocity`` command as a user runs it.

Each case is a real FL sweep on the embedded digits (seconds on 2 cores). The
recommendation is also recomputed here, independently, from the runs' summary.json
files: worst case per seed over the conditions, a diverged run counting 0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from velocity import load_results
from velocity.sweepdir.results import RESULT_COLUMNS

ROBUST = "FedMedian,TrimmedMean:beta=0.2,Krum,GeometricMedian,CenteredClipping"
GARBAGE = "gaussian_noise:sigma=10,count=1"


def sweep(out: Path, *args: str) -> dict[str, Any]:
    """Run ``velocity sweep ... --out out`` and return its comparison.json."""
    done = subprocess.run(
        [sys.executable, "-m", "velocity", "sweep", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert any(line.startswith("Recommendation: ") for line in done.stdout.splitlines())
    return json.loads((out / "comparison.json").read_text())


def worst_cases_from_summaries(sweep_dir: Path) -> dict[str, float]:
    """Mean over seeds of the worst final accuracy over conditions (diverged = 0)."""
    acc: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for path in sweep_dir.glob("*/summary.json"):
        summary = json.loads(path.read_text())
        value = summary["final_accuracy"] if summary["status"] == "done" else 0.0
        acc[summary["strategy"]][summary["attack"]][summary["seed"]] = value
    out = {}
    for strategy, conditions in acc.items():
        seeds = set.intersection(*(set(v) for v in conditions.values()))
        out[strategy] = statistics.fmean(
            min(conditions[c][s] for c in conditions) for s in sorted(seeds)
        )
    return out


def check_against_summaries(sweep_dir: Path, comparison: dict[str, Any]) -> None:
    expected = worst_cases_from_summaries(sweep_dir)
    scores = {
        c["strategy"]: c["worst_case_accuracy"] for c in comparison["recommendation"]["candidates"]
    }
    assert scores == pytest.approx(expected)
    rec = comparison["recommendation"]
    best = max(expected, key=lambda s: expected[s])
    if rec["decided"]:
        assert rec["strategy"] == best
    else:
        assert best in rec["tie"]


def test_skewed_labels_and_a_garbage_client_recommend_neither_krum_nor_fedavg(
    tmp_path: Path,
) -> None:
    comparison = sweep(
        tmp_path / "s",
        "--strategies",
        f"FedAvg,{ROBUST}",
        "--attacks",
        GARBAGE,
        "--partition",
        "dirichlet",
        "--alpha",
        "0.1",
        "--repeats",
        "3",
    )
    rec = comparison["recommendation"]
    assert rec["strategy"] not in ("Krum", "FedAvg"), rec["reason"]
    check_against_summaries(tmp_path / "s", comparison)
    scores = {c["strategy"]: c for c in rec["candidates"]}
    # Krum is bad with no attack at all under this skew: its binding condition can be either
    assert scores["Krum"]["worst_case_accuracy"] < rec["worst_case_accuracy"]
    assert scores["FedAvg"]["binding"] == "gaussian_noise:sigma=10.0,count=1"
    setting = comparison["header"]["setting"]
    assert (setting["partition"], setting["alpha"]) == ("dirichlet", 0.1)
    assert setting["byzantine"] == {"gaussian_noise:sigma=10.0,count=1": 1}
    markdown = (tmp_path / "s" / "comparison.md").read_text()
    assert "partition dirichlet (α=0.1)" in markdown
    assert markdown.index("## Recommendation") < markdown.index("## Every cell")


def test_iid_with_a_garbage_client_does_not_recommend_fedavg(tmp_path: Path) -> None:
    comparison = sweep(
        tmp_path / "s", "--strategies", f"FedAvg,{ROBUST}", "--attacks", GARBAGE, "--repeats", "2"
    )
    rec = comparison["recommendation"]
    assert rec["strategy"] != "FedAvg"
    assert "FedAvg" not in rec["tie"]
    check_against_summaries(tmp_path / "s", comparison)
    noise = comparison["most_robust"]["by_attack"]["gaussian_noise:sigma=10.0,count=1"]
    assert noise["reference"]["strategy"] == "FedAvg"
    assert noise["reference"]["accuracy_drop"] > 0.3  # FedAvg collapses: positive = worse


def test_a_diverging_strategy_counts_as_broken(tmp_path: Path) -> None:
    comparison = sweep(
        tmp_path / "s",
        "--strategies",
        "FedAvg,FedMedian",
        "--attacks",
        "ipm:epsilon=1000",
        "--model",
        "mlp",
        "--rounds",
        "15",
    )
    assert [d["run"] for d in comparison["diverged"]] == ["FedAvg__ipm-epsilon=1000.0"]
    assert comparison["failed"] == []
    rec = comparison["recommendation"]
    assert rec["strategy"] == "FedMedian"
    fedavg = next(c for c in rec["candidates"] if c["strategy"] == "FedAvg")
    assert (fedavg["worst_case_accuracy"], fedavg["binding"]) == (0.0, "ipm:epsilon=1000.0")
    check_against_summaries(tmp_path / "s", comparison)
    status = json.loads((tmp_path / "s" / "status.json").read_text())
    assert (status["state"], status["diverged_runs"], status["failed_runs"]) == ("done", 1, 0)
    assert "| diverged |" in (tmp_path / "s" / "comparison.md").read_text()


def test_six_baselines_at_one_repeat_are_a_tie(tmp_path: Path) -> None:
    comparison = sweep(
        tmp_path / "s",
        "--strategies",
        "FedAvg,FedProx,FedMedian,TrimmedMean,GeometricMedian,CenteredClipping",
    )
    rec = comparison["recommendation"]
    assert rec["decided"] is False
    assert len(rec["tie"]) >= 2
    assert " are tied within 2·SE on clean accuracy " in rec["reason"]
    assert any("too easy to separate" in c for c in comparison["caveats"])
    check_against_summaries(tmp_path / "s", comparison)


def test_results_csv_round_trips_with_the_summaries(tmp_path: Path) -> None:
    sweep(
        tmp_path / "s",
        "--strategies",
        "FedAvg,Krum:f=2",
        "--attacks",
        "sign_flipping:fraction=0.3",
        "--repeats",
        "2",
        "--rounds",
        "3",
    )
    header = (tmp_path / "s" / "results.csv").read_text().splitlines()[0]
    assert header == ",".join(RESULT_COLUMNS)
    rows = load_results(tmp_path / "s", frame=False)
    assert len(rows) == 8
    for row in rows:
        summary = json.loads((tmp_path / "s" / row["run"] / "summary.json").read_text())
        config = json.loads((tmp_path / "s" / row["run"] / "config.json").read_text())
        assert row["status"] == summary["status"] == "done"
        for key in ("final_accuracy", "best_accuracy", "mean_accuracy", "final_loss", "elapsed_s"):
            assert row[key] == summary[key], key
        assert (row["seed"], row["repeat"]) == (config["seed"], config["repeat"])
        assert (row["rounds"], row["rounds_completed"]) == (3, 3)
        assert row["strategy_type"] == config["strategy"]["type"]
        assert row["strategy_params"] == {
            k: v for k, v in config["strategy"].items() if k != "type"
        }
        assert row["attack_params"] == [a["params"] for a in config["attacks"]]
        assert row["byzantine"] == len(summary["byzantine_clients"])
    krum = [r for r in rows if r["strategy"] == "Krum:f=2" and r["attack"] != "none"]
    assert {r["attack_types"] for r in krum} == {"sign_flipping"}
    assert {r["strategy_params"]["f"] for r in krum} == {2}
    # an old sweep without results.csv: the rows are built from the run files
    (tmp_path / "s" / "results.csv").unlink()
    assert load_results(tmp_path / "s", frame=False) == rows
