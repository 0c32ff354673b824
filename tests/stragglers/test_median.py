"""The chunked exact median equals np.median of all values, bit for bit, however the values are cut."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heteroscale.stragglers.median import exact_medians

# Transfer-time-like values: many equal, some negative (clock skew), zeros of both signs.
values = st.lists(
    st.one_of(
        st.floats(min_value=-0.01, max_value=10.0, allow_nan=False, allow_subnormal=False),
        st.sampled_from([0.0, -0.0, 1e-3, 1e-3 + 1e-12, 2.5]),
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(
    groups=st.lists(values, min_size=1, max_size=3),
    cuts=st.lists(st.integers(0, 300), max_size=4),
    keep=st.sampled_from([1, 2, 5, 1 << 22]),
)
def test_equals_numpy_median(groups: list[list[float]], cuts: list[int], keep: int) -> None:
    arrays = [np.array(g) for g in groups]
    # Each chunk holds a slice of every group; some slices are empty.
    bounds = sorted(set(cuts))
    chunks = [{g: a[lo:hi] for g, a in enumerate(arrays)} for lo, hi in zip([0, *bounds], [*bounds, 300], strict=True)]
    medians = exact_medians(lambda i: chunks[i], len(chunks), keep=keep)
    assert medians == {g: float(np.median(a)) for g, a in enumerate(arrays)}


def test_a_group_without_values_has_no_median() -> None:
    chunks = [{0: np.array([3.0, 1.0]), 1: np.array([])}, {0: np.array([2.0])}]
    assert exact_medians(lambda i: chunks[i], 2) == {0: 2.0}


def test_keep_must_be_positive() -> None:
    with pytest.raises(ValueError, match="keep must be at least 1"):
        exact_medians(lambda i: {}, 1, keep=0)
