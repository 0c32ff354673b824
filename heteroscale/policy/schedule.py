"""Which ``spec.schedules`` entry is in force at a time (pure: the time is passed in).

The rule: the entry whose cron fired most recently at or before ``now`` is in force, each entry's
firings looked for at most :data:`LOOKBACK_SECONDS` back; on a tie (two crons firing at the same
instant) the later entry in the list wins. No entry fired in that span: none is in force, and the
spec's own floors and ratio apply. An entry stays in force until another fires, so a day is
written as the entries that start each part of it ("0 8 * * 1-5" business hours, "0 20 * * *"
evening).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cronsim import CronSim

from heteroscale.api.schedule import Schedule
from heteroscale.api.status import ScheduleStatus

#: How far back an entry's last firing is looked for: a year (and a day), so monthly and yearly
#: entries stay in force until the next entry fires; an entry that fires less often (29 February)
#: lapses after it.
LOOKBACK_SECONDS = 366 * 86400


@dataclass(frozen=True)
class InForce:
    """The entry in force and the time of the firing that put it there."""

    entry: Schedule
    since: float

    def status(self) -> ScheduleStatus:
        """What ``status.schedule`` shows."""
        floors, ratio = self.entry.min_replicas, self.entry.ratio
        return ScheduleStatus(
            name=self.entry.name,
            since=self.since,
            prefill_floor=floors.prefill if floors else None,
            decode_floor=floors.decode if floors else None,
            ratio=f"{ratio.prefill}:{ratio.decode}" if ratio else None,
        )


def last_firing(entry: Schedule, now: float) -> float | None:
    """Unix time of ``entry``'s latest firing at or before ``now``; None if none in the look-back."""
    # The reverse iterator yields times strictly before its start, so it starts a second after the
    # whole second ``now`` is in (cron firings fall on whole minutes).
    start = datetime.fromtimestamp(int(now // 1) + 1, entry.zone)
    try:
        fired = next(CronSim(entry.cron, start, reverse=True)).timestamp()
    except StopIteration:
        return None
    return fired if fired >= now - LOOKBACK_SECONDS else None


def in_force(schedules: Sequence[Schedule], now: float) -> InForce | None:
    """The entry in force at ``now`` (see the module docstring), or None."""
    best: InForce | None = None
    for entry in schedules:
        fired = last_firing(entry, now)
        if fired is not None and (best is None or fired >= best.since):
            best = InForce(entry, fired)
    return best
