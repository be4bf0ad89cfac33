import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import velocity
from tests.kernels import reference
from tests.kernels.inputs import assert_close, matrices
from velocity import _core

# Random (untied) values: with ties, "the beta values closest to the median" is
# ambiguous and any choice is correct; the reference breaks ties by row order.
_RANDOM = st.floats(-100, 100, allow_nan=False, width=32)


@given(data=st.data())
def test_bulyan_matches_reference(data: st.DataObject) -> None:
    f = data.draw(st.integers(0, 2))
    n = data.draw(st.integers(4 * f + 3, 4 * f + 8))
    d = data.draw(st.integers(1, 12))
    x = np.asarray(
        data.draw(st.lists(st.lists(_RANDOM, min_size=d, max_size=d), min_size=n, max_size=n)),
        dtype=np.float32,
    )
    got, kept = _core.aggregate(_core.Strategy.bulyan(f, None), x, np.ones(n))
    want, want_kept = reference.bulyan(x, f, None)
    assert kept == want_kept
    assert_close(got, want, x)


@given(x=matrices(min_n=7, max_n=7))
def test_bulyan_on_ties_stays_within_the_selected_values(x: np.ndarray) -> None:
    got, kept = _core.aggregate(_core.Strategy.bulyan(1, None), x, np.ones(7))
    assert kept is not None and len(kept) == 5
    sel = x[kept]
    assert np.all(got >= sel.min(axis=0) - 1e-4) and np.all(got <= sel.max(axis=0) + 1e-4)


def test_bulyan_needs_4f_plus_3_clients() -> None:
    with pytest.raises(ValueError, match="4f") as info:
        velocity.aggregate("Bulyan:f=2", np.ones((10, 3), np.float32))
    assert "10" in str(info.value) and "11" in str(info.value)
