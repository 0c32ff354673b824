"""The analysis of a Parquet trace streamed in chunks of steps, in worker processes.

The I/O shell around :func:`~heteroscale.stragglers.analysis.analyze_chunks`: chunks are read from
the Parquet file by whichever process analyses them, their recorded op times wait between passes
in a temporary folder (8 bytes per op, removed at the end), and each pass runs its chunks in a pool
of worker processes. Memory stays bounded by the largest chunk in each process, however long the
trace. A trace that fits one chunk is analysed in this process, without a pool or files.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from heteroscale.stragglers.analysis import CHUNK_OPS, Analysis, MemoryStore, analyze_chunks
from heteroscale.stragglers.chunked import serial_map
from heteroscale.stragglers.op_tensor import Cube
from heteroscale.stragglers.parquet_trace import plan_chunks
from heteroscale.stragglers.trace import JobMeta

T = TypeVar("T")


@dataclass(frozen=True)
class DiskStore:
    """Recorded op times of each chunk as a ``.npy`` file in ``folder``; any process can read them."""

    folder: Path

    def save(self, index: int, work: Cube) -> None:
        np.save(self.folder / f"chunk-{index}.npy", work)

    def load(self, index: int) -> Cube:
        work: Cube = np.load(self.folder / f"chunk-{index}.npy")
        return work


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def analyze_parquet(path: Path, meta: JobMeta, workers: int | None = None, chunk_ops: int = CHUNK_OPS) -> Analysis:
    """Analyse the Parquet trace at ``path`` with ``workers`` processes (default: one per core).

    Raise :class:`~heteroscale.stragglers.trace.TraceError` when it cannot be analysed.
    """
    chunks = plan_chunks(path, chunk_ops)
    if len(chunks) == 1:
        return analyze_chunks(chunks, meta, MemoryStore(), serial_map)
    processes = min(workers or available_cores(), len(chunks))
    with tempfile.TemporaryDirectory(prefix="heteroscale-stragglers-") as folder:
        store = DiskStore(Path(folder))
        if processes == 1:
            return analyze_chunks(chunks, meta, store, serial_map)
        # Fork where there is fork: workers start at once, with this process's imports. The pool
        # is made before any chunk is read, so no data is copied into the workers.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(processes) as pool:

            def map_chunks(fn: Callable[[int], T], indices: Sequence[int]) -> list[T]:
                return pool.map(fn, indices, chunksize=1)

            return analyze_chunks(chunks, meta, store, map_chunks)
