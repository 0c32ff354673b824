"""The cluster admin's configuration of the operator: what tenants may reach (pure models).

A PDServingGroup is written by a tenant of one namespace; this file is written by the admin who
installs the operator (a ConfigMap mounted into the operator pod, ``heteroscale run --config``).
Everything a tenant must not choose lives here, as the HPA's metrics adapter and KEDA's
ClusterTriggerAuthentication keep it out of the scaled object:

* the Prometheus endpoints, by name: URL, CA bundle and bearer token (files the admin mounts from
  Secrets in the operator's namespace), and which namespaces may use each;
* which namespaces' custom queries may read series of other namespaces;
* how high a namespace's ``spec.priority`` may reach when groups of different namespaces compete
  for the same GPUs;
* for a fleet too large for one replica, this replica's shard: the groups it reconciles and the
  nodes it places them on.

A group names an endpoint (``spec.metric.prometheus.endpoint``); no field of a group names a file
of the operator, a URL, or another namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from heteroscale.api.errors import describe
from heteroscale.api.kubenames import LabelKey, LabelValue

#: The endpoint a group uses when its spec names none, and the one the default config defines.
DEFAULT_ENDPOINT = "default"
#: The priority every group of a namespace without a grant is capped at: the spec's default, so
#: groups that leave priority alone compete as equals across namespaces.
DEFAULT_PRIORITY_CEILING = 100
#: Matches every namespace in a namespace list.
ANY_NAMESPACE = "*"

_ENDPOINT_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_NAMESPACE = r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$"
Namespace = Annotated[str, Field(pattern=_NAMESPACE, max_length=63)]


class ConfigModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


def _matches(namespaces: tuple[str, ...], namespace: str) -> bool:
    return ANY_NAMESPACE in namespaces or namespace in namespaces


class PrometheusEndpoint(ConfigModel):
    """One Prometheus HTTP API the operator may query, and who may use it."""

    url: str = Field(pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$", description="Base URL of the Prometheus HTTP API.")
    ca_file: str = Field("", description="CA bundle for https, mounted into the operator pod; empty: system CAs.")
    bearer_token_file: str = Field(
        "", description="File holding a bearer token (re-read on every query: projected tokens rotate); empty: none."
    )
    timeout_seconds: float = Field(5.0, gt=0, le=60, description="Timeout of one query, in seconds.")
    namespaces: tuple[Namespace, ...] = Field(
        (ANY_NAMESPACE,), min_length=1, description="Namespaces whose groups may use this endpoint; '*' for all."
    )
    namespace_label: str = Field(
        "namespace",
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        description="Label that carries a series' Kubernetes namespace on this Prometheus.",
    )

    def allows(self, namespace: str) -> bool:
        return _matches(self.namespaces, namespace)


class PriorityGrant(ConfigModel):
    """Namespaces whose groups may outrank other namespaces' groups up to ``ceiling``."""

    namespaces: tuple[Namespace, ...] = Field(min_length=1, description="Namespaces this grant covers.")
    ceiling: int = Field(ge=0, le=1000000, description="Highest effective priority their groups get.")


class Shard(ConfigModel):
    """One operator replica's share of a fleet: the PDServingGroups it reconciles and the GPU nodes
    it places them on. Shards split the nodes between them, so two shards never plan the same free
    GPUs; priority and capacity are arbitrated within a shard only (see docs/operating.md)."""

    name: str = Field(pattern=_ENDPOINT_NAME, max_length=63, description="The shard's name, for logs and status.")
    group_labels: dict[LabelKey, LabelValue] = Field(
        min_length=1, description="Labels a PDServingGroup carries when this shard reconciles it (all of them)."
    )
    unlabelled_groups: bool = Field(
        False,
        description="Also reconcile groups that carry none of groupLabels' keys (the default shard; one shard only).",
    )
    node_labels: dict[LabelKey, LabelValue] = Field(
        min_length=1, description="Labels a GPU node carries when this shard places on it (all of them)."
    )

    def serves(self, labels: Mapping[str, str]) -> bool:
        """Whether this shard reconciles a group with these labels."""
        if all(labels.get(key) == value for key, value in self.group_labels.items()):
            return True
        return self.unlabelled_groups and not any(key in labels for key in self.group_labels)

    def places_on(self, labels: Mapping[str, str]) -> bool:
        """Whether this shard places on a node with these labels."""
        return all(labels.get(key) == value for key, value in self.node_labels.items())


class ScaleTargetKind(ConfigModel):
    """A kind of workload the operator may scale through its ``/scale`` subresource for a group's
    ``scaleTargetRef`` (the ClusterRole must grant ``get`` on it and ``get``/``patch`` on its
    ``/scale``: see docs/security.md). Deployments need no entry."""

    api_version: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/v[0-9]+((alpha|beta)[0-9]+)?$",
        max_length=253,
        description="API group and version, e.g. leaderworkerset.x-k8s.io/v1.",
    )
    kind: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", max_length=63, description="Kind, e.g. LeaderWorkerSet.")
    plural: str = Field(
        pattern=_ENDPOINT_NAME, max_length=63, description="Resource name in URLs, e.g. leaderworkersets."
    )

    def path(self, namespace: str, name: str) -> str:
        """The API path of one object of this kind."""
        return f"/apis/{self.api_version}/namespaces/{namespace}/{self.plural}/{name}"


