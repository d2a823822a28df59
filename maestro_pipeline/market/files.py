"""Users' own candle files as a market source (``SOURCE = "file:<name>"``).

Formats, chosen by the file's suffix:

* **CSV** (``.csv``, ``.txt``, ``.tsv``; ``.gz`` accepted): the layouts of :mod:`.file_layouts` (a header with a
  time column and open/high/low/close[/volume] in any common spelling, pandas' ``to_csv`` index layout, yfinance's
  header rows, MetaTrader exports, ``;`` with decimal commas, a title line, header-less Binance dumps, wide
  multi-asset files with ``columns: <asset>``, or ``columns: {timestamp: …, open: …}`` for any other header).
* **Parquet** (``.parquet``, ``.pq``), **feather/Arrow IPC** (``.feather``, ``.arrow``, ``.ipc``; freqtrade's
  storage) with the same column rules (a datetime column counts as the time column).
* **freqtrade JSON** (``.json``, ``.json.gz``): ``[[timestamp_ms, open, high, low, close, volume], ...]``
  (a list of objects with the column names above also works).

Timestamps: :mod:`.file_times` (Unix s/ms/µs/ns decided per value, ISO strings, day-first or month-first dates;
ambiguous orders refused unless ``day_first`` says). When there are several volume columns (``volume_btc`` next to
``volume`` in USD) the base-asset one wins: the column named after the symbol's base, else a qualified column whose
qualifier is not a quote currency, else ``volume``.

**No volume column** is said, never papered over with zeros: the bars' ``volume`` is null, :class:`FileImport`
has ``has_volume=False``, the contract's volume rules report "not evaluated" and strategies that read volume refuse
to run on such bars.

Rows are sorted ascending by time (stable); :class:`FileImport` says whether the file had to be re-sorted
(newest-first files) and how many duplicate timestamps it holds. Duplicates are kept: the validation layer
quarantines them, and an importer must not guess which copy is right. Every problem is one ``DataError`` line.
Imports are cached per process by (path, size, modification time, options) — :func:`clear_file_cache` — so the
months of one file are served from one read.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.feather as feather

from ..errors import DataError
from ..schema import BAR_COLUMNS, empty_bars
from ..timeframes import DAY_MS, HOUR_MS, MINUTE_MS, SUPPORTED_TIMEFRAMES, timeframe_ms
from .file_layouts import ColumnMap, map_columns, parse_numbers, read_csv_table
from .file_times import read_times
from .source import MarketSource

__all__ = ["FileImport", "FileSource", "clear_file_cache", "describe_spacing", "file_source_name", "read_bars_file"]


@dataclass(frozen=True)
class FileImport:
    """A file read into the bar schema (``bars``, ascending) and what the import had to do."""

    path: Path
    format: str
    bars: pl.DataFrame
    columns: dict[str, str]          # bar column -> file column
    resorted: bool                   # the file was not in ascending time order
    newest_first: bool               # ... because it is ordered newest first
    order_breaks: int                # places where time goes backwards in the file
    duplicates: int                  # rows whose timestamp appears earlier too (kept; validation flags them)
    timeframe_ms: int | None         # most common spacing between bars
    has_volume: bool = True          # False: the file has no volume column (volume is null, never 0)
    notes: tuple[str, ...] = field(default_factory=tuple)   # what reading the layout took, for people

    @property
    def first_ms(self) -> int | None:
        return int(self.bars["timestamp"][0]) if self.bars.height else None

    @property
    def last_ms(self) -> int | None:
        return int(self.bars["timestamp"][-1]) if self.bars.height else None

    def summary(self) -> dict[str, object]:
        return {"file": str(self.path), "format": self.format, "rows": self.bars.height, "resorted": self.resorted,
                "newest_first": self.newest_first, "order_breaks": self.order_breaks,
                "duplicates": self.duplicates, "columns": self.columns, "has_volume": self.has_volume,
                "notes": list(self.notes)}


def file_source_name(path: str | Path) -> str:
    """A default instrument name for a file: its stem, lower case, runs of other characters as ``_``."""
    stem = Path(path).name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet", ".pq", ".feather", ".arrow", ".ipc", ".json"):
        stem = stem.removesuffix(suffix)
    name = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"f_{name}" if name else "file"
    return name


def describe_spacing(ms: int) -> str:
    """A bar spacing for people: ``1 hour``, ``15 minutes``, ``1 day``, ``about 1 month (30 days)``."""
    if ms >= 27 * DAY_MS and ms <= 32 * DAY_MS:
        return f"about 1 month ({ms / DAY_MS:g} days)"
    for unit, name in ((7 * DAY_MS, "week"), (DAY_MS, "day"), (HOUR_MS, "hour"), (MINUTE_MS, "minute")):
        if ms >= unit and ms % unit == 0:
            n = ms // unit
            return f"{n} {name}{'s' if n != 1 else ''}"
    return f"{ms / 1000:g} seconds"


def _spacing_label(ms: int) -> str | None:
    """The supported timeframe with exactly this spacing, if any."""
    return next((tf for tf in SUPPORTED_TIMEFRAMES if timeframe_ms(tf) == ms), None)


# ------------------------------------------------------------------ readers


def _err(path: Path, msg: str) -> DataError:
    return DataError(f"{path}: {msg}")


def _open_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except OSError as e:
            raise _err(path, f"not a readable gzip file ({e})") from None
    for enc in ("utf-8-sig", "latin-1"):
        try:
            return raw.decode(enc)
        except UnicodeDecodeError:
            continue
    raise _err(path, "not a text file")  # pragma: no cover - latin-1 decodes anything


def _read_json(path: Path) -> pl.DataFrame:
    try:
        data = json.loads(_open_text(path))
    except json.JSONDecodeError as e:
        raise _err(path, f"not valid JSON ({e.msg} at line {e.lineno}); freqtrade JSON is "
                         "[[timestamp_ms, open, high, low, close, volume], ...]") from None
    if isinstance(data, list) and data and isinstance(data[0], (list, tuple)):
        if any(len(r) < 6 for r in data):
            raise _err(path, "every row must be [timestamp_ms, open, high, low, close, volume]")
        cols = ["timestamp", "open", "high", "low", "close", "volume"]
        return pl.DataFrame({c: [r[i] for r in data] for i, c in enumerate(cols)}, strict=False)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return pl.DataFrame(data, strict=False, infer_schema_length=None)
    if isinstance(data, list) and not data:
        raise _err(path, "the file holds no rows")
    raise _err(path, "unrecognized JSON layout; "
                     "freqtrade JSON is [[timestamp_ms, open, high, low, close, volume], ...]")


def _read_table(path: Path, fmt: str) -> pl.DataFrame:
    try:
        if fmt == "parquet":
            return pl.read_parquet(path)
        return pl.from_arrow(feather.read_table(path))  # type: ignore[return-value]
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad file, said in one line
        raise _err(path, f"not a readable {fmt} file ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None


def _format_of(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    last = (suffixes[-2] if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1
            else (suffixes[-1] if suffixes else ""))
    if last in (".csv", ".txt", ".tsv"):
        return "csv"
    if last in (".parquet", ".pq"):
        return "parquet"
    if last in (".feather", ".arrow", ".ipc"):
        return "feather"
    if last == ".json":
        return "json"
    raise _err(path, f"unknown file type {last or '(no suffix)'!r}; use .csv, .parquet, .feather or freqtrade .json")


# ------------------------------------------------------------------ mapping onto the bar schema


def _map_frame(path: Path, df: pl.DataFrame, base: str | None, columns: str | dict[str, str] | None,
               day_first: bool | None, tickers: list[str] | None) -> tuple[pl.DataFrame, ColumnMap, list[str]]:
    if df.height == 0:
        raise _err(path, "the file holds no rows")
    cmap = map_columns(path, df, base, columns, tickers)
    notes = list(cmap.notes)
    if isinstance(cmap.time, list):
        date_col, clock_col = cmap.time
        tcol = pl.concat_str([df[date_col].cast(pl.String).str.strip_chars(), pl.lit(" "),
                              df[clock_col].cast(pl.String).str.strip_chars()], separator="")
        times = read_times(path, pl.select(tcol).to_series(), f"{date_col} + {clock_col}", day_first)
        notes.append(f"date and time joined from {date_col!r} and {clock_col!r}")
    else:
        times = read_times(path, df[cmap.time], cmap.time, day_first)
    notes += times.notes
    ts = times.ms
    if ts.null_count():
        first = int(ts.is_null().arg_true()[0]) + 1
        raise _err(path, f"{ts.null_count()} row(s) have no timestamp in column {cmap.time!r} (first: data row "
                         f"{first})")
    out = {"timestamp": ts.alias("timestamp")}
    number_notes = set()
    for k in ("open", "high", "low", "close", "volume"):
        if k not in cmap.fields:
            out[k] = pl.Series(k, [None] * df.height, dtype=pl.Float64)
            continue
        vals, note = parse_numbers(path, df[cmap.fields[k]], cmap.fields[k])
        if note:
            number_notes.add(note)
        out[k] = vals.alias(k)
    notes += sorted(number_notes)
    if not cmap.has_volume:
        notes.append("no volume column: volume is unknown (null); volume rules and strategies cannot use it")
    return pl.DataFrame(out), cmap, notes


def read_bars_file(path: str | Path, source: str | None = None, base: str | None = None, *,
                   columns: str | dict[str, str] | None = None, day_first: bool | None = None) -> FileImport:
    """Read a candle file (CSV, Parquet, feather, freqtrade JSON) into bars sorted ascending.

    ``columns``: an asset to pick from a wide file (``"BTC"``), or a mapping naming the time and price columns;
    ``day_first``: the order of ``03/04/2024``-style dates when the file cannot tell."""
    p = Path(path).expanduser()
    if not p.exists():
        raise _err(p, "file not found")
    if p.is_dir():
        raise _err(p, "is a directory, not a candle file")
    if p.stat().st_size == 0:
        raise _err(p, "the file is empty")
    fmt = _format_of(p)
    tickers, notes = None, []
    if fmt == "csv":
        table = read_csv_table(p, _open_text(p))
        raw, tickers, notes = table.frame, table.tickers, list(table.notes)
    elif fmt == "json":
        raw = _read_json(p)
    else:
        raw = _read_table(p, fmt)
    bars, cmap, more = _map_frame(p, raw, base, columns, day_first, tickers)
    notes += more
    ts = bars["timestamp"]
    diffs = ts.diff().drop_nulls()
    breaks = int((diffs < 0).sum())
    newest_first = bool(bars.height > 1 and (diffs <= 0).mean() > 0.5)  # type: ignore[operator]
    resorted = breaks > 0
    if resorted:
        bars = bars.sort("timestamp", maintain_order=True)
    dupes = int(bars.height - bars["timestamp"].n_unique())
    sd = bars["timestamp"].diff().drop_nulls()
    sd = sd.filter(sd > 0)
    tf = int(sd.mode().min()) if sd.len() else None  # type: ignore[arg-type]
    label = source or f"file:{file_source_name(p)}"
    bars = bars.with_columns(
        pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC").alias("datetime"),
        pl.lit(label).alias("source"),
    ).select([pl.col(c).cast(t) for c, t in BAR_COLUMNS.items()])
    mapping = {"timestamp": " + ".join(cmap.time) if isinstance(cmap.time, list) else cmap.time, **cmap.fields}
    return FileImport(p, fmt, bars, mapping, resorted, newest_first, breaks, dupes, tf, cmap.has_volume,
                      tuple(notes))


# ------------------------------------------------------------------ the process-wide import cache

_CACHE_SIZE = 4
#: Cache: recent imports by (path, size, mtime, source label, base, options); see :func:`clear_file_cache`.
_IMPORTS: OrderedDict[tuple, FileImport] = OrderedDict()
_IMPORTS_LOCK = threading.Lock()


def clear_file_cache() -> None:
    """Forget cached file imports (the next read parses the file again)."""
    with _IMPORTS_LOCK:
        _IMPORTS.clear()


def _cached_import(path: Path, source: str, base: str | None, columns: Any, day_first: bool | None) -> FileImport:
    try:
        st = path.stat()
        key: tuple | None = (str(path.resolve()), st.st_size, st.st_mtime_ns, source, base,
                             json.dumps(columns, sort_keys=True), day_first)
    except OSError:
        key = None
    if key is not None:
        with _IMPORTS_LOCK:
            hit = _IMPORTS.get(key)
            if hit is not None:
                _IMPORTS.move_to_end(key)
                return hit
    imp = read_bars_file(path, source, base, columns=columns, day_first=day_first)
    if key is not None:
        with _IMPORTS_LOCK:
            _IMPORTS[key] = imp
            while len(_IMPORTS) > _CACHE_SIZE:
                _IMPORTS.popitem(last=False)
    return imp


class FileSource(MarketSource):
    """A candle file as a market source with the ``fetch(symbol, timeframe, since, until)`` contract.

    ``SOURCE`` is ``file:<name>``; the file is read once per process (per path, size, mtime and options) and served
    by range. A file whose bar spacing is not the requested timeframe is refused (one line), so a 5m file cannot
    pose as 1h. The file's last bar is the end of its data (:meth:`data_end_ms`): months after it are not fetched.
    """

    def __init__(self, path: str | Path, name: str | None = None, now_ms: int | None = None, *,
                 columns: str | dict[str, str] | None = None, day_first: bool | None = None):
        self.path = Path(path).expanduser()
        self.name = name or file_source_name(self.path)
        self.SOURCE = f"file:{self.name}"
        self.now_ms = now_ms
        self.columns = columns
        self.day_first = day_first
        self.last_import: FileImport | None = None

    def __repr__(self) -> str:
        return f"FileSource({str(self.path)!r}, name={self.name!r})"

    def load(self, base: str | None = None) -> FileImport:
        imp = _cached_import(self.path, self.SOURCE, base, self.columns, self.day_first)
        self.last_import = imp
        return imp

    def check_timeframe(self, imp: FileImport, timeframe: str) -> None:
        """Refuse a file whose bars are not ``timeframe`` apart, saying what they are and what is supported."""
        tf = timeframe_ms(timeframe)
        if imp.timeframe_ms is None or imp.timeframe_ms == tf:
            return
        own = _spacing_label(imp.timeframe_ms)
        spacing = describe_spacing(imp.timeframe_ms)
        if own is not None:
            raise DataError(f"{self.path}: bars are {spacing} apart but the instrument's timeframe is {timeframe}; "
                            f"list the file with timeframe: {own}")
        kind = "monthly bars, " if "month" in spacing else ""
        raise DataError(f"{self.path}: bars are {spacing} apart ({kind}not a supported timeframe); Maestro researches "
                        f"{', '.join(SUPPORTED_TIMEFRAMES)} bars: use a file with one of those")

    def data_end_ms(self, symbol: str, timeframe: str) -> int | None:
        """The close of the file's last bar: there is no data after it."""
        imp = self.load(_base(symbol))
        self.check_timeframe(imp, timeframe)
        return None if imp.last_ms is None else imp.last_ms + timeframe_ms(timeframe)

    def fetch(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        tf = timeframe_ms(timeframe)
        imp = self.load(_base(symbol))
        self.check_timeframe(imp, timeframe)
        ts = imp.bars["timestamp"]
        lo, hi = ts.search_sorted(since_ms, "left"), ts.search_sorted(until_ms, "left")
        df = imp.bars.slice(int(lo), int(hi - lo))  # ascending: a slice, not a scan
        if self.now_ms is not None:
            df = df.filter(pl.col("timestamp") + tf <= self.now_ms)
        return df if df.height else empty_bars()


def _base(symbol: str | None) -> str | None:
    return symbol.split("/")[0] if symbol else None
