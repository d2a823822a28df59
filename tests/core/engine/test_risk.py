"""Stops, margin and liquidation, sizing: crafted adversarial markets, hand-computed figures, Backtrader's broker as
an independent reference, and the compiled engine held equal to the vectorbt reference."""

from __future__ import annotations

import math

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from maestro_pipeline.engine import (
    NO_RISK,
    Costs,
    RiskSpec,
    StopRule,
    backtest_fast,
    bar_arrays,
    evaluate,
    evaluate_fast_run,
    grid_returns,
    liquidation_fraction,
    run_backtest,
)
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.strategies import Signals, get_strategy
from tests.support.bars import bars_from_close, hourly_index

FEE, SLIP, MM = 0.001, 0.0005, 0.005


def ohlc(o, h, lo, c) -> pd.DataFrame:
    o, h, lo, c = (np.asarray(x, dtype=float) for x in (o, h, lo, c))
    return pd.DataFrame({"open": o, "high": h, "low": lo, "close": c, "volume": 1.0}, index=hourly_index(len(o)))


def signals(n: int, le=(), lx=(), se=(), sx=()) -> Signals:
    """Signal bars (each fills at the next bar's open)."""
    def mask(ix):
        m = np.zeros(n, dtype=bool)
        m[list(ix)] = True
        return m
    return Signals(mask(le), mask(lx), mask(se), mask(sx))


def both(bars: pd.DataFrame, sig: Signals, costs: Costs, risk: RiskSpec = NO_RISK, start: int = 0):
    """The reference result and the compiled one, which must agree to the last bit."""
    ref = run_backtest(bars, sig, costs, start=start, risk=risk)
    fast = backtest_fast(bars["open"], bars["close"], *sig.arrays(), start, costs.fee, costs.slippage,
                         high=bars["high"], low=bars["low"], risk=risk, maintenance_margin=costs.maintenance_margin)
    np.testing.assert_array_equal(ref.returns.to_numpy(), fast.returns)
    assert (ref.n_trades, ref.ruined) == (fast.n_trades, fast.ruined)
    if fast.exits:
        assert ref.exit_counts() == fast.exits
    else:  # the plain kernel (no stop can fire) does not split exits by reason: there must be none to split
        assert all(ref.exit_counts()[k] == 0 for k in ("stop", "target", "trail", "liquidation"))
    return ref, fast


# ----------------------------------------------------------------------------- margin and liquidation


def rally(n: int = 40, top: float = 250.0) -> pd.DataFrame:
    """Flat at 100, then a steady rally to ``top`` (+150 %), then flat: bars open at the previous close."""
    close = np.r_[np.full(5, 100.0), np.linspace(100.0, top, n - 10), np.full(5, top)]
    open_ = np.r_[100.0, close[:-1]]
    return ohlc(open_, np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999, close)


def test_a_1x_short_through_a_150pct_rally_is_liquidated_at_its_price_and_equity_stays_positive():
    bars = rally()
    costs = Costs(FEE, SLIP, MM)
    ref, _ = both(bars, signals(len(bars), se=[1]), costs)
    (trade,) = ref.trades.to_dict("records")
    pe = bars["open"].iloc[2] * (1 - SLIP)                      # the short's fill price
    p_liq = 2 * pe / (1 + MM)                                    # equity = maintenance margin: hand-derived
    assert trade["exit_reason"] == "liquidation" and trade["status"] == "closed"
    assert trade["exit_price"] == pytest.approx(p_liq, rel=1e-12)
    units = 10_000.0 / (pe * (1 + FEE))
    assert ref.equity.iloc[-1] == pytest.approx(units * p_liq * (MM - FEE), rel=1e-9)  # margin left after the fee
    assert ref.min_equity > 0 and not ref.ruined and ref.liquidations == 1
    assert liquidation_fraction(1.0, FEE, MM) == pytest.approx((1 - MM) / (1 + MM))  # the entry fee cancels


def test_a_gap_through_the_liquidation_price_wipes_the_account_out_and_nothing_trades_after():
    close = np.r_[np.full(5, 100.0), np.linspace(100, 150, 10), np.full(10, 320.0)]
    open_ = np.r_[100.0, close[:-1]]
    open_[15] = 320.0                                            # bar 15 opens far above the liquidation price
    bars = ohlc(open_, np.maximum(open_, close), np.minimum(open_, close), close)
    sig = signals(len(bars), se=[1], le=[18])                   # a long entry after the gap must never fill
    ref, fast = both(bars, sig, Costs(FEE, SLIP, MM))
    assert ref.ruined and fast.ruin == 15
    assert (ref.equity.iloc[15:] == 0).all() and (ref.equity >= 0).all()
    assert ref.returns.iloc[15] == -1.0 and (ref.returns.iloc[16:] == 0).all()
    assert ref.trades["exit_reason"].tolist() == ["liquidation"] and ref.n_trades == 1


