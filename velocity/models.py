"""Model registry: flat float32 parameter vectors and local training.

A model's parameters are ONE flat float32 vector, so the server and the Rust core see
every client update as a row of an ``n x d`` matrix. Each model knows its ``shapes``
and :meth:`Model.unflatten` returns named views into the vector (no copies).

Local training is minibatch SGD on the mean softmax cross-entropy, optionally with the
FedProx proximal term

.. math::

    \\frac{\\mu}{2} \\lVert w - w_g \\rVert^2

where :math:`w` are the client's parameters, :math:`w_g` the global parameters the
round started from and :math:`\\mu` ``prox_mu`` (Li et al., 2020, "Federated
Optimization in Heterogeneous Networks", https://arxiv.org/abs/1812.06127).

The numpy models (``"logreg"``, ``"mlp"``) are vectorized: one matrix product per layer
and batch, no Python loop over samples. ``"demo/mnist-cnn"`` needs the optional
``torch`` extra and is imported lazily.
"""

from __future__ import annotations

import difflib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "Model",
    "ModelError",
    "get_model",
    "list_models",
]

Shapes = list[tuple[str, tuple[int, ...]]]


class ModelError(ValueError):
    """A model id or its parameters cannot be used."""


class Model(ABC):
    """A classifier whose parameters live in one flat vector.

    Parameters
    ----------
    model_id : str
        Registry id.
    input_dim : int
        Length of one flat feature vector.
    num_classes : int
        Number of classes.
    shapes : list of (str, tuple of int)
        Name and shape of each parameter tensor, in vector order.
    """

    def __init__(self, model_id: str, input_dim: int, num_classes: int, shapes: Shapes) -> None:
        self.model_id = model_id
        self.input_dim = input_dim
        self.num_classes = num_classes
        self.shapes = shapes
        self.num_params = sum(math.prod(shape) for _, shape in shapes)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_id={self.model_id!r}, input_dim={self.input_dim}, "
            f"num_classes={self.num_classes}, num_params={self.num_params})"
        )

    def unflatten(self, params: np.ndarray) -> dict[str, np.ndarray]:
        """Return named views of ``params`` with the model's shapes (no copies).

        Parameters
        ----------
        params : np.ndarray
            Flat parameter vector of length ``num_params``.

        Returns
        -------
        dict of str to np.ndarray
            Views sharing memory with ``params``; writing to them writes ``params``.
        """
        if params.shape != (self.num_params,):
            raise ValueError(
                f"params has shape {params.shape}, model {self.model_id!r} needs "
                f"({self.num_params},)"
            )
        views, offset = {}, 0
        for name, shape in self.shapes:
            size = math.prod(shape)
            views[name] = params[offset : offset + size].reshape(shape)
            offset += size
        return views

    @abstractmethod
    def init_params(self, seed: int) -> np.ndarray:
        """Return seeded initial parameters as a flat float32 vector."""

    @abstractmethod
    def loss_and_grad(
        self,
        params: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        prox_mu: float = 0.0,
        prox_center: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray]:
        """Mean cross-entropy (plus the proximal term) and its gradient.

        Parameters
        ----------
        params : np.ndarray
            Flat parameters; the gradient has the same dtype.
        x : np.ndarray
            Features, shape ``(n, input_dim)``.
        y : np.ndarray
            Integer labels, shape ``(n,)``.
        prox_mu : float (default: 0.0)
            FedProx coefficient :math:`\\mu \\ge 0`.
        prox_center : np.ndarray, optional
            :math:`w_g`, required when ``prox_mu > 0``.

        Returns
        -------
        tuple of (float, np.ndarray)
            The loss and the flat gradient.
        """

    @abstractmethod
    def evaluate(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """Return the mean cross-entropy and the accuracy of ``params`` on ``(x, y)``."""

    @abstractmethod
    def train_local(
        self,
        params: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        seed: int,
        prox_mu: float = 0.0,
    ) -> np.ndarray:
        """Run minibatch SGD from ``params`` and return the new parameters.

        Each epoch visits the samples in a fresh seeded order. With ``prox_mu > 0`` the
        proximal term pulls towards the ``params`` passed in. ``params`` is not modified.

        Parameters
        ----------
        params : np.ndarray
            Starting (global) parameters, flat.
        x : np.ndarray
            Features, shape ``(n, input_dim)``.
        y : np.ndarray
            Integer labels, shape ``(n,)``.
        epochs : int
            Passes over the data, >= 1.
        batch_size : int
            Samples per step, >= 1 (the last batch of an epoch may be smaller).
        lr : float
            Step size, > 0.
        seed : int
            Seeds the shuffles; same seed, same result.
        prox_mu : float (default: 0.0)
            FedProx coefficient, >= 0.

        Returns
        -------
        np.ndarray
            New flat float32 parameters.
        """

    def _check_data(
        self, x: np.ndarray, y: np.ndarray, dtype: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=dtype)
        y = np.asarray(y, dtype=np.int64)
        if x.ndim != 2 or x.shape[1] != self.input_dim or y.shape != (x.shape[0],):
            raise ValueError(
                f"x {x.shape} and y {y.shape} do not fit model {self.model_id!r}: need "
                f"x (n, {self.input_dim}) and y (n,)"
            )
        return x, y


def _check_training(epochs: int, batch_size: int, lr: float, prox_mu: float) -> None:
    for field, value, ok, allowed in (
        ("epochs", epochs, epochs >= 1, ">= 1"),
        ("batch_size", batch_size, batch_size >= 1, ">= 1"),
        ("lr", lr, lr > 0, "> 0"),
        ("prox_mu", prox_mu, prox_mu >= 0, ">= 0"),
    ):
        if not ok:
            raise ValueError(f"{field}={value!r} is invalid: must be {allowed}")


def _prox(
    params: np.ndarray, grad: np.ndarray, prox_mu: float, prox_center: np.ndarray | None
) -> float:
    """Add mu * (w - w_g) to ``grad`` in place; return (mu / 2) * ||w - w_g||^2."""
    if prox_mu == 0:
        return 0.0
    if prox_center is None:
        raise ValueError("prox_center is required when prox_mu > 0")
    diff = params - prox_center
    grad += prox_mu * diff
    return 0.5 * prox_mu * float(np.dot(diff, diff))


def _softmax_xent_grad(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of ``logits``; turns ``logits`` into d(loss)/d(logits) in place.

    Numerically stable: the row max is subtracted before exponentiating (log-sum-exp).
    """
    n = logits.shape[0]
    rows = np.arange(n)
    logits -= logits.max(axis=1, keepdims=True)
    picked = logits[rows, y]
    np.exp(logits, out=logits)
    sums = logits.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(sums[:, 0]) - picked, dtype=np.float64))
    logits /= sums
    logits[rows, y] -= 1.0
    logits /= n
    return loss


def _xent_and_accuracy(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sums = np.log(np.exp(shifted).sum(axis=1))
    loss = float(np.mean(log_sums - shifted[np.arange(y.size), y], dtype=np.float64))
    accuracy = float(np.mean(logits.argmax(axis=1) == y))
    return loss, accuracy


class _NumpyModel(Model):
    """Shared SGD, evaluation and proximal term for the numpy models."""

    @abstractmethod
    def _logits(self, p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        """Forward pass to ``(n, num_classes)`` logits."""

    @abstractmethod
    def _loss_grad(
        self, p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, g: dict[str, np.ndarray]
    ) -> float:
        """Mean cross-entropy; writes its gradient into the views ``g``."""

    def loss_and_grad(
        self,
        params: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        prox_mu: float = 0.0,
        prox_center: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray]:
        params = np.asarray(params)
        x, y = self._check_data(x, y, params.dtype)
        grad = np.empty_like(params)
        loss = self._loss_grad(self.unflatten(params), x, y, self.unflatten(grad))
        return loss + _prox(params, grad, prox_mu, prox_center), grad

    def evaluate(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        params = np.asarray(params, dtype=np.float32)
        x, y = self._check_data(x, y, np.float32)
        return _xent_and_accuracy(self._logits(self.unflatten(params), x), y)

    def train_local(
        self,
        params: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        seed: int,
        prox_mu: float = 0.0,
    ) -> np.ndarray:
        _check_training(epochs, batch_size, lr, prox_mu)
        x, y = self._check_data(x, y, np.float32)
        w = np.array(params, dtype=np.float32)
        center = w.copy() if prox_mu > 0 else None
        grad = np.empty_like(w)
        w_views, g_views = self.unflatten(w), self.unflatten(grad)
        xs, ys = np.empty_like(x), np.empty_like(y)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = rng.permutation(y.size)
            np.take(x, order, axis=0, out=xs)
            np.take(y, order, out=ys)
            for lo in range(0, y.size, batch_size):
                hi = lo + batch_size
                self._loss_grad(w_views, xs[lo:hi], ys[lo:hi], g_views)
                _prox(w, grad, prox_mu, center)
                grad *= lr
                w -= grad
        return w


class LogisticRegression(_NumpyModel):
    """Multinomial logistic regression: ``logits = x W + b``.

    Parameters
    ----------
    input_dim : int
        Features F; ``W`` is ``F x C``.
    num_classes : int
        Classes C; ``b`` has length C.
    """

    def __init__(self, input_dim: int, num_classes: int) -> None:
        shapes = [("W", (input_dim, num_classes)), ("b", (num_classes,))]
        super().__init__("logreg", input_dim, num_classes, shapes)

    def init_params(self, seed: int) -> np.ndarray:
        """``W ~ N(0, 0.01^2)`` seeded, ``b = 0``."""
        params = np.zeros(self.num_params, dtype=np.float32)
        weights = self.unflatten(params)["W"]
        weights[...] = np.random.default_rng(seed).normal(scale=0.01, size=weights.shape)
        return params

    def _logits(self, p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        logits = x @ p["W"]
        logits += p["b"]
        return logits

    def _loss_grad(
        self, p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, g: dict[str, np.ndarray]
    ) -> float:
        dlogits = self._logits(p, x)
        loss = _softmax_xent_grad(dlogits, y)
        np.matmul(x.T, dlogits, out=g["W"])
        dlogits.sum(axis=0, out=g["b"])
        return loss


class MLP(_NumpyModel):
    """One hidden ReLU layer: ``logits = relu(x W1 + b1) W2 + b2``.

    Parameters
    ----------
    input_dim : int
        Features F.
    num_classes : int
        Classes C.
    hidden : int (default: 64)
        Hidden units H.
    """

    def __init__(self, input_dim: int, num_classes: int, hidden: int = 64) -> None:
        shapes = [
            ("W1", (input_dim, hidden)),
            ("b1", (hidden,)),
            ("W2", (hidden, num_classes)),
            ("b2", (num_classes,)),
        ]
        super().__init__("mlp", input_dim, num_classes, shapes)
        self.hidden = hidden

    def init_params(self, seed: int) -> np.ndarray:
        """He-normal ``W1`` (std sqrt(2/F)), ``W2`` with std sqrt(1/H), zero biases."""
        rng = np.random.default_rng(seed)
        params = np.zeros(self.num_params, dtype=np.float32)
        p = self.unflatten(params)
        p["W1"][...] = rng.normal(scale=math.sqrt(2.0 / self.input_dim), size=p["W1"].shape)
        p["W2"][...] = rng.normal(scale=math.sqrt(1.0 / self.hidden), size=p["W2"].shape)
        return params

    def _hidden(self, p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        h = x @ p["W1"]
        h += p["b1"]
        return np.maximum(h, 0, out=h)

    def _logits(self, p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        logits = self._hidden(p, x) @ p["W2"]
        logits += p["b2"]
        return logits

    def _loss_grad(
        self, p: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, g: dict[str, np.ndarray]
    ) -> float:
        h = self._hidden(p, x)
        dlogits = h @ p["W2"]
        dlogits += p["b2"]
        loss = _softmax_xent_grad(dlogits, y)
        np.matmul(h.T, dlogits, out=g["W2"])
        dlogits.sum(axis=0, out=g["b2"])
        dh = dlogits @ p["W2"].T
        dh *= h > 0
        np.matmul(x.T, dh, out=g["W1"])
        dh.sum(axis=0, out=g["b1"])
        return loss


class TorchCNN(Model):
    """Small PyTorch CNN: (Conv3x3-ReLU-MaxPool2) x 2, then Linear. Needs ``torch``.

    Features arrive flat; they are reshaped to ``feature_shape`` (``(H, W)`` or
    channels-last ``(H, W, C)``, as image datasets give them) and fed as NCHW. Runs on
    the CPU; building one calls ``torch.use_deterministic_algorithms(True)``
    (process-wide) so that a seed fixes the result.

    Parameters
    ----------
    torch : module
        The imported ``torch`` package.
    input_dim : int
        ``H * W * C``.
    num_classes : int
        Classes.
    feature_shape : tuple of int
        ``(H, W)`` or ``(H, W, C)`` with H, W >= 4.
    """

    def __init__(
        self, torch: Any, input_dim: int, num_classes: int, feature_shape: tuple[int, ...]
    ) -> None:
        self._torch = torch
        self._hwc = (*feature_shape, 1)[:3]
        torch.use_deterministic_algorithms(True)
        self._net = _cnn(torch.nn, self._hwc, num_classes)
        shapes = [(name, tuple(t.shape)) for name, t in self._net.named_parameters()]
        super().__init__("demo/mnist-cnn", input_dim, num_classes, shapes)

    def init_params(self, seed: int) -> np.ndarray:
        """PyTorch's default layer initialisation under ``torch.manual_seed(seed)``."""
        torch = self._torch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = _cnn(torch.nn, self._hwc, self.num_classes)
        return self._flat(net.parameters())

    def _flat(self, tensors: Any) -> np.ndarray:
        vector = self._torch.nn.utils.parameters_to_vector(tensors)
        return vector.detach().numpy().astype(np.float32)

    def _load(self, params: np.ndarray) -> Any:
        vector = self._torch.from_numpy(np.array(params, dtype=np.float32))
        self._torch.nn.utils.vector_to_parameters(vector, self._net.parameters())
        return vector

    def _tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        x, y = self._check_data(x, y, np.float32)
        images = self._torch.from_numpy(x).reshape(-1, *self._hwc).permute(0, 3, 1, 2)
        return images, self._torch.from_numpy(y)

    def _loss(self, images: Any, labels: Any, prox_mu: float, center: Any) -> Any:
        torch = self._torch
        loss = torch.nn.functional.cross_entropy(self._net(images), labels)
        if prox_mu > 0:
            diff = torch.nn.utils.parameters_to_vector(self._net.parameters()) - center
            loss = loss + 0.5 * prox_mu * diff.dot(diff)
        return loss

    def loss_and_grad(
        self,
        params: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        prox_mu: float = 0.0,
        prox_center: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray]:
        if prox_mu > 0 and prox_center is None:
            raise ValueError("prox_center is required when prox_mu > 0")
        self._load(params)
        center = (
            None
            if prox_center is None
            else self._torch.from_numpy(np.asarray(prox_center, dtype=np.float32))
        )
        self._net.zero_grad()
        loss = self._loss(*self._tensors(x, y), prox_mu, center)
        loss.backward()
        return loss.item(), self._flat(p.grad for p in self._net.parameters())

    def evaluate(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        self._load(params)
        images, labels = self._tensors(x, y)
        with self._torch.no_grad():
            logits = self._net(images)
        return _xent_and_accuracy(logits.numpy(), labels.numpy())

    def train_local(
        self,
        params: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        seed: int,
        prox_mu: float = 0.0,
    ) -> np.ndarray:
        _check_training(epochs, batch_size, lr, prox_mu)
        center = self._load(params).clone()
        images, labels = self._tensors(x, y)
        optimizer = self._torch.optim.SGD(self._net.parameters(), lr=lr)
        rng = np.random.default_rng(seed)
        for _ in range(epochs):
            order = self._torch.from_numpy(rng.permutation(labels.shape[0]))
            for batch in order.split(batch_size):
                optimizer.zero_grad()
                self._loss(images[batch], labels[batch], prox_mu, center).backward()
                optimizer.step()
        return self._flat(self._net.parameters())


def _cnn(nn: Any, hwc: tuple[int, ...], num_classes: int) -> Any:
    height, width, channels = hwc
    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * (height // 4) * (width // 4), num_classes),
    )


# --- registry -------------------------------------------------------------------------

_Builder = Callable[[int, int, tuple[int, ...] | None, dict[str, Any]], Model]


def _build_logreg(
    input_dim: int, num_classes: int, feature_shape: tuple[int, ...] | None, params: dict[str, Any]
) -> Model:
    _check_params("logreg", params, ())
    return LogisticRegression(input_dim, num_classes)


def _build_mlp(
    input_dim: int, num_classes: int, feature_shape: tuple[int, ...] | None, params: dict[str, Any]
) -> Model:
    _check_params("mlp", params, ("hidden",))
    hidden = params.get("hidden", 64)
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise ModelError(f"mlp param hidden={hidden!r} is invalid: must be an integer >= 1")
    return MLP(input_dim, num_classes, hidden)


def _build_cnn(
    input_dim: int, num_classes: int, feature_shape: tuple[int, ...] | None, params: dict[str, Any]
) -> Model:
    _check_params("demo/mnist-cnn", params, ())
    try:
        import torch
    except ImportError as exc:
        without = ", ".join(k for k in _REGISTRY if k != "demo/mnist-cnn")
        raise ModelError(
            "model 'demo/mnist-cnn' needs PyTorch: pip install 'velocity-fl[torch]'; "
            f"models available without it: {without}"
        ) from exc
    shape = _image_shape(input_dim, feature_shape)
    return TorchCNN(torch, input_dim, num_classes, shape)


def _image_shape(input_dim: int, feature_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    """``(H, W)`` or ``(H, W, C)`` for the CNN; a square grey image if none is given."""
    side = math.isqrt(input_dim)
    shape = tuple(feature_shape) if feature_shape else (side, side)
    ok = len(shape) in (2, 3) and math.prod(shape) == input_dim and min(shape[:2]) >= 4
    if not ok:
        raise ModelError(
            f"feature_shape={feature_shape!r} is invalid for 'demo/mnist-cnn' with "
            f"input_dim={input_dim}: need (H, W) or (H, W, C) images with H, W >= 4"
        )
    return shape


_REGISTRY: dict[str, tuple[str, _Builder]] = {
    "logreg": ("multinomial logistic regression (numpy)", _build_logreg),
    "mlp": ("one-hidden-layer ReLU MLP, params hidden (64) (numpy)", _build_mlp),
    "demo/mnist-cnn": (
        "small CNN, (conv-relu-pool) x 2 + linear, for image datasets (needs the torch extra)",
        _build_cnn,
    ),
}


def _check_params(model_id: str, params: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        allowed_text = ", ".join(allowed) if allowed else "none"
        raise ModelError(
            f"model '{model_id}' does not take params {unknown}; allowed: {allowed_text}"
        )


def list_models() -> dict[str, str]:
    """Return the registered model ids, each with a one-line description.

    Returns
    -------
    dict of str to str
        Model id to description.
    """
    return {model_id: description for model_id, (description, _) in _REGISTRY.items()}


def get_model(
    model_id: str,
    *,
    input_dim: int,
    num_classes: int,
    feature_shape: tuple[int, ...] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Model:
    """Build a registered model.

    Parameters
    ----------
    model_id : str
        ``"logreg"``, ``"mlp"`` or ``"demo/mnist-cnn"`` (see :func:`list_models`).
    input_dim : int
        Length of one flat feature vector, >= 1.
    num_classes : int
        Number of classes, >= 2.
    feature_shape : tuple of int, optional
        Per-sample shape before flattening; used by the CNN.
    params : mapping, optional
        Model options, e.g. ``{"hidden": 128}`` for ``"mlp"``.

    Returns
    -------
    Model
        The model; call :meth:`Model.init_params` for its parameters.

    Raises
    ------
    ModelError
        Unknown id (with a close match), bad options, or a missing optional dependency.
    """
    if model_id not in _REGISTRY:
        close = difflib.get_close_matches(model_id, list(_REGISTRY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ModelError(f"model '{model_id}' is unknown{hint}; available: {', '.join(_REGISTRY)}")
    if input_dim < 1 or num_classes < 2:
        raise ModelError(
            f"input_dim={input_dim}, num_classes={num_classes} are invalid: need "
            "input_dim >= 1 and num_classes >= 2"
        )
    _, build = _REGISTRY[model_id]
    return build(input_dim, num_classes, feature_shape, dict(params or {}))
