"""The Prometheus endpoint, scraped over real HTTP, and the slow-node file."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import replace
from pathlib import Path

from heteroscale.stragglers.exporter import build_registry, serve, write_slow_nodes
from tests.stragglers.conftest import real_analysis


def test_metrics_endpoint_serves_job_step_and_worker_slowdown() -> None:
    analysis = real_analysis("AR")
    server, _ = serve(build_registry([analysis]), 0, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=10) as reply:
            body = reply.read().decode()
    finally:
        server.shutdown()
    lines = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line[:1] != "#"}
    assert abs(lines['heteroscale_straggler_job_slowdown{job="AR"}'] - analysis.replay.slowdown) < 1e-9
    step = int(analysis.replay.steps[0])
    assert f'heteroscale_straggler_step_slowdown{{job="AR",step="{step}"}}' in lines
    worker = 'heteroscale_straggler_worker_slowdown{dp_rank="0",job="AR",node="",rank="0",stage="0"}'
    assert lines[worker] > 1.9
    assert lines['heteroscale_straggler_root_cause{cause="worker",job="AR"}'] == 1.0
    assert lines['heteroscale_straggler_suspect_rank{job="AR",node="",rank="0"}'] == 1.0


def test_slow_nodes_lists_the_nodes_of_suspect_ranks(tmp_path: Path) -> None:
    analysis = replace(real_analysis("AR"), nodes={0: "gpu-node-7", 1: "gpu-node-7"})
    path = tmp_path / "slow.json"
    assert write_slow_nodes([analysis, real_analysis("ST")], path) == ["gpu-node-7"]
    assert json.loads(path.read_text()) == {"slow_nodes": ["gpu-node-7"], "ranks_without_node": []}
    write_slow_nodes([real_analysis("AR")], path)
    assert json.loads(path.read_text())["ranks_without_node"] == [{"job": "AR", "rank": 0}]
