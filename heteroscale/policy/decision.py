"""The outcome of one policy step."""

from __future__ import annotations

from dataclasses import dataclass

from heteroscale.api.enums import HOLD_REASONS, Reason
from heteroscale.api.status import PolicyState, ScheduleStatus


@dataclass(frozen=True)
class Decision:
    """Replica targets for both roles, decided together, with the reason and the next state."""

    prefill: int
    decode: int
    reason: Reason
    message: str
    state: PolicyState
    recommended_decode: int | None = None
    """Decode instances the load alone asks for, before limits; None when the policy held."""
    notes: tuple[Reason, ...] = ()
    """Secondary reasons that also shaped the outcome (e.g. StepLimited behind ScaledUp)."""
    schedule: ScheduleStatus | None = None
    """The ``spec.schedules`` entry in force (for ``status.schedule``); None when none is."""

    @property
    def held(self) -> bool:
        """True when the signal was not trusted: nothing moved on its account (only pools below
        their minimum are brought up to it), or a group at zero is waking (``Activating``):
        nothing goes down under a hold."""
        return self.reason in HOLD_REASONS
