"""Metrics against quantstats and against plain-Python hand computations."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from maestro_pipeline.errors import MaestroError
from maestro_pipeline.stats import (
    METRIC_CONVENTIONS,
    METRIC_KEYS,
    VWR_SDEV_MAX,
    VWR_TAU,
    backtrader_period_keys,
    backtrader_tann,
    backtrader_vwr,
    compute_metrics,
)
from tests.support.backtrader import backtrader_vwr_of


def sample_returns(n: int, seed: int, freq: str = "h", drift: float = 0.0002) -> pd.Series:
    rng = np.random.default_rng(seed)
    r = rng.normal(drift, 0.01, n)
    r[rng.random(n) < 0.2] = 0.0  # flat bars, as a strategy out of the market has
    return pd.Series(r, index=pd.date_range("2023-01-01", periods=n, freq=freq, unit="us"))


def hand(r: list[float], ppy: float) -> dict[str, float]:
    """Textbook formulas with loops and the math module only."""
    n = len(r)
    mean = sum(r) / n
    var = sum((x - mean) ** 2 for x in r) / (n - 1)
    std = math.sqrt(var)
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / n)
    wealth, peak, worst = 1.0, 1.0, 0.0
    for x in r:
        wealth *= 1 + x
        peak = max(peak, wealth)
        worst = min(worst, wealth / peak - 1)
    years = n / ppy
    return {
        "total_return": wealth - 1,
        "cagr": wealth ** (1 / years) - 1,
        "volatility": std * math.sqrt(ppy),
        "sharpe": mean / std * math.sqrt(ppy),
        "sortino": mean / downside * math.sqrt(ppy),
        "max_drawdown": worst,
        "calmar": (wealth ** (1 / years) - 1) / abs(worst),
    }


@pytest.mark.parametrize(("n", "seed", "freq", "ppy"),
                         [(2000, 1, "h", 8760.0), (500, 2, "D", 365.0), (97, 3, "4h", 2190.0)])
def test_against_quantstats_and_hand(n, seed, freq, ppy):
    r = sample_returns(n, seed, freq)
    m = compute_metrics(r, ppy)
    h = hand(r.tolist(), ppy)
    for key, want in h.items():
        assert m[key] == pytest.approx(want, rel=1e-9, abs=1e-12), key

    assert m["sharpe"] == pytest.approx(qs.stats.sharpe(r, periods=ppy), rel=1e-9)
    assert m["sortino"] == pytest.approx(qs.stats.sortino(r, periods=ppy), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(r), rel=1e-9)
    assert m["cagr"] == pytest.approx(qs.stats.cagr(r, periods=ppy), rel=1e-9)
    assert m["volatility"] == pytest.approx(qs.stats.volatility(r, periods=ppy), rel=1e-9)
    assert m["calmar"] == pytest.approx(qs.stats.calmar(r, periods=ppy), rel=1e-9)
    # without trades, win rate / profit factor are period-based like quantstats'
    assert m["win_rate"] == pytest.approx(qs.stats.win_rate(r), rel=1e-9)
    assert m["profit_factor"] == pytest.approx(qs.stats.profit_factor(r), rel=1e-9)
    assert "n_trades" not in m and "exposure" not in m


def test_numpy_input_equals_series_input():
    r = sample_returns(300, 4)
    a, b = compute_metrics(r.to_numpy(), 8760), compute_metrics(r, 8760)
    assert a == b


def test_first_bar_loss_counts_as_drawdown():
    r = pd.Series([-0.1, 0.05, 0.02], index=pd.date_range("2024-01-01", periods=3, freq="D"))
    m = compute_metrics(r, 365)
    assert m["max_drawdown"] == pytest.approx(-0.1, rel=1e-12)
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(r), rel=1e-12)


def test_zero_variance_and_degenerate_series_are_finite():
    flat = compute_metrics(np.zeros(100), 8760)
    assert flat["sharpe"] == 0.0 and flat["sortino"] == 0.0 and flat["calmar"] == 0.0
    assert flat["max_drawdown"] == 0.0 and flat["total_return"] == 0.0
    const = compute_metrics(np.full(50, 0.001), 8760)  # float std is ~1e-19, not 0
    assert const["sharpe"] == 0.0 and const["volatility"] == 0.0
    assert const["total_return"] == pytest.approx(1.001**50 - 1)
    empty = compute_metrics(np.array([]), 8760)
    assert all(v == 0.0 for v in empty.values())
    one = compute_metrics(np.array([0.01]), 8760)
    assert one["sharpe"] == 0.0
    assert const["profit_factor"] == 0.0  # gains and no losses: undefined, reported as 0 (JSON-safe)
    assert const["payoff_ratio"] == 0.0 and const["expectancy"] == pytest.approx(0.001)
    for m in (flat, const, empty, one):
        assert all(math.isfinite(v) for v in m.values())
        json.dumps(m, allow_nan=False)  # strict JSON: no inf, no NaN


def test_trade_based_statistics_and_exposure():
    idx = pd.date_range("2024-01-01", periods=10, freq="h")
    r = pd.Series([0, 0.01, -0.02, 0.0, 0.03, 0.0, 0.0, -0.01, 0.02, 0.01], index=idx)
    trades = pd.DataFrame(
        {
            "entry_time": [idx[1], idx[4], idx[7]],
            "exit_time": [idx[3], idx[5], idx[9]],
            "pnl": [-5.0, 30.0, 10.0],
            "status": ["closed", "closed", "open"],
        }
    )
    m = compute_metrics(r, 8760, trades)
    assert m["n_trades"] == 3
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(40 / 5)
    # held at the close of bars 1, 2 (exit fills at bar 3's open), 4 (exit at 5), 7, 8, 9 (still open)
    assert m["exposure"] == pytest.approx(6 / 10)
    no_loss = compute_metrics(r, 8760, trades.iloc[1:])
    assert no_loss["profit_factor"] == 0.0 and no_loss["payoff_ratio"] == 0.0  # undefined -> 0, JSON-safe
    json.dumps(no_loss, allow_nan=False)
    none = compute_metrics(r, 8760, trades.iloc[:0])
    assert none["n_trades"] == 0 and none["win_rate"] == 0 and none["exposure"] == 0


def test_conventions_are_documented_and_bad_input_rejected():
    assert METRIC_CONVENTIONS["risk_free_rate"] == 0.0
    assert METRIC_CONVENTIONS["ddof"] == 1
    assert "365" in METRIC_CONVENTIONS["annualization"]
    for key in METRIC_KEYS:
        assert key in METRIC_CONVENTIONS
    with pytest.raises(MaestroError, match="NaN"):
        compute_metrics(np.array([0.01, np.nan]), 8760)
    with pytest.raises(MaestroError, match="periods_per_year"):
        compute_metrics(np.array([0.01]), 0)


# ----------------------------------------------------------------------------- quantstats, 365-day year


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_daily_ratios_equal_quantstats_365(seed):
    """Daily returns (what quantstats expects), periods=365: Sharpe, Sortino, Calmar, max drawdown to 1e-9."""
    r = sample_returns(730, seed, "D", drift=0.001)
    r.iloc[5:9] = [-0.05, -0.04, 0.0, -0.03]  # a real drawdown
    m = compute_metrics(r, 365)
    assert m["sharpe"] == pytest.approx(qs.stats.sharpe(r, periods=365), rel=1e-9, abs=1e-12)
    assert m["sortino"] == pytest.approx(qs.stats.sortino(r, periods=365), rel=1e-9, abs=1e-12)
    assert m["calmar"] == pytest.approx(qs.stats.calmar(r, periods=365), rel=1e-9, abs=1e-12)
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(r), rel=1e-9, abs=1e-12)
    # and quantstats' own default (252) would differ: the 365-day year is what is being checked
    assert abs(m["sharpe"] - qs.stats.sharpe(r, periods=252)) > 1e-3


# ----------------------------------------------------------------------------- hand computations


def test_drawdown_duration_payoff_expectancy_by_hand():
    r = [0.10, -0.05, 0.04, 0.0, 0.05, -0.02, -0.01, 0.01]
    # wealth: 1.1, 1.045, 1.0868, 1.0868, 1.14114, 1.1183172, 1.107134..., 1.118205...
    # under water after the first peak: bars 1, 2, 3 (3 bars); after 1.14114: bars 5, 6, 7 (3 bars)
    r2 = r + [-0.01, 0.0]  # extends the second episode to 5 bars (bars 5..9), unrecovered at the end
    m = compute_metrics(np.array(r), 24.0)  # 24 bars a year: one bar = 365 / 24 days
    assert m["max_drawdown_bars"] == 3
    assert m["max_drawdown_days"] == pytest.approx(3 * 365 / 24)
    m2 = compute_metrics(np.array(r2), 365.0)
    assert m2["max_drawdown_bars"] == 5 and m2["max_drawdown_days"] == pytest.approx(5.0)
    # a loss on the very first bar is under water against the starting equity
    assert compute_metrics(np.array([-0.01, 0.005, 0.006]), 365)["max_drawdown_bars"] == 2
    # returns-based payoff / expectancy: non-zero returns only
    wins, losses = [0.10, 0.04, 0.05, 0.01], [-0.05, -0.02, -0.01]
    assert m["payoff_ratio"] == pytest.approx((sum(wins) / 4) / (sum(-x for x in losses) / 3), rel=1e-12)
    assert m["expectancy"] == pytest.approx((sum(wins) + sum(losses)) / 7, rel=1e-12)
    s = pd.Series(r, index=pd.date_range("2024-01-01", periods=len(r), freq="D"))
    assert m["payoff_ratio"] == pytest.approx(qs.stats.payoff_ratio(s), rel=1e-9)


def test_trade_payoff_and_expectancy_by_hand():
    idx = pd.date_range("2024-01-01", periods=10, freq="h")
    r = pd.Series(np.zeros(10), index=idx)
    trades = pd.DataFrame(
        {
            "entry_time": idx[[1, 3, 5, 7]],
            "exit_time": idx[[2, 4, 6, 9]],
            "pnl": [100.0, -40.0, 60.0, -20.0],
            "return": [0.01, -0.004, 0.0059, -0.002],
            "status": ["closed"] * 3 + ["open"],
        }
    )
    m = compute_metrics(r, 8760, trades)
    assert m["payoff_ratio"] == pytest.approx(((100 + 60) / 2) / ((40 + 20) / 2), rel=1e-12)
    assert m["expectancy"] == pytest.approx((0.01 - 0.004 + 0.0059 - 0.002) / 4, rel=1e-12)
    # = win_rate * mean win - loss_rate * mean |loss|
    assert m["expectancy"] == pytest.approx(0.5 * (0.01 + 0.0059) / 2 - 0.5 * (0.004 + 0.002) / 2, rel=1e-12)
    assert m["profit_factor"] == pytest.approx(160 / 60, rel=1e-12)


# ----------------------------------------------------------------------------- VWR against Backtrader


def equity_path(n: int, seed: int, drift: float, vol: float = 0.01) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.normal(drift, vol, n)
    r[0] = 0.0  # nothing fills on the first bar: equity[0] = starting cash
    return 10_000.0 * np.cumprod(1 + r)


def test_backtrader_vwr_defaults_are_the_code_ones():
    import backtrader as bt

    params = dict(bt.analyzers.VWR.params._gettuple())
    assert (params["tau"], params["sdev_max"]) == (VWR_TAU, VWR_SDEV_MAX) == (0.20, 2.0)


@pytest.mark.parametrize(("seed", "drift"), [(1, 0.0005), (2, -0.0003), (3, 0.002)])
def test_vwr_equals_backtrader_hourly(seed, drift):
    """1h bars declared to Backtrader as Minutes x 60: one period per bar, tann falls back to 1."""
    import backtrader as bt

    eq = equity_path(600, seed, drift)
    idx = pd.date_range("2024-03-01 17:00", periods=len(eq), freq="h")
    want = backtrader_vwr_of(eq, idx, bt.TimeFrame.Minutes, 60)
    r = pd.Series(eq / np.r_[eq[0], eq[:-1]] - 1, index=idx)
    assert compute_metrics(r, 8760)["vwr"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert compute_metrics(r.to_numpy(), 8760)["vwr"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert backtrader_vwr(eq, eq[0], tann=backtrader_tann("1h")) == pytest.approx(want, rel=1e-9, abs=1e-12)
    # non-default analyzer parameters go through too
    want2 = backtrader_vwr_of(eq, idx, bt.TimeFrame.Minutes, 60, tau=2.0, sdev_max=0.2)
    assert backtrader_vwr(eq, eq[0], tau=2.0, sdev_max=0.2) == pytest.approx(want2, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("freq", "ppy", "tf", "timeframe"),
                         [("D", 365.0, "Days", "1d"), ("W-MON", 365 / 7, "Weeks", "1w")])
def test_vwr_equals_backtrader_daily_and_weekly(freq, ppy, tf, timeframe):
    """Daily bars use Backtrader's tann = 252 (not 365), weekly 52."""
    import backtrader as bt

    eq = equity_path(400, 4, 0.001, 0.02)
    idx = pd.date_range("2021-01-04", periods=len(eq), freq=freq)
    want = backtrader_vwr_of(eq, idx, getattr(bt.TimeFrame, tf), 1)
    r = eq / np.r_[eq[0], eq[:-1]] - 1
    assert compute_metrics(r, ppy)["vwr"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert backtrader_tann(timeframe) == {"1d": 252.0, "1w": 52.0}[timeframe]


@pytest.mark.parametrize(("tf", "compression", "keys", "tann"), [
    (None, 1, ("days", 1), 252.0),  # PandasData's default timeframe: hourly bars grouped by calendar day
    ("Minutes", 240, ("minutes", 240), 1.0),  # 4-hour periods
    ("Weeks", 1, ("weeks", 1), 52.0),
])
def test_vwr_equals_backtrader_with_coarser_periods(tf, compression, keys, tann):
    """Hourly bars in coarser Backtrader periods: each period's end value is the value at the first bar of
    the next period (Backtrader's notification order), reproduced through explicit period keys."""
    import backtrader as bt

    eq = equity_path(24 * 30 + 7, 5, 0.0002)
    idx = pd.date_range("2024-01-01 19:00", periods=len(eq), freq="h")
    want = backtrader_vwr_of(eq, idx, None if tf is None else getattr(bt.TimeFrame, tf), compression)
    got = backtrader_vwr(eq, eq[0], tann=tann, period_keys=backtrader_period_keys(idx, *keys))
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    # one period per bar would be a different number: the grouping matters
    assert abs(backtrader_vwr(eq, eq[0], tann=tann) - want) > 1e-6


def test_vwr_hand_computation_and_degenerate_cases():
    v = np.array([100.0, 110.0, 99.0, 120.0])
    v0 = 100.0
    ravg = math.log(120.0 / 100.0) / 4
    pairs = [(100.0, 100.0), (100.0, 110.0), (110.0, 99.0), (99.0, 120.0)]
    d = [pn / (pi * math.exp(ravg * k)) - 1 for k, (pi, pn) in enumerate(pairs, 1)]
    mu = sum(d) / 4
    sdev = math.sqrt(sum((x - mu) ** 2 for x in d) / 3)
    want = math.expm1(ravg * 1.0) * 100 * (1 - (sdev / 2.0) ** 0.2)
    assert backtrader_vwr(v, v0) == pytest.approx(want, rel=1e-12)
    assert backtrader_vwr(np.array([]), 1.0) == 0.0
    assert backtrader_vwr(np.array([1.0]), 1.0) == 0.0  # one pair: Backtrader divides by zero
    assert backtrader_vwr(np.array([1.0, 0.0, 0.5]), 1.0) == -100.0  # wiped out
    assert compute_metrics(np.array([0.1, -1.0, 0.0]), 8760)["vwr"] == -100.0
