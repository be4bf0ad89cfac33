"""Hypothesis strategies for update matrices: random, with ties, all-equal rows, d = 1."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

_VALUES = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=32)
# Few distinct values make ties in medians, sorts and distances common.
_TIED_VALUES = st.sampled_from([-1.0, 0.0, 0.5, 2.0])


@st.composite
def matrices(draw: st.DrawFn, min_n: int = 1, max_n: int = 12, max_d: int = 16) -> np.ndarray:
    n = draw(st.integers(min_n, max_n))
    d = draw(st.integers(1, max_d))
    kind = draw(st.sampled_from(["random", "tied", "equal_rows"]))
    if kind == "equal_rows":
        row = draw(hnp.arrays(np.float32, d, elements=_VALUES))
        return np.tile(row, (n, 1))
    elements = _VALUES if kind == "random" else _TIED_VALUES
    return draw(hnp.arrays(np.float32, (n, d), elements=elements))


@st.composite
def weights(draw: st.DrawFn, n: int) -> np.ndarray:
    w = draw(hnp.arrays(np.float64, n, elements=st.integers(1, 500).map(float)))
    return w


def assert_close(actual: np.ndarray, expected: np.ndarray, scale: np.ndarray | None = None) -> None:
    """float32 kernels vs float64 references: relative to the inputs' magnitude."""
    ref = np.abs(scale).max() if scale is not None and scale.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * max(ref, 1.0))
