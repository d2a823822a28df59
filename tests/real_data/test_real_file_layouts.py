"""Issue 14 on real candles: a real file rewritten by pandas into the layouts users bring (``to_csv`` with its
index, ``;`` with decimal commas, a wide two-asset file) imports to exactly the rows of its Parquet twin, and a
real daily file's months end at its last bar (not today), all served from one read."""

from __future__ import annotations

from datetime import date

import pandas as pd
import polars as pl
import pytest

from maestro_pipeline.instruments import Instrument
from maestro_pipeline.market import FileSource, clear_file_cache, ingest_months, instrument_months, read_bars_file
from tests.support.config import NOW_MS

pytestmark = pytest.mark.real_data

OHLCV = ["timestamp", "open", "high", "low", "close", "volume"]


def _pandas(datasets, name: str) -> pd.DataFrame:
    df = pl.read_parquet(datasets / name).select(OHLCV).to_pandas()
    df.index = pd.to_datetime(df.pop("timestamp"), unit="ms", utc=True)
    df.index.name = None
    return df


@pytest.mark.parametrize("layout", ["to_csv_index", "semicolon_decimal_comma"])
def test_real_bitvavo_in_pandas_layouts_imports_to_its_twin(datasets, tmp_path, layout):
    df = _pandas(datasets, "iaf_bitvavo_btceur_1h.parquet")
    p = tmp_path / f"{layout}.csv"
    if layout == "to_csv_index":
        df.to_csv(p)
    else:
        df.to_csv(p, sep=";", decimal=",", index_label="Datum")
    got = read_bars_file(p).bars.select(OHLCV)
    want = pl.read_parquet(datasets / "iaf_bitvavo_btceur_1h.parquet").select(OHLCV)
    assert got.height == 38_682 and got.equals(want)


def test_real_wide_file_with_two_assets_picks_each(datasets, tmp_path):
    btc = _pandas(datasets, "iaf_bitvavo_btceur_1h.parquet")
    eth = _pandas(datasets, "iaf_bitvavo_etheur_1h.parquet")
    wide = btc.add_prefix("BTC:").join(eth.add_prefix("ETH:"), how="inner")
    p = tmp_path / "wide.csv"
    wide.to_csv(p, index_label="date")
    for asset, name in (("BTC", "iaf_bitvavo_btceur_1h.parquet"), ("ETH", "iaf_bitvavo_etheur_1h.parquet")):
        got = read_bars_file(p, columns=asset).bars.select(OHLCV)
        want = pl.read_parquet(datasets / name).select(OHLCV).filter(pl.col("timestamp").is_in(got["timestamp"]))
        assert got.height == len(wide) and got.equals(want)


def test_real_daily_file_months_end_at_its_last_bar(datasets):
    clear_file_cache()
    src = FileSource(datasets / "lean_coinbase_btcusd_1d.parquet", name="lean")
    inst = Instrument("file_lean", "BTC/USD", "1d", date(2014, 12, 1))
    months = instrument_months(src, inst, NOW_MS)
    assert months[0] == "2014-12" and months[-1] == "2018-08" and len(months) == 45
    got = ingest_months(src, inst, months, {}, NOW_MS)
    assert sum(got[m].bars.height for m in months) == 1_318
