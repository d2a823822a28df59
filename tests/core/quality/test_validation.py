"""Structural bar rules: each rule caught by a crafted bad input and passed by a clean one."""

from __future__ import annotations

import polars as pl
import pytest

from maestro_pipeline.quality import check_bars, find_gaps, window_gaps
from tests.support.bars import ramp_bars

H = 3_600_000


def failed(df, **kw):
    return {r.rule: r for r in check_bars(df, "1h", **kw) if not r.passed}


def test_clean_passes():
    assert failed(ramp_bars(), start_ms=0, end_ms=24 * H) == {}


@pytest.mark.parametrize(
    "mutate, rule",
    [
        (lambda d: d.reverse(), "sorted"),
        (lambda d: pl.concat([d, d.tail(1)]), "unique_timestamps"),
        (lambda d: d.with_columns(pl.when(pl.col("timestamp") == 5 * H).then(5 * H + 60_000)
                                  .otherwise(pl.col("timestamp")).alias("timestamp")), "aligned_to_grid"),
        (lambda d: d.with_columns(pl.when(pl.col("timestamp") == 3 * H).then(1.0)
                                  .otherwise(pl.col("high")).alias("high")), "ohlc_consistent"),
        (lambda d: d.with_columns(pl.when(pl.col("timestamp") == 3 * H).then(-1.0)
                                  .otherwise(pl.col("volume")).alias("volume")), "volume_non_negative"),
        (lambda d: d.with_columns(pl.when(pl.col("timestamp") == 3 * H).then(float("nan"))
                                  .otherwise(pl.col("close")).alias("close")), "no_nulls"),
        (lambda d: d.with_columns(pl.when(pl.col("timestamp") == 3 * H).then(None)
                                  .otherwise(pl.col("open")).alias("open")), "no_nulls"),
        (lambda d: d.with_columns((pl.col("open") * 0).alias("low")), "positive_prices"),
        (lambda d: d.drop("volume"), "schema"),
        (lambda d: d.with_columns(pl.col("volume").cast(pl.Int64)), "schema"),
    ],
)
def test_each_rule_catches_its_fault(mutate, rule):
    bad = failed(mutate(ramp_bars()))
    assert rule in bad, bad
    assert bad[rule].message != "ok" and "\n" not in bad[rule].message


def test_outside_partition_and_offender_timestamps():
    bad = failed(ramp_bars(), start_ms=2 * H, end_ms=20 * H)
    assert bad["in_partition"].failed_rows == 6
    assert bad["in_partition"].first_offenders[0] == "1970-01-01 00:00"


def test_every_rule_fails_or_is_not_evaluated_when_schema_is_wrong():
    results = check_bars(ramp_bars().drop("close"), "1h")
    assert all(not r.passed for r in results)
    assert next(r for r in results if r.rule == "ohlc_consistent").message == "not evaluated: the schema is wrong"


def test_find_gaps_reports_ranges():
    df = ramp_bars().filter(~pl.col("timestamp").is_in([5 * H, 6 * H, 10 * H]))
    assert find_gaps(df["timestamp"], "1h") == [(5 * H, 6 * H, 2), (10 * H, 10 * H, 1)]
    assert find_gaps(ramp_bars()["timestamp"], "1h") == []


def test_window_gaps_count_the_window_edges():
    ts = ramp_bars()["timestamp"].filter(~ramp_bars()["timestamp"].is_in([5 * H, 6 * H, 10 * H])).to_numpy()
    assert window_gaps(ts, 0, 24 * H, "1h") == (3, 2, 2)
    assert window_gaps(ts, -2 * H, 26 * H, "1h") == (7, 4, 2)  # 2 missing before the first bar, 2 after the last
    assert window_gaps(ts, 11 * H, 20 * H, "1h") == (0, 0, 0)
