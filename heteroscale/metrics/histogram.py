"""Prometheus's ``histogram_quantile`` over classic buckets, and the latency buckets vLLM exposes
(pure).

The operator's latency guard reads TBT and TTFT as ``histogram_quantile`` over the engines'
bucket counters (:mod:`.queries`); the simulator reads its latency windows the same way, so its
guard fires where the operator's would. The answer is the bucket interpolation, not the true
quantile: a TBT just over a bucket bound reads as most of the next bucket.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

#: vLLM V1's bucket upper bounds (``vllm/v1/metrics/loggers.py``, vllm-project/vllm ~v0.12):
#: ``vllm:time_to_first_token_seconds``.
VLLM_TTFT_BUCKETS: tuple[float, ...] = (
    *(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75),
    *(1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0),
)
#: ``vllm:inter_token_latency_seconds`` (and the deprecated ``time_per_output_token_seconds``).
VLLM_ITL_BUCKETS: tuple[float, ...] = (
    *(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5),
    *(0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0),
)


def cumulative_counts(
    bounds: Sequence[float], values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]
) -> list[float]:
    """The ``_bucket`` counts (``le`` each bound, then ``+Inf``) of ``values`` observed ``weights``
    times each. A value equal to a bound counts in that bound's bucket, as ``le`` says."""
    index = np.searchsorted(np.asarray(bounds), values, side="left")
    per_bucket = np.bincount(index, weights=weights, minlength=len(bounds) + 1)
    return [float(c) for c in np.cumsum(per_bucket)]


def histogram_quantile(quantile: float, bounds: Sequence[float], cumulative: Sequence[float]) -> float | None:
    """What PromQL's ``histogram_quantile`` returns for ``bounds`` (ascending, finite) and their
    cumulative counts followed by the ``+Inf`` count; None where it returns NaN (no observations).

    Prometheus ``promql/quantile.go`` (``BucketQuantile``): the rank ``quantile x count`` falls in
    the first bucket whose count reaches it, and is interpolated linearly inside it (from 0 in the
    lowest bucket, unless its bound is not above 0: then that bound); a rank in the ``+Inf``
    bucket returns the highest finite bound."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    if len(cumulative) != len(bounds) + 1:
        raise ValueError(f"{len(bounds)} bounds need {len(bounds) + 1} counts (the last one +Inf's)")
    observations = cumulative[-1]
    if not observations > 0 or not math.isfinite(observations):
        return None
    rank = quantile * observations
    b = bisect.bisect_left(cumulative, rank, hi=len(bounds))
    if b == len(bounds):
        return float(bounds[-1])
    if b == 0 and bounds[0] <= 0:
        return float(bounds[0])
    start, count = 0.0, cumulative[b]
    if b > 0:
        start = bounds[b - 1]
        count -= cumulative[b - 1]
        rank -= cumulative[b - 1]
    return float(start + (bounds[b] - start) * (rank / count))