def test_a_long_is_never_liquidated_and_a_fractional_short_later_than_an_all_in_one():
    bars = rally(top=400.0)
    long_only, _ = both(bars[::-1].set_axis(bars.index), signals(len(bars), le=[1]), Costs(FEE, SLIP, MM))
    assert long_only.liquidations == 0 and long_only.min_equity > 0
    half, _ = both(bars, signals(len(bars), se=[1]), Costs(FEE, SLIP, MM), RiskSpec(fraction=0.5))
    (trade,) = half.trades.to_dict("records")
    pe = bars["open"].iloc[2] * (1 - SLIP)
    assert trade["exit_reason"] == "liquidation"
    assert trade["exit_price"] == pytest.approx(pe * ((1 + FEE) / 0.5 + 1 - FEE) / (1 + MM), rel=1e-12)


def test_the_maintenance_margin_must_cover_the_liquidation_fee():
    with pytest.raises(MaestroError, match="maintenance_margin=0.0005 is below the fee 0.001"):
        Costs(0.001, 0.0, 0.0005)


# ----------------------------------------------------------------------------- stops: intrabar rules


def test_a_bar_gapping_through_a_stop_fills_at_its_open():
    bars = ohlc([100, 100, 101, 90, 94], [101, 102, 103, 92, 95], [99, 99, 100, 88, 93], [100, 101, 102, 91, 94])
    ref, _ = both(bars, signals(5, le=[0]), Costs(FEE, 0.0, MM), RiskSpec(stop_loss=StopRule(0.05)))
    (trade,) = ref.trades.to_dict("records")
    assert (trade["exit_reason"], trade["exit_price"]) == ("stop", 90.0)   # the open, not the 95 stop


def test_stop_and_target_touched_in_one_bar_take_the_stop():
    bars = ohlc([100, 100, 101, 100, 100], [101, 102, 103, 106, 101], [99, 99, 100, 94, 99], [100, 101, 102, 100, 100])
    risk = RiskSpec(stop_loss=StopRule(0.05), take_profit=StopRule(0.05))
    ref, _ = both(bars, signals(5, le=[0]), Costs(FEE, 0.0, MM), risk)
    (trade,) = ref.trades.to_dict("records")
    assert (trade["exit_reason"], trade["exit_price"]) == ("stop", pytest.approx(95.0))


def test_a_target_inside_the_range_fills_at_the_target():
    bars = ohlc([100, 100, 101, 100, 100], [101, 102, 103, 106, 101], [99, 99, 100, 99, 99], [100, 101, 102, 100, 100])
    ref, _ = both(bars, signals(5, le=[0]), Costs(FEE, 0.0, MM), RiskSpec(take_profit=StopRule(0.05)))
    assert ref.trades[["exit_reason", "exit_price"]].iloc[0].tolist() == ["target", pytest.approx(105.0)]


def test_a_trailing_stop_follows_the_best_high_after_the_entry_bar():
    # entry at 100 (bar 1 open); the entry bar's own high of 120 is not part of the trail; bar 2 peaks at 110 and
    # the trail (updated after each bar's check) becomes 104.5, hit by bar 3's low
    bars = ohlc([100, 100, 105, 106, 100], [101, 120, 110, 107, 101], [99, 99, 104, 104.4, 99],
                [100, 101, 106, 105, 100])
    ref, _ = both(bars, signals(5, le=[0]), Costs(0.0, 0.0, 0.0), RiskSpec(trailing_stop=StopRule(0.05)))
    (trade,) = ref.trades.to_dict("records")
    assert trade["exit_reason"] == "trail" and trade["exit_price"] == pytest.approx(104.5)
    assert trade["exit_time"] == bars.index[3]


