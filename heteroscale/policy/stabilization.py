"""Damping: the scale-down stabilization window, cooldowns and step limits (pure).

Scale-out is quick and scale-in is slow on purpose: an unneeded instance costs GPU-minutes, a
missing one costs SLO violations and a cold start to undo.
"""

from __future__ import annotations

import math

from heteroscale.api.spec import StepDown, StepUp
from heteroscale.api.status import PolicyState, Recommendation


def remember(
    state: PolicyState, now: float, decode: int, window_seconds: int, prefill: int | None = None
) -> list[Recommendation]:
    """The window's recommendations after adding this one; older ones fall out."""
    horizon = now - window_seconds
    kept = [r for r in state.recommendations if r.time > horizon and r.time <= now]
    return [*kept, Recommendation(time=now, decode=decode, prefill=prefill)]


def stabilized(recommendations: list[Recommendation]) -> int:
    """Kubernetes' rule for scale-in: the highest recommendation in the window wins."""
    return max(r.decode for r in recommendations)


def stabilized_prefill(recommendations: list[Recommendation], wanted: int) -> int:
    """The same rule for an adaptive ratio's prefill: the highest prefill recommendation in the
    window, ``wanted`` (this tick's) among them."""
    return max((r.prefill for r in recommendations if r.prefill is not None), default=wanted)


def up_cooldown_left(state: PolicyState, now: float, up: StepUp) -> float:
    if state.last_scale_up_time is None:
        return 0.0
    return max(0.0, state.last_scale_up_time + up.cooldown_seconds - now)


def down_cooldown_left(state: PolicyState, now: float, down: StepDown) -> float:
    """Scale-in waits out its cooldown after *any* scale action, so an up is never undone at once."""
    last = max((t for t in (state.last_scale_up_time, state.last_scale_down_time) if t is not None), default=None)
    if last is None:
        return 0.0
    return max(0.0, last + down.cooldown_seconds - now)


def step_up_limit(current: int, up: StepUp) -> int:
    """Most decode instances allowed after one scale-up from ``current``: HPA's rule, the larger of
    the percentage step and the fixed instance step."""
    return current + max(up.min_step_instances, math.ceil(current * up.max_step_percent / 100))


def step_down_limit(current: int, down: StepDown) -> int:
    """Fewest decode instances allowed after one scale-in from ``current`` (at least one fewer)."""
    return current - max(1, math.floor(current * down.max_step_percent / 100))
