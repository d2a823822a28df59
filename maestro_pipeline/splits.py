"""Walk-forward split planning: where each split's train and test windows lie.

Two ways to cut the data (``mode``):

* ``calendar`` (default): test windows sit on a grid anchored at the instrument's first whole UTC day (the
  *origin*), not at the newest bar. When new data arrives the existing splits keep their exact boundaries and
  only a new split appears once a whole new test window fits; the re-optimization cache relies on this. Test
  window k starts at ``origin + train + purge + k * step``; with a calendar-month ``step`` the grid is snapped
  to month starts, so ``test: 1M`` windows are exactly the calendar months (UTC).
* ``parts`` (the old engine's form): the data from the origin to the end is cut into
  ``K = n_splits * test_parts + train_parts`` equal parts (whole bars); split i trains on parts
  ``[i*test_parts, i*test_parts + train_parts)`` and tests on the next ``test_parts`` parts. This form re-cuts
  every window when data grows, so finished splits are rarely reused.

Lengths (``train``, ``test``, ``step``, ``purge``, ``embargo``) are a bar count (``500``), a duration
(``120d``, ``12w``, ``36h``, ``90m``) or calendar months (``6M``, ``6mo``; ``1y`` = 12 months). A bar count
means that many bars of the timeframe (a window with missing bars holds fewer; the splits table says so).
``step`` defaults to ``test``; a step shorter than the test window is refused (test windows must not overlap),
a longer one leaves unused data between test windows.

Schemes: ``rolling`` (fixed-length train window), ``anchored`` (expanding: train starts at the origin) and
``adaptive`` (volatility-adaptive: the test grid is the same, but each train window's start moves so it holds
the realized variance of a nominal window at the median per-bar variance seen so far — calm markets get
longer train windows, volatile ones shorter; see :func:`adaptive_train_start`).

Leakage guards (both only ever remove train data):

* ``purge``: bars dropped between a train window's end and its test window (``train_end = test_start - purge``).
* ``embargo`` (López de Prado's, applied to walk-forward): the span right after every test window,
  ``[test_end_j, test_end_j + embargo)``, may not train any later split. Rolling and anchored train windows
  usually contain earlier test windows, so those zones that fall inside split i's train window are listed in
  ``Split.exclude`` (clipped to the window, touching zones merged); research drops those bars' returns from
  the train objective. Earlier splits count whether or not they are among the ``n_splits`` returned, so a
  split's zones do not change as the newest ``n_splits`` slide forward.

Train and test are half-open ``[start, end)`` millisecond ranges that never overlap.
"""

from __future__ import annotations

import calendar
import numbers
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

import numpy as np

from .errors import MaestroError
from .timeframes import DAY_MS, HOUR_MS, MINUTE_MS, timeframe_ms

Scheme = Literal["rolling", "anchored", "adaptive"]
Mode = Literal["calendar", "parts"]
SCHEMES: tuple[str, ...] = ("rolling", "anchored", "adaptive")
MODES: tuple[str, ...] = ("calendar", "parts")


