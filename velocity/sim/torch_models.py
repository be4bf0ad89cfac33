"""PyTorch models as velocity models: any ``torch.nn.Module`` behind one flat float32 vector.

Imported only when a torch model is built (``pip install 'velocity-fl[torch]'``); the
numpy path never imports torch. A :class:`TorchModel` keeps the contract of
:class:`velocity.sim.models.Model`: its parameters are the module's
``named_parameters()`` flattened in that order, so the server, the attacks and the
Rust aggregation see the same ``n x d`` update matrix as for the numpy models.

**Models.** ``cnn``, a LeNet-style network (LeCun et al., 1998) for image datasets:

.. code-block:: text

    Conv 5x5 (C -> 32, padding 2) - ReLU - MaxPool 2
    Conv 5x5 (32 -> 64, padding 2) - ReLU - MaxPool 2
    Linear (64 (H/4) (W/4) -> 128) - ReLU - Linear (128 -> classes)

(on Fashion-MNIST 28x28x1: 454,922 parameters, ~22 MFLOP per image forward);
``mlp`` with ``backend = "torch"``, the numpy MLP's architecture and initialisation
distribution in torch; and your
own, ``model_id = "package.module:build"``: ``build(input_shape, num_classes)``
returns a module mapping a batch ``(n, *input_shape)`` to logits ``(n,
num_classes)``. ``input_shape`` is ``(C, H, W)`` for images (velocity's image
datasets are channels-last; the features are permuted to channels-first for the
module) and ``(F,)`` for flat features.

**Training** is the minibatch SGD of :mod:`velocity.sim.models` (the same seeded
data order, ``local_steps``, client momentum and FedProx term): for client c and a
step on its minibatch B_c with weights :math:`\\omega_{cj} = 1/|B_c|`,

.. math::

    g_c = \\nabla_w \\sum_{j \\in B_c} \\omega_{cj}\\, \\ell(f(w_c; x_j), y_j)
          + \\mu (w_c - w_g), \\quad
    m_c \\leftarrow \\beta m_c + (1 - \\beta) g_c, \\quad
    w_c \\leftarrow w_c - \\eta\\, m_c

(:math:`m_c = g_c` when :math:`\\beta = 0`). **Vectorized across clients:** the
clients of a round train together, in groups of at most :data:`VMAP_CLIENTS` whose
estimated training memory fits :data:`VMAP_BYTES` (:meth:`TorchModel.group_size`), as one
batched program: their parameters are stacked ``(k, *shape)`` and
``torch.func.vmap(torch.func.grad(loss))`` over ``torch.func.functional_call``
computes the k gradients in one call per step; a client with fewer samples is
padded with zero-weight repeats (:func:`velocity.sim.models._batches`), so its
result equals its own loop within float rounding. A module with buffers (e.g.
BatchNorm's running statistics, which vmap cannot update per client) trains its
clients one at a time with autograd instead, and says so in :attr:`Model.notes`
(the run's ``summary.json``); its buffers are not federated (one copy, updated by
each client's training in turn).

**Device:** ``"auto"`` is CUDA when ``torch.cuda.is_available()``, else the CPU;
``"cuda"`` without a GPU is refused. Deterministic algorithms are on
(``torch.use_deterministic_algorithms(True)``, with ``CUBLAS_WORKSPACE_CONFIG``
set for CUDA), so a seed fixes the result on a device.

**Threads.** A run's ``num_threads`` (:meth:`TorchModel.set_num_threads`; one per sweep
worker, all cores for ``velocity run``) is spent where it pays. Vectorized models use
them as torch's intra-op threads. Models whose clients train one at a time on the CPU
(the convolutional ones, see :meth:`TorchModel._choose_vectorized`) train that many
clients *concurrently* instead, one thread each with one intra-op thread, each thread on
its own replica of the module (``torch.func.functional_call`` and autograd write into
the module, so replicas are never shared): at a minibatch of 32 one client's step does
not keep two cores busy, two clients do. Evaluation splits its batches over the same
threads. Every client and every evaluation batch then runs the same single-threaded
computation whatever the thread count, so a run's results do not depend on it
(``tests/test_torch_models.py`` checks it bit for bit).
"""

