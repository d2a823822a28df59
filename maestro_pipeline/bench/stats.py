"""The report's and the bar contract's heavy parts beside the search they serve: PBO/CSCV of one split, the
bootstrap CIs, two report charts, and the bar contract on one month (great-expectations)."""

from __future__ import annotations

import numpy as np
import polars as pl

from ..durations import month_bounds, month_of
from ..quality import evaluate
from ..reporting import candles_with_trades_png, equity_drawdown_png
from ..schema import to_pandas_bars
from ..stats import bootstrap_ci, pbo_cscv
from .common import Row, best_of

__all__ = ["stats_rows"]


def stats_rows(split_search: float, trials: int, bars: pl.DataFrame) -> list[Row]:
    """``split_search``: seconds of one split's ``trials``-trial search, measured in the same run (the reference);
    ``bars``: a year of 1h bars (the bench's data)."""
    rng = np.random.default_rng(0)
    daily = rng.normal(0.0, 0.01, (180, trials))  # a 180-day train window's daily returns, one column per trial
    oos = rng.normal(0.001, 0.02, 365)
    pbo_cscv(daily, 16)  # compile / load the kernel before timing
    t_pbo = best_of(lambda: pbo_cscv(daily, 16), 5)
    t_boot = best_of(lambda: (bootstrap_ci(oos, "sharpe"), bootstrap_ci(oos, "max_drawdown")), 3)
    pdf = to_pandas_bars(bars)
    returns = pdf["close"].pct_change().fillna(0.0)
    t_charts = best_of(lambda: (equity_drawdown_png(returns, returns * 0.5, "bench"),
                                candles_with_trades_png(pdf.iloc[-400:], None, "bench")), 3)
    month = month_of(int(bars["timestamp"][0]))
    lo, hi = month_bounds(month)
    one = bars.filter((pl.col("timestamp") >= lo) & (pl.col("timestamp") < hi))
    evaluate(one, "1h", start_ms=lo, end_ms=hi)  # builds the cached great-expectations suites
    t_contract = best_of(lambda: evaluate(one, "1h", start_ms=lo, end_ms=hi), 3)
    return [
        Row(f"PBO/CSCV of one split (180 days x {trials} trials, 16 blocks: 12,870 combinations)", t_pbo,
            split_search, "s", "reference: one split's search in the same run (once per split, in the report)"),
        Row("bootstrap CIs of a 365-day OOS series (Sharpe + max drawdown, stationary bootstrap)", t_boot,
            split_search, "s", "reference: one split's search (once per report, not per split)"),
        Row("equity/drawdown chart (a year of 1h bars) + candles chart (400 bars) of a report", t_charts,
            split_search, "s", "reference: one split's search (two of the report's four PNGs, once per report)"),
        Row(f"bar contract on one month ({one.height} 1h bars, 3 great-expectations suites)", t_contract, None, "s",
            "per bar partition, after the suites are built; the whole bar stage is in the backfill rows"),
    ]
