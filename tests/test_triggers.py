"""The decisions behind the nightly schedule and the re-optimization sensor."""

from __future__ import annotations

from datetime import date

from maestro_pipeline.instruments import Instrument
from maestro_pipeline.timeframes import DAY_MS
from maestro_pipeline.triggers import months_to_refresh, reoptimization_due

from .test_ingest import ms


def test_months_to_refresh():
    inst = Instrument("synthetic", "BTC/USDT", "1h", date(2025, 1, 1))
    assert months_to_refresh(inst, ms(2026, 3, 15, 0, 30)) == ["2026-03"]
    assert months_to_refresh(inst, ms(2026, 3, 1, 0, 30)) == ["2026-02", "2026-03"]
    assert months_to_refresh(inst, ms(2026, 1, 2, 0, 30)) == ["2025-12", "2026-01"]
    late = Instrument("synthetic", "BTC/USDT", "1h", date(2026, 3, 1))
    assert months_to_refresh(late, ms(2026, 3, 1, 0, 30)) == ["2026-03"]
    ended = Instrument("synthetic", "BTC/USDT", "1h", date(2025, 1, 1), date(2025, 6, 1))
    assert months_to_refresh(ended, ms(2026, 3, 1, 0, 30)) == []


def test_reoptimization_due():
    test = 10 * DAY_MS
    assert reoptimization_due(None, None, test, 0) == (False, "no validated bars yet")
    assert not reoptimization_due(100, None, test, 200)[0]
    assert reoptimization_due(200, None, test, 200)[0]
    last = 1000 * DAY_MS
    assert not reoptimization_due(last + test - 1, last, test, 0)[0]   # one bar short of a new test window
    assert reoptimization_due(last + test, last, test, 0)[0]
