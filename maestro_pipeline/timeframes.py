"""Timeframe strings (ccxt style: ``1m``, ``4h``, ``1d``) and the arithmetic every other module needs.

Crypto trades 24/7, so a year is 365 days of bars: annualization factors come from here and nowhere else.
"""

from __future__ import annotations

import re

from .errors import MaestroError

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
YEAR_DAYS = 365

_UNIT_MS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}

#: The timeframes Maestro researches on (1m to 1w); the ones most exchanges offer.
SUPPORTED_TIMEFRAMES: tuple[str, ...] = (
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
)

_TF_RE = re.compile(r"^([1-9][0-9]*)([mhdw])$")


def timeframe_ms(timeframe: str) -> int:
    """Length of one bar in milliseconds; raises a one-line error for anything unsupported."""
    if timeframe not in SUPPORTED_TIMEFRAMES:
        raise MaestroError(
            f"unsupported timeframe {timeframe!r}: use one of {', '.join(SUPPORTED_TIMEFRAMES)}"
        )
    m = _TF_RE.match(timeframe)
    assert m is not None  # every supported timeframe matches
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def bars_per_year(timeframe: str) -> float:
    """Bars in a 365-day year (8,760 for 1h): the annualization factor for per-bar statistics."""
    return YEAR_DAYS * DAY_MS / timeframe_ms(timeframe)


def floor_to_bar(ts_ms: int, timeframe: str) -> int:
    """Open time of the bar containing ``ts_ms`` (bars are aligned to the Unix epoch, as exchanges do)."""
    tf = timeframe_ms(timeframe)
    return ts_ms - ts_ms % tf
