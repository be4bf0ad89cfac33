"""Every report of a sweep directory, from its files: :func:`render_all`.

The one entry point of the end of a sweep and of ``velocity report DIR`` (alias
``velocity compare``): ``results.csv`` (:mod:`velocity.sweepdir.results`), the
pictures (:mod:`velocity.report.plots`), ``report.html`` (:mod:`velocity.report.html`),
then ``comparison.json`` and, last, ``comparison.md``. Plotting never makes it fail.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velocity.report.comparison import build_comparison
from velocity.report.html import FILE as HTML_FILE
from velocity.report.html import render_html
from velocity.report.markdown import render_markdown
from velocity.report.plots import Plot, write_plots
from velocity.spec import RankBy
from velocity.sweepdir.io import atomic_write_json, atomic_write_text, read_optional_json
from velocity.sweepdir.results import RESULTS_FILE, write_results


def write_comparison(
    sweep_dir: Path,
    *,
    wall_s: float | None = None,
    parallel: int | None = None,
    images: Sequence[str] = (),
    rank_by: RankBy | None = None,
) -> dict[str, Any]:
    """Build the comparison and write ``comparison.json`` and ``comparison.md`` atomically."""
    sweep_dir = Path(sweep_dir)
    comparison = build_comparison(sweep_dir, wall_s=wall_s, parallel=parallel, rank_by=rank_by)
    atomic_write_json(sweep_dir / "comparison.json", comparison)
    atomic_write_text(sweep_dir / "comparison.md", render_markdown(comparison, images))
    return comparison


@dataclass
class RenderedReport:
    """What :func:`render_all` wrote: the comparison, the files, the plots and the time."""

    comparison: dict[str, Any]
    files: list[Path]
    plots: list[Plot]
    notes: list[str]
    elapsed_s: float


def render_all(
    sweep_dir: Path,
    *,
    wall_s: float | None = None,
    parallel: int | None = None,
    rank_by: RankBy | None = None,
) -> RenderedReport:
    """Write every report of a sweep directory from its files; plotting never makes it fail.

    Writes ``results.csv``, ``curves.png``, ``robustness.png`` and ``plots.json``
    (when matplotlib is installed), ``report.html``, then ``comparison.json`` and,
    last, ``comparison.md`` (linking the PNGs). A plot or the HTML page that cannot
    be rendered becomes a caveat (e.g. ``plots not rendered: matplotlib is not
    installed (...)``) instead of an error; only a failure to write the comparison
    files or ``results.csv`` raises.
    """
    clock = time.perf_counter()
    sweep_dir = Path(sweep_dir)
    comparison = build_comparison(sweep_dir, wall_s=wall_s, parallel=parallel, rank_by=rank_by)
    write_results(sweep_dir)
    files = [sweep_dir / RESULTS_FILE]
    plots, notes = write_plots(sweep_dir, comparison)  # never raises: a failure is a note
    comparison["caveats"] = [*comparison["caveats"], *notes]
    files += [sweep_dir / p.file for p in plots]
    if plots and (sweep_dir / "plots.json").is_file():
        files.append(sweep_dir / "plots.json")
    manifest = read_optional_json(sweep_dir / "manifest.json")
    try:
        atomic_write_text(sweep_dir / HTML_FILE, render_html(comparison, plots, manifest))
        files.append(sweep_dir / HTML_FILE)
    except Exception as exc:  # the page must not stop the verdict from being written
        comparison["caveats"].append(f"{HTML_FILE} not written: {type(exc).__name__}: {exc}")
    atomic_write_json(sweep_dir / "comparison.json", comparison)
    images = [p.file for p in plots]
    atomic_write_text(sweep_dir / "comparison.md", render_markdown(comparison, images))
    files += [sweep_dir / "comparison.json", sweep_dir / "comparison.md"]
    return RenderedReport(comparison, files, plots, notes, time.perf_counter() - clock)
