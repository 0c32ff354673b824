"""The analysis of a Parquet trace streamed in chunks of steps, in worker processes.

The I/O shell around :func:`~heteroscale.stragglers.analysis.analyze_chunks`: chunks are read from
the Parquet file by whichever process analyses them, their recorded op times wait between passes
in a temporary folder (8 bytes per op, removed at the end), and each pass runs its chunks in a pool
of worker processes. Memory stays bounded by the largest chunk in each process, however long the
trace. A trace that fits one chunk is analysed in this process, without a pool or files.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from heteroscale.cores import available_cores
from heteroscale.stragglers.analysis import CHUNK_OPS, Analysis, MemoryStore, analyze_chunks
from heteroscale.stragglers.chunked import serial_map
from heteroscale.stragglers.op_tensor import Cube
from heteroscale.stragglers.parquet_trace import plan_chunks
from heteroscale.stragglers.trace import JobMeta, TraceError

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
        # Fork where there is fork: workers start at once, with this process's imports. A pool that
        # reports a dead worker (BrokenProcessPool) rather than waiting for it forever.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context(method)) as pool:
            # A forking pool starts its workers on the first task: start them before any chunk is
            # read, so they neither share its pages nor count them in their RSS.
            pool.submit(int).result()

            def map_chunks(fn: Callable[[int], T], indices: Sequence[int]) -> list[T]:
                return list(pool.map(fn, indices))

            try:
                return analyze_chunks(chunks, meta, store, map_chunks)
            except BrokenProcessPool as exc:
                raise TraceError(
                    f"a worker process died while analysing {path} (out of memory?); try fewer --workers"
                ) from exc
