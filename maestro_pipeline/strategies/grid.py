"""Grid trading, vectorized: a ladder of levels around a rolling anchor, long below it and short above it.

Levels: the anchor is the SMA of the last ``anchor_window`` closes; level ``j`` sits at
``anchor * (1 + j * step)`` for integer ``j``. The close's *cell* is ``c = floor((close / anchor - 1) / step)``
(cell ``-1`` lies between the anchor and the first level below it). A change of cell between two closes
means the close crossed at least one level.

Rule: long entry when the close crosses *down* through a level into one of the ``levels`` cells below the
anchor (``c[t] < c[t-1]`` and ``-levels <= c[t] < 0``): buying a dip at a grid line. Long exit at the next
level up: when the close has climbed two cells above the lowest cell of the last ``memory`` bars
(``c[t] >= min(c[t-memory+1..t]) + 2``), i.e. it crossed the level one full step above the lowest line it
crossed down through; or when the close leaves the grid at the bottom (``c[t] < -levels``: the grid is
exhausted, cut the position). Short entry / exit mirror this above the anchor (``c[t] > c[t-1]`` and
``0 <= c[t] < levels``; exit when ``c[t] <= max(c[t-memory+1..t]) - 2`` or ``c[t] >= levels``).

Differences from the stateful grid of the old engine (resting limit orders at every level):

* orders do not rest in the book: a level crossed during bar ``t`` (judged at the close) fills at the open
  of bar ``t + 1``, possibly well past the level, and intrabar touches that reverse before the close are
  missed;
* one position at a time, all-in (this engine's sizing): no inventory ladder of one lot per level, no
  pyramiding into deeper levels, no partial fills;
* the sell target is "one step above the lowest level crossed in the last ``memory`` bars" rather than
  "one step above the level that filled", because a stateless signal cannot remember its fill; the grid
  also moves with its anchor instead of being fixed at start-up.

Warm-up (exact): the anchor first exists at bar ``anchor_window - 1``, a crossing needs the previous bar's
cell and the exit's lowest/highest cell needs ``memory`` cells: ``max(anchor_window, anchor_window + memory - 2)``
bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._indicators import column, rolling_max, rolling_min, shift, sma
from .base import FloatParam, IntParam, Signals, Strategy


def grid_cell(close: np.ndarray, anchor: np.ndarray, step: float) -> np.ndarray:
    """Index of the grid cell the close is in (float, NaN where the anchor is not defined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.floor((close / anchor - 1.0) / step)


class Grid(Strategy):
    name = "grid"
    description = ("Grid ladder around a rolling SMA anchor: buy level crosses below it, sell level crosses above it, "
                   "exit one level further.")
    defaults = {"anchor_window": 72, "step": 0.01, "levels": 4, "memory": 24}
    space = {
        "anchor_window": IntParam(10, 500),
        "step": FloatParam(0.002, 0.05, log=True),
        "levels": IntParam(1, 10),
        "memory": IntParam(2, 500),
    }

    def warmup(self, params: dict) -> int:
        a = int(params["anchor_window"])
        return max(a, a + int(params["memory"]) - 2)

    def signals(self, bars: pd.DataFrame, params: dict) -> Signals:
        close = column(bars, "close")
        c = grid_cell(close, sma(close, params["anchor_window"]), params["step"])
        prev = shift(c, 1)
        n = params["levels"]
        with np.errstate(invalid="ignore"):
            down, up = c < prev, c > prev
            long_entries = down & (c < 0) & (c >= -n)
            m = params["memory"]
            long_exits = (c >= rolling_min(c, m) + 2) | (c < -n)
            short_entries = up & (c >= 0) & (c < n)
            short_exits = (c <= rolling_max(c, m) - 2) | (c >= n)
        return self.finish(bars, params, long_entries, long_exits, short_entries, short_exits)
