"""Performance metrics from per-bar returns (and optionally the trade list), with written-down conventions.

The ratio conventions are quantstats' (``quantstats.stats.sharpe/sortino/cagr/max_drawdown``), checked
against it in the tests; ``METRIC_CONVENTIONS`` is recorded next to every result so a number can always be
traced to its definition. Every value is a finite float (JSON-safe): a ratio whose denominator is zero
(Sharpe of a flat series, profit factor or payoff ratio with no losses, Calmar without drawdown) is 0.0.

VWR (variability-weighted return) is Backtrader 1.9.78's ``bt.analyzers.VWR`` reproduced operation for
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

from .errors import MaestroError

__all__ = [
    "METRIC_CONVENTIONS",
    "METRIC_KEYS",
    "VWR_SDEV_MAX",
    "VWR_TAU",
    "backtrader_period_keys",
    "backtrader_tann",
    "backtrader_vwr",
    "compute_metrics",
]

#: Backtrader's VWR code defaults (``bt.analyzers.VWR.params``; its docstring has them swapped).
VWR_TAU = 0.20
VWR_SDEV_MAX = 2.0

METRIC_CONVENTIONS: dict[str, object] = {
    "version": 2,
    "returns": "simple per-bar returns of portfolio value marked at each bar's close",
    "annualization": "periods_per_year bars per 365-day year (crypto trades 24/7: 8760 for 1h, 365 for 1d); "
    "VWR alone follows Backtrader's own annualization (see vwr)",
    "json": "every value is a finite float: undefined ratios are 0, never inf or NaN",
    "risk_free_rate": 0.0,
    "ddof": 1,
    "total_return": "prod(1 + r) - 1",
    "cagr": "the annual return: (1 + total_return) ** (periods_per_year / n) - 1, years = n bars / periods_per_year "
    "(quantstats); -1 if equity ends at or below zero",
    "volatility": "std(r, ddof=1) * sqrt(periods_per_year)",
    "sharpe": "mean(r) / std(r, ddof=1) * sqrt(periods_per_year), rf = 0 (quantstats); 0 if std == 0 or n < 2",
    "sortino": "mean(r) / sqrt(sum(min(r, 0)^2) / n) * sqrt(periods_per_year) (quantstats, Red Rock); "
    "0 if there is no downside",
    "max_drawdown": "min(equity / running_peak - 1), equity = cumprod(1 + r) starting from 1 before the "
    "first bar (quantstats); a negative fraction, 0 if never under water",
    "max_drawdown_bars": "longest run of consecutive bars whose equity closes below its running peak "
    "(the peak includes the starting equity); 0 if never under water",
    "max_drawdown_days": "max_drawdown_bars * bar length in days (365 / periods_per_year); gaps in the bars "
    "are not counted",
    "calmar": "cagr / |max_drawdown|; 0 if max_drawdown == 0",
    "win_rate": "with trades: share of trades with pnl > 0 (open trades marked at the last close); "
    "without: share of non-zero returns that are positive (quantstats); 0 if there are none",
    "profit_factor": "with trades: sum of winning pnl / |sum of losing pnl|; without: the same over returns; "
    "0 if nothing was lost (undefined ratios are 0 so every value is JSON-safe: read it with n_trades and "
    "win_rate, which say whether anything was won)",
    "payoff_ratio": "with trades: mean winning pnl / |mean losing pnl|; without: the same over non-zero "
    "returns (quantstats payoff_ratio); 0 if there are no wins or no losses",
    "expectancy": "with trades: mean of the trades' own returns (the trade list's 'return' column: pnl over "
    "the capital committed at entry) = win_rate * mean win - loss_rate * mean |loss|; without: mean of the "
    "non-zero returns; 0 if there are none",
    "vwr": "Backtrader 1.9.78 VWR analyzer, reproduced exactly with its code defaults tau=0.20, "
    "sdev_max=2.0; one period per bar (the feed declared with the bar's own timeframe/compression); "
    "tann = 1 for intraday bars (Backtrader does not annualize Minutes: the return part is the mean per-bar "
    "log return in %), 252 for 1d and 3d bars (Days), 52 for 1w (Weeks); 0 with fewer than 2 bars, -100 if "
    "equity reaches zero (see maestro_pipeline.metrics docstring)",
    "n_trades": "trades entered in the window, closed or still open (a reversal counts as two); only with trades",
    "exposure": "share of bars that end holding a position (entry bar through the bar before the exit fill); "
    "only with trades and a DatetimeIndex on returns",
}

METRIC_KEYS = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_bars",
    "max_drawdown_days",
    "calmar",
    "vwr",
    "win_rate",
    "profit_factor",
    "payoff_ratio",
    "expectancy",
    "n_trades",
    "exposure",
)


def _ratio_or_zero(num: float, den: float) -> float:
    return float(num / den) if den > 0 and math.isfinite(den) else 0.0


def _profit_factor(gains: float, losses: float) -> float:
    """gains / losses (both >= 0); 0.0 when nothing was lost (undefined: kept JSON-safe, see conventions)."""
    return _ratio_or_zero(gains, losses)


def _payoff_and_expectancy(values: np.ndarray) -> tuple[float, float]:
    """(mean win / |mean loss|, mean) of the non-zero values; 0.0 where undefined."""
    v = values[values != 0]
    if v.size == 0:
        return 0.0, 0.0
    wins, losses = v[v > 0], v[v < 0]
    payoff = _ratio_or_zero(float(wins.mean()), float(-losses.mean())) if wins.size and losses.size else 0.0
    return payoff, float(v.mean())


def _longest_underwater(equity: np.ndarray) -> int:
    """Longest run of consecutive points strictly below the running peak of ``equity``."""
    under = equity < np.maximum.accumulate(equity)
    if not under.any():
        return 0
    # run lengths of True: positions where a run starts/ends
    padded = np.concatenate(([False], under, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return int(np.max(edges[1::2] - edges[0::2]))


# ----------------------------------------------------------------------------- VWR (Backtrader)

#: Backtrader's ``Returns._TANN``; any other (intraday) timeframe falls back to 1.0.
_BT_TANN = {"days": 252.0, "weeks": 52.0, "months": 12.0, "years": 1.0}


def backtrader_tann(timeframe: str) -> float:
    """The ``tann`` Backtrader's VWR uses when the feed is declared with the bar's own timeframe.

    ``"1h"`` -> ``TimeFrame.Minutes``/60 -> no entry -> 1.0; ``"1d"``/``"3d"`` -> Days -> 252.0 (Backtrader's
    Days grouping ignores the compression); ``"1w"`` -> Weeks -> 52.0.
    """
    unit = timeframe.strip()[-1:]
    return {"d": _BT_TANN["days"], "w": _BT_TANN["weeks"]}.get(unit, 1.0)


def _tann_from_periods_per_year(periods_per_year: float) -> float:
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


def _exposure(index: pd.DatetimeIndex, trades: pd.DataFrame) -> float:
    n = len(index)
    if n == 0:
        return 0.0
    held = np.zeros(n + 1, dtype=np.int64)  # difference array over bars
    entries = index.searchsorted(pd.DatetimeIndex(trades["entry_time"]))
    exits = index.searchsorted(pd.DatetimeIndex(trades["exit_time"]))
    is_open = (trades["status"] == "open").to_numpy()
    exits = np.where(is_open, n, exits)  # an open trade is held through the last bar
    np.add.at(held, entries, 1)
    np.add.at(held, exits, -1)
    return float(np.mean(np.cumsum(held[:n]) > 0))


def compute_metrics(
    returns: np.ndarray | pd.Series,
    periods_per_year: float,
    trades: pd.DataFrame | None = None,
) -> dict[str, float]:
    """Metrics of a per-bar return series (see ``METRIC_CONVENTIONS``); every value is a finite float."""
    if not (isinstance(periods_per_year, (int, float)) and periods_per_year > 0):
        raise MaestroError(f"periods_per_year={periods_per_year!r} must be positive, e.g. bars_per_year('1h')")
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(r)):
        raise MaestroError("returns contain NaN or inf: compute metrics on a complete, finite return series")
    n = r.shape[0]
    ann = math.sqrt(periods_per_year)

    if n == 0:
        out = dict.fromkeys(METRIC_KEYS[: METRIC_KEYS.index("n_trades")], 0.0)
    else:
        wealth = float(np.prod(1.0 + r))
        total_return = wealth - 1.0
        cagr = wealth ** (periods_per_year / n) - 1.0 if wealth > 0 else -1.0
        mean = float(np.mean(r))
        std = float(np.std(r, ddof=1)) if n > 1 else 0.0
        # a constant series has a tiny float std (e.g. 1e-19), not 0: treat it as no variation
        if std <= 1e-14 * max(1.0, abs(mean)):
            std = 0.0
        downside = math.sqrt(float(np.sum(np.minimum(r, 0.0) ** 2)) / n)
        equity = np.concatenate(([1.0], np.cumprod(1.0 + r)))
        max_dd = float(np.min(equity / np.maximum.accumulate(equity) - 1.0))
        dd_bars = _longest_underwater(equity)
        out = {
            "total_return": total_return,
            "cagr": cagr,
            "volatility": std * ann,
            "sharpe": _ratio_or_zero(mean, std) * ann,
            "sortino": _ratio_or_zero(mean, downside) * ann,
            "max_drawdown": max_dd,
            "max_drawdown_bars": float(dd_bars),
            "max_drawdown_days": dd_bars * 365.0 / periods_per_year,
            "calmar": _ratio_or_zero(cagr, abs(max_dd)),
            "vwr": backtrader_vwr(equity[1:], 1.0, tann=_tann_from_periods_per_year(periods_per_year)),
        }
        if trades is None:
            nonzero = r[r != 0]
            out["win_rate"] = float(np.mean(nonzero > 0)) if nonzero.size else 0.0
            out["profit_factor"] = _profit_factor(float(r[r > 0].sum()), float(-r[r < 0].sum()))
            out["payoff_ratio"], out["expectancy"] = _payoff_and_expectancy(r)

    if trades is not None:
        pnl = trades["pnl"].to_numpy(dtype=np.float64) if len(trades) else np.zeros(0)
        out["win_rate"] = float(np.mean(pnl > 0)) if pnl.size else 0.0
        out["profit_factor"] = _profit_factor(float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum()))
        out["payoff_ratio"] = _payoff_and_expectancy(pnl)[0]
        if "return" in trades.columns and len(trades):
            tr = trades["return"].to_numpy(dtype=np.float64)
            out["expectancy"] = float(np.mean(tr)) if np.all(np.isfinite(tr)) else 0.0
        else:
            out["expectancy"] = 0.0
        out["n_trades"] = float(len(trades))
        if isinstance(returns, pd.Series) and isinstance(returns.index, pd.DatetimeIndex):
            out["exposure"] = _exposure(returns.index, trades) if len(trades) else 0.0
    return {k: float(out[k]) for k in METRIC_KEYS if k in out}
