"""EMA crossover, long and short: always in the market once the first cross has happened.

Long when the fast EMA crosses above the slow EMA, short when it crosses below (each cross also exits the
opposite side, so the engine reverses the position). EMAs are vectorbt's ``vbt.MA(ewm=True)`` kernel
(``adjust=False``, span = window, first value at bar ``window - 1``): a recursion over past closes only.

Warm-up is ``4 * slow`` bars, not ``slow``: an EMA started at bar 0 remembers its seed, whose weight after
``k`` bars is ``(1 - 2/(slow+1))**k`` (about ``e**-8``, 0.03 %, after ``4 * slow``). So signals computed on a
window that starts ``warmup`` bars before a split match those computed on the full history to that precision.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numba import njit
from vectorbt.indicators.nb import ma_nb

from .base import IntParam, Signals, Strategy, crossed_above, crossed_below, smaller_than


def ema(close: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average exactly as ``vbt.MA.run(close, window, ewm=True)`` computes it."""
    return ma_nb(np.asarray(close, dtype=np.float64).reshape(-1, 1), int(window), True, False)[:, 0]


class EmaCross(Strategy):
    name = "ema_cross"
    description = "Fast/slow EMA crossover, long and short (long above, short below)."
    defaults = {"fast": 12, "slow": 26}
    space = {"fast": IntParam(2, 60), "slow": IntParam(10, 240)}

    def constraints(self, params: dict) -> str | None:
        return smaller_than(params, "fast", "slow")

    def warmup(self, params: dict) -> int:
        return 4 * int(params["slow"])

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        close = bars["close"].to_numpy(dtype=np.float64)
        fast, slow = ema(close, params["fast"]), ema(close, params["slow"])
        up, down = crossed_above(fast, slow), crossed_below(fast, slow)
        return self.finish(bars, params, up, down, down, up)

    def signals_batch(self, bars: pd.DataFrame, params_list: Sequence[dict]) -> list[Signals]:
        """:meth:`signals` for many parameter sets: each distinct EMA window is computed once, and the crosses
        of every set in one compiled pass (same comparisons and warm-up mask as :meth:`signals`)."""
        close = bars["close"].to_numpy(dtype=np.float64)
        n, k = close.shape[0], len(params_list)
        windows = sorted({int(p[key]) for p in params_list for key in ("fast", "slow")})
        row = {w: i for i, w in enumerate(windows)}
        emas = np.empty((len(windows), n))
        for w, i in row.items():
            emas[i] = ema(close, w)
        fast = np.array([row[int(p["fast"])] for p in params_list], dtype=np.int64)
        slow = np.array([row[int(p["slow"])] for p in params_list], dtype=np.int64)
        warm = np.array([min(self.warmup(p), n) for p in params_list], dtype=np.int64)
        up, down = np.empty((k, n), dtype=np.bool_), np.empty((k, n), dtype=np.bool_)
        _crosses_nb(emas, fast, slow, warm, up, down)
        up.flags.writeable = down.flags.writeable = False  # rows are shared (entries of one side = exits of the other)
        return [Signals(up[i], down[i], down[i], up[i]) for i in range(k)]


@njit(cache=True)
def _crosses_nb(emas, fast, slow, warm, up, down):
    """Row i: crossed_above / crossed_below(emas[fast[i]], emas[slow[i]]), False before bar warm[i]."""
    n = emas.shape[1]
    for i in range(fast.shape[0]):
        f, s = emas[fast[i]], emas[slow[i]]
        up[i, 0] = False
        down[i, 0] = False
        for t in range(1, n):  # NaN compares False, as in crossed_above/crossed_below
            up[i, t] = f[t - 1] <= s[t - 1] and f[t] > s[t]
            down[i, t] = f[t - 1] >= s[t - 1] and f[t] < s[t]
        for t in range(min(warm[i], n)):  # Strategy.finish: nothing before the warm-up
            up[i, t] = False
            down[i, t] = False
