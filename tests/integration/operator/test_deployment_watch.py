"""The operator's own Deployment watch against the emulator's list and watch: what it keeps, how it
lists again when its version is gone, and how it retries an API server that refuses.

The emulator serves the list and the watch as KMock does for kopf. Two things a test cannot make
it do through its API, it is made to do directly: forget an object without a watch event (a
deletion the watch missed while it was down) and send a watch ERROR 410 (the version expired).
"""

from __future__ import annotations

import asyncio
import logging

import kmock
import kopf
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from heteroscale.operator.deploymentcache import DeploymentStore, DeploymentWatch
from tests.integration.operator.conftest import DEPLOYMENTS, NS, Api, ApiServerEmulator, deployment, eventually

pytestmark = pytest.mark.looptime

PATH = f"/apis/apps/v1/namespaces/{NS}/deployments"


@pytest.fixture
def login(emulator: ApiServerEmulator) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server=str(emulator.url))


async def watching(watch: DeploymentWatch, emulator: ApiServerEmulator) -> asyncio.Task[None]:
    """The watch running: listed, and its watch request at the emulator (whose event bus keeps
    nothing for a watch that connects later)."""
    task = asyncio.create_task(watch.run())
    await asyncio.wait_for(watch.synced.wait(), 10)
    await eventually(lambda: any("watch" in r.url.query for _, r in emulator.arrivals))
    return task


def names(store: DeploymentStore) -> set[str]:
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
    store = DeploymentStore()
    task = await watching(DeploymentWatch(lambda: login, store), emulator)
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
    store = DeploymentStore()
    task = await watching(DeploymentWatch(lambda: login, store, [NS]), emulator)
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
    store = DeploymentStore()
    task = await watching(DeploymentWatch(lambda: login, store), emulator)
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
    watch = DeploymentWatch(lambda: login, DeploymentStore(), retry_seconds=1.0)
    recorded, logger = Recorded(), logging.getLogger("heteroscale.operator.deploymentcache")
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
    store = DeploymentStore()
    task = asyncio.create_task(DeploymentWatch(lambda: login, store, namespaces).run())
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
    task = asyncio.create_task(DeploymentWatch(lambda: login, DeploymentStore()).run())
    await eventually(lambda: len(requests) >= 4)
    assert requests[:4] == ["list", "watch from 1", "list", "watch from 3"]
    task.cancel()
    await server.close()
