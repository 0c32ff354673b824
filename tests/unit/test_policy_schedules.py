"""spec.schedules: validation (models and CRD alike), which entry is in force, and how the policy
applies its floors and ratio."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from heteroscale.api.enums import HOLD_REASONS, Reason
from heteroscale.api.manifest import SpecError, parse_spec
from heteroscale.api.schedule import Schedule
from heteroscale.api.status import PolicyState
from heteroscale.policy import Observation, PoolObservation
from heteroscale.policy.schedule import in_force
from tests.k8s_schema import validate
from tests.specs import base_spec, merge
from tests.unit.test_api import spec_schema
from tests.unit.test_policy import DAMPED, UNDAMPED, observe, run

BERLIN = ZoneInfo("Europe/Berlin")
DAY = {"name": "day", "cron": "0 8 * * 1-5", "timeZone": "Europe/Berlin", "minReplicas": {"decode": 6}}
EVENING = {"name": "evening", "cron": "0 20 * * *", "timeZone": "Europe/Berlin"}


def entries(*raw: dict[str, Any]) -> list[Schedule]:
    return [Schedule.model_validate(entry) for entry in raw]


def berlin(*args: int) -> float:
    return datetime(*args, tzinfo=BERLIN).timestamp()


# --- Validation: the models and the API server's schema refuse the same entries ---------------

# (override, field path in the message, words, also refused by the CRD schema)
BAD: list[tuple[str, dict[str, Any], str, str, bool]] = [
    ("minute out of range", {"schedules": [{"name": "a", "cron": "61 8 * * *"}]}, "spec.schedules[0]", "'a'", False),
    ("six fields", {"schedules": [{"name": "a", "cron": "0 0 8 * * *"}]}, "spec.schedules[0]", "give five", True),
    ("shortcut", {"schedules": [{"name": "a", "cron": "@daily"}]}, "spec.schedules[0]", "give five", True),
    ("30 February", {"schedules": [{"name": "a", "cron": "0 0 30 2 *"}]}, "spec.schedules[0]", "day-of-month", False),
    (
        "unknown zone",
        {"schedules": [{"name": "a", "cron": "0 8 * * *", "timeZone": "Mars/Olympus"}]},
        "spec.schedules[0]",
        "not an IANA time zone",
        False,
    ),
    (
        "path as zone",
        {"schedules": [{"name": "a", "cron": "0 8 * * *", "timeZone": "../../etc/passwd"}]},
        "spec.schedules[0]",
        "not an IANA time zone",
        True,
    ),
    (
        "repeated name",
        {"schedules": [{"name": "a", "cron": "0 8 * * *"}, {"name": "a", "cron": "0 9 * * *"}]},
        "spec",
        "schedule names must be unique",
        True,
    ),
    (
        "floor above max",
        {"schedules": [{"name": "a", "cron": "0 8 * * *", "minReplicas": {"decode": 65}}]},
        "spec",
        "must be <= that role's maxReplicas",
        True,
    ),
    (
        "prefill floor above max",
        {"schedules": [{"name": "a", "cron": "0 8 * * *", "minReplicas": {"prefill": 33}}]},
        "spec",
        "must be <= that role's maxReplicas",
        True,
    ),
    (
        "zero ratio",
        {"schedules": [{"name": "a", "cron": "0 8 * * *", "ratio": {"prefill": 0, "decode": 1}}]},
        "spec.schedules[0].ratio.prefill",
        "greater than or equal to 1",
        True,
    ),
    ("no name", {"schedules": [{"cron": "0 8 * * *"}]}, "spec.schedules[0].name", "required", True),
]


def problems(override: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What the models and what the API server's schema say about the base spec with ``override``."""
    spec = merge(base_spec(), override)
    try:
        parse_spec(spec)
        found: list[str] = []
    except SpecError as exc:
        found = list(exc.problems)
    return found, validate(spec_schema(), spec)


