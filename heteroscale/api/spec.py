"""The PDServingGroup spec: the single source of truth for validation and the CRD schema.

Every field carries a description (it is what ``kubectl explain`` shows) and its bounds. Rules
that span fields are declared on their model as ``x-kubernetes-validations`` (entries made by
:func:`cel` in ``json_schema_extra``) *and* checked by a pydantic validator with the same message,
so the API server and ``heteroscale`` reject the same specs with the same words.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from heteroscale.api import labels
from heteroscale.api.config import DEFAULT_ENDPOINT
from heteroscale.api.enums import Engine, Mode, Role
from heteroscale.api.errors import describe
from heteroscale.api.kubenames import LabelKey
from heteroscale.api.podtemplate import PodTemplate
from heteroscale.api.promql import promql_syntax_error
from heteroscale.api.schedule import Schedule

DURATION_PATTERN = r"^[1-9][0-9]*(s|m|h)$"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}
# GPU type names end up as label values and Deployment name parts.
GPU_TYPE_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
DNS_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

GpuType = Annotated[str, Field(pattern=GPU_TYPE_PATTERN, max_length=63)]


def _positive_duration(value: str) -> str:
    if re.fullmatch(DURATION_PATTERN, value) is None:
        raise ValueError(
            f"must be a positive duration in whole seconds, minutes or hours, e.g. 60s, 5m, 1h (got {value!r})"
        )
    return value


Duration = Annotated[
    str,
    AfterValidator(_positive_duration),
    Field(
        json_schema_extra={"pattern": DURATION_PATTERN, "maxLength": 12},
        description="A positive duration: whole seconds, minutes or hours, e.g. 60s, 5m, 1h.",
    ),
]

_ONE_DEPLOYMENT_PER_ROLE = (
    "prefill and decode reference the same Deployment; each role needs its own (one count cannot follow two targets)"
)
_ONE_TARGET_NAME_PER_ROLE = (
    "prefill and decode reference targets of the same name; give each role a target of its own name (the "
    "engine metrics find a role's pods by the name their controller gives them)"
)
_ONE_SOURCE = "set exactly one of template, deploymentRef or scaleTargetRef"
_ADMIN_OWNED_MESSAGE = (
    "the Prometheus URL, CA and credentials are configured by the cluster admin, not in a PDServingGroup; "
    "name one of the admin's endpoints instead, e.g. prometheus: {endpoint: default}"
)


def duration_seconds(value: str) -> int:
    """Seconds in a validated duration string such as ``90s`` or ``2m``."""
    match = re.fullmatch(DURATION_PATTERN, value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration like 60s, 5m or 1h")
    return int(value[:-1]) * _DURATION_UNITS[value[-1]]


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, JsonValue]:
    """One ``x-kubernetes-validations`` entry."""
    entry: dict[str, JsonValue] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


class SpecModel(BaseModel):
    """Base for every spec object: camelCase on the wire, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class AdaptiveRatio(SpecModel):
    """Opt-in: let the P:D ratio move within a band the admin declares, driven by KV-cache-missed
    prefill tokens/s. Prefill and decode are still decided together and placed as pairs."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.minRatio <= self.maxRatio", "minRatio must be <= maxRatio", ".minRatio")
            ]
        }
    )

    min_ratio: float = Field(gt=0, le=1000, description="Fewest prefill instances per decode instance, e.g. 2.0.")
    max_ratio: float = Field(gt=0, le=1000, description="Most prefill instances per decode instance, e.g. 6.0.")
    prefill_target_tps_per_instance: float = Field(
        alias="prefillTargetTPSPerInstance",
        gt=0,
        le=1e9,
        description="KV-cache-missed prefill tokens/s one prefill instance should serve (from a stress test).",
    )
    hysteresis: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="Prefill stays put while its load per instance is within 1 +- hysteresis of the target.",
    )

    @model_validator(mode="after")
    def _band(self) -> Self:
        if self.min_ratio > self.max_ratio:
            raise ValueError(f"minRatio must be <= maxRatio (got {self.min_ratio} > {self.max_ratio})")
        return self


class Ratio(SpecModel):
    """Prefill instances per decode instances, e.g. 1:3. Fixed online, set from a stress test."""

    prefill: int = Field(1, ge=1, le=1000, description="Prefill side of the P:D ratio (a positive integer).")
    decode: int = Field(1, ge=1, le=1000, description="Decode side of the P:D ratio (a positive integer).")
    adaptive: AdaptiveRatio | None = Field(
        None,
        description="Opt-in: move the ratio within a band on KV-cache-missed prefill tokens/s (beyond the "
        "paper, which keeps it fixed); prefill:decode above is then where it starts and what minimums use. "
        "Prefill scales in as decode does: to the highest recommendation of behavior.scaleDown's "
        "stabilization window, by at most its step. The latency guard steps each role on its own latency: "
        "decode on TBT, prefill on TTFT and its queue (decode rising with it as far as maxRatio needs).",
    )

    def prefill_for(self, decode_instances: int) -> int:
        """Prefill instances that go with this many decode instances (rounded up)."""
        return -(-decode_instances * self.prefill // self.decode)

    def decode_floor_for(self, prefill_instances: int) -> int:
        """The fewest decode instances for which :meth:`prefill_for` gives ``prefill_instances``."""
        if prefill_instances <= 0:
            return 0
        return (prefill_instances - 1) * self.decode // self.prefill + 1


class PrometheusRef(SpecModel):
    """Which of the Prometheus endpoints the cluster admin configured to read the metric from.

    The URL, CA and credentials are the admin's (the operator's config file): a tenant who may write
    this resource must not make the operator send its credentials, or any request, elsewhere. The
    API server prunes fields the schema does not know; the models refuse them with a pointer here.
    """

    endpoint: str = Field(
        DEFAULT_ENDPOINT,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="Name of a Prometheus endpoint in the operator's configuration (ask the cluster admin).",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_admin_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"url", "bearerTokenFile", "caFile", "timeoutSeconds"} & data.keys():
            raise ValueError(_ADMIN_OWNED_MESSAGE)
        return data


class MetricSource(SpecModel):
    """The decode-throughput signal that drives scaling."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.engine != 'custom' || size(self.query) > 0",
                    "query is required when engine is custom",
                    ".query",
                ),
                cel(
                    "self.engine == 'custom' || size(self.query) == 0",
                    "query is only used with engine: custom; remove it or set engine: custom",
                    ".query",
                ),
            ]
        }
    )

    engine: Engine = Field(
        Engine.VLLM,
        description="Serving engine whose metrics to read: vllm, sglang, or custom (give query).",
    )
    query: str = Field(
        "",
        max_length=4096,
        description=(
            "PromQL returning decode tokens per second as one series (engine: custom only). "
            "Placeholders {namespace}, {pods} (regex of the decode pods) and {window} are filled in."
        ),
    )
    window: Duration = Field("60s", description="Rate window for the decode tokens/s query, e.g. 60s.")
    stale_after: Duration = Field(
        "120s", description="A sample older than this is stale: the policy holds instead of scaling."
    )
    prometheus: PrometheusRef = Field(
        default_factory=PrometheusRef, description="The admin-configured Prometheus endpoint to query."
    )

    @property
    def window_seconds(self) -> int:
        return duration_seconds(self.window)

    @property
    def stale_after_seconds(self) -> int:
        return duration_seconds(self.stale_after)

    @field_validator("query")
    @classmethod
    def _query_is_promql(cls, query: str) -> str:
        problem = promql_syntax_error(query)
        if problem:
            raise ValueError(f"query is not valid PromQL: {problem}")
        return query

    @model_validator(mode="after")
    def _query_matches_engine(self) -> Self:
        if self.engine is Engine.CUSTOM and not self.query:
            raise ValueError("query is required when engine is custom")
        if self.engine is not Engine.CUSTOM and self.query:
            raise ValueError("query is only used with engine: custom; remove it or set engine: custom")
        return self


