"""Time as people write it and as the lake stores it: one ``iso()``, one length parser, calendar-month arithmetic.

Instants are Unix milliseconds (UTC) everywhere in Maestro; this module turns them into text (:func:`iso`,
:func:`label_ms`) and reads the lengths users write in ``maestro.yaml`` (:func:`parse_length`):

* a bar count: ``500``, ``"500"``, ``"500bars"``;
* a duration: ``90m`` (lower-case ``m`` = minutes), ``36h``, ``90d``, ``12w``;
* calendar months: ``6M``, ``6mo``, ``6months``; ``1y`` = 12 months.

A :class:`Length` keeps which of the three it is, because a bar count means "that many bars of the timeframe"
and a month has no fixed length. Month partitions (``YYYY-MM``) are UTC calendar months (:func:`month_bounds`,
:func:`month_of`, :func:`months_between`).
"""

from __future__ import annotations

import calendar
import numbers
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from .errors import MaestroError
from .timeframes import DAY_MS, HOUR_MS, MINUTE_MS

__all__ = [
    "Length", "ZERO", "add_months", "check_step", "duration_ms", "first_whole_day", "iso", "label_ms", "month_bounds",
    "month_ceil", "month_of", "months_between", "next_month", "parse_length",
]

_UNIT_MS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}
_LENGTH_RE = re.compile(r"^([0-9]+)\s*([A-Za-z]*)$")
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
_EPOCH = date(1970, 1, 1)
_LENGTH_HELP = "write a bar count (500), a duration (90d, 12w, 36h, 90m) or calendar months (6M, 6mo, 1y)"
_DURATION_HELP = "write a bar count (12), a duration (6h, 90m, 2d, 1w) or 0"


