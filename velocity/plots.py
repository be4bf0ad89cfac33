"""The pictures of a sweep: ``curves.png`` and ``robustness.png``, from files only.

Two figures, each drawn from a small dict that is returned (and written to
``plots.json``) so the data behind every line and cell can be checked without
comparing pixels:

- :func:`plot_curves`: test loss and accuracy per round, one line per cell (the
  mean over its finished repeats, with a shaded ± standard-deviation band when it
  has more than one). Each strategy has one colour; its no-attack baseline is a
  solid line and each attack a dashed or dotted one. Rounds in which an attack
  is active (its ``start_round``..``end_round`` window, inclusive) are shaded
  when the window does not span every round.
- :func:`plot_robustness`: a strategy × attack heatmap of mean final accuracy,
  each cell annotated, with the highest accuracy of each attack column marked
  (★); beside it, when baselines exist, the loss increase of each attacked cell
  over the same strategy's baseline, with the verdict's most robust strategy per
  attack (smallest increase, ``most_robust.by_attack`` of the comparison) marked.

matplotlib (the ``plots`` extra) is imported lazily, and only its object API with
the Agg canvas is used (no ``pyplot``, so no global state and no GUI backend: safe
in worker threads). :func:`write_plots` is what a sweep calls: it never raises;
a plot that cannot be drawn becomes a note such as ``plots not rendered:
matplotlib is not installed (pip install 'velocity-fl[plots]')``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import statistics
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velocity.runio import atomic_write_json
from velocity.runio import finite_float as _float

NO_ATTACK = "none"
CURVES = "curves.png"
ROBUSTNESS = "robustness.png"
DATA_FILE = "plots.json"
INSTALL_HINT = "pip install 'velocity-fl[plots]'"
DPI = 100

#: tab10, then tab20's light shades: one colour per strategy.
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
#: Baselines are solid; each attack (in sorted order) gets the next of these.
ATTACK_STYLES = ("--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 3)))


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


def _read_rounds(path: Path) -> dict[int, tuple[float | None, float | None]]:
    """``{round: (global_loss, accuracy)}`` of a ``rounds.csv`` (``{}`` when unreadable)."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}
    out: dict[int, tuple[float | None, float | None]] = {}
    for row in rows:
        r = _float(row.get("round"))
        if r is not None:
            out[int(r)] = (_float(row.get("global_loss")), _float(row.get("accuracy")))
    return out


