"""The operator's API client: what it retries, how long it waits, and what it gives up on.

A real API server cannot be made to answer 429 with a Retry-After, or 503 twice and then 200, on
demand; so a scripted aiohttp server answers each request as told and records when it came. The
tests run on looptime's fake clock: the client's backoff sleeps take no wall time, and the gaps
between requests are exactly the waits the client chose.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import kopf
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from heteroscale.operator.kube import AlreadyExists, ApiError, Conflict, KubeClient, NotFound

pytestmark = pytest.mark.looptime


@dataclass
class Script:
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    """(status, headers) per request, in order; the last one repeats."""
    seen: list[tuple[float, str]] = field(default_factory=list)
    """(the loop's time, method) of each request."""


@pytest.fixture
async def script() -> AsyncIterator[tuple[Script, str]]:
    state = Script()

    async def handle(request: web.Request) -> web.Response:
        state.seen.append((asyncio.get_running_loop().time(), request.method))
        status, headers = state.answers[min(len(state.seen), len(state.answers)) - 1]
        return web.json_response({"kind": "Status", "code": status}, status=status, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield state, str(server.make_url("/"))
    await server.close()


def client(url: str, **options: float) -> KubeClient:
    return KubeClient(kopf.ConnectionInfo(server=url), backoff_seconds=0.05, **options)  # type: ignore[arg-type]


def gaps(script: Script) -> list[float]:
    times = [t for t, _ in script.seen]
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_transient_answers_are_retried_until_one_succeeds(script: tuple[Script, str], status: int) -> None:
    state, url = script
    state.answers = [(status, {}), (status, {}), (200, {})]
    kube = client(url)
    try:
        assert (await kube.get("/api/v1/namespaces/x/pods/p"))["code"] == 200
    finally:
        await kube.close()
    assert len(state.seen) == 3
    # Backoff doubles: 0.05 s, then 0.1 s.
    assert gaps(state) == pytest.approx([0.05, 0.1])


@pytest.mark.parametrize(("status", "error"), [(400, ApiError), (403, ApiError), (422, ApiError), (404, NotFound)])
async def test_answers_that_cannot_change_are_not_retried(
    script: tuple[Script, str], status: int, error: type[ApiError]
) -> None:
    state, url = script
    state.answers = [(status, {})]
    kube = client(url)
    try:
        with pytest.raises(error) as raised:
            await kube.patch("/apis/apps/v1/namespaces/x/deployments/d", {"spec": {"replicas": 2}})
    finally:
        await kube.close()
    assert raised.value.status == status
    assert len(state.seen) == 1


async def test_a_create_that_exists_is_already_exists_not_retried(script: tuple[Script, str]) -> None:
    state, url = script
    state.answers = [(409, {})]
    kube = client(url)
    try:
        with pytest.raises(AlreadyExists):
            await kube.create("/apis/apps/v1/namespaces/x/deployments", {"metadata": {"name": "d"}})
    finally:
        await kube.close()
    assert len(state.seen) == 1


@pytest.mark.parametrize(("version", "attempts"), [("41", 1), (None, 4)])
async def test_a_patch_naming_a_version_is_not_retried_on_conflict(
    script: tuple[Script, str], version: str | None, attempts: int
) -> None:
    """409 on a write that named the object's resourceVersion: the object changed, and sending
    the same body again cannot succeed. Without a version, 409 is a transient clash: retried."""
    state, url = script
    state.answers = [(409, {})]
    kube = client(url)
    try:
        with pytest.raises(ApiError) as raised:
            await kube.patch(
                "/apis/apps/v1/namespaces/x/deployments/d", {"spec": {"replicas": 2}}, resource_version=version
            )
    finally:
        await kube.close()
    assert isinstance(raised.value, Conflict) == (version is not None)
    assert len(state.seen) == attempts


async def test_retry_after_is_honoured_up_to_the_cap(script: tuple[Script, str]) -> None:
    state, url = script
    state.answers = [(429, {"Retry-After": "1"}), (429, {"Retry-After": "3600"}), (200, {})]
    kube = client(url, max_backoff_seconds=1.5)
    try:
        await kube.get("/api/v1/namespaces/x/pods/p")
    finally:
        await kube.close()
    first, second = gaps(state)
    assert first == pytest.approx(1.0), "the server asked for a second"
    assert second == pytest.approx(1.5), "an hour is capped at max_backoff_seconds"


async def test_attempts_are_spent_then_the_last_error_is_raised(script: tuple[Script, str]) -> None:
    state, url = script
    state.answers = [(503, {})]
    kube = client(url, attempts=3)
    try:
        with pytest.raises(ApiError) as raised:
            await kube.get("/api/v1/namespaces/x/pods/p")
    finally:
        await kube.close()
    assert raised.value.status == 503
    assert len(state.seen) == 3
