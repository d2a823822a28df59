"""The engine and walk-forward rows: the compiled search path, the grid, the walk-forward, the lake read, the demo.

References (DESIGN §8): a hand-written numba loop (EMA cross, next-bar-open fills, all-in long/short, fees +
slippage — the same execution model as the engine) and, for the walk-forward, Optuna's in-memory TPE driving it.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import vectorbt as vbt
import yaml
from numba import njit

from ..config import SearchConfig, WalkForwardConfig
from ..durations import month_of
from ..engine import (
    Costs,
    RiskSpec,
    StopRule,
    bar_arrays,
    evaluate,
    evaluate_fast,
    evaluate_fast_run,
    grid_returns,
)
from ..instruments import Instrument
from ..lake import Lake
from ..schema import to_pandas_bars
from ..search import optimize_splits
from ..strategies import get_strategy
from ..timeframes import bars_per_year
from ..walkforward import make_splits
from .backfill import backfill_rows
from .catalog import catalog_rows
from .common import YEAR_START, Row, best_of, timed_graph, year_of_bars
from .data import file_ingest_rows, regime_memory_rows
from .stats import stats_rows
from .team import team_rows

__all__ = ["GRID", "ema_cross_loop", "run"]

GRID = [(f, s) for f in range(2, 42, 2) for s in range(42, 242, 4)]  # 20 x 50 = 1,000 combinations, all fast < slow


@njit(cache=True)
def _ema(x, span):
    """EMA as pandas ``ewm(span, adjust=False, min_periods=span)`` (and vectorbt's MA(ewm=True)): seeded with x[0]."""
    out = np.full(x.shape[0], np.nan)
    alpha = 2.0 / (span + 1.0)
    acc = x[0]
    for i in range(x.shape[0]):
        if i > 0:
            acc = (1.0 - alpha) * acc + alpha * x[i]
        if i >= span - 1:
            out[i] = acc
    return out


@njit(cache=True)
def ema_cross_loop(open_, close, fast, slow, fee, slip, start, end, init_cash):
    """Reference backtest: per-bar returns of an all-in EMA-cross long/short strategy on bars [start, end)."""
    f = _ema(close[:end], fast)
    s = _ema(close[:end], slow)
    rets = np.zeros(end - start)
    cash, units, prev_eq, trades = init_cash, 0.0, init_cash, 0
    for t in range(start, end):
        k = t - 1
        # the strategy's warm-up: no signal before bar 4 * slow (EMA seed weight < 0.03 %), as EmaCross does
        if t > start and k >= 4 * slow and not (math.isnan(f[k - 1]) or math.isnan(s[k - 1])):
            up = f[k] > s[k] and f[k - 1] <= s[k - 1]
            down = f[k] < s[k] and f[k - 1] >= s[k - 1]
            buy, sell = open_[t] * (1 + slip), open_[t] * (1 - slip)
            if up and units <= 0:
                if units < 0:
                    cash -= -units * buy * (1 + fee)
                units = cash / (buy * (1 + fee))
                cash = 0.0
                trades += 1
            elif down and units >= 0:
                if units > 0:
                    cash += units * sell * (1 - fee)
                units = -cash / (sell * (1 + fee))
                cash += -units * sell * (1 - fee)
                trades += 1
        eq = cash + units * close[t]
        rets[t - start] = eq / prev_eq - 1.0
        prev_eq = eq
    return rets, trades


@njit(cache=True)
def _sharpe(r, periods_per_year):
    n = r.shape[0]
    m = r.mean()
    sd = math.sqrt(((r - m) ** 2).sum() / (n - 1)) if n > 1 else 0.0
    return m / sd * math.sqrt(periods_per_year) if sd > 0 else 0.0



def _reference_walk_forward(open_, close, splits, ts, costs, periods_per_year, n_trials: int) -> None:
    """Optuna in-memory TPE (multivariate, seeded) driving the numba loop, one split after another."""
    for sp in splits:
        i0, i1 = (int(x) for x in np.searchsorted(ts, [sp.train_start, sp.train_end]))
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=42, multivariate=True))

        def objective(trial, i0=i0, i1=i1):
            f = trial.suggest_int("fast", 2, 60)
            s = trial.suggest_int("slow", 10, 240)
            if f >= s:
                raise optuna.TrialPruned()
            r, _ = ema_cross_loop(open_, close, f, s, costs.fee, costs.slippage, i0, i1, 10_000.0)
            return _sharpe(r, periods_per_year)

        study.optimize(objective, n_trials=n_trials)



