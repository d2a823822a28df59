"""Backtest engine against an independent pure-Python reference; execution timing; window discipline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from maestro_pipeline.engine import (
    TRADE_COLUMNS,
    BacktestResult,
    Costs,
    RiskSpec,
    evaluate,
    index_freq,
    run_backtest,
)
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.strategies import Signals, get_strategy
from tests.support.backtrader import backtrader_equity, backtrader_replay
from tests.support.bars import random_schema_bars, schema_bars


def reference_backtest(open_, close, le, lx, se, sx, fee, slip, init_cash=10_000.0, start=0):
    """All-in, next-bar-open, long/short backtest written as a plain loop (no vectorbt).

    A signal at bar t acts at open[t+1]; buys pay open*(1+slip), sells get open*(1-slip), and the fee is a
    fraction of the filled notional. Opening all-in: long units = cash / (buy_price * (1 + fee)); short units
    = cash / (sell_price * (1 + fee)) (the proceeds stay in cash as collateral). A reversal closes the old
    position and re-opens all-in at the same open. Conflicting signals on one bar (entry+exit of one side, or
    both entries) are ignored; an entry in the direction already held does nothing.
    """
    n = len(close)
    cash, units = float(init_cash), 0.0  # units > 0 long, < 0 short
    equity, entries = [], []

    def close_position(px_buy, px_sell):
        nonlocal cash, units
        if units > 0:
            cash += units * px_sell * (1 - fee)
        elif units < 0:
            cash -= -units * px_buy * (1 + fee)
        units = 0.0

    for t in range(start, n):
        s = t - 1  # the bar whose signals fill now
        if t > start and s >= start:
            e_long, x_long, e_short, x_short = bool(le[s]), bool(lx[s]), bool(se[s]), bool(sx[s])
            if e_long and x_long:
                e_long = x_long = False
            if e_short and x_short:
                e_short = x_short = False
            if e_long and e_short:
                e_long = e_short = False
            buy, sell = open_[t] * (1 + slip), open_[t] * (1 - slip)
            if units > 0:
                if e_short:
                    close_position(buy, sell)
                    units = -cash / (sell * (1 + fee))
                    cash += -units * sell * (1 - fee)
                    entries.append((t, "short", sell))
                elif x_long:
                    close_position(buy, sell)
            elif units < 0:
                if e_long:
                    close_position(buy, sell)
                    units = cash / (buy * (1 + fee))
                    cash = 0.0
                    entries.append((t, "long", buy))
                elif x_short:
                    close_position(buy, sell)
            else:
                if e_long:
                    units = cash / (buy * (1 + fee))
                    cash = 0.0
                    entries.append((t, "long", buy))
                elif e_short:
                    units = -cash / (sell * (1 + fee))
                    cash += -units * sell * (1 - fee)
                    entries.append((t, "short", sell))
        equity.append(cash + units * close[t])
    return np.array(equity), entries


def crafted_signals(n: int) -> Signals:
    le, lx, se, sx = (np.zeros(n, bool) for _ in range(4))
    le[3] = True  # open long at 4
    le[6] = True  # already long: ignored
    se[10] = True  # reverse to short at 11
    sx[15] = True  # close short at 16
    se[18] = True  # open short at 19
    le[22] = True  # reverse to long at 23
    lx[26] = True  # close long at 27
    le[28] = True
    lx[28] = True  # conflict: ignored
    le[30] = True
    se[30] = True  # direction conflict: ignored
    sx[31] = True  # nothing to exit
    le[33] = True  # open long at 34
    se[37] = True  # reverse at 38, stays open to the end
    le[n - 1] = True  # last bar: can never fill
    return Signals(le, lx, se, sx)


@pytest.mark.parametrize("costs", [Costs(), Costs(fee=0.0, slippage=0.0), Costs(fee=0.0025, slippage=0.001)])
def test_equity_matches_hand_reference_on_crafted_signals(costs):
    bars = random_schema_bars(45, seed=1)
    sig = crafted_signals(len(bars))
    res = run_backtest(bars, sig, costs)
    assert isinstance(res, BacktestResult)
    ref_equity, ref_entries = reference_backtest(
        bars["open"].to_numpy(), bars["close"].to_numpy(), *sig.arrays(), costs.fee, costs.slippage
    )
    np.testing.assert_allclose(res.equity.to_numpy(), ref_equity, rtol=1e-9, atol=0)
    assert res.n_trades == len(ref_entries) == 6
    assert res.trades["entry_time"].tolist() == [bars.index[t] for t, _, _ in ref_entries]
    assert res.trades["direction"].tolist() == [d for _, d, _ in ref_entries]
    np.testing.assert_allclose(res.trades["entry_price"].to_numpy(), [p for _, _, p in ref_entries], rtol=1e-12)
    assert res.trades["status"].tolist() == ["closed"] * 5 + ["open"]
    # returns are the simple returns of that equity, starting from the initial cash
    prev = np.r_[10_000.0, ref_equity[:-1]]
    np.testing.assert_allclose(res.returns.to_numpy(), ref_equity / prev - 1, rtol=1e-9, atol=1e-12)
    assert res.returns.index.equals(bars.index) and res.equity.index.equals(bars.index)
    assert list(res.trades.columns) == list(TRADE_COLUMNS)


def test_strategy_backtest_matches_hand_reference():
    # a zigzag with known EMA crossings: up-leg, down-leg, up-leg, down-leg
    legs = [np.linspace(101, 120, 12), np.linspace(119, 95, 14), np.linspace(96, 125, 12), np.linspace(124, 105, 10)]
    close = np.r_[np.full(40, 100.0), *legs]  # 40 flat bars = the warm-up of slow=10
    bars = schema_bars(close, seed=4)
    s = get_strategy("ema_cross")
    p = s.check({"fast": 3, "slow": 10})
    sig = s.signals(bars, p)
    assert sig.long_entries.sum() >= 2 and sig.short_entries.sum() >= 2
    costs = Costs(fee=0.001, slippage=0.0005)
    res = run_backtest(bars, sig, costs)
    ref_equity, ref_entries = reference_backtest(
        bars["open"].to_numpy(), bars["close"].to_numpy(), *sig.arrays(), costs.fee, costs.slippage
    )
    np.testing.assert_allclose(res.equity.to_numpy(), ref_equity, rtol=1e-9, atol=0)
    assert res.n_trades == len(ref_entries) >= 4


def test_start_masks_earlier_signals_and_matches_reference():
    bars = random_schema_bars(45, seed=7)
    sig = crafted_signals(len(bars))
    costs = Costs()
    for start in (5, 11, 20):
        res = run_backtest(bars, sig, costs, start=start)
        ref_equity, ref_entries = reference_backtest(
            bars["open"].to_numpy(), bars["close"].to_numpy(), *sig.arrays(), costs.fee, costs.slippage, start=start
        )
        assert res.equity.index.equals(bars.index[start:])
        np.testing.assert_allclose(res.equity.to_numpy(), ref_equity, rtol=1e-9, atol=0)
        assert res.n_trades == len(ref_entries)
        assert res.returns.iloc[0] == 0.0  # nothing can fill on the first bar of the window
        assert (res.trades["entry_time"] > bars.index[start]).all()


def test_signal_at_t_fills_at_next_open():
    bars = random_schema_bars(30, seed=2)
    n = len(bars)
    for t in (0, 7, 20):
        le = np.zeros(n, bool)
        le[t] = True
        z = np.zeros(n, bool)
        costs = Costs(fee=0.001, slippage=0.0007)
        res = run_backtest(bars, Signals(le, z, z, z), costs)
        first = res.trades.iloc[0]
        assert first["entry_time"] == bars.index[t + 1]
        assert first["entry_price"] == pytest.approx(bars["open"].iloc[t + 1] * (1 + costs.slippage), rel=1e-12)
        assert first["direction"] == "long" and first["status"] == "open"
        assert (res.equity.iloc[: t + 1] == 10_000.0).all()  # flat until the fill bar
        # short side: sells at open * (1 - slippage)
        res = run_backtest(bars, Signals(z, z, le, z), costs)
        assert res.trades.iloc[0]["entry_time"] == bars.index[t + 1]
        assert res.trades.iloc[0]["entry_price"] == pytest.approx(bars["open"].iloc[t + 1] * (1 - costs.slippage))


def test_fractional_size_closes_then_reopens_next_bar():
    bars = random_schema_bars(20, seed=3)
    n = len(bars)
    le, lx, se, sx = (np.zeros(n, bool) for _ in range(4))
    le[2] = True  # long at 3
    se[8] = True  # close at 9, short at 10
    costs = Costs(fee=0.001, slippage=0.0)
    res = run_backtest(bars, Signals(le, lx, se, sx), costs, risk=RiskSpec(fraction=0.5))
    o, c = bars["open"].to_numpy(), bars["close"].to_numpy()
    cash, units = 10_000.0, 0.0
    units = 0.5 * cash / (o[3] * 1.001)
    cash -= units * o[3] * 1.001
    expected = {5: cash + units * c[5]}
    cash += units * o[9] * 0.999
    expected[9] = cash
    short = 0.5 * cash / (o[10] * 1.001)
    cash += short * o[10] * 0.999
    expected[12] = cash - short * c[12]
    for t, v in expected.items():
        assert res.equity.iloc[t] == pytest.approx(v, rel=1e-9)
    assert res.trades["direction"].tolist() == ["long", "short"]
    assert res.trades["entry_time"].tolist() == [bars.index[3], bars.index[10]]


# ----------------------------------------------------------------------------- evaluate: window discipline


def test_evaluate_never_reads_at_or_after_end():
    bars = random_schema_bars(1500, seed=5)
    start, end = 700, 1100
    for name, params in (("ema_cross", {"fast": 5, "slow": 40}), ("rsi", {}), ("bollinger", {})):
        s = get_strategy(name)
        base = evaluate(bars, s, params, start, end, Costs())
        mutated = bars.copy()
        mutated.iloc[end:, :4] = np.nan  # any read of these would poison signals or prices
        again = evaluate(mutated, s, params, start, end, Costs())
        pd.testing.assert_series_equal(base.returns, again.returns)
        pd.testing.assert_series_equal(base.equity, again.equity)
        pd.testing.assert_frame_equal(base.trades, again.trades)
        assert base.returns.index.equals(bars.index[start:end])
        assert base.n_trades > 0
        # and bars before the warm-up range are not read either
        w = s.warmup(s.check(params))
        early = bars.copy()
        early.iloc[: start - w, :4] = np.nan
        pd.testing.assert_series_equal(base.equity, evaluate(early, s, params, start, end, Costs()).equity)


def test_evaluate_uses_warmup_history_from_before_start():
    bars = random_schema_bars(1200, seed=8)
    s = get_strategy("rsi")  # finite-window indicator: warm-up is exact
    p = s.check({"window": 14, "lower": 40.0, "upper": 60.0})
    start, end = 600, 900
    res = evaluate(bars, s, p, start, end, Costs())
    # same as computing signals on the whole history up to `end` and trading from `start`
    full = run_backtest(bars.iloc[:end], s.signals(bars.iloc[:end], p), Costs(), start=start)
    pd.testing.assert_series_equal(res.equity, full.equity)
    # ... and different from pretending nothing existed before `start` (the warm-up mattered)
    cold = run_backtest(bars.iloc[start:end], s.signals(bars.iloc[start:end], p), Costs())
    assert res.trades["entry_time"].min() < cold.trades["entry_time"].min()
    assert res.trades["entry_time"].min() <= bars.index[start + s.warmup(p)]


def test_evaluate_validates_window_and_params():
    bars = random_schema_bars(100, seed=1)
    s = get_strategy("ema_cross")
    with pytest.raises(MaestroError, match="window"):
        evaluate(bars, s, {}, 50, 50, Costs())
    with pytest.raises(MaestroError, match="window"):
        evaluate(bars, s, {}, 10, 101, Costs())
    with pytest.raises(MaestroError, match="fast"):
        evaluate(bars, s, {"fast": 30, "slow": 20}, 10, 90, Costs())


def test_costs_and_sizing_validation():
    with pytest.raises(MaestroError, match="fee"):
        Costs(fee=-0.001)
    with pytest.raises(MaestroError, match="slippage"):
        Costs(slippage=1.5)
    bars = random_schema_bars(20, seed=1)
    z = np.zeros(20, bool)
    with pytest.raises(MaestroError, match="fraction=1.5"):
        run_backtest(bars, Signals(z, z, z, z), Costs(), risk=RiskSpec(fraction=1.5))
    with pytest.raises(ValueError, match="shape"):
        run_backtest(bars, Signals(z[:5], z, z, z), Costs())


def test_index_freq_and_no_trades():
    bars = random_schema_bars(50, seed=1)
    assert index_freq(bars.index) == pd.Timedelta(hours=1)
    assert index_freq(pd.RangeIndex(5)) is None
    z = np.zeros(50, bool)
    res = run_backtest(bars, Signals(z, z, z, z), Costs())
    assert res.n_trades == 0 and list(res.trades.columns) == list(TRADE_COLUMNS)
    assert (res.equity == 10_000.0).all() and (res.returns == 0.0).all()


# ----------------------------------------------------------------------------- backtrader cross-check


def test_equity_matches_backtrader():
    bars = random_schema_bars(45, seed=1)
    sig = crafted_signals(len(bars))
    costs = Costs(fee=0.001, slippage=0.0005)
    res = run_backtest(bars, sig, costs)
    bt_equity, bt_trades = backtrader_equity(bars, sig, costs.fee, costs.slippage)
    np.testing.assert_allclose(res.equity.to_numpy(), bt_equity, rtol=1e-9, atol=0)
    assert res.n_trades == bt_trades == 6
    strat = backtrader_replay(bars, sig, costs.fee, costs.slippage)
    assert [(bars.index[i], d) for i, d in strat.entries] == list(
        zip(res.trades["entry_time"], res.trades["direction"], strict=True))


# ----------------------------------------------------------------------------- funding and leverage


def test_funding_payments_match_hand_computation():
    bars = random_schema_bars(20, seed=11)
    n = len(bars)
    le, lx, se, sx = (np.zeros(n, bool) for _ in range(4))
    le[2] = True  # long from open[3]
    se[9] = True  # reverse to short at open[10]
    sx[13] = True  # flat from open[14]
    sig = Signals(le, lx, se, sx)
    rate = np.full(n, np.nan)
    rate[[3, 4, 8, 10, 12, 14, 16]] = [0.01, 0.0001, -0.0002, 0.0003, 0.0004, 0.05, 0.02]
    costs = Costs(fee=0.001, slippage=0.0005)
    plain = run_backtest(bars, sig, costs)
    funded_bars = bars.assign(funding_rate=rate)
    res = run_backtest(funded_bars, sig, costs)

    o = bars["open"].to_numpy()
    fee, slip = costs.fee, costs.slippage
    long_units = 10_000.0 / (o[3] * (1 + slip) * (1 + fee))
    cash = long_units * o[10] * (1 - slip) * (1 - fee)
    short_units = cash / (o[10] * (1 - slip) * (1 + fee))
    # position held INTO each settlement: bar 3 = flat (the long fills at that open), 4 and 8 long,
    # 10 = still long (the reversal fills at that open), 12 short, 14 = still short, 16 flat
    expected = np.zeros(n)
    expected[4] = -long_units * o[4] * 0.0001
    expected[8] = -long_units * o[8] * -0.0002  # negative rate: the long receives
    expected[10] = -long_units * o[10] * 0.0003
    expected[12] = short_units * o[12] * 0.0004  # the short receives a positive rate
    expected[14] = short_units * o[14] * 0.05
    np.testing.assert_allclose(res.funding.to_numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res.equity.to_numpy(), plain.equity.to_numpy() + np.cumsum(expected), rtol=1e-12)
    prev = np.r_[10_000.0, res.equity.to_numpy()[:-1]]
    np.testing.assert_allclose(res.returns.to_numpy(), res.equity.to_numpy() / prev - 1, rtol=1e-12, atol=1e-15)
    pd.testing.assert_frame_equal(res.trades, plain.trades)  # funding is not trade pnl
    assert plain.funding is None
    # a window that starts later holds nothing into its first bar and ignores earlier settlements
    late = run_backtest(funded_bars, sig, costs, start=9)  # the short (signal at 9) opens at open[10]
    assert late.funding.index.equals(bars.index[9:])
    assert late.funding.loc[bars.index[10]] == 0.0  # flat into bar 10 in this window (the long is before it)
    assert late.funding.loc[bars.index[12]] > 0 and late.funding.loc[bars.index[16]] == 0.0
    with pytest.raises(Exception, match="funding_rate"):
        run_backtest(bars.assign(funding_rate=np.r_[np.inf, np.zeros(n - 1)]), sig, costs)


def test_leverage_cap_is_validated_and_peak_leverage_reported():
    bars = random_schema_bars(60, seed=12)
    n = len(bars)
    z = np.zeros(n, bool)
    se = z.copy()
    se[5] = True
    with pytest.raises(MaestroError, match=r"max_leverage=3 must be in \(0, 1\]"):
        RiskSpec(max_leverage=3)
    with pytest.raises(MaestroError, match="max_leverage"):
        RiskSpec(max_leverage=0)
    with pytest.raises(MaestroError, match=r"fraction=0.8 must be in \(0, max_leverage=0.5\]"):
        RiskSpec(fraction=0.8, max_leverage=0.5)
    res = run_backtest(bars, Signals(z, z, se, z), Costs(), risk=RiskSpec(fraction=0.5, max_leverage=0.5))
    c = bars["close"].to_numpy()
    units = res.trades["size"].iloc[0]
    lev = units * c[6:] / res.equity.to_numpy()[6:]
    assert res.peak_leverage == pytest.approx(lev.max(), rel=1e-12)
    assert 0.45 < lev[0] < 0.55
    # evaluate passes the risk spec through
    half = evaluate(bars, get_strategy("rsi"), {}, 20, 60, Costs(), risk=RiskSpec(fraction=0.5))
    full = evaluate(bars, get_strategy("rsi"), {}, 20, 60, Costs())
    assert half.n_trades == full.n_trades > 0
    assert half.trades["size"].iloc[0] == pytest.approx(0.5 * full.trades["size"].iloc[0], rel=1e-9)


# ----------------------------------------------------------------------------- the new classic strategies


def test_channel_signals_by_hand():
    high = np.array([10, 11, 12, 11, 10, 13, 12, 11, 9, 8, 10, 12], dtype=float)
    low = high - 2
    close = np.array([9, 10, 11, 10, 9, 12.5, 11, 10, 8, 6.5, 9.5, 10.5], dtype=float)
    bars = pd.DataFrame({"open": close, "high": high, "low": low, "close": close, "volume": 1.0},
                        index=pd.date_range("2024-01-01", periods=12, freq="h"))
    s = get_strategy("channel")
    p = {"window": 3, "exit_window": 2}  # below the search range, fine for signals()
    le, lx, se, sx = s.signals(bars, p).arrays()
    # upper_3[t] = max(high[t-3..t-1]): t=5: 12 < 12.5; t=11: max(9, 8, 10) = 10 < 10.5; t=3,4: 10, 9 < 12
    assert np.flatnonzero(le).tolist() == [5, 11]
    # lower_3[t] = min(low[t-3..t-1]): t=8: min(11, 10, 9) = 9 > 8; t=9: min(10, 9, 7) = 7 > 6.5
    assert np.flatnonzero(se).tolist() == [8, 9]
    # long exit, close < min(low[t-2..t-1]): t=8: min(10, 9) = 9 > 8; t=9: min(9, 7) = 7 > 6.5; t=7: 10 == 10 no
    assert np.flatnonzero(lx).tolist() == [8, 9]
    # short exit, close > max(high[t-2..t-1]): t=5: 11 < 12.5; t=10: 9 < 9.5; t=11: 10 < 10.5
    assert np.flatnonzero(sx).tolist() == [5, 10, 11]
    assert s.warmup(p) == 3
    # the current bar's own high is not part of its channel (it is for the next bars)
    spiked = bars.assign(high=np.where(np.arange(12) == 5, 100.0, high))
    assert np.flatnonzero(s.signals(spiked, p).long_entries).tolist() == [5, 11]
    with pytest.raises(MaestroError, match="exit_window"):
        s.check({"window": 10, "exit_window": 20})


def test_macd_matches_pandas_ewm_and_crosses():
    bars = random_schema_bars(600, seed=21)
    s = get_strategy("macd")
    p = s.check({"fast": 5, "slow": 13, "signal": 4})
    c = bars["close"]
    line = c.ewm(span=5, adjust=False, min_periods=5).mean() - c.ewm(span=13, adjust=False, min_periods=13).mean()
    sig_line = line.ewm(span=4, adjust=False, min_periods=4).mean()  # pandas starts at the first non-NaN
    from maestro_pipeline.strategies.macd import macd

    got_line, got_sig = macd(c.to_numpy(), 5, 13, 4)
    np.testing.assert_allclose(got_line, line.to_numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(got_sig, sig_line.to_numpy(), rtol=1e-12, equal_nan=True)
    d = (line - sig_line).to_numpy()
    up = np.r_[False, (d[:-1] <= 0) & (d[1:] > 0)]
    up[: s.warmup(p)] = False
    sig = s.signals(bars, p)
    np.testing.assert_array_equal(sig.long_entries, up)
    np.testing.assert_array_equal(sig.short_exits, up)
    assert sig.long_entries.sum() > 10 and s.warmup(p) == 4 * (13 + 4)
    with pytest.raises(MaestroError, match="fast"):
        s.check({"fast": 30, "slow": 20})
