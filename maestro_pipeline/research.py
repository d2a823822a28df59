"""Walk-forward research on one instrument: splits, per-split search, out-of-sample stitching, the summary.

Pure functions over polars/pandas frames so they run the same in a Dagster asset, a test or a notebook.
Honesty rules enforced here: a split's parameters are chosen on its train window only; the test window is
traded with those parameters, with indicator warm-up taken from bars *before* the test window; stitched
out-of-sample returns are the concatenation of test windows, which never overlap.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from .backtest import Costs, evaluate
from .errors import MaestroError
from .metrics import METRIC_CONVENTIONS, compute_metrics
from .optimize import search_split
from .schema import DERIVATIVE_COLUMNS, to_pandas_bars
from .splits import Split, walk_forward_splits
from .strategies import get_strategy
from .strategies.base import Categorical, FloatParam, IntParam, Strategy
from .timeframes import bars_per_year, parse_duration_ms, timeframe_ms
from .validation import find_gaps, window_gaps

#: Default longest tolerated gap (the data contract's max_gap) when the caller passes none.
DEFAULT_MAX_GAP = "6h"

#: Verdict thresholds, stated in every report so a reader knows what "promising" means.
MIN_OOS_TRADES = 10
MIN_WFE = 0.5


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def bars_hash(bars: pl.DataFrame) -> str:
    """Content hash of bars (timestamps, OHLCV and any attached derivatives columns): research's data version."""
    h = hashlib.sha256()
    for c in ("timestamp", "open", "high", "low", "close", "volume", *DERIVATIVE_COLUMNS):
        if c in bars.columns:
            h.update(c.encode())
            h.update(np.ascontiguousarray(bars[c].to_numpy()).tobytes())
    return h.hexdigest()[:16]


