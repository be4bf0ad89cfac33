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


@given(
    x=matrices(min_n=20, max_n=70, max_d=40),
    beta=st.sampled_from([0.05, 0.1, 0.2, 0.3, 0.45]),
)
def test_both_selection_paths_match_reference(x: np.ndarray, beta: float) -> None:
    # k = ⌊βn⌋ spans 1..31: register streaming for k ≤ 12 (8 without AVX-512), the
    # sorting network above;
    # d up to 40 covers whole SIMD blocks and their remainders.
    got = velocity.aggregate(f"TrimmedMean:beta={beta}", x)
    assert_close(got, reference.trimmed_mean(x, beta), x)


@pytest.mark.parametrize("beta", [0.1, 0.4])
def test_huge_byzantine_tails_do_not_swallow_the_honest_values(beta: float) -> None:
    # The trimmed values never enter the sum, so 1e30 outliers cost no precision
    # in the small honest values (a "total minus tails" shortcut would return 0).
    rng = np.random.default_rng(3)
    n, d = 40, 3000
    x = rng.normal(scale=1e-3, size=(n, d)).astype(np.float32)
    k = int(beta * n)
    x[:k] = 1e30
    x[n - k :] = -1e30
    got = velocity.aggregate(f"TrimmedMean:beta={beta}", x)
    np.testing.assert_allclose(got, reference.trimmed_mean(x, beta), rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_value_in_a_trimmed_tail_is_still_refused(bad: float) -> None:
    x = np.random.default_rng(4).normal(size=(30, 5000)).astype(np.float32)
    x[7, 4099] = bad
    with pytest.raises(ValueError, match=r"row 7.*coordinate 4099"):
        velocity.aggregate("TrimmedMean:beta=0.2", x)


def test_beta_zero_is_the_mean() -> None:
    x = np.random.default_rng(1).normal(size=(9, 5)).astype(np.float32)
    assert_close(velocity.aggregate("TrimmedMean:beta=0", x), x.mean(axis=0, dtype=np.float64))


@pytest.mark.parametrize("beta", [-0.1, 0.5, 0.7])
def test_beta_out_of_range_is_refused(beta: float) -> None:
    with pytest.raises(ValueError, match="beta"):
        velocity.parse_strategy(f"TrimmedMean:beta={beta}")
