"""A partial reading (some ready decode instances do not report) never scales anything in."""

from __future__ import annotations

from dataclasses import replace

import pytest

from heteroscale.api.enums import Reason
from heteroscale.api.status import PolicyState
from tests.unit.test_policy import observe, run


@pytest.mark.parametrize(
    ("tps", "reporting", "expected", "reason"),
    [
        # 4 ready at 100 tok/s each. 2 report 150 tok/s between them: read alone, 2 instances.
        (150.0, 2, 4, Reason.METRIC_PARTIAL),
        (400.0, 3, 4, Reason.METRIC_PARTIAL),  # even on target: it only says "at least"
        # The lower bound alone already asks for more: scaling out is safe.
        (900.0, 3, 9, Reason.SCALED_UP),
        # Every ready instance reports: the ordinary rules.
        (150.0, 4, 2, Reason.SCALED_DOWN),
        # More series than ready pods (one just removed, still in the window) is not partial.
        (150.0, 5, 2, Reason.SCALED_DOWN),
        (150.0, None, 2, Reason.SCALED_DOWN),  # unknown (a custom query): no partial check
    ],
)
def test_partial_readings_scale_out_but_never_in(
    tps: float, reporting: int | None, expected: int, reason: Reason
) -> None:
    decision = run(replace(observe(tps, 4), decode_reporting=reporting))
    assert (decision.decode, decision.reason) == (expected, reason), decision.message
    if reason is Reason.METRIC_PARTIAL:
        assert decision.held
        assert f"only {reporting} of 4" in decision.message


def test_zeros_from_a_partial_set_do_not_count_towards_zero_traffic() -> None:
    state = PolicyState(zero_readings=100)
    decision = run(replace(observe(0.0, 4), decode_reporting=1), state)
    assert (decision.decode, decision.reason) == (4, Reason.METRIC_PARTIAL)
    assert decision.state.zero_readings == 0, "a partial zero is no evidence of zero traffic"
