"""One reconcile tick of one PDServingGroup: spec → conflicts → Deployments → metrics → policy →
placement → patches → status. Level-based: every tick starts from a fresh read of the object and its
Deployments, and everything carried between ticks is in the object's status (the deployment groups
in ``status.groups``). Nodes, Pods and other autoscalers come from kopf indexes (:class:`Cluster`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from heteroscale.api.crd import GROUP, PLURAL, VERSION
from heteroscale.api.enums import ConditionType, Mode, Reason, Role
from heteroscale.api.errors import describe
from heteroscale.api.spec import PDServingGroupSpec, PrometheusSource, Topology
from heteroscale.api.status import Drain, DrainGroup, GroupStatus, LastDecision, PDServingGroupStatus, RoleCounts
from heteroscale.operator import conditions, drain, manifests, observe
from heteroscale.operator.conflicts import conflicting_autoscalers
from heteroscale.operator.kube import AlreadyExists, JsonObject, KubeClient, NotFound
from heteroscale.operator.naming import (
    LABEL_SERVING,
    GroupPlan,
    from_plan,
    from_status,
    role_groups,
    uses_placement,
)
from heteroscale.operator.planbook import PlanBook
from heteroscale.operator.signals import MetricsSink, ReaderFactory, SignalReader
from heteroscale.placement import Inventory, PlanRequest, RoleTargets, inventory_from_k8s
from heteroscale.policy import Decision, Observation, decide

logger = logging.getLogger(__name__)

#: Seconds between ticks while the spec cannot be read (it has no valid intervalSeconds).
DEFAULT_INTERVAL = 15

#: ``emit(type, reason, message)`` posts a Kubernetes Event about the PDServingGroup.
Emit = Callable[[str, str, str], None]


def cr_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"


def deployment_path(namespace: str, name: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments" + (f"/{name}" if name else "")


@dataclass
class Cluster:
    """What the kopf indexes hold, as a tick reads it: GPU nodes and pods for placement's inventory,
    and the other autoscalers by the Deployment they target. The handlers put kopf's index objects
    here; they stay current from the watch, so no tick lists Nodes, Pods or autoscalers."""

    nodes: Mapping[Any, Iterable[JsonObject]] = field(default_factory=dict)
    pods: Mapping[Any, Iterable[JsonObject]] = field(default_factory=dict)
    autoscalers: Sequence[Mapping[tuple[str, str], Iterable[str]]] = ()
    slow_nodes: frozenset[str] = frozenset()
    """Nodes to use last, besides those labelled slow (e.g. from `heteroscale stragglers serve --slow-nodes`)."""
    changes: int = 0
    """Bumped by the Node and Pod index handlers. kopf calls no handler when an object is deleted, but
    the index then shrinks: (changes, size) differs after any change, so a cached inventory is exact."""
    plans: PlanBook = field(default_factory=PlanBook)
    """Every placed group's latest placement request: ticks plan all of them together."""
    _inventories: dict[str, tuple[tuple[int, int], Inventory]] = field(default_factory=dict)

    def inventory(self, topology: Topology) -> Inventory:
        """One inventory per topology, rebuilt only after a Node or Pod changed (not per tick: with
        a thousand groups that would be a thousand passes over the cluster per period)."""
        key = topology.model_dump_json()
        version = (self.changes, len(self.nodes) + len(self.pods))
        cached = self._inventories.get(key)
        if cached is None or cached[0] != version:
            nodes = [obj for store in list(self.nodes.values()) for obj in store]
            pods = [obj for store in list(self.pods.values()) for obj in store]
            cached = self._inventories[key] = (version, inventory_from_k8s(nodes, pods, topology, self.slow_nodes))
        return cached[1]


@dataclass
class Context:
    """What every tick shares: the API client, the metric readers, the exported metrics, the clock,
    and the cluster as the indexes see it."""

    client: KubeClient
    readers: ReaderFactory
    metrics: MetricsSink
    clock: Callable[[], float] = time.time
    cluster: Cluster = field(default_factory=Cluster)
    _reader_cache: dict[PrometheusSource, SignalReader] = field(default_factory=dict)

    def reader(self, source: PrometheusSource) -> SignalReader:
        if source not in self._reader_cache:
            self._reader_cache[source] = self.readers(source)
        return self._reader_cache[source]


