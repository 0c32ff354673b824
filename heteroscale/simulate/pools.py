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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from heteroscale.simulate.perfmodel import FloatArray, InstanceModel


@dataclass(frozen=True)
class Offered:
    """What the whole fleet's users offer, cumulated at step boundaries (index ``s``: before step
    ``s``): requests, prefill work (reference-GPU seconds), prompt tokens, KV-missed prompt
    tokens and output tokens."""

    requests: FloatArray
    work: FloatArray
    prompt: FloatArray
    missed: FloatArray
    output: FloatArray

    @classmethod
    def from_steps(cls, per_step: FloatArray) -> Offered:
        """From the per-step sums (rows in the order of the fields)."""
        cum = np.concatenate([np.zeros((5, 1)), np.cumsum(per_step, axis=1)], axis=1)
        return cls(*cum)


@dataclass
class Queues:
    """The pools' fluid state, carried from step to step."""

    #: Prefill work done (reference-GPU seconds).
    processed: float = 0.0
    #: FIFO positions (steps): requests prefilled / admitted to decode.
    x_p: float = 0.0
    x_d: float = 0.0
    #: Decoding sequences, their remaining output tokens and their KV tokens.
    active: float = 0.0
    remaining: float = 0.0
    kv_tokens: float = 0.0


@dataclass(frozen=True)
class PrefillStep:
    busy: float
    #: Prompt tokens computed per second (prefix hits excluded) and all prompt tokens per second.
    missed_tps: float
    raw_tps: float


@dataclass(frozen=True)
class DecodeStep:
    generated_tps: float
    #: Step time at the step's time-averaged batch (each sequence's TBT); 0 without instances.
    tbt: float
    #: Engine-reported utilisation, 1 - e^(-mean batch); None without instances.
    reported_util: float | None


def position(cum0: FloatArray, value: float) -> float:
    """Fractional position (step index) at which the cumulative quantity ``cum0`` reaches ``value``."""
    j = int(np.searchsorted(cum0, value, side="left"))
    if j <= 0:
        return 0.0
    if j >= cum0.size:
        return float(cum0.size - 1)
    lo, hi = cum0[j - 1], cum0[j]
    return j - 1 + (value - lo) / (hi - lo) if hi > lo else float(j)


def value_at(cum0: FloatArray, x: float) -> float:
    """The cumulative quantity ``cum0`` at fractional position ``x`` (linear within a step)."""
    i = min(int(x), cum0.size - 2)
    return float(cum0[i] + (x - i) * (cum0[i + 1] - cum0[i]))


def step_prefill(q: Queues, offered: Offered, s: int, capacity: float, dt: float) -> PrefillStep:
    """One step of the prefill FIFO with ``capacity`` reference-GPU seconds of work per second."""
    cap = capacity * dt
    backlog = offered.work[s + 1] - q.processed
    done = min(backlog, cap)
    q.processed += done
    x_prev = q.x_p
    q.x_p = float(s + 1) if done >= backlog else max(position(offered.work, q.processed), q.x_p)
    return PrefillStep(
        busy=done / cap if cap > 0 else 0.0,
        missed_tps=(value_at(offered.missed, q.x_p) - value_at(offered.missed, x_prev)) / dt,
        raw_tps=(value_at(offered.prompt, q.x_p) - value_at(offered.prompt, x_prev)) / dt,
    )


def step_decode(
    q: Queues,
    offered: Offered,
    ready: Mapping[str, int],
    models: Mapping[str, InstanceModel],
    ctx_mean: float,
    dt: float,
) -> DecodeStep:
    """One step of the decode pool: FIFO admission, then generation at the batch's step time."""
    n_d = sum(ready.values())
    # Admit in FIFO order while batch slots and KV cache allow. A slot is held only for its
    # sequence's decode time, so sequences shorter than the step turn a slot over several times
    # within it (Little's law on the slot: occupancy = duration / dt).
    ctx = q.kv_tokens / q.active if q.active > 0 else ctx_mean
    full = {g: models[g].max_batch(ctx) for g, n in ready.items() if n > 0}
    slots = sum(ready[g] * b for g, b in full.items())
    waiting = value_at(offered.requests, q.x_p) - value_at(offered.requests, q.x_d)
    if waiting > 0 and n_d > 0:
        step_full = sum(ready[g] * float(models[g].decode_step_seconds(b, ctx)) for g, b in full.items())
        duration = (value_at(offered.output, q.x_p) - value_at(offered.output, q.x_d)) / waiting * step_full / n_d
        admit = min(waiting, max(slots - q.active, 0.0) / min(duration / dt, 1.0))
        x_new = (
            q.x_p
            if admit >= waiting
            else max(position(offered.requests, value_at(offered.requests, q.x_d) + admit), q.x_d)
        )
        q.remaining += value_at(offered.output, x_new) - value_at(offered.output, q.x_d)
        q.kv_tokens += value_at(offered.prompt, x_new) - value_at(offered.prompt, q.x_d)
        q.active += admit
        q.x_d = x_new
    if n_d == 0:
        return DecodeStep(0.0, 0.0, None)
    ctx = q.kv_tokens / q.active if q.active > 0 else ctx_mean
    batch = {g: max(min(q.active / n_d, b), 1.0) for g, b in full.items()}
    rate = {g: ready[g] * b / float(models[g].decode_step_seconds(b, ctx)) for g, b in batch.items()}
    generated = min(q.remaining, sum(rate.values()) * dt)
    # The batch a sequence sees is the time average over the step: lower than the batch at the
    # step's start when the pool drains within the step (Little's law again).
    tbt = 0.0
    mean_batch = 0.0
    for g, b in batch.items():
        share = generated * rate[g] / sum(rate.values()) / dt / ready[g]
        seen = min(b, max(models[g].batch_for_throughput(share, ctx), 1.0))
        tbt += ready[g] * float(models[g].decode_step_seconds(seen, ctx))
        mean_batch += ready[g] * seen
    tbt /= n_d
    if q.remaining > 0:
        finished = generated * q.active / q.remaining
        q.kv_tokens = (q.kv_tokens + generated) * (1 - finished / q.active)
        q.active -= finished
        q.remaining -= generated
    return DecodeStep(generated / dt, tbt, 1.0 - math.exp(-mean_batch / n_d))
