"""The writes of one Enforce tick: create, scale, drain, restore and delete Deployments and Pods.

Every write goes through :class:`Apply`, and only to objects the tick has already judged the
group's (:mod:`heteroscale.operator.ownership`): ``deployments`` holds exactly those. A create
that finds a Deployment of that name already there takes it only if it is the group's (an earlier
attempt that timed out), and otherwise stops the tick with :class:`Refusal`.

A *guarded* Apply writes what the tick read from the watch without reading it again: each patch
names the ``resourceVersion`` the watch saw, and a create that finds the name taken, or a patch
that finds the Deployment changed or gone, stops with :class:`Stale` instead of acting on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from heteroscale.api.crd import GROUP, PLURAL, VERSION
from heteroscale.api.enums import Reason, Role
from heteroscale.api.labels import LABEL_SERVING, NOT_SERVING
from heteroscale.api.spec import PDServingGroupSpec
from heteroscale.api.status import Drain, DrainGroup
from heteroscale.operator import drain, manifests, observe, ownership, scaletarget
from heteroscale.operator.kube import AlreadyExists, Conflict, JsonObject, KubeClient, NotFound
from heteroscale.operator.naming import GroupPlan
from heteroscale.operator.signals import MetricsSink
from heteroscale.policy import Decision, Observation

#: ``emit(type, reason, message)`` posts a Kubernetes Event about the PDServingGroup.
Emit = Callable[[str, str, str], None]


class Refusal(Exception):
    """The tick must not act: the reason and message go to a condition and an Event."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Stale(Exception):
    """A guarded write found a Deployment other than the watch showed it: read it again, plan again."""


