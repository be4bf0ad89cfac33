"""Sweep scaling: does a two-strategy sweep cost about as much as a one-strategy one?

Measures, on the embedded digits data:

1. ``velocity sweep --strategies FedAvg`` vs ``--strategies FedAvg,FedMedian`` (same
   rounds and clients), wall time of the command as a user runs it, alternating the
   two several times; reports the median ratio (the issue's bar: < 2×, ideally ~1×).
2. ``--parallel 1`` vs ``--parallel 2`` for N runs (the speedup of the pool).
3. Worker start-up per process start method, each in a fresh interpreter: sweep
   start → a worker begins its run, and sweep start → the first round is done.
4. Peak RSS of a worker process.

Not a test: it prints a table. ``python bench/sweep_scaling.py --reps 5``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, os, sys
from pathlib import Path
from velocity.spec import matrix_spec
from velocity.engine.sweep import run_sweep
strategies, rounds, runs_dir, parallel = sys.argv[1].split(","), int(sys.argv[2]), sys.argv[3], \
    int(sys.argv[4])
runs = matrix_spec(strategies, rounds=rounds, clients=10).expand()
result = run_sweep(runs, Path(runs_dir), parallel=parallel, progress=False)
workers = [r.worker for r in result.runs.values() if r.worker]
print(json.dumps({
    "method": result.start_method,
    "wall_s": result.wall_s,
    "worker_start_s": min(w["started"] for w in workers) - result.started,
    "first_round_s": min(w["first_round"] for w in workers) - result.started,
    "peak_rss_mb": max(w["peak_rss_mb"] for w in workers),
    "state": result.state,
}))
"""


def cli_sweep(strategies: str, rounds: int, extra: list[str], out: Path) -> float:
    """Wall seconds of one ``velocity sweep`` command."""
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "velocity",
            "sweep",
            "--strategies",
            strategies,
            "--rounds",
            str(rounds),
            "--clients",
            "10",
            "--out",
            str(out),
            *extra,
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def child_sweep(strategies: str, rounds: int, out: Path, parallel: int, method: str | None) -> dict:
    """run_sweep in a fresh interpreter; its start-up, wall and memory numbers."""
    env = dict(os.environ)
    if method:
        env["VELOCITY_MP_START"] = method
    done = subprocess.run(
        [sys.executable, "-c", CHILD, strategies, str(rounds), str(out), str(parallel)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=4, help="runs for the parallel 1 vs 2 test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        counter = iter(range(10**6))

        def fresh() -> Path:
            return root / f"s{next(counter)}"

        one, two = [], []
        for rep in range(args.reps):  # alternate so drift hits both alike
            order = [("FedAvg", one), ("FedAvg,FedMedian", two)]
            for strategies, bucket in order if rep % 2 == 0 else order[::-1]:
                bucket.append(cli_sweep(strategies, args.rounds, [], fresh()))
        ratios = [b / a for a, b in zip(one, two, strict=True)]

        names = [
            "FedAvg",
            "FedMedian",
            "TrimmedMean",
            "Krum",
            "GeometricMedian",
            "MultiKrum",
            "Bulyan",
            "CenteredClipping",
        ]
        many = ",".join((names * 4)[: args.runs]) if args.runs <= len(names) else None
        strategies_n = many or ",".join(names)
        par = {1: [], 2: []}
        for _ in range(max(1, args.reps // 2)):
            for p in (1, 2):
                par[p].append(child_sweep(strategies_n, 20, fresh(), p, "fork")["wall_s"])

        startup = {}
        for method in ("fork", "forkserver", "spawn"):
            samples = [
                child_sweep("FedAvg,FedMedian", args.rounds, fresh(), 2, method)
                for _ in range(max(1, args.reps // 2))
            ]
            startup[method] = samples

    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    print(f"cpus: {os.cpu_count()}, reps: {args.reps}, rounds: {args.rounds}, clients: 10")
    print()
    print("| measurement | median | min | max |")
    print("| --- | --- | --- | --- |")
    print(f"| sweep FedAvg (CLI wall, s) | {med(one):.3f} | {min(one):.3f} | {max(one):.3f} |")
    print(
        f"| sweep FedAvg,FedMedian (CLI wall, s) | {med(two):.3f} | {min(two):.3f} "
        f"| {max(two):.3f} |"
    )
    print(
        f"| ratio two/one (per rep) | {med(ratios):.3f} | {min(ratios):.3f} | {max(ratios):.3f} |"
    )
    n = len(strategies_n.split(","))
    print(
        f"| {n} runs x 20 rounds, --parallel 1 (s) | {med(par[1]):.3f} | {min(par[1]):.3f} "
        f"| {max(par[1]):.3f} |"
    )
    print(
        f"| {n} runs x 20 rounds, --parallel 2 (s) | {med(par[2]):.3f} | {min(par[2]):.3f} "
        f"| {max(par[2]):.3f} |"
    )
    print(f"| speedup parallel 2 vs 1 | {med(par[1]) / med(par[2]):.2f}x | | |")
    for method, samples in startup.items():
        for key, label in (
            ("worker_start_s", "sweep start -> worker starts run"),
            ("first_round_s", "sweep start -> first round done"),
        ):
            xs = [s[key] for s in samples]
            print(f"| {method}: {label} (s) | {med(xs):.3f} | {min(xs):.3f} | {max(xs):.3f} |")
        rss = [s["peak_rss_mb"] for s in samples]
        print(
            f"| {method}: worker peak RSS (MB) | {med(rss):.1f} | {min(rss):.1f} | {max(rss):.1f} |"
        )


if __name__ == "__main__":
    main()
