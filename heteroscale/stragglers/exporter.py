"""Prometheus exposition of straggler analyses (job, step and worker slowdown) and the slow-node list.

The I/O shell around :mod:`heteroscale.stragglers.analysis`: it turns finished analyses into
``heteroscale_straggler_*`` gauges on their own registry, serves them over HTTP for a dashboard
and an alert (``deploy/stragglers/``), and writes the nodes placement should use last.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from heteroscale.stragglers.analysis import Analysis

PREFIX = "heteroscale_straggler_"


def build_registry(analyses: Sequence[Analysis]) -> CollectorRegistry:
    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: Sequence[str]) -> Gauge:
        return Gauge(PREFIX + name, doc, labelnames=list(labels), registry=registry)

    job_slowdown = gauge("job_slowdown", "S = T / T_ideal of the job (what-if analysis)", ["job"])
    waste = gauge("job_waste_ratio", "Share of GPU time lost to stragglers, 1 - 1/S", ["job"])
    replay_error = gauge("replay_error_ratio", "Replay vs recorded step time, minus 1", ["job"])
    step = gauge("step_slowdown", "Per-step slowdown: step time / ideal step time", ["job", "step"])
    worker = gauge(
        "worker_slowdown",
        "S_w: slowdown with only this worker left as recorded",
        ["job", "dp_rank", "stage", "rank", "node"],
    )
    worker_share = gauge(
        "worker_share", "M_W: share of the slowdown due to the slowest 3% of workers (as the paper ranks them)", ["job"]
    )
    stage_share = gauge("last_stage_share", "M_S: share of the slowdown due to the last stage", ["job"])
    cause = gauge("root_cause", "1 when this root cause is diagnosed", ["job", "cause"])
    suspect = gauge("suspect_rank", "1 for each rank named as a worker problem", ["job", "rank", "node"])
    for analysis in analyses:
        job = analysis.meta.name
        rep, attr, diag = analysis.replay, analysis.attribution, analysis.diagnosis
        job_slowdown.labels(job).set(rep.slowdown)
        waste.labels(job).set(rep.waste)
        replay_error.labels(job).set(rep.replay_error)
        worker_share.labels(job).set(attr.M_W)
        stage_share.labels(job).set(attr.M_S)
        for s, value in zip(rep.steps, rep.step_slowdown, strict=True):
            step.labels(job, str(int(s))).set(float(value))
        dp, pp = analysis.rank.shape
        for d in range(dp):
            for s in range(pp):
                rank = int(analysis.rank[d, s])
                node = analysis.nodes.get(rank, "")
                worker.labels(job, str(d), str(s), str(rank), node).set(float(attr.by_worker[d, s]))
        for name in ("worker", "last_stage", "sequence_imbalance"):
            cause.labels(job, name).set(1.0 if name in diag.causes else 0.0)
        for rank in diag.suspect_ranks:
            suspect.labels(job, str(rank), analysis.nodes.get(rank, "")).set(1.0)
    return registry


def serve(registry: CollectorRegistry, port: int, address: str) -> tuple[WSGIServer, Thread]:
    """Serve ``/metrics`` from a daemon thread; port 0 picks a free port (``server.server_port``)."""
    return start_http_server(port, addr=address, registry=registry)


def parse_slow_nodes(text: str) -> list[str]:
    """Node names from a file :func:`write_slow_nodes` wrote (or a plain JSON list of names)."""
    data = json.loads(text)
    names = data.get("slow_nodes") if isinstance(data, dict) else data
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ValueError('expected {"slow_nodes": ["node-a", ...]} or a JSON list of node names')
    return names


def write_slow_nodes(analyses: Sequence[Analysis], path: Path) -> list[str]:
    """Write the nodes of suspect ranks, which placement should use last; return them.

    Ranks whose trace names no node are listed under ``ranks_without_node`` so nothing is lost.
    """
    nodes: list[str] = []
    orphans: list[dict[str, object]] = []
    for analysis in analyses:
        for rank in analysis.diagnosis.suspect_ranks:
            node = analysis.nodes.get(rank)
            if node is None:
                orphans.append({"job": analysis.meta.name, "rank": rank})
            elif node not in nodes:
                nodes.append(node)
    path.write_text(json.dumps({"slow_nodes": nodes, "ranks_without_node": orphans}, indent=2) + "\n")
    return nodes
