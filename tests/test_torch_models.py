"""The torch backend: cnn, mlp in torch, your own model, vmap vs loop, devices, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the optional `torch` extra is not installed")

from velocity.sim.data import load_dataset  # noqa: E402
from velocity.sim.models import ModelError, get_model  # noqa: E402
from velocity.sim.server import VelocityServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _images(sizes: list[int], side: int = 8, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.random((n, side * side), dtype=np.float32), rng.integers(0, 10, n)) for n in sizes]


def _cnn(vectorize: bool | None = None):
    params = {} if vectorize is None else {"vectorize": vectorize}
    return get_model("cnn", input_dim=64, num_classes=10, feature_shape=(8, 8), params=params)


# --- the flat-vector contract ---------------------------------------------------------


def test_cnn_parameters_are_one_seeded_float32_vector():
    model = _cnn()
    w = model.init_params(3)
    assert w.dtype == np.float32 and w.shape == (model.num_params,)
    np.testing.assert_array_equal(w, model.init_params(3))
    assert not np.array_equal(w, model.init_params(4))
    views = model.unflatten(w)
    assert [name for name, _ in model.shapes] == list(views)
    assert views["0.weight"].shape == (32, 1, 5, 5)  # conv 5x5, 1 -> 32 channels
    assert model.input_shape == (1, 8, 8)
    net = model.build_module(3)  # the module behind the vector, for code outside velocity
    flat = torch.nn.utils.parameters_to_vector(net.parameters()).detach().numpy()
    np.testing.assert_array_equal(flat, w)


def test_a_torch_model_turns_on_deterministic_algorithms_without_the_compiler():
    """The flag torch.use_deterministic_algorithms sets, without the import of
    torch._inductor (and _dynamo, sympy, Triton) that it does too: ~150 MB a process."""
    code = (
        "import sys, torch\n"
        "from velocity.sim.models import get_model\n"
        "assert not torch.are_deterministic_algorithms_enabled()\n"
        "get_model('cnn', input_dim=64, num_classes=10, feature_shape=(8, 8), device='cpu')\n"
        "print(torch.are_deterministic_algorithms_enabled(), 'torch._inductor' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_cnn_gradient_matches_central_differences(digits):
    model = _cnn()
    w = model.init_params(0).astype(np.float64)
    x, y = digits.x_train[:16], digits.y_train[:16]
    loss, grad = model.loss_and_grad(w, x, y, prox_mu=0.5, prox_center=np.zeros_like(w))
    rng = np.random.default_rng(0)
    for i in rng.choice(w.size, 6, replace=False):
        step = np.zeros_like(w)
        step[i] = 1e-2
        up = model.loss_and_grad(w + step, x, y, 0.5, np.zeros_like(w))[0]
        down = model.loss_and_grad(w - step, x, y, 0.5, np.zeros_like(w))[0]
        assert abs((up - down) / 2e-2 - grad[i]) < 2e-3 + 0.02 * abs(grad[i])
    assert np.isfinite(loss)


def test_the_cnn_learns_the_digits():
    server = VelocityServer("cnn", "digits", "FedAvg", rounds=4, clients=4, lr=0.05, seed=1)
    result = server.run()
    assert result.error is None
    accuracies = [r.accuracy for r in result.rounds]
    assert accuracies[-1] > 0.5 and accuracies[-1] > accuracies[0]  # chance: 10%


def test_a_run_pins_torch_threads_to_its_num_threads():
    server = VelocityServer(
        "mlp", "digits", "FedAvg", rounds=1, clients=2, model_params={"backend": "torch"}
    )
    before = torch.get_num_threads()
    try:
        assert server.run(num_threads=1).error is None
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_conv_clients_train_concurrently_with_the_same_bits():
    model = _cnn()  # on the CPU: one client at a time, so concurrently with 2 threads
    assert not model.vectorized
    clients = _images([37, 12, 25, 5, 18])
    w0 = model.init_params(2)
    x_test, y_test = _images([300], seed=9)[0]
    before = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 3):
            model.set_num_threads(threads)
            assert model.concurrent_clients == threads and torch.get_num_threads() == 1
            momenta = np.zeros((len(clients), model.num_params), dtype=np.float32)
            out = model.train_clients(
                w0, clients, epochs=1, batch_size=8, lr=0.1, seeds=[5, 6, 7, 8, 9],
                momentum=0.9, momenta=momenta,
            )  # fmt: skip
            runs.append((out, momenta, model.evaluate(out[0], x_test, y_test)))
    finally:
        torch.set_num_threads(before)
    for out, momenta, scores in runs[1:]:
        np.testing.assert_array_equal(out, runs[0][0])
        np.testing.assert_array_equal(momenta, runs[0][1])
        assert scores == runs[0][2]
    mlp = get_model("mlp", input_dim=64, num_classes=10, params={"backend": "torch"})
    try:
        mlp.set_num_threads(2)  # vectorized: the threads go to torch's intra-op pool
        assert mlp.concurrent_clients == 1 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# --- vectorized across clients == one client at a time --------------------------------


@pytest.mark.parametrize(
    "training",
    [
        {"epochs": 2},
        {"epochs": 1, "prox_mu": 0.3},
        {"epochs": 1, "local_steps": 5, "momentum": 0.9},
    ],
)
@pytest.mark.parametrize("model_id", ["cnn", "mlp"])
def test_vmap_matches_the_per_client_loop(model_id, training):
    params = {"backend": "torch"} if model_id == "mlp" else {}
    together = get_model(
        model_id, input_dim=64, num_classes=10, feature_shape=(8, 8),
        params={**params, "vectorize": True},
    )  # fmt: skip
    alone = get_model(
        model_id, input_dim=64, num_classes=10, feature_shape=(8, 8),
        params={**params, "vectorize": False},
    )  # fmt: skip
    assert together.vectorized and not alone.vectorized
    clients = _images([37, 12, 25, 5])  # ragged: epochs end at different steps
    w0 = together.init_params(0)
    runs = []
    for model in (together, alone):
        momenta = np.zeros((len(clients), model.num_params), dtype=np.float32)
        out = model.train_clients(
            w0, clients, batch_size=8, lr=0.1, seeds=[5, 6, 7, 8], momenta=momenta, **training
        )
        runs.append((out, momenta))
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(runs[0][1], runs[1][1], rtol=1e-4, atol=2e-6)
    assert not np.array_equal(runs[0][0][0], w0)


def test_a_client_trains_the_same_alone_or_with_others():
    model = _cnn(vectorize=True)
    clients = _images([20, 9, 14])
    w0 = model.init_params(1)
    together = model.train_clients(w0, clients, epochs=1, batch_size=4, lr=0.1, seeds=[1, 2, 3])
    for (x, y), seed, row in zip(clients, [1, 2, 3], together, strict=True):
        alone = model.train_local(w0, x, y, epochs=1, batch_size=4, lr=0.1, seed=seed)
        np.testing.assert_allclose(row, alone, rtol=1e-4, atol=2e-6)


def test_groups_bounded_by_memory_train_as_one(monkeypatch):
    from velocity.sim import torch_models

    fashion = get_model(
        "cnn", input_dim=784, num_classes=10, feature_shape=(28, 28, 1),
        params={"vectorize": True},
    )  # fmt: skip
    assert fashion.group_size(32) == 3  # 41 MB a client within 128 MiB
    model = _cnn(vectorize=True)
    clients = _images([21, 7, 13, 30, 4])
    w0 = model.init_params(2)
    training = {"epochs": 1, "batch_size": 8, "lr": 0.1, "seeds": [1, 2, 3, 4, 5]}
    whole = model.train_clients(w0, clients, **training)
    per_client = 4 * (3 * 8 * model.activation_floats + 4 * model.num_params)
    monkeypatch.setattr(torch_models, "VMAP_BYTES", 2 * per_client)
    assert model.group_size(8) == 2
    np.testing.assert_allclose(model.train_clients(w0, clients, **training), whole, atol=2e-6)


def test_whole_epochs_of_steps_equal_local_epochs():
    model = get_model("mlp", input_dim=64, num_classes=10, params={"backend": "torch"})
    (x, y) = _images([10])[0]  # ceil(10 / 4) = 3 steps per epoch
    w0 = model.init_params(0)
    by_epochs = model.train_local(w0, x, y, epochs=2, batch_size=4, lr=0.2, seed=5)
    by_steps = model.train_local(w0, x, y, epochs=1, batch_size=4, lr=0.2, seed=5, local_steps=6)
    np.testing.assert_allclose(by_epochs, by_steps, rtol=1e-6, atol=1e-7)


def test_the_default_rule_and_its_note():
    cnn = _cnn()
    assert not cnn.vectorized  # convolutional on the CPU: one client at a time
    assert "one at a time" in cnn.notes[0] and "vectorize = true" in cnn.notes[0]
    mlp = get_model("mlp", input_dim=64, num_classes=10, params={"backend": "torch"})
    assert mlp.vectorized and mlp.notes == []


# --- your own model, through the CLI as a user runs it --------------------------------

NETS = textwrap.dedent(
    """
    import torch
    from torch import nn

    def small(input_shape, num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, num_classes))

    def batchnorm(input_shape, num_classes):
        channels = input_shape[0]
        return nn.Sequential(
            nn.Conv2d(channels, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
            nn.Flatten(), nn.Linear(4 * 64, num_classes),
        )

    def raises(input_shape, num_classes):
        raise RuntimeError("no GPU drivers here")

    def not_a_module(input_shape, num_classes):
        return "a string"

    def wrong_width(input_shape, num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 3))

    def wrong_input(input_shape, num_classes):
        return nn.Sequential(nn.Flatten(), nn.Linear(100, num_classes))

    def frozen(input_shape, num_classes):
        net = nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
        for p in net.parameters():
            p.requires_grad_(False)
        return net
    """
)


@pytest.fixture
def nets(tmp_path: Path) -> Path:
    (tmp_path / "mynets.py").write_text(NETS)
    return tmp_path


def velocity(*args: str, cwd: Path, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "velocity", *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(cwd), **(env or {})},
    )  # fmt: skip


def test_your_own_model_runs_in_a_sweep(nets: Path):
    out = nets / "sweep"
    done = velocity(
        "sweep", "--model", "mynets:small", "--strategies", "FedAvg,FedMedian",
        "--rounds", "2", "--clients", "4", "--out", str(out), cwd=nets,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((out / "FedAvg" / "summary.json").read_text())
    assert summary["status"] == "done" and summary["final_accuracy"] > 0.2
    assert summary["notes"] == []  # no buffers, no convolution: vmapped
    assert json.loads((out / "FedAvg" / "config.json").read_text())["model_id"] == "mynets:small"


def test_a_model_with_batchnorm_falls_back_to_the_loop_and_says_so(nets: Path):
    out = nets / "run"
    done = velocity(
        "run", "--model", "mynets:batchnorm", "--strategy", "FedAvg", "--rounds", "2",
        "--clients", "3", "--out", str(out), cwd=nets,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(next(out.rglob("summary.json")).read_text())
    assert summary["status"] == "done"
    assert any("buffers" in note and "one at a time" in note for note in summary["notes"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nowhere:build"], "model 'nowhere:build': no module named 'nowhere'"),
        (["--model", "mynets:smal"], "has no attribute 'smal' (did you mean 'small'?)"),
        (["--model", "mynets:raises"], "building it raised RuntimeError: no GPU drivers here"),
        (["--model", "mynets:not_a_module"], "returned a str, not a torch.nn.Module"),
        (["--model", "mynets:wrong_width"], "returns (2, 3) for 2 samples of shape (1, 8, 8)"),
        (["--model", "mynets:wrong_input"], "cannot take samples of shape (1, 8, 8)"),
        (["--model", "mynets:frozen"], "the module has no trainable parameters"),
        (["--model", "cnn", "--dataset", "synthetic"], "model 'cnn' needs images"),
        (["--model", "logreg", "--device", "cuda"], "device 'cuda' is invalid for model"),
        (["--model", "demo/mnist-cnn"], "(did you mean 'cnn'?)"),
    ],
)
def test_bad_models_are_one_line_before_any_file(nets: Path, args: list[str], message: str):
    out = nets / "refused"
    done = velocity(
        "sweep", "--strategies", "FedAvg", "--rounds", "1", "--clients", "3",
        "--out", str(out), *args, cwd=nets,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused(nets: Path):
    out = nets / "refused"
    done = velocity(
        "sweep", "--strategies", "FedAvg", "--model", "cnn", "--device", "cuda",
        "--rounds", "1", "--clients", "3", "--out", str(out), cwd=nets,
    )  # fmt: skip
    assert done.returncode == 2
    assert "device 'cuda' is invalid here: torch sees no GPU" in done.stderr
    assert not out.exists()


def test_without_torch_a_torch_model_names_the_extra(nets: Path):
    code = (
        "import sys; sys.modules['torch'] = None; from velocity.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    out = nets / "refused"
    done = subprocess.run(
        [sys.executable, "-c", code, "sweep", "--strategies", "FedAvg", "--model", "cnn",
         "--rounds", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False, cwd=nets,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "model 'cnn' needs PyTorch: pip install 'velocity-fl[torch]'" in done.stderr
    assert "models available without it: logreg, mlp" in done.stderr
    assert not out.exists()


def test_bad_torch_model_params_are_refused():
    with pytest.raises(ModelError, match="backend='jax' is invalid"):
        get_model("mlp", input_dim=4, num_classes=3, params={"backend": "jax"})
    with pytest.raises(ModelError, match="vectorize='yes' is invalid: must be true or false"):
        get_model("cnn", input_dim=64, num_classes=10, params={"vectorize": "yes"})
    with pytest.raises(ModelError, match='vectorize applies to backend = "torch"'):
        get_model("mlp", input_dim=4, num_classes=3, params={"vectorize": True})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU on this machine")
def test_cuda_training_matches_the_cpu():  # pragma: no cover - needs a GPU
    cpu = get_model("mlp", input_dim=64, num_classes=10, params={"backend": "torch"}, device="cpu")
    gpu = get_model("mlp", input_dim=64, num_classes=10, params={"backend": "torch"}, device="cuda")
    clients = _images([30, 20])
    w0 = cpu.init_params(0)
    a = cpu.train_clients(w0, clients, epochs=1, batch_size=8, lr=0.1, seeds=[1, 2])
    b = gpu.train_clients(w0, clients, epochs=1, batch_size=8, lr=0.1, seeds=[1, 2])
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
