"""One reconcile tick of one PDServingGroup, as a pipeline of named steps:

1. :func:`_spec` — the object and its spec; an invalid spec is refused (``InvalidSpec``);
2. :func:`access.resolve` — the admin-configured endpoint, the namespace its queries stay in and
   its effective priority; asking for more is refused (``NotAllowed``);
3. :func:`_deployments` — the Deployments the group wants and owns, each judged by ownerReferences
   (:func:`_judge`): another autoscaler or PDServingGroup on them (``Conflict``), a reference that
   does not exist (``DeploymentMissing``) or a name clash with someone else's (``NotOwned``) is
   refused with no write at all;
4. the signals, the observation and ``policy.decide``;
5. placement (template mode) or the role's Deployments (reference mode) turn the decision into
   targets per Deployment; a hold never lowers any of them (:func:`_never_lower`);
6. :class:`~heteroscale.operator.apply.Apply` writes (Enforce only), then the status.

Level-based: every tick starts from the object as the API server has it (from the watch while its
status is the one this operator last wrote, else a GET) and its Deployments, and everything
carried between ticks is in the object's status. Nodes, Pods, Deployments and other autoscalers
come from the operator's watches (:class:`Cluster`). Every failure of a tick ends in a condition and an Event
(:func:`tick`), never silently.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from heteroscale.api.config import OperatorConfig
from heteroscale.api.enums import ConditionType, Mode, Reason, Role
from heteroscale.api.errors import describe
from heteroscale.api.spec import PDServingGroupSpec, Topology
from heteroscale.api.status import Drain, GroupStatus, LastDecision, PDServingGroupStatus, PolicyState, RoleCounts
from heteroscale.metrics.reader import Signals
from heteroscale.operator import (
    access,
    conditions,
    indexes,
    manifests,
    observe,
    ownership,
    scaletarget,
    startup,
    statusbook,
)
from heteroscale.operator.apply import Apply, Emit, Refusal, Stale, counts, cr_path, deployment_path, pods_of
from heteroscale.operator.conflicts import conflicting_autoscalers, conflicting_groups, target_key
from heteroscale.operator.kube import JsonObject, KubeClient, NotFound
from heteroscale.operator.manifests import PodTemplate
from heteroscale.operator.naming import GroupPlan, from_plan, from_status, leftovers, role_groups, uses_placement
from heteroscale.operator.planbook import PlanBook
from heteroscale.operator.signals import MetricsSink, ReaderFactory, SignalReader
from heteroscale.operator.statusbook import StatusBook
from heteroscale.operator.store import Store
from heteroscale.operator.templatebook import TemplateBook
from heteroscale.placement import Inventory, PlanRequest, RoleTargets, inventory_from_k8s
from heteroscale.policy import Decision, Observation, decide, manual

logger = logging.getLogger(__name__)

#: Seconds between ticks while the spec cannot be read (it has no valid intervalSeconds).
DEFAULT_INTERVAL = 15

__all__ = ["DEFAULT_INTERVAL", "Cluster", "Context", "Emit", "seed_request", "tick"]


@dataclass
class Cluster:
    """What the operator's watches hold, as a tick reads it (:mod:`heteroscale.operator.watch`):
    GPU nodes and pods for placement's inventory, the other autoscalers by the workload they target,
    the Deployments other PDServingGroups reference, and every Deployment. They stay current from
    the watches, so no tick lists or fetches Nodes, Pods, Deployments, autoscalers or groups."""

    nodes: Store[str, JsonObject] = field(default_factory=lambda: Store(indexes.node_index(None)))
    pods: Store[tuple[str, str], JsonObject] = field(default_factory=lambda: Store(indexes.pod_index))
    autoscalers: Sequence[Mapping[tuple[str, str], Iterable[str]]] = ()
    references: Mapping[tuple[str, str], Iterable[tuple[str, str, str]]] = field(default_factory=dict)
    """(namespace, Deployment) → (creationTimestamp, uid, name) of each PDServingGroup referencing it."""
    deployments: Mapping[tuple[str, ...], Iterable[JsonObject]] = field(default_factory=dict)
    """Every Deployment as :func:`~heteroscale.operator.indexes.deployment` trims it, by
    ``("name", namespace, name)`` and by ``("owner", controller uid)``."""
    slow_nodes: frozenset[str] = frozenset()
    """Nodes to use last, besides those labelled slow (e.g. from `heteroscale stragglers serve --slow-nodes`)."""
    plans: PlanBook = field(default_factory=PlanBook)
    """Every placed group's latest placement request: ticks plan all of them together."""
    _inventories: dict[str, tuple[tuple[int, int], Inventory]] = field(default_factory=dict)

    def inventory(self, topology: Topology) -> Inventory:
        """One inventory per topology, rebuilt only after what the stores keep of a Node or Pod
        changed (not per tick: with a thousand groups that would be a thousand passes over the
        cluster per period)."""
        key = topology.model_dump_json()
        version = (self.nodes.changes, self.pods.changes)
        cached = self._inventories.get(key)
        if cached is None or cached[0] != version:
            nodes = [obj for store in list(self.nodes.values()) for obj in store]
            pods = [obj for store in list(self.pods.values()) for obj in store]
            cached = self._inventories[key] = (version, inventory_from_k8s(nodes, pods, topology, self.slow_nodes))
        return cached[1]


