"""One kind of object kept current in a :class:`~heteroscale.operator.store.Store` by a list and
watch of the operator's own.

The operator keeps what its ticks read (Deployments, GPU nodes and pods, the other autoscalers, the
other groups' references) in its own watches rather than in kopf indexes, for two measured reasons:

- **Volume.** kopf runs each event of an indexed resource through its per-object queue, worker and
  handler invocation, about 1 ms of CPU each on this project's machine against the tens of
  microseconds that parsing and trimming the object costs (measured: 2,000 status updates of 2,000
  indexed Deployments, 0.96-0.99 ms of operator CPU per event). Every scale action is followed by
  several Deployment events; with a thousand groups scaling at once that was several CPU-seconds of
  the one event loop every tick shares.
- **Start-up.** kopf makes a readiness toggle for every object of every indexed resource it finds
  while it first lists, and every object's worker waits on one condition that each dropped toggle
  wakes: a start quadratic in what is indexed (measured with kopf 1.45: 1,000 groups 24-30 s,
  2,000 groups 109 s; 50 groups beside 8,000 pods of other workloads 194 s, with no group ticking
  until it ends). A watch of the operator's own lists in pages and is done (in one hour, the
  indexes against these watches: 1,000 groups 14.6 against 3.1 s, 2,000 groups 72.4 against 6.6 s).

:class:`Watch` lists, then watches from the list's ``resourceVersion``, lists again when the server
says that version is gone (410), and reconnects with backoff after errors, as kopf's own watches do.
A kind the API server does not serve (KEDA's ScaledObjects without KEDA) is kept empty and listed
again now and then, so installing it later needs no restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import kopf

from heteroscale.operator.kube import ApiError, KubeClient, NotFound
from heteroscale.operator.store import Name, Store, name_of

logger = logging.getLogger(__name__)

#: Objects per page of a list (kubectl's default chunk size).
PAGE = 500


@dataclass(frozen=True)
class Resource:
    """A kind of object as its API path names it."""

    group: str
    version: str
    plural: str
    title: str
    """How log lines name it ("Deployments")."""
    namespaced: bool = True

    def path(self, namespace: str | None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{base}/namespaces/{namespace}/{self.plural}" if namespace else f"{base}/{self.plural}"


class Gone(Exception):
    """The watch's ``resourceVersion`` is too old (410): list again."""


class WatchClient:
    """The client every watch talks through: its own, without a limit on connections (each watch
    holds one open for minutes, and on the ticks' client of 64 connections a replica serving
    sixty-odd namespaces would leave the ticks none). ``connection`` returns the credentials kopf
    logged in with; when they change (a new token), the next list or watch uses the new ones."""

    def __init__(self, connection: Callable[[], kopf.ConnectionInfo]) -> None:
        self.connection = connection
        self._client: KubeClient | None = None
        self._retired: list[KubeClient] = []

    def __call__(self) -> KubeClient:
        info = self.connection()
        if self._client is None or self._client.connection is not info:
            # The old one's open watches go on until they reconnect: it is closed with the rest.
            if self._client is not None:
                self._retired.append(self._client)
            self._client = KubeClient(info, connections=0)
        return self._client

    async def close(self) -> None:
        for client in [*self._retired, *([self._client] if self._client else [])]:
            await client.close()
        self._retired, self._client = [], None


