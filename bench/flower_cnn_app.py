"""The Fashion-MNIST CNN experiment as a Flower 1.42 app, run on Flower's simulation engine.

The same experiment as ``velocity run --dataset fashion_mnist --model cnn --clients 100
--samples-per-client 600 --partition iid --fraction-fit 0.2 --rounds 20`` (FedAvg or
FedMedian; 1 local epoch, batch 32, lr 0.1, seed 42), written the way Flower's
PyTorch quickstart writes it:

- **data**: the Fashion-MNIST IDX files read with velocity's reader
  (:func:`velocity.sim.idx.read_idx`, uint8), split among 100 clients with velocity's
  own :func:`velocity.sim.data.partition` (``"iid"``, ``samples_per_client=600``, the
  run's seed), so client ``partition-id`` c holds exactly velocity's client c's 600
  images. Each Ray actor keeps the uint8 arrays (47 MB) and scales one client's
  images to float32 in [0, 1] per call, as velocity scales them;
- **model**: the ``nn.Module`` of velocity's ``cnn`` (its builder,
  :func:`velocity.sim.torch_models.build_cnn`), initialised under
  ``torch.manual_seed(seed)`` exactly as velocity's ``init_params(seed)`` (checked:
  the flat vectors are equal), so both sides start from the same weights;
- **ClientApp** ``train``: load the global ``state_dict``, one epoch of
  ``torch.optim.SGD(lr=0.1)`` over minibatches of 32 of a shuffled order seeded by
  ``(seed, round, partition-id)`` with mean cross-entropy (velocity's local SGD, with
  its own sample order), reply with the new weights and ``num-examples``; one torch
  thread per client;
- **ServerApp**: Flower's own ``flwr.serverapp.strategy.FedAvg`` / ``FedMedian`` with
  ``fraction_train=0.2`` (20 of the 100 SuperNodes per round, sampled by Flower),
  federated evaluation off and a centralized ``evaluate_fn`` on the 10,000 test
  images every round (as velocity evaluates);
- **engine**: ``flwr.simulation.run_simulation`` with 100 virtual SuperNodes on the Ray
  backend, ``client_resources = {"num_cpus": 1}`` on ``num_cpus = 2`` (``--cpus``), so
  two clients train at once on the two cores, one torch thread each.

Needs ``flwr[simulation]==1.42.0`` and torch in ``.bench-venv`` (``make bench-e2e-cnn``;
see ``bench/_flower_env.py``)::

    .bench-venv/bin/python bench/flower_cnn_app.py --strategy FedAvg --rounds 20 \
        --result result.json

writes the final test loss and accuracy (and every round's), and the mean seconds per
round (from the initial model's evaluation to the last), to ``--result`` as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _flower_env import use_repo_velocity  # sibling module, importable after the insert

use_repo_velocity()

#: Where Debian's ``dataset-fashion-mnist`` installs the IDX files (velocity looks there).
IDX_DIR = Path("/usr/share/datasets/fashion-mnist")
_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_EVAL_BATCH = 2048


@dataclass(frozen=True)
class Experiment:
    """The settings both sides share (velocity's CLI defaults where not given)."""

    strategy: str = "FedAvg"
    rounds: int = 20
    clients: int = 100
    samples_per_client: int = 600
    fraction_fit: float = 0.2
    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.1
    seed: int = 42
    idx_dir: str = str(IDX_DIR)

    @property
    def per_round(self) -> int:
        """Clients sampled per round (velocity's rule: at least 1)."""
        return max(1, round(self.fraction_fit * self.clients))


def _idx_path(directory: Path, base: str) -> Path:
    for name in (base, f"{base}.gz"):
        if (directory / name).exists():
            return directory / name
    raise SystemExit(
        f"{directory / base}(.gz) not found: install Debian's dataset-fashion-mnist "
        "(make fashion-mnist) or pass --idx-dir"
    )


@functools.lru_cache(maxsize=1)
def load_arrays(idx_dir: str) -> dict[str, np.ndarray]:
    """The four uint8 IDX arrays, read once per process with velocity's reader."""
    from velocity.sim.idx import read_idx

    directory = Path(idx_dir)
    return {key: read_idx(_idx_path(directory, base)) for key, base in _FILES.items()}


@functools.lru_cache(maxsize=1)
def client_rows(exp: Experiment) -> tuple[np.ndarray, ...]:
    """Each client's train-set rows: velocity's own partition of the same labels."""
    from velocity.sim.data import partition

    labels = load_arrays(exp.idx_dir)["y_train"].astype(np.int64)
    parts = partition(
        labels,
        exp.clients,
        scheme="iid",
        samples_per_client=exp.samples_per_client,
        seed=exp.seed,
    )
    return tuple(parts)


def as_tensors(torch: Any, images: np.ndarray, labels: np.ndarray) -> tuple[Any, Any]:
    """uint8 ``(n, 28, 28)`` images as float32 ``(n, 1, 28, 28)`` in [0, 1], int64 labels."""
    x = images.reshape(len(images), -1).astype(np.float32)
    x /= 255.0  # the same float32 division velocity applies
    return torch.from_numpy(x).reshape(-1, 1, 28, 28), torch.from_numpy(labels.astype(np.int64))


def velocity_cnn(torch: Any, seed: int) -> tuple[Any, np.ndarray]:
    """velocity's ``cnn`` module with its seeded initial weights, and velocity's own vector.

    The module is :meth:`TorchModel.build_module`, the one :meth:`TorchModel.init_params`
    flattens; the second value is ``init_params(seed)`` itself, so callers can check that
    they agree.
    """
    from velocity.sim.torch_models import build_cnn

    model = build_cnn(
        torch,
        input_dim=784,
        num_classes=10,
        feature_shape=(28, 28, 1),
        device=torch.device("cpu"),
    )
    return model.build_module(seed), model.init_params(seed)


@functools.lru_cache(maxsize=1)
def client_net(seed: int) -> Any:
    """One module per actor process, reused by every client call it serves."""
    import torch

    return velocity_cnn(torch, seed)[0]


def train_one_epoch(torch: Any, net: Any, x: Any, y: Any, exp: Experiment, seed: Any) -> None:
    """Minibatch SGD over one shuffled epoch (mean cross-entropy per minibatch)."""
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    optimizer = torch.optim.SGD(net.parameters(), lr=exp.lr)
    net.train()
    for _ in range(exp.epochs):
        for batch in order.split(exp.batch_size):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[batch]), y[batch])
            loss.backward()
            optimizer.step()


