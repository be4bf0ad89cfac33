"""``report.html``: the whole verdict of a sweep in one self-contained file.

:func:`render_html` turns a comparison (see :mod:`velocity.report.comparison`), the rendered
plots (:mod:`velocity.report.plots`) and the sweep's ``manifest.json`` into one HTML page,
in the order an agent or a person acts on it:

1. the header figures and the experiment's setting;
2. the **recommendation**: its title, the one-sentence reason, the candidates'
   table (worst case, binding condition, each condition's accuracy, price of
   robustness, elapsed) and the incomplete strategies with what they miss;
3. the best strategy under each attack, with the strategies within noise of it,
   its drop from its own clean run and the non-robust reference's (e.g. FedAvg's)
   result under the same attack;
4. both pictures;
5. every cell (with the lowest-final-loss line, which says when that cell is a
   no-attack run), then the diverged, failed and unfinished runs with their
   errors, the caveats and a manifest summary (host, Python, package versions,
   git commit, command).

The page references nothing outside itself: images are inlined as base64
``data:`` URIs, the CSS is an inline ``<style>`` block using system fonts, and
there are no scripts, links, frames or web fonts. So it can be mailed, attached
to an issue or opened offline, and shows the same everywhere. Every value from
the files is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from velocity.report.fmt import cell_accuracy, num, pct, pp, seconds, signed, with_std
from velocity.report.markdown import header_lines, recommendation_title, winner_line
from velocity.report.plots import Plot
from velocity.spec import NO_ATTACK
from velocity.sweepdir import names

FILE = names.REPORT

CSS = """
:root { color-scheme: light; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: #1b1f24; background: #fff; margin: 0 auto; padding: 24px 32px 48px;
       max-width: 1320px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 28px 0 8px; border-bottom: 1px solid #d8dee4;
     padding-bottom: 4px; }
