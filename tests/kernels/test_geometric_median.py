import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import velocity
from tests.kernels import reference
from tests.kernels.inputs import matrices, weights


@given(data=st.data())
def test_geometric_median_matches_weiszfeld_reference(data: st.DataObject) -> None:
    x = data.draw(matrices())
    w = data.draw(weights(x.shape[0]))
    got = velocity.aggregate("GeometricMedian:eps=1e-6,max_iter=200", x, w)
    want = reference.geometric_median(x, w, 1e-6, 200)
    scale = max(float(np.abs(x).max()), 1.0)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * scale)


def test_geometric_median_resists_an_outlier() -> None:
    x = np.zeros((5, 3), np.float32)
    x[:4] = 1.0
    x[4] = 1e6
    got = velocity.aggregate("GeometricMedian", x)
    np.testing.assert_allclose(got, np.ones(3), atol=1e-3)
