"""Toleration matching on the cases of the Kubernetes docs ("Taints and Tolerations")."""

from __future__ import annotations

import pytest

from heteroscale.placement.tolerations import Taint, Toleration, admits

KEY1 = Taint("key1", "value1", "NoSchedule")


@pytest.mark.parametrize(
    ("toleration", "taint", "expected"),
    [
        # The docs' two tolerations of `kubectl taint nodes node1 key1=value1:NoSchedule`.
        ({"key": "key1", "operator": "Equal", "value": "value1", "effect": "NoSchedule"}, KEY1, True),
        ({"key": "key1", "operator": "Exists", "effect": "NoSchedule"}, KEY1, True),
        # operator defaults to Equal.
        ({"key": "key1", "value": "value1", "effect": "NoSchedule"}, KEY1, True),
        ({"key": "key1", "operator": "Equal", "value": "other", "effect": "NoSchedule"}, KEY1, False),
        ({"key": "key2", "operator": "Exists", "effect": "NoSchedule"}, KEY1, False),
        # The effect must match, unless it is empty (then it matches every effect).
        ({"key": "key1", "operator": "Equal", "value": "value1", "effect": "NoExecute"}, KEY1, False),
        ({"key": "key1", "operator": "Equal", "value": "value1"}, Taint("key1", "value1", "NoExecute"), True),
        # An empty key with Exists matches every key, value and effect.
        ({"operator": "Exists"}, Taint("any", "thing", "NoExecute"), True),
        ({"operator": "Exists", "effect": "NoSchedule"}, Taint("any", "", "NoExecute"), False),
        # A taint without a value is tolerated by Equal with an empty value, or by Exists.
        ({"key": "gpu", "operator": "Equal", "effect": "NoSchedule"}, Taint("gpu", "", "NoSchedule"), True),
        ({"key": "gpu", "operator": "Exists"}, Taint("gpu", "present", "NoSchedule"), True),
    ],
)
def test_toleration_matches_taint(toleration: dict[str, str], taint: Taint, expected: bool) -> None:
    assert Toleration.from_k8s(toleration).tolerates(taint) is expected


def test_docs_example_every_hard_taint_must_be_tolerated() -> None:
    # The docs' node with key1=value1:NoSchedule, key1=value1:NoExecute, key2=value2:NoSchedule
    # and a pod tolerating the first two: key2 keeps the pod off the node.
    taints = [KEY1, Taint("key1", "value1", "NoExecute"), Taint("key2", "value2", "NoSchedule")]
    view = (Toleration("key1", "Equal", "value1", "NoSchedule"), Toleration("key1", "Equal", "value1", "NoExecute"))
    assert admits(view, taints) == (False, False)
    assert admits((*view, Toleration("key2", "Exists")), taints) == (True, False)


def test_prefer_no_schedule_is_soft() -> None:
    soft = [Taint("key1", "value1", "PreferNoSchedule")]
    assert admits((), soft) == (True, True)
    assert admits((Toleration("key1", "Exists"),), soft) == (True, False)
