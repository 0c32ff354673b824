"""The benchmark's plans are pinned: speeding placement up must not change a single plan.

The digest was recorded from the planner before its performance work (the pruned domain search
with the original capacity index); any change to it is a change of behaviour, not of speed.
"""

from __future__ import annotations

import random

from heteroscale.placement import inventory_from_k8s, plan_many
from tests.benchmarks.bench_placement import cluster, plans_digest, requests

#: :func:`plans_digest` of the plans for the benchmark's 1,000-node cluster with seed 2508.
EXPECTED = "dfe3f8f3a9a77aea6331f61ca17109284b607ec707c8f48f1db06fd088ceee5c"


def benchmark_digest(nodes: int, seed: int) -> str:
    rng = random.Random(seed)
    node_objs, pods = cluster(nodes, rng)
    reqs = requests(len(node_objs) * 8 * 4 // 5, rng)
    inventory = inventory_from_k8s(node_objs, pods, reqs[0].spec.topology)
    return plans_digest(plan_many(inventory, reqs))


def test_benchmark_plans_are_unchanged() -> None:
    assert benchmark_digest(1_000, 2508) == EXPECTED
