"""Cold starts after scale-to-zero, read off a run: what the first request waited, and why (pure).

A *wake* is a stretch of steps with no decode instance held (starting or ready) followed by one
again. From the moment the lane reached zero until a prefill and a decode instance serve again,
every request that arrives waits: for the activation reading (the gateway's rate over the
metric window, read at the next policy tick), then for the engines' start-up, then for the
queue that built up meanwhile. The first such request's TTFT over its TTFT on an idle, running
service is the extra latency scale-to-zero costs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heteroscale.simulate.engine import RunResult
from heteroscale.simulate.latency import Latencies
from heteroscale.simulate.summary import slo_attainment


@dataclass(frozen=True)
class Wake:
    """One wake from zero of a lane."""

    #: When the lane's last decode instance went (start of the zero stretch), when instances were
    #: asked for again, and when a prefill and a decode instance served again (s).
    zero_s: float
    activated_s: float
    serving_s: float
    #: Requests (weighted: the users they stand for) that arrived from zero_s until serving_s,
    #: and the share of them that met both SLOs.
    waiting_requests: float
    waiting_slo_attainment: float | None
    #: The first of them: arrival, TTFT and TTFT on an idle running service (None if none came).
    first_arrival_s: float | None
    first_ttft_s: float | None
    first_unloaded_ttft_s: float | None

    @property
    def first_extra_s(self) -> float | None:
        """What the cold start added to the first waiting request's TTFT."""
        if self.first_ttft_s is None or self.first_unloaded_ttft_s is None:
            return None
        return self.first_ttft_s - self.first_unloaded_ttft_s


def wakes(run: RunResult) -> list[Wake]:
    """Every wake from zero in ``run`` that served again before the run ended."""
    traj, dt = run.traj, run.dt
    held = traj.decode_instances > 0
    serving = (traj.decode_ready > 0) & (traj.prefill_ready > 0)
    out = []
    s = 0
    while s < traj.steps:
        if held[s]:
            s += 1
            continue
        zero = s
        while s < traj.steps and not held[s]:
            s += 1
        if s == traj.steps:
            break
        activated = s
        ready = np.flatnonzero(serving[activated:])
        if ready.size == 0:
            break
        back = activated + int(ready[0])
        out.append(_wake(run, zero * dt, activated * dt, back * dt))
        s = back
    return out


def _wake(run: RunResult, zero_s: float, activated_s: float, serving_s: float) -> Wake:
    waiting = (run.arrival_s >= zero_s) & (run.arrival_s < serving_s) & (run.weight > 0)
    weight = run.weight[waiting]
    attained = None
    if weight.sum() > 0:
        latencies = Latencies(run.ttft_s[waiting], run.tbt_s[waiting], run.finished[waiting])
        attained = slo_attainment(latencies, run.ttft_limit_s[waiting], run.tbt_limit_s, weight)
    first = int(np.flatnonzero(waiting)[0]) if waiting.any() else None
    return Wake(
        zero_s=zero_s,
        activated_s=activated_s,
        serving_s=serving_s,
        waiting_requests=float(weight.sum()),
        waiting_slo_attainment=attained,
        first_arrival_s=float(run.arrival_s[first]) if first is not None else None,
        first_ttft_s=float(run.ttft_s[first]) if first is not None else None,
        first_unloaded_ttft_s=float(run.ttft_unloaded_s[first]) if first is not None else None,
    )
