"""Parquet traces: read whole or a few row groups at a time, as chunks of whole steps.

Reading decodes only the columns the analysis uses, each once. Op types are taken from the
column's Parquet dictionary (a dozen names, however many rows) as int8 codes, never as per-row
strings, and integer columns keep their stored width (int8 stages, float32 times).

A chunk is a run of row groups that holds whole steps: the plan reads each row group's step range
from its statistics (or from its ``step`` column where the writer left none), keeps row groups whose
ranges overlap together, and closes a chunk once it holds enough ops. A trace written in step order,
a row group per step or a few, is read one chunk at a time; one written as a single row group is one
chunk, read whole. The I/O edge: unreadable files and missing columns are :class:`TraceError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from heteroscale.stragglers.analysis import CHUNK_OPS, chunk_boundaries
from heteroscale.stragglers.trace import REQUIRED_COLUMNS, Trace, TraceError, optype_codes

_NODE = "node"  # optional: the machine each rank ran on


def _open(path: Path) -> pq.ParquetFile:
    try:
        names = pq.read_schema(path).names
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise TraceError(f"trace {path} is missing column(s): {', '.join(missing)}")
        strings = [c for c in ("optype", _NODE) if c in names]
        return pq.ParquetFile(path, read_dictionary=strings)
    except (OSError, pa.ArrowException) as exc:
        raise TraceError(f"cannot read trace {path}: {exc}") from exc


def read_parquet(path: Path, row_groups: Sequence[int] | None = None) -> Trace:
    """The trace in ``path``, or only in its ``row_groups``."""
    file = _open(path)
    columns = [*REQUIRED_COLUMNS, *([_NODE] if _NODE in file.schema_arrow.names else [])]
    groups = range(file.num_row_groups) if row_groups is None else row_groups
    try:
        table = file.read_row_groups(list(groups), columns=columns)
    except (OSError, pa.ArrowException) as exc:
        raise TraceError(f"cannot read trace {path}: {exc}") from exc
    arrays: dict[str, Any] = {}
    for name in REQUIRED_COLUMNS:
        column = table.column(name)
        if column.null_count:
            raise TraceError(f"trace column {name} has {column.null_count} missing value(s)")
        if name == "optype" and pa.types.is_dictionary(column.type):
            arrays[name] = _dictionary_codes(column)
        else:
            arrays[name] = column.to_numpy()
    nodes = _nodes(arrays["rank"], table.column(_NODE)) if _NODE in columns else None
    return Trace.from_columns(arrays, nodes=nodes)


def _dictionary_codes(column: pa.ChunkedArray) -> np.ndarray:
    parts = []
    for chunk in column.chunks:
        indices = chunk.indices.to_numpy()
        parts.append(optype_codes(chunk.dictionary.to_pylist(), used=indices)[indices])
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int8)


def _nodes(rank: np.ndarray, column: pa.ChunkedArray) -> dict[int, str]:
    """Where the trace names each rank's machine, keep it: suspects are reported as nodes too."""
    ranks, first = np.unique(rank, return_index=True)
    names = column.take(pa.array(first)).to_pylist()
    return {int(r): str(n) for r, n in zip(ranks, names, strict=True)}


@dataclass(frozen=True)
class ParquetChunks:
    """A Parquet trace as chunks of whole steps (see :class:`~.analysis.Chunks`); picklable."""

    path: Path
    row_groups: tuple[tuple[int, ...], ...]  # per chunk, in step order

    def __len__(self) -> int:
        return len(self.row_groups)

    def __getitem__(self, index: int) -> Trace:
        return read_parquet(self.path, self.row_groups[index])


def plan_chunks(path: Path, chunk_ops: int = CHUNK_OPS) -> ParquetChunks:
    """Chunks of whole steps of ``path``, each closed once it holds ``chunk_ops`` ops or more."""
    file = _open(path)
    spans = []  # (first step, last step, row group, rows) per non-empty row group
    for g in range(file.num_row_groups):
        meta = file.metadata.row_group(g)
        if meta.num_rows:
            spans.append((*_step_span(file, g), g, meta.num_rows))
    if not spans:
        raise TraceError(f"trace {path} is empty")
    # Row groups whose step ranges overlap may share a step: they are read together.
    units: list[tuple[list[int], int]] = []
    last = None
    for lo, hi, g, rows in sorted(spans):
        if last is not None and lo <= last:
            units[-1][0].append(g)
            units[-1] = (units[-1][0], units[-1][1] + rows)
            last = max(last, hi)
        else:
            units.append(([g], rows))
            last = hi
    chunk = chunk_boundaries([rows for _, rows in units], chunk_ops)
    row_groups: list[list[int]] = [[] for _ in range(int(chunk[-1]) + 1)]
    for (groups, _), c in zip(units, chunk, strict=True):
        row_groups[int(c)].extend(groups)
    return ParquetChunks(path, tuple(tuple(sorted(g)) for g in row_groups))


def _step_span(file: pq.ParquetFile, group: int) -> tuple[int, int]:
    meta = file.metadata.row_group(group)
    step = next(i for i in range(meta.num_columns) if meta.column(i).path_in_schema == "step")
    stats = meta.column(step).statistics
    if stats is not None and stats.has_min_max and isinstance(stats.min, int):
        return stats.min, stats.max
    steps = file.read_row_group(group, columns=["step"]).column("step").to_numpy()
    if steps.dtype.kind not in "iu":
        raise TraceError(f"trace column step must hold integers, got {steps.dtype}")
    return int(steps.min()), int(steps.max())
