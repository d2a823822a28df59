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
(``120d``, ``12w``, ``36h``, ``90m``) or calendar months (``6M``, ``6mo``; ``1y`` = 12 months); see
:mod:`maestro_pipeline.durations`. A bar count
means that many bars of the timeframe (a window with missing bars holds fewer; the splits table says so).
``step`` defaults to ``test``; a step shorter than the test window is refused (test windows must not overlap),
a longer one leaves unused data between test windows.

Schemes: ``rolling`` (fixed-length train window), ``anchored`` (expanding: train starts at the origin) and
``adaptive`` (volatility-adaptive: the test grid is the same, but each train window's start moves so it holds
the realized variance of a nominal window at the mean per-bar variance seen so far — calm markets get
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

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import WalkForwardConfig
from ..durations import Length, add_months, check_step, first_whole_day, iso, month_ceil, parse_length
from ..errors import MaestroError
from ..timeframes import DAY_MS, timeframe_ms

__all__ = ["Split", "adaptive_train_start", "next_test_end_ms", "plan_splits", "squared_log_returns"]


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
            f"(train + purge + test from the first whole day, i.e. data up to {iso(need)}), "
            f"have {(data_end - data_start) / DAY_MS:.1f} days ({iso(data_start)} to {iso(data_end)}); "
            "shorten walk_forward.train/test or backfill earlier months (the instrument's start)"
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
            raise MaestroError(f"purge {purge} swallows the whole train window "
                               f"({train_parts} parts of {part // tf} bars)")
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


def adaptive_train_start(ts: np.ndarray, r2: np.ndarray, origin: int, train_end: int, nominal_start: int,
                         tf: int) -> int:
    """Start of a train window ending at ``train_end`` that holds the nominal window's expected variance.

    Target = nominal bars x mean squared log return of every bar before ``train_end`` (the same statistic the walk
    sums, so a window of average variance keeps its nominal length; a median would undershoot the sum of fat-tailed
    returns and pin every window to the minimum); walk back from
    ``train_end`` summing squared log returns until the target is reached (a 1e-9 relative float tolerance);
    the length is clamped to [nominal/2, 2 x nominal] and the start to the origin. Only bars before
    ``train_end`` are read. No variance yet (flat prices) keeps the nominal start.
    """
    length = train_end - nominal_start
    j_end = int(np.searchsorted(ts, train_end, side="left"))
    past = r2[1:j_end]
    if past.size == 0:
        return nominal_start
    mean = float(np.mean(past))
    if not mean > 0:
        return nominal_start
    target = (length // tf) * mean * (1 - 1e-9)
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



def plan_splits(ts: np.ndarray, close: np.ndarray | None, timeframe: str, wf: WalkForwardConfig) -> list[Split]:
    """The ``wf.n_splits`` most recent complete splits of these bars (sorted open times in ms, and closes).

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
    purge_l = parse_length(wf.purge, "purge", allow_zero=True)
    embargo_l = parse_length(wf.embargo, "embargo", allow_zero=True)
    origin, data_end = first_whole_day(int(ts[0])), int(ts[-1]) + tf
    if wf.mode == "parts":
        grid = _parts_grid(origin, data_end, tf, wf.n_splits, wf.train_parts, wf.test_parts, purge_l)
    else:
        test_l = parse_length(wf.test)
        step_l = test_l if wf.step is None else parse_length(wf.step, "step")
        grid = _calendar_grid(origin, int(ts[0]), data_end, tf, parse_length(wf.train), test_l, step_l, purge_l)
    r2 = None
    if wf.scheme == "adaptive":
        if close is None or len(close) != ts.size:
            raise MaestroError("the adaptive scheme needs one close per bar")
        r2 = squared_log_returns(np.asarray(close))
    return _plan(grid, origin, tf, wf.n_splits, wf.scheme, embargo_l, ts, r2)


def next_test_end_ms(splits: list[Split], timeframe: str, wf: WalkForwardConfig) -> int:
    """Data must reach (exclusive end) this instant before a new complete split exists: the next test window's
    end on the calendar grid (any lengths, months too)."""
    if not splits:
        raise MaestroError("no splits yet")
    tf = timeframe_ms(timeframe)
    test_l = parse_length(wf.test)
    step_l = test_l if wf.step is None else parse_length(wf.step, "step")
    return test_l.add(step_l.add(splits[-1].test_start, tf), tf)
