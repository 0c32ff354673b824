"""A small asyncio Kubernetes client for the objects the operator reads and writes.

kopf watches PDServingGroups with its own session; the operator's own watches
(:mod:`heteroscale.operator.watch`) and every read and write of a tick go through this client,
built from the same :class:`kopf.ConnectionInfo` kopf logged in with, so the two always talk to
the same API server with the same credentials.

Every call retries what a healthy API server answers under load or during a restart (409 on a
write, 429, 5xx, timeouts, dropped connections) with capped backoff, and raises
:class:`ApiError` once the attempts are spent; the reconcile tick then ends and the next one starts
from the observed state again. A write guarded by a ``resourceVersion`` is not retried on 409: the
object changed, and the caller must read it again (:class:`Conflict`). Writes are absolute
(``replicas: 4``, never ``+1``), so a write that is retried after the server applied it cannot
apply a scale step twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import kopf

logger = logging.getLogger(__name__)

JsonObject = dict[str, Any]

_RETRIED_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    """The API server refused a request, or did not answer after all retries."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"{status or 'no answer'}: {message}")
        self.status = status


class NotFound(ApiError):
    """HTTP 404: the object, or the whole resource type (e.g. KEDA not installed), is absent."""


class AlreadyExists(ApiError):
    """HTTP 409 on a create: someone (maybe our own earlier, timed-out attempt) created it."""


class Conflict(ApiError):
    """HTTP 409 on a write that named the object's ``resourceVersion``: it changed since then."""


class KubeClient:
    """JSON over HTTP to one API server; one aiohttp session, opened lazily in the running loop."""

    def __init__(
        self,
        connection: kopf.ConnectionInfo,
        *,
        attempts: int = 4,
        timeout_seconds: float = 10.0,
        backoff_seconds: float = 0.2,
        max_backoff_seconds: float = 5.0,
        connections: int = 64,
    ) -> None:
        self.connection = connection
        self.connections = connections
        """Open connections at most (0: no limit)."""
        self.attempts = attempts
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            info = self.connection
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections, ssl=info.as_ssl_context()),
                headers={**info.as_http_headers(), "User-Agent": "heteroscale-operator"},
                timeout=self.timeout,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        url = self.connection.server.rstrip("/") + path
        headers = {"Content-Type": content_type} if body is not None else {}
        delay = self.backoff_seconds
        last: ApiError = ApiError(None, f"{method} {path}: not attempted")
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._open().request(method, url, json=body, params=params, headers=headers) as response:
                    if response.status < 300:
                        payload: JsonObject = await response.json(content_type=None)
                        return payload
                    text = await response.text()
                    if response.status == 404:
                        raise NotFound(404, f"{method} {path}: {text[:200]}")
                    if response.status == 409 and method == "POST":
                        raise AlreadyExists(409, f"{method} {path}: {text[:200]}")
                    if response.status == 409 and _guarded(body):
                        raise Conflict(409, f"{method} {path}: {text[:200]}")
                    last = ApiError(response.status, f"{method} {path}: {text[:200]}")
                    if response.status not in _RETRIED_STATUSES:
                        raise last
                    retry_after = response.headers.get("Retry-After", "")
                    if retry_after.isdigit():
                        delay = max(delay, min(float(retry_after), self.max_backoff_seconds))
            except (TimeoutError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                last = ApiError(None, f"{method} {path}: {type(exc).__name__} {exc}")
            if attempt < self.attempts:
                logger.debug("retrying %s %s after %s (attempt %d)", method, path, last, attempt)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_seconds)
        raise last

    async def stream(
        self, path: str, params: Mapping[str, str], read_timeout_seconds: float
    ) -> AsyncIterator[JsonObject]:
        """A watch: each line of the response, parsed, until the server ends it. Not retried (the
        caller resumes from the last version it saw); a refusal raises :class:`ApiError`, a
        response silent for ``read_timeout_seconds`` :class:`TimeoutError`."""
        url = self.connection.server.rstrip("/") + path
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout.total, sock_read=read_timeout_seconds)
        async with self._open().get(url, params=params, timeout=timeout) as response:
            if response.status >= 300:
                text = await response.text()
                error = NotFound if response.status == 404 else ApiError
                raise error(response.status, f"GET {path} (watch): {text[:200]}")
            # Split lines here rather than with the reader's readline: that refuses lines over
            # 64 KiB, and a Deployment with a large pod template is one such line.
            pending = b""
            async for chunk in response.content.iter_any():
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
            if pending.strip():
                yield json.loads(pending)

    async def get(self, path: str) -> JsonObject:
        return await self.request("GET", path)

    async def list(self, path: str, *, label_selector: str = "") -> list[JsonObject]:
        params = {"labelSelector": label_selector} if label_selector else None
        items: list[JsonObject] = (await self.request("GET", path, params=params)).get("items") or []
        return items

    async def create(self, path: str, body: Mapping[str, Any]) -> JsonObject:
        return await self.request("POST", path, body=body)

    async def patch(self, path: str, body: Mapping[str, Any], *, resource_version: str | None = None) -> JsonObject:
        """A merge patch; with ``resource_version``, applied only to that version of the object
        (else :class:`Conflict`)."""
        if resource_version is not None:
            body = {**body, "metadata": {**(body.get("metadata") or {}), "resourceVersion": resource_version}}
        return await self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    async def delete(self, path: str) -> JsonObject:
        return await self.request("DELETE", path)


def _guarded(body: Mapping[str, Any] | None) -> bool:
    """Whether a write names the version of the object it applies to."""
    return bool(body and (body.get("metadata") or {}).get("resourceVersion"))
