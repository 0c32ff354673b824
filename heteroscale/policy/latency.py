"""The latency safety net: tiered extra scale-out when TBT or TTFT exceeds its SLO (pure).

Latency is not proportional to load (flat, then a cliff), so it never drives scaling on its own;
it only adds a fixed step on top of the throughput recommendation when the SLO is at risk. TTFT
is watched too (when the spec gives its SLO): on a sudden surge prefill queues first, so TTFT
leaves its SLO while the decode-throughput reading, capped by what prefill lets through, barely
moves.

The TTFT histogram lags a surge: it counts requests whose prefill has *ended*, most of which
arrived before it. So the TTFT tier also reads the prefill queue as it is now (the leading
indicator TokenScale argues for, ``papers/burst-anchors.md``): by Little's law the requests
waiting for a prefill engine divided by the rate at which prefills end is the time a request
waits there, which on a surge is most of the TTFT a request arriving now is heading for
(:func:`queue_wait`).
"""

from __future__ import annotations

import math

from heteroscale.api.spec import LatencyGuard, LatencyTier


def queue_wait(queued: float | None, rps: float | None) -> float | None:
    """Seconds a request waits for a prefill engine now, by Little's law: the requests waiting
    over the rate at which prefills end. None without both readings, or without a prefill ending
    in the window (nothing to divide by: an idle or a stalled pool, which the other rules see)."""
    if queued is None or rps is None or not (math.isfinite(queued) and math.isfinite(rps)):
        return None
    if rps <= 0 or queued < 0:
        return None
    return queued / rps


def overshoot(
    guard: LatencyGuard | None,
    tbt_seconds: float | None,
    ttft_seconds: float | None,
    queue_wait_seconds: float | None = None,
) -> float | None:
    """The largest of TBT / its SLO, and of TTFT and the prefill queue's wait / the TTFT SLO (when
    the spec gives one); None when none was read."""
    if guard is None:
        return None
    factors = []
    if tbt_seconds is not None and math.isfinite(tbt_seconds):
        factors.append(tbt_seconds / guard.slo_seconds)
    if guard.ttft_seconds is not None:
        for seconds in (ttft_seconds, queue_wait_seconds):
            if seconds is not None and math.isfinite(seconds):
                factors.append(seconds / guard.ttft_seconds)
    return max(factors, default=None)


def step_factor(
    guard: LatencyGuard | None,
    tbt_seconds: float | None,
    ttft_seconds: float | None,
    queue_wait_seconds: float | None,
) -> float | None:
    """The overshoot a proportional step is sized by: :func:`overshoot` without the TTFT histogram
    wherever the prefill queue was read. The histogram counts prefills that ended, so it lags both
    ways: low while a surge's queue builds (why the queue is read), high for a window after the
    queue has drained, and after a cold start it reads the start-up its first requests waited for,
    which more instances cannot undo. The queue's wait is the present; TTFT still triggers its tier
    (:func:`breached_tier` reads :func:`overshoot`), whose fixed step stands."""
    present = ttft_seconds if queue_wait_seconds is None else None
    return overshoot(guard, tbt_seconds, present, queue_wait_seconds)


def breached_tier(guard: LatencyGuard | None, factor: float | None) -> LatencyTier | None:
    """The highest tier whose factor over the SLO the observed latency exceeds."""
    if guard is None or factor is None:
        return None
    hit = [tier for tier in guard.tiers if factor > tier.over]
    return max(hit, key=lambda tier: tier.over, default=None)


def guarded(serving: int, tier: LatencyTier, factor: float, proportional: bool) -> int:
    """Decode instances after the tier's extra step (at least one more) on top of those serving.
    With ``proportional`` the step is at least the overshoot, (factor - 1) x 100%. Latency keeps
    rising while a step starts up, so the step is counted from what serves, and instances still
    starting already hold it. The step limit is not applied here: ``maxStepPercent`` limits what a
    period adds to the current count (:func:`heteroscale.policy.rules.scale_up`), as it limits
    every scale-up; capped here too, of the serving count, a guard could never ask for more than
    twice what serves until its last step served, whatever the overshoot."""
    percent = float(tier.step_percent)
    if proportional:
        percent = max(percent, (factor - 1.0) * 100.0)
    # The epsilon keeps float noise (30.000000000000004%) from adding a whole instance.
    return serving + max(1, math.ceil(serving * percent / 100 - 1e-9))