from __future__ import annotations

import copy
import math
import os
import queue
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from velocity.sim.importer import ImportByNameError, exception_text, resolve_callable
from velocity.sim.models import (
    Model,
    ModelError,
    _check_clients,
    _check_momenta,
    _check_training,
    _epoch_batches,
    _step_batches,
    _xent_and_accuracy,
)

__all__ = ["VMAP_CLIENTS", "TorchModel", "build_cnn", "build_torch_mlp", "build_user_model"]

#: The most clients one vmap call trains together.
VMAP_CLIENTS = 20
#: The memory a vmap group's activations and parameter stacks may take (estimated).
VMAP_BYTES = 128 * 2**20
#: Samples per forward pass when evaluating (the CNN's first activations: ~13 MB, per
#: evaluating thread).
_EVAL_BATCH = 128
#: The hint of every "needs torch" error.
INSTALL_HINT = "pip install 'velocity-fl[torch]'"

Factory = Callable[[], Any]


def import_torch(model_id: str, without: Sequence[str]) -> Any:
    """``torch``, or a one-line :class:`ModelError` naming the extra and the other models."""
    try:
        import torch
    except ImportError:
        raise ModelError(
            f"model '{model_id}' needs PyTorch: {INSTALL_HINT}; models available without "
            f"it: {', '.join(without)}"
        ) from None
    return torch


def use_deterministic_algorithms(torch: Any) -> None:
    """``torch.use_deterministic_algorithms(True)`` without importing ``torch._inductor``.

    The public function also sets TorchInductor's ``deterministic`` flag, and importing
    its config pulls in ``torch._dynamo``, sympy and Triton: 148 MB RSS and about a second
    per process (torch 2.15, measured), for a compiler velocity never runs. The eager
    flag it sets is the one below; torch versions without it get the public call.
    """
    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None:
        torch.use_deterministic_algorithms(True)
    else:
        set_flag(True, warn_only=False)


def resolve_device(torch: Any, device: str) -> Any:
    """The ``torch.device`` for ``"auto"``, ``"cpu"`` or ``"cuda"``; "cuda" needs a GPU."""
    has_gpu = bool(torch.cuda.is_available())
    if device == "cuda" and not has_gpu:
        raise ModelError(
            "device 'cuda' is invalid here: torch sees no GPU (torch.cuda.is_available() is "
            "False); use device 'auto' or 'cpu'"
        )
    if device == "cuda" or (device == "auto" and has_gpu):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
        return torch.device("cuda")
    return torch.device("cpu")


