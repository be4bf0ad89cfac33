"""Growth: how one run's time grows with clients, model size and rounds, and where it goes.

Each configuration is one ``velocity.sim.server.run_one`` call in this process (the code
path of ``velocity run`` after start-up), writing its files to a temporary directory.
The run's own ``summary.json`` splits the wall time:

- **train**: local SGD of every sampled client (numpy, in Python);
- **attack + aggregate**: ``Orchestrator.run_round`` in Rust (update attacks on the
  Byzantine rows, then the robust aggregation);
- **evaluate**: the global model on the test split;
- **setup + I/O**: the rest of ``elapsed_s``: loading and partitioning the data,
  building the model, writing config/rounds/timings/progress files and the checkpoint.

Three axes, each from a base configuration:

1. clients 10 → 100 → 1000 (synthetic data, 50 train samples per client, 20 features,
   logistic regression, d = 210; FedAvg and FedMedian, 3 rounds);
2. model size d ≈ 10³ → 10⁶ (the digits, MLP with hidden 13 / 133 / 1333 / 13333,
   d = 75·hidden + 10; 10 clients, 2 rounds; FedAvg and FedMedian);
3. rounds 5 → 20 → 80 (digits, logistic regression, 10 clients, FedAvg).

Not a test: it prints markdown tables. ``make bench-growth`` or
``python bench/growth.py`` (about 2–3 minutes on 2 cores; ``--quick`` skips the
largest size of each axis).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from velocity import __version__  # the checkout's velocity, after the path insert
from velocity.sim.server import run_one
from velocity.spec import RunSpec

HEADER = (
    "| {axis} | strategy | d | clients | rounds | wall s | train | attack + aggregate | "
    "evaluate | setup + I/O | ms / round | µs / client-round |"
)


def measure(tmp: Path, **settings: Any) -> dict[str, float]:
    """One run; its wall time and the summary's split of it."""
    spec = RunSpec(name=f"g{time.monotonic_ns()}", **settings)
    started = time.perf_counter()
    summary = run_one(spec, tmp / spec.name)
    wall = time.perf_counter() - started
    if summary["status"] != "done":
        sys.exit(f"run failed: {summary['error']} ({settings})")
    parts = summary["time_s"]
    return {
        "wall": wall,
        "train": parts["train"],
        "aggregate": parts["aggregate"],
        "evaluate": parts["evaluate"],
        "other": wall - parts["train"] - parts["aggregate"] - parts["evaluate"],
    }


def row(label: Any, strategy: str, d: int, clients: int, rounds: int, t: dict[str, float]) -> str:
    def part(key: str) -> str:
        return f"{t[key]:.3f} ({100 * t[key] / t['wall']:.0f}%)"

    per_round = 1000 * (t["wall"] - t["other"]) / rounds
    per_client = 1e6 * (t["wall"] - t["other"]) / (rounds * clients)
    return (
        f"| {label} | {strategy} | {d:,} | {clients:,} | {rounds} | {t['wall']:.3f} | "
        f"{part('train')} | {part('aggregate')} | {part('evaluate')} | {part('other')} | "
        f"{per_round:.1f} | {per_client:.0f} |"
    )


def table(axis: str) -> list[str]:
    head = HEADER.format(axis=axis)
    return [head, "|" + "---|" * 2 + "---:|" * (head.count("|") - 3)]


def clients_axis(tmp: Path, quick: bool) -> list[str]:
    lines = ["### Clients (synthetic, 20 features, logreg, 50 train samples per client)", ""]
    lines += table("clients")
    for clients in (10, 100) if quick else (10, 100, 1000):
        n_samples = int(clients * 50 / 0.8)
        for strategy in ("FedAvg", "FedMedian"):
            t = measure(
                tmp,
                strategy=strategy,
                dataset="synthetic",
                dataset_params={"n_samples": n_samples, "n_features": 20},
                clients=clients,
                rounds=3,
            )
            lines.append(row(clients, strategy, 21 * 10, clients, 3, t))
    return lines


def model_axis(tmp: Path, quick: bool) -> list[str]:
    lines = ["### Model size (digits, MLP, 10 clients)", ""]
    lines += table("hidden")
    for hidden in (13, 133, 1333) if quick else (13, 133, 1333, 13333):
        for strategy in ("FedAvg", "FedMedian"):
            t = measure(
                tmp,
                strategy=strategy,
                model_id="mlp",
                model_params={"hidden": hidden},
                clients=10,
                rounds=2,
            )
            lines.append(row(hidden, strategy, 75 * hidden + 10, 10, 2, t))
    return lines


def rounds_axis(tmp: Path, quick: bool) -> list[str]:
    lines = ["### Rounds (digits, logreg, 10 clients, FedAvg)", ""]
    lines += table("rounds")
    for rounds in (5, 20) if quick else (5, 20, 80):
        t = measure(tmp, strategy="FedAvg", clients=10, rounds=rounds)
        lines.append(row(rounds, "FedAvg", 650, 10, rounds, t))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the largest size per axis")
    args = parser.parse_args()
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    measure_dir = Path(tempfile.mkdtemp(prefix="velocity-growth-"))
    # Warm-up: imports, the digits parse and the thread pool are paid once, not by row 1.
    measure(measure_dir, strategy="FedAvg", clients=10, rounds=1)
    lines: list[str] = []
    for axis in (clients_axis, model_axis, rounds_axis):
        lines += [*axis(measure_dir, args.quick), ""]
        print("\n".join(lines[-2:]), file=sys.stderr, flush=True)
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(f"- date: {stamp}; total wall {time.perf_counter() - started:.0f} s")
    print(f"- command: `python {' '.join(sys.argv)}`")
    print(f"- CPU: {cpu}, {os.cpu_count()} logical cores; Python {platform.python_version()}")
    print(f"- velocity {__version__}; load average (1 min) at start / end: {load:.2f} / ", end="")
    print(f"{os.getloadavg()[0]:.2f}")
    print("- time split from each run's summary.json; percentages of the run's wall time\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
