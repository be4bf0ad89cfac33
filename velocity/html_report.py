"""``report.html``: the whole verdict of a sweep in one self-contained file.

:func:`render_html` turns a comparison (see :mod:`velocity.report`), the rendered
plots (:mod:`velocity.plots`) and the sweep's ``manifest.json`` into one HTML
page: the header figures, the verdict lines, the ranked table, the most robust
strategy per attack, both pictures, failed and unfinished runs with their
errors, the caveats and a manifest summary (host, Python, package versions, git
commit, command).

The page references nothing outside itself: images are inlined as base64
``data:`` URIs, the CSS is an inline ``<style>`` block using system fonts, and
there are no scripts, links, frames or web fonts. So it can be mailed, attached
to an issue or opened offline, and shows the same everywhere. Every value from
the files is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from velocity.plots import Plot
from velocity.report import (
    NO_ATTACK,
    _header_lines,
    _num,
    _pct,
    _robust_lines,
    _seconds,
    _signed,
    _verdict_line,
    _with_std,
)

FILE = "report.html"

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1b1f24; background: #fff; margin: 0 auto; padding: 24px 32px 48px;
       max-width: 1320px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 28px 0 8px; border-bottom: 1px solid #d8dee4;
     padding-bottom: 4px; }
.meta { color: #57606a; margin: 2px 0; }
.verdict { font-size: 1.1em; font-weight: 600; background: #f0f6ff;
           border-left: 4px solid #0969da; padding: 10px 14px; margin: 16px 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
th, td { border: 1px solid #d8dee4; padding: 4px 8px; text-align: left; }
th { background: #f6f8fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums;
                 white-space: nowrap; }
td.run, td.attack { overflow-wrap: break-word; }
.scroll { overflow-x: auto; }
tr.winner td { background: #dafbe1; font-weight: 600; }
tr.tied td { background: #fff8c5; }
tr.attacked td.attack { color: #9a3412; }
code { font: 0.92em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
figure { margin: 12px 0 24px; }
figure img { max-width: 100%; height: auto; border: 1px solid #d8dee4; }
figcaption { color: #57606a; font-size: 0.9em; }
ul { padding-left: 22px; }
li.error code { color: #cf222e; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
dt { color: #57606a; }
dd { margin: 0; overflow-wrap: anywhere; }
.note { color: #57606a; font-style: italic; }
footer { margin-top: 32px; color: #57606a; font-size: 0.85em; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _breakable(value: Any) -> str:
    """Escaped text that may wrap after ``,``, ``:``, ``__`` and ``-`` (long labels)."""
    text = _e(value)
    for mark in (",", ":", "__", "-"):
        text = text.replace(mark, mark + "<wbr>")
    return text


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _table(comparison: Mapping[str, Any]) -> list[str]:
    winner = comparison.get("winner")
    tied = set(comparison.get("tied_with") or [])
    columns = [
        ("Rank", True),
        ("Run", False),
        ("Strategy", False),
        ("Attack", False),
        ("Final loss", True),
        ("Mean loss", True),
        ("Final acc", True),
        ("Loss increase", True),
        ("Acc drop", True),
        ("Elapsed", True),
    ]
    out = ['<div class="scroll"><table id="ranking">', "<thead><tr>"]
    out += [f"<th{' class=num' if num else ''}>{name}</th>" for name, num in columns]
    out.append("</tr></thead><tbody>")
    for row in comparison.get("ranking") or []:
        classes = []
        if row["run"] == winner and not comparison.get("winner_within_noise"):
            classes.append("winner")
        elif row["run"] in tied:
            classes.append("tied")
        if row["attack"] != NO_ATTACK:
            classes.append("attacked")
        increase = row.get("loss_increase")
        drop = row.get("accuracy_drop")
        cells = [
            (str(row["rank"]), "num"),
            (f"<code>{_breakable(row['run'])}</code>", "run"),
            (_e(row["strategy"]), ""),
            (_breakable(row["attack"]), "attack"),
            (_e(_with_std(row["final_loss"], row["final_loss_std"])), "num"),
            (_e(_num(row["mean_loss"])), "num"),
            (_e(_pct(row["final_accuracy"], row["final_accuracy_std"])), "num"),
            ("–" if increase is None else _e(_signed(increase)), "num"),
            ("–" if drop is None else _e(_signed(100 * drop, ".1f") + " pp"), "num"),
            (_e(_seconds(row["elapsed_s"])), "num"),
        ]
        tr_class = f' class="{" ".join(classes)}"' if classes else ""
        out.append(
            f"<tr{tr_class}>"
            + "".join(f"<td{f' class={c}' if c else ''}>{text}</td>" for text, c in cells)
            + "</tr>"
        )
    out.append("</tbody></table></div>")
    return out


def _gib(value: Any) -> str:
    return f"{value / 2**30:.1f} GiB" if isinstance(value, int | float) else "?"


def manifest_summary(manifest: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(label, text)`` pairs of the manifest fields worth showing (empty for no manifest)."""
    if not manifest:
        return []
    items: list[tuple[str, str]] = []
    if manifest.get("created_at"):
        items.append(("Started", str(manifest["created_at"])))
    if manifest.get("command"):
        items.append(("Command", " ".join(str(c) for c in manifest["command"])))
    git = manifest.get("git")
    if isinstance(git, Mapping) and git.get("commit"):
        dirty = " (uncommitted changes)" if git.get("dirty") else ""
        items.append(("Git commit", f"{git['commit']}{dirty}"))
    host = manifest.get("host")
    if isinstance(host, Mapping):
        parts = [
            str(host.get("hostname") or "?"),
            f"{host.get('cpu_model') or 'CPU ?'} × {host.get('cpu_count') or '?'}",
            f"RAM {_gib(host.get('ram_bytes'))}",
            str(host.get("os") or ""),
        ]
        items.append(("Host", " · ".join(p for p in parts if p)))
    py = manifest.get("python")
    if isinstance(py, Mapping):
        items.append(("Python", f"{py.get('implementation') or ''} {py.get('version') or '?'}"))
    packages = manifest.get("packages")
    if isinstance(packages, Mapping):
        versions = [f"{k} {v or '(not installed)'}" for k, v in packages.items()]
        items.append(("Packages", ", ".join(versions)))
    for key, label in (("config", "Experiment file"), ("lock_file", "Lock file")):
        entry = manifest.get(key)
        if isinstance(entry, Mapping) and entry.get("path"):
            digest = entry.get("sha256")
            text = str(entry["path"]) + (f" (sha256 {digest[:12]}…)" if digest else "")
            items.append((label, text))
    previous = manifest.get("previous")
    if isinstance(previous, list) and previous:
        items.append(("Resumed", f"{len(previous)} earlier session(s), listed in manifest.json"))
    return items


