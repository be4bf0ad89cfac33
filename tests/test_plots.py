"""curves.png and robustness.png: checked through the data they were drawn from, not pixels.

Sweeps here are hand-written run directories (docs/files.md), so every mean, std and
attack window is known. The last tests run a real ``velocity sweep`` with matplotlib
hidden, to show that plotting never breaks a sweep.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from velocity import plots
from velocity.report import build_comparison, render_all
from velocity.server import ROUND_COLUMNS
from velocity.spec import RunSpec

pytest.importorskip("matplotlib", reason="the plots extra: pip install 'velocity-fl[plots]'")

HIDE_MATPLOTLIB = "import sys; sys.modules['matplotlib'] = None; "


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; fails on anything that is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    assert data[12:16] == b"IHDR", "first chunk is not IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def assert_sensible_png(data: bytes) -> None:
    width, height = png_size(data)
    assert width > 200 and height > 200, (width, height)
    assert data.endswith(b"IEND\xaeB`\x82"), "truncated PNG"


def write_run(
    sweep: Path,
    strategy: str,
    attack: str | None,
    losses: list[float],
    accuracies: list[float],
    *,
    repeat: int | None = None,
) -> str:
    """One finished run directory (config.json, rounds.csv, summary.json); returns its name."""
    base = "__".join([strategy.replace(":", "-"), *([attack.split(":")[0]] if attack else [])])
    name = base if repeat is None else f"{base}__r{repeat}"
    spec = RunSpec(
        name=name,
        strategy=strategy,
        attacks=[attack] if attack else [],
        rounds=len(losses),
        clients=10,
        seed=42 + (repeat or 0),
        repeat=repeat or 0,
    )
    run_dir = sweep / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(spec.to_json()))
    with (run_dir / "rounds.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ROUND_COLUMNS)
        writer.writeheader()
        for r, (loss, acc) in enumerate(zip(losses, accuracies, strict=True), start=1):
            writer.writerow({"round": r, "num_clients": 10, "global_loss": loss, "accuracy": acc})
    finite = [x for x in losses if math.isfinite(x)]
    summary = {
        "name": name,
        "status": "done",
        "error": None,
        "final_loss": losses[-1] if math.isfinite(losses[-1]) else None,
        "final_accuracy": accuracies[-1],
        "mean_loss": sum(finite) / len(finite) if finite else None,
        "elapsed_s": 1.0,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return name


WINDOW = "gaussian_noise:sigma=10,fraction=0.2,start_round=3,end_round=4"


@pytest.fixture
def repeated(tmp_path: Path) -> Path:
    """FedAvg and FedMedian × (none, gaussian_noise in rounds 3-4), 2 repeats, 5 rounds."""
    shapes = {
        ("FedAvg", None): ([1.0, 0.8, 0.6, 0.5, 0.4], [0.5, 0.6, 0.7, 0.8, 0.9]),
        ("FedAvg", WINDOW): ([1.0, 0.8, 9.0, 12.0, 8.0], [0.5, 0.6, 0.1, 0.1, 0.2]),
        ("FedMedian", None): ([1.1, 0.9, 0.7, 0.6, 0.5], [0.5, 0.6, 0.7, 0.8, 0.85]),
        ("FedMedian", WINDOW): ([1.1, 0.9, 0.8, 0.7, 0.6], [0.5, 0.6, 0.65, 0.75, 0.8]),
    }
    for (strategy, attack), (losses, accs) in shapes.items():
        for repeat in (0, 1):
            shift = 0.1 * repeat  # repeat 1 is 0.1 worse in loss, 0.02 in accuracy
            write_run(
                tmp_path,
                strategy,
                attack,
                [x + shift for x in losses],
                [a - 0.02 * repeat for a in accs],
                repeat=repeat,
            )
    (tmp_path / "plan.json").write_text(json.dumps({"runs": [], "parallel": 2, "repeats": 2}))
    (tmp_path / "status.json").write_text(json.dumps({"state": "done", "elapsed_s": 3.0}))
    return tmp_path


def lines_by_cell(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["cell"]: line for line in data["lines"]}


def test_curves_one_line_per_cell_with_mean_std_and_attack_window(repeated: Path) -> None:
    comparison = build_comparison(repeated)
    plot = plots.plot_curves(repeated, comparison)
    assert plot.file == "curves.png"
    assert_sensible_png(plot.png)
    lines = lines_by_cell(plot.data)
    assert set(lines) == {row["run"] for row in comparison["ranking"]}
    assert len(lines) == 4
    fedavg = lines["FedAvg"]
    attacked = lines["FedAvg__gaussian_noise"]
    assert fedavg["repeats"] == 2 and fedavg["runs"] == ["FedAvg__r0", "FedAvg__r1"]
    assert fedavg["rounds"] == [1, 2, 3, 4, 5]
    assert fedavg["loss_mean"] == pytest.approx([1.05, 0.85, 0.65, 0.55, 0.45])
    assert fedavg["loss_std"] == pytest.approx([0.1 / math.sqrt(2)] * 5)
    assert fedavg["accuracy_mean"] == pytest.approx([0.49, 0.59, 0.69, 0.79, 0.89])
    # attacked runs: the strategy's colour, a dashed or dotted line, its attack window
    assert not fedavg["attacked"] and fedavg["linestyle"] == "-"
    assert attacked["attacked"] and attacked["linestyle"] != "-"
    assert attacked["colour"] == fedavg["colour"] != lines["FedMedian"]["colour"]
    assert attacked["attack_windows"] == [[3, 4]]
    assert plot.data["attack_windows"] == [
        {"first": 3, "last": 4, "cells": ["FedAvg__gaussian_noise", "FedMedian__gaussian_noise"]}
    ]
    assert plot.data["rounds"] == 5
    assert plot.data["loss_scale"] == "log"  # 0.45 .. 12.1 spans more than 20x


def test_an_attack_over_every_round_is_not_shaded(tmp_path: Path) -> None:
    write_run(tmp_path, "FedAvg", None, [1.0, 0.5, 0.4], [0.5, 0.7, 0.8])
    write_run(tmp_path, "FedAvg", "sign_flipping", [1.0, 0.9, 0.8], [0.5, 0.55, 0.6])
    data = plots.plot_curves(tmp_path, build_comparison(tmp_path)).data
    line = lines_by_cell(data)["FedAvg__sign_flipping"]
    assert line["attack_windows"] == [[1, 3]]
    assert data["attack_windows"] == []
    assert data["loss_scale"] == "linear"
    # one repeat: no band
    assert all(s is None for ln in data["lines"] for s in ln["loss_std"] + ln["accuracy_std"])


def test_robustness_cells_best_and_most_robust(repeated: Path) -> None:
    comparison = build_comparison(repeated)
    plot = plots.plot_robustness(comparison)
    assert plot.file == "robustness.png"
    assert_sensible_png(plot.png)
    data = plot.data
    attack = next(a for a in data["attacks"] if a != "none")
    assert data["attacks"] == ["none", attack]
    assert set(data["strategies"]) == {"FedAvg", "FedMedian"}
    cells = {(c["strategy"], c["attack"]): c for c in data["cells"]}
    assert len(cells) == 4
    assert cells[("FedAvg", "none")]["final_accuracy"] == pytest.approx(0.89)
    assert cells[("FedAvg", attack)]["final_accuracy"] == pytest.approx(0.19)
    assert cells[("FedAvg", attack)]["loss_increase"] == pytest.approx(8.0 - 0.4)
    assert cells[("FedMedian", attack)]["loss_increase"] == pytest.approx(0.1)
    # best accuracy per attack column, and the verdict's most robust strategy
    assert data["best_accuracy"] == {"none": ["FedAvg"], attack: ["FedMedian"]}
    assert cells[("FedMedian", attack)]["best_accuracy"]
    assert data["most_robust"] == {attack: "FedMedian"}
    assert comparison["most_robust"]["by_attack"][attack]["strategy"] == "FedMedian"
    assert cells[("FedMedian", attack)]["most_robust"]
    assert not cells[("FedAvg", attack)]["most_robust"]


def test_baselines_only_draws_one_panel(tmp_path: Path) -> None:
    write_run(tmp_path, "FedAvg", None, [1.0, 0.5], [0.5, 0.8])
    write_run(tmp_path, "Krum:f=1", None, [1.0, 0.6], [0.5, 0.7])
    plot = plots.plot_robustness(build_comparison(tmp_path))
    assert_sensible_png(plot.png)
    assert plot.data["attacks"] == ["none"]
    assert plot.data["most_robust"] == {}
    assert plot.data["best_accuracy"] == {"none": ["FedAvg"]}


def test_diverged_run_still_plots(tmp_path: Path) -> None:
    write_run(tmp_path, "FedAvg", None, [1.0, 0.5, 0.4], [0.5, 0.7, 0.8])
    write_run(tmp_path, "FedAvg", "sign_flipping", [1.0, math.inf, math.nan], [0.5, 0.1, 0.1])
    comparison = build_comparison(tmp_path)
    curves = plots.plot_curves(tmp_path, comparison)
    assert_sensible_png(curves.png)
    assert lines_by_cell(curves.data)["FedAvg__sign_flipping"]["loss_mean"] == [1.0, None, None]
    assert_sensible_png(plots.plot_robustness(comparison).png)


def test_write_plots_writes_pngs_and_data(repeated: Path) -> None:
    written, notes = plots.write_plots(repeated, build_comparison(repeated))
    assert notes == []
    assert [p.file for p in written] == ["curves.png", "robustness.png"]
    for plot in written:
        assert (repeated / plot.file).read_bytes() == plot.png
    data = json.loads((repeated / "plots.json").read_text())
    assert set(data["plots"]) == {"curves.png", "robustness.png"}
    assert len(data["plots"]["curves.png"]["lines"]) == 4


def test_missing_matplotlib_is_a_note_and_removes_stale_pictures(
    repeated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repeated / "curves.png").write_bytes(b"old picture")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    written, notes = plots.write_plots(repeated, build_comparison(repeated))
    assert written == []
    assert notes == [
        "plots not rendered: matplotlib is not installed (pip install 'velocity-fl[plots]')"
    ]
    assert not (repeated / "curves.png").exists()
    assert not (repeated / "robustness.png").exists()


def test_a_failing_plot_becomes_a_caveat(repeated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(plots, "plot_curves", boom)
    rendered = render_all(repeated)
    markdown = (repeated / "comparison.md").read_text()
    assert "- curves.png not rendered: RuntimeError: boom" in markdown
    assert "![robustness](robustness.png)" in markdown
    assert "curves.png)" not in markdown
    assert rendered.notes == ["curves.png not rendered: RuntimeError: boom"]
    saved = json.loads((repeated / "comparison.json").read_text())
    assert saved["caveats"][-1] == "curves.png not rendered: RuntimeError: boom"
    assert (repeated / "report.html").is_file()


def test_render_all_links_the_pictures(repeated: Path) -> None:
    rendered = render_all(repeated)
    assert rendered.notes == []
    assert [p.name for p in rendered.files] == [
        "curves.png",
        "robustness.png",
        "plots.json",
        "report.html",
        "comparison.json",
        "comparison.md",
    ]
    markdown = (repeated / "comparison.md").read_text()
    assert "## Plots" in markdown
    assert "![curves](curves.png)" in markdown and "![robustness](robustness.png)" in markdown


def test_nothing_finished_is_a_note(tmp_path: Path) -> None:
    run = tmp_path / "FedAvg"
    run.mkdir()
    spec = RunSpec(name="FedAvg", strategy="FedAvg", rounds=2)
    (run / "config.json").write_text(json.dumps(spec.to_json()))
    (run / "summary.json").write_text(json.dumps({"status": "failed", "error": "bad"}))
    rendered = render_all(tmp_path)
    assert rendered.plots == []
    assert "curves.png not rendered: no finished run has per-round results" in rendered.notes
    assert "robustness.png not rendered: no cell finished" in rendered.notes
    assert (tmp_path / "report.html").is_file()


def _cli(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            code + "from velocity.cli import main; raise SystemExit(main())",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_sweep_without_matplotlib_completes_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = _cli(
        HIDE_MATPLOTLIB,
        "sweep", "--strategies", "FedAvg", "--attacks", "zero", "--rounds", "2",
        "--clients", "4", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    markdown = (out / "comparison.md").read_text()
    assert (
        "- plots not rendered: matplotlib is not installed (pip install 'velocity-fl[plots]')"
        in markdown
    )
    assert "## Plots" not in markdown
    assert not (out / "curves.png").exists() and not (out / "robustness.png").exists()
    assert (out / "report.html").is_file()
    assert json.loads((out / "status.json").read_text())["state"] == "done"
    # `velocity report` says what it could not draw and exits 1; with matplotlib, 0
    again = _cli(HIDE_MATPLOTLIB, "report", str(out))
    assert again.returncode == 1
    assert "plots not rendered: matplotlib is not installed" in again.stderr
    fixed = _cli("", "report", str(out))
    assert fixed.returncode == 0, fixed.stderr
    assert_sensible_png((out / "robustness.png").read_bytes())
    assert "plots not rendered" not in (out / "comparison.md").read_text()
