"""Performance model of one serving instance per GPU type and parallel layout: prefill cost and
latency, decode step time, KV-cache capacity, P->D KV transfer and start-up delay.

A roofline whose every efficiency and communication cost is measured (see ``data/gpu_perf.csv``,
``data/aiconfigurator/`` and docs/simulator.md):

* spec-sheet peak BF16 TFLOPS, HBM bandwidth and memory per GPU: ``data/gpu_specs.csv`` (the
  hand-compiled spec sheets with their source URLs; ``gpu_perf.csv`` copies what it uses);
* GEMM efficiency (prefill) and weight-read efficiency (decode) at Llama-3.1-70B's own layer
  shapes for the layout's tensor parallelism, and all-reduce latency per message size and GPU
  count: aiconfigurator's vLLM 0.14 tables (:mod:`heteroscale.simulate.kernels`);
* causal-attention and KV-read efficiencies: medians of aiconfigurator's attention tables;
* a per-step decode overhead (scheduler, sampling, non-GEMM kernels and the all-reduce of an
  NVLink TP8 engine) fitted on aiconfigurator's measured ``silicon_sample`` TPOT of
  Llama-3.1-70B, vLLM, TP8 on H100; another interconnect or TP adds its all-reduce difference.

An instance is one 8-GPU node run as ``tp`` x ``pp`` (tensor x pipeline parallel). Loading the
CSV is the only I/O; every function below is pure and vectorised over numpy arrays.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from heteroscale.simulate import kernels

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ModelSpec:
    """The served model. Default: Llama-3.1-70B in BF16, the dense model aiconfigurator measured
    end to end (silicon_sample) and whose layer GEMMs its tables cover (HF config: 80 layers,
    hidden 8192, 8 KV heads of dim 128, 70.6 B parameters)."""

    name: str = "Llama-3.1-70B"
    params: float = 70.6e9
    layers: int = 80
    hidden: int = 8192
    kv_heads: int = 8
    head_dim: int = 128
    bytes_per_param: float = 2.0  # BF16: the one precision every listed GPU runs (A100 has no FP8)
    kv_bytes_per_elem: float = 2.0

    @property
    def weight_bytes(self) -> float:
        return self.params * self.bytes_per_param

    @property
    def kv_bytes_per_token(self) -> float:
        # K and V, every layer: 80 * 8 * 128 * 2 * 2 B = 320 KiB per token.
        return self.layers * self.kv_heads * self.head_dim * 2 * self.kv_bytes_per_elem

    @property
    def activation_bytes_per_token(self) -> float:
        """The hidden state one all-reduce (or pipeline hand-off) moves per token, in BF16."""
        return self.hidden * 2.0


#: Decode-step overhead fitted by least squares on aiconfigurator silicon_sample
#: (Llama-3.1-70B, vLLM, TP8, H100, 15 aggregated-mode points): TPOT - roofline = c0 + c1 * batch;
#: c0 = 5.80 ms, c1 = 0.134 ms per sequence, residual RMS 3.3 ms (the worst points are long-prompt
#: runs where aggregated-mode prefill interrupts decode, which disaggregation removes). It holds
#: the all-reduce of that engine (TP8 over NVLink4), so other layouts add only their difference.
DECODE_OVERHEAD_S = 5.80e-3
DECODE_OVERHEAD_PER_SEQ_S = 0.134e-3
#: The engine the overhead was fitted on: its all-reduce is inside the fit.
FIT_KERNELS, FIT_TP = "h100_sxm", 8
#: vLLM 0.14's defaults (``EngineArgs.get_batch_defaults``, OpenAI server): GPUs of at least 70 GiB
#: other than A100 get ``max_num_batched_tokens`` 8192 and ``max_num_seqs`` 1024, the rest 2048
#: and 256. The token budget is the prefill chunk; ``max_num_seqs`` caps the decode batch.
LARGE_GPU_GIB = 70.0
PREFILL_CHUNK = {True: 8192, False: 2048}
MAX_BATCH = {True: 1024, False: 256}
#: vLLM's default ``gpu_memory_utilization``: the share of GPU memory the engine may use.
GPU_MEMORY_UTILIZATION = 0.9
#: Cross-domain KV transfer keeps 80% of the bandwidth: the HeteroScale paper's motivation
#: measured ~20% loss when P and D sit under different switches.
CROSS_DOMAIN_BANDWIDTH_FACTOR = 0.8


@dataclass(frozen=True)
class Startup:
    """Start-up delay of a new instance: container start + weight load + engine warm-up. No public
    measurement was found, so the defaults are stated assumptions: 30 s pod/container start (image
    cached on the node), weights read at 2 GB/s from local NVMe/page cache, 30 s CUDA-graph
    capture and warm-up. ``fast_loader`` reads the weights from running instances over the
    node's RDMA network instead (BlitzScale, OSDI '25), the rest unchanged."""

    container_s: float = 30.0
    weight_load_gbps: float = 2.0
    warmup_s: float = 30.0
    fast_loader: bool = False


@dataclass(frozen=True)
class GpuPerf:
    """One GPU type: spec-sheet figures, links, and the measured kernel tables that stand for it."""

    gpu: str
    memory_gb: float
    mem_bandwidth_gbps: float
    bf16_tflops: float
    #: NVLink bandwidth per direction (GB/s); 0 for PCIe-only boards.
    link_gbps: float
    rdma_gbps: float
    #: aiconfigurator system whose kernel tables stand for this GPU.
    kernels: str
    attn_eff: float
    kv_bw_eff: float
    gpus_per_instance: int = 8

    @property
    def large(self) -> bool:
        """vLLM's large-GPU defaults apply (>= 70 GiB and not an A100)."""
        return self.memory_gb * 1e9 / 2**30 >= LARGE_GPU_GIB and not self.gpu.startswith("A100")

    @property
    def link_scale(self) -> float:
        """All-reduce bandwidth relative to the measured system's (1 for PCIe boards on a PCIe table)."""
        reference = kernels.SYSTEM_LINK_GBPS[self.kernels]
        return self.link_gbps / reference if reference > 0 else 1.0


