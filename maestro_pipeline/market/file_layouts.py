"""Candle-file layouts: finding the header of a CSV, which columns are time, prices and volume, and numbers.

Supported (anything else is one ``DataError`` line that lists these):

* a header with a time column (``timestamp``, ``time``, ``date``, ``open_time``, ...) and ``open/high/low/close``
  (any case, ``o/h/l/c``, ``last`` or ``price`` for a missing close) and optionally a volume column; a title line
  above the header; delimiters ``,`` ``;`` tab; decimal commas (``42000,5``) and thousands separators;
* pandas' ``to_csv()`` layout: an empty first header cell over the index (dates), and yfinance's three header
  rows (``Price`` / ``Ticker`` / ``Date``);
* MetaTrader's export (``<DATE>``, ``<TIME>``, ``<TICKVOL>``): a separate date and time column are joined;
* a header-less file whose rows start with ``time, open, high, low, close[, volume]`` (Binance's data dumps);
* wide files with several assets (``BTC:open, ETH:open, …``, ``open_BTC``, yfinance tickers): the instrument
  picks one with ``columns: BTC``;
* any other header: ``columns: {timestamp: Date, open: O, high: H, low: L, close: Px, volume: Qty}`` names them.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..errors import DataError

__all__ = ["LAYOUTS_HELP", "ColumnMap", "map_columns", "parse_numbers", "read_csv_table"]

LAYOUTS_HELP = ("supported: a header with a time column (timestamp/time/date/open_time) and open/high/low/close"
                "[/volume] (pandas' to_csv index layout, a title line, `,` `;` or tab, decimal commas), a header-less "
                "Binance dump, a wide multi-asset file with `columns: <asset>`, or any header named with "
                "`columns: {timestamp: …, open: …, high: …, low: …, close: …, volume: …}`")

TIME_NAMES = ("timestamp", "open_time", "opentime", "time", "datetime", "date", "date_time", "unix", "ts", "t",
              "timestamp_utc", "date_utc", "time_utc", "datetime_utc", "gmt_time", "local_time", "index",
              "datum", "zeit", "fecha", "data", "horodatage")  # de, es, it/pt, fr: files written with `;` and `,`
PRICE_NAMES = {
    "open": ("open", "o", "open_price", "price_open", "first"),
    "high": ("high", "h", "high_price", "price_high", "max"),
    "low": ("low", "l", "low_price", "price_low", "min"),
    "close": ("close", "c", "close_price", "price_close", "last", "price", "adj_close"),
}
_QUOTE_LIKE = {"usd", "usdt", "usdc", "busd", "eur", "gbp", "jpy", "krw", "try", "aud", "cad", "chf", "quote",
               "dai", "fdusd", "tusd", "currency"}
_VOLUME_RE = re.compile(r"^(?:volume|vol|v)(?:_([a-z0-9]+))?$")
_TICK_VOLUME = ("tickvol", "tick_volume", "tickvolume", "tick_vol", "ticks")
FIELDS = ("open", "high", "low", "close", "volume")
_FIELD_WORDS = {n: f for f, names in PRICE_NAMES.items() for n in names[:4]} | {"volume": "volume", "vol": "volume"}
_CLOCK_RE = r"^\d{1,2}:\d{2}(:\d{2})?$"


def norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")


def _err(path: Path, msg: str) -> DataError:
    return DataError(f"{path}: {msg}")


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell.replace(",", "."))
        return True
    except ValueError:
        return False


@dataclass
class CsvTable:
    frame: pl.DataFrame            # every cell a string, columns named from the header
    delimiter: str
    notes: list[str] = field(default_factory=list)
    tickers: list[str] | None = None   # yfinance's second header row: the asset of each column


def _cells(line: str, delim: str) -> list[str]:
    return next(csv.reader([line], delimiter=delim), [])


def read_csv_table(path: Path, text: str) -> CsvTable:
    """The CSV's header and rows as strings (layout rules in the module docstring)."""
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise _err(path, "the file is empty")
    sample = "\n".join(lines[:20])
    try:
        delim = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delim = ";" if sample.count(";") > sample.count(",") else ("\t" if "\t" in sample else ",")
    notes: list[str] = []
    for i, line in enumerate(lines[:10]):
        cells = _cells(line, delim)
        if len(cells) < 2:
            continue
        numeric = [c.strip() != "" and _looks_numeric(c.strip()) for c in cells]
        if i == 0 and len(cells) >= 5 and all(numeric[1:5]):
            # header-less: time, open, high, low, close[, volume, ...] (Binance's data dumps, HistData)
            names = ["timestamp", "open", "high", "low", "close", "volume"][: min(len(cells), 6)]
            names += [f"column_{k}" for k in range(len(names), len(cells))]
            df = _read(path, "\n".join(lines), delim, names, has_header=False)
            notes.append("no header: columns read by position (time, open, high, low, close, volume)")
            return CsvTable(df.select(names[:6]), delim, notes)
        if sum(numeric) * 2 > len(cells) or len(cells) < 4:
            continue  # a data row or a title line: keep looking for the header
        names = [c.strip() for c in cells]
        body_from = i + 1
        tickers = None
        nxt = _cells(lines[i + 1], delim) if i + 1 < len(lines) else []
        if norm(names[0]) == "price" and nxt and norm(nxt[0]) in ("ticker", "symbol"):
            # yfinance (pandas MultiIndex columns): Price/<fields>, Ticker/<symbols>, Date/<empty>
            tickers = [c.strip() for c in nxt]
            third = _cells(lines[i + 2], delim) if i + 2 < len(lines) else []
            body_from = i + 2 + (1 if third and not any(c.strip() for c in third[1:]) else 0)
            names[0] = third[0].strip() if third and third[0].strip() else "date"
            notes.append("yfinance layout (three header rows)")
        if names[0] == "":
            names[0] = "index"
            notes.append("pandas to_csv layout (unnamed first column = the index)")
        names = _unique(names)
        df = _read(path, "\n".join(lines[body_from:]), delim, names, has_header=False)
        return CsvTable(df, delim, notes, tickers)
    first = next((ln for ln in lines if ln.strip()), "")[:120]
    raise _err(path, f"no recognizable columns: no header line with a time column and prices in the first lines "
                     f"(first line {first!r}); {LAYOUTS_HELP}")


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}_{k}")
    return out


