"""curves.png and robustness.png: checked through the data they were drawn from, not pixels.

A real 48-cell ``velocity sweep`` (8 strategies × 6 conditions, 3 rounds) is shared
by the module: its ``plots.json`` must say one panel per condition and one line per
strategy, the heatmap's worst-case column must be the recommendation's numbers and
the recommended row the one marked. Hand-written run directories (docs/files.md)
pin exact means, stds, attack windows, a diverged run and a broken cell. The last
tests run a real ``velocity sweep`` with matplotlib hidden, to show that plotting
never breaks a sweep.
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

from velocity.report import plots
from velocity.report.comparison import build_comparison
from velocity.report.render import render_all
from velocity.sim.server import ROUND_COLUMNS
from velocity.spec import RunSpec

pytest.importorskip("matplotlib", reason="the plots extra: pip install 'velocity-fl[plots]'")

HIDE_MATPLOTLIB = "import sys; sys.modules['matplotlib'] = None; "
STRATEGIES_48 = (
    "FedAvg,FedProx,FedMedian,TrimmedMean:beta=0.2,Krum,MultiKrum,GeometricMedian,CenteredClipping"
)
ATTACKS_48 = (
    "gaussian_noise:sigma=10,count=2",
    "sign_flipping",
    "alie",
    "zero:start_round=2",
    "label_flipping",
)


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
    diverged_at: int | None = None,
) -> str:
    """One finished run directory (config.json, rounds.csv, summary.json); returns its name.

    With ``diverged_at``, the run broke in that round: rounds.csv stops before it and
    summary.json says ``diverged``, as the runner writes them.
    """
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
    kept = len(losses) if diverged_at is None else diverged_at - 1
    with (run_dir / "rounds.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ROUND_COLUMNS)
        writer.writeheader()
        for r, (loss, acc) in enumerate(zip(losses[:kept], accuracies, strict=False), start=1):
            writer.writerow({"round": r, "num_clients": 10, "global_loss": loss, "accuracy": acc})
    finite = [x for x in losses[:kept] if math.isfinite(x)]
    summary = {
        "name": name,
        "status": "done" if diverged_at is None else "diverged",
        "error": None if diverged_at is None else f"round {diverged_at}: test loss is nan",
        "final_loss": losses[kept - 1] if kept and math.isfinite(losses[kept - 1]) else None,
        "final_accuracy": accuracies[kept - 1] if kept else None,
        "mean_loss": sum(finite) / len(finite) if finite else None,
        "elapsed_s": 1.0,
        "test_samples": 360,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return name


def sweep_cli(*args: str, code: str = "") -> subprocess.CompletedProcess[str]:
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


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """4 strategies × (none, sign_flipping, zero) at 85-95% but FedAvg under sign_flipping,
    which diverged in round 2 (accuracy 0 in the verdict)."""
    finals = {
        "FedAvg": (0.95, None, 0.90),
        "FedMedian": (0.93, 0.91, 0.89),
        "TrimmedMean:beta=0.2": (0.94, 0.92, 0.88),
        "GeometricMedian": (0.92, 0.90, 0.86),
    }
    for strategy, accuracies in finals.items():
        for attack, final in zip((None, "sign_flipping", "zero"), accuracies, strict=True):
            if final is None:
                write_run(
                    tmp_path, strategy, attack, [1.0, math.nan, math.nan], [0.6], diverged_at=2
                )
            else:
                write_run(tmp_path, strategy, attack, [1.0, 0.6, 0.4], [0.7, final - 0.02, final])
    return tmp_path


@pytest.fixture(scope="module")
def sweep48(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real sweep of 8 strategies × (no attack + 5 attacks) = 48 cells, 3 rounds."""
    out = tmp_path_factory.mktemp("plots48") / "sweep"
    attacks = [arg for attack in ATTACKS_48 for arg in ("--attacks", attack)]
    done = sweep_cli(
        "sweep", "--strategies", STRATEGIES_48, *attacks, "--rounds", "3",
        "--partition", "dirichlet", "--alpha", "0.1", "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def panels_by_condition(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {panel["condition"]: panel for panel in data["panels"]}


def lines_by_strategy(panel: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["strategy"]: line for line in panel["lines"]}


def accuracy_cells(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["strategy"], c["column"]): c for c in data["accuracy"]["cells"]}