def _finite(value: float | None) -> float | None:
    """NaN and Inf are not JSON; the status shows them as absent (the condition says why)."""
    return value if value is not None and math.isfinite(value) else None


async def tick(ctx: Context, namespace: str, name: str, emit: Emit) -> int:
    """Reconcile once; returns the seconds until the next tick."""
    started = time.monotonic()
    try:
        return await _tick(ctx, namespace, name, emit)
    finally:
        ctx.metrics.observe_reconcile(namespace, name, time.monotonic() - started)


async def _tick(ctx: Context, namespace: str, name: str, emit: Emit) -> int:
    client, now = ctx.client, ctx.clock()
    path = cr_path(namespace, name)
    try:
        obj = await client.get(path)
    except NotFound:
        ctx.cluster.plans.drop(namespace, name)
        return DEFAULT_INTERVAL
    status = _parse_status(obj.get("status"))
    generation = obj.get("metadata", {}).get("generation")

    async def write(patch: dict[str, Any]) -> None:
        await client.patch(path + "/status", {"status": {"observedGeneration": generation, **patch}})

    async def refuse(reason: str, message: str, event_on: ConditionType) -> None:
        conds = conditions.refused(status.conditions, reason, message, now)
        if conditions.changed(status.conditions, conds, event_on):
            emit("Warning", reason, message)
        await write({"conditions": _dump(conds)})

    try:
        spec = PDServingGroupSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        ctx.cluster.plans.drop(namespace, name)
        await refuse(Reason.INVALID_SPEC, "invalid spec: " + "; ".join(describe(exc)), ConditionType.READY)
        return DEFAULT_INTERVAL
    interval = spec.behavior.interval_seconds
    placed = uses_placement(spec)
    if not placed or spec.mode is not Mode.ENFORCE:
        # Only Enforce creates the planned pods, so only a placed Enforce group reserves capacity.
        ctx.cluster.plans.drop(namespace, name)

    names = from_status(status.groups) if placed else role_groups(spec, name, 0, 0)
    found = conflicting_autoscalers(ctx.cluster.autoscalers, namespace, [g.name for g in names])
    if found:
        ctx.metrics.count_conflict(namespace, name)
        why = (
            "; ".join(found) + ". Two autoscalers on one Deployment fight: remove the other one or this PDServingGroup"
        )
        await refuse(Reason.CONFLICT, why, ConditionType.CONFLICT)
        return interval

    deployments: dict[str, JsonObject | None] = {}
    for group in names:
        deployments[group.name] = await _get_or_none(client, deployment_path(namespace, group.name))
    missing = [g.name for g in names if not g.owned and deployments[g.name] is None]
    if missing:
        await refuse("DeploymentMissing", f"referenced Deployment(s) {missing} not found", ConditionType.READY)
        return interval
    # Level-based: the groups at the replicas their Deployments ask for now.
    current = [replace(g, replicas=observe.asked(deployments[g.name])) for g in names]

    decode_names = [g.name for g in current if g.role is Role.DECODE and deployments[g.name] is not None]
    prefill_names = [g.name for g in current if g.role is Role.PREFILL and deployments[g.name] is not None]
    reader = ctx.reader(spec.metric.prometheus)
    signals = await asyncio.to_thread(reader.read, spec, namespace, decode_names, prefill_names, now)
    if signals.problem:
        ctx.metrics.count_fetch_error(namespace, name, signals.problem)
    observation = Observation(
        decode_tps=signals.decode_tps,
        metric_age_seconds=signals.metric_age_seconds,
        prefill=observe.pool(Role.PREFILL, current, deployments),
        decode=observe.pool(Role.DECODE, current, deployments),
        tbt_seconds=signals.tbt_seconds,
    )
    decision = decide(spec, observation, status.policy_state, now)
    ctx.metrics.observe_decision(namespace, name, spec, observation, decision, signals)

    state, pending = decision.state, status.drain
    apply = _Apply(ctx, obj, namespace, name, spec, current, deployments, emit, now)
    if spec.mode is Mode.ENFORCE and pending is not None and _wants_more(decision, observation):
        await apply.cancel_drain(pending, decision)
        pending = None
    unschedulable: str | None = None
    kept: set[str] = set()
    if pending is not None:
        # The policy already chose this scale-in, and placement planned it: both wait for the drain.
        state = status.policy_state
        targets = _with_drain_targets(current, pending)
        if spec.mode is Mode.ENFORCE and now >= pending.started + spec.behavior.scale_down.drain_seconds:
            await apply.finish_drain(pending)
            pending = None
    else:
        prefill = _starting(Role.PREFILL, decision.prefill, current, deployments, spec)
        decode = _starting(Role.DECODE, decision.decode, current, deployments, spec)
        if placed:
            try:
                inventory = ctx.cluster.inventory(spec.topology)
            except ValueError as exc:  # a node with a GPU quantity that is not a whole number
                await refuse(Reason.UNSCHEDULABLE, f"cannot read the GPU inventory: {exc}", ConditionType.READY)
                return interval
            groups_now = [_group_status(g, deployments) for g in current]
            request = PlanRequest(name, spec, RoleTargets(prefill, decode), groups_now, namespace)
            book = ctx.cluster.plans
            plan = await (book.plan if spec.mode is Mode.ENFORCE else book.preview)(request, inventory)
            planned = from_plan(plan)
            kept = {g.name for g in planned}
            # Groups that leave the plan go to 0 (drained like any scale-in), then are deleted.
            targets = planned + [replace(g, replicas=0) for g in current if g.name not in kept]
            unschedulable = "; ".join(f.message for f in plan.unschedulable) or None
        else:
            targets = role_groups(spec, name, prefill, decode)
        if spec.mode is Mode.ENFORCE:
            pending = await apply.decision(decision, targets, observation)
            if placed and pending is None:
                targets = await apply.remove_emptied(targets, kept)

    groups = [_group_status(g, deployments, g.replicas) for g in targets]
    ctx.metrics.observe_groups(namespace, name, groups)
    not_ready = [
        f"{g.name} {observe.ready(d)}/{observe.asked(d)} ready"
        for g in targets
        for d in [deployments.get(g.name)]
        if g.replicas and (d is None or observe.ready(d) < observe.asked(d))
    ]
    conds = conditions.decided(status.conditions, spec, decision, "; ".join(not_ready) or None, unschedulable, now)
    if unschedulable and conditions.changed(status.conditions, conds, ConditionType.READY):
        emit("Warning", Reason.UNSCHEDULABLE, unschedulable)
    await write(
        {
            "decodeTPS": _finite(signals.decode_tps),
            "metricAgeSeconds": _finite(signals.metric_age_seconds),
            "desired": _counts(targets, lambda g: g.replicas),
            "current": RoleCounts(prefill=observation.prefill.ready, decode=observation.decode.ready).model_dump(
                by_alias=True
            ),
            "groups": [g.model_dump(by_alias=True, mode="json") for g in groups],
            "lastDecision": LastDecision(
                reason=decision.reason, message=decision.message, time=conditions.rfc3339(now)
            ).model_dump(by_alias=True, mode="json"),
            "policyState": state.model_dump(by_alias=True, mode="json"),
            "conditions": _dump(conds),
            "drain": pending.model_dump(by_alias=True, mode="json") if pending else None,
        }
    )
    return interval


