"""Which status writes are skipped, and what a tick carries when it skipped one."""

from __future__ import annotations

from typing import Any

from heteroscale.operator.statusbook import StatusBook, merged, refresh_seconds


def status(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "observedGeneration": 1,
        "decodeTPS": 400.0,
        "metricAgeSeconds": 2.0,
        "desired": {"prefill": 2, "decode": 4},
        "lastDecision": {"reason": "WithinTolerance", "message": "400 tok/s ...", "time": "2026-01-01T00:00:00Z"},
        "policyState": {"recommendations": [{"time": 100.0, "decode": 4}], "zeroReadings": 0},
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Reconciled", "message": "", "lastTransitionTime": "t"}
        ],
    }
    return merged(base, changes)


def significant(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether a tick that computed ``after`` right after sending ``before`` sends it too."""
    book, key = StatusBook(), ("ns", "chat")
    book.sent(key, "uid", before, now=0.0)
    return book.needs_write(key, "uid", after, now=1.0, refresh=60.0)


def test_what_moves_every_tick_is_not_significant() -> None:
    moved = status(
        decodeTPS=401.5,
        metricAgeSeconds=3.0,
        lastDecision={"message": "401 tok/s ...", "time": "2026-01-01T00:00:15Z"},
        policyState={"recommendations": [{"time": 115.0, "decode": 4}]},
    )
    assert not significant(status(), moved)


def test_what_a_person_or_a_restart_acts_on_is() -> None:
    assert significant(status(), status(desired={"decode": 5}))
    assert significant(status(), status(lastDecision={"reason": "ScaledUp"}))
    assert significant(status(), status(policyState={"recommendations": [{"time": 115.0, "decode": 6}]}))
    assert significant(status(), status(policyState={"lastScaleUpTime": 115.0}))
    assert significant(status(), status(drain={"started": 1.0, "groups": []}))
    ready_false = [{"type": "Ready", "status": "False", "reason": "PodsNotReady", "lastTransitionTime": "u"}]
    assert significant(status(), status(conditions=ready_false))
    assert significant(status(), status(observedGeneration=2))


def test_a_skipped_write_is_carried_while_the_stored_status_is_what_was_sent() -> None:
    book, key = StatusBook(), ("ns", "chat")
    stored = status()
    assert book.needs_write(key, "uid", stored, now=0.0, refresh=60.0), "nothing sent yet"
    book.sent(key, "uid", stored, now=0.0)
    tick = {"decodeTPS": 402.0, "lastDecision": {"reason": "WithinTolerance", "time": "later"}}
    assert not book.needs_write(key, "uid", tick, now=15.0, refresh=60.0)
    carried = book.carried(key, "uid", stored)
    assert carried["decodeTPS"] == 402.0, "the next tick starts from what it computed"
    # Someone else wrote the status: the tick starts from theirs.
    edited = status(drain={"started": 1.0, "groups": []})
    assert book.carried(key, "uid", edited) == edited
    # A group created again under the same name is another object.
    book.sent(key, "uid", stored, now=0.0)
    assert book.carried(key, "other-uid", stored) == stored


def test_a_significant_change_or_the_refresh_period_writes() -> None:
    book, key = StatusBook(), ("ns", "chat")
    book.sent(key, "uid", status(), now=0.0)
    assert book.needs_write(key, "uid", {"desired": {"prefill": 3, "decode": 6}}, now=1.0, refresh=60.0)
    book.sent(key, "uid", status(), now=0.0)
    assert not book.needs_write(key, "uid", {"decodeTPS": 1.0}, now=59.0, refresh=60.0)
    assert book.needs_write(key, "uid", {"decodeTPS": 1.0}, now=60.0, refresh=60.0)


def test_the_refresh_period_follows_the_stabilization_window() -> None:
    assert refresh_seconds(15, 300) == 60.0  # capped at a minute
    assert refresh_seconds(15, 120) == 30.0  # a quarter of the window
    assert refresh_seconds(15, 0) == 15.0  # never under one tick
    assert refresh_seconds(1, 3) == 1.0


def test_merge_patch_removes_nulls() -> None:
    assert merged({"a": 1, "b": {"c": 2, "d": 3}}, {"a": None, "b": {"c": None, "e": 4}}) == {"b": {"d": 3, "e": 4}}