def drop_cells(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["strategy"], c["attack"]): c for c in data["drop"]["cells"]}


# --------------------------------------------------------------------------- 48 cells


def test_48_cells_curves_one_panel_per_condition_one_line_per_strategy(sweep48: Path) -> None:
    comparison = json.loads((sweep48 / "comparison.json").read_text())
    data = json.loads((sweep48 / "plots.json").read_text())["plots"]["curves.png"]
    assert_sensible_png((sweep48 / "curves.png").read_bytes())
    rec = comparison["recommendation"]
    order = [c["strategy"] for c in rec["candidates"]] + [c["strategy"] for c in rec["incomplete"]]
    attacks = sorted(comparison["most_robust"]["by_attack"])
    assert len(attacks) == 5 and len(comparison["ranking"]) == 48
    assert [p["condition"] for p in data["panels"]] == ["none", *attacks]
    assert [s["strategy"] for s in data["strategies"]] == order
    colours = {s["strategy"]: s["colour"] for s in data["strategies"]}
    assert len(set(colours.values())) == 8  # one colour per strategy ...
    for panel in data["panels"]:
        assert [line["strategy"] for line in panel["lines"]] == order
        for line in panel["lines"]:  # ... the same in every panel
            assert line["colour"] == colours[line["strategy"]]
            assert line["rounds"] == [1, 2, 3] and line["repeats"] == 1
            assert not line["band"]  # one repeat: no band
    assert [s["strategy"] for s in data["strategies"] if s["recommended"]] == [rec["strategy"]]
    # the accuracy axis is zoomed to the data, not 0-100%
    low, high = data["limits"]
    assert 0.0 < low < high <= 1.0 and high - low >= plots.MIN_SPAN
    finals = [line["final_accuracy"] for p in data["panels"] for line in p["lines"]]
    assert high >= max(finals)
    for panel in data["panels"]:
        for line in panel["lines"]:
            assert line["clipped"] == (line["final_accuracy"] < low)
    # zero:start_round=2 is shaded in its own panel only
    windows = {p["condition"]: p["attack_windows"] for p in data["panels"]}
    assert windows.pop("zero:start_round=2") == [[2, 3]]
    assert all(w == [] for w in windows.values())


def test_48_cells_heatmap_worst_case_column_and_the_marked_verdict(sweep48: Path) -> None:
    comparison = json.loads((sweep48 / "comparison.json").read_text())
    data = json.loads((sweep48 / "plots.json").read_text())["plots"]["robustness.png"]
    assert_sensible_png((sweep48 / "robustness.png").read_bytes())
    rec = comparison["recommendation"]
    attacks = sorted(comparison["most_robust"]["by_attack"])
    assert data["columns"] == ["none", *attacks, "worst_case"]
    assert data["strategies"] == [c["strategy"] for c in rec["candidates"]]
    cells = accuracy_cells(data)
    assert len(cells) == 8 * 7
    for score in rec["candidates"]:  # the worst-case column is the recommendation's
        worst = cells[(score["strategy"], "worst_case")]
        assert worst["accuracy"] == pytest.approx(score["worst_case_accuracy"])
        assert worst["accuracy"] == pytest.approx(min(c["accuracy"] for c in score["conditions"]))
    rows = {row["run"]: row for row in comparison["ranking"]}
    for (_, column), cell in cells.items():
        if column != "worst_case":
            assert cell["accuracy"] == pytest.approx(rows[cell["run"]]["final_accuracy"])
    # the recommended row is the one marked, in both panels (they share rows)
    assert data["recommended"] == rec["strategy"]
    assert data["strategies"][data["recommended_row"]] == rec["strategy"]
    assert data["title"].startswith(f"Recommendation: {rec['strategy']}")
    drops = drop_cells(data)
    assert data["drop"]["attacks"] == attacks
    for attack in attacks:
        entry = comparison["most_robust"]["by_attack"][attack]
        assert data["by_attack"][attack] == entry["strategy"]
        for panel in (cells, drops):
            marks = {s: c["mark"] for (s, a), c in panel.items() if a == attack}
            assert [s for s, mark in marks.items() if mark == "best"] == [entry["strategy"]]
            assert {s for s, mark in marks.items() if mark == "tied"} == set(entry["tied_with"])
        row = rows[drops[(entry["strategy"], attack)]["run"]]
        assert drops[(entry["strategy"], attack)]["accuracy_drop"] == row["accuracy_drop"]
    assert all(c["mark"] is None for (_, column), c in cells.items() if column == "none")


