"""Each group ticks once a period at a phase of its own, and returns to it after any delay."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from heteroscale.operator.cadence import next_tick, phase

INTERVAL = 15.0


def test_phases_are_stable_and_spread_over_the_period() -> None:
    assert phase("serving", "g1") == phase("serving", "g1"), "the same after a restart, on every replica"
    assert phase("serving", "g1") != phase("other", "g1")
    phases = [phase("serving", f"g{i}") for i in range(1000)]
    assert all(0 <= p < 1 for p in phases)
    # A thousand groups: every fifteenth of the period (one second of 15) holds 67 of them on
    # average, give or take 8 (binomial); within 30 is within four of those.
    per_second = [sum(1 for p in phases if s / 15 <= p < (s + 1) / 15) for s in range(15)]
    assert min(per_second) > 37, per_second
    assert max(per_second) < 97, per_second


def test_in_phase_a_tick_follows_one_period_after_the_last_start_however_long_it_took() -> None:
    started = 100 * INTERVAL + 0.25 * INTERVAL
    for took in (0.0, 1.0, 9.0, 14.9):
        assert next_tick(started, started + took, INTERVAL, 0.25) == started + INTERVAL


def test_a_tick_that_outlasted_its_period_is_followed_at_the_next_instant_of_its_phase() -> None:
    started = 100 * INTERVAL
    assert next_tick(started, started + 16.0, INTERVAL, 0.0) == started + 2 * INTERVAL


@given(
    started=st.floats(0, 1e6),
    took=st.floats(0, 100),
    share=st.floats(0, 0.999),
    interval=st.sampled_from([1.0, 15.0, 60.0]),
)
def test_out_of_phase_a_group_returns_to_its_phase_on_the_next_tick(
    started: float, took: float, share: float, interval: float
) -> None:
    now = started + took
    at = next_tick(started, now, interval, share)
    assert at >= now
    assert at >= started + interval / 2 - 1e-6, "never twice within half a period"
    if took <= interval / 2:
        assert at <= started + 1.5 * interval + 1e-6, "at most a period and a half apart"
    cycles = (at - share * interval) / interval
    assert abs(cycles - round(cycles)) < 1e-6, "on its phase"
    # From there on, one period apart.
    assert abs(next_tick(at, at + took % interval / 2, interval, share) - (at + interval)) < 1e-6
