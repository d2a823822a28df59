"""Rolling-VWAP mean reversion, long and short.

VWAP over the last ``window`` bars: ``sum(typical * volume) / sum(volume)`` with ``typical = (high + low +
close) / 3``; dispersion = population std of ``close - VWAP`` over the same window. (Crypto trades around the
clock, so there is no session to anchor a session VWAP: a rolling window replaces it.)

Rule: long entry on any close below ``VWAP - k * dispersion``; long exit on any close at or above VWAP.
Short entry on any close above ``VWAP + k * dispersion``; short exit on any close at or below VWAP. A window
with zero total volume has no VWAP and gives no signal. Warm-up (exact): ``2 * window - 2`` bars (the
dispersion is a window over VWAP values, which themselves first exist at bar ``window - 1``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import column, mstd, rolling_sum
from .base import FloatParam, IntParam, Signals, Strategy


def rolling_vwap(high, low, close, volume, window: int) -> np.ndarray:
    typical = (high + low + close) / 3.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = rolling_sum(typical * volume, window) / rolling_sum(volume, window)
    out[~np.isfinite(out)] = np.nan
    return out


class Vwap(Strategy):
    name = "vwap"
    description = "Rolling-VWAP mean reversion: long k deviations below VWAP, short k above; exit back at VWAP."
    defaults = {"window": 24, "k": 2.0}
    space = {"window": IntParam(5, 200), "k": FloatParam(0.5, 4.0)}

    def warmup(self, params: dict) -> int:
        return 2 * int(params["window"]) - 2

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        high, low, close, volume = (column(bars, c) for c in ("high", "low", "close", "volume"))
        w, k = params["window"], params["k"]
        vw = rolling_vwap(high, low, close, volume, w)
        dev = mstd(close - vw, w)
        with np.errstate(invalid="ignore"):
            return self.finish(bars, params, close < vw - k * dev, close >= vw, close > vw + k * dev, close <= vw)
