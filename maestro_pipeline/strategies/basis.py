"""Basis mean reversion: trade the perpetual's premium over the index back to its norm, long and short.

Data: optional ``index_price`` (the spot index the perpetual references) and ``mark_price`` (the perpetual's
mark). The basis is ``perp / index_price - 1`` with ``perp = mark_price`` when that column exists and the
traded close otherwise. ``z`` is the z-score of the basis over the last ``window`` bars.

Rule: long entry when ``z < -entry_z`` (perp unusually cheap against spot); long exit once ``z > -exit_z``.
Short entry when ``z > entry_z``; short exit once ``z < exit_z``. Only the perpetual leg is traded (the
hedge leg of a real cash-and-carry is outside this single-instrument engine).

Proxy (no ``index_price`` column): the basis is replaced by the premium of the close over its simple moving
average of ``proxy_window`` bars (a slow reference standing in for fair value), which makes the strategy a
price mean-reversion; ``data_note`` says so. Warm-up (exact for the proxy, an upper bound with real data):
``proxy_window + window - 2`` bars.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._indicators import column, optional_column, sma, zscore
from .base import FloatParam, IntParam, Signals, Strategy, smaller_than


class Basis(Strategy):
    name = "basis"
    description = ("Perpetual-vs-index basis mean reversion: long the perp at an unusual discount, "
                   "short at an unusual premium.")
    optional_columns = ("mark_price", "index_price")
    defaults = {"window": 48, "entry_z": 2.0, "exit_z": 0.5, "proxy_window": 24}
    space = {
        "window": IntParam(10, 1000),
        "entry_z": FloatParam(1.0, 4.0),
        "exit_z": FloatParam(-1.0, 2.0),
        "proxy_window": IntParam(5, 500),
    }

    def constraints(self, params: dict) -> str | None:
        return smaller_than(params, "exit_z", "entry_z")

    def warmup(self, params: dict) -> int:
        return int(params["proxy_window"]) + int(params["window"]) - 2

    def data_note(self, bars: pd.DataFrame, params: Mapping[str, Any] | None = None) -> str | None:
        if "index_price" in bars.columns:
            return None
        w = (params or self.defaults)["proxy_window"]
        return (
            "index price not available for this instrument: used the premium of close over its "
            f"{w}-bar simple moving average as a proxy for the basis."
        )

    def basis(self, bars: pd.DataFrame, params: dict) -> np.ndarray:
        close = column(bars, "close")
        index = optional_column(bars, "index_price")
        with np.errstate(divide="ignore", invalid="ignore"):
            if index is None:
                return close / sma(close, params["proxy_window"]) - 1.0
            mark = optional_column(bars, "mark_price")
            return (close if mark is None else mark) / index - 1.0

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        z = zscore(self.basis(bars, params), params["window"])
        e, q = params["entry_z"], params["exit_z"]
        with np.errstate(invalid="ignore"):
            return self.finish(bars, params, z < -e, z > -q, z > e, z < q)
