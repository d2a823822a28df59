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
from .optimize import persist_study, prepare_storage, search_split
from .provenance import code_version, library_versions
from .schema import DERIVATIVE_COLUMNS, to_pandas_bars
from .splits import Split
from .strategies import get_strategy
from .strategies.base import Categorical, FloatParam, IntParam, Strategy
from .timeframes import bars_per_year, timeframe_ms
from .validation import find_gaps, window_gaps

#: Default longest tolerated gap (the data contract's max_gap) when the caller passes none.
DEFAULT_MAX_GAP = "6h"

#: Verdict thresholds, stated in every report so a reader knows what "promising" means.
MIN_OOS_TRADES = 10
MIN_WFE = 0.5
MAX_PBO = 0.5
MIN_DSR = 0.95


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
    contract's limit): such a window is reported, never silently bridged. ``exclude`` (JSON ``[[start, end],
    ...]``) lists the embargo zones inside the train window; ``train_bars_excluded`` counts their bars, which
    must not train the split. ``wf`` may be any object with the ``WalkForwardConfig`` fields (missing new
    fields take their defaults)."""
    from .splits import plan_splits

    if bars.height == 0:
        raise MaestroError("no validated bars for this instrument yet: materialize validated_bars first")
    arr = bars["timestamp"].to_numpy()
    scheme = getattr(wf, "scheme", "rolling")
    splits = plan_splits(
        arr,
        bars["close"].to_numpy() if scheme == "adaptive" else None,
        timeframe,
        train=wf.train,
        test=wf.test,
        step=getattr(wf, "step", None),
        n_splits=wf.n_splits,
        scheme=scheme,
        purge=getattr(wf, "purge", 0),
        embargo=getattr(wf, "embargo", 0),
        mode=getattr(wf, "mode", "calendar"),
        train_parts=getattr(wf, "train_parts", 2),
        test_parts=getattr(wf, "test_parts", 1),
    )
    table = pl.DataFrame([_split_row(bars, s, timeframe, max_gap, scheme) for s in splits])
    return splits, table


def _split_row(bars: pl.DataFrame, s: Split, timeframe: str, max_gap: str | int, scheme: str) -> dict[str, Any]:
    """One row of the splits table: the window, its bar counts, gaps and embargo zones."""
    tf = timeframe_ms(timeframe)
    ts = bars["timestamp"]
    arr = ts.to_numpy()
    tr = np.searchsorted(arr, [s.train_start, s.train_end])
    te = np.searchsorted(arr, [s.test_start, s.test_end])
    test_ts = ts.slice(int(te[0]), int(te[1] - te[0]))
    missing = (min(s.test_end, int(arr[-1]) + tf) - s.test_start) // tf - test_ts.len()
    excluded = sum(int(b - a) for a, b in (np.searchsorted(arr, list(z)) for z in s.exclude))
    return {
        "train_start": s.train_start,
        "train_end": s.train_end,
        "test_start": s.test_start,
        "test_end": s.test_end,
        "split": s.index,
        "train_from": iso(s.train_start),
        "train_to": iso(s.train_end),
        "test_from": iso(s.test_start),
        "test_to": iso(s.test_end),
        "train_bars": int(tr[1] - tr[0]),
        "test_bars": int(te[1] - te[0]),
        "test_missing_bars": int(max(missing, 0)),
        "test_gaps": len(find_gaps(test_ts, timeframe)),
        **_gap_flags(arr, s, timeframe, max_gap),
        "scheme": scheme,
        "exclude": json.dumps([list(z) for z in s.exclude]),
        "train_bars_excluded": excluded,
    }


def plan_research(bars: pl.DataFrame, timeframe: str, wf: Any, max_gap: str | int = DEFAULT_MAX_GAP,
                  regimes: Any | None = None) -> tuple[list[Split], pl.DataFrame, Any]:
    """The complete splits plus the live split (``live`` column), with each split's market regimes.

    Returns (splits including the live one, their table, the ``live.LivePlan``). The live split's test window
    is still open: it is searched (its pick is what to trade now) but never enters out-of-sample results."""
    from .live import live_split, split_regime_rows

    splits, table = make_splits(bars, timeframe, wf, max_gap)
    plan = live_split(bars, splits, timeframe, wf, regimes)
    every = splits + ([plan.split] if plan.split is not None else [])
    if plan.split is not None:
        row = _split_row(bars, plan.split, timeframe, max_gap, getattr(wf, "scheme", "rolling"))
        table = pl.concat([table, pl.DataFrame([row])], how="diagonal_relaxed")
    table = table.with_columns((pl.col("split") == (plan.split.index if plan.split is not None else -1)).alias("live"),
                               pl.lit(plan.reason if plan.split is not None else "").alias("live_reason"))
    reg = pl.DataFrame(split_regime_rows(bars, every, timeframe, regimes), schema_overrides={
        "train_regime": pl.Int64, "train_regime_share": pl.Float64, "test_regime": pl.Int64,
        "test_regime_share": pl.Float64, "regime_note": pl.String})
    return every, table.join(reg, on="split", how="left"), plan


def _gap_flags(ts: np.ndarray, s: Any, timeframe: str, max_gap: str | int) -> dict[str, Any]:
    """Longest gap (in bars) of a split's train and test windows, and whether either exceeds ``max_gap``."""
    from .contract import duration_ms

    limit = duration_ms(max_gap, timeframe) // timeframe_ms(timeframe)
    tr = window_gaps(ts, int(s.train_start), int(s.train_end), timeframe)[2]
    te = window_gaps(ts, int(s.test_start), int(s.test_end), timeframe)[2]
    return {"train_longest_gap_bars": tr, "test_longest_gap_bars": te, "blocking_gap": bool(max(tr, te) > limit)}


