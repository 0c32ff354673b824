"""Scaling policies behind one interface, and the baselines HeteroScale is compared with.

A policy sees what an autoscaler could scrape (windowed fleet metrics and pool readiness) and
returns replica targets per role; :mod:`placer` turns them into instances per GPU type through the
operator's placement.
HeteroScale itself lives in :mod:`heteroscale_adapter` (it calls the operator's real policy),
the oracle in :mod:`oracle`. Pure: time arrives in the observation.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from heteroscale.api.enums import Role
from heteroscale.policy import PoolObservation
from heteroscale.simulate.service import Service

#: Kubernetes HPA defaults (pkg/controller/podautoscaler): 10% tolerance, 300 s scale-down
#: stabilization, scale-up limited to max(100%, 4 pods) per 15 s period.
HPA_TOLERANCE = 0.1
HPA_DOWN_STABILIZATION_S = 300.0
HPA_UP_PERCENT = 100
HPA_UP_PODS = 4
#: GPU-utilisation target for the HPA baseline: a common production setting.
HPA_UTILIZATION_TARGET = 0.8


class LatencyReading(Protocol):
    """The engines' latency histograms over the metric window, read at a quantile as Prometheus
    answers ``histogram_quantile``; None when nothing was observed."""

    def tbt(self, quantile: float) -> float | None: ...

    def ttft(self, quantile: float) -> float | None: ...

    def prefill_queue(self) -> tuple[float, float]:
        """Requests waiting for a prefill engine now, and prefills ended per second over the window."""
        ...


@dataclass(frozen=True)
class SimObservation:
    """What an autoscaler could read at ``now``: metrics averaged over the metric window."""

    now: float
    metric_age_s: float
    decode_tps: float
    #: False when no decode instance was ready during the window: no engine reported decode
    #: tokens/s, so Prometheus would answer with no series (decode_tps then reads 0 here).
    decode_series: bool
    #: Requests per second arriving at the gateway over the window (exists with no engine running).
    gateway_rps: float
    #: Prefill tokens computed per second, prefix-cache hits excluded.
    prefill_missed_tps: float
    #: Engine-reported GPU utilisation (share of time a kernel runs), mean over ready instances.
    prefill_utilization: float
    decode_utilization: float
    #: The engines' TBT and TTFT histograms over the window, read at a quantile.
    latency: LatencyReading
    prefill: PoolObservation
    decode: PoolObservation


class Policy(Protocol):
    name: str
    interval_s: float
    #: True when the policy scales P/D deployment groups (placed as pairs in one domain), False
    #: when it scales each pool on its own (each pool placed alone).
    paired: bool

    def initial(self) -> tuple[int, int]:
        """(prefill, decode) instances serving when the run starts."""

    def decide(self, obs: SimObservation) -> tuple[int, int]:
        """(prefill, decode) replica targets."""


@runtime_checkable
class Explained(Protocol):
    """A policy that names the reason of each decision, counted (HeteroScale's ``policy.decide``
    does; the baselines have no reason codes)."""

    reasons: Counter[str]


class Hpa:
    """The Kubernetes HPA replica calculation for one scale target, metrics from ready pods."""

    def __init__(self, min_replicas: int, max_replicas: int) -> None:
        self._min = min_replicas
        self._max = max_replicas
        self._recommendations: deque[tuple[float, int]] = deque()

    def desired(self, now: float, current: int, ready: int, usage_ratio: float) -> int:
        if ready == 0 or abs(usage_ratio - 1.0) <= HPA_TOLERANCE:
            recommendation = current
        else:
            recommendation = math.ceil(usage_ratio * ready)
        recommendation = min(max(recommendation, self._min), self._max)
        self._recommendations.append((now, recommendation))
        while self._recommendations[0][0] < now - HPA_DOWN_STABILIZATION_S:
            self._recommendations.popleft()
        if recommendation < current:
            # Scale down only to the highest recommendation in the stabilization window.
            recommendation = min(current, max(r for _, r in self._recommendations))
        up_limit = max(current * (100 + HPA_UP_PERCENT) // 100, current + HPA_UP_PODS)
        return min(recommendation, up_limit)


class HpaUtilization:
    """One HPA per pool on engine-reported GPU utilisation, each pool on its own, capped by its
    ``maxReplicas`` (2x the role's static peak) and the cluster.

    ``decode_level`` is the level decode utilisation saturates at: the model reports
    ``1 - e^(-mean batch)``, ~100% at any real load, but what an engine's counter reads under load
    is not measured here, and HPA's behaviour hinges on it (below target x (1 + tolerance) = 88%
    HPA never scales decode up; above it HPA scales decode to its cap), so the study sweeps it
    (``hpa-util@0.86`` ... ``hpa-util@1.0``)."""

    paired = False

    def __init__(
        self, service: Service, interval_s: float, initial: tuple[int, int], decode_level: float = 1.0
    ) -> None:
        self.name = "hpa-util" if decode_level == 1.0 else f"hpa-util@{decode_level:g}"
        self._level = decode_level
        self.interval_s = interval_s
        self._initial = initial
        self._prefill = Hpa(1, service.max_replicas[0])
        self._decode = Hpa(1, service.max_replicas[1])

    def initial(self) -> tuple[int, int]:
        return self._initial

    def decide(self, obs: SimObservation) -> tuple[int, int]:
        p = self._prefill.desired(
            obs.now, obs.prefill.replicas, obs.prefill.ready, obs.prefill_utilization / HPA_UTILIZATION_TARGET
        )
        d = self._decode.desired(
            obs.now,
            obs.decode.replicas,
            obs.decode.ready,
            self._level * obs.decode_utilization / HPA_UTILIZATION_TARGET,
        )
        return p, d


class IndependentPD:
    """One HPA per pool on its own throughput: KV-cache-missed prefill TPS and decode TPS
    (AverageValue targets from the stress test); nothing keeps the two pools at a ratio."""

    name = "independent"
    paired = False

    def __init__(self, service: Service, interval_s: float, initial: tuple[int, int]) -> None:
        self.interval_s = interval_s
        self._initial = initial
        self._prefill_target = service.prefill_target_tps[service.preferred_gpu(Role.PREFILL)]
        self._decode_target = service.decode_target_tps[service.preferred_gpu(Role.DECODE)]
        self._prefill = Hpa(1, service.max_replicas[0])
        self._decode = Hpa(1, service.max_replicas[1])

    def initial(self) -> tuple[int, int]:
        return self._initial

    def decide(self, obs: SimObservation) -> tuple[int, int]:
        p_ready, d_ready = max(obs.prefill.ready, 1), max(obs.decode.ready, 1)
        p = self._prefill.desired(
            obs.now, obs.prefill.replicas, obs.prefill.ready, obs.prefill_missed_tps / p_ready / self._prefill_target
        )
        d = self._decode.desired(
            obs.now, obs.decode.replicas, obs.decode.ready, obs.decode_tps / d_ready / self._decode_target
        )
        return p, d


class StaticPeak:
    """A fixed fleet sized for the run's peak with the stress-test targets (what one provisions
    by hand without an autoscaler)."""

    name = "static"
    paired = False

    def __init__(self, service: Service, interval_s: float) -> None:
        self.interval_s = interval_s
        self._counts = service.static_peak

    def initial(self) -> tuple[int, int]:
        return self._counts

    def decide(self, obs: SimObservation) -> tuple[int, int]:
        return self._counts
