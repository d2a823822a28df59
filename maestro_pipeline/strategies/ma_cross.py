"""Simple moving-average crossover, long and short: always in the market once the first cross has happened.

Rule: long entry (and short exit) when the fast SMA of closes crosses above the slow SMA
(``fast[t-1] <= slow[t-1] and fast[t] > slow[t]``); short entry (and long exit) when it crosses below. Both
averages are plain means of the last ``fast`` / ``slow`` closes (finite windows), so the warm-up is exact:
the slow SMA first exists at bar ``slow - 1`` and a cross needs the bar before, hence ``slow`` bars.
Unlike ``ema_cross`` nothing is recursive: a signal depends on the last ``slow + 1`` closes only.
"""

from __future__ import annotations

import pandas as pd

from ._indicators import column, sma
from .base import IntParam, Signals, Strategy, crossed_above, crossed_below, smaller_than


class MaCross(Strategy):
    name = "ma_cross"
    description = "Fast/slow simple-moving-average crossover, long above and short below."
    defaults = {"fast": 20, "slow": 60}
    space = {"fast": IntParam(3, 100), "slow": IntParam(10, 300)}

    def constraints(self, params: dict) -> str | None:
        return smaller_than(params, "fast", "slow")

    def warmup(self, params: dict) -> int:
        return int(params["slow"])

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        close = column(bars, "close")
        fast, slow = sma(close, params["fast"]), sma(close, params["slow"])
        up, down = crossed_above(fast, slow), crossed_below(fast, slow)
        return self.finish(bars, params, up, down, down, up)
