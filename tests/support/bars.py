"""The bars the tests build, in one place: pandas OHLCV frames on a naive UTC index (what research code takes)
and polars frames in the bar schema (what the lake holds).

Every factory is deterministic: a seed (or a caller's ``np.random.Generator``) and the same draws in the same
order, so a test that pins exact values keeps its data. Prices are random walks ``100 * exp(cumsum(N(0, vol)))``
unless said otherwise; ``wick`` widens high/low to ``max(open, close) * (1 + wick)`` and
``min(open, close) * (1 - wick)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl

from maestro_pipeline.market import SyntheticMarket
from maestro_pipeline.schema import conform, to_pandas_bars
from maestro_pipeline.timeframes import DAY_MS, HOUR_MS

__all__ = [
    "T2025_MS", "bars_from_close", "clean_bars", "flat_bars", "hourly_index", "random_close", "random_walk",
    "ramp_bars", "regime_bars", "schema_bars", "random_schema_bars", "synthetic_bars", "with_derivatives",
]

#: 2025-01-01 00:00 UTC, where the walk-forward tests start their markets.
T2025_MS = 1_735_689_600_000
#: 2023-11-14 22:13:20 UTC, the first bar of :func:`schema_bars`.
SCHEMA_T0_MS = 1_700_000_000_000


def random_close(n: int, rng: np.random.Generator, vol: float | np.ndarray = 0.01) -> np.ndarray:
    """``n`` closes of a random walk from 100: ``vol`` is the per-bar log-return volatility (or one per bar)."""
    return 100 * np.exp(np.cumsum(rng.normal(0, vol, n)))


# ----------------------------------------------------------------------------- pandas, naive UTC index


def hourly_index(n: int, start: str = "2024-01-01", unit: str | None = None,
                 name: str | None = None) -> pd.DatetimeIndex:
    """``n`` hourly timestamps from ``start`` (naive UTC)."""
    return pd.date_range(start, periods=n, freq="h", unit=unit, name=name)


def bars_from_close(close: np.ndarray, open_: np.ndarray | None = None, *, wick: float = 0.0,
                    index: pd.Index | None = None) -> pd.DataFrame:
    """OHLCV around ``close`` (volume 1); without ``open_`` and ``wick`` every bar is flat at its close.

    ``index`` defaults to :func:`hourly_index` from 2024-01-01."""
    open_ = close if open_ is None else open_
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * (1 + wick),
                         "low": np.minimum(open_, close) * (1 - wick), "close": close, "volume": 1.0},
                        index=hourly_index(len(close)) if index is None else index)


def random_walk(n: int, seed: int | None = None, *, rng: np.random.Generator | None = None, vol: float = 0.01,
                open_noise: float = 0.001, wick: float = 0.0, start: str = "2024-01-01", unit: str | None = None,
                name: str | None = None) -> pd.DataFrame:
    """Hourly random-walk bars: each open is the previous close times ``1 + N(0, open_noise)`` (drawn after the
    closes, from the same generator; none when ``open_noise`` is 0)."""
    rng = np.random.default_rng(seed) if rng is None else rng
    close = random_close(n, rng, vol)
    open_ = np.r_[close[0], close[:-1]]
    if open_noise:
        open_ = open_ * (1 + rng.normal(0, open_noise, n))
    return bars_from_close(close, open_, wick=wick, index=hourly_index(n, start, unit, name))


def schema_bars(close: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """OHLCV on a naive hourly index from :data:`SCHEMA_T0_MS`, built through the project's own polars -> pandas
    path (``to_pandas_bars``): opens are the previous close times ``1 + N(0, 0.002)`` from a fresh
    ``default_rng(seed)``, wicks 0.1 %."""
    rng = np.random.default_rng(seed)
    n = len(close)
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.002, n))
    ts = SCHEMA_T0_MS + np.arange(n, dtype=np.int64) * HOUR_MS
    return to_pandas_bars(pl.DataFrame({"timestamp": ts, "open": open_, "high": np.maximum(open_, close) * 1.001,
                                        "low": np.minimum(open_, close) * 0.999, "close": close,
                                        "volume": np.ones(n)}))


def random_schema_bars(n: int, seed: int) -> pd.DataFrame:
    """:func:`schema_bars` of a 1 %-volatility random walk (``default_rng(seed)``; the opens reuse the seed)."""
    return schema_bars(random_close(n, np.random.default_rng(seed)), seed)


def with_derivatives(bars: pd.DataFrame, seed: int = 1, *, funding_sd: float = 3e-4, forward_fill: bool = True,
                     open_interest: float = 1e6, mark_sd: float = 2e-4, index_sd: float = 5e-4) -> pd.DataFrame:
    """``bars`` plus plausible perpetual-swap columns: a funding rate ``N(1e-4, funding_sd)`` set every 8 bars
    (forward-filled from past settlements only, or NaN between them), open interest as a random walk from
    ``open_interest``, mark and index prices as the close with relative noise ``mark_sd`` / ``index_sd``."""
    rng = np.random.default_rng(seed)
    n = len(bars)
    close = bars["close"].to_numpy()
    rate = np.full(n, np.nan)
    rate[::8] = rng.normal(1e-4, funding_sd, len(rate[::8]))
    return bars.assign(
        funding_rate=pd.Series(rate, index=bars.index).ffill().to_numpy() if forward_fill else rate,
        open_interest=open_interest * np.exp(np.cumsum(rng.normal(0, 0.01, n))),
        mark_price=close * (1 + rng.normal(0, mark_sd, n)),
        index_price=close * (1 + rng.normal(0, index_sd, n)),
    )


# ----------------------------------------------------------------------------- polars, the bar schema


def flat_bars(n: int, price: float = 100.0, start_ms: int = 0, source: str = "synthetic") -> pl.DataFrame:
    """``n`` hourly bars from ``start_ms`` whose open, high, low, close and volume all equal ``price``."""
    return conform(pl.DataFrame({"timestamp": [start_ms + i * HOUR_MS for i in range(n)],
                                 **{c: [float(price)] * n for c in ("open", "high", "low", "close", "volume")}}),
                   source)


def ramp_bars(n: int = 24) -> pl.DataFrame:
    """``n`` hourly bars from 0 rising by 1 a bar: open ``100 + i``, high +2, low -2, close +1, volume 10."""
    px = [100.0 + i for i in range(n)]
    return conform(pl.DataFrame({
        "timestamp": [i * HOUR_MS for i in range(n)], "open": px, "high": [p + 2 for p in px],
        "low": [p - 2 for p in px], "close": [p + 1 for p in px], "volume": [10.0] * n,
    }), "synthetic")


def clean_bars(n: int, start_ms: int, seed: int = 1) -> pl.DataFrame:
    """A random walk of ``n`` hourly bars with random wicks (0.1-1 %) and volume (1-10) that passes every rule
    of the data contract."""
    rng = np.random.default_rng(seed)
    c = random_close(n, rng)
    o = np.r_[100.0, c[:-1]]
    hi = np.maximum(o, c) * (1 + rng.uniform(0.001, 0.01, n))
    lo = np.minimum(o, c) * (1 - rng.uniform(0.001, 0.01, n))
    return conform(pl.DataFrame({"timestamp": start_ms + np.arange(n) * HOUR_MS, "open": o, "high": hi, "low": lo,
                                 "close": c, "volume": rng.uniform(1, 10, n)}), "synthetic")


def regime_bars(days: int, switch_day: int | None = None, *, seed: int = 4, start_ms: int = T2025_MS,
                volatile_days: tuple[int, int] = (40, 80)) -> pl.DataFrame:
    """Hourly bars from ``start_ms``: calm (0.3 % per bar) except a volatile stretch (1.2 % per bar) on
    ``volatile_days`` — so the past holds both regimes, as real history does — and, from ``switch_day`` on,
    volatile again. Volume 5, wicks 0.1 %."""
    n = days * 24
    vol = np.full(n, 0.003)
    vol[volatile_days[0] * 24:volatile_days[1] * 24] = 0.012
    if switch_day is not None:
        vol[switch_day * 24:] = 0.012
    close = random_close(n, np.random.default_rng(seed), vol)
    open_ = np.r_[100.0, close[:-1]]
    ts = start_ms + np.arange(n, dtype=np.int64) * HOUR_MS
    return conform(pl.DataFrame({"timestamp": ts, "open": open_, "high": np.maximum(open_, close) * 1.001,
                                 "low": np.minimum(open_, close) * 0.999, "close": close,
                                 "volume": np.full(n, 5.0)}), "synthetic")


def synthetic_bars(start_ms: int, end_ms: int, seed: int, *, now_ms: int | None = None, symbol: str = "BTC/USDT",
                   timeframe: str = "1h") -> pl.DataFrame:
    """The embedded market's bars in ``[start_ms, end_ms)`` (its clock ``now_ms``, by default two days later)."""
    now = end_ms + 2 * DAY_MS if now_ms is None else now_ms
    return SyntheticMarket(seed=seed, now_ms=now).fetch(symbol, timeframe, start_ms, end_ms)
