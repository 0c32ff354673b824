"""The two fluid FIFO pools of one P/D service, stepped every ``dt`` seconds (pure).

Why fluid: a 24 h day of a 1,000-instance fleet is hundreds of millions of requests, far beyond
a per-request event loop. Each pool is a fluid FIFO server whose capacity is the sum of its ready
instances, driven by the work the *whole* fleet's users offer per step (:class:`Offered`, the
cumulative sums of :meth:`Workload.offered` at step boundaries). A FIFO position is an arrival
time in steps: the pool has served everything that arrived before it.

* prefill: work (seconds on the preferred prefill GPU) drains at the pool's capacity;
* decode: sequences are admitted in FIFO order while the pool has batch slots and KV cache; every
  ready instance holds the same batch (round-robin routing) and steps at the perf model's step
  time, which is each sequence's TBT; sequences finish in proportion to the tokens generated.

Arrivals within a step may be served in that step and are spread evenly over it; decode
completions use the mean remaining length; instances of one role on different GPU types share
work in proportion to their speed.

Every quantity is an array over *lanes*: independent fleets serving the same offered load in
lockstep (the policies of one study, or the candidate fleets of a stress test or an oracle
search), so one pass of numpy arithmetic steps them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from heteroscale.simulate.perfmodel import FloatArray, InstanceModel


@dataclass(frozen=True)
class Offered:
    """What the whole fleet's users offer, cumulated at step boundaries (column ``s``: before step
    ``s``), one row per quantity: requests, prefill work (reference-GPU seconds), prompt tokens,
    KV-missed prompt tokens and output tokens."""

    cum: FloatArray

    REQUESTS, WORK, PROMPT, MISSED, OUTPUT = range(5)

    @classmethod
    def from_steps(cls, per_step: FloatArray) -> Offered:
        """From the per-step sums (rows in the order above)."""
        return cls(np.concatenate([np.zeros((5, 1)), np.cumsum(per_step, axis=1)], axis=1))

    def at(self, x: FloatArray) -> FloatArray:
        """Every quantity at fractional positions ``x`` (linear within a step): shape (5, lanes)."""
        i = np.minimum(x.astype(np.int64), self.cum.shape[1] - 2)
        lo = self.cum[:, i]
        result: FloatArray = lo + (x - i) * (self.cum[:, i + 1] - lo)
        return result


@dataclass
class Queues:
    """The pools' fluid state per lane, carried from step to step."""

    #: Prefill work done (reference-GPU seconds).
    processed: FloatArray
    #: FIFO positions (steps): requests prefilled / admitted to decode.
    x_p: FloatArray
    x_d: FloatArray
    #: Decoding sequences, their remaining output tokens and their KV tokens.
    active: FloatArray
    remaining: FloatArray
    kv_tokens: FloatArray

    @classmethod
    def empty(cls, lanes: int) -> Queues:
        return cls(*(np.zeros(lanes) for _ in range(6)))


@dataclass(frozen=True)
class PrefillStep:
    busy: FloatArray
    #: Prompt tokens computed per second (prefix hits excluded) and all prompt tokens per second.
    missed_tps: FloatArray
    raw_tps: FloatArray


@dataclass(frozen=True)
class DecodeStep:
    generated_tps: FloatArray
    #: Step time at the step's time-averaged batch (each sequence's TBT); 0 without instances.
    tbt: FloatArray
    #: Engine-reported utilisation, 1 - e^(-mean batch); 0 without instances.
    reported_util: FloatArray


def _safe(x: FloatArray) -> FloatArray:
    """``x`` where positive, else 1: a denominator for lanes whose result is masked anyway."""
    result: FloatArray = np.where(x > 0, x, 1.0)
    return result


def position(cum0: FloatArray, value: FloatArray) -> FloatArray:
    """Fractional position (step index) at which the cumulative quantity ``cum0`` reaches ``value``."""
    j = np.searchsorted(cum0, value, side="left")
    jc = np.clip(j, 1, cum0.size - 1)
    lo, hi = cum0[jc - 1], cum0[jc]
    inside = np.where(hi > lo, jc - 1 + (value - lo) / _safe(hi - lo), jc.astype(np.float64))
    result: FloatArray = np.where(j <= 0, 0.0, np.where(j >= cum0.size, float(cum0.size - 1), inside))
    return result