def _starting(
    role: Role, wanted: int, current: Sequence[GroupPlan], deployments: Mapping[str, Any], spec: PDServingGroupSpec
) -> int:
    """A role with no Deployment yet starts with at least the minimum pair that keeps the ratio: the
    policy holds while it has nothing to read, and holding at zero would never start the group."""
    if any(g.role is role and deployments.get(g.name) is not None for g in current):
        return wanted
    prefill, decode = manifests.initial_replicas(spec)
    return max(wanted, prefill if role is Role.PREFILL else decode)


def _group_status(group: GroupPlan, deployments: Mapping[str, Any], desired: int | None = None) -> GroupStatus:
    deployment = deployments.get(group.name)
    return GroupStatus(
        name=group.name,
        role=group.role,
        gpu_type=group.gpu_type,
        domain=group.domain,
        desired=observe.asked(deployment) if desired is None else desired,
        current=observe.ready(deployment),
    )


def _wants_more(decision: Decision, observation: Observation) -> bool:
    """A drain is put back when the policy now wants more than is running (load came back, latency
    degraded): the drained pods still run, so serving them again costs no cold start."""
    return decision.prefill > observation.prefill.replicas or decision.decode > observation.decode.replicas


def _with_drain_targets(targets: Sequence[GroupPlan], pending: Drain) -> list[GroupPlan]:
    by_name = {g.name: g.replicas for g in pending.groups}
    return [replace(g, replicas=by_name.get(g.name, g.replicas)) for g in targets]


