import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import velocity
from tests.kernels import reference
from tests.kernels.inputs import assert_close, matrices


@given(x=matrices(), beta=st.sampled_from([0.0, 0.1, 0.2, 0.3, 0.45]))
def test_trimmed_mean_matches_reference(x: np.ndarray, beta: float) -> None:
    got = velocity.aggregate(f"TrimmedMean:beta={beta}", x)
    assert_close(got, reference.trimmed_mean(x, beta), x)


def test_beta_zero_is_the_mean() -> None:
    x = np.random.default_rng(1).normal(size=(9, 5)).astype(np.float32)
    assert_close(velocity.aggregate("TrimmedMean:beta=0", x), x.mean(axis=0, dtype=np.float64))


@pytest.mark.parametrize("beta", [-0.1, 0.5, 0.7])
def test_beta_out_of_range_is_refused(beta: float) -> None:
    with pytest.raises(ValueError, match="beta"):
        velocity.parse_strategy(f"TrimmedMean:beta={beta}")
