"""The pictures of a sweep: ``curves.png`` and ``robustness.png``, from files only.

Both figures are drawn from a small dict that is returned (and written to
``plots.json``) so the data behind every line and cell can be checked without
comparing pixels. Strategies appear in the recommendation's order everywhere: the
complete candidates by rank, then the incomplete ones; conditions as "no attack",
then the attacks sorted.

- :func:`plot_curves` (small multiples): one panel per condition, one line per
  strategy (the mean over its finished repeats, with a ± standard-deviation band
  when it has more than one; in a panel of more than :data:`MAX_BANDS` lines, only
  the recommended strategy's band), each strategy one colour in every panel and the
  recommended one drawn thicker, one shared legend to the right of the grid (at
  most :data:`MAX_COLUMNS` panels a row). Rounds in which an attack is active (its
  ``start_round``..``end_round`` window, inclusive) are shaded when the window does
  not span every round. Only **test accuracy** is drawn: it is what the
  recommendation and the heatmap use (each cell's loss is in the cell table). A
  diverged repeat counts as accuracy 0 from the round it broke, as in the verdict.
  **Zoom**: every panel shares one accuracy axis, fitted to the later half of the
  rounds (where the verdict's final values sit) without its low outliers (values
  more than 3 scaled MADs below the median: :func:`lowest_inlier`), at least
  :data:`MIN_SPAN` (10 pp) tall and padded; so 85–95 % curves are not flattened by
  one broken run, and differences within noise are not blown up. A line whose
  final value lies below the axis is clipped, marked ▼ on the bottom edge in its
  colour and listed under the panel with its final value (or "diverged").
- :func:`plot_robustness`: a strategy × condition heatmap of mean final accuracy
  with a **worst-case** column (the recommendation's per-strategy worst case,
  missing for incomplete strategies); beside it, when there are attacks, the
  **accuracy drop** of each attacked cell against the same strategy's clean run
  (positive = worse, as ``accuracy_drop`` in ``comparison.json``). Both panels
  mark the same verdict: the recommended row is boxed (and its label is bold,
  ▶), the best strategy under each attack (``most_robust.by_attack``) is ★ and
  those within noise of it ☆; a diverged cell reads "diverged" (or "k/n div").
  **Colour scales** ignore outliers by the same rule (low accuracies; large
  absolute drops) and are at least 10 pp wide (drops: ±5 pp): cells beyond the
  limits take a darker shade of the end colour and the colour bar is extended, so
  one 0 % cell does not wash out the differences between the rest.

matplotlib (the ``plots`` extra) is imported lazily, and only its object API with
the Agg canvas is used (no ``pyplot``, so no global state and no GUI backend: safe
in worker threads). :func:`write_plots` is what a sweep calls: it never raises;
a plot that cannot be drawn becomes a note such as ``plots not rendered:
matplotlib is not installed (pip install 'velocity-fl[plots]')``.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velocity.report.fmt import pct, pp
from velocity.report.markdown import recommendation_title
from velocity.spec import NO_ATTACK
from velocity.sweepdir import files, names

CURVES = names.CURVES
ROBUSTNESS = names.ROBUSTNESS
DATA_FILE = names.PLOTS
INSTALL_HINT = "pip install 'velocity-fl[plots]'"
DPI = 100
#: The column id of the heatmap's worst-case column.
WORST_CASE = "worst_case"
#: Panels per row of ``curves.png``.
MAX_COLUMNS = 4
#: Beyond this many lines in a panel, only the recommended strategy's ± std band is
#: drawn (a dozen overlapping bands hide every line).
MAX_BANDS = 5
#: The narrowest accuracy axis and colour scale, and the smallest drop scale (±): a
#: few points of accuracy are within the noise of a small test set, and must not look
#: like the difference between the two ends of a colour map.
MIN_SPAN = 0.10
MIN_DROP = 0.05

#: tab10, then tab20's light shades: one colour per strategy (then again, dashed).
COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
)
LINESTYLES = ("-", "--", ":", "-.")
#: The heatmaps' colour maps, with the darker colours of values below / above their limits.
BEYOND = {"RdYlGn": ("#4a0014", "#00331a"), "RdYlGn_r": ("#00331a", "#4a0014")}


class NothingToPlotError(ValueError):
    """The comparison has nothing this plot can show (e.g. no run finished)."""


@dataclass(frozen=True)
class Plot:
    """One rendered figure: its file name, title, PNG bytes and the data it was drawn from."""

    file: str
    title: str
    png: bytes
    data: dict[str, Any]


# --------------------------------------------------------------------------- data


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    finite = [v for v in values if v is not None]
    if not finite:
        return None, None
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else None)


def attack_windows(config: Mapping[str, Any]) -> list[tuple[int, int]]:
    """The ``(first, last)`` rounds (inclusive) in which each attack of a run config is active.

    >>> attack_windows({"rounds": 8, "attacks": [{"type": "zero", "params": {"start_round": 3}}]})
    [(3, 8)]
    """
    rounds = config.get("rounds")
    total = int(rounds) if isinstance(rounds, int) else None
    windows = []
    for attack in config.get("attacks") or []:
        params = (attack.get("params") or {}) if isinstance(attack, Mapping) else {}
        start = params.get("start_round")
        end = params.get("end_round")
        first = int(start) if isinstance(start, int) and start > 1 else 1
        last = int(end) if isinstance(end, int) else total
        if last is None:
            continue
        if total is not None:
            last = min(last, total)
        if first <= last:
            windows.append((first, last))
    return windows


def lowest_inlier(values: Iterable[float]) -> float:
    """The smallest value not far below the rest: at most 3 scaled MADs below the median.

    Hampel's rule (MAD: the median absolute deviation, × 1.4826 to match a standard
    deviation) breaks down only when half the values are outliers, so one broken
    strategy out of four is still left out, while a cluster of half the values is data.

    >>> lowest_inlier([0.0, 0.85, 0.88, 0.9, 0.92, 0.95])
    0.85
    """
    ordered = sorted(values)
    median = statistics.median(ordered)
    mad = statistics.median(abs(v - median) for v in ordered)
    fence = median - 3 * 1.4826 * mad
    return next(v for v in ordered if v >= fence)


def _recommendation(comparison: Mapping[str, Any]) -> Mapping[str, Any]:
    """The comparison's recommendation (``{}`` for a comparison from an older velocity)."""
    return comparison.get("recommendation") or {}


