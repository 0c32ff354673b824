"""Bounds and the fixed P/D ratio: both roles' counts from one decode count (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from heteroscale.api.enums import Reason
from heteroscale.api.spec import PDServingGroupSpec


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
