"""End to end vs Flower: the same 5-round experiment as a user runs it, three ways.

The experiment (see ``bench/fl_numpy.py``): the embedded digits, standardized, 80/20
split, 10 IID clients, multinomial logistic regression, 1 local epoch of SGD (batch
32, lr 0.1), 5 rounds, FedAvg and FedMedian, seed 42. Each is one process started
the way a user would start it:

- **velocity**: ``.venv/bin/velocity run --strategy S --rounds 5 --clients 10``;
- **Flower**: ``bench/flower_digits_app.py``, Flower 1.42's ``run_simulation`` with
  its ``FedAvg`` / ``FedMedian`` and 10 virtual SuperNodes on the Ray backend
  (``.bench-venv``);
- **numpy floor**: ``bench/fl_numpy.py``, the same FL arithmetic with no framework;
- and the **sweep**: ``velocity sweep --strategies FedAvg,FedMedian --attacks
  gaussian_noise,sign_flipping --rounds 5 --clients 10`` (2 strategies × (no attack
  + 2 attacks) = 6 runs).

For each: the process wall time (start to exit of the command), the peak memory as
PSS summed over the whole process tree (``/proc/<pid>/smaps_rollup`` of the command
and every process in its session or below it, sampled every ``--interval`` s until
the command exits; Flower's Ray backend starts a dozen processes), the most processes
seen at once, and the final test loss / accuracy read from the run's own output.
Repetitions are interleaved; the tables give the median wall and the largest peak.

Not a test: it prints tables. ``make bench-e2e`` (creates ``.bench-venv`` with
``flwr[simulation]``), or ``python bench/e2e_flower.py --reps 3 --flower-reps 2``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
VELOCITY = REPO / ".venv" / "bin" / "velocity"
VENV_PY = REPO / ".venv" / "bin" / "python"
FLOWER_PY = REPO / ".bench-venv" / "bin" / "python"
STRATEGIES = ("FedAvg", "FedMedian")
ROUNDS = 5
CLIENTS = 10


@dataclass
class Sample:
    """One measured command."""

    wall_s: float
    peak_pss_mb: float
    max_procs: int
    loss: float | None = None
    accuracy: float | None = None


@dataclass
class Row:
    """All repetitions of one command."""

    label: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall_s for s in self.samples)

    @property
    def pss(self) -> float:
        return max(s.peak_pss_mb for s in self.samples)

    @property
    def procs(self) -> int:
        return max(s.max_procs for s in self.samples)

    @property
    def last(self) -> Sample:
        return self.samples[-1]


# --- the process-tree memory sampler ---------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """``(ppid, session id)`` of ``pid``, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[3])


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree(root: int) -> set[int]:
    """``root``, every process below it, and every process in its session."""
    parent: dict[int, int] = {}
    members = {root}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is None:
            continue
        parent[int(entry.name)] = stat[0]
        if stat[1] == root:  # started with start_new_session: sid == root's pid
            members.add(int(entry.name))
    grew = True
    while grew:
        below = {pid for pid, ppid in parent.items() if ppid in members} - members
        members |= below
        grew = bool(below)
    return members


def measure(cmd: list[str], interval: float, env: dict[str, str] | None = None) -> Sample:
    """Run ``cmd``; its wall time and the peak PSS summed over its process tree."""
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
            env=env,
            cwd=REPO,
        )
        peak_kb, max_procs, seen = 0, 0, set()
        while proc.poll() is None:
            pids = _tree(proc.pid)
            seen |= pids
            peak_kb = max(peak_kb, sum(_pss_kb(pid) for pid in pids))
            max_procs = max(max_procs, len(pids))
            time.sleep(interval)
        wall = time.perf_counter() - started
        _reap(proc.pid, seen)
        if proc.returncode != 0:
            log.seek(0)
            stderr = log.read().decode(errors="replace")
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr[-3000:]}")
    return Sample(wall, peak_kb / 1024, max_procs)


