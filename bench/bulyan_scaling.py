"""Bulyan's selection at many clients: time vs n (issue 13's performance defect).

Bulyan selects θ = n − 2f updates by iterated Krum. The first version re-sorted
every candidate's distances at every step, O(θ·n²·log n): 80 s at n = 2000.
Each row's neighbours are now sorted once and a removed row's entry zeroed in
place, so a score is one contiguous ascending fold (same bits). This prints the
time of ``velocity.aggregate("Bulyan:f=F", X)`` for n ∈ {100, 500, 1000, 2000}
(d = 1000, f = 1 — the default, which gives the longest selection — and the
largest f allowed, (n − 3) // 4), best of ``--reps``, and a checksum of each
result so two builds can be compared bit for bit.

Not a test: ``python bench/bulyan_scaling.py [--reps 3] [--sizes 100,500,1000,2000]``.
"""

from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np

import velocity


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="100,500,1000,2000")
    parser.add_argument("--dim", type=int, default=1000)
    args = parser.parse_args()
    print("| n | f | θ | best time | sha256 of the result |")
    print("| ---: | ---: | ---: | ---: | --- |")
    for n in (int(s) for s in args.sizes.split(",")):
        x = np.random.default_rng(n).normal(size=(n, args.dim)).astype(np.float32)
        for f in sorted({1, (n - 3) // 4}):
            times = []
            for _ in range(args.reps):
                started = time.perf_counter()
                out = velocity.aggregate(f"Bulyan:f={f}", x)
                times.append(time.perf_counter() - started)
            digest = hashlib.sha256(out.tobytes()).hexdigest()[:16]
            print(f"| {n} | {f} | {n - 2 * f} | {min(times):.3f} s | `{digest}` |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