def load_gpu_perf(gpus_per_instance: int = 8) -> dict[str, GpuPerf]:
    """Read the committed calibration table ``data/gpu_perf.csv``."""
    text = resources.files("heteroscale.simulate").joinpath("data/gpu_perf.csv").read_text()
    return {
        row["gpu"]: GpuPerf(
            gpu=row["gpu"],
            memory_gb=float(row["memory_gb"]),
            mem_bandwidth_gbps=float(row["mem_bandwidth_GBps"]),
            bf16_tflops=float(row["bf16_dense_tflops"]),
            link_gbps=float(row["link_GBps"]),
            rdma_gbps=float(row["rdma_GBps"]),
            kernels=row["kernels"],
            attn_eff=float(row["attn_eff"]),
            kv_bw_eff=float(row["kv_bw_eff"]),
            gpus_per_instance=gpus_per_instance,
        )
        for row in csv.DictReader(text.splitlines())
    }


@dataclass(frozen=True)
class Layout:
    """How an instance's GPUs split the model: ``tp`` tensor-parallel x ``pp`` pipeline stages."""

    tp: int
    pp: int

    def __str__(self) -> str:
        return f"TP{self.tp}xPP{self.pp}"


def layouts(gpus: int) -> list[Layout]:
    """Every split of ``gpus`` into power-of-two TP x PP, largest TP first."""
    return [Layout(tp, gpus // tp) for tp in (8, 4, 2, 1) if tp <= gpus and gpus % tp == 0]


@dataclass(frozen=True)
class InstanceModel:
    """Latency and capacity of one instance of ``gpu`` serving ``model`` in ``layout``."""

    gpu: GpuPerf
    model: ModelSpec
    layout: Layout
    startup: Startup = Startup()

    @property
    def _flops(self) -> float:
        return self.gpu.gpus_per_instance * self.gpu.bf16_tflops * 1e12

    def _allreduce(self, gpus: int, message_bytes: float) -> float:
        return kernels.allreduce_seconds(self.gpu.kernels, gpus, message_bytes, self.gpu.link_scale)

    @property
    def prefill_chunk(self) -> int:
        """Tokens per prefill iteration (vLLM's ``max_num_batched_tokens`` default for the GPU)."""
        return PREFILL_CHUNK[self.gpu.large]

    def _prefill_comm_per_token(self) -> float:
        """Instance-seconds per prefilled token spent communicating, in the pipeline's steady state:
        each stage all-reduces the chunk's hidden state twice per layer it holds, and hands the chunk
        to the next stage once (a point-to-point copy, timed as the 2-GPU all-reduce of the same
        message, which moves as many bytes per GPU)."""
        tp, pp = self.layout.tp, self.layout.pp
        message = self.prefill_chunk * self.model.activation_bytes_per_token
        allreduce = 2 * self.model.layers / pp * self._allreduce(tp, message)
        handoff = self._allreduce(2, message) if pp > 1 else 0.0
        return (allreduce + handoff) / self.prefill_chunk

    def prefill_seconds(self, new_tokens: FloatArray, cached_tokens: FloatArray) -> FloatArray:
        """Instance time to prefill ``new_tokens`` after ``cached_tokens`` of reused prefix KV: the
        work a request puts on the pool (a pipeline keeps every stage busy with other chunks).

        Linear layers cost 2*params FLOPs per new token; causal attention over the cached prefix
        and the new tokens costs 4*layers*hidden*(new*cached + new^2/2) FLOPs; prefix-cache hits
        remove the linear work and the attention among cached tokens, which is why only
        KV-cache-missed prefill work loads the pool.
        """
        gemm_eff = kernels.gemm_efficiency(self.gpu.kernels, self.layout.tp)
        linear = 2.0 * self.model.params * new_tokens
        attn = 4.0 * self.model.layers * self.model.hidden * (new_tokens * cached_tokens + new_tokens**2 / 2)
        return (
            linear / (self._flops * gemm_eff)
            + attn / (self._flops * self.gpu.attn_eff)
            + new_tokens * self._prefill_comm_per_token()
        )

    def prefill_latency(self, new_tokens: FloatArray, cached_tokens: FloatArray) -> FloatArray:
        """A request's own prefill time on an idle instance: its chunks flow through the ``pp``
        stages one after another, so it takes its work plus ``pp - 1`` stage times of a chunk."""
        work = self.prefill_seconds(new_tokens, cached_tokens)
        chunks = np.maximum(np.ceil(new_tokens / self.prefill_chunk), 1.0)
        result: FloatArray = work * (chunks + self.layout.pp - 1) / chunks
        return result

    @functools.cached_property
    def _pieces(self) -> tuple[float, float, float, float, float, float]:
        """The decode step time of a micro-batch is max over two affine pieces of its size:
        memory-bound (weights, then per sequence its KV reads) and compute-bound, each plus the
        overheads. Every token crosses all ``pp`` stages, so a step reads every weight once over
        ``tp`` GPUs' bandwidth. Returns (memory fixed, KV bytes per context token, the bandwidth
        they are read at, per-sequence overhead, compute fixed, compute per sequence)."""
        tp = self.layout.tp
        bw = self.gpu.mem_bandwidth_gbps * 1e9 * tp
        per_seq = DECODE_OVERHEAD_PER_SEQ_S + self._extra_allreduce_per_seq()
        flops = tp * self.gpu.bf16_tflops * 1e12 * kernels.gemm_efficiency(self.gpu.kernels, tp)
        return (
            self.model.weight_bytes / (bw * kernels.weight_read_efficiency(self.gpu.kernels, tp)) + DECODE_OVERHEAD_S,
            self.model.kv_bytes_per_token,
            bw * self.gpu.kv_bw_eff,
            per_seq,
            DECODE_OVERHEAD_S,
            2.0 * self.model.params / flops + per_seq,
        )

    def _extra_allreduce_per_seq(self) -> float:
        """Decode all-reduce per sequence and step beyond what the fitted overhead holds (the
        fit's TP8 NVLink4 engine), plus the pipeline hand-offs; timed on a 256-sequence batch's
        messages, where all-reduce time grows with the message."""
        batch = 256
        message = batch * self.model.activation_bytes_per_token
        ours = 2 * self.model.layers * self._allreduce(self.layout.tp, message)
        fit = 2 * self.model.layers * kernels.allreduce_seconds(FIT_KERNELS, FIT_TP, message)
        handoff = (self.layout.pp - 1) * self._allreduce(2, message)
        return (max(ours - fit, 0.0) + handoff) / batch

    def _step_pieces(self, context: Any) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
        """Per micro-batch sequence: a pipeline keeps ``pp`` micro-batches in flight, so an
        instance's step of ``batch`` sequences moves ``batch / pp`` through each stage."""
        m_fixed, kv_bytes, kv_bandwidth, per_seq, c_fixed, c_seq = self._pieces
        pp = self.layout.pp
        return (m_fixed, (context * kv_bytes / kv_bandwidth + per_seq) / pp), (c_fixed, c_seq / pp)

    def decode_step_seconds(self, batch: FloatArray | float, context: FloatArray | float) -> FloatArray:
        """One decode iteration (the TBT) of an instance holding ``batch`` sequences of mean
        ``context`` tokens."""
        (m_fixed, m_seq), (c_fixed, c_seq) = self._step_pieces(context)
        result: FloatArray = np.maximum(m_fixed + m_seq * batch, c_fixed + c_seq * batch)
        return result

    def batch_for_throughput(self, tokens_per_s: FloatArray, context: FloatArray) -> FloatArray:
        """Time-averaged batch that generates ``tokens_per_s`` (Little's law: batch = throughput x
        step time); inf beyond what any batch can reach. With step time max_i(a_i + b_i * batch),
        batch = tps * step holds at max_i tps * a_i / (1 - tps * b_i)."""
        batch: FloatArray = np.zeros(np.broadcast(tokens_per_s, context).shape)
        for fixed, per_seq in self._step_pieces(context):
            room = 1.0 - tokens_per_s * per_seq
            batch = np.maximum(batch, np.where(room > 0, tokens_per_s * fixed / np.where(room > 0, room, 1.0), np.inf))
        return batch

    @property
    def kv_capacity_tokens(self) -> float:
        """KV tokens the instance holds: 90% of its memory (vLLM's gpu_memory_utilization) minus the
        weights, which every layout spreads evenly over the instance's GPUs."""
        usable = self.gpu.gpus_per_instance * self.gpu.memory_gb * 1e9 * GPU_MEMORY_UTILIZATION
        return max(usable - self.model.weight_bytes, 0.0) / self.model.kv_bytes_per_token

    def max_batch(self, context: FloatArray) -> FloatArray:
        """Sequences one instance can hold: vLLM's ``max_num_seqs`` per micro-batch or the KV
        cache, whichever binds."""
        cap = MAX_BATCH[self.gpu.large] * self.layout.pp
        result: FloatArray = np.minimum(cap, self.kv_capacity_tokens / np.maximum(context, 1.0))
        return result

    def batch_at_tbt(self, tbt_seconds: float, context: float) -> float:
        """Largest batch whose step time stays within ``tbt_seconds`` (0 if even one sequence misses)."""
        cap = float(self.max_batch(np.asarray(context)))
        grid = np.arange(1.0, cap + 1.0)
        ok = grid[self.decode_step_seconds(grid, context) <= tbt_seconds]
        return float(ok[-1]) if ok.size else 0.0

    def decode_slo_tps(self, tbt_seconds: float, context: float) -> float:
        """Decode tokens/s of one instance at the largest batch within the TBT SLO."""
        batch = self.batch_at_tbt(tbt_seconds, context)
        return batch / float(self.decode_step_seconds(batch, context)) if batch else 0.0

    @property
    def startup_seconds(self) -> float:
        load_gbps = self.gpu.rdma_gbps if self.startup.fast_loader else self.startup.weight_load_gbps
        return self.startup.container_s + self.model.weight_bytes / (load_gbps * 1e9) + self.startup.warmup_s


def kv_transfer_seconds(
    model: ModelSpec, rdma_gbps: float, prompt_tokens: FloatArray, cross_domain_fraction: FloatArray | float
) -> FloatArray:
    """P->D transfer of the prompt's KV cache over RDMA at ``rdma_gbps`` (the slower end's
    bandwidth: a transfer runs no faster than the slower NIC); slower across switch domains."""
    factor = 1.0 - cross_domain_fraction * (1.0 - CROSS_DOMAIN_BANDWIDTH_FACTOR)
    result: FloatArray = prompt_tokens * model.kv_bytes_per_token / (rdma_gbps * 1e9 * factor)
    return result
