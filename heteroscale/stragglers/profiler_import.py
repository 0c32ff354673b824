"""Importer for PyTorch profiler traces (Chrome-trace JSON, one file per rank) into a :class:`Trace`.

What maps to which op type:

* ``record_function("forward-compute")`` / ``("backward-compute")`` ranges: forward/backward compute
  (the profiler cannot tell a forward from a backward on its own; this is NDTimeline's naming);
  ``Optimizer.step#...`` (emitted by ``torch.optim``) or an ``optimizer`` range: the optimizer.
* ``c10d::send`` / ``c10d::recv_``: pipeline send/recv. A recv feeds the next compute on the rank
  and a send carries the previous compute's output, so their direction (forward or backward) is
  read from the neighbouring compute.
* ``c10d::_allgather_base_`` / ``allgather_``: ``params-all-gather``; ``reduce_scatter`` variants and
  multi-element ``allreduce_`` (data-parallel gradient sync): ``grads-reduce-scatter``; a
  one-element ``allreduce_`` (the global gradient norm; needs ``record_shapes=True``):
  ``optimizer-clip-main-grad``.

A communication op runs from its c10d call to the end of the backend's own event for it
(``gloo:recv``, ``nccl:all_reduce``...), which may run on another thread. A step ends with its
optimizer op. The global rank comes from ``distributedInfo`` and maps to (DP rank, stage) in
Megatron order (TP fastest, then CP, DP, PP); only TP/CP rank 0 is kept, since the analysis has
one stream per (DP, PP) worker. ``host_name`` names the rank's node. Clocks of all files must be
comparable (one host, or synchronised hosts).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from heteroscale.stragglers import trace as t
from heteroscale.stragglers.trace import JobMeta, Trace, TraceError

_COMPUTE_NAMES = {"forward-compute": t.FORWARD_COMPUTE, "backward-compute": t.BACKWARD_COMPUTE}
_C10D_KIND = {
    "c10d::send": "send",
    "c10d::recv_": "recv",
    "c10d::allreduce_": "all_reduce",
    "c10d::_allgather_base_": "all_gather",
    "c10d::allgather_": "all_gather",
    "c10d::allgather_into_tensor_coalesced_": "all_gather",
    "c10d::reduce_scatter_": "reduce_scatter",
    "c10d::_reduce_scatter_base_": "reduce_scatter",
    "c10d::reduce_scatter_tensor_coalesced_": "reduce_scatter",
}


@dataclass
class _Op:
    optype: str
    start: float  # seconds
    end: float
    numel: int | None = None


def import_profiler_traces(paths: Sequence[Path], meta: JobMeta) -> Trace:
    if not paths:
        raise TraceError("no PyTorch profiler trace files (*.json) given")
    per_rank: dict[int, tuple[list[list[_Op]], str | None]] = {}
    for path in paths:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise TraceError(f"cannot read profiler trace {path}: {exc}") from exc
        info = doc.get("distributedInfo") if isinstance(doc, dict) else None
        if not isinstance(info, dict) or "rank" not in info:
            raise TraceError(f"profiler trace {path} has no distributedInfo.rank (not a distributed run?)")
        if int(info.get("world_size", meta.world_size)) != meta.world_size:
            raise TraceError(f"profiler trace {path} says world_size {info['world_size']}, metadata {meta.world_size}")
        rank = int(info["rank"])
        if rank % (meta.tp * meta.cp) != 0:
            continue  # a TP/CP peer of a recorded worker
        if rank in per_rank:
            raise TraceError(f"two profiler traces for rank {rank}")
        per_rank[rank] = (_steps(_ops(doc.get("traceEvents", []), path), path), doc.get("host_name"))
    expected = {((s * meta.dp + d) * meta.cp) * meta.tp for s in range(meta.pp) for d in range(meta.dp)}
    if set(per_rank) != expected:
        missing = sorted(expected - set(per_rank))
        raise TraceError(f"profiler traces missing for rank(s) {missing}")
    n_steps = {len(steps) for steps, _ in per_rank.values()}
    if len(n_steps) != 1:
        raise TraceError(f"ranks recorded different numbers of steps: {sorted(n_steps)}")

    rows: dict[str, list[Any]] = {c: [] for c in t.REQUIRED_COLUMNS}
    nodes: dict[int, str] = {}
    for rank, (steps, host) in sorted(per_rank.items()):
        worker = rank // (meta.tp * meta.cp)
        stage, dp_rank = divmod(worker, meta.dp)
        if host:
            nodes[rank] = str(host)
        for step, ops in enumerate(steps):
            seen: dict[str, int] = {}
            for op in sorted(ops, key=lambda o: o.start):
                seq = seen.get(op.optype, 0)
                seen[op.optype] = seq + 1
                compute = op.optype in (t.FORWARD_COMPUTE, t.BACKWARD_COMPUTE)
                for column, value in (
                    ("dp_rank", dp_rank),
                    ("stage", stage),
                    ("rank", rank),
                    ("step", step),
                    ("optype", op.optype),
                    ("start_ts", op.start),
                    ("duration", op.end - op.start),
                    ("seq_id", seq),
                    ("mc", 0 if compute else -1),
                    ("gmc", stage if compute else -1),
                    ("mb_id", seq if compute else -1),
                ):
                    rows[column].append(value)
    columns = {c: np.asarray(v) for c, v in rows.items()}
    return Trace.from_columns(columns, nodes=nodes or None)


def _ops(events: list[dict[str, Any]], path: Path) -> list[_Op]:
    """Ops of one rank in start order; communication still carries its collective kind."""
    ops: list[_Op] = []
    calls: dict[str, list[_Op]] = {}
    backend: dict[str, list[tuple[float, float]]] = {}
    for event in events:
        if event.get("ph") != "X" or "dur" not in event:
            continue
        name = str(event.get("name", ""))
        start = float(event["ts"]) * 1e-6
        end = start + float(event["dur"]) * 1e-6
        if name in _COMPUTE_NAMES:
            ops.append(_Op(_COMPUTE_NAMES[name], start, end))
        elif name.startswith("Optimizer.step#") or name == "optimizer":
            ops.append(_Op(t.OPTIMIZER, start, end))
        elif name in _C10D_KIND:
            op = _Op(_C10D_KIND[name], start, end, _numel(event.get("args", {})))
            calls.setdefault(op.optype, []).append(op)
            ops.append(op)
        elif ":" in name and event.get("cat") == "user_annotation":
            backend.setdefault(name.split(":", 1)[1], []).append((start, end))
    for kind, mine in calls.items():
        done = sorted(backend.get(kind, []))
        # The backend event of each call is the k-th of its kind; without them keep the call's span.
        if len(done) == len(mine):
            for op, (_, finish) in zip(sorted(mine, key=lambda o: o.start), done, strict=True):
                op.end = max(op.end, finish)
    if not ops:
        raise TraceError(f"profiler trace {path} has no forward-compute/backward-compute/optimizer ranges")
    return sorted(ops, key=lambda o: o.start)


def _numel(args: dict[str, Any]) -> int | None:
    dims = args.get("Input Dims")
    if not isinstance(dims, list) or not dims:
        return None
    first = dims[0]
    while isinstance(first, list) and first and isinstance(first[0], list):
        first = first[0]
    return math.prod(int(x) for x in first) if isinstance(first, list) else None


def _steps(ops: list[_Op], path: Path) -> list[list[_Op]]:
    """Cut at each optimizer op and give communication its op type from its neighbours."""
    steps: list[list[_Op]] = []
    current: list[_Op] = []
    for op in ops:
        current.append(op)
        if op.optype == t.OPTIMIZER:
            steps.append(current)
            current = []
    if not steps:
        raise TraceError(f"profiler trace {path} has no optimizer step (Optimizer.step# or 'optimizer')")
    for step in steps:
        computes = [i for i, op in enumerate(step) if op.optype in (t.FORWARD_COMPUTE, t.BACKWARD_COMPUTE)]
        for i, op in enumerate(step):
            if op.optype == "send":
                before = [step[j].optype for j in computes if j < i]
                op.optype = t.BACKWARD_SEND if before and before[-1] == t.BACKWARD_COMPUTE else t.FORWARD_SEND
            elif op.optype == "recv":
                after = [step[j].optype for j in computes if j > i]
                op.optype = t.BACKWARD_RECV if after and after[0] == t.BACKWARD_COMPUTE else t.FORWARD_RECV
            elif op.optype == "all_gather":
                op.optype = t.PARAMS_ALL_GATHER
            elif op.optype == "reduce_scatter":
                op.optype = t.GRADS_REDUCE_SCATTER
            elif op.optype == "all_reduce":
                op.optype = t.OPTIMIZER_CLIP_MAIN_GRAD if op.numel == 1 else t.GRADS_REDUCE_SCATTER
    return steps
