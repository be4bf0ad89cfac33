"""The verdict of a sweep, built from hand-written run files (docs/files.md).

These tests pin the arithmetic on numbers chosen by hand; tests/test_verdict_sweeps.py
checks the same verdict on real sweeps run through the CLI.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from velocity.report.comparison import build_comparison
from velocity.report.markdown import render_console, render_markdown
from velocity.report.render import write_comparison
from velocity.sim.server import ROUND_COLUMNS as ROUNDS_COLUMNS
from velocity.spec import RunSpec

TEST_SAMPLES = 360


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
    byzantine_per_round: int = 0,
    test_samples: int | None = TEST_SAMPLES,
    clients: int = 10,
) -> str:
    """Write one run directory (config.json, rounds.csv, summary.json); return its name.

    ``repeat`` adds the ``__r<k>`` suffix and sets the seed to 42 + repeat;
    ``status=None`` leaves summary.json out (a run that did not finish). The losses in
    rounds.csv end at ``final_loss``.
    """
    base = name or "__".join([strategy.replace(":", "-"), *([attack] if attack else [])])
    run_name = base if repeat is None else f"{base}__r{repeat}"
    spec = RunSpec(
        name=run_name,
        strategy=strategy,
        attacks=[attack] if attack else [],
        rounds=rounds,
        clients=clients,
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
                {
                    "round": r,
                    "num_clients": clients,
                    "global_loss": loss,
                    "accuracy": final_accuracy,
                    "byzantine": byzantine_per_round,
                }
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
            "byzantine_clients": {str(i): attack for i in range(byzantine_per_round or 1)}
            if attack
            else {},
            "test_samples": test_samples,
            "detection": detection,
            "checkpoint": "checkpoint/final.npz",
            "started_at": "2026-11-28T15:00:00+00:00",
            "finished_at": "2026-11-28T15:00:01+00:00",
        }
        (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_name


def by_run(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["run"]: row for row in comparison["ranking"]}


def candidates(comparison: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["strategy"]: c for c in comparison["recommendation"]["candidates"]}


#: (final loss, final accuracy) of FedAvg, FedMedian and Krum × three conditions.
MATRIX = {
    ("FedAvg", None): (0.30, 0.90),
    ("FedAvg", "gaussian_noise"): (0.90, 0.60),
    ("FedAvg", "label_flipping"): (0.50, 0.80),
    ("FedMedian", None): (0.32, 0.89),
    ("FedMedian", "gaussian_noise"): (0.34, 0.885),
    ("FedMedian", "label_flipping"): (0.40, 0.86),
    ("Krum", None): (0.35, 0.80),
    ("Krum", "gaussian_noise"): (0.40, 0.79),
    ("Krum", "label_flipping"): (0.47, 0.78),
}


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    """FedAvg, FedMedian and Krum × (none, gaussian_noise, label_flipping), one repeat each."""
    for (strategy, attack), (loss, acc) in MATRIX.items():
        make_run(tmp_path, strategy, attack, final_loss=loss, final_accuracy=acc, elapsed_s=2.0)
    (tmp_path / "plan.json").write_text(json.dumps({"runs": [], "parallel": 3, "repeats": 1}))
    (tmp_path / "status.json").write_text(json.dumps({"state": "done", "elapsed_s": 6.0}))
    return tmp_path


# --------------------------------------------------------------------------- recommendation


def test_recommendation_is_the_best_worst_case(matrix: Path) -> None:
    comparison = build_comparison(matrix)
    assert next(iter(comparison)) == "recommendation"
    rec = comparison["recommendation"]
    # worst cases: FedAvg 0.60, FedMedian 0.86, Krum 0.78
    assert rec["strategy"] == "FedMedian"
    assert rec["worst_case_accuracy"] == pytest.approx(0.86)
    assert rec["binding"] == "label_flipping"
    assert rec["runner_up"] == "Krum"
    assert rec["margin"] == pytest.approx(0.08)
    # one repeat: the floor is the binomial SE at the pair's mean accuracy (0.82)
    assert rec["two_se"] == pytest.approx(2 * math.sqrt(0.82 * 0.18 / TEST_SAMPLES))
    assert rec["decided"] is True and rec["tie"] == []
    assert rec["clean_accuracy"] == pytest.approx(0.89)
    assert (rec["best_clean_strategy"], rec["best_clean_accuracy"]) == ("FedAvg", 0.90)
    assert rec["price_of_robustness"] == pytest.approx(0.01)
    assert rec["conditions"] == {
        "none": pytest.approx(0.89),
        "gaussian_noise": pytest.approx(0.885),
        "label_flipping": pytest.approx(0.86),
    }
    assert [c["strategy"] for c in rec["candidates"]] == ["FedMedian", "Krum", "FedAvg"]
    assert [c["rank"] for c in rec["candidates"]] == [1, 2, 3]
    assert candidates(comparison)["FedAvg"]["binding"] == "gaussian_noise"
    assert rec["nothing_survives"] is False
    assert rec["reason"].startswith("FedMedian has the best worst-case accuracy, 86.0%")
    assert "binding: label_flipping" in rec["reason"]
    assert "gives up 1.0 pp of clean accuracy against FedAvg" in rec["reason"]
    assert comparison["most_robust"]["overall"]["strategy"] == "FedMedian"


def test_a_strategy_bad_everywhere_is_not_most_robust(tmp_path: Path) -> None:
    """The first version named the strategy with the smallest loss increase over its own
    baseline: here Krum, which is bad everywhere. The worst case names TrimmedMean."""
    for attack, krum, trimmed in [(None, 0.45, 0.93), ("gaussian_noise", 0.44, 0.89)]:
        make_run(tmp_path, "Krum", attack, final_accuracy=krum, final_loss=1.5)
        make_run(tmp_path, "TrimmedMean", attack, final_accuracy=trimmed, final_loss=0.3)
    rec = build_comparison(tmp_path)["recommendation"]
    assert rec["strategy"] == "TrimmedMean"
    assert rec["decided"] is True


def test_scores_are_paired_by_seed(tmp_path: Path) -> None:
    """Seed 42 is hard for everyone and seed 43 easy; paired, TrimmedMean is 2 pp better
    at every seed, which a comparison of unpaired means (std 21 pp) would call noise."""
    accs = {
        "FedMedian": [(0.70, 0.60), (0.95, 0.90)],
        "TrimmedMean": [(0.72, 0.62), (0.97, 0.92)],
    }
    for strategy, per_repeat in accs.items():
        for k, (clean, attacked) in enumerate(per_repeat):
            for attack, acc in ((None, clean), ("zero", attacked)):
                make_run(
                    tmp_path, strategy, attack, repeat=k, final_accuracy=acc, test_samples=10_000
                )
    rec = build_comparison(tmp_path)["recommendation"]
    assert rec["strategy"] == "TrimmedMean"
    assert rec["margin"] == pytest.approx(0.02)
    assert rec["decided"] is True
    scores = {c["strategy"]: c for c in rec["candidates"]}
    assert scores["TrimmedMean"]["worst_case_accuracy"] == pytest.approx(0.77)
    assert scores["TrimmedMean"]["worst_case_se"] == pytest.approx(0.15)  # sd 0.2121 / √2


def test_within_noise_is_a_tie_recommended_by_clean_accuracy(tmp_path: Path) -> None:
    for k, (a_clean, a_att, b_clean, b_att) in enumerate(
        [(0.90, 0.80, 0.93, 0.80), (0.91, 0.84, 0.94, 0.84), (0.89, 0.76, 0.92, 0.78)]
    ):
        make_run(tmp_path, "FedMedian", None, repeat=k, final_accuracy=a_clean)
        make_run(tmp_path, "FedMedian", "zero", repeat=k, final_accuracy=a_att)
        make_run(tmp_path, "TrimmedMean", None, repeat=k, final_accuracy=b_clean)
        make_run(tmp_path, "TrimmedMean", "zero", repeat=k, final_accuracy=b_att)
        make_run(tmp_path, "FedAvg", None, repeat=k, final_accuracy=0.95)
        make_run(tmp_path, "FedAvg", "zero", repeat=k, final_accuracy=0.10)
    comparison = build_comparison(tmp_path)
    rec = comparison["recommendation"]
    assert rec["decided"] is False
    assert set(rec["tie"]) == {"FedMedian", "TrimmedMean"}  # FedAvg (10%) is out
    assert rec["tie"][0] == rec["candidates"][0]["strategy"]
    assert rec["strategy"] == "TrimmedMean"  # the better clean accuracy of the tie
    # paired differences 0, 0, 2 pp: mean 0.67 pp against the binomial floor at p̄ = 80.3%
    p = (0.80 + 0.84 + 0.76 + 0.80 + 0.84 + 0.78) / 6
    floor = math.sqrt(p * (1 - p) / TEST_SAMPLES)
    assert rec["repeats_to_separate"] == math.ceil((2 * floor / (0.02 / 3)) ** 2)
    assert rec["reason"].startswith(
        "TrimmedMean and FedMedian are tied within 2·SE on worst-case accuracy (80.7%, 80.0%)"
    )
    assert "TrimmedMean is recommended for its clean accuracy (93.0%)" in rec["reason"]
    assert "(tie within noise)" in render_markdown(comparison)


def test_one_repeat_at_identical_accuracy_is_a_tie_not_a_winner(tmp_path: Path) -> None:
    for strategy in ("FedAvg", "FedMedian", "TrimmedMean", "GeometricMedian"):
        make_run(tmp_path, strategy, None, final_accuracy=0.939, elapsed_s=1.0)
    rec = build_comparison(tmp_path)["recommendation"]
    assert rec["decided"] is False
    assert set(rec["tie"]) == {"FedAvg", "FedMedian", "TrimmedMean", "GeometricMedian"}
    assert rec["repeats_to_separate"] is None
    assert "their worst cases are equal here" in rec["reason"]


def test_a_diverged_run_counts_as_broken(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", None, final_accuracy=0.95)
    make_run(
        tmp_path,
        "FedAvg",
        "ipm",
        status="diverged",
        error="round 4: test loss is inf: the global model diverged",
        final_accuracy=0.9,
        final_loss=None,
    )
    make_run(tmp_path, "FedMedian", None, final_accuracy=0.90)
    make_run(tmp_path, "FedMedian", "ipm", final_accuracy=0.88)
    comparison = build_comparison(tmp_path)
    rec = comparison["recommendation"]
    assert rec["strategy"] == "FedMedian"
    fedavg = candidates(comparison)["FedAvg"]
    assert fedavg["worst_case_accuracy"] == 0.0
    assert fedavg["worst_case_loss"] is None  # infinite
    assert fedavg["binding"] == "ipm"
    ipm = next(c for c in fedavg["conditions"] if c["condition"] == "ipm")
    assert (ipm["accuracy"], ipm["diverged"], ipm["loss"]) == (0.0, 1, None)
    assert comparison["diverged"] == [
        {"run": "FedAvg__ipm", "error": "round 4: test loss is inf: the global model diverged"}
    ]
    assert comparison["failed"] == []
    assert comparison["header"]["runs_diverged"] == 1
    assert any("diverged (counted as broken" in c for c in comparison["caveats"])
    row = by_run(comparison)["FedAvg__ipm"]
    assert (row["diverged"], row["final_accuracy"], row["final_loss"]) == (1, 0.0, None)
    markdown = render_markdown(comparison)
    assert "| diverged |" in markdown
    assert "## Diverged runs (the strategy broke)" in markdown


def test_a_crashed_run_leaves_its_strategy_incomplete_not_broken(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", None, final_accuracy=0.95)
    make_run(tmp_path, "FedAvg", "zero", final_accuracy=0.40)
    make_run(tmp_path, "FedMedian", None, final_accuracy=0.90)
    make_run(
        tmp_path,
        "FedMedian",
        "zero",
        status="failed",
        error="worker process died (signal 9)",
        final_accuracy=None,
        final_loss=None,
    )
    comparison = build_comparison(tmp_path)
    rec = comparison["recommendation"]
    assert rec["strategy"] == "FedAvg"  # the only complete candidate
    assert [s["strategy"] for s in rec["incomplete"]] == ["FedMedian"]
    assert rec["incomplete"][0]["missing"] == ["zero: run failed: worker process died (signal 9)"]
    assert rec["reason"].startswith("FedAvg is the only complete candidate")
    assert any(
        "FedMedian is not in the recommendation (incomplete)" in c for c in comparison["caveats"]
    )


def test_a_strategy_without_an_attack_cell_is_incomplete(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", final_accuracy=0.9)
    make_run(tmp_path, "FedAvg", "gaussian_noise", final_accuracy=0.5)
    make_run(tmp_path, "FedMedian", final_accuracy=0.9)
    make_run(tmp_path, "FedMedian", "label_flipping", final_accuracy=0.85)
    rec = build_comparison(tmp_path)["recommendation"]
    assert rec["strategy"] is None
    assert {s["strategy"]: s["missing"] for s in rec["incomplete"]} == {
        "FedAvg": ["label_flipping: not in the sweep"],
        "FedMedian": ["gaussian_noise: not in the sweep"],
    }
    assert rec["reason"].startswith("No recommendation: no strategy has a finished run")


def test_nothing_survives_names_the_attack_that_breaks_every_candidate(tmp_path: Path) -> None:
    for strategy, clean, noise, flip in [
        ("FedAvg", 0.95, 0.20, 0.90),
        ("FedMedian", 0.92, 0.60, 0.88),
        ("Krum", 0.85, 0.55, 0.80),
    ]:
        make_run(tmp_path, strategy, None, final_accuracy=clean)
        make_run(tmp_path, strategy, "alie", final_accuracy=noise)
        make_run(tmp_path, strategy, "label_flipping", final_accuracy=flip)
    rec = build_comparison(tmp_path)["recommendation"]
    assert rec["strategy"] == "FedMedian"
    assert rec["nothing_survives"] is True
    assert rec["breaking_attack"] == "alie"
    assert "Nothing survives" in rec["reason"]
    assert "under alie no candidate does better than 60.0%" in rec["reason"]


def test_rank_by_loss_ranks_worst_case_loss_and_says_noise_is_unmeasured(matrix: Path) -> None:
    comparison = build_comparison(matrix, rank_by="loss")
    rec = comparison["recommendation"]
    # worst losses: FedAvg 0.90, FedMedian 0.40, Krum 0.47
    assert (rec["rank_by"], rec["strategy"]) == ("loss", "FedMedian")
    assert rec["worst_case"] == pytest.approx(0.40)
    assert rec["noise_measured"] is False and rec["decided"] is False
    assert "noise is not measured" in rec["reason"]
    assert [row["run"] for row in comparison["ranking"]][:2] == ["FedAvg", "FedMedian"]
    assert comparison["header"]["rank_by"] == "loss"


def test_rank_by_defaults_to_the_plan(matrix: Path) -> None:
    plan = json.loads((matrix / "plan.json").read_text())
    (matrix / "plan.json").write_text(json.dumps({**plan, "rank_by": "loss"}))
    assert build_comparison(matrix)["recommendation"]["rank_by"] == "loss"
    assert build_comparison(matrix, rank_by="accuracy")["recommendation"]["rank_by"] == "accuracy"
    with pytest.raises(ValueError, match="rank_by must be one of accuracy, loss"):
        build_comparison(matrix, rank_by="speed")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- per attack


def test_best_under_each_attack_with_context(matrix: Path) -> None:
    robust = build_comparison(matrix)["most_robust"]
    noise = robust["by_attack"]["gaussian_noise"]
    assert (noise["strategy"], noise["run"], noise["baseline"]) == (
        "FedMedian",
        "FedMedian__gaussian_noise",
        "FedMedian",
    )
    assert noise["accuracy"] == pytest.approx(0.885)
    assert noise["loss_increase"] == pytest.approx(0.02)
    assert noise["accuracy_drop"] == pytest.approx(0.005)  # positive = worse
    assert (noise["tied_with"], noise["decided"]) == ([], True)  # 88.5% vs Krum's 79%
    reference = noise["reference"]
    assert reference["strategy"] == "FedAvg"
    assert reference["accuracy_drop"] == pytest.approx(0.30)
    assert reference["loss_increase"] == pytest.approx(0.60)
    assert robust["by_attack"]["label_flipping"]["strategy"] == "FedMedian"
    assert robust["overall"] == {
        "strategy": "FedMedian",
        "worst_case_accuracy": pytest.approx(0.86),
        "binding": "label_flipping",
        "attacks": ["gaussian_noise", "label_flipping"],
    }


def test_an_attack_with_no_finished_run_has_no_best(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", final_loss=0.3)
    make_run(tmp_path, "FedAvg", "zero", status="failed", error="boom", final_loss=None)
    comparison = build_comparison(tmp_path)
    assert comparison["most_robust"]["by_attack"] == {"zero": None}
    assert "- zero: no strategy finished a run under this attack" in render_markdown(comparison)


# --------------------------------------------------------------------------- cells


def test_cells_rank_by_accuracy_and_the_winner_line_stays(matrix: Path) -> None:
    comparison = build_comparison(matrix)
    order = [row["run"] for row in comparison["ranking"]]
    assert order[:3] == ["FedAvg", "FedMedian", "FedMedian__gaussian_noise"]
    assert order[-1] == "FedAvg__gaussian_noise"
    assert [row["rank"] for row in comparison["ranking"]] == list(range(1, 10))
    assert (comparison["winner"], comparison["winner_attack"]) == ("FedAvg", "none")
    assert comparison["winner_within_noise"] is False
    top = comparison["ranking"][0]
    assert (top["strategy"], top["attack"], top["repeats"], top["diverged"]) == (
        "FedAvg",
        "none",
        1,
        0,
    )
    assert top["mean_loss"] == pytest.approx(0.50)  # 0.7, 0.5, 0.3
    rows = by_run(comparison)
    assert rows["FedAvg__gaussian_noise"]["loss_increase"] == pytest.approx(0.6)
    assert rows["FedAvg__gaussian_noise"]["accuracy_drop"] == pytest.approx(0.3)
    assert rows["FedAvg"]["loss_increase"] is None
    assert "Winner (lowest final loss): FedAvg (FedAvg), final loss 0.3 — a no-attack run" in (
        render_markdown(comparison)
    )


def write_repeats(
    sweep: Path, strategy: str, losses: list[float], attack: str | None = None
) -> None:
    for k, loss in enumerate(losses):
        make_run(sweep, strategy, attack, final_loss=loss, final_accuracy=0.9 - loss / 10, repeat=k)


def test_lowest_loss_cells_within_noise_are_not_called_a_winner(tmp_path: Path) -> None:
    write_repeats(tmp_path, "FedMedian", [0.30, 0.34, 0.32])  # mean 0.32, std 0.02
    write_repeats(tmp_path, "Krum", [0.31, 0.35, 0.33])  # mean 0.33, std 0.02
    write_repeats(tmp_path, "FedAvg", [0.60, 0.61, 0.62])
    comparison = build_comparison(tmp_path)
    rows = by_run(comparison)
    assert rows["FedMedian"]["final_loss"] == pytest.approx(0.32)
    assert rows["FedMedian"]["final_loss_std"] == pytest.approx(0.02)  # ddof=1
    assert comparison["winner"] == "FedMedian"
    assert comparison["winner_within_noise"] is True
    assert comparison["tied_with"] == ["FedMedian", "Krum"]
    two_se = 2 * math.sqrt(2 * 0.02**2 / 3)
    assert f"Krum (Δ=0.01, 2·SE={two_se:.3g}) within noise of it" in render_markdown(comparison)


def test_header_gives_the_full_setting(matrix: Path) -> None:
    header = build_comparison(matrix)["header"]
    assert header["runs_total"] == header["runs_done"] == 9
    assert (header["runs_failed"], header["runs_diverged"]) == (0, 0)
    assert (header["parallel"], header["wall_s"], header["serial_s"]) == (3, 6.0, 18.0)
    assert header["speedup"] == pytest.approx(3.0)
    assert (header["rounds"], header["clients"], header["dataset"], header["model"]) == (
        3,
        10,
        "digits",
        "logreg",
    )
    setting = header["setting"]
    assert setting["partition"] == "iid" and setting["alpha"] is None
    assert (setting["clients_per_round"], setting["fraction_fit"]) == (10, 1.0)
    assert (setting["local_epochs"], setting["batch_size"], setting["lr"]) == (1, 32, 0.1)
    assert setting["test_samples"] == TEST_SAMPLES
    assert setting["byzantine"] == {"gaussian_noise": 1, "label_flipping": 1}
    override = build_comparison(matrix, wall_s=9.0, parallel=2)["header"]
    assert (override["wall_s"], override["parallel"], override["speedup"]) == (9.0, 2, 2.0)


def test_header_names_a_dirichlet_split_and_its_alpha(tmp_path: Path) -> None:
    spec = RunSpec(name="x", strategy="FedAvg", partition="dirichlet", alpha=0.1, fraction_fit=0.5)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "config.json").write_text(json.dumps(spec.to_json()))
    markdown = render_markdown(build_comparison(tmp_path))
    assert "partition dirichlet (α=0.1) · 10 clients, 5 per round (fraction_fit 0.5)" in markdown


# --------------------------------------------------------------------------- caveats


def test_single_repeat_caveat(matrix: Path) -> None:
    caveats = build_comparison(matrix)["caveats"]
    assert any("noise is not measured" in c and "--repeats 3" in c for c in caveats)


def test_too_easy_task_caveat(tmp_path: Path) -> None:
    for strategy, acc in [("FedAvg", 0.940), ("FedMedian", 0.936), ("Krum", 0.932)]:
        make_run(tmp_path, strategy, None, final_accuracy=acc)
        make_run(tmp_path, strategy, "zero", final_accuracy=acc - 0.002)
    caveats = build_comparison(tmp_path)["caveats"]
    assert any("too easy to separate these strategies" in c for c in caveats)


def test_no_too_easy_caveat_when_an_attack_bites(matrix: Path) -> None:
    assert not any("too easy" in c for c in build_comparison(matrix)["caveats"])


def test_a_strategy_configured_for_fewer_byzantine_clients_is_flagged(tmp_path: Path) -> None:
    make_run(tmp_path, "Krum:f=1", None, final_accuracy=0.9)
    make_run(tmp_path, "Krum:f=1", "zero", final_accuracy=0.5, byzantine_per_round=3)
    make_run(tmp_path, "Krum:f=3", None, final_accuracy=0.9)
    make_run(tmp_path, "Krum:f=3", "zero", final_accuracy=0.8, byzantine_per_round=3)
    make_run(tmp_path, "TrimmedMean:beta=0.2", "zero", final_accuracy=0.8, byzantine_per_round=3)
    caveats = build_comparison(tmp_path)["caveats"]
    flagged = [c for c in caveats if "is configured for" in c]
    assert flagged == [
        "Krum is configured for 1 Byzantine client per round, but zero puts up to 3 in a "
        "round: its result under that attack is outside what it is set to tolerate (raise f)",
        "TrimmedMean:beta=0.2 is configured for 2 Byzantine clients per round, but zero puts "
        "up to 3 in a round: its result under that attack is outside what it is set to "
        "tolerate (raise beta)",
    ]


# --------------------------------------------------------------------------- files


def test_failed_runs_are_listed_with_their_error(tmp_path: Path) -> None:
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
    plan = {
        "runs": [
            RunSpec(name=n, strategy=s).to_json()
            for n, s in [("FedAvg", "FedAvg"), ("FedMedian", "FedMedian"), ("Krum", "Krum")]
        ]
        + [{"name": "Bulyan"}],
        "parallel": 2,
    }
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
    incomplete = {s["strategy"]: s["missing"] for s in comparison["recommendation"]["incomplete"]}
    assert incomplete == {
        "FedMedian": ["no attack: run cancelled"],
        "Krum": ["no attack: run pending"],
    }


def test_no_attacks_in_sweep_and_labels_come_from_the_spec(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", final_loss=0.3, final_accuracy=0.95)
    make_run(tmp_path, "krum:f=2", final_loss=0.31, final_accuracy=0.80)
    comparison = build_comparison(tmp_path)
    assert comparison["most_robust"] == {"by_attack": {}, "overall": None}
    assert [row["strategy"] for row in comparison["ranking"]] == ["FedAvg", "Krum:f=2"]
    assert not any("do not validate" in c for c in comparison["caveats"])
    assert comparison["recommendation"]["strategy"] == "FedAvg"
    assert comparison["recommendation"]["reason"].startswith("FedAvg has the best clean accuracy")
    assert "No attacks in this sweep." in render_markdown(comparison)


def test_detection_totals_sum_over_repeats(tmp_path: Path) -> None:
    counts = {"kept_honest": 16, "kept_byzantine": 0, "excluded_honest": 2, "excluded_byzantine": 4}
    for k in range(2):
        make_run(tmp_path, "Krum", "gaussian_noise", repeat=k, detection=counts)
    row = build_comparison(tmp_path)["ranking"][0]
    assert row["detection"] == {k: 2 * v for k, v in counts.items()}


def test_markdown_opens_with_the_recommendation(matrix: Path) -> None:
    markdown = render_markdown(build_comparison(matrix), images=["plots/loss.png"])
    assert "9 runs (9 done, 0 failed)" in markdown
    assert "parallel 3" in markdown and "wall 6.00 s" in markdown
    assert "serial Σ 18.0 s (3.0× speedup)" in markdown
    assert "Byzantine clients: gaussian_noise 1, label_flipping 1" in markdown
    sections = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert sections[:3] == [
        "## Recommendation",
        "## Most robust under each attack",
        "## Every cell",
    ]
    assert "**Recommendation: FedMedian** (decided)" in markdown
    assert (
        "| 1 | FedMedian ← | 86.0% | label_flipping | 89.0% | 88.5% | 86.0% | 1.0 pp | 2.00 s |"
        in markdown
    )
    assert (
        "- gaussian_noise: FedMedian 88.5% (accuracy drop 0.5 pp, Δ loss +0.02 vs its clean run; "
        "FedAvg: 60.0%, drop 30.0 pp, Δ loss +0.6)" in markdown
    )
    assert "| 1 | `FedAvg` | FedAvg | none | 90.0% | 0.3 | 0.5 | – | 2.00 s |" in markdown
    assert markdown.index("## Caveats") < markdown.index("![loss](plots/loss.png)")


def test_console_opens_with_the_recommendation(matrix: Path) -> None:
    text = render_console(build_comparison(matrix), matrix)
    first = text.splitlines()[0]
    assert first.startswith("Recommendation: FedMedian (decided): FedMedian has the best")
    assert "Best under gaussian_noise: FedMedian 88.5%" in text
    assert "Winner (lowest final loss): FedAvg" in text
    assert text.splitlines()[-1] == f"Comparison: {matrix / 'comparison.md'}"


def test_write_comparison_is_atomic_and_rerenders_the_same(matrix: Path) -> None:
    first = write_comparison(matrix)
    saved = json.loads((matrix / "comparison.json").read_text())
    assert saved["recommendation"]["strategy"] == first["recommendation"]["strategy"]
    assert (matrix / "comparison.md").read_text().startswith("# Sweep comparison")
    leftovers = [p.name for p in matrix.iterdir() if p.is_file() and p.name.endswith(".tmp")]
    assert leftovers == []
    second = write_comparison(matrix)  # `velocity compare`: same files, same verdict
    for key in ("recommendation", "header", "ranking", "winner", "most_robust", "caveats"):
        assert first[key] == second[key]


def test_a_stale_config_still_renders_with_raw_labels(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", final_loss=0.3, final_accuracy=0.8)
    name = make_run(tmp_path, "FedMedian", final_loss=0.2, final_accuracy=0.9)
    config_path = tmp_path / name / "config.json"
    config = json.loads(config_path.read_text())
    config["strategy"] = {"type": "RetiredStrategy", "k": 1}  # removed since the sweep ran
    config_path.write_text(json.dumps(config))
    comparison = build_comparison(tmp_path)
    assert comparison["winner"] == "FedMedian"
    assert comparison["ranking"][0]["strategy"] == "RetiredStrategy"
    assert comparison["recommendation"]["strategy"] == "RetiredStrategy"
    assert any("do not validate" in c for c in comparison["caveats"])


def test_an_old_sweep_without_test_sizes_says_its_noise_is_unmeasured(tmp_path: Path) -> None:
    make_run(tmp_path, "FedAvg", final_accuracy=0.90, test_samples=None)
    make_run(tmp_path, "FedMedian", final_accuracy=0.80, test_samples=None)
    comparison = build_comparison(tmp_path)
    assert comparison["recommendation"]["noise_measured"] is False
    assert any("test-set size is unknown" in c for c in comparison["caveats"])
