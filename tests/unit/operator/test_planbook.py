"""The shared planning step: priority between groups whatever order they tick in, mutual
reservation of free GPUs, recomputation only on change, dropped groups, one plan per topology."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from heteroscale.api.config import OperatorConfig
from heteroscale.api.enums import Mode, Role
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import GroupStatus
from heteroscale.operator.planbook import PlanBook
from heteroscale.operator.reconcile import seed_request
from heteroscale.placement import Inventory, Plan, PlanRequest, RoleTargets, inventory_from_k8s


def spec(priority: int = 100, **topology: Any) -> PDServingGroupSpec:
    """One prefill and one decode instance take a whole 8-GPU node each."""
    role = {"template": {"spec": {"containers": [{"name": "e"}]}}, "gpusPerInstance": 8}
    return PDServingGroupSpec.model_validate(
        {
            "priority": priority,
            "decode": {"targetTPSPerInstance": {"H20": 100}},
            "roles": {"prefill": {**role, "gpuTypes": ["L20"]}, "decode": {**role, "gpuTypes": ["H20"]}},
            "topology": topology,
        }
    )


def node(name: str, gpu: str, s2: str = "s2-a") -> dict[str, Any]:
    labels = {"nvidia.com/gpu.product": gpu, "heteroscale.io/s2": s2, "heteroscale.io/s1": s2}
    labels["heteroscale.io/s0"] = name
    return {"metadata": {"name": name, "labels": labels}, "status": {"allocatable": {"nvidia.com/gpu": "8"}}}


#: Room for exactly one group of 1 prefill + 1 decode.
ONE_GROUP = [node("h", "H20"), node("l", "L20")]


def inventory(nodes: list[dict[str, Any]], spec_: PDServingGroupSpec | None = None) -> Inventory:
    return inventory_from_k8s(nodes, [], (spec_ or spec()).topology)


def request(name: str, spec_: PDServingGroupSpec, current: tuple[GroupStatus, ...] = ()) -> PlanRequest:
    return PlanRequest(name, spec_, RoleTargets(1, 1), current, "ns")


def count_runs(monkeypatch: pytest.MonkeyPatch, before: Any = None) -> list[int]:
    """Make the plan book record how many groups each of its runs planned; ``before(run)`` is
    called in the run's worker thread as the run starts (``run``: how many started so far)."""
    from heteroscale.operator import planbook

    runs: list[int] = []
    started: list[None] = []
    real = planbook._run

    def counting(*args: Any, **kwargs: Any) -> Any:
        started.append(None)
        if before is not None:
            before(len(started))
        ledger, planned = real(*args, **kwargs)
        runs.append(len(planned))
        return ledger, planned

    monkeypatch.setattr(planbook, "_run", counting)
    return runs


def placed(plan: Plan) -> int:
    return plan.replicas(Role.PREFILL) + plan.replicas(Role.DECODE)


def statuses(plan: Plan) -> tuple[GroupStatus, ...]:
    """The groups as the next tick reads them back (its Deployments' replicas, and readiness)."""
    return tuple(
        GroupStatus(name=g.name, role=g.role, gpu_type=g.gpu_type, domain=g.domain, desired=g.replicas, current=1)
        for g in plan.groups
    )


@pytest.mark.parametrize("order", list(itertools.permutations(["low", "high"])))
async def test_the_higher_priority_group_gets_the_room_whichever_ticks_first(order: tuple[str, ...]) -> None:
    book, inv = PlanBook(), inventory(ONE_GROUP)
    specs = {"low": spec(priority=10), "high": spec(priority=500)}
    current: dict[str, tuple[GroupStatus, ...]] = {"low": (), "high": ()}
    plans: dict[str, Plan] = {}
    # Several rounds in this order, each tick sending what the group applied on its previous one,
    # as the operator's loops do: the first group to tick may take the room while it is alone, but
    # its pods are not bound, so the higher priority group takes it back as soon as it asks.
    for _ in range(3):
        for name in order:
            plans[name] = await book.plan(request(name, specs[name], current[name]), inv)
            current[name] = statuses(plans[name])
    assert placed(plans["high"]) == 2
    assert placed(plans["low"]) == 0
    assert plans["low"].unschedulable, "the lower priority group is told why"


