"""Bounds and the fixed P/D ratio: both roles' counts from one decode count (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from heteroscale.api.enums import Reason
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import Recommendation
from heteroscale.policy.stabilization import stabilized_prefill, step_down_limit


@dataclass(frozen=True)
class Pair:
    prefill: int
    decode: int
    notes: tuple[Reason, ...]
    detail: str


def pair_for(spec: PDServingGroupSpec, decode_wanted: int) -> Pair:
    """Clamp decode to its bounds, derive prefill from the ratio, and repair the ratio if a
    prefill bound breaks it by raising the short side (decode) within its max."""
    ratio = spec.ratio
    dmin, dmax = spec.decode.min_replicas, spec.decode.max_replicas
    pmin, pmax = spec.prefill.min_replicas, spec.prefill.max_replicas
    notes: list[Reason] = []
    details: list[str] = []

    decode = min(max(decode_wanted, dmin), dmax)
    if decode_wanted > dmax:
        notes.append(Reason.CLAMPED_TO_MAX)
        details.append(f"decode needs {decode_wanted} but maxReplicas is {dmax}")
    elif decode_wanted < dmin:
        notes.append(Reason.CLAMPED_TO_MIN)
        details.append(f"decode held at minReplicas {dmin}")

    prefill = ratio.prefill_for(decode)
    if prefill < pmin:
        # A prefill floor above the ratio's share: raise decode so the pair keeps the ratio.
        floor = ratio.decode_floor_for(pmin)
        raised = min(max(decode, floor), dmax)
        if raised != decode:
            notes.append(Reason.RATIO_REPAIRED)
            details.append(
                f"decode raised {decode}->{raised} to keep {ratio.prefill}:{ratio.decode} "
                f"with prefill minReplicas {pmin}"
            )
            decode = raised
        prefill = max(pmin, ratio.prefill_for(decode))
        if decode < floor:
            notes.append(Reason.CLAMPED_TO_MAX)
            details.append(
                f"prefill minReplicas {pmin} needs {floor} decode for the ratio but decode maxReplicas "
                f"is {dmax}; ratio cannot be kept"
            )
    if prefill > pmax:
        notes.append(Reason.CLAMPED_TO_MAX)
        details.append(f"prefill needs {prefill} for {decode} decode but maxReplicas is {pmax}; ratio cannot be kept")
        prefill = pmax
    return Pair(prefill=prefill, decode=decode, notes=tuple(notes), detail="; ".join(details))


def ratio_holds(spec: PDServingGroupSpec, prefill: int, decode: int) -> bool:
    """True when prefill is exactly what the ratio gives for this decode count."""
    return prefill == spec.ratio.prefill_for(decode)


def wanted_prefill(spec: PDServingGroupSpec, current: int, missed_tps: float | None) -> int | None:
    """An adaptive ratio's prefill recommendation: ceil(KV-missed prefill tokens/s / the prefill
    target), or ``current`` while the load per instance is within the hysteresis band of the
    target. None when the ratio is fixed or the reading is missing or unusable (the fixed ratio
    then applies)."""
    adaptive = spec.ratio.adaptive
    if adaptive is None or missed_tps is None or not math.isfinite(missed_tps) or missed_tps < 0:
        return None
    target = adaptive.prefill_target_tps_per_instance
    steady = current > 0 and abs(missed_tps / (current * target) - 1.0) <= adaptive.hysteresis
    return current if steady else math.ceil(missed_tps / target - 1e-9)


def adapted_prefill(
    spec: PDServingGroupSpec, decode: int, current: int, missed_tps: float, wanted: int, window: list[Recommendation]
) -> Pair:
    """Prefill for ``decode`` under ``ratio.adaptive`` from this tick's ``wanted`` (see
    :func:`wanted_prefill`). A scale-in is damped as decode's is: to the highest prefill
    recommendation of the stabilization ``window``, by at most the scale-down step. Then clamped
    to the declared band of prefill per decode instance and to the prefill bounds."""
    adaptive = spec.ratio.adaptive
    assert adaptive is not None  # wanted_prefill gave a recommendation
    if wanted < current:
        down = spec.behavior.scale_down
        wanted = min(current, max(stabilized_prefill(window, wanted), step_down_limit(current, down)))
    low = math.ceil(decode * adaptive.min_ratio - 1e-9)
    high = math.ceil(decode * adaptive.max_ratio - 1e-9)
    banded = min(max(wanted, low), high)
    prefill = min(max(banded, spec.prefill.min_replicas), spec.prefill.max_replicas)
    target = adaptive.prefill_target_tps_per_instance
    detail = f"prefill {prefill} for {missed_tps:,.0f} KV-missed tok/s at {target:,.0f} each"
    if banded != wanted:
        detail += f" (band {adaptive.min_ratio:g}-{adaptive.max_ratio:g} per decode: {low}-{high})"
    notes = (Reason.CLAMPED_TO_MAX,) if banded > spec.prefill.max_replicas else ()
    return Pair(prefill=prefill, decode=decode, notes=notes, detail=detail)
