"""File import (CSV, Parquet, feather, freqtrade JSON) on crafted files, and a file instrument through the graph."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import dagster as dg
import polars as pl
import pyarrow.feather as feather
import pytest

from maestro_pipeline.config import parse_config
from maestro_pipeline.errors import ConfigError, DataError
from maestro_pipeline.market import FileSource, read_bars_file
from tests.support.config import small_config
from tests.support.standin.graph import StandInGraph, failure_message, materialization_metadata

H = 3_600_000
T0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
ROWS = [(T0 + i * H, 100.0 + i, 101.5 + i, 99.25 + i, 100.5 + i, 10.0 * (i + 1)) for i in range(6)]


def expected() -> pl.DataFrame:
    return pl.DataFrame(ROWS, schema=["timestamp", "open", "high", "low", "close", "volume"], orient="row")


def same(imp) -> bool:
    return imp.bars.select("timestamp", "open", "high", "low", "close", "volume").equals(expected())


def iso(ts: int, fmt: str) -> str:
    return datetime.fromtimestamp(ts / 1000, tz=UTC).strftime(fmt)


@pytest.mark.parametrize(
    "header, stamp",
    [
        ("timestamp,open,high,low,close,volume", lambda t: str(t)),                           # ms
        ("time,Open,High,Low,Close,Volume", lambda t: str(t // 1000)),                         # s
        ("open_time,open,high,low,close,volume", lambda t: str(t * 1000)),                     # µs
        ("Date,Open,High,Low,Close,Volume BTC", lambda t: iso(t, "%Y-%m-%dT%H:%M:%SZ")),       # ISO, Z
        ("date,open,high,low,close,volume", lambda t: iso(t, "%Y-%m-%d %H:%M:%S")),            # naive = UTC
        ("Datetime,Open,High,Low,Close,Volume", lambda t: iso(t, "%Y-%m-%dT%H:%M:%S.000+0000")),  # Bitvavo style
    ],
)
def test_csv_header_and_timestamp_variants(tmp_path, header, stamp):
    p = tmp_path / "bars.csv"
    p.write_text(header + "\n" + "\n".join(",".join([stamp(r[0]), *map(repr, r[1:])]) for r in ROWS) + "\n")
    imp = read_bars_file(p)
    assert same(imp) and not imp.resorted and imp.timeframe_ms == H
    assert imp.bars["source"][0] == "file:bars"


def test_newest_first_csv_with_title_line_and_two_volume_columns(tmp_path):
    # CryptoDataDownload layout: a title line, newest first, hour as "09-AM", volume in BTC and in USD
    lines = ["Timestamps are UTC timezone,https://www.CryptoDataDownload.com",
             "date,symbol,open,high,low,close,volume_btc,volume"]
    for t, o, h, lo, c, v in reversed(ROWS):
        lines.append(f"{iso(t, '%Y-%m-%d %I-%p')},BTCUSD,{o!r},{h!r},{lo!r},{c!r},{v!r},{v * c!r}")
    p = tmp_path / "Coinbase_BTCUSD_1h.csv"
    p.write_text("\n".join(lines) + "\n")
    imp = read_bars_file(p)
    assert same(imp)
    assert imp.resorted and imp.newest_first and imp.columns["volume"] == "volume_btc"


def test_semicolon_csv_gz_and_headerless_binance_dump(tmp_path):
    p = tmp_path / "bars.csv.gz"
    body = "timestamp;open;high;low;close;volume\n" + "\n".join(";".join(map(str, r)) for r in ROWS)
    p.write_bytes(gzip.compress(body.encode()))
    assert same(read_bars_file(p))
    q = tmp_path / "BTCUSDT-1h-2024-01.csv"  # data.binance.vision: no header, 12 columns
    q.write_text("\n".join(",".join(map(str, [*r, r[0] + H - 1, 1.0, 5, 0.5, 0.5, 0])) for r in ROWS))
    assert same(read_bars_file(q))


def test_parquet_feather_and_freqtrade_json(tmp_path):
    df = expected()
    dated = (df.with_columns(pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("date"))
             .drop("timestamp"))
    dated.write_parquet(tmp_path / "a.parquet")
    feather.write_feather(dated.to_arrow(), tmp_path / "BTC_USDT-1h.feather")
    (tmp_path / "BTC_USDT-1h.json").write_text(json.dumps([list(r) for r in ROWS]))
    for name in ("a.parquet", "BTC_USDT-1h.feather", "BTC_USDT-1h.json"):
        imp = read_bars_file(tmp_path / name)
        assert same(imp), name


def test_duplicates_are_kept_and_counted(tmp_path):
    p = tmp_path / "d.csv"
    rows = ROWS + [ROWS[2]]
    p.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(",".join(map(str, r)) for r in rows))
    imp = read_bars_file(p)
    assert imp.duplicates == 1 and imp.bars.height == 7 and imp.resorted


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("missing.csv", None, "file not found"),
        ("empty.csv", "", "the file is empty"),
        ("blank.csv", "\n\n", "the file is empty"),
        ("cols.csv", "a,b,c\n1,2,3\n", "no recognizable columns"),
        ("noprice.csv", "timestamp,open,high,volume\n1704067200000,1,2,3\n", "no recognizable columns"),
        ("ts.csv", "timestamp,open,high,low,close,volume\nyesterday,1,2,0.5,1,3\n",
         "cannot read the timestamps in column 'timestamp'"),
        ("small.csv", "timestamp,open,high,low,close,volume\n12,1,2,0.5,1,3\n", "not a Unix time"),
        ("price.csv", "timestamp,open,high,low,close,volume\n1704067200000,1,abc,0.5,1,3\n",
         "not numbers (e.g. 'abc')"),
        ("bad.json", "[[1704067200000, 1, 2", "not valid JSON"),
        ("short.json", "[[1704067200000, 1, 2]]", "every row must be"),
        ("bad.parquet", "this is not parquet", "not a readable parquet file"),
        ("bars.xlsx", "x", "unknown file type '.xlsx'"),
        ("headonly.csv", "timestamp,open,high,low,close,volume\n", "holds no rows"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, name, content, message):
    p = tmp_path / name
    if content is not None:
        p.write_text(content)
    with pytest.raises(DataError) as e:
        read_bars_file(p)
    assert message in str(e.value) and "\n" not in str(e.value) and str(p) in str(e.value)


def test_file_source_fetch_contract(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(",".join(map(str, r)) for r in ROWS))
    src = FileSource(p, name="mine", now_ms=T0 + 5 * H)
    assert src.SOURCE == "file:mine"
    df = src.fetch("BTC/USDT", "1h", T0 + H, T0 + 10 * H)
    assert df["timestamp"].to_list() == [T0 + k * H for k in range(1, 5)]   # bar 5 still forming at now
    assert set(df["source"]) == {"file:mine"}
    with pytest.raises(DataError, match="bars are 1 hour apart but the instrument's timeframe is 4h; list the file "
                                        "with timeframe: 1h"):
        src.fetch("BTC/USDT", "4h", T0, T0 + 10 * H)


# ------------------------------------------------------------------ config and the graph


def test_file_instruments_in_config(tmp_path):
    base = {"exchange": "file", "symbol": "BTC/EUR", "timeframe": "1h", "start": "2024-01-01"}
    cfg = parse_config(small_config("lake", instruments=[
        {**base, "path": "data/a.csv", "name": "bitvavo"},
        {**base, "path": "data/b.csv", "name": "kraken"},
        {**base, "path": "data/OHLCV BTC-EUR.csv"},
    ]))
    assert [i.key for i in cfg.instrument_objs] == [
        "file_bitvavo.BTC_EUR.1h", "file_kraken.BTC_EUR.1h", "file_ohlcv_btc_eur.BTC_EUR.1h"]
    assert cfg.instruments[0].file_path(tmp_path) == tmp_path / "data/a.csv"
    for bad, msg in [
        ({**base}, "exchange: file needs path:"),
        ({**base, "path": "a.csv", "name": "Bad-Name"}, "name 'Bad-Name' must be lower-case"),
        ({"exchange": "binance", "symbol": "BTC/EUR", "timeframe": "1h", "start": "2024-01-01", "path": "a.csv"},
         "path and name are only for exchange: file"),
    ]:
        with pytest.raises(ConfigError, match="instruments\\[0\\]: " + msg):
            parse_config(small_config("lake", instruments=[bad]))


def test_file_instrument_through_raw_candles(tmp_path, standin):
    p = tmp_path / "mine.csv"
    p.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(",".join(map(str, r)) for r in reversed(ROWS)))
    inst = {"exchange": "file", "symbol": "BTC/EUR", "timeframe": "1h", "start": "2024-01-01", "path": "mine.csv",
            "name": "mine"}
    with dg.instance_for_test() as instance:
        g = StandInGraph(tmp_path, instance, standin, small_config(str(tmp_path / "lake"), instruments=[inst]))
        res = g.run(["raw_candles"], "2024-01", "file_mine.BTC_EUR.1h")
        df = g.lake.read_file("raw_candles", g.part("file_mine.BTC_EUR.1h", "2024-01"))
        assert df.select("timestamp", "open", "high", "low", "close", "volume").equals(expected())
        assert materialization_metadata(res, "raw_candles")["source"] == "file:mine"
        assert g.lake.path("raw_candles", g.part("file_mine.BTC_EUR.1h", "2024-01")).parts[-5] == "exchange=file_mine"
        p.unlink()
        res = g.run(["raw_candles"], "2024-01", "file_mine.BTC_EUR.1h", raise_on_error=False,
                    run_config={"ops": {"market_bars": {"config": {"full_refresh": True}}}})
        assert not res.success and "mine.csv: file not found" in failure_message(res)
        assert g.lake.read_file("raw_candles", g.part("file_mine.BTC_EUR.1h", "2024-01")).height == 6
