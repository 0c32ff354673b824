"""The per-operation training trace: op types, job metadata, the in-memory table and its validation.

Owns the schema of the released straggler traces (one row per operation; see
``heteroscale/data/stragglers/README.md``) and every check that turns a malformed trace into an
error naming the problem. Reading Parquet and YAML lives in :mod:`heteroscale.stragglers.trace_io`;
this module is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FORWARD_COMPUTE = "forward-compute"
BACKWARD_COMPUTE = "backward-compute"
OPTIMIZER = "optimizer"
GC = "gc"
FORWARD_SEND = "forward-send"
FORWARD_RECV = "forward-recv"
BACKWARD_SEND = "backward-send"
BACKWARD_RECV = "backward-recv"
PARAMS_ALL_GATHER = "params-all-gather"
GRADS_REDUCE_SCATTER = "grads-reduce-scatter"
SEPARATE_GRADS_ALL_REDUCE = "separate-grads-all-reduce"
LAYERNORM_GRADS_ALL_REDUCE = "layernorm-grads-all-reduce"
EMBEDDING_GRADS_ALL_REDUCE = "embedding-grads-all-reduce"
OPTIMIZER_CLIP_MAIN_GRAD = "optimizer-clip-main-grad"

# The code of an op type is its index here; the order is part of no file format.
OP_TYPES: tuple[str, ...] = (
    FORWARD_COMPUTE,
    BACKWARD_COMPUTE,
    OPTIMIZER,
    GC,
    FORWARD_SEND,
    FORWARD_RECV,
    BACKWARD_SEND,
    BACKWARD_RECV,
    PARAMS_ALL_GATHER,
    GRADS_REDUCE_SCATTER,
    SEPARATE_GRADS_ALL_REDUCE,
    LAYERNORM_GRADS_ALL_REDUCE,
    EMBEDDING_GRADS_ALL_REDUCE,
    OPTIMIZER_CLIP_MAIN_GRAD,
)
OP_CODE: dict[str, int] = {name: code for code, name in enumerate(OP_TYPES)}
PP_COMM_TYPES = frozenset({FORWARD_SEND, FORWARD_RECV, BACKWARD_SEND, BACKWARD_RECV})
DP_COMM_TYPES = frozenset({PARAMS_ALL_GATHER, GRADS_REDUCE_SCATTER, SEPARATE_GRADS_ALL_REDUCE})
# Communication in the sense of the ideal durations: its ideal is the median, not the mean, because
# comm stragglers are rare long outliers from external faults rather than workload imbalance.
COMM_TYPES = (
    PP_COMM_TYPES
    | DP_COMM_TYPES
    | {
        LAYERNORM_GRADS_ALL_REDUCE,
        EMBEDDING_GRADS_ALL_REDUCE,
        OPTIMIZER_CLIP_MAIN_GRAD,
    }
)

REQUIRED_COLUMNS: tuple[str, ...] = (
    "dp_rank",
    "stage",
    "rank",
    "step",
    "optype",
    "start_ts",
    "duration",
    "seq_id",
    "mc",
    "gmc",
    "mb_id",
)


class TraceError(ValueError):
    """The trace or its metadata cannot be analysed; the message names the problem."""


@dataclass(frozen=True)
class JobMeta:
    """Parallelism sizes of the traced job. ``cp`` is the artifact's ``dsp_size``."""

    name: str
    dp: int
    pp: int
    tp: int = 1
    cp: int = 1
    vpp: int = 1

    @property
    def world_size(self) -> int:
        return self.dp * self.pp * self.tp * self.cp

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> JobMeta:
        """Accept the artifact's ``meta-*.yaml`` keys (``dp_size`` ..., ``dsp_size`` for CP)."""

        def size(*keys: str, default: int | None = None) -> int:
            for key in keys:
                if key in raw:
                    value = raw[key]
                    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                        raise TraceError(f"metadata: {key} must be a positive integer, got {value!r}")
                    return value
            if default is None:
                raise TraceError(f"metadata: missing {' or '.join(keys)}")
            return default

        meta = cls(
            name=str(raw.get("trial_name", raw.get("name", "job"))),
            dp=size("dp_size", "dp"),
            pp=size("pp_size", "pp"),
            tp=size("tp_size", "tp", default=1),
            cp=size("dsp_size", "cp_size", "cp", default=1),
            vpp=size("vpp_size", "vpp", default=1),
        )
        if "world_size" in raw and raw["world_size"] != meta.world_size:
            raise TraceError(
                f"metadata: world_size {raw['world_size']} != dp·pp·tp·cp = "
                f"{meta.dp}·{meta.pp}·{meta.tp}·{meta.cp} = {meta.world_size}"
            )
        return meta


IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
# Trace columns keep the width they were stored with (int8 stages, float32 times): a trace of
# millions of rows is several times smaller so, and the analysis widens what it computes with.
Ints = npt.NDArray[np.integer[Any]]
Floats = npt.NDArray[np.floating[Any]]
_INT_COLUMNS = ("dp_rank", "stage", "rank", "step", "seq_id", "mc", "gmc", "mb_id")