@dataclass
class Context:
    """What every tick shares: the API client, the metric readers, the exported metrics, the clock,
    the admin's configuration, and the cluster as the watches see it."""

    client: KubeClient
    readers: ReaderFactory
    metrics: MetricsSink
    clock: Callable[[], float] = time.time
    cluster: Cluster = field(default_factory=Cluster)
    config: OperatorConfig = field(default_factory=OperatorConfig)
    statuses: StatusBook = field(default_factory=StatusBook)
    """What each group last wrote to its status and computed since (writes that can be skipped)."""
    templates: TemplateBook = field(default_factory=TemplateBook)
    """Each group's parsed spec and rendered pod templates, while its spec stays the same."""
    not_ready_since: dict[tuple[str, str], float] = field(default_factory=dict)
    """When each Deployment with pods asked for but not ready was first seen so (see _pods_stuck)."""
    _reader_cache: dict[str, SignalReader] = field(default_factory=dict)

    def reader(self, grant: access.Access) -> SignalReader:
        """One reader per admin endpoint, shared by every group that uses it."""
        if grant.endpoint_name not in self._reader_cache:
            self._reader_cache[grant.endpoint_name] = self.readers(grant.endpoint)
        return self._reader_cache[grant.endpoint_name]


def _finite(value: float | None) -> float | None:
    """NaN and Inf are not JSON; the status shows them as absent (the condition says why)."""
    return value if value is not None and math.isfinite(value) else None


async def tick(ctx: Context, namespace: str, name: str, emit: Emit, watched: Mapping[str, Any] | None = None) -> int:
    """Reconcile once; returns the seconds until the next tick. Raises what the API server or the
    code raised, after the group's status and an Event say so (see :func:`report_failure`).
    ``watched`` is the object as the operator's watch last delivered it (see :func:`_current`)."""
    started = time.monotonic()
    try:
        return await _tick(ctx, namespace, name, emit, watched)
    finally:
        ctx.metrics.observe_reconcile(namespace, name, time.monotonic() - started)


@dataclass
class _Status:
    """The group's status as this tick carries it, and the two ways a tick ends: a status write
    after acting, or a refusal (conditions and an Event, nothing else written). A write that changes
    only what moves every tick is skipped until the refresh period is over (:mod:`statusbook`)."""

    ctx: Context
    obj: Mapping[str, Any]
    status: PDServingGroupStatus
    emit: Emit
    now: float
    refresh: float = DEFAULT_INTERVAL

    @property
    def key(self) -> tuple[str, str]:
        meta = self.obj["metadata"]
        return (meta["namespace"], meta["name"])

    @property
    def generation(self) -> int | None:
        generation: int | None = self.obj["metadata"].get("generation")
        return generation

    async def write(self, patch: dict[str, Any]) -> None:
        body = {"observedGeneration": self.generation, **patch}
        book, uid = self.ctx.statuses, _uid(self.obj)
        if not book.needs_write(self.key, uid, body, self.now, self.refresh):
            return
        answer = await self.ctx.client.patch(cr_path(*self.key) + "/status", {"status": body})
        book.sent(self.key, uid, answer.get("status") or {}, self.now)

    async def record_drain(self, started: Drain) -> None:
        """The drain a tick starts, in the status before its pods leave serving."""
        await self.write({"drain": started.model_dump(by_alias=True, mode="json")})

    async def refuse(self, reason: Reason, message: str) -> None:
        before = self.status.conditions
        after = conditions.refused(before, reason, message, self.now, self.generation)
        event_on = ConditionType.CONFLICT if reason is Reason.CONFLICT else ConditionType.READY
        if conditions.changed(before, after, event_on):
            self.emit("Warning", reason, message)
        await self.write({"conditions": _dump(after)})


