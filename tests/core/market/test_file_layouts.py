"""Real-world candle-file layouts (issue 14) and hostile time columns (issue 17) on crafted files.

Where a library writes the layout (pandas' ``to_csv`` with an index, MultiIndex columns, ``;`` with decimal
commas), the file is written by pandas itself, so the test reads what pandas really produces."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import polars as pl
import pytest

from maestro_pipeline.errors import DataError
from maestro_pipeline.instruments import Instrument
from maestro_pipeline.market import FileSource, clear_file_cache, ingest_months, instrument_months, read_bars_file
from maestro_pipeline.market import files as files_mod

H = 3_600_000
D = 24 * H
T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)


def frame(n: int = 6, step: str = "1h") -> pd.DataFrame:
    idx = pd.date_range("2024-01-01", periods=n, freq=step, tz="UTC", name=None)
    o = 100.0 + np.arange(n)
    return pd.DataFrame({"Open": o, "High": o + 1.5, "Low": o - 0.75, "Close": o + 0.5, "Volume": 10.0 * (o - 99)},
                        index=idx)


def ohlcv(imp) -> pl.DataFrame:
    return imp.bars.select("timestamp", "open", "high", "low", "close", "volume")


def reference(df: pd.DataFrame) -> pl.DataFrame:
    ts = (df.index.tz_convert("UTC").tz_localize(None).astype("datetime64[ms]").astype("int64"))
    return pl.DataFrame({"timestamp": ts, **{k.lower(): df[k].to_numpy() for k in
                                             ("Open", "High", "Low", "Close", "Volume")}})


def test_pandas_to_csv_index_layout(tmp_path):
    df = frame()
    p = tmp_path / "pd.csv"
    df.to_csv(p)                       # first header cell empty, the dates under it
    assert p.read_text().startswith(",Open,")
    imp = read_bars_file(p)
    assert ohlcv(imp).equals(reference(df))
    assert any("pandas to_csv" in n for n in imp.notes)


def test_semicolon_with_decimal_commas(tmp_path):
    df = frame().assign(Close=lambda x: x["Close"] + 0.125)
    p = tmp_path / "eu.csv"
    df.to_csv(p, sep=";", decimal=",", index_label="Date")
    assert "100,625" in p.read_text()
    imp = read_bars_file(p)
    assert ohlcv(imp).equals(reference(df))
    assert "decimal commas" in imp.notes


def test_yfinance_multiindex_header_rows(tmp_path):
    df = frame(4, "1D")
    df.columns = pd.MultiIndex.from_product([list(df.columns), ["BTC-USD"]], names=["Price", "Ticker"])
    df.index.name = "Date"
    p = tmp_path / "yf.csv"
    df.to_csv(p)
    assert p.read_text().splitlines()[1].startswith("Ticker,")
    imp = read_bars_file(p)
    flat = df.copy()
    flat.columns = [c[0] for c in df.columns]
    assert ohlcv(imp).equals(reference(flat))


def test_wide_multi_asset_file_needs_a_selector(tmp_path):
    p = tmp_path / "wide.csv"
    lines = ["date,BTC:open,BTC:high,BTC:low,BTC:close,BTC:volume,ETH:open,ETH:high,ETH:low,ETH:close,ETH:volume"]
    for i in range(3):
        d = (datetime(2024, 1, 1, tzinfo=UTC) + pd.Timedelta(days=i)).strftime("%Y-%m-%d")
        lines.append(f"{d},{40000 + i},{40100 + i},{39900 + i},{40050 + i},{5 + i},{2000 + i},{2010 + i},{1990 + i},"
                     f"{2005 + i},{50 + i}")
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"a wide file with 2 assets \(BTC, ETH\): pick one with `columns: BTC`"):
        read_bars_file(p)
    eth = read_bars_file(p, columns="eth")
    assert eth.bars["open"].to_list() == [2000.0, 2001.0, 2002.0]
    assert eth.bars["volume"].to_list() == [50.0, 51.0, 52.0]
    assert eth.bars["timestamp"].to_list() == [T0, T0 + D, T0 + 2 * D]
    with pytest.raises(DataError, match="columns: 'SOL' is none of the file's 2 assets"):
        read_bars_file(p, columns="SOL")


def test_explicit_column_mapping_and_unsupported_layout_names_the_supported_ones(tmp_path):
    p = tmp_path / "odd.csv"
    p.write_text("When,A,B,C,D,Qty\n2024-01-01 00:00,1,2,0.5,1.5,7\n2024-01-01 01:00,1.5,2.5,1,2,8\n")
    with pytest.raises(DataError) as e:
        read_bars_file(p)
    msg = str(e.value)
    assert "no recognizable columns" in msg and "pandas' to_csv index layout" in msg and "columns: {timestamp" in msg
    imp = read_bars_file(p, columns={"timestamp": "When", "open": "A", "high": "B", "low": "C", "close": "D",
                                     "volume": "Qty"})
    assert imp.bars["close"].to_list() == [1.5, 2.0] and imp.bars["timestamp"].to_list() == [T0, T0 + H]


def test_missing_volume_is_null_not_zero(tmp_path):
    p = tmp_path / "novol.csv"
    p.write_text("timestamp,open,high,low,close\n" + "".join(f"{T0 + i * H},1,2,0.5,1.5\n" for i in range(3)))
    imp = read_bars_file(p)
    assert not imp.has_volume and imp.bars["volume"].null_count() == 3
    assert any("no volume column" in n for n in imp.notes)


def test_mixed_second_and_millisecond_timestamps_are_read_per_value(tmp_path):
    n = 2000
    stamps = [T0 + i * H for i in range(n)]
    cells = [str(t // 1000) if i % 7 == 3 else str(t) for i, t in enumerate(stamps)]   # 286 rows in seconds
    p = tmp_path / "mixed.csv"
    p.write_text("timestamp,open,high,low,close,volume\n" + "".join(f"{c},1,2,0.5,1.5,3\n" for c in cells))
    imp = read_bars_file(p)
    assert imp.bars.height == n and imp.bars["timestamp"].to_list() == stamps      # no row lost, none in 1970
    assert any("mixes units" in x and "286 in s" in x for x in imp.notes)


def test_overflowing_timestamp_says_so(tmp_path):
    p = tmp_path / "big.csv"
    p.write_text(f"timestamp,open,high,low,close,volume\n{T0},1,2,0.5,1.5,3\n1e25,1,2,0.5,1.5,3\n")
    with pytest.raises(DataError, match=r"timestamp 1e\+25 in data row 2 .*\(too large for any unit: it overflows\)"):
        read_bars_file(p)


def test_ambiguous_day_month_order_is_refused_unless_configured(tmp_path):
    p = tmp_path / "dm.csv"
    p.write_text("date,open,high,low,close,volume\n" + "".join(f"0{d}/03/2024,1,2,0.5,1.5,3\n" for d in (1, 2, 3)))
    with pytest.raises(DataError, match="read day-first or month-first alike .* set day_first: true"):
        read_bars_file(p)
    day_first = read_bars_file(p, day_first=True).bars["timestamp"].to_list()
    assert day_first == [int(datetime(2024, 3, d, tzinfo=UTC).timestamp() * 1000) for d in (1, 2, 3)]
    month_first = read_bars_file(p, day_first=False).bars["timestamp"].to_list()
    assert month_first == [int(datetime(2024, m, 3, tzinfo=UTC).timestamp() * 1000) for m in (1, 2, 3)]
    q = tmp_path / "dm13.csv"   # a 13th day decides the order from the file itself
    q.write_text("date,open,high,low,close,volume\n13/03/2024,1,2,0.5,1.5,3\n14/03/2024,1,2,0.5,1.5,3\n")
    assert read_bars_file(q).bars["timestamp"][0] == int(datetime(2024, 3, 13, tzinfo=UTC).timestamp() * 1000)
    with pytest.raises(DataError, match="has day-first dates .* but day_first is False"):
        read_bars_file(q, day_first=False)


def test_monthly_bars_name_the_supported_timeframes(tmp_path):
    p = tmp_path / "monthly.csv"
    months = pd.date_range("2020-01-01", periods=12, freq="MS", tz="UTC")
    p.write_text("date,open,high,low,close,volume\n" + "".join(f"{m:%Y-%m-%d},1,2,0.5,1.5,3\n" for m in months))
    with pytest.raises(DataError, match=r"about 1 month .* not a supported timeframe\); Maestro researches .*1d"):
        FileSource(p).fetch("BTC/USD", "1d", 0, 2**62)


def test_end_defaults_to_the_files_last_bar_and_months_come_from_one_read(tmp_path, monkeypatch):
    df = frame(24 * 75, "1h")                  # 2024-01-01 .. 2024-03-15: three months
    p = tmp_path / "h.csv"
    df.to_csv(p, index_label="timestamp")
    clear_file_cache()
    reads = []
    real = files_mod.read_bars_file
    monkeypatch.setattr(files_mod, "read_bars_file", lambda *a, **k: reads.append(1) or real(*a, **k))
    src = FileSource(p, name="h")
    inst = Instrument("file_h", "BTC/USD", "1h", date(2024, 1, 1))
    now = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
    months = instrument_months(src, inst, now)
    assert months == ["2024-01", "2024-02", "2024-03"]          # not up to today
    got = ingest_months(src, inst, months, {}, now)
    assert [got[m].bars.height for m in months] == [31 * 24, 29 * 24, 15 * 24]
    assert pl.concat([got[m].bars for m in months]).select(
        "timestamp", "open", "high", "low", "close", "volume").equals(reference(df))
    assert len(reads) == 1                                      # one parse of the file for all months
    later = ingest_months(src, inst, ["2024-04"], {}, now)["2024-04"]
    assert later.bars.height == 0 and "after the source's last bar" in later.note


def test_a_revised_newest_bar_replaces_the_stored_one(tmp_path):
    df = frame(5, "1h")
    p = tmp_path / "r.csv"
    df.to_csv(p, index_label="timestamp")
    clear_file_cache()
    inst = Instrument("file_r", "BTC/USD", "1h", date(2024, 1, 1))
    now = T0 + 10 * H
    first = ingest_months(FileSource(p, name="r"), inst, ["2024-01"], {}, now)["2024-01"]
    df.iloc[-1, df.columns.get_loc("Close")] = 777.0          # the source now reports its newest bar differently
    df.iloc[-1, df.columns.get_loc("High")] = 778.0
    df.to_csv(p, index_label="timestamp")
    second = ingest_months(FileSource(p, name="r"), inst, ["2024-01"], {"2024-01": first.bars}, now)["2024-01"]
    assert second.revised == 1 and second.new_rows == 0 and second.changed
    assert second.bars["close"].to_list() == [100.5, 101.5, 102.5, 103.5, 777.0]
    again = ingest_months(FileSource(p, name="r"), inst, ["2024-01"], {"2024-01": second.bars}, now)["2024-01"]
    assert again.revised == 0 and not again.changed


def test_a_volume_strategy_refuses_bars_without_volume(tmp_path):
    from maestro_pipeline.schema import to_pandas_bars
    from maestro_pipeline.strategies import get_strategy

    p = tmp_path / "novol.csv"
    p.write_text("timestamp,open,high,low,close\n" + "".join(f"{T0 + i * H},{100 + i % 5},{102 + i % 5},{99 + i % 5},"
                                                              f"{101 + i % 5}\n" for i in range(60)))
    bars = to_pandas_bars(read_bars_file(p).bars)
    with pytest.raises(DataError, match="this strategy reads volume, but the bars have none"):
        get_strategy("vwap").signals(bars, {"window": 10, "k": 1.0})
    get_strategy("ema_cross").signals(bars, {"fast": 3, "slow": 8})   # prices only: runs
