"""The PDServingGroup status, including the policy state carried from one tick to the next.

The operator keeps nothing in memory that it needs to decide: everything the policy remembers
(recent recommendations, last scale times, the zero-reading count) round-trips through
``status.policyState``, so a restarted operator continues where the last one stopped.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from heteroscale.api.enums import ConditionStatus, ConditionType, Reason, Role


class StatusModel(BaseModel):
    """Base for status objects: camelCase on the wire; unknown fields are ignored, not fatal,
    so an older operator can read a status written by a newer one."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Recommendation(StatusModel):
    """One recommendation, kept for the scale-down stabilization window."""

    time: float = Field(description="Unix time of the recommendation, in seconds.")
    decode: int = Field(ge=0, description="Decode instances recommended then.")
    prefill: int | None = Field(
        None, ge=0, description="Prefill instances an adaptive ratio recommended then; absent with a fixed ratio."
    )


class ManualHold(StatusModel):
    """The floor a person's edit of a managed Deployment's replicas set (``behavior.manualHoldSeconds``)."""

    prefill: int | None = Field(None, ge=0, description="Prefill instances a person set; absent: not edited.")
    decode: int | None = Field(None, ge=0, description="Decode instances a person set; absent: not edited.")
    since: float = Field(description="Unix time the edit was seen.")
    until: float = Field(description="Unix time the floor expires and the policy resumes.")


class PolicyState(StatusModel):
    """What the policy carries between ticks; opaque to users, shown for debugging."""

    recommendations: list[Recommendation] = Field(
        default_factory=list, description="Recent decode recommendations inside the stabilization window."
    )
    last_scale_up_time: float | None = Field(None, description="Unix time of the last scale-up.")
    last_scale_down_time: float | None = Field(None, description="Unix time of the last scale-down.")
    zero_readings: int = Field(0, ge=0, description="Consecutive zero-throughput readings so far.")
    idle_since: float | None = Field(
        None,
        description="Unix time of the first reading of the current idle stretch (trusted zero decode tokens/s, "
        "activation at or below its threshold); absent when not idle. Only with behavior.scaleToZero.",
    )
    manual_hold: ManualHold | None = Field(None, description="A person's edit held as a floor, until it expires.")


class ScheduleStatus(StatusModel):
    """The ``spec.schedules`` entry in force: what it sets and since when."""

    name: str = Field(description="Name of the entry.")
    since: float = Field(description="Unix time of the cron firing that put it in force.")
    prefill_floor: int | None = Field(None, ge=0, description="Its prefill floor; absent: the spec's minReplicas.")
    decode_floor: int | None = Field(None, ge=0, description="Its decode floor; absent: the spec's minReplicas.")
    ratio: str | None = Field(None, description="Its P:D ratio as 'prefill:decode'; absent: spec.ratio's.")


class RoleCounts(StatusModel):
    """Instances per role."""

    prefill: int = Field(0, ge=0, description="Prefill instances.")
    decode: int = Field(0, ge=0, description="Decode instances.")


class GroupStatus(StatusModel):
    """One deployment group: one role's Deployment pinned to a GPU type and a network domain."""

    name: str = Field(description="Deployment name.")
    role: Role = Field(description="prefill or decode.")
    gpu_type: str = Field(description="GPU type of its nodes.")
    domain: str = Field(
        "", description="Colocation domain (value of the colocate tier label); empty for cluster scope."
    )
    desired: int = Field(0, ge=0, description="Replicas the operator wants.")
    current: int = Field(0, ge=0, description="Replicas ready now.")
    owned: bool = Field(
        True,
        description="True: the group created and owns this Deployment (deleted with the group); "
        "false: a Deployment the group references (deploymentRef), never deleted by the operator.",
    )
    written_replicas: int | None = Field(
        None,
        ge=0,
        description="Replicas the operator last wrote to a scaleTargetRef workload through /scale (kept here: "
        "/scale carries no annotation); a different spec.replicas there is a person's edit. Absent for Deployments.",
    )


class LastDecision(StatusModel):
    """The most recent policy decision."""

    reason: Reason = Field(description="Reason code, e.g. ScaledUp, WithinTolerance, MetricStale.")
    message: str = Field(description="What happened and why, for a person.")
    time: str = Field(description="When it was made (RFC 3339).")


class Condition(StatusModel):
    """A Kubernetes-style condition."""

    type: ConditionType = Field(
        description="Ready, MetricsAvailable, ScalingActive, RatioSatisfied, Conflict, Active or ManualOverride."
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="One-word CamelCase reason.")
    message: str = Field("", description="Human-readable detail.")
    last_transition_time: str = Field(description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        None, description="metadata.generation of the spec this condition was set from."
    )


class DrainGroup(StatusModel):
    """One Deployment's part of a soft scale-in."""

    name: str = Field(description="Deployment name.")
    replicas: int = Field(ge=0, description="Replicas to set once the drain period is over.")
    pods: list[str] = Field(default_factory=list, description="Pods taken out of serving, to be removed.")


class Drain(StatusModel):
    """A soft scale-in in progress: chosen pods are out of the Service, waiting for drainSeconds."""

    started: float = Field(description="Unix time the pods were taken out of serving.")
    groups: list[DrainGroup] = Field(default_factory=list, description="What each Deployment drains.")
    reason: Reason = Field(description="Reason code of the decision that started the drain.")
    message: str = Field("", description="Message of that decision.")


class PDServingGroupStatus(StatusModel):
    """Observed state of a PDServingGroup."""

    observed_generation: int | None = Field(None, description="metadata.generation this status reflects.")
    decode_tps: float | None = Field(None, alias="decodeTPS", description="Decode tokens/s last read from Prometheus.")
    metric_age_seconds: float | None = Field(None, description="Age of that reading in seconds.")
    desired: RoleCounts = Field(default_factory=RoleCounts, description="Instances wanted per role.")
    current: RoleCounts = Field(default_factory=RoleCounts, description="Instances ready per role.")
    groups: list[GroupStatus] = Field(default_factory=list, description="Deployment groups and their sizes.")
    last_decision: LastDecision | None = Field(None, description="The most recent decision.")
    policy_state: PolicyState = Field(default_factory=PolicyState, description="State carried between ticks.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Current conditions, one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    drain: Drain | None = Field(
        None, description="Soft scale-in in progress; kept here so a restarted operator finishes it."
    )
    schedule: ScheduleStatus | None = Field(
        None, description="The spec.schedules entry in force; absent when none is (the spec's floors and ratio apply)."
    )
