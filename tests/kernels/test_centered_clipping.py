import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import velocity
from tests.kernels import reference
from tests.kernels.inputs import assert_close, matrices


@given(x=matrices(), tau=st.sampled_from([0.1, 1.0, 10.0, 1000.0]), iters=st.integers(1, 4))
def test_centered_clipping_matches_reference(x: np.ndarray, tau: float, iters: int) -> None:
    got = velocity.aggregate(f"CenteredClipping:tau={tau},iters={iters}", x)
    assert_close(got, reference.centered_clipping(x, tau, iters), x)


def test_large_tau_is_the_mean() -> None:
    x = np.random.default_rng(5).normal(size=(6, 4)).astype(np.float32)
    got = velocity.aggregate("CenteredClipping:tau=1e9,iters=1", x)
    assert_close(got, x.mean(axis=0, dtype=np.float64))