def run(demo: bool = True, trials: int = 100, backfill: bool = True, catalog: bool = True) -> list[Row]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    bars = year_of_bars()
    pdf = to_pandas_bars(bars)
    o, c = pdf["open"].to_numpy(), pdf["close"].to_numpy()
    costs = Costs(0.001, 0.0005)
    strat = get_strategy("ema_cross")
    ppy = bars_per_year("1h")
    n = len(pdf)
    p0 = {"fast": 12, "slow": 26}
    rows: list[Row] = []

    # warm every path (numba compile / caches) before timing
    evaluate(pdf, strat, p0, 0, n, costs)
    evaluate_fast(pdf, strat, p0, 0, n, costs)
    ema_cross_loop(o, c, 12, 26, costs.fee, costs.slippage, 0, n, 10_000.0)
    grid_returns(pdf, strat, [{"fast": f, "slow": s} for f, s in GRID[:3]], 0, n, costs)

    ref = best_of(lambda: ema_cross_loop(o, c, 12, 26, costs.fee, costs.slippage, 0, n, 10_000.0), 50)
    arr = bar_arrays(pdf, atr_window=14)  # as the search extracts them once per run
    fast = best_of(lambda: evaluate_fast(pdf, strat, p0, 0, n, costs, arrays=arr), 20)
    vbt_one = best_of(lambda: evaluate(pdf, strat, p0, 0, n, costs))
    r_fast, t_fast = evaluate_fast(pdf, strat, p0, 0, n, costs)
    r_vbt = evaluate(pdf, strat, p0, 0, n, costs)
    r_ref, t_ref = ema_cross_loop(o, c, 12, 26, costs.fee, costs.slippage, 0, n, 10_000.0)
    same = (f"trades: Maestro {t_fast}, vectorbt {r_vbt.n_trades}, loop {t_ref}; max |equity gap| vs vectorbt "
            f"{float(np.max(np.abs(np.cumprod(1 + r_fast) - np.cumprod(1 + r_vbt.returns.to_numpy())))):.1e}, vs loop "
            f"{float(np.max(np.abs(np.cumprod(1 + r_fast) - np.cumprod(1 + r_ref)))):.1e} (x initial equity)")
    rows.append(Row("one backtest in the search path (signals + compiled simulation), EMA cross, 8,760 1h bars",
                    fast * 1e3, ref * 1e3, "ms", same))
    rows.append(Row("one backtest, vectorbt Portfolio.from_signals (the report engine)", vbt_one * 1e3, ref * 1e3, "ms",
                    "pandas-wrapped call: used once per test window, not per trial"))
    for label, risk in (("stop loss 3% + take profit 2 ATR", RiskSpec(StopRule(0.03), StopRule(2.0, "atr"))),
                        ("trailing stop 3%, half of equity", RiskSpec(trailing_stop=StopRule(0.03), fraction=0.5))):
        evaluate_fast_run(pdf, strat, p0, 0, n, costs, risk=risk, arrays=arr)
        t_plain = best_of(lambda: evaluate_fast_run(pdf, strat, p0, 0, n, costs, arrays=arr), 20)
        t_risk = best_of(lambda risk=risk: evaluate_fast_run(pdf, strat, p0, 0, n, costs, risk=risk, arrays=arr), 20)
        run_risk = evaluate_fast_run(pdf, strat, p0, 0, n, costs, risk=risk, arrays=arr)
        vbt_risk = evaluate(pdf, strat, p0, 0, n, costs, risk=risk)
        gap = float(np.max(np.abs(np.cumprod(1 + run_risk.returns) - np.cumprod(1 + vbt_risk.returns.to_numpy()))))
        rows.append(Row(f"one backtest in the search path with {label} (intrabar stops, liquidation)", t_risk * 1e3,
                        t_plain * 1e3, "ms", f"reference: the same search path without stops; exits {run_risk.exits}; "
                        f"max |equity gap| vs vectorbt with the same stops {gap:.1e}"))

    grid = [{"fast": f, "slow": s} for f, s in GRID]
    t_ours = best_of(lambda: grid_returns(pdf, strat, grid, 0, n, costs), 3)
    t_loop = best_of(lambda: [ema_cross_loop(o, c, f, s, costs.fee, costs.slippage, 0, n, 10_000.0)
                               for f, s in GRID], 3)
    rows.append(Row(f"grid backtests/s ({len(GRID):,} combinations, EMA cross)", len(GRID) / t_ours, len(GRID) / t_loop,
                    "bt/s", "reference: the numba loop per combination; higher is better (ratio >= 1 means faster)"))
    fast_w, slow_w = np.array([f for f, _ in GRID]), np.array([s for _, s in GRID])

    def vbt_broadcast():
        fma = vbt.MA.run(pdf["close"], window=fast_w, ewm=True, short_name="f")
        sma = vbt.MA.run(pdf["close"], window=slow_w, ewm=True, short_name="s")
        up, down = fma.ma_crossed_above(sma), fma.ma_crossed_below(sma)
        pf = vbt.Portfolio.from_signals(pdf["close"], entries=up.vbt.fshift(1, fill_value=False),
                                        exits=down.vbt.fshift(1, fill_value=False),
                                        short_entries=down.vbt.fshift(1, fill_value=False),
                                        short_exits=up.vbt.fshift(1, fill_value=False),
                                        price=pdf["open"].to_numpy()[:, None],
                                        fees=costs.fee, slippage=costs.slippage, init_cash=10_000.0, freq="1h")
        pf.sharpe_ratio()

    t_vbt = best_of(vbt_broadcast, 1)
    rows.append(Row("grid backtests/s, vectorbt's one-call broadcast (MA.run + from_signals + sharpe_ratio)",
                    len(GRID) / t_vbt, len(GRID) / t_loop, "bt/s", "the library's own fast path, for comparison"))

    wf = WalkForwardConfig(train="60d", test="30d", n_splits=10)
    splits, _ = make_splits(bars, "1h", wf)
    search = SearchConfig(n_trials=trials, seed=42, objective="sharpe", sampler="tpe", storage="none")
    ts = bars["timestamp"].to_numpy()
    t0 = time.perf_counter()
    _reference_walk_forward(o, c, splits, ts, costs, ppy, trials)
    ref_wf = time.perf_counter() - t0
    t0 = time.perf_counter()
    one = optimize_splits(bars, splits, "ema_cross", search, costs, "1h", workers=1)
    ours_1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    many = optimize_splits(bars, splits, "ema_cross", search, costs, "1h", workers=0)
    ours_n = time.perf_counter() - t0
    same_params = one.params["params"].to_list() == many.params["params"].to_list()
    rows.append(Row(f"walk-forward {len(splits)} splits x {trials} trials, 1 process", ours_1, ref_wf, "s",
                    "reference: Optuna in-memory TPE + numba loop, 1 process"))
    rows.append(Row(f"walk-forward {len(splits)} splits x {trials} trials, {many.workers} processes", ours_n, ref_wf,
                    "s",
                    f"same parameters as 1 process: {same_params}; trials in ledger {many.ledger.height}"))
    rows += stats_rows(ours_1 / len(splits), trials, bars)

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/optuna/studies.db"
        t0 = time.perf_counter()
        stored = optimize_splits(bars, splits, "ema_cross", search, costs, "1h", workers=0, storage_url=url)
        ours_p = time.perf_counter() - t0
    rows.append(Row(f"walk-forward {len(splits)} x {trials}, {stored.workers} processes, + studies persisted to SQLite",
                    ours_p, ref_wf, "s", f"{stored.persisted} studies / {stored.ledger.height:,} trials written by the "
                    "workers after each search, one transaction per study (goal <= 1.3x)"))
    rows += team_rows(trials)

    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(tmp)
        inst = Instrument("synthetic", "BTC/USDT", "1h", YEAR_START.date())
        for month in sorted({month_of(int(t)) for t in ts}):
            lake.write_table(bars.filter(pl.col("datetime").dt.strftime("%Y-%m") == month),
                             "validated_bars", Lake.month_partition(inst, month))
        single = Path(tmp) / "one.parquet"
        bars.write_parquet(single)
        ours_read = best_of(lambda: lake.read_bars(inst), 10)
        ref_read = best_of(lambda: pl.read_parquet(single), 10)
    rows.append(Row("read 1 year of 1h bars from the lake (12 monthly files)", ours_read * 1e3, ref_read * 1e3, "ms",
                    "reference: one Parquet file with polars"))

    rows += file_ingest_rows()
    if backfill:
        rows.extend(backfill_rows())

    if demo:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = yaml.safe_load(Path("maestro.yaml").read_text())
            cfg["lake_root"] = str(Path(tmp) / "lake")
            p = Path(tmp) / "maestro.yaml"
            p.write_text(yaml.safe_dump(cfg))
            total, result = timed_graph(p, Path(tmp) / "home")
            timings = result.timings
        rows.append(Row("make demo graph (default maestro.yaml)", total, None, "s",
                        "stages: " + json.dumps({k: round(v, 1) for k, v in timings.items()})))
    rows.extend(regime_memory_rows())
    if catalog:
        rows.extend(catalog_rows(trials))
    return rows

