"""Scalping RSI: a short RSI taken at extremes and closed at the midline, long and short.

RSI is Cutler's (simple averages of gains and losses over ``window`` bars, as ``vbt.RSI``), computed with
exact finite windows. Rule: long entry on any bar with RSI below ``oversold``; long exit once RSI is at or
above ``exit_level``. Short entry on any bar with RSI above ``overbought``; short exit once RSI is at or below
``exit_level``. Unlike ``rsi`` (crosses out of the zones, exit at the opposite zone) it enters *inside* the
zone and takes the quick move back to the middle. Warm-up (exact): RSI exists from bar ``window``, so
``window`` bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import column, rsi
from .base import FloatParam, IntParam, Signals, Strategy


class ScalpRsi(Strategy):
    name = "scalp_rsi"
    description = "Short-window RSI scalp: long below oversold, short above overbought, out at the midline."
    defaults = {"window": 7, "oversold": 25.0, "overbought": 75.0, "exit_level": 50.0}
    space = {
        "window": IntParam(2, 21),
        "oversold": FloatParam(5.0, 45.0),
        "overbought": FloatParam(55.0, 95.0),
        "exit_level": FloatParam(30.0, 70.0),
    }

    def constraints(self, params: dict) -> str | None:
        if not params["oversold"] < params["exit_level"] < params["overbought"]:
            return (
                f"oversold ({params['oversold']}) < exit_level ({params['exit_level']}) < overbought "
                f"({params['overbought']}) is required: move exit_level between the two zones"
            )
        return None

    def warmup(self, params: dict) -> int:
        return int(params["window"])

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        r = rsi(column(bars, "close"), params["window"])
        lo, hi, mid = params["oversold"], params["overbought"], params["exit_level"]
        with np.errstate(invalid="ignore"):
            return self.finish(bars, params, r < lo, r >= mid, r > hi, r <= mid)
