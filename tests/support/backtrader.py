"""Backtrader as an independent second engine: Maestro's signal arrays replayed through its broker, and its own
VWR analyzer on a given equity path. Backtrader is imported inside the functions (a dev-only dependency)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from maestro_pipeline.strategies import Signals


def make_signal_trader(fee: float, slip: float, trade_from: int = 0):
    """A Backtrader strategy base class that trades like Maestro's engine: a subclass says, at each bar's
    close, what its signals are (``signals_now() -> (long_entry, long_exit, short_entry, short_exit)``) and
    this class acts on them at the next bar's open (cheat-on-open market orders), all-in, long and short.

    Conflict rules as documented in ``maestro_pipeline.backtest``: entry+exit of one side, or both entries,
    cancel; an entry in the direction held does nothing; an opposite entry reverses (closes and re-opens
    all-in at the same open; a same-bar exit of the held side is part of that reversal). Signals at bars
    before ``trade_from`` are ignored. Backtrader needs explicit sizes, so the all-in size is computed from
    its cash (a 1e-13 haircut keeps it from rejecting an order that costs exactly all the cash). Records the
    broker value at every close (``values``) and each opened trade as ``(bar index, direction)``.
    """
    import backtrader as bt

    haircut = 1 - 1e-13

    class SignalTrader(bt.Strategy):
        def __init__(self):
            self.values, self.entries, self.pending = [], [], None

        def signals_now(self):  # pragma: no cover - overridden
            raise NotImplementedError

        def notify_trade(self, trade):
            if trade.justopened:
                self.entries.append((len(self.data) - 1, "long" if trade.size > 0 else "short"))

        def _act(self):
            if self.pending is None:
                return
            e_l, x_l, e_s, x_s = self.pending
            self.pending = None
            if e_l and x_l:
                e_l = x_l = False
            if e_s and x_s:
                e_s = x_s = False
            if e_l and e_s:
                e_l = e_s = False
            pos, o, cash = self.position.size, self.data.open[0], self.broker.getcash()
            buy, sell = o * (1 + slip), o * (1 - slip)
            if pos > 0 and (e_s or x_l):
                self.sell(size=pos)
                if e_s:
                    freed = cash + pos * sell * (1 - fee)
                    self.sell(size=freed / (sell * (1 + fee)) * haircut)
            elif pos < 0 and (e_l or x_s):
                self.buy(size=-pos)
                if e_l:
                    left = cash + pos * buy * (1 + fee)
                    self.buy(size=left / (buy * (1 + fee)) * haircut)
            elif pos == 0 and e_l:
                self.buy(size=cash / (buy * (1 + fee)) * haircut)
            elif pos == 0 and e_s:
                self.sell(size=cash / (sell * (1 + fee)) * haircut)

        def next_open(self):  # runs before this bar's open is traded
            self._act()

        def prenext_open(self):
            self._act()

        def _close(self, ready: bool):
            i = len(self.data) - 1
            self.values.append(self.broker.getvalue())
            self.pending = tuple(bool(x) for x in self.signals_now()) if ready and i >= trade_from else None

        def next(self):  # this bar's close
            self._close(True)

        def prenext(self):  # indicators not ready yet: no signal
            self._close(False)

    return SignalTrader


def run_backtrader(bars: pd.DataFrame, strategy_cls, fee: float, slip: float, init_cash: float = 10_000.0,
                   analyzers: dict | None = None):
    """Run ``strategy_cls`` (a :func:`make_signal_trader` subclass) on ``bars`` with Backtrader's own broker:
    its percentage slippage on every fill, its commission on filled notional, its cash/value accounting."""
    import backtrader as bt

    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    cerebro.broker.setcash(init_cash)
    cerebro.broker.set_checksubmit(False)  # the re-open order is funded by the close just before it
    cerebro.broker.set_slippage_perc(slip, slip_open=True, slip_match=True, slip_out=True)
    cerebro.broker.setcommission(commission=fee, stocklike=True, percabs=True)
    cerebro.adddata(bt.feeds.PandasData(dataname=bars, timeframe=bt.TimeFrame.Minutes, compression=60))
    cerebro.addstrategy(strategy_cls)
    for name, (cls, kw) in (analyzers or {}).items():
        cerebro.addanalyzer(cls, _name=name, **kw)
    return cerebro.run()[0]


def backtrader_replay(bars: pd.DataFrame, sig: Signals, fee: float, slip: float, init_cash: float = 10_000.0,
                      trade_from: int = 0, analyzers: dict | None = None):
    """Replay Maestro's signal arrays through Backtrader; returns the finished Backtrader strategy."""
    arrays = [np.asarray(a, dtype=bool) for a in sig.arrays()]

    class Replay(make_signal_trader(fee, slip, trade_from)):
        def signals_now(self):
            i = len(self.data) - 1
            return tuple(a[i] for a in arrays)

    return run_backtrader(bars, Replay, fee, slip, init_cash, analyzers)


def backtrader_equity(bars: pd.DataFrame, sig: Signals, fee: float, slip: float, init_cash: float = 10_000.0):
    """(equity at each close, trades opened) of ``sig`` replayed through Backtrader."""
    strat = backtrader_replay(bars, sig, fee, slip, init_cash)
    return np.array(strat.values), len(strat.entries)


def backtrader_vwr_of(equity: np.ndarray, index: pd.DatetimeIndex, timeframe=None, compression=1, **analyzer_kw):
    """VWR of an equity path measured by Backtrader's own VWR analyzer in a real cerebro run.

    The path is made tradeable: a feed whose close is the equity and whose open is the previous equity; the
    strategy buys exactly 1 unit with all its cash (``equity[0]``, commission 0) at the open of bar 1
    (cheat-on-open), so the broker value at each close *is* ``equity`` (``equity[0]`` = starting cash, as in
    Maestro where nothing can fill on the first bar).
    """
    import backtrader as bt

    cash = float(equity[0])
    df = pd.DataFrame({"open": np.r_[cash, equity[:-1]], "close": equity}, index=index)
    df["high"] = df[["open", "close"]].max(axis=1)
    df["low"] = df[["open", "close"]].min(axis=1)
    df["volume"] = 1.0

    class HoldOne(bt.Strategy):
        def __init__(self):
            self.values = []

        def next_open(self):
            if not self.position:
                self.buy(size=1.0)

        def next(self):
            self.values.append(self.broker.getvalue())

    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    cerebro.broker.setcash(cash)
    feed_kw = {} if timeframe is None else {"timeframe": timeframe, "compression": compression}
    cerebro.adddata(bt.feeds.PandasData(dataname=df, **feed_kw))
    cerebro.addstrategy(HoldOne)
    cerebro.addanalyzer(bt.analyzers.VWR, _name="vwr", **analyzer_kw)
    strat = cerebro.run()[0]
    np.testing.assert_allclose(strat.values, equity, rtol=1e-12)  # Backtrader saw exactly this equity
    return strat.analyzers.vwr.get_analysis()["vwr"]
