"""Bench rows of the data stages: a file imported and validated end to end, and the regimes' memory on 1m bars."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl

from ..durations import month_bounds
from ..instruments import Instrument
from ..lake import Lake
from ..market import FileSource, SyntheticMarket, clear_file_cache, ingest_months, instrument_months
from ..quality import Policy
from ..quality import evaluate as evaluate_contract
from ..timeframes import DAY_MS, HOUR_MS
from .common import YEAR_START, Row, best_of, year_of_bars

__all__ = ["file_ingest_rows", "regime_memory_rows"]


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
            ref = best_of(lambda path=path: pl.read_csv(path), 5)
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


