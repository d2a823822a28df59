"""Instruments and their keys.

A key such as ``binance.BTC_USDT.1h`` names exchange, symbol and timeframe; it is readable, reversible and
safe in paths and Dagster partition keys (no ``| [ ] , /``). Symbols map ``/`` to ``_`` and ``:`` (the ccxt
settle separator of perpetuals, ``BTC/USDT:USDT``) to ``~``; symbols that already hold ``_``, ``~`` or ``.``
are refused so the mapping stays reversible. Beyond that a symbol is ASCII letters and digits (and ``-``, as in
ccxt's option symbols) around its ``/`` and ``:``: a ``=`` would break the lake's hive paths and the DuckDB
catalog, a space, quote, ``*``, ``\\``, newline or other control character the paths, SQL globs or Dagster's
partition keys, so such symbols are refused when ``maestro.yaml`` is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from .errors import MaestroError
from .timeframes import timeframe_ms

_EXCHANGE_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_FORBIDDEN_IN_SYMBOL = set("_~.|,[]")
_SYMBOL_PART = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
_SYMBOL_RE = re.compile(rf"{_SYMBOL_PART}/{_SYMBOL_PART}(?::{_SYMBOL_PART})?")


def symbol_to_key(symbol: str) -> str:
    bad = sorted(_FORBIDDEN_IN_SYMBOL & set(symbol))
    if bad:
        raise MaestroError(
            f"symbol {symbol!r} contains {''.join(bad)!r}; write symbols the ccxt way, e.g. BTC/USDT or BTC/USDT:USDT"
        )
    if not symbol or symbol != symbol.strip() or "/" not in symbol:
        raise MaestroError(f"symbol {symbol!r} is not a ccxt symbol: write BASE/QUOTE, e.g. BTC/USDT")
    if not _SYMBOL_RE.fullmatch(symbol):
        odd = sorted({c for c in symbol if not (c.isascii() and (c.isalnum() or c in "/:-"))})
        what = f"contains {''.join(odd)!r}" if odd else "has an empty part or a misplaced '/', ':' or '-'"
        raise MaestroError(f"symbol {symbol!r} {what}: a symbol is ASCII letters and digits as BASE/QUOTE or "
                           "BASE/QUOTE:SETTLE (e.g. BTC/USDT, BTC/USDT:USDT), which the lake paths, the DuckDB "
                           "catalog and Dagster's partition keys can all carry")
    return symbol.replace("/", "_").replace(":", "~")


def key_to_symbol(key: str) -> str:
    return key.replace("_", "/").replace("~", ":")


@dataclass(frozen=True)
class Instrument:
    """One market series: a symbol at one timeframe on one source. Two sources never share an instrument."""

    exchange: str
    symbol: str
    timeframe: str
    start: date
    end: date | None = None

    def __post_init__(self) -> None:
        if not _EXCHANGE_RE.match(self.exchange):
            raise MaestroError(f"exchange id {self.exchange!r} must be lower-case letters, digits or _")
        symbol_to_key(self.symbol)
        timeframe_ms(self.timeframe)
        if self.end is not None and self.end <= self.start:
            raise MaestroError(
                f"{self.exchange} {self.symbol}: end {self.end} is not after start {self.start}"
            )

    @property
    def key(self) -> str:
        return f"{self.exchange}.{symbol_to_key(self.symbol)}.{self.timeframe}"

    @property
    def symbol_key(self) -> str:
        return symbol_to_key(self.symbol)

    @property
    def start_ms(self) -> int:
        return int(datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp() * 1000)

    @property
    def end_ms(self) -> int | None:
        if self.end is None:
            return None
        return int(datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC).timestamp() * 1000)

    @property
    def hive(self) -> dict[str, str]:
        """Hive partition columns of this instrument in the lake."""
        return {"exchange": self.exchange, "symbol": self.symbol_key, "timeframe": self.timeframe}


def parse_key(key: str) -> tuple[str, str, str]:
    """``binance.BTC_USDT.1h`` -> ``("binance", "BTC/USDT", "1h")``."""
    parts = key.split(".")
    if len(parts) != 3:
        raise MaestroError(f"instrument key {key!r} must look like exchange.BASE_QUOTE.timeframe")
    exchange, sym, tf = parts
    return exchange, key_to_symbol(sym), tf
