"""Out of sample: each split's chosen parameters traded on its own test window, the results stitched.

Honesty rules enforced here: a split's parameters were chosen on its train window only; the test window is
traded with those parameters by the vectorbt reference engine, with indicator warm-up taken from bars *before*
the test window; the stitched out-of-sample returns are the concatenation of test windows, which never overlap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ..durations import iso
from ..engine import Costs, evaluate
from ..errors import MaestroError
from ..schema import to_pandas_bars
from ..stats import METRIC_CONVENTIONS, compute_metrics, walk_forward_efficiency
from ..strategies import get_strategy
from ..timeframes import bars_per_year, timeframe_ms
from ..walkforward import DEFAULT_MAX_GAP, Split, gap_flags

__all__ = ["OOSResult", "run_oos"]


@dataclass
class OOSResult:
    returns: pd.Series          # stitched per-bar strategy returns over all test windows
    benchmark: pd.Series        # buy-and-hold per-bar returns over the same bars
    equity: pl.DataFrame        # timestamp, split, return, equity, benchmark_return, benchmark_equity
    per_split: pl.DataFrame     # window, params, train vs test metrics
    trades: pl.DataFrame        # every OOS trade, with its split
    summary: dict[str, Any]     # headline figures and verdict


def run_oos(
    bars: pl.DataFrame, params: pl.DataFrame, strategy_name: str, costs: Costs, timeframe: str,
    init_cash: float = 10_000.0, max_gap: str | int = DEFAULT_MAX_GAP,
) -> OOSResult:
    """Trade each split's chosen parameters on its own test window and stitch the results."""
    if params.height == 0:
        raise MaestroError("no optimized splits: materialize split_optimal_params first")
    strategy = get_strategy(strategy_name)
    pdf = to_pandas_bars(bars)
    ts = bars["timestamp"].to_numpy()
    # the live split's test window is still open: its pick is for trading now, not for out-of-sample results
    params = params.filter(pl.col("test_end") <= int(ts[-1]) + timeframe_ms(timeframe))
    if params.height == 0:
        raise MaestroError("no split has a complete test window yet: wait for data to cover one, or shorten test")
    ppy = bars_per_year(timeframe)
    close = pdf["close"].to_numpy()
    parts, bench_parts, split_ids, rows, trade_frames = [], [], [], [], []
    for r in params.sort("split").iter_rows(named=True):
        j0, j1 = (int(x) for x in np.searchsorted(ts, [r["test_start"], r["test_end"]]))
        if j1 - j0 < 2:
            raise MaestroError(f"split {r['split']}: test window {iso(r['test_start'])} has no bars")
        p = json.loads(r["params"])
        res = evaluate(pdf, strategy, p, j0, j1, costs, init_cash=init_cash)
        ret = res.returns
        prev = np.maximum(np.arange(j0, j1) - 1, 0)
        bench = pd.Series(close[j0:j1] / close[prev] - 1.0, index=ret.index)
        parts.append(ret)
        bench_parts.append(bench)
        split_ids.append(np.full(len(ret), r["split"], dtype=np.int64))
        tm = compute_metrics(ret.to_numpy(), ppy, res.trades)
        rows.append(
            {
                "split": r["split"],
                "train_from": iso(r["train_start"]),
                "train_to": iso(r["train_end"]),
                "test_from": iso(r["test_start"]),
                "test_to": iso(r["test_end"]),
                "params": r["params"],
                "train_sharpe": r["train_sharpe"],
                "test_sharpe": float(tm["sharpe"]),
                "train_total_return": r["train_total_return"],
                "test_total_return": float(tm["total_return"]),
                "train_max_drawdown": r["train_max_drawdown"],
                "test_max_drawdown": float(tm["max_drawdown"]),
                "train_trades": r["train_trades"],
                "test_trades": int(res.n_trades),
                "test_buy_hold_return": float(np.prod(1 + bench.to_numpy()) - 1),
                **gap_flags(ts, Split(r["split"], r["train_start"], r["train_end"], r["test_start"], r["test_end"]),
                            timeframe, max_gap),
            }
        )
        if len(res.trades):
            t = pl.from_pandas(res.trades.reset_index(drop=True).astype(
                {c: "string" for c in ("entry_time", "exit_time") if c in res.trades.columns}))
            trade_frames.append(t.with_columns(pl.lit(r["split"]).alias("split")))
    returns = pd.concat(parts)
    benchmark = pd.concat(bench_parts)
    if not returns.index.is_monotonic_increasing or returns.index.has_duplicates:
        raise AssertionError("test windows overlap: stitched out-of-sample returns are not strictly ordered")
    eq = init_cash * np.cumprod(1 + returns.to_numpy())
    beq = init_cash * np.cumprod(1 + benchmark.to_numpy())
    equity = pl.DataFrame(
        {
            "timestamp": pd.DatetimeIndex(returns.index).as_unit("ms").asi8.astype(np.int64),
            "split": np.concatenate(split_ids),
            "return": returns.to_numpy(),
            "equity": eq,
            "benchmark_return": benchmark.to_numpy(),
            "benchmark_equity": beq,
        }
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("datetime"))
    per_split = pl.DataFrame(rows)
    trades = pl.concat(trade_frames, how="diagonal_relaxed") if trade_frames else pl.DataFrame()
    oos = compute_metrics(returns.to_numpy(), ppy, None)
    n_trades = int(per_split["test_trades"].sum())
    is_cagr = float(np.nanmean(params["train_cagr"].to_numpy())) if "train_cagr" in params.columns else float("nan")
    wfe, wfe_note = walk_forward_efficiency(float(oos["cagr"]), is_cagr)
    summary = {
        "n_splits": params.height,
        "oos_bars": len(returns),
        "oos_trades": n_trades,
        "oos_total_return": float(oos["total_return"]),
        "oos_cagr": float(oos["cagr"]),
        "oos_sharpe_bars": float(oos["sharpe"]),
        "oos_max_drawdown": float(oos["max_drawdown"]),
        "buy_hold_total_return": float(beq[-1] / init_cash - 1),
        "mean_train_sharpe": float(np.nanmean(params["train_sharpe"].to_numpy())),
        "mean_test_sharpe": float(np.nanmean(per_split["test_sharpe"].to_numpy())),
        "is_cagr": is_cagr,
        "wfe": wfe,
        "wfe_note": wfe_note,
        "first_test": iso(int(params["test_start"].min())),
        "last_test_end": iso(int(params["test_end"].max())),
        "metric_conventions": json.dumps(METRIC_CONVENTIONS, sort_keys=True, default=str),
        "data_note": strategy.data_note(pdf) or "",
    }
    return OOSResult(returns, benchmark, equity, per_split, trades, summary)