def cr_path(namespace: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"


def deployment_path(namespace: str, name: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments" + (f"/{name}" if name else "")


async def pods_of(client: KubeClient, namespace: str, deployment: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The Deployment's live pods, by ownership and its whole selector (never by labels alone);
    a /scale target's through :func:`heteroscale.operator.scaletarget.pods_of`."""
    if scaletarget.is_view(deployment):
        return await scaletarget.pods_of(client, namespace, deployment)
    query = ownership.selector_string(deployment.get("spec", {}).get("selector") or {})
    if not query:
        return []
    pods = await client.list(f"/api/v1/namespaces/{namespace}/pods", label_selector=query)
    sets = await client.list(f"/apis/apps/v1/namespaces/{namespace}/replicasets", label_selector=query)
    return ownership.pods_of(deployment, sets, pods)


def counts(groups: Sequence[GroupPlan]) -> dict[str, int]:
    """Replicas per role."""
    return {role.value: sum(g.replicas for g in groups if g.role is role) for role in Role}


@dataclass
class Apply:
    """The writes of one Enforce tick."""

    client: KubeClient
    metrics: MetricsSink
    pdsg: Mapping[str, Any]
    namespace: str
    name: str
    spec: PDServingGroupSpec
    current: Sequence[GroupPlan]
    deployments: dict[str, JsonObject | None]
    """The group's Deployments by name (None: not created yet), each judged the group's."""
    emit: Emit
    now: float
    guarded: bool = False
    """Write from the watch's view, each write conditional on it (see the module docstring)."""

    @property
    def _uid(self) -> str:
        return str(self.pdsg["metadata"]["uid"])

    async def _patch_deployment(self, deployment: str, patch: JsonObject) -> None:
        current = self.deployments.get(deployment)
        if scaletarget.is_view(current):
            assert current is not None  # for mypy: is_view(None) is False
            self.deployments[deployment] = await scaletarget.patch(self.client, current, patch)
            return
        path = deployment_path(self.namespace, deployment)
        if not self.guarded:
            self.deployments[deployment] = await self.client.patch(path, patch)
            return
        version = (current or {}).get("metadata", {}).get("resourceVersion")
        try:
            self.deployments[deployment] = await self.client.patch(path, patch, resource_version=version)
        except (Conflict, NotFound) as exc:
            raise Stale(f"Deployment {deployment} changed since the watch showed it: {exc}") from None

    async def adopt(self, deployment: JsonObject) -> None:
        """Take over a Deployment whose owner annotated it for this group."""
        name = deployment["metadata"]["name"]
        patch = ownership.adopt_patch(deployment, manifests.owner_reference(self.pdsg))
        await self._patch_deployment(name, patch)
        self.emit("Normal", Reason.ADOPTED, f"adopted Deployment {name}: its owner annotated it for this group")

    async def _create(self, group: GroupPlan, template: manifests.PodTemplate) -> None:
        manifest = manifests.deployment_manifest(self.pdsg, group, template)
        try:
            created = await self.client.create(deployment_path(self.namespace), manifest)
        except AlreadyExists:
            if self.guarded:
                raise Stale(f"Deployment {group.name} exists, though the watch has not shown it") from None
            # Ours when an earlier attempt timed out after the server created it; anyone else's is
            # not taken.
            created = await self.client.get(deployment_path(self.namespace, group.name))
            verdict = ownership.judge(created, owned=True, group_uid=self._uid, group_name=self.name)
            if verdict.claim is not ownership.Claim.OURS:
                raise Refusal(Reason.NOT_OWNED, verdict.why) from None
            patch = manifests.group_patch(created, group, template)
            if patch:
                created = await self.client.patch(deployment_path(self.namespace, group.name), patch)
        self.deployments[group.name] = created

    async def remove_emptied(self, targets: Sequence[GroupPlan], planned: set[str]) -> list[GroupPlan]:
        """Delete the owned Deployments of groups that left the plan once they are at 0 replicas
        (after their drain); the targets without them. Referenced Deployments are never deleted."""
        kept, deleted = [], []
        for group in targets:
            deployment = self.deployments.get(group.name)
            if not group.owned or group.name in planned or observe.asked(deployment) > 0:
                kept.append(group)
                continue
            if deployment is not None:
                with contextlib.suppress(NotFound):  # Already gone: what we wanted.
                    await self.client.delete(deployment_path(self.namespace, group.name))
                self.deployments[group.name] = None
                deleted.append(group.name)
        if deleted:
            self.emit(
                "Normal",
                Reason.GROUP_REMOVED,
                f"deleted Deployments {', '.join(deleted)}: the group no longer uses them",
            )
        return kept

    async def _patch_pods(self, pods: Sequence[str], patch: JsonObject) -> None:
        for pod in pods:
            try:
                await self.client.patch(f"/api/v1/namespaces/{self.namespace}/pods/{pod}", patch)
            except NotFound:
                continue  # Already gone: nothing left to drain or restore.

    def _count(self, before: Mapping[str, int], after: Mapping[str, int]) -> None:
        for role in Role:
            if after[role.value] != before[role.value]:
                direction = "up" if after[role.value] > before[role.value] else "down"
                self.metrics.count_scale_event(self.namespace, self.name, role.value, direction)

    async def decision(
        self,
        decision: Decision,
        targets: Sequence[GroupPlan],
        templates: Mapping[str, manifests.PodTemplate | None],
        observation: Observation,
        record: Callable[[Drain], Awaitable[None]],
    ) -> Drain | None:
        """Scale-ups and affinity now; scale-ins start a drain (or go at once with no pod to drain).
        A drain is ``record``-ed (in the status) before any pod leaves serving: a tick cut short
        between the two then leaves a drain whose pods still serve, which its finish puts right
        (:meth:`finish_drain`), never pods out of serving that no status remembers. ``templates``: each
        target's pod template by name."""
        before = {Role.PREFILL.value: observation.prefill.replicas, Role.DECODE.value: observation.decode.replicas}
        draining: list[DrainGroup] = []
        for group in targets:
            template = templates[group.name]
            current = self.deployments.get(group.name)
            if current is None:
                if group.owned and template is not None and group.replicas > 0:
                    await self._create(group, template)
                continue
            shrink = observe.asked(current) - group.replicas
            chosen = await self._choose(current, shrink) if shrink > 0 else []
            if chosen:
                draining.append(DrainGroup(name=group.name, replicas=group.replicas, pods=chosen))
                continue
            patch = manifests.group_patch(current, group, template)
            if patch:
                await self._patch_deployment(group.name, patch)
        after = counts(targets)
        if after == before:
            return None
        if draining:
            started = Drain(started=self.now, groups=draining, reason=decision.reason, message=decision.message)
            await record(started)
            leaving = [p for d in draining for p in d.pods]
            await self._patch_pods(leaving, drain.out_of_serving_patch())
            self.emit("Normal", decision.reason, self._draining(decision.message, leaving))
            return started
        self._count(before, after)
        self.emit("Normal", decision.reason, decision.message)
        return None

    async def _choose(self, deployment: Mapping[str, Any], count: int) -> list[str]:
        """Pods to take out of serving, or none when the scale-in cannot be soft: no drain period, or
        the Deployment's selector uses the serving label (flipping it would orphan the pod). Pods are
        the Deployment's by ownership (Pod → ReplicaSet → Deployment) and its whole selector."""
        selector = deployment.get("spec", {}).get("selector") or {}
        match = selector.get("matchLabels") or {}
        uses_serving = LABEL_SERVING in match or any(
            e.get("key") == LABEL_SERVING for e in selector.get("matchExpressions") or []
        )
        if self.spec.behavior.scale_down.drain_seconds == 0 or uses_serving:
            return []
        pods = await self._pods_of(deployment)
        ordered = scaletarget.leaving(pods, count)
        if ordered is not None:
            return ordered  # A StatefulSet's pods: the highest ordinals leave, whatever their cost.
        serving = [p for p in pods if (p["metadata"].get("labels") or {}).get(LABEL_SERVING) != NOT_SERVING]
        # The ReplicaSet controller removes pods that are not ready first; only ready ones serve,
        # so only the rest of the cut needs draining.
        not_ready = observe.asked(deployment) - observe.ready(deployment)
        return drain.choose_pods_to_drain(serving, count - max(0, not_ready))

    async def _pods_of(self, deployment: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return await pods_of(self.client, self.namespace, deployment)

    async def finish_drain(self, pending: Drain) -> Drain | None:
        """Lower the replicas: the drained pods carry the lowest deletion cost, so exactly they go.
        A drained pod of the group's that is still in serving (the tick that started the drain was
        cut short after recording it) leaves serving now, and the drain starts again from now
        instead: returned, with nothing lowered."""
        late = [
            p["metadata"]["name"]
            for p in await self._listed_pods(pending)
            if (p["metadata"].get("labels") or {}).get(LABEL_SERVING) != NOT_SERVING
        ]
        if late:
            await self._patch_pods(late, drain.out_of_serving_patch())
            self.emit("Normal", pending.reason, self._draining(pending.message, late) + ": they had not left serving")
            return pending.model_copy(update={"started": self.now})
        before = {role.value: 0 for role in Role}
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
                await self._patch_deployment(group.name, manifests.replicas_patch(group.replicas))
        self._count(before, after)
        pods = ", ".join(p for g in pending.groups for p in g.pods)
        self.emit("Normal", Reason.DRAIN_COMPLETE, f"removed {pods} after the drain period; {pending.message}")
        return None

    async def _listed_pods(self, pending: Drain) -> list[Mapping[str, Any]]:
        """The drain's pods, in its order, that are still their Deployment's (by ownership): pod
        names come from the status, which others may write, so no other pod is ever touched."""
        found: list[Mapping[str, Any]] = []
        for group in pending.groups:
            deployment = self.deployments.get(group.name)
            if deployment is None or not group.pods:
                continue
            ours = {p["metadata"]["name"]: p for p in await self._pods_of(deployment)}
            found += [ours[name] for name in group.pods if name in ours]
        return found

    def _draining(self, message: str, pods: Sequence[str]) -> str:
        seconds = self.spec.behavior.scale_down.drain_seconds
        return f"{message}; draining {', '.join(pods)} for {seconds}s first"

    async def cancel_drain(self, pending: Drain, why: str) -> None:
        """Put the drained pods back in serving (they never stopped: no cold start). The pod names
        come from the status; only those that are still the Deployment's are touched."""
        listed = [p["metadata"]["name"] for p in await self._listed_pods(pending)]
        await self._patch_pods(listed, drain.back_in_serving_patch())
        pods = ", ".join(p for g in pending.groups for p in g.pods)
        self.emit("Normal", Reason.DRAIN_CANCELLED, f"{pods} back in serving: {why}")