def _read(path: Path, body: str, delim: str, names: list[str], has_header: bool) -> pl.DataFrame:
    try:
        df = pl.read_csv(io.StringIO(body), separator=delim, has_header=has_header, infer_schema=False,
                         truncate_ragged_lines=True, new_columns=names)
    except pl.exceptions.NoDataError:
        return pl.DataFrame(schema=dict.fromkeys(names, pl.String))
    except Exception as e:  # noqa: BLE001 - a malformed CSV is one line
        raise _err(path, f"not a readable CSV ({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
    if df.width > len(names):
        df = df.select(df.columns[: len(names)])
    return df.rename(dict(zip(df.columns, names[: df.width], strict=True)))


# ------------------------------------------------------------------ columns


@dataclass
class ColumnMap:
    """Which file column is each bar field (``volume`` may be absent), and what choosing them took."""

    time: str | list[str]                         # one column, or [date, time] joined
    fields: dict[str, str]                        # open/high/low/close[/volume] -> file column
    notes: list[str] = field(default_factory=list)

    @property
    def has_volume(self) -> bool:
        return "volume" in self.fields


def _find(names, candidates) -> str | None:
    return next((c for c in candidates if c in names), None)


def _split_asset(col: str) -> tuple[str, str] | None:
    """``BTC:open`` / ``open_BTC`` / ``BTC-USD Close`` -> (asset, field), or None."""
    parts = re.split(r"[:_\-\s./|]+", str(col).strip())
    if len(parts) < 2:
        return None
    for fld, asset in ((parts[-1], parts[:-1]), (parts[0], parts[1:])):
        f = _FIELD_WORDS.get(fld.lower())
        if f:
            return "-".join(asset), f
    return None


def _wide_assets(columns: list[str], tickers: list[str] | None) -> dict[str, dict[str, str]]:
    """Asset -> {field: column} for a wide file (empty when the file is not wide)."""
    out: dict[str, dict[str, str]] = {}
    if tickers:
        for col, t in zip(columns, tickers, strict=False):
            f = _FIELD_WORDS.get(norm(re.sub(r"_\d+$", "", col)))
            if f and t:
                out.setdefault(t, {}).setdefault(f, col)
    else:
        for col in columns:
            sp = _split_asset(col)
            if sp:
                out.setdefault(sp[0], {}).setdefault(sp[1], col)
    return {a: m for a, m in out.items() if {"open", "high", "low", "close"} <= set(m)}


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


def map_columns(path: Path, df: pl.DataFrame, base: str | None, columns: str | dict[str, str] | None,
                tickers: list[str] | None = None) -> ColumnMap:
    """The file columns holding time, prices and volume (see the module docstring for the rules)."""
    cols = [str(c) for c in df.columns]
    if isinstance(columns, dict):
        return _explicit(path, cols, columns)
    wide = _wide_assets(cols, tickers)
    notes: list[str] = []
    if len(wide) > 1 or (columns is not None and wide):
        if columns is None:
            shown = ", ".join(sorted(wide)[:8]) + (", …" if len(wide) > 8 else "")
            raise _err(path, f"a wide file with {len(wide)} assets ({shown}): pick one with `columns: "
                             f"{sorted(wide)[0]}` on this instrument in maestro.yaml")
        match = next((a for a in wide if a.lower() == columns.lower()), None)
        if match is None:
            raise _err(path, f"columns: {columns!r} is none of the file's {len(wide)} assets "
                             f"({', '.join(sorted(wide)[:8])})")
        fields = wide[match]
        notes.append(f"asset {match} of {len(wide)} in a wide file")
        rest = [c for c in cols if not any(c in m.values() for m in wide.values())]
        time_col = _time_column(path, df, rest)
        if time_col is None:
            raise _err(path, f"no time column next to the asset columns; found {', '.join(cols[:12])}")
        return ColumnMap(time_col, fields, notes)
    if columns is not None and not wide:
        raise _err(path, f"columns: {columns!r} selects an asset, but the file is not a wide multi-asset file "
                         f"(columns {', '.join(cols[:12])}); remove columns: or name the columns with a mapping")
    if len(wide) == 1:  # one asset with prefixed columns (BTC:open, ...)
        (asset, fields), = wide.items()
        rest = [c for c in cols if c not in fields.values()]
        time_col = _time_column(path, df, rest)
        if time_col is not None:
            return ColumnMap(time_col, fields, [f"asset {asset} (prefixed columns)"])
    norm_to_col: dict[str, str] = {}
    for c in cols:
        norm_to_col.setdefault(norm(c), c)
    names = set(norm_to_col)
    fields = {}
    for k, cands in PRICE_NAMES.items():
        n = _find(names - {norm(v) for v in fields.values()}, cands)
        if n:
            fields[k] = norm_to_col[n]
    missing = [k for k in PRICE_NAMES if k not in fields]
    time_col = _time_column(path, df, [c for c in cols if c not in fields.values()])
    if time_col is None or missing:
        need = (["a time column (timestamp/time/date/open_time)"] if time_col is None else []) + missing
        raise _err(path, f"no recognizable columns: missing {', '.join(need)}; found "
                         f"{', '.join(cols[:12])}; {LAYOUTS_HELP}")
    vol = _pick_volume(norm_to_col, base)
    tick = _find(names, _TICK_VOLUME)
    if vol is not None and tick and _all_zero(df[vol]):
        notes.append(f"volume column {vol!r} is all zero: used tick volume {norm_to_col[tick]!r}")
        vol = norm_to_col[tick]
    elif vol is None and tick:
        vol = norm_to_col[tick]
        notes.append(f"tick volume {vol!r} used as volume")
    if vol is not None:
        fields["volume"] = vol
    return ColumnMap(time_col, fields, notes)


def _all_zero(s: pl.Series) -> bool:
    v = s.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
    return bool(v.len() and (v.fill_null(0.0) == 0).all())


def _time_column(path: Path, df: pl.DataFrame, candidates: list[str]) -> str | list[str] | None:
    """The time column among ``candidates``: by name (a date + a time-of-day column are joined), else a Datetime
    typed column (Parquet), else pandas' unnamed index."""
    by_norm: dict[str, str] = {}
    for c in candidates:
        by_norm.setdefault(norm(c), c)
    date_col, clock_col = by_norm.get("date") or by_norm.get("day"), by_norm.get("time")
    if date_col and clock_col and df[clock_col].dtype == pl.String \
            and df[clock_col].str.strip_chars().str.contains(_CLOCK_RE).fill_null(False).all():
        return [date_col, clock_col]
    name = _find(set(by_norm), TIME_NAMES)
    if name is not None:
        return by_norm[name]
    typed = [c for c in candidates if isinstance(df[c].dtype, (pl.Datetime, pl.Date))]
    return typed[0] if typed else None


def _explicit(path: Path, cols: list[str], mapping: dict[str, str]) -> ColumnMap:
    unknown = [k for k in mapping if k not in ("timestamp", *FIELDS)]
    if unknown:
        raise _err(path, f"columns: {unknown[0]!r} is not a bar field; map timestamp, open, high, low, close "
                         "and optionally volume")
    for k in ("timestamp", "open", "high", "low", "close"):
        if k not in mapping:
            raise _err(path, f"columns: the mapping needs {k} (and timestamp, open, high, low, close; volume optional)")
    absent = [v for v in mapping.values() if v not in cols]
    if absent:
        raise _err(path, f"columns: the file has no column {absent[0]!r}; it has {', '.join(cols[:12])}")
    return ColumnMap(mapping["timestamp"], {k: v for k, v in mapping.items() if k != "timestamp"},
                     ["columns named in maestro.yaml"])


# ------------------------------------------------------------------ numbers

_DECIMAL_COMMA = r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$"
_THOUSANDS_COMMA = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"


def parse_numbers(path: Path, raw: pl.Series, colname: str) -> tuple[pl.Series, str | None]:
    """A column of prices or volumes as Float64 (decimal commas and thousands separators read); one line on a value
    that is not a number. Empty cells become null (the contract refuses them)."""
    if raw.dtype.is_numeric():
        return raw.cast(pl.Float64), None
    s = raw.cast(pl.String).str.strip_chars()
    s = pl.select(pl.when(s == "").then(None).otherwise(s)).to_series()
    vals = s.cast(pl.Float64, strict=False)
    note = None
    bad = vals.is_null() & s.is_not_null()
    if bad.any():
        failing = s.filter(bad)
        if failing.str.contains(_DECIMAL_COMMA).all() and failing.str.contains(",").any():
            vals = s.str.replace_all(r"\.", "").str.replace(",", ".").cast(pl.Float64, strict=False)
            note = "decimal commas"
        elif failing.str.contains(_THOUSANDS_COMMA).all():
            vals = s.str.replace_all(",", "").cast(pl.Float64, strict=False)
            note = "thousands separators"
        bad = vals.is_null() & s.is_not_null()
        if bad.any():
            raise _err(path, f"column {colname!r} has values that are not numbers (e.g. {s.filter(bad)[0]!r})")
    return vals, note
