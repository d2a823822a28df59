"""Litter of killed writers: a ``kill -9`` between staging and renaming leaves a temp file (and a catalog build
a ``.catalog.*.duckdb``); the next write of that partition (the next catalog build) removes those of dead writers
only, never a live writer's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl

from maestro_pipeline.lake import FOREIGN_LITTER_AGE_S, Lake, is_litter

ROOT = Path(__file__).resolve().parents[2]
PART = {"exchange": "synthetic", "symbol": "BTC_USDT", "timeframe": "1h", "month": "2026-01"}


def _writer(tmp_path: Path, body: str) -> subprocess.Popen:
    """A real process that stages lake files, says READY and then waits to be killed."""
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from maestro_pipeline.lake import Lake
        lake = Lake({str(tmp_path)!r})
        part = {PART!r}
    """) + textwrap.dedent(body) + "\nprint('READY', flush=True)\ntime.sleep(600)\n"
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.stdout.readline().strip() == "READY"
    return p


def _kill(p: subprocess.Popen) -> None:
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)


STAGE = """
tx = lake.transaction().__enter__()
tmp = lake.staged_path("raw_candles", part, "data.parquet", tx)[0]
tmp.write_bytes(b"half a parquet file")
"""


def test_a_killed_writers_temp_file_goes_at_the_next_write_of_the_partition(tmp_path):
    lake = Lake(tmp_path)
    p = _writer(tmp_path, STAGE)
    _kill(p)
    d = lake.partition_dir("raw_candles", PART)
    litter = sorted(d.glob(".*.tmp"))
    assert len(litter) == 1 and f".{p.pid}." in litter[0].name and is_litter(litter[0])
    lake.write_table(pl.DataFrame({"timestamp": [1, 2, 3]}), "raw_candles", PART)
    assert sorted(f.name for f in d.iterdir()) == ["data.parquet"]
    assert lake.read_file("raw_candles", PART)["timestamp"].to_list() == [1, 2, 3]


def test_a_live_writers_temp_file_is_left_alone(tmp_path):
    lake = Lake(tmp_path)
    p = _writer(tmp_path, STAGE)
    try:
        d = lake.partition_dir("raw_candles", PART)
        staged = sorted(d.glob(".*.tmp"))
        assert len(staged) == 1 and not is_litter(staged[0])
        lake.write_table(pl.DataFrame({"timestamp": [1]}), "raw_candles", PART)
        assert staged[0].exists()
    finally:
        _kill(p)


def test_foreign_and_unnamed_temp_files_go_only_once_a_day_old(tmp_path):
    lake = Lake(tmp_path)
    d = lake.partition_dir("raw_candles", PART)
    d.mkdir(parents=True)
    old_foreign = d / ".data.parquet.otherhost.12.abcd1234.tmp"
    new_foreign = d / ".data.parquet.otherhost.13.abcd1234.tmp"
    old_unnamed = d / ".data.parquet.x1y2z3.tmp"          # the name the lake used before writers were named
    for f in (old_foreign, new_foreign, old_unnamed):
        f.write_bytes(b"x")
    stale = time.time() - FOREIGN_LITTER_AGE_S - 60
    os.utime(old_foreign, (stale, stale))
    os.utime(old_unnamed, (stale, stale))
    lake.write_table(pl.DataFrame({"timestamp": [1]}), "raw_candles", PART)
    assert not old_foreign.exists() and not old_unnamed.exists()
    assert new_foreign.exists()


def test_a_killed_catalog_build_leaves_nothing_after_the_next_build(tmp_path):
    lake = Lake(tmp_path)
    lake.write_table(pl.DataFrame({"timestamp": [1]}), "raw_candles", PART)
    p = _writer(tmp_path, """
import duckdb, os, socket, re
host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40]
con = duckdb.connect(str(Path(lake.root) / f".catalog.{host}.{os.getpid()}.feed.duckdb"))
con.execute("CREATE TABLE t AS SELECT 1 AS x")
""")
    _kill(p)
    assert len(list(tmp_path.glob(".catalog.*.duckdb*"))) >= 1
    lake.build_catalog()
    assert list(tmp_path.glob(".catalog.*")) == []
    assert (tmp_path / "catalog.duckdb").exists()
