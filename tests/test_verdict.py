"""The recommendation's arithmetic against an independent numpy computation (hypothesis)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velocity.report.verdict import (
    NO_ATTACK,
    Difference,
    Observation,
    binomial_sd,
    paired_difference,
    recommend,
)

CONDITIONS = [NO_ATTACK, "alie", "zero"]
N_TEST = 400


def observations(acc: np.ndarray, diverged: np.ndarray) -> list[Observation]:
    """``acc[s, c, r]`` → one observation per strategy s, condition c, repeat r."""
    out = []
    for s in range(acc.shape[0]):
        for c in range(acc.shape[1]):
            for r in range(acc.shape[2]):
                out.append(
                    Observation(
                        strategy=f"S{s}",
                        condition=CONDITIONS[c],
                        cell=f"S{s}__{CONDITIONS[c]}",
                        seed=42 + r,
                        diverged=bool(diverged[s, c, r]),
                        accuracy=float(acc[s, c, r]),
                        loss=float(1 - acc[s, c, r]),
                        test_samples=N_TEST,
                        elapsed_s=1.0 + s,
                    )
                )
    return out


def reference_worst(acc: np.ndarray, diverged: np.ndarray) -> np.ndarray:
    """Per strategy and seed: min over conditions, a diverged run counting 0."""
    return np.where(diverged, 0.0, acc).min(axis=1)


def reference_decided(worst: np.ndarray, top: int) -> bool:
    """Whether ``top`` beats every other strategy by more than 2·SE (paired, with the floor)."""
    k = worst.shape[1]
    for other in range(worst.shape[0]):
        if other == top:
            continue
        d = worst[top] - worst[other]
        sd = float(np.std(d, ddof=1)) if k > 1 else 0.0
        p = float(np.mean(np.concatenate([worst[top], worst[other]])))
        floor = math.sqrt(p * (1 - p) / N_TEST)
        if not d.mean() > 2 * max(sd, floor) / math.sqrt(k):
            return False
    return True


grids = st.tuples(st.integers(2, 5), st.integers(1, 4)).flatmap(
    lambda shape: st.tuples(
        st.lists(
            st.integers(0, 1000),
            min_size=shape[0] * len(CONDITIONS) * shape[1],
            max_size=shape[0] * len(CONDITIONS) * shape[1],
        ),
        st.lists(
            st.integers(0, 9),
            min_size=shape[0] * len(CONDITIONS) * shape[1],
            max_size=shape[0] * len(CONDITIONS) * shape[1],
        ),
        st.just(shape),
    )
)


@settings(max_examples=150, deadline=None)
@given(grids)
def test_recommendation_matches_an_independent_max_min(grid: tuple) -> None:
    raw, div, (strategies, repeats) = grid
    acc = np.array(raw, dtype=float).reshape(strategies, len(CONDITIONS), repeats) / 1000
    diverged = np.array(div).reshape(acc.shape) == 0  # about one run in ten diverged
    rec = recommend(observations(acc, diverged))
    worst = reference_worst(acc, diverged)
    means = worst.mean(axis=1)
    scores = {c.strategy: c.worst_case_accuracy for c in rec.candidates}
    for s in range(strategies):
        assert scores[f"S{s}"] == pytest.approx(means[s])
    ranked = [c.strategy for c in rec.candidates]
    ordered = [means[int(name[1:])] for name in ranked]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(ordered))
    top = int(ranked[0][1:])
    assert rec.decided == reference_decided(worst, top)
    if rec.decided:
        assert rec.strategy == ranked[0] and rec.tie == []
    else:
        assert rec.strategy in rec.tie and rec.tie[0] == ranked[0]
        cleans = {c.strategy: c.clean_accuracy for c in rec.candidates}
        assert cleans[rec.strategy] == max(cleans[s] for s in rec.tie)


def test_paired_difference_uses_the_larger_of_measured_noise_and_the_floor() -> None:
    a = {1: 0.90, 2: 0.80, 3: 0.85}
    b = {1: 0.80, 2: 0.79, 3: 0.80}
    diff = paired_difference(a, b, "accuracy", 100)
    assert diff is not None
    d = np.array([0.10, 0.01, 0.05])
    floor = binomial_sd(float(np.mean([*a.values(), *b.values()])), 100)
    assert floor is not None
    assert diff.mean == pytest.approx(d.mean())
    assert diff.sigma == pytest.approx(max(float(np.std(d, ddof=1)), floor))
    assert diff.two_se == pytest.approx(2 * diff.sigma / math.sqrt(3))
    assert paired_difference(a, {7: 0.5}, "accuracy", 100) is None  # no common seed


def test_loss_has_no_floor_and_a_diverged_run_is_infinitely_worse() -> None:
    one = paired_difference({1: 0.3}, {1: 0.5}, "loss", 360)
    assert one is not None and one.sigma is None and not one.decided
    broke = paired_difference({1: 0.3}, {1: math.inf}, "loss", None)
    assert broke is not None and broke.decided and broke.mean == math.inf
    both = paired_difference({1: math.inf}, {1: math.inf}, "loss", None)
    assert both is not None and not both.decided


def test_repeats_to_separate() -> None:
    assert Difference(0.01, 0.02, 3).repeats_to_separate() == 16
    assert Difference(0.05, 0.02, 1).repeats_to_separate() == 2  # at least one more
    assert Difference(0.0, 0.02, 3).repeats_to_separate() is None
    assert Difference(0.01, None, 1).repeats_to_separate() is None
