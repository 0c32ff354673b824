"""Request arrivals from real traces, and their scaling to a fleet, a time scale and a day.

Each trace request becomes one *representative* request that stands for ``weight`` identical
requests. Scaling to a fleet of hundreds of instances multiplies the weight instead of
duplicating rows, so a 1,000-instance day costs no more to simulate than the trace itself.

Loaders are the only I/O; :func:`scale` is pure and seeded.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Mooncake's hash_ids name 512-token prefix blocks (FAST'25 release README).
MOONCAKE_BLOCK_TOKENS = 512
#: Diurnal shape for days built from hour-long traces. The only public multi-day LLM trace
#: (Azure 2024 week) could not be obtained, so this is a stated assumption: a cosine with its
#: peak at 14:00 and its trough at 02:00, the trough at 25% of the peak rate.
DIURNAL_PEAK_HOUR = 14.0
DIURNAL_TROUGH_FRACTION = 0.25

BUNDLED = {
    "azure-conv": "azure_llm_2023/AzureLLMInferenceTrace_conv.csv.gz",
    "azure-code": "azure_llm_2023/AzureLLMInferenceTrace_code.csv.gz",
    "mooncake": "mooncake/conversation_trace.jsonl.gz",
}


@dataclass(frozen=True)
class Workload:
    """Requests sorted by arrival; every representative request stands for ``weight`` requests."""

    name: str
    arrival_s: FloatArray
    input_tokens: FloatArray
    output_tokens: FloatArray
    #: Prompt tokens whose KV is already cached (a prefix hit); 0 where the trace has no hashes.
    cached_tokens: FloatArray
    duration_s: float
    weight: float = 1.0

    @property
    def size(self) -> int:
        return int(self.arrival_s.size)



def load(trace: str) -> Workload:
    """A bundled trace by name (``azure-conv``, ``azure-code``, ``mooncake``) or a file path.

    Files ending in ``.csv``/``.csv.gz`` use the Azure schema; ``.jsonl``/``.jsonl.gz`` the
    Mooncake schema. Raises ``ValueError`` (with the reason) for an unreadable file.
    """
    if trace in BUNDLED:
        raw = resources.files("heteroscale.data").joinpath(BUNDLED[trace]).read_bytes()
        filename = BUNDLED[trace]
    else:
        path = Path(trace)
        if not path.is_file():
            raise ValueError(f"no such trace file: {trace} (bundled: {', '.join(BUNDLED)})")
        raw = path.read_bytes()
        filename = path.name
    text = gzip.decompress(raw).decode() if filename.endswith(".gz") else raw.decode()
    stem = filename.removesuffix(".gz")
    if stem.endswith(".csv"):
        return _parse_azure(trace, text)
    if stem.endswith(".jsonl"):
        return _parse_mooncake(trace, text)
    raise ValueError(f"{trace}: expected .csv[.gz] (Azure schema) or .jsonl[.gz] (Mooncake schema)")


def _finish(name: str, t: FloatArray, inp: FloatArray, out: FloatArray, cached: FloatArray) -> Workload:
    if t.size == 0:
        raise ValueError(f"{name}: the trace has no requests")
    order = np.argsort(t, kind="stable")
    t = t[order] - t[order][0]
    # One mean inter-arrival gap past the last request, so tiling keeps the trace's rate.
    duration = float(t[-1] + (t[-1] / max(t.size - 1, 1)) if t[-1] > 0 else 1.0)
    return Workload(name, t, inp[order], np.maximum(out[order], 1.0), cached[order], duration)


def _parse_azure(name: str, text: str) -> Workload:
    t, inp, out = [], [], []
    try:
        for row in csv.DictReader(io.StringIO(text)):
            # Seven fractional digits; fromisoformat takes at most six.
            t.append(datetime.fromisoformat(row["TIMESTAMP"][:26]).timestamp())
            inp.append(float(row["ContextTokens"]))
            out.append(float(row["GeneratedTokens"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{name}: not an Azure LLM trace (TIMESTAMP,ContextTokens,GeneratedTokens): {exc}") from exc
    n = len(t)
    return _finish(name, np.array(t), np.array(inp), np.array(out), np.zeros(n))


def _parse_mooncake(name: str, text: str) -> Workload:
    t, inp, out, cached = [], [], [], []
    seen: set[int] = set()
    try:
        for line in text.splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            length = float(rec["input_length"])
            hashes: list[int] = rec.get("hash_ids", [])
            # A prefix cache reuses only the leading run of blocks already computed; the set of
            # every block seen so far is the infinite-cache upper bound the trace's README quotes.
            hit_blocks = 0
            for h in hashes:
                if h not in seen:
                    break
                hit_blocks += 1
            seen.update(hashes)
            t.append(float(rec["timestamp"]) / 1000.0)
            inp.append(length)
            out.append(float(rec["output_length"]))
            # Keep at least one token to compute: the last block's logits are always needed.
            cached.append(min(hit_blocks * MOONCAKE_BLOCK_TOKENS, max(length - 1.0, 0.0)))
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{name}: not a Mooncake trace (timestamp,input_length,output_length): {exc}") from exc
    return _finish(name, np.array(t), np.array(inp), np.array(out), np.array(cached))


def diurnal_factor(t_s: FloatArray) -> FloatArray:
    """Relative arrival rate at ``t_s`` seconds after midnight, in [trough, 1]."""
    phase = 2.0 * np.pi * (t_s / 3600.0 - DIURNAL_PEAK_HOUR) / 24.0
    result: FloatArray = DIURNAL_TROUGH_FRACTION + (1 - DIURNAL_TROUGH_FRACTION) * (1 + np.cos(phase)) / 2
    return result


def scale(
    base: Workload,
    *,
    hours: float,
    fleet_scale: float = 1.0,
    time_scale: float = 1.0,
    diurnal: bool = False,
    start_hour: float = 0.0,
    seed: int = 0,
) -> Workload:
    """``hours`` of load built from ``base``.

    ``time_scale`` > 1 compresses the trace in time (the same requests arrive ``time_scale`` times
    faster), < 1 stretches it. The (compressed) trace is tiled until ``hours`` are covered; every
    tile after the first is rotated by a seeded random offset, so tiles are not copies of one another.
    ``diurnal`` thins arrivals by :func:`diurnal_factor` (clock starting at ``start_hour``).
    ``fleet_scale`` multiplies the load: each request stands for that many.
    """
    if hours <= 0 or fleet_scale <= 0 or time_scale <= 0:
        raise ValueError("hours, fleet_scale and time_scale must be positive")
    rng = np.random.default_rng(seed)
    tile = base.duration_s / time_scale
    horizon = hours * 3600.0
    tiles = math.ceil(horizon / tile)
    parts_t, parts_i = [], []
    index = np.arange(base.size)
    for j in range(tiles):
        t = base.arrival_s / time_scale
        if j > 0:
            t = (t + rng.uniform(0.0, tile)) % tile
        parts_t.append(t + j * tile)
        parts_i.append(index)
    t_all = np.concatenate(parts_t)
    i_all = np.concatenate(parts_i)
    keep = t_all < horizon
    if diurnal:
        keep &= rng.random(t_all.size) < diurnal_factor(t_all + start_hour * 3600.0)
    t_all, i_all = t_all[keep], i_all[keep]
    order = np.argsort(t_all, kind="stable")
    i_all = i_all[order]
    return Workload(
        name=base.name,
        arrival_s=t_all[order],
        input_tokens=base.input_tokens[i_all],
        output_tokens=base.output_tokens[i_all],
        cached_tokens=base.cached_tokens[i_all],
        duration_s=horizon,
        weight=base.weight * fleet_scale,
    )
