"""local_steps and client momentum: the numpy models against a plain per-step reference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from velocity.sim.models import Model, get_model
from velocity.sim.server import VelocityServer

NUMPY_MODELS = [("logreg", {}), ("mlp", {"hidden": 6})]


def _clients(sizes: list[int], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, 5)).astype(np.float32), rng.integers(0, 3, n)) for n in sizes]


def _reference(
    model: Model,
    w: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    lr: float,
    seed: int,
    steps: int,
    momentum: float = 0.0,
    buffer: np.ndarray | None = None,
    prox_mu: float = 0.0,
) -> np.ndarray:
    """One client, one step at a time, in float64: the rule the docstring states."""
    rng = np.random.default_rng(seed)
    center = w.astype(np.float64)
    w = center.copy()
    m = np.zeros_like(w) if buffer is None else buffer.astype(np.float64)
    batches: list[np.ndarray] = []
    while len(batches) < steps:
        perm = rng.permutation(y.size)
        batches += [perm[i : i + batch_size] for i in range(0, y.size, batch_size)]
    for batch in batches[:steps]:
        _, g = model.loss_and_grad(w, x[batch].astype(np.float64), y[batch], prox_mu, center)
        m = momentum * m + (1 - momentum) * g
        w -= lr * m
    if buffer is not None:
        buffer[...] = m
    return w


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
@pytest.mark.parametrize("steps", [1, 3, 7, 20])
def test_local_steps_follow_the_per_step_reference(model_id, params, steps):
    model = get_model(model_id, input_dim=5, num_classes=3, params=params)
    w0 = model.init_params(1)
    clients = _clients([13, 4, 9])  # ragged: epochs end at different steps
    seeds = [11, 12, 13]
    got = model.train_clients(
        w0, clients, epochs=1, batch_size=4, lr=0.3, seeds=seeds, local_steps=steps, prox_mu=0.1
    )
    for row, (x, y), seed in zip(got, clients, seeds, strict=True):
        want = _reference(
            model, w0, x, y, batch_size=4, lr=0.3, seed=seed, steps=steps, prox_mu=0.1
        )
        np.testing.assert_allclose(row, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
def test_whole_epochs_of_steps_equal_local_epochs(model_id, params):
    model = get_model(model_id, input_dim=5, num_classes=3, params=params)
    w0 = model.init_params(2)
    (x, y) = _clients([10])[0]  # ceil(10 / 4) = 3 steps per epoch
    by_epochs = model.train_local(w0, x, y, epochs=2, batch_size=4, lr=0.2, seed=5)
    by_steps = model.train_local(w0, x, y, epochs=1, batch_size=4, lr=0.2, seed=5, local_steps=6)
    np.testing.assert_array_equal(by_epochs, by_steps)


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
def test_momentum_follows_the_reference_and_its_buffer_persists(model_id, params):
    model = get_model(model_id, input_dim=5, num_classes=3, params=params)
    w0 = model.init_params(3)
    clients = _clients([8, 5])
    momenta = np.zeros((2, model.num_params), dtype=np.float32)
    buffers = [np.zeros(model.num_params) for _ in clients]
    for rnd in range(3):  # the buffers carry over from round to round
        seeds = [100 * rnd + 1, 100 * rnd + 2]
        got = model.train_clients(
            w0, clients, epochs=1, batch_size=3, lr=0.1, seeds=seeds,
            local_steps=2, momentum=0.9, momenta=momenta,
        )  # fmt: skip
        for i, ((x, y), seed) in enumerate(zip(clients, seeds, strict=True)):
            want = _reference(
                model, w0, x, y, batch_size=3, lr=0.1, seed=seed, steps=2,
                momentum=0.9, buffer=buffers[i],
            )  # fmt: skip
            np.testing.assert_allclose(got[i], want, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(momenta[i], buffers[i], rtol=1e-4, atol=1e-6)
    assert np.abs(momenta).max() > 0


def test_zero_momentum_is_plain_sgd_bit_for_bit():
    model = get_model("mlp", input_dim=5, num_classes=3, params={"hidden": 4})
    w0 = model.init_params(0)
    clients = _clients([9, 6])
    kwargs = {"epochs": 2, "batch_size": 4, "lr": 0.1, "seeds": [1, 2]}
    plain = model.train_clients(w0, clients, **kwargs)
    momenta = np.zeros((2, model.num_params), dtype=np.float32)
    zero = model.train_clients(w0, clients, **kwargs, momentum=0.0, momenta=momenta)
    np.testing.assert_array_equal(plain, zero)
    assert not momenta.any()


def test_one_step_with_momentum_sends_the_scaled_gradient():
    """local_steps=1: the update is -lr·m, m = β m + (1-β) g, so aggregating updates
    aggregates the clients' momenta (Karimireddy et al. 2021)."""
    model = get_model("logreg", input_dim=5, num_classes=3)
    w0 = model.init_params(0)
    (x, y) = _clients([4])[0]
    buffer = np.full(model.num_params, 0.5, dtype=np.float32)
    before = buffer.copy()
    new = model.train_local(
        w0, x, y, epochs=1, batch_size=4, lr=0.1, seed=0, local_steps=1,
        momentum=0.5, momentum_buffer=buffer,
    )  # fmt: skip
    _, g = model.loss_and_grad(w0, x, y)
    np.testing.assert_allclose(buffer, 0.5 * before + 0.5 * g, rtol=1e-6)
    np.testing.assert_allclose(new - w0, -0.1 * buffer, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"local_steps": 0}, "local_steps=0 is invalid: must be >= 1 or None"),
        ({"momentum": 1.0}, "momentum=1.0 is invalid: must be in [0, 1)"),
        ({"momentum": 0.5}, "momentum=0.5 needs momenta: a writable float32 (1, 18)"),
    ],
)
def test_bad_training_arguments_are_one_line(kwargs, message):
    model = get_model("logreg", input_dim=5, num_classes=3)
    (x, y) = _clients([4])[0]
    with pytest.raises(ValueError, match=None) as info:
        model.train_clients(
            model.init_params(0), [(x, y)], epochs=1, batch_size=2, lr=0.1, seeds=[0], **kwargs
        )
    assert str(info.value).startswith(message)


