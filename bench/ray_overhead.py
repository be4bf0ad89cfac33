"""Ray backend overhead: the same sweep with ``--backend local`` and ``--backend ray``.

Measures, on the embedded digits data, the wall time of ``velocity sweep`` as a user
runs it (a fresh interpreter each time), for three ways of running the same sweep:

1. ``local``: the process pool (the default);
2. ``ray (fresh)``: ``--backend ray`` with no address, so the sweep starts a local Ray
   instance and stops it at the end (what a laptop user pays);
3. ``ray (joined)``: ``--backend ray --ray-address ADDR`` against a Ray instance this
   script started beforehand (what a cluster user pays per sweep: no cluster
   start-up, just connecting, scheduling one task per run and shipping files back).
4. ``ray (warm)``: :func:`velocity.engine.sweep.run_sweep` in this script's process, on that
   instance, after one warm-up sweep: Ray's worker processes are already up, so what
   is left is the per-run cost (one task, events streamed back, files written).

Each mode also reports the sweep's own ``elapsed_s`` (status.json: from the call of
``run_sweep`` to the last run finished, so Ray's start or connection is in it, but not
the interpreter's start-up nor Ray's shutdown).
Modes are interleaved per repetition so that machine drift hits them alike; the
ratio is each mode's median over local's. Two sweep sizes by default: a tiny one
(the fixed cost dominates) and one with 10× the rounds (how it amortises).

Not a test: it prints a table. ``python bench/ray_overhead.py --reps 3``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cli_sweep(
    args: argparse.Namespace, rounds: int, extra: list[str], out: Path
) -> tuple[float, float]:
    """(wall seconds of one ``velocity sweep`` command, the sweep's own elapsed_s)."""
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable, "-m", "velocity", "sweep",
            "--strategies", args.strategies, "--attacks", args.attacks,
            "--rounds", str(rounds), "--clients", str(args.clients),
            "--parallel", str(args.parallel), "--out", str(out), *extra,
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "RAY_ADDRESS": ""},
    )  # fmt: skip
    wall = time.perf_counter() - started
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "done" and status["failed_runs"] == 0, status
    return wall, float(status["elapsed_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rounds", default="3,30", help="comma-separated sweep sizes")
    parser.add_argument("--strategies", default="FedAvg,FedMedian")
    parser.add_argument("--attacks", default="gaussian_noise:sigma=10,fraction=0.2")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    import ray

    import velocity
    from velocity.cli import split_items
    from velocity.engine.sweep import run_sweep
    from velocity.spec import matrix_spec

    ray.init(
        num_cpus=args.parallel,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    address = ray.get_runtime_context().gcs_address
    modes = {
        "local": [],
        "ray (fresh)": ["--backend", "ray"],
        "ray (joined)": ["--backend", "ray", "--ray-address", address],
    }
    sizes = [int(r) for r in args.rounds.split(",")]
    results: dict[tuple[int, str], list[tuple[float, float]]] = {}
    warm: dict[int, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            counter = iter(range(10**6))
            for rep in range(args.reps):
                for rounds in sizes:
                    order = list(modes.items())
                    for mode, extra in order[rep % 3 :] + order[: rep % 3]:
                        out = Path(tmp) / f"s{next(counter)}"
                        results.setdefault((rounds, mode), []).append(
                            cli_sweep(args, rounds, extra, out)
                        )
            for rounds in sizes:
                runs = matrix_spec(
                    split_items([args.strategies]),
                    split_items([args.attacks]),
                    rounds=rounds,
                    clients=args.clients,
                ).expand()
                for rep in range(args.reps + 1):  # the first one starts the workers
                    out = Path(tmp) / f"s{next(counter)}"
                    result = run_sweep(
                        runs, out, parallel=args.parallel, progress=False, backend="ray"
                    )
                    if rep:
                        warm.setdefault(rounds, []).append(result.wall_s)
    finally:
        ray.shutdown()

    strategies, attacks = split_items([args.strategies]), split_items([args.attacks])
    print(
        f"velocity {velocity.__version__}, ray {ray.__version__}, cpus {os.cpu_count()}, "
        f"reps {args.reps}; sweep: {len(strategies) * (1 + len(attacks))} runs "
        f"({len(strategies)} strategies × (no attack + {len(attacks)})), "
        f"{args.clients} clients, --parallel {args.parallel}"
    )
    print()
    print(
        "| rounds | mode | CLI wall median (s) | min | max | × local | "
        "sweep elapsed_s median | × local |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rounds in sizes:
        base_wall = statistics.median(w for w, _ in results[(rounds, "local")])
        base_elapsed = statistics.median(e for _, e in results[(rounds, "local")])
        for mode in modes:
            walls = [w for w, _ in results[(rounds, mode)]]
            elapsed = statistics.median(e for _, e in results[(rounds, mode)])
            wall = statistics.median(walls)
            print(
                f"| {rounds} | {mode} | {wall:.2f} | {min(walls):.2f} | {max(walls):.2f} "
                f"| {wall / base_wall:.2f} | {elapsed:.2f} | {elapsed / base_elapsed:.2f} |"
            )
        elapsed = statistics.median(warm[rounds])
        print(
            f"| {rounds} | ray (warm) | n/a | | | | {elapsed:.2f} | {elapsed / base_elapsed:.2f} |"
        )
    print()
    for rounds in sizes:
        local = statistics.median(w for w, _ in results[(rounds, "local")])
        for mode in ("ray (fresh)", "ray (joined)"):
            extra = statistics.median(w for w, _ in results[(rounds, mode)]) - local
            print(f"fixed overhead, {rounds} rounds, {mode}: {extra:+.2f} s per sweep vs local")


if __name__ == "__main__":
    main()
