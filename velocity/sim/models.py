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

The numpy models (``"logreg"``, ``"mlp"``) are vectorized over samples and clients:
:meth:`Model.train_clients` trains a round's clients together on stacked parameters,
one batched matrix product per layer and step for all of them, no Python loop over
samples. ``"demo/mnist-cnn"`` needs the optional ``torch`` extra and is imported lazily.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from velocity._inline import did_you_mean, short_repr, shown

__all__ = [
    "Model",
    "ModelError",
    "estimate_training_bytes",
    "get_model",
    "list_models",
]

#: Largest hidden layer of the MLP.
MAX_HIDDEN = 1_000_000

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
        return {name: view[0] for name, view in self._views(params[np.newaxis]).items()}

    def _views(self, stack: np.ndarray) -> dict[str, np.ndarray]:
        """Named views of a ``(C, num_params)`` stack of flat vectors, each ``(C, *shape)``."""
        views, offset = {}, 0
        for name, shape in self.shapes:
            size = math.prod(shape)
            views[name] = stack[:, offset : offset + size].reshape(len(stack), *shape)
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

    def train_clients(
        self,
        params: np.ndarray,
        clients: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        seeds: Sequence[int],
        prox_mu: float = 0.0,
    ) -> np.ndarray:
        """Train every client from the same ``params``, as :meth:`train_local` would.

        Client ``i`` trains on ``clients[i]`` with ``seeds[i]``; its result does not
        depend on the other clients (up to float rounding). This default calls
        :meth:`train_local` once per client; the numpy models train the clients together
        on stacked parameters.

        Parameters
        ----------
        params : np.ndarray
            Starting (global) parameters, flat; not modified.
        clients : sequence of (np.ndarray, np.ndarray)
            At least one ``(x, y)``: features ``(n_i, input_dim)`` and integer labels
            ``(n_i,)``.
        epochs : int
            Passes over each client's data, >= 1.
        batch_size : int
            Samples per step, >= 1 (the last batch of an epoch may be smaller).
        lr : float
            Step size, > 0.
        seeds : sequence of int
            One per client; seeds that client's shuffles.
        prox_mu : float (default: 0.0)
            FedProx coefficient, >= 0; the proximal term pulls towards ``params``.

        Returns
        -------
        np.ndarray
            ``(len(clients), num_params)`` float32: row ``i`` is client ``i``'s new
            parameters.
        """
        _check_clients(clients, seeds)
        return np.stack(
            [
                self.train_local(
                    params,
                    x,
                    y,
                    epochs=epochs,
                    batch_size=batch_size,
                    lr=lr,
                    seed=seed,
                    prox_mu=prox_mu,
                )
                for (x, y), seed in zip(clients, seeds, strict=True)
            ]
        )

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


def _check_clients(clients: Sequence[Any], seeds: Sequence[int]) -> None:
    if not clients or len(seeds) != len(clients):
        raise ValueError(
            f"got {len(clients)} clients and {len(seeds)} seeds: need at least one client "
            "and one seed per client"
        )


def _prox(
    params: np.ndarray, grad: np.ndarray, prox_mu: float, prox_center: np.ndarray | None
) -> np.ndarray:
    """Add mu * (w_c - w_g) to each row of ``grad`` in place; return each (mu/2) ||w_c - w_g||^2.

    ``params`` and ``grad`` are ``(C, num_params)`` stacks, ``prox_center`` is ``w_g``.
    """
    if prox_mu == 0:
        return np.zeros(len(params))
    if prox_center is None:
        raise ValueError("prox_center is required when prox_mu > 0")
    diff = params - prox_center
    grad += prox_mu * diff
    return 0.5 * prox_mu * np.einsum("cp,cp->c", diff, diff)