async def report_failure(ctx: Context, namespace: str, name: str, emit: Emit, error: Exception) -> None:
    """A tick failed: say so in the group's conditions and an Event (once per distinct failure).
    Best effort: when the API server is what failed, the status write may fail too."""
    message = f"reconcile failed, retrying with backoff: {type(error).__name__}: {error}"[:1024]
    try:
        obj = await ctx.client.get(cr_path(namespace, name))
        status = _parse_status(ctx.statuses.carried((namespace, name), _uid(obj), obj.get("status")))
        await _Status(ctx, obj, status, emit, ctx.clock()).refuse(Reason.RECONCILE_FAILED, message)
    except Exception as exc:
        logger.warning("could not report the failure of %s/%s: %s", namespace, name, exc)
        emit("Warning", Reason.RECONCILE_FAILED, message)


def _current(ctx: Context, namespace: str, name: str, watched: Mapping[str, Any] | None) -> JsonObject | None:
    """The object from the watch, when its status is the one this operator last wrote: then the
    watch has caught up with every write of ours and nobody else wrote the status, and a GET would
    return the same (give or take a spec change a few milliseconds old, seen on the next tick).
    Otherwise None: the watch lags behind our last write, or someone else wrote the status, and the
    tick reads the object from the API server. With a thousand groups this saves a thousand GETs a
    period, each a JSON body to encode and parse on both sides."""
    if watched is None:
        return None
    snapshot = dict(watched)  # kopf replaces the object it hands out on each event, never edits it
    return snapshot if ctx.statuses.is_ours((namespace, name), _uid(snapshot), snapshot.get("status")) else None


async def _tick(ctx: Context, namespace: str, name: str, emit: Emit, watched: Mapping[str, Any] | None) -> int:
    client, now = ctx.client, ctx.clock()
    obj = _current(ctx, namespace, name, watched)
    if obj is None:
        try:
            obj = await client.get(cr_path(namespace, name))
        except NotFound:
            ctx.cluster.plans.drop(namespace, name)
            ctx.statuses.forget((namespace, name))
            ctx.templates.forget((namespace, name))
            return DEFAULT_INTERVAL
    status = _parse_status(ctx.statuses.carried((namespace, name), _uid(obj), obj.get("status")))
    out = _Status(ctx, obj, status, emit, now)
    interval = DEFAULT_INTERVAL
    try:
        spec = _spec(ctx, obj)
        interval = spec.behavior.interval_seconds
        out.refresh = statusbook.refresh_seconds(interval, spec.behavior.scale_down.stabilization_window_seconds)
        try:
            grant = access.resolve(ctx.config, spec, namespace)
        except ValueError as exc:
            raise Refusal(Reason.NOT_ALLOWED, str(exc)) from None
        if not uses_placement(spec) or spec.mode is not Mode.ENFORCE:
            # Only Enforce creates the planned pods, so only a placed Enforce group reserves capacity.
            ctx.cluster.plans.drop(namespace, name)
        seen = await _pods_stuck(ctx, spec, await _read(ctx, obj, spec, status, fresh=False), now)
        signals = await _signals(ctx, spec, grant, seen, now)
        plan = await _plan(ctx, obj, spec, grant, status, seen, signals, now, trust_index=True)
        done: _Done | None = None
        if spec.mode is Mode.ENFORCE and plan.writes():
            # The index may lag the API server: never write from it unchecked. A plan that only
            # creates and grows Deployments writes each on condition that it is as the index saw
            # it; any other plan, or one whose condition failed, fetches what the writes are about
            # and plans again if anything moved since the index saw it.
            if plan.guarded():
                try:
                    done = await _execute(ctx, obj, spec, plan, emit, now, out.record_drain, guarded=True)
                except Stale as stale:
                    logger.info("%s/%s: %s; reading the group's Deployments again", namespace, name, stale)
            if done is None:
                fresh = await _pods_stuck(ctx, spec, await _read(ctx, obj, spec, status, fresh=True), now)
                if fresh.differs(seen) or plan.creates():
                    plan = await _plan(ctx, obj, spec, grant, status, fresh, signals, now)
        if done is None:
            done = await _execute(ctx, obj, spec, plan, emit, now, out.record_drain)
        await _record(ctx, obj, spec, status, out, done, signals, now)
    except Refusal as refusal:
        ctx.cluster.plans.drop(namespace, name)
        if refusal.reason is Reason.CONFLICT:
            ctx.metrics.count_conflict(namespace, name)
        await out.refuse(refusal.reason, refusal.message)
    return interval


def _spec(ctx: Context, obj: Mapping[str, Any]) -> PDServingGroupSpec:
    meta = obj["metadata"]
    try:
        return ctx.templates.spec((meta["namespace"], meta["name"]), obj.get("spec") or {})
    except ValidationError as exc:
        raise Refusal(Reason.INVALID_SPEC, "invalid spec: " + "; ".join(describe(exc))) from None


