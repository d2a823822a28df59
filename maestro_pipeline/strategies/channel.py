"""Donchian channel breakout, long and short (turtle style).

With ``upper_n[t] = max(high[t-n .. t-1])`` and ``lower_n[t] = min(low[t-n .. t-1])`` (the previous ``n`` bars,
the current bar excluded, so a close can break out of them):

* long entry when ``close[t] > upper_window[t]``; short entry when ``close[t] < lower_window[t]``;
* long exit when ``close[t] < lower_exit_window[t]``, short exit when ``close[t] > upper_exit_window[t]``: the
  opposite side of a shorter channel (``exit_window <= window``), which trails the position more tightly;
* the opposite breakout also ends a position: being inside ``lower_window`` implies being inside
  ``lower_exit_window``, and the engine reverses a long into a short when the short entry fires (the long
  exit of the same bar is part of that reversal).

Entries and exits are levels, not crosses: a close beyond the channel is a breakout whenever it happens
(an entry while already in that direction does nothing). Every quantity is a finite window of past bars, so
the warm-up (``window`` bars) is exact. Backtrader equivalent: ``bt.ind.Highest(data.high(-1), period=n)`` and
``bt.ind.Lowest(data.low(-1), period=n)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .base import IntParam, Signals, Strategy


def _rolling_prev(a: np.ndarray, n: int, how: str) -> np.ndarray:
    """max/min of ``a[t-n .. t-1]`` at each ``t``; NaN for ``t < n``."""
    a = np.asarray(a, dtype=np.float64)
    out = np.full(a.shape, np.nan)
    if n < 1 or a.shape[0] <= n:
        return out
    win = np.lib.stride_tricks.sliding_window_view(a, n)[:-1]  # win[i] = a[i .. i+n-1], used at t = i + n
    out[n:] = win.max(axis=1) if how == "max" else win.min(axis=1)
    return out


def donchian(high: np.ndarray, low: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) channel of the previous ``n`` bars, excluding the current one."""
    return _rolling_prev(high, n, "max"), _rolling_prev(low, n, "min")


class Channel(Strategy):
    name = "channel"
    description = ("Donchian breakout: long above the prior n-bar high, short below the prior n-bar low; "
                   "exit on a shorter channel.")
    defaults = {"window": 20, "exit_window": 10}
    space = {"window": IntParam(5, 240), "exit_window": IntParam(2, 240)}

    def constraints(self, params: dict) -> str | None:
        if params["exit_window"] > params["window"]:
            return (
                f"exit_window ({params['exit_window']}) must not exceed window ({params['window']}): "
                f"the exit channel is the shorter one"
            )
        return None

    def warmup(self, params: dict) -> int:
        return int(params["window"])

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        high = bars["high"].to_numpy(dtype=np.float64)
        low = bars["low"].to_numpy(dtype=np.float64)
        close = bars["close"].to_numpy(dtype=np.float64)
        upper, lower = donchian(high, low, params["window"])
        upper_x, lower_x = donchian(high, low, params["exit_window"])
        with np.errstate(invalid="ignore"):
            return self.finish(bars, params, close > upper, close < lower_x, close < lower, close > upper_x)
