"""Decide with the fewest runs: ``until = "decided"`` against a fixed 5-repeat grid.

For each case of the verdict benchmark (``bench/verdict_cases.py``: embedded digits,
8 strategies, one attack each) and for the Fashion-MNIST experiment
(``examples/fashion-mnist.toml``, when the dataset is installed), it runs the same
sweep twice from the same seeds: a fixed grid of 5 repeats, and one run until
decided with ``max_repeats = 5`` (one repeat of every cell, then repeats only for
the strategies still in the running: :mod:`velocity.engine.decide`). It prints the
runs and wall seconds of each, what ended the adaptive one, and whether the answers
agree: the same recommended strategy, or — where the 5-repeat grid itself is a
tie — a pick inside that tie.

Not a test: it prints a markdown table (``python bench/decide.py [--quick]
[--no-fashion]``); bench/README.md has the latest one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from verdict_cases import cases

from velocity.engine.sweep import run_sweep
from velocity.engine.until import UntilDecided, first_repeat
from velocity.errors import SpecError
from velocity.spec import RunSpec, build_sweep, load_experiment, matrix_spec

REPEATS = 5
FASHION = Path(__file__).resolve().parent.parent / "examples" / "fashion-mnist.toml"


def timed_sweep(runs: list[RunSpec], out: Path, planner: UntilDecided | None) -> dict[str, Any]:
    started = time.perf_counter()
    result = run_sweep(runs, out, progress=False, planner=planner)
    wall = time.perf_counter() - started
    rec = (result.comparison or {})["recommendation"]
    return {"runs": len(result.runs), "wall_s": wall, "rec": rec}


def compare(name: str, one_repeat: list[RunSpec], grid: list[RunSpec], root: Path) -> dict:
    fixed = timed_sweep(grid, root / f"{len(list(root.iterdir()))}-grid", None)
    planner = UntilDecided(max_repeats=REPEATS, budget=None, rank_by="accuracy", progress=False)
    adaptive = timed_sweep(
        first_repeat(one_repeat), root / f"{len(list(root.iterdir()))}-until", planner
    )
    g, a = fixed["rec"], adaptive["rec"]
    agrees = a["strategy"] == g["strategy"] or (not g["decided"] and a["strategy"] in g["tie"])
    decision = planner.record
    return {
        "case": name,
        "grid": fixed,
        "until": adaptive,
        "ended": decision.ended if decision else None,
        "eliminated": len(decision.eliminated) if decision else 0,
        "settled": len(decision.settled) if decision else 0,
        "agrees": agrees,
    }


def digits_cases(quick: bool) -> list[tuple[str, list[RunSpec], list[RunSpec]]]:
    out = []
    for name, strategies, attacks, settings in cases(quick):
        settings = {k: v for k, v in settings.items() if k != "repeats"}
        one = matrix_spec(strategies, attacks, repeats=1, **settings).expand()
        grid = matrix_spec(strategies, attacks, repeats=REPEATS, **settings).expand()
        out.append((name.replace(", 1 repeat", ""), one, grid))
    return out


def fashion_case(strategies: int) -> tuple[str, list[RunSpec], list[RunSpec]] | None:
    spec = load_experiment(FASHION)
    runs = [r.model_dump() for r in spec.runs][: 4 * strategies]
    shared = spec.shared.model_dump()
    one = build_sweep({"shared": {**shared, "repeats": 1}, "runs": runs}).expand()
    try:
        from velocity.engine.sweep import check_setups

        check_setups(one[:1])
    except SpecError as exc:
        print(f"  Fashion-MNIST skipped: {exc}", file=sys.stderr)
        return None
    grid = build_sweep({"shared": {**shared, "repeats": REPEATS}, "runs": runs}).expand()
    return (f"Fashion-MNIST, {strategies} strategies × 4 conditions", one, grid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three attacks only")
    parser.add_argument("--no-fashion", action="store_true", help="skip Fashion-MNIST")
    parser.add_argument(
        "--fashion-strategies", type=int, default=5, help="strategies of the Fashion case"
    )
    args = parser.parse_args()
    todo = digits_cases(args.quick)
    if not args.no_fashion:
        fashion = fashion_case(args.fashion_strategies)
        if fashion is not None:
            todo.append(fashion)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, one, grid in todo:
            results.append(compare(name, one, grid, Path(tmp)))
            r = results[-1]
            print(
                f"  {name}: grid {r['grid']['runs']} runs {r['grid']['wall_s']:.0f}s, "
                f"until decided {r['until']['runs']} runs {r['until']['wall_s']:.0f}s",
                file=sys.stderr,
            )
    print(
        f"| case | {REPEATS}-repeat grid: runs, s | until decided: runs, s | ended by | "
        "eliminated / settled | fewer runs | same answer |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        g, u = r["grid"], r["until"]
        state = "decided" if u["rec"]["decided"] else f"tie of {len(u['rec']['tie'])}"
        print(
            f"| {r['case']} | {g['runs']}, {g['wall_s']:.0f} | {u['runs']}, {u['wall_s']:.0f} | "
            f"{r['ended']} ({state}) | {r['eliminated']} / {r['settled']} | "
            f"{g['runs'] / u['runs']:.1f}× | "
            f"{'yes' if r['agrees'] else 'NO'}: {u['rec']['strategy']} |"
        )
    grid_runs = sum(r["grid"]["runs"] for r in results)
    until_runs = sum(r["until"]["runs"] for r in results)
    grid_s = sum(r["grid"]["wall_s"] for r in results)
    until_s = sum(r["until"]["wall_s"] for r in results)
    print()
    print(
        f"Total: the grids {grid_runs} runs in {grid_s:.0f} s, until decided {until_runs} runs "
        f"in {until_s:.0f} s ({grid_runs / until_runs:.2f}× fewer runs, "
        f"{grid_s / until_s:.1f}× less time); same answer in "
        f"{sum(r['agrees'] for r in results)}/{len(results)} cases."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
