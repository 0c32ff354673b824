"""Rendered pod templates select exactly the intended nodes, by an independent evaluator."""

from __future__ import annotations

from heteroscale.api.enums import Role
from heteroscale.api.labels import LABEL_DEPLOYMENT
from heteroscale.placement import RoleTargets, inventory_from_k8s, plan, render_pod_template
from tests.unit.placement.affinity_eval import selects
from tests.unit.placement.cluster import GPU, GPU_LABEL, S2, MiniPod, layout, pdsg_spec

NODES = layout(
    [
        MiniPod("a", "a-0", ["H20"] * 4),
        MiniPod("a", "a-1", ["H20", "H20", "L20", "L20"]),
        MiniPod("b", "b-0", ["L20"] * 4),
        MiniPod("b", "b-1", ["H20"] * 4),
    ]
)


def _labels(node: dict[str, object]) -> dict[str, str]:
    return node["metadata"]["labels"]  # type: ignore[index,no-any-return]


def test_every_rendered_deployment_selects_its_type_in_its_domain() -> None:
    spec = pdsg_spec(("L20", "H20"), ("H20",))
    result = plan(inventory_from_k8s(NODES, [], spec.topology), [], RoleTargets(3, 9), spec, "chat")
    assert result.groups
    for group in result.groups:
        template = render_pod_template(group, spec, "chat", slow_nodes=["a-0-n0"])
        chosen = {n["metadata"]["name"] for n in NODES if selects(template, n)}
        intended = {
            n["metadata"]["name"]
            for n in NODES
            if _labels(n)[GPU_LABEL] == group.gpu_type and _labels(n)[S2] == group.domain
        }
        assert chosen == intended
        assert len(intended) >= group.nodes_available > 0
        engine = template["spec"]["containers"][0]
        assert engine["resources"]["requests"][GPU] == str(group.gpus_per_instance)
        assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in template["spec"]["tolerations"]
        assert template["metadata"]["labels"][LABEL_DEPLOYMENT] == group.name


def test_template_affinity_is_kept_and_narrowed() -> None:
    spec = pdsg_spec(("H20",), ("H20",))
    user_term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["a-0-n1"]}]}
    anti = {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname"}]}
    template = {
        "spec": {
            "containers": [{"name": "engine", "image": "x"}],
            "affinity": {
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [user_term]}},
                "podAntiAffinity": anti,
            },
        }
    }
    data = spec.model_dump(by_alias=True)
    data["roles"]["decode"]["template"] = template
    spec = type(spec).model_validate(data)
    result = plan(inventory_from_k8s(NODES, [], spec.topology), [], RoleTargets(0, 2), spec, "chat")
    decode = next(g for g in result.groups if g.role is Role.DECODE)
    rendered = render_pod_template(decode, spec, "chat")
    chosen = {n["metadata"]["name"] for n in NODES if selects(rendered, n)}
    intended = {
        n["metadata"]["name"]
        for n in NODES
        if _labels(n)[GPU_LABEL] == "H20" and _labels(n)[S2] == decode.domain and n["metadata"]["name"] != "a-0-n1"
    }
    assert chosen == intended
    assert rendered["spec"]["affinity"]["podAntiAffinity"] == anti
    assert template["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [user_term]
    }, "the spec's template must not be modified"
