"""Perpetual-futures history per month: funding rates and open interest, appended like candles.

A month partition holds the records whose timestamp falls in that UTC month. Only perpetuals/futures have
them (a ccxt symbol with a settle currency, ``BTC/USDT:USDT``), and only sources that offer the history
(``CcxtSource`` where the exchange ``has`` it); for anything else :func:`ingest_derivative_month` says why
and fetches nothing, which is not an error. Re-running appends only records after the newest stored one.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ..durations import month_bounds
from ..errors import DataError
from ..instruments import Instrument
from ..timeframes import timeframe_ms
from .ingest import resume_from, stitch
from .source import MarketSource

__all__ = ["KINDS", "DerivativeMonth", "attach_derivatives", "ingest_derivative_month", "is_perpetual",
           "open_interest_timeframe"]

#: The derivatives tables (Dagster assets and lake tables).
KINDS = ("funding_rates", "open_interest")
#: Periods exchanges publish open interest at (Binance: 5m..1d); the instrument's timeframe is mapped onto them.
OI_PERIODS = ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")


def is_perpetual(inst: Instrument) -> bool:
    """Perpetuals and futures carry a settle currency in their ccxt symbol (``BTC/USDT:USDT``)."""
    return ":" in inst.symbol


def open_interest_timeframe(timeframe: str) -> str:
    """The open-interest period for an instrument: its timeframe if published, else the nearest coarser/finer."""
    tf = timeframe_ms(timeframe)
    fitting = [p for p in OI_PERIODS if timeframe_ms(p) <= tf]
    return fitting[-1] if fitting else OI_PERIODS[0]


@dataclass
class DerivativeMonth:
    table: pl.DataFrame | None   # the whole month after this ingest (None when nothing applies)
    new_rows: int
    changed: bool
    note: str = ""
    period: str | None = None    # open interest: the period fetched


def ingest_derivative_month(
    kind: str,
    source: MarketSource,
    inst: Instrument,
    month: str,
    existing: pl.DataFrame | None,
    now_ms: int,
    full_refresh: bool = False,
) -> DerivativeMonth:
    """Bring one month of ``kind`` (``funding_rates`` or ``open_interest``) up to date from ``source``."""
    if kind not in KINDS:
        raise DataError(f"unknown derivatives table {kind!r}; use one of {', '.join(KINDS)}")
    label = kind.replace("_", " ")
    if not is_perpetual(inst):
        return DerivativeMonth(None, 0, False,
                               f"{inst.symbol} is not a perpetual/future (no ':SETTLE' in the symbol): no {label}")
    has = source.has_funding_rates() if kind == "funding_rates" else source.has_open_interest()
    if not has:
        return DerivativeMonth(None, 0, False, f"source {source.SOURCE} offers no {label} history")
    m_start, m_end = month_bounds(month)
    lo = max(m_start, inst.start_ms)
    hi = min(m_end, inst.end_ms) if inst.end_ms is not None else m_end
    hi = min(hi, now_ms + 1)
    period = open_interest_timeframe(inst.timeframe) if kind == "open_interest" else None
    if lo >= hi:
        return DerivativeMonth(existing, 0, False, f"month {month} is outside the instrument's range or in the future",
                               period)
    step = timeframe_ms(period) if period else 1
    since = resume_from(existing, lo, step, full_refresh)
    if since >= hi:
        return DerivativeMonth(existing, 0, False, "already up to date", period)
    if kind == "open_interest":
        fetched = source.fetch_open_interest(inst.symbol, period, since, hi)
    else:
        fetched = source.fetch_funding_rates(inst.symbol, since, hi)
    fetched = fetched.filter((pl.col("timestamp") >= since) & (pl.col("timestamp") < hi))
    combined = stitch(existing, fetched, full_refresh, label, f"{inst.key} {month}")
    return DerivativeMonth(combined, fetched.height, fetched.height > 0 or full_refresh, "", period)


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