def _reap(root: int, seen: set[int]) -> None:
    """Stop what the command left running in its session (e.g. Ray daemons), by pid."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        alive = [pid for pid in seen if (_stat(pid) or (0, -1))[1] == root]
        if not alive:
            return
        time.sleep(0.1)
    for pid in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)


# --- the commands ------------------------------------------------------------------------


def run_velocity(strategy: str, tmp: Path, interval: float) -> Sample:
    out = Path(tempfile.mkdtemp(dir=tmp))
    cmd = [str(VELOCITY), "run", "--strategy", strategy, "--rounds", str(ROUNDS)]
    cmd += ["--clients", str(CLIENTS), "--out", str(out)]
    sample = measure(cmd, interval)
    summary = json.loads(next(out.glob("*/summary.json")).read_text())
    sample.loss, sample.accuracy = summary["final_loss"], summary["final_accuracy"]
    return sample


def run_numpy(strategy: str, tmp: Path, interval: float) -> Sample:
    out = tmp / f"numpy-{time.monotonic_ns()}.json"
    script = (
        "import json, sys; sys.path.insert(0, 'bench'); import fl_numpy; "
        f"json.dump(fl_numpy.run({strategy!r}, {ROUNDS}), open({str(out)!r}, 'w'))"
    )
    sample = measure([str(VENV_PY), "-c", script], interval)
    result = json.loads(out.read_text())
    sample.loss, sample.accuracy = result["final_loss"], result["final_accuracy"]
    return sample


def run_flower(strategy: str, tmp: Path, interval: float) -> Sample:
    out = tmp / f"flower-{time.monotonic_ns()}.json"
    cmd = [str(FLOWER_PY), str(BENCH / "flower_digits_app.py"), "--strategy", strategy]
    cmd += ["--rounds", str(ROUNDS), "--result", str(out)]
    sample = measure(cmd, interval)
    result = json.loads(out.read_text())
    sample.loss, sample.accuracy = result["final_loss"], result["final_accuracy"]
    return sample


def run_sweep(tmp: Path, interval: float) -> Sample:
    out = Path(tempfile.mkdtemp(dir=tmp)) / "sweep"
    cmd = [str(VELOCITY), "sweep", "--strategies", ",".join(STRATEGIES)]
    cmd += ["--attacks", "gaussian_noise,sign_flipping", "--rounds", str(ROUNDS)]
    cmd += ["--clients", str(CLIENTS), "--out", str(out)]
    sample = measure(cmd, interval)
    summaries = list(out.glob("**/summary.json"))
    done = [json.loads(p.read_text()) for p in summaries]
    if len(done) != 6 or any(s["status"] != "done" for s in done):
        sys.exit(f"the sweep in {out} did not finish 6 runs: {len(done)} summaries")
    sample.loss = None
    return sample


# --- report ------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _flwr_version() -> str:
    done = subprocess.run(
        [str(FLOWER_PY), "-c", "import flwr, ray; print(flwr.__version__, ray.__version__)"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(
            "Flower's simulation engine is not importable in .bench-venv; run `make bench-e2e`, "
            f"which installs flwr[simulation] there:\n{done.stderr[-1500:]}"
        )
    flwr, ray = done.stdout.split()
    return f"flwr {flwr}, ray {ray}"


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def report(rows: dict[str, Row], args: argparse.Namespace, header: list[str]) -> str:
    lines = [*header, ""]
    lines.append(
        "| command | strategy | wall s (median) | peak PSS MB | procs | final loss | final acc |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for key, row in rows.items():
        tool, _, strategy = key.partition(":")
        s = row.last
        acc = "—" if s.accuracy is None else f"{100 * s.accuracy:.2f}%"
        lines.append(
            f"| {tool} | {strategy or '6 runs'} | {row.wall:.2f} | {row.pss:.0f} | {row.procs} | "
            f"{_fmt(s.loss, '.4f')} | {acc} |"
        )
    lines.append("")
    walls = {k: ", ".join(f"{s.wall_s:.2f}" for s in r.samples) for k, r in rows.items()}
    lines.append("each repetition's wall (s): " + "; ".join(f"{k} {v}" for k, v in walls.items()))
    lines.append("")
    lines.append("| target | measured | status |")
    lines.append("|---|---:|---|")
    for strategy in STRATEGIES:
        v, f = rows[f"velocity run:{strategy}"], rows[f"Flower:{strategy}"]
        speed, mem = f.wall / v.wall, v.pss / f.pss
        same = abs(v.last.accuracy - f.last.accuracy) <= 0.01  # type: ignore[operator]
        lines.append(
            f"| {strategy}: velocity ≥ 10× faster than Flower | {speed:.1f}× "
            f"({v.wall:.2f} vs {f.wall:.2f} s) | {'met' if speed >= 10 else 'MISSED'} |"
        )
        lines.append(
            f"| {strategy}: velocity memory ≤ 1/5 of Flower's | {mem:.3f} "
            f"(1/{1 / mem:.0f}: {v.pss:.0f} vs {f.pss:.0f} MB) | "
            f"{'met' if mem <= 0.2 else 'MISSED'} |"
        )
        lines.append(
            f"| {strategy}: equal accuracy (within 1 point) | {100 * v.last.accuracy:.2f}% vs "  # type: ignore[operator]
            f"{100 * f.last.accuracy:.2f}% | {'met' if same else 'MISSED'} |"  # type: ignore[operator]
        )
    sweep, flower_one = rows["velocity sweep:"], min(rows[f"Flower:{s}"].wall for s in STRATEGIES)
    lines.append(
        f"| 6-run sweep finishes before Flower finishes one run | {sweep.wall:.2f} vs "
        f"{flower_one:.2f} s ({flower_one / sweep.wall:.1f}×) | "
        f"{'met' if sweep.wall < flower_one else 'MISSED'} |"
    )
    floor = rows["numpy floor:FedAvg"]
    v = rows["velocity run:FedAvg"]
    lines.append("")
    lines.append(
        f"velocity FedAvg vs the numpy floor: {v.wall / floor.wall:.2f}× its wall "
        f"({v.wall:.2f} vs {floor.wall:.2f} s), {v.pss / floor.pss:.2f}× its memory "
        f"({v.pss:.0f} vs {floor.pss:.0f} MB)."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="velocity / numpy repetitions (3)")
    parser.add_argument("--flower-reps", type=int, default=2, help="Flower repetitions (2)")
    parser.add_argument("--interval", type=float, default=0.05, help="PSS sampling period (s)")
    parser.add_argument("--no-flower", action="store_true", help="velocity and numpy only")
    args = parser.parse_args()
    for path in (VELOCITY, VENV_PY):
        if not path.exists():
            sys.exit(f"{path} is missing: run `make install` first")
    flower = None if args.no_flower else _flwr_version()
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_start = os.getloadavg()[0]
    rows: dict[str, Row] = {}

    def add(key: str, sample: Sample) -> None:
        rows.setdefault(key, Row(key)).samples.append(sample)
        print(
            f"  {key}: {sample.wall_s:.2f} s, {sample.peak_pss_mb:.0f} MB, "
            f"{sample.max_procs} procs",
            file=sys.stderr,
        )

    tmp = Path(tempfile.mkdtemp(prefix="velocity-e2e-"))
    try:
        for rep in range(max(args.reps, 0 if args.no_flower else args.flower_reps)):
            for strategy in STRATEGIES:
                if rep < args.reps:
                    add(f"velocity run:{strategy}", run_velocity(strategy, tmp, args.interval))
                    add(f"numpy floor:{strategy}", run_numpy(strategy, tmp, args.interval))
                if flower and rep < args.flower_reps:
                    add(f"Flower:{strategy}", run_flower(strategy, tmp, args.interval))
            if rep < args.reps:
                add("velocity sweep:", run_sweep(tmp, args.interval))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    order = [f"{t}:{s}" for t in ("velocity run", "Flower", "numpy floor") for s in STRATEGIES]
    rows = {k: rows[k] for k in [*order, "velocity sweep:"] if k in rows}
    header = [
        f"- date: {stamp}; total wall {time.perf_counter() - started:.0f} s",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores",
        f"- Python {platform.python_version()}; {flower or 'Flower not run (--no-flower)'}",
        f"- load average (1 min) at start / end: {load_start:.2f} / {os.getloadavg()[0]:.2f}",
        f"- repetitions: velocity and numpy {args.reps}, Flower {args.flower_reps}, "
        f"interleaved; PSS sampled every {args.interval * 1000:.0f} ms",
    ]
    if args.no_flower:
        print("\n".join(header))
        for key, row in rows.items():
            print(f"{key}: {row.wall:.2f} s, {row.pss:.0f} MB, acc {row.last.accuracy}")
        return
    print(report(rows, args, header))


if __name__ == "__main__":
    main()
