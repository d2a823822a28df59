"""Re-optimization after a drift alarm: search the live split again on a train window that ends at the alarm.

The new train window has the live split's length and ends where the alarmed live evaluation ended
(``evaluated_to_ms``, the first bar not yet judged); the new live window runs from there to the live split's own end
(``valid_until``). The search is the walk-forward's own (``search.optimize_splits``: same objective, sampler and
seed rule), so nothing after the alarm is read, and the bars that raised the alarm now train the pick.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..config import RiskSettings, SearchConfig
from ..durations import iso
from ..engine import Costs
from ..search import optimize_splits
from ..timeframes import timeframe_ms
from ..walkforward import Split
from .drift import ALARMS
from .record import live_pick

__all__ = ["drift_split", "reoptimized_pick"]


def drift_split(perf: dict[str, Any], params: pl.DataFrame, timeframe: str) -> Split | None:
    """The re-optimization split for the alarmed evaluation ``perf`` (None when there is nothing to re-optimize: no
    alarm, no live split, or fewer than 2 bars of the live window left)."""
    row = live_pick(params)
    if row is None or perf.get("status") not in ALARMS or perf.get("evaluated_to_ms") is None:
        return None
    end = int(perf["evaluated_to_ms"])
    if end <= int(row["train_end"]) or int(row["test_end"]) - end < 2 * timeframe_ms(timeframe):
        return None
    length = int(row["train_end"]) - int(row["train_start"])
    return Split(int(row["split"]), end - length, end, end, int(row["test_end"]))


def reoptimized_pick(perf: dict[str, Any], params: pl.DataFrame, bars: pl.DataFrame, strategy: str,
                     search: SearchConfig, costs: Costs, timeframe: str,
                     risk: RiskSettings) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the new live row, what re-optimized it) — or (None, None) when :func:`drift_split` finds nothing to do."""
    split = drift_split(perf, params, timeframe)
    if split is None:
        return None, None
    out = optimize_splits(bars.filter(pl.col("timestamp") < split.train_end), [split], strategy, search, costs,
                          timeframe, risk=risk, workers=1)
    pick = out.params.row(0, named=True)
    why = {"status": perf["status"], "evaluated_to": iso(split.train_end), "evaluated_to_ms": split.train_end,
           "why": perf.get("description", ""), "train_from": iso(split.train_start), "train_to": iso(split.train_end)}
    return pick, why
