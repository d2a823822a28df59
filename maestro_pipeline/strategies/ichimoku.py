"""Ichimoku cloud breakout, long and short.

Lines (highs/lows over finite windows, no look-ahead): tenkan = midpoint of the last ``tenkan`` bars' high
and low, kijun = the same over ``kijun`` bars, senkou A = (tenkan + kijun) / 2 and senkou B = midpoint over
``senkou`` bars. Charting software plots both spans ``displacement`` bars *ahead*; here the cloud that
applies at bar ``t`` is the one computed at bar ``t - displacement`` (already known), so nothing is read from
the future. The chikou span (close plotted backwards) is not used: as a signal it would need future bars.

Rule: long entry when the close crosses above the cloud top (max of the two spans) while tenkan > kijun and
the close is above kijun; long exit on any close below kijun. Short entry when the close crosses below the
cloud bottom while tenkan < kijun and the close is below kijun; short exit on any close above kijun.
Warm-up (exact): senkou B first exists at bar ``senkou - 1``, is displaced to ``senkou - 1 + displacement``,
and a cross needs one more bar: ``senkou + displacement`` bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import column, rolling_max, rolling_min, shift
from .base import IntParam, Signals, Strategy, crossed_above, crossed_below


def midpoint(high: np.ndarray, low: np.ndarray, window: int) -> np.ndarray:
    return (rolling_max(high, window) + rolling_min(low, window)) / 2.0


class Ichimoku(Strategy):
    name = "ichimoku"
    description = ("Ichimoku cloud breakout: long through the cloud top with tenkan above kijun, short mirrored; "
                   "exit at kijun.")
    defaults = {"tenkan": 9, "kijun": 26, "senkou": 52, "displacement": 26}
    space = {
        "tenkan": IntParam(5, 30),
        "kijun": IntParam(10, 90),
        "senkou": IntParam(20, 180),
        "displacement": IntParam(5, 90),
    }

    def constraints(self, params: dict) -> str | None:
        if not params["tenkan"] < params["kijun"] < params["senkou"]:
            return (
                f"tenkan ({params['tenkan']}) < kijun ({params['kijun']}) < senkou ({params['senkou']}) is required: "
                "pick increasing windows"
            )
        return None

    def warmup(self, params: dict) -> int:
        return int(params["senkou"]) + int(params["displacement"])

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        high, low, close = column(bars, "high"), column(bars, "low"), column(bars, "close")
        tenkan = midpoint(high, low, params["tenkan"])
        kijun = midpoint(high, low, params["kijun"])
        d = params["displacement"]
        span_a = shift((tenkan + kijun) / 2.0, d)
        span_b = shift(midpoint(high, low, params["senkou"]), d)
        top, bottom = np.maximum(span_a, span_b), np.minimum(span_a, span_b)
        with np.errstate(invalid="ignore"):
            long_entries = crossed_above(close, top) & (tenkan > kijun) & (close > kijun)
            short_entries = crossed_below(close, bottom) & (tenkan < kijun) & (close < kijun)
            long_exits = close < kijun
            short_exits = close > kijun
        return self.finish(bars, params, long_entries, long_exits, short_entries, short_exits)
