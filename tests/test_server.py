"""One real FL run on the embedded digits: it learns, attacks bite, robust rules resist."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import velocity
from velocity import _core
from velocity.sim.server import VelocityServer, run_one
from velocity.spec import RunSpec
from velocity.sweepdir.checkpoints import load_checkpoint


def run(strategy: str, *attacks: str, rounds: int = 20, **settings: object):
    server = VelocityServer(
        "logreg", "digits", strategy, rounds=rounds, clients=10, seed=42, **settings
    )
    for attack in attacks:
        name, _, params = attack.partition(":")
        kwargs = dict(p.split("=") for p in params.split(",")) if params else {}
        server.simulate_attack(name, **kwargs)
    result = server.run()
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def honest():
    return {s: run(s) for s in ("FedAvg", "FedMedian", "Krum")}


def test_honest_fedavg_learns_the_digits(honest) -> None:
    rounds = honest["FedAvg"].rounds
    assert len(rounds) == 20
    assert rounds[-1].accuracy >= 0.90
    assert rounds[-1].global_loss < rounds[0].global_loss


def test_one_noisy_client_breaks_fedavg_but_not_median_or_krum(honest) -> None:
    """Blanchard et al. 2017: a single Byzantine client controls the mean."""
    attacked = {s: run(s, "gaussian_noise:sigma=100,count=1") for s in honest}
    assert attacked["FedAvg"].rounds[-1].accuracy < 0.3
    for robust in ("FedMedian", "Krum"):
        assert attacked[robust].rounds[-1].accuracy > honest[robust].rounds[-1].accuracy - 0.05


def test_scaled_model_poisoning_drives_fedavg_far_below_its_honest_run(honest) -> None:
    attacked = run("FedAvg", "model_poisoning:fraction=0.3,intensity=1.0,scale=5")
    assert attacked.rounds[-1].accuracy < honest["FedAvg"].rounds[-1].accuracy - 0.3


def test_krum_reports_byzantine_detection() -> None:
    result = run("Krum:f=2", "gaussian_noise:sigma=100,count=2", rounds=3)
    det = result.rounds[-1].detection
    assert det == {
        "kept_honest": 1,
        "kept_byzantine": 0,
        "excluded_honest": 7,
        "excluded_byzantine": 2,
    }


def test_label_flipping_poisons_the_byzantine_clients_training() -> None:
    clean = run("FedAvg", rounds=5)
    flipped = run("FedAvg", "label_flipping:fraction=0.5", rounds=5)
    assert flipped.rounds[-1].accuracy < clean.rounds[-1].accuracy
    assert flipped.rounds[-1].attacked.count("label_flipping") == 5


def test_same_spec_gives_identical_rounds() -> None:
    a = run("TrimmedMean", "alie", rounds=4, partition="dirichlet", alpha=0.5, fraction_fit=0.6)
    b = run("TrimmedMean", "alie", rounds=4, partition="dirichlet", alpha=0.5, fraction_fit=0.6)
    assert [r.row() for r in a.rounds] == [r.row() for r in b.rounds]
    assert a.params is not None and b.params is not None
    assert a.params.tobytes() == b.params.tobytes()


def test_fraction_fit_samples_clients_each_round() -> None:
    result = run("FedAvg", rounds=3, fraction_fit=0.5)
    assert [r.num_clients for r in result.rounds] == [5, 5, 5]


def test_fedprox_runs_with_its_proximal_term() -> None:
    assert run("FedProx:mu=0.1", rounds=5).rounds[-1].accuracy > 0.8


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"model_id": "resnet9000"}, "resnet9000"),
        ({"dataset": "cifar-nope"}, "cifar-nope"),
        ({"partition": "dirichlet", "alpha": 0}, "alpha"),
        ({"clients": 5000}, "clients|samples"),
        ({"fraction_fit": 1.5}, "fraction_fit"),
        ({"fraction_fit": 0}, "fraction_fit"),
        ({"storage": "s3://bucket"}, "s3://"),
        ({"strategy": "Krum:f=3", "clients": 8}, "2f"),
        ({"strategy": "Krum:f=1", "clients": 10, "fraction_fit": 0.4}, "2f"),
    ],
)
def test_bad_settings_fail_before_any_work(settings: dict, match: str) -> None:
    args = {"model_id": "logreg", "dataset": "digits", "strategy": "FedAvg", **settings}
    with pytest.raises(ValueError, match=match):
        VelocityServer(**args)


def test_unknown_attack_is_refused_by_simulate_attack() -> None:
    server = VelocityServer(rounds=1)
    with pytest.raises(ValueError, match="did you mean 'sign_flipping'"):
        server.simulate_attack("sign_flippin")


def test_run_one_writes_the_run_files(tmp_path: Path) -> None:
    spec = RunSpec(
        name="fedavg_noise",
        strategy="FedAvg",
        rounds=3,
        clients=5,
        attacks=["gaussian_noise:sigma=1"],
        checkpoint_every=2,
    )
    seen: list[tuple[int, int]] = []
    summary = run_one(spec, tmp_path / "run", on_round=lambda r, n: seen.append((r, n)))
    run_dir = tmp_path / "run"
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert summary["status"] == "done" and summary["rounds_completed"] == 3
    assert RunSpec.model_validate(json.loads((run_dir / "config.json").read_text())) == spec
    rows = list(csv.DictReader((run_dir / "rounds.csv").open()))
    assert [int(r["round"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["global_loss"]) == pytest.approx(summary["final_loss"])
    assert "gaussian_noise" in rows[0]["attacked"]
    assert len(list(csv.DictReader((run_dir / "timings.csv").open()))) == 3
    assert json.loads((run_dir / "progress.json").read_text())["state"] == "done"
    assert json.loads((run_dir / "summary.json").read_text()) == json.loads(json.dumps(summary))
    final = load_checkpoint(run_dir / summary["checkpoint"])
    assert final.round == 3 and final.model_id == "logreg"
    assert load_checkpoint(run_dir / "checkpoint" / "round_2.npz").round == 2
    assert not list(run_dir.glob("**/*.tmp"))
    for shared in (
        run_dir / "summary.json",
        run_dir / "rounds.csv",
        run_dir / summary["checkpoint"],
    ):
        assert shared.stat().st_mode & 0o044 == 0o044, f"{shared} is not readable by others"


def test_fast_rounds_rewrite_progress_files_at_most_every_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rewriting a file atomically costs ~1.5 ms on ext4, more than a small round: a run
    # rewrites its growing CSVs by time, not by round, and completes them at the end.
    import velocity.sim.server as server_module
    import velocity.sweepdir.files as files_module  # every run file is written there

    writes: list[str] = []
    real_write = files_module.atomic_write_csv

    def counting_write(path: Path, *args: object) -> None:
        writes.append(Path(path).name)
        real_write(path, *args)

    monkeypatch.setattr(files_module, "atomic_write_csv", counting_write)
    monkeypatch.setattr(server_module, "PROGRESS_INTERVAL_S", 3600.0)
    spec = RunSpec(name="fast", strategy="FedAvg", rounds=12, clients=4)
    summary = run_one(spec, tmp_path / "run")
    assert summary["status"] == "done"
    assert writes.count("rounds.csv") == 2  # after round 1, then the complete file at the end
    rows = list(csv.DictReader((tmp_path / "run" / "rounds.csv").open()))
    assert [int(r["round"]) for r in rows] == list(range(1, 13))
    assert len(list(csv.DictReader((tmp_path / "run" / "timings.csv").open()))) == 12


def test_checkpoint_reproduces_the_final_accuracy(tmp_path: Path) -> None:
    server = VelocityServer(rounds=2, clients=4, storage=f"local://{tmp_path / 'ck'}")
    result = server.run()
    ck = load_checkpoint(tmp_path / "ck" / "final.npz")
    np.testing.assert_array_equal(ck.params, result.params)
    _, acc = server.model.evaluate(ck.params, server.dataset.x_test, server.dataset.y_test)
    assert acc == pytest.approx(result.rounds[-1].accuracy)


def test_a_diverging_run_is_recorded_as_diverged(tmp_path: Path) -> None:
    spec = RunSpec(name="diverge", strategy="FedAvg", rounds=5, clients=5, lr=1e38)
    summary = run_one(spec, tmp_path / "d")
    assert summary["status"] == "diverged"
    assert "round" in summary["error"]
    assert json.loads((tmp_path / "d" / "summary.json").read_text())["status"] == "diverged"
    assert json.loads((tmp_path / "d" / "progress.json").read_text())["state"] == "diverged"


def test_an_attack_that_blows_up_the_mean_is_a_divergence_not_a_failure(tmp_path: Path) -> None:
    """IPM with a huge epsilon drives FedAvg's MLP to an infinite test loss: it broke."""
    spec = RunSpec(
        name="ipm",
        strategy="FedAvg",
        model_id="mlp",
        attacks=["ipm:epsilon=1000"],
        rounds=15,
        clients=10,
    )
    summary = run_one(spec, tmp_path / "ipm")
    assert summary["status"] == "diverged", summary["error"]
    assert "diverged" in summary["error"]
    assert 0 < summary["rounds_completed"] < 15
    median = RunSpec.model_validate({**spec.to_json(), "strategy": "FedMedian", "name": "m"})
    robust = run_one(median, tmp_path / "m")
    assert robust["status"] == "done"


