"""Oracle lower bound: the fewest instances meeting the SLO at each step, with perfect foresight.

It knows every future arrival. Per step it needs
* prefill: the arriving prefill work (mean over ORACLE_SMOOTH_S) at ORACLE_PREFILL_BUSY of capacity;
* decode: the sequences that will be decoding (each from its arrival for ``output x TBT``
  at the largest batch that meets the TBT SLO), divided by that batch;
and it starts instances early by the start-up delay, so they are ready when the load comes.

It acts at the control interval (``intervalSeconds``) like every other policy, so each target
covers every step until the next decision: a lower bound of what any policy acting every
interval can do (an oracle acting every simulation step would bound a faster controller than
the ones compared, and would call placement three times as often). Pure and vectorised.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from heteroscale.api.enums import Role
from heteroscale.simulate.perfmodel import FloatArray, GpuPerf, InstanceModel
from heteroscale.simulate.policies import SimObservation
from heteroscale.simulate.service import Service, mean_context
from heteroscale.simulate.workload import Workload

#: Busy fraction the oracle runs prefill at: above it the M/G/k wait of a burst grows fast.
ORACLE_PREFILL_BUSY = 0.9
#: Prefill work is sized on its mean over this window: the FIFO absorbs shorter bursts within
#: the TTFT SLO, and sizing on single 5 s bins would make the "lower bound" chase noise.
ORACLE_SMOOTH_S = 15.0


class Oracle:
    name = "oracle"
    #: Its need is computed per pool, so it is placed per pool like the other baselines.
    paired = False

    def __init__(
        self, workload: Workload, service: Service, perf: dict[str, GpuPerf], dt: float, steps: int, interval_s: float
    ) -> None:
        self.interval_s = interval_s
        self._dt = dt
        prefill = InstanceModel(perf[service.preferred_gpu(Role.PREFILL)], service.model)
        decode = InstanceModel(perf[service.preferred_gpu(Role.DECODE)], service.model)
        trace = workload.trace
        work = prefill.prefill_seconds(trace.input_tokens - trace.cached_tokens, trace.cached_tokens)
        ctx = mean_context(workload)
        batch = decode.batch_at_tbt(service.slo.tbt_s, ctx)
        tbt = float(decode.decode_step_seconds(batch, ctx))
        arrivals, prefill_work = workload.offered(np.vstack([np.ones(trace.size), work]), dt, steps)
        k = max(round(ORACLE_SMOOTH_S / dt), 1)
        smooth = np.convolve(prefill_work / dt, np.ones(k) / k, mode="same")
        need_p = np.ceil(smooth / ORACLE_PREFILL_BUSY)

        # Sequences decoding at each step: arrivals of earlier steps still running. A request
        # arriving in step s decodes through the step its output (at the SLO batch's TBT) ends
        # in; output lengths do not depend on the arrival time in a superposition of populations.
        span = (trace.output_tokens * tbt // dt).astype(np.int64) + 1
        still = np.bincount(span)[::-1].cumsum()[::-1][1:] / trace.size  # P(span > m)
        active = np.convolve(arrivals, still)[:steps]
        need_d = np.ceil(active / batch)

        # A decision at step s holds until the next one, tick steps later, and what it starts is
        # ready a start-up delay after that: it must cover the need up to both.
        tick = max(round(interval_s / dt), 1)
        lead = math.ceil(max(prefill.startup_seconds, decode.startup_seconds) / dt) + tick
        self._prefill = _ahead_max(np.maximum(need_p, 1), lead)
        self._decode = _ahead_max(np.maximum(need_d, 1), lead)

    def initial(self) -> tuple[int, int]:
        return int(self._prefill[0]), int(self._decode[0])

    def decide(self, obs: SimObservation) -> tuple[int, int]:
        s = min(int(obs.now // self._dt), self._prefill.size - 1)
        return int(self._prefill[s]), int(self._decode[s])


def _ahead_max(need: FloatArray, lead: int) -> FloatArray:
    """max(need[s : s + lead]) for every s: what must be running or starting at s."""
    padded = np.concatenate([need, np.full(lead - 1, need[-1])])
    result: FloatArray = sliding_window_view(padded, lead).max(axis=1)
    return result