def iso(ms: int | None) -> str:
    """``1735689600000`` -> ``"2025-01-01 00:00"`` (UTC); ``None`` -> ``""``."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def label_ms(ms: int) -> str:
    """A span for messages: ``6h``, ``90m``, ``1.5h``; ``0`` for nothing."""
    if ms <= 0:
        return "0"
    h = ms / HOUR_MS
    return f"{h:g}h" if h >= 1 else f"{ms / MINUTE_MS:g}m"


@dataclass(frozen=True)
class Length:
    """A length: ``n`` bars, ``n`` milliseconds or ``n`` calendar months."""

    n: int
    unit: Literal["bars", "ms", "months"]

    @property
    def months(self) -> bool:
        return self.unit == "months"

    def ms(self, tf: int) -> int:
        """Fixed length in ms (bars x timeframe ``tf`` in ms); calendar months have none."""
        if self.months:
            raise MaestroError(f"{self} has no fixed length in milliseconds")
        return self.n * tf if self.unit == "bars" else self.n

    def add(self, t: int, tf: int) -> int:
        return add_months(t, self.n) if self.months else t + self.ms(tf)

    def sub(self, t: int, tf: int) -> int:
        return add_months(t, -self.n) if self.months else t - self.ms(tf)

    def bounds_ms(self, tf: int) -> tuple[int, int]:
        """Shortest and longest span this length can cover (months: 28 to 31 days each)."""
        if self.months:
            return 28 * DAY_MS * self.n, 31 * DAY_MS * self.n
        return self.ms(tf), self.ms(tf)

    def __str__(self) -> str:
        if self.unit == "bars":
            return f"{self.n} bars"
        if self.months:
            return f"{self.n}M"
        for u in ("w", "d", "h", "m"):
            if self.n % _UNIT_MS[u] == 0:
                return f"{self.n // _UNIT_MS[u]}{u}"
        return f"{self.n}ms"


ZERO = Length(0, "ms")


def parse_length(value: Any, what: str = "window length", allow_zero: bool = False,
                 allow_months: bool = True) -> Length:
    """Read a length (see module docstring). Zero only where ``allow_zero`` (purge, embargo, thresholds); calendar
    months only where ``allow_months``. Every problem is a one-line ``MaestroError`` naming ``what``."""
    if isinstance(value, Length):
        length = value
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        length = Length(int(value), "bars") if int(value) >= 0 else None
        if length is None:
            raise MaestroError(f"{what} must be positive, got {value!r}")
    elif isinstance(value, str) and (m := _LENGTH_RE.match(value.strip())):
        n, u = int(m.group(1)), m.group(2)
        low = u.lower()
        if u == "" or low in ("bar", "bars"):
            length = Length(n, "bars")
        elif u == "M" or low in ("mo", "mos", "month", "months"):
            length = Length(n, "months")
        elif low in ("y", "yr", "yrs", "year", "years"):
            length = Length(12 * n, "months")
        elif u == "m" or low in ("h", "d", "w"):
            length = Length(n * _UNIT_MS[low], "ms")
        else:
            raise MaestroError(f"cannot read {what} {value!r}: unknown unit {u!r}; "
                               f"{_LENGTH_HELP if allow_months else _DURATION_HELP}")
    else:
        raise MaestroError(f"cannot read {what} {value!r}: {_LENGTH_HELP if allow_months else _DURATION_HELP}")
    if length.months and not allow_months:
        raise MaestroError(f"{what} {value!r}: calendar months have no fixed length here; {_DURATION_HELP}")
    if length.n < 0 or (length.n == 0 and not allow_zero):
        raise MaestroError(f"{what} must be positive, got {value!r}")
    return ZERO if length.n == 0 else length


def check_step(step: Length, test: Length, tf: int | None) -> None:
    """Refuse a step that could make test windows overlap (``tf=None``: check only what needs no timeframe)."""
    if step.months and test.months:
        short = step.n < test.n
    elif step.unit == test.unit == "bars" or (step.unit == test.unit == "ms"):
        short = step.n < test.n
    elif tf is None and "bars" in (step.unit, test.unit):
        return  # bars against a fixed or calendar span: needs the timeframe, checked when planning
    else:
        t = tf or MINUTE_MS
        short = step.bounds_ms(t)[0] < test.bounds_ms(t)[1]
    if short:
        raise MaestroError(
            f"step {step} is shorter than test {test}: test windows would overlap; use a step of at least the test "
            "length (the default step is the test length)"
        )


def duration_ms(value: Any, timeframe_ms: int, what: str = "length") -> int:
    """A gap or run length (a bar count, a duration, or ``0``) in milliseconds on bars of ``timeframe_ms``.

    A duration may be shorter than one bar (``6h`` on daily bars: any missing day is longer than that)."""
    return parse_length(value, what, allow_zero=True, allow_months=False).ms(timeframe_ms)


# ------------------------------------------------------------------ calendar arithmetic (UTC)


def add_months(ms: int, n: int) -> int:
    """``ms`` moved by ``n`` calendar months (UTC); a day past the target month's end clamps to its last day."""
    days, rem = divmod(int(ms), DAY_MS)
    d = _EPOCH + timedelta(days=days)
    y, m0 = divmod(d.year * 12 + d.month - 1 + n, 12)
    day = min(d.day, calendar.monthrange(y, m0 + 1)[1])
    return (date(y, m0 + 1, day) - _EPOCH).days * DAY_MS + rem


def month_ceil(ms: int) -> int:
    """The first month start (UTC midnight on the 1st) at or after ``ms``."""
    days, _ = divmod(int(ms), DAY_MS)
    d = _EPOCH + timedelta(days=days)
    first = (date(d.year, d.month, 1) - _EPOCH).days * DAY_MS
    return first if first == ms else add_months(first, 1)


def first_whole_day(ts_ms: int) -> int:
    """Midnight UTC of the first day whose whole span starts at or after ``ts_ms``."""
    return -(-int(ts_ms) // DAY_MS) * DAY_MS


def month_bounds(month: str) -> tuple[int, int]:
    """``"2025-03"`` -> (first ms of March, first ms of April), UTC."""
    m = _MONTH_RE.match(month)
    if not m:
        raise MaestroError(f"month partition {month!r} must look like YYYY-MM")
    y, mo = int(m.group(1)), int(m.group(2))
    if not 1 <= mo <= 12:
        raise MaestroError(f"month partition {month!r} has no month {mo}")
    start = datetime(y, mo, 1, tzinfo=UTC)
    end = datetime(y + (mo == 12), 1 if mo == 12 else mo + 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def month_of(ts_ms: int) -> str:
    """The ``YYYY-MM`` month partition holding instant ``ts_ms`` (UTC)."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m")


def next_month(month: str) -> str:
    """``"2025-12"`` -> ``"2026-01"``."""
    return month_of(month_bounds(month)[1])


def months_between(first: str, last: str) -> list[str]:
    """Every month partition from ``first`` to ``last``, both included (empty when ``last < first``)."""
    out, m = [], first
    while m <= last:
        out.append(m)
        m = next_month(m)
    return out
