"""Monthly ingestion: whole months, only completed bars, incremental append, idempotent re-runs."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from maestro_pipeline.durations import month_bounds, month_of
from maestro_pipeline.errors import DataError
from maestro_pipeline.instruments import Instrument
from maestro_pipeline.market import SyntheticMarket, ingest_month
from tests.support.config import ms

H = 3_600_000


def test_month_bounds():
    assert month_bounds("2025-12") == (ms(2025, 12, 1), ms(2026, 1, 1))
    assert month_of(ms(2025, 12, 31, 23)) == "2025-12"


def test_full_month_then_incremental_append_is_idempotent():
    inst = Instrument("synthetic", "BTC/USDT", "1h", date(2026, 1, 1))
    mid = ms(2026, 3, 10, 12, 30)
    first = ingest_month(SyntheticMarket(seed=1, now_ms=mid), inst, "2026-03", None, mid)
    assert first.bars["timestamp"].min() == ms(2026, 3, 1)
    # the bar opened at 12:00 is still forming at 12:30: not stored
    assert first.bars["timestamp"].max() == ms(2026, 3, 10, 11)
    later = ms(2026, 3, 12, 0, 5)
    second = ingest_month(SyntheticMarket(seed=1, now_ms=later), inst, "2026-03", first.bars, later)
    assert second.new_rows == (ms(2026, 3, 11, 23) - ms(2026, 3, 10, 11)) // H
    fresh = ingest_month(SyntheticMarket(seed=1, now_ms=later), inst, "2026-03", None, later)
    assert second.bars.equals(fresh.bars)  # appending equals fetching everything at once
    third = ingest_month(SyntheticMarket(seed=1, now_ms=later), inst, "2026-03", second.bars, later)
    assert third.new_rows == 0 and not third.changed and third.bars.equals(second.bars)


def test_months_outside_the_instrument_fetch_nothing():
    inst = Instrument("synthetic", "BTC/USDT", "1h", date(2026, 2, 15), date(2026, 4, 1))
    now = ms(2026, 9, 1)
    m = SyntheticMarket(seed=1, now_ms=now)
    assert ingest_month(m, inst, "2026-01", None, now).note.endswith("before the instrument's start: nothing to fetch")
    assert ingest_month(m, inst, "2026-05", None, now).note.endswith("after the instrument's end: nothing to fetch")
    open_ended = Instrument("synthetic", "BTC/USDT", "1h", date(2026, 2, 15))
    assert ingest_month(m, open_ended, "2026-11", None, now).note.endswith("in the future: nothing to fetch")
    feb = ingest_month(m, inst, "2026-02", None, now).bars
    assert feb["timestamp"].min() == ms(2026, 2, 15)


def test_sources_are_never_stitched():
    inst = Instrument("synthetic", "BTC/USDT", "1h", date(2026, 1, 1))
    now = ms(2026, 3, 20)
    m = SyntheticMarket(seed=1, now_ms=now)
    stored = ingest_month(m, inst, "2026-03", None, ms(2026, 3, 5)).bars.with_columns(pl.lit("binance").alias("source"))
    with pytest.raises(DataError, match="sources are never stitched"):
        ingest_month(m, inst, "2026-03", stored, now)