.meta { color: #57606a; margin: 2px 0; }
.verdict { background: #f0f6ff; border-left: 4px solid #0969da; padding: 10px 14px;
           margin: 12px 0 16px; }
.verdict p { margin: 4px 0; }
.verdict .title { font-size: 1.15em; }
.verdict.none { background: #fff8c5; border-left-color: #9a6700; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; margin: 8px 0; }
th, td { border: 1px solid #d8dee4; padding: 4px 8px; text-align: left; }
th { background: #f6f8fa; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td.run, td.attack { overflow-wrap: break-word; }
.scroll { overflow-x: auto; }
tr.recommended td { background: #ddf4ff; font-weight: 600; }
tr.winner td { background: #dafbe1; }
tr.diverged td { color: #cf222e; }
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


def _strong(markdown: str) -> str:
    """Escaped text with markdown's ``**bold**`` as ``<strong>``."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", _e(markdown))


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _condition(condition: str | None) -> str:
    return "no attack" if condition == NO_ATTACK else str(condition or "–")


def _drop(value: float | None) -> str:
    return "–" if value is None else pp(value)


def _table(
    table_id: str,
    columns: Sequence[tuple[str, bool]],
    rows: Sequence[tuple[str, Sequence[tuple[str, str]]]],
) -> list[str]:
    """A scrollable table: ``columns`` are ``(name, numeric)``; each row is ``(tr class,
    [(cell html, td class)])`` with its cells already escaped. Names may wrap (long
    attack labels)."""
    out = [f'<div class="scroll"><table id="{table_id}">', "<thead><tr>"]
    out += [
        f"<th{' class=num' if numeric else ''}>{_breakable(name)}</th>" for name, numeric in columns
    ]
    out.append("</tr></thead><tbody>")
    for tr_class, cells in rows:
        attr = f' class="{tr_class}"' if tr_class else ""
        tds = "".join(f"<td{f' class={c}' if c else ''}>{text}</td>" for text, c in cells)
        out.append(f"<tr{attr}>{tds}</tr>")
    out.append("</tbody></table></div>")
    return out


# --------------------------------------------------------------------------- recommendation


def _worst_case(score: Mapping[str, Any], rank_by: str) -> str:
    value, se = score["worst_case"], score["worst_case_se"]
    if value is None:
        return "–"
    return pct(value, se) if rank_by == "accuracy" else with_std(value, se)


def _candidate_rows(rec: Mapping[str, Any], conditions: Sequence[str]) -> list[Any]:
    rows = []
    for score in rec["candidates"]:
        by_condition = {c["condition"]: c for c in score["conditions"]}
        cells = [
            (str(score["rank"]), "num"),
            (_e(score["strategy"]), ""),
            (_e(_worst_case(score, rec["rank_by"])), "num"),
        ]
        if rec["rank_by"] != "accuracy":
            cells.append((_e(pct(score["worst_case_accuracy"])), "num"))
        cells.append((_breakable(_condition(score["binding"])), "attack"))
        for condition in conditions:
            c = by_condition.get(condition)
            text = (
                cell_accuracy(c["accuracy"], c["accuracy_std"], c["diverged"], c["repeats"])
                if c
                else "–"
            )
            cells.append((_e(text), "num"))
        price = score["price_of_robustness"]
        cells += [
            ("–" if price is None else _e(pp(max(price, 0.0))), "num"),
            (_e(seconds(score["elapsed_s"])), "num"),
        ]
        recommended = score["strategy"] == rec["strategy"]
        rows.append(("recommended" if recommended else "", cells))
    return rows


def _candidates(rec: Mapping[str, Any]) -> list[str]:
    """The complete strategies ranked by worst case, the recommended one highlighted."""
    if not rec["candidates"]:
        return []
    conditions = [c["condition"] for c in rec["candidates"][0]["conditions"]]
    metric = "accuracy" if rec["rank_by"] == "accuracy" else "loss"
    columns = [("Rank", True), ("Strategy", False), (f"Worst-case {metric}", True)]
    if rec["rank_by"] != "accuracy":
        columns.append(("Worst-case accuracy", True))
    columns.append(("Binding", False))
    columns += [(_condition(c), True) for c in conditions]
    columns += [("Price of robustness", True), ("Elapsed", True)]
    return _table("candidates", columns, _candidate_rows(rec, conditions))


def _recommendation(rec: Mapping[str, Any]) -> list[str]:
    none = "" if rec["strategy"] else " none"
    out = [
        "<h2>Recommendation</h2>",
        f'<div class="verdict{none}" id="verdict">',
        f'<p class="title">{_strong(recommendation_title(rec))}</p>',
        f'<p class="reason" id="reason">{_e(rec["reason"])}</p>',
        "</div>",
        *_candidates(rec),
    ]
    if rec["incomplete"]:
        out += ["<p>Incomplete (not ranked):</p>", '<ul id="incomplete">']
        out += [
            f"<li>{_e(s['strategy'])}: {_e('; '.join(s['missing']))}</li>"
            for s in rec["incomplete"]
        ]
        out.append("</ul>")
    return out


# --------------------------------------------------------------------------- per attack


def _reference(entry: Mapping[str, Any]) -> str:
    """``FedAvg 27.7% (drop 66.6 pp)``, or ``–`` when the best is the reference itself."""
    ref = entry.get("reference")
    if not ref or ref["strategy"] == entry["strategy"]:
        return "–"
    text = f"{ref['strategy']} {pct(ref['accuracy'])}"
    if ref.get("accuracy_drop") is not None:
        text += f" (drop {pp(ref['accuracy_drop'])})"
    return text


def _attack_row(attack: str, entry: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    if entry is None:
        none = "no strategy finished a run under this attack"
        return "", [(_breakable(attack), "attack"), (_e(none), ""), *[("–", "num")] * 5]
    accuracy = cell_accuracy(
        entry["accuracy"], entry["accuracy_std"], entry["diverged"], entry["repeats"]
    )
    increase = entry.get("loss_increase")
    return "", [
        (_breakable(attack), "attack"),
        (_e(entry["strategy"]), ""),
        (_e(accuracy), "num"),
        (_e(_drop(entry.get("accuracy_drop"))), "num"),
        ("–" if increase is None else _e(signed(increase)), "num"),
        (_e(", ".join(entry["tied_with"]) or "– (decided)"), ""),
        (_e(_reference(entry)), ""),
    ]


def _by_attack(comparison: Mapping[str, Any]) -> list[str]:
    """Per attack: the best strategy under it, its ties and the reference's result."""
    most_robust = comparison["most_robust"]
    by_attack = most_robust["by_attack"]
    out = ["<h2>Best under each attack</h2>"]
    if not by_attack:
        return [*out, '<p class="note">No attacks in this sweep.</p>']
    columns = [
        ("Attack", False),
        ("Best", False),
        ("Accuracy", True),
        ("Drop vs its clean run", True),
        ("Δ loss", True),
        ("Within noise of it", False),
        ("Non-robust reference", False),
    ]
    rows = [_attack_row(attack, entry) for attack, entry in by_attack.items()]
    out += _table("by-attack", columns, rows)
    overall = most_robust.get("overall")
    if overall is not None:
        out.append(
            f"<p>Over every condition: <strong>{_e(overall['strategy'])}</strong>, worst-case "
            f"accuracy {_e(pct(overall['worst_case_accuracy']))} (binding: "
            f"{_e(_condition(overall['binding']))}): the recommendation.</p>"
        )
    return out


# --------------------------------------------------------------------------- every cell


def _cell_rows(comparison: Mapping[str, Any]) -> list[Any]:
    recommended = comparison["recommendation"]["strategy"]
    rows = []
    for row in comparison["ranking"]:
        classes = []
        if row["strategy"] == recommended:
            classes.append("recommended")
        if row["run"] == comparison.get("winner"):
            classes.append("winner")
        if row["diverged"]:
            classes.append("diverged")
        if row["attack"] != NO_ATTACK:
            classes.append("attacked")
        increase = row.get("loss_increase")
        accuracy = cell_accuracy(
            row["final_accuracy"], row["final_accuracy_std"], row["diverged"], row["repeats"]
        )
        cells = [
            (str(row["rank"]), "num"),
            (f"<code>{_breakable(row['run'])}</code>", "run"),
            (_e(row["strategy"]), ""),
            (_breakable(row["attack"]), "attack"),
            (_e(accuracy), "num"),
            (_e(with_std(row["final_loss"], row["final_loss_std"])), "num"),
            (_e(num(row["mean_loss"])), "num"),
            (_e(_drop(row.get("accuracy_drop"))), "num"),
            ("–" if increase is None else _e(signed(increase)), "num"),
            (_e(seconds(row["elapsed_s"])), "num"),
        ]
        rows.append((" ".join(classes), cells))
    return rows


def _cells(comparison: Mapping[str, Any]) -> list[str]:
    rank_by = (comparison.get("header") or {}).get("rank_by") or "accuracy"
    order = "highest final accuracy" if rank_by == "accuracy" else "lowest final loss"
    out = [
        f"<h2>Every cell ({_e(order)} first)</h2>",
        f'<p id="winner">{_e(winner_line(comparison))}</p>',
    ]
    if not comparison["ranking"]:
        return [*out, '<p class="note">No run finished: nothing to rank.</p>']
    columns = [
        ("Rank", True),
        ("Run", False),
        ("Strategy", False),
        ("Attack", False),
        ("Final acc", True),
        ("Final loss", True),
        ("Mean loss", True),
        ("Acc drop", True),
        ("Loss increase", True),
        ("Elapsed", True),
    ]
    out += _table("ranking", columns, _cell_rows(comparison))
    out.append(
        '<p class="note">Acc drop and loss increase: against the same strategy\'s no-attack '
        "cell, positive = worse. Highlighted: the recommended strategy's cells.</p>"
    )
    return out


def _run_list(title: str, runs: Sequence[Mapping[str, Any]], element_id: str) -> list[str]:
    if not runs:
        return []
    out = [f"<h2>{_e(title)}</h2>", f'<ul id="{element_id}">']
    out += [
        f'<li class="error"><code>{_e(r["run"])}</code>: <code>{_e(r["error"])}</code></li>'
        for r in runs
    ]
    return [*out, "</ul>"]


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
        listed = f"{len(previous)} earlier session(s), listed in {names.MANIFEST}"
        items.append(("Resumed", listed))
    return items


def _manifest(manifest: Mapping[str, Any]) -> list[str]:
    summary = manifest_summary(manifest)
    if not summary:
        return [
            "<h2>Manifest</h2>",
            f'<p class="note">No {names.MANIFEST} in this sweep directory.</p>',
        ]
    items = [f"<dt>{_e(label)}</dt><dd>{_e(text)}</dd>" for label, text in summary]
    return ["<h2>Manifest</h2>", "<dl>", *items, "</dl>"]


def _figures(plots: Sequence[Plot]) -> list[str]:
    if not plots:
        return []
    return ["<h2>Plots</h2>"] + [
        f'<figure id="{_e(Path(plot.file).stem)}"><img src="{_data_uri(plot.png)}" '
        f'alt="{_e(plot.title)}"><figcaption>{_e(plot.title)} '
        f"(<code>{_e(plot.file)}</code>)</figcaption></figure>"
        for plot in plots
    ]


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
    out += [f'<p class="meta">{_e(line)}</p>' for line in header_lines(comparison["header"])]
    out += _recommendation(comparison["recommendation"])
    out += _by_attack(comparison)
    out += _figures(plots)
    out += _cells(comparison)
    out += _run_list("Diverged runs (the strategy broke)", comparison["diverged"], "diverged")
    out += _run_list("Failed runs", comparison["failed"], "failed")
    if comparison["not_run"]:
        out += ["<h2>Not run</h2>", '<ul id="not-run">']
        out += [
            f"<li><code>{_e(n['run'])}</code> ({_e(n['state'])})</li>"
            for n in comparison["not_run"]
        ]
        out.append("</ul>")
    if comparison["caveats"]:
        out += ["<h2>Caveats</h2>", '<ul id="caveats">']
        out += [f"<li>{_e(c)}</li>" for c in comparison["caveats"]]
        out.append("</ul>")
    out += _manifest(manifest or {})
    out.append(
        f"<footer>Generated {_e(comparison.get('generated_at', ''))} by velocity from "
        f"<code>{_e(comparison.get('sweep_dir', ''))}</code>; "
        f"{names.COMPARISON} holds the same numbers.</footer>"
    )
    out.append("</body></html>")
    return "\n".join(out) + "\n"