# --------------------------------------------------------------------------- exact data


def test_curves_mean_std_and_attack_window(repeated: Path) -> None:
    comparison = build_comparison(repeated)
    plot = plots.plot_curves(repeated, comparison)
    assert plot.file == "curves.png"
    assert_sensible_png(plot.png)
    panels = panels_by_condition(plot.data)
    attack = next(c for c in panels if c != "none")
    assert list(panels) == ["none", attack]
    fedavg = lines_by_strategy(panels["none"])["FedAvg"]
    attacked = lines_by_strategy(panels[attack])["FedAvg"]
    assert fedavg["repeats"] == 2 and fedavg["runs"] == ["FedAvg__r0", "FedAvg__r1"]
    assert fedavg["rounds"] == [1, 2, 3, 4, 5]
    assert fedavg["accuracy_mean"] == pytest.approx([0.49, 0.59, 0.69, 0.79, 0.89])
    assert fedavg["accuracy_std"] == pytest.approx([0.02 / math.sqrt(2)] * 5)
    assert fedavg["band"] and attacked["band"]  # two lines a panel: every band drawn
    assert attacked["accuracy_mean"] == pytest.approx([0.49, 0.59, 0.09, 0.09, 0.19])
    assert attacked["colour"] == fedavg["colour"]
    assert fedavg["colour"] != lines_by_strategy(panels["none"])["FedMedian"]["colour"]
    assert panels[attack]["attack_windows"] == [[3, 4]]
    assert panels["none"]["attack_windows"] == []
    assert plot.data["rounds"] == 5 and plot.data["repeats"] == 2
    # FedAvg under the attack ends far below the rest: clipped, the axis zoomed to the rest
    low, _ = plot.data["limits"]
    assert attacked["clipped"] and 0.19 < low < 0.7


def test_an_attack_over_every_round_is_not_shaded(tmp_path: Path) -> None:
    write_run(tmp_path, "FedAvg", None, [1.0, 0.5, 0.4], [0.5, 0.7, 0.8])
    write_run(tmp_path, "FedAvg", "sign_flipping", [1.0, 0.9, 0.8], [0.5, 0.55, 0.6])
    data = plots.plot_curves(tmp_path, build_comparison(tmp_path)).data
    assert [p["attack_windows"] for p in data["panels"]] == [[], []]
    # one repeat: no band
    assert all(s is None for p in data["panels"] for ln in p["lines"] for s in ln["accuracy_std"])


def test_a_crowded_panel_draws_only_the_recommended_band(tmp_path: Path) -> None:
    strategies = ["FedAvg", "FedMedian", "Krum:f=1", "TrimmedMean:beta=0.2"]
    strategies += ["GeometricMedian", "CenteredClipping"]
    for k, strategy in enumerate(strategies):
        for repeat in (0, 1):
            final = 0.9 - 0.01 * k - 0.02 * repeat
            write_run(tmp_path, strategy, None, [1.0, 0.5], [0.6, final], repeat=repeat)
    comparison = build_comparison(tmp_path)
    (panel,) = plots.plot_curves(tmp_path, comparison).data["panels"]
    assert len(panel["lines"]) == 6 > plots.MAX_BANDS
    banded = [line["strategy"] for line in panel["lines"] if line["band"]]
    assert banded == [comparison["recommendation"]["strategy"]]
    assert all(line["accuracy_std"][-1] is not None for line in panel["lines"])


def test_lowest_inlier_drops_only_far_low_values() -> None:
    assert plots.lowest_inlier([0.0, 0.85, 0.88, 0.9, 0.92, 0.95]) == 0.85
    assert plots.lowest_inlier([0.1, 0.85, 0.9, 0.92]) == 0.85  # one broken of four
    assert plots.lowest_inlier([0.2, 0.2, 0.2, 0.8, 0.8, 0.9]) == 0.2  # half the values: data
    assert plots.lowest_inlier([0.0, 0.9]) == 0.0  # too few values to call one an outlier


