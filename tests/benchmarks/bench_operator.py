"""How many PDServingGroups one operator replica reconciles per 15 s period against the emulator.

Run on demand: ``python -m tests.benchmarks.bench_operator [groups ...]`` (default 50 200 500 1000).
Per size: N PDServingGroups with ``intervalSeconds: 15`` on a cluster of labelled GPU nodes; the
operator creates every group's first Deployments (warm-up, with the Deployments then marked ready
as the ReplicaSet controller would), then the decode rate jumps so that every group must scale up.
Printed for the 15 s period after the jump: ticks completed, Deployment patches, and the p50/p99
time from a tick's start to its first Deployment patch. The target is 1,000 groups per period.

Everything runs in one process on this machine's cores: the emulator (KMock) and the operator
(its own thread and loop, as in the tests) compete for the same CPUs, so the figures bound the
operator from below. ``--profile`` prints the operator thread's top functions (cProfile).
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import statistics
import sys
import threading
import time
from typing import Any

import aiohttp
import kmock
import kopf

from heteroscale.metrics.reader import Signals
from heteroscale.operator import reconcile
from heteroscale.operator.handlers import Operator
from tests.integration.operator.conftest import CR, DEPLOYMENTS, NODES, NS, RecordingMetrics, cr_path, node, pdsg

PERIOD = 15.0
GROUPS_PER_DOMAIN = 8


class Rate:
    """The decode rate every group reads (a stand-in: no Prometheus in the loop being measured)."""

    decode_tps = 80.0

    def read(self, spec: Any, namespace: str, decode: Any, prefill: Any, now: float) -> Signals:
        return Signals(self.decode_tps, 1.0, None, None, None)


def mark_ready(emulator: kmock.KubernetesEmulator, groups: int) -> int:
    """What the ReplicaSet controller would report: every Deployment's pods ready. Looked up by name:
    iterating the emulator's objects runs its filters over all of them (it dominated a profile)."""
    ready = 0
    for i in range(groups):
        for role in ("prefill", "decode"):
            try:
                deployment = emulator.objects[DEPLOYMENTS, NS, f"g{i}-{role}-g0"]
            except KeyError:
                continue
            want = deployment["spec"].get("replicas", 0)
            if deployment.get("status", {}).get("readyReplicas") != want:
                deployment.patch({"status": {"replicas": want, "readyReplicas": want}})
            ready += 1
    return ready


async def measure(groups: int, profile: bool) -> str:
    ticks: list[float] = []
    tick_to_patch: dict[str, float] = {}
    started: dict[str, float] = {}
    original_patch, original_tick = reconcile._Apply._patch_deployment, reconcile._tick

    async def timed_patch(self: Any, deployment: str, patch: Any) -> None:
        await original_patch(self, deployment, patch)
        tick_to_patch.setdefault(self.name, time.monotonic() - started[self.name])

    async def timed_tick(ctx: Any, namespace: str, name: str, emit: Any) -> int:
        started[name] = time.monotonic()
        try:
            return await original_tick(ctx, namespace, name, emit)
        finally:
            ticks.append(time.monotonic())

    reconcile._Apply._patch_deployment = timed_patch  # type: ignore[method-assign]
    reconcile._tick = timed_tick  # type: ignore[assignment]
    rate = Rate()
    profiler = cProfile.Profile()
    try:
        async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator):
            emulator.resources.load_bundled()
            emulator.resources[CR] = kmock.ResourceInfo(
                kind="PDServingGroup",
                namespaced=True,
                subresources={"status"},
                verbs={"get", "list", "watch", "patch", "create"},
            )
            # One H20 and one L20 node (8 GPUs each) per group, GROUPS_PER_DOMAIN groups per S2 domain:
            # each group's surge (5 decode + 3 prefill of 1 GPU) fits.
            for i in range(groups):
                domain = f"s2-{i // GROUPS_PER_DOMAIN}"
                for gpu in ("H20", "L20"):
                    body = node(f"{gpu.lower()}-{i}", gpu, domain, s1=f"s1-{i // GROUPS_PER_DOMAIN}")
                    emulator.objects[NODES, None, body["metadata"]["name"]] = body
            async with aiohttp.ClientSession(base_url=str(emulator.url)) as session:
                for i in range(groups):
                    body = pdsg(f"g{i}")
                    body["spec"]["behavior"]["intervalSeconds"] = int(PERIOD)
                    async with session.post(cr_path(), json=body) as response:
                        assert response.status < 300
            operator = Operator(
                lambda s: rate, RecordingMetrics(), connect=lambda **_: kopf.ConnectionInfo(server=str(emulator.url))
            )
            stop = threading.Event()

            def run() -> None:
                if profile:
                    profiler.enable()
                asyncio.run(
                    kopf.operator(registry=operator.registry, clusterwide=True, standalone=True, stop_flag=stop)
                )
                profiler.disable()

            thread = threading.Thread(target=run, daemon=True)
            begin = time.monotonic()
            thread.start()
            # Warm-up: every group's first two Deployments exist and are ready.
            while mark_ready(emulator, groups) < 2 * groups and time.monotonic() - begin < 300:
                await asyncio.sleep(0.5)
            warm = time.monotonic() - begin
            for _ in range(4):  # the last creations' ready status, before the jump
                mark_ready(emulator, groups)
                await asyncio.sleep(0.25)
            ticks.clear()
            tick_to_patch.clear()
            rate.decode_tps = 450.0
            jump = time.monotonic()
            await asyncio.sleep(PERIOD)
            in_period = [t for t in ticks if t - jump <= PERIOD]
            latencies = sorted(tick_to_patch.values())
            stop.set()
            await asyncio.to_thread(thread.join, 120)
    finally:
        reconcile._Apply._patch_deployment = original_patch  # type: ignore[method-assign]
        reconcile._tick = original_tick  # type: ignore[assignment]
    line = f"{groups:>5} groups: warm-up {warm:5.1f}s; in the {PERIOD:.0f}s period: {len(in_period):>5} ticks, "
    line += f"{len(latencies):>5} groups patched"
    if len(latencies) >= 2:
        p99 = statistics.quantiles(latencies, n=100)[98]
        line += f", tick→patch p50 {statistics.median(latencies) * 1000:6.0f} ms, p99 {p99 * 1000:6.0f} ms"
    if profile:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        line += "\n" + out.getvalue()
    return line


def main(argv: list[str]) -> None:
    profile = "--profile" in argv
    sizes = [int(a) for a in argv if a.isdigit()] or [50, 200, 500, 1000]
    for size in sizes:
        print(asyncio.run(measure(size, profile)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