_DECODE_ZERO_NEEDS_ACTIVATION = (
    "decode.minReplicas 0 needs behavior.scaleToZero: with no decode instance nothing reports decode tokens/s, "
    "so only an activation query can bring the group back; set minReplicas >= 1 or configure scaleToZero"
)
_ZERO_NEEDS_ZERO_MINIMUMS = (
    "behavior.scaleToZero needs decode.minReplicas and prefill.minReplicas 0 (the group goes to zero when idle); "
    "a floor while it serves can come from schedules"
)
_SCHEDULE_FLOOR_LE_MAX = "a schedule's minReplicas must be <= that role's maxReplicas"
_UNIQUE_SCHEDULES = "schedule names must be unique"

_MIN_LE_MAX = cel("self.minReplicas <= self.maxReplicas", "minReplicas must be <= maxReplicas", ".minReplicas")


class ReplicaBounds(SpecModel):
    """Bounds for one role's instance count."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [_MIN_LE_MAX]})

    min_replicas: int = Field(1, ge=0, le=10000, description="Fewest instances of this role.")
    max_replicas: int = Field(64, ge=1, le=10000, description="Most instances of this role.")

    @model_validator(mode="after")
    def _min_le_max(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas must be <= maxReplicas (got {self.min_replicas} > {self.max_replicas})")
        return self


class DecodeScaling(ReplicaBounds):
    """Decode pool: per-instance throughput targets and bounds."""

    target_tps_per_instance: dict[GpuType, Annotated[float, Field(gt=0, le=1e9)]] = Field(
        alias="targetTPSPerInstance",
        min_length=1,
        max_length=16,
        description=(
            "Decode tokens/s one decode instance should serve, per GPU type (from a stress test). "
            "Every GPU type in roles.decode.gpuTypes needs an entry."
        ),
    )


class PrefillScaling(ReplicaBounds):
    """Prefill pool bounds; its count follows decode through the ratio."""


class StepUp(SpecModel):
    """How fast to scale out."""

    cooldown_seconds: int = Field(60, ge=0, le=86400, description="Minimum seconds between scale-ups.")
    max_step_percent: int = Field(
        100, ge=1, le=1000, description="Most instances added per period, in percent of the current count."
    )
    min_step_instances: int = Field(
        4,
        ge=1,
        le=1000,
        description="A scale-up may always add this many instances, whatever maxStepPercent allows "
        "(Kubernetes HPA's default is 4), so a small pool can answer a surge.",
    )


class StepDown(SpecModel):
    """How cautiously to scale in."""

    cooldown_seconds: int = Field(
        600, ge=0, le=86400, description="Minimum seconds after any scale action before a scale-in."
    )
    stabilization_window_seconds: int = Field(
        300,
        ge=0,
        le=86400,
        description="Scale in only to the highest recommendation seen in this many seconds.",
    )
    max_step_percent: int = Field(
        20, ge=1, le=100, description="Most instances removed per period, in percent of the current count."
    )
    drain_seconds: int = Field(
        30,
        ge=0,
        le=3600,
        description="Seconds a pod chosen for removal stays out of the Service before it is deleted.",
    )


class LatencyTier(SpecModel):
    """An extra scale-out step when time-between-tokens exceeds the SLO by a factor."""

    over: float = Field(gt=1.0, le=100.0, description="Factor over the SLO that triggers this tier, e.g. 1.2.")
    step_percent: int = Field(ge=1, le=1000, description="Extra decode instances to add, in percent.")


class LatencyGuard(SpecModel):
    """Latency safety net on time-between-tokens (TBT/TPOT); a backstop, not the main signal."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.tiers.all(t, self.tiers.exists_one(u, u.over == t.over))",
                    "latencyGuard tiers must have distinct 'over' factors",
                    ".tiers",
                )
            ]
        }
    )

    slo_seconds: float = Field(gt=0, le=60, description="Time-between-tokens SLO in seconds, e.g. 0.05.")
    ttft_seconds: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="Optional time-to-first-token SLO in seconds. When set, TTFT on the prefill pods (at the same "
        "quantile), or the prefill queue's wait (requests waiting over prefills ended per second), over a tier's "
        "factor of it triggers the tier as TBT does: prefill queues first on a surge, and the queue shows it before "
        "the TTFT of the prefills that ended does.",
    )
    quantile: float = Field(0.9, gt=0, lt=1, description="TBT quantile compared with the SLO.")
    proportional: bool = Field(
        False,
        description="When true, a breached tier adds at least as many percent as the latency is over its "
        "SLO ((factor - 1) x 100%) of the instances serving, so a large jump gets a step to match. TBT and the "
        "prefill queue's wait size it; TTFT does only when the queue is not read (its histogram lags). "
        "scaleUp.maxStepPercent still limits what each period adds to the current count.",
    )
    tiers: list[LatencyTier] = Field(
        # A plain default (pydantic copies it) rather than a factory, so it appears in the CRD too.
        default=[LatencyTier(over=1.2, step_percent=10), LatencyTier(over=1.5, step_percent=20)],
        max_length=8,
        description="Tiers by factor over the SLO; the highest tier exceeded applies.",
    )

    @field_validator("tiers")
    @classmethod
    def _distinct_tiers(cls, tiers: list[LatencyTier]) -> list[LatencyTier]:
        overs = [t.over for t in tiers]
        if len(set(overs)) != len(overs):
            raise ValueError("latencyGuard tiers must have distinct 'over' factors")
        return sorted(tiers, key=lambda t: t.over)


