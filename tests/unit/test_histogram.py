"""Prometheus's histogram_quantile in pure Python (the real server's answer is compared in
tests/integration/test_reader_prometheus.py); here the cases PromQL defines by rule."""

from __future__ import annotations

import numpy as np
import pytest

from heteroscale.metrics.histogram import VLLM_ITL_BUCKETS, cumulative_counts, histogram_quantile

BOUNDS = (0.1, 0.5, 1.0)


def test_a_value_on_a_bound_counts_in_that_bounds_bucket() -> None:
    counts = cumulative_counts(BOUNDS, np.array([0.1, 0.2, 1.0, 7.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert counts == [1.0, 3.0, 6.0, 10.0]


def test_the_rank_is_interpolated_linearly_inside_its_bucket() -> None:
    # Every token at 40 ms: all in vLLM's (25 ms, 50 ms] bucket, so p90 reads 25 + 0.9 x 25 ms.
    counts = cumulative_counts(VLLM_ITL_BUCKETS, np.array([0.04]), np.array([1000.0]))
    assert histogram_quantile(0.9, VLLM_ITL_BUCKETS, counts) == pytest.approx(0.0475)
    # The lowest bucket interpolates from 0.
    assert histogram_quantile(0.5, BOUNDS, [4.0, 4.0, 4.0, 4.0]) == pytest.approx(0.05)


def test_a_rank_in_the_inf_bucket_reads_the_highest_finite_bound() -> None:
    assert histogram_quantile(0.9, BOUNDS, [0.0, 0.0, 1.0, 10.0]) == 1.0


def test_no_observations_read_as_nothing() -> None:
    assert histogram_quantile(0.9, BOUNDS, [0.0, 0.0, 0.0, 0.0]) is None


@pytest.mark.parametrize("quantile", [0.0, 1.0, -0.1, 1.5])
def test_a_quantile_outside_0_1_is_refused(quantile: float) -> None:
    with pytest.raises(ValueError, match="quantile must be in"):
        histogram_quantile(quantile, BOUNDS, [1.0, 1.0, 1.0, 1.0])


def test_counts_must_end_with_the_inf_bucket() -> None:
    with pytest.raises(ValueError, match=r"\+Inf"):
        histogram_quantile(0.5, BOUNDS, [1.0, 1.0, 1.0])