def _counts(groups: Sequence[GroupPlan], value: Callable[[GroupPlan], int]) -> dict[str, int]:
    return {role.value: sum(value(g) for g in groups if g.role is role) for role in (Role.PREFILL, Role.DECODE)}


def _dump(conds: Sequence[Any]) -> list[dict[str, Any]]:
    return [c.model_dump(by_alias=True, mode="json") for c in conds]


def seed_request(obj: Mapping[str, Any]) -> PlanRequest | None:
    """What a placed Enforce group holds according to its status: its groups at the replicas the
    last tick wrote, as targets and as current groups. None for any other group, one being deleted
    (its loop has stopped or is stopping, and would not drop it again), or a spec that does not
    validate (its tick reports that)."""
    metadata = obj.get("metadata", {})
    if metadata.get("deletionTimestamp"):
        return None
    try:
        spec = PDServingGroupSpec.model_validate(obj.get("spec") or {})
    except ValidationError:
        return None
    groups = _parse_status(obj.get("status")).groups
    if spec.mode is not Mode.ENFORCE or not uses_placement(spec) or not groups:
        return None
    targets = RoleTargets(*(sum(g.desired for g in groups if g.role is role) for role in (Role.PREFILL, Role.DECODE)))
    return PlanRequest(metadata.get("name", ""), spec, targets, groups, metadata.get("namespace", ""))


def _parse_status(raw: Mapping[str, Any] | None) -> PDServingGroupStatus:
    """The carried status; one written by someone else in a shape we cannot read starts fresh."""
    try:
        return PDServingGroupStatus.model_validate(raw or {})
    except ValidationError:
        logger.warning("ignoring an unreadable status: %s", raw)
        return PDServingGroupStatus()


async def _get_or_none(client: KubeClient, path: str) -> JsonObject | None:
    try:
        return await client.get(path)
    except NotFound:
        return None


