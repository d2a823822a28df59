"""ATR trend following: Donchian breakout entries, ATR chandelier exits; long and short.

Rule: long entry on a close above the highest high of the previous ``window`` bars (current bar excluded);
long exit on a close below ``highest high of the last window bars - atr_mult * ATR`` (a chandelier stop that
trails the trend). Short entry on a close below the previous ``window`` bars' lowest low; short exit on a
close above ``lowest low of the last window bars + atr_mult * ATR``. ATR is the mean of ``atr_window`` true
ranges. The classic stateful trailing stop ratchets from the entry bar; the chandelier measures from the
extreme of a fixed lookback instead, which is what a stateless signal can know. Warm-up (exact):
``max(window, atr_window)`` bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import atr, column, rolling_max, rolling_min, shift
from .base import FloatParam, IntParam, Signals, Strategy


class AtrTrend(Strategy):
    name = "atr_trend"
    description = "Trend following: enter on a window-bar high/low breakout, exit on an ATR chandelier stop."
    defaults = {"window": 50, "atr_window": 14, "atr_mult": 3.0}
    space = {"window": IntParam(10, 300), "atr_window": IntParam(5, 100), "atr_mult": FloatParam(1.0, 8.0)}

    def warmup(self, params: dict) -> int:
        return max(int(params["window"]), int(params["atr_window"]))

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        high, low, close = column(bars, "high"), column(bars, "low"), column(bars, "close")
        w = params["window"]
        hh, ll = rolling_max(high, w), rolling_min(low, w)
        stop = params["atr_mult"] * atr(high, low, close, params["atr_window"])
        with np.errstate(invalid="ignore"):
            return self.finish(
                bars,
                params,
                close > shift(hh, 1),
                close < hh - stop,
                close < shift(ll, 1),
                close > ll + stop,
            )
