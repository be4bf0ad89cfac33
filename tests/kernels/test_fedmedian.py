import numpy as np
from hypothesis import given

import velocity
from tests.kernels import reference
from tests.kernels.inputs import assert_close, matrices


@given(x=matrices())
def test_median_matches_numpy(x: np.ndarray) -> None:
    assert_close(velocity.aggregate("FedMedian", x), reference.median(x), x)


def test_median_ignores_one_huge_outlier() -> None:
    x = np.array([[1, 1], [2, 2], [3, 3], [1e30, -1e30]], np.float32)
    np.testing.assert_array_equal(velocity.aggregate("FedMedian", x), [2.5, 1.5])


def test_single_client_is_its_own_median() -> None:
    x = np.array([[4.0, -2.0, 7.5]], np.float32)
    np.testing.assert_array_equal(velocity.aggregate("FedMedian", x), x[0])
