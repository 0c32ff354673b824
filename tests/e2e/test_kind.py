"""Opt-in: the packaged operator on a kind cluster (`pytest -m e2e tests/e2e`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
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


def test_apply_crds_and_deploy_then_scale_cycle(tmp_path: Path) -> None:
    reason = _skip_reason()
    if reason:
        pytest.skip(f"e2e needs docker, kind and kubectl: {reason}")
    cluster = "heteroscale-e2e"
    run("docker", "build", "-t", "ghcr.io/heteroscale/heteroscale:0.1.0", str(ROOT))
    run("kind", "create", "cluster", "--name", cluster)
    try:
        run("kind", "load", "docker-image", "ghcr.io/heteroscale/heteroscale:0.1.0", "--name", cluster)
        run("kubectl", "apply", "-f", str(ROOT / "crds"))
        run("kubectl", "apply", "-k", str(ROOT / "deploy"))
        run(
            "kubectl",
            "-n",
            "heteroscale-system",
            "rollout",
            "status",
            "deployment/heteroscale-operator",
            "--timeout=180s",
        )
        sample = tmp_path / "pdsg.yaml"
        sample.write_text(
            "apiVersion: heteroscale.io/v1alpha1\nkind: PDServingGroup\nmetadata: {name: e2e, namespace: default}\n"
            "spec:\n  mode: Enforce\n  decode: {targetTPSPerInstance: {H20: 100}}\n  roles:\n"
            "    prefill: {gpuTypes: [H20], template: {spec: {containers: [{name: e, image: busybox}]}}}\n"
            "    decode: {gpuTypes: [H20], template: {spec: {containers: [{name: e, image: busybox}]}}}\n"
        )
        run("kubectl", "apply", "-f", str(sample))
        run("kubectl", "wait", "--for=create", "deployment/e2e-decode", "--timeout=120s")
        owner = run("kubectl", "get", "deployment/e2e-decode", "-o", "jsonpath={.metadata.ownerReferences[0].name}")
        assert owner == "e2e"
    finally:
        run("kind", "delete", "cluster", "--name", cluster)
