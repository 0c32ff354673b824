"""The install as kustomize renders it: both scopes, the CRD, and monitors that scrape something.

Renders ``deploy/`` with ``kubectl kustomize`` (skipped with a hint where kubectl is missing,
failed under CI=true) and checks what a first install would trip over: every ServiceMonitor selects
a Service of the install on a port that Service names, whose selector reaches the operator's pods
on a container port they name; the engines' PodMonitor selects the pods the operator creates for
the samples on a port they name; each scope's operator serves the namespaces its RBAC allows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from heteroscale.api.manifest import parse_manifest
from heteroscale.operator.manifests import pod_template
from heteroscale.operator.naming import from_plan
from heteroscale.placement import RoleTargets, inventory_from_k8s, plan

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SAMPLES = DEPLOY / "samples"
Obj = dict[str, Any]


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        hint = "kubectl is not on PATH; install it to render deploy/ with `kubectl kustomize`"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {hint}")
        pytest.skip(hint)
    return path


def kustomize(folder: Path) -> list[Obj]:
    result = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def users_kustomization(tmp_path: Path, resources: str, components: tuple[str, ...] = (), **fields: str) -> list[Obj]:
    """A user's kustomization of folders of deploy/ (a resource, and components), rendered."""
    user = tmp_path / "install"
    user.mkdir()
    body: Obj = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        **fields,
        "resources": [os.path.relpath(DEPLOY / resources, user)],
    }
    if components:
        body["components"] = [os.path.relpath(DEPLOY / c, user) for c in components]
    (user / "kustomization.yaml").write_text(yaml.safe_dump(body))
    return kustomize(user)


