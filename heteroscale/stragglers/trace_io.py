"""Reading traces (Parquet, or a folder of PyTorch profiler JSON files) and job metadata (YAML).

The I/O edge of the trace model: everything here turns files into :class:`Trace` and
:class:`JobMeta` and reports unreadable input as :class:`TraceError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

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
    """A Parquet trace, or a folder of per-rank PyTorch profiler Chrome-trace JSON files."""
    if path.is_dir():
        from heteroscale.stragglers.profiler_import import import_profiler_traces

        traces: Trace = import_profiler_traces(sorted(path.glob("*.json")), meta)
        return traces
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise TraceError(f"cannot read trace {path}: {exc}") from exc
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns[name] = column.to_numpy()
    nodes = None
    if "node" in columns:
        # Where the trace names each rank's machine, keep it: suspects are reported as nodes too.
        ranks, first = np.unique(np.asarray(columns["rank"]), return_index=True)
        nodes = {int(r): str(columns["node"][i]) for r, i in zip(ranks, first, strict=True)}
    return Trace.from_columns(columns, nodes=nodes)
