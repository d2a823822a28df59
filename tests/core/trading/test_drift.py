"""Live drift on crafted markets: a regime flip after the live window starts fires, a stable market does not; the
live result is the engine's own backtest of the live window, and the band never reads a bar of that window."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from maestro_pipeline.config import LiveConfig
from maestro_pipeline.engine import Costs, evaluate
from maestro_pipeline.schema import conform, to_pandas_bars
from maestro_pipeline.strategies import get_strategy
from maestro_pipeline.timeframes import HOUR_MS
from maestro_pipeline.trading import live_performance

COSTS = Costs(0.001, 0.0005, 0.005)
PARAMS = {"fast": 10, "slow": 30}
START = 1_735_689_600_000
LIVE_DAY, DAYS = 100, 110


def market(flip: bool, seed: int) -> pl.DataFrame:
    """Hourly bars: 20-day swings plus noise (an EMA cross follows them and earns); with ``flip``, from the live
    window's first bar on, 30-bar whipsaws instead (the same EMA cross reverses late on every swing and loses)."""
    n = DAYS * 24
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    logp = 0.06 * np.sin(2 * np.pi * t / 480) + np.cumsum(rng.normal(0, 0.004, n))
    if flip:
        k = LIVE_DAY * 24
        logp[k:] = logp[k] + 0.04 * np.sin(2 * np.pi * (t[k:] - k) / 30) + np.cumsum(rng.normal(0, 0.002, n - k))
    close = 100 * np.exp(logp)
    open_ = np.r_[close[0], close[:-1]]
    return conform(pl.DataFrame({
        "timestamp": START + t.astype(np.int64) * HOUR_MS, "open": open_, "high": np.maximum(open_, close) * 1.001,
        "low": np.minimum(open_, close) * 0.999, "close": close, "volume": np.full(n, 5.0)}), "synthetic")


def oos_equity(bars: pl.DataFrame) -> pl.DataFrame:
    """The walk-forward's stitched OOS table stand-in: the same strategy traded by the engine before the live window."""
    j = LIVE_DAY * 24
    res = evaluate(to_pandas_bars(bars), get_strategy("ema_cross"), PARAMS, 100, j, COSTS)
    return pl.DataFrame({"timestamp": bars["timestamp"][100:j], "return": res.returns.to_numpy()})


def record(bars: pl.DataFrame, **over) -> dict:
    ts = bars["timestamp"].to_numpy()
    doc = {"instrument": "synthetic.BTC_USDT.1h", "strategy": "ema_cross", "timeframe": "1h", "params": PARAMS,
           "risk": None, "valid_from_ms": int(ts[LIVE_DAY * 24]), "valid_until_ms": int(ts[-1]) + HOUR_MS,
           "valid_from": "2025-04-11 00:00", "content_version": "test"}
    return doc | over


@pytest.mark.parametrize("seed", range(1, 8))
def test_a_regime_flip_after_the_live_window_starts_fires_below_the_band(seed):
    bars = market(True, seed)
    row = live_performance(record(bars), bars, oos_equity(bars), COSTS, LiveConfig())
    assert row["status"] == "below band" and row["drift_alarm"]
    assert row["live_return"] < row["band_low"]
    assert "below the band" in row["description"] and f"{row['band_low']:+.2%}" in row["description"]


@pytest.mark.parametrize("seed", range(1, 8))
def test_a_stable_market_raises_no_alarm(seed):
    # at a 95 % band one stable market in twenty is expected outside it (seed 8 of this family is, by 0.3 %):
    # these seven are inside, and the test pins them so a change to the band shows
    bars = market(False, seed)
    row = live_performance(record(bars), bars, oos_equity(bars), COSTS, LiveConfig())
    assert row["status"] == "within band" and not row["drift_alarm"]
    assert row["band_low"] <= row["live_return"] <= row["band_high"]


def test_the_live_result_is_the_engines_backtest_of_the_live_window_only():
    bars = market(True, 1)
    row = live_performance(record(bars), bars, oos_equity(bars), COSTS, LiveConfig())
    j0 = LIVE_DAY * 24
    ref = evaluate(to_pandas_bars(bars), get_strategy("ema_cross"), PARAMS, j0, bars.height, COSTS)
    assert row["live_return"] == pytest.approx(float(np.prod(1 + ref.returns.to_numpy()) - 1), rel=1e-12)
    assert row["live_bars"] == bars.height - j0
    assert row["live_trades"] == ref.n_trades


def test_the_band_never_reads_a_bar_of_the_live_window():
    bars = market(False, 2)
    eq = oos_equity(bars)
    clean = live_performance(record(bars), bars, eq, COSTS, LiveConfig())
    ts = bars["timestamp"].to_numpy()
    poison = pl.DataFrame({"timestamp": ts[LIVE_DAY * 24:], "return": np.full(bars.height - LIVE_DAY * 24, 0.5)})
    dirty = live_performance(record(bars), bars, pl.concat([eq, poison]), COSTS, LiveConfig())
    assert dirty["band_low"] == clean["band_low"] and dirty["band_high"] == clean["band_high"]
    assert clean["band_sample_bars"] == eq.height
    assert (clean["band_seed"], clean["band_n_boot"], clean["band_level"]) == (0, 2000, 0.95)


def test_too_early_and_no_band_are_not_alarms():
    bars = market(True, 1)
    ts = bars["timestamp"].to_numpy()
    early = record(bars, valid_from_ms=int(ts[-10]))
    row = live_performance(early, bars, oos_equity(bars), COSTS, LiveConfig(min_live_bars=24))
    assert row["status"] == "too early" and not row["drift_alarm"] and row["live_bars"] == 10
    short = oos_equity(bars).head(50)
    row = live_performance(record(bars), bars, short, COSTS, LiveConfig())
    assert row["status"] == "no band" and not row["drift_alarm"] and "only 50 stitched OOS bars" in row["description"]
    row = live_performance(record(bars, params=None, tradeable_reason="no live split"), bars, short, COSTS,
                           LiveConfig())
    assert row["status"] == "no live parameters"


def test_the_band_level_and_seed_come_from_the_config():
    bars = market(False, 3)
    wide = live_performance(record(bars), bars, oos_equity(bars), COSTS, LiveConfig(band_level=0.99, band_seed=5))
    narrow = live_performance(record(bars), bars, oos_equity(bars), COSTS, LiveConfig(band_level=0.6, band_seed=5))
    assert wide["band_low"] < narrow["band_low"] < narrow["band_high"] < wide["band_high"]
    assert wide["band_seed"] == 5 and wide["band_level"] == 0.99
