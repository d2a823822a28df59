"""EMA ribbon alignment, long and short.

The ribbon is ``lines`` EMAs of the close with spans spread geometrically from ``fast`` to ``slow`` (rounded,
strictly increasing; defaults 8, 13, 21, 34, 55). It is *bullish* when every EMA is above the next slower
one and *bearish* when every EMA is below it.

Rule: long entry on the bar the ribbon becomes bullish (bullish now, not on the previous bar); long exit on
any bar where the fastest EMA is below the middle EMA of the ribbon (the fan has started to fold). Short entry
on the bar the ribbon becomes bearish; short exit when the fastest EMA is above the middle one. Warm-up: EMAs
are recursive, so ``4 * slow`` bars (seed weight about ``e**-8``, as ``ema_cross``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import column, ema
from .base import IntParam, Signals, Strategy


def ribbon_spans(fast: int, slow: int, lines: int) -> list[int]:
    """``lines`` strictly increasing integer spans from ``fast`` to ``slow`` (geometric, rounded)."""
    raw = np.rint(np.geomspace(fast, slow, lines)).astype(int).tolist()
    spans = [int(fast)]
    for s in raw[1:-1]:
        spans.append(max(int(s), spans[-1] + 1))
    spans.append(int(slow))
    return spans


class EmaRibbon(Strategy):
    name = "ema_ribbon"
    description = ("EMA ribbon: long when all EMAs stack bullishly, short when they stack bearishly; "
                   "exit when the fan folds.")
    defaults = {"fast": 8, "slow": 55, "lines": 5}
    space = {"fast": IntParam(2, 50), "slow": IntParam(10, 250), "lines": IntParam(3, 8)}

    def constraints(self, params: dict) -> str | None:
        spans = ribbon_spans(params["fast"], params["slow"], params["lines"])
        if (params["slow"] - params["fast"] < params["lines"] - 1
                or any(b <= a for a, b in zip(spans, spans[1:], strict=False))):
            return (
                f"fast ({params['fast']}) and slow ({params['slow']}) leave no room for {params['lines']} "
                "distinct EMAs: "
                f"pick slow - fast >= lines - 1 (here >= {params['lines'] - 1}) with room to spare"
            )
        return None

    def warmup(self, params: dict) -> int:
        return 4 * int(params["slow"])

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        close = column(bars, "close")
        spans = ribbon_spans(params["fast"], params["slow"], params["lines"])
        lines = np.vstack([ema(close, s) for s in spans])
        with np.errstate(invalid="ignore"):
            bull = np.all(lines[:-1] > lines[1:], axis=0)
            bear = np.all(lines[:-1] < lines[1:], axis=0)
            mid = lines[len(spans) // 2]
            long_exits = lines[0] < mid
            short_exits = lines[0] > mid
        became_bull = bull & ~np.r_[True, bull[:-1]]
        became_bear = bear & ~np.r_[True, bear[:-1]]
        return self.finish(bars, params, became_bull, long_exits, became_bear, short_exits)
