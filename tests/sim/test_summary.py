"""The SLO attainment's lower confidence bound (hours as the sampling units), checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from heteroscale.simulate.summary import BLOCK_S, Z_95, attainment_lower_bound


def _day(misses_per_hour: list[int], per_hour: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per_hour`` requests of weight 1 in each hour, the first ``misses`` of each missing."""
    ok = np.concatenate([np.arange(per_hour) >= m for m in misses_per_hour])
    arrival = np.concatenate([h * BLOCK_S + np.linspace(0, BLOCK_S - 1, per_hour) for h in range(len(misses_per_hour))])
    return ok, np.ones(ok.size), arrival


def test_misses_spread_evenly_over_the_hours_cost_nothing() -> None:
    ok, weight, arrival = _day([1, 1, 1, 1])
    assert attainment_lower_bound(ok, weight, arrival) == pytest.approx(0.99)


def test_misses_in_one_hour_lower_the_bound_by_its_standard_error() -> None:
    # A = 396/400 = 0.99; per hour M - A W = -3, 1, 1, 1; Var = 4/3 * 12 / 400^2 = 1e-4; SE = 0.01.
    ok, weight, arrival = _day([4, 0, 0, 0])
    assert attainment_lower_bound(ok, weight, arrival) == pytest.approx(0.99 - Z_95 * 0.01)


def test_one_hour_has_nothing_to_spread_over() -> None:
    ok, weight, arrival = _day([4])
    assert attainment_lower_bound(ok, weight, arrival) == pytest.approx(0.96)


def test_a_weight_counts_as_that_many_requests() -> None:
    ok, weight, arrival = _day([4, 0, 2])
    weight[0] = 3.0  # a missed request standing for three
    repeated = np.repeat(np.arange(ok.size), weight.astype(int))
    expected = attainment_lower_bound(ok[repeated], np.ones(repeated.size), arrival[repeated])
    assert attainment_lower_bound(ok, weight, arrival) == pytest.approx(expected)


@given(
    st.lists(st.tuples(st.booleans(), st.floats(0.01, 100), st.floats(0, 86_400)), min_size=1, max_size=200),
)
def test_the_bound_lies_between_zero_and_the_attainment(requests: list[tuple[bool, float, float]]) -> None:
    ok, weight, arrival = (np.array(column) for column in zip(*requests, strict=True))
    attained = weight[ok].sum() / weight.sum()
    assert 0.0 <= attainment_lower_bound(ok.astype(bool), weight, arrival) <= attained + 1e-12
