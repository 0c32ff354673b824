"""Two operator replicas sharding one fleet (issue #15): each reconciles the PDServingGroups its
shard's labels select and places them on its shard's nodes only, so neither plans GPUs the other
may give away; a group relabelled into the other shard is taken over by it.

Both replicas run the real operator under kopf against one emulated API server, as two shard
Deployments of the operator would against one cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import kmock
import pytest

from heteroscale.api.config import OperatorConfig, Shard
from heteroscale.operator.planbook import PlanBook
from heteroscale.placement import PlanRequest
from tests.integration.operator.conftest import (
    CR,
    NS,
    Api,
    Load,
    RecordingMetrics,
    ReplicaSetStandIn,
    Running,
    cr_path,
    eventually,
    node,
    pdsg,
    start_operator,
)
from tests.integration.operator.test_placement import live_deployments, required

SHARD_LABEL = "heteroscale.io/shard"
POOL_LABEL = "example.com/pool"


def pooled(name: str, gpu: str, pool: str) -> dict[str, Any]:
    body = node(name, gpu, s2=f"s2-{pool}", s1=f"s1-{pool}")
    body["metadata"]["labels"][POOL_LABEL] = pool
    return body


@pytest.fixture
def gpu_nodes() -> list[dict[str, Any]]:
    # Each pool has room for every group of the test, so a replica that placed on the other
    # pool's nodes could do so (nothing but the shard keeps it out).
    return [pooled(f"{pool}-{gpu.lower()}", gpu, pool) for pool in ("east", "west") for gpu in ("H20", "L20")]


def shard(name: str, *, default: bool = False) -> OperatorConfig:
    return OperatorConfig(
        shard=Shard(
            name=name, group_labels={SHARD_LABEL: name}, node_labels={POOL_LABEL: name}, unlabelled_groups=default
        )
    )


@pytest.fixture
async def replicas(
    emulator: kmock.KubernetesEmulator, load: Load
) -> AsyncIterator[dict[str, tuple[Running, RecordingMetrics]]]:
    started: dict[str, tuple[Running, RecordingMetrics]] = {}
    for name, default in (("east", True), ("west", False)):
        metrics = RecordingMetrics()
        started[name] = (start_operator(emulator, load, metrics, config=shard(name, default=default)), metrics)
    yield started
    for running, _ in started.values():
        await running.shutdown()


def labelled(name: str, shard_name: str | None) -> dict[str, Any]:
    body = pdsg(name)
    if shard_name is not None:
        body["metadata"]["labels"] = {SHARD_LABEL: shard_name}
    return body


def reconciled(metrics: RecordingMetrics) -> set[str]:
    """The groups a replica ticked (every tick records its duration)."""
    return {args[1] for method, args in metrics.calls if method == "observe_reconcile"}


def domains(emulator: kmock.KubernetesEmulator, group: str) -> set[str]:
    """The S2 domains the group's Deployments are pinned to."""
    found = [d for name, d in live_deployments(emulator).items() if name.startswith(f"{group}-")]
    return {value for d in found for value in required(d)["heteroscale.io/s2"]}


async def test_each_shard_reconciles_its_groups_on_its_nodes_and_takes_over_a_relabelled_one(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    replicas: dict[str, tuple[Running, RecordingMetrics]],
) -> None:
    for name, shard_name in (("a", "east"), ("b", "west"), ("c", None)):
        await api.create(cr_path(), labelled(name, shard_name))
    await eventually(lambda: all(len(domains(emulator, g)) == 1 for g in "abc"), what="every group placed", timeout=30)
    assert domains(emulator, "a") == {"s2-east"}
    assert domains(emulator, "b") == {"s2-west"}
    assert domains(emulator, "c") == {"s2-east"}, "an unlabelled group belongs to the default shard"
    east, west = replicas["east"][1], replicas["west"][1]
    # A tick records its duration when it ends, after its writes.
    await eventually(lambda: reconciled(east) == {"a", "c"} and reconciled(west) == {"b"}, what="ticks recorded")

    # Each replica keeps its own finalizer on its own groups: with one name for all, each removes
    # what the other adds (kopf drops its finalizer from objects none of its handlers match).
    finalizers = {g: emulator.objects[CR, NS, g]["metadata"].get("finalizers") for g in "abc"}
    assert finalizers == {
        "a": ["heteroscale.io/finalizer-east"],
        "b": ["heteroscale.io/finalizer-west"],
        "c": ["heteroscale.io/finalizer-east"],
    }

    # Relabelled into the west shard: the east replica lets go, the west one re-places it on its nodes.
    await api.patch(cr_path("c"), {"metadata": {"labels": {SHARD_LABEL: "west"}}})
    await eventually(lambda: "c" in reconciled(west), what="the west replica takes c over", timeout=30)
    await eventually(lambda: domains(emulator, "c") == {"s2-west"}, what="c re-placed on west nodes", timeout=30)
    east_ticks = sum(1 for method, args in east.calls if method == "observe_reconcile" and args[1] == "c")
    await eventually(lambda: len(emulator.objects[CR, NS, "c"]["status"]["groups"]) == 2, what="old groups gone")
    assert sum(1 for method, args in east.calls if method == "observe_reconcile" and args[1] == "c") == east_ticks, (
        "the east replica still ticks a group of the west shard"
    )
    # The finalizers after the move are not checked here: the emulator never bumps resourceVersion,
    # so kopf's guarded JSON patches (test the version, then add or remove) of the two replicas can
    # interleave, which an API server refuses and kopf then retries on a fresh object.


async def test_a_restarted_replica_seeds_its_plan_book_with_its_own_shards_groups_only(
    emulator: kmock.KubernetesEmulator,
    cluster: ReplicaSetStandIn,
    api: Api,
    replicas: dict[str, tuple[Running, RecordingMetrics]],
    load: Load,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a restart each replica's plan book starts from the status of its shard's placed
    groups; a group of the other shard would hold capacity there that no tick of it ever frees."""
    for name, shard_name in (("a", "east"), ("b", "west")):
        await api.create(cr_path(), labelled(name, shard_name))
    await eventually(
        lambda: all(emulator.objects[CR, NS, g].get("status", {}).get("groups") for g in "ab"),
        what="both groups placed",
        timeout=30,
    )
    # Every replica runs in this process, so the patch sees them all: the first east replica, which
    # still runs, ticks "a" beside the restarted one, and when a tick of one of them is refused (a
    # conflict between the two) it drops "a" and seeds it again; so may the restarted one. What
    # counts is which groups the restarted replica seeded: its own shard's, never the other's.
    seeded: list[tuple[PlanBook, str]] = []
    seed = PlanBook.seed

    def recording(self: PlanBook, request: PlanRequest) -> None:
        seeded.append((self, request.name))
        seed(self, request)

    monkeypatch.setattr(PlanBook, "seed", recording)
    restarted = start_operator(emulator, load, RecordingMetrics(), config=shard("east", default=True))

    def by_restarted() -> list[str]:
        return [name for book, name in seeded if book is restarted.operator.cluster.plans]

    try:
        await eventually(by_restarted, what="the restarted east replica seeded its plan book")
    finally:
        await restarted.shutdown()
    assert set(by_restarted()) == {"a"}
