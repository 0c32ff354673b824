"""The latency guard through the operator: what the reader found reaches the policy, and the step
it takes is written."""

from __future__ import annotations

import kmock
import pytest

from tests.integration.operator.conftest import (
    CR,
    DEPLOYMENTS,
    NS,
    Api,
    Load,
    RecordingMetrics,
    controllers,
    cr_path,
    eventually,
    operator_in_test_loop,
    pdsg,
)


@pytest.mark.looptime
async def test_a_prefill_queue_over_the_ttft_slo_steps_both_roles_out(
    emulator: kmock.KubernetesEmulator, api: Api, load: Load, metrics: RecordingMetrics
) -> None:
    """The decode rate asks for nothing more; the prefill queue (100 waiting, 10 prefills ended a
    second: a 10 s wait, 5x the 2 s TTFT SLO) breaches the top tier, +20% of the decode instances
    serving, at least one, and prefill follows at the ratio."""
    guard = {"sloSeconds": 0.05, "ttftSeconds": 2.0}
    spec = pdsg()
    spec["spec"]["behavior"]["latencyGuard"] = guard
    load.decode_tps = 150.0  # 2 decode at 100 tok/s each, 1 prefill at 1:2
    async with controllers(emulator), operator_in_test_loop(emulator, load, metrics):
        await api.create(cr_path(), spec)

        def status() -> dict[str, object]:
            return dict(emulator.objects[CR, NS, "chat"].get("status") or {})

        await eventually(lambda: status().get("desired") == {"prefill": 1, "decode": 2}, what="the first step")
        await eventually(lambda: status().get("current") == {"prefill": 1, "decode": 2}, what="ready")
        load.prefill_queued, load.prefill_rps = 100.0, 10.0
        await eventually(lambda: status().get("desired") == {"prefill": 2, "decode": 3}, what="the guard's step")
        decision = emulator.objects[CR, NS, "chat"]["status"]["lastDecision"]
        assert decision["reason"] == "LatencyGuard"
        assert "prefill queue wait 10.000s is 5.00x the SLO (tier 1.5x), +1 on 2 serving" in decision["message"]
        await eventually(lambda: emulator.objects[DEPLOYMENTS, NS, "chat-decode-g0"]["spec"]["replicas"] == 3)