@dataclass(frozen=True)
class Trace:
    """One row per recorded op of one (DP rank, PP stage) worker; TP/CP peers are not recorded apart.

    ``optype`` holds codes into :data:`OP_TYPES`. ``start_ts`` is in seconds on a clock shared by all
    workers; ``duration`` is the raw recorded duration (blocking time included for communication).
    ``nodes`` optionally maps a global rank to the machine it ran on.
    """

    dp_rank: Ints
    stage: Ints
    rank: Ints
    step: Ints
    optype: Ints
    start_ts: Floats
    duration: Floats
    seq_id: Ints
    mc: Ints
    gmc: Ints
    mb_id: Ints
    nodes: Mapping[int, str] | None = None

    def __len__(self) -> int:
        return len(self.step)

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any], nodes: Mapping[int, str] | None = None) -> Trace:
        """Build from column arrays; ``optype`` may hold names or codes. Raises :class:`TraceError`."""
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise TraceError(f"trace is missing column(s): {', '.join(missing)}")
        lengths = {c: len(columns[c]) for c in REQUIRED_COLUMNS}
        if len(set(lengths.values())) != 1:
            raise TraceError(f"trace columns differ in length: {lengths}")
        ints: dict[str, Ints] = {}
        for c in _INT_COLUMNS:
            arr = np.asarray(columns[c])
            if arr.dtype.kind not in "iu":
                raise TraceError(f"trace column {c} must hold integers, got {arr.dtype}")
            ints[c] = arr
        floats: dict[str, Floats] = {}
        for c in ("start_ts", "duration"):
            arr = np.asarray(columns[c])
            if arr.dtype.kind not in "fiu":
                raise TraceError(f"trace column {c} must hold numbers, got {arr.dtype}")
            floats[c] = arr if arr.dtype.kind == "f" else arr.astype(np.float64)
        return cls(
            optype=encode_optypes(columns["optype"]),
            start_ts=floats["start_ts"],
            duration=floats["duration"],
            nodes=nodes,
            **ints,
        )


def encode_optypes(values: Any) -> Ints:
    """Op-type codes from codes (checked) or from names (few distinct ones, however many rows)."""
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        if len(arr) and (arr.min() < 0 or arr.max() >= len(OP_TYPES)):
            raise TraceError("trace column optype holds an op-type code out of range")
        return arr
    names, inverse = np.unique(arr.astype(str), return_inverse=True)
    return optype_codes(names.tolist())[inverse.reshape(-1)]


def optype_codes(names: list[str], used: Ints | None = None) -> npt.NDArray[np.int8]:
    """Codes of op-type ``names`` (a column's dictionary). Raises naming the unknown ones that are
    ``used`` (indices into ``names``; all when None): a dictionary may list values no row holds."""
    codes = np.array([OP_CODE.get(n, -1) for n in names], dtype=np.int8)
    unknown = codes < 0
    if used is not None:
        unknown &= np.bincount(used, minlength=len(names)).astype(bool)
    if unknown.any():
        bad = ", ".join(str(n) for n, u in zip(names, unknown, strict=True) if u)
        raise TraceError(f"trace has unknown op type(s): {bad}; known: {', '.join(OP_TYPES)}")
    return codes


def validate(trace: Trace, meta: JobMeta) -> None:
    """Check the trace against itself and the job sizes; raise :class:`TraceError` naming the problem."""
    if len(trace) == 0:
        raise TraceError("trace is empty")
    for name in ("start_ts", "duration"):
        values: FloatArray = getattr(trace, name)
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise TraceError(f"trace has a non-finite {name} ({describe_row(trace, row)})")
    if (trace.duration < 0).any():
        row = int(np.flatnonzero(trace.duration < 0)[0])
        count = int((trace.duration < 0).sum())
        raise TraceError(
            f"trace has {count} negative duration(s), first {trace.duration[row]:.6g} s ({describe_row(trace, row)})"
        )
    for name, size, label in (("dp_rank", meta.dp, "dp_size"), ("stage", meta.pp, "pp_size")):
        column = getattr(trace, name)
        if column.min() < 0 or column.max() >= size or np.bincount(column, minlength=size).min() == 0:
            found = np.unique(column)
            raise TraceError(
                f"trace {name} values {_span(found)} do not match metadata {label}={size} "
                f"(expected each of 0..{size - 1})"
            )
    if trace.mc.max() >= meta.vpp:
        raise TraceError(f"trace model chunk mc up to {int(trace.mc.max())} does not fit metadata vpp_size={meta.vpp}")
    if (trace.seq_id < 0).any():
        raise TraceError("trace has a negative seq_id")
    # A worker is one (dp_rank, stage) pair; its global rank must be one number.
    worker = trace.dp_rank.astype(np.int64) * meta.pp + trace.stage
    first_rank = np.full(meta.dp * meta.pp, -1, dtype=np.int64)
    first_rank[worker] = trace.rank
    if (first_rank[worker] != trace.rank).any():
        row = int(np.flatnonzero(first_rank[worker] != trace.rank)[0])
        raise TraceError(f"trace gives one worker two global ranks ({describe_row(trace, row)})")
    if trace.rank.max() >= meta.world_size:
        raise TraceError(f"trace rank {int(trace.rank.max())} >= metadata world_size {meta.world_size}")
    present = {OP_TYPES[c] for c in np.flatnonzero(np.bincount(trace.optype))}
    for needed in (FORWARD_COMPUTE, BACKWARD_COMPUTE, OPTIMIZER):
        if needed not in present:
            raise TraceError(f"trace has no {needed} ops; the step end is defined by them")


def _span(values: Ints) -> str:
    if len(values) <= 6:
        return "{" + ", ".join(str(int(v)) for v in values) + "}"
    return f"{{{int(values[0])}, ..., {int(values[-1])}}} ({len(values)} distinct)"


def describe_row(trace: Trace, row: int) -> str:
    """A human pointer to one row, for error messages."""
    return (
        f"row {row}: step {int(trace.step[row])}, dp_rank {int(trace.dp_rank[row])}, "
        f"stage {int(trace.stage[row])}, {OP_TYPES[int(trace.optype[row])]} #{int(trace.seq_id[row])}"
    )
