"""Reading a candle file's time column: Unix numbers (unit per value), ISO strings, day-first or month-first dates.

* **Numbers** are Unix seconds, milliseconds, microseconds or nanoseconds. The unit is decided **per value** from
  its magnitude: a date between 1980 and 2100 is 3.2e8-4.2e9 in seconds, 3.2e11-4.2e12 in ms, 3.2e14-4.2e15 in
  µs and 3.2e17-4.2e18 in ns, ranges that never overlap, so a file whose rows mix seconds and milliseconds is
  read right (and the import says how many rows had which unit). A value in none of the ranges (a 1970 date, an
  overflowing 1e25) is refused, naming its row.
* **Strings**: ISO 8601 (with or without offset; naive means UTC), CryptoDataDownload's ``2019-10-17 09-AM``,
  MetaTrader's ``2024.01.02`` (+ a separate time column), ``YYYYMMDD HHMMSS``, and dates with the year last
  (``03/04/2024``): day-first or month-first is read off the file (a first field above 12 is a day, a second one
  is a day); a file where every field is 12 or below is ambiguous and refused unless ``day_first`` says which
  (``dd.mm.yyyy`` with dots is day-first by convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import polars as pl

from ..errors import DataError

__all__ = ["TimeRead", "read_times"]

#: (low, high, ms per unit, name): plausible Unix times from 1980-01-01 to 2100-01-01 in each unit.
_LO_S, _HI_S = 315_532_800, 4_102_444_800
UNITS = ((_LO_S, _HI_S, 1000.0, "s"), (_LO_S * 1000, _HI_S * 1000, 1.0, "ms"),
         (_LO_S * 10**6, _HI_S * 10**6, 1e-3, "µs"), (_LO_S * 10**9, _HI_S * 10**9, 1e-6, "ns"))

#: String timestamp formats tried in order (polars/chrono syntax) before a general ISO 8601 parse.
_TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %I-%M %p",     # CryptoDataDownload hourly (2019-10-17 09-AM, rewritten to 09-00 AM first)
    "%Y-%m-%d %I:%M:%S %p",
    "%Y-%m-%d",
    "%Y.%m.%d %H:%M:%S",     # MetaTrader exports
    "%Y.%m.%d %H:%M",
    "%Y.%m.%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y%m%d %H%M%S",         # HistData
    "%Y%m%d %H:%M:%S",
    "%Y%m%d",
)
#: Time-of-day parts after a year-last date (``03/04/2024 13:00``).
_CLOCKS = (" %H:%M:%S%.f", " %H:%M:%S", " %H:%M", " %I:%M:%S %p", " %I:%M %p", "")
_YEAR_LAST = r"^(\d{1,2})([/.\-])(\d{1,2})[/.\-](\d{4})"


@dataclass
class TimeRead:
    """A time column read as Unix ms, and what reading it took (units found, the day/month order used)."""

    ms: pl.Series
    units: dict[str, int] = field(default_factory=dict)   # numeric columns: rows per unit
    day_first: bool | None = None                          # year-last dates: the order used
    notes: list[str] = field(default_factory=list)


def _err(path: Path, msg: str) -> DataError:
    return DataError(f"{path}: {msg}")


def read_times(path: Path, s: pl.Series, colname: str, day_first: bool | None = None) -> TimeRead:
    """Any time column -> Int64 Unix ms (UTC); every problem is one ``DataError`` line naming the column."""
    dt = s.dtype
    if isinstance(dt, pl.Datetime):
        s = s.dt.convert_time_zone("UTC") if dt.time_zone else s
        return TimeRead(s.dt.epoch("ms").cast(pl.Int64))
    if dt == pl.Date:
        return TimeRead(s.cast(pl.Datetime("ms")).dt.epoch("ms").cast(pl.Int64))
    if dt.is_numeric():
        return _numeric(path, s, colname)
    s = s.cast(pl.String).str.strip_chars()
    as_num = s.cast(pl.Float64, strict=False)
    if as_num.null_count() == s.null_count() and s.len() > s.null_count():
        as_int = s.cast(pl.Int64, strict=False)
        return _numeric(path, as_int if as_int.null_count() == s.null_count() else as_num, colname)
    return _strings(path, s, colname, day_first)


def _numeric(path: Path, s: pl.Series, colname: str) -> TimeRead:
    if s.len() == s.null_count():
        raise _err(path, f"column {colname!r} holds no timestamps")
    v = s.abs().cast(pl.Float64)
    unit = pl.Series([None] * s.len(), dtype=pl.String)
    for lo, hi, _, name in UNITS:
        unit = pl.select(pl.when((v >= lo) & (v < hi)).then(pl.lit(name)).otherwise(unit)).to_series()
    bad = unit.is_null() & s.is_not_null()
    if bad.any():
        rows = bad.arg_true()
        i = int(rows[0])
        value = s[i]
        why = ("too large for any unit: it overflows" if abs(float(value)) >= UNITS[-1][1]
               else "a date before 1980 or after 2100 in every unit")
        raise _err(path, f"timestamp {value!r} in data row {i + 1} of column {colname!r} is not a Unix time in "
                         f"s, ms, µs or ns ({why}){f'; {rows.len()} such row(s)' if rows.len() > 1 else ''}")
    if s.dtype.is_integer():
        x = s.cast(pl.Int64)
        ms = pl.select(pl.when(unit == "s").then(x * 1000).when(unit == "ms").then(x)
                       .when(unit == "µs").then(x // 1000).otherwise(x // 1_000_000)).to_series()
    else:
        x = s.cast(pl.Float64)
        mult = pl.select(pl.when(unit == "s").then(1000.0).when(unit == "ms").then(1.0)
                         .when(unit == "µs").then(1e-3).otherwise(1e-6)).to_series()
        ms = (x * mult).round(0).cast(pl.Int64)
    counts = {k: int(n) for k, n in unit.value_counts().iter_rows() if k is not None}
    out = TimeRead(ms.alias("timestamp"), counts)
    if len(counts) > 1:
        major = max(counts, key=lambda k: counts[k])
        minority = unit.ne(major).arg_true()
        first = ", ".join(str(int(r) + 1) for r in minority.head(3))
        out.notes.append(f"column {colname!r} mixes units ({', '.join(f'{n:,} in {k}' for k, n in counts.items())}); "
                         f"each value was read in its own unit (first rows not in {major}: {first})")
    return out


def _strings(path: Path, s: pl.Series, colname: str, day_first: bool | None) -> TimeRead:
    example = next((v for v in s.to_list() if v), "")
    year_last = s.str.extract_groups(_YEAR_LAST)
    if s.str.contains(_YEAR_LAST).fill_null(False).any():
        return _year_last(path, s, colname, day_first, year_last, example)
    # CryptoDataDownload's "2019-10-17 09-AM": chrono needs minutes, so add them
    s = s.str.replace(r"^(\d{4}-\d{2}-\d{2}) (\d{1,2})-([AaPp][Mm])$", "${1} ${2}-00 ${3}")
    parsed = _try_formats(s, _TIME_FORMATS)
    if parsed is not None:
        return TimeRead(parsed)
    try:
        parsed_pd = pd.to_datetime(s.to_pandas(), utc=True, format="ISO8601")
        out = pl.from_pandas(parsed_pd).dt.epoch("ms").cast(pl.Int64)
        if out.null_count() == s.null_count():
            return TimeRead(out)
    except (ValueError, TypeError, OverflowError):
        pass
    raise _err(path, f"cannot read the timestamps in column {colname!r} (e.g. {example!r}); use Unix "
                     "seconds/ms/µs or ISO 8601 like 2024-01-31T13:00:00Z")


def _try_formats(s: pl.Series, formats) -> pl.Series | None:
    for fmt in formats:
        try:
            parsed = s.str.to_datetime(fmt, strict=True, time_unit="ms", time_zone="UTC" if "%z" not in fmt else None)
        except Exception:  # noqa: BLE001 - try the next format
            continue
        if parsed.null_count() == s.null_count():
            if parsed.dtype.time_zone not in (None, "UTC"):  # type: ignore[union-attr]
                parsed = parsed.dt.convert_time_zone("UTC")
            return parsed.dt.epoch("ms").cast(pl.Int64)
    return None


def _year_last(path: Path, s: pl.Series, colname: str, day_first: bool | None, groups: pl.Series,
               example: str) -> TimeRead:
    """``03/04/2024``-style dates: decide the day/month order from the file, or from ``day_first``."""
    a = groups.struct.field("1").cast(pl.Int64, strict=False)
    sep = next((x for x in groups.struct.field("2").to_list() if x), "/")
    b = groups.struct.field("3").cast(pl.Int64, strict=False)
    first_is_day, second_is_day = bool((a > 12).any()), bool((b > 12).any())
    if first_is_day and second_is_day:
        raise _err(path, f"column {colname!r} mixes day-first and month-first dates (e.g. {example!r}); "
                         "write the file in one order")
    found = True if first_is_day else (False if second_is_day else None)
    if found is not None and day_first is not None and found != day_first:
        order = "day-first" if found else "month-first"
        raise _err(path, f"column {colname!r} has {order} dates (e.g. {example!r}) but day_first is {day_first}; "
                         f"set day_first: {str(found).lower()} or remove it")
    order_used = found if found is not None else day_first
    note = ""
    if order_used is None:
        if sep != ".":
            raise _err(path, f"column {colname!r}: dates like {example!r} read day-first or month-first alike (no "
                             "day above 12 in the file); set day_first: true (dd/mm/yyyy) or false (mm/dd/yyyy) on "
                             "this instrument in maestro.yaml")
        order_used, note = True, "dates with dots (dd.mm.yyyy) read day-first, the convention for that notation"
    date_fmt = f"%d{sep}%m{sep}%Y" if order_used else f"%m{sep}%d{sep}%Y"
    parsed = _try_formats(s, [date_fmt + clock for clock in _CLOCKS])
    if parsed is None:
        raise _err(path, f"cannot read the timestamps in column {colname!r} (e.g. {example!r}) as {date_fmt}")
    return TimeRead(parsed, day_first=order_used, notes=[note] if note else [])
