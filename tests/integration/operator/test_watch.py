"""The operator's own watches against the emulator's list and watch, on Deployments: what they keep,
how they list again when their version is gone, and how they retry an API server that refuses; and
a kind the API server does not serve.

The emulator serves the list and the watch as KMock does for kopf. Two things a test cannot make
it do through its API, it is made to do directly: forget an object without a watch event (a
deletion the watch missed while it was down) and send a watch ERROR 410 (the version expired).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import kmock
import kopf
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from heteroscale.operator import indexes
from heteroscale.operator.handlers import DEPLOYMENTS as RESOURCE
from heteroscale.operator.handlers import SCALED_OBJECTS
from heteroscale.operator.store import Store
from heteroscale.operator.watch import Watch, WatchClient
from tests.integration.operator.conftest import DEPLOYMENTS, NS, Api, ApiServerEmulator, deployment, eventually

pytestmark = pytest.mark.looptime

PATH = f"/apis/apps/v1/namespaces/{NS}/deployments"
SCALED_OBJECTS_ID = "keda.sh/v1alpha1/scaledobjects"


@pytest.fixture
def login(emulator: ApiServerEmulator) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server=str(emulator.url))


def deployment_store() -> Store[tuple[str, ...], dict[str, Any]]:
    return Store(indexes.deployment_index)


def deployment_watch(
    login: Callable[[], kopf.ConnectionInfo], store: Store[Any, Any], namespaces: Sequence[str] = (), **kwargs: Any
) -> Watch:
    return Watch(WatchClient(login), RESOURCE, store, namespaces, **kwargs)


async def watching(watch: Watch, emulator: ApiServerEmulator) -> asyncio.Task[None]:
    """The watch running: listed, and its watch request at the emulator (whose event bus keeps
    nothing for a watch that connects later)."""
    task = asyncio.create_task(watch.run())
    await asyncio.wait_for(watch.synced.wait(), 10)
    await eventually(lambda: any("watch" in r.url.query for _, r in emulator.arrivals))
    return task


def names(store: Store[Any, Any]) -> set[str]:
    return {key[2] for key in store if key[0] == "name"}


def lists(emulator: ApiServerEmulator) -> int:
    return sum(
        1
        for _, r in emulator.arrivals
        if r.method == "GET" and r.url.path.endswith("/deployments") and "watch" not in r.url.query
    )


async def test_it_lists_then_follows_creations_changes_and_deletions(
    emulator: ApiServerEmulator, login: kopf.ConnectionInfo, api: Api
) -> None:
    emulator.objects[DEPLOYMENTS, NS, "before"] = deployment("before")
    store = deployment_store()
    task = await watching(deployment_watch(lambda: login, store), emulator)
    assert names(store) == {"before"}
    await api.create(PATH, deployment("after"))
    await api.patch(f"{PATH}/before", {"spec": {"replicas": 5}})
    await eventually(lambda: names(store) == {"before", "after"})
    await eventually(lambda: store["name", NS, "before"][0]["spec"]["replicas"] == 5)
    await api.delete(f"{PATH}/after")
    await eventually(lambda: names(store) == {"before"})
    task.cancel()


async def test_a_namespaced_watch_keeps_only_its_namespaces(
    emulator: ApiServerEmulator, login: kopf.ConnectionInfo, api: Api
) -> None:
    store = deployment_store()
    task = await watching(deployment_watch(lambda: login, store, [NS]), emulator)
    other = deployment("elsewhere")
    other["metadata"]["namespace"] = "other"
    await api.create("/apis/apps/v1/namespaces/other/deployments", other)
    await api.create(PATH, deployment("here"))
    await eventually(lambda: names(store) == {"here"})
    await asyncio.sleep(1)
    assert names(store) == {"here"}
    task.cancel()


async def test_a_gone_version_lists_again_and_drops_what_the_watch_missed(
    emulator: ApiServerEmulator, login: kopf.ConnectionInfo
) -> None:
    emulator.objects[DEPLOYMENTS, NS, "missed"] = deployment("missed")
    emulator.objects[DEPLOYMENTS, NS, "kept"] = deployment("kept")
    store = deployment_store()
    task = await watching(deployment_watch(lambda: login, store), emulator)
    assert names(store) == {"missed", "kept"}
    before = lists(emulator)
    del emulator.objects[DEPLOYMENTS, NS, "missed"]  # no watch event: the watch missed it
    expired = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
    await emulator._buses[kmock.resource(DEPLOYMENTS)].put(expired)
    await eventually(lambda: lists(emulator) == before + 1)
    await eventually(lambda: names(store) == {"kept"})
    task.cancel()


class Recorded(logging.Handler):
    """The records of one logger, whatever the logging set-up of the tests before (kopf's
    ``configure`` changes the root logger's level and handlers)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_a_refused_list_is_logged_and_retried_with_backoff_until_it_succeeds(
    emulator: ApiServerEmulator, login: kopf.ConnectionInfo
) -> None:
    emulator.objects[DEPLOYMENTS, NS, "d"] = deployment("d")
    emulator.refusing = lambda request: request.url.path.endswith("/deployments")
    watch = deployment_watch(lambda: login, deployment_store(), retry_seconds=1.0)
    recorded, logger = Recorded(), logging.getLogger("heteroscale.operator.watch")
    # dateparser (prometheus-api-client's) configures logging with disable_existing_loggers when it
    # first logs and the root logger has no handler, as in some tests before this one; the operator
    # configures kopf's handler on the root logger first.
    disabled, logger.disabled = logger.disabled, False
    logger.addHandler(recorded)
    try:
        task = asyncio.create_task(watch.run())
        await asyncio.sleep(20)
        assert not watch.synced.is_set()
        # Each list is retried by the client (4 attempts within 1.4 s), then by the watch after a
        # wait that doubles from 1 s: four lists refused in 20 s.
        failed = [m for m in recorded.messages if m.startswith("watching Deployments in all namespaces failed")]
        assert [m.split("retrying in ")[1].split("s:")[0] for m in failed] == ["1", "2", "4", "8"]
        assert all("503" in m for m in failed)
        emulator.refusing = lambda request: False
        await asyncio.wait_for(watch.synced.wait(), 60)
    finally:
        logger.removeHandler(recorded)
        logger.disabled = disabled
    assert names(watch.store) == {"d"}
    task.cancel()


