"""The data contract (great-expectations) on real exchange candles.

Expected figures come from the datasets' MANIFEST.md (an independent description of the files), not from our
code: gaps, zero-volume bars, copied rows; the clean files must pass every rule.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from maestro_pipeline.durations import month_bounds
from maestro_pipeline.quality import Policy, evaluate
from tests.support.datasets import load

pytestmark = pytest.mark.real_data

# file -> (timeframe, bars, missing bars, gaps) as stated in MANIFEST.md
GAPS = {
    "iaf_bitvavo_btceur_1h.parquet": ("1h", 38_682, 30, 12),
    "iaf_bitvavo_etheur_1h.parquet": ("1h", 17_706, 15, 4),
    "ft_unittest_btc_1m.parquet": ("1m", 13_681, 717, 538),
    "lean_coinbase_btcusd_1d.parquet": ("1d", 1_318, 34, 8),
}
CLEAN = {
    "iaf_binance_btceur_15m.parquet": "15m",
    "ft_eth_btc_5m.parquet": "5m",
    "ft_xrp_usdt_perp_5m.parquet": "5m",
    "nt_ftx_btcperp_1m.parquet": "1m",
}
STRUCTURE = ("schema", "no_nulls", "sorted", "unique_timestamps", "aligned_to_grid", "in_partition",
             "ohlc_consistent", "positive_prices", "volume_non_negative")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize("name", sorted(GAPS))
def test_contract_finds_exactly_the_documented_gaps(datasets, name):
    tf, rows, missing, n_gaps = GAPS[name]
    bars = load(datasets, name)
    assert bars.height == rows
    res = evaluate(bars, tf)
    assert all(res.outcomes[r].passed for r in STRUCTURE)                  # MANIFEST: no structural faults
    assert (len(res.gaps), sum(g[2] for g in res.gaps)) == (n_gaps, missing)
    assert not res.outcomes["gaps"].passed and res.outcomes["gaps"].count == n_gaps
    assert res.quarantine.filter(pl.col("action") == "dropped").height == 0  # nothing dropped from these files


def test_bitvavo_largest_gap_is_six_hours_after_2023_07_23(datasets):
    res = evaluate(load(datasets, "iaf_bitvavo_btceur_1h.parquet"), "1h")
    largest = max(res.gaps, key=lambda g: g[2])
    assert largest[2] == 6 and largest[0] == ms("2023-07-23T01:00")      # MANIFEST: largest 6 h, after 00:00
    assert res.outcomes["gap_over_max"].passed and res.status == "validated"  # 6 h is within max_gap 6h
    assert evaluate(load(datasets, "iaf_bitvavo_btceur_1h.parquet"), "1h", Policy.default(max_gap="5h")).blocked


def test_daily_gaps_block_under_the_default_max_gap(datasets):
    """34 missing days in Dec 2014 - Jan 2015: every daily gap is longer than 6 h, so those months would block."""
    res = evaluate(load(datasets, "lean_coinbase_btcusd_1d.parquet"), "1d")
    assert res.blocked and res.outcomes["gap_over_max"].count == 8
    assert all(ms("2014-12-01T00:00") <= a and b < ms("2015-02-01T00:00") for a, b, _ in res.gaps)


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_clean_files_pass_every_rule(datasets, name):
    bars = load(datasets, name)
    res = evaluate(bars, CLEAN[name])
    assert res.failed == {}, {k: o.message for k, o in res.failed.items()}
    assert res.status == "validated" and res.valid.equals(bars) and res.quarantine.height == 0


def test_coinbase_zero_volume_bars_and_copied_rows(datasets):
    bars = load(datasets, "tt_coinbase_btcusd_1h.parquet")
    assert bars.height == 20_111
    res = evaluate(bars, "1h")
    zero = res.outcomes["zero_volume_runs"]
    assert zero.count == 28 and not zero.passed                       # MANIFEST: 28 zero-volume bars
    assert zero.count == bars.filter(pl.col("volume") == 0).height
    copies = res.quarantine.filter(pl.col("rule") == "copied_rows")
    copied_ts = sorted(bars[copies["raw_row"].to_list()]["timestamp"].to_list())
    assert copied_ts == [ms(f"2017-11-12T0{h}:00") for h in range(4, 9)]  # the copies: 04:00..08:00
    assert all("5.0 h earlier" in r for r in copies["reason"])           # MANIFEST: copies of bars 5 h earlier
    originals = {ms(r.split("bar at ")[1][:16].replace(" ", "T")) for r in copies["reason"]}
    assert len(originals | set(copied_ts)) == 10                          # MANIFEST: 10 rows involved
    assert res.status == "validated_with_drops" and res.valid.height == bars.height - 5
    assert not set(res.valid["timestamp"].to_list()) & set(copied_ts)     # research never sees them
    assert res.outcomes["flat_runs"].count == 15                          # the 15-hour frozen run on 2018-08-10
    assert all(res.outcomes[r].passed for r in STRUCTURE)
    # the file as published (newest-first) is caught by the order rule and blocks
    assert "sorted" in evaluate(bars.reverse(), "1h").failed


def test_per_month_partitions_see_gaps_across_month_boundaries(datasets):
    """The contract as the asset runs it: one month at a time, with the previous month's last bar."""
    bars = load(datasets, "iaf_bitvavo_btceur_1h.parquet").with_columns(
        pl.col("datetime").dt.strftime("%Y-%m").alias("month"))
    months = sorted(bars["month"].unique().to_list())
    prev_last, gaps = None, []
    for m in months:
        part = bars.filter(pl.col("month") == m).drop("month")
        lo, hi = month_bounds(m)
        res = evaluate(part, "1h", start_ms=lo, end_ms=hi, prev_last_ms=prev_last)
        assert res.status == "validated", (m, {k: o.message for k, o in res.failed.items()})
        gaps += res.gaps
        prev_last = int(part["timestamp"].max())
    assert (len(gaps), sum(g[2] for g in gaps)) == (12, 30)               # same gaps as the whole file
