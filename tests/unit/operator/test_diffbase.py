"""The operator keeps no diff base, which holds only while nothing it registers reads one."""

from __future__ import annotations

import kopf
import pytest

from heteroscale.operator.diffbase import NoDiffBaseStorage
from heteroscale.operator.handlers import Operator
from tests.integration.operator.conftest import RecordingMetrics, pdsg


def test_no_handler_of_the_operator_reads_a_diff_base() -> None:
    """kopf reads the diff base for change handlers and for idle timers (kopf's private registry
    is the only place that says what is registered)."""
    registry = Operator(lambda source: None, RecordingMetrics()).registry
    assert registry._spawning.get_all_handlers(), "the groups' daemons are registered"
    assert not registry._changing.get_all_handlers()
    assert all(getattr(handler, "idle", None) is None for handler in registry._spawning.get_all_handlers())


def test_the_essence_is_empty_and_none_is_stored() -> None:
    storage = NoDiffBaseStorage()
    body = kopf.Body(pdsg("chat"))
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    # A change handler registered later would be told of a change on every event and never
    # recorded as handled: it fails at once instead.
    with pytest.raises(NotImplementedError, match="AnnotationsDiffBaseStorage"):
        storage.store(body=body, patch=kopf.Patch(), essence=storage.build(body=body))
