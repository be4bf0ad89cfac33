"""The end-to-end experiment in plain numpy: the floor, and the arithmetic Flower's side runs.

The same experiment as ``velocity run --strategy FedAvg --rounds 5 --clients 10``
(seed 42), written with numpy alone so that it needs no framework:

- data: the embedded UCI digits (``velocity/datasets/digits.csv.gz``), a stratified
  80/20 split seeded like velocity's, features standardized with the train mean and
  standard deviation, 10 IID clients (a seeded shuffle cut into near-equal shards);
- model: multinomial logistic regression, ``W`` (64 × 10) ~ N(0, 0.01²), ``b = 0``;
- local training: 1 epoch of minibatch SGD (batch 32, lr 0.1) on the mean softmax
  cross-entropy, each client's sample order seeded per (seed, round, client);
- aggregation: FedAvg (weighted by sample counts) or FedMedian (coordinate-wise
  median) of the client models; the global model is evaluated on the test split.

The seeds follow velocity's (``velocity/data.py``, ``velocity/models.py``,
``velocity/server.py``), so the three implementations train the same models and reach
the same accuracy up to float rounding. Nothing here imports velocity or Flower.

``python bench/fl_numpy.py --strategy FedAvg --rounds 5`` runs the floor and prints
one JSON line (final loss and accuracy, wall time inside the process).
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import time
from pathlib import Path

import numpy as np

DIGITS = Path(__file__).resolve().parent.parent / "velocity" / "datasets" / "digits.csv.gz"
SEED = 42
CLIENTS = 10
BATCH = 32
LR = 0.1
EPOCHS = 1
NUM_CLASSES = 10
_TRAINING_STREAM = 0x7E41  # velocity.sim.server's stream id for local training


@functools.lru_cache(maxsize=1)
def load(seed: int = SEED, clients: int = CLIENTS) -> dict[str, object]:
    """Train/test split, standardized, and the IID client shards (cached per process)."""
    with gzip.open(DIGITS, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float32)
    x, y = np.ascontiguousarray(table[:, :-1]), table[:, -1].astype(np.int64)
    rng = np.random.default_rng([seed, 0])
    test_parts = []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        test_parts.append(members[: round(0.2 * members.size)])
    test = np.sort(np.concatenate(test_parts))
    train = np.setdiff1d(np.arange(y.size), test, assume_unique=True)
    mean = x[train].mean(axis=0, dtype=np.float64)
    std = x[train].std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    x_train = ((x[train] - mean) / std).astype(np.float32)
    x_test = ((x[test] - mean) / std).astype(np.float32)
    y_train, y_test = y[train], y[test]
    order = np.random.default_rng(seed).permutation(y_train.size)
    shards = [np.sort(s) for s in np.array_split(order, clients)]
    parts = [(np.ascontiguousarray(x_train[s]), y_train[s]) for s in shards]
    return {"parts": parts, "x_test": x_test, "y_test": y_test, "dim": x.shape[1]}


def init_params(dim: int, seed: int = SEED) -> np.ndarray:
    """Flat float32 ``[W (dim × 10), b (10)]``: W ~ N(0, 0.01²) seeded, b = 0."""
    params = np.zeros(dim * NUM_CLASSES + NUM_CLASSES, dtype=np.float32)
    weights = params[: dim * NUM_CLASSES].reshape(dim, NUM_CLASSES)
    weights[...] = np.random.default_rng(seed).normal(scale=0.01, size=weights.shape)
    return params


def client_seed(seed: int, rnd: int, client: int) -> int:
    """The seed of one client's sample order in one round (velocity's)."""
    return int(np.random.SeedSequence([seed, rnd, client, _TRAINING_STREAM]).generate_state(1)[0])


def train_local(
    params: np.ndarray, x: np.ndarray, y: np.ndarray, seed: int, lr: float = LR
) -> np.ndarray:
    """One epoch of minibatch SGD from ``params``; returns the new flat parameters."""
    dim = x.shape[1]
    w = np.array(params, dtype=np.float32)
    weights, bias = w[: dim * NUM_CLASSES].reshape(dim, NUM_CLASSES), w[dim * NUM_CLASSES :]
    grad = np.empty_like(w)
    g_w, g_b = grad[: dim * NUM_CLASSES].reshape(dim, NUM_CLASSES), grad[dim * NUM_CLASSES :]
    rng = np.random.default_rng(seed)
    for _ in range(EPOCHS):
        order = rng.permutation(y.size)
        xs, ys = x[order], y[order]
        for lo in range(0, y.size, BATCH):
            xb, yb = xs[lo : lo + BATCH], ys[lo : lo + BATCH]
            logits = xb @ weights
            logits += bias
            logits -= logits.max(axis=1, keepdims=True)
            np.exp(logits, out=logits)
            logits /= logits.sum(axis=1, keepdims=True)
            logits[np.arange(yb.size), yb] -= 1.0
            logits /= yb.size
            np.matmul(xb.T, logits, out=g_w)
            logits.sum(axis=0, out=g_b)
            grad *= lr
            w -= grad
    return w


def evaluate(params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``params`` on ``(x, y)``."""
    dim = x.shape[1]
    logits = x @ params[: dim * NUM_CLASSES].reshape(dim, NUM_CLASSES) + params[dim * NUM_CLASSES :]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sums = np.log(np.exp(shifted).sum(axis=1))
    loss = float(np.mean(log_sums - shifted[np.arange(y.size), y], dtype=np.float64))
    return loss, float(np.mean(logits.argmax(axis=1) == y))


def aggregate(strategy: str, models: list[np.ndarray], counts: list[int]) -> np.ndarray:
    """FedAvg (sample-weighted mean) or FedMedian (coordinate-wise median) of the models."""
    stacked = np.stack(models)
    if strategy == "FedAvg":
        weights = np.asarray(counts, dtype=np.float64)
        return (weights @ stacked / weights.sum()).astype(np.float32)
    if strategy == "FedMedian":
        return np.median(stacked, axis=0).astype(np.float32)
    raise ValueError(f"strategy={strategy!r} is invalid: FedAvg or FedMedian")


def run(strategy: str, rounds: int, seed: int = SEED) -> dict[str, float]:
    """The whole experiment; returns the final test loss and accuracy."""
    data = load(seed)
    params = init_params(int(data["dim"]), seed)  # type: ignore[call-overload]
    loss = accuracy = float("nan")
    for rnd in range(1, rounds + 1):
        models, counts = [], []
        for cid, (x, y) in enumerate(data["parts"]):  # type: ignore[attr-defined]
            models.append(train_local(params, x, y, client_seed(seed, rnd, cid)))
            counts.append(y.size)
        params = aggregate(strategy, models, counts)
        loss, accuracy = evaluate(params, data["x_test"], data["y_test"])  # type: ignore[arg-type]
    return {"final_loss": loss, "final_accuracy": accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="FedAvg", choices=("FedAvg", "FedMedian"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    result = run(args.strategy, args.rounds)
    print(json.dumps({**result, "inner_s": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