async def test_two_groups_never_plan_the_same_free_gpus() -> None:
    book, inv = PlanBook(), inventory(ONE_GROUP)
    first = await book.plan(request("a", spec()), inv)
    second = await book.plan(request("b", spec()), inv)
    assert placed(first) == 2, "a asked first at equal priority and nothing else was registered"
    assert placed(second) == 0
    assert second.unschedulable
    # Still reserved for a on the next round, although none of its pods is bound yet.
    again = await book.plan(request("a", spec(), statuses(first)), inv)
    assert {(g.name, g.replicas) for g in again.groups} == {(g.name, g.replicas) for g in first.groups}
    assert placed(await book.plan(request("b", spec()), inv)) == 0


@pytest.mark.looptime
async def test_plans_are_recomputed_only_when_a_request_or_the_inventory_changed() -> None:
    nodes = [*ONE_GROUP, node("h2", "H20"), node("l2", "L20"), node("h3", "H20")]
    book, inv = PlanBook(), inventory(nodes)
    a = await book.plan(request("a", spec()), inv)
    b = await book.plan(request("b", spec()), inv)
    # The next ticks send the groups they applied: the plans they came from, so nothing changed and
    # the same plan objects come back, for every group. Readiness (``current`` in the groups) and
    # the order of the groups are no change.
    assert await book.plan(request("a", spec(), statuses(a)), inv) is a
    assert await book.plan(request("b", spec(), statuses(b)), inv) is b
    assert await book.plan(request("b", spec(), tuple(reversed(statuses(b)))), inv) is b
    # Another group's new request: a run of that group alone; a, which has all it asked for, is
    # neither planned again nor kept waiting.
    b_more = await book.plan(PlanRequest("b", spec(), RoleTargets(1, 2), statuses(b), "ns"), inv)
    assert b_more is not b
    assert placed(b_more) == 3
    assert await book.plan(request("a", spec(), statuses(a)), inv) is a
    # A new inventory object (the cluster view builds one after a Node or Pod changed) with room
    # for one more decode node: a change planned on the ledger's inventory finds no room...
    grown = inventory([*nodes, node("h4", "H20")])
    b_most = PlanRequest("b", spec(), RoleTargets(1, 3), statuses(b_more), "ns")
    assert placed(await book.plan(b_most, grown)) == 4, "left short on the old inventory: planned on the new one"
    assert await book.plan(request("a", spec(), statuses(a)), grown) is not a, "a full run planned a again"


@pytest.mark.looptime
async def test_a_changed_inventory_is_taken_up_within_the_refresh_time() -> None:
    """Pods bind all the time in a busy cluster, and each one makes a new inventory: a run of the
    changed groups plans on the ledger's inventory until it is REFRESH_S old, then every group is
    planned on the new one."""
    import asyncio

    from heteroscale.operator.planbook import REFRESH_S

    nodes = [*ONE_GROUP, node("h2", "H20"), node("l2", "L20"), node("h3", "H20"), node("l3", "L20")]
    book, inv = PlanBook(), inventory(nodes)
    await book.plan(request("a", spec()), inv)
    await book.plan(request("b", spec()), inv)
    # A foreign pod takes one of the three H20 nodes: the next inventory says so.
    limits = {"limits": {"nvidia.com/gpu": "8"}}
    foreign = {
        "metadata": {"name": "x", "namespace": "other"},
        "spec": {"nodeName": "h3", "containers": [{"name": "x", "resources": limits}]},
        "status": {"phase": "Running"},
    }
    busy = inventory_from_k8s(nodes, [foreign], spec().topology)
    shelf = next(iter(book._shelves.values()))
    c = await book.plan(request("c", spec()), busy)
    assert placed(c) == 2, "planned on the ledger's inventory, younger than REFRESH_S: the H20 node looks free"
    assert shelf.ledger is not None
    assert shelf.ledger.inventory is inv
    await asyncio.sleep(REFRESH_S)
    assert await book.plan(request("c", spec(), statuses(c)), busy) is c, "nothing changed: no run"
    assert shelf.ledger.inventory is inv
    # c's change (it scales to nothing) is the first after REFRESH_S: every group is planned on
    # the new inventory, which has no H20 node left for a fourth group.
    await book.plan(PlanRequest("c", spec(), RoleTargets(0, 0), statuses(c), "ns"), busy)
    assert shelf.ledger.inventory is busy
    assert placed(await book.plan(request("d", spec()), busy)) == 0