class ScaleToZero(SpecModel):
    """Opt-in: go to zero instances of both roles when idle, and come back on an activation signal.

    With no decode instance nothing reports decode tokens/s, so a group at zero is woken by a reading
    that exists without engines: requests or queued requests counted by the router or gateway in front
    of them (``activationQuery``). Both roles start together, at the ratio.
    """

    idle_seconds: int = Field(
        900,
        ge=60,
        le=7 * 86400,
        description="Seconds of trusted zero decode tokens/s, with the activation reading at or below "
        "activationThreshold, before both roles go to zero. The default is several times a large model's "
        "cold start (minutes), so a lull between requests does not cost the next one a cold start.",
    )
    activation_query: str = Field(
        min_length=1,
        max_length=4096,
        description="PromQL giving one number that exists while no engine runs: requests (or queued requests) "
        "per second at the router or gateway in front of the engines. Above activationThreshold, a group at "
        "zero starts one prefill/decode set at the ratio. Placeholders: {namespace} (every selector needs "
        'namespace="{namespace}": tenant queries read their own namespace only) and {window}; not {pods}.',
    )
    activation_threshold: float = Field(
        0.0,
        ge=0,
        le=1e12,
        description="The group is active while the activation reading is above this (as KEDA's "
        "activationThreshold); 0 means any request activates it.",
    )

    @field_validator("activation_query")
    @classmethod
    def _query_is_promql(cls, query: str) -> str:
        if "{pods}" in query:
            raise ValueError(
                "activationQuery cannot use {pods}: a group at zero has no pods; select the gateway's series "
                'by namespace="{namespace}" and its own labels'
            )
        problem = promql_syntax_error(query)
        if problem:
            raise ValueError(f"activationQuery is not valid PromQL: {problem}")
        return query


