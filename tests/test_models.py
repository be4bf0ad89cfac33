"""Models: flat parameters, exact gradients, deterministic local training, registry."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from velocity.sim.data import load_dataset
from velocity.sim.models import Model, ModelError, get_model, list_models

NUMPY_MODELS = [("logreg", {}), ("mlp", {"hidden": 5})]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _tiny(model_id: str, params: dict) -> tuple[Model, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    model = get_model(model_id, input_dim=4, num_classes=3, params=params)
    x = rng.normal(size=(6, 4))
    y = rng.integers(0, 3, 6)
    w = rng.normal(scale=0.5, size=model.num_params)
    return model, w, x, y


def _numeric_grad(f, w: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    grad = np.empty_like(w)
    for i in range(w.size):
        step = np.zeros_like(w)
        step[i] = eps
        grad[i] = (f(w + step) - f(w - step)) / (2 * eps)
    return grad


# --- registry -------------------------------------------------------------------------


def test_list_models():
    listing = list_models()
    assert {"logreg", "mlp", "cnn", "module:callable"} <= set(listing)
    assert all(isinstance(v, str) and v for v in listing.values())


def test_unknown_model_suggests_close_match():
    with pytest.raises(ModelError) as err:
        get_model("mlpp", input_dim=4, num_classes=3)
    assert "did you mean 'mlp'" in str(err.value)
    assert "logreg" in str(err.value)
    with pytest.raises(ModelError, match="did you mean 'cnn'"):  # its former id
        get_model("demo/mnist-cnn", input_dim=64, num_classes=10)


def test_bad_model_params_are_refused():
    with pytest.raises(ModelError, match="hidden"):
        get_model("mlp", input_dim=4, num_classes=3, params={"hidden": 0})
    with pytest.raises(ModelError, match="allowed: hidden"):
        get_model("mlp", input_dim=4, num_classes=3, params={"width": 8})
    with pytest.raises(ModelError, match="num_classes"):
        get_model("logreg", input_dim=4, num_classes=1)


def test_cnn_without_torch_explains_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ModelError) as err:
        get_model("cnn", input_dim=64, num_classes=10, feature_shape=(8, 8))
    message = str(err.value)
    assert "pip install 'velocity-fl[torch]'" in message
    assert "logreg" in message and "mlp" in message


# --- flat parameters ------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
def test_unflatten_returns_views(model_id, params):
    model = get_model(model_id, input_dim=4, num_classes=3, params=params)
    w = model.init_params(0)
    views = model.unflatten(w)
    assert [(k, v.shape) for k, v in views.items()] == model.shapes
    assert sum(v.size for v in views.values()) == model.num_params == w.size
    for v in views.values():
        assert np.shares_memory(v, w)
    first = next(iter(views.values()))
    first[...] = 7.0
    assert w[0] == 7.0
    with pytest.raises(ValueError, match="shape"):
        model.unflatten(w[:-1])


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
def test_init_params_is_seeded_float32(model_id, params):
    model = get_model(model_id, input_dim=4, num_classes=3, params=params)
    a, b, c = model.init_params(1), model.init_params(1), model.init_params(2)
    assert a.dtype == np.float32 and a.shape == (model.num_params,)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# --- loss and gradient ----------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
def test_gradient_matches_central_differences(model_id, params):
    model, w, x, y = _tiny(model_id, params)
    loss, grad = model.loss_and_grad(w, x, y)
    assert grad.dtype == np.float64
    numeric = _numeric_grad(lambda v: model.loss_and_grad(v, x, y)[0], w)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    assert loss > 0


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
def test_proximal_gradient_matches_central_differences(model_id, params):
    model, w, x, y = _tiny(model_id, params)
    center = w + np.random.default_rng(1).normal(size=w.size)
    mu = 0.3
    loss, grad = model.loss_and_grad(w, x, y, prox_mu=mu, prox_center=center)
    plain, _ = model.loss_and_grad(w, x, y)
    assert loss == pytest.approx(plain + 0.5 * mu * np.sum((w - center) ** 2))
    numeric = _numeric_grad(lambda v: model.loss_and_grad(v, x, y, mu, center)[0], w)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_prox_center_is_required_with_prox_mu():
    model, w, x, y = _tiny("logreg", {})
    with pytest.raises(ValueError, match="prox_center"):
        model.loss_and_grad(w, x, y, prox_mu=0.1)


def test_loss_at_zero_is_log_num_classes():
    model = get_model("logreg", input_dim=5, num_classes=4)
    x = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    loss, _ = model.loss_and_grad(np.zeros(model.num_params, np.float32), x, np.arange(8) % 4)
    assert loss == pytest.approx(np.log(4), rel=1e-6)


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
def test_softmax_is_stable_for_huge_logits(model_id, params):
    model, w, x, y = _tiny(model_id, params)
    w32, x32 = w.astype(np.float32), (x * 1e4).astype(np.float32)
    loss, grad = model.loss_and_grad(w32, x32, y)
    test_loss, accuracy = model.evaluate(w32, x32, y)
    assert np.isfinite(loss) and np.isfinite(grad).all() and np.isfinite(test_loss)
    assert 0.0 <= accuracy <= 1.0


def test_input_shape_is_checked():
    model, w, x, y = _tiny("logreg", {})
    with pytest.raises(ValueError, match=r"x \(n, 4\)"):
        model.loss_and_grad(w, x[:, :3], y)


# --- local training -------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "params"), NUMPY_MODELS)
def test_train_local_is_deterministic_and_pure(model_id, params, digits):
    model = get_model(model_id, input_dim=64, num_classes=10, params=params)
    w0 = model.init_params(0)
    before = w0.copy()
    x, y = digits.x_train[:150], digits.y_train[:150]
    kwargs = {"epochs": 2, "batch_size": 16, "lr": 0.05}
    a = model.train_local(w0, x, y, seed=4, **kwargs)
    b = model.train_local(w0, x, y, seed=4, **kwargs)
    c = model.train_local(w0, x, y, seed=5, **kwargs)
    assert a.dtype == np.float32 and a.shape == w0.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(w0, before)


@pytest.mark.parametrize(("model_id", "params"), [("logreg", {}), ("mlp", {})])
def test_training_on_digits_reaches_90_percent(model_id, params, digits):
    model = get_model(model_id, input_dim=64, num_classes=10, params=params)
    w0 = model.init_params(0)
    w = model.train_local(
        w0, digits.x_train, digits.y_train, epochs=5, batch_size=32, lr=0.1, seed=0
    )
    loss0, _ = model.evaluate(w0, digits.x_test, digits.y_test)
    loss, accuracy = model.evaluate(w, digits.x_test, digits.y_test)
    assert accuracy > 0.9
    assert loss < loss0


def test_prox_keeps_params_closer_to_the_start(digits):
    model = get_model("logreg", input_dim=64, num_classes=10)
    w0 = model.init_params(0)
    x, y = digits.x_train[:200], digits.y_train[:200]
    kwargs = {"epochs": 3, "batch_size": 20, "lr": 0.1, "seed": 0}
    free = model.train_local(w0, x, y, **kwargs)
    pulled = model.train_local(w0, x, y, prox_mu=1.0, **kwargs)
    assert np.linalg.norm(pulled - w0) < 0.8 * np.linalg.norm(free - w0)


@pytest.mark.parametrize(
    ("field", "value"), [("epochs", 0), ("batch_size", 0), ("lr", 0.0), ("prox_mu", -1.0)]
)
def test_training_arguments_are_validated(field, value, digits):
    model = get_model("logreg", input_dim=64, num_classes=10)
    kwargs = {"epochs": 1, "batch_size": 8, "lr": 0.1, "seed": 0, field: value}
    with pytest.raises(ValueError, match=f"{field}="):
        model.train_local(model.init_params(0), digits.x_train[:10], digits.y_train[:10], **kwargs)


# --- torch CNN (only where the torch extra is installed) ------------------------------


def test_cnn_trains_deterministically_with_torch(digits):
    pytest.importorskip("torch", reason="the optional `torch` extra is not installed")
    model = get_model("cnn", input_dim=64, num_classes=10, feature_shape=(8, 8))
    w0 = model.init_params(0)
    assert w0.dtype == np.float32 and w0.shape == (model.num_params,)
    np.testing.assert_array_equal(w0, model.init_params(0))
    x, y = digits.x_train[:64], digits.y_train[:64]
    a = model.train_local(w0, x, y, epochs=1, batch_size=16, lr=0.05, seed=1)
    b = model.train_local(w0, x, y, epochs=1, batch_size=16, lr=0.05, seed=1)
    np.testing.assert_array_equal(a, b)
    loss, grad = model.loss_and_grad(w0, x, y)
    assert np.isfinite(loss) and grad.shape == w0.shape
