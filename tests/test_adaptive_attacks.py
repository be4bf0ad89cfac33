"""The adaptive attacks through the orchestrator, against numpy references.

With FedAvg and equal weights the round's aggregate is the plain mean of the rows,
so the vector the Byzantine clients sent is recovered exactly enough to check it:
m = (n · aggregate − Σ honest) / f (every row of one attack sends the same vector).
The searches' own unit tests live in Rust (``crates/velocity-core/src/security``);
these check what a run actually receives, with the real rule in the loop.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from velocity import _core

N, F, D = 12, 3, 40
ADAPTIVE = [name for name, s in _core.attack_schemas().items() if s["adaptive"]]
#: The attacks that search with the real rule (the others are agnostic of it).
RULE_IN_THE_LOOP = ("fang_krum", "alie_opt", "ipm_opt")


def _rows(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(N, D)) + rng.normal(size=D)).astype(np.float32)


def _round(
    strategy: _core.Strategy, attack: str, params: dict, x: np.ndarray, seed: int = 5
) -> tuple[np.ndarray, list[int]]:
    """(aggregate, Byzantine client ids) of one round from a zero global."""
    orchestrator = _core.Orchestrator(strategy, [(attack, {"count": F, **params})], N, seed)
    ids = np.arange(N, dtype=np.int64)
    aggregate, report = orchestrator.run_round(1, np.zeros(D, np.float32), x, np.ones(N), ids)
    return aggregate.astype(np.float64), sorted(report["byzantine"])


def _sent(x: np.ndarray, aggregate: np.ndarray, byzantine: list[int]) -> np.ndarray:
    """The vector the Byzantine rows sent, from a FedAvg aggregate."""
    honest = np.delete(x, byzantine, axis=0).astype(np.float64)
    return (N * aggregate - honest.sum(axis=0)) / len(byzantine)


def _honest(x: np.ndarray, byzantine: list[int]) -> np.ndarray:
    return np.delete(x, byzantine, axis=0).astype(np.float64)


def test_the_adaptive_set_is_the_registry_s() -> None:
    assert {"min_max", "min_sum", "fang_krum", "fang_trim", "mimic", "alie_opt", "ipm_opt"} <= set(
        ADAPTIVE
    )
    assert "alie" not in ADAPTIVE and "ipm" not in ADAPTIVE


@pytest.mark.parametrize("attack", ADAPTIVE)
def test_every_adaptive_attack_changes_the_round(attack: str) -> None:
    x = _rows(1)
    for rule in ("FedAvg", "TrimmedMean", "Krum"):
        params = {"beta": 0.25} if rule == "TrimmedMean" else {"f": F} if rule == "Krum" else {}
        strategy = _core.Strategy(rule, params)
        attacked, byzantine = _round(strategy, attack, {}, x)
        clean = _core.Orchestrator(strategy, [], N, 5)
        plain, _ = clean.run_round(
            1, np.zeros(D, np.float32), x, np.ones(N), np.arange(N, dtype=np.int64)
        )
        assert len(byzantine) == F
        assert np.all(np.isfinite(attacked))
        if rule == "Krum" and attack not in RULE_IN_THE_LOOP:
            # Krum picks one row: it may keep an honest one against an attack that does
            # not look at the rule (Min-Max/Min-Sum, Mimic, the trimmed-mean attack).
            continue
        assert not np.array_equal(attacked, plain), (attack, rule)


@pytest.mark.parametrize("direction", [0, 1, 2])
@pytest.mark.parametrize("attack", ["min_max", "min_sum"])
def test_min_max_and_min_sum_respect_their_distance_bound(attack: str, direction: int) -> None:
    x = _rows(2)
    aggregate, byzantine = _round(_core.Strategy("FedAvg"), attack, {"direction": direction}, x)
    m, honest = _sent(x, aggregate, byzantine), _honest(x, byzantine)
    mu, sigma = honest.mean(axis=0), honest.std(axis=0)
    pairwise = ((honest[:, None, :] - honest[None, :, :]) ** 2).sum(axis=2)
    to_m = ((honest - m) ** 2).sum(axis=1)
    if attack == "min_max":
        got, bound = to_m.max(), pairwise.max()
    else:
        got, bound = to_m.sum(), pairwise.sum(axis=1).max()
    assert got <= bound * (1 + 1e-4)
    p = {0: -mu / np.linalg.norm(mu), 1: -np.sign(mu), 2: -sigma}[direction]
    gamma = float((m - mu) @ p / (p @ p))
    np.testing.assert_allclose(m, mu + gamma * p, atol=1e-4)
    # γ is the largest feasible one (to the search's resolution): a little further
    # along p breaks the bound.
    beyond = mu + (gamma * 1.001 + 1e-3) * p
    to_beyond = ((honest - beyond) ** 2).sum(axis=1)
    assert (to_beyond.max() if attack == "min_max" else to_beyond.sum()) > bound
    assert gamma > 0


def test_mimic_copies_one_honest_client() -> None:
    x = _rows(3)
    aggregate, byzantine = _round(_core.Strategy("FedAvg"), "mimic", {"target": 2}, x)
    m, honest = _sent(x, aggregate, byzantine), _honest(x, byzantine)
    np.testing.assert_allclose(m, honest[2], atol=1e-4)
    aggregate, byzantine = _round(_core.Strategy("FedAvg"), "mimic", {}, x)
    m, honest = _sent(x, aggregate, byzantine), _honest(x, byzantine)
    assert np.min(np.abs(honest - m).max(axis=1)) < 1e-4  # the heuristic's pick


def test_fang_trim_sends_values_beyond_the_honest_extremes() -> None:
    x = _rows(4)
    strategy = _core.Strategy("FedAvg")
    orchestrator = _core.Orchestrator(strategy, [("fang_trim", {"count": 1})], N, 5)
    aggregate, report = orchestrator.run_round(
        1, np.zeros(D, np.float32), x, np.ones(N), np.arange(N, dtype=np.int64)
    )
    byzantine = sorted(report["byzantine"])
    honest = np.delete(x, byzantine, axis=0).astype(np.float64)
    m = N * aggregate.astype(np.float64) - honest.sum(axis=0)
    mu, lo, hi = honest.mean(axis=0), honest.min(axis=0), honest.max(axis=0)
    # Against the honest direction s = sign(μ): below the minimum where μ > 0, above
    # the maximum where μ < 0, by at most a factor b = 2.
    up = mu < 0
    assert np.all(m[up] >= hi[up] - 1e-4) and np.all(m[~up] <= lo[~up] + 1e-4)
    assert np.all(np.abs(m) <= 2 * np.maximum(np.abs(lo), np.abs(hi)) + 1e-4)


@pytest.mark.parametrize(
    ("attack", "rule"), [("alie_opt", "TrimmedMean"), ("ipm_opt", "FedMedian")]
)
def test_optimal_alie_and_ipm_beat_every_point_of_their_grid(attack: str, rule: str) -> None:
    x = _rows(5)
    strategy = _core.Strategy(rule, {"beta": 0.25} if rule == "TrimmedMean" else {})
    attacked, byzantine = _round(strategy, attack, {}, x)
    honest = _honest(x, byzantine)
    mu = honest.mean(axis=0)
    damage = np.linalg.norm(attacked - mu)
    # The fixed grid of the search (start 0, delta 10, 8 points): ByzFL's candidates
    # μ + τ·s (sample std) for ALIE and −τ·μ for IPM, aggregated by the same rule.
    spread = honest.std(axis=0, ddof=1)
    for tau in np.linspace(0.0, 10.0, 9):
        vector = mu + tau * spread if attack == "alie_opt" else -tau * mu
        rows = x.copy()
        rows[byzantine] = vector.astype(np.float32)
        value, _ = _core.aggregate(strategy, rows, np.ones(N))
        assert damage >= np.linalg.norm(value.astype(np.float64) - mu) * (1 - 1e-5), tau


def test_adaptive_attacks_run_end_to_end(tmp_path: Path) -> None:
    """`--attacks adaptive` in a real sweep: every run finishes and the attacks act."""
    out = tmp_path / "sweep"
    done = subprocess.run(
        [sys.executable, "-m", "velocity", "sweep", "--strategies", "TrimmedMean,NNM>Krum",
         "--attacks", "none,adaptive", "--byzantine", "0.2", "--rounds", "2",
         "--clients", "10", "--parallel", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    losses = {}
    for summary in out.glob("*/summary.json"):
        data = json.loads(summary.read_text())
        assert data["status"] == "done", (summary, data.get("error"))
        losses[summary.parent.name] = data["final_loss"]
    assert len(losses) == 2 * (1 + len(ADAPTIVE))
    clean = {name: loss for name, loss in losses.items() if "__" not in name}
    assert len(clean) == 2, sorted(losses)  # TrimmedMean:beta=0.2 and NNM:f=2>Krum:f=2
    for strategy, loss in clean.items():
        attacked = [v for k, v in losses.items() if k.startswith(strategy + "__")]
        assert len(attacked) == len(ADAPTIVE), sorted(losses)
        assert all(v != loss for v in attacked), (strategy, losses)


def test_a_mimic_target_a_round_can_lack_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    out = tmp_path / "sweep"
    done = subprocess.run(
        [sys.executable, "-m", "velocity", "sweep", "--strategies", "FedAvg",
         "--attacks", "mimic:target=8,count=2", "--rounds", "2", "--clients", "10",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "invalid mimic.target: got 8; allowed: None or an int < 8" in lines[0]
    assert "(10 per round − 2 Byzantine)" in lines[0]
    assert not out.exists()