class Behavior(SpecModel):
    """Timing, dead band and step limits of the control loop."""

    interval_seconds: int = Field(15, ge=1, le=3600, description="Seconds between two reconciles.")
    tolerance: float = Field(
        0.1, ge=0, lt=1, description="Dead band: no change while load/capacity is within 1 ± tolerance."
    )
    scale_up: StepUp = Field(default_factory=StepUp, description="Scale-out behaviour.")
    scale_down: StepDown = Field(default_factory=StepDown, description="Scale-in behaviour.")
    latency_guard: LatencyGuard | None = Field(None, description="Optional extra scale-out when TBT exceeds the SLO.")
    zero_traffic_readings: int = Field(
        8,
        ge=1,
        le=1000,
        description="Consecutive zero-throughput readings before both roles go to their minimum.",
    )
    pod_start_timeout_seconds: int = Field(
        600,
        ge=30,
        le=86400,
        description="A pod not ready this long after its creation is stuck (CrashLoopBackOff, an image that "
        "cannot be pulled, Unschedulable): it is reported (PodsStuck) and no longer blocks scale-in. Pods "
        "within it still do. Default 600, a Deployment's own progressDeadlineSeconds: model images and "
        "weights can take minutes to pull and load.",
    )
    manual_hold_seconds: int = Field(
        600,
        ge=0,
        le=86400,
        description="When a person changes a managed Deployment's replicas (kubectl scale), the counts they "
        "set are a floor for this many seconds (reported as ManualOverride): the policy may go higher, not lower; "
        "then it resumes. 0: no floor, the policy's rules apply to the edited counts at once (a scale-in still "
        "obeys its cooldown and steps, as before), and the edit is still reported.",
    )
    scale_to_zero: ScaleToZero | None = Field(
        None,
        description="Opt-in: both roles go to zero after idleSeconds without traffic and start again on an "
        "activation query. Needs minReplicas 0 on both roles.",
    )


