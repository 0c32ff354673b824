"""``heteroscale plan`` as a whole command on a 10,000-node ``kubectl get nodes -o json`` dump.

Run with ``python -m tests.benchmarks.bench_plan_cli``. It writes two node lists of 10,000 nodes
and a pod list, and times the command end to end in a fresh interpreter (start-up and imports
included; median of 5), next to the time PyYAML's pure-Python loader, which read these files
before, takes just to parse the node list. The lean list has the fields placement reads (labels,
taints, allocatable, conditions); the full one adds what kubectl prints besides (annotations,
addresses, node info, a dozen cached images), so it is as large as a real dump. Target: at most
2 s for the whole command.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tests.unit.placement.cluster import MiniPod, as_list, layout, pod

NODES = 10_000
REPEATS = 5
TARGET_S = 2.0
REPO = Path(__file__).resolve().parents[2]
GROUP = REPO / "deploy" / "samples" / "pdsg-plan-example.yaml"


def kubectl_node(node: dict[str, Any], index: int) -> dict[str, Any]:
    """Add what kubectl prints besides the fields placement reads."""
    name = node["metadata"]["name"]
    node["metadata"] |= {
        "annotations": {
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            "nfd.node.kubernetes.io/feature-labels": "cpu-cpuid.AVX512F,cpu-hardware_multithreading,pci-10de.present",
            "csi.volume.kubernetes.io/nodeid": json.dumps({"csi.tigera.io": name}),
        },
        "creationTimestamp": "2025-06-01T08:00:00Z",
        "resourceVersion": str(1_000_000 + index),
        "uid": f"6f1c2b9e-0000-4000-8000-{index:012d}",
    }
    node["metadata"]["labels"] |= {
        "beta.kubernetes.io/arch": "amd64",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "gpu-8x",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.memory": "97871",
        "nvidia.com/cuda.driver.major": "550",
        "topology.kubernetes.io/zone": "zone-a",
    }
    node["status"] |= {
        "addresses": [{"type": "InternalIP", "address": f"10.{index // 65536}.{index // 256 % 256}.{index % 256}"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "images": [
            {
                "names": [f"registry.example.com/serving/engine@sha256:{i:064x}", f"serving/engine:v0.{i}"],
                "sizeBytes": 9e9,
            }
            for i in range(12)
        ],
        "nodeInfo": {
            "architecture": "amd64",
            "containerRuntimeVersion": "containerd://1.7.20",
            "kernelVersion": "5.15.0-119-generic",
            "kubeletVersion": "v1.31.2",
            "osImage": "Ubuntu 22.04.4 LTS",
            "machineID": f"{index:032x}",
            "systemUUID": f"{index:032x}",
            "bootID": f"{index:032x}",
        },
    }
    node["status"]["conditions"] = [
        {"type": kind, "status": "False", "reason": f"Kubelet{kind}", "lastHeartbeatTime": "2025-06-02T08:00:00Z"}
        for kind in ("MemoryPressure", "DiskPressure", "PIDPressure")
    ] + [{"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": "2025-06-02T08:00:00Z"}]
    return node


def write_cluster(folder: Path, *, full: bool) -> tuple[Path, Path]:
    rng = random.Random(7)
    minis = [
        MiniPod(f"bigpod-{b}", f"bigpod-{b}-s1-{m}", ["NVIDIA-H20" if b % 3 else "NVIDIA-L20"] * 8)
        for b in range(NODES // 32)
        for m in range(4)
    ]
    nodes = [kubectl_node(n, i) if full else n for i, n in enumerate(layout(minis))]
    pods = [pod(f"busy-{i}", n["metadata"]["name"], 8) for i, n in enumerate(nodes) if rng.random() < 0.3]
    nodes_file, pods_file = folder / "nodes.json", folder / "pods.json"
    nodes_file.write_text(json.dumps(as_list(nodes), indent=4))  # kubectl indents by four
    pods_file.write_text(json.dumps(as_list(pods), indent=4))
    return nodes_file, pods_file


def measure(full: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        nodes_file, pods_file = write_cluster(Path(tmp), full=full)
        command = [sys.executable, "-m", "heteroscale", "plan", "--nodes", str(nodes_file), "--pods", str(pods_file)]
        command += ["--group", str(GROUP), "--prefill", "200", "--decode", "600", "--json", str(Path(tmp) / "p.json")]
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
            times.append(time.perf_counter() - started)
            if result.returncode not in (0, 1):
                raise SystemExit(result.stderr)
        whole = statistics.median(times)
        started = time.perf_counter()
        yaml.load(nodes_file.read_text(), Loader=yaml.SafeLoader)
        pure_yaml = time.perf_counter() - started
        size = nodes_file.stat().st_size / 1e6
    print(f"{'full' if full else 'lean'} node list, {NODES:,} nodes, {size:.0f} MB:")
    print(f"  `heteroscale plan` whole command:  {whole:6.2f} s (median of {REPEATS}; target <= {TARGET_S:.0f} s)")
    print(f"  PyYAML pure-Python parse of nodes: {pure_yaml:6.2f} s (x{pure_yaml / whole:.0f} the whole command)")


def main() -> None:
    for full in (False, True):
        measure(full)


if __name__ == "__main__":
    main()
