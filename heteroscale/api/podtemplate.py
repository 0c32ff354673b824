"""The shape of a role's pod template, as far as HeteroScale reads or merges into it (pure).

A template is otherwise free-form (the API server keeps unknown fields under it, and the
Deployment's own validation judges the rest), but the parts the operator and placement touch
must have the types Kubernetes gives them: a template whose ``metadata`` is a string would fail
every tick instead of being refused with the spec. Unknown fields pass through untouched.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr


class _Open(BaseModel):
    """Typed where we read, open everywhere else."""

    model_config = ConfigDict(extra="allow")


class _Metadata(_Open):
    labels: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    annotations: dict[StrictStr, StrictStr] = Field(default_factory=dict)


class _Resources(_Open):
    requests: dict[StrictStr, Any] = Field(default_factory=dict)
    limits: dict[StrictStr, Any] = Field(default_factory=dict)


class _Container(_Open):
    name: StrictStr
    resources: _Resources = Field(default_factory=_Resources)


class _NodeSelectorTerm(_Open):
    match_expressions: list[dict[StrictStr, Any]] = Field(default_factory=list, alias="matchExpressions")


class _NodeSelector(_Open):
    node_selector_terms: list[_NodeSelectorTerm] = Field(default_factory=list, alias="nodeSelectorTerms")


class _NodeAffinity(_Open):
    required: _NodeSelector | None = Field(None, alias="requiredDuringSchedulingIgnoredDuringExecution")
    preferred: list[dict[StrictStr, Any]] = Field(
        default_factory=list, alias="preferredDuringSchedulingIgnoredDuringExecution"
    )


class _PodAffinity(_Open):
    preferred: list[dict[StrictStr, Any]] = Field(
        default_factory=list, alias="preferredDuringSchedulingIgnoredDuringExecution"
    )


class _Affinity(_Open):
    node_affinity: _NodeAffinity | None = Field(None, alias="nodeAffinity")
    pod_affinity: _PodAffinity | None = Field(None, alias="podAffinity")


class _PodSpec(_Open):
    containers: list[_Container] = Field(min_length=1)
    affinity: _Affinity | None = None
    tolerations: list[dict[StrictStr, Any]] = Field(default_factory=list)


class PodTemplate(_Open):
    """``spec.roles.<role>.template``: a pod template as in a Deployment."""

    metadata: _Metadata = Field(default_factory=_Metadata)
    spec: _PodSpec
