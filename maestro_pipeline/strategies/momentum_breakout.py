"""Momentum breakout with volume confirmation, long and short.

Rule: long entry when the close is above the highest high of the previous ``lookback`` bars (the current bar
excluded) *and* the bar's volume exceeds ``vol_mult`` times the mean volume of those previous ``lookback``
bars; short entry when the close is below the previous ``lookback`` bars' lowest low with the same volume
condition. Exits are Donchian trailing levels: long exit on a close below the lowest low of the previous
``exit_lookback`` bars, short exit on a close above their highest high. Warm-up (exact):
``max(lookback, exit_lookback)`` bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import column, rolling_max, rolling_min, shift, sma
from .base import FloatParam, IntParam, Signals, Strategy


class MomentumBreakout(Strategy):
    name = "momentum_breakout"
    description = "Close beyond the prior lookback-bar high/low on above-average volume; Donchian trailing exit."
    defaults = {"lookback": 20, "vol_mult": 1.5, "exit_lookback": 10}
    space = {"lookback": IntParam(5, 200), "vol_mult": FloatParam(1.0, 5.0), "exit_lookback": IntParam(3, 100)}

    def constraints(self, params: dict) -> str | None:
        if params["exit_lookback"] > params["lookback"]:
            return (
                f"exit_lookback ({params['exit_lookback']}) must not exceed lookback ({params['lookback']}): "
                "pick exit_lookback <= lookback"
            )
        return None

    def warmup(self, params: dict) -> int:
        return max(int(params["lookback"]), int(params["exit_lookback"]))

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        high, low, close, volume = (column(bars, c) for c in ("high", "low", "close", "volume"))
        n, x = params["lookback"], params["exit_lookback"]
        prior_high, prior_low = shift(rolling_max(high, n), 1), shift(rolling_min(low, n), 1)
        surge = volume > params["vol_mult"] * shift(sma(volume, n), 1)
        with np.errstate(invalid="ignore"):
            return self.finish(
                bars,
                params,
                (close > prior_high) & surge,
                close < shift(rolling_min(low, x), 1),
                (close < prior_low) & surge,
                close > shift(rolling_max(high, x), 1),
            )
