import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import velocity
from tests.kernels import reference
from tests.kernels.inputs import assert_close, matrices, weights
from velocity import _core


@given(data=st.data())
def test_multi_krum_matches_reference(data: st.DataObject) -> None:
    x = data.draw(matrices(min_n=3))
    n = x.shape[0]
    f = data.draw(st.integers(0, (n - 3) // 2))
    m = data.draw(st.none() | st.integers(1, n))
    w = data.draw(weights(n))
    got, kept = _core.aggregate(_core.Strategy.multi_krum(f, m), x, w)
    want, want_kept = reference.multi_krum(x, w, f, m)
    assert kept == want_kept
    assert_close(got, want, x)


def test_m_larger_than_n_is_refused() -> None:
    with pytest.raises(ValueError, match="m"):
        velocity.aggregate("MultiKrum:f=1,m=9", np.ones((5, 2), np.float32))