class DeploymentRef(SpecModel):
    """An existing Deployment to adopt (never deleted by the operator)."""

    name: str = Field(pattern=DNS_NAME_PATTERN, max_length=253, description="Deployment name in the same namespace.")


class ScaleTargetRef(SpecModel):
    """An existing workload of any kind that serves ``/scale`` (e.g. a LeaderWorkerSet), scaled
    through that subresource and never deleted by the operator. Its kind must be one the cluster
    admin lists in the operator's ``scaleTargets`` (Deployments always may be)."""

    api_version: str = Field(
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?v[0-9]+((alpha|beta)[0-9]+)?$",
        max_length=253,
        description="API group and version of the target, e.g. leaderworkerset.x-k8s.io/v1 (apps/v1 for a Deployment).",
    )
    kind: str = Field(
        pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=63, description="Kind of the target, e.g. LeaderWorkerSet."
    )
    name: str = Field(pattern=DNS_NAME_PATTERN, max_length=253, description="Name of the target in the same namespace.")

    @property
    def is_deployment(self) -> bool:
        """An apps/v1 Deployment: handled exactly as ``deploymentRef`` (its shorthand)."""
        return (self.api_version, self.kind) == ("apps/v1", "Deployment")


class RoleSpec(SpecModel):
    """How to run one role: a pod template to create Deployments from, an existing Deployment, or
    an existing workload of another kind scaled through ``/scale``."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(has(self.template) ? 1 : 0) + (has(self.deploymentRef) ? 1 : 0) "
                    "+ (has(self.scaleTargetRef) ? 1 : 0) == 1",
                    _ONE_SOURCE,
                )
            ]
        }
    )

    template: dict[str, Any] | None = Field(
        None,
        description="Pod template (metadata and spec, as in a Deployment) for the Deployments the operator creates.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    deployment_ref: DeploymentRef | None = Field(
        None, description="Adopt this existing Deployment instead of creating one."
    )
    scale_target_ref: ScaleTargetRef | None = Field(
        None,
        description="Scale this existing workload through its /scale subresource instead (reference mode; "
        "any kind the cluster admin lists in the operator's scaleTargets, e.g. a LeaderWorkerSet).",
    )
    gpu_types: list[GpuType] = Field(
        min_length=1, max_length=16, description="GPU types this role may run on, most preferred first."
    )
    gpus_per_instance: int = Field(8, ge=1, le=64, description="GPUs one instance of this role uses.")

    @field_validator("gpu_types")
    @classmethod
    def _distinct_types(cls, types: list[str]) -> list[str]:
        if len(set(types)) != len(types):
            raise ValueError("gpuTypes must not repeat a GPU type")
        return types

    @field_validator("template")
    @classmethod
    def _template_shape(cls, template: dict[str, Any] | None) -> dict[str, Any] | None:
        """The parts of the template the operator reads must have Kubernetes' types (the rest is the
        Deployment's to judge); the template itself is kept as written."""
        if template is not None:
            try:
                PodTemplate.model_validate(template)
            except ValidationError as exc:
                raise ValueError("; ".join(describe(exc, root="template"))) from None
        return template

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if sum(s is not None for s in (self.template, self.deployment_ref, self.scale_target_ref)) != 1:
            raise ValueError(_ONE_SOURCE)
        return self

    @property
    def reference_name(self) -> str | None:
        """The name of the workload this role references (deploymentRef or scaleTargetRef); None
        for a template."""
        ref = self.deployment_ref or self.scale_target_ref
        return ref.name if ref is not None else None

    @property
    def scale_target(self) -> ScaleTargetRef | None:
        """The ``/scale`` target of this role; None for a template or a Deployment (either form)."""
        ref = self.scale_target_ref
        return ref if ref is not None and not ref.is_deployment else None