@pytest.mark.parametrize(("override", "field", "words", "crd_rejects"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_schedules_name_the_entry_and_the_fix(
    override: dict[str, Any], field: str, words: str, crd_rejects: bool
) -> None:
    model, crd = problems(override)
    assert any(line.startswith(f"{field}:") and words in line for line in model), model
    assert bool(crd) == crd_rejects


def test_a_valid_day_passes_both_validators() -> None:
    override = {"schedules": [{**DAY, "ratio": {"prefill": 1, "decode": 2}}, EVENING]}
    assert problems(override) == ([], [])
    parsed = parse_spec(merge(base_spec(), override))
    assert [s.name for s in parsed.schedules] == ["day", "evening"]
    assert parsed.schedules[1].time_zone == "Europe/Berlin"


# --- Which entry is in force -----------------------------------------------------------------


# 2025-03-03 is a Monday; 2025-03-08 a Saturday.
@pytest.mark.parametrize(
    ("now", "name", "since"),
    [
        (berlin(2025, 3, 3, 9, 0), "day", berlin(2025, 3, 3, 8, 0)),
        (berlin(2025, 3, 3, 8, 0), "day", berlin(2025, 3, 3, 8, 0)),  # at the firing itself
        (berlin(2025, 3, 3, 7, 59, 59), "evening", berlin(2025, 3, 2, 20, 0)),  # Sunday evening's
        (berlin(2025, 3, 3, 21, 0), "evening", berlin(2025, 3, 3, 20, 0)),
        (berlin(2025, 3, 8, 10, 0), "evening", berlin(2025, 3, 7, 20, 0)),  # weekend: Friday evening's
    ],
)
def test_the_latest_firing_wins(now: float, name: str, since: float) -> None:
    found = in_force(entries(DAY, EVENING), now)
    assert found is not None
    assert (found.entry.name, found.since) == (name, since)


def test_a_cron_fires_in_its_own_time_zone_across_daylight_saving() -> None:
    # EU summer time starts on the last Sunday of March at 01:00 UTC: 08:00 in Berlin is 07:00 UTC
    # on Saturday 29 March 2025 and 06:00 UTC on Sunday the 30th.
    daily = entries({"name": "d", "cron": "0 8 * * *", "timeZone": "Europe/Berlin"})
    saturday = in_force(daily, datetime(2025, 3, 29, 12, tzinfo=UTC).timestamp())
    sunday = in_force(daily, datetime(2025, 3, 30, 12, tzinfo=UTC).timestamp())
    assert saturday is not None
    assert sunday is not None
    assert saturday.since == datetime(2025, 3, 29, 7, tzinfo=UTC).timestamp()
    assert sunday.since == datetime(2025, 3, 30, 6, tzinfo=UTC).timestamp()
    utc = in_force(entries({"name": "d", "cron": "0 8 * * *"}), datetime(2025, 3, 30, 12, tzinfo=UTC).timestamp())
    assert utc is not None
    assert utc.since == datetime(2025, 3, 30, 8, tzinfo=UTC).timestamp()


def test_on_a_tie_the_later_entry_wins_and_none_fired_means_none() -> None:
    first, second = {"name": "a", "cron": "0 8 * * *"}, {"name": "b", "cron": "0 8 * * *"}
    now = datetime(2025, 3, 3, 9, tzinfo=UTC).timestamp()
    tie = in_force(entries(first, second), now)
    assert tie is not None
    assert tie.entry.name == "b"
    swapped = in_force(entries(second, first), now)
    assert swapped is not None
    assert swapped.entry.name == "a"
    assert in_force([], now) is None


def test_the_look_back_is_a_year() -> None:
    yearly = entries({"name": "y", "cron": "0 0 1 1 *"})
    june = datetime(2025, 6, 1, tzinfo=UTC).timestamp()
    found = in_force(yearly, june)
    assert found is not None
    assert found.since == datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    leap = entries({"name": "leap", "cron": "0 0 29 2 *"})
    assert in_force(leap, datetime(2024, 6, 1, tzinfo=UTC).timestamp()) is not None
    assert in_force(leap, june) is None  # 29 February 2024 is more than 366 days before


# --- The policy under a schedule ----------------------------------------------------------------

MONDAY_9 = berlin(2025, 3, 3, 9, 0)
MONDAY_21 = berlin(2025, 3, 3, 21, 0)


def test_a_scheduled_floor_raises_the_count_and_is_reported() -> None:
    # Load needs 2 decode; the day entry's floor is 6, with prefill following at 1:1.
    decision = run(observe(200.0, 4), now=MONDAY_9, schedules=[DAY, EVENING])
    assert (decision.prefill, decision.decode) == (6, 6)
    assert decision.reason is Reason.SCHEDULE_FLOOR
    assert "schedule 'day' in force (decode floor 6)" in decision.message
    assert decision.schedule is not None
    assert (decision.schedule.name, decision.schedule.decode_floor) == ("day", 6)
    # In the evening the spec's own floor (1) applies again: load alone decides.
    evening = run(observe(200.0, 4), now=MONDAY_21, schedules=[DAY, EVENING])
    assert (evening.decode, evening.reason) == (2, Reason.SCALED_DOWN)
    assert evening.schedule is not None
    assert evening.schedule.name == "evening"
    assert evening.schedule.decode_floor is None


def test_a_floor_below_the_load_changes_nothing() -> None:
    with_floor = run(observe(1500.0, 10), now=MONDAY_9, schedules=[DAY])
    without = run(observe(1500.0, 10), now=MONDAY_9)
    assert (with_floor.prefill, with_floor.decode, with_floor.reason) == (
        without.prefill,
        without.decode,
        without.reason,
    )
    assert with_floor.schedule is not None
    assert without.schedule is None


@pytest.mark.parametrize("tps", [None, float("nan"), 200.0])
def test_a_hold_still_brings_pools_up_to_the_scheduled_floor(tps: float | None) -> None:
    age = 500.0 if tps == 200.0 else 1.0  # the last case is stale
    decision = run(observe(tps, 2, age=age), now=MONDAY_9, schedules=[DAY])
    assert decision.held
    assert (decision.prefill, decision.decode) == (6, 6)
    assert Reason.SCHEDULE_FLOOR in decision.notes


def test_a_scheduled_ratio_replaces_the_spec_ratio() -> None:
    day = {**DAY, "minReplicas": None, "ratio": {"prefill": 1, "decode": 2}}
    decision = run(observe(900.0, 9, prefill=9), now=MONDAY_9, schedules=[day], ratio={"prefill": 1, "decode": 1})
    # 9 decode at 1:2 want 5 prefill; dropping 4 prefill is a scale-in, allowed here (no damping).
    assert (decision.prefill, decision.decode) == (5, 9)
    assert decision.schedule is not None
    assert decision.schedule.ratio == "1:2"
    damped = run(
        observe(900.0, 9, prefill=9),
        PolicyState(last_scale_up_time=MONDAY_9 - 60),
        now=MONDAY_9,
        schedules=[day],
        **merge(DAMPED, {"ratio": {"prefill": 1, "decode": 1}}),
    )
    assert damped.prefill == 9, "a ratio change that removes prefill waits for the scale-in rules"
    assert "until scale-in is allowed" in damped.message


def test_a_scheduled_prefill_floor_raises_decode_to_keep_the_ratio() -> None:
    day = {"name": "day", "cron": "0 8 * * *", "minReplicas": {"prefill": 4}}
    decision = run(observe(200.0, 2, prefill=1), now=MONDAY_9, schedules=[day], ratio={"prefill": 1, "decode": 3})
    # 4 prefill at 1:3 need at least 10 decode (ceil(10 / 3) = 4).
    assert (decision.prefill, decision.decode) == (4, 10)
    assert decision.reason is Reason.RATIO_REPAIRED


def test_an_adaptive_ratio_starts_from_the_scheduled_ratio() -> None:
    adaptive = {"minRatio": 1.0, "maxRatio": 4.0, "prefillTargetTPSPerInstance": 1000}
    day = {"name": "day", "cron": "0 8 * * *", "ratio": {"prefill": 3, "decode": 1}}
    spec = {"ratio": {"prefill": 2, "decode": 1, "adaptive": adaptive}, "schedules": [day]}
    missing = run(observe(1000.0, 10, prefill=20), now=MONDAY_9, **spec)
    assert missing.prefill == 30, "no KV-missed reading: the scheduled 3:1"
    reading = Observation(1000.0, 1.0, PoolObservation(20, 20), PoolObservation(10, 10), prefill_missed_tps=25_000.0)
    assert run(reading, now=MONDAY_9, **spec).prefill == 25, "with one, the band applies as before"


@st.composite
def scheduled(draw: st.DrawFn) -> tuple[list[dict[str, Any]], float]:
    hours = draw(st.lists(st.integers(0, 23), min_size=1, max_size=4, unique=True))
    floors = [draw(st.none() | st.integers(0, 12)) for _ in hours]
    raw = [
        {"name": f"e{i}", "cron": f"0 {h} * * *", **({"minReplicas": {"decode": f}} if f is not None else {})}
        for i, (h, f) in enumerate(zip(hours, floors, strict=True))
    ]
    now = datetime(2025, 3, 3, tzinfo=UTC).timestamp() + draw(st.integers(0, 86400 * 2))
    return raw, now


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_no_decision_goes_below_the_floor_in_force(data: st.DataObject) -> None:
    raw, now = data.draw(scheduled())
    found = in_force(entries(*raw), now)
    floor = max(1, (found.entry.min_replicas.decode or 0) if found and found.entry.min_replicas else 1)
    decode = data.draw(st.integers(0, 40))
    tps = data.draw(st.none() | st.floats(0, 5000))
    decision = run(observe(tps, decode), now=now, schedules=raw, **UNDAMPED)
    assert decision.decode >= floor
    if decision.reason in HOLD_REASONS:
        assert decision.decode >= decode


def test_entries_changing_over_a_day_move_the_floor_and_back() -> None:
    # A whole Monday in Berlin, every 15 minutes, at a constant load that needs 2 decode.
    schedules = [DAY, EVENING]
    prefill, decode, state = 2, 2, PolicyState()
    floors = []
    for tick in itertools.count():
        now = berlin(2025, 3, 3, 0, 0) + tick * 900
        if now >= berlin(2025, 3, 4, 0, 0):
            break
        decision = run(observe(200.0, decode, prefill=prefill), state, now=now, schedules=schedules)
        prefill, decode, state = decision.prefill, decision.decode, decision.state
        floors.append((datetime.fromtimestamp(now, BERLIN).hour, decode))
    assert {d for h, d in floors if 8 <= h < 20} == {6}
    assert {d for h, d in floors if h < 8 or h >= 21} == {2}
