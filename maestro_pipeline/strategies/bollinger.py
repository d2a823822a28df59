"""Bollinger-band mean reversion, long and short.

Long entry when the close crosses back above the lower band (at or below it on the previous bar, above now),
long exit on any close at or above the middle band; short entry when the close crosses back below the upper
band, short exit on any close at or below the middle band. Bands are vectorbt's ``vbt.BBANDS`` kernel:
simple moving average of ``window`` closes plus/minus ``k`` population standard deviations (``ddof=0``).
Exits are levels rather than crosses so that a gap through the middle band still exits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from vectorbt.indicators.nb import ma_nb, mstd_nb

from .base import FloatParam, IntParam, Signals, Strategy, crossed_above, crossed_below


def bbands(close: np.ndarray, window: int, k: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(middle, upper, lower) exactly as ``vbt.BBANDS.run(close, window, alpha=k)`` computes them."""
    c = np.asarray(close, dtype=np.float64).reshape(-1, 1)
    middle = ma_nb(c, int(window), False, False)[:, 0]
    std = mstd_nb(c, int(window), False, False, 0)[:, 0]
    return middle, middle + k * std, middle - k * std


class Bollinger(Strategy):
    name = "bollinger"
    description = ("Bollinger mean reversion: long back above the lower band, short back below the upper; "
                   "exit at the middle.")
    defaults = {"window": 20, "k": 2.0}
    space = {"window": IntParam(5, 100), "k": FloatParam(1.0, 3.5)}

    def warmup(self, params: dict) -> int:
        return int(params["window"])

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        close = bars["close"].to_numpy(dtype=np.float64)
        middle, upper, lower = bbands(close, params["window"], params["k"])
        with np.errstate(invalid="ignore"):
            long_exits = close >= middle
            short_exits = close <= middle
        return self.finish(
            bars,
            params,
            crossed_above(close, lower),  # closed at/below the lower band, now above it
            long_exits,
            crossed_below(close, upper),  # closed at/above the upper band, now below it
            short_exits,
        )
