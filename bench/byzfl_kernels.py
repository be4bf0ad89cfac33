"""Pre-aggregators and adaptive attacks against ByzFL 0.0.11, and what an attack's search costs.

At n = 50 clients × d = 10⁶ parameters (float32, standard normal, seeded), f = 10:

* **Pre-aggregators** (NNM, Bucketing, Clipping, ARC) run as ``pre>FedAvg`` pipelines
  through ``velocity._core.aggregate`` (equal weights), against ByzFL's
  ``Average()(Pre(...)(X))`` on the same matrix. ``max Δ`` is the largest difference of
  the two averages (Bucketing permutes with different RNGs on the two sides, and the
  mean of equal-size bucket means is the overall mean whatever the permutation, so it
  still compares; with n = 50 and s = 2 every bucket has two rows).
* **Adaptive attacks** run inside one ``Orchestrator.run_round`` with the real rule
  (TrimmedMean β = 0.2, i.e. ByzFL's ``TrMean(f=10)``; Krum f = 10 for the Fang Krum
  attack), against ByzFL's ``Optimal_ALittleIsEnough`` / ``Optimal_InnerProductManipulation``
  / ``Mimic`` on the same honest rows (the 40 velocity assigned honest) where ByzFL has
  the attack. ``max Δ`` compares the two sides' aggregates of honest + 10 attack rows;
  ``damage`` is ‖aggregate − honest mean‖ on velocity's side ÷ the same on ByzFL's (≥ 1:
  velocity's search found an attack at least as damaging; velocity's optimal ALIE / IPM
  also evaluate a fixed grid, so they can find a more damaging point than ByzFL's line
  search alone).
  ByzFL has no Min-Max, Min-Sum or Fang attack: those rows show velocity only.
* **The search's cost**: per round, (round with the attack − round without any attack)
  ÷ one aggregation by the same rule. Target: ≤ 20×.

Timings are the best of ``--reps`` (5) calls after one warm-up (ByzFL's slow calls once).
Definition differences are listed under the table (ByzFL's ALIE adds τσ with the sample
std, velocity's subtracts zσ with the population std; ByzFL's Clipping parameter is
``c``, velocity's ``tau``).

Not a test: ``make bench-byzfl`` runs it in ``.bench-venv`` (ByzFL is installed there
without its training framework). ``--quick``: d = 10⁵.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _flower_env import load_byzfl, use_repo_velocity

use_repo_velocity()
from velocity import _core  # noqa: E402

N, F = 50, 10
BUCKET = 2
CLIP_TAU = 1000.0  # about the median row norm at d = 10⁶ (√d): half the rows clipped
TARGET_OVERHEAD = 20.0


def best(fn: Callable[[], Any], reps: int) -> tuple[float, Any]:
    """Best wall seconds of ``reps`` calls after a warm-up, and the last result."""
    out = fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


def pre_rows(x: np.ndarray, reps: int, byz: Any) -> list[list[str]]:
    """velocity ``pre>FedAvg`` vs ByzFL ``Average()(pre(X))`` per pre-aggregator."""
    w = np.ones(len(x))
    cases = [
        ("NNM", {"f": F}, lambda: byz.NNM(f=F)),
        ("Bucketing", {"s": BUCKET}, lambda: byz.Bucketing(s=BUCKET)),
        ("Clipping", {"tau": CLIP_TAU}, lambda: byz.Clipping(c=CLIP_TAU)),
        ("ARC", {"f": F}, lambda: byz.ARC(f=F)),
    ]
    rows = []
    for name, params, theirs in cases:
        strategy = _core.Strategy("FedAvg", None, pre=[(name, params)])
        t_vel, (ours, _) = best(lambda s=strategy: _core.aggregate(s, x, w), reps)
        if byz is None:
            rows.append([name, ms(t_vel), "-", "-", "-"])
            continue
        average = byz.Average()
        # ByzFL's Clipping and ARC rescale rows in place: each call gets its own copy,
        # made outside the timed call.
        copies = iter([x.copy() for _ in range(2)])
        start = time.perf_counter()
        ref = average(theirs()(next(copies)))
        t_byz = time.perf_counter() - start
        diff = float(np.max(np.abs(np.asarray(ref, dtype=np.float64) - ours)))
        rows.append([name, ms(t_vel), ms(t_byz), f"{t_byz / t_vel:,.0f}×", f"{diff:.1e}"])
    return rows


def round_seconds(
    strategy: Any, attack: list[tuple[str, dict[str, Any]]], x: np.ndarray, reps: int
) -> tuple[float, np.ndarray, list[int]]:
    """Best seconds of one ``run_round`` (from a zero global), its aggregate, the Byzantine ids."""
    n, d = x.shape
    orchestrator = _core.Orchestrator(strategy, attack, n, 7)
    ids = np.arange(n, dtype=np.int64)
    weights = np.ones(n)
    zero = np.zeros(d, dtype=np.float32)
    t, (aggregate, _) = best(lambda: orchestrator.run_round(1, zero, x, weights, ids), reps)
    return t, aggregate, sorted(orchestrator.byzantine_clients)


def attack_rows(x: np.ndarray, reps: int, byz: Any, attacks_mod: Any) -> list[list[str]]:
    """Each adaptive attack: velocity's round, ByzFL's attack where it has one, the overhead."""
    w = np.ones(len(x))
    trmean = _core.Strategy("TrimmedMean", {"beta": F / N})
    krum = _core.Strategy("Krum", {"f": F})
    adaptive = [a for a, s in _core.attack_schemas().items() if s.get("adaptive")]
    rows = []
    for name in adaptive:
        rule, rule_label, byz_rule = (
            (krum, f"Krum:f={F}", "Krum")
            if name == "fang_krum"
            else (trmean, f"TrimmedMean:beta={F / N}", "TrMean")
        )
        t_agg, _ = best(lambda r=rule: _core.aggregate(r, x, w), reps)
        t_plain, _, _ = round_seconds(rule, [], x, reps)
        params: dict[str, Any] = {"count": F}
        if name == "mimic":
            params["target"] = 0
        t_attack, ours, byzantine = round_seconds(rule, [(name, params)], x, reps)
        overhead = (t_attack - t_plain) / t_agg
        honest = x[[i for i in range(len(x)) if i not in set(byzantine)]]
        theirs = byzfl_attack(name, honest, byz, attacks_mod, byz_rule)
        if theirs is None:
            rows.append([name, rule_label, ms(t_attack), "-", "-", "-", "-", f"{overhead:.1f}×"])
            continue
        t_byz, vector = theirs
        agg = {"TrMean": byz.TrMean(f=F), "Krum": byz.Krum(f=F)}[byz_rule]
        reference = np.asarray(
            agg(np.concatenate([honest, np.repeat(vector[None, :], F, axis=0)])), dtype=np.float64
        )
        diff = float(np.max(np.abs(reference - ours)))
        mean = honest.mean(axis=0, dtype=np.float64)
        damage = np.linalg.norm(ours - mean) / max(np.linalg.norm(reference - mean), 1e-30)
        rows.append(
            [
                name,
                rule_label,
                ms(t_attack),
                ms(t_byz),
                f"{t_byz / t_attack:,.0f}×",
                f"{diff:.1e}",
                f"{damage:.2f}",
                f"{overhead:.1f}×",
            ]
        )
    return rows


def byzfl_attack(
    name: str, honest: np.ndarray, byz: Any, attacks_mod: Any, rule: str
) -> tuple[float, np.ndarray] | None:
    """ByzFL's version of attack ``name`` on ``honest`` (seconds, vector), if it has one."""
    if byz is None:
        return None
    agg = {"TrMean": byz.TrMean(f=F), "Krum": byz.Krum(f=F)}[rule]
    make = {
        "alie_opt": lambda: attacks_mod.Optimal_ALittleIsEnough(agg=agg, pre_agg_list=[], f=F),
        "ipm_opt": lambda: attacks_mod.Optimal_InnerProductManipulation(
            agg=agg, pre_agg_list=[], f=F
        ),
        "mimic": lambda: attacks_mod.Mimic(epsilon=0),
    }.get(name)
    if make is None:
        return None
    attack = make()
    start = time.perf_counter()
    vector = np.asarray(attack(honest), dtype=np.float32)
    return time.perf_counter() - start, vector


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d = 10^5")
    parser.add_argument("--reps", type=int, default=5, help="timed calls per velocity case")
    args = parser.parse_args(argv)
    d = 10**5 if args.quick else 10**6
    loaded, version = load_byzfl()
    byz, attacks_mod = loaded if loaded is not None else (None, None)
    x = np.random.default_rng(0).normal(size=(N, d)).astype(np.float32)
    print(
        f"n = {N}, d = {d:,}, f = {F}; {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; {version}"
    )
    print()
    print("Pre-aggregators (`pre>FedAvg` vs ByzFL `Average()(pre(X))`), ms:")
    print()
    header = ["pre-aggregator", "velocity", "ByzFL", "ByzFL / velocity", "max Δ"]
    print(table(header, pre_rows(x, args.reps, byz)))
    print()
    print(
        "Adaptive attacks: one `run_round` with the attack vs ByzFL's attack call (ms); "
        "overhead = (round with − round without) ÷ one aggregation "
        f"(target ≤ {TARGET_OVERHEAD:g}×):"
    )
    print()
    header = ["attack", "rule", "velocity round", "ByzFL attack", "ByzFL / velocity", "max Δ",
              "damage", "overhead"]  # fmt: skip
    print(table(header, attack_rows(x, args.reps, byz, attacks_mod)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