def test_server_keeps_each_clients_momentum_across_rounds():
    common = {"rounds": 3, "clients": 6, "fraction_fit": 0.5, "local_steps": 1, "seed": 4}
    plain = VelocityServer("logreg", "digits", "FedAvg", **common).run()
    heavy = VelocityServer("logreg", "digits", "FedAvg", momentum=0.9, **common).run()
    again = VelocityServer("logreg", "digits", "FedAvg", momentum=0.9, **common).run()
    assert heavy.error is None and plain.error is None
    assert [r.global_loss for r in heavy.rounds] == [r.global_loss for r in again.rounds]
    # Round 1 starts every buffer at zero, so m = (1 - β) g: a tenth of plain SGD's step.
    assert heavy.rounds[0].global_loss != plain.rounds[0].global_loss
    assert heavy.params is not None and plain.params is not None
    assert not np.array_equal(heavy.params, plain.params)


def test_cli_run_records_local_steps_and_momentum(tmp_path: Path):
    out = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable, "-m", "velocity", "run", "--strategy", "FedAvg",
            "--rounds", "2", "--clients", "4", "--local-steps", "1", "--momentum", "0.9",
            "--out", str(out),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = json.loads(next(out.rglob("config.json")).read_text())
    assert config["local_steps"] == 1 and config["momentum"] == 0.9


def test_cli_refuses_momentum_of_one_before_writing(tmp_path: Path):
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "velocity", "run", "--strategy", "FedAvg", "--momentum", "1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "momentum" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()
