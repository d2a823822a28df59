"""``instruments:``: what to research (an exchange, a file or the embedded market; symbol, timeframe, span)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import field_validator, model_validator

from ..errors import MaestroError
from ..instruments import Instrument, symbol_to_key
from ..market.files import file_source_name
from ..timeframes import SUPPORTED_TIMEFRAMES
from ._base import FILE_NAME_RE, Section, closest, known_exchanges


class InstrumentConfig(Section):
    exchange: str
    symbol: str
    timeframe: str
    start: date
    end: date | None = None
    path: str | None = None   # exchange: file only: the candle file (CSV, Parquet, feather, freqtrade JSON)
    name: str | None = None   # exchange: file only: names the instrument (default: the file's stem)
    columns: str | dict[str, str] | None = None   # file only: an asset of a wide file, or {timestamp: …, open: …}
    day_first: bool | None = None                 # file only: 03/04/2024 is 3 April (true) or 4 March (false)

    @field_validator("exchange")
    @classmethod
    def _exchange(cls, v: str) -> str:
        if v not in known_exchanges():
            raise ValueError(
                f"unknown exchange {v!r}{closest(v, known_exchanges())}; use 'synthetic', 'file' or a ccxt exchange id"
            )
        return v

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        try:
            symbol_to_key(v)
        except MaestroError as e:
            raise ValueError(str(e)) from None
        return v

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, v: str) -> str:
        if v not in SUPPORTED_TIMEFRAMES:
            raise ValueError(f"unsupported timeframe {v!r}; use one of {', '.join(SUPPORTED_TIMEFRAMES)}")
        return v

    @model_validator(mode="after")
    def _range(self) -> InstrumentConfig:
        today = datetime.now(UTC).date()
        if self.start > today:
            raise ValueError(f"start {self.start} is in the future; pick a date before {today}")
        if self.start < date(2009, 1, 3):
            raise ValueError(f"start {self.start} is before any crypto market existed")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        if self.exchange == "file":
            if not self.path:
                raise ValueError("exchange: file needs path: (a .csv, .parquet, .feather or freqtrade .json file)")
            if not FILE_NAME_RE.match(self.file_name):
                raise ValueError(
                    f"name {self.file_name!r} must be lower-case letters, digits or _ (start with a letter, at most 40)"
                )
        elif self.path is not None or self.name is not None:
            raise ValueError("path and name are only for exchange: file")
        elif self.columns is not None or self.day_first is not None:
            raise ValueError("columns and day_first are only for exchange: file (they say how to read the file)")
        return self

    @property
    def file_name(self) -> str:
        """The file instrument's name: ``name``, else the file's stem made key-safe."""
        return self.name or file_source_name(self.path or "file")

    @property
    def source_id(self) -> str:
        """The exchange part of the instrument key: the exchange id, or ``file_<name>`` for files."""
        return f"file_{self.file_name}" if self.exchange == "file" else self.exchange

    def file_path(self, base: Path | None = None) -> Path | None:
        """The file of an ``exchange: file`` instrument, relative paths resolved against ``base``."""
        if self.exchange != "file" or not self.path:
            return None
        p = Path(os.path.expandvars(os.path.expanduser(self.path)))
        return p if p.is_absolute() or base is None else base / p

    def file_options(self) -> dict[str, object]:
        """How to read this instrument's file (``columns``, ``day_first``; only those set)."""
        return {k: v for k, v in (("columns", self.columns), ("day_first", self.day_first)) if v is not None}

    def to_instrument(self) -> Instrument:
        return Instrument(self.source_id, self.symbol, self.timeframe, self.start, self.end)


