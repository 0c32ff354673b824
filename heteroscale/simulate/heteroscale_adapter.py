"""HeteroScale in the simulator: the operator's real ``policy.decide``, fed simulated metrics.

No second implementation: the spec is validated by the real API model, the policy state is
carried tick to tick exactly as the operator carries it in status, and the reason of every
decision is counted.
"""

from __future__ import annotations

from collections import Counter

from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import PolicyState
from heteroscale.policy import Observation, decide
from heteroscale.simulate.policies import SimObservation
from heteroscale.simulate.service import Service, spec_document


class HeteroScale:
    name = "heteroscale"
    paired = True

    def __init__(self, service: Service, interval_s: float, initial: tuple[int, int]) -> None:
        self.interval_s = interval_s
        self.spec = PDServingGroupSpec.model_validate(spec_document(service, interval_s))
        self._state = PolicyState()
        self._initial = initial
        self.reasons: Counter[str] = Counter()

    def initial(self) -> tuple[int, int]:
        return self._initial

    def decide(self, obs: SimObservation) -> tuple[int, int]:
        observation = Observation(
            decode_tps=obs.decode_tps,
            metric_age_seconds=obs.metric_age_s,
            prefill=obs.prefill,
            decode=obs.decode,
            tbt_seconds=obs.tbt_s,
        )
        decision = decide(self.spec, observation, self._state, obs.now)
        self._state = decision.state
        self.reasons[decision.reason.value] += 1
        return decision.prefill, decision.decode
