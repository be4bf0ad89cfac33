import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import velocity
from tests.kernels import reference
from tests.kernels.inputs import assert_close, matrices
from velocity import _core


@given(data=st.data())
def test_krum_matches_reference(data: st.DataObject) -> None:
    x = data.draw(matrices(min_n=3))
    f = data.draw(st.integers(0, (x.shape[0] - 3) // 2))
    got, kept = _core.aggregate(_core.Strategy.krum(f), x, np.ones(x.shape[0]))
    want, want_kept = reference.krum(x, f)
    assert kept == want_kept
    assert_close(got, want, x)


def test_krum_excludes_an_outlier() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 20)).astype(np.float32)
    x[4] += 1000
    _, kept = _core.aggregate(_core.Strategy.krum(2), x, np.ones(7))
    assert kept is not None and 4 not in kept


def test_krum_needs_2f_plus_3_clients() -> None:
    with pytest.raises(ValueError, match=r"2f\s*\+\s*3|2f\+3") as info:
        velocity.aggregate("Krum:f=2", np.ones((6, 3), np.float32))
    assert "6" in str(info.value) and "7" in str(info.value)
