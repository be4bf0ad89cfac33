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

A client runs ``epochs`` passes over its data in fresh seeded orders, or, with
``local_steps`` = S, exactly S minibatch steps over that same stream of epochs (the
stream continues across epoch boundaries; S = 1 is the distributed-SGD setting of
Baruch et al. 2019 and ByzFL). With client momentum :math:`\\beta` (Karimireddy, He
and Jaggi, 2021, "Learning from History for Byzantine Robust Optimization", ICML,
https://arxiv.org/abs/2012.10333) every step is

.. math::

    m \\leftarrow \\beta m + (1 - \\beta) g, \\qquad w \\leftarrow w - \\eta m

with :math:`g` the minibatch gradient (proximal term included) and :math:`\\eta` ``lr``;
the buffer :math:`m` is the client's own and outlives the round (the server keeps it,
as ByzFL's clients do), so with one step per round the update a client sends is its
momentum. :math:`\\beta = 0` is plain SGD, bit for bit.

The numpy models (``"logreg"``, ``"mlp"``) are vectorized over samples and clients:
:meth:`Model.train_clients` trains a round's clients together on stacked parameters,
one batched matrix product per layer and step for all of them, no Python loop over
samples. The torch models (``"cnn"``, ``"mlp"`` with ``backend = "torch"``, your own
``"module:callable"``) live in :mod:`velocity.sim.torch_models`, imported only when
one is built (the optional ``torch`` extra).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from velocity._inline import did_you_mean, short_repr, shown
from velocity.catalog import names_code

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
        #: One-line facts about how this model trains, for the run's summary (e.g. a
        #: torch model that cannot be vectorized across clients).
        self.notes: list[str] = []

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
        local_steps: int | None = None,
        momentum: float = 0.0,
        momentum_buffer: np.ndarray | None = None,
    ) -> np.ndarray:
        """Run minibatch SGD from ``params`` and return the new parameters.

        Each epoch visits the samples in a fresh seeded order. With ``prox_mu > 0`` the
        proximal term pulls towards the ``params`` passed in. ``params`` is not modified;
        ``momentum_buffer`` is, in place. One client through :meth:`train_clients`.

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
        local_steps : int, optional
            Exactly this many minibatch steps (>= 1) instead of ``epochs`` passes.
        momentum : float (default: 0.0)
            Client momentum :math:`\\beta` in [0, 1).
        momentum_buffer : np.ndarray, optional
            The client's float32 buffer :math:`m` (``(num_params,)``), required when
            ``momentum > 0``; updated in place.

        Returns
        -------
        np.ndarray
            New flat float32 parameters.
        """
        momenta = None if momentum_buffer is None else momentum_buffer[np.newaxis]
        return self.train_clients(
            params,
            [(x, y)],
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seeds=[seed],
            prox_mu=prox_mu,
            local_steps=local_steps,
            momentum=momentum,
            momenta=momenta,
        )[0]

    @abstractmethod
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
        local_steps: int | None = None,
        momentum: float = 0.0,
        momenta: np.ndarray | None = None,
    ) -> np.ndarray:
        """Train every client from the same ``params``, as :meth:`train_local` would.

        Client ``i`` trains on ``clients[i]`` with ``seeds[i]``; its result does not
        depend on the other clients (up to float rounding). The numpy models train the
        clients together on stacked parameters, the torch models with vmap (or one at a
        time).

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
        local_steps : int, optional
            Exactly this many minibatch steps per client (>= 1) instead of ``epochs``.
        momentum : float (default: 0.0)
            Client momentum :math:`\\beta` in [0, 1).
        momenta : np.ndarray, optional
            ``(len(clients), num_params)`` float32, row ``i`` client ``i``'s momentum
            buffer; required when ``momentum > 0``, updated in place.

        Returns
        -------
        np.ndarray
            ``(len(clients), num_params)`` float32: row ``i`` is client ``i``'s new
            parameters.
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


def _check_training(
    epochs: int,
    batch_size: int,
    lr: float,
    prox_mu: float,
    local_steps: int | None = None,
    momentum: float = 0.0,
) -> None:
    for field, value, ok, allowed in (
        ("epochs", epochs, epochs >= 1, ">= 1"),
        ("batch_size", batch_size, batch_size >= 1, ">= 1"),
        ("lr", lr, lr > 0, "> 0"),
        ("prox_mu", prox_mu, prox_mu >= 0, ">= 0"),
        ("local_steps", local_steps, local_steps is None or local_steps >= 1, ">= 1 or None"),
        ("momentum", momentum, 0 <= momentum < 1, "in [0, 1)"),
    ):
        if not ok:
            raise ValueError(f"{field}={value!r} is invalid: must be {allowed}")


def _check_momenta(momentum: float, momenta: np.ndarray | None, clients: int, size: int) -> None:
    """A ``(clients, size)`` float32 buffer stack is required when ``momentum > 0``."""
    if momentum == 0:
        return
    ok = (
        momenta is not None
        and momenta.dtype == np.float32
        and momenta.shape == (clients, size)
        and momenta.flags.writeable
    )
    if not ok:
        found = "None" if momenta is None else f"{momenta.dtype} {momenta.shape}"
        raise ValueError(
            f"momentum={momentum!r} needs momenta: a writable float32 ({clients}, {size}) "
            f"array of the clients' buffers; got {found}"
        )


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


def _epoch_batches(
    rngs: Sequence[np.random.Generator],
    offsets: np.ndarray,
    sizes: np.ndarray,
    batch_size: int,
    epochs: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``epochs`` passes of :func:`_batches`, each client in a fresh order from its rng."""
    for _ in range(epochs):
        perm = np.concatenate(
            [lo + rng.permutation(n) for lo, n, rng in zip(offsets, sizes, rngs, strict=True)]
        )
        yield from _batches(perm, offsets, sizes, batch_size)