def step_prefill(q: Queues, offered: Offered, s: int, capacity: FloatArray, dt: float) -> PrefillStep:
    """One step of the prefill FIFO with ``capacity`` reference-GPU seconds of work per second."""
    cap = capacity * dt
    backlog = offered.cum[Offered.WORK, s + 1] - q.processed
    done = np.minimum(backlog, cap)
    q.processed = q.processed + done
    before = offered.at(q.x_p)
    q.x_p = np.where(done >= backlog, float(s + 1), np.maximum(position(offered.cum[Offered.WORK], q.processed), q.x_p))
    moved = (offered.at(q.x_p) - before) / dt
    return PrefillStep(
        busy=np.where(cap > 0, done / _safe(cap), 0.0),
        missed_tps=moved[Offered.MISSED],
        raw_tps=moved[Offered.PROMPT],
    )


def step_decode(
    q: Queues,
    offered: Offered,
    ready: Mapping[str, FloatArray],
    models: Mapping[str, InstanceModel],
    ctx_mean: float,
    dt: float,
) -> DecodeStep:
    """One step of the decode pool: FIFO admission, then generation at the batch's step time.
    ``ready`` holds each GPU type's ready instances per lane."""
    n_d = np.zeros_like(q.active)
    for n in ready.values():
        n_d = n_d + n
    serving = n_d > 0
    per_d = _safe(n_d)
    # Admit in FIFO order while batch slots and KV cache allow. A slot is held only for its
    # sequence's decode time, so sequences shorter than the step turn a slot over several times
    # within it (Little's law on the slot: occupancy = duration / dt).
    ctx = np.where(q.active > 0, q.kv_tokens / _safe(q.active), ctx_mean)
    full = {g: models[g].max_batch(ctx) for g in ready}
    slots = np.zeros_like(n_d)
    step_full = np.zeros_like(n_d)
    for g, b in full.items():
        slots = slots + ready[g] * b
        step_full = step_full + ready[g] * models[g].decode_step_seconds(b, ctx)
    at_p, at_d = offered.at(q.x_p), offered.at(q.x_d)
    waiting = at_p[Offered.REQUESTS] - at_d[Offered.REQUESTS]
    admitting = (waiting > 0) & serving
    duration = (at_p[Offered.OUTPUT] - at_d[Offered.OUTPUT]) / _safe(waiting) * step_full / per_d
    admit = np.minimum(waiting, np.maximum(slots - q.active, 0.0) / np.minimum(_safe(duration) / dt, 1.0))
    partial = np.maximum(position(offered.cum[Offered.REQUESTS], at_d[Offered.REQUESTS] + admit), q.x_d)
    x_new = np.where(admitting, np.where(admit >= waiting, q.x_p, partial), q.x_d)
    at_new = offered.at(x_new)
    q.remaining = q.remaining + (at_new[Offered.OUTPUT] - at_d[Offered.OUTPUT])
    q.kv_tokens = q.kv_tokens + (at_new[Offered.PROMPT] - at_d[Offered.PROMPT])
    q.active = q.active + np.where(admitting, admit, 0.0)
    q.x_d = x_new

    ctx = np.where(q.active > 0, q.kv_tokens / _safe(q.active), ctx_mean)
    per_instance = q.active / per_d
    batch = {g: np.maximum(np.minimum(per_instance, b), 1.0) for g, b in full.items()}
    rate = {g: ready[g] * b / models[g].decode_step_seconds(b, ctx) for g, b in batch.items()}
    total_rate = np.zeros_like(n_d)
    for r in rate.values():
        total_rate = total_rate + r
    generated = np.where(serving, np.minimum(q.remaining, total_rate * dt), 0.0)
    # The batch a sequence sees is the time average over the step: lower than the batch at the
    # step's start when the pool drains within the step (Little's law again).
    tbt = np.zeros_like(n_d)
    mean_batch = np.zeros_like(n_d)
    for g, b in batch.items():
        share = generated * rate[g] / _safe(total_rate) / dt / _safe(ready[g])
        seen = np.minimum(b, np.maximum(models[g].batch_for_throughput(share, ctx), 1.0))
        tbt = tbt + ready[g] * models[g].decode_step_seconds(seen, ctx)
        mean_batch = mean_batch + ready[g] * seen
    finishing = serving & (q.remaining > 0)
    finished = generated * q.active / _safe(q.remaining)
    q.kv_tokens = np.where(finishing, (q.kv_tokens + generated) * (1 - finished / _safe(q.active)), q.kv_tokens)
    q.active = np.where(finishing, q.active - finished, q.active)
    q.remaining = np.where(finishing, q.remaining - generated, q.remaining)
    return DecodeStep(
        generated_tps=generated / dt,
        tbt=np.where(serving, tbt / per_d, 0.0),
        reported_util=np.where(serving, 1.0 - np.exp(-mean_batch / per_d), 0.0),
    )
