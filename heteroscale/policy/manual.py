"""Manual edits: the replicas a person set on a managed Deployment, held as a floor for a while (pure).

The operator tells an edit apart from its own writes (the Deployment asks for other replicas than
it last wrote) and passes the counts in :attr:`Observation.manual_edit`. The rule: for
``behavior.manualHoldSeconds`` those counts are a floor under the policy (it may go higher when
load needs more, never lower); then the policy resumes with its ordinary scale-in rules. A later
edit restarts the hold and keeps the earlier edit's count for a role it did not touch. With
``manualHoldSeconds: 0`` nothing is held: the edited counts are simply the current ones, and the
policy's ordinary rules apply to them at once (a scale-in back still obeys its cooldown and steps,
as before this rule existed); the edit is still reported.
"""

from __future__ import annotations

from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import ManualHold, PolicyState
from heteroscale.policy.observation import Observation


def held(spec: PDServingGroupSpec, observation: Observation, state: PolicyState, now: float) -> ManualHold | None:
    """The manual floor in force after this tick's observation, or None."""
    earlier = state.manual_hold if state.manual_hold is not None and now < state.manual_hold.until else None
    edit = observation.manual_edit
    seconds = spec.behavior.manual_hold_seconds
    if edit is None or (edit.prefill is None and edit.decode is None) or seconds == 0:
        return earlier
    return ManualHold(
        prefill=edit.prefill if edit.prefill is not None else (earlier.prefill if earlier else None),
        decode=edit.decode if edit.decode is not None else (earlier.decode if earlier else None),
        since=now,
        until=now + seconds,
    )


def edited_text(observation: Observation) -> str:
    """ "a person set prefill 4, decode 12" for the roles edited on this tick ("" when none)."""
    edit = observation.manual_edit
    if edit is None:
        return ""
    parts = [f"{role} {n}" for role, n in (("prefill", edit.prefill), ("decode", edit.decode)) if n is not None]
    return f"a person set {', '.join(parts)}" if parts else ""