def _step_batches(
    rngs: Sequence[np.random.Generator],
    offsets: np.ndarray,
    sizes: np.ndarray,
    batch_size: int,
    local_steps: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Exactly ``local_steps`` minibatches of every client, as ``(C, b)`` rows and weights.

    Client c's minibatches are those of :func:`_epoch_batches` on its own (epoch after
    epoch of fresh permutations from ``rngs[c]``, the last batch of an epoch holding
    the n_c mod B left over), cut off after ``local_steps``: so S steps of a client of
    n_c samples are ``S / ceil(n_c / B)`` epochs when that divides. Every client is in
    every step; a batch shorter than the step's widest repeats its last sample with
    weight 0, as in :func:`_batches`.
    """
    per_client = []
    for lo, n, rng in zip(offsets, sizes, rngs, strict=True):
        per_epoch = -(-int(n) // batch_size)
        perms = [lo + rng.permutation(n) for _ in range(-(-local_steps // per_epoch))]
        batches = [p[i : i + batch_size] for p in perms for i in range(0, int(n), batch_size)]
        per_client.append(batches[:local_steps])
    for step in zip(*per_client, strict=True):
        counts = np.array([len(batch) for batch in step])
        width = int(counts.max())
        cols = np.minimum(np.arange(width), counts[:, np.newaxis] - 1)
        rows = np.stack([batch[c] for batch, c in zip(step, cols, strict=True)])
        real = np.arange(width) < counts[:, np.newaxis]
        yield rows, real / counts[:, np.newaxis]


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
        local_steps: int | None = None,
        momentum: float = 0.0,
        momenta: np.ndarray | None = None,
    ) -> np.ndarray:
        """Sort the clients by size, largest first, and train them in stacks.

        A stack holds at most :data:`_STACK_BYTES` of parameters and gradients; see
        :meth:`_train_stack`. Rows come back in the callers' client order.
        """
        _check_training(epochs, batch_size, lr, prox_mu, local_steps, momentum)
        _check_clients(clients, seeds)
        _check_momenta(momentum, momenta, len(clients), self.num_params)
        data = [self._check_data(x, y, np.float32) for x, y in clients]
        start = np.asarray(params, dtype=np.float32)
        order = np.argsort([-y.size for _, y in data], kind="stable")
        w = np.tile(start, (len(data), 1))  # row r is client order[r]
        m = None if momentum == 0 or momenta is None else momenta[order]
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
                local_steps=local_steps,
                momentum=momentum,
                momenta=None if m is None else m[lo : lo + per_stack],
            )
        if m is not None and momenta is not None:
            momenta[order] = m
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
        local_steps: int | None,
        momentum: float,
        momenta: np.ndarray | None,
    ) -> None:
        """Every client's SGD at once, in place on the ``(C, num_params)`` stack ``w``.

        Row c of ``w`` starts at ``start`` (w_g) and trains on ``data[c]``, sizes in
        decreasing order, so that the clients with samples left at a step are the first
        k. Each step s takes every client's s-th minibatch (:func:`_batches`, or
        :func:`_step_batches` with ``local_steps``) and does
        ``w_c -= lr * (grad L_c(w_c) + mu (w_c - w_g))`` for those k (through the
        momentum buffer ``momenta[c]`` when ``momentum > 0``); a client whose epoch is
        over is not touched. Only the step's ``(k, b, input_dim)`` batch is gathered,
        from one concatenation of the clients' data (no padding).
        """
        x = np.concatenate([x for x, _ in data])
        y = np.concatenate([y for _, y in data])
        sizes = np.array([y.size for _, y in data])
        offsets = np.cumsum(sizes) - sizes
        rngs = [np.random.default_rng(seed) for seed in seeds]
        grad = np.empty_like(w)
        if local_steps is None:
            steps = _epoch_batches(rngs, offsets, sizes, batch_size, epochs)
        else:
            steps = _step_batches(rngs, offsets, sizes, batch_size, local_steps)
        for rows, weights in steps:
            active, step = w[: len(rows)], grad[: len(rows)]
            self._loss_grad(self._views(active), x[rows], y[rows], weights, self._views(step))
            _prox(active, step, prox_mu, start)
            if momenta is not None and momentum > 0:
                buffer = momenta[: len(rows)]
                buffer *= momentum
                step *= 1 - momentum
                buffer += step
                step[...] = buffer
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


# --- registry -------------------------------------------------------------------------

_Builder = Callable[[int, int, tuple[int, ...] | None, dict[str, Any], str], Model]
#: The model backends of ``mlp`` (``model_params.backend``).
BACKENDS = ("numpy", "torch")


def _build_logreg(
    input_dim: int,
    num_classes: int,
    feature_shape: tuple[int, ...] | None,
    params: dict[str, Any],
    device: str,
) -> Model:
    _check_params("logreg", params, ())
    _check_numpy_device("logreg", device)
    return LogisticRegression(input_dim, num_classes)


def _build_mlp(
    input_dim: int,
    num_classes: int,
    feature_shape: tuple[int, ...] | None,
    params: dict[str, Any],
    device: str,
) -> Model:
    _check_params("mlp", params, ("hidden", "backend", "vectorize"))
    hidden = params.get("hidden", 64)
    if isinstance(hidden, bool) or not isinstance(hidden, int) or not 1 <= hidden <= MAX_HIDDEN:
        raise ModelError(
            f"mlp param hidden={short_repr(hidden)} is invalid: must be an integer in "
            f"[1, {MAX_HIDDEN}]"
        )
    backend = params.get("backend", "numpy")
    if backend not in BACKENDS:
        raise ModelError(
            f"mlp param backend={short_repr(backend)} is invalid"
            f"{did_you_mean(str(backend), BACKENDS)}; allowed: {', '.join(BACKENDS)}"
        )
    if backend == "numpy":
        if "vectorize" in params:
            raise ModelError(
                'mlp param vectorize applies to backend = "torch" (the numpy MLP always '
                "trains its clients together)"
            )
        _check_numpy_device("mlp", device)
        return MLP(input_dim, num_classes, hidden)
    from velocity.sim import torch_models

    torch = torch_models.import_torch("mlp", _numpy_models())
    return torch_models.build_torch_mlp(
        torch,
        input_dim=input_dim,
        num_classes=num_classes,
        hidden=hidden,
        device=torch_models.resolve_device(torch, device),
        vectorize=_vectorize_param("mlp", params),
    )


def _build_cnn(
    input_dim: int,
    num_classes: int,
    feature_shape: tuple[int, ...] | None,
    params: dict[str, Any],
    device: str,
) -> Model:
    _check_params("cnn", params, ("vectorize",))
    from velocity.sim import torch_models

    torch = torch_models.import_torch("cnn", _numpy_models())
    return torch_models.build_cnn(
        torch,
        input_dim=input_dim,
        num_classes=num_classes,
        feature_shape=feature_shape,
        device=torch_models.resolve_device(torch, device),
        vectorize=_vectorize_param("cnn", params),
    )


def _build_user_model(
    model_id: str,
    input_dim: int,
    num_classes: int,
    feature_shape: tuple[int, ...] | None,
    params: dict[str, Any],
    device: str,
) -> Model:
    _check_params(model_id, params, ("vectorize",))
    from velocity.sim import torch_models

    torch = torch_models.import_torch(model_id, _numpy_models())
    return torch_models.build_user_model(
        torch,
        model_id,
        input_dim=input_dim,
        num_classes=num_classes,
        feature_shape=feature_shape,
        device=torch_models.resolve_device(torch, device),
        vectorize=_vectorize_param(model_id, params),
    )


def _vectorize_param(model_id: str, params: dict[str, Any]) -> bool | None:
    """``model_params.vectorize`` of a torch model: true, false or absent (the default rule)."""
    value = params.get("vectorize")
    if value is not None and not isinstance(value, bool):
        raise ModelError(
            f"model '{model_id}' param vectorize={short_repr(value)} is invalid: must be true "
            "or false (absent: vmap unless the model is convolutional on the CPU)"
        )
    return value


def _check_numpy_device(model_id: str, device: str) -> None:
    if device == "cuda":
        raise ModelError(
            f"device 'cuda' is invalid for model '{model_id}': it runs on numpy (the CPU); "
            "a GPU needs a torch model: 'cnn', 'mlp' with model_params backend = \"torch\", "
            "or your own 'module:callable'"
        )


def _numpy_models() -> list[str]:
    return [model_id for model_id, (_, _, torch) in _REGISTRY.items() if not torch]


_REGISTRY: dict[str, tuple[str, _Builder, bool]] = {
    "logreg": ("multinomial logistic regression (numpy)", _build_logreg, False),
    "mlp": (
        "one-hidden-layer ReLU MLP, params hidden (64), backend (numpy; torch needs the "
        "torch extra), vectorize (torch only)",
        _build_mlp,
        False,
    ),
    "cnn": (
        "LeNet-style CNN, (conv5x5-relu-pool) x 2 + 128-unit dense layer, for image "
        "datasets; param vectorize (torch.func.vmap across clients; default: on a GPU "
        "only) (needs the torch extra)",
        _build_cnn,
        True,
    ),
}
#: Listed by :func:`list_models` beside the registered ids: your own torch model.
USER_MODEL_FORM = (
    "module:callable",
    "your own torch model: build(input_shape, num_classes) -> torch.nn.Module, imported "
    "by name (needs the torch extra)",
)


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
        Model id to description; ``"module:callable"`` stands for your own torch model.
    """
    listed = {model_id: description for model_id, (description, _, _) in _REGISTRY.items()}
    return {**listed, USER_MODEL_FORM[0]: USER_MODEL_FORM[1]}


