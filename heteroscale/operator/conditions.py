"""Status conditions from a tick's outcome (pure; the time is passed in).

A condition keeps its ``lastTransitionTime`` while its status stays the same, as Kubernetes
conditions do, so ``kubectl wait`` and alerts see real transitions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from heteroscale.api.enums import METRIC_REASONS, ConditionStatus, ConditionType, Mode, Reason
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import Condition, ManualHold
from heteroscale.policy.decision import Decision
from heteroscale.policy.ratio import ratio_holds

T, F = ConditionStatus.TRUE, ConditionStatus.FALSE
#: The order conditions are listed in (the enum's), looked up once: a tick sets several conditions.
_ORDER = {type_: i for i, type_ in enumerate(ConditionType)}


def rfc3339(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: Sequence[Condition],
    type_: ConditionType,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: float,
    generation: int | None = None,
) -> list[Condition]:
    """The conditions with ``type_`` set; other types are kept as they are, in a stable order."""
    old = next((c for c in conditions if c.type == type_), None)
    since = old.last_transition_time if old is not None and old.status == status else rfc3339(now)
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    kept = [c for c in conditions if c.type != type_]
    return sorted([*kept, new], key=lambda c: _ORDER[c.type])


def changed(before: Sequence[Condition], after: Sequence[Condition], type_: ConditionType) -> bool:
    """True when the condition's status, reason or message differs: the moment to emit an Event."""
    old = next(((c.status, c.reason, c.message) for c in before if c.type == type_), None)
    new = next(((c.status, c.reason, c.message) for c in after if c.type == type_), None)
    return old != new


def refused(
    conditions: Sequence[Condition], reason: str, message: str, now: float, generation: int | None = None
) -> list[Condition]:
    """The operator will not act (bad spec, a conflict, a missing Deployment, a failed tick): not
    Ready, not scaling."""
    out = set_condition(conditions, ConditionType.READY, F, reason, message, now, generation)
    out = set_condition(out, ConditionType.SCALING_ACTIVE, F, reason, message, now, generation)
    conflict = reason == Reason.CONFLICT
    return set_condition(
        out,
        ConditionType.CONFLICT,
        T if conflict else F,
        Reason.CONFLICT if conflict else Reason.NO_CONFLICT,
        message if conflict else "",
        now,
        generation,
    )


def decided(
    conditions: Sequence[Condition],
    spec: PDServingGroupSpec,
    decision: Decision,
    pools_ready: str | None,
    unschedulable: str | None,
    now: float,
    generation: int | None = None,
) -> list[Condition]:
    """Conditions after a decision. ``pools_ready`` is None when every Deployment has all the pods it
    asks for ready, else a message saying which do not; ``unschedulable`` says what placement could
    not place (it outranks pods not ready: those may never come)."""

    def put(
        out: Sequence[Condition], type_: ConditionType, status: ConditionStatus, reason: str, message: str
    ) -> list[Condition]:
        return set_condition(out, type_, status, reason, message, now, generation)

    out = put(conditions, ConditionType.CONFLICT, F, Reason.NO_CONFLICT, "")
    if decision.reason in METRIC_REASONS:
        out = put(out, ConditionType.METRICS_AVAILABLE, F, decision.reason, decision.message)
    else:
        out = put(out, ConditionType.METRICS_AVAILABLE, T, Reason.METRIC_READ, "decode tokens/s is fresh")
    if spec.mode is Mode.DRY_RUN:
        why = "mode is DryRun: decisions are written to status, Deployments are not touched"
        out = put(out, ConditionType.SCALING_ACTIVE, F, Reason.DRY_RUN, why)
    elif decision.held:
        out = put(out, ConditionType.SCALING_ACTIVE, F, decision.reason, decision.message)
    else:
        out = put(out, ConditionType.SCALING_ACTIVE, T, decision.reason, decision.message)
    if ratio_holds(spec, decision.prefill, decision.decode):
        ratio = f"prefill {decision.prefill} : decode {decision.decode} keeps {spec.ratio.prefill}:{spec.ratio.decode}"
        out = put(out, ConditionType.RATIO_SATISFIED, T, Reason.RATIO_HELD, ratio)
    else:
        out = put(out, ConditionType.RATIO_SATISFIED, F, decision.reason, decision.message)
    if unschedulable is not None:
        return put(out, ConditionType.READY, F, Reason.UNSCHEDULABLE, unschedulable)
    if pools_ready is None:
        return put(out, ConditionType.READY, T, Reason.RECONCILED, "every instance asked for is ready")
    return put(out, ConditionType.READY, F, Reason.PODS_NOT_READY, pools_ready)


def fleet(
    conditions: Sequence[Condition],
    spec: PDServingGroupSpec,
    decision: Decision,
    hold: ManualHold | None,
    stuck: str | None,
    now: float,
    generation: int | None = None,
) -> list[Condition]:
    """The conditions of scale to zero, manual edits and stuck pods, after :func:`decided`.

    ``Active`` (only with ``behavior.scaleToZero``, as KEDA's): False with reason ``ScaledToZero``
    when the decision leaves no decode instance, else True (reason ``Activating`` while the first
    set starts). ``ManualOverride``: True while a person's edit is held as a floor (``hold``).
    ``stuck`` says which pods are stuck; it makes Ready False with reason ``PodsStuck`` (unless
    placement could not place something, which outranks it)."""

    def put(
        out: Sequence[Condition], type_: ConditionType, status: ConditionStatus, reason: str, message: str
    ) -> list[Condition]:
        return set_condition(out, type_, status, reason, message, now, generation)

    out = list(conditions)
    if spec.behavior.scale_to_zero is not None:
        if decision.decode == 0:
            out = put(out, ConditionType.ACTIVE, F, Reason.SCALED_TO_ZERO, decision.message)
        else:
            reason = Reason.ACTIVATING if decision.reason is Reason.ACTIVATING else Reason.RECONCILED
            message = decision.message if reason is Reason.ACTIVATING else "serving"
            out = put(out, ConditionType.ACTIVE, T, reason, message)
    if hold is not None:
        edited = (("prefill", hold.prefill), ("decode", hold.decode))
        floors = ", ".join(f"{role} {n}" for role, n in edited if n is not None)
        message = f"a person set {floors}: held as a floor until {rfc3339(hold.until)} (behavior.manualHoldSeconds)"
        out = put(out, ConditionType.MANUAL_OVERRIDE, T, Reason.MANUAL_OVERRIDE, message)
    elif any(c.type == ConditionType.MANUAL_OVERRIDE for c in out):
        out = put(out, ConditionType.MANUAL_OVERRIDE, F, Reason.RECONCILED, "no manual floor in force")
    ready = next((c for c in out if c.type == ConditionType.READY), None)
    if stuck is not None and (ready is None or ready.reason != Reason.UNSCHEDULABLE):
        out = put(out, ConditionType.READY, F, Reason.PODS_STUCK, stuck)
    return out