@dataclass
class _Seen:
    """The group's Deployments as a tick reads them: what it wants and controls, each Deployment by
    name (None: not there), and the ones it may adopt."""

    current: list[GroupPlan]
    deployments: dict[str, JsonObject | None]
    adopt: list[JsonObject]
    stuck: dict[str, int] = field(default_factory=dict)
    """Pods not ready after podStartTimeoutSeconds, per Deployment (:func:`_pods_stuck`)."""

    def differs(self, other: _Seen) -> bool:
        """Anything a decision or a write reads is different between two reads."""
        return {n: _essence(d) for n, d in self.deployments.items()} != {
            n: _essence(d) for n, d in other.deployments.items()
        } or [g.name for g in self.current] != [g.name for g in other.current]


def _essence(deployment: Mapping[str, Any] | None) -> Any:
    if deployment is None:
        return None
    trimmed = indexes.deployment(deployment)
    meta = {k: v for k, v in trimmed["metadata"].items() if k != "resourceVersion"}
    return (meta, trimmed["spec"], trimmed["status"])


async def _read(
    ctx: Context, obj: Mapping[str, Any], spec: PDServingGroupSpec, status: PDServingGroupStatus, *, fresh: bool
) -> _Seen:
    """The group's Deployments, judged (:func:`_judge`): from the Deployment index, or ``fresh``
    from the API server. The ones it controls are found in the index by its uid either way; a
    reference the index does not have yet is worth one GET before the group is refused for it."""
    meta = obj["metadata"]
    namespace, name, index = meta["namespace"], meta["name"], ctx.cluster.deployments
    wanted = from_status(status.groups) if uses_placement(spec) else role_groups(spec, name, 0, 0)
    ours = [d for d in index.get(("owner", _uid(obj)), ()) if d["metadata"].get("namespace") == namespace]
    extra = leftovers(ours, wanted)
    deployments: dict[str, JsonObject | None] = {}
    for group in [*wanted, *extra]:
        if group.target is not None:
            deployments[group.name] = await _scale_target(ctx, namespace, group, status)
            continue
        found = None if fresh else next(iter(index.get(("name", namespace, group.name), ())), None)
        if found is None and (fresh or not group.owned):
            found = await _get_or_none(ctx.client, deployment_path(namespace, group.name))
        deployments[group.name] = found
    adopt = _judge(ctx.cluster, obj, wanted, deployments)
    live = [
        g
        for g in extra
        if deployments[g.name] is not None and ownership.controlled_by(deployments[g.name] or {}, _uid(obj))
    ]
    current = [replace(g, replicas=observe.asked(deployments[g.name])) for g in [*wanted, *live]]
    return _Seen(current, {g.name: deployments[g.name] for g in current}, adopt)


async def _scale_target(
    ctx: Context, namespace: str, group: GroupPlan, status: PDServingGroupStatus
) -> JsonObject | None:
    """A ``scaleTargetRef``'s Deployment-shaped view (:mod:`~heteroscale.operator.scaletarget`),
    always from the API server (no index keeps kinds the admin chooses), with the replicas this
    operator last wrote to it from the group's status; refused when its pods cannot be told."""
    assert group.target is not None
    field = f"spec.roles.{group.role.value}.scaleTargetRef"
    written = next((g.written_replicas for g in status.groups if g.name == group.name), None)
    try:
        kind = ctx.config.scale_target_kind(group.target.api_version, group.target.kind, field)
        return await scaletarget.read(ctx.client, kind, namespace, group.name, written)
    except ValueError as exc:
        raise Refusal(
            Reason.NOT_ALLOWED, f"{exc}; the operator does not scale what it cannot tell the pods of"
        ) from None


def _conflict_key(group: GroupPlan) -> str:
    return group.name if group.target is None else target_key(group.target.kind, group.name)


def _uid(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("uid", ""))


def _judge(
    cluster: Cluster, obj: Mapping[str, Any], wanted: Sequence[GroupPlan], deployments: Mapping[str, Any]
) -> list[JsonObject]:
    """Refuse unless every Deployment the group wants is its own to act on; the ones to adopt first."""
    meta = obj.get("metadata", {})
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    names = [_conflict_key(g) for g in wanted]
    found = conflicting_autoscalers(cluster.autoscalers, namespace, names)
    found += conflicting_groups(cluster.references, namespace, [_conflict_key(g) for g in wanted if not g.owned], meta)
    if found:
        why = (
            "; ".join(found) + ". Two autoscalers on one Deployment fight: remove the other one or this PDServingGroup"
        )
        raise Refusal(Reason.CONFLICT, why)
    missing = [g.name for g in wanted if not g.owned and g.target is None and deployments[g.name] is None]
    if missing:
        raise Refusal(Reason.DEPLOYMENT_MISSING, f"referenced Deployment(s) {missing} not found in {namespace}")
    gone = [_conflict_key(g) for g in wanted if g.target is not None and deployments[g.name] is None]
    if gone:
        raise Refusal(
            Reason.DEPLOYMENT_MISSING, f"scaleTargetRef target(s) {gone} (or their /scale) not found in {namespace}"
        )
    adopt = []
    for group in wanted:
        deployment = deployments[group.name]
        if deployment is None:
            continue
        verdict = ownership.judge(deployment, owned=group.owned, group_uid=_uid(obj), group_name=name)
        if verdict.claim is ownership.Claim.REFUSED:
            reason = (
                Reason.NOT_OWNED if group.owned and ownership.controller_of(deployment) is None else Reason.CONFLICT
            )
            raise Refusal(reason, verdict.why)
        if verdict.claim is ownership.Claim.ADOPT:
            adopt.append(deployment)
    return adopt