def test_a_broken_cell_does_not_set_the_colour_scale(broken: Path) -> None:
    comparison = build_comparison(broken)
    rec = comparison["recommendation"]
    fedavg = next(c for c in rec["candidates"] if c["strategy"] == "FedAvg")
    assert fedavg["worst_case_accuracy"] == 0.0  # the diverged run counts as broken
    plot = plots.plot_robustness(comparison)
    assert_sensible_png(plot.png)
    data = plot.data
    cells = accuracy_cells(data)
    assert cells[("FedAvg", "sign_flipping")]["accuracy"] == 0.0
    assert cells[("FedAvg", "sign_flipping")]["diverged"] == 1
    assert cells[("FedAvg", "worst_case")]["accuracy"] == 0.0
    low, high = data["accuracy"]["limits"]
    assert high == pytest.approx(0.95)
    assert low == pytest.approx(0.85)  # the lowest healthy cell, 10 pp below the top
    assert data["accuracy"]["extend"] == "min"  # 0% is beyond the scale, not its end
    # the drop panel: FedAvg's drop (95 pp) is beyond the scale too
    drops = drop_cells(data)
    assert drops[("FedAvg", "sign_flipping")]["accuracy_drop"] == pytest.approx(0.95)
    top = data["drop"]["limits"][1]
    assert data["drop"]["limits"] == [-top, top]
    assert top == pytest.approx(0.06)  # the largest healthy drop: GeometricMedian, zero
    assert data["drop"]["extend"] == "max"
    # the recommended row is the best worst case, last the broken FedAvg
    assert data["strategies"][data["recommended_row"]] == rec["strategy"] != "FedAvg"
    assert data["strategies"][-1] == "FedAvg"


def test_a_diverged_run_plots_as_zero_from_the_round_it_broke(broken: Path) -> None:
    comparison = build_comparison(broken)
    assert [d["run"] for d in comparison["diverged"]] == ["FedAvg__sign_flipping"]
    plot = plots.plot_curves(broken, comparison)
    assert_sensible_png(plot.png)
    line = lines_by_strategy(panels_by_condition(plot.data)["sign_flipping"])["FedAvg"]
    assert line["rounds"] == [1, 2, 3]
    assert line["accuracy_mean"] == [0.6, 0.0, 0.0]
    assert line["diverged"] == 1 and line["clipped"]
    low, _ = plot.data["limits"]
    assert low > 0.7  # zoomed to the healthy runs


def test_an_old_style_diverged_run_still_plots(tmp_path: Path) -> None:
    """A run written before velocity had a diverged state: done, with non-finite losses."""
    write_run(tmp_path, "FedAvg", None, [1.0, 0.5, 0.4], [0.5, 0.7, 0.8])
    write_run(tmp_path, "FedAvg", "sign_flipping", [1.0, math.inf, math.nan], [0.5, 0.1, 0.1])
    comparison = build_comparison(tmp_path)
    curves = plots.plot_curves(tmp_path, comparison)
    assert_sensible_png(curves.png)
    line = lines_by_strategy(panels_by_condition(curves.data)["sign_flipping"])["FedAvg"]
    assert line["accuracy_mean"] == [0.5, 0.0, 0.0]
    robustness = plots.plot_robustness(comparison)
    assert_sensible_png(robustness.png)
    assert accuracy_cells(robustness.data)[("FedAvg", "sign_flipping")]["diverged"] == 1


def test_an_incomplete_strategy_comes_last_without_a_worst_case(tmp_path: Path) -> None:
    write_run(tmp_path, "FedAvg", None, [1.0, 0.5], [0.5, 0.9])
    write_run(tmp_path, "FedAvg", "zero", [1.0, 0.6], [0.5, 0.8])
    write_run(tmp_path, "FedMedian", None, [1.0, 0.5], [0.5, 0.95])  # no run under zero
    comparison = build_comparison(tmp_path)
    data = plots.plot_robustness(comparison).data
    assert data["strategies"] == ["FedAvg", "FedMedian"]
    assert data["incomplete"] == ["FedMedian"]
    cells = accuracy_cells(data)
    assert cells[("FedMedian", "worst_case")]["accuracy"] is None
    assert cells[("FedMedian", "zero")]["accuracy"] is None
    assert cells[("FedAvg", "worst_case")]["accuracy"] == pytest.approx(0.8)
    curves = plots.plot_curves(tmp_path, comparison).data
    assert [s["label"] for s in curves["strategies"]] == [
        "1. FedAvg (recommended)",
        "FedMedian (incomplete)",
    ]
    assert [ln["strategy"] for ln in panels_by_condition(curves)["zero"]["lines"]] == ["FedAvg"]


