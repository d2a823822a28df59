"""Out of sample: each split's chosen parameters traded on its own test window, the results stitched.

Honesty rules enforced here: a split's parameters were chosen on its train window only; the test window is
traded with those parameters by the vectorbt reference engine, with indicator warm-up taken from bars *before*
the test window; the stitched out-of-sample returns are the concatenation of test windows, which never overlap.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ..config import RiskSettings
from ..durations import iso
from ..engine import EXIT_REASONS, Costs, evaluate
from ..errors import MaestroError
from ..reporting import daily_returns
from ..schema import to_pandas_bars
from ..search import risk_spec, split_params
from ..stats import METRIC_CONVENTIONS, compute_metrics, max_drawdown, walk_forward_efficiency
from ..strategies import get_strategy
from ..timeframes import DAY_MS, bars_per_year, timeframe_ms
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


def _test_max_drawdown(returns: pd.Series) -> float:
    """The one drawdown definition of every view: on end-of-day equity (quantstats'), from 1 before the first day."""
    return max_drawdown(daily_returns(returns).to_numpy()) if len(returns) else 0.0


def run_oos(
    bars: pl.DataFrame, params: pl.DataFrame, strategy_name: str, costs: Costs, timeframe: str,
    init_cash: float = 10_000.0, max_gap: str | int = DEFAULT_MAX_GAP, risk: RiskSettings | None = None,
) -> OOSResult:
    """Trade each split's chosen parameters (and risk controls) on its own test window and stitch the results.

    A split whose search found no feasible pick stays flat (out of the market) for its test window, and says so. A
    window that ruins the account (a gap through the liquidation price) ends the stitched account: its returns are
    zero from that bar on, whatever later windows would have done."""
    if params.height == 0:
        raise MaestroError("no optimized splits: materialize split_optimal_params first")
    risk = risk or RiskSettings()
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
    ruin_time = None
    for r in params.sort("split").iter_rows(named=True):
        j0, j1 = (int(x) for x in np.searchsorted(ts, [r["test_start"], r["test_end"]]))
        if j1 - j0 < 2:
            raise MaestroError(f"split {r['split']}: test window {iso(r['test_start'])} has no bars")
        prev = np.maximum(np.arange(j0, j1) - 1, 0)
        index = pdf.index[j0:j1]
        bench = pd.Series(close[j0:j1] / close[prev] - 1.0, index=index)
        note = r.get("pick_note") or ""
        if r["params"]:
            strategy_part, risk_part = split_params(json.loads(r["params"]), strategy)
            res = evaluate(pdf, strategy, strategy_part, j0, j1, costs, init_cash=init_cash,
                           risk=risk_spec(risk, risk_part))
            ret, trades, n_trades, exits = res.returns, res.trades, int(res.n_trades), res.exit_counts()
            ruined, min_equity = res.ruined, res.min_equity
            if res.ruined and ruin_time is None:
                ruin_time = res.ruin_time
        else:  # no feasible pick: out of the market for this window
            ret = pd.Series(np.zeros(j1 - j0), index=index, name="returns")
            trades, n_trades, exits = pd.DataFrame(), 0, dict.fromkeys(EXIT_REASONS, 0)
            ruined, min_equity = False, float(init_cash)
            note = note or "no pick: stayed flat"
        parts.append(ret)
        bench_parts.append(bench)
        split_ids.append(np.full(len(ret), r["split"], dtype=np.int64))
        tm = compute_metrics(ret.to_numpy(), ppy, trades if len(trades) else None)
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
                "test_max_drawdown": _test_max_drawdown(ret),
                "train_trades": r["train_trades"],
                "test_trades": n_trades,
                "test_liquidations": int(exits.get("liquidation", 0)),
                "test_exits": json.dumps(exits),
                "test_min_equity": float(min_equity),
                "test_ruined": bool(ruined),
                "test_buy_hold_return": float(np.prod(1 + bench.to_numpy()) - 1),
                "note": note,
                **gap_flags(ts, Split(r["split"], r["train_start"], r["train_end"], r["test_start"], r["test_end"]),
                            timeframe, max_gap),
            }
        )
        if len(trades):
            t = pl.from_pandas(trades.reset_index(drop=True).astype(
                {c: "string" for c in ("entry_time", "exit_time") if c in trades.columns}))
            trade_frames.append(t.with_columns(pl.lit(r["split"]).alias("split")))
    returns = pd.concat(parts)
    benchmark = pd.concat(bench_parts)
    if not returns.index.is_monotonic_increasing or returns.index.has_duplicates:
        raise AssertionError("test windows overlap: stitched out-of-sample returns are not strictly ordered")
    if ruin_time is not None:  # a wiped-out account trades no more windows
        returns = returns.where(returns.index <= ruin_time, 0.0)
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
    total_return = float(np.prod(1.0 + returns.to_numpy()) - 1.0)
    oos_days = float((params["test_end"] - params["test_start"]).sum()) / DAY_MS
    train_days = ((params["train_end"] - params["train_start"]) / DAY_MS).to_list()
    wfe, wfe_note = walk_forward_efficiency(total_return, oos_days, params["train_total_return"].to_list(), train_days)
    exit_totals = {k: int(sum(json.loads(x)[k] for x in per_split["test_exits"])) for k in EXIT_REASONS}
    no_pick = int((per_split["params"] == "").sum())
    summary = {
        "n_splits": params.height,
        "oos_bars": len(returns),
        "oos_days": int(daily_returns(returns).shape[0]),
        "oos_trades": int(per_split["test_trades"].sum()),
        "oos_total_return": total_return,
        "oos_liquidations": exit_totals["liquidation"],
        "oos_exits": json.dumps(exit_totals),
        "ruined": ruin_time is not None,
        "ruin_time": str(ruin_time) if ruin_time is not None else "",
        "no_pick_splits": no_pick,
        "buy_hold_total_return": float(beq[-1] / init_cash - 1),
        "mean_train_sharpe": _nanmean(params["train_sharpe"].to_numpy()),
        "mean_test_sharpe": _nanmean(per_split["test_sharpe"].to_numpy()),
        "wfe": wfe,
        "wfe_note": wfe_note,
        "first_test": iso(int(params["test_start"].min())),
        "last_test_end": iso(int(params["test_end"].max())),
        "metric_conventions": json.dumps(METRIC_CONVENTIONS, sort_keys=True, default=str),
        "data_note": strategy.data_note(pdf) or "",
        "risk": risk_spec(risk).describe() + (f"; searched: {', '.join(risk.search)}" if risk.search else ""),
    }
    return OOSResult(returns, benchmark, equity, per_split, trades, summary)


def _nanmean(v: np.ndarray) -> float:
    """The mean of the finite values; NaN (without numpy's empty-slice warning) when there are none."""
    v = np.asarray(v, dtype=float)
    finite = v[np.isfinite(v)]
    return float(finite.mean()) if finite.size else math.nan
