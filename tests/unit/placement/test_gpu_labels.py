"""GPU types as GPU Feature Discovery labels nodes: ``nvidia.com/gpu.product=NVIDIA-H20`` is H20.

The label values are GFD's, as its README and clusters show them (``NVIDIA-H100-80GB-HBM3``,
``NVIDIA-A100-SXM4-80GB``, older drivers ``A100-SXM4-80GB`` and ``Tesla-V100-SXM2-16GB``).
"""

from __future__ import annotations

import pytest

from heteroscale.placement import RoleTargets, inventory_from_k8s, plan, render_pod_template
from heteroscale.placement.topology import gpu_label_values, gpu_type_of
from tests.unit.placement.affinity_eval import selects
from tests.unit.placement.cluster import MiniPod, layout, pdsg_spec


@pytest.mark.parametrize(
    ("label", "gpu_type"),
    [
        ("NVIDIA-H20", "H20"),
        ("NVIDIA-L20", "L20"),
        ("NVIDIA-H100-80GB-HBM3", "H100-80GB-HBM3"),
        ("NVIDIA-A100-SXM4-80GB", "A100-SXM4-80GB"),
        ("A100-SXM4-80GB", "A100-SXM4-80GB"),
        ("Tesla-V100-SXM2-16GB", "V100-SXM2-16GB"),
        ("H20", "H20"),
        ("NVIDIA-", "NVIDIA-"),
    ],
)
def test_a_label_names_the_product_without_the_vendor(label: str, gpu_type: str) -> None:
    assert gpu_type_of(label) == gpu_type
    assert label in gpu_label_values(gpu_type)  # the affinity admits the label it came from


def test_gfd_labelled_nodes_are_planned_and_selected_by_the_rendered_affinity() -> None:
    gfd = layout([MiniPod("a", "a-0", ["NVIDIA-H20"] * 4), MiniPod("a", "a-1", ["NVIDIA-L20"] * 4)])
    other = layout([MiniPod("b", "b-0", ["NVIDIA-H200"] * 4)])  # H20 must not match H200
    spec = pdsg_spec(("L20",), ("H20",))
    inventory = inventory_from_k8s(gfd + other, [], spec.topology)
    result = plan(inventory, [], RoleTargets(prefill=1, decode=3), spec, "chat")
    assert result.unschedulable == ()
    assert {(g.role.value, g.gpu_type, g.domain, g.replicas) for g in result.groups} == {
        ("prefill", "L20", "a", 1),
        ("decode", "H20", "a", 3),
    }
    for group in result.groups:
        template = render_pod_template(group, spec, "chat")
        chosen = {n["metadata"]["name"] for n in gfd + other if selects(template, n)}
        product = f"NVIDIA-{group.gpu_type}"
        assert chosen == {
            n["metadata"]["name"] for n in gfd if n["metadata"]["labels"]["nvidia.com/gpu.product"] == product
        }
