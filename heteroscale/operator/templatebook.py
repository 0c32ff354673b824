"""Each group's parsed spec and rendered pod templates, kept across ticks while its spec stays the same (pure).

A tick parses its group's spec, and renders the pod template of each of its Deployments to compare
its hash with the one on the Deployment: validation, a deep copy of the role's template and a
sorted JSON dump per Deployment per tick. At a thousand groups that was about a tenth of the
operator's CPU (issue #15), for an answer that changes only when the spec or the group's placement
does. The book keeps, per group, the raw spec it parsed, compared by value with the object's on
every tick (so an edit is seen on the next one), and the templates rendered from that spec, by the
deployment group they were rendered for (its replicas aside: they are not in the template). A
template not asked for in a tick is dropped at the next, so the book holds at most two ticks' worth.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.operator.manifests import PodTemplate, pod_template
from heteroscale.operator.naming import GroupPlan
from heteroscale.placement.result import PlannedGroup

Key = tuple[str, str]


def render(pdsg: str, spec: PDServingGroupSpec, group: GroupPlan) -> PodTemplate | None:
    """The pod template the operator wants on the group's Deployment, with its hash (see
    :func:`~heteroscale.operator.manifests.pod_template`)."""
    body = pod_template(pdsg, spec, group)
    return None if body is None else PodTemplate.of(body)


#: What a template is not rendered from: a scale step renders nothing. Every other field is in the
#: key, a field added later too (it can only make the book render more often, never less).
_GROUP_FIELDS = tuple(f.name for f in fields(GroupPlan) if f.name not in {"replicas", "target", "planned"})
_PLANNED_FIELDS = tuple(f.name for f in fields(PlannedGroup) if f.name not in {"replicas", "nodes_available"})


def _rendered_for(group: GroupPlan) -> tuple[Any, ...]:
    """The group as far as its template goes (a tuple: building one is a tenth of what
    ``dataclasses.replace`` costs, and every tick asks for each of its Deployments)."""
    planned = group.planned
    return (
        *(getattr(group, name) for name in _GROUP_FIELDS),
        None if planned is None else tuple(getattr(planned, name) for name in _PLANNED_FIELDS),
    )


@dataclass
class _Entry:
    raw: Mapping[str, Any]
    """A copy of what ``spec`` was parsed from."""
    spec: PDServingGroupSpec
    templates: dict[tuple[Any, ...], PodTemplate | None] = field(default_factory=dict)
    """Asked for since this tick parsed the spec."""
    previous: dict[tuple[Any, ...], PodTemplate | None] = field(default_factory=dict)
    """Asked for in the tick before."""


@dataclass
class TemplateBook:
    """Per group (namespace, name): its spec as last parsed and the templates rendered from it."""

    _entries: dict[Key, _Entry] = field(default_factory=dict)

    def spec(self, key: Key, raw: Mapping[str, Any]) -> PDServingGroupSpec:
        """The group's spec from the object's raw ``spec``: the one parsed before while the raw spec
        is equal to what it was parsed from. Raises pydantic's ValidationError for an invalid one
        (and forgets the group's entry). Called once per tick: it starts the tick's templates."""
        entry = self._entries.get(key)
        if entry is not None and entry.raw == raw:
            entry.previous, entry.templates = entry.templates, {}
            return entry.spec
        self._entries.pop(key, None)
        spec = PDServingGroupSpec.model_validate(raw)
        self._entries[key] = _Entry(copy.deepcopy(raw), spec)
        return spec

    def template(self, key: Key, spec: PDServingGroupSpec, group: GroupPlan) -> PodTemplate | None:
        """The group's pod template (:func:`render`), rendered once per spec and deployment group.
        A spec the book did not hand out is rendered for and not kept."""
        entry = self._entries.get(key)
        if entry is None or entry.spec is not spec:
            return render(key[1], spec, group)
        wanted = _rendered_for(group)
        if wanted not in entry.templates:
            found = entry.previous[wanted] if wanted in entry.previous else render(key[1], spec, group)
            entry.templates[wanted] = found
        return entry.templates[wanted]

    def forget(self, key: Key) -> None:
        self._entries.pop(key, None)
