"""The evaluator itself, on hand-written cases from the Kubernetes documentation."""

from __future__ import annotations

import pytest

from tests.unit.placement.affinity_eval import selects


def _node(name: str, **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "labels": labels}}


def _template(*terms: dict[str, object]) -> dict[str, object]:
    required = {"nodeSelectorTerms": list(terms)}
    return {"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}}}


@pytest.mark.parametrize(
    ("expression", "labels", "expected"),
    [
        ({"key": "t", "operator": "In", "values": ["a", "b"]}, {"t": "b"}, True),
        ({"key": "t", "operator": "In", "values": ["a"]}, {}, False),
        ({"key": "t", "operator": "NotIn", "values": ["a"]}, {}, True),
        ({"key": "t", "operator": "NotIn", "values": ["a"]}, {"t": "a"}, False),
        ({"key": "t", "operator": "Exists"}, {"t": ""}, True),
        ({"key": "t", "operator": "DoesNotExist"}, {"t": "x"}, False),
        ({"key": "n", "operator": "Gt", "values": ["7"]}, {"n": "8"}, True),
        ({"key": "n", "operator": "Gt", "values": ["8"]}, {"n": "8"}, False),
        ({"key": "n", "operator": "Lt", "values": ["8"]}, {"n": "x"}, False),
        ({"key": "n", "operator": "Lt", "values": ["8"]}, {}, False),
    ],
)
def test_operators(expression: dict[str, object], labels: dict[str, str], expected: bool) -> None:
    assert selects(_template({"matchExpressions": [expression]}), _node("n1", **labels)) is expected


def test_terms_or_and_expressions_and() -> None:
    a = {"key": "t", "operator": "In", "values": ["a"]}
    z = {"key": "z", "operator": "Exists"}
    template = _template(
        {"matchExpressions": [a, z]}, {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n9"]}]}
    )
    assert selects(template, _node("n1", t="a", z="1"))
    assert not selects(template, _node("n1", t="a"))
    assert selects(template, _node("n9"))


def test_empty_term_list_selects_nothing() -> None:
    assert not selects(_template(), _node("n1"))
    assert not selects(_template({}), _node("n1"))