def test_an_atr_stop_is_k_times_the_atr_before_the_fill():
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    bars = bars_from_close(close, np.r_[100.0, close[:-1]], wick=0.004)
    risk = RiskSpec(stop_loss=StopRule(2.0, "atr"), atr_window=10)
    ref, _ = both(bars, signals(60, le=[20]), Costs(0.0, 0.0, 0.0), risk)
    tr = np.maximum.reduce([bars["high"] - bars["low"], (bars["high"] - bars["close"].shift()).abs(),
                            (bars["low"] - bars["close"].shift()).abs()])
    atr_before_fill = tr[11:21].mean()                                   # ATR(10) through bar 20, the signal bar
    level = bars["open"].iloc[21] * (1 - 2.0 * atr_before_fill / bars["open"].iloc[21])
    trade = ref.trades.iloc[0]
    if trade["exit_reason"] == "stop":
        j = bars.index.get_loc(trade["exit_time"])
        assert trade["exit_price"] == pytest.approx(min(level, bars["open"].iloc[j]))
    else:  # never touched: every later low stayed above the level
        assert (bars["low"].iloc[22:] > level).all()


def test_risk_sizing_loses_the_stated_fraction_at_the_stop():
    bars = ohlc([100, 100, 101, 100, 100], [101, 102, 103, 101, 101], [99, 99, 100, 94, 99], [100, 101, 102, 96, 100])
    risk = RiskSpec(stop_loss=StopRule(0.05), sizing="risk", risk_per_trade=0.01)
    ref, _ = both(bars, signals(5, le=[0]), Costs(FEE, 0.0, MM), risk)
    assert ref.trades["exit_reason"].iloc[0] == "stop"
    assert ref.equity.iloc[-1] == pytest.approx(10_000 * (1 - 0.01), rel=1e-12)   # fees included


def test_leverage_above_one_and_two_protective_stops_are_refused():
    with pytest.raises(MaestroError, match="max_leverage=2 must be in"):
        RiskSpec(max_leverage=2)
    with pytest.raises(MaestroError, match="pick one"):
        RiskSpec(stop_loss=StopRule(0.05), trailing_stop=StopRule(0.05))
    with pytest.raises(MaestroError, match="sizing: risk sizes each position by its stop distance"):
        RiskSpec(sizing="risk")


# ----------------------------------------------------------------------------- Backtrader's broker, independently


class _Bracket(bt.Strategy):
    params = {"stop": None, "limit": None}

    def __init__(self):
        self.fills = []

    def next(self):
        if len(self) == 1:  # at bar 0's close: the market entry fills at bar 1's open, then the bracket is live
            self.buy_bracket(size=10, exectype=bt.Order.Market, stopprice=self.p.stop, limitprice=self.p.limit,
                             limitexec=bt.Order.Limit if self.p.limit is not None else None)

    def notify_order(self, order):
        if order.status == order.Completed:
            self.fills.append((len(self) - 1, order.executed.price))


def _backtrader_exit(bars: pd.DataFrame, stop: float, limit: float | None) -> tuple[int, float]:
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=bars))
    cerebro.addstrategy(_Bracket, stop=stop, limit=limit)
    cerebro.broker.setcash(1e9)
    strategy = cerebro.run()[0]
    return strategy.fills[-1]


@pytest.mark.parametrize("case", [
    ([100, 100, 101, 102, 100, 97], [101, 102, 103, 103, 101, 98], [99, 99, 100, 100, 94, 95],
     [100, 101, 102, 101, 97, 96], None),                                   # intrabar stop
    ([100, 100, 101, 93, 94], [101, 102, 103, 96, 95], [99, 99, 100, 92, 93], [100, 101, 102, 94, 94], None),  # gap
    ([100, 100, 101, 100, 100], [101, 102, 103, 106, 101], [99, 99, 100, 94, 99], [100, 101, 102, 100, 100],
     105.0),                                                                # stop and target in one bar
    ([100, 100, 101, 107, 100], [101, 102, 103, 108, 101], [99, 99, 100, 104, 99], [100, 101, 102, 106, 100],
     105.0),                                                                # gap beyond the target
    ([100, 100, 94, 95, 96], [101, 102, 96, 97, 97], [99, 90, 93, 94, 95], [100, 94, 95, 96, 96], None),  # entry bar
])
def test_fixed_stops_exit_where_backtraders_bracket_orders_exit(case):
    o, h, lo, c, limit = case
    bars = ohlc(o, h, lo, c)
    bt_bar, bt_price = _backtrader_exit(bars.set_axis(pd.date_range("2024-01-01", periods=len(o), freq="D")),
                                        95.0, limit)
    risk = RiskSpec(stop_loss=StopRule(0.05), take_profit=StopRule(0.05) if limit else None)
    ref, _ = both(bars, signals(len(o), le=[0]), Costs(0.0, 0.0, 0.0), risk)
    trade = ref.trades.iloc[0]
    assert bars.index.get_loc(trade["exit_time"]) == bt_bar
    assert trade["exit_price"] == pytest.approx(bt_price)


# ----------------------------------------------------------------------------- the two engines on random markets


