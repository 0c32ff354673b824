"""The emulator answers as an API server does where kopf's behaviour depends on the answer."""

from __future__ import annotations

from typing import Any

import kmock

from tests.integration.operator.conftest import CR, NS, Api, cr_path, pdsg


async def test_a_json_patch_whose_test_fails_is_refused_as_invalid(
    emulator: kmock.KubernetesEmulator, api: Api
) -> None:
    """kopf removes its finalizer with a JSON patch that tests the resourceVersion it saw. An API
    server answers a failed test 422, and kopf patches again on its next cycle; a 500 (KMock's own
    answer) makes kopf retry the stale patch nine times, which held a deletion up for seconds."""
    await api.create(cr_path(), pdsg("chat"))
    stored = emulator.objects[CR, NS, "chat"]["metadata"]["resourceVersion"]
    ops: list[dict[str, Any]] = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": f"{stored}0"},
        {"op": "add", "path": "/metadata/labels", "value": {"x": "y"}},
    ]
    headers = {"Content-Type": "application/json-patch+json"}
    async with api.session.patch(cr_path("chat"), json=ops, headers=headers) as response:
        assert response.status == 422, await response.text()
    assert "labels" not in emulator.objects[CR, NS, "chat"]["metadata"]
    ops[0]["value"] = stored
    async with api.session.patch(cr_path("chat"), json=ops, headers=headers) as response:
        assert response.status == 200, await response.text()
    assert emulator.objects[CR, NS, "chat"]["metadata"]["labels"] == {"x": "y"}
