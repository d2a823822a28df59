"""Volatility breakout after compression, long and short.

Indicators: ``mid = SMA(close, window)``, ATR = mean of ``window`` true ranges, and *compression* on a bar
when ATR is below ``squeeze`` times its own mean over the last ``base_window`` bars.

Rule: long entry when the close crosses above ``mid + atr_mult * ATR`` and the market was compressed on at
least one of the last ``window`` bars (volatility expanding out of a squeeze); short entry when the close
crosses below ``mid - atr_mult * ATR`` under the same condition. Long exit on any close below ``mid``; short
exit on any close above ``mid``. Warm-up (exact): ATR exists from bar ``window``, its ``base_window`` mean
from ``window + base_window - 1``, the "compressed recently" window adds ``window - 1``:
``2 * window + base_window - 2`` bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import atr, column, rolling_max, sma
from .base import FloatParam, IntParam, Signals, Strategy, crossed_above, crossed_below


class VolatilityBreakout(Strategy):
    name = "volatility_breakout"
    description = "Breakout of an ATR band around the SMA shortly after an ATR squeeze; exit back at the SMA."
    defaults = {"window": 20, "atr_mult": 1.5, "squeeze": 0.8, "base_window": 100}
    space = {
        "window": IntParam(5, 100),
        "atr_mult": FloatParam(0.5, 4.0),
        "squeeze": FloatParam(0.3, 1.0),
        "base_window": IntParam(20, 500),
    }

    def constraints(self, params: dict) -> str | None:
        if params["base_window"] <= params["window"]:
            return (
                f"base_window ({params['base_window']}) must be longer than window ({params['window']}): "
                "pick base_window > window"
            )
        return None

    def warmup(self, params: dict) -> int:
        return 2 * int(params["window"]) + int(params["base_window"]) - 2

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        high, low, close = column(bars, "high"), column(bars, "low"), column(bars, "close")
        w = params["window"]
        mid, a = sma(close, w), atr(high, low, close, w)
        with np.errstate(invalid="ignore"):
            base = sma(a, params["base_window"])
            compressed = np.where(np.isnan(base), np.nan, (a < params["squeeze"] * base).astype(np.float64))
            recent = rolling_max(compressed, w) > 0
            band = params["atr_mult"] * a
            long_entries = crossed_above(close, mid + band) & recent
            short_entries = crossed_below(close, mid - band) & recent
            return self.finish(bars, params, long_entries, close < mid, short_entries, close > mid)
