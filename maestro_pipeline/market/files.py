"""Users' own candle files as a market source (``SOURCE = "file:<name>"``).

Formats, chosen by the file's suffix:

* **CSV** (``.csv``, ``.txt``, ``.tsv``; ``.gz`` accepted): a header with a time column (``timestamp``, ``time``,
  ``date``, ``datetime``, ``open_time``, ``Date``, ...) and ``open/high/low/close`` (any case, or ``o/h/l/c``)
  and a volume column (``volume``, ``Volume BTC``, ``volume_btc``, ...). A title line above the header (as in
  CryptoDataDownload files) is skipped; a header-less file whose rows start with
  ``timestamp, open, high, low, close, volume`` (Binance's dumps) is read by position. Delimiters ``, ; tab``.
* **Parquet** (``.parquet``, ``.pq``), **feather/Arrow IPC** (``.feather``, ``.arrow``, ``.ipc``; freqtrade's
  storage) with the same column rules (a datetime column counts as the time column).
* **freqtrade JSON** (``.json``, ``.json.gz``): ``[[timestamp_ms, open, high, low, close, volume], ...]``
  (a list of objects with the column names above also works).

Timestamps may be Unix seconds, milliseconds, microseconds or nanoseconds (told apart by magnitude), ISO 8601
strings (with or without offset; naive means UTC) or CryptoDataDownload's ``2019-10-17 09-AM``. When there are
several volume columns (``volume_btc`` next to ``volume`` in USD) the base-asset one wins: the column named
after the symbol's base, else a qualified column whose qualifier is not a quote currency, else ``volume``.

Rows are sorted ascending by time (stable); :class:`FileImport` says whether the file had to be re-sorted
(newest-first files) and how many duplicate timestamps it holds. Duplicates are kept: the validation layer
quarantines them, and an importer must not guess which copy is right. Every problem is one ``DataError`` line.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow.feather as feather

from ..errors import DataError
from ..schema import BAR_COLUMNS, empty_bars
from ..timeframes import timeframe_ms
from .source import MarketSource

__all__ = ["FileImport", "FileSource", "read_bars_file", "file_source_name"]

_TIME_NAMES = ("timestamp", "open_time", "opentime", "time", "datetime", "date", "date_time", "unix", "ts", "t")
_PRICE_NAMES = {
    "open": ("open", "o", "open_price", "price_open"),
    "high": ("high", "h", "high_price", "price_high"),
    "low": ("low", "l", "low_price", "price_low"),
    "close": ("close", "c", "close_price", "price_close"),
}
_QUOTE_LIKE = {"usd", "usdt", "usdc", "busd", "eur", "gbp", "jpy", "krw", "try", "aud", "cad", "chf", "quote",
               "dai", "fdusd", "tusd"}
_VOLUME_RE = re.compile(r"^(?:volume|vol|v)(?:_([a-z0-9]+))?$")

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
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%d",
)
_MAGNITUDE_UNITS = ((1e11, 1000.0), (1e14, 1.0), (1e17, 1e-3), (float("inf"), 1e-6))  # -> ms multiplier


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

    def summary(self) -> dict[str, object]:
        return {"file": str(self.path), "format": self.format, "rows": self.bars.height, "resorted": self.resorted,
                "newest_first": self.newest_first, "order_breaks": self.order_breaks,
                "duplicates": self.duplicates, "columns": self.columns}


def file_source_name(path: str | Path) -> str:
    """A default instrument name for a file: its stem, lower case, runs of other characters as ``_``."""
    stem = Path(path).name
    for suffix in (".gz", ".csv", ".tsv", ".txt", ".parquet", ".pq", ".feather", ".arrow", ".ipc", ".json"):
        stem = stem.removesuffix(suffix)
    name = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"f_{name}" if name else "file"
    return name


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


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _read_csv(path: Path) -> pl.DataFrame:
    text = _open_text(path)
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise _err(path, "the file is empty")
    sample = "\n".join(lines[:20])
    try:
        delim = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delim = ","
    # find the header: the first of the first lines that names a time column and the four prices
    for i, line in enumerate(lines[:10]):
        cells = next(csv.reader([line], delimiter=delim), [])
        names = {_norm(c) for c in cells}
        if _find(names, _TIME_NAMES) and all(_find(names, v) for v in _PRICE_NAMES.values()):
            body = "\n".join(lines[i:])
            return pl.read_csv(io.StringIO(body), separator=delim, infer_schema=False, truncate_ragged_lines=True)
        if i == 0 and len(cells) >= 6 and all(_looks_numeric(c) for c in cells[:6]):
            # header-less: timestamp, open, high, low, close, volume, ... (Binance's data dumps)
            df = pl.read_csv(io.StringIO(text), separator=delim, has_header=False, infer_schema=False,
                             truncate_ragged_lines=True)
            return df.select(df.columns[:6]).rename(
                dict(zip(df.columns[:6], ["timestamp", "open", "high", "low", "close", "volume"], strict=True)))
    first = next((ln for ln in lines if ln.strip()), "")[:120]
    raise _err(path, f"no recognizable columns: need a time column (timestamp/time/date/open_time) and "
                     f"open/high/low/close[/volume] in a header within the first lines; first line is {first!r}")


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


def _find(names, candidates) -> str | None:
    for c in candidates:
        if c in names:
            return c
    return None


def _pick_volume(norm_to_col: dict[str, str], base: str | None) -> str | None:
    found = {m.group(1) or "": n for n in norm_to_col if (m := _VOLUME_RE.match(n))}
    if not found:
        return None
    if base and base.lower() in found:
        return norm_to_col[found[base.lower()]]
    qualified = [q for q in found if q and q not in _QUOTE_LIKE]
    if len(found) > 1 and qualified:
        return norm_to_col[found[qualified[0]]]
    if "" in found:
        return norm_to_col[found[""]]
    return norm_to_col[next(iter(found.values()))]


def _to_ms(path: Path, s: pl.Series, colname: str) -> pl.Series:
    """Any time column -> Int64 Unix ms (UTC)."""
    dt = s.dtype
    if isinstance(dt, pl.Datetime):
        s = s.dt.convert_time_zone("UTC") if dt.time_zone else s
        return s.dt.epoch("ms")
    if dt == pl.Date:
        return s.cast(pl.Datetime("ms")).dt.epoch("ms")
    if dt.is_numeric():
        return _numeric_ms(path, s.cast(pl.Float64), colname)
    s = s.cast(pl.String).str.strip_chars()
    as_num = s.cast(pl.Float64, strict=False)
    if as_num.null_count() == s.null_count() and s.len() > s.null_count():
        return _numeric_ms(path, as_num, colname)
    # CryptoDataDownload's "2019-10-17 09-AM": chrono needs minutes, so add them
    s = s.str.replace(r"^(\d{4}-\d{2}-\d{2}) (\d{1,2})-([AaPp][Mm])$", "${1} ${2}-00 ${3}")
    for fmt in _TIME_FORMATS:
        try:
            parsed = s.str.to_datetime(fmt, strict=True, time_unit="ms", time_zone="UTC" if "%z" not in fmt else None)
        except Exception:  # noqa: BLE001 - try the next format
            continue
        if parsed.null_count() == s.null_count():
            if parsed.dtype.time_zone not in (None, "UTC"):  # type: ignore[union-attr]
                parsed = parsed.dt.convert_time_zone("UTC")
            return parsed.dt.epoch("ms")
    try:
        parsed_pd = pd.to_datetime(s.to_pandas(), utc=True, format="ISO8601")
        out = pl.from_pandas(parsed_pd).dt.epoch("ms")
        if out.null_count() == s.null_count():
            return out
    except (ValueError, TypeError, OverflowError):
        pass
    example = next((v for v in s.to_list() if v), "")
    raise _err(path, f"cannot read the timestamps in column {colname!r} (e.g. {example!r}); use Unix "
                     "seconds/ms/µs or ISO 8601 like 2024-01-31T13:00:00Z")


def _numeric_ms(path: Path, s: pl.Series, colname: str) -> pl.Series:
    nonnull = s.drop_nulls()
    if nonnull.len() == 0:
        raise _err(path, f"column {colname!r} holds no timestamps")
    top = float(nonnull.abs().max())  # type: ignore[arg-type]
    if top < 1e8:
        raise _err(path, f"cannot read the timestamps in column {colname!r} (largest {top:g} is not a Unix time "
                         "in s/ms/µs/ns)")
    mult = next(m for limit, m in _MAGNITUDE_UNITS if top < limit)
    return (s * mult).round(0).cast(pl.Int64)


def _map_frame(path: Path, df: pl.DataFrame, base: str | None) -> tuple[pl.DataFrame, dict[str, str]]:
    if df.height == 0:
        raise _err(path, "the file holds no rows")
    norm_to_col: dict[str, str] = {}
    for c in df.columns:
        norm_to_col.setdefault(_norm(c), c)
    names = set(norm_to_col)
    time_norm = _find(names, _TIME_NAMES)
    # a Datetime/Date typed column wins over names when no time-like name exists (e.g. an index called "index")
    if time_norm is None:
        typed = [c for c in df.columns if isinstance(df[c].dtype, (pl.Datetime, pl.Date))]
        time_col = typed[0] if typed else None
    else:
        time_col = norm_to_col[time_norm]
    price_cols = {k: (norm_to_col[n] if (n := _find(names, v)) else None) for k, v in _PRICE_NAMES.items()}
    missing = [k for k, v in price_cols.items() if v is None]
    if time_col is None or missing:
        need = (["a time column (timestamp/time/date/open_time)"] if time_col is None else []) + missing
        raise _err(path, f"no recognizable columns: missing {', '.join(need)}; "
                         f"found {', '.join(map(str, df.columns[:12]))}")
    vol_col = _pick_volume(norm_to_col, base)
    mapping = {"timestamp": time_col, **{k: v for k, v in price_cols.items() if v}}  # type: ignore[misc]
    if vol_col:
        mapping["volume"] = vol_col
    ts = _to_ms(path, df[time_col], time_col)
    if ts.null_count():
        raise _err(path, f"{ts.null_count()} row(s) have no timestamp in column {time_col!r}")
    cols = {"timestamp": ts}
    for k in ("open", "high", "low", "close", "volume"):
        if k not in mapping:
            cols[k] = pl.Series(k, [0.0] * df.height)
            continue
        raw = df[mapping[k]]
        if raw.dtype == pl.String:
            raw = raw.str.strip_chars()
        vals = raw.cast(pl.Float64, strict=False)
        bad = vals.is_null() & raw.is_not_null() & (raw.cast(pl.String) != "")
        if bad.any():
            example = raw.filter(bad)[0]
            raise _err(path, f"column {mapping[k]!r} has values that are not numbers (e.g. {example!r})")
        cols[k] = vals
    return pl.DataFrame(cols), mapping


def read_bars_file(path: str | Path, source: str | None = None, base: str | None = None) -> FileImport:
    """Read a candle file (CSV, Parquet, feather, freqtrade JSON) into bars sorted ascending."""
    p = Path(path).expanduser()
    if not p.exists():
        raise _err(p, "file not found")
    if p.is_dir():
        raise _err(p, "is a directory, not a candle file")
    if p.stat().st_size == 0:
        raise _err(p, "the file is empty")
    fmt = _format_of(p)
    if fmt == "csv":
        raw = _read_csv(p)
    elif fmt == "json":
        raw = _read_json(p)
    else:
        raw = _read_table(p, fmt)
    bars, mapping = _map_frame(p, raw, base)
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
    return FileImport(p, fmt, bars, mapping, resorted, newest_first, breaks, dupes, tf)


class FileSource(MarketSource):
    """A candle file as a market source with the ``fetch(symbol, timeframe, since, until)`` contract.

    ``SOURCE`` is ``file:<name>``; the file is read once per (path, size, mtime) and served by range. A file
    whose bar spacing is not the requested timeframe is refused (one line), so a 5m file cannot pose as 1h.
    """

    def __init__(self, path: str | Path, name: str | None = None, now_ms: int | None = None):
        self.path = Path(path).expanduser()
        self.name = name or file_source_name(self.path)
        self.SOURCE = f"file:{self.name}"
        self.now_ms = now_ms
        self._cache: tuple[tuple, FileImport] | None = None
        self.last_import: FileImport | None = None

    def __repr__(self) -> str:
        return f"FileSource({str(self.path)!r}, name={self.name!r})"

    def load(self, base: str | None = None) -> FileImport:
        try:
            st = self.path.stat()
            key = (st.st_size, st.st_mtime_ns, base)
        except OSError:
            key = None
        if key is not None and self._cache and self._cache[0] == key:
            return self._cache[1]
        imp = read_bars_file(self.path, self.SOURCE, base)
        if key is not None:
            self._cache = (key, imp)
        self.last_import = imp
        return imp

    def fetch(self, symbol: str, timeframe: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        tf = timeframe_ms(timeframe)
        base = symbol.split("/")[0] if symbol else None
        imp = self.load(base)
        if imp.timeframe_ms is not None and imp.timeframe_ms != tf:
            raise DataError(
                f"{self.path}: bars are {imp.timeframe_ms // 60_000} minutes apart but the instrument's timeframe is "
                f"{timeframe}; list the file with its own timeframe"
            )
        df = imp.bars.filter((pl.col("timestamp") >= since_ms) & (pl.col("timestamp") < until_ms))
        if self.now_ms is not None:
            df = df.filter(pl.col("timestamp") + tf <= self.now_ms)
        return df if df.height else empty_bars()
