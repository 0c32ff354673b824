"""How each GPU type is deployed for each role: the parallel layout of one 8-GPU instance (pure).

An operator deploys a model on a GPU type the way that serves the role best: the layout
(tensor x pipeline parallel) with the most throughput per instance for the role on the service's
workload, among those whose weights fit. Prefill throughput is KV-missed prompt tokens per
second over the workload's prompts; decode throughput is tokens per second at the largest batch
within the TBT SLO. The measured all-reduce tables decide it: on PCIe boards (L20) tensor
parallelism's per-layer all-reduce costs more than the GEMMs it splits, so prefill runs as a
pipeline (vLLM's own advice for GPUs without NVLink, such as L40S); over NVLink tensor
parallelism is cheap.

Decode runs tensor-parallel only: every token must cross all pipeline stages within its TBT, and
the decode step's per-step overhead is fitted on a TP8 engine (aiconfigurator's measured TPOT),
so a pipelined decode layout would rest on an extrapolated overhead rather than on data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from heteroscale.api.enums import Role
from heteroscale.simulate.perfmodel import GpuPerf, InstanceModel, Layout, ModelSpec, Startup, layouts
from heteroscale.simulate.workload import Trace


@dataclass(frozen=True)
class Deployment:
    role: Role
    gpu: str
    instance: InstanceModel
    #: Throughput of every candidate layout whose weights fit (prefill: KV-missed prompt tokens/s;
    #: decode: tokens/s at the TBT SLO), per instance.
    throughput: dict[Layout, float]

    @property
    def capacity(self) -> float:
        """Throughput of the chosen layout, per instance."""
        return self.throughput[self.instance.layout]


def prefill_tps(instance: InstanceModel, trace: Trace) -> float:
    """KV-missed prompt tokens per second one busy instance prefills on the trace's prompts."""
    new = trace.input_tokens - trace.cached_tokens
    return float(np.sum(new) / np.sum(instance.prefill_seconds(new, trace.cached_tokens)))


def deploy(
    role: Role, gpu: GpuPerf, model: ModelSpec, startup: Startup, trace: Trace, tbt_slo_s: float, context: float
) -> Deployment:
    """The layout with the most throughput for ``role``; on a tie the larger tensor parallelism
    (the lower latency)."""
    options = layouts(gpu.gpus_per_instance)
    if role is Role.DECODE:
        options = [layout for layout in options if layout.pp == 1]
    candidates = [InstanceModel(gpu, model, layout, startup) for layout in options]
    fitting = [c for c in candidates if c.kv_capacity_tokens > 0]
    if not fitting:
        raise ValueError(f"{gpu.gpu}: {model.name} does not fit {gpu.gpus_per_instance} GPUs of {gpu.memory_gb:g} GB")
    throughput = {
        c.layout: prefill_tps(c, trace) if role is Role.PREFILL else c.decode_slo_tps(tbt_slo_s, context)
        for c in fitting
    }
    best = max(fitting, key=lambda c: throughput[c.layout])
    return Deployment(role, gpu.gpu, best, throughput)
