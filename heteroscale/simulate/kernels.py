"""Measured kernel tables (aiconfigurator, vLLM 0.14): all-reduce latency and GEMM efficiency.

The extracts in ``data/aiconfigurator/`` (see its README) hold every measured bf16 CUDA-graph
all-reduce of three systems and the bf16 GEMMs at Llama-3.1-70B's layer shapes. A GPU type with
no table of its own borrows the table of a system with the same interconnect and kernels
(``gpu_perf.csv``'s ``kernels`` column): its all-reduce bandwidth is scaled by its link's
bandwidth relative to that system's, and GEMM efficiencies (achieved / peak) carry over.

Loading the CSVs is the only I/O; the lookups are pure.
"""

from __future__ import annotations

import csv
import functools
import math
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources

import numpy as np

#: Spec-sheet peaks of the measured systems (data/gpu_specs.csv rows L40S, H100, A100): dense BF16
#: TFLOPS and memory GB/s, to turn measured latencies into efficiencies.
SYSTEM_PEAKS = {"l40s": (362.05, 864.0), "h100_sxm": (989.0, 3350.0), "a100_sxm": (312.0, 2039.0)}
#: Link bandwidth of each measured system (GB/s, NVLink bidirectional / 2; 0 = PCIe only), the
#: reference for scaling another GPU's all-reduce bandwidth (data/gpu_specs.csv gpu_interconnect).
SYSTEM_LINK_GBPS = {"l40s": 0.0, "h100_sxm": 450.0, "a100_sxm": 300.0}
#: Llama-3.1-70B's layer GEMMs as (k, n) before tensor-parallel splitting: QKV, O, gate+up, down.
#: Column-parallel layers split n, row-parallel ones split k (Megatron-style TP).
LAYER_GEMMS = ((8192, 10240, "n"), (8192, 8192, "k"), (8192, 57344, "n"), (28672, 8192, "k"))
#: Decode batches (m) whose GEMMs are weight reads, and batches whose GEMMs are compute-bound
#: (vLLM's two prefill chunk sizes).
DECODE_M = (1, 2, 4, 8, 16, 32)
LARGE_M = (2048, 8192)


@dataclass(frozen=True)
class _Tables:
    #: (system, GPUs) -> sorted message sizes (bytes) and latencies (s).
    allreduce: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]
    #: (system, m, n, k) -> latency (s) at the table's grid shapes.
    gemm: dict[tuple[str, int, int, int], float]


@functools.cache
def _tables() -> _Tables:
    root = resources.files("heteroscale.simulate").joinpath("data/aiconfigurator")
    points: defaultdict[tuple[str, int], list[tuple[float, float]]] = defaultdict(list)
    for row in csv.DictReader(root.joinpath("allreduce_bf16.csv").read_text().splitlines()):
        points[(row["system"], int(row["num_gpus"]))].append(
            (float(row["message_bytes"]), float(row["latency_ms"]) * 1e-3)
        )
    allreduce = {}
    for key, pts in points.items():
        pts.sort()
        allreduce[key] = (np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
    gemm = {
        (row["system"], int(row["m"]), int(row["n"]), int(row["k"])): float(row["latency_ms"]) * 1e-3
        for row in csv.DictReader(root.joinpath("gemm_bf16.csv").read_text().splitlines())
    }
    return _Tables(allreduce, gemm)


def allreduce_seconds(system: str, gpus: int, message_bytes: float, link_scale: float = 1.0) -> float:
    """One all-reduce of ``message_bytes`` over ``gpus`` GPUs, from the measured table (log-log
    interpolation; beyond the largest message at its bandwidth). ``link_scale`` < 1 stands for a
    slower link than the measured system's: the transfer part (message / asymptotic bandwidth)
    takes 1 / link_scale as long, the latency part is kept."""
    if gpus <= 1 or message_bytes <= 0:
        return 0.0
    sizes, latency = _tables().allreduce[(system, gpus)]
    if message_bytes >= sizes[-1]:
        base = float(latency[-1] * message_bytes / sizes[-1])
    else:
        base = float(np.exp(np.interp(math.log(message_bytes), np.log(sizes), np.log(latency))))
    bandwidth = sizes[-1] / latency[-1]
    return float(base + message_bytes / bandwidth * (1.0 / link_scale - 1.0))


def _grid_latency(system: str, m: int, k: int, n: int) -> float:
    """The measured GEMM nearest in shape, scaled to (k, n) by size."""
    tables = _tables().gemm
    shapes = {(kk, nn) for (s, mm, nn, kk) in tables if s == system and mm == m}
    kk, nn = min(shapes, key=lambda s: abs(math.log(s[0] / k)) + abs(math.log(s[1] / n)))
    return tables[(system, m, nn, kk)] * (k * n) / (kk * nn)


def _layer_gemms(tp: int) -> list[tuple[int, int]]:
    return [(k // tp, n) if split == "k" else (k, n // tp) for k, n, split in LAYER_GEMMS]


@functools.cache
def gemm_efficiency(system: str, tp: int) -> float:
    """Achieved / peak BF16 FLOPS of one layer's GEMMs under tensor parallelism ``tp`` when they
    are compute-bound: the mean over the large batches measured (single cells of the tables vary
    by up to a factor of two between neighbouring shapes, so one batch size would be noisy)."""
    shapes = _layer_gemms(tp)
    peak = SYSTEM_PEAKS[system][0] * 1e12
    achieved = [
        sum(2.0 * m * k * n for k, n in shapes) / sum(_grid_latency(system, m, k, n) for k, n in shapes) / peak
        for m in LARGE_M
    ]
    return float(np.mean(achieved))


@functools.cache
def weight_read_efficiency(system: str, tp: int) -> float:
    """Achieved / peak memory bandwidth of one layer's GEMMs when they only read weights (decode
    batches of at most 32), median over those batches."""
    shapes = _layer_gemms(tp)
    weights = sum(2.0 * k * n for k, n in shapes)  # BF16 bytes
    achieved = [weights / sum(_grid_latency(system, m, k, n) for k, n in shapes) for m in DECODE_M]
    return float(np.median(achieved)) / (SYSTEM_PEAKS[system][1] * 1e9)
