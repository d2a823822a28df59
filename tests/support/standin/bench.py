"""Fetch throughput from the stand-in and the fault matrix, printed as tables.

    NUMBA_CACHE_DIR=.venv/numba_cache .venv/bin/python -m tests.support.standin.bench        # synthetic replay
    MAESTRO_DATASETS=../shared/datasets .venv/bin/python -m tests.support.standin.bench     # + real 1m replay

Throughput is the whole client path: ccxt request + JSON parse + Maestro's loop and frame building, against a
server in the same machine (so it measures the client and the stand-in, not an exchange's latency).
"""

from __future__ import annotations

import os
import time

from maestro_pipeline.errors import MaestroError
from maestro_pipeline.market import CcxtSource, RetryPolicy, clear_market_cache

from . import FAULTS, real_listing, start, synthetic_listings

DAY = 86_400_000


def _source(si, **over) -> CcxtSource:
    kw = dict(url_override=si.url, now_ms=si.now_ms, timeout_ms=2000,
              retry=RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05, max_total_s=10))
    kw.update(over)
    return CcxtSource("binance", **kw)


def throughput(si, symbol: str, tf: str, since: int, until: int, label: str, **over) -> None:
    src = _source(si, **over)
    src.load_markets()
    t = time.perf_counter()
    df = src.fetch(symbol, tf, since, until)
    dt = time.perf_counter() - t
    pages = src.stats["ohlcv_pages"]
    print(f"| {label} | {pages} | {df.height:,} | {dt:.2f} | {pages / dt:.1f} | {df.height / dt:,.0f} |")


def fault_matrix(si) -> None:
    print("\n| fault (next kline request) | outcome | retries | kline requests |")
    print("|---|---|---|---|")
    si.slow_s = 3.0
    for fault in FAULTS:
        src = _source(si, rate_limit_ms=0)
        src.load_markets()
        n0 = si.count("/klines")
        si.inject(fault)
        try:
            df = src.fetch("BTC/USDT", "1h", si.now_ms - 10 * DAY, si.now_ms)
            outcome = f"retried, {df.height} bars (complete)"
        except MaestroError as e:
            outcome = f"{type(e).__name__}: {str(e)[:110]}…"
        si.clear_faults()
        print(f"| {fault} | {outcome} | {src.stats['retries']} | {si.count('/klines') - n0} |")


def main() -> None:
    si = start(synthetic_listings())
    clear_market_cache()
    now = si.now_ms
    print("| run | pages | bars | seconds | pages/s | bars/s |")
    print("|---|---|---|---|---|---|")
    try:
        throughput(si, "BTC/USDT", "1m", now - 30 * DAY, now, "synthetic 1m, 30 days, limiter off", rate_limit_ms=0)
        throughput(si, "BTC/USDT", "1m", now - 10 * DAY, now, "synthetic 1m, 10 days, binance rateLimit (50 ms)")
        throughput(si, "BTC/USDT", "1h", now - 365 * DAY, now, "synthetic 1h, 1 year, limiter off", rate_limit_ms=0)
        throughput(si, "BTC/USDT", "1h", now - 365 * DAY, now, "synthetic 1h, 1 year, 100/page, limiter off",
                   rate_limit_ms=0, page_limit=100)
        if os.environ.get("MAESTRO_DATASETS"):
            import polars as pl

            lst = real_listing("BTC/USDT:USDT", "nt_ftx_btcperp_1m.parquet")
            rsi = start([lst], now_ms=int(lst.bars["timestamp"][-1]) + 60_000)
            clear_market_cache()
            try:
                lo = int(lst.bars["timestamp"][0])
                throughput(rsi, "BTC/USDT:USDT", "1m", lo, rsi.now_ms, "real FTX 1m perp (45,031 bars), limiter off",
                           rate_limit_ms=0)
                throughput(rsi, "BTC/USDT:USDT", "1m", lo, rsi.now_ms,
                           "real FTX 1m perp, 1000/page, limiter off", rate_limit_ms=0, page_limit=1000)
            finally:
                rsi.close()
                del pl
        clear_market_cache()
        fault_matrix(si)
    finally:
        si.close()


if __name__ == "__main__":
    main()
