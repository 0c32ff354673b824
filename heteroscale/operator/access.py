"""What a group may reach, from the cluster admin's configuration and the group's namespace (pure).

A PDServingGroup is a tenant's: before a tick reads anything for it, its endpoint, its queries (the
custom decode query and the activation query), its priority and the kinds of its ``scaleTargetRef``
are resolved against
:class:`~heteroscale.api.config.OperatorConfig`. A group that asks for more than its namespace is
allowed is refused with reason ``NotAllowed`` and nothing is read or written for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from heteroscale.api.config import OperatorConfig, PrometheusEndpoint
from heteroscale.api.enums import Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.metrics import queries
from heteroscale.metrics.queries import Scope

#: Stands in for the decode Deployments while a custom query is only being checked.
_SOME_DEPLOYMENT = "deployment"


@dataclass(frozen=True)
class Access:
    endpoint_name: str
    endpoint: PrometheusEndpoint
    scope: Scope
    priority: int
    """The priority the group competes for GPUs with: its own, capped by its namespace's ceiling."""

    def placed_spec(self, spec: PDServingGroupSpec) -> PDServingGroupSpec:
        """The spec as placement must see it (with the effective priority)."""
        if spec.priority == self.priority:
            return spec
        return spec.model_copy(update={"priority": self.priority})


def resolve(config: OperatorConfig, spec: PDServingGroupSpec, namespace: str) -> Access:
    """The group's access, or ValueError naming the field and what to do about it."""
    name = spec.metric.prometheus.endpoint
    endpoint = config.endpoint_for(name, namespace)
    scope = Scope(namespace, endpoint.namespace_label, config.may_query_any_namespace(namespace))
    if spec.metric.query:
        try:
            queries.custom_query(spec.metric, scope, [_SOME_DEPLOYMENT])
        except ValueError as exc:
            raise ValueError(f"spec.metric.query: {exc}") from None
    zero = spec.behavior.scale_to_zero
    if zero is not None:
        try:
            queries.activation_query(zero, spec.metric, scope)
        except ValueError as exc:
            raise ValueError(f"spec.behavior.scaleToZero.activationQuery: {exc}") from None
    for role in Role:
        target = spec.roles.of(role).scale_target
        if target is not None:
            config.scale_target_kind(target.api_version, target.kind, f"spec.roles.{role.value}.scaleTargetRef")
    return Access(name, endpoint, scope, min(spec.priority, config.priority_ceiling(namespace)))