class Watch:
    """Keeps ``store`` current with every ``resource`` object: one list-then-watch per namespace
    served (one for the whole cluster without namespaces, or for a cluster-scoped kind). ``synced``
    is set once every one of them has listed."""

    def __init__(
        self,
        client: Callable[[], KubeClient],
        resource: Resource,
        store: Store[Any, Any],
        namespaces: Sequence[str] = (),
        *,
        server_timeout_seconds: int = 300,
        retry_seconds: float = 1.0,
        max_retry_seconds: float = 30.0,
        absent_retry_seconds: float = 300.0,
    ) -> None:
        self.client = client
        self.resource = resource
        self.store = store
        self.namespaces = list(namespaces) if resource.namespaced else []
        self.server_timeout_seconds = server_timeout_seconds
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.absent_retry_seconds = absent_retry_seconds
        self.synced = asyncio.Event()
        self._listed: set[str | None] = set()

    async def run(self) -> None:
        """Follow every namespace served until cancelled."""
        scopes: list[str | None] = [*self.namespaces] or [None]
        await asyncio.gather(*(self._follow(scope, len(scopes)) for scope in scopes))

    def _listed_in(self, namespace: str | None, scopes: int) -> None:
        self._listed.add(namespace)
        if len(self._listed) == scopes:
            self.synced.set()

    async def _follow(self, namespace: str | None, scopes: int) -> None:
        delay = self.retry_seconds
        version: str | None = None
        where, title = namespace or "all namespaces", self.resource.title
        while True:
            try:
                if version is None:
                    version = await self._list(namespace)
                    self._listed_in(namespace, scopes)
                version = await self._watch(namespace, version)
                delay = self.retry_seconds
            except Gone:
                logger.debug("%s in %s: the watch's version is gone; listing again", title, where)
                version = None
            except NotFound:
                # Not served (its CRD is not installed): nothing of it exists, and nothing conflicts.
                self.store.replace(namespace, [])
                self._listed_in(namespace, scopes)
                logger.debug("%s are not served; listing again in %.0fs", title, self.absent_retry_seconds)
                version = None
                await asyncio.sleep(self.absent_retry_seconds)
            except (ApiError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                # 403 (RBAC), an API server restarting, a dropped connection: say so, then try again,
                # from the last version seen (a version gone meanwhile is answered with 410).
                logger.warning("watching %s in %s failed, retrying in %.0fs: %s", title, where, delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_seconds)

    async def _list(self, namespace: str | None) -> str:
        """List every object, replace what the store held there, and return the list's
        ``resourceVersion``. Page by page, each into the store as it comes: a cluster's pods are
        hundreds of megabytes as parsed JSON, of which the store keeps the few that take GPUs."""
        listed: set[Name] = set()
        params = {"limit": str(PAGE)}
        while True:
            page = await self.client().request("GET", self.resource.path(namespace), params=params)
            for obj in page.get("items") or []:
                self.store.put(obj)
                listed.add(name_of(obj))
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            params = {"limit": str(PAGE), "continue": str(meta["continue"])}
        self.store.retain(namespace, listed)
        return str(meta.get("resourceVersion") or "")

    async def _watch(self, namespace: str | None, version: str) -> str:
        """Apply the watch's events from ``version`` until the server ends the stream (after
        ``server_timeout_seconds``); the last version seen."""
        params = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": str(self.server_timeout_seconds)}
        if version:
            params["resourceVersion"] = version
        path = self.resource.path(namespace)
        events = self.client().stream(path, params, self.server_timeout_seconds + 30)
        try:
            async for event in events:
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise ApiError(obj.get("code"), f"watch of {self.resource.title}: {obj.get('message', obj)}")
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


class Watches:
    """Several kinds, each into its store, on one :class:`WatchClient`; ``synced`` once every one
    has listed."""

    def __init__(
        self,
        connection: Callable[[], kopf.ConnectionInfo],
        stores: Sequence[tuple[Resource, Store[Any, Any]]],
        namespaces: Sequence[str] = (),
    ) -> None:
        self.client = WatchClient(connection)
        self.watches = [Watch(self.client, resource, store, namespaces) for resource, store in stores]

    @property
    def synced(self) -> bool:
        return all(watch.synced.is_set() for watch in self.watches)

    async def wait_synced(self) -> None:
        for watch in self.watches:
            await watch.synced.wait()

    async def run(self) -> None:
        """Follow every kind until cancelled."""
        try:
            await asyncio.gather(*(watch.run() for watch in self.watches))
        finally:
            await self.client.close()