class TorchModel(Model):
    """A ``torch.nn.Module`` as a :class:`~velocity.sim.models.Model`.

    Parameters
    ----------
    torch : module
        The imported ``torch`` package.
    model_id : str
        The registry id (or the ``module:callable`` id).
    factory : callable
        Builds a fresh module; called under ``torch.manual_seed(seed)`` by
        :meth:`init_params`, so its default initialisation is seeded.
    input_dim : int
        Length of one flat feature vector.
    num_classes : int
        Classes; the module's output width.
    layout : tuple of int
        The shape of one sample as the features store it (``(H, W, C)`` images or
        ``(F,)``); ``prod(layout) == input_dim``.
    device : torch.device
        Where the module and the data live.
    vectorize : bool, optional
        Train a round's clients together with vmap (True) or one at a time (False);
        None: together, except a module with buffers (always one at a time) and a
        convolutional module on the CPU (see :meth:`_choose_vectorized`).
    """

    def __init__(
        self,
        torch: Any,
        model_id: str,
        factory: Factory,
        *,
        input_dim: int,
        num_classes: int,
        layout: tuple[int, ...],
        device: Any,
        vectorize: bool | None = None,
    ) -> None:
        self._torch = torch
        self._factory = factory
        self._layout = layout
        self.device = device
        use_deterministic_algorithms(torch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = _checked_module(torch, model_id, factory)
        self._net = net.to(device)
        self.input_shape = _module_shape(layout)
        #: Floats one sample's forward pass produces (every leaf module's outputs).
        self.activation_floats = _check_output(
            torch, model_id, self._net, self.input_shape, num_classes, device
        )
        self._net.train()
        self._names = [name for name, _ in self._net.named_parameters()]
        self._has_buffers = any(True for _ in self._net.buffers())
        shapes = [(name, tuple(p.shape)) for name, p in self._net.named_parameters()]
        super().__init__(model_id, input_dim, num_classes, shapes)
        self.vectorized = self._choose_vectorized(vectorize)
        self._vgrad = torch.func.vmap(torch.func.grad(self._weighted_loss))
        #: Clients trained at once (one thread and one module replica each); see
        #: :meth:`set_num_threads`.
        self.concurrent_clients = 1
        self._pool: ThreadPoolExecutor | None = None
        self._replicas: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def _choose_vectorized(self, vectorize: bool | None) -> bool:
        """Whether clients train together; each choice that is not vmap is a note.

        A module with buffers cannot be vmapped (their in-place updates are per
        module, not per client). On the CPU a convolutional module trains faster one
        client at a time: a client's minibatch already keeps the cores busy in the
        convolutions, and vmap turns them into grouped convolutions with strided
        element-wise layers around them (measured 0.6x of the loop on this CNN,
        bench/vectorized.py); on a GPU batching the clients is what fills it. The rule
        depends on the model and device only, never on timing, so a run is
        reproducible; both paths agree within float rounding.
        """
        model_id = self.model_id
        if self._has_buffers:
            self.notes.append(
                f"model '{model_id}' has buffers (e.g. BatchNorm running statistics), which "
                "vmap cannot update per client: its clients train one at a time (same "
                "results, slower), and the buffers are not federated"
            )
            return False
        if vectorize is not None:
            return vectorize
        convolutional = any(
            isinstance(m, self._torch.nn.modules.conv._ConvNd) for m in self._net.modules()
        )
        if convolutional and self.device.type == "cpu":
            self.notes.append(
                f"model '{model_id}' trains its clients one at a time: on the CPU its "
                "convolutions are faster per client than vmapped (model_params vectorize = "
                "true forces vmap)"
            )
            return False
        return True

    def group_size(self, batch_size: int) -> int:
        """Clients per vmap call: at most :data:`VMAP_CLIENTS`, within :data:`VMAP_BYTES`.

        One client of a group holds, in float32, its minibatch's activations three
        times (forward outputs, the saved inputs of the backward pass, their
        gradients) and four parameter-sized stacks (its weights, gradient, momentum
        and the result):

        .. math::

            \\text{bytes} = 4 \\, (3 B a + 4 P)

        with B ``batch_size``, a :attr:`activation_floats` and P ``num_params``.
        (the LeNet ``cnn`` on 28x28 images, B = 32: a = 88,074, about 41 MB a client, so
        3 clients a group.)
        Without vmap, 1.
        """
        if not self.vectorized:
            return 1
        per_client = 4 * (3 * batch_size * self.activation_floats + 4 * self.num_params)
        return max(1, min(VMAP_CLIENTS, VMAP_BYTES // per_client))

    def set_num_threads(self, num_threads: int | None) -> None:
        """Spend ``num_threads`` cores on this model (None: torch's default, one per core).

        Vectorized models, and any model on a GPU, get them as torch's intra-op threads
        (``torch.set_num_threads``, process-wide). A model whose clients train one at a
        time on the CPU trains ``num_threads`` clients concurrently instead, with one
        intra-op thread each (the module docstring says why; results do not change).
        """
        torch = self._torch
        threads = torch.get_num_threads() if num_threads is None else num_threads
        if threads < 1:
            raise ValueError(f"num_threads must be ≥ 1, got {threads}")
        one_at_a_time = not self.vectorized and self.device.type == "cpu"
        # Buffers (BatchNorm statistics) are one copy updated by each client in turn:
        # replicas would each keep their own, so those models stay in one thread.
        concurrent = threads if one_at_a_time and not self._has_buffers else 1
        torch.set_num_threads(1 if concurrent > 1 else threads)
        if concurrent != self.concurrent_clients and self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self.concurrent_clients = concurrent

    def _concurrently(self, tasks: Sequence[Callable[[Any], Any]]) -> list[Any]:
        """Each task called with a module replica, ``concurrent_clients`` at a time;
        results in task order. One task, or one thread: in this thread, on the module."""
        if self.concurrent_clients == 1 or len(tasks) < 2:
            return [task(self._net) for task in tasks]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self.concurrent_clients, thread_name_prefix="velocity-client"
            )

        def run(task: Callable[[Any], Any]) -> Any:
            try:
                net = self._replicas.get_nowait()
            except queue.Empty:
                net = copy.deepcopy(self._net)
            try:
                return task(net)
            finally:
                self._replicas.put(net)

        return list(self._pool.map(run, tasks))

    # --- the Model contract --------------------------------------------------------

    def build_module(self, seed: int) -> Any:
        """A fresh ``torch.nn.Module`` of this model (on the CPU), initialised under
        ``torch.manual_seed(seed)``: its parameters flattened are :meth:`init_params`."""
        torch = self._torch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self._factory()

    def init_params(self, seed: int) -> np.ndarray:
        """The module's own initialisation under ``torch.manual_seed(seed)``, flattened."""
        torch = self._torch
        net = self.build_module(seed)
        vector = torch.nn.utils.parameters_to_vector(net.parameters())
        return np.ascontiguousarray(vector.detach().cpu().numpy(), dtype=np.float32)

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
        torch = self._torch
        images, labels = self._tensors(x, y)
        weights = torch.full(labels.shape, 1.0 / max(1, labels.numel()), device=self.device)
        self._load(params)
        self._net.zero_grad(set_to_none=True)
        loss = self._weighted_loss(dict(self._net.named_parameters()), images, labels, weights)
        loss.backward()
        grad = torch.cat([p.grad.reshape(-1) for p in self._net.parameters()])
        value = float(loss.item())
        if prox_mu > 0 and prox_center is not None:
            diff = np.asarray(params, dtype=np.float64) - prox_center
            value += 0.5 * prox_mu * float(diff @ diff)
            grad += prox_mu * torch.as_tensor(diff, dtype=grad.dtype, device=grad.device)
        return value, grad.detach().cpu().numpy().astype(np.float32, copy=False)

    def evaluate(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        torch = self._torch
        images, _ = self._tensors(x, y)
        vector = self._as_tensor(params)
        # Each batch writes its rows of one preallocated output: no small result stays
        # allocated between the batches' large activations, which would fragment the
        # allocator's heaps and grow the process by ~300 MB over an evaluation (measured).
        logits = torch.empty((len(images), self.num_classes), device=self.device)

        def forward(lo: int) -> Callable[[Any], None]:
            def call(net: Any) -> None:
                self._load_tensor(vector, net)
                net.eval()
                try:
                    with torch.no_grad():
                        logits[lo : lo + _EVAL_BATCH] = net(images[lo : lo + _EVAL_BATCH])
                finally:
                    net.train()

            return call

        self._concurrently([forward(lo) for lo in range(0, len(images), _EVAL_BATCH)])
        return _xent_and_accuracy(logits.double().cpu().numpy(), np.asarray(y, dtype=np.int64))

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
        """Train the clients in groups of :meth:`group_size` (one at a time without vmap,
        :attr:`concurrent_clients` of them at once).

        Clients are sorted by size, largest first, as the numpy models do, so the
        clients with samples left at a step of an epoch are a prefix of the group.
        Rows come back in the callers' client order; ``momenta`` is updated in place.
        """
        _check_training(epochs, batch_size, lr, prox_mu, local_steps, momentum)
        _check_clients(clients, seeds)
        _check_momenta(momentum, momenta, len(clients), self.num_params)
        torch = self._torch
        order = [int(i) for i in np.argsort([-len(y) for _, y in clients], kind="stable")]
        start = self._as_tensor(params)
        out = torch.empty((len(clients), self.num_params), dtype=torch.float32)
        group = self.group_size(batch_size)

        def train(members: list[int]) -> Callable[[Any], None]:
            def call(net: Any) -> None:
                buffers = (
                    None
                    if momenta is None or momentum == 0
                    else torch.as_tensor(momenta[members], device=self.device)
                )
                trained = self._train_group(
                    start,
                    [clients[c] for c in members],
                    [seeds[c] for c in members],
                    buffers,
                    net,
                    epochs=epochs,
                    batch_size=batch_size,
                    lr=lr,
                    prox_mu=prox_mu,
                    local_steps=local_steps,
                    momentum=momentum,
                )
                out[members] = trained.cpu()
                if buffers is not None and momenta is not None:
                    momenta[members] = buffers.cpu().numpy()

            return call

        self._concurrently([train(order[lo : lo + group]) for lo in range(0, len(order), group)])
        return out.numpy()

    # --- one group of clients ------------------------------------------------------

    def _train_group(
        self,
        start: Any,
        data: list[tuple[np.ndarray, np.ndarray]],
        seeds: list[int],
        buffers: Any,
        net: Any,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        prox_mu: float,
        local_steps: int | None,
        momentum: float,
    ) -> Any:
        """SGD of the k clients of ``data`` from ``start``; returns their ``(k, P)`` stack.

        ``buffers`` (``(k, P)`` or None) are their momentum buffers, updated in place;
        ``net`` is the module (or replica) that computes the gradients without vmap.
        """
        torch = self._torch
        k = len(data)
        images, labels = self._tensors(
            np.concatenate([x for x, _ in data]), np.concatenate([y for _, y in data])
        )
        sizes = np.array([len(y) for _, y in data])
        offsets = np.cumsum(sizes) - sizes
        rngs = [np.random.default_rng(seed) for seed in seeds]
        steps: Iterator[tuple[np.ndarray, np.ndarray]] = (
            _epoch_batches(rngs, offsets, sizes, batch_size, epochs)
            if local_steps is None
            else _step_batches(rngs, offsets, sizes, batch_size, local_steps)
        )
        stack = start.repeat(k, 1)  # (k, P): row c is client c's parameters
        for rows, weights in steps:
            active = len(rows)
            index = torch.as_tensor(rows, device=self.device)
            omega = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
            step = self._grads(stack[:active], images[index], labels[index], omega, net)
            if prox_mu > 0:
                step += prox_mu * (stack[:active] - start)
            if buffers is not None and momentum > 0:
                buffers[:active].mul_(momentum).add_(step, alpha=1.0 - momentum)
                step = buffers[:active]
            stack[:active] -= lr * step
        return stack

    def _grads(self, stack: Any, images: Any, labels: Any, weights: Any, net: Any) -> Any:
        """Each client's gradient, ``(k, P)``: one vmap call, or autograd on ``net`` for
        one client at a time."""
        torch = self._torch
        if self.vectorized:
            grads = self._vgrad(self._unstack(stack), images, labels, weights)
            return torch.cat([grads[name].reshape(len(stack), -1) for name in self._names], 1)
        rows = []
        for c in range(len(stack)):
            self._load_tensor(stack[c], net)
            net.zero_grad(set_to_none=True)
            params = dict(net.named_parameters())
            self._weighted_loss(params, images[c], labels[c], weights[c], net).backward()
            rows.append(torch.cat([p.grad.reshape(-1) for p in net.parameters()]))
        return torch.stack(rows)

    def _weighted_loss(
        self, params: dict[str, Any], images: Any, labels: Any, w: Any, net: Any = None
    ) -> Any:
        """``sum_j w_j CE(f(params; x_j), y_j)`` for one client's minibatch, through
        ``net`` (default: the model's own module; vmap calls it without)."""
        torch = self._torch
        logits = torch.func.functional_call(self._net if net is None else net, params, (images,))
        losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        return (losses * w).sum()

    # --- conversions ---------------------------------------------------------------

    def _unstack(self, stack: Any) -> dict[str, Any]:
        """Named ``(k, *shape)`` views of a ``(k, P)`` stack (copies where not contiguous)."""
        out: dict[str, Any] = {}
        offset = 0
        for name, shape in self.shapes:
            size = math.prod(shape)
            out[name] = stack[:, offset : offset + size].reshape(len(stack), *shape)
            offset += size
        return out

    def _as_tensor(self, params: np.ndarray) -> Any:
        vector = np.ascontiguousarray(params, dtype=np.float32)
        if vector.shape != (self.num_params,):
            raise ValueError(
                f"params has shape {vector.shape}; model '{self.model_id}' has "
                f"{self.num_params} parameters"
            )
        return self._torch.from_numpy(vector.copy()).to(self.device)

    def _load(self, params: np.ndarray) -> None:
        self._load_tensor(self._as_tensor(params))

    def _load_tensor(self, vector: Any, net: Any = None) -> None:
        module = self._net if net is None else net
        with self._torch.no_grad():
            self._torch.nn.utils.vector_to_parameters(vector, module.parameters())

    def _tensors(self, x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        """Features as ``(n, *input_shape)`` (images channels-first) and int64 labels."""
        x, y = self._check_data(x, y, np.float32)
        images = self._torch.from_numpy(x).reshape(-1, *self._layout)
        if len(self._layout) == 3:
            images = images.permute(0, 3, 1, 2)
        images = images.contiguous().to(self.device)
        return images, self._torch.from_numpy(y).to(self.device)


# --- the models --------------------------------------------------------------------------


def _module_shape(layout: tuple[int, ...]) -> tuple[int, ...]:
    """The module's per-sample input shape: ``(C, H, W)`` for ``(H, W, C)`` images."""
    if len(layout) == 3:
        height, width, channels = layout
        return (channels, height, width)
    return layout


def image_layout(model_id: str, input_dim: int, feature_shape: tuple[int, ...] | None) -> tuple:
    """``(H, W, C)`` for a CNN: the dataset's image shape, or a square grey image."""
    side = math.isqrt(input_dim)
    shape = tuple(feature_shape) if feature_shape else (side, side)
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or math.prod(shape) != input_dim or min(shape[:2]) < 4:
        raise ModelError(
            f"model '{model_id}' needs images: feature_shape={feature_shape!r} with "
            f"input_dim={input_dim} is not (H, W) or (H, W, C) with H, W >= 4"
        )
    return shape


def build_cnn(
    torch: Any,
    *,
    input_dim: int,
    num_classes: int,
    feature_shape: tuple[int, ...] | None,
    device: Any,
    vectorize: bool | None = None,
) -> TorchModel:
    """The LeNet-style ``cnn`` of the module docstring."""
    layout = image_layout("cnn", input_dim, feature_shape)
    height, width, channels = layout
    nn = torch.nn

    def factory() -> Any:
        return nn.Sequential(
            nn.Conv2d(channels, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (height // 4) * (width // 4), 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    return TorchModel(
        torch,
        "cnn",
        factory,
        input_dim=input_dim,
        num_classes=num_classes,
        layout=layout,
        device=device,
        vectorize=vectorize,
    )


def build_torch_mlp(
    torch: Any,
    *,
    input_dim: int,
    num_classes: int,
    hidden: int,
    device: Any,
    vectorize: bool | None = None,
) -> TorchModel:
    """``mlp`` in torch: ``relu(x W1 + b1) W2 + b2`` initialised as the numpy MLP.

    ``W1 ~ N(0, 2/F)`` (He), ``W2 ~ N(0, 1/H)``, zero biases, drawn by torch's
    generator under the seed (so the values differ from the numpy model's).
    """
    nn = torch.nn

    def factory() -> Any:
        net = nn.Sequential(nn.Linear(input_dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
        with torch.no_grad():
            net[0].weight.normal_(0.0, math.sqrt(2.0 / input_dim))
            net[2].weight.normal_(0.0, math.sqrt(1.0 / hidden))
            net[0].bias.zero_()
            net[2].bias.zero_()
        return net

    return TorchModel(
        torch,
        "mlp",
        factory,
        input_dim=input_dim,
        num_classes=num_classes,
        layout=(input_dim,),
        device=device,
        vectorize=vectorize,
    )


def build_user_model(
    torch: Any,
    model_id: str,
    *,
    input_dim: int,
    num_classes: int,
    feature_shape: tuple[int, ...] | None,
    device: Any,
    vectorize: bool | None = None,
) -> TorchModel:
    """Your own model, ``model_id = "package.module:build"`` (see the module docstring)."""
    try:
        build = resolve_callable(model_id, "a function build(input_shape, num_classes)")
    except ImportByNameError as exc:
        raise ModelError(f"model '{model_id}': {exc}") from None
    shape = tuple(feature_shape) if feature_shape else (input_dim,)
    if len(shape) == 2:  # grey images: one channel
        shape = (*shape, 1)
    if math.prod(shape) != input_dim or len(shape) not in (1, 3):
        shape = (input_dim,)
    input_shape = _module_shape(shape)

    def factory() -> Any:
        return build(input_shape, num_classes)

    return TorchModel(
        torch,
        model_id,
        factory,
        input_dim=input_dim,
        num_classes=num_classes,
        layout=shape,
        device=device,
        vectorize=vectorize,
    )


def _checked_module(torch: Any, model_id: str, factory: Factory) -> Any:
    """Call ``factory``; a one-line :class:`ModelError` if it raises or builds no module."""
    try:
        net = factory()
    except Exception as exc:
        raise ModelError(
            f"model '{model_id}': building it raised {exception_text(exc)} (velocity calls "
            "it as build(input_shape, num_classes))"
        ) from None
    if not isinstance(net, torch.nn.Module):
        raise ModelError(
            f"model '{model_id}': build(input_shape, num_classes) returned a "
            f"{type(net).__name__}, not a torch.nn.Module"
        )
    if not any(p.requires_grad for p in net.parameters()):
        raise ModelError(f"model '{model_id}': the module has no trainable parameters")
    return net


def _check_output(
    torch: Any,
    model_id: str,
    net: Any,
    input_shape: tuple[int, ...],
    num_classes: int,
    device: Any,
) -> int:
    """Two zero samples through ``net`` (in eval mode: no buffer changes): the output
    must be ``(2, num_classes)``. Returns the floats one sample's forward pass produces
    (the outputs of every module without children)."""
    probe = torch.zeros((2, *input_shape), device=device)
    produced = [0]

    def count(module: Any, inputs: Any, output: Any) -> None:
        tensors = output if isinstance(output, tuple | list) else (output,)
        produced[0] += sum(t.numel() for t in tensors if isinstance(t, torch.Tensor))

    hooks = [m.register_forward_hook(count) for m in net.modules() if not any(m.children())]
    net.eval()
    try:
        with torch.no_grad():
            out = net(probe)
    except Exception as exc:
        raise ModelError(
            f"model '{model_id}' cannot take samples of shape {input_shape} (the dataset's, "
            f"{'channels first' if len(input_shape) == 3 else 'flat'}): {exception_text(exc)}"
        ) from None
    finally:
        for hook in hooks:
            hook.remove()
    found = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if found != (2, num_classes):
        raise ModelError(
            f"model '{model_id}' returns {found} for 2 samples of shape {input_shape}; "
            f"expected logits of shape (2, {num_classes}): one output per class"
        )
    return max(1, produced[0] // 2)
