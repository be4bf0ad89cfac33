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
from velocity.report.html import render_html
from velocity.report.markdown import render_markdown
from velocity.report.plots import Plot, write_plots
from velocity.spec import RankBy
from velocity.sweepdir import files, names
from velocity.sweepdir.results import write_results


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
    files.write_comparison(sweep_dir, comparison)
    files.write_comparison_md(sweep_dir, render_markdown(comparison, images))
    return comparison


@dataclass
class RenderedReport:
    """What :func:`render_all` wrote: the comparison, the files, the plots and the time.

    ``notes`` are the caveats rendering added; ``failures`` are those that mean a
    report could not be drawn or written (not "no run finished, nothing to draw").
    """

    comparison: dict[str, Any]
    files: list[Path]
    plots: list[Plot]
    notes: list[str]
    failures: list[str]
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
    written = [write_results(sweep_dir)]
    plots, notes, failures = write_plots(sweep_dir, comparison)  # never raises: a note
    comparison["caveats"] = [*comparison["caveats"], *notes]
    written += [files.report_path(sweep_dir, p.file) for p in plots]
    if plots and files.has(sweep_dir, names.PLOTS):
        written.append(files.report_path(sweep_dir, names.PLOTS))
    manifest = files.read_manifest(sweep_dir)
    try:
        written.append(files.write_report_html(sweep_dir, render_html(comparison, plots, manifest)))
    except Exception as exc:  # the page must not stop the verdict from being written
        failures.append(f"{names.REPORT} not written: {type(exc).__name__}: {exc}")
        comparison["caveats"].append(failures[-1])
    files.write_comparison(sweep_dir, comparison)
    images = [p.file for p in plots]
    files.write_comparison_md(sweep_dir, render_markdown(comparison, images))
    written += [
        files.report_path(sweep_dir, names.COMPARISON),
        files.report_path(sweep_dir, names.COMPARISON_MD),
    ]
    return RenderedReport(comparison, written, plots, notes, failures, time.perf_counter() - clock)