#: Old spellings an unknown id is matched against, to the id that replaced them.
_FORMER_IDS = {"demo/mnist-cnn": "cnn", "mnist-cnn": "cnn", "lenet": "cnn"}


def get_model(
    model_id: str,
    *,
    input_dim: int,
    num_classes: int,
    feature_shape: tuple[int, ...] | None = None,
    params: Mapping[str, Any] | None = None,
    device: str = "auto",
) -> Model:
    """Build a registered model, or your own torch model ``"module:callable"``.

    Parameters
    ----------
    model_id : str
        ``"logreg"``, ``"mlp"``, ``"cnn"`` (see :func:`list_models`) or
        ``"package.module:build"`` (see :mod:`velocity.sim.torch_models`).
    input_dim : int
        Length of one flat feature vector, >= 1.
    num_classes : int
        Number of classes, >= 2.
    feature_shape : tuple of int, optional
        Per-sample shape before flattening; used by the CNN and your own models.
    params : mapping, optional
        Model options, e.g. ``{"hidden": 128}`` or ``{"backend": "torch"}`` for ``"mlp"``.
    device : str (default: "auto")
        ``"auto"``, ``"cpu"`` or ``"cuda"``; the numpy models run on the CPU only.

    Returns
    -------
    Model
        The model; call :meth:`Model.init_params` for its parameters.

    Raises
    ------
    ModelError
        Unknown id (with a close match), bad options, a missing optional dependency,
        a device the model or the machine cannot use, or your own model failing to
        import, build or fit the data: one line each.
    """
    if input_dim < 1 or num_classes < 2:
        raise ModelError(
            f"input_dim={input_dim}, num_classes={num_classes} are invalid: need "
            "input_dim >= 1 and num_classes >= 2"
        )
    options = dict(params or {})
    if names_code(model_id):
        return _build_user_model(model_id, input_dim, num_classes, feature_shape, options, device)
    if model_id not in _REGISTRY:
        hint = did_you_mean(model_id, {**{k: k for k in _REGISTRY}, **_FORMER_IDS})
        raise ModelError(
            f"model '{shown(model_id)}' is unknown{hint}; available: {', '.join(_REGISTRY)}, "
            "or your own torch model 'module:callable'"
        )
    _, build, _ = _REGISTRY[model_id]
    return build(input_dim, num_classes, feature_shape, options, device)
