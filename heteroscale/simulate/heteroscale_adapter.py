"""HeteroScale in the simulator: the operator's real ``policy.decide``, fed simulated metrics.

No second implementation: the spec is validated by the real API model, the policy state is
carried tick to tick exactly as the operator carries it in status, and the reason of every
decision is counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import PolicyState
from heteroscale.policy import Observation, decide
from heteroscale.policy.ratio import pair_for
from heteroscale.simulate.policies import SimObservation
from heteroscale.simulate.service import Service, adaptive_ratio, spec_document
from heteroscale.simulate.specpatch import SpecPatch


class HeteroScale:
    """HeteroScale as the paper runs it (fixed ratio), or with ``adaptive`` its opt-in adaptive
    ratio (``ratio.adaptive``: prefill on its KV-missed throughput within a band declared around
    the stress test's ratio, at the stress test's prefill target). ``document`` replaces the spec
    the simulator derives from the service (a candidate of ``heteroscale curate``), under ``name``.
    ``patch`` (spec YAML in wire form, deep-merged into the spec, e.g. schedules and scaleToZero)
    makes a lane named after it."""

    paired = True

    def __init__(
        self,
        service: Service,
        interval_s: float,
        initial: tuple[int, int],
        *,
        adaptive: bool = False,
        document: dict[str, Any] | None = None,
        name: str | None = None,
        patch: SpecPatch | None = None,
        clock_s: float = 0.0,
    ) -> None:
        self.name = name or ("heteroscale-adaptive" if adaptive else "heteroscale")
        self.interval_s = interval_s
        # The policy's clock (schedules read it as Unix time): the run starts at clock_s, so a run
        # from midnight is 1 January 1970, 00:00 UTC.
        self._clock_s = clock_s
        if document is None:
            document = spec_document(service, interval_s)
        if patch is not None:
            self.name = patch.lane
            document = patch.applied(document)
        if adaptive:
            document["ratio"]["adaptive"] = adaptive_ratio(service)
        self.spec = PDServingGroupSpec.model_validate(document)
        self._state = PolicyState()
        # One deployment at the ratio that covers both roles' first need.
        prefill, decode = initial
        pair = pair_for(self.spec, max(decode, self.spec.ratio.decode_floor_for(prefill)))
        self._initial = (pair.prefill, pair.decode)
        self.reasons: Counter[str] = Counter()

    def initial(self) -> tuple[int, int]:
        return self._initial

    def decide(self, obs: SimObservation) -> tuple[int, int]:
        # The latency the operator's reader queries: TBT with a guard, TTFT and the prefill queue
        # when it has a TTFT limit.
        guard = self.spec.behavior.latency_guard
        tbt = ttft = queued = rps = None
        if guard is not None:
            tbt = obs.latency.tbt(guard.quantile)
            if guard.ttft_seconds is not None:
                ttft = obs.latency.ttft(guard.quantile)
                queued, rps = obs.latency.prefill_queue()
        observation = Observation(
            # No decode instance ready in the window: no engine reported, so no series.
            decode_tps=obs.decode_tps if obs.decode_series else None,
            metric_age_seconds=obs.metric_age_s,
            prefill=obs.prefill,
            decode=obs.decode,
            tbt_seconds=tbt,
            ttft_seconds=ttft,
            prefill_queued=queued,
            prefill_rps=rps,
            prefill_missed_tps=obs.prefill_missed_tps,
            # What the activation query reads: the gateway's request rate, engines or not.
            activation=obs.gateway_rps if self.spec.behavior.scale_to_zero is not None else None,
        )
        decision = decide(self.spec, observation, self._state, obs.now + self._clock_s)
        self._state = decision.state
        self.reasons[decision.reason.value] += 1
        return decision.prefill, decision.decode
