"""The decisions behind the nightly schedule and the re-optimization sensor."""

from __future__ import annotations

from datetime import date

from maestro_pipeline.instruments import Instrument
from maestro_pipeline.timeframes import DAY_MS
from maestro_pipeline.walkforward import months_to_refresh, splits_due
from tests.support.config import ms


def test_months_to_refresh():
    inst = Instrument("synthetic", "BTC/USDT", "1h", date(2025, 1, 1))
    assert months_to_refresh(inst, ms(2026, 3, 15, 0, 30)) == ["2026-03"]
    assert months_to_refresh(inst, ms(2026, 3, 1, 0, 30)) == ["2026-02", "2026-03"]
    assert months_to_refresh(inst, ms(2026, 1, 2, 0, 30)) == ["2025-12", "2026-01"]
    late = Instrument("synthetic", "BTC/USDT", "1h", date(2026, 3, 1))
    assert months_to_refresh(late, ms(2026, 3, 1, 0, 30)) == ["2026-03"]
    ended = Instrument("synthetic", "BTC/USDT", "1h", date(2025, 1, 1), date(2025, 6, 1))
    assert months_to_refresh(ended, ms(2026, 3, 1, 0, 30)) == []


def test_splits_due():
    """The sensor's decision from the split plan of the current data vs the stored splits (the plan itself is
    research.make_splits; a new complete test window moves its last test end)."""
    test = 10 * DAY_MS
    assert splits_due(None, None) == (False, "not enough validated data for one split yet")
    assert not splits_due(None, 5 * test)[0]
    assert splits_due(200, None)[0]
    last = 1000 * DAY_MS
    assert not splits_due(last, last)[0]   # one bar short of a new test window: the plan has not moved
    assert splits_due(last + test, last)[0]
