"""Plans over several cycles are pinned: restructuring the planning cycle must not change one.

``test_benchmark_plans`` pins first plans on a large cluster; these small scenarios take the paths
that only later cycles take: groups kept, held against an equal priority, grown, cut whole or in
part on scale-in, given up, and kept below their follower floor when bound. Each scenario plans 1
to 3 PDServingGroups on a random cluster of the property tests' shapes (S2s of S1s of four H20, L20
or mixed nodes, some tainted, some GPUs taken), binds most plans as the scheduler would, and plans
three times more, the targets stepping out or in, with the previous plan as the current groups.

The digest was recorded from the planner before it was split into modules (issue #17, commit
1525cc6); any change to it is a change of behaviour.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Sequence
from typing import Any

from heteroscale.api.status import GroupStatus
from heteroscale.placement import Plan, PlanRequest, RoleTargets, inventory_from_k8s, plan_many
from tests.benchmarks.bench_placement import plans_digest
from tests.unit.placement.cluster import DEDICATED, SOFT, MiniPod, layout, pdsg_spec, pod
from tests.unit.placement.scheduler import as_status, bind

SCENARIOS = 80
CYCLES = 4
SEED = 17
#: sha256 over the :func:`plans_digest` of every cycle of every scenario.
EXPECTED = "b49fee6c38b40058a662fe818a00e0b5f9337fbf063771641b43414aa8538156"

TYPES = ("H20", "L20")
KINDS = (("H20",) * 4, ("L20",) * 4, ("H20", "H20", "L20", "L20"))
TAINTS: tuple[tuple[dict[str, str], ...], ...] = ((), (), (), (DEDICATED,), (SOFT,))
TOLERATIONS: tuple[tuple[dict[str, str], ...], ...] = ((), (), ({"key": "dedicated", "operator": "Exists"},))


def scenario(rng: random.Random) -> list[list[Plan]]:
    """The plans of every cycle of one random scenario."""
    minis = [
        MiniPod(f"s2-{b}", f"s2-{b}-s1-{m}", rng.choice(KINDS), rng.choice(TAINTS))
        for b in range(rng.randint(1, 4))
        for m in range(rng.randint(1, 3))
    ]
    nodes = layout(minis)
    pods: list[dict[str, Any]] = [
        pod(f"p{i}", n["metadata"]["name"], gpus) for i, n in enumerate(nodes) if (gpus := rng.choice((0, 0, 2, 4, 8)))
    ]
    specs = [
        pdsg_spec(
            rng.sample(TYPES, rng.randint(1, 2)),
            rng.sample(TYPES, rng.randint(1, 2)),
            ratio=(rng.randint(1, 3), rng.randint(1, 4)),
            prefill_gpus=rng.choice((2, 4, 8)),
            decode_gpus=rng.choice((4, 8)),
            priority=rng.randint(0, 2),
            prefill_tolerations=rng.choice(TOLERATIONS),
            decode_tolerations=rng.choice(TOLERATIONS),
        )
        for _ in range(rng.randint(1, 3))
    ]
    current: list[Sequence[GroupStatus]] = [()] * len(specs)
    decode = [rng.randint(0, 30) for _ in specs]
    history = []
    for _ in range(CYCLES):
        requests = []
        for i, spec in enumerate(specs):
            targets = RoleTargets(spec.ratio.prefill_for(decode[i]), decode[i])
            requests.append(PlanRequest(f"svc{i}", spec, targets, current[i], "serving"))
        plans = plan_many(inventory_from_k8s(nodes, pods, specs[0].topology), requests)
        history.append(plans)
        for request, plan in zip(requests, plans, strict=True):
            # A quarter of the plans stay pending (their groups are then held, not bound), and so
            # does one the stand-in scheduler's greedy best fit finds no node for.
            if rng.random() < 0.75:
                with contextlib.suppress(ValueError):
                    pods = bind(nodes, pods, request, plan)
        current = [as_status(p) for p in plans]
        # Steps as the policy takes them, out and in, so scale-ins cut groups in part too.
        decode = [max(0, d + rng.randint(-8, 8)) for d in decode]
    return history


def cycles_digest(scenarios: int, seed: int) -> str:
    rng = random.Random(seed)
    digests = [plans_digest(plans) for _ in range(scenarios) for plans in scenario(rng)]
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def test_plans_over_several_cycles_are_unchanged() -> None:
    assert cycles_digest(SCENARIOS, SEED) == EXPECTED