def strategy_order(comparison: Mapping[str, Any]) -> list[str]:
    """The recommendation's candidates by rank, its incomplete strategies, then any other."""
    rec = _recommendation(comparison)
    order: list[str] = []
    for score in [*(rec.get("candidates") or []), *(rec.get("incomplete") or [])]:
        if score["strategy"] not in order:
            order.append(score["strategy"])
    for row in comparison.get("ranking") or []:
        if row["strategy"] not in order:
            order.append(row["strategy"])
    return order


def conditions(comparison: Mapping[str, Any]) -> list[str]:
    """``"none"`` first (when it ran or was planned), then every attack of the sweep, sorted."""
    ranking = comparison.get("ranking") or []
    by_attack = (comparison.get("most_robust") or {}).get("by_attack") or {}
    attacks = {row["attack"] for row in ranking} | set(by_attack)
    rec = _recommendation(comparison)
    scores = [*(rec.get("candidates") or []), *(rec.get("incomplete") or [])]
    has_none = NO_ATTACK in attacks or bool(scores)
    return ([NO_ATTACK] if has_none else []) + sorted(attacks - {NO_ATTACK})


def _shown_rows(comparison: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The ranking row shown for each (strategy, condition): the best-ranked one."""
    shown: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in comparison.get("ranking") or []:
        shown.setdefault((row["strategy"], row["attack"]), row)
    return shown


def _total_rounds(comparison: Mapping[str, Any]) -> int | None:
    rounds = (comparison.get("header") or {}).get("rounds")
    return rounds if isinstance(rounds, int) else None


def _run_series(
    sweep_dir: Path, run: str, diverged: bool, total: int | None
) -> dict[int, float | None]:
    """A run's accuracy per round; a diverged run counts 0 from the round it broke on."""
    accuracy: dict[int, float | None] = dict(files.round_accuracy(files.run_dir(sweep_dir, run)))
    if diverged:
        last = max([total or 0, *accuracy])
        accuracy = {r: accuracy.get(r, 0.0) for r in range(1, last + 1)}
    return accuracy


def _curve_line(
    sweep_dir: Path, row: Mapping[str, Any], diverged_runs: set[str], total: int | None
) -> dict[str, Any] | None:
    """One strategy's line in one panel: the per-round mean ± std over the cell's repeats."""
    runs = list(row["runs"])
    per_run = [_run_series(sweep_dir, run, run in diverged_runs, total) for run in runs]
    rounds = sorted(set().union(*per_run))
    if not rounds:
        return None
    stats = [_mean_std([series.get(r) for series in per_run]) for r in rounds]
    return {
        "strategy": row["strategy"],
        "cell": row["run"],
        "runs": runs,
        "repeats": len(runs),
        "diverged": int(row.get("diverged") or 0),
        "rounds": rounds,
        "accuracy_mean": [m for m, _ in stats],
        "accuracy_std": [s for _, s in stats],
        "final_accuracy": stats[-1][0],
        "attack_windows": [
            list(w)
            for w in attack_windows(files.read_optional_config(files.run_dir(sweep_dir, runs[0])))
        ],
    }


def _curve_limits(lines: Sequence[Mapping[str, Any]], total: int) -> tuple[float, float]:
    """The shared accuracy axis: the later half of the rounds, low outliers left out, padded."""
    late = [
        m
        for line in lines
        for r, m in zip(line["rounds"], line["accuracy_mean"], strict=True)
        if m is not None and r > total / 2
    ]
    if not late:
        return 0.0, 1.0
    high = max(late)
    low = min(lowest_inlier(late), high - MIN_SPAN)
    pad = 0.08 * (high - low)
    return max(0.0, low - pad), min(1.0, high + pad)


def _strategy_styles(comparison: Mapping[str, Any], strategies: Sequence[str]) -> list[dict]:
    """Colour, line style and legend label of each strategy (the same in every panel)."""
    rec = _recommendation(comparison)
    ranks = {c["strategy"]: c["rank"] for c in rec.get("candidates") or []}
    incomplete = {c["strategy"] for c in rec.get("incomplete") or []}
    out = []
    for i, strategy in enumerate(strategies):
        label = f"{ranks[strategy]}. {strategy}" if strategy in ranks else strategy
        if strategy in incomplete:
            label += " (incomplete)"
        recommended = strategy == rec.get("strategy")
        out.append(
            {
                "strategy": strategy,
                "label": label + (" (recommended)" if recommended else ""),
                "colour": COLOURS[i % len(COLOURS)],
                "linestyle": LINESTYLES[(i // len(COLOURS)) % len(LINESTYLES)],
                "recommended": recommended,
            }
        )
    return out


def curve_data(sweep_dir: Path, comparison: Mapping[str, Any]) -> dict[str, Any]:
    """What :func:`plot_curves` draws: one panel per condition, one line per strategy.

    Returns ``{"metric": "accuracy", "rounds": int | None, "repeats": int,
    "limits": [low, high], "strategies": [{"strategy", "label", "colour",
    "linestyle", "recommended"}], "panels": [{"condition", "attack_windows":
    [[first, last]], "lines": [{"strategy", "cell", "runs", "repeats",
    "diverged", "colour", "linestyle", "rounds", "accuracy_mean", "accuracy_std",
    "final_accuracy", "clipped", "band"}]}]}``. Accuracies are fractions; ``limits``
    is the shared accuracy axis (see the module doc), ``clipped`` says a line's final
    value lies below it and ``band`` that its ± std band is drawn. ``accuracy_std``
    entries are null where fewer than two repeats have a value; a panel's
    ``attack_windows`` lists only windows that do not span every round (the shaded
    ones).
    """
    sweep_dir = Path(sweep_dir)
    strategies = strategy_order(comparison)
    styles = {s["strategy"]: s for s in _strategy_styles(comparison, strategies)}
    shown = _shown_rows(comparison)
    diverged_runs = {d["run"] for d in comparison.get("diverged") or []}
    total = _total_rounds(comparison)
    panels: list[dict[str, Any]] = []
    for condition in conditions(comparison):
        lines: list[dict[str, Any]] = []
        for strategy in strategies:
            row = shown.get((strategy, condition))
            line = None if row is None else _curve_line(sweep_dir, row, diverged_runs, total)
            if line is not None:
                style = styles[strategy]
                lines.append({**line, "colour": style["colour"], "linestyle": style["linestyle"]})
        panels.append({"condition": condition, "lines": lines})
    every = [line for panel in panels for line in panel["lines"]]
    total = total or max((line["rounds"][-1] for line in every), default=None)
    low, high = _curve_limits(every, total or 1)
    for panel in panels:
        windows = {tuple(w) for line in panel["lines"] for w in line.pop("attack_windows")}
        panel["attack_windows"] = [
            list(w) for w in sorted(windows) if total is None or w[0] > 1 or w[1] < total
        ]
        few = len(panel["lines"]) <= MAX_BANDS
        for line in panel["lines"]:
            final = line["final_accuracy"]
            line["clipped"] = final is not None and final < low
            line["band"] = any(s is not None for s in line["accuracy_std"]) and (
                few or styles[line["strategy"]]["recommended"]
            )
    return {
        "metric": "accuracy",
        "rounds": total,
        "repeats": max((line["repeats"] for line in every), default=0),
        "limits": [low, high],
        "strategies": [styles[s] for s in strategies],
        "panels": panels,
    }


def _mark(strategy: str, entry: Mapping[str, Any] | None) -> str | None:
    """``"best"`` (★), ``"tied"`` (☆: within noise of the best) or None, under one attack."""
    if not entry:
        return None
    if entry.get("strategy") == strategy:
        return "best"
    return "tied" if strategy in (entry.get("tied_with") or []) else None


def _accuracy_cells(
    comparison: Mapping[str, Any], strategies: Sequence[str], columns: Sequence[str]
) -> list[dict[str, Any]]:
    """The heatmap's accuracy cells, row by row: the conditions, then the worst case."""
    shown = _shown_rows(comparison)
    by_attack = (comparison.get("most_robust") or {}).get("by_attack") or {}
    rec = _recommendation(comparison)
    scores = {c["strategy"]: c for c in rec.get("candidates") or []}
    se_applies = rec.get("rank_by", "accuracy") == "accuracy"
    cells = []
    for strategy in strategies:
        for column in columns:
            if column == WORST_CASE:
                score = scores.get(strategy) or {}
                cell = {
                    "run": None,
                    "accuracy": score.get("worst_case_accuracy"),
                    "accuracy_std": score.get("worst_case_se") if se_applies else None,
                    "repeats": score.get("repeats", 0),
                    "diverged": 0,
                    "binding": score.get("binding"),
                    "mark": None,
                }
            else:
                row = shown.get((strategy, column)) or {}
                cell = {
                    "run": row.get("run"),
                    "accuracy": row.get("final_accuracy"),
                    "accuracy_std": row.get("final_accuracy_std"),
                    "repeats": row.get("repeats", 0),
                    "diverged": int(row.get("diverged") or 0),
                    "mark": _mark(strategy, by_attack.get(column)) if row else None,
                }
            cells.append({"strategy": strategy, "column": column, **cell})
    return cells


def _drop_cells(
    comparison: Mapping[str, Any], strategies: Sequence[str], attacks: Sequence[str]
) -> list[dict[str, Any]]:
    """Each attacked cell's accuracy drop against its strategy's clean run (+ = worse)."""
    shown = _shown_rows(comparison)
    by_attack = (comparison.get("most_robust") or {}).get("by_attack") or {}
    cells = []
    for strategy in strategies:
        for attack in attacks:
            row = shown.get((strategy, attack)) or {}
            cells.append(
                {
                    "strategy": strategy,
                    "attack": attack,
                    "run": row.get("run"),
                    "accuracy_drop": row.get("accuracy_drop"),
                    "diverged": int(row.get("diverged") or 0),
                    "repeats": row.get("repeats", 0),
                    "mark": _mark(strategy, by_attack.get(attack)) if row else None,
                }
            )
    return cells


def _scale(values: Sequence[float], centred: bool) -> dict[str, Any]:
    """Colour limits without outliers: ``{"limits": [low, high], "extend": ...}``.

    Accuracy (``centred=False``): from the lowest inlier to the highest value, at
    least :data:`MIN_SPAN` wide. Drops (``centred=True``): ±(the largest inlier
    absolute drop), at least ±:data:`MIN_DROP`.
    """
    if not values:
        return {"limits": [-MIN_DROP, MIN_DROP] if centred else [0.0, 1.0], "extend": "neither"}
    if centred:
        top = max(MIN_DROP, -lowest_inlier(-abs(v) for v in values))
        low, high = -top, top
    else:
        high = max(values)
        low = min(lowest_inlier(values), high - MIN_SPAN)
    below, above = min(values) < low, max(values) > high
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}
    return {"limits": [low, high], "extend": extend.get((below, above), "neither")}


def robustness_data(comparison: Mapping[str, Any]) -> dict[str, Any]:
    """What :func:`plot_robustness` draws.

    Returns ``{"strategies": [str], "incomplete": [str], "conditions": [str],
    "columns": [*conditions, "worst_case"], "recommended": str | None,
    "recommended_row": int | None, "title": str, "accuracy": {"cells":
    [{"strategy", "column", "run", "accuracy", "accuracy_std", "repeats",
    "diverged", "mark"}], "limits": [low, high], "extend": str}, "drop": {"attacks":
    [str], "cells": [{"strategy", "attack", "run", "accuracy_drop", "diverged",
    "repeats", "mark"}], "limits": [low, high], "extend": str} | None, "by_attack":
    {attack: strategy | None}}``. Fractions throughout; ``mark`` is ``"best"`` (★,
    the verdict's best under that attack), ``"tied"`` (☆, within noise of it) or
    null; the worst-case column (the recommendation's ``worst_case_accuracy``, with
    its standard error as ``accuracy_std`` when ranking by accuracy, and its
    ``binding`` condition) is null for incomplete strategies
    and absent for a comparison without a recommendation (an older velocity's).
    ``extend`` says which colour-bar ends hold cells beyond the limits.
    """
    rec = _recommendation(comparison)
    strategies = strategy_order(comparison)
    conds = conditions(comparison)
    columns = [*conds, WORST_CASE] if rec else conds
    attacks = [c for c in conds if c != NO_ATTACK]
    accuracy = _accuracy_cells(comparison, strategies, columns)
    drop = _drop_cells(comparison, strategies, attacks) if attacks else None
    by_attack = (comparison.get("most_robust") or {}).get("by_attack") or {}
    recommended = rec.get("strategy")
    return {
        "strategies": strategies,
        "incomplete": [s["strategy"] for s in rec.get("incomplete") or []],
        "conditions": conds,
        "columns": columns,
        "recommended": recommended,
        "recommended_row": strategies.index(recommended) if recommended in strategies else None,
        "title": _verdict_title(rec),
        "accuracy": {
            "cells": accuracy,
            **_scale([c["accuracy"] for c in accuracy if c["accuracy"] is not None], False),
        },
        "drop": None
        if drop is None
        else {
            "attacks": attacks,
            "cells": drop,
            **_scale([c["accuracy_drop"] for c in drop if c["accuracy_drop"] is not None], True),
        },
        "by_attack": {a: (by_attack.get(a) or {}).get("strategy") for a in attacks},
    }


def _verdict_title(rec: Mapping[str, Any]) -> str:
    """``Recommendation: Krum (decided)`` (as the markdown's title, without its emphasis)."""
    return recommendation_title(rec).replace("**", "") if rec else ""


# --------------------------------------------------------------------------- drawing


#: Rough size of 8 pt text in inches (for the fixed layouts; a layout engine costs ~0.3 s).
CHAR_W = 0.068
LINE_H = 0.15
#: Where the notes of clipped lines start under a panel (below its round labels), and
#: their line height, in points.
NOTE_OFFSET_PT = 34
NOTE_PT = 11


def _require_matplotlib() -> None:
    """Raise ``ImportError`` (naming matplotlib) when matplotlib cannot be imported."""
    import matplotlib  # noqa: F401


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure on the Agg canvas (raises ImportError without matplotlib).

    Layouts are computed from the label sizes instead of by a layout engine, which
    would draw every figure twice.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _axes(fig: Any, left: float, bottom: float, width: float, height: float) -> Any:
    """Axes at a position given in inches from the figure's lower left corner."""
    fw, fh = fig.get_size_inches()
    return fig.add_axes((left / fw, bottom / fh, width / fw, height / fh))


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _sweep_name(comparison: Mapping[str, Any]) -> str:
    raw = str(comparison.get("sweep_dir") or "")
    return Path(raw).name or raw or "sweep"


def _wrap(text: str, width: int) -> list[str]:
    """A label broken after ``:`` and ``,`` into lines of about ``width`` characters."""
    tokens, token = [], ""
    for char in text:
        token += char
        if char in ":,":
            tokens.append(token)
            token = ""
    if token:
        tokens.append(token)
    lines = [""]
    for token in tokens:
        if lines[-1] and len(lines[-1]) + len(token) > width:
            lines.append("")
        lines[-1] += token
    return lines


def _condition_title(condition: str) -> str:
    return "no attack" if condition == NO_ATTACK else condition


def _percent(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else 100 * v for v in values]


def _draw_line(ax: Any, line: Mapping[str, Any], recommended: bool) -> None:
    """One strategy's mean accuracy (%) with its ± std band."""
    mean = _percent(line["accuracy_mean"])
    width, order = (2.8, 4) if recommended else (1.5, 2)
    ax.plot(
        line["rounds"], mean, color=line["colour"], ls=line["linestyle"], lw=width, zorder=order
    )
    if line["band"]:
        sd = [0.0 if s is None else 100 * s for s in line["accuracy_std"]]
        low = [m - s for m, s in zip(mean, sd, strict=True)]
        high = [m + s for m, s in zip(mean, sd, strict=True)]
        alpha = 0.16 if recommended else 0.08
        ax.fill_between(line["rounds"], low, high, color=line["colour"], alpha=alpha, lw=0)


def _draw_clipped(ax: Any, lines: Sequence[Mapping[str, Any]], low: float) -> None:
    """▼ on the bottom edge for each line that ends below the axis, listed under the panel."""
    clipped = [line for line in lines if line["clipped"]]
    for k, line in enumerate(clipped):
        ax.plot(
            [line["rounds"][-1]],
            [100 * low],
            marker="v",
            ms=8,
            color=line["colour"],
            clip_on=False,
            zorder=5,
        )
        broke = line["diverged"] and line["diverged"] == line["repeats"]
        value = "diverged" if broke else pct(line["final_accuracy"])
        ax.annotate(
            f"▼ {line['strategy']}: {value}",
            xy=(0, 0),
            xycoords="axes fraction",
            xytext=(0, -NOTE_OFFSET_PT - NOTE_PT * k),
            textcoords="offset points",
            va="top",
            fontsize=7.5,
            color=line["colour"],
            weight="bold",
        )


def _clipped_count(panel: Mapping[str, Any]) -> int:
    return sum(line["clipped"] for line in panel["lines"])


def _draw_panel(
    ax: Any, panel: Mapping[str, Any], data: Mapping[str, Any], recommended: str | None
) -> None:
    from matplotlib.ticker import MaxNLocator

    for first, last in panel["attack_windows"]:
        ax.axvspan(first - 0.5, last + 0.5, color="0.5", alpha=0.14, lw=0)
    for line in panel["lines"]:
        _draw_line(ax, line, line["strategy"] == recommended)
    low, high = data["limits"]
    _draw_clipped(ax, panel["lines"], low)
    if not panel["lines"]:
        ax.text(0.5, 0.5, "no finished run", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(100 * low, 100 * high)
    if data["rounds"]:
        ax.set_xlim(0.75, data["rounds"] + 0.25)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    title = "\n".join(_wrap(_condition_title(panel["condition"]), 44))
    ax.set_title(title, fontsize=9)


def _legend(fig: Any, data: Mapping[str, Any], x: float, top: float) -> None:
    """One legend for every panel, right of the grid, the recommended strategy in bold."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [
        Line2D([], [], color=s["colour"], ls=s["linestyle"], lw=2.8 if s["recommended"] else 1.5)
        for s in data["strategies"]
    ]
    labels = [s["label"] for s in data["strategies"]]
    if any(panel["attack_windows"] for panel in data["panels"]):
        handles.append(Patch(color="0.5", alpha=0.25))
        labels.append("attack active")
    if any(line["clipped"] for panel in data["panels"] for line in panel["lines"]):
        handles.append(Line2D([], [], color="0.3", marker="v", ls=""))
        labels.append("final value below the axis")
    fw, fh = fig.get_size_inches()
    legend = fig.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(x / fw, top / fh),
        fontsize=8,
        title="strategy (rank)",
        title_fontsize=8,
        frameon=False,
        alignment="left",
    )
    for text, style in zip(legend.get_texts(), data["strategies"], strict=False):
        if style["recommended"]:
            text.set_fontweight("bold")


def plot_curves(sweep_dir: Path, comparison: Mapping[str, Any]) -> Plot:
    """``curves.png``: accuracy per round, one panel per condition (see the module doc).

    Raises ``ImportError`` without matplotlib and :class:`NothingToPlotError` when no
    finished run has a rounds.csv.
    """
    data = curve_data(sweep_dir, comparison)
    panels = data["panels"]
    if not any(panel["lines"] for panel in panels):
        raise NothingToPlotError("no finished run has per-round results")
    _require_matplotlib()
    recommended = _recommendation(comparison).get("strategy")
    ncols = min(MAX_COLUMNS, len(panels))
    rows = [panels[i : i + ncols] for i in range(0, len(panels), ncols)]
    title_lines = max(len(_wrap(_condition_title(p["condition"]), 44)) for p in panels)
    panel_w, panel_h, gap_x = 3.3, 2.3, 0.25
    below = 0.5  # round tick labels and the "round" label
    heights = [
        panel_h + below + 0.17 * title_lines + max(_clipped_count(p) for p in row) * NOTE_PT / 72
        for row in rows
    ]
    longest = max(len(s["label"]) for s in data["strategies"])
    legend_w = 0.6 + CHAR_W * max(longest, 26)
    left, top, bottom = 0.75, 0.85, 0.1
    grid_w = ncols * panel_w + (ncols - 1) * gap_x
    height = top + sum(heights) + bottom
    fig = _figure(left + grid_w + 0.2 + legend_w, height)
    y_top = height - top
    for row, row_height in zip(rows, heights, strict=True):
        y = y_top - 0.17 * title_lines - panel_h
        for col, panel in enumerate(row):
            ax = _axes(fig, left + col * (panel_w + gap_x), y, panel_w, panel_h)
            _draw_panel(ax, panel, data, recommended)
            ax.set_xlabel("round", fontsize=9)
            if col == 0:
                ax.set_ylabel("test accuracy (%)", fontsize=9)
            else:
                ax.tick_params(labelleft=False)
        y_top -= row_height
    _legend(fig, data, left + grid_w + 0.2, height - top)
    suffix = f", mean ± std over {data['repeats']} repeats" if data["repeats"] > 1 else ""
    fig.suptitle(
        f"{_sweep_name(comparison)}: test accuracy per round, one panel per condition{suffix}",
        x=0.02,
        y=1 - 0.12 / height,
        ha="left",
        va="top",
        fontsize=11,
    )
    title = _verdict_title(_recommendation(comparison))
    if title:
        fig.text(0.02, 1 - 0.45 / height, title, ha="left", va="top", fontsize=9, color="0.25")
    return Plot(CURVES, "Test accuracy per round, one panel per condition", _png(fig), data)


def _text_colour(rgba: Sequence[float]) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _cell_text(value: str, cell: Mapping[str, Any], std: str | None = None) -> str:
    """A cell's annotation: its mark, its value, then ± std or how many repeats diverged."""
    mark = {"best": "★ ", "tied": "☆ "}.get(cell["mark"] or "", "")
    if cell["diverged"] and cell["diverged"] == cell["repeats"]:
        return mark + "diverged"
    second = f"{cell['diverged']}/{cell['repeats']} div" if cell["diverged"] else std
    return mark + value + (f"\n{second}" if second else "")


def _accuracy_text(cell: Mapping[str, Any]) -> str:
    if cell["accuracy"] is None:
        return "–"
    std = None if cell["accuracy_std"] is None else f"±{100 * cell['accuracy_std']:.1f}"
    return _cell_text(f"{100 * cell['accuracy']:.1f}%", cell, std)


def _drop_text(cell: Mapping[str, Any]) -> str:
    return "–" if cell["accuracy_drop"] is None else _cell_text(pp(cell["accuracy_drop"]), cell)


def _heatmap(
    ax: Any,
    values: list[list[float]],
    texts: list[list[str]],
    bold: list[list[bool]],
    norm: Any,
    cmap: str,
) -> Any:
    """One annotated heatmap; ``bold`` cells are the marked ones.

    Missing values are light grey; values beyond the colour limits take a darker shade
    of the end colour (:data:`BEYOND`), as does the colour bar's extension.
    """
    import matplotlib as mpl

    low, high = BEYOND[cmap]
    colormap = mpl.colormaps[cmap].with_extremes(bad="#e6e6e6", under=low, over=high)
    image = ax.imshow(values, cmap=colormap, norm=norm, aspect="auto", interpolation="nearest")
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            colour = "0.35" if math.isnan(value) else _text_colour(colormap(norm(value)))
            weight = "bold" if bold[i][j] else "normal"
            ax.text(
                j, i, texts[i][j], ha="center", va="center", fontsize=8, color=colour, weight=weight
            )
    return image


def _box_row(ax: Any, row: int | None, ncols: int) -> None:
    """A frame around the recommended row."""
    if row is None:
        return
    from matplotlib.patches import Rectangle

    ax.add_patch(
        Rectangle((-0.47, row - 0.47), ncols - 0.06, 0.94, fill=False, lw=2.5, ec="black", zorder=3)
    )


def _grid(
    cells: Sequence[Mapping[str, Any]], key: str, ncols: int, text: Any
) -> tuple[list[list[float]], list[list[str]], list[list[bool]]]:
    """Row-major cells as ``(values in %, texts, marked)`` matrices for :func:`_heatmap`."""
    values, texts, bold = [], [], []
    for start in range(0, len(cells), ncols):
        row = cells[start : start + ncols]
        values.append([math.nan if c[key] is None else 100 * c[key] for c in row])
        texts.append([text(c) for c in row])
        bold.append([c["mark"] is not None for c in row])
    return values, texts, bold


def _colorbar(fig: Any, image: Any, cax: Any, label: str, extend: str) -> None:
    bar = fig.colorbar(image, cax=cax, extend=extend)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=8)


def _column_labels(columns: Sequence[str]) -> list[str]:
    names = {NO_ATTACK: "no attack", WORST_CASE: "worst case"}
    return ["\n".join(_wrap(names.get(c, c), 16)) for c in columns]


def _row_labels(data: Mapping[str, Any]) -> list[str]:
    labels = []
    for strategy in data["strategies"]:
        label = "\n".join(_wrap(strategy, 22))
        if strategy == data["recommended"]:
            label = "▶ " + label
        elif strategy in data["incomplete"]:
            label += "\n(incomplete)"
        labels.append(label)
    return labels


def _style_axes(ax: Any, data: Mapping[str, Any], columns: Sequence[str], labels: bool) -> None:
    ax.set_xticks(range(len(columns)), _column_labels(columns), fontsize=8)
    ax.set_yticks(range(len(data["strategies"])), _row_labels(data) if labels else [])
    ax.tick_params(length=0, labelsize=8)
    if labels and data["recommended_row"] is not None:
        ax.get_yticklabels()[data["recommended_row"]].set_fontweight("bold")


def plot_robustness(comparison: Mapping[str, Any]) -> Plot:
    """``robustness.png``: final accuracy (with the worst case) and accuracy drop heatmaps.

    Raises ``ImportError`` without matplotlib and :class:`NothingToPlotError` when no
    strategy has a finished cell.
    """
    data = robustness_data(comparison)
    strategies, columns = data["strategies"], data["columns"]
    if not any(c["accuracy"] is not None for c in data["accuracy"]["cells"]):
        raise NothingToPlotError("no cell finished")
    _require_matplotlib()
    from matplotlib.colors import Normalize

    drop = data["drop"]
    col_lines = [line for label in _column_labels(columns) for line in label.split("\n")]
    row_labels = _row_labels(data)
    col_w = max(0.85, 0.15 + CHAR_W * max(len(t) for t in col_lines))
    row_h = max(0.45, 0.12 + LINE_H * max(label.count("\n") + 1 for label in row_labels))
    left = 0.35 + CHAR_W * max(len(t) for label in row_labels for t in label.split("\n"))
    bottom = 0.3 + LINE_H * max(label.count("\n") + 1 for label in _column_labels(columns))
    top, bar = 1.2, 1.05  # title + subtitle + two-line axes title; colour bar with its labels
    grid_h = max(row_h * len(strategies), 2.2)  # at least its colour bar's label
    counts = [len(columns)] + ([len(drop["attacks"])] if drop else [])
    widths = [max(col_w * n, 2.6) for n in counts]  # at least its title
    width = max(7.0, left + sum(w + bar for w in widths) + 0.3 * (len(widths) - 1) + 0.2)
    height = bottom + grid_h + top
    fig = _figure(width, height)
    x = left
    panels = []
    for w in widths:
        panels.append(
            (_axes(fig, x, bottom, w, grid_h), _axes(fig, x + w + 0.12, bottom, 0.14, grid_h))
        )
        x += w + bar + 0.3

    ax, cax = panels[0]
    accuracy = data["accuracy"]
    values, texts, bold = _grid(accuracy["cells"], "accuracy", len(columns), _accuracy_text)
    low, high = (100 * v for v in accuracy["limits"])
    image = _heatmap(ax, values, texts, bold, Normalize(low, high), "RdYlGn")
    _colorbar(fig, image, cax, "final accuracy (%)", accuracy["extend"])
    if columns[-1] == WORST_CASE:
        ax.axvline(len(columns) - 1.5, color="white", lw=4)
    _box_row(ax, data["recommended_row"], len(columns))
    _style_axes(ax, data, columns, labels=True)
    ax.set_title(
        "Final test accuracy (mean over repeats)\n★ best under the attack · ☆ within noise of it",
        fontsize=9,
    )

    if drop:
        ax, cax = panels[1]
        attacks = drop["attacks"]
        values, texts, bold = _grid(drop["cells"], "accuracy_drop", len(attacks), _drop_text)
        low, high = (100 * v for v in drop["limits"])
        image = _heatmap(ax, values, texts, bold, Normalize(low, high), "RdYlGn_r")
        _colorbar(fig, image, cax, "accuracy drop (pp, + = worse)", drop["extend"])
        _box_row(ax, data["recommended_row"], len(attacks))
        _style_axes(ax, data, attacks, labels=False)
        ax.set_title(
            "Accuracy drop vs the strategy's clean run\n(+ = worse) ★ best under the attack",
            fontsize=9,
        )
    fig.suptitle(
        f"{_sweep_name(comparison)}: robustness by strategy and condition",
        x=0.02,
        y=1 - 0.1 / height,
        ha="left",
        va="top",
        fontsize=11,
    )
    if data["title"]:
        fig.text(
            0.02,
            1 - 0.4 / height,
            f"{data['title']} · ▶ boxed row: the recommendation",
            ha="left",
            va="top",
            fontsize=9,
            color="0.25",
        )
    return Plot(ROBUSTNESS, "Robustness: strategy × condition", _png(fig), data)


# --------------------------------------------------------------------------- writing


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ImportError) and (exc.name or "matplotlib").split(".")[0] == "matplotlib":
        return f"matplotlib is not installed ({INSTALL_HINT})"
    if isinstance(exc, NothingToPlotError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def render_plots(
    sweep_dir: Path, comparison: Mapping[str, Any]
) -> tuple[list[Plot], list[str], list[str]]:
    """Draw both figures in memory; never raises.

    Returns the plots drawn, a note for each one that was not (e.g. ``plots not
    rendered: matplotlib is not installed (...)``, ``curves.png not rendered:
    RuntimeError: ...`` or ``robustness.png not rendered: no cell finished``) and the
    failures among those notes: every note but "the data has nothing to draw".
    """
    try:
        _require_matplotlib()
    except ImportError as exc:
        note = f"plots not rendered: {_reason(exc)}"
        return [], [note], [note]
    plots: list[Plot] = []
    notes: list[str] = []
    failures: list[str] = []
    jobs = (
        (CURVES, lambda: plot_curves(sweep_dir, comparison)),
        (ROBUSTNESS, lambda: plot_robustness(comparison)),
    )
    for name, job in jobs:
        try:
            plots.append(job())
        except Exception as exc:  # a plot must never break a sweep
            notes.append(f"{name} not rendered: {_reason(exc)}")
            if not isinstance(exc, NothingToPlotError):
                failures.append(notes[-1])
    return plots, notes, failures


def write_plots(
    sweep_dir: Path, comparison: Mapping[str, Any]
) -> tuple[list[Plot], list[str], list[str]]:
    """Render both figures into ``sweep_dir`` (PNGs + ``plots.json``); never raises.

    A figure that is not drawn this time has its old PNG removed, so the directory
    never shows a picture of other data than ``comparison.json``. Returns what
    :func:`render_plots` returns, plus a note (and a failure) for a file that could not
    be written.
    """
    sweep_dir = Path(sweep_dir)
    plots, notes, failures = render_plots(sweep_dir, comparison)
    written: list[Plot] = []
    for plot in plots:
        try:
            files.write_picture(sweep_dir, plot.file, plot.png)
            written.append(plot)
        except OSError as exc:
            notes.append(f"{plot.file} not written: {exc}")
            failures.append(notes[-1])
    for name in names.PICTURES:
        if name not in {p.file for p in written}:
            files.remove_picture(sweep_dir, name)
    try:
        files.write_plots_data(sweep_dir, {p.file: p.data for p in written}, notes)
    except OSError as exc:
        notes.append(f"{DATA_FILE} not written: {exc}")
        failures.append(notes[-1])
    return written, notes, failures