def _read_config(path: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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


def _strategy_order(ranking: Sequence[Mapping[str, Any]]) -> list[str]:
    """Strategies in the order of their best-ranked cell."""
    order: list[str] = []
    for row in ranking:
        if row["strategy"] not in order:
            order.append(row["strategy"])
    return order


def _attack_order(ranking: Sequence[Mapping[str, Any]]) -> list[str]:
    """``"none"`` first (when present), then the attacks sorted."""
    attacks = sorted({row["attack"] for row in ranking if row["attack"] != NO_ATTACK})
    has_none = any(row["attack"] == NO_ATTACK for row in ranking)
    return ([NO_ATTACK] if has_none else []) + attacks


def curve_data(sweep_dir: Path, comparison: Mapping[str, Any]) -> dict[str, Any]:
    """What :func:`plot_curves` draws: one line per ranked cell, read from its runs' rounds.csv.

    Returns ``{"lines": [{"cell", "strategy", "attack", "attacked", "runs", "repeats",
    "colour", "linestyle", "rounds", "loss_mean", "loss_std", "accuracy_mean",
    "accuracy_std", "attack_windows"}], "attack_windows": [{"first", "last", "cells"}],
    "rounds": int | None, "loss_scale": "linear" | "log"}``. ``*_std`` entries are
    null where fewer than two repeats have a value; attack windows spanning every
    round are not listed at the top level (they are not shaded).
    """
    sweep_dir = Path(sweep_dir)
    ranking = comparison.get("ranking") or []
    strategies = _strategy_order(ranking)
    attacks = [a for a in _attack_order(ranking) if a != NO_ATTACK]
    rows = sorted(
        ranking,
        key=lambda r: (
            strategies.index(r["strategy"]),
            r["attack"] != NO_ATTACK,
            r["attack"],
            r["run"],
        ),
    )
    lines = []
    max_round = 0
    for row in rows:
        per_run = [_read_rounds(sweep_dir / run / "rounds.csv") for run in row["runs"]]
        rounds = sorted(set().union(*per_run)) if per_run else []
        if not rounds:
            continue
        max_round = max(max_round, rounds[-1])
        loss = [_mean_std([run.get(r, (None, None))[0] for run in per_run]) for r in rounds]
        acc = [_mean_std([run.get(r, (None, None))[1] for run in per_run]) for r in rounds]
        config = _read_config(sweep_dir / row["runs"][0] / "config.json")
        attacked = row["attack"] != NO_ATTACK
        colour = COLOURS[strategies.index(row["strategy"]) % len(COLOURS)]
        style: Any = "-"
        if attacked:
            style = ATTACK_STYLES[attacks.index(row["attack"]) % len(ATTACK_STYLES)]
        lines.append(
            {
                "cell": row["run"],
                "strategy": row["strategy"],
                "attack": row["attack"],
                "attacked": attacked,
                "runs": list(row["runs"]),
                "repeats": len(row["runs"]),
                "colour": colour,
                "linestyle": style if isinstance(style, str) else "dashdot-dense",
                "_style": style,
                "rounds": rounds,
                "loss_mean": [m for m, _ in loss],
                "loss_std": [s for _, s in loss],
                "accuracy_mean": [m for m, _ in acc],
                "accuracy_std": [s for _, s in acc],
                "attack_windows": [list(w) for w in attack_windows(config)] if attacked else [],
            }
        )
    total = comparison.get("header", {}).get("rounds")
    total = total if isinstance(total, int) else (max_round or None)
    shaded: dict[tuple[int, int], list[str]] = {}
    for line in lines:
        for first, last in line["attack_windows"]:
            if total is None or first > 1 or last < total:
                shaded.setdefault((first, last), []).append(line["cell"])
    losses = [v for line in lines for v in line["loss_mean"] if v is not None]
    log = bool(losses) and min(losses) > 0 and max(losses) / min(losses) > 20
    return {
        "lines": lines,
        "attack_windows": [
            {"first": first, "last": last, "cells": cells}
            for (first, last), cells in sorted(shaded.items())
        ],
        "rounds": total,
        "loss_scale": "log" if log else "linear",
    }


def robustness_data(comparison: Mapping[str, Any]) -> dict[str, Any]:
    """What :func:`plot_robustness` draws: the strategy × attack cells of the ranking.

    Returns ``{"strategies": [str], "attacks": [str], "cells": [{"strategy", "attack",
    "run", "final_accuracy", "final_accuracy_std", "final_loss", "loss_increase",
    "best_accuracy": bool, "most_robust": bool}], "best_accuracy": {attack: [strategy]},
    "most_robust": {attack: strategy | None}}``. Where several cells share a
    strategy and attack label, the best-ranked one is shown. ``best_accuracy`` lists
    every strategy tied for the highest final accuracy of each attack column.
    """
    ranking = comparison.get("ranking") or []
    strategies = _strategy_order(ranking)
    attacks = _attack_order(ranking)
    shown: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in ranking:
        shown.setdefault((row["strategy"], row["attack"]), row)
    by_attack = (comparison.get("most_robust") or {}).get("by_attack") or {}
    most_robust = {attack: (entry or {}).get("strategy") for attack, entry in by_attack.items()}
    best: dict[str, list[str]] = {}
    for attack in attacks:
        accs = {
            s: shown[(s, attack)]["final_accuracy"]
            for s in strategies
            if (s, attack) in shown and shown[(s, attack)]["final_accuracy"] is not None
        }
        if accs:
            top = max(accs.values())
            best[attack] = [s for s, a in accs.items() if a == top]
    cells = []
    for strategy in strategies:
        for attack in attacks:
            row = shown.get((strategy, attack))
            if row is None:
                continue
            cells.append(
                {
                    "strategy": strategy,
                    "attack": attack,
                    "run": row["run"],
                    "final_accuracy": row["final_accuracy"],
                    "final_accuracy_std": row["final_accuracy_std"],
                    "final_loss": row["final_loss"],
                    "loss_increase": row["loss_increase"],
                    "best_accuracy": strategy in best.get(attack, []),
                    "most_robust": attack != NO_ATTACK and most_robust.get(attack) == strategy,
                }
            )
    return {
        "strategies": strategies,
        "attacks": attacks,
        "cells": cells,
        "best_accuracy": best,
        "most_robust": {a: most_robust.get(a) for a in attacks if a != NO_ATTACK},
    }


# --------------------------------------------------------------------------- drawing


#: Rough size of 8 pt text in inches (for the fixed layouts; a layout engine costs ~0.3 s).
CHAR_W = 0.068
LINE_H = 0.15


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


def _nan(values: Sequence[float | None], scale: float = 1.0) -> list[float]:
    return [math.nan if v is None else v * scale for v in values]


def _line_label(line: Mapping[str, Any]) -> str:
    """``FedAvg`` / ``FedAvg · gaussian_noise:sigma=10.0``, plus ``(n=3)`` with repeats."""
    label = str(line["strategy"])
    if line["attacked"]:
        label += f" · {line['attack']}"
    return label + (f" (n={line['repeats']})" if line["repeats"] > 1 else "")


def plot_curves(sweep_dir: Path, comparison: Mapping[str, Any]) -> Plot:
    """``curves.png``: test loss and accuracy per round, one line per cell (see module doc).

    Raises ``ImportError`` without matplotlib and :class:`NothingToPlotError` when no
    finished run has a rounds.csv.
    """
    data = curve_data(sweep_dir, comparison)
    lines = data["lines"]
    if not lines:
        raise NothingToPlotError("no finished run has per-round results")
    _require_matplotlib()
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    labels = [_line_label(line) for line in lines]
    windows = [f"attack active: rounds {w['first']}–{w['last']}" for w in data["attack_windows"]]
    width = 12.0
    longest = max(len(text) for text in labels + windows)
    ncols = max(1, min(3, int((width - 0.5) // (0.7 + 0.058 * longest))))
    legend_rows = math.ceil((len(labels) + len(windows)) / ncols)
    legend_h = 0.2 + LINE_H * 1.35 * legend_rows
    plot_h, top, bottom = 3.7, 0.75, 0.55 + legend_h
    fig = _figure(width, top + plot_h + bottom)
    panel_w = (width - 0.8 - 0.75 - 0.25) / 2
    ax_loss = _axes(fig, 0.8, bottom, panel_w, plot_h)
    ax_acc = _axes(fig, 0.8 + panel_w + 0.75, bottom, panel_w, plot_h)
    for ax in (ax_loss, ax_acc):
        for window in data["attack_windows"]:
            ax.axvspan(window["first"] - 0.5, window["last"] + 0.5, color="0.5", alpha=0.12, lw=0)
    for line, label in zip(lines, labels, strict=True):
        style = {
            "color": line["colour"],
            "linestyle": line["_style"],
            "linewidth": 2.0 if not line["attacked"] else 1.6,
        }
        for ax, key, scale in ((ax_loss, "loss", 1.0), (ax_acc, "accuracy", 100.0)):
            mean = _nan(line[f"{key}_mean"], scale)
            ax.plot(line["rounds"], mean, label=label if ax is ax_loss else None, **style)
            std = line[f"{key}_std"]
            if any(s is not None for s in std):
                sd = [0.0 if s is None else s * scale for s in std]
                low = [m - s for m, s in zip(mean, sd, strict=True)]
                high = [m + s for m, s in zip(mean, sd, strict=True)]
                if key == "loss" and data["loss_scale"] == "log":
                    # a band may not reach zero on a log axis: keep it above half the mean
                    low = [max(lo, 0.5 * m) for lo, m in zip(low, mean, strict=True)]
                ax.fill_between(line["rounds"], low, high, color=line["colour"], alpha=0.15, lw=0)
    ax_loss.set_title("Test loss" + (" (log scale)" if data["loss_scale"] == "log" else ""))
    ax_loss.set_ylabel("loss")
    if data["loss_scale"] == "log":
        ax_loss.set_yscale("log")
    ax_acc.set_title("Test accuracy")
    ax_acc.set_ylabel("accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("round")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    handles, labels = ax_loss.get_legend_handles_labels()
    handles += [Patch(color="0.5", alpha=0.25) for _ in windows]
    labels += windows
    fig.legend(
        handles,
        labels,
        loc="lower center",
        bbox_to_anchor=(0.5, 0.1 / fig.get_size_inches()[1]),
        ncols=ncols,
        fontsize=8,
        frameon=False,
    )
    repeats = max(line["repeats"] for line in lines)
    suffix = f" (mean ± std over {repeats} repeats)" if repeats > 1 else ""
    fig.suptitle(f"{_sweep_name(comparison)}: test loss and accuracy per round{suffix}", y=0.985)
    png = _png(fig)
    public = {**data, "lines": [{k: v for k, v in ln.items() if k != "_style"} for ln in lines]}
    return Plot(CURVES, "Loss and accuracy per round", png, public)


def _label(text: str) -> str:
    """An attack or strategy label broken into short lines (name, then one parameter a line)."""
    return re.sub(r"[:,]", "\n", text)


def _text_colour(rgba: Sequence[float]) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _heatmap(
    ax: Any,
    values: list[list[float]],
    texts: list[list[str]],
    marks: list[list[bool]],
    norm: Any,
    cmap: str,
    rows: Sequence[str],
    cols: Sequence[str],
) -> Any:
    """One annotated heatmap; marked cells get a ★ and a black frame."""
    import matplotlib as mpl
    from matplotlib.patches import Rectangle

    colormap = mpl.colormaps[cmap].with_extremes(bad="#e6e6e6")
    image = ax.imshow(values, cmap=colormap, norm=norm, aspect="auto")
    ax.set_xticks(range(len(cols)), [_label(c) for c in cols], fontsize=8)
    ax.set_yticks(range(len(rows)), [_label(r) for r in rows], fontsize=8)
    ax.tick_params(top=False, bottom=True, length=0)
    for i in range(len(rows)):
        for j in range(len(cols)):
            value = values[i][j]
            colour = "0.35" if value != value else _text_colour(colormap(norm(value)))
            weight = "bold" if marks[i][j] else "normal"
            text = ("★ " if marks[i][j] else "") + texts[i][j]
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour, weight=weight)
            if marks[i][j]:
                ax.add_patch(
                    Rectangle((j - 0.48, i - 0.48), 0.96, 0.96, fill=False, lw=2, ec="black")
                )
    return image


def plot_robustness(comparison: Mapping[str, Any]) -> Plot:
    """``robustness.png``: strategy × attack heatmaps of final accuracy and loss increase.

    Raises ``ImportError`` without matplotlib and :class:`NothingToPlotError` when the
    ranking is empty.
    """
    data = robustness_data(comparison)
    strategies, attacks = data["strategies"], data["attacks"]
    if not strategies:
        raise NothingToPlotError("no cell finished")
    _require_matplotlib()
    from matplotlib.colors import Normalize, SymLogNorm
    from matplotlib.ticker import FuncFormatter, NullLocator

    cells = {(c["strategy"], c["attack"]): c for c in data["cells"]}
    attacked = [a for a in attacks if a != NO_ATTACK]
    with_increase = any(c["loss_increase"] is not None for c in data["cells"])
    panels = 2 if with_increase and attacked else 1
    x_lines = [_label(a).split("\n") for a in attacks]
    y_lines = [_label(s).split("\n") for s in strategies]
    col_w = max(1.0, 0.25 + CHAR_W * max(len(t) for lines in x_lines for t in lines))
    row_h = max(0.5, 0.12 + LINE_H * max(len(lines) for lines in y_lines))
    left = 0.3 + CHAR_W * max(len(t) for lines in y_lines for t in lines)
    bottom = 0.45 + LINE_H * max(len(lines) for lines in x_lines)
    top, bar = 0.85, 1.15  # suptitle + two-line axes title; colorbar with its labels
    grid_h = max(row_h * len(strategies), 2.7 - bottom - top)  # one row: still readable
    widths = [col_w * len(attacks)] + ([col_w * len(attacked)] if panels == 2 else [])
    width = max(6.0, left + sum(w + bar for w in widths) + 0.4 * (panels - 1) + 0.3)
    fig = _figure(width, bottom + grid_h + top)
    axes, bars, x = [], [], left
    for w in widths:
        axes.append(_axes(fig, x, bottom, w, grid_h))
        bars.append(_axes(fig, x + w + 0.15, bottom, 0.15, grid_h))
        x += w + bar + 0.4

    acc_values: list[list[float]] = []
    acc_texts: list[list[str]] = []
    acc_marks: list[list[bool]] = []
    for s in strategies:
        acc_values.append([])
        acc_texts.append([])
        acc_marks.append([])
        for a in attacks:
            cell = cells.get((s, a))
            acc = None if cell is None else cell["final_accuracy"]
            acc_values[-1].append(math.nan if acc is None else 100 * acc)
            std = None if cell is None else cell["final_accuracy_std"]
            text = "–" if acc is None else f"{100 * acc:.1f}%"
            if std is not None:
                text += f"\n±{100 * std:.1f}"
            acc_texts[-1].append(text)
            acc_marks[-1].append(bool(cell and cell["best_accuracy"]))
    finite = [v for row in acc_values for v in row if v == v]
    low, high = (min(finite), max(finite)) if finite else (0.0, 100.0)
    if high - low < 1e-9:
        low, high = low - 1.0, high + 1.0
    image = _heatmap(
        axes[0],
        acc_values,
        acc_texts,
        acc_marks,
        Normalize(low, high),
        "RdYlGn",
        strategies,
        attacks,
    )
    fig.colorbar(image, cax=bars[0], label="final accuracy (%)")
    axes[0].set_title("Final test accuracy\n★ highest under each attack", fontsize=10)
    axes[0].set_xlabel("attack")

    if panels == 2:
        inc_values: list[list[float]] = []
        inc_texts: list[list[str]] = []
        inc_marks: list[list[bool]] = []
        for s in strategies:
            inc_values.append([])
            inc_texts.append([])
            inc_marks.append([])
            for a in attacked:
                cell = cells.get((s, a))
                inc = None if cell is None else cell["loss_increase"]
                inc_values[-1].append(math.nan if inc is None else inc)
                inc_texts[-1].append("–" if inc is None else f"{inc:+.3g}")
                inc_marks[-1].append(bool(cell and cell["most_robust"]))
        finite = [abs(v) for row in inc_values for v in row if v == v]
        top = max(finite) if finite and max(finite) > 0 else 1.0
        norm = SymLogNorm(linthresh=min(0.01, top), vmin=-top, vmax=top, base=10)
        image = _heatmap(
            axes[1], inc_values, inc_texts, inc_marks, norm, "RdYlGn_r", strategies, attacked
        )
        colorbar = fig.colorbar(image, cax=bars[1], label="final loss − baseline's")
        colorbar.set_ticks([-top, 0.0, top] if top > 0 else [0.0])
        colorbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:+.3g}" if v else "0"))
        colorbar.ax.yaxis.set_minor_locator(NullLocator())
        axes[1].set_title(
            "Loss increase over the strategy's baseline\n★ most robust (smallest increase)",
            fontsize=10,
        )
        axes[1].set_xlabel("attack")
        axes[1].tick_params(labelleft=False)  # the rows of the first panel
    fig.suptitle(f"{_sweep_name(comparison)}: robustness by strategy and attack", y=0.985)
    return Plot(ROBUSTNESS, "Robustness: strategy × attack", _png(fig), data)


# --------------------------------------------------------------------------- writing


def _write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` through a temp file in the same directory and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ImportError) and (exc.name or "matplotlib").split(".")[0] == "matplotlib":
        return f"matplotlib is not installed ({INSTALL_HINT})"
    if isinstance(exc, NothingToPlotError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def render_plots(sweep_dir: Path, comparison: Mapping[str, Any]) -> tuple[list[Plot], list[str]]:
    """Draw both figures in memory; never raises.

    Returns the plots drawn and a note for each one that was not (e.g. ``plots not
    rendered: matplotlib is not installed (...)``, or ``curves.png not rendered:
    RuntimeError: ...``).
    """
    try:
        _require_matplotlib()
    except ImportError as exc:
        return [], [f"plots not rendered: {_reason(exc)}"]
    plots: list[Plot] = []
    notes: list[str] = []
    jobs = (
        (CURVES, lambda: plot_curves(sweep_dir, comparison)),
        (ROBUSTNESS, lambda: plot_robustness(comparison)),
    )
    for name, job in jobs:
        try:
            plots.append(job())
        except Exception as exc:  # a plot must never break a sweep
            notes.append(f"{name} not rendered: {_reason(exc)}")
    return plots, notes


def write_plots(sweep_dir: Path, comparison: Mapping[str, Any]) -> tuple[list[Plot], list[str]]:
    """Render both figures into ``sweep_dir`` (PNGs + ``plots.json``); never raises.

    A figure that is not drawn this time has its old PNG removed, so the directory
    never shows a picture of other data than ``comparison.json``. Returns what
    :func:`render_plots` returns, plus a note for a file that could not be written.
    """
    sweep_dir = Path(sweep_dir)
    plots, notes = render_plots(sweep_dir, comparison)
    written: list[Plot] = []
    for plot in plots:
        try:
            _write_bytes(sweep_dir / plot.file, plot.png)
            written.append(plot)
        except OSError as exc:
            notes.append(f"{plot.file} not written: {exc}")
    for name in (CURVES, ROBUSTNESS):
        if name not in {p.file for p in written}:
            (sweep_dir / name).unlink(missing_ok=True)
    try:
        atomic_write_json(
            sweep_dir / DATA_FILE,
            {"plots": {p.file: p.data for p in written}, "notes": notes},
        )
    except OSError as exc:
        notes.append(f"{DATA_FILE} not written: {exc}")
    return written, notes
