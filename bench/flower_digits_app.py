"""The end-to-end experiment as a Flower 1.42 app, run on Flower's simulation engine.

The same experiment as ``velocity run --strategy FedAvg --rounds 5 --clients 10``
(see ``bench/fl_numpy.py``, whose data loading, model and local SGD it reuses, so
both train the same models): a ``ClientApp`` whose ``train`` handler runs one local
epoch on its IID shard (``context.node_config["partition-id"]``) and replies with
the new weights and ``num-examples``; a ``ServerApp`` that runs Flower's own
``flwr.serverapp.strategy.FedAvg`` / ``FedMedian`` for the given rounds, with
federated evaluation off (``fraction_evaluate=0``) and a centralized ``evaluate_fn``
on the test split, as velocity evaluates. ``flwr.simulation.run_simulation`` runs
it with 10 virtual SuperNodes on the Ray backend with Flower's default
``backend_config``.

Needs ``flwr[simulation]==1.42.0`` (``.bench-venv``; see ``bench/_flower_env.py``)::

    .bench-venv/bin/python bench/flower_digits_app.py --strategy FedAvg --rounds 5 \
        --result result.json

writes the final test loss and accuracy to ``--result`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fl_numpy  # sibling module, importable after the path insert


def build_apps(strategy_name: str, rounds: int, result_path: Path) -> tuple[object, object]:
    """The ``(ServerApp, ClientApp)`` pair of the experiment."""
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg, FedMedian

    client_app = ClientApp()

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        data = fl_numpy.load()
        cid = int(context.node_config["partition-id"])
        x, y = data["parts"][cid]  # type: ignore[index]
        rnd = int(msg.content["config"]["server-round"])
        params = msg.content["arrays"].to_numpy_ndarrays()[0]
        local = fl_numpy.train_local(params, x, y, fl_numpy.client_seed(fl_numpy.SEED, rnd, cid))
        content = RecordDict(
            {
                "arrays": ArrayRecord([local]),
                "metrics": MetricRecord({"num-examples": int(y.size)}),
            }
        )
        return Message(content=content, reply_to=msg)

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        data = fl_numpy.load()
        history: list[tuple[int, float, float]] = []

        def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            params = arrays.to_numpy_ndarrays()[0]
            loss, accuracy = fl_numpy.evaluate(params, data["x_test"], data["y_test"])  # type: ignore[arg-type]
            history.append((server_round, loss, accuracy))
            return MetricRecord({"loss": loss, "accuracy": accuracy})

        cls = {"FedAvg": FedAvg, "FedMedian": FedMedian}[strategy_name]
        strategy = cls(
            fraction_train=1.0,
            fraction_evaluate=0.0,
            min_train_nodes=fl_numpy.CLIENTS,
            min_available_nodes=fl_numpy.CLIENTS,
        )
        initial = fl_numpy.init_params(int(data["dim"]))  # type: ignore[call-overload]
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord([initial]),
            num_rounds=rounds,
            evaluate_fn=evaluate,
        )
        _, loss, accuracy = history[-1]
        result_path.write_text(
            json.dumps({"final_loss": loss, "final_accuracy": accuracy, "rounds": history[-1][0]})
        )

    return server_app, client_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="FedAvg", choices=("FedAvg", "FedMedian"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--result", type=Path, required=True)
    args = parser.parse_args()
    from flwr.simulation import run_simulation

    started = time.perf_counter()
    server_app, client_app = build_apps(args.strategy, args.rounds, args.result)
    run_simulation(
        server_app=server_app,  # type: ignore[arg-type]
        client_app=client_app,  # type: ignore[arg-type]
        num_supernodes=fl_numpy.CLIENTS,
    )
    if not args.result.exists():
        sys.exit(f"Flower run ended without a result ({time.perf_counter() - started:.1f} s)")
    np.set_printoptions(precision=4)
    print(args.result.read_text())


if __name__ == "__main__":
    main()