async def _pods_stuck(ctx: Context, spec: PDServingGroupSpec, seen: _Seen, now: float) -> _Seen:
    """The stuck pods of each Deployment that has pods asked for but not ready. Only those are
    listed (pods and ReplicaSets, by the Deployment's selector and ownership): a group whose pods
    are all ready costs no request. The pod watch cannot answer: it keeps only pods bound to a
    node, and an Unschedulable pod is not."""
    timeout = spec.behavior.pod_start_timeout_seconds
    stuck: dict[str, int] = {}
    for name, deployment in seen.deployments.items():
        if deployment is None:
            continue
        namespace = str(deployment["metadata"].get("namespace", ""))
        if observe.ready(deployment) >= observe.asked(deployment):
            ctx.not_ready_since.pop((namespace, name), None)
            continue
        # A pod is stuck once it has been not ready for the timeout, so its Deployment has been
        # short of ready pods at least that long: until then no listing (during a ramp every
        # scaling Deployment is short for a minute or two). After a restart this waits one timeout.
        if now - ctx.not_ready_since.setdefault((namespace, name), now) >= timeout:
            stuck[name] = startup.stuck(await pods_of(ctx.client, namespace, deployment), now, timeout)
    return replace(seen, stuck=stuck)


async def _signals(ctx: Context, spec: PDServingGroupSpec, grant: access.Access, seen: _Seen, now: float) -> Signals:
    """The group's readings from its admin-configured Prometheus (blocking reads in a thread)."""
    by_role = {
        role: [g.name for g in seen.current if g.role is role and seen.deployments[g.name] is not None] for role in Role
    }
    reader = ctx.reader(grant)
    return await asyncio.to_thread(reader.read, spec, grant.scope, by_role[Role.DECODE], by_role[Role.PREFILL], now)


@dataclass
class _Plan:
    """What one tick will do, decided before anything is written."""

    seen: _Seen
    observation: Observation
    decision: Decision
    state: PolicyState
    """The policy state to carry (the old one while a drain waits: its scale-in is not done yet)."""
    pending: Drain | None
    """The drain in the status; None when there is none or it is cancelled now."""
    cancel: Drain | None
    """A drain to cancel: the policy now wants more, or cannot trust its signal."""
    finish: bool
    """The pending drain's period is over: lower the replicas now."""
    targets: list[GroupPlan]
    kept: set[str]
    """Deployments the targets keep (the others go to 0 and are deleted once drained)."""
    adopt: list[JsonObject]
    unschedulable: str | None
    render: Callable[[GroupPlan], PodTemplate | None]
    """The pod template of a target (the tick's :class:`TemplateBook`)."""

    def writes(self) -> bool:
        """Whether executing this plan writes anything (Enforce); a steady tick writes nothing."""
        if self.adopt or self.cancel is not None or self.finish:
            return True
        if self.pending is not None:
            return False
        return bool(self._written)

    def creates(self) -> bool:
        """Whether the plan creates a Deployment (one the index does not show)."""
        return any(g.replicas > 0 and self.seen.deployments.get(g.name) is None for g in self.targets)

    def guarded(self) -> bool:
        """Whether every write of this plan can be made conditional on what the index shows: it
        only creates Deployments and grows or re-templates them (no drain, scale-in, delete,
        adoption or /scale target), each with the ``resourceVersion`` the index saw."""
        if self.adopt or self.cancel is not None or self.pending is not None:
            return False
        for group in self.targets:
            deployment = self.seen.deployments.get(group.name)
            if deployment is None or group.name not in self._written:
                continue
            if scaletarget.is_view(deployment) or not deployment.get("metadata", {}).get("resourceVersion"):
                return False
            if group.replicas < observe.asked(deployment):
                return False
        return True

    @cached_property
    def templates(self) -> dict[str, PodTemplate | None]:
        """Each target's pod template, by name: the check for writes and the writes use the same."""
        return {group.name: self.render(group) for group in self.targets}

    @cached_property
    def _written(self) -> set[str]:
        """The targets this plan writes to."""
        return {group.name for group in self.targets if self._writes_to(group)}

    def _writes_to(self, group: GroupPlan) -> bool:
        deployment = self.seen.deployments.get(group.name)
        if deployment is None:
            return group.owned and group.replicas > 0  # created
        if manifests.group_patch(deployment, group, self.templates[group.name]):
            return True  # scaled, or a new pod template
        return group.owned and group.name not in self.kept and observe.asked(deployment) == 0  # deleted


