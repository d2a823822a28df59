"""Fernando: Bollinger-band extremes traded only in a calm, active market (volatility level index + volume).

Provenance. The seed system's Fernando was stateful Backtrader order logic whose code is not available here.
Public vectorized ports describe it as the "Fernando" strategy of Alain Glucksmann's ETH Zurich thesis:
Bollinger Band Width (BBW), a Volatility Level Index (VLI: a fast and a slow average of BBW) and a volume
filter (fast volume average above the slow one), trading closes beyond the bands. Those ports disagree on
direction and exits, so this module *defines* the rule below from the parts they share; treat it as a
faithful reconstruction of the idea, not a line-by-line copy.

Indicators (all finite windows, only past bars): Bollinger bands of ``bb_window`` closes at ``bb_k``
population standard deviations; ``bbw = (upper - lower) / middle``; ``vli_fast = SMA(bbw, vli_fast)``,
``vli_slow = SMA(bbw, vli_slow)``; ``calm = vli_fast < vli_slow`` (bands narrower than usual);
``active = SMA(volume, vol_fast) > SMA(volume, vol_slow)``.

Rule: long entry on a close below the lower band while ``calm and active``; long exit on any close at or above
the middle band. Short entry on a close above the upper band while ``calm and active``; short exit on any
close at or below the middle band.

Differences from the stateful original: the original managed each position with orders (bracket /
stop orders placed at entry, cancelled on exit); here the only exit is the middle-band level, evaluated at
the close and filled at the next bar's open like every signal in this engine, so there is no intrabar stop
or take-profit, no partial fill and one position at a time (no pyramiding). Warm-up (exact): band width
first exists at bar ``bb_window - 1`` and its slow average at ``bb_window + vli_slow - 2``; the volume average
at ``vol_slow - 1``: ``max(bb_window + vli_slow - 2, vol_slow - 1)`` bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import column, mstd, sma
from .base import FloatParam, IntParam, Signals, Strategy, smaller_than


class Fernando(Strategy):
    name = "fernando"
    description = ("Bollinger extremes faded only when band width is below its long average and volume is rising; "
                   "exit at the middle band.")
    defaults = {"bb_window": 20, "bb_k": 2.0, "vli_fast": 20, "vli_slow": 100, "vol_fast": 10, "vol_slow": 50}
    space = {
        "bb_window": IntParam(10, 60),
        "bb_k": FloatParam(1.0, 3.5),
        "vli_fast": IntParam(5, 60),
        "vli_slow": IntParam(20, 300),
        "vol_fast": IntParam(3, 50),
        "vol_slow": IntParam(10, 200),
    }

    def constraints(self, params: dict) -> str | None:
        return smaller_than(params, "vli_fast", "vli_slow") or smaller_than(params, "vol_fast", "vol_slow")

    def warmup(self, params: dict) -> int:
        return max(int(params["bb_window"]) + int(params["vli_slow"]) - 2, int(params["vol_slow"]) - 1)

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        close, volume = column(bars, "close"), column(bars, "volume")
        w, k = params["bb_window"], params["bb_k"]
        middle, sd = sma(close, w), mstd(close, w)
        upper, lower = middle + k * sd, middle - k * sd
        with np.errstate(divide="ignore", invalid="ignore"):
            bbw = (upper - lower) / middle
            calm = sma(bbw, params["vli_fast"]) < sma(bbw, params["vli_slow"])
            active = sma(volume, params["vol_fast"]) > sma(volume, params["vol_slow"])
            regime = calm & active
            return self.finish(
                bars,
                params,
                regime & (close < lower),
                close >= middle,
                regime & (close > upper),
                close <= middle,
            )
