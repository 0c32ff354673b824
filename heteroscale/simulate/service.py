"""The served service: SLOs, GPU types per role, and the per-service settings a stress test yields.

The HeteroScale paper sets the P/D ratio and per-instance targets per service "from a stress
test" at realistic traffic; :func:`derive` plays that stress test on the performance model and
the workload's offered load, so every policy gets the same, data-derived settings:

* per-instance targets: TARGET_BUSY of the throughput that meets the SLO;
* P/D ratio: decode is scaled to hold decode TPS at its target over the metric window, and
  prefill follows at the ratio, so prefill meets its SLO in a window only if the ratio covers
  that window's prefill-to-decode need. Long prompts arrive in bursts that short answers do not
  match, so the mean request's ratio leaves prefill short in the bursty windows. The ratio is
  therefore the ``slo.attainment`` quantile, over the requests, of the ratio their window
  needs: the share of requests whose window the ratio covers equals the SLO attainment target;
* colocation scope: the paper pins a deployment group's P and D in one domain (S2) and relaxes
  "services without strict affinity" to cluster scope. A service whose smallest deployment group
  at its ratio (one decode instance and its prefill share) does not fit one S2 cannot have strict
  affinity, so it gets cluster scope (``topology.colocate: ""``); every other service is pinned
  to S2. Decided from the numbers, whatever the trace.

Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from heteroscale.api.enums import Role
from heteroscale.simulate.fabric import S2, TIERS, smallest_group_fits_s2
from heteroscale.simulate.perfmodel import GpuPerf, InstanceModel, ModelSpec
from heteroscale.simulate.workload import Workload

#: Per-instance targets are this share of the throughput that still meets the SLO (decode: the
#: largest batch within the TBT SLO; prefill: full compute): the headroom a stress test leaves for
#: bursts within one control interval and for the start-up delay. Without it a saturated decode
#: pool's throughput sits inside the tolerance band of its target and overload goes unseen.
TARGET_BUSY = 0.8
#: maxReplicas for every policy, as a multiple of the static peak fleet: room to over-provision
#: without letting a runaway signal take the whole cluster.
MAX_REPLICAS_FACTOR = 2.0
#: Prometheus rate window of the metrics every policy reads (DESIGN.md spec.metric.window). It
#: also sizes static provisioning (the peak of the offered load over such a window), and the
#: stress test holds prefill to decode work over windows of this length.
METRIC_WINDOW_S = 60.0
#: Largest denominator of the P/D ratio (spec.ratio takes small integers).
MAX_RATIO_DENOMINATOR = 8


@dataclass(frozen=True)
class Slo:
    #: TBT (per-output-token time) limit: DESIGN.md's latencyGuard sloSeconds.
    tbt_s: float = 0.05
    #: TTFT limit = max(ttft_floor_s, ttft_scale x the request's unloaded TTFT), the DistServe-style
    #: "SLO scale", because a fixed limit cannot fit both 100-token and 100k-token prompts.
    ttft_floor_s: float = 2.0
    ttft_scale: float = 3.0
    #: Share of requests that must meet both limits (the issue's 99% target).
    attainment: float = 0.99


@dataclass(frozen=True)
class Service:
    model: ModelSpec
    slo: Slo
    gpu_types: dict[Role, list[str]]
    gpus_per_instance: int
    ratio: tuple[int, int]  # (prefill, decode)
    #: Decode tokens/s per instance at TARGET_BUSY of the throughput within the TBT SLO, per GPU type.
    decode_target_tps: dict[str, float]
    #: KV-cache-missed prefill tokens/s per instance at TARGET_BUSY, per GPU type.
    prefill_target_tps: dict[str, float]
    static_peak: tuple[int, int]
    max_replicas: tuple[int, int]
    #: The spec's ``topology.colocate``: the tier a deployment group's P and D share, or "" for
    #: cluster scope (the smallest group does not fit one S2).
    colocate: str

    def preferred_gpu(self, role: Role) -> str:
        return self.gpu_types[role][0]


def mean_context(w: Workload) -> float:
    """Mean KV length of a decoding sequence: its prompt plus half its output."""
    return float(np.mean(w.trace.input_tokens + w.trace.output_tokens / 2))


def derive(
    workload: Workload,
    perf: dict[str, GpuPerf],
    *,
    prefill_gpus: list[str],
    decode_gpus: list[str],
    slo: Slo,
    model: ModelSpec,
    gpus_per_instance: int,
) -> Service:
    ctx = mean_context(workload)
    decode_target: dict[str, float] = {}
    for gpu in decode_gpus:
        inst = InstanceModel(perf[gpu], model)
        batch = inst.batch_at_tbt(slo.tbt_s, ctx)
        if batch < 1:
            raise ValueError(f"{gpu}: even one sequence misses the TBT SLO of {slo.tbt_s}s")
        decode_target[gpu] = TARGET_BUSY * batch / float(inst.decode_step_seconds(batch, ctx))
    trace = workload.trace
    new = trace.input_tokens - trace.cached_tokens
    prefill_target: dict[str, float] = {}
    for gpu in prefill_gpus:
        inst = InstanceModel(perf[gpu], model)
        seconds = float(np.sum(inst.prefill_seconds(new, trace.cached_tokens)))
        prefill_target[gpu] = TARGET_BUSY * float(np.sum(new)) / seconds
    # Instances each metric window needs on the first (preferred) type of each role.
    first_prefill = InstanceModel(perf[prefill_gpus[0]], model)
    tokens, work, requests = workload.offered(
        np.vstack([trace.output_tokens, first_prefill.prefill_seconds(new, trace.cached_tokens), np.ones(trace.size)]),
        METRIC_WINDOW_S,
    )
    need_d = tokens / METRIC_WINDOW_S / decode_target[decode_gpus[0]]
    need_p = work / METRIC_WINDOW_S / TARGET_BUSY
    busy = need_d > 0
    needed = float(
        np.quantile(need_p[busy] / need_d[busy], slo.attainment, weights=requests[busy], method="inverted_cdf")
    )
    decode_peak = max(math.ceil(need_d.max()), 1)
    prefill_peak = max(math.ceil(need_p.max()), 1)
    ratio = ratio_at_least(needed)
    return Service(
        model=model,
        slo=slo,
        gpu_types={Role.PREFILL: list(prefill_gpus), Role.DECODE: list(decode_gpus)},
        gpus_per_instance=gpus_per_instance,
        ratio=ratio,
        decode_target_tps=decode_target,
        prefill_target_tps=prefill_target,
        static_peak=(prefill_peak, decode_peak),
        max_replicas=(
            math.ceil(prefill_peak * MAX_REPLICAS_FACTOR),
            math.ceil(decode_peak * MAX_REPLICAS_FACTOR),
        ),
        colocate=S2 if smallest_group_fits_s2(ratio, gpus_per_instance) else "",
    )


def ratio_at_least(needed: float) -> tuple[int, int]:
    """The smallest ratio p:d (d <= MAX_RATIO_DENOMINATOR, p >= 1) not below ``needed``; rounding
    up keeps the stress test's guarantee."""
    candidates = [(max(math.ceil(needed * d - 1e-9), 1), d) for d in range(1, MAX_RATIO_DENOMINATOR + 1)]
    return min(candidates, key=lambda pd: (pd[0] / pd[1], pd[1]))


def spec_document(service: Service, interval_s: float) -> dict[str, Any]:
    """The PDServingGroup ``spec`` (DESIGN.md shape) the HeteroScale operator would be given."""
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
                "tiers": [{"over": 1.2, "stepPercent": 10}, {"over": 1.5, "stepPercent": 20}],
            },
        },
        "roles": {
            role.value: {
                "template": _template(role),
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


def _template(role: Role) -> dict[str, Any]:
    # The simulator starts no pods; the template only has to be a valid vLLM P/D pod.
    return {
        "spec": {
            "containers": [
                {
                    "name": "vllm",
                    "image": "vllm/vllm-openai:v0.14.0",
                    "args": ["--model", "meta-llama/Llama-3.1-70B-Instruct", "--tensor-parallel-size", "8"],
                    "env": [{"name": "HETEROSCALE_ROLE", "value": role.value}],
                }
            ]
        }
    }
