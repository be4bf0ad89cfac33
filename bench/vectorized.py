"""Vectorized (torch.func.vmap across clients) vs per-client loop: one round's training.

The workload of issue 15's Flower comparison: Fashion-MNIST (the Debian files when
installed, else uniform random images of its shape), 20 clients × 600 images, one
local epoch, batch 32, lr 0.05, seeded data orders, from one initial model. For
each torch model (``cnn``, ``mlp`` with ``backend = "torch"``) and each path
(``model_params.vectorize`` true / false) the same round is trained ``--reps``
times, interleaved; the table gives the median wall time, the ratio loop / vmap
(> 1: vmap faster), and the largest absolute difference between the two paths'
parameters (float rounding only). The numpy MLP of the same size is the reference
the light path offers. Threads: ``--threads`` (default 1, a sweep worker's).

Not a test: it prints a table. ``make bench-vectorized`` or
``.venv/bin/python bench/vectorized.py [--clients 20 --samples 600 --reps 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import numpy as np


def _data(clients: int, samples: int) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    from velocity.sim.data import DatasetError, load_dataset

    try:
        ds = load_dataset("fashion_mnist", seed=0)
        x, y, source = ds.features(ds.x_train), ds.y_train, "Fashion-MNIST"
    except DatasetError:
        rng = np.random.default_rng(0)
        n = clients * samples
        x = rng.random((n, 784), dtype=np.float32)
        y = rng.integers(0, 10, n)
        source = "random 28x28 images (Fashion-MNIST not installed)"
    rows = [slice(i * samples, (i + 1) * samples) for i in range(clients)]
    return [(x[r], y[r]) for r in rows], source


def _round(model: Any, w0: np.ndarray, clients: list[tuple[np.ndarray, np.ndarray]]) -> tuple:
    start = time.perf_counter()
    out = model.train_clients(
        w0, clients, epochs=1, batch_size=32, lr=0.05, seeds=list(range(len(clients)))
    )
    return time.perf_counter() - start, out


def main() -> None:
    """Print the vmap-vs-loop table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from velocity.sim.models import get_model

    clients, source = _data(args.clients, args.samples)
    print(
        f"{args.clients} clients × {args.samples} images of {source}, 1 epoch, batch 32, "
        f"{args.threads} thread(s), median of {args.reps}; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'model':<10} {'params':>8} {'vmap s':>8} {'loop s':>8} {'loop/vmap':>9} {'max |Δ|':>9}"
    )
    for model_id, params in (("cnn", {}), ("mlp", {"backend": "torch", "hidden": 64})):
        models = {
            path: get_model(
                model_id,
                input_dim=784,
                num_classes=10,
                feature_shape=(28, 28, 1),
                params={**params, "vectorize": path == "vmap"},
            )
            for path in ("vmap", "loop")
        }
        w0 = models["vmap"].init_params(0)
        times: dict[str, list[float]] = {"vmap": [], "loop": []}
        results: dict[str, np.ndarray] = {}
        for _ in range(args.reps):
            for path, model in models.items():
                seconds, results[path] = _round(model, w0, clients)
                times[path].append(seconds)
        vmap, loop = (statistics.median(times[p]) for p in ("vmap", "loop"))
        diff = float(np.abs(results["vmap"] - results["loop"]).max())
        n = models["vmap"].num_params
        print(f"{model_id:<10} {n:>9,} {vmap:>9.2f} {loop:>9.2f} {loop / vmap:>8.2f}× {diff:>9.1e}")
    numpy_mlp = get_model("mlp", input_dim=784, num_classes=10, params={"hidden": 64})
    seconds = statistics.median(
        _round(numpy_mlp, numpy_mlp.init_params(0), clients)[0] for _ in range(args.reps)
    )
    n = numpy_mlp.num_params
    print(f"{'mlp numpy':<10} {n:>9,} {seconds:>9.2f}  (stacked numpy, for reference)")


if __name__ == "__main__":
    main()