@dataclass(frozen=True)
class Split:
    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int
    #: Embargo zones ``(start, end)`` inside the train window whose bars must not train this split.
    exclude: tuple[tuple[int, int], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------
# lengths and calendar arithmetic
# ---------------------------------------------------------------------------------------------------
_UNIT_MS = {"m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}
_LENGTH_RE = re.compile(r"^([0-9]+)\s*([A-Za-z]*)$")
_EPOCH = date(1970, 1, 1)
_LENGTH_HELP = "write a bar count (500), a duration (90d, 12w, 36h, 90m) or calendar months (6M, 6mo, 1y)"


@dataclass(frozen=True)
class Length:
    """A window length: ``n`` bars, ``n`` milliseconds or ``n`` calendar months."""

    n: int
    unit: Literal["bars", "ms", "months"]

    @property
    def months(self) -> bool:
        return self.unit == "months"

    def ms(self, tf: int) -> int:
        """Fixed length in ms (bars x timeframe); calendar months have none."""
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


def parse_length(value: Any, what: str = "window length", allow_zero: bool = False) -> Length:
    """Read a length: bar count (int or ``"500"``), duration (``m h d w``, lower-case ``m`` = minutes) or
    months (``M``/``mo``/``month``; ``y`` = 12 months). Zero only where ``allow_zero`` (purge, embargo)."""
    if isinstance(value, Length):
        return value
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        n, unit = int(value), "bars"
    elif isinstance(value, str) and (m := _LENGTH_RE.match(value.strip())):
        n, u = int(m.group(1)), m.group(2)
        low = u.lower()
        if u == "" or low in ("bar", "bars"):
            unit = "bars"
        elif u == "M" or low in ("mo", "mos", "month", "months"):
            unit = "months"
        elif low in ("y", "yr", "yrs", "year", "years"):
            n, unit = 12 * n, "months"
        elif u == "m" or low in ("h", "d", "w"):
            n, unit = n * _UNIT_MS[low], "ms"
        else:
            raise MaestroError(f"cannot read {what} {value!r}: unknown unit {u!r}; {_LENGTH_HELP}")
    else:
        raise MaestroError(f"cannot read {what} {value!r}: {_LENGTH_HELP}")
    if n < 0 or (n == 0 and not allow_zero):
        raise MaestroError(f"{what} must be positive, got {value!r}")
    return ZERO if n == 0 else Length(n, unit)  # type: ignore[arg-type]


def add_months(ms: int, n: int) -> int:
    """``ms`` moved by ``n`` calendar months (UTC); a day past the target month's end clamps to its last day."""
    days, rem = divmod(int(ms), DAY_MS)
    d = _EPOCH + timedelta(days=days)
    y, m0 = divmod(d.year * 12 + d.month - 1 + n, 12)
    day = min(d.day, calendar.monthrange(y, m0 + 1)[1])
    return (date(y, m0 + 1, day) - _EPOCH).days * DAY_MS + rem


def month_ceil(ms: int) -> int:
    """The first month start (UTC midnight on the 1st) at or after ``ms``."""
    days, rem = divmod(int(ms), DAY_MS)
    d = _EPOCH + timedelta(days=days)
    first = (date(d.year, d.month, 1) - _EPOCH).days * DAY_MS
    return first if first == ms else add_months(first, 1)


def first_whole_day(ts_ms: int) -> int:
    """The origin: midnight UTC of the first day whose whole span the data covers."""
    return -(-int(ts_ms) // DAY_MS) * DAY_MS


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


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


# ---------------------------------------------------------------------------------------------------
# planning
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Grid:
    """Every complete split position, oldest first: test windows and nominal train windows."""

    test_starts: np.ndarray
    test_ends: np.ndarray
    train_end: Any    # k -> train end
    train_start: Any  # k -> nominal train start


def _calendar_grid(origin: int, data_start: int, data_end: int, tf: int, train: Length, test: Length,
                   step: Length, purge: Length) -> _Grid:
    for name, ln in (("train", train), ("test", test), ("step", step)):
        if not ln.months and ln.ms(tf) < tf:
            raise MaestroError(f"{name} {ln} is shorter than one bar; use at least one bar")
    check_step(step, test, tf)

    def train_end(t: int) -> int:
        return purge.sub(t, tf)

    def train_start(t: int) -> int:
        return train.sub(train_end(t), tf)

    a0 = purge.add(train.add(origin, tf), tf)
    if step.months:
        a0 = month_ceil(a0)
    for _ in range(40):  # month clamping (Jan 31 + 1M - 1M = Jan 28) can put the first train start before the origin
        if train_start(a0) >= origin:
            break
        a0 = add_months(a0, step.n) if step.months else a0 + DAY_MS
    if step.months:
        starts = []
        while test.add(t := add_months(a0, len(starts) * step.n), tf) <= data_end:
            starts.append(t)
        test_starts = np.array(starts, dtype=np.int64)
    else:
        s = step.ms(tf)
        n = 0
        if test.months:
            for k in range((data_end - a0) // s, -1, -1):
                if test.add(a0 + k * s, tf) <= data_end:
                    n = k + 1
                    break
        elif data_end - a0 >= test.ms(tf):
            n = (data_end - a0 - test.ms(tf)) // s + 1
        test_starts = a0 + s * np.arange(n, dtype=np.int64)
    if test_starts.size == 0:
        need = test.add(a0, tf)
        raise MaestroError(
            f"not enough data for one walk-forward split: need about {-(-(need - data_start) // DAY_MS)} days "
            f"(train + purge + test from the first whole day, to {_iso(need)}), have {(data_end - data_start) / DAY_MS:.1f}; "
            "shorten train/test or backfill earlier months"
        )
    if test.months:
        test_ends = np.array([test.add(int(t), tf) for t in test_starts], dtype=np.int64)
    else:
        test_ends = test_starts + test.ms(tf)
    return _Grid(test_starts, test_ends, train_end, train_start)


def _parts_grid(origin: int, data_end: int, tf: int, n_splits: int, train_parts: int, test_parts: int,
                purge: Length) -> _Grid:
    if train_parts < 1 or test_parts < 1:
        raise MaestroError("train_parts and test_parts must each be at least 1")
    k = n_splits * test_parts + train_parts
    part = max(0, data_end - origin) // k // tf * tf
    if part < tf:
        raise MaestroError(
            f"not enough data for {n_splits} splits in parts mode: {k} parts need at least {k} bars after the first "
            f"whole day, have {max(0, data_end - origin) // tf}; lower n_splits or train_parts/test_parts"
        )
    idx = np.arange(n_splits, dtype=np.int64)
    test_starts = origin + (idx * test_parts + train_parts) * part
    test_ends = test_starts + test_parts * part

    def train_end(t: int) -> int:
        end = purge.sub(t, tf)
        if end - (t - train_parts * part) < tf:
            raise MaestroError(f"purge {purge} swallows the whole train window ({train_parts} parts of {part // tf} bars)")
        return end

    def train_start(t: int) -> int:
        return t - train_parts * part

    return _Grid(test_starts, test_ends, train_end, train_start)


def squared_log_returns(close: np.ndarray) -> np.ndarray:
    """``r2[j] = log(close[j] / close[j-1]) ** 2`` (``r2[0] = 0``; non-finite returns count as 0)."""
    c = np.asarray(close, dtype=np.float64)
    r2 = np.zeros(c.size, dtype=np.float64)
    if c.size > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.diff(np.log(c))
        r2[1:] = np.nan_to_num(r * r, nan=0.0, posinf=0.0, neginf=0.0)
    return r2


def adaptive_train_start(ts: np.ndarray, r2: np.ndarray, origin: int, train_end: int, nominal_start: int, tf: int) -> int:
    """Start of a train window ending at ``train_end`` that holds the nominal window's expected variance.

    Target = nominal bars x median squared log return of every bar before ``train_end``; walk back from
    ``train_end`` summing squared log returns until the target is reached (a 1e-9 relative float tolerance);
    the length is clamped to [nominal/2, 2 x nominal] and the start to the origin. Only bars before
    ``train_end`` are read. No variance yet (flat prices) keeps the nominal start.
    """
    length = train_end - nominal_start
    j_end = int(np.searchsorted(ts, train_end, side="left"))
    past = r2[1:j_end]
    if past.size == 0:
        return nominal_start
    med = float(np.median(past))
    if not med > 0:
        return nominal_start
    target = (length // tf) * med * (1 - 1e-9)
    acc = np.cumsum(past[::-1])           # acc[m]: variance of the last m + 1 bars before train_end
    m = int(np.searchsorted(acc, target, side="left"))
    start = int(ts[j_end - 1 - m]) if m < acc.size else train_end - 2 * length
    lo = train_end - 2 * length
    hi = (train_end - length // 2) // tf * tf
    return max(origin, min(max(start, lo), hi))


def _embargo_zones(earlier_ends: np.ndarray, embargo: Length, lo: int, hi: int, tf: int) -> tuple[tuple[int, int], ...]:
    """Zones ``[e, e + embargo)`` of earlier test ends ``e``, clipped to ``[lo, hi)``, touching zones merged."""
    if embargo.n == 0 or earlier_ends.size == 0:
        return ()
    reach = embargo.bounds_ms(tf)[1]
    a, b = np.searchsorted(earlier_ends, [lo - reach, hi], side="left")
    zones: list[list[int]] = []
    for e in earlier_ends[a:b]:
        z0, z1 = max(int(e), lo), min(embargo.add(int(e), tf), hi)
        if z1 <= z0:
            continue
        if zones and z0 <= zones[-1][1]:
            zones[-1][1] = max(zones[-1][1], z1)
        else:
            zones.append([z0, z1])
    return tuple((z0, z1) for z0, z1 in zones)


def _plan(grid: _Grid, origin: int, tf: int, n_splits: int, scheme: str, embargo: Length,
          ts: np.ndarray | None, r2: np.ndarray | None) -> list[Split]:
    n = grid.test_starts.size
    out: list[Split] = []
    for i, k in enumerate(range(max(0, n - n_splits), n)):
        test_start, test_end = int(grid.test_starts[k]), int(grid.test_ends[k])
        train_end = grid.train_end(test_start)
        nominal = grid.train_start(test_start)
        if scheme == "anchored":
            train_start = origin
        elif scheme == "adaptive":
            assert ts is not None and r2 is not None
            train_start = adaptive_train_start(ts, r2, origin, train_end, nominal, tf)
        else:
            train_start = nominal
        exclude = _embargo_zones(grid.test_ends[:k], embargo, train_start, train_end, tf)
        out.append(Split(i, train_start, train_end, test_start, test_end, exclude))
    return out


def plan_splits(
    ts: np.ndarray,
    close: np.ndarray | None,
    timeframe: str,
    *,
    train: str | int = "120d",
    test: str | int = "30d",
    step: str | int | None = None,
    n_splits: int = 6,
    scheme: str = "rolling",
    purge: str | int = 0,
    embargo: str | int = 0,
    mode: str = "calendar",
    train_parts: int = 2,
    test_parts: int = 1,
) -> list[Split]:
    """The ``n_splits`` most recent complete splits of these bars (sorted open times in ms, and closes).

    ``close`` is needed by the ``adaptive`` scheme only. ``train``/``test``/``step`` are ignored in ``parts``
    mode, which cuts the data into ``n_splits * test_parts + train_parts`` parts instead. Every problem is a
    one-line ``MaestroError``.
    """
    tf = timeframe_ms(timeframe)
    ts = np.asarray(ts, dtype=np.int64)
    if ts.size == 0:
        raise MaestroError("no bars to split: materialize validated_bars first")
    if ts.size > 1 and not bool(np.all(np.diff(ts) > 0)):
        raise MaestroError("bar timestamps must be strictly increasing: sort and de-duplicate the bars")
    if scheme not in SCHEMES:
        raise MaestroError(f"unknown walk-forward scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if mode not in MODES:
        raise MaestroError(f"unknown walk-forward mode {mode!r}; use one of {', '.join(MODES)}")
    if n_splits < 1:
        raise MaestroError("n_splits must be at least 1")
    purge_l = parse_length(purge, "purge", allow_zero=True)
    embargo_l = parse_length(embargo, "embargo", allow_zero=True)
    origin, data_end = first_whole_day(int(ts[0])), int(ts[-1]) + tf
    if mode == "parts":
        grid = _parts_grid(origin, data_end, tf, n_splits, train_parts, test_parts, purge_l)
    else:
        test_l = parse_length(test)
        step_l = test_l if step is None else parse_length(step, "step")
        grid = _calendar_grid(origin, int(ts[0]), data_end, tf, parse_length(train), test_l, step_l, purge_l)
    r2 = None
    if scheme == "adaptive":
        if close is None or len(close) != ts.size:
            raise MaestroError("the adaptive scheme needs one close per bar")
        r2 = squared_log_returns(np.asarray(close))
    return _plan(grid, origin, tf, n_splits, scheme, embargo_l, ts, r2)


def walk_forward_splits(
    data_start_ms: int,
    data_end_ms: int,
    *,
    train_ms: int,
    test_ms: int,
    n_splits: int,
    scheme: str = "rolling",
    purge_ms: int = 0,
    timeframe_ms: int,
) -> list[Split]:
    """Calendar-grid splits of ``[data_start_ms, data_end_ms)`` from fixed ms lengths (rolling or anchored).

    The planner's core without bars (``data_end_ms`` exclusive); :func:`plan_splits` is the full version.
    """
    if n_splits < 1:
        raise MaestroError("n_splits must be at least 1")
    if scheme not in ("rolling", "anchored"):
        raise MaestroError(f"scheme {scheme!r} needs the bars: use plan_splits")
    if purge_ms < 0:
        raise MaestroError("purge must not be negative")
    tf = timeframe_ms
    origin = first_whole_day(data_start_ms)
    grid = _calendar_grid(origin, data_start_ms, data_end_ms, tf, Length(train_ms, "ms"), Length(test_ms, "ms"),
                          Length(test_ms, "ms"), Length(purge_ms, "ms") if purge_ms else ZERO)
    return _plan(grid, origin, tf, n_splits, scheme, ZERO, None, None)


def next_split_ready_ms(splits: list[Split], test_ms: int) -> int:
    """Data must reach (exclusive end) this instant before a new complete split exists (fixed-length test = step)."""
    if not splits:
        raise MaestroError("no splits yet")
    return splits[-1].test_end + test_ms


def next_test_end_ms(splits: list[Split], timeframe: str, test: str | int, step: str | int | None = None) -> int:
    """Like :func:`next_split_ready_ms` for any calendar-mode lengths (months too): the next test window's end."""
    if not splits:
        raise MaestroError("no splits yet")
    tf = timeframe_ms(timeframe)
    test_l = parse_length(test)
    step_l = test_l if step is None else parse_length(step, "step")
    return test_l.add(step_l.add(splits[-1].test_start, tf), tf)


# ---------------------------------------------------------------------------------------------------
# parameters vs windows
# ---------------------------------------------------------------------------------------------------
#: An integer parameter is a look-back window when its name is or ends with one of these words
#: (``slow``, ``exit_lookback``, ``bb_window``, ``premium_span``; Ichimoku's periods by name).
WINDOW_WORDS: tuple[str, ...] = (
    "period", "window", "length", "lookback", "span", "slow", "fast", "memory", "tenkan", "kijun", "senkou",
)


def is_window_param(name: str) -> bool:
    return name.lower().endswith(WINDOW_WORDS)


def window_params_over(strategy: Any, train_bars: int) -> dict[str, int]:
    """Window-like integer parameters of ``strategy``'s search space (a ``Strategy`` or its name) whose upper
    bound is longer than half of ``train_bars``: ``{name: high}``. An indicator that long leaves the train
    window too few bars with a valid signal to judge the parameter on."""
    from .strategies import get_strategy
    from .strategies.base import IntParam

    strat = get_strategy(strategy) if isinstance(strategy, str) else strategy
    limit = int(train_bars) // 2
    return {name: int(p.high) for name, p in strat.space.items()
            if isinstance(p, IntParam) and is_window_param(name) and p.high > limit}


def check_window_fits(strategy: Any, train_bars: int) -> None:
    """Refuse (one-line ``MaestroError``) a search space that does not fit the shortest train window."""
    over = window_params_over(strategy, train_bars)
    if over:
        name = strategy if isinstance(strategy, str) else strategy.name
        limit = int(train_bars) // 2
        worst = max(over.values())
        what = ", ".join(f"{p} up to {hi}" for p, hi in over.items())
        fix = " and ".join(f"lower {p}'s high to {limit}" for p in over)
        raise MaestroError(
            f"strategy {name}: {what} bars is longer than half the shortest train window ({train_bars} bars); "
            f"{fix} or lengthen train to at least {2 * worst} bars"
        )


def shortest_train_bars(splits: list[Split], ts: np.ndarray) -> int:
    """Fewest bars any split trains on (bars in embargo zones do not count)."""
    ts = np.asarray(ts, dtype=np.int64)

    def count(a: int, b: int) -> int:
        i, j = np.searchsorted(ts, [a, b], side="left")
        return int(j - i)

    return min(count(s.train_start, s.train_end) - sum(count(a, b) for a, b in s.exclude) for s in splits)