def splits_from_table(table: pl.DataFrame) -> list[Split]:
    """The splits a ``make_splits`` table describes (its ``exclude`` zones too, when the table has them)."""

    def zones(r: dict[str, Any]) -> tuple[tuple[int, int], ...]:
        return tuple((int(a), int(b)) for a, b in json.loads(r.get("exclude") or "[]"))

    return [
        Split(int(r["split"]), int(r["train_start"]), int(r["train_end"]), int(r["test_start"]), int(r["test_end"]), zones(r))
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
    s: Split, window_hash: str, strategy: Strategy, search: Any, costs: Costs, timeframe: str,
    warm_start: dict | None = None,
) -> str:
    """What a split's search result depends on: window, data, strategy code, search settings, costs, engine."""
    payload = {
        "window": [s.train_start, s.train_end],
        "exclude": [list(x) for x in s.exclude],
        "data": window_hash,
        "strategy": strategy.name,
        "code": strategy.code_version,
        "search": search.fingerprint_fields(),
        "warm_start": warm_start,
        "costs": [costs.fee, costs.slippage],
        "timeframe": timeframe,
        "engine": code_version("maestro_pipeline.fastpath", "maestro_pipeline.optimize"),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass
class SearchOutcome:
    params: pl.DataFrame   # one row per split
    ledger: pl.DataFrame   # one row per trial of every split
    daily: pl.DataFrame    # split, fingerprint, trial, day, return: every completed trial's daily train returns
    reused: int            # splits taken from the cache
    computed: int          # splits searched now
    persisted: int = 0     # studies written to the Optuna storage
    workers: int = 1       # processes that searched


#: What the forked search workers read (set by the parent just before the pool forks; never pickled).
_WORK: dict[str, Any] = {}


def fitted_space(strategy: Strategy, train_bars: int) -> tuple[Strategy, dict[str, list[int]]]:
    """The strategy with every window-like parameter's upper bound cut to half the train window.

    An indicator longer than half the window leaves too few bars with a valid signal to judge it on, so those
    values are not searched (the cut is recorded with the split). A space whose LOW end is already too long
    cannot be searched at all and is refused with the fix (``splits.check_window_fits``).
    """
    import copy

    from .splits import check_window_fits, window_params_over

    over = window_params_over(strategy, train_bars)
    if not over:
        return strategy, {}
    limit = int(train_bars) // 2
    if any(strategy.space[p].low > limit for p in over):
        check_window_fits(strategy, train_bars)
    space = dict(strategy.space)
    cut = {}
    for name in over:
        p = space[name]
        space[name] = IntParam(p.low, limit, p.step)
        cut[name] = [int(p.high), limit]
    clone = copy.copy(strategy)
    clone.space = space
    return clone, cut


def _search_task(task: dict) -> tuple[int, Any]:
    w = _WORK
    search = w["search"]
    strategy = task["strategy"]  # the space fitted to this split's train window (see fitted_space)
    res = search_split(
        w["pdf"], strategy, task["i0"], task["i1"], n_trials=search.n_trials, seed=task["seed"], costs=w["costs"],
        periods_per_year=w["ppy"], objective=search.objectives, selection=search.selection, weights=dict(search.weights),
        sampler=search.sampler, grid_points=search.grid_points, pruner=search.pruner, folds=search.folds,
        warm_start=task["warm_start"], exclude=task["exclude"], arrays=w["arrays"],
    )
    url = w["storage_url"]
    if url:  # each worker writes its own finished study: the ORM work runs in parallel, SQLite serializes commits
        s = task["split"]
        attrs = {"maestro_fingerprint": task["fingerprint"], "strategy": strategy.name, "strategy_code": strategy.code_version,
                 "train_from": iso(s.train_start), "train_to": iso(s.train_end), "test_from": iso(s.test_start),
                 "test_to": iso(s.test_end), "settings": res.settings,
                 "libraries": library_versions("optuna", "vectorbt", "numba", "numpy", "pandas", "polars"),
                 "picked_trial": int(res.ledger.loc[res.ledger["selected"], "trial"].iloc[0])}
        res.persisted = persist_study(url, f"{w['study_prefix']}split{s.index}-{task['fingerprint']}", res.trials,
                                      len(res.settings["objectives"]), attrs)
        res.trials = []  # written: no need to ship them back to the parent
    return task["index"], res


def resolve_workers(requested: int | None, n_tasks: int) -> int:
    """``0``/None = one per CPU core; never more than there are splits to search."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    want = cores if not requested else int(requested)
    return max(1, min(want, n_tasks))


def _run_tasks(tasks: list[dict], workers: int) -> dict[int, Any]:
    """Search the splits, in worker processes when there is more than one worker (fork: they inherit ``_WORK``)."""
    if workers <= 1 or len(tasks) <= 1:
        return dict(_search_task(t) for t in tasks)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        return dict(pool.map(_search_task, tasks))


def optimize_splits(
    bars: pl.DataFrame,
    splits: list[Split],
    strategy_name: str,
    search: Any,
    costs: Costs,
    timeframe: str,
    previous: pl.DataFrame | None = None,
    previous_ledger: pl.DataFrame | None = None,
    previous_daily: pl.DataFrame | None = None,
    *,
    workers: int | None = None,
    storage_url: str | None = None,
    study_prefix: str = "",
) -> SearchOutcome:
    """Search every split's train window; reuse a previous result whose fingerprint is unchanged.

    Splits are independent (each has its own seed and in-memory study), so they run in parallel processes and
    give the same result with any number of workers. With ``search.warm_start`` each split starts from the
    previous split's pick, so they run in order. Finished studies are persisted to ``storage_url`` afterwards.
    """
    from .fastpath import bar_arrays

    strategy = get_strategy(strategy_name)
    pdf = to_pandas_bars(bars)
    ts = bars["timestamp"].to_numpy()
    lookback = max_warmup(strategy)
    cache: dict[str, dict] = {}
    if previous is not None and previous.height and "fingerprint" in previous.columns:
        cache = {r["fingerprint"]: r for r in previous.iter_rows(named=True)}
    _WORK.clear()
    _WORK.update(pdf=pdf, strategy=strategy, search=search, costs=costs, ppy=bars_per_year(timeframe), arrays=bar_arrays(pdf),
                 storage_url=storage_url, study_prefix=study_prefix)
    warm = search.warm_start
    if storage_url:
        prepare_storage(storage_url)

    def prepare(s: Split, warm_params: dict | None) -> dict:
        i0, i1 = (int(x) for x in np.searchsorted(ts, [s.train_start, s.train_end]))
        if i1 - i0 < 2:
            raise MaestroError(f"split {s.index}: train window {iso(s.train_start)}..{iso(s.train_end)} has no bars")
        lo = max(0, i0 - lookback)
        fitted, cut = fitted_space(strategy, i1 - i0)
        if warm_params is not None:
            try:
                warm_params = fitted.check(warm_params)
            except MaestroError:  # the previous pick is outside this window's space: start cold
                warm_params = None
        fp = search_fingerprint(s, bars_hash(bars.slice(lo, i1 - lo)), strategy, search, costs, timeframe,
                                {"warm_start": warm_params, "space_cut": cut} if (warm_params or cut) else None)
        return {"index": s.index, "i0": i0, "i1": i1, "seed": split_seed(search.seed, s), "fingerprint": fp,
                "warm_start": warm_params, "exclude": tuple(tuple(x) for x in s.exclude), "split": s,
                "space_cut": cut, "strategy": fitted}

    results: dict[int, Any] = {}
    tasks: dict[int, dict] = {}
    reused_rows: dict[int, dict] = {}
    if warm:  # each split needs the previous one's pick: in order, in this process
        prev_pick: dict | None = None
        for s in splits:
            t = prepare(s, prev_pick)
            tasks[s.index] = t
            if t["fingerprint"] in cache:
                reused_rows[s.index] = cache[t["fingerprint"]]
                prev_pick = json.loads(reused_rows[s.index]["params"])
            else:
                results.update(_run_tasks([t], 1))
                prev_pick = dict(results[s.index].best_params)
        n_workers = 1
    else:
        for s in splits:
            t = prepare(s, None)
            tasks[s.index] = t
            if t["fingerprint"] in cache:
                reused_rows[s.index] = cache[t["fingerprint"]]
        todo = [t for i, t in tasks.items() if i not in reused_rows]
        n_workers = resolve_workers(workers if workers is not None else search.workers, len(todo))
        results.update(_run_tasks(todo, n_workers))
    _WORK.clear()

    rows, ledgers, dailies, persisted = [], [], [], 0
    for s in splits:
        t = tasks[s.index]
        fp = t["fingerprint"]
        if s.index in reused_rows:
            rows.append({**reused_rows[s.index], "split": s.index})
            for prev_t, out in ((previous_ledger, ledgers), (previous_daily, dailies)):
                if prev_t is not None and prev_t.height and "fingerprint" in prev_t.columns:
                    out.append(prev_t.filter(pl.col("fingerprint") == fp).with_columns(pl.lit(s.index).alias("split")))
            continue
        res = results[s.index]
        m = res.train_metrics
        rows.append(
            {
                "split": s.index,
                "train_start": s.train_start,
                "train_end": s.train_end,
                "test_start": s.test_start,
                "test_end": s.test_end,
                "params": json.dumps(res.best_params, sort_keys=True),
                "objective": ",".join(res.settings["objectives"]),
                "selection": res.settings["selection"],
                "best_value": float(res.best_value),
                "train_sharpe": float(m.get("sharpe", np.nan)),
                "train_vwr": float(m.get("vwr", np.nan)),
                "train_total_return": float(m.get("total_return", np.nan)),
                "train_cagr": float(m.get("cagr", np.nan)),
                "train_max_drawdown": float(m.get("max_drawdown", np.nan)),
                "train_trades": int(m.get("n_trades", 0)),
                "n_trials": int(search.n_trials),
                "n_complete": int((res.ledger["state"] == "COMPLETE").sum()),
                "seed": int(t["seed"]),
                "sampler_settings": json.dumps(res.settings, sort_keys=True, default=str),
                "warm_start": json.dumps(t["warm_start"], sort_keys=True) if t["warm_start"] else "",
                "space_cut": json.dumps(t["space_cut"], sort_keys=True) if t["space_cut"] else "",
                "fingerprint": fp,
            }
        )
        ledgers.append(pl.from_pandas(res.ledger.reset_index(drop=True)).with_columns(
            pl.lit(s.index).alias("split"), pl.lit(fp).alias("fingerprint")))
        if res.daily is not None and len(res.daily):
            dailies.append(pl.from_pandas(res.daily).with_columns(pl.lit(s.index).alias("split"), pl.lit(fp).alias("fingerprint")))
        persisted += int(res.persisted)
    params = pl.DataFrame(rows)
    ledger = pl.concat(ledgers, how="diagonal_relaxed") if ledgers else pl.DataFrame()
    daily = pl.concat(dailies, how="diagonal_relaxed") if dailies else pl.DataFrame()
    computed = len(splits) - len(reused_rows)
    return SearchOutcome(params, ledger, daily, len(reused_rows), computed, persisted, n_workers if computed else 0)


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


def verdict(oos_trades: int, oos_sharpe: float, wfe: float | None, pbo: float | None = None,
            dsr: float | None = None) -> tuple[str, str]:
    """A verdict in words with the thresholds that produced it, checked in this order:

    too few trades (< MIN_OOS_TRADES) -> fails out of sample (OOS Sharpe <= 0) -> overfit (PBO >= MAX_PBO) ->
    inconclusive (WFE undefined) -> weak (WFE < MIN_WFE) -> promising (DSR < MIN_DSR, or PBO/DSR not computable)
    -> robust. "robust" needs every test passed; "promising" says which one it missed.
    """
    if oos_trades < MIN_OOS_TRADES:
        return "too few trades", f"{oos_trades} out-of-sample trades < {MIN_OOS_TRADES}"
    if not np.isfinite(oos_sharpe) or oos_sharpe <= 0:
        return "fails out of sample", f"OOS Sharpe {oos_sharpe:.2f} <= 0"
    if pbo is not None and np.isfinite(pbo) and pbo >= MAX_PBO:
        return "overfit", f"PBO {pbo:.2f} >= {MAX_PBO}: the train-window winner usually ranks in the bottom half out of sample"
    if wfe is None:
        return "inconclusive", f"OOS Sharpe {oos_sharpe:.2f} > 0 but walk-forward efficiency is undefined"
    if wfe < MIN_WFE:
        return "weak", f"OOS Sharpe {oos_sharpe:.2f} > 0 but walk-forward efficiency {wfe:.2f} < {MIN_WFE}"
    passed = f"OOS Sharpe {oos_sharpe:.2f} > 0, WFE {wfe:.2f} >= {MIN_WFE}, {oos_trades} trades >= {MIN_OOS_TRADES}"
    if pbo is None or not np.isfinite(pbo):
        return "promising", f"{passed}; PBO not computable (too few trials or train days), so not called robust"
    passed += f", PBO {pbo:.2f} < {MAX_PBO}"
    if dsr is None or not np.isfinite(dsr):
        return "promising", f"{passed}; DSR not computable, so not called robust"
    if dsr < MIN_DSR:
        return "promising", f"{passed}; but DSR {dsr:.2f} < {MIN_DSR}: the OOS Sharpe may be luck across the trials searched"
    return "robust", f"{passed}, DSR {dsr:.2f} >= {MIN_DSR}"


VERDICT_RANK = {"robust": 0, "promising": 1, "weak": 2, "inconclusive": 3, "overfit": 4, "fails out of sample": 5,
                "too few trades": 6}