def evaluate(torch: Any, net: Any, x: Any, y: Any) -> tuple[float, float]:
    """Mean test cross-entropy and accuracy."""
    net.eval()
    with torch.no_grad():
        logits = torch.cat([net(part) for part in x.split(_EVAL_BATCH)])
    loss = torch.nn.functional.cross_entropy(logits.double(), y)
    accuracy = (logits.argmax(1) == y).double().mean()
    return float(loss), float(accuracy)


def build_apps(exp: Experiment, result_path: Path) -> tuple[Any, Any]:
    """The ``(ServerApp, ClientApp)`` pair of the experiment."""
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg, FedMedian

    client_app = ClientApp()

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        import torch

        torch.set_num_threads(1)
        cid = int(context.node_config["partition-id"])
        rnd = int(msg.content["config"]["server-round"])
        arrays = load_arrays(exp.idx_dir)
        rows = client_rows(exp)[cid]
        x, y = as_tensors(torch, arrays["x_train"][rows], arrays["y_train"][rows])
        net = client_net(exp.seed)
        net.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        train_one_epoch(torch, net, x, y, exp, [exp.seed, rnd, cid])
        content = RecordDict(
            {
                "arrays": ArrayRecord(net.state_dict()),
                "metrics": MetricRecord({"num-examples": len(y)}),
            }
        )
        return Message(content=content, reply_to=msg)

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        import torch

        arrays = load_arrays(exp.idx_dir)
        x_test, y_test = as_tensors(torch, arrays["x_test"], arrays["y_test"])
        net, expected = velocity_cnn(torch, exp.seed)
        flat = torch.nn.utils.parameters_to_vector(net.parameters()).detach().numpy()
        if not np.array_equal(flat, expected):
            raise SystemExit("the Flower side's initial weights differ from velocity's")
        history: list[dict[str, float]] = []

        def evaluate_fn(server_round: int, record: ArrayRecord) -> MetricRecord:
            net.load_state_dict(record.to_torch_state_dict())
            loss, accuracy = evaluate(torch, net, x_test, y_test)
            history.append(
                {
                    "round": server_round,
                    "loss": loss,
                    "accuracy": accuracy,
                    "t": time.perf_counter(),  # round r's train + aggregate + evaluate end here
                }
            )
            return MetricRecord({"loss": loss, "accuracy": accuracy})

        cls = {"FedAvg": FedAvg, "FedMedian": FedMedian}[exp.strategy]
        strategy = cls(
            fraction_train=exp.fraction_fit,
            fraction_evaluate=0.0,
            min_train_nodes=exp.per_round,
            min_available_nodes=exp.clients,
        )
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(net.state_dict()),
            num_rounds=exp.rounds,
            evaluate_fn=evaluate_fn,
        )
        last = history[-1]
        spans = history[-1]["t"] - history[0]["t"]  # history[0] is the initial model's
        result = {
            "round_s": spans / max(1, len(history) - 1),
            "final_loss": last["loss"],
            "final_accuracy": last["accuracy"],
            "rounds": int(last["round"]),
            "history": history,
            "experiment": asdict(exp),
        }
        result_path.write_text(json.dumps(result))

    return server_app, client_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="FedAvg", choices=("FedAvg", "FedMedian"))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--samples-per-client", type=int, default=600)
    parser.add_argument("--fraction-fit", type=float, default=0.2)
    parser.add_argument("--cpus", type=int, default=2, help="Ray's num_cpus (2: two clients)")
    parser.add_argument("--idx-dir", default=str(IDX_DIR))
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args()
    from flwr.simulation import run_simulation

    exp = Experiment(
        strategy=args.strategy,
        rounds=args.rounds,
        clients=args.clients,
        samples_per_client=args.samples_per_client,
        fraction_fit=args.fraction_fit,
        idx_dir=args.idx_dir,
    )
    started = time.perf_counter()
    # Built from the module imported by name, not __main__: Ray's actors then import
    # these functions (and the velocity checkout on sys.path) instead of failing.
    import flower_cnn_app

    server_app, client_app = flower_cnn_app.build_apps(exp, args.result)
    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=exp.clients,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": args.cpus},
        },
    )
    if not args.result.exists():
        sys.exit(f"Flower run ended without a result ({time.perf_counter() - started:.1f} s)")
    print(args.result.read_text())


if __name__ == "__main__":
    main()
