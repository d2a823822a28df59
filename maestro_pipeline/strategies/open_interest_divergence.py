"""Open-interest divergence: fade price moves that open interest does not confirm, long and short.

A rally while open interest falls is driven by shorts closing, not new buyers; a sell-off while open
interest falls is longs capitulating. Both tend to exhaust. Data: optional ``open_interest`` column.

Rule, over ``window`` bars: ``price_chg = close[t] / close[t - window] - 1`` and
``oi_chg = open_interest[t] / open_interest[t - window] - 1``. Short entry when ``price_chg > price_th`` and
``oi_chg < -oi_th``; long entry when ``price_chg < -price_th`` and ``oi_chg < -oi_th``. Long exit on any close
at or above ``SMA(close, window)``; short exit on any close at or below it.

Proxy (no ``open_interest`` column): ``oi_chg`` becomes the change in mean traded volume, the mean volume of
the last ``window`` bars against that of the ``window`` bars before (participation drying up stands in for
positions being closed); ``data_note`` says so. Warm-up (exact for the proxy, an upper bound with real data):
``2 * window - 1`` bars.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._indicators import column, optional_column, roc, shift, sma
from .base import FloatParam, IntParam, Signals, Strategy


class OpenInterestDivergence(Strategy):
    name = "open_interest_divergence"
    description = "Fade moves on falling open interest: short rallies and buy sell-offs that shed open interest."
    optional_columns = ("open_interest",)
    defaults = {"window": 24, "price_th": 0.02, "oi_th": 0.05}
    space = {"window": IntParam(3, 500), "price_th": FloatParam(0.002, 0.2, log=True), "oi_th": FloatParam(0.0, 0.5)}

    def warmup(self, params: dict) -> int:
        return 2 * int(params["window"]) - 1

    def data_note(self, bars: pd.DataFrame, params: Mapping[str, Any] | None = None) -> str | None:
        if "open_interest" in bars.columns:
            return None
        w = (params or self.defaults)["window"]
        return (
            "open interest not available for this instrument: used the change in mean traded volume "
            f"(last {w} bars against the {w} bars before) as a proxy for the change in open interest."
        )

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        close = column(bars, "close")
        w = params["window"]
        oi = optional_column(bars, "open_interest")
        if oi is None:
            mean_vol = sma(column(bars, "volume"), w)
            with np.errstate(divide="ignore", invalid="ignore"):
                oi_chg = mean_vol / shift(mean_vol, w) - 1.0
        else:
            oi_chg = roc(oi, w)
        price_chg = roc(close, w)
        mid = sma(close, w)
        th, oth = params["price_th"], params["oi_th"]
        with np.errstate(invalid="ignore"):
            shedding = oi_chg < -oth
            return self.finish(
                bars,
                params,
                (price_chg < -th) & shedding,
                close >= mid,
                (price_chg > th) & shedding,
                close <= mid,
            )
