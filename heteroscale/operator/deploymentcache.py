"""Every Deployment a tick may read, kept in memory from one list and watch of the operator's own.

Ticks read their group's Deployments from here, never per tick from the API server. The watch is
the operator's own rather than a kopf index because of its volume: every scale action is followed
by several Deployment events (the write itself, then the ReplicaSet controller's status updates as
pods start and become ready), and kopf runs each event of an indexed resource through its
per-object queue, worker and handler invocation, about 1 ms of CPU each on this project's machine
against the tens of microseconds that parsing and trimming the object costs (measured: 2,000
status updates of 2,000 indexed Deployments, 0.96-0.99 ms of operator CPU per event). With a
thousand groups scaling at once that was several CPU-seconds of one event loop that every tick
shares. Nodes, Pods and the groups themselves stay with kopf: they are its handlers' business.

:class:`DeploymentStore` is the pure part (what an event does to the cache);
:class:`DeploymentWatch` lists, then watches from the list's ``resourceVersion``, lists again when
the server says that version is gone (410), and reconnects with backoff after errors, as kopf's
own watches do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import aiohttp
import kopf

from heteroscale.operator import indexes
from heteroscale.operator.kube import ApiError, JsonObject, KubeClient

logger = logging.getLogger(__name__)

#: (namespace, name) of a Deployment.
Name = tuple[str, str]
#: A key a Deployment is found by (:func:`~heteroscale.operator.indexes.deployment_keys`).
Key = tuple[str, ...]


class DeploymentStore(Mapping[Key, Sequence[JsonObject]]):
    """Every Deployment as :func:`~heteroscale.operator.indexes.deployment` trims it, by
    ``("name", namespace, name)`` and by ``("owner", controller uid)``: a mapping from each key to
    the Deployments found by it, as a kopf index reads."""

    def __init__(self) -> None:
        self._objects: dict[Name, tuple[list[Key], JsonObject]] = {}
        self._keys: dict[Key, dict[Name, JsonObject]] = {}

    def __getitem__(self, key: Key) -> Sequence[JsonObject]:
        return list(self._keys[key].values())

    def __iter__(self) -> Iterator[Key]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def put(self, obj: Mapping[str, Any]) -> None:
        """Keep ``obj`` (added or changed), found by its keys of now only."""
        name = _name(obj)
        self._forget(name)
        keys, trimmed = indexes.deployment_keys(obj), indexes.deployment(obj)
        self._objects[name] = (keys, trimmed)
        for key in keys:
            self._keys.setdefault(key, {})[name] = trimmed

    def remove(self, obj: Mapping[str, Any]) -> None:
        self._forget(_name(obj))

    def replace(self, namespace: str | None, objs: Sequence[Mapping[str, Any]]) -> None:
        """What a fresh list of ``namespace`` (None: every namespace) holds, and nothing else there:
        what was deleted while no watch ran is gone."""
        for name in [n for n in self._objects if namespace is None or n[0] == namespace]:
            self._forget(name)
        for obj in objs:
            self.put(obj)

    def apply(self, kind: str, obj: Mapping[str, Any]) -> None:
        """One watch event: ADDED and MODIFIED keep the object, DELETED forgets it."""
        if kind == "DELETED":
            self.remove(obj)
        elif kind in ("ADDED", "MODIFIED"):
            self.put(obj)

    def _forget(self, name: Name) -> None:
        keys, _ = self._objects.pop(name, ([], {}))
        for key in keys:
            found = self._keys.get(key, {})
            found.pop(name, None)
            if not found:
                self._keys.pop(key, None)


def _name(obj: Mapping[str, Any]) -> Name:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace", "")), str(meta.get("name", "")))


class Gone(Exception):
    """The watch's ``resourceVersion`` is too old (410): list again."""


