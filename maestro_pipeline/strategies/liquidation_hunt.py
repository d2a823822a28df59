"""Liquidation hunt: buy a liquidation cascade's flush, sell a short squeeze's spike; long and short.

A forced-liquidation cascade shows as an outsized one-bar move that wipes out open interest; once it is
over, price tends to snap back. Data: optional ``open_interest`` column.

Rule: ``move = close[t] - close[t-1]``; ``threshold = atr_mult * ATR`` where ATR is the mean of the
``atr_window`` true ranges *before* bar ``t`` (the spike does not inflate its own threshold). Confirmation:
open interest fell by more than ``oi_drop`` on the bar (``oi[t] / oi[t-1] - 1 < -oi_drop``). Long entry when
``move < -threshold`` and confirmed; short entry when ``move > threshold`` and confirmed. Long exit on any close
at or above ``SMA(close, exit_window)`` (the snap-back has reached the mean); short exit on any close at or
below it.

Proxy (no ``open_interest`` column): confirmation becomes a volume spike, bar volume above ``vol_mult``
times the mean volume of the previous ``atr_window`` bars (liquidations are forced market orders, so they
print volume); ``data_note`` says so. Warm-up (exact): ``max(atr_window + 1, exit_window - 1)`` bars
(the prior-bars ATR first exists at bar ``atr_window + 1``, the exit SMA at ``exit_window - 1``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._indicators import atr, column, optional_column, roc, shift, sma
from .base import FloatParam, IntParam, Signals, Strategy


class LiquidationHunt(Strategy):
    name = "liquidation_hunt"
    description = "Fade outsized one-bar moves confirmed by an open-interest drop (or a volume spike); exit at the SMA."
    optional_columns = ("open_interest",)
    defaults = {"atr_window": 14, "atr_mult": 2.0, "vol_mult": 2.0, "oi_drop": 0.005, "exit_window": 20}
    space = {
        "atr_window": IntParam(5, 100),
        "atr_mult": FloatParam(1.0, 6.0),
        "vol_mult": FloatParam(1.0, 10.0),
        "oi_drop": FloatParam(0.0, 0.1),
        "exit_window": IntParam(3, 200),
    }

    def warmup(self, params: dict) -> int:
        return max(int(params["atr_window"]) + 1, int(params["exit_window"]) - 1)

    def data_note(self, bars: pd.DataFrame, params: Mapping[str, Any] | None = None) -> str | None:
        if "open_interest" in bars.columns:
            return None
        p = params or self.defaults
        return (
            "open interest not available for this instrument: used a volume spike (volume above "
            f"{p['vol_mult']:g} times its {p['atr_window']}-bar mean) as a proxy for the open-interest drop of "
            "liquidations."
        )

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        high, low, close = column(bars, "high"), column(bars, "low"), column(bars, "close")
        n = params["atr_window"]
        threshold = params["atr_mult"] * shift(atr(high, low, close, n), 1)
        move = close - shift(close, 1)
        oi = optional_column(bars, "open_interest")
        with np.errstate(invalid="ignore"):
            if oi is None:
                volume = column(bars, "volume")
                confirmed = volume > params["vol_mult"] * shift(sma(volume, n), 1)
            else:
                confirmed = roc(oi, 1) < -params["oi_drop"]
            mid = sma(close, params["exit_window"])
            return self.finish(
                bars,
                params,
                (move < -threshold) & confirmed,
                close >= mid,
                (move > threshold) & confirmed,
                close <= mid,
            )