def test_baselines_only_draw_one_panel_each(tmp_path: Path) -> None:
    write_run(tmp_path, "FedAvg", None, [1.0, 0.5], [0.5, 0.8])
    write_run(tmp_path, "Krum:f=1", None, [1.0, 0.6], [0.5, 0.7])
    comparison = build_comparison(tmp_path)
    plot = plots.plot_robustness(comparison)
    assert_sensible_png(plot.png)
    assert plot.data["columns"] == ["none", "worst_case"]
    assert plot.data["drop"] is None and plot.data["by_attack"] == {}
    curves = plots.plot_curves(tmp_path, comparison)
    assert_sensible_png(curves.png)
    assert [p["condition"] for p in curves.data["panels"]] == ["none"]


def test_a_comparison_without_a_recommendation_still_draws(repeated: Path) -> None:
    """The MCP server draws the heatmap of an older sweep's comparison.json."""
    comparison = build_comparison(repeated)
    del comparison["recommendation"]
    plot = plots.plot_robustness(comparison)
    assert_sensible_png(plot.png)
    assert plot.data["columns"] == plot.data["conditions"]  # no worst-case column
    assert plot.data["recommended_row"] is None and plot.data["title"] == ""
    assert_sensible_png(plots.plot_curves(repeated, comparison).png)


# --------------------------------------------------------------------------- writing


def test_write_plots_writes_pngs_and_data(repeated: Path) -> None:
    written, notes, failures = plots.write_plots(repeated, build_comparison(repeated))
    assert notes == failures == []
    assert [p.file for p in written] == ["curves.png", "robustness.png"]
    for plot in written:
        assert (repeated / plot.file).read_bytes() == plot.png
    data = json.loads((repeated / "plots.json").read_text())
    assert set(data["plots"]) == {"curves.png", "robustness.png"}
    assert [len(p["lines"]) for p in data["plots"]["curves.png"]["panels"]] == [2, 2]
    assert data["plots"] == json.loads(json.dumps({p.file: p.data for p in written}))


def test_missing_matplotlib_is_a_note_and_removes_stale_pictures(
    repeated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repeated / "curves.png").write_bytes(b"old picture")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    written, notes, failures = plots.write_plots(repeated, build_comparison(repeated))
    assert written == []
    assert (
        notes
        == failures
        == ["plots not rendered: matplotlib is not installed (pip install 'velocity-fl[plots]')"]
    )
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
    assert rendered.notes == rendered.failures == ["curves.png not rendered: RuntimeError: boom"]
    saved = json.loads((repeated / "comparison.json").read_text())
    assert saved["caveats"][-1] == "curves.png not rendered: RuntimeError: boom"
    assert (repeated / "report.html").is_file()


def test_render_all_links_the_pictures(repeated: Path) -> None:
    rendered = render_all(repeated)
    assert rendered.notes == []
    assert [p.name for p in rendered.files] == [
        "results.csv",
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
    assert rendered.failures == []  # nothing to draw is a fact, not a failure
    assert (tmp_path / "report.html").is_file()


def test_sweep_without_matplotlib_completes_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = sweep_cli(
        "sweep", "--strategies", "FedAvg", "--attacks", "zero", "--rounds", "2",
        "--clients", "4", "--out", str(out), code=HIDE_MATPLOTLIB,
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
    again = sweep_cli("report", str(out), code=HIDE_MATPLOTLIB)
    assert again.returncode == 1
    assert "plots not rendered: matplotlib is not installed" in again.stderr
    fixed = sweep_cli("report", str(out))
    assert fixed.returncode == 0, fixed.stderr
    assert_sensible_png((out / "robustness.png").read_bytes())
    assert "plots not rendered" not in (out / "comparison.md").read_text()