def test_the_compiled_engine_equals_the_reference_with_stops_liquidation_and_sizing():
    rng = np.random.default_rng(11)
    reasons: dict[str, int] = {}
    ruined = 0
    for _ in range(120):
        n = 150
        vol = float(rng.choice([0.02, 0.05, 0.12]))
        close = 100 * np.exp(np.cumsum(rng.normal(0.002, vol, n)))
        open_ = np.r_[100, close[:-1]] * np.exp(rng.normal(0, vol / 2, n))
        bars = ohlc(open_, np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, vol / 2, n))),
                    np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, vol / 2, n))), close)
        sig = Signals(*(np.r_[False, rng.random(n - 1) < 0.06] for _ in range(4)))

        def stop():
            return (StopRule(float(rng.choice([0.03, 0.1]))) if rng.random() < 0.5
                    else StopRule(float(rng.choice([1.0, 3.0])), "atr"))
        kind = int(rng.integers(0, 4))
        kw = {0: {}, 1: {"stop_loss": stop()}, 2: {"trailing_stop": stop()}, 3: {"take_profit": stop()}}[kind]
        sizing = int(rng.integers(0, 3))
        if sizing == 1:
            kw["fraction"] = float(rng.choice([0.3, 0.7]))
        elif sizing == 2 and kind in (1, 2):
            kw.update(sizing="risk", risk_per_trade=0.02)
        fee = float(rng.choice([0.0, 0.001]))
        costs = Costs(fee, float(rng.choice([0.0, 0.0005])), float(rng.choice([0.005, 0.01])))
        ref, _ = both(bars, sig, costs, RiskSpec(atr_window=5, **kw), start=int(rng.integers(0, 20)))
        ruined += ref.ruined
        for k, v in ref.exit_counts().items():
            reasons[k] = reasons.get(k, 0) + v
    assert all(reasons[k] > 0 for k in ("signal", "stop", "target", "trail", "end of data"))
    assert reasons["liquidation"] > 0 or ruined > 0


def test_a_strategy_with_stops_searched_and_traded_through_both_engines():
    rng = np.random.default_rng(5)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 2500)))
    bars = bars_from_close(close, np.r_[100.0, close[:-1]], wick=0.003)
    s = get_strategy("ema_cross")
    risk = RiskSpec(trailing_stop=StopRule(2.5, "atr"), take_profit=StopRule(0.04))
    ref = evaluate(bars, s, {"fast": 8, "slow": 30}, 1000, 2500, Costs(), risk=risk)
    fast = evaluate_fast_run(bars, s, {"fast": 8, "slow": 30}, 1000, 2500, Costs(), risk=risk)
    np.testing.assert_array_equal(ref.returns.to_numpy(), fast.returns)
    assert ref.exit_counts() == fast.exits and ref.exit_counts()["trail"] > 0 and ref.exit_counts()["target"] > 0
    # the search reads the ATR computed once over the whole history: the same values, to the last bit
    cached = evaluate_fast_run(bars, s, {"fast": 8, "slow": 30}, 1000, 2500, Costs(), risk=risk,
                               arrays=bar_arrays(bars, atr_window=risk.atr_window))
    np.testing.assert_array_equal(cached.returns, fast.returns)
    assert math.isclose(float(np.prod(1 + fast.returns)) * 10_000, ref.equity.iloc[-1], rel_tol=1e-12)


def test_the_grid_hands_a_short_that_reaches_its_liquidation_level_to_the_stop_kernel():
    # a downtrend, then a three-bar pump of +45 % a bar: the parameter sets still short when it starts are
    # liquidated (the plain kernel gives up on them), the others never are; every column must equal vectorbt's
    rng = np.random.default_rng(8)
    n = 1200
    r = rng.normal(-0.001, 0.01, n)
    r[700:703] = np.log1p(0.45)
    close = 100 * np.exp(np.cumsum(r))
    bars = bars_from_close(close, np.r_[100.0, close[:-1]], wick=0.002)
    s = get_strategy("ema_cross")
    grid = [{"fast": f, "slow": sl} for f in (3, 5, 10, 20) for sl in (30, 60, 120, 240)]
    rets, trades = grid_returns(bars, s, grid, 300, n, Costs())
    liquidated = 0
    for k, p in enumerate(grid):
        ref = evaluate(bars, s, p, 300, n, Costs())
        np.testing.assert_array_equal(rets[:, k], ref.returns.to_numpy(), err_msg=str(p))
        assert trades[k] == ref.n_trades
        liquidated += ref.liquidations > 0
    assert 0 < liquidated < len(grid)
