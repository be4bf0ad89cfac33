"""``comparison.md`` and the console summary: the comparison as text.

The helpers (:func:`header_lines`, :func:`recommendation_title`, :func:`winner_line`,
:func:`attack_phrase`, :func:`robust_lines`, :func:`strategy_table`, :func:`cell_table`)
are shared with ``report.html`` (:mod:`velocity.report.html`), so every report says the
same thing in the same words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from velocity.report.comparison import loss_noise
from velocity.report.fmt import cell_accuracy, num, pct, pp, seconds, signed, with_std
from velocity.spec import NO_ATTACK
from velocity.sweepdir import files, names


def _describe(strategy: str, attack: str | None) -> str:
    """``FedMedian`` (no attack) or ``FedMedian under gaussian_noise``."""
    return strategy if attack in (None, NO_ATTACK) else f"{strategy} under {attack}"


def winner_line(comparison: Mapping[str, Any]) -> str:
    """The lowest-final-loss cell (the first version's line), or its within-noise sentence."""
    rows = {r["run"]: r for r in comparison["ranking"]}
    winner = comparison["winner"]
    if winner is None:
        return "Winner (lowest final loss): none (no run finished with a finite loss)."
    top = rows[winner]
    baseline = (
        " — a no-attack run, not a robustness verdict (see the recommendation)"
        if top["attack"] == NO_ATTACK
        else ""
    )
    if not comparison["winner_within_noise"]:
        return (
            f"Winner (lowest final loss): {winner} ({_describe(top['strategy'], top['attack'])}), "
            f"final loss {with_std(top['final_loss'], top['final_loss_std'])}{baseline}."
        )
    details = []
    for name in comparison["tied_with"][1:]:
        delta, two_se = loss_noise(top, rows[name]) or (0.0, 0.0)
        details.append(
            f"{_describe(rows[name]['strategy'], rows[name]['attack'])} "
            f"(Δ={delta:.3g}, 2·SE={two_se:.3g})"
        )
    return (
        f"Lowest final loss: no clear winner: {_describe(top['strategy'], top['attack'])} has the "
        f"lowest mean final loss, but {', '.join(details)} within noise of it."
    )


def setting_line(setting: Mapping[str, Any]) -> str:
    """``dataset digits · model logreg · partition dirichlet (α=0.1) · 10 clients, 10 per round
    (fraction_fit 1) · 20 rounds · 1 local epoch, batch 32, lr 0.1 · test 360``."""

    def show(value: Any) -> str:
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    parts = []
    for key in ("dataset", "model"):
        if setting.get(key) is not None:
            parts.append(f"{key} {show(setting[key])}")
    if setting.get("partition") is not None:
        alpha = f" (α={show(setting['alpha'])})" if setting.get("alpha") is not None else ""
        if setting.get("shards_per_client") is not None:
            alpha = f" ({show(setting['shards_per_client'])} per client)"
        parts.append(f"partition {show(setting['partition'])}{alpha}")
    if setting.get("samples_per_client") is not None:
        parts.append(f"≤ {show(setting['samples_per_client'])} samples per client")
    if setting.get("clients") is not None:
        parts.append(
            f"{show(setting['clients'])} clients, {show(setting.get('clients_per_round'))} per "
            f"round (fraction_fit {show(setting.get('fraction_fit'))})"
        )
    if setting.get("rounds") is not None:
        parts.append(f"{show(setting['rounds'])} rounds")
    local = (
        f"{show(setting['local_steps'])} local step(s)"
        if setting.get("local_steps") is not None
        else f"{show(setting['local_epochs'])} local epoch(s)"
        if setting.get("local_epochs") is not None
        else None
    )
    if local is not None:
        momentum = f", momentum {show(setting['momentum'])}" if setting.get("momentum") else ""
        parts.append(
            f"{local}, batch {show(setting.get('batch_size'))}, lr {show(setting.get('lr'))}"
            f"{momentum}"
        )
    if setting.get("test_samples") is not None:
        parts.append(f"{show(setting['test_samples'])} test samples")
    return " · ".join(parts)


def header_lines(header: Mapping[str, Any]) -> list[str]:
    counts = [f"{header['runs_done']} done"]
    if header.get("runs_diverged"):
        counts.append(f"{header['runs_diverged']} diverged")
    counts.append(f"{header['runs_failed']} failed")
    if header["runs_not_run"]:
        counts.append(f"{header['runs_not_run']} not run")
    runs = (
        f"{header['runs_total']} runs ({', '.join(counts)}) in {header['cells']} cells × "
        f"{header['repeats']} repeat" + ("s" if header["repeats"] != 1 else "")
    )
    parts = [runs]
    if header["parallel"] is not None:
        parts.append(f"parallel {header['parallel']}")
    timing = f"serial Σ {seconds(header['serial_s'])}"
    if header["wall_s"] is not None:
        parts.append(f"wall {seconds(header['wall_s'])}")
        if header["speedup"] is not None:
            timing += f" ({header['speedup']:.1f}× speedup)"
    parts.append(timing)
    lines = [" · ".join(parts)]
    setting = header.get("setting") or {}
    if setting_line(setting):
        lines.append(setting_line(setting))
    if setting.get("byzantine"):
        lines.append(
            "Byzantine clients: "
            + ", ".join(f"{attack} {n}" for attack, n in setting["byzantine"].items())
        )
    return lines


def recommendation_title(rec: Mapping[str, Any]) -> str:
    if rec["strategy"] is None:
        return "**No recommendation.**"
    state = (
        "decided"
        if rec["decided"]
        else "tie within noise"
        if rec["tie"]
        else "not decided: noise not measured"
        if not rec["noise_measured"]
        else "not decided"
    )
    return f"**Recommendation: {rec['strategy']}** ({state})"


#: What ended a sweep run until decided, as the report says it.
_ENDED = {
    "decided": "the recommendation was decided",
    "max-repeats": "max_repeats was reached",
    "budget": "the next repeat would have passed the budget",
    "settled": "no repeat up to max_repeats was expected to separate the tie",
    "no-candidate": "no strategy had a result in every condition",
    None: "it had not ended (resume it to go on)",
}


def decision_line(decision: Mapping[str, Any] | None) -> str | None:
    """How a sweep run until decided ended and what it spent, or None for a fixed grid."""
    if not decision:
        return None
    spent, full = decision["runs_spent"], decision["full_grid_runs"]
    line = (
        f"Run until decided: it stopped after {_repeats(decision['repeats'])} because "
        f"{_ENDED[decision['ended']]}; "
        f"{spent} runs spent, against {full} for the full grid"
    )
    if full > spent:
        line += f" ({full - spent} saved, {full / max(spent, 1):.1f}× fewer)"
    if decision["eliminated"]:
        line += "; eliminated (no more repeats once separated from the leader): " + ", ".join(
            f"{s} after {_repeats(k)}" for s, k in decision["eliminated"].items()
        )
    if decision.get("settled"):
        line += "; settled in the tie (no repeat left expected to separate it): " + ", ".join(
            f"{s} after {_repeats(k)}" for s, k in decision["settled"].items()
        )
    return line + "."


def _repeats(k: int) -> str:
    return f"{k} repeat{'s' if k != 1 else ''}"


def _metric_cell(value: float | None, se: float | None, rank_by: str) -> str:
    if value is None:
        return "–"
    if rank_by == "accuracy":
        return pct(value, se)
    return with_std(value, se)


def strategy_table(
    rec: Mapping[str, Any], eliminated: Mapping[str, int] | None = None
) -> list[str]:
    """One row per complete strategy: worst case, binding condition, each condition; a
    strategy eliminated in a sweep run until decided is marked so."""
    candidates = rec["candidates"]
    if not candidates:
        return []
    conditions = [c["condition"] for c in candidates[0]["conditions"]]
    names = ["no attack" if c == NO_ATTACK else c for c in conditions]
    metric = "Worst-case acc" if rec["rank_by"] == "accuracy" else "Worst-case loss"
    lines = [
        f"| Rank | Strategy | {metric} | Binding | {' | '.join(names)} | Price | Elapsed |",
        "| ---: | --- | ---: | --- | " + " | ".join("---:" for _ in names) + " | ---: | ---: |",
    ]
    for score in candidates:
        by_condition = {c["condition"]: c for c in score["conditions"]}
        marker = " ←" if score["strategy"] == rec["strategy"] else ""
        if eliminated and score["strategy"] in eliminated:
            marker += f" (eliminated after {_repeats(eliminated[score['strategy']])})"
        cells = [
            str(score["rank"]),
            f"{score['strategy']}{marker}",
            _metric_cell(score["worst_case"], score["worst_case_se"], rec["rank_by"]),
            "no attack" if score["binding"] == NO_ATTACK else str(score["binding"] or "–"),
            *(
                cell_accuracy(c["accuracy"], c["accuracy_std"], c["diverged"], c["repeats"])
                if (c := by_condition.get(condition))
                else "–"
                for condition in conditions
            ),
            "–"
            if score["price_of_robustness"] is None
            else pp(max(score["price_of_robustness"], 0.0)),
            seconds(score["elapsed_s"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def attack_phrase(entry: Mapping[str, Any]) -> str:
    """``FedMedian 93.1% (accuracy drop 0.3 pp, Δ loss +0.011 vs its clean run; FedAvg: ...)``."""
    accuracy = cell_accuracy(
        entry["accuracy"], entry["accuracy_std"], entry["diverged"], entry["repeats"]
    )
    head = f"{entry['strategy']} {accuracy}"
    context = []
    if entry.get("accuracy_drop") is not None:
        own = f"accuracy drop {pp(entry['accuracy_drop'])}"
        if entry.get("loss_increase") is not None:
            own += f", Δ loss {signed(entry['loss_increase'])}"
        context.append(own + " vs its clean run")
    ref = entry.get("reference")
    if ref and ref["strategy"] != entry["strategy"]:
        text = f"{ref['strategy']}: {pct(ref['accuracy'])}"
        if ref.get("accuracy_drop") is not None:
            text += f", drop {pp(ref['accuracy_drop'])}"
        if ref.get("loss_increase") is not None:
            text += f", Δ loss {signed(ref['loss_increase'])}"
        context.append(text)
    tie = f"; tied within noise with {', '.join(entry['tied_with'])}" if entry["tied_with"] else ""
    return head + (f" ({'; '.join(context)})" if context else "") + tie


def robust_lines(comparison: Mapping[str, Any]) -> list[str]:
    by_attack = comparison["most_robust"]["by_attack"]
    if not by_attack:
        return ["No attacks in this sweep."]
    lines = []
    for attack, entry in by_attack.items():
        if entry is None:
            lines.append(f"- {attack}: no strategy finished a run under this attack")
        else:
            lines.append(f"- {attack}: {attack_phrase(entry)}")
    overall = comparison["most_robust"]["overall"]
    if overall is not None:
        lines.append(f"- Overall: {overall['strategy']} (the recommendation: best worst case)")
    else:
        lines.append("- Overall: no verdict (no strategy is complete: see caveats)")
    return lines


def cell_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| Rank | Run | Strategy | Attack | Final acc | Final loss | Mean loss | Acc drop "
        "| Elapsed |",
        "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        drop = r["accuracy_drop"]
        cells = [
            str(r["rank"]),
            f"`{r['run']}`",
            r["strategy"],
            r["attack"],
            cell_accuracy(
                r["final_accuracy"], r["final_accuracy_std"], r["diverged"], r["repeats"]
            ),
            with_std(r["final_loss"], r["final_loss_std"]),
            num(r["mean_loss"]),
            "–" if drop is None else pp(drop),
            seconds(r["elapsed_s"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(comparison: Mapping[str, Any], images: Sequence[str] = ()) -> str:
    """``comparison.md``: header, recommendation, per-attack verdicts, every cell, failures,
    caveats, then the plots (``images``, paths relative to the sweep directory)."""
    name = Path(comparison["sweep_dir"]).name or comparison["sweep_dir"]
    rec = comparison["recommendation"]
    lines = [f"# Sweep comparison: {name}", "", *header_lines(comparison["header"]), ""]
    lines += ["## Recommendation", "", recommendation_title(rec), "", rec["reason"], ""]
    decision = comparison.get("decision")
    if decision_line(decision):
        lines += [str(decision_line(decision)), ""]
    table = strategy_table(rec, (decision or {}).get("eliminated"))
    if table:
        lines += [*table, ""]
    if rec["incomplete"]:
        lines += ["Incomplete (not ranked):", ""]
        lines += [f"- {s['strategy']}: {'; '.join(s['missing'])}" for s in rec["incomplete"]]
        lines.append("")
    lines += ["## Most robust under each attack", "", *robust_lines(comparison), ""]
    lines += ["## Every cell", "", winner_line(comparison), ""]
    if comparison["ranking"]:
        lines += [*cell_table(comparison["ranking"]), ""]
    if comparison["diverged"]:
        lines += ["## Diverged runs (the strategy broke)", ""]
        lines += [f"- `{f['run']}`: {f['error']}" for f in comparison["diverged"]] + [""]
    if comparison["failed"]:
        lines += ["## Failed runs", ""]
        lines += [f"- `{f['run']}`: {f['error']}" for f in comparison["failed"]] + [""]
    if comparison["not_run"]:
        lines += ["## Not run", ""]
        lines += [f"- `{n['run']}` ({n['state']})" for n in comparison["not_run"]] + [""]
    if comparison["caveats"]:
        lines += ["## Caveats", "", *[f"- {c}" for c in comparison["caveats"]], ""]
    if images:
        lines += ["## Plots", "", *[f"![{Path(i).stem}]({i})" for i in images], ""]
    lines.append(f"_Generated {comparison['generated_at']}._")
    return "\n".join(lines) + "\n"


def render_console(comparison: Mapping[str, Any], sweep_dir: Path) -> str:
    """A few lines for the terminal: the recommendation first, then the details' paths."""
    rec = comparison["recommendation"]
    title = recommendation_title(rec).replace("**", "")
    lines = [f"{title}: {rec['reason']}"]
    decided = decision_line(comparison.get("decision"))
    if decided:
        lines.append(decided)
    for attack, entry in comparison["most_robust"]["by_attack"].items():
        if entry is not None:
            lines.append(f"Best under {attack}: {attack_phrase(entry)}")
    lines.append(winner_line(comparison))
    failed, diverged = len(comparison["failed"]), len(comparison["diverged"])
    if diverged:
        lines.append(f"{diverged} run{'s' if diverged != 1 else ''} diverged (counted as broken)")
    if failed:
        plural = "s" if failed != 1 else ""
        lines.append(f"{failed} run{plural} failed (listed in {names.COMPARISON_MD})")
    lines.append(f"Comparison: {files.report_path(sweep_dir, names.COMPARISON_MD)}")
    if files.has(sweep_dir, names.REPORT):
        lines.append(f"Report with plots: {files.report_path(sweep_dir, names.REPORT)}")
    return "\n".join(lines)
