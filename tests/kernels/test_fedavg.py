import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import velocity
from tests.kernels import reference
from tests.kernels.inputs import assert_close, matrices, weights


@given(data=st.data())
def test_fedavg_matches_weighted_mean(data: st.DataObject) -> None:
    x = data.draw(matrices())
    w = data.draw(weights(x.shape[0]))
    assert_close(velocity.aggregate("FedAvg", x, w), reference.fedavg(x, w), x)


@given(x=matrices())
def test_fedavg_without_weights_is_the_plain_mean(x: np.ndarray) -> None:
    assert_close(velocity.aggregate("fedavg", x), x.astype(np.float64).mean(axis=0), x)


def test_fedprox_aggregates_like_fedavg() -> None:
    x = np.random.default_rng(0).normal(size=(7, 33)).astype(np.float32)
    w = np.arange(1, 8, dtype=np.float64)
    np.testing.assert_array_equal(
        velocity.aggregate("FedProx:mu=0.5", x, w), velocity.aggregate("FedAvg", x, w)
    )


def test_zero_weights_pick_out_rows() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    np.testing.assert_array_equal(velocity.aggregate("FedAvg", x, [0, 1]), [3.0, 4.0])


@pytest.mark.parametrize("w", [[0, 0], [1, -1], [1, float("nan")]])
def test_bad_weights_are_refused(w: list[float]) -> None:
    with pytest.raises(ValueError, match="weight"):
        velocity.aggregate("FedAvg", np.ones((2, 3), np.float32), w)
