"""`heteroscale run` sets the garbage collector's thresholds before kopf starts."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from heteroscale.operator import collector, main


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("thresholds")
def test_run_tunes_the_collector_before_kopf_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, ...]] = []

    def kopf_run(**_: Any) -> None:
        seen.append(gc.get_threshold())

    monkeypatch.setattr(main, "check_credentials", lambda: None)
    monkeypatch.setattr(main, "configure_logging", lambda *_: None)  # the test process keeps its logging
    monkeypatch.setattr(main.kopf, "run", kopf_run)
    main.run(namespaces=["ns"], metrics_port=0, health_port=0, peering="")
    assert seen == [collector.THRESHOLDS]
