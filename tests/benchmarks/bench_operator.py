"""How many PDServingGroups one operator replica reconciles per 15 s period against the emulator.

Run on demand: ``python -m tests.benchmarks.bench_operator [groups]``. Prints groups reconciled in
the period and the p50/p99 time from a tick's start to its Deployment patch. The target is 1,000.
"""

from __future__ import annotations

import asyncio
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
from tests.integration.operator.conftest import CR, RecordingMetrics, cr_path, pdsg

PERIOD = 15.0


class Surge:
    def read(self, spec: Any, namespace: str, decode: Any, prefill: Any, now: float) -> Signals:
        return Signals(450.0, 1.0, None, None, None)


async def main(groups: int) -> None:
    tick_to_patch: list[float] = []
    original = reconcile._Apply._patch_deployment

    async def timed(self: Any, deployment: str, patch: Any) -> None:
        await original(self, deployment, patch)
        tick_to_patch.append(time.monotonic() - started[self.name])

    started: dict[str, float] = {}
    original_tick = reconcile._tick

    async def tick(ctx: Any, namespace: str, name: str, emit: Any) -> int:
        started[name] = time.monotonic()
        return await original_tick(ctx, namespace, name, emit)

    reconcile._Apply._patch_deployment = timed  # type: ignore[method-assign]
    reconcile._tick = tick  # type: ignore[assignment]

    async with kmock.KubernetesEmulator() as emulator, kmock.Server(emulator):
        emulator.resources.load_bundled()
        emulator.resources[CR] = kmock.ResourceInfo(
            kind="PDServingGroup",
            namespaced=True,
            subresources={"status"},
            verbs={"get", "list", "watch", "patch", "create"},
        )
        async with aiohttp.ClientSession(base_url=str(emulator.url)) as session:
            for i in range(groups):
                body = pdsg(f"g{i}")
                body["spec"]["behavior"]["intervalSeconds"] = int(PERIOD)
                async with session.post(cr_path(), json=body) as response:
                    assert response.status < 300
        operator = Operator(
            lambda s: Surge(), RecordingMetrics(), connect=lambda **_: kopf.ConnectionInfo(server=str(emulator.url))
        )
        stop = threading.Event()
        thread = threading.Thread(
            target=lambda: asyncio.run(
                kopf.operator(registry=operator.registry, clusterwide=True, standalone=True, stop_flag=stop)
            ),
            daemon=True,
        )
        begin = time.monotonic()
        thread.start()
        await asyncio.sleep(PERIOD)
        stop.set()
        await asyncio.to_thread(thread.join, 60)
    scaled = len(started)
    print(f"groups: {groups}; ticked in the first {PERIOD:.0f}s: {scaled}; deployment patches: {len(tick_to_patch)}")
    if tick_to_patch:
        q = statistics.quantiles(tick_to_patch, n=100)
        print(f"tick→patch p50 {statistics.median(tick_to_patch) * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms")
    print(f"wall {time.monotonic() - begin:.1f}s")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
