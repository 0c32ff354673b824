"""Load the bundled request traces (and user traces of the same formats) into numpy arrays.

One loader per published format; both the `decide` replay and the simulator read traces here.
Arrival times are seconds from the trace's first request.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

import numpy as np
import numpy.typing as npt

BUNDLED = {
    "azure-conv": "azure_llm_2023/AzureLLMInferenceTrace_conv.csv.gz",
    "azure-code": "azure_llm_2023/AzureLLMInferenceTrace_code.csv.gz",
    "mooncake": "mooncake/conversation_trace.jsonl.gz",
}


@dataclass(frozen=True)
class Trace:
    """Requests of one trace, sorted by arrival."""

    name: str
    arrival: npt.NDArray[np.float64]
    """Seconds since the first request."""
    input_tokens: npt.NDArray[np.int64]
    output_tokens: npt.NDArray[np.int64]
    hash_ids: list[list[int]] | None = None
    """Mooncake only: 512-token prefix-block hashes per request (shared id = reusable KV)."""

    @property
    def duration(self) -> float:
        return float(self.arrival[-1]) if len(self.arrival) else 0.0


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _azure(path: Path, name: str) -> Trace:
    times, inputs, outputs = [], [], []
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        missing = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: not an Azure LLM trace; missing column(s) {sorted(missing)}")
        for row in reader:
            # Timestamps carry 7 fractional digits; datetime takes at most 6.
            times.append(datetime.fromisoformat(row["TIMESTAMP"][:26]).timestamp())
            inputs.append(int(row["ContextTokens"]))
            outputs.append(int(row["GeneratedTokens"]))
    return _build(name, times, inputs, outputs, None)


def _mooncake(path: Path, name: str) -> Trace:
    times, inputs, outputs, hashes = [], [], [], []
    with _open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                times.append(record["timestamp"] / 1000.0)
                inputs.append(int(record["input_length"]))
                outputs.append(int(record["output_length"]))
                hashes.append([int(h) for h in record.get("hash_ids", [])])
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a Mooncake trace record ({exc})") from exc
    return _build(name, times, inputs, outputs, hashes)


def _build(
    name: str, times: list[float], inputs: list[int], outputs: list[int], hashes: list[list[int]] | None
) -> Trace:
    if not times:
        raise ValueError(f"trace {name} has no requests")
    arrival = np.asarray(times, dtype=np.float64)
    order = np.argsort(arrival, kind="stable")
    arrival = arrival[order] - arrival[order[0]]
    return Trace(
        name=name,
        arrival=arrival,
        input_tokens=np.asarray(inputs, dtype=np.int64)[order],
        output_tokens=np.asarray(outputs, dtype=np.int64)[order],
        hash_ids=[hashes[i] for i in order] if hashes is not None else None,
    )


def load(name_or_path: str) -> Trace:
    """A bundled trace by name (see :data:`BUNDLED`) or a file in the Azure CSV or Mooncake JSONL format."""
    if name_or_path in BUNDLED:
        resource = resources.files("heteroscale.data").joinpath(BUNDLED[name_or_path])
        with resources.as_file(resource) as path:
            return _load_path(Path(path), name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no trace {name_or_path!r}: give one of {', '.join(BUNDLED)} or a path to a .csv[.gz] or .jsonl[.gz] file"
        )
    return _load_path(path, path.name)


def _load_path(path: Path, name: str) -> Trace:
    stem = path.name.removesuffix(".gz")
    if stem.endswith(".csv"):
        return _azure(path, name)
    if stem.endswith(".jsonl"):
        return _mooncake(path, name)
    raise ValueError(f"{path}: unknown trace format; expected .csv (Azure) or .jsonl (Mooncake), optionally .gz")


def decode_tps_series(trace: Trace, bin_seconds: float = 60.0, scale: float = 1.0) -> npt.NDArray[np.float64]:
    """Offered decode load per bin: output tokens of the requests arriving in each bin, per second.

    A fluid approximation (a request's tokens are counted in its arrival bin), good enough to drive
    the policy replay; the simulator models generation over time properly.
    """
    # Only whole bins: a trailing partial bin would read as a spurious drop in load.
    bins = max(1, int(trace.duration // bin_seconds))
    keep = trace.arrival < bins * bin_seconds
    index = (trace.arrival[keep] // bin_seconds).astype(np.int64)
    weights = trace.output_tokens[keep].astype(np.float64)
    tokens = np.bincount(index, weights=weights, minlength=bins)
    return tokens * scale / bin_seconds
