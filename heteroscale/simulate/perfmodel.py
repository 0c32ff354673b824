"""Performance model of one serving instance per GPU type: prefill cost, decode step time,
KV-cache capacity, P->D KV transfer and start-up delay.

The model is a roofline with efficiencies measured on real kernels, so every number traces to
data (see ``data/gpu_perf.csv`` and the README's simulator section):

* spec-sheet peak BF16 TFLOPS, HBM bandwidth and memory per GPU: ``gpu_specs.csv``;
* achieved fraction of peak for large GEMMs (prefill), causal context attention, small-m GEMMs
  (decode weight reads) and decode attention (KV reads): aiconfigurator vLLM 0.14 op tables
  (median over shapes), H100 tables for the Hopper parts (H20, H800, H100), L40S for L20
  (same AD102 die), A100 for A100;
* a per-step decode overhead (scheduler, sampling, all-reduce latency, non-GEMM kernels) fitted
  on aiconfigurator's measured ``silicon_sample`` TPOT of Llama-3.1-70B, vLLM, TP8 on H100.

Loading the CSV is the only I/O; every function below is pure and vectorised over numpy arrays.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ModelSpec:
    """The served model. Default: Llama-3.1-70B in BF16, the one dense model with measured
    TP8 TTFT/TPOT in aiconfigurator's silicon_sample (HF config: 80 layers, hidden 8192,
    8 KV heads of dim 128, 70.6 B parameters)."""

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


#: Decode-step overhead fitted by least squares on aiconfigurator silicon_sample
#: (Llama-3.1-70B, vLLM, TP8, H100, 15 aggregated-mode points): TPOT - roofline = c0 + c1 * batch;
#: c0 = 5.80 ms, c1 = 0.134 ms per sequence, residual RMS 3.3 ms (the worst points are long-prompt
#: runs where aggregated-mode prefill interrupts decode, which disaggregation removes).
DECODE_OVERHEAD_S = 5.80e-3
DECODE_OVERHEAD_PER_SEQ_S = 0.134e-3
#: vLLM's default ``max_num_seqs``: the largest decode batch an engine schedules.
MAX_BATCH = 256
#: vLLM's default ``gpu_memory_utilization``: the share of GPU memory the engine may use.
GPU_MEMORY_UTILIZATION = 0.9
#: Cross-domain KV transfer keeps 80% of the bandwidth: the HeteroScale paper's motivation
#: measured ~20% loss when P and D sit under different switches.
CROSS_DOMAIN_BANDWIDTH_FACTOR = 0.8
#: Start-up = container start + weight load + engine warm-up. No public measurement was found,
#: so these are stated assumptions: 30 s pod/container start (image cached on the node),
#: weights read at 2 GB/s from local NVMe/page cache, 30 s CUDA-graph capture and warm-up.
CONTAINER_START_S = 30.0
WEIGHT_LOAD_GBPS = 2.0
ENGINE_WARMUP_S = 30.0


@dataclass(frozen=True)
class GpuPerf:
    """One GPU type as an 8-GPU (by default) tensor-parallel serving instance."""

    gpu: str
    memory_gb: float
    mem_bandwidth_gbps: float
    bf16_tflops: float
    tp_link_gbps: float
    rdma_gbps: float
    gemm_eff: float
    attn_eff: float
    weight_bw_eff: float
    kv_bw_eff: float
    gpus_per_instance: int = 8


def load_gpu_perf(gpus_per_instance: int = 8) -> dict[str, GpuPerf]:
    """Read the committed calibration table ``data/gpu_perf.csv``."""
    text = resources.files("heteroscale.simulate").joinpath("data/gpu_perf.csv").read_text()
    table: dict[str, GpuPerf] = {}
    for row in csv.DictReader(text.splitlines()):
        table[row["gpu"]] = GpuPerf(
            gpu=row["gpu"],
            memory_gb=float(row["memory_gb"]),
            mem_bandwidth_gbps=float(row["mem_bandwidth_GBps"]),
            bf16_tflops=float(row["bf16_dense_tflops"]),
            tp_link_gbps=float(row["tp_link_GBps"]),
            rdma_gbps=float(row["rdma_GBps"]),
            gemm_eff=float(row["gemm_eff"]),
            attn_eff=float(row["attn_eff"]),
            weight_bw_eff=float(row["weight_bw_eff"]),
            kv_bw_eff=float(row["kv_bw_eff"]),
            gpus_per_instance=gpus_per_instance,
        )
    return table


@dataclass(frozen=True)
class InstanceModel:
    """Latency and capacity of one instance of ``gpu`` serving ``model``."""

    gpu: GpuPerf
    model: ModelSpec

    @property
    def _flops(self) -> float:
        return self.gpu.gpus_per_instance * self.gpu.bf16_tflops * 1e12

    def _allreduce_s_per_token(self) -> float:
        # Ring all-reduce of the hidden state twice per layer moves 2(g-1)/g of the message per GPU.
        g = self.gpu.gpus_per_instance
        if g == 1:
            return 0.0
        message = self.model.hidden * 2.0  # BF16 activations
        per_layer = 2 * 2 * (g - 1) / g * message
        return self.model.layers * per_layer / (self.gpu.tp_link_gbps * 1e9)

    def prefill_seconds(self, new_tokens: FloatArray, cached_tokens: FloatArray) -> FloatArray:
        """Time to prefill ``new_tokens`` after ``cached_tokens`` of reused prefix KV, alone.

        Linear layers cost 2*params FLOPs per new token; causal attention over the cached prefix
        and the new tokens costs 4*layers*hidden*(new*cached + new^2/2) FLOPs; prefix-cache hits
        remove the linear work and the attention among cached tokens, which is why only
        KV-cache-missed prefill work loads the pool.
        """
        linear = 2.0 * self.model.params * new_tokens
        attn = 4.0 * self.model.layers * self.model.hidden * (new_tokens * cached_tokens + new_tokens**2 / 2)
        return (
            linear / (self._flops * self.gpu.gemm_eff)
            + attn / (self._flops * self.gpu.attn_eff)
            + new_tokens * self._allreduce_s_per_token()
        )

    @functools.cached_property
    def _pieces(self) -> tuple[float, float, float, float, float, float]:
        """The decode step time is max over two affine pieces of the batch: memory-bound (weights,
        then per sequence its KV reads) and compute-bound, each plus the overheads. Returns
        (memory fixed, KV bytes per context token, the bandwidth they are read at, per-sequence
        memory overhead, compute fixed, compute per sequence)."""
        bw = self.gpu.mem_bandwidth_gbps * 1e9 * self.gpu.gpus_per_instance
        per_seq = DECODE_OVERHEAD_PER_SEQ_S + self._allreduce_s_per_token()
        return (
            self.model.weight_bytes / (bw * self.gpu.weight_bw_eff) + DECODE_OVERHEAD_S,
            self.model.kv_bytes_per_token,
            bw * self.gpu.kv_bw_eff,
            per_seq,
            DECODE_OVERHEAD_S,
            2.0 * self.model.params / (self._flops * self.gpu.gemm_eff) + per_seq,
        )

    def _step_pieces(self, context: Any) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
        m_fixed, kv_bytes, kv_bandwidth, per_seq, c_fixed, c_seq = self._pieces
        return (m_fixed, context * kv_bytes / kv_bandwidth + per_seq), (c_fixed, c_seq)

    def decode_step_seconds(self, batch: FloatArray | float, context: FloatArray | float) -> FloatArray:
        """One decode iteration for ``batch`` sequences of mean ``context`` tokens (the TBT)."""
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
        usable = self.gpu.gpus_per_instance * self.gpu.memory_gb * 1e9 * GPU_MEMORY_UTILIZATION
        return max(usable - self.model.weight_bytes, 0.0) / self.model.kv_bytes_per_token

    def max_batch(self, context: FloatArray) -> FloatArray:
        """Sequences one instance can hold: vLLM's batch cap or the KV cache, whichever binds."""
        result: FloatArray = np.minimum(MAX_BATCH, self.kv_capacity_tokens / np.maximum(context, 1.0))
        return result

    def batch_at_tbt(self, tbt_seconds: float, context: float) -> float:
        """Largest batch whose step time stays within ``tbt_seconds`` (0 if even one sequence misses)."""
        cap = float(self.max_batch(np.asarray(context)))
        grid = np.arange(1.0, cap + 1.0)
        ok = grid[self.decode_step_seconds(grid, context) <= tbt_seconds]
        return float(ok[-1]) if ok.size else 0.0

    def kv_transfer_seconds(self, prompt_tokens: FloatArray, cross_domain_fraction: FloatArray | float) -> FloatArray:
        """P->D transfer of the prompt's KV cache over RDMA; slower across switch domains."""
        bandwidth = self.gpu.rdma_gbps * 1e9
        factor = 1.0 - cross_domain_fraction * (1.0 - CROSS_DOMAIN_BANDWIDTH_FACTOR)
        result: FloatArray = prompt_tokens * self.model.kv_bytes_per_token / (bandwidth * factor)
        return result

    @property
    def startup_seconds(self) -> float:
        return CONTAINER_START_S + self.model.weight_bytes / (WEIGHT_LOAD_GBPS * 1e9) + ENGINE_WARMUP_S
