"""Search every split of one instrument x strategy: fingerprints, reuse, parallel worker processes, persistence.

Splits are independent (each has its own seed and its own in-memory study), so they run in forked worker
processes and give the same result with any number of workers. A split whose fingerprint (window, data, strategy
code, search settings, costs, engine) is unchanged is taken from the previous result instead of searched again.
With ``search.warm_start`` each split starts from the previous split's pick, so they run in order.

What the workers read is one frozen :class:`SearchContext` handed to the pool's initializer (under ``fork`` it is
inherited, not pickled); each split is a frozen :class:`SplitTask`.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from ..config import RiskSettings, SearchConfig
from ..durations import iso
from ..engine import Costs, bar_arrays
from ..errors import MaestroError
from ..provenance import code_version, library_versions
from ..schema import bars_hash, to_pandas_bars
from ..strategies import Strategy, check_lookahead, get_strategy
from ..timeframes import bars_per_year
from ..walkforward import Split
from .risk import split_params
from .space import fitted_space, max_warmup
from .storage import persist_study, prepare_storage
from .study import SearchResult, search_split

__all__ = [
    "SearchContext", "SearchOutcome", "SplitTask", "optimize_splits", "resolve_workers", "search_fingerprint",
    "split_seed",
]

#: The modules whose source is part of every split's fingerprint (a change re-searches every split).
ENGINE_MODULES = ("maestro_pipeline.engine.nb", "maestro_pipeline.engine.nb_stops", "maestro_pipeline.engine.fast",
                  "maestro_pipeline.engine.risk", "maestro_pipeline.stats.nb", "maestro_pipeline.search.study",
                  "maestro_pipeline.search.sampling", "maestro_pipeline.search.risk")


def split_seed(seed: int, s: Split) -> int:
    """A per-split seed that depends on the split's window, not its position, so cached splits stay valid."""
    digest = hashlib.sha256(f"{seed}:{s.train_start}:{s.test_start}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def search_fingerprint(
    s: Split, window_hash: str, strategy: Strategy, search: SearchConfig, costs: Costs, timeframe: str,
    warm_start: dict | None = None, risk: RiskSettings | None = None,
) -> str:
    """What a split's search result depends on: window, data, strategy code, search and risk settings, costs,
    engine."""
    payload = {
        "window": [s.train_start, s.train_end],
        "exclude": [list(x) for x in s.exclude],
        "data": window_hash,
        "strategy": strategy.name,
        "code": strategy.code_version,
        "search": search.fingerprint_fields(),
        "warm_start": warm_start,
        "costs": [costs.fee, costs.slippage, costs.maintenance_margin],
        "risk": (risk or RiskSettings()).model_dump(mode="json"),
        "timeframe": timeframe,
        "engine": code_version(*ENGINE_MODULES),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass(frozen=True, eq=False)
class SearchContext:
    """What every split's search of one run reads: the bars, their arrays, the settings and where studies go."""

    bars: pd.DataFrame
    arrays: dict[str, np.ndarray]
    search: SearchConfig
    costs: Costs
    periods_per_year: float
    storage_url: str | None
    study_prefix: str
    risk: RiskSettings


@dataclass(frozen=True)
class SplitTask:
    """One split to search: its train window as bar positions, seed, fingerprint and fitted space."""

    split: Split
    i0: int
    i1: int
    seed: int
    fingerprint: str
    warm_start: dict | None
    space_cut: dict
    strategy: Strategy  # the space fitted to this split's train window (see fitted_space)


@dataclass
class SearchOutcome:
    params: pl.DataFrame   # one row per split
    ledger: pl.DataFrame   # one row per trial of every split
    daily: pl.DataFrame    # split, fingerprint, trial, day, return: every completed trial's daily train returns
    reused: int            # splits taken from the cache
    computed: int          # splits searched now
    persisted: int = 0     # studies written to the Optuna storage
    workers: int = 1       # processes that searched


def run_split(ctx: SearchContext, task: SplitTask) -> SearchResult:
    """Search one split and, when a storage is configured, persist its finished study from this process."""
    s, strategy = task.split, task.strategy
    res = search_split(ctx.bars, strategy, task.i0, task.i1, ctx.search, seed=task.seed, costs=ctx.costs,
                       periods_per_year=ctx.periods_per_year, risk=ctx.risk, warm_start=task.warm_start,
                       exclude=s.exclude, arrays=ctx.arrays)
    if ctx.storage_url:  # each worker writes its own finished study: the ORM work runs in parallel
        attrs = {"maestro_fingerprint": task.fingerprint, "strategy": strategy.name,
                 "strategy_code": strategy.code_version, "train_from": iso(s.train_start), "train_to": iso(s.train_end),
                 "test_from": iso(s.test_start), "test_to": iso(s.test_end), "settings": res.settings,
                 "libraries": library_versions("optuna", "vectorbt", "numba", "numpy", "pandas", "polars"),
                 "picked_trial": (int(res.ledger.loc[res.ledger["selected"], "trial"].iloc[0])
                                  if res.best_params is not None else None), "no_pick": res.note}
        res.persisted = persist_study(ctx.storage_url, f"{ctx.study_prefix}split{s.index}-{task.fingerprint}",
                                      res.trials, res.settings["objectives"], attrs)
        res.trials = []  # written: no need to ship them back to the parent
    return res


#: The context of a worker process, set once by the pool initializer (never in the parent process).
_worker_context: SearchContext | None = None


def _init_worker(ctx: SearchContext) -> None:
    global _worker_context
    _worker_context = ctx


def _worker_run(task: SplitTask) -> tuple[int, SearchResult]:
    assert _worker_context is not None, "the pool initializer sets the worker's context"
    return task.split.index, run_split(_worker_context, task)


def resolve_workers(requested: int | None, n_tasks: int) -> int:
    """``0``/None = one per CPU core; never more than there are splits to search."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    want = cores if not requested else int(requested)
    return max(1, min(want, n_tasks))


def _run_tasks(ctx: SearchContext, tasks: list[SplitTask], workers: int,
               done: Callable[[int, SearchResult], None]) -> dict[int, SearchResult]:
    """Search the splits, in forked worker processes when there is more than one worker; ``done`` hears of each
    finished split (in split order)."""
    out: dict[int, SearchResult] = {}
    if workers <= 1 or len(tasks) <= 1:
        for t in tasks:
            out[t.split.index] = run_split(ctx, t)
            done(t.split.index, out[t.split.index])
        return out
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=_init_worker, initargs=(ctx,)) as pool:
        for index, res in pool.map(_worker_run, tasks):
            out[index] = res
            done(index, res)
    return out


def _progress_line(index: int, n: int, res: SearchResult) -> str:
    trials = len(res.ledger)
    if res.best_params is None:
        return f"split {index + 1} of {n}: {trials} trials, no pick ({res.note})"
    return (f"split {index + 1} of {n}: {trials} trials, best {res.settings.get('objectives', ['value'])[0]} "
            f"{res.best_value:.4g} with {json.dumps(res.best_params, sort_keys=True)}")


def _param_row(s: Split, task: SplitTask, res: SearchResult, search: SearchConfig) -> dict[str, Any]:
    m = res.train_metrics
    return {
        "split": s.index,
        "train_start": s.train_start,
        "train_end": s.train_end,
        "test_start": s.test_start,
        "test_end": s.test_end,
        "params": json.dumps(res.best_params, sort_keys=True) if res.best_params is not None else "",
        "pick_note": res.note,
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
        "seed": int(task.seed),
        "sampler_settings": json.dumps(res.settings, sort_keys=True, default=str),
        "warm_start": json.dumps(task.warm_start, sort_keys=True) if task.warm_start else "",
        "space_cut": json.dumps(task.space_cut, sort_keys=True) if task.space_cut else "",
        "fingerprint": task.fingerprint,
    }


#: The look-ahead check before a search reads at most this many of the newest bars (it is a probe, not a backtest).
LOOKAHEAD_SAMPLE_BARS = 4000


def refuse_lookahead(strategy: Strategy, bars: pd.DataFrame) -> None:
    """Refuse (one line) to search a strategy whose signals read the future (``strategies.check_lookahead``)."""
    sample = bars.iloc[-max(LOOKAHEAD_SAMPLE_BARS, 4 * max_warmup(strategy)):]
    report = check_lookahead(strategy, sample)
    if not report.passed:
        raise MaestroError(f"{report.findings[0]}; research refuses to optimize it: a signal at bar t may use data "
                           "up to t's close only (run `maestro check-strategy` after fixing it)")


def optimize_splits(
    bars: pl.DataFrame,
    splits: list[Split],
    strategy_name: str,
    search: SearchConfig,
    costs: Costs,
    timeframe: str,
    previous: pl.DataFrame | None = None,
    previous_ledger: pl.DataFrame | None = None,
    previous_daily: pl.DataFrame | None = None,
    *,
    risk: RiskSettings | None = None,
    workers: int | None = None,
    storage_url: str | None = None,
    study_prefix: str = "",
    progress: Callable[[str], None] | None = None,
) -> SearchOutcome:
    """Search every split's train window; reuse a previous result whose fingerprint is unchanged (see module
    docstring). Finished studies are persisted to ``storage_url`` by the process that searched them. ``progress``
    hears one line per finished split (and one for the reused ones)."""
    say = progress or (lambda _line: None)
    strategy = get_strategy(strategy_name)
    pdf = to_pandas_bars(bars)
    refuse_lookahead(strategy, pdf)
    ts = bars["timestamp"].to_numpy()
    lookback = max(max_warmup(strategy), (risk or RiskSettings()).atr_window + 1)
    cache: dict[str, dict] = {}
    if previous is not None and previous.height and "fingerprint" in previous.columns:
        cache = {r["fingerprint"]: r for r in previous.iter_rows(named=True)}
    risk = risk or RiskSettings()
    ctx = SearchContext(pdf, bar_arrays(pdf, atr_window=risk.atr_window), search, costs, bars_per_year(timeframe),
                        storage_url, study_prefix, risk)
    if storage_url:
        prepare_storage(storage_url)

    def prepare(s: Split, warm_params: dict | None) -> SplitTask:
        i0, i1 = (int(x) for x in np.searchsorted(ts, [s.train_start, s.train_end]))
        if i1 - i0 < 2:
            raise MaestroError(f"split {s.index}: train window {iso(s.train_start)}..{iso(s.train_end)} has no bars")
        lo = max(0, i0 - lookback)
        fitted, cut = fitted_space(strategy, i1 - i0)
        if warm_params is not None:
            strategy_part, risk_part = split_params(warm_params, strategy)
            try:
                warm_params = {**fitted.check(strategy_part), **risk_part}
            except MaestroError:  # the previous pick is outside this window's space: start cold
                warm_params = None
        fp = search_fingerprint(s, bars_hash(bars.slice(lo, i1 - lo)), strategy, search, costs, timeframe,
                                {"warm_start": warm_params, "space_cut": cut} if (warm_params or cut) else None,
                                risk)
        return SplitTask(s, i0, i1, split_seed(search.seed, s), fp, warm_params, cut, fitted)

    results: dict[int, SearchResult] = {}
    tasks: dict[int, SplitTask] = {}
    reused_rows: dict[int, dict] = {}
    if search.warm_start:  # each split needs the previous one's pick: in order, in this process
        prev_pick: dict | None = None
        for s in splits:
            t = tasks[s.index] = prepare(s, prev_pick)
            if t.fingerprint in cache:
                reused_rows[s.index] = cache[t.fingerprint]
                prev_pick = json.loads(reused_rows[s.index]["params"]) if reused_rows[s.index]["params"] else prev_pick
            else:
                results[s.index] = run_split(ctx, t)
                say(_progress_line(s.index, len(splits), results[s.index]))
                best = results[s.index].best_params
                prev_pick = dict(best) if best is not None else prev_pick
        n_workers = 1
    else:
        for s in splits:
            t = tasks[s.index] = prepare(s, None)
            if t.fingerprint in cache:
                reused_rows[s.index] = cache[t.fingerprint]
        todo = [t for i, t in tasks.items() if i not in reused_rows]
        n_workers = resolve_workers(workers if workers is not None else search.workers, len(todo))
        say(f"{len(splits)} splits: {len(reused_rows)} reused (unchanged data, settings and code), {len(todo)} to "
            f"search with {search.n_trials} trials each on {n_workers} process(es)")
        results.update(_run_tasks(ctx, todo, n_workers,
                                  lambda i, r: say(_progress_line(i, len(splits), r))))

    rows, ledgers, dailies, persisted = [], [], [], 0
    for s in splits:
        t = tasks[s.index]
        fp = t.fingerprint
        if s.index in reused_rows:
            rows.append({**reused_rows[s.index], "split": s.index})
            for prev_t, out in ((previous_ledger, ledgers), (previous_daily, dailies)):
                if prev_t is not None and prev_t.height and "fingerprint" in prev_t.columns:
                    out.append(prev_t.filter(pl.col("fingerprint") == fp).with_columns(pl.lit(s.index).alias("split")))
            continue
        res = results[s.index]
        rows.append(_param_row(s, t, res, search))
        ledgers.append(pl.from_pandas(res.ledger.reset_index(drop=True)).with_columns(
            pl.lit(s.index).alias("split"), pl.lit(fp).alias("fingerprint")))
        if res.daily is not None and len(res.daily):
            dailies.append(pl.from_pandas(res.daily).with_columns(pl.lit(s.index).alias("split"),
                                                                  pl.lit(fp).alias("fingerprint")))
        persisted += int(res.persisted)
    params = pl.DataFrame(rows)
    ledger = pl.concat(ledgers, how="diagonal_relaxed") if ledgers else pl.DataFrame()
    daily = pl.concat(dailies, how="diagonal_relaxed") if dailies else pl.DataFrame()
    computed = len(splits) - len(reused_rows)
    return SearchOutcome(params, ledger, daily, len(reused_rows), computed, persisted, n_workers if computed else 0)
