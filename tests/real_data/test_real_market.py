"""Real candles through the real ccxt client and the importers: the stand-in replays MAESTRO_DATASETS files.

* Each original file (Bitvavo CSV, newest-first Coinbase CSV with a title line, freqtrade feather) imports to
  exactly the rows of its Parquet twin (the Coinbase file after sorting, as MANIFEST.md describes it).
* ``raw_candles`` materialized against the stand-in returns exactly the replayed rows, month by month, for
  1h (Bitvavo BTC/EUR served as Binance spot BTCEUR, gaps included, 100 bars a page) and 1m (FTX BTC-PERP
  served as Binance USD-M BTC/USDT:USDT, 500 bars a page as ccxt's features say for linear swaps).
"""

from __future__ import annotations

import polars as pl
import pytest

from maestro_pipeline.durations import month_bounds
from maestro_pipeline.market import FileSource, clear_market_cache, read_bars_file
from tests.support.config import ms, small_config
from tests.support.standin import real_listing, start
from tests.support.standin.graph import StandInGraph, checksum, materialization_metadata

pytestmark = pytest.mark.real_data

OHLCV = ["timestamp", "open", "high", "low", "close", "volume"]

ORIGINALS = {
    "OHLCV_BTC-EUR_BITVAVO_1h_2019-12-31-23-00_2024-05-31-22-00.csv": ("iaf_bitvavo_btceur_1h.parquet", False),
    "Coinbase_BTCUSD_1h.csv": ("tt_coinbase_btcusd_1h.parquet", True),
    "UNITTEST_BTC-1m.feather": ("ft_unittest_btc_1m.parquet", False),
}


@pytest.mark.parametrize("original", sorted(ORIGINALS))
def test_original_file_imports_to_its_parquet_twin(datasets, original):
    twin, newest_first = ORIGINALS[original]
    imp = read_bars_file(datasets / original)
    want = pl.read_parquet(datasets / twin).select(OHLCV)
    got = imp.bars.select(OHLCV)
    assert got.height == want.height
    assert got.equals(want)                       # same timestamps and values, ascending
    assert imp.resorted == newest_first and imp.newest_first == newest_first
    assert imp.duplicates == 0


def test_coinbase_volume_is_the_btc_column(datasets):
    imp = read_bars_file(datasets / "Coinbase_BTCUSD_1h.csv")
    assert imp.columns == {"timestamp": "date", "open": "open", "high": "high", "low": "low", "close": "close",
                           "volume": "volume_btc"}


def test_file_source_serves_a_month_of_the_bitvavo_csv(datasets):
    src = FileSource(datasets / "OHLCV_BTC-EUR_BITVAVO_1h_2019-12-31-23-00_2024-05-31-22-00.csv", name="bitvavo")
    lo, hi = month_bounds("2023-07")
    got = src.fetch("BTC/EUR", "1h", lo, hi)
    want = pl.read_parquet(datasets / "iaf_bitvavo_btceur_1h.parquet").filter(
        (pl.col("timestamp") >= lo) & (pl.col("timestamp") < hi))
    assert got.height == want.height == 744 - 6 and checksum(got) == checksum(want)  # the 6 h gap stays a gap
    assert set(got["source"]) == {"file:bitvavo"}


def test_raw_candles_1h_real_bitvavo_through_ccxt(datasets, tmp_path, instance):
    twin = pl.read_parquet(datasets / "iaf_bitvavo_btceur_1h.parquet").select(OHLCV)
    si = start([real_listing("BTC/EUR", "iaf_bitvavo_btceur_1h.parquet", datasets)], now_ms=ms(2024, 5, 31, 23))
    clear_market_cache()
    try:
        inst = {"exchange": "binance", "symbol": "BTC/EUR", "timeframe": "1h", "start": "2023-06-01"}
        g = StandInGraph(tmp_path, instance, si, small_config(str(tmp_path / "lake"), instruments=[inst]),
                         page_limit=100)
        for month in ("2023-06", "2023-07", "2023-08", "2024-05"):
            res = g.run(["raw_candles"], month, "binance.BTC_EUR.1h")
            lo, hi = month_bounds(month)
            want = twin.filter((pl.col("timestamp") >= lo) & (pl.col("timestamp") < hi))
            got = g.lake.read_file("raw_candles", g.part("binance.BTC_EUR.1h", month))
            assert got.height == want.height > 700, month
            assert (got["timestamp"][0], got["timestamp"][-1]) == (want["timestamp"][0], want["timestamp"][-1])
            assert checksum(got) == checksum(want), month
            assert materialization_metadata(res, "raw_candles")["source"] == "binance"
        assert si.count("/api/v3/klines") >= 4 * 7   # 100 bars a page
    finally:
        si.close()
        clear_market_cache()


def test_raw_candles_1m_real_perpetual_through_ccxt(datasets, tmp_path, instance):
    twin = pl.read_parquet(datasets / "nt_ftx_btcperp_1m.parquet").select(OHLCV)
    last = int(twin["timestamp"][-1])
    si = start([real_listing("BTC/USDT:USDT", "nt_ftx_btcperp_1m.parquet", datasets)], now_ms=last + 60_000)
    clear_market_cache()
    try:
        inst = {"exchange": "binance", "symbol": "BTC/USDT:USDT", "timeframe": "1m", "start": "2022-01-01"}
        g = StandInGraph(tmp_path, instance, si, small_config(str(tmp_path / "lake"), instruments=[inst]))
        for month in ("2022-01", "2022-02"):
            g.run(["raw_candles"], month, "binance.BTC_USDT~USDT.1m")
            lo, hi = month_bounds(month)
            want = twin.filter((pl.col("timestamp") >= lo) & (pl.col("timestamp") < hi))
            got = g.lake.read_file("raw_candles", g.part("binance.BTC_USDT~USDT.1m", month))
            assert got.height == want.height and got["timestamp"][-1] == want["timestamp"][-1]
            assert checksum(got) == checksum(want), month
        assert g.lake.read_file("raw_candles", g.part("binance.BTC_USDT~USDT.1m", "2022-01")).height == 31 * 1440
        assert si.count("/fapi/v1/klines") >= 31 * 1440 // 500
    finally:
        si.close()
        clear_market_cache()
