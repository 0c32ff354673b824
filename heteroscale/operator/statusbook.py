"""Which status writes a tick can skip, and the state it carries when it skipped one (pure).

A status patch every tick of every group is most of the API traffic of a large fleet, and most
ticks change only what moves all the time: the reading, its age, the decision's time and message,
the recommendations' times. The book remembers, per group, the status as last sent and as last
computed. A tick sends its status only when something a person or a restarted operator acts on
changed (anything but what moves on every tick), or when the last write is older than the refresh period; otherwise
the next tick carries the computed status from memory.

The status in the API stays the durable record: a tick carries its own memory only while the
object's status is exactly what it last sent (nobody else wrote it); anything else starts from the
object, as a level-based reconcile should. The refresh period is at most a quarter of the
stabilization window, so after a restart the recommendations read back from the status are at
most that much older than the ones in memory were.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Fields that move on every tick; a change in them alone does not need a write.
_VOLATILE = frozenset({"decodeTPS", "metricAgeSeconds"})
#: The longest a group's status goes without a write, in seconds.
MAX_REFRESH_SECONDS = 60.0

Json = dict[str, Any]


def merged(old: Mapping[str, Any], patch: Mapping[str, Any]) -> Json:
    """``old`` after a JSON merge patch (RFC 7386): a null removes its key."""
    out = dict(old)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def _plain(value: Any) -> Any:
    """A JSON value with nulls dropped from objects, so an API server's copy compares equal."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _essence(status: Mapping[str, Any]) -> Any:
    """The status without what moves on every tick."""
    out = {k: v for k, v in _plain(status).items() if k not in _VOLATILE}
    if "lastDecision" in out:
        out["lastDecision"] = {"reason": out["lastDecision"].get("reason")}
    out["conditions"] = [
        {k: c.get(k) for k in ("type", "status", "reason", "observedGeneration")} for c in out.get("conditions", [])
    ]
    state = dict(out.get("policyState") or {})
    # The recommendations' values matter (the stabilization window takes their highest); a value
    # seen again only moves its time.
    state["recommendations"] = sorted({r.get("decode") for r in state.get("recommendations", [])})
    out["policyState"] = state
    return out


def refresh_seconds(interval: float, stabilization_window: float) -> float:
    """How long a group's status may go unwritten: a quarter of the stabilization window, at most a
    minute, at least one tick."""
    return max(float(interval), min(MAX_REFRESH_SECONDS, stabilization_window / 4))


@dataclass
class _Entry:
    uid: str
    sent: Json
    """The status as last sent (the whole of it, as the API server holds it)."""
    sent_at: float
    latest: Json
    """The status as last computed, sent or not."""
    sent_essence: Any = None
    """``_essence(sent)``, computed once."""
    matched: Mapping[str, Any] | None = None
    """The last stored status found equal to ``sent``: kopf hands out the same object until the next
    watch event and never edits it, so a tick compares it once, not on every question."""


@dataclass
class StatusBook:
    """The status each group last sent and last computed, by (namespace, name)."""

    _entries: dict[tuple[str, str], _Entry] = field(default_factory=dict)

    def is_ours(self, key: tuple[str, str], uid: str, stored: Mapping[str, Any] | None) -> bool:
        """Whether ``stored`` is the status this book last sent for the group (nobody wrote since)."""
        entry = self._entries.get(key)
        if entry is None or entry.uid != uid:
            return False
        if stored is not None and stored is entry.matched:
            return True
        # Both are the API server's copy (its answer to our write, and what it stored), so they
        # compare as they are: no nulls to drop, and a deep copy per watch event saved.
        if (stored or {}) != entry.sent:
            return False
        entry.matched = stored
        return True

    def carried(self, key: tuple[str, str], uid: str, stored: Mapping[str, Any] | None) -> Json:
        """The status a tick starts from: the one it computed last, while the stored one is still
        what it sent (nobody else wrote it); else the stored one."""
        entry = self._entries.get(key)
        if entry is not None and self.is_ours(key, uid, stored):
            return entry.latest
        self._entries.pop(key, None)
        return dict(stored or {})

    def needs_write(self, key: tuple[str, str], uid: str, patch: Mapping[str, Any], now: float, refresh: float) -> bool:
        """Record the tick's status (``patch`` over the carried one) and say whether to send it."""
        entry = self._entries.get(key)
        if entry is None or entry.uid != uid:
            return True
        entry.latest = merged(entry.latest, patch)
        if now - entry.sent_at >= refresh:
            return True
        if entry.sent_essence is None:
            entry.sent_essence = _essence(entry.sent)
        return bool(entry.sent_essence != _essence(entry.latest))

    def sent(self, key: tuple[str, str], uid: str, stored: Mapping[str, Any], now: float) -> None:
        """The write went through; ``stored`` is the status the API server answered with."""
        status = dict(stored)  # what it last sent is what it last computed (merged() copies)
        self._entries[key] = _Entry(uid, status, now, status)

    def forget(self, key: tuple[str, str]) -> None:
        self._entries.pop(key, None)
