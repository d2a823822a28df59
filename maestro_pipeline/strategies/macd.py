"""MACD crossover, long and short: always in the market once the first cross has happened.

The MACD line is ``EMA(close, fast) - EMA(close, slow)``; the signal line is ``EMA(macd, signal)``. Long when
the MACD line crosses above its signal line, short when it crosses below (each cross also exits the opposite
side, so the engine reverses the position). Both EMAs are vectorbt's ``vbt.MA(ewm=True)`` kernel
(``adjust=False``, span = window, seeded with the first value it sees): the MACD line first exists at bar
``slow - 1`` and the signal line at bar ``slow + signal - 2``. This is the classic (Appel) MACD with EMAs;
note that ``vbt.MACD``'s own defaults use simple moving averages instead.

Warm-up is ``4 * (slow + signal)`` bars: the slow EMA's seed weighs ``(1 - 2/(slow+1))**k`` after ``k`` bars
(about ``e**-8`` after ``4 * slow``) and the signal EMA, seeded from the MACD line, needs the same again in its
own span. Signals computed on a window that starts ``warmup`` bars early match the full-history ones to that
precision. Backtrader's ``bt.ind.MACD`` seeds each EMA with a simple average of its first ``period`` values
instead of the first value; past the warm-up the two agree to the same precision.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .base import IntParam, Signals, Strategy, crossed_above, crossed_below, smaller_than
from .ema_cross import ema


def macd(close: np.ndarray, fast: int, slow: int, signal: int) -> tuple[np.ndarray, np.ndarray]:
    """(MACD line, signal line); NaN until each is defined (bars ``slow - 1`` and ``slow + signal - 2``)."""
    close = np.asarray(close, dtype=np.float64)
    line = ema(close, fast) - ema(close, slow)
    # the EMA kernel skips the leading NaNs of the MACD line and starts on its first value
    return line, ema(line, signal)


class Macd(Strategy):
    name = "macd"
    description = "MACD line / signal line crossover, long and short (long above, short below)."
    defaults = {"fast": 12, "slow": 26, "signal": 9}
    space = {"fast": IntParam(2, 60), "slow": IntParam(5, 200), "signal": IntParam(2, 50)}

    def constraints(self, params: dict) -> str | None:
        return smaller_than(params, "fast", "slow")

    def warmup(self, params: dict) -> int:
        return 4 * (int(params["slow"]) + int(params["signal"]))

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        close = bars["close"].to_numpy(dtype=np.float64)
        line, sig = macd(close, params["fast"], params["slow"], params["signal"])
        up, down = crossed_above(line, sig), crossed_below(line, sig)
        return self.finish(bars, params, up, down, down, up)
