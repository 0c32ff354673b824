"""``spec.schedules``: time-of-day floors and ratios (the paper's periodic policy), validated here.

An entry names a cron expression (five fields, as Kubernetes CronJobs and Debian cron read them),
an IANA time zone, and what holds from each firing on: per-role floors under the metric-driven
policy and, optionally, a P:D ratio. Which entry is in force at a time is the policy's question
(:mod:`heteroscale.policy.schedule`); this module only says whether an entry can be evaluated at
all, with a message that names the entry.

Cron expressions are parsed by ``cronsim`` (pure Python, no dependencies, maintained for
Healthchecks.io's cron checks, which evaluate user-written crons in user-chosen time zones); time
zones by the standard library's ``zoneinfo``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

#: What the API server checks before the operator parses the entry: five space-separated fields of
#: cron characters (the operator's parser then checks ranges and names).
CRON_PATTERN = r"^[0-9A-Za-z*/,?#-]+( +[0-9A-Za-z*/,?#-]+){4}$"
#: IANA names: letters, digits and ``_+-`` in ``/``-separated parts (no ``..``, no leading ``/``).
TIME_ZONE_PATTERN = r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$"
SCHEDULE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class _Model(BaseModel):
    # The spec's conventions (camelCase on the wire, unknown fields rejected, immutable), restated
    # here because api.spec imports this module.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ScheduleFloors(_Model):
    """Per-role floors while an entry is in force; a role left out keeps the spec's own minimum."""

    prefill: int | None = Field(
        None, ge=0, le=10000, description="Fewest prefill instances while the entry is in force."
    )
    decode: int | None = Field(None, ge=0, le=10000, description="Fewest decode instances while the entry is in force.")


class ScheduleRatio(_Model):
    """A P:D ratio that replaces ``spec.ratio``'s while an entry is in force."""

    prefill: int = Field(ge=1, le=1000, description="Prefill side of the P:D ratio.")
    decode: int = Field(ge=1, le=1000, description="Decode side of the P:D ratio.")


class Schedule(_Model):
    """One entry of ``spec.schedules``: from each firing of ``cron`` on (until another entry fires),
    its floors and ratio apply."""

    name: str = Field(
        pattern=SCHEDULE_NAME_PATTERN,
        max_length=63,
        description="Name of the entry, unique in the list; status and messages show it.",
    )
    cron: str = Field(
        max_length=100,
        json_schema_extra={"pattern": CRON_PATTERN},
        description="Five-field cron expression (minute hour day-of-month month day-of-week), as for a "
        "Kubernetes CronJob, e.g. '0 8 * * 1-5' for 08:00 on weekdays. Evaluated in timeZone.",
    )
    time_zone: str = Field(
        "UTC",
        max_length=64,
        json_schema_extra={"pattern": TIME_ZONE_PATTERN},
        description="IANA time zone the cron is read in, e.g. Europe/Berlin (default UTC). Across a "
        "daylight-saving change a firing at a skipped time happens at the next valid minute and one "
        "at a repeated time once, as in Debian cron.",
    )
    min_replicas: ScheduleFloors | None = Field(
        None,
        description="Floors under the metric-driven policy while in force: the larger of this and the "
        "role's own minReplicas applies. Leave it out to go back to the spec's own floors.",
    )
    ratio: ScheduleRatio | None = Field(
        None,
        description="P:D ratio while in force, instead of spec.ratio's prefill:decode (with "
        "ratio.adaptive, the band still applies; this is the ratio it starts from and falls back to).",
    )

    @model_validator(mode="after")
    def _evaluable(self) -> Self:
        problem = cron_problem(self.cron) or time_zone_problem(self.time_zone)
        if problem:
            raise ValueError(f"schedule {self.name!r}: {problem}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def cron_problem(cron: str) -> str | None:
    """Why ``cron`` is not a five-field cron expression that fires, or None."""
    fields = cron.split()
    if len(fields) != 5:
        return (
            f"cron {cron!r} has {len(fields)} fields; give five: minute hour day-of-month month day-of-week, "
            "e.g. '0 8 * * 1-5' (no seconds field, no @daily shortcuts)"
        )
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        return f"cron {cron!r} is not valid: {exc} (fields: minute hour day-of-month month day-of-week)"
    return None


def time_zone_problem(name: str) -> str | None:
    """Why ``name`` is not an IANA time zone, or None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"timeZone {name!r} is not an IANA time zone name, e.g. UTC, Europe/Berlin, America/New_York"
    return None
