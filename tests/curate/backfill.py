"""A real Prometheus holding hours of engine history, for the curation tests.

Prometheus history over a time range needs samples in the past, so they are not scraped: a
generated OpenMetrics file is written into TSDB blocks by ``promtool tsdb create-blocks-from
openmetrics`` (Debian's prometheus brings promtool), and the real ``prometheus`` binary starts on
that data. Every counter is the exact integral of a piecewise-constant request rate, sampled every
``SCRAPE_S``; each length-histogram bucket grows at the rate times its share, so the history's
truth is known exactly.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.integration.prom import PrometheusServer, require_prometheus

SCRAPE_S = 15
#: vLLM's request-length buckets: build_1_2_5_buckets up to max_model_len (here 131,072).
VLLM_LENGTH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000)


@dataclass(frozen=True)
class Pod:
    namespace: str
    pod: str
    #: Requests/s in each segment of the history (segments of equal length).
    rates: Sequence[float]


def bucket_shares(lengths: np.ndarray, bounds: Sequence[float]) -> list[float]:
    """Share of ``lengths`` in each bucket (le = bound), the +Inf bucket last."""
    edges = [-math.inf, *bounds, math.inf]
    # np.histogram's bins are [a, b); Prometheus' are (a, b]: shift by half a token.
    counts, _ = np.histogram(lengths - 0.5, bins=edges)
    return [float(c) / len(lengths) for c in counts]


def openmetrics(
    pods: Sequence[Pod],
    start_s: int,
    end_s: int,
    prompt_shares: Sequence[float],
    generation_shares: Sequence[float],
    engine: str = "vllm",
) -> str:
    """The history of every pod as OpenMetrics lines, one sample per SCRAPE_S in [start, end]."""
    names = {
        "vllm": ("vllm:request_success_total", "vllm:request_prompt_tokens", "vllm:request_generation_tokens"),
        "sglang": ("sglang:num_requests_total", "sglang:prompt_tokens_histogram", "sglang:generation_tokens_histogram"),
    }[engine]
    requests, prompt, generation = names
    times = np.arange(start_s, end_s + 1, SCRAPE_S, dtype=np.float64)
    lines = []
    for pod in pods:
        labels = f'namespace="{pod.namespace}",pod="{pod.pod}"'
        segment = (end_s - start_s) / len(pod.rates)
        edges = start_s + segment * np.arange(len(pod.rates) + 1)
        # The exact integral of the piecewise-constant rate up to each sample time.
        done = np.zeros_like(times)
        for k, rate in enumerate(pod.rates):
            done += rate * np.clip(times - edges[k], 0.0, segment)
        extra = ',finished_reason="stop"' if engine == "vllm" else ""
        lines += [f"{requests}{{{labels}{extra}}} {float(v)!r} {t:.0f}" for t, v in zip(times, done, strict=True)]
        for histogram, shares in ((prompt, prompt_shares), (generation, generation_shares)):
            cumulative = np.cumsum(shares)
            for le, share in zip([*map(str, VLLM_LENGTH_BUCKETS), "+Inf"], cumulative, strict=True):
                series = f'{histogram}_bucket{{{labels},le="{le}"}}'
                lines += [f"{series} {float(v * share)!r} {t:.0f}" for t, v in zip(times, done, strict=True)]
    return "\n".join(lines) + "\n"


def start_prometheus(workdir: Path, text: str) -> PrometheusServer:
    """The real prometheus on a free port, its TSDB backfilled from ``text`` (OpenMetrics lines)."""
    promtool = require_prometheus("promtool")
    server = PrometheusServer(workdir, {})
    source = workdir / "history.om"
    source.write_text(text + "# EOF\n")
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(workdir / "data")],
        check=True,
        capture_output=True,
    )
    server.start()
    return server
