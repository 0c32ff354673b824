"""The served service: SLOs, how each role is deployed, and the per-service settings every policy
shares (P/D ratio, per-instance targets, peaks, bounds, colocation scope). Pure.

:mod:`heteroscale.simulate.stresstest` finds these settings from the workload, as the paper's
stress test does; this module holds them and the rules that do not need a simulation:

* per-instance targets: TARGET_BUSY of the throughput an instance sustains at the SLO within its
  P/D pair (:func:`pair_targets`): prefill its own; decode the lower of its own and what its share
  of prefill at the ratio feeds it. A decode target above that feed could never be reached, so a
  prefill-bound service's decode-TPS reading would stay under target while prefill queues;
* static peak: each role's instances at its target over the busiest metric window;
* colocation scope: the paper pins a deployment group's P and D in one domain (S2) and relaxes
  "services without strict affinity" to cluster scope. A service whose smallest deployment group
  at its ratio (one decode instance and its prefill share) does not fit one S2 cannot have strict
  affinity, so it gets cluster scope (``topology.colocate: ""``); every other service is pinned
  to S2. Decided from the numbers, whatever the trace;
* the quantile ratio rule (``--ratio-rule quantile``, the simulator's former default, kept as an
  option): the ``slo.attainment`` quantile, over the requests, of the prefill-to-decode need of
  their metric window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from heteroscale.api.enums import Role
from heteroscale.api.spec import LatencyGuard
from heteroscale.simulate.deployment import Deployment
from heteroscale.simulate.fabric import S2, TIERS, prefill_beside_one_decode, smallest_group_fits_s2
from heteroscale.simulate.perfmodel import InstanceModel, ModelSpec, Startup, kv_transfer_seconds
from heteroscale.simulate.workload import Workload

#: Per-instance targets are this share of the throughput that still meets the SLO (decode: the
#: largest batch within the TBT SLO; prefill: full compute): the headroom a stress test leaves for
#: bursts within one control interval and for the start-up delay. Without it a saturated decode
#: pool's throughput sits inside the tolerance band of its target and overload goes unseen.
TARGET_BUSY = 0.8
#: The band an adaptive ratio (``ratio.adaptive``) declares around the stress test's ratio: half
#: to twice it.
ADAPTIVE_BAND = (0.5, 2.0)
#: maxReplicas for every policy, as a multiple of the static peak fleet: room to over-provision
#: without letting a runaway signal take the whole cluster.
MAX_REPLICAS_FACTOR = 2.0
#: Prometheus rate window of the metrics every policy reads (spec.metric.window's default). It
#: also sizes static provisioning (the peak of the offered load over such a window).
METRIC_WINDOW_S = 60.0
#: The quantile the latency guard reads TBT and TTFT at (spec.behavior.latencyGuard.quantile's default).
GUARD_QUANTILE: float = LatencyGuard.model_fields["quantile"].default
#: Largest denominator of the P/D ratio (spec.ratio takes small integers).
MAX_RATIO_DENOMINATOR = 8
#: The production range of P/D ratios the HeteroScale paper reports (1P:5D to 9P:1D); a ratio
#: outside it is reported with a warning.
PAPER_RATIO_RANGE = (1 / 5, 9.0)


@dataclass(frozen=True)
class Slo:
    #: TBT (per-output-token time) limit: spec.behavior.latencyGuard.sloSeconds' example value.
    tbt_s: float = 0.05
    #: TTFT limit = max(ttft_floor_s, ttft_scale x the request's unloaded TTFT), the DistServe-style
    #: "SLO scale", because a fixed limit cannot fit both 100-token and 100k-token prompts.
    ttft_floor_s: float = 2.0
    ttft_scale: float = 3.0
    #: Share of requests that must meet both limits (the issue's 99% target).
    attainment: float = 0.99


@dataclass(frozen=True)
class RatioPoint:
    """One P/D ratio of the stress test: the fewest instances at that ratio that meet the SLO at
    the stress load, and the goodput per GPU they give."""

    ratio: tuple[int, int]
    prefill: int
    decode: int
    #: Output tokens per second per GPU served at the SLO; 0 when no fleet tried met it.
    goodput_per_gpu: float
    slo_attainment: float


@dataclass(frozen=True)
class Service:
    model: ModelSpec
    slo: Slo
    gpu_types: dict[Role, list[str]]
    gpus_per_instance: int
    #: How every GPU type of every role is deployed (its instance model and layout).
    deployments: dict[Role, dict[str, Deployment]]
    ratio: tuple[int, int]  # (prefill, decode)
    #: Decode tokens/s per instance at TARGET_BUSY of the throughput within the TBT SLO, per GPU type.
    decode_target_tps: dict[str, float]
    #: KV-missed prefill tokens/s per instance at TARGET_BUSY, per GPU type.
    prefill_target_tps: dict[str, float]
    static_peak: tuple[int, int]
    max_replicas: tuple[int, int]
    #: The spec's ``topology.colocate``: the tier a deployment group's P and D share, or "" for
    #: cluster scope (the smallest group does not fit one S2).
    colocate: str
    startup: Startup = field(default_factory=Startup)
    #: The latency guard's TTFT limit (``ttftSeconds``): the workload's requests' TTFT limits at the
    #: quantile the guard reads (:data:`GUARD_QUANTILE`). When every request meets its limit, the
    #: requests' TTFT at any quantile is at most their limits' at that quantile.
    ttft_slo_s: float = 0.0
    #: The stress test's goodput per GPU at each ratio tried (empty under the quantile rule).
    ratio_curve: tuple[RatioPoint, ...] = field(default=())

    def preferred_gpu(self, role: Role) -> str:
        return self.gpu_types[role][0]

    def instance(self, role: Role, gpu: str | None = None) -> InstanceModel:
        """The instance model of ``gpu`` (default: the role's preferred type) in ``role``."""
        return self.deployments[role][gpu or self.preferred_gpu(role)].instance

    @property
    def kv_rdma_gbps(self) -> float:
        """P->D KV transfers run at the slower end's RDMA bandwidth (preferred types)."""
        return kv_rdma_gbps(
            self.deployments[Role.PREFILL][self.preferred_gpu(Role.PREFILL)],
            self.deployments[Role.DECODE][self.preferred_gpu(Role.DECODE)],
        )

    @property
    def instance_startup_s(self) -> float:
        """Start-up delay of the preferred decode type."""
        return self.instance(Role.DECODE).startup_seconds

    @property
    def ratio_warning(self) -> str:
        """Why the ratio deserves a second look, or "" when it sits in the paper's range."""
        p, d = self.ratio
        lo, hi = PAPER_RATIO_RANGE
        if lo <= p / d <= hi:
            return ""
        return (
            f"P/D ratio {p}:{d} is outside the 1:5 to 9:1 range the HeteroScale paper reports from "
            "production; check the GPU types and instance sizes of each role"
        )


def mean_context(w: Workload) -> float:
    """Mean KV length of a decoding sequence: its prompt plus half its output."""
    return float(np.mean(w.trace.input_tokens + w.trace.output_tokens / 2))


@dataclass(frozen=True)
class Needs:
    """Instances each metric window of the workload needs, on each role's preferred type at its
    target, and the requests in each window."""

    prefill: np.ndarray
    decode: np.ndarray
    requests: np.ndarray


def capacity_targets(
    workload: Workload, deployments: dict[Role, dict[str, Deployment]], slo: Slo
) -> tuple[dict[str, float], dict[str, float]]:
    """TARGET_BUSY of each GPU type's own throughput at the SLO, per role: (decode tokens/s,
    KV-missed prefill tokens/s) per instance."""
    ctx = mean_context(workload)
    decode: dict[str, float] = {}
    for gpu, dep in deployments[Role.DECODE].items():
        slo_tps = dep.instance.decode_slo_tps(slo.tbt_s, ctx)
        if slo_tps <= 0:
            raise ValueError(f"{gpu}: even one sequence misses the TBT SLO of {slo.tbt_s}s")
        decode[gpu] = TARGET_BUSY * slo_tps
    trace = workload.trace
    new = trace.input_tokens - trace.cached_tokens
    prefill = {
        gpu: TARGET_BUSY * float(np.sum(new)) / float(np.sum(dep.instance.prefill_seconds(new, trace.cached_tokens)))
        for gpu, dep in deployments[Role.PREFILL].items()
    }
    return decode, prefill


def pair_targets(
    workload: Workload,
    prefill: Deployment,
    ratio: tuple[int, int],
    capacity: tuple[dict[str, float], dict[str, float]],
) -> tuple[dict[str, float], dict[str, float]]:
    """Targets (decode, prefill per GPU type) within a P/D pair at ``ratio``: a decode instance's
    target is capped at TARGET_BUSY of the decode tokens/s its ``ratio`` share of preferred-type
    prefill instances feeds it (their KV-missed tokens/s over the workload's KV-missed prompt
    tokens per output token)."""
    trace = workload.trace
    missed_per_output = float(np.sum(trace.input_tokens - trace.cached_tokens) / np.sum(trace.output_tokens))
    fed = TARGET_BUSY * prefill.capacity * ratio[0] / ratio[1] / missed_per_output
    decode, prefill_target = capacity
    return {gpu: min(target, fed) for gpu, target in decode.items()}, dict(prefill_target)


def window_needs(workload: Workload, prefill: Deployment, prefill_target: float, decode_target: float) -> Needs:
    """Instances each metric window needs at the per-instance targets: decode tokens over the decode
    target; prefill work in instance-seconds over the share of an instance the prefill target is."""
    trace = workload.trace
    new = trace.input_tokens - trace.cached_tokens
    tokens, work, requests = workload.offered(
        np.vstack(
            [trace.output_tokens, prefill.instance.prefill_seconds(new, trace.cached_tokens), np.ones(trace.size)]
        ),
        METRIC_WINDOW_S,
    )
    busy = prefill_target / prefill.capacity
    return Needs(work / METRIC_WINDOW_S / busy, tokens / METRIC_WINDOW_S / decode_target, requests)


def quantile_ratio(needs: Needs, attainment: float) -> tuple[int, int]:
    """The former rule: the ``attainment`` quantile, over the requests, of the prefill-to-decode
    need of their metric window, rounded up to p:d."""
    busy = needs.decode > 0
    needed = float(
        np.quantile(
            needs.prefill[busy] / needs.decode[busy], attainment, weights=needs.requests[busy], method="inverted_cdf"
        )
    )
    return ratio_at_least(needed)


def ratio_at_least(needed: float) -> tuple[int, int]:
    """The smallest ratio p:d (d <= MAX_RATIO_DENOMINATOR, p >= 1) not below ``needed``."""
    candidates = [(max(math.ceil(needed * d - 1e-9), 1), d) for d in range(1, MAX_RATIO_DENOMINATOR + 1)]
    return min(candidates, key=lambda pd: (pd[0] / pd[1], pd[1]))


def assemble(
    workload: Workload,
    *,
    model: ModelSpec,
    slo: Slo,
    gpu_types: dict[Role, list[str]],
    gpus_per_instance: int,
    deployments: dict[Role, dict[str, Deployment]],
    ratio: tuple[int, int],
    targets: tuple[dict[str, float], dict[str, float]],
    startup: Startup,
    ratio_curve: tuple[RatioPoint, ...] = (),
) -> Service:
    """The service at ``ratio`` with per-instance ``targets`` (decode, prefill per GPU type): static
    peaks, bounds and colocation scope from the data."""
    prefill_gpu, decode_gpu = gpu_types[Role.PREFILL][0], gpu_types[Role.DECODE][0]
    decode_target, prefill_target = pair_targets(workload, deployments[Role.PREFILL][prefill_gpu], ratio, targets)
    needs = window_needs(
        workload, deployments[Role.PREFILL][prefill_gpu], prefill_target[prefill_gpu], decode_target[decode_gpu]
    )
    decode_peak = max(math.ceil(needs.decode.max()), 1)
    prefill_peak = max(math.ceil(needs.prefill.max()), 1)
    unloaded = unloaded_ttfts(workload, deployments[Role.PREFILL][prefill_gpu], deployments[Role.DECODE][decode_gpu])
    return Service(
        model=model,
        slo=slo,
        gpu_types=gpu_types,
        gpus_per_instance=gpus_per_instance,
        deployments=deployments,
        ratio=ratio,
        decode_target_tps=decode_target,
        prefill_target_tps=prefill_target,
        static_peak=(prefill_peak, decode_peak),
        max_replicas=(
            math.ceil(prefill_peak * MAX_REPLICAS_FACTOR),
            math.ceil(decode_peak * MAX_REPLICAS_FACTOR),
        ),
        colocate=S2 if smallest_group_fits_s2(ratio, gpus_per_instance) else "",
        startup=startup,
        ratio_curve=ratio_curve,
        ttft_slo_s=float(np.quantile(np.maximum(slo.ttft_floor_s, slo.ttft_scale * unloaded), GUARD_QUANTILE)),
    )


def kv_rdma_gbps(prefill: Deployment, decode: Deployment) -> float:
    """P->D KV transfers run at the slower end's RDMA bandwidth."""
    return min(prefill.instance.gpu.rdma_gbps, decode.instance.gpu.rdma_gbps)


def unloaded_ttfts(workload: Workload, prefill: Deployment, decode: Deployment) -> np.ndarray:
    """Each trace request's TTFT on an idle service: its own prefill, the KV transfer inside an S2
    and the first decode step."""
    trace = workload.trace
    own = prefill.instance.prefill_latency(trace.input_tokens - trace.cached_tokens, trace.cached_tokens)
    kv = kv_transfer_seconds(prefill.instance.model, kv_rdma_gbps(prefill, decode), trace.input_tokens, 0.0)
    first: np.ndarray = own + kv + float(decode.instance.decode_step_seconds(1.0, mean_context(workload)))
    return first


def adaptive_ratio(service: Service, busy: float = TARGET_BUSY) -> dict[str, Any]:
    """The spec's ``ratio.adaptive`` for ``service``: prefill on its KV-missed throughput at
    ``busy`` of what its preferred GPU type sustains, within :data:`ADAPTIVE_BAND` of the stress
    test's ratio. A service whose groups are pinned to an S2 gets no band past the prefill share
    one S2 holds beside a decode instance: placement could make no group at such a ratio (the
    rule that gives a fixed ratio past it cluster scope, :func:`derive`)."""
    ratio = service.ratio[0] / service.ratio[1]
    top = ADAPTIVE_BAND[1] * ratio
    if service.colocate:
        top = min(top, prefill_beside_one_decode(service.gpus_per_instance))
    target = service.prefill_target_tps[service.preferred_gpu(Role.PREFILL)] * busy / TARGET_BUSY
    return {
        "minRatio": round(ADAPTIVE_BAND[0] * ratio, 3),
        "maxRatio": round(top, 3),
        "prefillTargetTPSPerInstance": round(target, 1),
    }


def spec_document(service: Service, interval_s: float) -> dict[str, Any]:
    """The PDServingGroup ``spec`` (:class:`heteroscale.api.spec.PDServingGroupSpec`) the HeteroScale
    operator would be given."""
    return {
        "mode": "Enforce",
        "ratio": {"prefill": service.ratio[0], "decode": service.ratio[1]},
        "metric": {"engine": "vllm", "window": f"{METRIC_WINDOW_S:.0f}s", "staleAfter": "120s"},
        "decode": {
            "targetTPSPerInstance": {k: round(v, 1) for k, v in service.decode_target_tps.items()},
            "minReplicas": 1,
            "maxReplicas": service.max_replicas[1],
        },
        "prefill": {"minReplicas": 1, "maxReplicas": service.max_replicas[0]},
        "behavior": {
            "intervalSeconds": int(interval_s),
            "tolerance": 0.1,
            "scaleUp": {"cooldownSeconds": 60, "maxStepPercent": 100},
            "scaleDown": {
                "cooldownSeconds": 600,
                "stabilizationWindowSeconds": 300,
                "maxStepPercent": 20,
                "drainSeconds": 30,
            },
            "latencyGuard": {
                "sloSeconds": service.slo.tbt_s,
                "ttftSeconds": round(service.ttft_slo_s, 3),
                "proportional": True,
                "tiers": [{"over": 1.2, "stepPercent": 10}, {"over": 1.5, "stepPercent": 20}],
            },
        },
        "roles": {
            role.value: {
                "template": _template(role, service),
                "gpuTypes": service.gpu_types[role],
                "gpusPerInstance": service.gpus_per_instance,
            }
            for role in (Role.PREFILL, Role.DECODE)
        },
        "topology": {
            "gpuTypeLabel": "nvidia.com/gpu.product",
            "tiers": list(TIERS),
            "colocate": service.colocate,
        },
        "priority": 100,
    }


def _template(role: Role, service: Service) -> dict[str, Any]:
    # The simulator starts no pods; the template only has to be a valid vLLM P/D pod with the
    # preferred type's layout.
    layout = service.instance(role).layout
    return {
        "spec": {
            "containers": [
                {
                    "name": "vllm",
                    "image": "vllm/vllm-openai:v0.14.0",
                    "args": [
                        "--model",
                        "meta-llama/Llama-3.1-70B-Instruct",
                        "--tensor-parallel-size",
                        str(layout.tp),
                        "--pipeline-parallel-size",
                        str(layout.pp),
                    ],
                    "env": [{"name": "HETEROSCALE_ROLE", "value": role.value}],
                }
            ]
        }
    }