def with_monitoring(tmp_path: Path, overlay: str, namespace: str) -> list[Obj]:
    """An install plus deploy/monitoring in its namespace, as the docs tell a user to apply them."""
    return kustomize(DEPLOY / "overlays" / overlay) + users_kustomization(tmp_path, "monitoring", namespace=namespace)


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def container_ports(template: Obj) -> set[str]:
    return {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", ()) if "name" in p}


def in_namespaces(monitor: Obj, obj: Obj) -> bool:
    chosen = monitor["spec"].get("namespaceSelector") or {}
    if chosen.get("any"):
        return True
    names = chosen.get("matchNames") or [monitor["metadata"]["namespace"]]
    return obj["metadata"].get("namespace") in names


@pytest.mark.parametrize("folder", ["overlays/cluster-wide", "overlays/namespaced", "monitoring"])
def test_each_kustomization_renders(folder: str) -> None:
    assert kustomize(DEPLOY / folder)


@pytest.mark.parametrize(("overlay", "namespace"), [("cluster-wide", "heteroscale-system"), ("namespaced", "serving")])
def test_service_monitors_select_the_operator_on_a_named_port(tmp_path: Path, overlay: str, namespace: str) -> None:
    objects = with_monitoring(tmp_path, overlay, namespace)
    monitors = of_kind(objects, "ServiceMonitor")
    assert monitors
    for monitor in monitors:
        services = [
            s
            for s in of_kind(objects, "Service")
            if in_namespaces(monitor, s) and selects(monitor["spec"]["selector"], s["metadata"].get("labels") or {})
        ]
        assert services, f"ServiceMonitor {monitor['metadata']['name']} selects no Service of the install"
        for service in services:
            ports = {p["name"]: p for p in service["spec"]["ports"]}
            pods = [
                d["spec"]["template"]
                for d in of_kind(objects, "Deployment")
                if d["metadata"]["namespace"] == service["metadata"]["namespace"]
                and selects({"matchLabels": service["spec"]["selector"]}, d["spec"]["template"]["metadata"]["labels"])
            ]
            assert pods, f"Service {service['metadata']['name']} selects no pods of the install"
            for endpoint in monitor["spec"]["endpoints"]:
                assert endpoint["port"] in ports, f"Service has no port named {endpoint['port']}"
                target = ports[endpoint["port"]]["targetPort"]
                assert all(target in container_ports(t) for t in pods), f"pods name no port {target}"


def test_engine_pod_monitor_selects_the_pods_the_operator_creates(tmp_path: Path) -> None:
    (monitor,) = of_kind(kustomize(DEPLOY / "monitoring"), "PodMonitor")
    assert monitor["spec"]["namespaceSelector"] == {"any": True}
    manifest = parse_manifest(yaml.safe_load((SAMPLES / "chat-h20.yaml").read_text()))
    nodes = yaml.safe_load((SAMPLES / "nodes-example.json").read_text())["items"]
    inventory = inventory_from_k8s(nodes, [], manifest.spec.topology)
    groups = from_plan(plan(inventory, [], RoleTargets(prefill=1, decode=3), manifest.spec, manifest.name))
    assert {g.role.value for g in groups} == {"prefill", "decode"}
    for group in groups:
        template = pod_template(manifest.name, manifest.spec, group)
        assert template is not None
        assert selects(monitor["spec"]["selector"], template["metadata"]["labels"])
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["port"] in container_ports(template)


def test_each_scope_has_its_crd_rbac_and_serves_what_its_rbac_allows() -> None:
    cluster = kustomize(DEPLOY / "overlays" / "cluster-wide")
    namespaced = kustomize(DEPLOY / "overlays" / "namespaced")
    for objects in (cluster, namespaced):
        crds = {c["metadata"]["name"] for c in of_kind(objects, "CustomResourceDefinition")}
        assert "pdservinggroups.heteroscale.io" in crds
        (deployment,) = of_kind(objects, "Deployment")
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        for binding in of_kind(objects, "RoleBinding") + of_kind(objects, "ClusterRoleBinding"):
            (subject,) = binding["subjects"]
            assert (subject["name"], subject["namespace"]) == (account, deployment["metadata"]["namespace"])
    cluster_args = of_kind(cluster, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--all-namespaces" in cluster_args
    assert not of_kind(cluster, "Role")
    namespaced_args = of_kind(namespaced, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=$(POD_NAMESPACE)" in namespaced_args
    assert "--all-namespaces" not in namespaced_args
    (role,) = of_kind(namespaced, "Role")
    assert role["metadata"]["namespace"] == "serving"
    # Without a cluster-wide grant on PDServingGroups, the namespaced operator cannot watch all of them.
    cluster_rules = [r for c in of_kind(namespaced, "ClusterRole") for r in c["rules"]]
    assert all(r["resources"] == ["nodes"] and set(r["verbs"]) <= {"get", "list", "watch"} for r in cluster_rules)
    assert not of_kind(namespaced, "Namespace")  # the tenant's namespace is not the install's to own


def rules_of(objects: list[Obj], kind: str) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) triples granted by every object of ``kind``."""
    return {
        (group, resource, verb)
        for role in of_kind(objects, kind)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def grants(*rules: tuple[str, str, str]) -> set[tuple[str, str, str]]:
    """``("apps", "deployments", "get list")`` -> one triple per verb."""
    return {(group, resource, verb) for group, resource, verbs in rules for verb in verbs.split()}


# Why each is needed is written next to it in deploy/rbac/*/rules.yaml. Anything added is a new
# right over every tenant's namespace: it must be added here, with its reason there.
NAMESPACED_RIGHTS = grants(
    ("heteroscale.io", "pdservinggroups", "get list watch patch"),
    ("heteroscale.io", "pdservinggroups/status", "get patch"),
    ("apps", "deployments", "get list watch create patch delete"),
    ("apps", "replicasets", "list"),
    ("", "pods", "get list watch patch"),
    ("autoscaling", "horizontalpodautoscalers", "get list watch"),
    ("keda.sh", "scaledobjects", "get list watch"),
    ("", "events", "create"),
    ("events.k8s.io", "events", "create"),
)
NODES = grants(("", "nodes", "get list watch"))


def test_cluster_wide_rbac_is_exactly_what_the_operator_uses() -> None:
    objects = kustomize(DEPLOY / "overlays" / "cluster-wide")
    expected = (
        NAMESPACED_RIGHTS
        | NODES
        | grants(
            ("apiextensions.k8s.io", "customresourcedefinitions", "get list watch"),
            ("kopf.dev", "clusterkopfpeerings", "get list watch patch"),
        )
    )
    assert rules_of(objects, "ClusterRole") == expected
    assert not of_kind(objects, "Role")


def test_namespaced_rbac_is_exactly_what_the_operator_uses() -> None:
    objects = kustomize(DEPLOY / "overlays" / "namespaced")
    assert rules_of(objects, "Role") == NAMESPACED_RIGHTS | grants(("kopf.dev", "kopfpeerings", "get list watch patch"))
    assert rules_of(objects, "ClusterRole") == NODES


@pytest.mark.parametrize("overlay", ["cluster-wide", "namespaced"])
def test_no_rbac_grants_secrets_wildcards_or_escalation(overlay: str) -> None:
    objects = kustomize(DEPLOY / "overlays" / overlay)
    triples = rules_of(objects, "ClusterRole") | rules_of(objects, "Role")
    assert not [t for t in triples if "*" in t], "no wildcard"
    assert not [t for t in triples if t[1] in {"secrets", "configmaps", "serviceaccounts/token"}]
    assert not [t for t in triples if t[2] in {"escalate", "bind", "impersonate"}]


@pytest.mark.parametrize("overlay", ["cluster-wide", "namespaced"])
def test_the_operator_reads_the_admins_config_from_its_configmap(overlay: str) -> None:
    from heteroscale.api.config import OperatorConfig

    objects = kustomize(DEPLOY / "overlays" / overlay)
    (config_map,) = of_kind(objects, "ConfigMap")
    config = OperatorConfig.model_validate(yaml.safe_load(config_map["data"]["config.yaml"]))
    assert "default" in config.prometheus_endpoints
    (deployment,) = of_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert "--config=/etc/heteroscale/config.yaml" in pod["containers"][0]["args"]
    volume = next(v for v in pod["volumes"] if v.get("configMap", {}).get("name") == config_map["metadata"]["name"])
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/heteroscale", True)


#: What deploy/components/scale-leaderworkerset adds, and nothing else (docs/security.md).
LWS_RIGHTS = grants(
    ("leaderworkerset.x-k8s.io", "leaderworkersets", "get"),
    ("leaderworkerset.x-k8s.io", "leaderworkersets/scale", "get patch"),
    ("apps", "statefulsets", "get"),
)


@pytest.mark.parametrize(("overlay", "kind"), [("cluster-wide", "ClusterRole"), ("namespaced", "Role")])
def test_the_leaderworkerset_component_adds_its_rules_and_its_kind_only(
    tmp_path: Path, overlay: str, kind: str
) -> None:
    from heteroscale.api.config import OperatorConfig

    plain = kustomize(DEPLOY / "overlays" / overlay)
    with_lws = users_kustomization(tmp_path, f"overlays/{overlay}", ("components/scale-leaderworkerset",))
    assert rules_of(with_lws, kind) == rules_of(plain, kind) | LWS_RIGHTS
    other = "Role" if kind == "ClusterRole" else "ClusterRole"
    assert rules_of(with_lws, other) == rules_of(plain, other)
    before, after = (
        OperatorConfig.model_validate(yaml.safe_load(of_kind(objects, "ConfigMap")[0]["data"]["config.yaml"]))
        for objects in (plain, with_lws)
    )
    (listed,) = after.scale_targets
    assert (listed.api_version, listed.kind) == ("leaderworkerset.x-k8s.io/v1", "LeaderWorkerSet")
    assert ("leaderworkerset.x-k8s.io", f"{listed.plural}/scale", "patch") in LWS_RIGHTS, "the plural RBAC grants"
    assert after.model_copy(update={"scale_targets": ()}) == before, "the base config, plus scaleTargets only"
