"""The operator's pure pieces for scale to zero, stuck pods and manual edits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from heteroscale.api.config import OperatorConfig
from heteroscale.api.enums import Role
from heteroscale.api.labels import ANNOTATION_LAST_REPLICAS
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.metrics.queries import Scope, activation_query
from heteroscale.operator import access, observe, startup
from heteroscale.operator.naming import GroupPlan
from heteroscale.policy.observation import ManualEdit

NOW = 1_700_000_000.0


def spec(query: str) -> PDServingGroupSpec:
    return PDServingGroupSpec.model_validate(
        {
            "decode": {"targetTPSPerInstance": {"H20": 100}, "minReplicas": 0},
            "prefill": {"minReplicas": 0},
            "behavior": {"scaleToZero": {"activationQuery": query}},
            "roles": {
                "prefill": {"deploymentRef": {"name": "p"}, "gpuTypes": ["L20"]},
                "decode": {"deploymentRef": {"name": "d"}, "gpuTypes": ["H20"]},
            },
        }
    )


def test_the_activation_query_is_filled_escaped_and_confined_to_the_namespace() -> None:
    confined = spec('sum(rate(gateway_requests_total{namespace="{namespace}"}[{window}]))')
    zero = confined.behavior.scale_to_zero
    assert zero is not None
    query = activation_query(zero, confined.metric, Scope('we"ird'))
    assert query == 'sum(rate(gateway_requests_total{namespace="we\\"ird"}[60s]))'
    access.resolve(OperatorConfig(), confined, "serving")  # allowed

    leaky = spec("sum(rate(gateway_requests_total[{window}]))")
    with pytest.raises(ValueError, match=r"spec\.behavior\.scaleToZero\.activationQuery: .*not confined"):
        access.resolve(OperatorConfig(), leaky, "serving")
    # An admin who lets the namespace read cluster-wide allows it.
    access.resolve(OperatorConfig(cluster_wide_query_namespaces=("serving",)), leaky, "serving")


def pod(age: float | None, ready: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if age is not None:
        meta["creationTimestamp"] = datetime.fromtimestamp(NOW - age, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def test_a_pod_is_stuck_when_not_ready_the_timeout_after_its_creation() -> None:
    pods = [pod(700, False), pod(599, False), pod(900, True), pod(None, False), pod(600, False)]
    assert startup.stuck(pods, NOW, 600) == 2  # the 700 s and the 600 s ones; no time: starting


def deployment(asked: int, ready: int, written: int | None) -> dict[str, Any]:
    annotations = {} if written is None else {ANNOTATION_LAST_REPLICAS: str(written)}
    return {"metadata": {"annotations": annotations}, "spec": {"replicas": asked}, "status": {"readyReplicas": ready}}


GROUPS = [
    GroupPlan("p", Role.PREFILL, "L20", "", 0, owned=False),
    GroupPlan("d1", Role.DECODE, "H20", "", 0, owned=True),
    GroupPlan("d2", Role.DECODE, "H20", "", 0, owned=True),
]


def test_stuck_pods_are_split_from_starting_ones_per_role() -> None:
    deployments = {"p": deployment(2, 2, 2), "d1": deployment(3, 1, 3), "d2": deployment(2, 2, 2)}
    decode = observe.pool(Role.DECODE, GROUPS, deployments, {"d1": 1})
    assert (decode.replicas, decode.ready, decode.starting, decode.stuck) == (5, 3, 1, 1)
    # More stuck pods listed than are missing (the pod list and the Deployment's status disagree
    # for a moment): never more stuck than not ready.
    decode = observe.pool(Role.DECODE, GROUPS, deployments, {"d1": 5})
    assert (decode.starting, decode.stuck) == (0, 2)


def test_an_edit_is_a_deployment_asking_for_other_replicas_than_the_operator_wrote() -> None:
    same = {"p": deployment(2, 2, 2), "d1": deployment(3, 3, 3), "d2": deployment(2, 2, 2)}
    assert observe.manual_edit(GROUPS, same) is None
    never_written = {"p": deployment(5, 5, None), "d1": deployment(3, 3, 3), "d2": deployment(2, 2, 2)}
    assert observe.manual_edit(GROUPS, never_written) is None, "no record: nothing to compare"
    edited = {"p": deployment(2, 2, 2), "d1": deployment(6, 3, 3), "d2": deployment(2, 2, 2)}
    assert observe.manual_edit(GROUPS, edited) == ManualEdit(prefill=None, decode=8)  # summed over the role
