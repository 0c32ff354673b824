"""The dependency model: which op waits for which, and which ops form one collective.

Built once from the template ops (DP rank 0, first step) and shared by every DP rank and step.
Streams per worker: one compute stream (forward and backward), one DP-communication stream and four
pipeline streams (forward/backward x send/recv); ops follow each other within a stream in launch
order. Across streams: parameter all-gather before its chunk's first forward; the last backward
before the gradient reduce-scatter; recv before compute before send; a collective transfers only
after all its members have launched. The rules follow the OSDI'25 what-if paper and its artifact
(including its 1F1B warm-up rule and the detection of send/recv ops that the profiler recorded but
never ran). Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from heteroscale.stragglers import trace as t
from heteroscale.stragglers.op_tensor import Layout, OpTensor
from heteroscale.stragglers.trace import OP_TYPES, IntArray, TraceError

# Clock skew between ranks is sub-millisecond; a tighter match would call real sends no-ops.
_MATCH_EPS = 5e-5
_PEER_STEP = {t.FORWARD_SEND: 1, t.FORWARD_RECV: -1, t.BACKWARD_SEND: -1, t.BACKWARD_RECV: 1}
_PEER_TYPE = {
    t.FORWARD_SEND: t.FORWARD_RECV,
    t.FORWARD_RECV: t.FORWARD_SEND,
    t.BACKWARD_SEND: t.BACKWARD_RECV,
    t.BACKWARD_RECV: t.BACKWARD_SEND,
}


@dataclass(frozen=True)
class Node:
    """One unit of the topological order: a lone op, or all members of one collective."""

    members: tuple[int, ...]
    collective: bool
    # Synchronised across all DP ranks of the step too (DP collectives and the global grad-norm).
    dp_sync: bool


@dataclass(frozen=True)
class DependencyModel:
    deps: tuple[IntArray, ...]  # per template op: the ops it waits for
    nodes: tuple[Node, ...]  # in topological order

    @property
    def n_ops(self) -> int:
        return len(self.deps)

    def may_end_last(self, nonnegative: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """Ops whose end may be a step's last, given which ops take no negative time: an op ends no
        later than any op that waits for it and takes time ≥ 0 (a collective waits for its members'
        launches too), so only ops without such a successor can end last."""
        waiter = np.repeat(np.arange(self.n_ops), [len(d) for d in self.deps])
        waited = np.concatenate(self.deps) if self.deps else np.empty(0, dtype=np.int64)
        ends_earlier = np.zeros(self.n_ops, dtype=bool)
        ends_earlier[waited[nonnegative[waiter]]] = True
        result: npt.NDArray[np.bool_] = ~ends_earlier
        return result


class _Builder:
    def __init__(self, ops: OpTensor, pp: int, vpp: int, use_dp: bool) -> None:
        self.ops = ops.layout
        self.pp, self.vpp, self.use_dp = pp, vpp, use_dp
        self.start = ops.template_start()
        self.end = ops.template_end()
        self.deps: list[set[int]] = [set() for _ in range(ops.n_ops)]
        self.groups: list[tuple[tuple[int, ...], bool]] = []
        self.by_type_stage: dict[tuple[str, int], list[int]] = defaultdict(list)
        for k in range(ops.n_ops):
            self.by_type_stage[(OP_TYPES[self.ops.optype[k]], int(self.ops.stage[k]))].append(k)

    def launch_order(self, ops: Iterable[int]) -> list[int]:
        o = self.ops
        return sorted(ops, key=lambda k: (self.start[k], o.seq_id[k], OP_TYPES[o.optype[k]]))

    def of(self, optype: str, stage: int) -> list[int]:
        return self.launch_order(self.by_type_stage.get((optype, stage), []))

    def chain(self, ops: Sequence[int], first_deps: Iterable[int] = ()) -> None:
        previous = list(first_deps)
        for k in ops:
            self.deps[k].update(previous)
            previous = [k]

    def build(self) -> DependencyModel:
        pp = self.pp
        noop: dict[int, bool] = {}
        for stage in range(pp):
            compute = self.launch_order(self.of(t.FORWARD_COMPUTE, stage) + self.of(t.BACKWARD_COMPUTE, stage))
            self.chain(compute)
            for optype in _PEER_TYPE:
                self.chain(self.of(optype, stage))
            noop.update(self.match_pipeline_ops(stage))
            self.warm_up_rule(stage, compute)
            if self.use_dp:
                self.chain(
                    self.launch_order(self.of(t.PARAMS_ALL_GATHER, stage) + self.of(t.GRADS_REDUCE_SCATTER, stage))
                )
                self.params_before_first_forward(stage)
            self.after_last_compute(stage, compute)
        self.pair_pipeline_ops(noop)
        self.collectives()
        return self.finish()

    def match_pipeline_ops(self, stage: int) -> dict[int, bool]:
        """Tie each send/recv to its compute; return which of them are no-ops the profiler invented."""
        o = self.ops
        noop: dict[int, bool] = {}
        for direction in ("forward", "backward"):
            compute = self.of(f"{direction}-compute", stage)
            by_seq = {int(o.seq_id[k]): k for k in compute}
            last_start = max(self.start[k] for k in compute)
            first_end = min(self.end[k] for k in compute)
            for kind in ("send", "recv"):
                optype = f"{direction}-{kind}"
                comm = self.of(optype, stage)
                # Type-1 no-ops: recvs after the last compute started, sends before the first ended.
                if kind == "recv":
                    live = [self.start[k] <= last_start + _MATCH_EPS for k in comm]
                else:
                    live = [self.end[k] >= first_end - _MATCH_EPS for k in comm]
                compute_id = 0
                if sum(live) != len(compute):
                    if stage not in (0, self.pp - 1) or sum(live) not in (0, len(compute) - 1):
                        raise TraceError(
                            f"stage {stage} records {sum(live)} {optype} ops for {len(compute)} "
                            f"{direction}-compute ops; the pipeline schedule is not one this model knows"
                        )
                    if kind == "recv" and sum(live) + 1 == len(compute):
                        compute_id = 1
                for k, is_live in zip(comm, live, strict=True):
                    noop[k] = True
                    if not is_live:
                        continue
                    target = by_seq[compute_id]
                    # Type-2 no-ops: the peer chunk is outside the model (first/last chunk under VPP).
                    peer_gmc = int(o.gmc[target]) + _PEER_STEP[optype]
                    noop[k] = not 0 <= peer_gmc < self.vpp * self.pp
                    if kind == "send":
                        self.deps[k].add(target)
                    else:
                        self.deps[target].add(k)
                        if compute_id - 1 in by_seq:
                            self.deps[k].add(by_seq[compute_id - 1])
                    compute_id += 1
        return noop

    def warm_up_rule(self, stage: int, compute: list[int]) -> None:
        """In 1F1B the first backward send/recv is posted two forwards before the first backward."""
        o = self.ops
        kinds = [OP_TYPES[o.optype[k]] for k in compute]
        if t.BACKWARD_COMPUTE not in kinds:
            return
        first_bwd = kinds.index(t.BACKWARD_COMPUTE)
        if first_bwd < 2:  # no pipeline warm-up: nothing is posted early
            return
        anchor = compute[first_bwd - 2]
        for optype in (t.BACKWARD_RECV, t.BACKWARD_SEND):
            for k in self.by_type_stage.get((optype, stage), []):
                if o.seq_id[k] == 0:
                    self.deps[k].add(anchor)

    def params_before_first_forward(self, stage: int) -> None:
        o = self.ops
        gathers = sorted(self.by_type_stage.get((t.PARAMS_ALL_GATHER, stage), []), key=lambda k: o.seq_id[k])
        forwards = self.of(t.FORWARD_COMPUTE, stage)
        done: set[int] = set()
        for gather in reversed(gathers):
            chunk = _chunk(o, gather)
            if chunk in done:
                continue
            first = [k for k in forwards if o.mc[k] == chunk]
            if first:
                self.deps[first[0]].add(gather)
            done.add(chunk)

    def after_last_compute(self, stage: int, compute: list[int]) -> None:
        """Chain gc → layernorm → embedding → gradient sync → clip → optimizer after the last backward."""
        o = self.ops
        last_compute = max(compute, key=lambda k: self.end[k])
        overlapped = bool(self.by_type_stage.get((t.SEPARATE_GRADS_ALL_REDUCE, stage)))
        reduce_scatters = sorted(self.by_type_stage.get((t.GRADS_REDUCE_SCATTER, stage), []), key=lambda k: o.seq_id[k])

        def seq(optype: str) -> list[int]:
            return sorted(self.by_type_stage.get((optype, stage), []), key=lambda k: o.seq_id[k])

        head = seq(t.GC)
        self.chain(head, [last_compute])
        first_deps = head[-1:] or [last_compute]
        middle = seq(t.LAYERNORM_GRADS_ALL_REDUCE)
        if stage in (0, self.pp - 1):
            middle += seq(t.EMBEDDING_GRADS_ALL_REDUCE)
        if self.use_dp and overlapped:
            # Reduce-scatter overlaps backward: each waits for the last backward of its own chunk.
            done: set[int] = set()
            for rs in reduce_scatters:
                chunk = _chunk(o, rs)
                if chunk not in done:
                    last_bwd = [k for k in compute if OP_TYPES[o.optype[k]] == t.BACKWARD_COMPUTE]
                    mine = [k for k in last_bwd if o.mc[k] == chunk]
                    if mine:
                        self.deps[rs].add(max(mine, key=lambda k: self.end[k]))
                    done.add(chunk)
            first_deps += reduce_scatters[-1:]
            middle += seq(t.SEPARATE_GRADS_ALL_REDUCE)
        elif self.use_dp:
            middle += reduce_scatters
        self.chain([*middle, *seq(t.OPTIMIZER_CLIP_MAIN_GRAD), *seq(t.OPTIMIZER)], first_deps)

    def pair_pipeline_ops(self, noop: dict[int, bool]) -> None:
        o = self.ops
        pending: dict[tuple[str, int, int], int] = {}
        for stage in range(self.pp):
            for optype in _PEER_TYPE:
                live = [k for k in self.of(optype, stage) if not noop.get(k, True)]
                for index, k in enumerate(live):
                    peer_stage = (stage + _PEER_STEP[optype]) % self.pp
                    peer = pending.pop((optype, index, stage), None)
                    if peer is None:
                        pending[(_PEER_TYPE[optype], index, peer_stage)] = k
                    else:
                        self.groups.append(((peer, k), False))
        if pending:
            (optype, index, stage), k = next(iter(pending.items()))
            raise TraceError(
                f"{OP_TYPES[o.optype[k]]} #{int(o.seq_id[k])} on stage {int(o.stage[k])} has no matching "
                f"{optype} #{index} on stage {stage}"
            )
        for k, is_noop in noop.items():
            if is_noop:
                self.groups.append(((k,), False))

    def collectives(self) -> None:
        o = self.ops
        if self.use_dp:
            for optype in (t.PARAMS_ALL_GATHER, t.GRADS_REDUCE_SCATTER, t.SEPARATE_GRADS_ALL_REDUCE):
                for stage in range(self.pp):
                    self.groups.extend(((k,), True) for k in self.by_type_stage.get((optype, stage), []))
        first_of = {(OP_TYPES[o.optype[k]], int(o.stage[k])): k for k in range(o.n_ops) if o.seq_id[k] == 0}
        embedding = [
            first_of[key]
            for key in {(t.EMBEDDING_GRADS_ALL_REDUCE, 0), (t.EMBEDDING_GRADS_ALL_REDUCE, self.pp - 1)}
            if key in first_of
        ]
        if embedding:
            self.groups.append((tuple(sorted(embedding)), False))
        clip = [first_of[key] for key in first_of if key[0] == t.OPTIMIZER_CLIP_MAIN_GRAD]
        if clip:
            self.groups.append((tuple(sorted(clip)), True))

    def finish(self) -> DependencyModel:
        n = self.ops.n_ops
        node_of = np.arange(n)
        nodes: list[Node] = [Node((k,), False, False) for k in range(n)]
        for members, dp_sync in self.groups:
            node_of[list(members)] = len(nodes)
            nodes.append(Node(members, True, dp_sync))
        used = sorted(set(node_of.tolist()))
        waits: dict[int, set[int]] = {v: set() for v in used}
        for k in range(n):
            waits[int(node_of[k])].update(int(node_of[d]) for d in self.deps[k])
        for v in used:
            waits[v].discard(v)
        order = _topological_order(waits)
        if len(order) != len(used):
            stuck = next(v for v in used if v not in set(order))
            k = nodes[stuck].members[0]
            raise TraceError(
                f"dependency cycle through {OP_TYPES[self.ops.optype[k]]} #{int(self.ops.seq_id[k])} "
                f"on stage {int(self.ops.stage[k])}; the recorded op order is inconsistent"
            )
        return DependencyModel(
            deps=tuple(np.array(sorted(d), dtype=np.int64) for d in self.deps),
            nodes=tuple(nodes[v] for v in order),
        )


def _chunk(ops: Layout, k: int) -> int:
    """Model chunk of a DP collective; one recorded without a chunk (mc = -1) serves chunk 0."""
    return max(int(ops.mc[k]), 0)


def _topological_order(waits: dict[int, set[int]]) -> list[int]:
    successors: dict[int, list[int]] = defaultdict(list)
    indegree = {v: len(w) for v, w in waits.items()}
    for v, w in waits.items():
        for u in w:
            successors[u].append(v)
    ready = deque(sorted(v for v, d in indegree.items() if d == 0))
    order = []
    while ready:
        u = ready.popleft()
        order.append(u)
        for v in successors[u]:
            indegree[v] -= 1
            if indegree[v] == 0:
                ready.append(v)
    return order


def build_dependency_model(ops: OpTensor, pp: int, vpp: int, use_dp: bool) -> DependencyModel:
    """Raise :class:`TraceError` when the recorded ops do not fit the model (unpaired send, cycle)."""
    return _Builder(ops, pp, vpp, use_dp).build()