async def _plan(
    ctx: Context,
    obj: Mapping[str, Any],
    spec: PDServingGroupSpec,
    grant: access.Access,
    status: PDServingGroupStatus,
    seen: _Seen,
    signals: Signals,
    now: float,
    *,
    trust_index: bool = False,
) -> _Plan:
    """Observe, decide and place (steps 4-5), writing nothing. A Deployment the plan names for the
    first time is read and judged here, so a name clash is refused before any write."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    enforce = spec.mode is Mode.ENFORCE

    def render(group: GroupPlan) -> PodTemplate | None:
        return ctx.templates.template((namespace, name), spec, group)

    current, deployments = seen.current, dict(seen.deployments)
    observation = Observation(
        decode_tps=signals.decode_tps,
        metric_age_seconds=signals.metric_age_seconds,
        prefill=observe.pool(Role.PREFILL, current, deployments, seen.stuck),
        decode=observe.pool(Role.DECODE, current, deployments, seen.stuck),
        tbt_seconds=signals.tbt_seconds,
        decode_reporting=signals.decode_reporting,
        ttft_seconds=signals.ttft_seconds,
        prefill_queued=signals.prefill_queued,
        prefill_rps=signals.prefill_rps,
        prefill_missed_tps=signals.prefill_missed_tps,
        activation=signals.activation,
        manual_edit=observe.manual_edit(current, deployments),
    )
    decision = decide(spec, observation, status.policy_state, now)
    state, pending, cancel = decision.state, status.drain, None
    if pending is not None and (decision.held or _wants_more(decision, observation)):
        # Load came back, latency degraded, or the signal cannot be trusted to confirm the scale-in:
        # the drained pods still run, so serving them again costs no cold start.
        pending, cancel = None, pending
    unschedulable: str | None = None
    kept: set[str] = set()
    adopt = list(seen.adopt)
    if pending is not None:
        # The policy already chose this scale-in, and placement planned it: both wait for the drain.
        state = status.policy_state
        targets = _with_drain_targets(current, pending)
        finish = now >= pending.started + spec.behavior.scale_down.drain_seconds
        plan = _Plan(seen, observation, decision, state, pending, None, finish, targets, kept, adopt, None, render)
        return replace(plan, seen=replace(seen, deployments=deployments))
    prefill = _starting(Role.PREFILL, decision.prefill, current, deployments, spec)
    decode = _starting(Role.DECODE, decision.decode, current, deployments, spec)
    if uses_placement(spec):
        try:
            inventory = ctx.cluster.inventory(spec.topology)
        except ValueError as exc:  # a node with a GPU quantity that is not a whole number
            raise Refusal(Reason.UNSCHEDULABLE, f"cannot read the GPU inventory: {exc}") from None
        groups_now = [status_of_group(g, deployments) for g in current]
        request = PlanRequest(name, grant.placed_spec(spec), RoleTargets(prefill, decode), groups_now, namespace)
        book = ctx.cluster.plans
        placed = await (book.plan if enforce else book.preview)(request, inventory)
        planned = from_plan(placed)
        kept = {g.name for g in planned}
        # Groups that leave the plan go to 0 (drained like any scale-in), then are deleted.
        targets = planned + [replace(g, replicas=0) for g in current if g.name not in kept]
        unschedulable = "; ".join(f.message for f in placed.unschedulable) or None
    else:
        targets = role_groups(spec, name, prefill, decode)
        kept = {g.name for g in targets}
        targets += [replace(g, replicas=0) for g in current if g.name not in kept]
    # A Deployment the plan names for the first time may exist already. One the group may take
    # (ours after a lost status write, or annotated for adoption) keeps its replicas on this tick:
    # the decision did not count it, so it cannot scale it in.
    fresh = [g for g in targets if g.name not in deployments and g.replicas > 0]
    for group in fresh:
        indexed = next(iter(ctx.cluster.deployments.get(("name", namespace, group.name), ())), None)
        if indexed is None and not trust_index:
            indexed = await _get_or_none(ctx.client, deployment_path(namespace, group.name))
        deployments[group.name] = indexed
    adopt += _judge(ctx.cluster, obj, fresh, deployments)
    names = {g.name for g in fresh}
    targets = [
        *_never_lower([g for g in targets if g.name in names], deployments),
        *[g for g in targets if g.name not in names],
    ]
    if decision.held:
        targets = _never_lower(targets, deployments)
    seen = replace(seen, deployments=deployments)
    return _Plan(seen, observation, decision, state, None, cancel, False, targets, kept, adopt, unschedulable, render)


@dataclass
class _Done:
    """What a tick did, for its status."""

    plan: _Plan
    targets: list[GroupPlan]
    pending: Drain | None


async def _execute(
    ctx: Context,
    obj: Mapping[str, Any],
    spec: PDServingGroupSpec,
    plan: _Plan,
    emit: Emit,
    now: float,
    record_drain: Callable[[Drain], Awaitable[None]],
    *,
    guarded: bool = False,
) -> _Done:
    """Step 6: the plan's writes (Enforce only), all through :class:`Apply` (``guarded``: see
    :meth:`_Plan.guarded`); a drain it starts is written to the status (``record_drain``) before
    any pod leaves serving."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    if spec.mode is not Mode.ENFORCE:
        return _Done(plan, plan.targets, plan.pending)
    deployments = plan.seen.deployments
    apply = Apply(
        ctx.client, ctx.metrics, obj, namespace, name, spec, plan.seen.current, deployments, emit, now, guarded
    )
    for deployment in plan.adopt:
        await apply.adopt(deployment)
    if plan.cancel is not None:
        await apply.cancel_drain(plan.cancel, plan.decision.message)
    if plan.pending is not None:
        if plan.finish:
            return _Done(plan, plan.targets, await apply.finish_drain(plan.pending))
        return _Done(plan, plan.targets, plan.pending)
    pending = await apply.decision(plan.decision, plan.targets, plan.templates, plan.observation, record_drain)
    targets = plan.targets if pending is not None else await apply.remove_emptied(plan.targets, plan.kept)
    return _Done(plan, targets, pending)


