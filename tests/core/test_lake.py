"""The lake: hive layout, atomic replace, lineage in the file, transactions that roll back, DuckDB views."""

from __future__ import annotations

import os
from datetime import date

import duckdb
import polars as pl
import pytest

from maestro_pipeline.instruments import Instrument
from maestro_pipeline.lake import Lake, data_version
from tests.support.bars import flat_bars


def _df(n: int, start: int = 0) -> pl.DataFrame:
    return pl.DataFrame({"timestamp": list(range(start, start + n)), "x": [float(i) for i in range(n)]})


def test_hive_path_and_lineage(tmp_path):
    lake = Lake(tmp_path)
    inst = Instrument("synthetic", "BTC/USDT", "1h", date(2025, 1, 1))
    part = Lake.month_partition(inst, "2025-02")
    w = lake.write_table(_df(5), "raw_candles", part, lineage={"run_id": "r1"})
    assert w.path == tmp_path / "raw_candles/exchange=synthetic/symbol=BTC_USDT/timeframe=1h/month=2025-02/data.parquet"
    lin = Lake.lineage(w.path)
    assert lin["asset"] == "raw_candles" and lin["run_id"] == "r1" and lin["partition"]["month"] == "2025-02"
    assert lin["data_version"] == w.data_version == data_version(_df(5).to_arrow())


def test_rewrite_replaces_not_duplicates_and_leaves_no_temp(tmp_path):
    lake = Lake(tmp_path)
    lake.write_table(_df(5), "a", {"k": "1"})
    lake.write_table(_df(3, 100), "a", {"k": "1"})
    files = list((tmp_path / "a").rglob("*"))
    assert [f.name for f in files if f.is_file()] == ["data.parquet"]
    assert lake.read_file("a", {"k": "1"})["timestamp"].to_list() == [100, 101, 102]


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    lake = Lake(tmp_path)
    lake.write_table(_df(5), "a", {"k": "1"})
    import pyarrow.parquet as pq

    def boom(table, where, **kw):
        with open(where, "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", boom)
    with pytest.raises(OSError):
        lake.write_table(_df(9), "a", {"k": "1"})
    assert lake.read_file("a", {"k": "1"}).height == 5
    assert sorted(os.listdir(tmp_path / "a/k=1")) == ["data.parquet"]


def test_transaction_is_all_or_nothing(tmp_path):
    lake = Lake(tmp_path)
    lake.write_table(_df(2), "a", {"k": "1"})
    with pytest.raises(RuntimeError):
        with lake.transaction() as tx:
            lake.write_table(_df(7), "a", {"k": "1"}, tx=tx)
            lake.write_table(_df(7), "b", {"k": "1"}, tx=tx)
            raise RuntimeError("the report failed half-way")
    assert lake.read_file("a", {"k": "1"}).height == 2
    assert not lake.exists("b", {"k": "1"})
    assert [p.name for p in (tmp_path / "a/k=1").iterdir()] == ["data.parquet"]
    with lake.transaction() as tx:
        lake.write_table(_df(7), "a", {"k": "1"}, tx=tx)
        lake.write_table(_df(7), "b", {"k": "1"}, tx=tx)
    assert lake.read_file("a", {"k": "1"}).height == 7 and lake.read_file("b", {"k": "1"}).height == 7


def test_read_bars_scans_all_months_in_order(tmp_path):
    lake = Lake(tmp_path)
    inst = Instrument("synthetic", "BTC/USDT", "1h", date(2025, 1, 1))
    h = 3_600_000
    for month, start in (("2025-02", 20), ("2025-01", 0)):
        lake.write_table(flat_bars(5, price=1.0, start_ms=start * h), "validated_bars",
                         Lake.month_partition(inst, month))
    bars = lake.read_bars(inst)
    assert bars["timestamp"].to_list() == [i * h for i in range(5)] + [(20 + i) * h for i in range(5)]
    assert lake.read_bars(inst, start_ms=2 * h, end_ms=22 * h).height == 5


def test_catalog_views(tmp_path):
    lake = Lake(tmp_path)
    lake.write_table(_df(4), "raw_candles", {"exchange": "x", "month": "2025-01"})
    lake.write_table(_df(3), "raw_candles", {"exchange": "x", "month": "2025-02"})
    path = lake.build_catalog()
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT month) FROM candles").fetchone() == (7, 2)
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert views == {"candles"}  # only assets that have files get a view