class OperatorConfig(ConfigModel):
    """The operator's configuration file (``heteroscale run --config FILE``)."""

    prometheus_endpoints: dict[Annotated[str, Field(pattern=_ENDPOINT_NAME, max_length=63)], PrometheusEndpoint] = (
        Field(
            default_factory=lambda: {DEFAULT_ENDPOINT: PrometheusEndpoint(url="http://prometheus.monitoring:9090")},
            min_length=1,
            description="Prometheus endpoints by name; groups pick one with spec.metric.prometheus.endpoint.",
        )
    )
    cluster_wide_query_namespaces: tuple[Namespace, ...] = Field(
        (),
        description="Namespaces whose custom queries may read series of any namespace (default: none).",
    )
    priority_grants: tuple[PriorityGrant, ...] = Field(
        (), description=f"Priority ceilings above {DEFAULT_PRIORITY_CEILING} per namespace (default: none)."
    )

    scale_targets: tuple[ScaleTargetKind, ...] = Field(
        (),
        description="Kinds besides Deployments that groups may name in scaleTargetRef (default: none).",
    )
    shard: Shard | None = Field(
        None, description="This replica's shard of the fleet (default: every group, every node; one replica)."
    )

    @field_validator("prometheus_endpoints")
    @classmethod
    def _files_are_absolute(cls, endpoints: dict[str, PrometheusEndpoint]) -> dict[str, PrometheusEndpoint]:
        for name, endpoint in endpoints.items():
            for what, path in (("caFile", endpoint.ca_file), ("bearerTokenFile", endpoint.bearer_token_file)):
                if path and not Path(path).is_absolute():
                    raise ValueError(f"{name}.{what} must be an absolute path, got {path!r}")
        return endpoints

    @model_validator(mode="after")
    def _one_ceiling_per_namespace(self) -> Self:
        seen: set[str] = set()
        for grant in self.priority_grants:
            twice = seen.intersection(grant.namespaces)
            if twice:
                raise ValueError(f"priorityGrants name {sorted(twice)} more than once; give each namespace one ceiling")
            seen.update(grant.namespaces)
        return self

    @field_validator("scale_targets")
    @classmethod
    def _one_entry_per_kind(cls, kinds: tuple[ScaleTargetKind, ...]) -> tuple[ScaleTargetKind, ...]:
        seen = [(k.api_version, k.kind) for k in kinds]
        twice = sorted({f"{v}/{k}" for v, k in seen if seen.count((v, k)) > 1})
        if twice:
            raise ValueError(f"scaleTargets lists {twice} more than once; give each kind one entry")
        return kinds

    def scale_target_kind(self, api_version: str, kind: str, field: str) -> ScaleTargetKind:
        """The admin's entry for a kind a group's ``field`` names, or ValueError saying what to ask for."""
        found = next((k for k in self.scale_targets if (k.api_version, k.kind) == (api_version, kind)), None)
        if found is None:
            listed = ", ".join(f"{k.kind} ({k.api_version})" for k in self.scale_targets) or "none"
            raise ValueError(
                f"{field}: the operator may not scale {kind} ({api_version}); kinds its admin listed: {listed}. "
                "Ask the cluster admin to add the kind to scaleTargets in the operator's configuration and to "
                "grant its RBAC (docs/security.md), or reference a Deployment"
            )
        return found

    def endpoint_for(self, name: str, namespace: str) -> PrometheusEndpoint:
        """The endpoint a group of ``namespace`` asked for, or ValueError saying why it may not have it."""
        endpoint = self.prometheus_endpoints.get(name)
        if endpoint is None:
            known = ", ".join(sorted(self.prometheus_endpoints))
            raise ValueError(
                f"spec.metric.prometheus.endpoint {name!r} is not configured; the operator's admin configured: {known}"
            )
        if not endpoint.allows(namespace):
            raise ValueError(
                f"spec.metric.prometheus.endpoint {name!r} is not allowed for namespace {namespace!r}; "
                "ask the cluster admin to add the namespace to the endpoint, or pick another endpoint"
            )
        return endpoint

    def may_query_any_namespace(self, namespace: str) -> bool:
        return _matches(self.cluster_wide_query_namespaces, namespace)

    def priority_ceiling(self, namespace: str) -> int:
        """The highest priority a group of ``namespace`` counts with against other namespaces."""
        return max(
            (g.ceiling for g in self.priority_grants if _matches(g.namespaces, namespace)),
            default=DEFAULT_PRIORITY_CEILING,
        )


def load_config(path: Path) -> OperatorConfig:
    """Read and validate the config file; ValueError with one line per problem, naming the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not YAML: {exc}") from None
    try:
        return OperatorConfig.model_validate(raw or {})
    except ValidationError as exc:
        raise ValueError(f"{path}: " + "; ".join(describe(exc, root="config"))) from None