def attach_derivatives(
    bars: pl.DataFrame, timeframe: str, funding: pl.DataFrame | None = None, open_interest: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Put perpetual-futures history on the bars, causally.

    ``funding_rate`` is sparse: a settlement at time T sits on the bar containing T (several settlements in one
    bar are summed), NaN elsewhere — the engine pays it on that bar and strategies forward-fill it from past
    events only. ``open_interest`` is the latest snapshot taken strictly before the bar's close.
    """
    tf = timeframe_ms(timeframe)
    out = bars
    if funding is not None and funding.height:
        per_bar = (
            funding.select("timestamp", "funding_rate")
            .with_columns((pl.col("timestamp") - pl.col("timestamp") % tf).alias("timestamp"))
            .group_by("timestamp").agg(pl.col("funding_rate").sum())
        )
        out = out.join(per_bar, on="timestamp", how="left").with_columns(pl.col("funding_rate").fill_null(float("nan")))
    if open_interest is not None and open_interest.height:
        oi = open_interest.select(pl.col("timestamp").alias("_oi_ts"), "open_interest").sort("_oi_ts")
        out = (
            out.with_columns((pl.col("timestamp") + tf - 1).alias("_close_ts")).sort("_close_ts")
            .join_asof(oi, left_on="_close_ts", right_on="_oi_ts", strategy="backward")
            .drop("_close_ts", "_oi_ts")
            .with_columns(pl.col("open_interest").fill_null(float("nan")))
        )
    return out.sort("timestamp")


# ---------------------------------------------------------------------------------------------------
# splits
# ---------------------------------------------------------------------------------------------------
def make_splits(bars: pl.DataFrame, timeframe: str, wf: Any, max_gap: str | int = DEFAULT_MAX_GAP) -> tuple[list[Split], pl.DataFrame]:
    """Splits for these bars under the walk-forward config, and their table (with bar counts and gaps).

    ``blocking_gap`` flags a split whose train or test window holds a gap longer than ``max_gap`` (the data
    contract's limit): such a window is reported, never silently bridged."""
    if bars.height == 0:
        raise MaestroError("no validated bars for this instrument yet: materialize validated_bars first")
    tf = timeframe_ms(timeframe)
    ts = bars["timestamp"]
    splits = walk_forward_splits(
        int(ts[0]),
        int(ts[-1]) + tf,
        train_ms=parse_duration_ms(wf.train, timeframe),
        test_ms=parse_duration_ms(wf.test, timeframe),
        n_splits=wf.n_splits,
        scheme=wf.scheme,
        purge_ms=parse_duration_ms(wf.purge, timeframe) if wf.purge not in (0, "0") else 0,
        timeframe_ms=tf,
    )
    arr = ts.to_numpy()
    rows = []
    for s in splits:
        tr = np.searchsorted(arr, [s.train_start, s.train_end])
        te = np.searchsorted(arr, [s.test_start, s.test_end])
        test_ts = ts.slice(int(te[0]), int(te[1] - te[0]))
        missing = (s.test_end - s.test_start) // tf - test_ts.len()
        rows.append(
            {
                **s.as_dict(),
                "split": s.index,
                "train_from": iso(s.train_start),
                "train_to": iso(s.train_end),
                "test_from": iso(s.test_start),
                "test_to": iso(s.test_end),
                "train_bars": int(tr[1] - tr[0]),
                "test_bars": int(te[1] - te[0]),
                "test_missing_bars": int(missing),
                "test_gaps": len(find_gaps(test_ts, timeframe)),
                **_gap_flags(arr, s, timeframe, max_gap),
            }
        )
    table = pl.DataFrame(rows).drop("index")
    return splits, table


def _gap_flags(ts: np.ndarray, s: Any, timeframe: str, max_gap: str | int) -> dict[str, Any]:
    """Longest gap (in bars) of a split's train and test windows, and whether either exceeds ``max_gap``."""
    from .contract import duration_ms

    limit = duration_ms(max_gap, timeframe) // timeframe_ms(timeframe)
    tr = window_gaps(ts, int(s.train_start), int(s.train_end), timeframe)[2]
    te = window_gaps(ts, int(s.test_start), int(s.test_end), timeframe)[2]
    return {"train_longest_gap_bars": tr, "test_longest_gap_bars": te, "blocking_gap": bool(max(tr, te) > limit)}


def splits_from_table(table: pl.DataFrame) -> list[Split]:
    return [
        Split(int(r["split"]), int(r["train_start"]), int(r["train_end"]), int(r["test_start"]), int(r["test_end"]))
        for r in table.iter_rows(named=True)
    ]


# ---------------------------------------------------------------------------------------------------
# search
# ---------------------------------------------------------------------------------------------------
def max_warmup(strategy: Strategy) -> int:
    """Warm-up for the most demanding point of the space: how much history before a window matters."""
    hi: dict[str, Any] = {}
    for name, p in strategy.space.items():
        if isinstance(p, (IntParam, FloatParam)):
            hi[name] = p.high
        elif isinstance(p, Categorical):
            hi[name] = p.choices[-1]
    try:
        return int(strategy.warmup({**strategy.defaults, **hi}))
    except Exception:  # a strategy whose warm-up needs a valid combination: fall back to its defaults
        return int(strategy.warmup(dict(strategy.defaults)))


def split_seed(seed: int, s: Split) -> int:
    """A per-split seed that depends on the split's window, not its position, so cached splits stay valid."""
    digest = hashlib.sha256(f"{seed}:{s.train_start}:{s.test_start}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def search_fingerprint(
    s: Split, window_hash: str, strategy: Strategy, search: Any, costs: Costs, timeframe: str
) -> str:
    payload = {
        "window": [s.train_start, s.train_end],
        "data": window_hash,
        "strategy": strategy.name,
        "code": strategy.code_version,
        "search": {"n_trials": search.n_trials, "seed": search.seed, "objective": search.objective, "sampler": search.sampler},
        "costs": [costs.fee, costs.slippage],
        "timeframe": timeframe,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


@dataclass
class SearchOutcome:
    params: pl.DataFrame   # one row per split
    ledger: pl.DataFrame   # one row per trial of every split
    reused: int            # splits taken from the cache
    computed: int          # splits searched now


def optimize_splits(
    bars: pl.DataFrame,
    splits: list[Split],
    strategy_name: str,
    search: Any,
    costs: Costs,
    timeframe: str,
    previous: pl.DataFrame | None = None,
    previous_ledger: pl.DataFrame | None = None,
) -> SearchOutcome:
    """Search every split's train window; reuse a previous result whose fingerprint is unchanged."""
    strategy = get_strategy(strategy_name)
    pdf = to_pandas_bars(bars)
    ts = bars["timestamp"].to_numpy()
    ppy = bars_per_year(timeframe)
    lookback = max_warmup(strategy)
    cache: dict[str, dict] = {}
    if previous is not None and previous.height and "fingerprint" in previous.columns:
        cache = {r["fingerprint"]: r for r in previous.iter_rows(named=True)}
    rows, ledgers, reused = [], [], 0
    for s in splits:
        i0, i1 = (int(x) for x in np.searchsorted(ts, [s.train_start, s.train_end]))
        if i1 - i0 < 2:
            raise MaestroError(f"split {s.index}: train window {iso(s.train_start)}..{iso(s.train_end)} has no bars")
        fp = search_fingerprint(s, bars_hash(bars.slice(max(0, i0 - lookback), i1 - max(0, i0 - lookback))), strategy, search, costs, timeframe)
        if fp in cache:
            row = dict(cache[fp])
            row["split"] = s.index
            rows.append(row)
            if previous_ledger is not None and previous_ledger.height:
                ledgers.append(previous_ledger.filter(pl.col("fingerprint") == fp).with_columns(pl.lit(s.index).alias("split")))
            reused += 1
            continue
        seed = split_seed(search.seed, s)
        res = search_split(
            pdf, strategy, i0, i1, n_trials=search.n_trials, seed=seed, costs=costs,
            periods_per_year=ppy, objective=search.objective,
        )
        m = res.train_metrics
        rows.append(
            {
                "split": s.index,
                "train_start": s.train_start,
                "train_end": s.train_end,
                "test_start": s.test_start,
                "test_end": s.test_end,
                "params": json.dumps(res.best_params, sort_keys=True),
                "objective": search.objective,
                "best_value": float(res.best_value),
                "train_sharpe": float(m.get("sharpe", np.nan)),
                "train_total_return": float(m.get("total_return", np.nan)),
                "train_cagr": float(m.get("cagr", np.nan)),
                "train_max_drawdown": float(m.get("max_drawdown", np.nan)),
                "train_trades": int(m.get("n_trades", 0)),
                "n_trials": int(search.n_trials),
                "seed": int(seed),
                "fingerprint": fp,
            }
        )
        led = pl.from_pandas(res.ledger.reset_index(drop=True)) if isinstance(res.ledger, pd.DataFrame) else res.ledger
        ledgers.append(led.with_columns(pl.lit(s.index).alias("split"), pl.lit(fp).alias("fingerprint")))
    params = pl.DataFrame(rows)
    ledger = pl.concat(ledgers, how="diagonal_relaxed") if ledgers else pl.DataFrame()
    return SearchOutcome(params, ledger, reused, len(splits) - reused)


# ---------------------------------------------------------------------------------------------------
# out of sample
# ---------------------------------------------------------------------------------------------------
@dataclass
class OOSResult:
    returns: pd.Series          # stitched per-bar strategy returns over all test windows
    benchmark: pd.Series        # buy-and-hold per-bar returns over the same bars
    equity: pl.DataFrame        # timestamp, split, return, equity, benchmark_return, benchmark_equity
    per_split: pl.DataFrame     # window, params, train vs test metrics
    trades: pl.DataFrame        # every OOS trade, with its split
    summary: dict[str, Any]     # headline figures and verdict


def run_oos(
    bars: pl.DataFrame, params: pl.DataFrame, strategy_name: str, costs: Costs, timeframe: str, init_cash: float = 10_000.0,
    max_gap: str | int = DEFAULT_MAX_GAP,
) -> OOSResult:
    """Trade each split's chosen parameters on its own test window and stitch the results."""
    if params.height == 0:
        raise MaestroError("no optimized splits: materialize split_optimal_params first")
    strategy = get_strategy(strategy_name)
    pdf = to_pandas_bars(bars)
    ts = bars["timestamp"].to_numpy()
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
                **_gap_flags(ts, Split(r["split"], r["train_start"], r["train_end"], r["test_start"], r["test_end"]), timeframe, max_gap),
            }
        )
        if len(res.trades):
            t = pl.from_pandas(res.trades.reset_index(drop=True).astype({c: "string" for c in ("entry_time", "exit_time") if c in res.trades.columns}))
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


def walk_forward_efficiency(oos_annual: float, is_annual: float) -> tuple[float | None, str]:
    """Annualized OOS return / annualized in-sample return.

    The ratio only means something when the in-sample return is positive (a strategy the search believed in);
    when it is not, the ratio's sign flips meaning, so it is reported as undefined with the reason.
    """
    if not np.isfinite(is_annual) or not np.isfinite(oos_annual):
        return None, "undefined: a return is not finite"
    if is_annual <= 0:
        return None, f"undefined: in-sample annual return {is_annual:.1%} is not positive"
    return float(oos_annual / is_annual), "annualized OOS return / annualized in-sample return"


def verdict(oos_trades: int, oos_sharpe: float, wfe: float | None) -> tuple[str, str]:
    """A verdict in words with the thresholds that produced it."""
    if oos_trades < MIN_OOS_TRADES:
        return "too few trades", f"{oos_trades} out-of-sample trades < {MIN_OOS_TRADES}"
    if not np.isfinite(oos_sharpe) or oos_sharpe <= 0:
        return "fails out of sample", f"OOS Sharpe {oos_sharpe:.2f} <= 0"
    if wfe is None:
        return "inconclusive", f"OOS Sharpe {oos_sharpe:.2f} > 0 but walk-forward efficiency is undefined"
    if wfe < MIN_WFE:
        return "weak", f"OOS Sharpe {oos_sharpe:.2f} > 0 but walk-forward efficiency {wfe:.2f} < {MIN_WFE}"
    return "promising", (
        f"OOS Sharpe {oos_sharpe:.2f} > 0, walk-forward efficiency {wfe:.2f} >= {MIN_WFE}, "
        f"{oos_trades} trades >= {MIN_OOS_TRADES} (overfitting statistics not yet applied)"
    )


VERDICT_RANK = {"promising": 0, "weak": 1, "inconclusive": 2, "fails out of sample": 3, "too few trades": 4}