@dataclass
class _Apply:
    """The writes of one Enforce tick."""

    ctx: Context
    pdsg: Mapping[str, Any]
    namespace: str
    name: str
    spec: PDServingGroupSpec
    current: Sequence[GroupPlan]
    deployments: dict[str, JsonObject | None]
    emit: Emit
    now: float

    async def _patch_deployment(self, deployment: str, patch: JsonObject) -> None:
        self.deployments[deployment] = await self.ctx.client.patch(deployment_path(self.namespace, deployment), patch)

    async def _create(self, group: GroupPlan, template: JsonObject) -> None:
        manifest = manifests.deployment_manifest(self.pdsg, group, template)
        try:
            created = await self.ctx.client.create(deployment_path(self.namespace), manifest)
        except AlreadyExists:
            # An earlier attempt timed out after the server created it: take what is there, and
            # patch it to the plan on this tick.
            created = await self.ctx.client.get(deployment_path(self.namespace, group.name))
            patch = manifests.group_patch(created, group, template)
            if patch:
                created = await self.ctx.client.patch(deployment_path(self.namespace, group.name), patch)
        self.deployments[group.name] = created

    async def remove_emptied(self, targets: Sequence[GroupPlan], planned: set[str]) -> list[GroupPlan]:
        """Delete the Deployments of groups that left the plan once they are at 0 replicas (after
        their drain); the targets without them."""
        kept, deleted = [], []
        for group in targets:
            deployment = self.deployments.get(group.name)
            if group.name in planned or observe.asked(deployment) > 0:
                kept.append(group)
                continue
            if deployment is not None:
                with contextlib.suppress(NotFound):  # Already gone: what we wanted.
                    await self.ctx.client.delete(deployment_path(self.namespace, group.name))
                self.deployments[group.name] = None
                deleted.append(group.name)
        if deleted:
            self.emit(
                "Normal", "GroupRemoved", f"deleted Deployments {', '.join(deleted)}: placement no longer uses them"
            )
        return kept

    async def _patch_pods(self, pods: Sequence[str], patch: JsonObject) -> None:
        for pod in pods:
            try:
                await self.ctx.client.patch(f"/api/v1/namespaces/{self.namespace}/pods/{pod}", patch)
            except NotFound:
                continue  # Already gone: nothing left to drain or restore.

    def _count(self, before: Mapping[str, int], after: Mapping[str, int]) -> None:
        for role in (Role.PREFILL, Role.DECODE):
            if after[role.value] != before[role.value]:
                direction = "up" if after[role.value] > before[role.value] else "down"
                self.ctx.metrics.count_scale_event(self.namespace, self.name, role.value, direction)

    async def decision(
        self, decision: Decision, targets: Sequence[GroupPlan], observation: Observation
    ) -> Drain | None:
        """Scale-ups and affinity now; scale-ins start a drain (or go at once with no pod to drain)."""
        before = {Role.PREFILL.value: observation.prefill.replicas, Role.DECODE.value: observation.decode.replicas}
        draining: list[DrainGroup] = []
        for group in targets:
            template = manifests.pod_template(self.name, self.spec, group)
            current = self.deployments.get(group.name)
            if current is None:
                if template is not None and group.replicas > 0:
                    await self._create(group, template)
                continue
            shrink = observe.asked(current) - group.replicas
            chosen = await self._choose(current, shrink) if shrink > 0 else []
            if chosen:
                await self._patch_pods(chosen, drain.out_of_serving_patch())
                draining.append(DrainGroup(name=group.name, replicas=group.replicas, pods=chosen))
                continue
            patch = manifests.group_patch(current, group, template)
            if patch:
                await self._patch_deployment(group.name, patch)
        after = _counts(targets, lambda g: g.replicas)
        if after == before:
            return None
        if draining:
            seconds = self.spec.behavior.scale_down.drain_seconds
            pods = ", ".join(p for d in draining for p in d.pods)
            self.emit("Normal", decision.reason, f"{decision.message}; draining {pods} for {seconds}s first")
            return Drain(started=self.now, groups=draining, reason=decision.reason, message=decision.message)
        self._count(before, after)
        self.emit("Normal", decision.reason, decision.message)
        return None

    async def _choose(self, deployment: Mapping[str, Any], count: int) -> list[str]:
        """Pods to take out of serving, or none when the scale-in cannot be soft: no drain period, or
        the Deployment's selector includes the serving label (flipping it would orphan the pod)."""
        match = deployment.get("spec", {}).get("selector", {}).get("matchLabels") or {}
        if self.spec.behavior.scale_down.drain_seconds == 0 or LABEL_SERVING in match:
            return []
        selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
        pods = await self.ctx.client.list(f"/api/v1/namespaces/{self.namespace}/pods", label_selector=selector)
        serving = [
            p for p in drain.selected(pods, match) if (p["metadata"].get("labels") or {}).get(LABEL_SERVING) != "false"
        ]
        return drain.choose_pods_to_drain(serving, count)

    async def finish_drain(self, pending: Drain) -> None:
        """Lower the replicas: the drained pods carry the lowest deletion cost, so exactly they go."""
        before = {Role.PREFILL.value: 0, Role.DECODE.value: 0}
        after = dict(before)
        roles = {g.name: g.role for g in self.current}
        for group in pending.groups:
            role = roles.get(group.name)
            current = self.deployments.get(group.name)
            if role is None or current is None:
                continue  # The group went away meanwhile; nothing to lower.
            before[role.value] += observe.asked(current)
            after[role.value] += group.replicas
            if observe.asked(current) != group.replicas:
                await self._patch_deployment(group.name, {"spec": {"replicas": group.replicas}})
        self._count(before, after)
        pods = ", ".join(p for g in pending.groups for p in g.pods)
        self.emit("Normal", "DrainComplete", f"removed {pods} after the drain period; {pending.message}")

    async def cancel_drain(self, pending: Drain, decision: Decision) -> None:
        for group in pending.groups:
            await self._patch_pods(group.pods, drain.back_in_serving_patch())
        pods = ", ".join(p for g in pending.groups for p in g.pods)
        self.emit("Normal", "DrainCancelled", f"{pods} back in serving: {decision.message}")
