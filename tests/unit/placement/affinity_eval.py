"""An independent evaluator of Kubernetes required node affinity, for checking rendered templates.

Semantics (k8s.io/component-helpers/scheduling/corev1/nodeaffinity): ``nodeSelectorTerms`` are
ORed, the requirements inside one term (``matchExpressions`` on labels and ``matchFields`` on
``metadata.name``) are ANDed; an empty or missing term list selects no node; a term with no
requirements selects nothing. Operators: In, NotIn (true when the label is absent), Exists,
DoesNotExist, Gt and Lt (the label value and the single value parse as integers; false when the
label is absent or not an integer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _requirement(value: str | None, operator: str, values: Sequence[str]) -> bool:
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt"):
        if value is None or len(values) != 1:
            return False
        try:
            have, bound = int(value), int(values[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    raise ValueError(f"unknown node selector operator {operator!r}")


def term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    expressions = term.get("matchExpressions") or []
    field_reqs = term.get("matchFields") or []
    if not expressions and not field_reqs:
        return False
    return all(_requirement(labels.get(e["key"]), e["operator"], e.get("values") or []) for e in expressions) and all(
        _requirement(fields.get(f["key"]), f["operator"], f.get("values") or []) for f in field_reqs
    )


def selects(pod_template: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Whether the template's required node affinity (and nodeSelector) admits the node."""
    spec = pod_template.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if required is None:
        return True
    return any(term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])
