"""Kernels: every velocity strategy vs a plain numpy reference and vs Flower's own code.

For n ∈ {10, 50, 100} clients × d ∈ {10⁵, 10⁶} parameters (float32, standard normal,
seeded), each strategy of ``velocity._core`` is timed against

* a plain numpy reference, the version a researcher would write (FedAvg ``w @ x``,
  one BLAS sgemv at memory bandwidth, and again as ``np.average(x, 0, weights=w)``,
  ``np.median``, a sort-based trimmed mean, Krum family from one pairwise-distance
  matrix, Weiszfeld and clipping loops), and
* Flower's implementation in ``flwr.server.strategy.aggregate`` (aggregate,
  aggregate_median, aggregate_trimmed_avg, aggregate_krum, aggregate_bulyan), fed
  the same rows as one-layer ``(ndarrays, num_examples)`` results.

Every timing is the best of up to ``--reps`` calls after one warm-up call
(``time.perf_counter``); a call that takes longer than ``--budget`` seconds is
timed once. Flower's Krum family costs n² (Bulyan Σ r²) separate distance
computations; it is estimated as that count × the per-pair cost of Flower's own
``_compute_distances`` on 8 rows, and when the estimate exceeds ``--flower-cap``
seconds (4× that at n=50, d=10⁶, where the targets are judged) the call is skipped
and the estimate shown as ``~… (est.)``.

GB/s is input bytes (n·d·4) over time; "% copy" compares it with ``X.copy()`` of the
same matrix, the practical memory-bandwidth ceiling. ``max Δ`` is the largest
difference between velocity's and numpy's result (selection strategies must keep
the same rows, so it should be float rounding only).

Not a test: it prints tables. ``make bench-kernels`` runs it in ``.bench-venv`` (where
Flower lives) with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset, so numpy's BLAS picks
its best kernel. ``python bench/kernels.py --quick`` runs n=50, d=10⁶ only.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _flower_env import load_flower_aggregate, use_repo_velocity

use_repo_velocity()
import velocity  # noqa: E402
from velocity import _core  # noqa: E402

Array = np.ndarray
FULL_SIZES = [(n, d) for n in (10, 50, 100) for d in (10**5, 10**6)]
QUICK_SIZES = [(50, 10**6)]
TARGET_SIZE = (50, 10**6)
BETA = 0.1  # TrimmedMean
F = 2  # Byzantine clients tolerated by the Krum family


# --------------------------------------------------------------------------- timing


@dataclass
class Timing:
    """A measured (or, for skipped Flower calls, estimated) duration."""

    seconds: float
    runs: int  # 0 means estimated, not run

    @property
    def estimated(self) -> bool:
        return self.runs == 0


def best_of(fn: Callable[[], Any], reps: int, budget: float) -> tuple[Timing, Any]:
    """Warm up once, then the best of up to ``reps`` calls within ``budget`` seconds."""
    start = time.perf_counter()
    out = fn()
    first = time.perf_counter() - start
    if first >= budget:
        return Timing(first, 1), out
    runs = max(1, min(reps, int(budget / first)))
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return Timing(best, runs), out


# ---------------------------------------------------------------- numpy references


def np_fedavg(x: Array, w32: Array) -> Array:
    return (w32 @ x) / w32.sum()


def np_average(x: Array, w32: Array) -> Array:
    """FedAvg as most numpy code writes it (and Flower's ``aggregate``): scale, then sum."""
    return np.average(x, axis=0, weights=w32)


def np_median(x: Array) -> Array:
    return np.median(x, axis=0)


def trim_count(beta: float, n: int) -> int:
    return min(int(np.floor(beta * n)), (n - 1) // 2)


def np_trimmed_mean(x: Array, beta: float) -> Array:
    n = x.shape[0]
    b = trim_count(beta, n)
    return np.sort(x, axis=0)[b : n - b].mean(axis=0)


def np_pairwise_sq(x: Array) -> Array:
    """Squared distances from the Gram matrix (one BLAS call), in float64."""
    gram = (x @ x.T).astype(np.float64)
    sq = np.diag(gram)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)


def np_krum_scores(dist: Array, idx: list[int], f: int) -> Array:
    r = len(idx)
    k = max(1, min(r - f - 2, r - 1))
    sub = dist[np.ix_(idx, idx)]
    return np.sort(sub, axis=1)[:, 1 : k + 1].sum(axis=1)


def np_krum(x: Array, f: int) -> Array:
    dist = np_pairwise_sq(x)
    scores = np_krum_scores(dist, list(range(x.shape[0])), f)
    return x[int(np.argmin(scores))].copy()


def np_multi_krum(x: Array, w32: Array, f: int) -> Array:
    n = x.shape[0]
    dist = np_pairwise_sq(x)
    scores = np_krum_scores(dist, list(range(n)), f)
    keep = np.sort(np.argsort(scores, kind="stable")[: n - f])
    return (w32[keep] @ x[keep]) / w32[keep].sum()


def np_bulyan(x: Array, f: int) -> Array:
    n = x.shape[0]
    theta, beta = n - 2 * f, n - 4 * f
    dist = np_pairwise_sq(x)
    remaining, selected = list(range(n)), []
    while len(selected) < theta:
        scores = np_krum_scores(dist, remaining, f)
        selected.append(remaining.pop(int(np.argmin(scores))))
    chosen = x[sorted(selected)]
    med = np.median(chosen, axis=0)
    closest = np.argpartition(np.abs(chosen - med), beta - 1, axis=0)[:beta]
    return np.take_along_axis(chosen, closest, axis=0).mean(axis=0)


def np_geometric_median(x: Array, w: Array, eps: float = 1e-6, max_iter: int = 100) -> Array:
    """Weiszfeld from the weighted mean; stops when ‖z⁺ − z‖ ≤ eps·(1 + ‖z⁺‖)."""

    def combine(coef: Array) -> Array:
        return ((coef / coef.sum()).astype(np.float32) @ x).astype(np.float64)

    z = combine(w)
    for _ in range(max_iter):
        dist = np.linalg.norm(x - z.astype(np.float32), axis=1).astype(np.float64)
        nxt = combine(w / np.maximum(dist, eps))
        step, norm = np.linalg.norm(nxt - z), np.linalg.norm(nxt)
        z = nxt
        if step <= eps * (1.0 + norm):
            break
    return z.astype(np.float32)


def np_centered_clipping(x: Array, tau: float = 1.0, iters: int = 3) -> Array:
    n = x.shape[0]
    v = np.zeros(x.shape[1], dtype=np.float32)
    for _ in range(iters):
        diff = x - v
        norms = np.linalg.norm(diff, axis=1)
        scale = np.where(norms <= tau, 1.0, tau / np.maximum(norms, 1e-30)).astype(np.float32)
        v = v + (scale @ diff) / n
    return v


# ------------------------------------------------------------------------ strategies


@dataclass
class Case:
    """One strategy: its velocity spec, numpy reference and Flower call (if any)."""

    label: str
    spec: str
    numpy: Callable[[], Array]
    flower: Callable[[], Array] | None = None
    flower_pairs: int = 0  # distance computations Flower makes (Krum family), for the estimate


def bulyan_f(n: int) -> int:
    """F, or the largest f with n ≥ 4f + 3 when n is too small for F."""
    return min(F, (n - 3) // 4)


def cases(x: Array, w64: Array, fl: Any) -> list[Case]:
    n = x.shape[0]
    w32 = w64.astype(np.float32)
    results = [([x[i]], int(w64[i])) for i in range(n)]  # Flower's (NDArrays, num_examples)
    fb = bulyan_f(n)
    theta = n - 2 * fb

    def flower(call: Callable[[], list[Array]]) -> Callable[[], Array] | None:
        return (lambda: call()[0]) if fl is not None else None

    return [
        Case("FedAvg", "FedAvg", lambda: np_fedavg(x, w32), flower(lambda: fl.aggregate(results))),
        Case(
            "FedAvg(np.average)",
            "FedAvg",
            lambda: np_average(x, w32),
            flower(lambda: fl.aggregate(results)),
        ),
        Case(
            "FedMedian",
            "FedMedian",
            lambda: np_median(x),
            flower(lambda: fl.aggregate_median(results)),
        ),
        Case(
            f"TrimmedMean β={BETA}",
            f"TrimmedMean:beta={BETA}",
            lambda: np_trimmed_mean(x, BETA),
            flower(lambda: fl.aggregate_trimmed_avg(results, proportiontocut=BETA)),
        ),
        Case(
            f"Krum f={F}",
            f"Krum:f={F}",
            lambda: np_krum(x, F),
            flower(lambda: fl.aggregate_krum(results, num_malicious=F, to_keep=0)),
            flower_pairs=n * n,
        ),
        Case(
            f"MultiKrum f={F}",
            f"MultiKrum:f={F}",
            lambda: np_multi_krum(x, w32, F),
            flower(lambda: fl.aggregate_krum(results, num_malicious=F, to_keep=n - F)),
            flower_pairs=n * n,
        ),
        Case(
            f"Bulyan f={fb}",
            f"Bulyan:f={fb}",
            lambda: np_bulyan(x, fb),
            flower(
                lambda: fl.aggregate_bulyan(
                    list(results), num_malicious=fb, aggregation_rule=fl.aggregate_krum, to_keep=0
                )
            ),
            flower_pairs=sum(r * r for r in range(n - theta + 1, n + 1)),
        ),
        Case("GeometricMedian", "GeometricMedian", lambda: np_geometric_median(x, w64)),
        Case("CenteredClipping", "CenteredClipping", lambda: np_centered_clipping(x)),
    ]


# --------------------------------------------------------------------------- running


@dataclass
class Row:
    label: str
    velocity: Timing
    numpy: Timing
    flower: Timing | None
    max_diff: float


@dataclass
class SizeResult:
    n: int
    d: int
    copy: Timing
    copyto: Timing
    rows: list[Row] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return self.n * self.d * 4


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def flower_pair_seconds(x: Array, fl: Any) -> float:
    """Seconds per pair distance in Flower's ``_compute_distances``, measured on 8 rows."""
    if fl is None:
        return 0.0
    m = min(8, x.shape[0])
    rows = [[x[i]] for i in range(m)]
    t, _ = best_of(lambda: fl._compute_distances(rows), 3, 1.0)
    return t.seconds / (m * m)


def run_size(n: int, d: int, args: argparse.Namespace, fl: Any) -> SizeResult:
    rng = np.random.default_rng(args.seed + 1000 * n + d)
    x = rng.standard_normal((n, d), dtype=np.float32)
    w64 = rng.integers(10, 1000, size=n).astype(np.float64)
    log(f"n={n} d={d:.0e}: {x.nbytes / 1e6:.0f} MB")

    copy, _ = best_of(x.copy, args.reps, args.budget)
    buf = np.empty_like(x)
    copyto, _ = best_of(lambda: np.copyto(buf, x), args.reps, args.budget)
    buf.resize(0, refcheck=False)  # free the 2nd copy before the kernels run
    pair = flower_pair_seconds(x, fl)

    result = SizeResult(n, d, copy, copyto)
    for case in cases(x, w64, fl):
        core = velocity.parse_strategy(case.spec).to_core()
        vel, (value, _kept) = best_of(
            lambda core=core: _core.aggregate(core, x, w64, args.threads), args.reps, args.budget
        )
        ref, expected = best_of(case.numpy, args.reps, args.budget)
        max_diff = float(np.max(np.abs(value.astype(np.float64) - expected)))
        flo: Timing | None = None
        if case.flower is not None:
            estimate = case.flower_pairs * pair
            # At the size the targets are judged on, run Flower once even when slow.
            cap = args.flower_cap * (4 if (n, d) == TARGET_SIZE else 1)
            if estimate > cap:
                flo = Timing(estimate, 0)
            else:
                flo, _ = best_of(case.flower, args.reps, args.budget)
        log(
            f"  {case.label:<18} velocity {vel.seconds * 1e3:9.1f} ms  numpy "
            f"{ref.seconds * 1e3:9.1f} ms  Flower "
            + (f"{ms(flo):>9} ms" if flo else "n/a")
            + (f"  (estimate {estimate:.1f} s)" if case.flower_pairs and fl is not None else "")
        )
        result.rows.append(Row(case.label, vel, ref, flo, max_diff))
        gc.collect()
    return result


# -------------------------------------------------------------------------- printing


def ms(t: Timing | None) -> str:
    if t is None:
        return "n/a"
    text = f"{t.seconds * 1e3:,.1f}"
    return f"~{text} (est.)" if t.estimated else text


def ratio(base: Timing | None, vel: Timing) -> str:
    if base is None:
        return "n/a"
    r = base.seconds / vel.seconds
    text = f"{r:,.1f}×" if r < 100 else f"{r:,.0f}×"
    return "~" + text if base.estimated else text


def table(rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in rows]
        lines.insert(1, "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|")
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for k, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        out.append("  ".join(cells))
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


NO_FLOWER = {"GeometricMedian", "CenteredClipping"}  # Flower has no such function
HEADER = [
    "strategy",
    "velocity ms",
    "GB/s",
    "% copy",
    "numpy ms",
    "×numpy",
    "Flower ms",
    "×Flower",
    "max Δ vs numpy",
]


def size_table(res: SizeResult, markdown: bool) -> str:
    gbps = res.nbytes / 1e9
    rows = [HEADER]
    for r in res.rows:
        missing = "—" if r.label in NO_FLOWER else "n/a"  # no such function / not importable
        rows.append(
            [
                r.label,
                ms(r.velocity),
                f"{gbps / r.velocity.seconds:.1f}",
                f"{100 * res.copy.seconds / r.velocity.seconds:.0f}%",
                ms(r.numpy),
                ratio(r.numpy, r.velocity),
                ms(r.flower) if r.flower else missing,
                ratio(r.flower, r.velocity) if r.flower else missing,
                f"{r.max_diff:.1e}",
            ]
        )
    return table(rows, markdown)


def machine() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [
        f"CPU: {model}, {os.cpu_count()} logical cores ({usable} usable)",
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"velocity {velocity.__version__}",
    ]
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                lines.append(
                    f"numpy BLAS (threadpoolctl): {info.get('internal_api')} "
                    f"{info.get('version')}, kernel {info.get('architecture')}, "
                    f"{info.get('num_threads')} threads"
                )
    except ImportError:
        lines.append("numpy BLAS: threadpoolctl not installed")
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    lines.append(
        "OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE: "
        + (", ".join(f"{k}={v}" for k, v in env.items()) if env else "unset")
    )
    return lines


@dataclass
class Target:
    text: str
    measured: str
    met: bool


def targets(res: SizeResult) -> list[Target]:
    by = {r.label.split()[0]: r for r in res.rows}
    out: list[Target] = []

    def vs(name: str, other: str, need: float, *, within: bool = False) -> None:
        row = by[name]
        base = row.numpy if other == "numpy" else row.flower
        if base is None:
            out.append(Target(f"{name} vs {other}", "n/a (not measured)", False))
            return
        r = base.seconds / row.velocity.seconds
        est = " (Flower estimated)" if base.estimated else ""
        if within:  # velocity no slower than need × the other
            out.append(
                Target(
                    f"{name} within {need}× of {other}",
                    f"velocity/{other} = {1 / r:.2f}×{est}",
                    1 / r <= need,
                )
            )
        else:
            out.append(
                Target(
                    f"{name} ≥ {need:g}× faster than {other}",
                    f"{r:,.1f}×{est}",
                    r >= need,
                )
            )

    def copy(name: str) -> None:
        row = by[name]
        r = row.velocity.seconds / res.copy.seconds
        out.append(
            Target(
                f"{name} within 3× of the copy ceiling",
                f"{r:.2f}× the X.copy() time",
                r <= 3,
            )
        )

    vs("FedAvg", "numpy", 1.5, within=True)
    vs("FedMedian", "numpy", 10)
    vs("TrimmedMean", "Flower", 10)
    vs("Krum", "Flower", 10)
    vs("MultiKrum", "Flower", 10)
    vs("Bulyan", "Flower", 50)
    copy("FedAvg")
    copy("FedMedian")
    # issue 6's additional bars
    vs("FedAvg", "numpy", 1.5)
    vs("FedAvg(np.average)", "numpy", 1.5)
    vs("FedMedian", "Flower", 10)
    vs("TrimmedMean", "numpy", 10)
    return out


def report(
    results: list[SizeResult], args: argparse.Namespace, flower_note: str, wall: float, cmd: str
) -> str:
    md = args.markdown
    h2, h3 = ("### ", "#### ") if md else ("== ", "-- ")
    out = [f"{h2}Kernels: velocity vs numpy vs Flower"]
    info = [
        f"date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"command: {cmd}",
        *machine(),
        f"Flower: {flower_note}",
        "load average (1 min) at start / end: " + " / ".join(f"{v:.2f}" for v in args.load),
        f"velocity threads: {args.threads or 'default (RAYON_NUM_THREADS, else all cores)'}; "
        f"best of ≤{args.reps} after a warm-up, calls over {args.budget:g} s timed once; "
        f"Flower calls estimated over {args.flower_cap:g} s "
        f"({4 * args.flower_cap:g} s at n=50, d=1e6); seed {args.seed}; "
        f"total wall {wall:.0f} s",
    ]
    out += [f"- {line}" for line in info] if md else info
    for res in results:
        out.append("")
        out.append(
            f"{h3}n={res.n}, d={res.d:.0e} ({res.nbytes / 1e6:.0f} MB float32) — copy ceiling "
            f"X.copy() {res.copy.seconds * 1e3:.1f} ms = {res.nbytes / 1e9 / res.copy.seconds:.1f} "
            f"GB/s (np.copyto into a warm buffer: {res.nbytes / 1e9 / res.copyto.seconds:.1f} GB/s)"
        )
        out.append("")
        out.append(size_table(res, md))
        single = [
            f"{r.label.split()[0]} ({who})"
            for r in res.rows
            for who, t in (("velocity", r.velocity), ("numpy", r.numpy), ("Flower", r.flower))
            if t is not None and t.runs == 1
        ]
        if single:
            out.append("")
            out.append(f"timed once (over {args.budget:g} s): " + ", ".join(single))
        if any(r.flower is not None and r.flower.estimated for r in res.rows):
            out.append("")
            out.append(
                "~ (est.): Flower not run; its pair-distance count × the per-pair cost of "
                "its `_compute_distances` measured on 8 rows"
            )
    target = next((r for r in results if (r.n, r.d) == TARGET_SIZE), None)
    if target is not None:
        out.append("")
        out.append(f"{h3}Targets at n=50, d=1e+06")
        out.append("")
        rows = [["target", "measured", "status"]]
        rows += [[t.text, t.measured, "met" if t.met else "MISSED"] for t in targets(target)]
        out.append(table(rows, md))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="n=50, d=10^6 only")
    p.add_argument("--markdown", action="store_true", help="print markdown tables")
    p.add_argument("--reps", type=int, default=5, help="best of this many calls (default 5)")
    p.add_argument(
        "--budget",
        type=float,
        default=2.0,
        help="seconds per measurement; slower calls are timed once (default 2)",
    )
    p.add_argument(
        "--flower-cap",
        type=float,
        default=30.0,
        help="estimate instead of running a Flower call over this many s (default 30)",
    )
    p.add_argument("--threads", type=int, default=None, help="velocity num_threads (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sizes", default=None, help="e.g. 50x1e6,10x1e5 (overrides --quick)")
    args = p.parse_args(argv)

    if args.sizes:
        sizes = [(int(a), int(float(b))) for a, b in (s.split("x") for s in args.sizes.split(","))]
    else:
        sizes = QUICK_SIZES if args.quick else FULL_SIZES
    fl, flower_note = load_flower_aggregate()
    if fl is None:
        log(f"note: {flower_note}; Flower columns print n/a")
    cmd = " ".join([Path(sys.executable).name, "bench/kernels.py", *sys.argv[1:]])
    start = time.perf_counter()
    args.load = [os.getloadavg()[0]]
    results = []
    for n, d in sizes:
        results.append(run_size(n, d, args, fl))
        gc.collect()
    args.load.append(os.getloadavg()[0])
    print(report(results, args, flower_note, time.perf_counter() - start, cmd))


if __name__ == "__main__":
    main()