class DeploymentWatch:
    """Keeps ``store`` current: one list-then-watch per namespace served (one for the whole cluster
    without namespaces). ``synced`` is set once every one of them has listed.

    It talks through a client of its own, without a limit on connections: each watch holds one
    open for minutes, and on the ticks' client (64 connections) a replica serving sixty-odd
    namespaces would leave the ticks none. ``connection`` returns the credentials kopf logged in
    with; when they change (a new token), the next list or watch uses the new ones."""

    def __init__(
        self,
        connection: Callable[[], kopf.ConnectionInfo],
        store: DeploymentStore,
        namespaces: Sequence[str] = (),
        *,
        server_timeout_seconds: int = 300,
        retry_seconds: float = 1.0,
        max_retry_seconds: float = 30.0,
    ) -> None:
        self.connection = connection
        self._client: KubeClient | None = None
        self._retired: list[KubeClient] = []
        self.store = store
        self.namespaces = list(namespaces)
        self.server_timeout_seconds = server_timeout_seconds
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.synced = asyncio.Event()
        self._listed: set[str | None] = set()

    async def run(self) -> None:
        """Follow every namespace served until cancelled."""
        scopes: list[str | None] = [*self.namespaces] or [None]
        try:
            await asyncio.gather(*(self._follow(scope, len(scopes)) for scope in scopes))
        finally:
            for client in [*self._retired, *([self._client] if self._client else [])]:
                await client.close()

    def client(self) -> KubeClient:
        """The watch's own client, for the credentials of now."""
        info = self.connection()
        if self._client is None or self._client.connection is not info:
            # The old one's open watches go on until they reconnect: it is closed with the rest.
            if self._client is not None:
                self._retired.append(self._client)
            self._client = KubeClient(info, connections=0)
        return self._client

    async def _follow(self, namespace: str | None, scopes: int) -> None:
        delay = self.retry_seconds
        version: str | None = None
        while True:
            try:
                if version is None:
                    version = await self._list(namespace)
                    self._listed.add(namespace)
                    if len(self._listed) == scopes:
                        self.synced.set()
                version = await self._watch(namespace, version)
                delay = self.retry_seconds
            except Gone:
                logger.debug("Deployments in %s: the watch's version is gone; listing again", namespace or "all")
                version = None
            except (ApiError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                # 403 (RBAC), an API server restarting, a dropped connection: say so, then try again,
                # from the last version seen (a version gone meanwhile is answered with 410).
                where = namespace or "all namespaces"
                logger.warning("watching Deployments in %s failed, retrying in %.0fs: %s", where, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_seconds)

    def _path(self, namespace: str | None) -> str:
        return f"/apis/apps/v1/namespaces/{namespace}/deployments" if namespace else "/apis/apps/v1/deployments"

    async def _list(self, namespace: str | None) -> str:
        """List every Deployment (in pages), replace what the store held there, and return the
        list's ``resourceVersion``."""
        objs: list[JsonObject] = []
        params = {"limit": "500"}
        while True:
            page = await self.client().request("GET", self._path(namespace), params=params)
            objs += page.get("items") or []
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            params = {"limit": "500", "continue": str(meta["continue"])}
        self.store.replace(namespace, objs)
        return str(meta.get("resourceVersion") or "")

    async def _watch(self, namespace: str | None, version: str) -> str:
        """Apply the watch's events from ``version`` until the server ends the stream (after
        ``server_timeout_seconds``); the last version seen."""
        params = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": str(self.server_timeout_seconds)}
        if version:
            params["resourceVersion"] = version
        events = self.client().stream(self._path(namespace), params, self.server_timeout_seconds + 30)
        try:
            async for event in events:
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise ApiError(obj.get("code"), f"watch of Deployments: {obj.get('message', obj)}")
                if kind != "BOOKMARK":
                    self.store.apply(str(kind), obj)
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        except ApiError as exc:
            # An expired version comes as an ERROR event in the stream, or as the watch request's
            # own status: either way, retrying from it would be refused for ever.
            if exc.status == 410:
                raise Gone() from None
            raise
        return version