def render_html(
    comparison: Mapping[str, Any],
    plots: Sequence[Plot] = (),
    manifest: Mapping[str, Any] | None = None,
) -> str:
    """The text of ``report.html`` (see module doc); a pure function of its arguments."""
    name = Path(str(comparison.get("sweep_dir") or "")).name or "sweep"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Sweep report: {_e(name)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        f"<h1>Sweep report: {_e(name)}</h1>",
    ]
    out += [f'<p class="meta">{_e(line)}</p>' for line in _header_lines(comparison["header"])]
    out.append(f'<p class="verdict" id="verdict">{_e(_verdict_line(comparison))}</p>')
    out.append("<h2>Ranking (lowest final loss first)</h2>")
    if comparison.get("ranking"):
        out += _table(comparison)
    else:
        out.append('<p class="note">No run finished: nothing to rank.</p>')
    out += ["<h2>Most robust under attack</h2>", "<ul>"]
    out += [
        f"<li>{_e(line.removeprefix('- '))}</li>"
        for line in _robust_lines(comparison["most_robust"])
    ]
    out.append("</ul>")
    if plots:
        out.append("<h2>Plots</h2>")
        for plot in plots:
            out.append(
                f'<figure id="{_e(Path(plot.file).stem)}"><img src="{_data_uri(plot.png)}" '
                f'alt="{_e(plot.title)}"><figcaption>{_e(plot.title)} '
                f"(<code>{_e(plot.file)}</code>)</figcaption></figure>"
            )
    if comparison.get("failed"):
        out += ["<h2>Failed runs</h2>", "<ul>"]
        out += [
            f'<li class="error"><code>{_e(f["run"])}</code>: <code>{_e(f["error"])}</code></li>'
            for f in comparison["failed"]
        ]
        out.append("</ul>")
    if comparison.get("not_run"):
        out += ["<h2>Not run</h2>", "<ul>"]
        out += [
            f"<li><code>{_e(n['run'])}</code> ({_e(n['state'])})</li>"
            for n in comparison["not_run"]
        ]
        out.append("</ul>")
    if comparison.get("caveats"):
        out += ["<h2>Caveats</h2>", "<ul>"]
        out += [f"<li>{_e(c)}</li>" for c in comparison["caveats"]]
        out.append("</ul>")
    out.append("<h2>Manifest</h2>")
    summary = manifest_summary(manifest or {})
    if summary:
        out.append("<dl>")
        out += [f"<dt>{_e(label)}</dt><dd>{_e(text)}</dd>" for label, text in summary]
        out.append("</dl>")
    else:
        out.append('<p class="note">No manifest.json in this sweep directory.</p>')
    out.append(
        f"<footer>Generated {_e(comparison.get('generated_at', ''))} by velocity from "
        f"<code>{_e(comparison.get('sweep_dir', ''))}</code>; "
        "comparison.json holds the same numbers.</footer>"
    )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
