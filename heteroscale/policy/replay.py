"""Replay a decode-throughput time series through :func:`decide` (pure).

The pools are assumed to reach each decision's counts before the next row and the metric to be
fresh, so the replay shows the policy itself: its dead band, cooldowns, stabilization and ratio.
An absent reading (None) is passed on as a missing metric, to show the hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from heteroscale.api.enums import Reason
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import PolicyState
from heteroscale.policy.decide import decide
from heteroscale.policy.observation import Observation, PoolObservation
from heteroscale.policy.ratio import pair_for


@dataclass(frozen=True)
class SeriesPoint:
    t: float
    decode_tps: float | None
    tbt_seconds: float | None = None


@dataclass(frozen=True)
class ReplayRow:
    t: float
    decode_tps: float | None
    prefill: int
    decode: int
    reason: Reason
    message: str

    def as_dict(self) -> dict[str, object]:
        return {
            "t": self.t,
            "decode_tps": self.decode_tps,
            "prefill": self.prefill,
            "decode": self.decode,
            "reason": str(self.reason),
        }


def replay(spec: PDServingGroupSpec, series: Iterable[SeriesPoint]) -> list[ReplayRow]:
    """Decisions for each point, starting from both roles at their (ratio-repaired) minimum."""
    start = pair_for(spec, spec.decode.min_replicas)
    prefill, decode = start.prefill, start.decode
    state = PolicyState()
    preferred = spec.roles.decode.gpu_types[0]
    rows = []
    for point in series:
        observation = Observation(
            decode_tps=point.decode_tps,
            metric_age_seconds=0.0,
            prefill=PoolObservation(replicas=prefill, ready=prefill),
            decode=PoolObservation(replicas=decode, ready=decode, by_gpu_type={preferred: decode}),
            tbt_seconds=point.tbt_seconds,
        )
        decision = decide(spec, observation, state, point.t)
        state, prefill, decode = decision.state, decision.prefill, decision.decode
        rows.append(ReplayRow(point.t, point.decode_tps, prefill, decode, decision.reason, decision.message))
    return rows
