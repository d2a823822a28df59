"""Stochastic RSI turns, long and short (a reversal system: each turn also closes the opposite side).

Indicators: RSI (Cutler's, ``rsi_window``); ``stoch = 100 * (RSI - min RSI) / (max RSI - min RSI)`` over the
last ``stoch_window`` bars (NaN when the RSI range is zero); ``%K = SMA(stoch, k)``, ``%D = SMA(%K, d)``.

Rule: long entry (and short exit) when %K crosses above %D while %D is below ``lower`` (a turn up from
oversold); short entry (and long exit) when %K crosses below %D while %D is above ``upper``.
Warm-up (exact): %D first exists at bar ``rsi_window + stoch_window + k + d - 3`` and a cross needs the bar
before, so ``rsi_window + stoch_window + k + d - 2`` bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import column, rolling_max, rolling_min, rsi, sma
from .base import FloatParam, IntParam, Signals, Strategy, crossed_above, crossed_below


def stoch_rsi(close: np.ndarray, rsi_window: int, stoch_window: int, k: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    r = rsi(close, rsi_window)
    lo, hi = rolling_min(r, stoch_window), rolling_max(r, stoch_window)
    with np.errstate(divide="ignore", invalid="ignore"):
        stoch = 100.0 * (r - lo) / (hi - lo)
    stoch[~np.isfinite(stoch)] = np.nan
    pk = sma(stoch, k)
    return pk, sma(pk, d)


class StochRsi(Strategy):
    name = "stoch_rsi"
    description = ("Stochastic RSI: long when %K turns up through %D below the oversold line, "
                   "short mirrored above overbought.")
    defaults = {"rsi_window": 14, "stoch_window": 14, "k": 3, "d": 3, "lower": 20.0, "upper": 80.0}
    space = {
        "rsi_window": IntParam(3, 50),
        "stoch_window": IntParam(3, 50),
        "k": IntParam(1, 10),
        "d": IntParam(1, 10),
        "lower": FloatParam(5.0, 45.0),
        "upper": FloatParam(55.0, 95.0),
    }

    def constraints(self, params: dict) -> str | None:
        if params["lower"] >= params["upper"]:
            return f"lower ({params['lower']}) must be below upper ({params['upper']}): pick lower < upper"
        return None

    def warmup(self, params: dict) -> int:
        return int(params["rsi_window"]) + int(params["stoch_window"]) + int(params["k"]) + int(params["d"]) - 2

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        pk, pd_ = stoch_rsi(column(bars, "close"), params["rsi_window"], params["stoch_window"], params["k"],
                            params["d"])
        with np.errstate(invalid="ignore"):
            up = crossed_above(pk, pd_) & (pd_ < params["lower"])
            down = crossed_below(pk, pd_) & (pd_ > params["upper"])
        return self.finish(bars, params, up, down, down, up)
