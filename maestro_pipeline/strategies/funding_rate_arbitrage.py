"""Funding-rate arbitrage (contrarian carry): position against the crowd when funding is extreme, long and short.

On a perpetual swap, a positive funding rate means longs pay shorts. When funding is unusually high for its
recent history, shorting both collects the payment and fades crowded longs; unusually negative funding is
the mirror image. Data: the optional ``funding_rate`` column (rate per funding period, one value per bar,
forward-filled from *past* funding events only; remaining gaps are forward-filled here, causally). The
funding cash flows themselves are not credited by the backtest engine; only the price exposure is traded.

Rule, with ``x`` the funding rate and ``z`` its z-score over the last ``window`` bars: short entry when
``z > entry_z`` and ``x > 0``; short exit once ``z < exit_z``. Long entry when ``z < -entry_z`` and ``x < 0``;
long exit once ``z > -exit_z``.

Proxy (no ``funding_rate`` column): funding on perpetuals tracks the premium of the perp over spot, which
rises when longs chase price; ``x`` becomes the premium of the close over its EMA of ``premium_span`` bars
(``close / EMA - 1``; 8 bars = 8 h, one funding period, on 1h bars). ``data_note`` says so.

Warm-up: ``window + 4 * premium_span`` bars, a safe bound for both sources (the EMA is recursive; with the
real column ``window`` bars would do).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._indicators import column, ema, optional_column, zscore
from .base import FloatParam, IntParam, Signals, Strategy, smaller_than


class FundingRateArbitrage(Strategy):
    name = "funding_rate_arbitrage"
    description = ("Contrarian carry on perpetuals: short when funding is extremely positive, "
                   "long when extremely negative.")
    optional_columns = ("funding_rate",)
    defaults = {"window": 168, "entry_z": 2.0, "exit_z": 0.5, "premium_span": 8}
    space = {
        "window": IntParam(24, 1000),
        "entry_z": FloatParam(1.0, 4.0),
        "exit_z": FloatParam(-1.0, 2.0),
        "premium_span": IntParam(2, 200),
    }

    def constraints(self, params: dict) -> str | None:
        return smaller_than(params, "exit_z", "entry_z")

    def warmup(self, params: dict) -> int:
        return int(params["window"]) + 4 * int(params["premium_span"])

    def data_note(self, bars: pd.DataFrame, params: Mapping[str, Any] | None = None) -> str | None:
        if "funding_rate" in bars.columns:
            return None
        span = (params or self.defaults)["premium_span"]
        return (
            "funding rate not available for this instrument: used the premium of close over its "
            f"{span}-bar EMA as a proxy."
        )

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        x = optional_column(bars, "funding_rate", fill=True)
        if x is None:
            close = column(bars, "close")
            with np.errstate(divide="ignore", invalid="ignore"):
                x = close / ema(close, params["premium_span"]) - 1.0
        z = zscore(x, params["window"])
        e, q = params["entry_z"], params["exit_z"]
        with np.errstate(invalid="ignore"):
            return self.finish(bars, params, (z < -e) & (x < 0), z > -q, (z > e) & (x > 0), z < q)
