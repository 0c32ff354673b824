"""What a lane's engines' latency histograms show over the last metric window, read as the
operator's latency guard reads them (pure).

The operator reads TBT on the decode pods and TTFT on the prefill pods, each as
``histogram_quantile`` at the guard's quantile over the engine's buckets
(:mod:`heteroscale.metrics.queries`). The simulator's guard reads the same, over vLLM's buckets
(:mod:`heteroscale.metrics.histogram`):

* TTFT: the sampled requests whose prefill ended in the window, each with the prefill engine's
  TTFT from the latency model that scores the SLO (:func:`latency.prefilled_at`: FIFO position,
  own prefill time, M/G/k wait), counted with the weight of the requests each one stands for. The
  KV transfer and the first decode step come after the prefill engine's first token, so they are
  not in its histogram.
* TBT: each step's inter-token latency, counted once per token generated in the step (the fluid
  model gives a step's tokens one TBT).
* The prefill queue (``vllm:num_requests_waiting`` on the prefill engines at the reading, and
  the rate of the TTFT histogram's count over the window): the requests behind the prefill FIFO's
  position at the window's end, and those it passed in the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from heteroscale.metrics.histogram import VLLM_ITL_BUCKETS, VLLM_TTFT_BUCKETS, cumulative_counts, histogram_quantile
from heteroscale.simulate.latency import prefilled_at, sakasegawa_wait
from heteroscale.simulate.perfmodel import FloatArray
from heteroscale.simulate.pools import Offered
from heteroscale.simulate.recorder import Trajectories

#: How far before the window a request may have arrived and still end its prefill in it by its
#: own prefill time and M/G/k wait rather than by the queue's position (which has no limit).
LOOKBACK_S = 600.0


@dataclass(frozen=True)
class RequestStream:
    """The sampled requests (sorted by arrival) as the prefill engines see them."""

    arrival_s: FloatArray
    #: Each request's own prefill time on the reference prefill instance.
    prefill_s: FloatArray
    #: Requests each sampled request stands for.
    weight: FloatArray
    #: Mean and squared coefficient of variation of a request's prefill work (the M/G/k wait's).
    work_mean: float
    work_scv: float
    dt: float
    #: What the users offer, cumulated per step: the fluid arrivals the prefill FIFO counts.
    offered: Offered
    #: The longest own prefill time (the lookback's bound), computed once: every reading needs it.
    longest_prefill_s: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "longest_prefill_s", float(self.prefill_s.max()) if self.prefill_s.size else 0.0)

    def prefill_ttfts(self, traj: Trajectories, lo: int) -> tuple[FloatArray, FloatArray]:
        """TTFT on the prefill engines of the requests whose prefill ended in steps ``lo`` to the
        end of ``traj`` (the steps recorded so far), and their weights."""
        dt, end = self.dt, traj.steps
        # By the queue's position: whoever arrived after it stood at the window's start.
        since = float(traj.prefilled_position[lo - 1]) * dt if lo > 0 else 0.0
        # By own prefill time and wait: the earliest arrival step whose requests may still be busy.
        first = max(lo - round(LOOKBACK_S / dt), 0)
        waits = sakasegawa_wait(
            traj.prefill_busy[first:lo], traj.prefill_ready[first:lo], self.work_mean, self.work_scv
        )
        late = np.nonzero((np.arange(first, lo) + 1) * dt + self.longest_prefill_s + waits >= lo * dt)[0]
        if late.size:
            since = min(since, (first + int(late[0])) * dt)
        i0, i1 = np.searchsorted(self.arrival_s, [min(since, lo * dt), end * dt])
        arrival = self.arrival_s[i0:i1]
        done = prefilled_at(arrival, self.prefill_s[i0:i1], traj, dt, self.work_mean, self.work_scv)
        inside = (done >= lo * dt) & (done < end * dt)
        return done[inside] - arrival[inside], self.weight[i0:i1][inside]

    def requests_before(self, position: float) -> float:
        """Requests offered before FIFO ``position`` (in steps, as the fluid pools count it)."""
        return float(self.offered.at(np.array([position]))[Offered.REQUESTS, 0])

    def window(self, traj: Trajectories, lo: int, s: int) -> WindowLatency:
        """The histograms of steps ``lo`` to ``s`` (exclusive) of one lane."""
        return WindowLatency(self, traj, lo, s)


@dataclass(frozen=True)
class WindowLatency:
    """One lane's latency histograms over one metric window, read on demand (a policy without a
    latency guard never reads them)."""

    stream: RequestStream
    #: The lane's trajectories (steps from ``end`` on are not recorded yet).
    traj: Trajectories
    #: The window's first step, and the step of the reading (the window ends before it).
    lo: int
    end: int

    def tbt(self, quantile: float) -> float | None:
        """TBT at ``quantile`` on the decode engines; None when no token was generated."""
        tokens = self.traj.decode_tps[self.lo : self.end] * self.stream.dt
        counts = cumulative_counts(VLLM_ITL_BUCKETS, self.traj.tbt[self.lo : self.end], tokens)
        return histogram_quantile(quantile, VLLM_ITL_BUCKETS, counts)

    def ttft(self, quantile: float) -> float | None:
        """TTFT at ``quantile`` on the prefill engines; None when no prefill ended."""
        ttfts, weights = self.stream.prefill_ttfts(self.traj.head(self.end), self.lo)
        return histogram_quantile(quantile, VLLM_TTFT_BUCKETS, cumulative_counts(VLLM_TTFT_BUCKETS, ttfts, weights))

    def prefill_queue(self) -> tuple[float, float]:
        """Requests waiting for a prefill engine at the reading, and requests whose prefill ended
        per second over the window, from the fluid FIFO the engines run (not from the sampled
        requests: each stands for many, and a count of a few of them in flight would jump by a
        sample's weight where a real fleet's count of thousands moves smoothly)."""
        stream, at = self.stream, self.traj.prefilled_position
        done = stream.requests_before(float(at[self.end - 1])) if self.end > 0 else 0.0
        before = stream.requests_before(float(at[self.lo - 1])) if self.lo > 0 else 0.0
        seconds = (self.end - self.lo) * stream.dt
        return stream.requests_before(self.end) - done, (done - before) / seconds if seconds > 0 else 0.0
