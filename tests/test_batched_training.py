"""Batched local training: ``train_clients`` is every client's own plain SGD, all at once."""

from __future__ import annotations

import math

import numpy as np
import pytest

from velocity.sim import models
from velocity.sim.models import Model, get_model

NUMPY_MODELS = [("logreg", {}), ("mlp", {"hidden": 5})]
SIZES = (33, 1, 50, 7, 32)  # unsorted, with partial last batches for B = 32 and B = 5
SEEDS = (11, 12, 13, 14, 15)
FEATURES, CLASSES, LR = 6, 4, 0.5


def _setup(model_id: str, params: dict) -> tuple[Model, np.ndarray, list]:
    rng = np.random.default_rng(0)
    model = get_model(model_id, input_dim=FEATURES, num_classes=CLASSES, params=params)
    w0 = rng.normal(scale=0.3, size=model.num_params).astype(np.float32)
    clients = [
        (rng.normal(size=(n, FEATURES)).astype(np.float32), rng.integers(0, CLASSES, n))
        for n in SIZES
    ]
    return model, w0, clients


def _reference_grad(model: Model, w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gradient of the batch's mean cross-entropy, written out plainly (float64)."""
    p, at = {}, 0
    for name, shape in model.shapes:
        p[name] = w[at : at + math.prod(shape)].reshape(shape)
        at += math.prod(shape)

    def dlogits(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        d = e / e.sum(axis=1, keepdims=True)
        d[np.arange(y.size), y] -= 1.0
        return d / y.size

    if model.model_id == "logreg":
        d = dlogits(x @ p["W"] + p["b"])
        g = {"W": x.T @ d, "b": d.sum(axis=0)}
    else:
        h = np.maximum(x @ p["W1"] + p["b1"], 0.0)
        d = dlogits(h @ p["W2"] + p["b2"])
        dh = (d @ p["W2"].T) * (h > 0)
        g = {"W1": x.T @ dh, "b1": dh.sum(axis=0), "W2": h.T @ d, "b2": d.sum(axis=0)}
    return np.concatenate([g[name].ravel() for name, _ in model.shapes])


def _reference_sgd(
    model: Model,
    w0: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    prox_mu: float,
) -> np.ndarray:
    """One client's minibatch SGD, one batch at a time, as train_local documents it."""
    w = w0.astype(np.float64)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(y.size)
        for lo in range(0, y.size, batch_size):
            batch = order[lo : lo + batch_size]
            grad = _reference_grad(model, w, x[batch].astype(np.float64), y[batch])
            w = w - LR * (grad + prox_mu * (w - w0))
    return w


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
@pytest.mark.parametrize("batch_size", [32, 5])
@pytest.mark.parametrize("epochs", [1, 2])
@pytest.mark.parametrize("prox_mu", [0.0, 0.1])
def test_train_clients_is_each_clients_plain_sgd(model_id, params, batch_size, epochs, prox_mu):
    model, w0, clients = _setup(model_id, params)
    kwargs = {"epochs": epochs, "batch_size": batch_size, "prox_mu": prox_mu}
    got = model.train_clients(w0, clients, lr=LR, seeds=SEEDS, **kwargs)
    assert got.dtype == np.float32 and got.shape == (len(clients), model.num_params)
    for row, (x, y), seed in zip(got, clients, SEEDS, strict=True):
        want = _reference_sgd(model, w0, x, y, seed=seed, **kwargs)
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
def test_a_clients_result_does_not_depend_on_the_others(model_id, params):
    model, w0, clients = _setup(model_id, params)
    kwargs = {"epochs": 2, "batch_size": 5, "lr": LR, "prox_mu": 0.1}
    together = model.train_clients(w0, clients, seeds=SEEDS, **kwargs)
    for row, client, seed in zip(together, clients, SEEDS, strict=True):
        alone = model.train_clients(w0, [client], seeds=[seed], **kwargs)[0]
        np.testing.assert_allclose(row, alone, rtol=1e-6, atol=1e-7)
    reseeded = model.train_clients(w0, clients, seeds=(99, *SEEDS[1:]), **kwargs)
    np.testing.assert_array_equal(reseeded[1:], together[1:])
    assert not np.allclose(reseeded[0], together[0])


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
@pytest.mark.parametrize("per_stack", [1, 2])
def test_smaller_stacks_give_the_same_rows(model_id, params, per_stack, monkeypatch):
    model, w0, clients = _setup(model_id, params)
    kwargs = {"epochs": 2, "batch_size": 5, "lr": LR, "seeds": SEEDS, "prox_mu": 0.1}
    one_stack = model.train_clients(w0, clients, **kwargs)
    monkeypatch.setattr(models, "_STACK_BYTES", per_stack * 2 * 4 * model.num_params)
    np.testing.assert_allclose(
        model.train_clients(w0, clients, **kwargs), one_stack, rtol=1e-6, atol=1e-7
    )


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
def test_same_seeds_give_bit_identical_rows_and_params_stay_untouched(model_id, params):
    model, w0, clients = _setup(model_id, params)
    before = w0.copy()
    kwargs = {"epochs": 2, "batch_size": 5, "lr": LR, "seeds": SEEDS, "prox_mu": 0.1}
    a = model.train_clients(w0, clients, **kwargs)
    b = model.train_clients(w0, clients, **kwargs)
    assert a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(w0, before)


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
def test_train_local_is_train_clients_with_one_client(model_id, params):
    model, w0, clients = _setup(model_id, params)
    x, y = clients[2]
    kwargs = {"epochs": 2, "batch_size": 5, "lr": LR, "prox_mu": 0.1}
    local = model.train_local(w0, x, y, seed=3, **kwargs)
    np.testing.assert_array_equal(local, model.train_clients(w0, [(x, y)], seeds=[3], **kwargs)[0])


def test_each_stacked_client_trains_as_it_would_alone():
    model, w0, clients = _setup("mlp", {"hidden": 5})
    kwargs = {"epochs": 2, "batch_size": 5, "lr": LR, "prox_mu": 0.1}
    stacked = model.train_clients(w0, clients, seeds=SEEDS, **kwargs)
    assert stacked.dtype == np.float32 and stacked.shape == (len(clients), model.num_params)
    alone = [
        model.train_local(w0, x, y, seed=seed, **kwargs)
        for (x, y), seed in zip(clients, SEEDS, strict=True)
    ]
    np.testing.assert_allclose(stacked, np.stack(alone), atol=1e-7)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"seeds": SEEDS[:-1]}, "one seed per client"),
        ({"clients": [], "seeds": []}, "at least one client"),
        ({"lr": 0.0}, "lr=0.0"),
        ({"batch_size": 0}, "batch_size=0"),
    ],
)
def test_train_clients_checks_its_arguments(change, match):
    model, w0, clients = _setup("logreg", {})
    kwargs = {"clients": clients, "epochs": 1, "batch_size": 5, "lr": LR, "seeds": SEEDS}
    with pytest.raises(ValueError, match=match):
        model.train_clients(w0, **{**kwargs, **change})


def test_train_clients_checks_every_clients_data():
    model, w0, clients = _setup("logreg", {})
    x, y = clients[3]
    clients[3] = (x[:, :5], y)
    with pytest.raises(ValueError, match=r"x \(7, 5\) and y \(7,\) do not fit .* x \(n, 6\)"):
        model.train_clients(w0, clients, epochs=1, batch_size=5, lr=LR, seeds=SEEDS)