def _cel_reference_name(role: str) -> str:
    """CEL for the name a role references (deploymentRef or scaleTargetRef); '' for a template."""
    me = f"self.{role}"
    return (
        f"(has({me}.deploymentRef) ? {me}.deploymentRef.name : "
        f"(has({me}.scaleTargetRef) ? {me}.scaleTargetRef.name : ''))"
    )


class Roles(SpecModel):
    """The two roles of a disaggregated deployment."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.prefill.deploymentRef) || !has(self.decode.deploymentRef) || "
                    "self.prefill.deploymentRef.name != self.decode.deploymentRef.name",
                    _ONE_DEPLOYMENT_PER_ROLE,
                ),
                cel(
                    "!has(self.prefill.scaleTargetRef) && !has(self.decode.scaleTargetRef) || "
                    f"{_cel_reference_name('prefill')} != {_cel_reference_name('decode')}",
                    _ONE_TARGET_NAME_PER_ROLE,
                ),
            ]
        }
    )

    prefill: RoleSpec = Field(description="Prefill (prompt processing) instances.")
    decode: RoleSpec = Field(description="Decode (token generation) instances.")

    def of(self, role: Role) -> RoleSpec:
        """The spec of one role."""
        return self.prefill if role is Role.PREFILL else self.decode

    @model_validator(mode="after")
    def _distinct_deployments(self) -> Self:
        refs = [r.deployment_ref.name for r in (self.prefill, self.decode) if r.deployment_ref is not None]
        if len(refs) == 2 and refs[0] == refs[1]:
            raise ValueError(_ONE_DEPLOYMENT_PER_ROLE)
        if self.prefill.scale_target_ref is None and self.decode.scale_target_ref is None:
            return self
        if self.prefill.reference_name is not None and self.prefill.reference_name == self.decode.reference_name:
            raise ValueError(f"{_ONE_TARGET_NAME_PER_ROLE} (both are named {self.prefill.reference_name!r})")
        return self


class Topology(SpecModel):
    """Node labels that describe GPU types and the switch hierarchy."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.colocate == '' || self.colocate in self.tiers",
                    "colocate must be one of tiers (or empty for cluster scope)",
                    ".colocate",
                )
            ]
        }
    )

    gpu_type_label: LabelKey = Field(
        "nvidia.com/gpu.product", description="Node label whose value is the node's GPU type."
    )
    gpu_resource: str = Field("nvidia.com/gpu", max_length=253, description="Extended resource name of one GPU.")
    tiers: list[LabelKey] = Field(
        default=list(labels.TIER_LABELS),
        max_length=8,
        description="Node labels naming the switch domain at each tier, leaf first (S0, S1, S2 ...).",
    )
    colocate: str = Field(
        labels.TIER_LABELS[-1],
        max_length=316,
        description="Tier label whose domain the prefill and decode of one group share; empty for cluster scope.",
    )
    slow_node_label: LabelKey = Field(
        labels.LABEL_SLOW_NODE,
        description="Nodes with this label set to 'true' are used last (e.g. stragglers found by analysis).",
    )

    @model_validator(mode="after")
    def _colocate_in_tiers(self) -> Self:
        if self.colocate and self.colocate not in self.tiers:
            raise ValueError(f"colocate must be one of tiers {self.tiers} (or empty), got {self.colocate!r}")
        return self