async def test_a_steady_group_never_waits_for_the_runs_of_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a thousand groups some group changes in every run; a group whose request did not change
    must not queue behind those runs (issue #15: a tick waited on the shared run, p99 2.8 s)."""
    runs = count_runs(monkeypatch)
    book, inv = PlanBook(), inventory([*ONE_GROUP, node("h2", "H20"), node("l2", "L20")])
    a = await book.plan(request("a", spec()), inv)
    a = await book.plan(request("a", spec(), statuses(a)), inv)
    b = await book.plan(request("b", spec()), inv)
    a = await book.plan(request("a", spec(), statuses(a)), inv)  # as b's run planned it
    before = len(runs)
    # b's request changed: registered, not yet run. a asks meanwhile and is answered at once.
    book._shelves[next(iter(book._shelves))].put(("ns", "b"), PlanRequest("b", spec(), RoleTargets(1, 2), (), "ns"))
    assert await book.plan(request("a", spec(), statuses(a)), inv) is a
    assert len(runs) == before, "a waited for the run b's change needs"
    assert placed(b) == 2


async def test_a_group_short_of_capacity_is_planned_again_when_the_inventory_changes() -> None:
    book, small = PlanBook(), inventory(ONE_GROUP)
    await book.plan(request("a", spec()), small)
    short = await book.plan(request("b", spec()), small)
    assert short.unschedulable
    assert await book.plan(request("b", spec()), small) is short, "nothing changed: the same answer"
    # A node pair joins: b's request is the same, but added (or freed) capacity may fit it now.
    grown = inventory([*ONE_GROUP, node("h2", "H20"), node("l2", "L20")])
    assert placed(await book.plan(request("b", spec()), grown)) == 2


async def test_a_dropped_group_frees_its_reservation() -> None:
    book, inv = PlanBook(), inventory(ONE_GROUP)
    high = await book.plan(request("high", spec(priority=500)), inv)
    assert placed(high) == 2
    assert placed(await book.plan(request("low", spec(priority=10)), inv)) == 0
    book.drop("ns", "high")
    assert placed(await book.plan(request("low", spec(priority=10)), inv)) == 2
    book.drop("ns", "never-registered")  # Dropping an unknown group is harmless.


async def test_a_dry_run_preview_reserves_nothing_but_sees_the_others() -> None:
    book, inv = PlanBook(), inventory(ONE_GROUP)
    preview = await book.preview(request("dry", spec(priority=1000)), inv)
    assert placed(preview) == 2
    assert placed(await book.plan(request("enforced", spec(priority=10)), inv)) == 2, "the preview reserved nothing"
    assert placed(await book.preview(request("dry", spec(priority=1)), inv)) == 0, "it sees what the others reserve"


async def test_groups_of_different_topologies_are_planned_apart() -> None:
    other = spec(colocate="heteroscale.io/s1")
    book = PlanBook()
    s2, s1 = inventory(ONE_GROUP), inventory(ONE_GROUP, other)
    # Each topology has its own inventory (in a real cluster, the same nodes read through other
    # labels); neither request meets the other's, so plan_many never sees a mixed topology.
    assert placed(await book.plan(request("a", spec()), s2)) == 2
    b = await book.plan(request("b", other), s1)
    assert placed(b) == 2
    # A group that moves to the other topology competes there: b, of equal priority, already holds
    # the room (a sorting first by name does not displace it, even before b's pods bind), and a's
    # old reservation is left to the next group.
    assert placed(await book.plan(request("a", other), s1)) == 0
    assert placed(await book.plan(request("b", other, statuses(b)), s1)) == 2
    assert placed(await book.plan(request("c", spec()), s2)) == 2


async def test_changes_that_arrive_together_are_planned_in_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A traffic ramp moves many groups in the same period: while one run is under way the others
    register, and the next run covers them all, instead of one run per group (quadratic)."""
    import asyncio

    runs = count_runs(monkeypatch)
    book = PlanBook()
    inv = inventory([node(f"h{i}", "H20") for i in range(20)] + [node(f"l{i}", "L20") for i in range(20)])
    names = [f"g{i}" for i in range(20)]
    plans = await asyncio.gather(*(book.plan(request(n, spec()), inv) for n in names))
    assert all(placed(p) == 2 for p in plans)
    assert len(runs) <= 2, runs
    assert sum(runs) == 20, "each group was planned once"
    # The next round sends the groups as applied: nothing changed, nothing is planned again.
    again = await asyncio.gather(
        *(book.plan(request(n, spec(), statuses(p)), inv) for n, p in zip(names, plans, strict=True))
    )
    assert len(runs) <= 2, runs
    assert [placed(p) for p in again] == [2] * 20


async def test_a_caller_whose_request_a_run_covered_does_not_wait_for_later_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a thousand groups, some group registers a change during every run. A caller queued
    behind a run that started after it registered takes its plan from that run: if it started one
    more run for the changes that came meanwhile, each queued caller would wait for all the runs
    of the callers before it."""
    import asyncio
    import threading

    loop = asyncio.get_running_loop()
    newcomers: list[Any] = []
    book = PlanBook()
    inv = inventory([node(f"h{i}", "H20") for i in range(40)] + [node(f"l{i}", "L20") for i in range(40)])
    # The runs after the first wait, in their worker thread, until every g has its plan: a g that
    # waited for one of them would never get it, and the run would give up waiting after 10 s.
    answered = threading.Event()
    gave_up: list[int] = []

    def newcomer(run: int) -> None:
        if run <= 5:  # a group whose tick comes while this run is under way
            late = book.plan(request(f"late{run}", spec()), inv)
            newcomers.append(asyncio.run_coroutine_threadsafe(late, loop))
        if run >= 2 and not answered.wait(timeout=10):
            gave_up.append(run)

    runs = count_runs(monkeypatch, newcomer)
    plans = await asyncio.gather(*(book.plan(request(f"g{i}", spec()), inv) for i in range(10)))
    answered.set()
    late = [await asyncio.wrap_future(f) for f in newcomers]
    assert all(placed(p) == 2 for p in [*plans, *late])
    assert not gave_up, "the g's waited for runs that started after theirs"
    # The first run covered g0..g9, which all registered before it started; each newcomer came
    # while a run was under way and was planned by the next one.
    assert runs == [10, 1, 1, 1, 1, 1], runs


async def test_a_caller_cancelled_while_waiting_leaves_the_run_to_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    """The group that started a run is deleted (its loop cancelled) while the run is under way: the
    others waiting for that run still get their plans from it."""
    import asyncio
    import threading

    gate = threading.Event()
    runs = count_runs(monkeypatch, lambda _: gate.wait(timeout=30))
    book = PlanBook()
    inv = inventory([node(f"h{i}", "H20") for i in range(3)] + [node(f"l{i}", "L20") for i in range(3)])
    first = asyncio.create_task(book.plan(request("first", spec()), inv))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(book.plan(request("second", spec()), inv))
    await asyncio.sleep(0.05)
    first.cancel()
    book.drop("ns", "first")
    gate.set()
    assert placed(await second) == 2
    assert runs == [1, 1], "the first run planned 'first' alone, the second 'second' alone"


async def test_a_failed_run_fails_its_callers_and_the_next_run_plans_every_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run that raises (a bug, or memory) may have left the kept ledger part way through: every
    caller waiting for it sees the error, and the next run starts over from a new ledger."""
    import asyncio

    def failing(run: int) -> None:
        if run == 2:
            raise RuntimeError("placement failed")

    runs = count_runs(monkeypatch, failing)
    book = PlanBook()
    inv = inventory([node(f"h{i}", "H20") for i in range(3)] + [node(f"l{i}", "L20") for i in range(3)])
    a = await book.plan(request("a", spec()), inv)
    shelf = next(iter(book._shelves.values()))
    kept = shelf.ledger
    results = await asyncio.gather(*(book.plan(request(n, spec()), inv) for n in ("b", "c")), return_exceptions=True)
    assert [str(r) for r in results] == ["placement failed"] * 2, "both waited for the failed run"
    b = await book.plan(request("b", spec()), inv)
    assert shelf.ledger is not kept, "a new ledger"
    assert runs == [1, 3], "the run after the failure planned a, b and c"
    assert placed(b) == 2
    assert await book.plan(request("a", spec(), statuses(a)), inv) is not a, "a was planned again"


def stored(name: str, spec_: PDServingGroupSpec, groups: tuple[GroupStatus, ...], **metadata: Any) -> dict[str, Any]:
    """A PDServingGroup as the API server returns it after an earlier operator's ticks."""
    return {
        "metadata": {"name": name, "namespace": "ns", **metadata},
        "spec": spec_.model_dump(by_alias=True, mode="json"),
        "status": {"groups": [g.model_dump(by_alias=True, mode="json") for g in groups]},
    }


async def test_a_restarted_operator_counts_what_groups_hold_before_their_first_tick() -> None:
    book, inv = PlanBook(), inventory(ONE_GROUP)
    enforce = spec()
    before = await PlanBook().plan(request("b", enforce), inv)  # the last operator placed b
    # After a restart, a's loop ticks before b's. b's pods are not bound yet (just scaled out), so
    # the inventory shows the room free; the seed from b's status keeps it b's.
    seed = seed_request(stored("b", enforce, statuses(before)), OperatorConfig())
    assert seed is not None
    assert seed.targets == RoleTargets(1, 1)
    book.seed(seed)
    assert placed(await book.plan(request("a", enforce), inv)) == 0
    b = await book.plan(request("b", enforce, statuses(before)), inv)
    assert {(g.name, g.domain, g.replicas) for g in b.groups} == {(g.name, g.domain, g.replicas) for g in before.groups}
    # A seed never replaces what a group's own tick registered: one that replaced b's request with
    # nothing held would give a the room.
    book.seed(PlanRequest("b", enforce, RoleTargets(0, 0), (), "ns"))
    assert placed(await book.plan(request("a", enforce), inv)) == 0


def test_only_placed_enforce_groups_that_hold_something_and_are_not_being_deleted_are_seeded() -> None:
    enforce = spec()
    groups = (GroupStatus(name="b-decode-g0", role=Role.DECODE, gpu_type="H20", domain="s2-a", desired=2),)
    assert seed_request(stored("b", enforce, groups), OperatorConfig()) is not None
    assert seed_request(stored("b", spec().model_copy(update={"mode": Mode.DRY_RUN}), groups), OperatorConfig()) is None
    assert seed_request(stored("b", enforce, ()), OperatorConfig()) is None
    assert (
        seed_request(stored("b", enforce, groups, deletionTimestamp="2026-11-28T00:00:00Z"), OperatorConfig()) is None
    )
    invalid = stored("b", enforce, groups)
    invalid["spec"]["ratio"] = {"prefill": -1, "decode": 1}
    assert seed_request(invalid, OperatorConfig()) is None
