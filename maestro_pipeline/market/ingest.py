"""Monthly ingestion: fetch one month (or several) of candles for an instrument, appending only what is new.

A month partition holds bars whose open time falls in that UTC month. Re-running a month with nothing new
changes nothing (idempotent); the nightly refresh of the current month fetches from the newest stored bar on. Only
completed bars are ever stored: the source is responsible for withholding the bar still forming, and this module
drops any row at or after ``now`` as a second line of defence.

**The newest stored bar is fetched again** on every refresh and replaced when the source now reports it differently
(``MonthIngest.revised``): when an exchange's clock lags ours, the bar it still considered forming was stored with
partial values, and this is where it gets its final ones. A source whose data ends (a file) says so
(``MarketSource.data_end_ms``): months after its last bar fetch nothing, and :func:`ingest_months` serves several
months from one fetch (a file is read once).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl

from ..durations import iso, month_bounds, month_of, months_between
from ..errors import DataError
from ..instruments import Instrument
from ..schema import BAR_COLUMNS, OHLCV, conform
from ..timeframes import timeframe_ms
from .source import MarketSource

__all__ = ["MonthIngest", "ingest_month", "ingest_months", "instrument_months", "resume_from", "stitch"]


@dataclass
class MonthIngest:
    bars: pl.DataFrame          # the whole month after this ingest (existing + new)
    new_rows: int               # rows fetched and appended in this call (revised rows not counted)
    changed: bool               # False when nothing new arrived (no rewrite needed)
    note: str = ""              # why nothing was fetched, if so
    revised: int = 0            # stored bars the source now reports differently (replaced)


def _data_end(source: MarketSource, inst: Instrument) -> int | None:
    return source.data_end_ms(inst.symbol, inst.timeframe)


def _window(source: MarketSource, inst: Instrument, month: str, now_ms: int,
            data_end: int | None) -> tuple[int, int, str]:
    """``[lo, hi)`` of the month to fetch, and why it is empty when it is."""
    m_start, m_end = month_bounds(month)
    lo = max(m_start, inst.start_ms)
    hi = min(m_end, inst.end_ms or m_end, now_ms, data_end if data_end is not None else m_end)
    if hi > lo:
        return lo, hi, ""
    if m_end <= inst.start_ms:
        why = "before the instrument's start"
    elif inst.end_ms and m_start >= inst.end_ms:
        why = "after the instrument's end"
    elif data_end is not None and m_start >= data_end:
        why = f"after the source's last bar ({iso(data_end - timeframe_ms(inst.timeframe))})"
    else:
        why = "in the future"
    return lo, hi, f"month {month} is {why}: nothing to fetch"


def ingest_month(
    source: MarketSource,
    inst: Instrument,
    month: str,
    existing: pl.DataFrame | None,
    now_ms: int,
    full_refresh: bool = False,
) -> MonthIngest:
    """Bring one month partition up to date from ``source``."""
    return ingest_months(source, inst, [month], {month: existing}, now_ms, full_refresh)[month]


def ingest_months(
    source: MarketSource,
    inst: Instrument,
    months: Iterable[str],
    existing: Mapping[str, pl.DataFrame | None] | None,
    now_ms: int,
    full_refresh: bool = False,
) -> dict[str, MonthIngest]:
    """Bring several month partitions up to date with one fetch over their whole range (a file is read once,
    an exchange paged once); each month is then stitched onto what is stored, exactly as :func:`ingest_month`."""
    existing = existing or {}
    tf = timeframe_ms(inst.timeframe)
    data_end = _data_end(source, inst)
    out: dict[str, MonthIngest] = {}
    todo: dict[str, tuple[int, int]] = {}
    for month in months:
        old = existing.get(month)
        lo, hi, why = _window(source, inst, month, now_ms, data_end)
        if why:
            out[month] = MonthIngest(old if old is not None else pl.DataFrame(schema=BAR_COLUMNS), 0, False, why)
            continue
        since = _refetch_from(old, lo, full_refresh)
        if since >= hi:
            out[month] = MonthIngest(old, 0, False, "already up to date")  # type: ignore[arg-type]
            continue
        todo[month] = (since, hi)
    if todo:
        since_all, until_all = min(a for a, _ in todo.values()), max(b for _, b in todo.values())
        fetched_all = conform(source.fetch(inst.symbol, inst.timeframe, since_all, until_all), source.SOURCE)
        for month, (since, hi) in todo.items():
            fetched = fetched_all.filter((pl.col("timestamp") >= since) & (pl.col("timestamp") < hi)
                                         & (pl.col("timestamp") + tf <= now_ms))
            old = existing.get(month)
            combined, new_rows, revised = _merge(old, fetched, full_refresh, f"{inst.key} {month}")
            out[month] = MonthIngest(combined, new_rows, new_rows > 0 or revised > 0 or full_refresh, "", revised)
    return {m: out[m] for m in months}


def _merge(old: pl.DataFrame | None, fetched: pl.DataFrame, full_refresh: bool,
           where: str) -> tuple[pl.DataFrame, int, int]:
    """(the month after this fetch, rows appended, stored rows replaced because the source revised them)."""
    if old is None or not old.height or full_refresh:
        return fetched, fetched.height, 0
    combined = stitch(old, fetched, full_refresh, "bars", where)
    if not fetched.height:
        return combined, 0, 0
    again = set(fetched["timestamp"].to_list()) & set(old["timestamp"].to_list())
    if not again:
        return combined, fetched.height, 0
    before = old.filter(pl.col("timestamp").is_in(list(again))).select("timestamp", *OHLCV).sort("timestamp")
    after = fetched.filter(pl.col("timestamp").is_in(list(again))).select("timestamp", *OHLCV).sort("timestamp")
    revised = before.height - before.join(after, on=["timestamp", *OHLCV], how="semi", nulls_equal=True).height
    return combined, fetched.height - len(again), revised


def resume_from(existing: pl.DataFrame | None, lo: int, step_ms: int, full_refresh: bool) -> int:
    """Where fetching starts: after the newest stored row (one step later), or ``lo`` on a full refresh."""
    if existing is None or not existing.height or full_refresh:
        return lo
    return max(lo, int(existing["timestamp"].max()) + step_ms)


def _refetch_from(existing: pl.DataFrame | None, lo: int, full_refresh: bool) -> int:
    """Where a bar refresh starts: at the newest stored bar (fetched again, to catch a revision), or ``lo``."""
    return resume_from(existing, lo, 0, full_refresh)


def stitch(existing: pl.DataFrame | None, fetched: pl.DataFrame, full_refresh: bool, what: str,
           where: str) -> pl.DataFrame:
    """Append newly fetched rows to the stored month (a re-fetched row replaces its stored version); refuses to
    mix sources in one partition."""
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
    first_new = int(fetched["timestamp"].min())
    kept = existing.filter(pl.col("timestamp") < first_new)
    return pl.concat([kept.select(fetched.columns), fetched])


def instrument_months(source: MarketSource, inst: Instrument, now_ms: int) -> list[str]:
    """The month partitions that can hold bars of ``inst``: from its start to its end, the source's last bar (a
    file's ``end`` defaults to its data) or now, whichever comes first."""
    data_end = _data_end(source, inst)
    last = min(x for x in (now_ms, inst.end_ms, data_end) if x is not None)
    return months_between(month_of(inst.start_ms), month_of(last - 1)) if last > inst.start_ms else []
