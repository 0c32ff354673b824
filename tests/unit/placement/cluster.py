"""Realistic, kubectl-shaped Node and Pod objects for placement tests, the CLI and the benchmark.

The layout follows HeteroScale's fabric: S2 big-pods of ``s1_per_s2`` S1 mini-pods of
``nodes_per_s1`` nodes (S0 = one leaf switch per node pair), eight GPUs per node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from heteroscale.api.spec import PDServingGroupSpec

S0, S1, S2 = "heteroscale.io/s0", "heteroscale.io/s1", "heteroscale.io/s2"
GPU_LABEL = "nvidia.com/gpu.product"
GPU = "nvidia.com/gpu"
#: Taints some tests put on S1s (besides the GPU's): a hard one a role may tolerate, and a soft one.
DEDICATED = {"key": "dedicated", "value": "prefill", "effect": "NoSchedule"}
SOFT = {"key": "maintenance", "value": "soon", "effect": "PreferNoSchedule"}


@dataclass(frozen=True)
class MiniPod:
    """One S1: its GPU type per node (a mixed S1 lists both types)."""

    s2: str
    s1: str
    gpu_types: Sequence[str]
    taints: Sequence[dict[str, str]] = ()
    """Taints on every node of the S1, besides the GPU taint."""


def node(
    name: str,
    gpu_type: str,
    s2: str,
    s1: str,
    s0: str,
    gpus: int = 8,
    *,
    unschedulable: bool = False,
    taints: Sequence[dict[str, str]] = (),
    ready: bool = True,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Node as ``kubectl get nodes -o json`` prints it (the fields that matter, and some that do not)."""
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        GPU_LABEL: gpu_type,
        S0: s0,
        S1: s1,
        S2: s2,
        **(extra_labels or {}),
    }
    spec: dict[str, Any] = {"taints": [{"key": GPU, "value": "present", "effect": "NoSchedule"}, *taints]}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": "190", "memory": "2000Gi", GPU: str(gpus), "pods": "110"},
            "capacity": {"cpu": "192", "memory": "2048Gi", GPU: str(gpus), "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def layout(pods: Sequence[MiniPod]) -> list[dict[str, Any]]:
    """Nodes for a list of mini-pods; nodes are named ``<s1>-n<i>``."""
    nodes = []
    for mini in pods:
        for i, gpu_type in enumerate(mini.gpu_types):
            nodes.append(
                node(f"{mini.s1}-n{i}", gpu_type, mini.s2, mini.s1, f"{mini.s1}-l{i // 2}", taints=mini.taints)
            )
    return nodes


def big_pods(count: int, types: Sequence[str], s1_per_s2: int = 4, nodes_per_s1: int = 8) -> list[dict[str, Any]]:
    """``count`` homogeneous S2 big-pods, cycling through ``types``."""
    return layout(
        [
            MiniPod(f"s2-{b}", f"s2-{b}-s1-{m}", [types[b % len(types)]] * nodes_per_s1)
            for b in range(count)
            for m in range(s1_per_s2)
        ]
    )


def pod(
    name: str,
    node_name: str | None,
    gpus: int,
    *,
    namespace: str = "serving",
    phase: str = "Running",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Pod as ``kubectl get pods -A -o json`` prints it."""
    spec: dict[str, Any] = {
        "containers": [
            {"name": "engine", "image": "vllm/vllm-openai:v0.11.0", "resources": {"limits": {GPU: str(gpus)}}}
        ]
    }
    if node_name:
        spec["nodeName"] = node_name
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
        "status": {"phase": phase},
    }


def as_list(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ``kind: List`` wrapper kubectl prints around several objects."""
    return {"apiVersion": "v1", "kind": "List", "items": list(items), "metadata": {"resourceVersion": ""}}


def pdsg_spec(
    prefill_types: Sequence[str] = ("L20",),
    decode_types: Sequence[str] = ("H20",),
    *,
    ratio: tuple[int, int] = (1, 3),
    prefill_gpus: int = 8,
    decode_gpus: int = 8,
    priority: int = 100,
    colocate: str = S2,
    prefill_tolerations: Sequence[dict[str, str]] = (),
    decode_tolerations: Sequence[dict[str, str]] = (),
) -> PDServingGroupSpec:
    """A valid PDServingGroup spec for placement tests."""
    container = {"name": "engine", "image": "vllm/vllm-openai:v0.11.0"}

    def template(tolerations: Sequence[dict[str, str]]) -> dict[str, Any]:
        return {"spec": {"containers": [container], **({"tolerations": list(tolerations)} if tolerations else {})}}

    return PDServingGroupSpec.model_validate(
        {
            "ratio": {"prefill": ratio[0], "decode": ratio[1]},
            "decode": {"targetTPSPerInstance": dict.fromkeys(decode_types, 2000.0), "maxReplicas": 10000},
            "prefill": {"maxReplicas": 10000},
            "roles": {
                "prefill": {
                    "template": template(prefill_tolerations),
                    "gpuTypes": list(prefill_types),
                    "gpusPerInstance": prefill_gpus,
                },
                "decode": {
                    "template": template(decode_tolerations),
                    "gpuTypes": list(decode_types),
                    "gpusPerInstance": decode_gpus,
                },
            },
            "topology": {"colocate": colocate},
            "priority": priority,
        }
    )