def test_summary_records_the_test_set_size(tmp_path: Path) -> None:
    summary = run_one(RunSpec(name="t", strategy="FedAvg", rounds=1, clients=5), tmp_path / "t")
    server = VelocityServer(rounds=1, clients=5)
    assert summary["test_samples"] == server.dataset.y_test.size > 0


def test_non_finite_aggregation_input_raises_the_value_error_subclass() -> None:
    updates = np.ones((3, 4), dtype=np.float32)
    updates[1, 2] = np.inf
    with pytest.raises(_core.NonFiniteError, match=r"row 1 .* coordinate 2"):
        velocity.aggregate("FedMedian", updates)
    assert issubclass(_core.NonFiniteError, ValueError)


def test_the_first_diverging_client_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    server = VelocityServer(rounds=2, clients=5, seed=42)
    train_clients = server.model.train_clients

    def clients_2_to_4_diverge(params: np.ndarray, clients: list, **kwargs: object) -> np.ndarray:
        new = train_clients(params, clients, **kwargs)
        new[2:, 0] = np.nan
        return new

    monkeypatch.setattr(server.model, "train_clients", clients_2_to_4_diverge)
    result = server.run()
    assert result.error == (
        "round 1: client 2's local training diverged (non-finite parameters); "
        f"try a smaller lr than {server.spec.lr}"
    )
    assert result.rounds == []
