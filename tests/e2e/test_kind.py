"""Opt-in: the packaged operator on a kind cluster, through one scale cycle (`pytest -m e2e tests/e2e`).

Everything is real but the GPUs: the kind node is labelled as an H20 node of one switch domain and
advertises 8 `nvidia.com/gpu` as an extended resource (Kubernetes' documented way to advertise
one), so placement plans on it and the scheduler binds the pods. The signal comes from a real
Prometheus in the cluster through a custom query, `vector(N)`: N decode tokens/s, changed by the
test to drive the cycle.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "ghcr.io/heteroscale/heteroscale:0.1.0"  # the tag deploy/base/operator.yaml runs
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.0"
CLUSTER = "heteroscale-e2e"
pytestmark = pytest.mark.e2e


def _skip_reason() -> str | None:
    for tool in ("docker", "kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
        return "the Docker engine is not reachable"
    return None


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=600).stdout


def wait_for(what: str, check: Callable[[], bool], timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(3)
    raise AssertionError(f"timed out waiting for {what}")


def group(tps: int) -> str:
    """The PDServingGroup at a given load: 1 prefill per 2 decode, 100 tokens/s per decode instance,
    one GPU each, no damping so the cycle takes seconds, not minutes."""
    spec = {
        "ratio": {"prefill": 1, "decode": 2},
        "metric": {
            "engine": "custom",
            "query": f"vector({tps})",
        },
        "decode": {"targetTPSPerInstance": {"H20": 100}, "minReplicas": 1, "maxReplicas": 6},
        "prefill": {"minReplicas": 1, "maxReplicas": 3},
        "behavior": {
            "intervalSeconds": 5,
            "scaleUp": {"cooldownSeconds": 0},
            "scaleDown": {
                "cooldownSeconds": 0,
                "stabilizationWindowSeconds": 0,
                "drainSeconds": 5,
                "maxStepPercent": 100,
            },
        },
        "roles": {
            role: {
                "gpuTypes": ["H20"],
                "gpusPerInstance": 1,
                "template": {
                    "spec": {"containers": [{"name": "engine", "image": "busybox:1.36", "command": ["sleep", "86400"]}]}
                },
            }
            for role in ("prefill", "decode")
        },
    }
    document = {
        "apiVersion": "heteroscale.io/v1alpha1",
        "kind": "PDServingGroup",
        "metadata": {"name": "e2e", "namespace": "default"},
        "spec": spec,
    }
    return json.dumps(document)


def replicas(role: str) -> int:
    """Ready replicas of the role's Deployments (one per deployment group)."""
    listing = json.loads(run("kubectl", "get", "deployments", "-l", f"heteroscale.io/role={role}", "-o", "json"))
    return sum(int(d.get("status", {}).get("readyReplicas") or 0) for d in listing["items"])


def apply(tmp_path: Path, tps: int) -> None:
    manifest = tmp_path / f"pdsg-{tps}.json"
    manifest.write_text(group(tps))
    run("kubectl", "apply", "-f", str(manifest))


def test_apply_crds_and_deploy_then_scale_cycle(tmp_path: Path) -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(f"e2e needs docker, kind and kubectl: {reason}")
    run("docker", "build", "-t", IMAGE, str(ROOT))
    run("kind", "create", "cluster", "--name", CLUSTER)
    try:
        run("kind", "load", "docker-image", IMAGE, "--name", CLUSTER)
        node = run("kubectl", "get", "nodes", "-o", "jsonpath={.items[0].metadata.name}")
        run(
            "kubectl",
            "label",
            "node",
            node,
            "nvidia.com/gpu.product=H20",
            "heteroscale.io/s0=s0-a",
            "heteroscale.io/s1=s1-a",
            "heteroscale.io/s2=s2-a",
        )
        run(
            "kubectl",
            "patch",
            "node",
            node,
            "--subresource=status",
            "--type=json",
            "-p",
            '[{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": "8"}]',
        )
        wait_for(
            "the node to advertise 8 GPUs",
            lambda: run("kubectl", "get", "node", node, "-o", "jsonpath={.status.allocatable.nvidia\\.com/gpu}") == "8",
        )
        run("kubectl", "create", "deployment", "prometheus", f"--image={PROMETHEUS_IMAGE}")
        run("kubectl", "expose", "deployment", "prometheus", "--port=9090")
        run("kubectl", "rollout", "status", "deployment/prometheus", "--timeout=240s")

        run("kubectl", "apply", "-k", str(ROOT / "deploy" / "overlays" / "cluster-wide"))  # CRD included
        # The admin points the default endpoint at this cluster's Prometheus (groups only name it).
        config = tmp_path / "config.yaml"
        config.write_text('prometheusEndpoints: {default: {url: "http://prometheus.default:9090"}}\n')
        rendered = run(
            "kubectl", "-n", "heteroscale-system", "create", "configmap", "heteroscale-config",
            f"--from-file=config.yaml={config}", "--dry-run=client", "-o", "yaml",
        )  # fmt: skip
        (tmp_path / "configmap.yaml").write_text(rendered)
        run("kubectl", "apply", "-f", str(tmp_path / "configmap.yaml"))
        run("kubectl", "-n", "heteroscale-system", "rollout", "restart", "deployment/heteroscale-operator")
        run(
            "kubectl",
            "-n",
            "heteroscale-system",
            "rollout",
            "status",
            "deployment/heteroscale-operator",
            "--timeout=240s",
        )

        # 100 tok/s: one decode instance, one prefill (1:2 rounded up).
        apply(tmp_path, 100)
        wait_for("1 prefill + 1 decode ready", lambda: (replicas("prefill"), replicas("decode")) == (1, 1))
        owners = run(
            "kubectl",
            "get",
            "deployments",
            "-l",
            "heteroscale.io/role=decode",
            "-o",
            "jsonpath={.items[*].metadata.ownerReferences[0].name}",
        )
        assert set(owners.split()) == {"e2e"}, "owned by the PDServingGroup, for garbage collection"
        # 600 tok/s: both roles scale up together at the ratio (6 decode, 3 prefill).
        apply(tmp_path, 600)
        wait_for("3 prefill + 6 decode ready", lambda: (replicas("prefill"), replicas("decode")) == (3, 6))
        # Back to 100 tok/s: scale-in, through the drain, back to one pair.
        apply(tmp_path, 100)
        wait_for("back to 1 prefill + 1 decode", lambda: (replicas("prefill"), replicas("decode")) == (1, 1))
        status = json.loads(run("kubectl", "get", "pdsg", "e2e", "-o", "json"))["status"]
        assert status["lastDecision"]["reason"] in {"ScaledDown", "WithinTolerance", "ClampedToMin"}
    finally:
        run("kind", "delete", "cluster", "--name", CLUSTER)
