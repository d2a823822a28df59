"""VWR (variability-weighted return): Backtrader 1.9.78's ``bt.analyzers.VWR`` reproduced operation for
operation (:func:`backtrader_vwr`), checked against Backtrader itself in the tests. What Backtrader does,
and therefore what this module does:

* Periods. Backtrader groups bars into periods of the analyzer's timeframe (by default the data feed's own
  timeframe/compression). :func:`compute_metrics` assumes the feed was declared with the bars' own size
  (``TimeFrame.Minutes`` with compression 60 for 1h bars, ``Days`` for 1d, ``Weeks`` for 1w), so every bar is
  one period. :func:`backtrader_vwr` also takes explicit period keys (:func:`backtrader_period_keys`), e.g.
  calendar days for hourly bars, which is what Backtrader does when hourly data is added with
  ``PandasData``'s default ``timeframe=Days``.
* Returns. ``ravg = ln(V_end / V_0) / n_periods``; ``rnorm100 = 100 * expm1(ravg * tann)`` with
  ``tann`` 252 for Days, 52 for Weeks, 12 for Months, 1 for Years and **1.0 for every intraday timeframe**
  (Backtrader has no entry for Minutes/Seconds and falls back to 1): an hourly VWR's return part is the mean
  *hourly* log return (as a %), not an annual one. Daily bars use 252, not 365.
* Variability. For the ``k``-th (1-based) pair of period start/end values ``(p_i, p_n)``:
  ``d_k = p_n / (p_i * exp(ravg * k)) - 1`` (Backtrader compounds the *cumulative* average growth ``k``
  periods onto each period's own start value: its quirk, reproduced); ``sdev = stdev(d, ddof=1)``;
  ``VWR = rnorm100 * (1 - (sdev / sdev_max) ** tau)`` with Backtrader's *code* defaults ``tau = 0.20`` and
  ``sdev_max = 2.0`` (its docstring says the reverse). The pairs are: ``(V_0, value at the first bar)``, then
  one per period whose start is the previous period's end. Backtrader notifies the broker value before it
  detects a new period, so a period's "end" value is the value at the *first bar of the next period* (and
  the last period ends at the last bar); with one bar per period this is simply consecutive bar values.
* Degenerate cases, where Backtrader raises or returns -inf: fewer than two pairs gives 0.0; an equity that
  reaches zero or below gives -100.0 (a total loss).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import MaestroError

__all__ = ["VWR_SDEV_MAX", "VWR_TAU", "backtrader_period_keys", "backtrader_tann", "backtrader_vwr",
           "tann_from_periods_per_year"]

#: Backtrader's VWR code defaults (``bt.analyzers.VWR.params``; its docstring has them swapped).
VWR_TAU = 0.20
VWR_SDEV_MAX = 2.0


#: Backtrader's ``Returns._TANN``; any other (intraday) timeframe falls back to 1.0.
_BT_TANN = {"days": 252.0, "weeks": 52.0, "months": 12.0, "years": 1.0}


def backtrader_tann(timeframe: str) -> float:
    """The ``tann`` Backtrader's VWR uses when the feed is declared with the bar's own timeframe.

    ``"1h"`` -> ``TimeFrame.Minutes``/60 -> no entry -> 1.0; ``"1d"``/``"3d"`` -> Days -> 252.0 (Backtrader's
    Days grouping ignores the compression); ``"1w"`` -> Weeks -> 52.0.
    """
    unit = timeframe.strip()[-1:]
    return {"d": _BT_TANN["days"], "w": _BT_TANN["weeks"]}.get(unit, 1.0)


def tann_from_periods_per_year(periods_per_year: float) -> float:
    days = 365.0 / periods_per_year  # bar length in days
    if days < 1 - 1e-9:
        return 1.0  # intraday: TimeFrame.Minutes, no annualization in Backtrader
    if days < 7 - 1e-9:
        return _BT_TANN["days"]
    return _BT_TANN["weeks"]


def backtrader_period_keys(index: pd.DatetimeIndex, timeframe: str, compression: int = 1) -> np.ndarray:
    """Backtrader's period of every bar (``TimeFrameAnalyzerBase._get_dt_cmpkey``) as an int64 key.

    ``timeframe``: ``"minutes"`` (buckets of ``compression`` minutes within the day, as Backtrader's sub-day
    boundaries), ``"days"``, ``"weeks"`` (ISO weeks), ``"months"`` or ``"years"``. ``index`` holds the bar
    datetimes Backtrader would see (naive UTC here).
    """
    idx = pd.DatetimeIndex(index)
    if timeframe == "minutes":
        minute_of_day = idx.hour.to_numpy() * 60 + idx.minute.to_numpy()
        day = (idx.normalize() - pd.Timestamp("1970-01-01")).days.to_numpy().astype(np.int64)
        buckets = 1440 // int(compression) + 1
        return day * buckets + minute_of_day // int(compression)
    if timeframe == "days":
        return (idx.year.to_numpy() * 10000 + idx.month.to_numpy() * 100 + idx.day.to_numpy()).astype(np.int64)
    if timeframe == "weeks":
        iso = idx.isocalendar()
        return (iso["year"].to_numpy().astype(np.int64) * 100 + iso["week"].to_numpy().astype(np.int64))
    if timeframe == "months":
        return (idx.year.to_numpy() * 100 + idx.month.to_numpy()).astype(np.int64)
    if timeframe == "years":
        return idx.year.to_numpy().astype(np.int64)
    raise MaestroError(f"timeframe {timeframe!r}: use minutes, days, weeks, months or years")


def backtrader_vwr(
    values: np.ndarray | pd.Series,
    start_value: float,
    *,
    tann: float = 1.0,
    period_keys: np.ndarray | None = None,
    tau: float = VWR_TAU,
    sdev_max: float = VWR_SDEV_MAX,
) -> float:
    """Backtrader's ``VWR`` analyzer (1.9.78) on broker values ``values`` (one per bar, at its close).

    ``start_value`` is the broker value before the first bar; ``period_keys`` (non-decreasing, one per bar)
    says which Backtrader period each bar is in (None: every bar its own period). See the module docstring
    for what is reproduced, including Backtrader's quirks.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    n = v.shape[0]
    if n == 0:
        return 0.0
    if not (start_value > 0 and np.all(v > 0)):
        return -100.0
    if period_keys is None:
        new_period = np.ones(n, dtype=bool)
    else:
        keys = np.asarray(period_keys).reshape(-1)
        if keys.shape[0] != n:
            raise MaestroError(f"period_keys has {keys.shape[0]} entries for {n} values")
        new_period = np.r_[True, keys[1:] > keys[:-1]]
    # VWR.start: pis = [V0], pns = [None]; each bar: pns[-1] = value, then on a new period
    # pis.append(pns[-1]); pns.append(None). stop: drop a trailing (pi, None) pair.
    starts = np.flatnonzero(new_period)  # bars where a new period is detected
    pis = np.r_[start_value, v[starts]]
    # pns[j] = value notified last before pair j+1 was opened, i.e. at bar starts[j]; the last one is the
    # final bar's value unless that bar opened a new (then empty) pair
    ends = np.r_[starts, n - 1]
    pns = v[ends]
    if new_period[-1]:
        pis, pns = pis[:-1], pns[:-1]
    tcount = starts.shape[0]
    ravg = math.log(float(v[-1]) / float(start_value)) / tcount
    rnorm100 = math.expm1(ravg * tann) * 100.0
    k = np.arange(1, pis.shape[0] + 1, dtype=np.float64)
    dts = pns / (pis * np.exp(ravg * k)) - 1.0
    if dts.shape[0] < 2:
        return 0.0
    # Backtrader's mathsupport.standarddev: fsum-based mean and variance, Bessel-corrected
    mean = math.fsum(dts.tolist()) / dts.shape[0]
    sdev = math.sqrt(math.fsum(((dts - mean) ** 2).tolist()) / (dts.shape[0] - 1))
    return float(rnorm100 * (1.0 - pow(sdev / sdev_max, tau)))