async def _record(
    ctx: Context,
    obj: Mapping[str, Any],
    spec: PDServingGroupSpec,
    status: PDServingGroupStatus,
    out: _Status,
    done: _Done,
    signals: Signals,
    now: float,
) -> None:
    """The tick in the status: readings, targets, groups, the decision, conditions, the drain."""
    namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
    plan, targets, deployments = done.plan, done.targets, done.plan.seen.deployments
    decision, observation = plan.decision, plan.observation
    ctx.metrics.observe_decision(namespace, name, spec, observation, decision, signals)
    if signals.problem:
        ctx.metrics.count_fetch_error(namespace, name, signals.problem)
    groups = [status_of_group(g, deployments, g.replicas) for g in targets]
    ctx.metrics.observe_groups(namespace, name, groups)
    not_ready = [
        f"{g.name} {observe.ready(d)}/{observe.asked(d)} ready"
        for g in targets
        for d in [deployments.get(g.name)]
        if g.replicas and (d is None or observe.ready(d) < observe.asked(d))
    ]
    before = status.conditions
    conds = conditions.decided(
        before, spec, decision, "; ".join(not_ready) or None, plan.unschedulable, now, out.generation
    )
    conds = conditions.fleet(
        conds, spec, decision, plan.state.manual_hold, _stuck_text(spec, observation), now, out.generation
    )
    _report_fleet(out, before, conds, observation)
    if plan.unschedulable and conditions.changed(before, conds, ConditionType.READY):
        out.emit("Warning", Reason.UNSCHEDULABLE, plan.unschedulable)
    await out.write(
        {
            "decodeTPS": _finite(signals.decode_tps),
            "metricAgeSeconds": _finite(signals.metric_age_seconds),
            "desired": counts(targets),
            "current": RoleCounts(prefill=observation.prefill.ready, decode=observation.decode.ready).model_dump(
                by_alias=True
            ),
            "groups": [g.model_dump(by_alias=True, mode="json") for g in groups],
            "lastDecision": LastDecision(
                reason=decision.reason, message=decision.message, time=conditions.rfc3339(now)
            ).model_dump(by_alias=True, mode="json"),
            "policyState": plan.state.model_dump(by_alias=True, mode="json"),
            "conditions": _dump(conds),
            "drain": done.pending.model_dump(by_alias=True, mode="json") if done.pending else None,
            "schedule": decision.schedule.model_dump(by_alias=True, mode="json") if decision.schedule else None,
        }
    )


