"""``make bench``: Maestro's speed beside references measured in the same run, on the same data.

Data: one year of 1h bars (8,760) from the embedded market. References (DESIGN §8): a hand-written numba loop
(EMA cross, next-bar-open fills, all-in long/short, fees + slippage — the same execution model as the engine)
and, for the walk-forward, Optuna's in-memory TPE driving that loop. A year of 1m bars (525,600) goes through the
walk_forward_splits step with regimes on, beside the same step with regimes off, each in a fresh subprocess (time
and peak memory). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import optuna
import polars as pl
import vectorbt as vbt
import yaml
from numba import njit
from optuna.storages.journal import JournalFileBackend

from .bench_backfill import backfill_figures
from .cli import ensure_dagster_home, run_graph, tiny_run_seconds
from .config import SearchConfig, WalkForwardConfig, load_config
from .durations import month_bounds, month_of
from .engine import (
    Costs,
    RiskSpec,
    StopRule,
    bar_arrays,
    evaluate,
    evaluate_fast,
    evaluate_fast_run,
    grid_returns,
)
from .instruments import Instrument
from .lake import Lake
from .market import FileSource, SyntheticMarket, clear_file_cache, ingest_months, instrument_months
from .quality import Policy
from .quality import evaluate as evaluate_contract
from .schema import to_pandas_bars
from .search import clear_storage_cache, normalize_storage_url, optimize_splits, persist_study
from .strategies import get_strategy
from .timeframes import DAY_MS, HOUR_MS, bars_per_year
from .walkforward import make_splits

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)


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


@dataclass
class Row:
    what: str
    ours: float
    reference: float | None  # None: nothing comparable was measured
    unit: str
    note: str = ""

    def line(self) -> str:
        if self.reference is None:
            return f"| {self.what} | {self.ours:,.3f} {self.unit} | — | — | {self.note} |"
        ratio = self.ours / self.reference if self.reference else float("nan")
        return (f"| {self.what} | {self.ours:,.3f} {self.unit} | {self.reference:,.3f} {self.unit} | {ratio:,.2f}x "
                f"| {self.note} |")


def _best_of(fn, repeat: int = 5) -> float:
    """The fastest of ``repeat`` calls, with the garbage collector paused as ``timeit`` does (a collection of the
    bench's own objects is not the code under test)."""
    best = float("inf")
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
    finally:
        if was_enabled:
            gc.enable()
    return best


def year_of_bars() -> pl.DataFrame:
    since = int(YEAR_START.timestamp() * 1000)
    m = SyntheticMarket(seed=7, now_ms=since + 400 * 24 * HOUR_MS)
    return m.fetch("BTC/USDT", "1h", since, since + 365 * 24 * HOUR_MS)


GRID = [(f, s) for f in range(2, 42, 2) for s in range(42, 242, 4)]  # 20 x 50 = 1,000 combinations, all fast < slow


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


def backfill_rows() -> list[Row]:
    """48 bar partitions through Dagster's own paths against the demo's bar stage (see ``bench_backfill``)."""
    f = backfill_figures()
    n = int(f["partitions"])
    return [
        Row(f"bar backfill, {n} month x instrument partitions: dagster asset materialize --partition-range "
            "(one run, fresh process)", f["range_cli"], f["demo"], "s",
            "reference: maestro demo's bar stage on the same partitions, in process (one run per instrument)"),
        Row(f"bar backfill without a BackfillPolicy: one dagster process per partition (x{n}, from a sample)",
            f["per_partition_cli"] * n, f["demo"], "s",
            f"{f['per_partition_cli']:.1f} s per partition; reference as above"),
    ]


def run(demo: bool = True, trials: int = 100, backfill: bool = True) -> list[Row]:
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

    ref = _best_of(lambda: ema_cross_loop(o, c, 12, 26, costs.fee, costs.slippage, 0, n, 10_000.0), 50)
    arr = bar_arrays(pdf, atr_window=14)  # as the search extracts them once per run
    fast = _best_of(lambda: evaluate_fast(pdf, strat, p0, 0, n, costs, arrays=arr), 20)
    vbt_one = _best_of(lambda: evaluate(pdf, strat, p0, 0, n, costs))
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
        t_plain = _best_of(lambda: evaluate_fast_run(pdf, strat, p0, 0, n, costs, arrays=arr), 20)
        t_risk = _best_of(lambda risk=risk: evaluate_fast_run(pdf, strat, p0, 0, n, costs, risk=risk, arrays=arr), 20)
        run_risk = evaluate_fast_run(pdf, strat, p0, 0, n, costs, risk=risk, arrays=arr)
        vbt_risk = evaluate(pdf, strat, p0, 0, n, costs, risk=risk)
        gap = float(np.max(np.abs(np.cumprod(1 + run_risk.returns) - np.cumprod(1 + vbt_risk.returns.to_numpy()))))
        rows.append(Row(f"one backtest in the search path with {label} (intrabar stops, liquidation)", t_risk * 1e3,
                        t_plain * 1e3, "ms", f"reference: the same search path without stops; exits {run_risk.exits}; "
                        f"max |equity gap| vs vectorbt with the same stops {gap:.1e}"))

    grid = [{"fast": f, "slow": s} for f, s in GRID]
    t_ours = _best_of(lambda: grid_returns(pdf, strat, grid, 0, n, costs), 3)
    t_loop = _best_of(lambda: [ema_cross_loop(o, c, f, s, costs.fee, costs.slippage, 0, n, 10_000.0)
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

    t_vbt = _best_of(vbt_broadcast, 1)
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
        ours_read = _best_of(lambda: lake.read_bars(inst), 10)
        ref_read = _best_of(lambda: pl.read_parquet(single), 10)
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
            old_home = os.environ.get("DAGSTER_HOME")
            os.environ["DAGSTER_HOME"] = str(Path(tmp) / "home")
            try:
                ensure_dagster_home(load_config(p))
                t0 = time.perf_counter()
                timings = run_graph(p, log=lambda *_: None).timings
                total = time.perf_counter() - t0
            finally:
                if old_home is None:
                    os.environ.pop("DAGSTER_HOME", None)
                else:
                    os.environ["DAGSTER_HOME"] = old_home
        rows.append(Row("make demo graph (default maestro.yaml)", total, None, "s",
                        "stages: " + json.dumps({k: round(v, 1) for k, v in timings.items()})))
    rows.extend(regime_memory_rows())
    return rows


def _candle_csv(path: Path, n: int, step_ms: int, start_ms: int) -> None:
    """A real-looking candle CSV (ISO dates, a random walk) written by polars."""
    rng = np.random.default_rng(5)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    wick = np.abs(rng.normal(0, 0.004, n)) * close
    ts = start_ms + step_ms * np.arange(n, dtype=np.int64)
    pl.DataFrame({"date": pl.Series(ts).cast(pl.Datetime("ms")).dt.strftime("%Y-%m-%d %H:%M:%S"),
                  "open": open_, "high": np.maximum(open_, close) + wick, "low": np.minimum(open_, close) - wick,
                  "close": close, "volume": rng.gamma(2.0, 50.0, n)}).write_csv(path)


def file_ingest_rows() -> list[Row]:
    """Issue 14: a file imported and validated end to end (read once, every month ingested from that one read,
    every month through the contract), against reading the same file with polars."""
    rows: list[Row] = []
    start = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)
    with tempfile.TemporaryDirectory() as tmp:
        evaluate_contract(year_of_bars().head(48), "1h")  # build the great-expectations suites once (not per file)
        for label, tf, step, n in (("5-year daily file", "1d", 24 * HOUR_MS, 5 * 365 + 1),
                                   ("2-year 1h file", "1h", HOUR_MS, 2 * 8_760)):
            path = Path(tmp) / f"bars_{tf}.csv"
            _candle_csv(path, n, step, start)
            ref = _best_of(lambda path=path: pl.read_csv(path), 5)
            clear_file_cache()
            t0 = time.perf_counter()
            src = FileSource(path, name="bench")
            inst = Instrument("file_bench", "BTC/USD", tf, date(2020, 1, 1))
            months = instrument_months(src, inst, int(time.time() * 1000))
            got = ingest_months(src, inst, months, {}, int(time.time() * 1000))
            t_ingest = time.perf_counter() - t0
            blocked = 0
            for m in months:
                lo, hi = month_bounds(m)
                blocked += evaluate_contract(got[m].bars, tf, Policy.default(), start_ms=lo, end_ms=hi).blocked
            total = time.perf_counter() - t0
            rows.append(Row(f"{label} ({n:,} bars, {len(months)} months) imported and validated end to end", total,
                            ref, "s", f"reference: pl.read_csv of the same file; import alone {t_ingest:.2f} s "
                            f"(one read for all months), contract {total - t_ingest:.2f} s; {blocked} month(s) "
                            "blocked"))
    return rows


# ------------------------------------------------------------------------------- walk_forward_splits on 1m bars

#: Run in a fresh interpreter that imports only what the walk_forward_splits step imports (not this module's
#: vectorbt/optuna), so its peak RSS is the step's process. argv: lake root, "on"/"off". Prints one JSON line.
_SPLITS_STEP_SCRIPT = """
import json, resource, sys, time, tracemalloc
from datetime import date
import hmmlearn.hmm  # imported before timing: the step's cost, not an import's
from maestro_pipeline.config import RegimesConfig, WalkForwardConfig
from maestro_pipeline.instruments import Instrument
from maestro_pipeline.lake import Lake
from maestro_pipeline.walkforward import plan_research, research_bars

inst = Instrument("synthetic", "BTC/USDT", "1m", date(2025, 1, 1))
wf = WalkForwardConfig(train="120d", test="30d", n_splits=6)
regimes = RegimesConfig(enabled=sys.argv[2] == "on")

def step():
    bars = research_bars(Lake(sys.argv[1]), inst, with_derivatives=False)
    return bars.height, plan_research(bars, "1m", wf, regimes=regimes)

t0 = time.perf_counter()
n_bars, (splits, table, _) = step()
seconds = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
tracemalloc.start()  # numpy and pandas report their buffers to tracemalloc; polars' Rust allocator does not
step()
traced = tracemalloc.get_traced_memory()[1] / 2**20
tracemalloc.stop()
labelled = int(table["train_regime"].is_not_null().sum())
print(json.dumps({"seconds": seconds, "rss_mb": rss, "traced_mb": traced, "bars": n_bars, "splits": len(splits),
                  "labelled": labelled}))
"""


def regime_memory_rows(days: int = 365) -> list[Row]:
    """A year of 1m bars (525,600) through the walk_forward_splits step with regimes on, beside the same step with
    regimes off as the reference, each in a fresh subprocess (so one's peak memory cannot hide in the other's)."""
    since = int(YEAR_START.timestamp() * 1000)
    bars = SyntheticMarket(seed=7, now_ms=since + (days + 2) * DAY_MS).fetch("BTC/USDT", "1m", since,
                                                                         since + days * DAY_MS)
    inst = Instrument("synthetic", "BTC/USDT", "1m", YEAR_START.date())
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(tmp)
        months = bars["datetime"].dt.strftime("%Y-%m")
        for month in months.unique().sort().to_list():
            lake.write_table(bars.filter(months == month), "validated_bars", Lake.month_partition(inst, month))
        out = {}
        for on in (True, False):
            proc = subprocess.run([sys.executable, "-c", _SPLITS_STEP_SCRIPT, tmp, "on" if on else "off"],
                                  capture_output=True, text=True, check=True,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
            out[on] = json.loads(proc.stdout.strip().splitlines()[-1])
    on, off = out[True], out[False]
    what = f"walk_forward_splits step, {on['bars']:,} 1m bars ({days} days), {on['splits']} splits, regimes on"
    return [
        Row(what + ": time", on["seconds"], off["seconds"], "s",
            f"reference: the same step with regimes off; {on['labelled']} of {on['splits']} splits got a regime"),
        Row(what + ": peak traced memory", on["traced_mb"], off["traced_mb"], "MB",
            f"tracemalloc peak of the step; process peak RSS {on['rss_mb']:,.0f} MB vs {off['rss_mb']:,.0f} MB "
            "(imports included: hmmlearn and scikit-learn ~90 MB)"),
    ]


def _bench_trials(n: int) -> list:
    study = optuna.create_study(directions=["maximize"], sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(t):
        t.set_user_attr("trades", t.suggest_int("fast", 2, 50) % 9)
        return t.suggest_float("slow_ratio", 1.1, 5.0)

    study.optimize(objective, n_trials=n)
    return study.trials


def team_rows(trials: int = 100, studies: int = 5) -> list[Row]:
    """Optuna persistence per trial: Maestro's one transaction per study, against Optuna's own ``add_trials``
    (a commit per trial) on SQLite and against journal-file storage (the local alternative optuna-dashboard also
    opens); and, when ``MAESTRO_BENCH_POSTGRES`` names a PostgreSQL database (``postgresql://user@host:port/db``),
    the per-run overhead of a Dagster instance on PostgreSQL against SQLite."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    made = _bench_trials(trials)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        url = f"sqlite:///{tmp}/ours.db"
        persist_study(url, "warm", made, ["sharpe"], {})
        t0 = time.perf_counter()
        for i in range(studies):
            persist_study(url, f"s{i}", made, ["sharpe"], {"seed": i})
        ours = (time.perf_counter() - t0) / (studies * trials)
        clear_storage_cache()

        def optuna_add_trials(storage) -> float:
            optuna.create_study(storage=storage, study_name="warm").add_trials(made[:5])
            t0 = time.perf_counter()
            for i in range(studies):
                study = optuna.create_study(storage=storage, study_name=f"s{i}", directions=["maximize"])
                study.set_metric_names(["sharpe"])
                study.add_trials(made)
            return (time.perf_counter() - t0) / (studies * trials)

        rdb = optuna_add_trials(optuna.storages.RDBStorage(f"sqlite:///{tmp}/optuna.db"))
        journal = optuna_add_trials(optuna.storages.JournalStorage(JournalFileBackend(f"{tmp}/journal.log")))
    rows.append(Row(f"persist a {trials}-trial study to SQLite, per trial: one transaction (Maestro)", ours * 1e3,
                    rdb * 1e3, "ms", "reference: Optuna's study.add_trials on the same SQLite storage (a commit per "
                    "trial)"))
    rows.append(Row(f"persist a {trials}-trial study, per trial: journal file (Optuna add_trials)", journal * 1e3,
                    ours * 1e3, "ms", "reference: Maestro's SQLite transaction; the journal is optuna-dashboard's "
                    "other local format, but cannot make a study atomic"))
    pg = os.environ.get("MAESTRO_BENCH_POSTGRES")
    if pg:
        rows.append(_instance_overhead_row(pg))
    return rows


def _instance_overhead_row(pg_url: str, runs: int = 10) -> Row:
    """Wall time of one tiny run (one asset, one partition-free materialization) on each instance storage."""
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        Path(a, "dagster.yaml").write_text("telemetry: {enabled: false}\n")
        Path(b, "dagster.yaml").write_text(yaml.safe_dump({"telemetry": {"enabled": False}, "storage": {
            "postgres": {"postgres_url": normalize_storage_url(pg_url)}}}))
        sqlite, postgres = tiny_run_seconds(a, runs), tiny_run_seconds(b, runs)
    return Row("one Dagster run (1 asset), instance storage PostgreSQL", postgres, sqlite, "s",
               f"reference: SQLite instance storage; mean of {runs} runs each")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-demo", action="store_true", help="skip timing the whole demo graph (~2-3 min)")
    parser.add_argument("--no-backfill", action="store_true", help="skip the 48-partition bar backfill (~2 min)")
    parser.add_argument("--trials", type=int, default=100, help="trials per split of the walk-forward (default 100)")
    args = parser.parse_args()
    rows = run(demo=not args.no_demo, trials=args.trials, backfill=not args.no_backfill)
    print("| measurement | Maestro | reference | ratio | note |\n|---|---|---|---|---|")
    for r in rows:
        print(r.line())


if __name__ == "__main__":
    main()
