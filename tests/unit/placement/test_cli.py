"""``heteroscale plan`` end to end on kubectl-shaped files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from heteroscale.cli import main
from tests.unit.placement.cluster import MiniPod, as_list, layout, pdsg_spec, pod


def test_plan_writes_groups_and_unschedulable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = layout([MiniPod("a", "a-0", ["H20"] * 4), MiniPod("a", "a-1", ["L20"] * 4)])
    (tmp_path / "nodes.json").write_text(json.dumps(as_list(nodes)))
    (tmp_path / "pods.json").write_text(json.dumps(as_list([pod("busy", "a-0-n0", 8)])))
    spec = pdsg_spec(("L20",), ("H20",)).model_dump(by_alias=True, mode="json")
    manifest = {
        "apiVersion": "heteroscale.io/v1alpha1",
        "kind": "PDServingGroup",
        "metadata": {"name": "chat"},
        "spec": spec,
    }
    (tmp_path / "pdsg.yaml").write_text(yaml.safe_dump(manifest))
    out = tmp_path / "plan.json"
    args = ["plan", "--nodes", str(tmp_path / "nodes.json"), "--pods", str(tmp_path / "pods.json")]
    args += ["--group", str(tmp_path / "pdsg.yaml"), "--prefill", "2", "--decode", "6", "--json", str(out)]
    assert main(args) == 1  # some instances are unschedulable
    result = json.loads(out.read_text())
    assert set(result) == {"groups", "unschedulable"}
    assert {tuple(sorted(g)) for g in result["groups"]} == {("domain", "gpu_type", "name", "replicas", "role")}
    decode = [g for g in result["groups"] if g["role"] == "decode"]
    assert decode == [{"name": "chat-decode-g0", "role": "decode", "gpu_type": "H20", "domain": "a", "replicas": 3}]
    assert [(s["role"], s["instances"], s["reason"]) for s in result["unschedulable"]] == [
        ("prefill", 1, "Unschedulable"),
        ("decode", 3, "Unschedulable"),
    ]
    assert "chat-decode-g0" in capsys.readouterr().out


def test_bad_nodes_file_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nodes.json").write_text("{}")
    (tmp_path / "pdsg.yaml").write_text(yaml.safe_dump(pdsg_spec().model_dump(by_alias=True, mode="json")))
    args = ["plan", "--nodes", str(tmp_path / "nodes.json"), "--group", str(tmp_path / "pdsg.yaml")]
    assert main([*args, "--prefill", "1", "--decode", "1"]) == 2
    assert "kubectl get nodes" in capsys.readouterr().err