def _softmax_xent_grad(logits: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each client's weighted cross-entropy; turns ``logits`` into its gradient in place.

    For client c, row j of its batch, logits z (``(C, b, K)``), label y (``(C, b)``)
    and weight a (``(C, b)``: 1/b_c on the client's b_c real samples, 0 on padding):

    .. math::

        L_c = \\sum_j a_{cj} \\left(\\log \\sum_k e^{z_{cjk}} - z_{cj y_{cj}}\\right),
        \\qquad
        \\frac{\\partial L_c}{\\partial z_{cjk}}
            = a_{cj} \\left(\\mathrm{softmax}(z_{cj})_k - [k = y_{cj}]\\right)

    Numerically stable: the row max is subtracted before exponentiating (log-sum-exp).
    Returns the ``(C,)`` losses (float64).
    """
    clients, rows = np.ogrid[: y.shape[0], : y.shape[1]]
    logits -= logits.max(axis=2, keepdims=True)
    picked = logits[clients, rows, y]
    np.exp(logits, out=logits)
    sums = logits.sum(axis=2, keepdims=True)
    losses = np.sum((np.log(sums[..., 0]) - picked) * weights, axis=1, dtype=np.float64)
    logits /= sums
    logits[clients, rows, y] -= 1.0
    logits *= weights[..., np.newaxis]
    return np.asarray(losses)


def _xent_and_accuracy(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_sums = np.log(np.exp(shifted).sum(axis=1))
    loss = float(np.mean(log_sums - shifted[np.arange(y.size), y], dtype=np.float64))
    accuracy = float(np.mean(logits.argmax(axis=1) == y))
    return loss, accuracy


def _affine(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``x_c w_c + b_c`` for each client c: ``(C, n, i) @ (C, i, o) + (C, o) -> (C, n, o)``."""
    out = np.matmul(x, w)
    out += b[:, np.newaxis, :]
    return out


def _affine_grad(x: np.ndarray, dout: np.ndarray, gw: np.ndarray, gb: np.ndarray) -> None:
    """Backward of :func:`_affine`: ``gw_c = x_c^T dout_c``, ``gb_c = sum_n dout_c`` (in place)."""
    np.matmul(x.transpose(0, 2, 1), dout, out=gw)
    dout.sum(axis=1, out=gb)


def _batches(
    perm: np.ndarray, offsets: np.ndarray, sizes: np.ndarray, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of every client's minibatches, step by step.

    ``sizes`` is in decreasing order and client c's samples, in this epoch's order, are
    ``perm[offsets[c] : offsets[c] + sizes[c]]``. Step s (B = ``batch_size``) covers the
    k clients with samples left, n_c > sB (the first k), and yields ``(k, b)`` arrays,
    b = min(B, n_0 - sB):

    - ``rows``: row j of client c is its sample sB + j; past n_c it repeats the
      client's last sample;
    - ``weights``: 1/b_c on the client's b_c = min(B, n_c - sB) real samples, 0 on the
      repeats, so a weighted sum over j is the mean over the client's actual batch.
    """
    for lo in range(0, int(sizes[0]), batch_size):
        k = int(np.count_nonzero(sizes > lo))
        n = sizes[:k, np.newaxis]
        cols = np.arange(lo, min(lo + batch_size, sizes[0]))
        real = cols < n
        rows = perm[offsets[:k, np.newaxis] + np.minimum(cols, n - 1)]
        yield rows, real / np.count_nonzero(real, axis=1, keepdims=True)


# Parameters plus gradients of the clients trained together in one stack: a few MiB, so
# that they stay in cache between steps. Small models train every client in one stack; a
# model of a million parameters trains one client at a time.
_STACK_BYTES = 8 << 20


class _NumpyModel(Model):
    """Shared SGD, evaluation and proximal term for the numpy models.

    The math is written once, on stacks: a client axis C leads every parameter
    (``(C, *shape)``, see :meth:`Model._views`) and every batch (``(C, b, ...)``). One
    model is C = 1.
    """

    @abstractmethod
    def _logits(self, p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        """Forward pass of each client, ``(C, n, input_dim)`` to ``(C, n, num_classes)``."""

    @abstractmethod
    def _loss_grad(
        self,
        p: dict[str, np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray,
        g: dict[str, np.ndarray],
    ) -> np.ndarray:
        """Each client's weighted cross-entropy (see :func:`_softmax_xent_grad`).

        Writes the gradients into the views ``g`` and returns the ``(C,)`` losses.
        """

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
        w, g = params[np.newaxis], grad[np.newaxis]
        mean = np.full((1, y.size), 1.0) / y.size
        loss = self._loss_grad(self._views(w), x[np.newaxis], y[np.newaxis], mean, self._views(g))
        return float(loss[0] + _prox(w, g, prox_mu, prox_center)[0]), grad

    def evaluate(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        params = np.asarray(params, dtype=np.float32)
        x, y = self._check_data(x, y, np.float32)
        logits = self._logits(self._views(params[np.newaxis]), x[np.newaxis])
        return _xent_and_accuracy(logits[0], y)

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
        return self.train_clients(
            params,
            [(x, y)],
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seeds=[seed],
            prox_mu=prox_mu,
        )[0]

    def train_clients(
        self,
        params: np.ndarray,
        clients: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        seeds: Sequence[int],
        prox_mu: float = 0.0,
    ) -> np.ndarray:
        """Sort the clients by size, largest first, and train them in stacks.

        A stack holds at most :data:`_STACK_BYTES` of parameters and gradients; see
        :meth:`_train_stack`. Rows come back in the callers' client order.
        """
        _check_training(epochs, batch_size, lr, prox_mu)
        _check_clients(clients, seeds)
        data = [self._check_data(x, y, np.float32) for x, y in clients]
        start = np.asarray(params, dtype=np.float32)
        order = np.argsort([-y.size for _, y in data], kind="stable")
        w = np.tile(start, (len(data), 1))  # row r is client order[r]
        per_stack = max(1, _STACK_BYTES // (2 * w.itemsize * self.num_params))
        for lo in range(0, len(data), per_stack):
            stack = order[lo : lo + per_stack]
            self._train_stack(
                w[lo : lo + per_stack],
                start,
                [data[c] for c in stack],
                [seeds[c] for c in stack],
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                prox_mu=prox_mu,
            )
        if np.array_equal(order, np.arange(len(order))):
            return w  # sorting moved no client: spare a copy of every client's parameters
        return w[np.argsort(order)]

    def _train_stack(
        self,
        w: np.ndarray,
        start: np.ndarray,
        data: list[tuple[np.ndarray, np.ndarray]],
        seeds: list[int],
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        prox_mu: float,
    ) -> None:
        """Every client's SGD at once, in place on the ``(C, num_params)`` stack ``w``.

        Row c of ``w`` starts at ``start`` (w_g) and trains on ``data[c]``, sizes in
        decreasing order, so that the clients with samples left at a step are the first
        k. Each step s takes every client's s-th minibatch (:func:`_batches`) and does
        ``w_c -= lr * (grad L_c(w_c) + mu (w_c - w_g))`` for those k; a client whose epoch
        is over is not touched. Only the step's ``(k, b, input_dim)`` batch is gathered,
        from one concatenation of the clients' data (no padding).
        """
        x = np.concatenate([x for x, _ in data])
        y = np.concatenate([y for _, y in data])
        sizes = np.array([y.size for _, y in data])
        offsets = np.cumsum(sizes) - sizes
        rngs = [np.random.default_rng(seed) for seed in seeds]
        grad = np.empty_like(w)
        for _ in range(epochs):
            perm = np.concatenate(
                [lo + rng.permutation(n) for lo, n, rng in zip(offsets, sizes, rngs, strict=True)]
            )
            for rows, weights in _batches(perm, offsets, sizes, batch_size):
                active, step = w[: len(rows)], grad[: len(rows)]
                self._loss_grad(self._views(active), x[rows], y[rows], weights, self._views(step))
                _prox(active, step, prox_mu, start)
                step *= lr
                active -= step


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
        return _affine(x, p["W"], p["b"])

    def _loss_grad(
        self,
        p: dict[str, np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray,
        g: dict[str, np.ndarray],
    ) -> np.ndarray:
        dlogits = self._logits(p, x)
        losses = _softmax_xent_grad(dlogits, y, weights)
        _affine_grad(x, dlogits, g["W"], g["b"])
        return losses


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
        h = _affine(x, p["W1"], p["b1"])
        return np.maximum(h, 0, out=h)

    def _logits(self, p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
        return _affine(self._hidden(p, x), p["W2"], p["b2"])

    def _loss_grad(
        self,
        p: dict[str, np.ndarray],
        x: np.ndarray,
        y: np.ndarray,
        weights: np.ndarray,
        g: dict[str, np.ndarray],
    ) -> np.ndarray:
        h = self._hidden(p, x)
        dlogits = _affine(h, p["W2"], p["b2"])
        losses = _softmax_xent_grad(dlogits, y, weights)
        _affine_grad(h, dlogits, g["W2"], g["b2"])
        dh = np.matmul(dlogits, p["W2"].transpose(0, 2, 1))
        dh *= h > 0
        _affine_grad(x, dh, g["W1"], g["b1"])
        return losses


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
    if isinstance(hidden, bool) or not isinstance(hidden, int) or not 1 <= hidden <= MAX_HIDDEN:
        raise ModelError(
            f"mlp param hidden={short_repr(hidden)} is invalid: must be an integer in "
            f"[1, {MAX_HIDDEN}]"
        )
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
    unknown = sorted(set(params) - set(allowed), key=str)
    if unknown:
        allowed_text = ", ".join(allowed) if allowed else "none"
        hint = did_you_mean(str(unknown[0]), allowed) if allowed else ""
        raise ModelError(
            f"model '{model_id}' does not take params {short_repr(unknown)}{hint}; "
            f"allowed: {allowed_text}"
        )


def estimate_training_bytes(
    model: Model, *, clients: int, batch_size: int, train_samples: int, test_samples: int
) -> tuple[int, str]:
    """Peak bytes a round needs beyond the data, and how it is counted.

    A round stacks every sampled client's parameters (``clients × num_params``
    float32) with their gradients, the reordered result and the updates the Rust
    core attacks and aggregates: about four such stacks. Evaluation and the widest
    layer's activations add ``(test samples + one minibatch per client) × width``
    floats (width: the hidden layer, else the classes; a client's minibatch is at most
    its samples), counted three times (forward, backward, softmax).
    """
    stacks = 16 * clients * model.num_params
    width = max(getattr(model, "hidden", 0), model.num_classes)
    batch_rows = min(clients * batch_size, train_samples)
    activations = 12 * (test_samples + batch_rows) * width
    return (
        stacks + activations,
        f"{model.model_id} with {model.num_params:,} parameters × {clients:,} clients per round",
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
        hint = did_you_mean(model_id, list(_REGISTRY))
        raise ModelError(
            f"model '{shown(model_id)}' is unknown{hint}; available: {', '.join(_REGISTRY)}"
        )
    if input_dim < 1 or num_classes < 2:
        raise ModelError(
            f"input_dim={input_dim}, num_classes={num_classes} are invalid: need "
            "input_dim >= 1 and num_classes >= 2"
        )
    _, build = _REGISTRY[model_id]
    return build(input_dim, num_classes, feature_shape, dict(params or {}))
