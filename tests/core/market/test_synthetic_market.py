"""The embedded market: determinism, completed bars only, grid, OHLC sanity, regimes that mean something."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from maestro_pipeline.errors import MaestroError
from maestro_pipeline.market import ORIGIN_MS, REGIMES, SyntheticMarket
from maestro_pipeline.schema import BAR_COLUMNS
from maestro_pipeline.timeframes import DAY_MS, HOUR_MS, MINUTE_MS, timeframe_ms
from tests.support.config import ms

# A pinned clock in the middle of a minute, an hour and a day: 2025-11-21 13:47:31.250 UTC.
NOW = ms(2025, 11, 21, 13, 47, 31) + 250
SYMBOL = "BTC/USDT"


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(seed=7, now_ms=NOW)


def assert_frames_equal(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.schema == b.schema
    assert a.height == b.height
    assert a.equals(b), "frames differ"


# --------------------------------------------------------------------------- determinism


def test_same_call_twice_is_identical(market):
    a = market.fetch(SYMBOL, "1h", ms(2024, 1, 1), ms(2024, 3, 1))
    b = market.fetch(SYMBOL, "1h", ms(2024, 1, 1), ms(2024, 3, 1))
    c = SyntheticMarket(seed=7, now_ms=NOW).fetch(SYMBOL, "1h", ms(2024, 1, 1), ms(2024, 3, 1))
    assert a.height == 60 * 24
    assert_frames_equal(a, b)
    assert_frames_equal(a, c)


@pytest.mark.parametrize(
    ("timeframe", "outer", "inner"),
    [
        ("1m", (ms(2024, 1, 1), ms(2024, 4, 1)), (ms(2024, 2, 1), ms(2024, 3, 1))),
        ("3m", (ms(2024, 1, 1), ms(2024, 4, 1)), (ms(2024, 2, 1, 7, 3), ms(2024, 3, 1))),
        ("15m", (ms(2024, 1, 1), ms(2024, 4, 1)), (ms(2024, 2, 1), ms(2024, 3, 1))),
        ("1h", (ms(2024, 1, 1), ms(2024, 4, 1)), (ms(2024, 2, 1, 5), ms(2024, 2, 29, 17))),
        ("4h", (ms(2023, 1, 1), ms(2024, 4, 1)), (ms(2024, 2, 1), ms(2024, 3, 1))),
        ("1d", (ms(2016, 1, 1), ms(2025, 1, 1)), (ms(2024, 2, 1), ms(2024, 3, 1))),
        ("3d", (ms(2016, 1, 1), ms(2025, 1, 1)), (ms(2024, 2, 1), ms(2024, 6, 1))),
        ("1w", (ms(2016, 1, 1), ms(2025, 1, 1)), (ms(2024, 2, 1), ms(2024, 6, 1))),
    ],
)
def test_a_bar_does_not_depend_on_the_requested_range(market, timeframe, outer, inner):
    """Jan-Mar then February alone: February rows are identical, bit for bit."""
    big = market.fetch(SYMBOL, timeframe, *outer)
    small = market.fetch(SYMBOL, timeframe, *inner)
    assert small.height > 0
    from_big = big.filter(pl.col("timestamp").is_between(inner[0], inner[1], closed="left"))
    assert_frames_equal(small, from_big)


def test_overlapping_ranges_agree_bar_by_bar(market):
    a = market.fetch(SYMBOL, "5m", ms(2024, 5, 1), ms(2024, 5, 20))
    b = market.fetch(SYMBOL, "5m", ms(2024, 5, 10, 3, 25), ms(2024, 6, 2))
    joined = a.join(b, on="timestamp", suffix="_b")
    assert joined.height == (ms(2024, 5, 20) - ms(2024, 5, 10, 3, 25)) // (5 * MINUTE_MS)
    for col in ("open", "high", "low", "close", "volume"):
        assert (joined[col] == joined[f"{col}_b"]).all(), col


def test_history_stays_put_as_the_clock_moves():
    """A nightly refresh a month later must not rewrite bars that were already complete."""
    span = (ms(2025, 5, 1), ms(2025, 7, 1))
    early = SyntheticMarket(seed=7, now_ms=ms(2025, 6, 1, 0, 0, 30)).fetch(SYMBOL, "1h", *span)
    late = SyntheticMarket(seed=7, now_ms=NOW).fetch(SYMBOL, "1h", *span)
    assert early.height == 31 * 24
    assert_frames_equal(early, late.head(early.height))


def test_seeds_and_symbols_give_different_paths(market):
    span = (ms(2024, 1, 1), ms(2024, 2, 1))
    base = market.fetch(SYMBOL, "1h", *span)["close"].to_numpy()
    other_seed = SyntheticMarket(seed=8, now_ms=NOW).fetch(SYMBOL, "1h", *span)["close"].to_numpy()
    perp = market.fetch("BTC/USDT:USDT", "1h", *span)["close"].to_numpy()
    assert base.shape == other_seed.shape == perp.shape
    for other in (other_seed, perp):
        # Different paths, not a rescaled copy: hourly returns are essentially uncorrelated.
        assert not np.allclose(base, other)
        corr = np.corrcoef(np.diff(np.log(base)), np.diff(np.log(other)))[0, 1]
        assert abs(corr) < 0.2


# 2024-01-01 BTC/USDT 1d open, high, low, close, volume; ETH/USDT 1m close and high at 2024-01-01 12:00.
GOLDEN = [
    70242.11790666, 73206.11341893, 70199.03722471, 71144.25867081, 17833.12164928,
    862.4393649568, 862.6116478147,
]


def test_paths_are_stable_across_processes_and_versions(market):
    """Golden values: the generator uses blake2b and SplitMix64, never Python's salted hash().

    If this fails, the generator changed and every synthetic lake built so far is stale: that must be a
    deliberate decision (update the values), never an accident.
    """
    first = market.fetch(SYMBOL, "1d", ORIGIN_MS, ORIGIN_MS + DAY_MS).row(0, named=True)
    assert first["open"] == pytest.approx(30_000.0, rel=1e-12)
    day = market.fetch(SYMBOL, "1d", ms(2024, 1, 1), ms(2024, 1, 2)).row(0, named=True)
    minute = market.fetch("ETH/USDT", "1m", ms(2024, 1, 1, 12), ms(2024, 1, 1, 12, 1)).row(0, named=True)
    got = [day["open"], day["high"], day["low"], day["close"], day["volume"], minute["close"], minute["high"]]
    assert got == pytest.approx(GOLDEN, rel=1e-9)


# --------------------------------------------------------------------------- completed bars, grid, schema


@pytest.mark.parametrize("timeframe", ["1m", "15m", "1h", "4h", "1d", "3d", "1w"])
def test_only_completed_bars_are_returned(market, timeframe):
    tf = timeframe_ms(timeframe)
    forming = NOW - NOW % tf  # the bar still open at NOW
    df = market.fetch(SYMBOL, timeframe, forming - 40 * tf, forming + 5 * tf)
    ts = df["timestamp"].to_list()
    assert ts[-1] == forming - tf == market.last_closed_bar_ms(timeframe)
    assert forming not in ts
    assert all(t + tf <= NOW for t in ts)


def test_a_bar_closing_exactly_at_now_is_complete():
    now = ms(2025, 3, 1, 12)
    m = SyntheticMarket(seed=7, now_ms=now)
    df = m.fetch(SYMBOL, "1h", ms(2025, 3, 1), ms(2025, 3, 2))
    assert df["timestamp"][-1] == now - HOUR_MS == m.last_closed_bar_ms("1h")
    assert m.fetch(SYMBOL, "1m", now - MINUTE_MS, now + MINUTE_MS)["timestamp"].to_list() == [now - MINUTE_MS]


def test_wall_clock_is_read_at_call_time():
    m = SyntheticMarket(seed=7)
    before = time.time_ns() // 1_000_000
    last = m.last_closed_bar_ms("1m")
    df = m.fetch(SYMBOL, "1m", before - 10 * MINUTE_MS, before + 10 * MINUTE_MS)
    after = time.time_ns() // 1_000_000
    assert before - before % MINUTE_MS - MINUTE_MS <= last <= after - after % MINUTE_MS - MINUTE_MS
    assert df["timestamp"][-1] + MINUTE_MS <= after
    assert df["timestamp"][-1] >= before - before % MINUTE_MS - MINUTE_MS


@pytest.mark.parametrize(
    ("timeframe", "since", "until"),
    [
        ("1m", ms(2024, 7, 1, 3, 17, 42), ms(2024, 7, 3, 1, 2, 3)),
        ("15m", ms(2024, 7, 1, 3, 17), ms(2024, 8, 1)),
        ("1h", ms(2023, 1, 1, 0, 30), ms(2024, 1, 1, 12, 1)),
        ("4h", ms(2022, 3, 3, 3), ms(2024, 1, 1)),
        ("1d", ms(2018, 5, 5, 5), ms(2024, 1, 1)),
        ("1w", ms(2016, 1, 1), ms(2024, 1, 1)),
    ],
)
def test_bars_sit_on_the_epoch_grid_without_gaps(market, timeframe, since, until):
    tf = timeframe_ms(timeframe)
    ts = market.fetch(SYMBOL, timeframe, since, until)["timestamp"].to_numpy()
    assert ts.size > 10
    assert (ts % tf == 0).all()
    assert (np.diff(ts) == tf).all()  # strictly increasing, no gaps, no duplicates
    assert ts[0] >= since and ts[0] - tf < since  # first grid point in range
    assert ts[-1] < until and ts[-1] + tf >= until  # last grid point in range
    if timeframe == "1w":  # epoch-aligned weeks start on Thursdays
        assert {d.weekday() for d in market.fetch(SYMBOL, "1w", since, until)["datetime"]} == {3}


def test_schema_and_dtypes(market):
    df = market.fetch(SYMBOL, "1h", ms(2024, 1, 1), ms(2024, 1, 2))
    assert df.schema == pl.Schema(BAR_COLUMNS)
    assert df.columns == list(BAR_COLUMNS)
    assert df["source"].unique().to_list() == ["synthetic"] == [SyntheticMarket.SOURCE]
    assert df["datetime"][0] == datetime(2024, 1, 1, tzinfo=UTC)
    assert (df["datetime"].dt.epoch("ms") == df["timestamp"]).all()


@pytest.mark.parametrize(
    ("timeframe", "since", "until"),
    [
        ("1m", ms(2024, 3, 1), ms(2024, 4, 1)),
        ("5m", ms(2020, 3, 1), ms(2020, 6, 1)),
        ("1h", ms(2021, 1, 1), ms(2024, 1, 1)),
        ("4h", ORIGIN_MS, NOW),
        ("1d", 0, NOW),
        ("3d", 0, NOW),
        ("1w", 0, NOW),
    ],
)
def test_ohlc_is_sane_and_continuous(market, timeframe, since, until):
    df = market.fetch(SYMBOL, timeframe, since, until)
    o, h, low, c, v = (df[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    assert df.height > 100
    assert all(np.isfinite(a).all() for a in (o, h, low, c, v))
    assert (low > 0).all() and (v > 0).all()
    assert (h >= np.maximum(o, c)).all()
    assert (low <= np.minimum(o, c)).all()
    assert (h > low).all()
    assert (o[1:] == c[:-1]).all()  # open of each bar is the previous close, exactly
    # Plausible BTC-like levels, never a collapse to ~0 or a blow-up.
    assert 2_000 < low.min() and h.max() < 500_000


def test_timeframes_read_one_consistent_path(market):
    """Closes agree across timeframes, 4h highs are the max of their hours, 1m volumes add up to 1h/1d."""
    span = (ms(2024, 6, 1), ms(2024, 6, 4))
    m1 = market.fetch(SYMBOL, "1m", *span)
    h1 = market.fetch(SYMBOL, "1h", *span)
    h4 = market.fetch(SYMBOL, "4h", *span)
    d1 = market.fetch(SYMBOL, "1d", *span)

    def resample(df: pl.DataFrame, every: str) -> pl.DataFrame:
        return (
            df.group_by_dynamic("datetime", every=every)
            .agg(pl.col("open").first(), pl.col("high").max(), pl.col("low").min(),
                 pl.col("close").last(), pl.col("volume").sum())
        )

    from_1m = resample(m1, "1h")
    assert (from_1m["close"] == h1["close"]).all() and (from_1m["open"] == h1["open"]).all()
    assert np.allclose(from_1m["volume"], h1["volume"], rtol=1e-12)
    from_1h = resample(h1, "4h")
    for col in ("open", "high", "low", "close"):
        assert (from_1h[col] == h4[col]).all(), col
    daily = resample(h1, "1d")
    for col in ("open", "high", "low", "close"):
        assert (daily[col] == d1[col]).all(), col
    assert np.allclose(resample(m1, "1d")["volume"], d1["volume"], rtol=1e-12)


def test_base_prices_depend_on_the_pair(market):
    span = (ms(2024, 1, 1), ms(2024, 1, 8))
    btc = market.fetch("BTC/USDT", "1d", *span)["close"].mean()
    eth = market.fetch("ETH/USDT", "1d", *span)["close"].mean()
    eth_btc = market.fetch("ETH/BTC", "1d", *span)["close"].mean()
    assert 5_000 < btc < 200_000
    assert 300 < eth < 15_000
    assert 0.005 < eth_btc < 0.5


# --------------------------------------------------------------------------- regimes


@pytest.fixture(scope="module")
def daily_with_regimes(market) -> pl.DataFrame:
    since, until = ms(2016, 1, 1), ms(2025, 1, 1)
    bars = market.fetch(SYMBOL, "1d", since, until).with_columns(pl.col("datetime").dt.date().alias("day"))
    regimes = market.regimes(SYMBOL, since, until)
    assert regimes.height == bars.height
    return bars.join(regimes, on="day", how="inner").with_columns(
        (pl.col("close") / pl.col("open")).log().alias("ret")
    )


def test_regimes_frame(market):
    df = market.regimes(SYMBOL, ms(2025, 11, 1), ms(2026, 1, 1))
    assert df.schema == pl.Schema({"day": pl.Date(), "regime": pl.String()})
    days = df["day"].to_list()
    assert days[0] == date(2025, 11, 1)
    assert days[-1] == date(2025, 11, 20)  # 21 Nov is still forming at NOW: completed days only
    assert set(df["regime"]) <= set(REGIMES)
    assert market.regimes(SYMBOL, ms(2014, 1, 1), ORIGIN_MS + DAY_MS)["day"].to_list() == [date(2015, 1, 1)]
    assert_frames_equal(df.tail(5), market.regimes(SYMBOL, ms(2025, 11, 16), ms(2025, 11, 21)))


def test_regimes_switch_and_persist_over_two_years(market):
    codes = market.regimes(SYMBOL, ms(2023, 1, 1), ms(2025, 1, 1))["regime"].to_list()
    assert len(codes) == 731
    assert set(codes) == set(REGIMES)  # every kind occurs
    runs = 1 + sum(a != b for a, b in zip(codes, codes[1:], strict=False))
    assert runs >= 10  # it does switch
    assert len(codes) / runs > 3  # and a regime lasts days, not hours


def test_trends_drift_their_way_and_bursts_are_volatile(daily_with_regimes):
    stats = {
        row["regime"]: row
        for row in daily_with_regimes.group_by("regime")
        .agg(
            pl.col("ret").mean().alias("mean"),
            pl.col("ret").std().alias("std"),
            pl.col("volume").median().alias("volume"),
            pl.len().alias("n"),
        )
        .iter_rows(named=True)
    }
    assert set(stats) == set(REGIMES)
    assert min(s["n"] for s in stats.values()) > 100
    # Trends drift ~0.45 %/day; the standard error over ~800 days is ~0.1 %/day, so 0.2 % is a safe margin.
    assert stats["trend_up"]["mean"] > 0.002
    assert stats["trend_down"]["mean"] < -0.002
    assert abs(stats["range"]["mean"]) < 0.002
    # Daily vol stays in crypto's 1.5-6 % band, and bursts are the wild ones, with the most volume.
    for s in stats.values():
        assert 0.012 < s["std"] < 0.07
    assert stats["volatility_burst"]["std"] > 2 * stats["range"]["std"]
    assert stats["volatility_burst"]["volume"] > 1.5 * stats["range"]["volume"]


def test_range_regimes_revert_to_their_level(daily_with_regimes):
    """Inside a range, the further the price is from where the range began, the harder it is pulled back."""
    new_episode = (pl.col("regime") != pl.col("regime").shift(1)).fill_null(True)
    df = (
        daily_with_regimes.with_columns(new_episode.cum_sum().alias("episode"))
        .with_columns(pl.col("open").first().over("episode").alias("level"))
        .filter(pl.col("regime") == "range")
        .with_columns((pl.col("open") / pl.col("level")).log().alias("stretch"))
    )
    corr = np.corrcoef(df["stretch"].to_numpy(), df["ret"].to_numpy())[0, 1]
    assert corr < -0.1  # about -0.22 by construction; a random walk would give ~0 (standard error ~0.03)


# --------------------------------------------------------------------------- errors and empty ranges


@pytest.mark.parametrize(
    "symbol", ["BTCUSDT", "btc/usdt", "BTC_USDT", "BTC/", "/USDT", "", " BTC/USDT", "BTC/USDT/ETH", None]
)
def test_bad_symbol_is_a_one_line_error(market, symbol):
    with pytest.raises(MaestroError) as err:
        market.fetch(symbol, "1h", ms(2024, 1, 1), ms(2024, 1, 2))
    assert "\n" not in str(err.value) and "BASE/QUOTE" in str(err.value)
    with pytest.raises(MaestroError):
        market.regimes(symbol, ms(2024, 1, 1), ms(2024, 1, 2))


@pytest.mark.parametrize("timeframe", ["2m", "1M", "1y", "60s", "", "h1"])
def test_bad_timeframe_is_a_maestro_error(market, timeframe):
    with pytest.raises(MaestroError, match="unsupported timeframe"):
        market.fetch(SYMBOL, timeframe, ms(2024, 1, 1), ms(2024, 1, 2))
    with pytest.raises(MaestroError, match="unsupported timeframe"):
        market.last_closed_bar_ms(timeframe)


@pytest.mark.parametrize(
    ("timeframe", "since", "until"),
    [
        ("1h", ms(2024, 1, 1), ms(2024, 1, 1)),  # empty interval
        ("1h", ms(2024, 1, 2), ms(2024, 1, 1)),  # reversed
        ("1h", ms(2024, 1, 1, 0, 1), ms(2024, 1, 1, 0, 59)),  # no grid point inside
        ("1d", ms(2010, 1, 1), ms(2014, 12, 31)),  # before the market opens
        ("1m", NOW - NOW % MINUTE_MS, NOW + DAY_MS),  # only the forming bar and the future
        ("1w", ms(2030, 1, 1), ms(2031, 1, 1)),  # entirely in the future
    ],
)
def test_empty_range_gives_an_empty_frame_with_the_schema(market, timeframe, since, until):
    df = market.fetch(SYMBOL, timeframe, since, until)
    assert df.height == 0
    assert df.schema == pl.Schema(BAR_COLUMNS)


def test_the_market_opens_at_the_origin(market):
    df = market.fetch(SYMBOL, "1h", 0, ORIGIN_MS + 3 * HOUR_MS)
    assert df["timestamp"].to_list() == [ORIGIN_MS, ORIGIN_MS + HOUR_MS, ORIGIN_MS + 2 * HOUR_MS]
    assert df["open"][0] == pytest.approx(30_000.0)


@pytest.mark.parametrize("symbol", ["1000SHIB/USDT", "BTC/USDT:USDT-250328", "FOO/EUR", "ETH/BTC"])
def test_other_ccxt_symbols_are_served(market, symbol):
    df = market.fetch(symbol, "1h", ms(2024, 1, 1), ms(2024, 1, 2))
    assert df.height == 24
    assert (df["low"] > 0).all() and (df["volume"] > 0).all()


@pytest.mark.parametrize("kwargs", [{"seed": "7"}, {"seed": 7.0}, {"seed": True}, {"now_ms": 1.7e12}])
def test_bad_seed_or_clock_is_refused(kwargs):
    with pytest.raises(MaestroError):
        SyntheticMarket(**kwargs)


def test_numpy_integers_are_fine(market):
    m = SyntheticMarket(seed=np.int64(7), now_ms=np.int64(NOW))
    assert_frames_equal(m.fetch(SYMBOL, "4h", ms(2024, 1, 1), ms(2024, 2, 1)),
                        market.fetch(SYMBOL, "4h", ms(2024, 1, 1), ms(2024, 2, 1)))
