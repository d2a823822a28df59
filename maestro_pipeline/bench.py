"""``make bench``: Maestro's speed beside references measured in the same run, on the same data.

Data: one year of 1h bars (8,760) from the embedded market. References (DESIGN §8): a hand-written numba loop
(EMA cross, next-bar-open fills, all-in long/short, fees + slippage — the same execution model as the engine)
and, for the walk-forward, Optuna's in-memory TPE driving that loop. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import optuna
import polars as pl
from numba import njit

from .backtest import Costs, evaluate
from .config import WalkForwardConfig
from .ingest import month_of
from .instruments import Instrument
from .lake import Lake
from .market import SyntheticMarket
from .research import make_splits, optimize_splits
from .schema import to_pandas_bars
from .strategies import get_strategy
from .timeframes import HOUR_MS, bars_per_year

YEAR_START = datetime(2025, 1, 1, tzinfo=timezone.utc)


@njit(cache=True)
def _ema(x, span):
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] < span:
        return out
    alpha = 2.0 / (span + 1.0)
    acc = 0.0
    for i in range(span):  # seeded with the mean of the first window, then recursive
        acc += x[i]
    acc /= span
    out[span - 1] = acc
    for i in range(span, x.shape[0]):
        acc = alpha * x[i] + (1.0 - alpha) * acc
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
        if t > start and k >= 1 and not (math.isnan(f[k - 1]) or math.isnan(s[k - 1])):
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
def _sharpe(r, ppy):
    n = r.shape[0]
    m = r.mean()
    sd = math.sqrt(((r - m) ** 2).sum() / (n - 1)) if n > 1 else 0.0
    return m / sd * math.sqrt(ppy) if sd > 0 else 0.0


@dataclass
class Row:
    what: str
    ours: float
    reference: float
    unit: str
    note: str = ""

    def line(self) -> str:
        ratio = self.ours / self.reference if self.reference else float("nan")
        return f"| {self.what} | {self.ours:,.3f} {self.unit} | {self.reference:,.3f} {self.unit} | {ratio:,.2f}x | {self.note} |"


def _best_of(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def year_of_bars() -> pl.DataFrame:
    since = int(YEAR_START.timestamp() * 1000)
    m = SyntheticMarket(seed=7, now_ms=since + 400 * 24 * HOUR_MS)
    return m.fetch("BTC/USDT", "1h", since, since + 365 * 24 * HOUR_MS)


def run(demo: bool = False) -> list[Row]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bars = year_of_bars()
    pdf = to_pandas_bars(bars)
    o, c = pdf["open"].to_numpy(), pdf["close"].to_numpy()
    costs = Costs(0.001, 0.0005)
    strat = get_strategy("ema_cross")
    ppy = bars_per_year("1h")
    n = len(pdf)
    rows: list[Row] = []

    # warm both paths (numba compile / vectorbt caches) before timing
    evaluate(pdf, strat, {"fast": 12, "slow": 26}, 0, n, costs)
    ema_cross_loop(o, c, 12, 26, costs.fee, costs.slippage, 0, n, 10_000.0)

    ours = _best_of(lambda: evaluate(pdf, strat, {"fast": 12, "slow": 26}, 0, n, costs))
    ref = _best_of(lambda: ema_cross_loop(o, c, 12, 26, costs.fee, costs.slippage, 0, n, 10_000.0), 50)
    r_ours = evaluate(pdf, strat, {"fast": 12, "slow": 26}, 0, n, costs)
    r_ref, t_ref = ema_cross_loop(o, c, 12, 26, costs.fee, costs.slippage, 0, n, 10_000.0)
    same = f"trades ours {r_ours.n_trades} / loop {t_ref}; final equity ratio {float(np.prod(1 + r_ours.returns.to_numpy()) / np.prod(1 + r_ref)):.4f}"
    rows.append(Row("one backtest, EMA cross, 8,760 1h bars", ours * 1e3, ref * 1e3, "ms", same))

    combos = [(f, s) for f in range(2, 62, 2) for s in range(12, 241, 7) if f < s][:1000]
    t0 = time.perf_counter()
    for f, s in combos[:100]:
        evaluate(pdf, strat, {"fast": f, "slow": s}, 0, n, costs)
    ours_rate = 100 / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for f, s in combos:
        ema_cross_loop(o, c, f, s, costs.fee, costs.slippage, 0, n, 10_000.0)
    ref_rate = len(combos) / (time.perf_counter() - t0)
    rows.append(Row(f"grid backtests/s ({len(combos)} combos; ours timed on 100)", ours_rate, ref_rate, "bt/s",
                    "higher is better: ratio < 1 means slower"))

    wf = WalkForwardConfig(train="60d", test="30d", n_splits=10)
    splits, _ = make_splits(bars, "1h", wf)
    search = type("Search", (), {"n_trials": 100, "seed": 42, "objective": "sharpe", "sampler": "tpe"})()
    t0 = time.perf_counter()
    optimize_splits(bars, splits, "ema_cross", search, costs, "1h")
    ours_wf = time.perf_counter() - t0
    ts = bars["timestamp"].to_numpy()

    def reference_wf() -> None:
        for sp in splits:
            i0, i1 = (int(x) for x in np.searchsorted(ts, [sp.train_start, sp.train_end]))
            sampler = optuna.samplers.TPESampler(seed=42, multivariate=True)
            study = optuna.create_study(direction="maximize", sampler=sampler)

            def objective(trial):
                f = trial.suggest_int("fast", 2, 60)
                s = trial.suggest_int("slow", 10, 240)
                if f >= s:
                    raise optuna.TrialPruned()
                r, _ = ema_cross_loop(o, c, f, s, costs.fee, costs.slippage, i0, i1, 10_000.0)
                return _sharpe(r, ppy)

            study.optimize(objective, n_trials=100)

    t0 = time.perf_counter()
    reference_wf()
    ref_wf = time.perf_counter() - t0
    rows.append(Row("walk-forward 10 splits x 100 trials (Optuna TPE)", ours_wf, ref_wf, "s",
                    "reference: Optuna in-memory TPE + numba loop"))

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

    if demo:
        from .cli import ensure_dagster_home, run_graph

        with tempfile.TemporaryDirectory() as tmp:
            import yaml

            cfg = yaml.safe_load(Path("maestro.yaml").read_text())
            cfg["lake_root"] = str(Path(tmp) / "lake")
            p = Path(tmp) / "maestro.yaml"
            p.write_text(yaml.safe_dump(cfg))
            import os

            os.environ["DAGSTER_HOME"] = str(Path(tmp) / "home")
            ensure_dagster_home()
            t0 = time.perf_counter()
            timings = run_graph(p, log=lambda *_: None)
            total = time.perf_counter() - t0
        rows.append(Row("make demo graph (default maestro.yaml)", total, total, "s", json.dumps({k: round(v, 1) for k, v in timings.items()})))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", action="store_true", help="also time the whole demo graph (~2-3 min)")
    args = parser.parse_args()
    rows = run(demo=args.demo)
    print("| measurement | Maestro | reference | ratio | note |\n|---|---|---|---|---|")
    for r in rows:
        print(r.line())


if __name__ == "__main__":
    main()
