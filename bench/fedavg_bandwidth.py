"""FedAvg against numpy's ``w @ X`` (one BLAS sgemv) at n=50, d=10⁶: read bandwidth.

Both read the 200 MB update matrix once, so this is a memory-bandwidth race. Each
measurement runs in a fresh process (another process's — or another extension
build's — idle rayon or BLAS threads would otherwise spin on the same cores and
distort the result), alternating velocity and numpy, at 1 and 2 threads (sweeps
run their workers at 1 thread each, so that column is velocity's real case). Prints
the 25th percentile of 40 calls per process, per round, and the ratio numpy/velocity
(≥ 1: velocity is at least as fast).

Not a test: ``python bench/fedavg_bandwidth.py [--rounds 3]``. Run it without the
``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` overrides (``make bench-kernels`` unsets
them) so numpy's BLAS picks its own kernel.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys

CHILD = """
import sys, time
import numpy as np
from threadpoolctl import threadpool_limits
import velocity
which, threads = sys.argv[1], int(sys.argv[2])
n, d = 50, 1_000_000
x = np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
w = np.random.default_rng(1).integers(10, 100, size=n).astype(np.float64)
wf = (w / w.sum()).astype(np.float32)
if which == "numpy":
    call = lambda: wf @ x
else:
    from velocity import _core
    strategy = _core.Strategy.fedavg()
    call = lambda: _core.aggregate(strategy, x, w, num_threads=threads)
with threadpool_limits(threads):
    for _ in range(3):
        call()
    times = []
    for _ in range(40):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
print(float(np.percentile(times, 25)))
"""


def measure(which: str, threads: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, which, str(threads)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; 200 MB read per call")
    print("| threads | velocity ms (rounds) | numpy `w @ X` ms (rounds) | numpy/velocity |")
    print("| ---: | --- | --- | ---: |")
    for threads in (1, 2):
        ours, theirs = [], []
        for _ in range(args.rounds):
            ours.append(measure("velocity", threads) * 1e3)
            theirs.append(measure("numpy", threads) * 1e3)
        ratio = statistics.median(theirs) / statistics.median(ours)
        print(
            f"| {threads} | {', '.join(f'{t:.2f}' for t in ours)} | "
            f"{', '.join(f'{t:.2f}' for t in theirs)} | {ratio:.2f}× |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
