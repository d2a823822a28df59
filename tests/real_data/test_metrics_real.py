"""Metrics on real candles against their independent references: Backtrader's VWR analyzer and quantstats.

Data: Bitvavo BTC/EUR 1h (2023, a strategy's equity and buy-and-hold) and Coinbase BTC/USD 1d (Lean).
"""

from __future__ import annotations

import backtrader as bt
import numpy as np
import pandas as pd
import pytest
import quantstats as qs

from maestro_pipeline.engine import Costs, evaluate
from maestro_pipeline.schema import to_pandas_bars
from maestro_pipeline.stats import backtrader_period_keys, backtrader_vwr, compute_metrics
from maestro_pipeline.strategies import get_strategy
from tests.support.backtrader import backtrader_replay, backtrader_vwr_of
from tests.support.datasets import load

pytestmark = pytest.mark.real_data

COSTS = Costs(fee=0.001, slippage=0.0005)


@pytest.fixture(scope="module")
def year_1h(datasets) -> pd.DataFrame:
    bars = to_pandas_bars(load(datasets, "iaf_bitvavo_btceur_1h.parquet"))
    return bars


def one_year(bars: pd.DataFrame) -> tuple[int, int]:
    return (int(bars.index.searchsorted(pd.Timestamp("2023-01-01"))),
            int(bars.index.searchsorted(pd.Timestamp("2024-01-01"))))


@pytest.mark.parametrize("name", ["ema_cross", "bollinger"])
def test_vwr_equals_backtrader_on_a_real_strategy_equity(year_1h, name):
    start, end = one_year(year_1h)
    res = evaluate(year_1h, get_strategy(name), {}, start, end, COSTS)
    eq = res.equity.to_numpy()
    assert eq[0] == 10_000.0 and res.n_trades > 50
    ours = compute_metrics(res.returns, 8760, res.trades)["vwr"]
    # 1) the equity as a Backtrader feed declared as 1h bars (Minutes x 60), Backtrader's analyzer on it
    want = backtrader_vwr_of(eq, res.equity.index, bt.TimeFrame.Minutes, 60)
    assert ours == pytest.approx(want, rel=1e-9, abs=1e-12)
    # 2) Backtrader trading the same signals itself, VWR analyzer attached to that run
    s = get_strategy(name)
    p = s.check({})
    lo = start - s.warmup(p)
    history = year_1h.iloc[lo:end]
    strat = backtrader_replay(history, s.signals(history, p), COSTS.fee, COSTS.slippage, trade_from=start - lo,
                              analyzers={"vwr": (bt.analyzers.VWR, {})})
    # Backtrader's run starts at `lo` (its broker value is flat until `start`): the same VWR on that path
    full = np.array(strat.values)
    got = backtrader_vwr(full, 10_000.0)
    assert strat.analyzers.vwr.get_analysis()["vwr"] == pytest.approx(got, rel=1e-9, abs=1e-12)
    # 3) Backtrader's default feed (timeframe=Days): periods are calendar days, tann 252
    want_days = backtrader_vwr_of(eq, res.equity.index)
    keys = backtrader_period_keys(res.equity.index, "days")
    assert backtrader_vwr(eq, 10_000.0, tann=252.0, period_keys=keys) == pytest.approx(want_days, rel=1e-9, abs=1e-12)


def test_vwr_equals_backtrader_on_real_daily_buy_and_hold(datasets):
    bars = to_pandas_bars(load(datasets, "lean_coinbase_btcusd_1d.parquet"))
    close = bars["close"].to_numpy()
    eq = 10_000.0 * close / close[0]
    want = backtrader_vwr_of(eq, bars.index, bt.TimeFrame.Days, 1)
    r = pd.Series(eq / np.r_[eq[0], eq[:-1]] - 1, index=bars.index)
    assert compute_metrics(r, 365.0)["vwr"] == pytest.approx(want, rel=1e-9, abs=1e-12)


def daily(returns: pd.Series) -> pd.Series:
    """Per-bar returns compounded into calendar-day returns (what quantstats expects)."""
    return (1 + returns).groupby(returns.index.normalize()).prod() - 1


@pytest.mark.parametrize("name", ["ema_cross", "rsi", "channel"])
def test_quantstats_equalities_on_real_daily_returns(year_1h, name):
    start, end = one_year(year_1h)
    res = evaluate(year_1h, get_strategy(name), {}, start, end, COSTS)
    d = daily(res.returns)
    assert 360 <= len(d) <= 366
    m = compute_metrics(d, 365)
    assert m["sharpe"] == pytest.approx(qs.stats.sharpe(d, periods=365), rel=1e-9, abs=1e-12)
    assert m["sortino"] == pytest.approx(qs.stats.sortino(d, periods=365), rel=1e-9, abs=1e-12)
    assert m["calmar"] == pytest.approx(qs.stats.calmar(d, periods=365), rel=1e-9, abs=1e-12)
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(d), rel=1e-9, abs=1e-12)
    assert m["total_return"] == pytest.approx(res.equity.iloc[-1] / 10_000.0 - 1, rel=1e-9, abs=1e-12)


def test_quantstats_equalities_on_real_buy_and_hold(datasets):
    bars = to_pandas_bars(load(datasets, "lean_coinbase_btcusd_1d.parquet"))
    r = bars["close"].pct_change().fillna(0.0)
    m = compute_metrics(r, 365)
    assert m["sharpe"] == pytest.approx(qs.stats.sharpe(r, periods=365), rel=1e-9)
    assert m["sortino"] == pytest.approx(qs.stats.sortino(r, periods=365), rel=1e-9)
    assert m["calmar"] == pytest.approx(qs.stats.calmar(r, periods=365), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(qs.stats.max_drawdown(r), rel=1e-9)
    assert m["max_drawdown"] < -0.5  # the 2018 crash is in there
