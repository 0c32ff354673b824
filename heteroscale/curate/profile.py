"""A service's request history turned into a workload the simulator can replay (pure, seeded).

What the engines export is a request counter and per-request prompt and generation length
histograms (:class:`~heteroscale.metrics.names.EngineMetrics`), so the history is the request
rate per step over the range and one length distribution of each kind for the whole range. The
workload keeps both: a base trace of one hour of requests at a constant rate, their lengths drawn
from the histograms (uniform within a bucket), replayed by the simulator as a superposition of
user populations whose number follows the measured rate step by step
(:class:`~heteroscale.simulate.workload.DayCurve`), peaking at the history's peak.

Limits, stated in the report: arrivals within a step are Poisson (bursts shorter than the step
are not in the history); prompt and generation lengths are drawn independently (the histograms
do not say how they go together) and do not change over the range; prefix-cache hits are not
read (every prompt token is computed: the upper bound of prefill work).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from heteroscale.simulate import workload as wl
from heteroscale.simulate.workload import FloatArray

#: Length of the base trace, in seconds.
TILE_S = 3600.0
#: Requests per second of the base trace (at most the history's peak): about the bundled Azure
#: conversation trace's 5.5 requests/s, whose 24-hour days the simulator is sized and timed for,
#: so a day's sampled requests stay near half a million whatever the service's rate.
SAMPLE_RATE = 5.0


@dataclass(frozen=True)
class LengthHistogram:
    """Token lengths as a Prometheus histogram keeps them: observations at or below each finite
    upper bound (ascending), and the total (the ``+Inf`` bucket)."""

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]
    total: float

    @classmethod
    def from_buckets(cls, buckets: dict[float, float], what: str) -> LengthHistogram:
        """From ``{le: cumulative count}`` (``le`` may be inf); ValueError naming ``what`` when it
        has no observations or is not a histogram."""
        if math.inf not in buckets:
            raise ValueError(f"{what}: no +Inf bucket, so this is not a Prometheus histogram")
        total = buckets[math.inf]
        finite = sorted(b for b in buckets if math.isfinite(b) and b >= 0)
        if not finite or not total > 0:
            raise ValueError(f"{what}: no requests observed in the range")
        # increase() is computed per bucket, so small dips below monotone can appear: keep it monotone.
        cumulative = np.minimum.accumulate(np.array([buckets[b] for b in finite] + [total])[::-1])[::-1]
        return cls(tuple(finite), tuple(float(c) for c in cumulative[:-1]), float(total))

    def shares(self) -> FloatArray:
        """Share of the observations in each bucket, the ``+Inf`` one last."""
        counts = np.diff(np.concatenate([[0.0], self.cumulative, [self.total]]))
        result: FloatArray = np.maximum(counts, 0.0) / self.total
        return result

    def beyond(self) -> float:
        """Share of the observations above the largest finite bound."""
        return max(self.total - (self.cumulative[-1] if self.cumulative else 0.0), 0.0) / self.total

    def sample(self, size: int, rng: np.random.Generator) -> FloatArray:
        """``size`` lengths (at least one token) by the inverse of the histogram's CDF, linear within
        each bucket; observations beyond the last finite bound are put at it (their size is unknown)."""
        edges = np.array([0.0, *self.bounds])
        cdf = np.concatenate([[0.0], np.array(self.cumulative) / self.total])
        u = rng.uniform(0.0, 1.0, size) * cdf[-1]
        # np.interp needs a strictly increasing x: an empty bucket collapses onto its upper edge,
        # where the next bucket starts.
        keep = np.concatenate([np.diff(cdf) > 0, [True]])
        lengths = np.interp(u, cdf[keep], edges[keep])
        beyond = rng.uniform(0.0, 1.0, size) < self.beyond()
        lengths = np.where(beyond, edges[-1], lengths)
        result: FloatArray = np.maximum(np.ceil(lengths), 1.0)
        return result


@dataclass(frozen=True)
class History:
    """A service's requests over a time range: the rate in each ``step_s`` from ``start_s`` (Unix
    seconds), and the length histograms of the whole range."""

    name: str
    start_s: float
    step_s: float
    rate: FloatArray
    prompt: LengthHistogram
    generation: LengthHistogram
    #: Steps without any sample (counted as no requests).
    missing_steps: int = 0

    @property
    def duration_s(self) -> float:
        return float(self.rate.size * self.step_s)

    @property
    def requests(self) -> float:
        return float(self.rate.sum() * self.step_s)


def to_workload(history: History, seed: int) -> wl.Workload:
    """The workload of ``history`` (see the module docstring); ValueError when it has no requests."""
    peak = float(history.rate.max()) if history.rate.size else 0.0
    if not peak > 0 or not np.isfinite(history.rate).all():
        raise ValueError(f"{history.name}: no requests in the range, so there is nothing to curate for")
    rng = np.random.default_rng(seed)
    rate = min(peak, SAMPLE_RATE)
    count = max(int(rng.poisson(rate * TILE_S)), 1)
    base = wl.Trace(
        name=history.name,
        arrival_s=np.sort(rng.uniform(0.0, TILE_S, count)),
        input_tokens=history.prompt.sample(count, rng),
        output_tokens=history.generation.sample(count, rng),
        cached_tokens=np.zeros(count),
        duration_s=TILE_S,
    )
    curve = wl.DayCurve(history.step_s, history.rate / peak)
    # Populations of the base trace's own rate that make the peak.
    populations = peak / (count / TILE_S)
    return wl.scale(base, hours=history.duration_s / 3600.0, fleet_scale=populations, curve=curve, seed=seed)