def _stuck_text(spec: PDServingGroupSpec, observation: Observation) -> str | None:
    """What the Ready condition and the PodsStuck Event say about stuck pods; None when none is."""
    prefill, decode = observation.prefill.stuck, observation.decode.stuck
    if not prefill and not decode:
        return None
    return (
        f"{prefill} prefill and {decode} decode pod(s) not ready {spec.behavior.pod_start_timeout_seconds}s "
        "(behavior.podStartTimeoutSeconds) after their creation: stuck; they no longer block scale-in "
        "and count as missing for the ratio. See the pods' events (kubectl describe pod)"
    )


def _report_fleet(out: _Status, before: Sequence[Any], after: Sequence[Any], observation: Observation) -> None:
    """Events for stuck pods (when they appear or their count changes) and for a manual edit (on
    the tick that sees it: the write that follows records the edited count, so it is seen once)."""
    ready = next((c for c in after if c.type == ConditionType.READY), None)
    if ready is not None and ready.reason == Reason.PODS_STUCK and conditions.changed(before, after, ready.type):
        out.emit("Warning", Reason.PODS_STUCK, ready.message)
    edited = manual.edited_text(observation)
    if edited:
        hold = next((c for c in after if c.type == ConditionType.MANUAL_OVERRIDE and c.status == "True"), None)
        why = hold.message if hold is not None else "behavior.manualHoldSeconds is 0: the policy's rules apply to it"
        out.emit("Normal", Reason.MANUAL_OVERRIDE, f"{edited} on a managed Deployment; {why}")


def _never_lower(targets: Sequence[GroupPlan], deployments: Mapping[str, Any]) -> list[GroupPlan]:
    """On a hold (missing, stale, invalid or partial metric, pods starting) no Deployment goes
    below what it asks for now, whatever placement or a repair wanted."""
    return [replace(g, replicas=max(g.replicas, observe.asked(deployments.get(g.name)))) for g in targets]


def _starting(
    role: Role, wanted: int, current: Sequence[GroupPlan], deployments: Mapping[str, Any], spec: PDServingGroupSpec
) -> int:
    """A role with no Deployment yet starts with at least the minimum pair that keeps the ratio: the
    policy holds while it has nothing to read, and holding at zero would never start the group."""
    if any(g.role is role and deployments.get(g.name) is not None for g in current):
        return wanted
    prefill, decode = manifests.initial_replicas(spec)
    return max(wanted, prefill if role is Role.PREFILL else decode)


def status_of_group(group: GroupPlan, deployments: Mapping[str, Any], desired: int | None = None) -> GroupStatus:
    """A group as the status shows it: ``desired`` (default: what its Deployment asks for now) and
    the replicas ready."""
    deployment = deployments.get(group.name)
    return GroupStatus(
        name=group.name,
        role=group.role,
        gpu_type=group.gpu_type,
        domain=group.domain,
        desired=observe.asked(deployment) if desired is None else desired,
        current=observe.ready(deployment),
        owned=group.owned,
        # A /scale target's record of the operator's own writes (a Deployment keeps it in an annotation).
        written_replicas=observe.last_written(deployment) if scaletarget.is_view(deployment) else None,
    )


def _wants_more(decision: Decision, observation: Observation) -> bool:
    """The policy now wants more than is running (load came back, latency degraded)."""
    return decision.prefill > observation.prefill.replicas or decision.decode > observation.decode.replicas


def _with_drain_targets(targets: Sequence[GroupPlan], pending: Drain) -> list[GroupPlan]:
    by_name = {g.name: g.replicas for g in pending.groups}
    return [replace(g, replicas=by_name.get(g.name, g.replicas)) for g in targets]


def _dump(conds: Sequence[Any]) -> list[dict[str, Any]]:
    return [c.model_dump(by_alias=True, mode="json") for c in conds]


def seed_request(obj: Mapping[str, Any], config: OperatorConfig) -> PlanRequest | None:
    """What a placed Enforce group holds according to its status: its owned groups at the replicas
    the last tick wrote, as targets and as current groups. None for any other group, one being
    deleted (its loop has stopped or is stopping, and would not drop it again), or a spec that does
    not validate or asks for what its namespace may not have (its tick reports that)."""
    metadata = obj.get("metadata", {})
    if metadata.get("deletionTimestamp"):
        return None
    namespace = metadata.get("namespace", "")
    try:
        spec = PDServingGroupSpec.model_validate(obj.get("spec") or {})
        grant = access.resolve(config, spec, namespace)
    except (ValidationError, ValueError):
        return None
    groups = [g for g in _parse_status(obj.get("status")).groups if g.owned]
    if spec.mode is not Mode.ENFORCE or not uses_placement(spec) or not groups:
        return None
    targets = RoleTargets(*(sum(g.desired for g in groups if g.role is role) for role in (Role.PREFILL, Role.DECODE)))
    return PlanRequest(metadata.get("name", ""), grant.placed_spec(spec), targets, groups, namespace)


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
