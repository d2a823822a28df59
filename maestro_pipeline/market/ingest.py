"""Monthly ingestion: fetch one month of candles for an instrument, appending only what is new.

A month partition holds bars whose open time falls in that UTC month. Re-running a month with nothing new
changes nothing (idempotent); the nightly refresh of the current month fetches only bars after the newest
stored one. Only completed bars are ever stored: the source is responsible for withholding the bar still
forming, and this module drops any row at or after ``now`` as a second line of defence.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ..durations import month_bounds
from ..errors import DataError
from ..instruments import Instrument
from ..schema import BAR_COLUMNS, conform
from ..timeframes import timeframe_ms
from .source import MarketSource


@dataclass
class MonthIngest:
    bars: pl.DataFrame          # the whole month after this ingest (existing + new)
    new_rows: int               # rows fetched and appended in this call
    changed: bool               # False when nothing new arrived (no rewrite needed)
    note: str = ""              # why nothing was fetched, if so


def ingest_month(
    source: MarketSource,
    inst: Instrument,
    month: str,
    existing: pl.DataFrame | None,
    now_ms: int,
    full_refresh: bool = False,
) -> MonthIngest:
    """Bring one month partition up to date from ``source``."""
    m_start, m_end = month_bounds(month)
    lo = max(m_start, inst.start_ms)
    hi = min(m_end, inst.end_ms or m_end, now_ms)
    if hi <= lo:
        why = "before the instrument's start" if m_end <= inst.start_ms else (
            "after the instrument's end" if inst.end_ms and m_start >= inst.end_ms else "in the future"
        )
        empty = existing if existing is not None else pl.DataFrame(schema=BAR_COLUMNS)
        return MonthIngest(empty, 0, False, f"month {month} is {why}: nothing to fetch")
    tf = timeframe_ms(inst.timeframe)
    since = resume_from(existing, lo, tf, full_refresh)
    if since >= hi:
        return MonthIngest(existing, 0, False, "already up to date")
    fetched = source.fetch(inst.symbol, inst.timeframe, since, hi)
    fetched = conform(fetched, source.SOURCE)
    fetched = fetched.filter((pl.col("timestamp") >= since) & (pl.col("timestamp") < hi)
                             & (pl.col("timestamp") + tf <= now_ms))
    combined = stitch(existing, fetched, full_refresh, "bars", f"{inst.key} {month}")
    return MonthIngest(combined, fetched.height, fetched.height > 0 or full_refresh)


def resume_from(existing: pl.DataFrame | None, lo: int, step_ms: int, full_refresh: bool) -> int:
    """Where fetching starts: after the newest stored row (one step later), or ``lo`` on a full refresh."""
    if existing is None or not existing.height or full_refresh:
        return lo
    return max(lo, int(existing["timestamp"].max()) + step_ms)


def stitch(existing: pl.DataFrame | None, fetched: pl.DataFrame, full_refresh: bool, what: str,
           where: str) -> pl.DataFrame:
    """Append newly fetched rows to the stored month; refuses to mix sources in one partition."""
    if existing is None or not existing.height or full_refresh:
        return fetched
    if not fetched.height:
        return existing
    old, new = set(existing["source"].unique()), set(fetched["source"].unique())
    if old != new:
        raise DataError(
            f"{where}: stored {what} come from {sorted(old)} but the source is {sorted(new)}; "
            "sources are never stitched — use a new instrument"
        )
    return pl.concat([existing.select(fetched.columns), fetched])
