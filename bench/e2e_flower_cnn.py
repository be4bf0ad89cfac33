"""End to end vs Flower on Fashion-MNIST with a CNN; the training ceiling; a 6 × 4 sweep.

The experiment (issue 15): Fashion-MNIST (Xiao et al. 2017; the 60,000 / 10,000 IDX
files of Debian's ``dataset-fashion-mnist``, pixels scaled to [0, 1]), velocity's
``cnn`` (Conv 5×5 1→32 pad 2 - ReLU - MaxPool 2 - Conv 5×5 32→64 pad 2 - ReLU - MaxPool 2
- Linear 3136→128 - ReLU - Linear 128→10; 454,922 parameters), 100 IID clients × 600 images,
20 sampled per round, 1 local epoch of SGD (batch 32, lr 0.1), 20 rounds, seed 42,
FedAvg and FedMedian, the global model evaluated on the 10,000 test images every
round. Each side is one process started the way a user starts it:

- **velocity**: ``.venv/bin/velocity run --strategy S --dataset fashion_mnist --model cnn
  --partition iid --clients 100 --samples-per-client 600 --fraction-fit 0.2
  --local-epochs 1 --batch-size 32 --lr 0.1 --rounds 20 --seed 42`` (one process; its
  clients train one after another, torch using both cores);
- **Flower**: ``bench/flower_cnn_app.py`` — Flower 1.42's ``run_simulation`` with its own
  ``FedAvg`` / ``FedMedian``, 100 virtual SuperNodes on the Ray backend, the same module
  (velocity's builder) from the same initial weights, the same client shards
  (velocity's partition), a plain torch SGD loop, ``client_resources = {"num_cpus":
  1}`` on 2 CPUs: two clients train at once, one torch thread each.

Measured per command (with :func:`e2e_flower.measure`): wall time from start to exit,
peak PSS summed over the process tree (sampled every ``--interval`` s), the most
processes at once, the final test loss / accuracy from the run's own output, and the
1-minute load average when it started. Repetitions are interleaved (velocity, Flower,
per strategy); the tables give the median wall and the largest peak.

**The ceiling.** The training FLOPs of one sample, counted from the conv and linear
layers only (forward 2·MACs; backward 2·MACs for the weight gradient plus 2·MACs for the
input gradient, except the first layer, whose input needs none; biases, ReLU, pooling and
the loss are not counted), times the samples velocity's FedAvg run trained (rounds × 20
clients × 600), over the ``train_s`` its ``timings.csv`` reports: the achieved FLOP/s.
Against torch's own throughput for the same module at one batch of ``--ceiling-batch``
(4096) images: forward + backward + SGD step, all cores, the best of
``--ceiling-iters`` timed steps after one warm-up. The fraction is achieved / ceiling;
torch's own loop at batch 32 is shown beside it (what small batches cost by themselves).

**The 6 × 4 sweep.** ``velocity sweep --strategies FedAvg,FedMedian,TrimmedMean:beta=0.2,
Krum:f=4,MultiKrum:f=4,CenteredClipping --attacks gaussian_noise:fraction=0.2,
sign_flipping:fraction=0.2,alie:fraction=0.2 --parallel 2`` on the same experiment
(6 strategies × (no attack + 3 attacks) = 24 runs). Run with ``--sweep-rounds`` rounds
(default 20) and scaled linearly to 20 when fewer (start-up is scaled too, so that
overstates velocity's time); Flower's is 24 × its measured FedAvg wall (attacks would
add to it, not counted).

Not a test: it prints tables. ``make bench-e2e-cnn`` (``.bench-venv`` with
``flwr[simulation]`` and torch linked from ``.venv``), or ``python bench/e2e_flower_cnn.py
--rounds 20 --sweep-rounds 2``; ``--rounds 2 --clients 10 --samples-per-client 60`` for a
first look.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from e2e_flower import (  # sibling module: the script's folder is on sys.path
    BENCH,
    FLOWER_PY,
    VELOCITY,
    VENV_PY,
    Sample,
    _cpu_model,
    _flwr_version,
    measure,
)
from flower_cnn_app import Experiment

STRATEGIES = ("FedAvg", "FedMedian")
SWEEP_STRATEGIES = (
    "FedAvg",
    "FedMedian",
    "TrimmedMean:beta=0.2",
    "Krum:f=4",
    "MultiKrum:f=4",
    "CenteredClipping",
)
SWEEP_ATTACKS = ("gaussian_noise:fraction=0.2", "sign_flipping:fraction=0.2", "alie:fraction=0.2")
SWEEP_RUNS = len(SWEEP_STRATEGIES) * (1 + len(SWEEP_ATTACKS))
#: Krum:f=4 and MultiKrum:f=4 need n ≥ 2f+3 clients per round.
SWEEP_MIN_CLIENTS = 2 * 4 + 3


@dataclass
class Measured:
    """One command's sample, the load it started under, its rounds and seconds per round.

    ``round_s`` is the mean of a velocity run's ``timings.csv`` ``round_s`` (train +
    aggregate + evaluate), a Flower run's span from evaluating the initial model to
    evaluating the last one over the rounds, and for a sweep the sum over its runs of
    their mean ``round_s`` divided by the 2 runs at once. ``train_s`` is velocity's
    total (the ceiling's denominator).
    """

    sample: Sample
    load: float
    rounds: int
    round_s: float
    train_s: float | None = None

    def wall_at(self, rounds: int) -> float:
        """The wall time scaled to ``rounds``: measured + the rounds not run × round_s."""
        return self.sample.wall_s + (rounds - self.rounds) * self.round_s


@dataclass
class Runs:
    """All repetitions of one command."""

    label: str
    runs: list[Measured] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(m.sample.wall_s for m in self.runs)

    @property
    def pss(self) -> float:
        return max(m.sample.peak_pss_mb for m in self.runs)

    @property
    def procs(self) -> int:
        return max(m.sample.max_procs for m in self.runs)

    @property
    def last(self) -> Sample:
        return self.runs[-1].sample

    def wall_at(self, rounds: int) -> float:
        return statistics.median(m.wall_at(rounds) for m in self.runs)


# --- the commands ------------------------------------------------------------------------


def velocity_flags(exp: Experiment) -> list[str]:
    """The CLI flags of the experiment (everything but the strategy and attacks)."""
    return [
        *("--dataset", "fashion_mnist", "--model", "cnn", "--partition", "iid"),
        *("--clients", str(exp.clients), "--samples-per-client", str(exp.samples_per_client)),
        *("--fraction-fit", str(exp.fraction_fit), "--local-epochs", str(exp.epochs)),
        *("--batch-size", str(exp.batch_size), "--lr", str(exp.lr)),
        *("--rounds", str(exp.rounds), "--seed", str(exp.seed)),
    ]


def run_velocity(exp: Experiment, tmp: Path, interval: float) -> Measured:
    out = Path(tempfile.mkdtemp(dir=tmp))
    load = os.getloadavg()[0]
    cmd = [str(VELOCITY), "run", "--strategy", exp.strategy, *velocity_flags(exp)]
    sample = measure([*cmd, "--out", str(out)], interval)
    run_dir = next(out.glob("*/summary.json")).parent
    summary = json.loads((run_dir / "summary.json").read_text())
    if summary["status"] != "done":
        sys.exit(f"velocity run in {run_dir} ended {summary['status']}: {summary.get('error')}")
    sample.loss, sample.accuracy = summary["final_loss"], summary["final_accuracy"]
    train_s, round_s = _timings(run_dir)
    return Measured(sample, load, exp.rounds, statistics.mean(round_s), sum(train_s))


def _timings(run_dir: Path) -> tuple[list[float], list[float]]:
    """A velocity run's ``train_s`` and ``round_s`` per round (its timings.csv)."""
    with open(run_dir / "timings.csv") as fh:
        rows = list(csv.DictReader(fh))
    return [float(r["train_s"]) for r in rows], [float(r["round_s"]) for r in rows]


def run_flower(exp: Experiment, tmp: Path, interval: float) -> Measured:
    out = tmp / f"flower-{time.monotonic_ns()}.json"
    load = os.getloadavg()[0]
    cmd = [str(FLOWER_PY), str(BENCH / "flower_cnn_app.py"), "--strategy", exp.strategy]
    cmd += ["--rounds", str(exp.rounds), "--clients", str(exp.clients)]
    cmd += ["--samples-per-client", str(exp.samples_per_client)]
    cmd += ["--fraction-fit", str(exp.fraction_fit), "--result", str(out)]
    sample = measure(cmd, interval)
    result = json.loads(out.read_text())
    sample.loss, sample.accuracy = result["final_loss"], result["final_accuracy"]
    return Measured(sample, load, exp.rounds, result["round_s"])


def run_sweep(exp: Experiment, tmp: Path, interval: float) -> Measured:
    out = Path(tempfile.mkdtemp(dir=tmp)) / "sweep"
    load = os.getloadavg()[0]
    cmd = [str(VELOCITY), "sweep", "--strategies", ",".join(SWEEP_STRATEGIES)]
    cmd += ["--attacks", ",".join(SWEEP_ATTACKS), *velocity_flags(exp)]
    cmd += ["--parallel", "2", "--out", str(out)]
    # Through sh, which keeps the sweep's output and exit status: a sweep whose 24 runs
    # all finished counts even if it exits 1 for its report (printed, not fatal).
    log, status = out.parent / "sweep.log", out.parent / "sweep.rc"
    wrapped = ["sh", "-c", f'"$@" > {log} 2>&1; echo $? > {status}', "sh", *cmd]
    sample = measure(wrapped, interval)
    done = [json.loads(p.read_text()) for p in out.glob("**/summary.json")]
    finished = [s for s in done if s["status"] in ("done", "diverged")]
    rc = status.read_text().strip()
    if len(finished) != SWEEP_RUNS:
        tail = log.read_text()[-3000:]
        sys.exit(f"the sweep in {out} finished {len(finished)} of {SWEEP_RUNS} runs:\n{tail}")
    if rc != "0":
        print(f"  the sweep exited {rc}:\n{log.read_text()[-2000:]}", file=sys.stderr)
    per_run = [statistics.mean(_timings(p.parent)[1]) for p in out.glob("**/timings.csv")]
    return Measured(sample, load, exp.rounds, sum(per_run) / 2)


# --- the ceiling -------------------------------------------------------------------------


def layer_flops(torch: Any, net: Any) -> list[tuple[str, int]]:
    """``(layer, training FLOPs per sample)`` of each conv / linear layer (see the docstring)."""
    macs: list[tuple[str, int]] = []

    def hook(module: Any, inputs: Any, output: Any) -> None:
        if isinstance(module, torch.nn.Conv2d):
            per_out = module.in_channels // module.groups * math.prod(module.kernel_size)
            macs.append(
                (f"conv {module.in_channels}→{module.out_channels}", output[0].numel() * per_out)
            )
        else:
            macs.append(
                (
                    f"linear {module.in_features}→{module.out_features}",
                    module.in_features * module.out_features,
                )
            )

    layers = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    handles = [m.register_forward_hook(hook) for m in layers]
    with torch.no_grad():
        net(torch.zeros(1, 1, 28, 28))
    for handle in handles:
        handle.remove()
    return [(name, (4 if i == 0 else 6) * m) for i, (name, m) in enumerate(macs)]


def torch_throughput(torch: Any, net: Any, batch: int, iters: int, budget_s: float) -> float:
    """Best samples/s of forward + backward + SGD step at ``batch`` (one warm-up step)."""
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    best = 0.0
    started = time.perf_counter()
    for step in range(iters + 1):
        t0 = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
        if step:
            best = max(best, batch / (time.perf_counter() - t0))
        if step and time.perf_counter() - started > budget_s:
            break
    return best


@dataclass
class Ceiling:
    flops: list[tuple[str, int]]
    threads: int
    big: float  # samples/s at the large batch
    small: float  # samples/s at the experiment's batch
    batch: int

    @property
    def per_sample(self) -> int:
        return sum(f for _, f in self.flops)


def ceiling(exp: Experiment, batch: int, iters: int) -> Ceiling:
    """Torch's own training throughput for velocity's ``cnn`` on this machine."""
    import torch

    sys.path.insert(0, str(BENCH))
    from flower_cnn_app import velocity_cnn

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    net, _ = velocity_cnn(torch, exp.seed)
    flops = layer_flops(torch, net)
    big = torch_throughput(torch, net, batch, iters, budget_s=60.0)
    small = torch_throughput(torch, net, exp.batch_size, 400, budget_s=15.0)
    return Ceiling(flops, threads, big, small, batch)


# --- report ------------------------------------------------------------------------------


def _versions() -> str:
    flower = _flwr_version()
    done = subprocess.run(
        [str(VENV_PY), "-c", "import torch; print(torch.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"{flower}, torch {done.stdout.strip() or '?'}"


def _acc(sample: Sample) -> str:
    return "—" if sample.accuracy is None else f"{100 * sample.accuracy:.2f}%"


def _status(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(
    rows: dict[str, Runs],
    exp: Experiment,
    header: list[str],
    roof: Ceiling | None,
    target: int,
) -> str:
    """The tables; walls measured at their own rounds and scaled to ``target`` rounds."""
    lines = [*header, ""]
    lines.append(
        f"| side | strategy | rounds run | wall s (median) | s / round | wall at {target} rounds "
        "| peak PSS MB | procs | final loss | final acc | load at start |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, row in rows.items():
        tool, _, strategy = key.partition(":")
        s = row.last
        loads = "/".join(f"{m.load:.1f}" for m in row.runs)
        what = strategy or f"{SWEEP_RUNS} runs, --parallel 2"
        loss = "—" if s.loss is None else f"{s.loss:.4f}"
        per_round = statistics.median(m.round_s for m in row.runs)
        lines.append(
            f"| {tool} | {what} | {row.runs[-1].rounds} | {row.wall:.1f} | {per_round:.1f} | "
            f"{row.wall_at(target):.0f} | {row.pss:.0f} | {row.procs} | {loss} | {_acc(s)} | "
            f"{loads} |"
        )
    lines.append("")
    walls = {k: ", ".join(f"{m.sample.wall_s:.1f}" for m in r.runs) for k, r in rows.items()}
    lines.append("each repetition's wall (s): " + "; ".join(f"{k} {v}" for k, v in walls.items()))
    pairs = [s for s in STRATEGIES if f"velocity:{s}" in rows and f"Flower:{s}" in rows]
    if pairs:
        lines += ["", f"| target (walls at {target} rounds) | measured | status |"]
        lines.append("|---|---:|---|")
    for strategy in pairs:
        v, f = rows[f"velocity:{strategy}"], rows[f"Flower:{strategy}"]
        v_wall, f_wall = v.wall_at(target), f.wall_at(target)
        speed, mem = f_wall / v_wall, v.pss / f.pss
        gap = 100 * abs(v.last.accuracy - f.last.accuracy)  # type: ignore[operator]
        lines.append(
            f"| {strategy}: velocity ≥ 5× faster than Flower | {speed:.2f}× "
            f"({v_wall:.0f} vs {f_wall:.0f} s) | {_status(speed >= 5)} |"
        )
        lines.append(
            f"| {strategy}: velocity memory ≤ 1/3 of Flower's | {mem:.2f} "
            f"({v.pss:.0f} vs {f.pss:.0f} MB) | {_status(mem <= 1 / 3)} |"
        )
        lines.append(
            f"| {strategy}: equal accuracy (±1 pp) after {v.runs[-1].rounds} rounds | "
            f"{_acc(v.last)} vs {_acc(f.last)} ({gap:.2f} pp) | {_status(gap <= 1.0)} |"
        )
    if roof is not None:
        lines += ["", _ceiling_text(rows, exp, roof)]
    sweep = rows.get("velocity sweep:")
    if sweep is not None:
        lines += ["", f"| 6 × 4 sweep ({SWEEP_RUNS} runs, {target} rounds) | wall s | how |"]
        lines.append("|---|---:|---|")
        m = sweep.runs[-1]
        how = (
            "measured"
            if m.rounds == target
            else f"{m.sample.wall_s:.0f} s at {m.rounds} rounds + {target - m.rounds} × "
            f"{m.round_s:.0f} s (Σ runs' s / round ÷ 2)"
        )
        est = sweep.wall_at(target)
        lines.append(f"| velocity sweep --parallel 2 | {est:.0f} | {how} |")
        flower = rows.get("Flower:FedAvg")
        if flower is not None:
            one = flower.wall_at(target)
            lines.append(
                f"| Flower ({SWEEP_RUNS} × one FedAvg run) | {SWEEP_RUNS * one:.0f} | "
                f"{SWEEP_RUNS} × {one:.0f} s |"
            )
            lines.append(f"| ratio Flower / velocity | {SWEEP_RUNS * one / est:.1f}× | |")
    return "\n".join(lines)


def _ceiling_text(rows: dict[str, Runs], exp: Experiment, roof: Ceiling) -> str:
    per_layer = ", ".join(f"{name} {f / 1e6:.2f}" for name, f in roof.flops)
    lines = [
        f"Training FLOPs per sample: {roof.per_sample / 1e6:.2f} M ({per_layer} M).",
        "",
        "| training throughput | samples/s | GFLOP/s | fraction of the ceiling |",
        "|---|---:|---:|---:|",
    ]
    big = roof.big * roof.per_sample / 1e9
    lines.append(
        f"| torch, batch {roof.batch}, {roof.threads} threads (the ceiling) | {roof.big:.0f} | "
        f"{big:.1f} | 100% |"
    )
    small = roof.small * roof.per_sample / 1e9
    lines.append(
        f"| torch, batch {exp.batch_size}, {roof.threads} threads | {roof.small:.0f} | "
        f"{small:.1f} | {100 * small / big:.0f}% |"
    )
    for strategy in STRATEGIES:
        row = rows.get(f"velocity:{strategy}")
        if row is None or not row.runs:
            continue
        trained = exp.rounds * exp.per_round * exp.samples_per_client * exp.epochs
        train_s = statistics.median(m.train_s for m in row.runs if m.train_s is not None)
        rate = trained / train_s
        achieved = rate * roof.per_sample / 1e9
        lines.append(
            f"| velocity {strategy} round training ({trained:,} samples in "
            f"{train_s:.0f} s of train_s) | {rate:.0f} | {achieved:.1f} | "
            f"{100 * achieved / big:.0f}% |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="rounds of each run (20)")
    parser.add_argument("--clients", type=int, default=100, help="clients (100)")
    parser.add_argument("--samples-per-client", type=int, default=600, help="(600)")
    parser.add_argument("--reps", type=int, default=1, help="repetitions of each run (1)")
    parser.add_argument("--sweep-rounds", type=int, default=20, help="rounds of the sweep (20)")
    parser.add_argument(
        "--scale-to", type=int, default=20, help="rounds the walls are scaled to (20)"
    )
    parser.add_argument("--ceiling-batch", type=int, default=4096)
    parser.add_argument("--ceiling-iters", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.2, help="PSS sampling period (s)")
    parser.add_argument("--no-flower", action="store_true", help="velocity only")
    parser.add_argument("--no-sweep", action="store_true", help="skip the 6 × 4 sweep")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the ceiling")
    args = parser.parse_args()
    for path in (VELOCITY, VENV_PY):
        if not path.exists():
            sys.exit(f"{path} is missing: run `make install` first")
    versions = "Flower not run (--no-flower)" if args.no_flower else _versions()
    exp = Experiment(
        rounds=args.rounds, clients=args.clients, samples_per_client=args.samples_per_client
    )
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = os.getloadavg()
    rows: dict[str, Runs] = {}

    def add(key: str, measured: Measured) -> None:
        rows.setdefault(key, Runs(key)).runs.append(measured)
        s = measured.sample
        print(
            f"  {key}: {s.wall_s:.1f} s, {s.peak_pss_mb:.0f} MB, {s.max_procs} procs, "
            f"acc {_acc(s)}, load {measured.load:.2f} → {os.getloadavg()[0]:.2f}",
            file=sys.stderr,
            flush=True,
        )

    tmp = Path(tempfile.mkdtemp(prefix="velocity-e2e-cnn-"))

    def header() -> list[str]:
        load_now = os.getloadavg()
        return [
            f"- date: {stamp}; wall so far {time.perf_counter() - started:.0f} s",
            f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
            f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores",
            f"- Python {platform.python_version()}; {versions}",
            f"- load average (1/5/15 min) at start: {'/'.join(f'{x:.2f}' for x in load_start)}; "
            f"now: {'/'.join(f'{x:.2f}' for x in load_now)}",
            f"- experiment: {exp.clients} clients × {exp.samples_per_client} images, "
            f"{exp.per_round} per round, {exp.rounds} rounds (sweep {args.sweep_rounds}), "
            f"batch {exp.batch_size}, lr {exp.lr}; walls scaled to {args.scale_to} rounds; "
            f"repetitions {args.reps}, interleaved; PSS sampled every "
            f"{args.interval * 1000:.0f} ms",
        ]

    def ordered() -> dict[str, Runs]:
        order = [f"{t}:{s}" for t in ("velocity", "Flower") for s in STRATEGIES]
        return {k: rows[k] for k in [*order, "velocity sweep:"] if k in rows}

    try:
        for rep in range(args.reps):
            for i, strategy in enumerate(STRATEGIES):
                run = replace(exp, strategy=strategy)
                sides = [("velocity", run_velocity), ("Flower", run_flower)]
                if args.no_flower:
                    sides = sides[:1]
                for side, fn in sides if (rep + i) % 2 == 0 else sides[::-1]:
                    add(f"{side}:{strategy}", fn(run, tmp, args.interval))
        roof = None if args.no_ceiling else ceiling(exp, args.ceiling_batch, args.ceiling_iters)
        # The comparison first: a sweep stopped half-way still leaves these tables.
        print(report(ordered(), exp, header(), roof, args.scale_to), flush=True)
        if not args.no_sweep:
            if exp.per_round < SWEEP_MIN_CLIENTS:
                sys.exit(
                    f"the sweep's Krum:f=4 needs {SWEEP_MIN_CLIENTS} clients per round "
                    f"(n ≥ 2f+3), got {exp.per_round}: pass --no-sweep or more --clients"
                )
            add(
                "velocity sweep:",
                run_sweep(replace(exp, rounds=args.sweep_rounds), tmp, args.interval),
            )
            print("\n" + report(ordered(), exp, header(), None, args.scale_to))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
