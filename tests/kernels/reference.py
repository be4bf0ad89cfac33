"""Plain numpy reference implementations of every strategy, written for clarity, not speed.

Each follows the paper's definition as documented in velocity/strategy.py; the Rust
kernels must agree with them (float64 here, float32 there, so tests allow a small
relative tolerance).
"""

from __future__ import annotations

import numpy as np


def fedavg(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.average(x.astype(np.float64), axis=0, weights=w)


def median(x: np.ndarray) -> np.ndarray:
    return np.median(x.astype(np.float64), axis=0)


def trimmed_mean(x: np.ndarray, beta: float) -> np.ndarray:
    n = x.shape[0]
    k = int(np.floor(beta * n))
    s = np.sort(x.astype(np.float64), axis=0)
    return s[k : n - k].mean(axis=0)


def pairwise_sq(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    return ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)


def krum_scores(dist: np.ndarray, rows: list[int], f: int, clamp: bool) -> np.ndarray:
    r = len(rows)
    k = r - f - 2
    if clamp:
        k = min(max(1, k), r - 1)
    scores = []
    for i in rows:
        others = np.sort([dist[i, j] for j in rows if j != i])
        scores.append(others[:k].sum())
    return np.array(scores)


def krum(x: np.ndarray, f: int) -> tuple[np.ndarray, list[int]]:
    scores = krum_scores(pairwise_sq(x), list(range(x.shape[0])), f, clamp=False)
    best = int(np.argmin(scores))
    return x[best].astype(np.float64), [best]


def multi_krum(x: np.ndarray, w: np.ndarray, f: int, m: int | None) -> tuple[np.ndarray, list[int]]:
    n = x.shape[0]
    m = n - f if m is None else m
    scores = krum_scores(pairwise_sq(x), list(range(n)), f, clamp=False)
    keep = sorted(np.argsort(scores, kind="stable")[:m].tolist())
    return fedavg(x[keep], w[keep]), keep


def bulyan(x: np.ndarray, f: int, m: int | None) -> tuple[np.ndarray, list[int]]:
    n = x.shape[0]
    theta = n - 2 * f if m is None else m
    dist = pairwise_sq(x)
    remaining = list(range(n))
    selected: list[int] = []
    while len(selected) < theta:
        scores = krum_scores(dist, remaining, f, clamp=True)
        best = remaining[int(np.argmin(scores))]
        selected.append(best)
        remaining.remove(best)
    beta = theta - 2 * f
    s = np.sort(x[sorted(selected)].astype(np.float64), axis=0)
    return np.array([_closest_to_median_mean(col, beta) for col in s.T]), sorted(selected)


def _closest_to_median_mean(col: np.ndarray, beta: int) -> float:
    """Mean of the beta sorted values closest to the median; on a tie the smaller first."""
    med = np.median(col)
    lo = hi = len(col) // 2
    while hi - lo < beta:
        if lo > 0 and (hi == len(col) or med - col[lo - 1] <= col[hi] - med):
            lo -= 1
        else:
            hi += 1
    return float(col[lo:hi].mean())


def geometric_median(x: np.ndarray, w: np.ndarray, eps: float, max_iter: int) -> np.ndarray:
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    z = np.average(x, axis=0, weights=w)
    for _ in range(max_iter):
        beta = w / np.maximum(eps, np.linalg.norm(x - z, axis=1))
        new = (beta[:, None] * x).sum(axis=0) / beta.sum()
        step = np.linalg.norm(new - z)
        z = new
        if step <= eps * (1 + np.linalg.norm(z)):
            break
    return z


def centered_clipping(x: np.ndarray, tau: float, iters: int) -> np.ndarray:
    x = x.astype(np.float64)
    v = np.zeros(x.shape[1])
    for _ in range(iters):
        diff = x - v
        norms = np.linalg.norm(diff, axis=1)
        scale = np.minimum(1.0, tau / np.maximum(norms, 1e-300))
        v = v + (diff * scale[:, None]).mean(axis=0)
    return v
