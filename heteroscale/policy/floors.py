"""The floors and ratio in force: the spec's own, raised by a schedule entry or a manual hold (pure).

The policy's rules read bounds and the ratio from a spec, so the floors in force are applied by
deciding on a copy of the spec whose ``minReplicas`` are raised (each role: the largest of its
own minimum, the schedule entry's floor and the manual hold's count, never above its
``maxReplicas``) and whose ratio is the schedule entry's. Every rule then keeps them as it keeps
the spec's own, holds included; what raised a floor is remembered to report it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from heteroscale.api.enums import Reason
from heteroscale.api.spec import PDServingGroupSpec, ReplicaBounds
from heteroscale.api.status import ManualHold
from heteroscale.policy.schedule import InForce


@dataclass(frozen=True)
class Floors:
    """The spec to decide on, and where its raised floors came from."""

    spec: PDServingGroupSpec
    schedule: InForce | None
    hold: ManualHold | None
    #: ``ScheduleFloor`` or ``ManualOverride`` when that source set the role's floor above its own
    #: minReplicas; None when the spec's own minimum applies.
    prefill_source: Reason | None
    decode_source: Reason | None

    def detail(self, now: float) -> str:
        """What the schedule and the manual hold set, for the decision's message ("" when neither)."""
        parts = []
        if self.schedule is not None:
            entry = self.schedule.entry
            sets = [
                f"{role} floor {n}"
                for role, n in (
                    ("prefill", entry.min_replicas.prefill if entry.min_replicas else None),
                    ("decode", entry.min_replicas.decode if entry.min_replicas else None),
                )
                if n is not None
            ]
            if entry.ratio is not None:
                sets.append(f"ratio {entry.ratio.prefill}:{entry.ratio.decode}")
            parts.append(f"schedule {entry.name!r} in force ({', '.join(sets) or 'the spec floors and ratio'})")
        if self.hold is not None:
            held = (("prefill", self.hold.prefill), ("decode", self.hold.decode))
            counts = [f"{role} {n}" for role, n in held if n is not None]
            parts.append(f"manual floor {', '.join(counts)} for another {self.hold.until - now:.0f}s")
        return "; ".join(parts)

    @property
    def raised_by(self) -> tuple[Reason, ...]:
        """The sources that raised a floor (ScheduleFloor, ManualOverride), each once."""
        return tuple(dict.fromkeys(r for r in (self.decode_source, self.prefill_source) if r is not None))


def _raised(bounds: ReplicaBounds, scheduled: int | None, manual: int | None) -> tuple[int, Reason | None]:
    """The role's floor in force and its source (None: its own minReplicas)."""
    floor, source = bounds.min_replicas, None
    for value, reason in ((scheduled, Reason.SCHEDULE_FLOOR), (manual, Reason.MANUAL_OVERRIDE)):
        if value is not None and min(value, bounds.max_replicas) > floor:
            floor, source = min(value, bounds.max_replicas), reason
    return floor, source


def effective(spec: PDServingGroupSpec, schedule: InForce | None, hold: ManualHold | None) -> Floors:
    """The spec with the schedule entry's and the manual hold's floors and ratio in force."""
    entry = schedule.entry if schedule is not None else None
    scheduled = entry.min_replicas if entry is not None else None
    prefill, prefill_source = _raised(
        spec.prefill, scheduled.prefill if scheduled else None, hold.prefill if hold else None
    )
    decode, decode_source = _raised(spec.decode, scheduled.decode if scheduled else None, hold.decode if hold else None)
    update: dict[str, Any] = {}
    if prefill != spec.prefill.min_replicas:
        update["prefill"] = spec.prefill.model_copy(update={"min_replicas": prefill})
    if decode != spec.decode.min_replicas:
        update["decode"] = spec.decode.model_copy(update={"min_replicas": decode})
    if entry is not None and entry.ratio is not None:
        update["ratio"] = spec.ratio.model_copy(update={"prefill": entry.ratio.prefill, "decode": entry.ratio.decode})
    return Floors(spec.model_copy(update=update) if update else spec, schedule, hold, prefill_source, decode_source)
