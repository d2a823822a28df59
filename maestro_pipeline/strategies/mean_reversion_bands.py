"""Mean reversion with entry and exit bands, long and short.

z-score of the close: ``z = (close - SMA(close, window)) / std(close, window)`` (population std, finite
window). Rule: long entry on any close with ``z < -entry_z`` (below the lower band), long exit once
``z > -exit_z`` (back inside the exit band near the mean); short entry when ``z > entry_z``, short exit once
``z < exit_z``. Unlike ``bollinger`` (re-entry crosses, exit at the mean) entries are levels and exits come
*before* the mean. Warm-up (exact): the z-score first exists at bar
``window - 1``, so ``window - 1`` bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import column, zscore
from .base import FloatParam, IntParam, Signals, Strategy, smaller_than


class MeanReversionBands(Strategy):
    name = "mean_reversion_bands"
    description = "Fade closes beyond entry_z standard deviations from the mean; exit inside exit_z of the mean."
    defaults = {"window": 20, "entry_z": 2.5, "exit_z": 0.5}
    space = {"window": IntParam(10, 200), "entry_z": FloatParam(1.0, 4.0), "exit_z": FloatParam(0.0, 2.0)}

    def constraints(self, params: dict) -> str | None:
        return smaller_than(params, "exit_z", "entry_z")

    def warmup(self, params: dict) -> int:
        return int(params["window"]) - 1

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        z = zscore(column(bars, "close"), params["window"])
        e, x = params["entry_z"], params["exit_z"]
        with np.errstate(invalid="ignore"):
            return self.finish(bars, params, z < -e, z > -x, z > e, z < x)
