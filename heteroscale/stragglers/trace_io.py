"""Reading traces (Parquet, or a folder of PyTorch profiler JSON files) and job metadata (YAML).

The I/O edge of the trace model: everything here turns files into :class:`Trace` and
:class:`JobMeta` and reports unreadable input as :class:`TraceError`.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from heteroscale.stragglers.parquet_trace import read_parquet
from heteroscale.stragglers.trace import JobMeta, Trace, TraceError


def load_meta(path: Path) -> JobMeta:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TraceError(f"cannot read metadata {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise TraceError(f"metadata {path} is not a YAML mapping")
    return JobMeta.from_mapping(raw)


def load_trace(path: Path, meta: JobMeta) -> Trace:
    """A whole Parquet trace, or a folder of per-rank PyTorch profiler Chrome-trace JSON files."""
    if path.is_dir():
        from heteroscale.stragglers.profiler_import import import_profiler_traces

        traces: Trace = import_profiler_traces(sorted(path.glob("*.json")), meta)
        return traces
    return read_parquet(path)