async def test_a_watch_of_many_namespaces_leaves_the_ticks_their_connections(
    emulator: ApiServerEmulator, login: kopf.ConnectionInfo, api: Api
) -> None:
    """Each namespace's watch holds a connection open; with more namespaces than the ticks' client
    has connections (64), every watch still lists and follows, on the watch's own client."""
    namespaces = [f"team-{i}" for i in range(80)]
    store = deployment_store()
    task = asyncio.create_task(deployment_watch(lambda: login, store, namespaces).run())
    await eventually(lambda: sum("watch" in r.url.query for _, r in emulator.arrivals) == len(namespaces))
    last = deployment("late")
    last["metadata"]["namespace"] = namespaces[-1]
    await api.create(f"/apis/apps/v1/namespaces/{namespaces[-1]}/deployments", last)
    await eventually(lambda: store.get(("name", namespaces[-1], "late"), ()))
    task.cancel()


async def test_a_watch_refused_with_410_lists_again_instead_of_retrying_the_gone_version() -> None:
    """A real API server may answer the watch request itself with 410 (not an ERROR event in the
    stream): a scripted server, since the emulator answers no watch that way."""
    requests: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        watching = request.query.get("watch") == "true"
        requests.append(f"watch from {request.query.get('resourceVersion')}" if watching else "list")
        if not watching:
            version = str(len(requests))
            return web.json_response({"kind": "DeploymentList", "metadata": {"resourceVersion": version}, "items": []})
        if request.query.get("resourceVersion") == "1":
            return web.json_response({"kind": "Status", "code": 410, "reason": "Expired"}, status=410)
        response = web.StreamResponse()
        await response.prepare(request)
        await asyncio.sleep(3600)  # a quiet watch
        return response

    app = web.Application()
    app.router.add_get("/apis/apps/v1/deployments", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    login = kopf.ConnectionInfo(server=str(server.make_url("/")))
    task = asyncio.create_task(deployment_watch(lambda: login, deployment_store()).run())
    await eventually(lambda: len(requests) >= 4)
    assert requests[:4] == ["list", "watch from 1", "list", "watch from 3"]
    task.cancel()
    await server.close()


async def test_a_kind_the_server_does_not_serve_is_empty_and_listed_again_until_it_is_served(
    emulator: ApiServerEmulator, login: kopf.ConnectionInfo
) -> None:
    """KEDA not installed: its ScaledObjects are answered 404. The watch counts as listed (an empty
    store: nothing conflicts), so the ticks do not wait for it; installed later, it is found."""
    store = Store(indexes.autoscaler_index("ScaledObject"))
    watch = Watch(WatchClient(lambda: login), SCALED_OBJECTS, store, absent_retry_seconds=60)
    task = asyncio.create_task(watch.run())
    await asyncio.wait_for(watch.synced.wait(), 10)
    assert len(store) == 0
    emulator.resources[SCALED_OBJECTS_ID] = kmock.ResourceInfo(
        kind="ScaledObject", singular="scaledobject", namespaced=True, verbs={"get", "list", "watch"}
    )
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "so", "namespace": NS},
        "spec": {"scaleTargetRef": {"name": "decode"}},
    }
    emulator.objects[SCALED_OBJECTS_ID, NS, "so"] = scaled
    await asyncio.sleep(30)
    assert len(store) == 0, "not listed again before its wait is over"
    await eventually(lambda: store.get((NS, "decode")), timeout=60)
    assert store[NS, "decode"] == ["ScaledObject/so targets Deployment decode"]
    task.cancel()


async def test_a_list_in_pages_keeps_every_page_and_drops_what_no_page_holds() -> None:
    """A real API server answers a list in pages (``limit``, then ``continue``); the emulator
    answers every object at once, so a scripted server."""
    requests: list[str | None] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") == "true":
            response = web.StreamResponse()
            await response.prepare(request)
            await asyncio.sleep(3600)  # a quiet watch
            return response
        requests.append(request.query.get("continue"))
        page = [deployment(f"d{i}") for i in range(3)] if "continue" not in request.query else [deployment("d3")]
        meta = {"resourceVersion": "9", **({"continue": "next"} if "continue" not in request.query else {})}
        return web.json_response({"kind": "DeploymentList", "metadata": meta, "items": page})

    app = web.Application()
    app.router.add_get("/apis/apps/v1/deployments", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    login = kopf.ConnectionInfo(server=str(server.make_url("/")))
    store = deployment_store()
    store.put(deployment("deleted-while-no-watch-ran"))
    watch = deployment_watch(lambda: login, store)
    task = asyncio.create_task(watch.run())
    await asyncio.wait_for(watch.synced.wait(), 10)
    assert requests == [None, "next"]
    assert names(store) == {"d0", "d1", "d2", "d3"}
    task.cancel()
    await server.close()
