"""The verdict on the cases that motivated it: the first version's pick vs the recommendation.

For each case it runs a real sweep (embedded digits, logistic regression unless
said otherwise, 8 strategies, 3 seeds) and prints, from the same files:

- **before**: the first version's "most robust overall" rule — the strategy with the
  smallest mean loss increase over its *own* no-attack baseline (reimplemented here
  from the files, in a few lines, because velocity no longer has it);
- **after**: ``comparison.json``'s recommendation (and whether it is decided);
- the **best worst case**, computed independently from the summaries (per seed the
  worst final accuracy over {no attack, the attack}, a diverged run counting 0,
  then the mean over seeds), and each pick's worst case.

A pick *agrees* when it is the best worst-case strategy, or — for an undecided
recommendation — when that strategy is in its tie. Not a test: it prints a
markdown table (``python bench/verdict_cases.py [--quick]``); bench/README.md has
the latest one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from velocity.engine.sweep import run_sweep
from velocity.spec import matrix_spec

STRATEGIES = [
    "FedAvg",
    "FedMedian",
    "TrimmedMean:beta=0.2",
    "Krum",
    "MultiKrum",
    "Bulyan",
    "GeometricMedian",
    "CenteredClipping",
]
ATTACKS = [
    "gaussian_noise:sigma=10,count=1",
    "sign_flipping",
    "alie",
    "ipm:epsilon=0.5",
    "ipm:epsilon=100",
    "label_flipping",
    "zero",
    "model_poisoning",
]
PARTITIONS = {"iid": {}, "dirichlet α=0.1": {"partition": "dirichlet", "alpha": 0.1}}


def cases(quick: bool) -> list[tuple[str, list[str], list[str], dict[str, Any]]]:
    """(name, strategies, attacks, settings) for every case."""
    out = []
    attacks = ATTACKS[:3] if quick else ATTACKS
    for partition, settings in PARTITIONS.items():
        for attack in attacks:
            out.append((f"{attack}, {partition}", STRATEGIES, [attack], dict(settings)))
    for attack in ("alie", "gaussian_noise:sigma=10,count=1"):
        out.append(
            (
                f"{attack}, 50 clients, dirichlet α=0.1",
                STRATEGIES,
                [attack],
                {"clients": 50, "partition": "dirichlet", "alpha": 0.1},
            )
        )
    out.append(
        (
            "ipm:epsilon=1000, mlp (FedAvg diverges)",
            STRATEGIES,
            ["ipm:epsilon=1000"],
            {"model_id": "mlp", "rounds": 15},
        )
    )
    out.append(
        (
            "six baselines, no attack, 1 repeat",
            [*STRATEGIES[:3], "FedProx", "GeometricMedian", "CenteredClipping"],
            [],
            {"repeats": 1},
        )
    )
    return out


def summaries(sweep_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/summary.json"))]


def worst_cases(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over seeds of the worst final accuracy over conditions (diverged counts 0)."""
    acc: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for s in rows:
        value = s["final_accuracy"] if s["status"] == "done" else 0.0
        acc[s["strategy"]][s["attack"]][s["seed"]] = value
    out = {}
    for strategy, conditions in acc.items():
        seeds = set.intersection(*(set(v) for v in conditions.values()))
        out[strategy] = statistics.fmean(
            min(conditions[c][seed] for c in conditions) for seed in seeds
        )
    return out


def first_version_pick(rows: list[dict[str, Any]]) -> str | None:
    """The old rule: smallest mean loss increase over the strategy's own baseline."""
    loss: dict[tuple[str, str], list[float]] = defaultdict(list)
    for s in rows:
        if s["status"] == "done" and s["final_loss"] is not None:
            loss[(s["strategy"], s["attack"])].append(s["final_loss"])
    mean = {k: statistics.fmean(v) for k, v in loss.items()}
    increases: dict[str, list[float]] = defaultdict(list)
    for (strategy, attack), value in mean.items():
        if attack != "none" and (strategy, "none") in mean:
            increases[strategy].append(value - mean[(strategy, "none")])
    attacks = {a for (_, a) in mean if a != "none"}
    complete = {s: statistics.fmean(v) for s, v in increases.items() if len(v) == len(attacks)}
    return min(complete, key=lambda s: (complete[s], s)) if complete else None


def run_case(
    name: str, strategies: list[str], attacks: list[str], settings: dict[str, Any], root: Path
) -> dict[str, Any]:
    repeats = settings.pop("repeats", 3)
    spec = matrix_spec(strategies, attacks, repeats=repeats, **settings)
    out = root / f"case{len(list(root.iterdir()))}"
    started = time.perf_counter()
    result = run_sweep(spec.expand(), out, progress=False)
    wall = time.perf_counter() - started
    rows = summaries(out)
    worst = worst_cases(rows)
    best = max(worst, key=lambda s: worst[s])
    rec = (result.comparison or {})["recommendation"]
    before = first_version_pick(rows) if attacks else None
    after = rec["strategy"]
    agrees_after = after == best if rec["decided"] else best in rec["tie"]
    return {
        "case": name,
        "runs": len(rows),
        "wall_s": wall,
        "before": before,
        "before_worst": worst.get(before) if before else None,
        "after": after,
        "decided": rec["decided"],
        "tie": rec["tie"],
        "after_worst": worst.get(after),
        "best": best,
        "best_worst": worst[best],
        "agrees_before": before == best if before else None,
        "agrees_after": agrees_after,
    }


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three attacks only")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, strategies, attacks, settings in cases(args.quick):
            results.append(run_case(name, strategies, attacks, settings, Path(tmp)))
            r = results[-1]
            print(f"  {r['case']}: {r['runs']} runs in {r['wall_s']:.1f}s", file=sys.stderr)
    print("| case | before: most robust overall | after: recommendation | best worst case |")
    print("| --- | --- | --- | --- |")
    for r in results:
        before = f"{r['before']} ({pct(r['before_worst'])})" if r["before"] else "–"
        if r["agrees_before"] is False:
            before += " ✗"
        state = "decided" if r["decided"] else f"tie of {len(r['tie'])}"
        after = f"{r['after']} ({pct(r['after_worst'])}, {state})" + (
            "" if r["agrees_after"] else " ✗"
        )
        print(f"| {r['case']} | {before} | {after} | {r['best']} ({pct(r['best_worst'])}) |")
    attacked = [r for r in results if r["before"] is not None]
    print()
    print(
        f"Agreement with the best worst case: before {sum(r['agrees_before'] for r in attacked)}"
        f"/{len(attacked)}, after {sum(r['agrees_after'] for r in results)}/{len(results)} "
        "(an undecided recommendation agrees when the best is in its tie)."
    )
    print(
        f"Total: {sum(r['runs'] for r in results)} runs, {sum(r['wall_s'] for r in results):.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