class PDServingGroupSpec(SpecModel):
    """Desired behaviour of one prefill/decode serving group."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.roles.decode.gpuTypes.all(t, t in self.decode.targetTPSPerInstance)",
                    "every GPU type in roles.decode.gpuTypes needs a decode.targetTPSPerInstance entry",
                    ".decode.targetTPSPerInstance",
                ),
                cel(
                    "self.decode.targetTPSPerInstance.all(t, t in self.roles.decode.gpuTypes)",
                    "decode.targetTPSPerInstance names a GPU type that is not in roles.decode.gpuTypes",
                    ".decode.targetTPSPerInstance",
                ),
                cel(
                    "has(self.behavior.scaleToZero) || self.decode.minReplicas > 0",
                    _DECODE_ZERO_NEEDS_ACTIVATION,
                    ".decode.minReplicas",
                ),
                cel(
                    "!has(self.behavior.scaleToZero) || "
                    "(self.decode.minReplicas == 0 && self.prefill.minReplicas == 0)",
                    _ZERO_NEEDS_ZERO_MINIMUMS,
                    ".behavior.scaleToZero",
                ),
                cel(
                    "self.schedules.all(s, !has(s.minReplicas) || "
                    "((!has(s.minReplicas.decode) || s.minReplicas.decode <= self.decode.maxReplicas) && "
                    "(!has(s.minReplicas.prefill) || s.minReplicas.prefill <= self.prefill.maxReplicas)))",
                    _SCHEDULE_FLOOR_LE_MAX,
                    ".schedules",
                ),
                cel(
                    "self.schedules.all(s, self.schedules.exists_one(u, u.name == s.name))",
                    _UNIQUE_SCHEDULES,
                    ".schedules",
                ),
            ]
        }
    )

    mode: Mode = Field(Mode.ENFORCE, description="Enforce patches Deployments; DryRun only writes status.")
    ratio: Ratio = Field(default_factory=Ratio, description="Fixed prefill:decode instance ratio.")
    metric: MetricSource = Field(default_factory=MetricSource, description="The scaling signal.")
    decode: DecodeScaling = Field(description="Decode targets and bounds.")
    prefill: PrefillScaling = Field(default_factory=PrefillScaling, description="Prefill bounds.")
    behavior: Behavior = Field(default_factory=Behavior, description="Control-loop timing and limits.")
    roles: Roles = Field(description="Pod templates or Deployments per role, and their GPU types.")
    topology: Topology = Field(default_factory=Topology, description="Node labels for placement.")
    priority: int = Field(100, ge=0, le=1000000, description="Higher is placed first when groups compete for GPUs.")
    schedules: list[Schedule] = Field(
        default=[],
        max_length=32,
        description="Time-of-day floors and ratios (the periodic policy). At any time the entry whose cron "
        "fired most recently (looking back at most 366 days; on a tie, the later entry in the list) is in "
        "force: its floors raise the roles' minReplicas and its ratio replaces spec.ratio's. None fired: "
        "the spec's own floors and ratio.",
    )

    @model_validator(mode="after")
    def _targets_match_gpu_types(self) -> Self:
        types = self.roles.decode.gpu_types
        targets = self.decode.target_tps_per_instance
        missing = [t for t in types if t not in targets]
        if missing:
            raise ValueError(
                f"every GPU type in roles.decode.gpuTypes needs a decode.targetTPSPerInstance entry; missing: {missing}"
            )
        unknown = [t for t in targets if t not in types]
        if unknown:
            raise ValueError(
                f"decode.targetTPSPerInstance names a GPU type that is not in roles.decode.gpuTypes: {unknown}; "
                "remove it or add the type to the role"
            )
        return self

    @model_validator(mode="after")
    def _zero_needs_activation(self) -> Self:
        zero = self.behavior.scale_to_zero is not None
        if not zero and self.decode.min_replicas == 0:
            raise ValueError(_DECODE_ZERO_NEEDS_ACTIVATION)
        if zero and (self.decode.min_replicas, self.prefill.min_replicas) != (0, 0):
            got = f"got decode {self.decode.min_replicas}, prefill {self.prefill.min_replicas}"
            raise ValueError(f"{_ZERO_NEEDS_ZERO_MINIMUMS} ({got})")
        return self

    @model_validator(mode="after")
    def _schedules_fit(self) -> Self:
        names = [s.name for s in self.schedules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"{_UNIQUE_SCHEDULES}; repeated: {repeated}")
        for entry in self.schedules:
            floors = entry.min_replicas
            if floors is None:
                continue
            for role, floor, bounds in (
                ("decode", floors.decode, self.decode),
                ("prefill", floors.prefill, self.prefill),
            ):
                if floor is not None and floor > bounds.max_replicas:
                    raise ValueError(
                        f"{_SCHEDULE_FLOOR_LE_MAX}: schedule {entry.name!r} asks for {role} {floor}, "
                        f"maxReplicas is {bounds.max_replicas}"
                    )
        return self
