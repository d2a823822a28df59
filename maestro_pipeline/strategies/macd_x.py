"""MACD-X: MACD crossover against the short-term SMA direction, with an ATR trailing-style stop; long and short.

This is Backtrader's ``macd-settings`` sample system (MACD cross, SMA-direction filter, ATR stop) made
symmetric and vectorized. Indicators: MACD = EMA(close, fast) - EMA(close, slow), signal = EMA(MACD,
signal); ``smadir = SMA(close, sma_window)[t] - SMA(close, sma_window)[t - dir_window]``; ATR = simple mean
of ``atr_window`` true ranges.

Rule: long entry when MACD crosses above its signal line while ``smadir < 0`` (buying a turn inside a
pull-back); long exit on any close below ``highest close of the last trail_window bars - atr_dist * ATR``.
Short entry when MACD crosses below its signal while ``smadir > 0``; short exit on any close above ``lowest
close of the last trail_window bars + atr_dist * ATR``.

Difference from the stateful original: Backtrader's sample ratchets a stop from the entry bar on
(``stop = max(stop, close - atr_dist * ATR)``); a stateless vectorized signal cannot know the entry bar, so
the stop is a chandelier over a fixed ``trail_window`` lookback. It is still evaluated at the close and
filled at the next open (no intrabar stop). Warm-up: EMAs are recursive, so ``4 * (slow + signal)`` bars
(seed weight about ``e**-8``, as ``ema_cross``), or the finite windows' need if larger.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import atr, column, ema, rolling_max, rolling_min, shift, sma
from .base import FloatParam, IntParam, Signals, Strategy, crossed_above, crossed_below, smaller_than


class MacdX(Strategy):
    name = "macd_x"
    description = ("MACD cross against the SMA direction (buy pull-back turns, sell rally turns) "
                   "with an ATR chandelier exit.")
    defaults = {
        "fast": 12,
        "slow": 26,
        "signal": 9,
        "sma_window": 30,
        "dir_window": 10,
        "atr_window": 14,
        "atr_dist": 3.0,
        "trail_window": 20,
    }
    space = {
        "fast": IntParam(4, 40),
        "slow": IntParam(10, 100),
        "signal": IntParam(3, 30),
        "sma_window": IntParam(10, 100),
        "dir_window": IntParam(2, 40),
        "atr_window": IntParam(5, 50),
        "atr_dist": FloatParam(1.0, 6.0),
        "trail_window": IntParam(5, 100),
    }

    def constraints(self, params: dict) -> str | None:
        return smaller_than(params, "fast", "slow")

    def warmup(self, params: dict) -> int:
        finite = max(
            int(params["sma_window"]) + int(params["dir_window"]),
            int(params["atr_window"]) + 1,
            int(params["trail_window"]),
        )
        return max(4 * (int(params["slow"]) + int(params["signal"])), finite)

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        high, low, close = column(bars, "high"), column(bars, "low"), column(bars, "close")
        macd = ema(close, params["fast"]) - ema(close, params["slow"])
        sig = ema(macd, params["signal"])
        s = sma(close, params["sma_window"])
        smadir = s - shift(s, params["dir_window"])
        a = atr(high, low, close, params["atr_window"]) * params["atr_dist"]
        tw = params["trail_window"]
        with np.errstate(invalid="ignore"):
            long_entries = crossed_above(macd, sig) & (smadir < 0)
            short_entries = crossed_below(macd, sig) & (smadir > 0)
            long_exits = close < rolling_max(close, tw) - a
            short_exits = close > rolling_min(close, tw) + a
        return self.finish(bars, params, long_entries, long_exits, short_entries, short_exits)
