"""RSI mean reversion, long and short.

Long entry when RSI crosses up through ``lower`` (leaving oversold), long exit when it crosses above
``upper``; short entry when RSI crosses down through ``upper`` (leaving overbought), short exit when it
crosses below ``lower``. RSI is vectorbt's ``vbt.RSI`` kernel with its default simple-moving-average
smoothing (Cutler's RSI): a finite window, so after ``window + 1`` bars the value no longer depends on where
the computation started, and the warm-up is exact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from vectorbt.indicators.nb import ma_nb

from .base import FloatParam, IntParam, Signals, Strategy, crossed_above, crossed_below


def rsi(close: np.ndarray, window: int) -> np.ndarray:
    """RSI exactly as ``vbt.RSI.run(close, window)`` (``ewm=False``) computes it; NaN for the first ``window`` bars."""
    c = np.asarray(close, dtype=np.float64).reshape(-1, 1)
    delta = np.full_like(c, np.nan)
    delta[1:] = c[1:] - c[:-1]
    up = np.where(delta < 0, 0.0, delta)
    down = np.abs(np.where(delta > 0, 0.0, delta))
    roll_up = ma_nb(up, int(window), False, False)
    roll_down = ma_nb(down, int(window), False, False)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 - 100.0 / (1.0 + roll_up / roll_down)
    return out[:, 0]


class Rsi(Strategy):
    name = "rsi"
    description = "RSI mean reversion: long on the way up out of oversold, short on the way down out of overbought."
    defaults = {"window": 14, "lower": 30.0, "upper": 70.0}
    space = {"window": IntParam(2, 50), "lower": FloatParam(5.0, 50.0), "upper": FloatParam(50.0, 95.0)}

    def constraints(self, params: dict) -> str | None:
        if params["lower"] >= params["upper"]:
            return f"lower ({params['lower']}) must be below upper ({params['upper']}): pick lower < upper"
        return None

    def warmup(self, params: dict) -> int:
        return int(params["window"]) + 1

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        r = rsi(bars["close"].to_numpy(dtype=np.float64), params["window"])
        lower, upper = params["lower"], params["upper"]
        return self.finish(
            bars,
            params,
            crossed_above(r, lower),
            crossed_above(r, upper),
            crossed_below(r, upper),
            crossed_below(r, lower),
        )
