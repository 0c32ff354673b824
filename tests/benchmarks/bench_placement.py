"""Placement benchmark: plan 200 PDServingGroups on 1,000 and 10,000 nodes (8 GPUs each).

Run with ``python -m tests.benchmarks.bench_placement``. It prints the median time of
``plan_many`` (building the capacity index included) and of ``inventory_from_k8s`` per cluster
size (wall-clock and CPU time), the growth from 1,000 to 10,000 nodes, and a digest of the plans
(equal digests, equal plans: speed-ups must keep it). Target: at most 100 ms median at 10,000 nodes
and near-linear growth (ratio about 10 or less).

It also prints what the operator's plan book pays (issue #15): the same plans made by a
:class:`~heteroscale.placement.Ledger` (its index numbers the nodes so that reservations can be
given back), and a run of one changed group on a ledger that holds all of them (the group's decode
target moved by one instance and back, alternately), with its ratio to the full run.

The cluster is HeteroScale-shaped: S2 big-pods of four S1 mini-pods of eight nodes; half the
big-pods are H20, a quarter L20, a quarter mixed (one of their S1s itself mixed); a fifth of the
GPUs are already taken by other pods. Demand is about 70% of the free GPUs, from groups with
varied GPU types, ratios and GPUs per instance, with priorities that compete.
"""

from __future__ import annotations

import hashlib
import random
import statistics
import time
from dataclasses import replace
from typing import Any

from heteroscale.placement import Ledger, Plan, PlanRequest, RoleTargets, inventory_from_k8s, plan_many
from heteroscale.placement.ledger import key_of
from tests.unit.placement.cluster import MiniPod, layout, pdsg_spec, pod
from tests.unit.placement.scheduler import as_status

GROUPS = 200
SIZES = (1_000, 10_000)
REPEATS = 7
TARGET_MS = 100.0


def cluster(nodes: int, rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    minis = []
    for b in range(nodes // 32):
        kind = b % 4
        for m in range(4):
            if kind < 2:
                types = ["H20"] * 8
            elif kind == 2:
                types = ["L20"] * 8
            else:
                types = ["H20"] * 8 if m < 2 else ["L20"] * 8 if m == 2 else ["H20"] * 4 + ["L20"] * 4
            minis.append(MiniPod(f"s2-{b}", f"s2-{b}-s1-{m}", types))
    node_objs = layout(minis)
    pods = [
        pod(f"other-{i}", n["metadata"]["name"], rng.choice((4, 8)))
        for i, n in enumerate(node_objs)
        if rng.random() < 0.2
    ]
    return node_objs, pods


def requests(free_gpus: int, rng: random.Random) -> list[PlanRequest]:
    shapes = [(("L20", "H20"), ("H20",)), (("H20",), ("H20",)), (("L20",), ("L20", "H20")), (("L20",), ("H20",))]
    out = []
    budget = 0.7 * free_gpus / GROUPS
    for i in range(GROUPS):
        prefill_types, decode_types = rng.choice(shapes)
        ratio = (rng.randint(1, 3), rng.randint(1, 5))
        gpus = rng.choice((4, 8))
        spec = pdsg_spec(prefill_types, decode_types, ratio=ratio, prefill_gpus=gpus, decode_gpus=8, priority=i % 5)
        # Split the GPU budget between the roles by the ratio.
        decode = max(1, int(budget / (8 + gpus * ratio[0] / ratio[1])))
        out.append(PlanRequest(f"svc-{i}", spec, RoleTargets(spec.ratio.prefill_for(decode), decode)))
    return out


def plans_digest(plans: list[Plan]) -> str:
    """sha256 of every planned group and shortfall, one line each, in plan order."""
    lines = []
    for p in plans:
        for g in p.groups:
            lines.append(
                f"{p.name} {g.name} {g.group} {g.role.value} {g.gpu_type} {g.domain} {g.replicas} "
                f"{g.gpus_per_instance} {g.nodes_available}"
            )
        for s in p.unschedulable:
            lines.append(f"{p.name} short {s.role.value} {s.gpu_type} {s.instances} {s.reason.value}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def median_ms(func: Any) -> tuple[float, float]:
    """Median wall-clock and CPU (process) time of ``func`` in ms: on a busy machine the CPU time
    is the steadier figure."""
    wall, cpu = [], []
    for _ in range(REPEATS):
        start, start_cpu = time.perf_counter(), time.process_time()
        func()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def ledger_figures(inventory: Any, reqs: list[PlanRequest], full_ms: float) -> str:
    """The plan book's costs: a ledger's run of every group, and of one changed group."""
    _, ledger_ms = median_ms(lambda: Ledger(inventory).plan(reqs))
    ledger = Ledger(inventory)
    assert plans_digest(ledger.plan(reqs)) == plans_digest(plan_many(inventory, reqs)), "a ledger plans as plan_many"
    moving = reqs[len(reqs) // 2]
    steps = iter(range(1_000_000))

    def one_changed() -> None:
        planned = ledger.plans[key_of(moving)]
        decode = moving.targets.decode + next(steps) % 2
        targets = RoleTargets(moving.spec.ratio.prefill_for(decode), decode)
        ledger.plan([replace(moving, targets=targets, current_groups=tuple(as_status(planned)))])

    _, one_ms = median_ms(one_changed)
    return (
        f"ledger: every group CPU {ledger_ms:.1f} ms (x{ledger_ms / full_ms:.2f} plan_many's), "
        f"one group changed CPU {one_ms:.2f} ms (x{one_ms / full_ms:.3f})"
    )


def main() -> int:
    rng = random.Random(2508)
    medians = {}
    for size in SIZES:
        nodes, pods = cluster(size, rng)
        reqs = requests(sum(8 for _ in nodes) * 4 // 5, rng)
        topology = reqs[0].spec.topology
        inventory = inventory_from_k8s(nodes, pods, topology)
        plans = plan_many(inventory, reqs)
        groups = sum(len(p.groups) for p in plans) // 2
        short = sum(s.instances for p in plans for s in p.unschedulable)
        digest = plans_digest(plans)[:16]
        inv_ms, _ = median_ms(lambda n=nodes, p=pods, t=topology: inventory_from_k8s(n, p, t))
        medians[size], cpu_ms = median_ms(lambda i=inventory, r=reqs: plan_many(i, r))
        print(
            f"{size:>6} nodes, {size * 8:>6} GPUs, {GROUPS} PDServingGroups: plan median {medians[size]:.1f} ms "
            f"(CPU {cpu_ms:.1f} ms; {groups} deployment groups, {short} instances unschedulable, plans {digest}); "
            f"inventory median {inv_ms:.1f} ms"
        )
        print("        " + ledger_figures(inventory, reqs, cpu_ms))
    small, large = SIZES
    growth = medians[large] / medians[small]
    print(f"growth {small} -> {large} nodes: x{growth:.2f} (linear would be x{large / small:.0f})")
    verdict = "meets" if medians[large] <= TARGET_MS else "MISSES"
    print(f"{verdict} the target of {TARGET_MS:.0f} ms median at {large} nodes")
    return 0 if medians[large] <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
