"""The ranked comparison of a sweep, built from hand-written run files (docs/files.md)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from velocity.report import (
    build_comparison,
    render_console,
    render_markdown,
    write_comparison,
)
from velocity.server import ROUND_COLUMNS as ROUNDS_COLUMNS
from velocity.spec import RunSpec


def make_run(
    sweep: Path,
    strategy: str,
    attack: str | None = None,
    *,
    final_loss: float | None = 0.5,
    final_accuracy: float | None = 0.8,
    repeat: int | None = None,
    elapsed_s: float = 1.0,
    status: str | None = "done",
    error: str | None = None,
    rounds: int = 3,
    detection: dict[str, int] | None = None,
    name: str | None = None,
) -> str:
    """Write one run directory (config.json, rounds.csv, summary.json); return its name.

    ``repeat`` adds the ``__r<k>`` suffix; ``status=None`` leaves summary.json out (a
    run that did not finish). The losses in rounds.csv end at ``final_loss``.
    """
    base = name or "__".join([strategy.replace(":", "-"), *([attack] if attack else [])])
    run_name = base if repeat is None else f"{base}__r{repeat}"
    spec = RunSpec(
        name=run_name,
        strategy=strategy,
        attacks=[attack] if attack else [],
        rounds=rounds,
        clients=10,
        seed=42 + (repeat or 0),
        repeat=repeat or 0,
    )
    run_dir = sweep / run_name
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(spec.to_json()))
    last = final_loss if final_loss is not None else math.nan
    losses = [last + 0.2 * (rounds - r) for r in range(1, rounds + 1)]
    with (run_dir / "rounds.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ROUNDS_COLUMNS)
        writer.writeheader()
        for r, loss in enumerate(losses, start=1):
            writer.writerow(
                {"round": r, "num_clients": 10, "global_loss": loss, "accuracy": final_accuracy}
            )
    if status is not None:
        summary = {
            "name": run_name,
            "status": status,
            "error": error,
            "strategy": strategy,
            "attack": attack or "none",
            "seed": spec.seed,
            "repeat": spec.repeat,
            "rounds": rounds,
            "rounds_completed": rounds,
            "final_loss": final_loss,
            "final_accuracy": final_accuracy,
            "mean_loss": None if final_loss is None else sum(losses) / len(losses),
            "mean_accuracy": final_accuracy,
            "best_accuracy": final_accuracy,
            "elapsed_s": elapsed_s,
            "time_s": {"train": 0.8 * elapsed_s, "aggregate": 0.1, "evaluate": 0.1},
            "byzantine_clients": {"3": attack} if attack else {},
            "detection": detection,
            "checkpoint": "checkpoint/final.npz",
            "started_at": "2026-11-28T15:00:00+00:00",
            "finished_at": "2026-11-28T15:00:01+00:00",
        }
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_name


def by_run(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["run"]: row for row in comparison["ranking"]}


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    """FedAvg, FedMedian and Krum × (none, gaussian_noise, label_flipping), one repeat each."""
    losses = {
        ("FedAvg", None): (0.30, 0.90),
        ("FedAvg", "gaussian_noise"): (0.90, 0.60),
        ("FedAvg", "label_flipping"): (0.50, 0.80),
        ("FedMedian", None): (0.32, 0.89),
        ("FedMedian", "gaussian_noise"): (0.34, 0.885),
        ("FedMedian", "label_flipping"): (0.40, 0.86),
        ("Krum", None): (0.35, 0.88),
        ("Krum", "gaussian_noise"): (0.40, 0.87),
        ("Krum", "label_flipping"): (0.47, 0.82),
    }
    for (strategy, attack), (loss, acc) in losses.items():
        make_run(tmp_path, strategy, attack, final_loss=loss, final_accuracy=acc, elapsed_s=2.0)
    (tmp_path / "plan.json").write_text(json.dumps({"runs": [], "parallel": 3, "repeats": 1}))
    (tmp_path / "status.json").write_text(json.dumps({"state": "done", "elapsed_s": 6.0}))
    return tmp_path


def test_ranking_is_by_final_loss_and_names_the_winner(matrix: Path) -> None:
    comparison = build_comparison(matrix)
    order = [row["run"] for row in comparison["ranking"]]
    assert order[:4] == ["FedAvg", "FedMedian", "FedMedian__gaussian_noise", "Krum"]
    assert order[-1] == "FedAvg__gaussian_noise"
    assert [row["rank"] for row in comparison["ranking"]] == list(range(1, 10))
    assert comparison["winner"] == "FedAvg"
    assert comparison["winner_within_noise"] is False
    assert comparison["tied_with"] == []
    top = comparison["ranking"][0]
    assert (top["strategy"], top["attack"], top["repeats"]) == ("FedAvg", "none", 1)
    assert top["final_loss"] == pytest.approx(0.30)
    assert top["final_loss_std"] is None
    assert top["mean_loss"] == pytest.approx(0.50)  # 0.7, 0.5, 0.3


def test_header_figures_come_from_plan_and_status(matrix: Path) -> None:
    header = build_comparison(matrix)["header"]
    assert header["runs_total"] == header["runs_done"] == 9
    assert header["runs_failed"] == 0
    assert header["parallel"] == 3
    assert header["wall_s"] == 6.0
    assert header["serial_s"] == pytest.approx(18.0)
    assert header["speedup"] == pytest.approx(3.0)
    assert (header["rounds"], header["clients"], header["dataset"], header["model"]) == (
        3,
        10,
        "digits",
        "logreg",
    )
    override = build_comparison(matrix, wall_s=9.0, parallel=2)["header"]
    assert (override["wall_s"], override["parallel"], override["speedup"]) == (9.0, 2, 2.0)


def test_most_robust_per_attack_and_overall(matrix: Path) -> None:
    comparison = build_comparison(matrix)
    robust = comparison["most_robust"]
    noise = robust["by_attack"]["gaussian_noise"]
    assert (noise["strategy"], noise["run"], noise["baseline"]) == (
        "FedMedian",
        "FedMedian__gaussian_noise",
        "FedMedian",
    )
    assert noise["loss_increase"] == pytest.approx(0.02)
    assert noise["accuracy_drop"] == pytest.approx(0.005)
    flip = robust["by_attack"]["label_flipping"]
    assert (flip["strategy"], flip["loss_increase"]) == ("FedMedian", pytest.approx(0.08))
    # mean increases: FedAvg (0.6 + 0.2)/2 = 0.4, FedMedian 0.05, Krum (0.05 + 0.12)/2 = 0.085
    assert robust["overall"]["strategy"] == "FedMedian"
    assert robust["overall"]["mean_loss_increase"] == pytest.approx(0.05)
    assert robust["overall"]["attacks"] == ["gaussian_noise", "label_flipping"]
    rows = by_run(comparison)
    assert rows["FedAvg__gaussian_noise"]["loss_increase"] == pytest.approx(0.6)
    assert rows["FedAvg__gaussian_noise"]["accuracy_drop"] == pytest.approx(0.3)
    assert rows["FedAvg"]["loss_increase"] is None


def test_overall_needs_a_strategy_tested_under_every_attack(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", final_loss=0.3)
    make_run(tmp_path, "FedAvg", "gaussian_noise", final_loss=0.5)
    make_run(tmp_path, "FedMedian", final_loss=0.3)
    make_run(tmp_path, "FedMedian", "label_flipping", final_loss=0.4)
    comparison = build_comparison(tmp_path)
    by_attack = comparison["most_robust"]["by_attack"]
    assert by_attack["gaussian_noise"]["strategy"] == "FedAvg"
    assert by_attack["label_flipping"]["strategy"] == "FedMedian"
    assert comparison["most_robust"]["overall"] is None
    assert any("under every attack" in c for c in comparison["caveats"])


def test_single_repeat_caveat(matrix: Path) -> None:
    caveats = build_comparison(matrix)["caveats"]
    assert any("noise is not measured" in c and "--repeats 3" in c for c in caveats)


def write_repeats(
    sweep: Path, strategy: str, losses: list[float], attack: str | None = None
) -> None:
    for k, loss in enumerate(losses):
        make_run(sweep, strategy, attack, final_loss=loss, final_accuracy=0.9 - loss / 10, repeat=k)


def test_top_two_within_noise_are_not_called_a_winner(tmp_path: Path) -> None:
    write_repeats(tmp_path, "FedMedian", [0.30, 0.34, 0.32])  # mean 0.32, std 0.02
    write_repeats(tmp_path, "Krum", [0.31, 0.35, 0.33])  # mean 0.33, std 0.02
    write_repeats(tmp_path, "FedAvg", [0.60, 0.61, 0.62])
    comparison = build_comparison(tmp_path)
    rows = by_run(comparison)
    assert rows["FedMedian"]["repeats"] == 3
    assert rows["FedMedian"]["final_loss"] == pytest.approx(0.32)
    assert rows["FedMedian"]["final_loss_std"] == pytest.approx(0.02)  # ddof=1
    assert comparison["winner"] == "FedMedian"
    assert comparison["winner_within_noise"] is True
    assert comparison["tied_with"] == ["FedMedian", "Krum"]
    assert not any("noise is not measured" in c for c in comparison["caveats"])
    markdown = render_markdown(comparison)
    two_se = 2 * math.sqrt(2 * 0.02**2 / 3)
    assert (
        f"FedMedian and Krum are within noise of each other (Δ=0.01, 2·SE={two_se:.3g}); "
        "run more repeats to separate them"
    ) in markdown
    assert "Winner (lowest final loss)" not in markdown
    assert "0.32 ± 0.02" in markdown


def test_top_two_separated_beyond_noise_give_a_winner(tmp_path: Path) -> None:
    write_repeats(tmp_path, "FedMedian", [0.300, 0.302, 0.301])
    write_repeats(tmp_path, "Krum", [0.350, 0.352, 0.351])
    comparison = build_comparison(tmp_path)
    assert comparison["winner"] == "FedMedian"
    assert comparison["winner_within_noise"] is False
    assert comparison["tied_with"] == []
    assert "Winner (lowest final loss): FedMedian" in render_markdown(comparison)


def test_failed_runs_are_listed_with_their_error_and_ranked_out(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", final_loss=0.3)
    make_run(
        tmp_path,
        "Krum",
        final_loss=None,
        final_accuracy=None,
        status="failed",
        error="ValueError: Krum needs n > 2f + 2 clients (n=3, f=1)",
    )
    make_run(tmp_path, "FedMedian", status=None)  # killed: no summary.json
    (tmp_path / "status.json").write_text(
        json.dumps({"state": "done", "elapsed_s": 2.0, "runs": {"FedMedian": {"state": "running"}}})
    )
    comparison = build_comparison(tmp_path)
    assert [row["run"] for row in comparison["ranking"]] == ["FedAvg"]
    failed = {f["run"]: f["error"] for f in comparison["failed"]}
    assert failed["Krum"] == "ValueError: Krum needs n > 2f + 2 clients (n=3, f=1)"
    assert failed["FedMedian"].startswith("did not finish")
    assert "last round 3 of 3" in failed["FedMedian"]
    assert comparison["header"]["runs_failed"] == 2
    markdown = render_markdown(comparison)
    assert "## Failed runs" in markdown
    assert "`Krum`: ValueError: Krum needs n > 2f + 2 clients (n=3, f=1)" in markdown
    assert "2 runs failed" in render_console(comparison, tmp_path)


def test_pending_and_cancelled_runs_are_not_run_and_dead_workers_failed(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", final_loss=0.3)
    make_run(tmp_path, "FedMedian", status=None)
    names = ["FedAvg", "FedMedian", "Krum", "Bulyan"]
    plan = {"runs": [{"name": n} for n in names], "parallel": 2}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    status = {
        "state": "cancelled",
        "elapsed_s": 1.5,
        "runs": {
            "FedAvg": {"state": "done"},
            "FedMedian": {"state": "cancelled"},
            "Krum": {"state": "pending"},
            "Bulyan": {"state": "failed", "error": "worker process died (signal 9)"},
        },
    }
    (tmp_path / "status.json").write_text(json.dumps(status))
    comparison = build_comparison(tmp_path)
    assert comparison["failed"] == [{"run": "Bulyan", "error": "worker process died (signal 9)"}]
    assert comparison["not_run"] == [
        {"run": "FedMedian", "state": "cancelled"},
        {"run": "Krum", "state": "pending"},
    ]
    header = comparison["header"]
    assert (header["runs_total"], header["runs_done"], header["runs_not_run"]) == (4, 1, 2)
    assert header["runs_failed"] == 1
    assert header["state"] == "cancelled"


def test_no_baseline_means_no_robustness_verdict(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", "gaussian_noise", final_loss=0.9)
    make_run(tmp_path, "FedMedian", "gaussian_noise", final_loss=0.4)
    comparison = build_comparison(tmp_path)
    assert comparison["winner"] == "FedMedian__gaussian_noise"
    assert comparison["most_robust"] == {"by_attack": {"gaussian_noise": None}, "overall": None}
    assert any("needs baseline runs" in c for c in comparison["caveats"])
    assert "gaussian_noise: no strategy has both a baseline and this attack" in render_markdown(
        comparison
    )


def test_no_attacks_in_sweep_and_labels_come_from_the_spec(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", final_loss=0.3)
    make_run(tmp_path, "krum:f=2", final_loss=0.31)
    comparison = build_comparison(tmp_path)
    assert comparison["most_robust"] == {"by_attack": {}, "overall": None}
    assert [row["strategy"] for row in comparison["ranking"]] == ["FedAvg", "Krum:f=2"]
    assert not any("do not validate" in c for c in comparison["caveats"])
    assert "No attacks in this sweep." in render_markdown(comparison)


def test_diverged_run_ranks_last(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", "gaussian_noise", final_loss=None, final_accuracy=0.1)
    make_run(tmp_path, "FedMedian", "gaussian_noise", final_loss=0.4)
    comparison = build_comparison(tmp_path)
    assert [row["run"] for row in comparison["ranking"]] == [
        "FedMedian__gaussian_noise",
        "FedAvg__gaussian_noise",
    ]
    assert comparison["ranking"][-1]["final_loss"] is None
    assert any("diverged" in c for c in comparison["caveats"])


def test_detection_totals_sum_over_repeats(tmp_path: Path) -> None:
    counts = {"kept_honest": 16, "kept_byzantine": 0, "excluded_honest": 2, "excluded_byzantine": 4}
    for k in range(2):
        make_run(tmp_path, "Krum", "gaussian_noise", repeat=k, detection=counts)
    row = build_comparison(tmp_path)["ranking"][0]
    assert row["detection"] == {k: 2 * v for k, v in counts.items()}


def test_markdown_has_header_table_and_verdicts(matrix: Path) -> None:
    markdown = render_markdown(build_comparison(matrix), images=["plots/loss.png"])
    assert "9 runs (9 done, 0 failed)" in markdown
    assert "parallel 3" in markdown
    assert "wall 6.00 s" in markdown
    assert "serial Σ 18.0 s (3.0× speedup)" in markdown
    assert "| Rank | Run | Strategy | Attack | Final loss | Mean loss | Final acc | Elapsed |" in (
        markdown
    )
    assert "| 1 | `FedAvg` | FedAvg | none | 0.3 | 0.5 | 90.0% | 2.00 s |" in markdown
    assert "Winner (lowest final loss): FedAvg" in markdown
    assert "- gaussian_noise: FedMedian (+0.02 loss, −0.5 pp accuracy vs its baseline)" in markdown
    assert "- Overall: FedMedian (+0.05 mean loss increase over 2 attacks)" in markdown
    assert "## Caveats" in markdown
    assert markdown.index("## Caveats") < markdown.index("![loss](plots/loss.png)")


def test_console_summary(matrix: Path) -> None:
    text = render_console(build_comparison(matrix), matrix)
    assert text.splitlines()[0].startswith("Winner (lowest final loss): FedAvg")
    assert "Most robust under gaussian_noise: FedMedian" in text
    assert "Most robust overall: FedMedian" in text
    assert text.splitlines()[-1] == f"Comparison: {matrix / 'comparison.md'}"


def test_write_comparison_is_atomic_and_rerenders_the_same(matrix: Path) -> None:
    first = write_comparison(matrix)
    assert json.loads((matrix / "comparison.json").read_text())["winner"] == first["winner"]
    assert (matrix / "comparison.md").read_text().startswith("# Sweep comparison")
    leftovers = [p.name for p in matrix.iterdir() if p.is_file() and p.name.endswith(".tmp")]
    assert leftovers == []
    second = write_comparison(matrix)  # `velocity compare`: same files, same verdict
    for key in ("header", "ranking", "winner", "most_robust", "failed", "caveats"):
        assert first[key] == second[key]


def test_a_stale_config_still_renders_with_raw_labels(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", final_loss=0.3)
    name = make_run(tmp_path, "FedMedian", final_loss=0.2)
    config_path = tmp_path / name / "config.json"
    config = json.loads(config_path.read_text())
    config["strategy"] = {"type": "RetiredStrategy", "k": 1}  # removed since the sweep ran
    config_path.write_text(json.dumps(config))
    comparison = build_comparison(tmp_path)
    assert comparison["winner"] == "FedMedian"
    assert comparison["ranking"][0]["strategy"] == "RetiredStrategy"
    assert any("do not validate" in c for c in comparison["caveats"])
