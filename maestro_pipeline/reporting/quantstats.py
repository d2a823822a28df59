"""quantstats figures of the stitched out-of-sample (OOS) return series: the full table, the headline subset, rolling
Sharpe/volatility, and the daily series they are computed on (also what the tearsheet and the charts read).

Input everywhere is ``bar_returns``: a ``pd.Series`` of simple per-bar returns (``0.01`` = +1 %) on a
naive-UTC ``DatetimeIndex`` (a tz-aware index is converted to UTC and made naive), at any bar size
from 1m to 1d. Conventions (also exported as :data:`QUANTSTATS_CONVENTIONS`):

* **Daily first.** quantstats expects one return per period, and its ratios assume daily data. Bars are
  therefore compounded into UTC calendar-day returns (``(1 + r).prod() - 1`` per day, see
  :func:`daily_returns`) and every statistic is computed on those. Days without a single bar are
  absent, not zero-filled: a gap is not a flat day.
* **365-day year.** Crypto trades every day, so ``periods=365`` wherever quantstats annualizes
  (quantstats defaults to 252). Sharpe/Sortino scale by ``sqrt(365)``, volatility by ``sqrt(365)``.
* **CAGR.** quantstats 0.0.86 computes ``cagr`` as ``(1 + total)^(1 / years) - 1`` with
  ``years = number_of_returns / periods`` (it takes ``periods``; it does *not* use the calendar
  span). With ``periods=365`` on daily returns that is ``years = observed_days / 365``: a 365-day
  year of observed days. For a stitched OOS series with no missing day this equals the calendar
  span (first to last UTC day, both included); the first and last (possibly partial) days count as
  whole days. Calmar is ``cagr / |max_drawdown|`` with the same CAGR.
* **Max drawdown** is measured on end-of-day equity starting from 1.0 before the first day (a loss on
  day one is a drawdown). Intraday excursions below the daily closes are not seen.
* **rf = 0.** Win rate, payoff ratio, Kelly, consecutive wins/losses count *days* (days with a zero
  return are ignored by quantstats' win rate). VaR/CVaR are quantstats' parametric (normal) daily
  figures at 95 %.
* **Undefined values are NaN.** Every metric is a plain ``float``. Where quantstats has no finite
  answer (e.g. Sharpe of a constant series, profit factor or Calmar with no losing day, payoff ratio
  without losses) the value is ``float("nan")``, never ``inf`` and never ``None``.

quantstats is imported lazily (it pulls in yfinance and seaborn, ~5 s), inside ``matplotlib.rc_context``
so that its import-time ``seaborn.set_theme`` does not restyle every other matplotlib figure of the
process; its theme is re-applied only while the tearsheet is drawn. The tearsheet never touches the
network (benchmarks are passed as return series, never as tickers).
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator
from importlib import metadata as _metadata
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MaestroError
from ..timeframes import YEAR_DAYS

__all__ = [
    "BENCHMARK_KEYS", "METRIC_KEYS", "QUANTSTATS_CONVENTIONS", "TABLE_KEYS", "TABLE_SPEC", "aligned_benchmark_daily",
    "check_reads_as_returns", "clean_bar_returns", "daily_pair", "daily_returns", "quantstats", "quantstats_metrics",
    "quantstats_rc", "quantstats_table", "quiet", "rolling_metrics",
]

def _qs_version() -> str:
    try:
        return _metadata.version("quantstats")
    except _metadata.PackageNotFoundError:  # pragma: no cover - quantstats is a hard dependency
        return "unknown"


#: How every figure in this module is computed; attach it to reports so the numbers can be interpreted.
QUANTSTATS_CONVENTIONS: dict[str, Any] = {
    "periods_per_year": YEAR_DAYS,
    "returns": "daily: per-bar simple returns compounded into UTC calendar days; days without bars are absent",
    "rf": 0.0,
    "cagr": "(1 + total_return) ** (365 / observed_days) - 1 (quantstats cagr with periods=365)",
    "max_drawdown": "on end-of-day equity, starting from 1.0 before the first day",
    "var_cvar": "parametric (normal), daily, 95% confidence",
    "undefined": "NaN where quantstats gives no finite value (e.g. zero variance, no losing day)",
    "library": f"quantstats {_qs_version()}",
}

# Keys returned by quantstats_metrics, in order (benchmark keys only when a benchmark is given).
METRIC_KEYS: tuple[str, ...] = (
    "total_return", "cagr", "sharpe", "sortino", "volatility", "max_drawdown", "calmar",
    "win_rate", "profit_factor", "omega", "var", "cvar", "tail_ratio", "best_day", "worst_day",
    "kelly", "payoff_ratio", "consecutive_wins", "consecutive_losses",
)
BENCHMARK_KEYS: tuple[str, ...] = ("benchmark_total_return", "benchmark_sharpe", "benchmark_max_drawdown")


# --------------------------------------------------------------------------------------------------
# quantstats import and noise control
# --------------------------------------------------------------------------------------------------

#: Cache: the quantstats module once imported, and the matplotlib rcParams its import changed (see :func:`quantstats`).
_QS: Any = None
_QS_RC: dict[str, Any] = {}

_NOISY_LOGGERS = ("matplotlib", "matplotlib.font_manager", "matplotlib.category", "fontTools", "PIL", "yfinance")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence warnings and matplotlib font noise for the duration of the block, then restore."""
    saved = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for name in _NOISY_LOGGERS:
                logging.getLogger(name).setLevel(logging.ERROR)
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def quantstats() -> Any:
    """Import quantstats once, keeping its import-time matplotlib styling out of the global rcParams."""
    global _QS, _QS_RC
    if _QS is None:
        import matplotlib

        with quiet(), matplotlib.rc_context():
            before = dict(matplotlib.rcParams)
            import quantstats

            after = dict(matplotlib.rcParams)
        _QS_RC = {
            k: v for k, v in after.items()
            if k != "backend" and (k not in before or str(before[k]) != str(v))
        }
        _QS = quantstats
    return _QS


# --------------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------------


def clean_bar_returns(bar_returns: Any, what: str = "bar_returns") -> pd.Series:
    """Validate and normalize: float Series, naive-UTC sorted unique DatetimeIndex, finite values > -1 ..."""
    if not isinstance(bar_returns, pd.Series):
        raise MaestroError(f"{what} must be a pandas Series of per-bar returns, got {type(bar_returns).__name__}")
    if len(bar_returns) == 0:
        raise MaestroError(f"{what} is empty: there are no out-of-sample returns to report on")
    if not isinstance(bar_returns.index, pd.DatetimeIndex):
        raise MaestroError(
            f"{what} must be indexed by bar open time (a DatetimeIndex), got {type(bar_returns.index).__name__}"
        )
    try:
        values = pd.to_numeric(bar_returns, errors="raise").astype("float64")
    except (TypeError, ValueError) as exc:
        raise MaestroError(f"{what} must hold numeric returns: {exc}") from None
    s = pd.Series(values.to_numpy(copy=True), index=bar_returns.index, name=bar_returns.name)
    if s.index.tz is not None:
        s.index = s.index.tz_convert("UTC").tz_localize(None)
    if s.index.hasnans:
        raise MaestroError(f"{what} has missing (NaT) timestamps in its index")
    if s.index.has_duplicates:
        dup = s.index[s.index.duplicated()][0]
        raise MaestroError(
            f"{what} has duplicate timestamps (first: {dup}): overlapping test windows were stitched twice"
        )
    if not s.index.is_monotonic_increasing:
        s = s.sort_index()
    arr = s.to_numpy()
    bad = ~np.isfinite(arr)
    if bad.any():
        first = s.index[np.flatnonzero(bad)[0]]
        raise MaestroError(
            f"{what} has {int(bad.sum())} NaN/inf value(s) (first at {first}); fill flat bars with 0 before reporting"
        )
    if (arr < -1.0).any():
        first = s.index[np.flatnonzero(arr < -1.0)[0]]
        raise MaestroError(f"{what} has a return below -100% at {first}: equity cannot go negative")
    return s


def daily_returns(bar_returns: pd.Series) -> pd.Series:
    """Compound per-bar simple returns into UTC calendar-day returns.

    Each day's return is ``(1 + r).prod() - 1`` over the bars opening on that UTC day. Days with no bar
    are absent (not zero-filled). The result is indexed by naive-UTC midnight of each day.
    """
    s = clean_bar_returns(bar_returns)
    days = s.index.floor("D")
    growth = (1.0 + s).groupby(days).prod()
    out = growth - 1.0
    out.index = pd.DatetimeIndex(out.index, name=None)
    out.name = bar_returns.name
    return out


def aligned_benchmark_daily(daily: pd.Series, benchmark_bar_returns: pd.Series) -> pd.Series:
    """Benchmark daily returns on the strategy's days; a strategy day without benchmark bars is flat (0)."""
    bench = daily_returns(clean_bar_returns(benchmark_bar_returns, "benchmark_bar_returns"))
    return bench.reindex(daily.index).fillna(0.0)


def check_reads_as_returns(daily: pd.Series, what: str) -> None:
    # quantstats' _prepare_returns treats any series with min >= 0 and max > 1 as *prices* and
    # silently converts it with pct_change; such a series of returns would give wrong figures.
    if daily.min() >= 0 and daily.max() > 1:
        raise MaestroError(
            f"{what}: every day is non-negative and one day returns more than +100%; quantstats would "
            "misread this series as prices. Check that these are simple returns, not prices or equity"
        )


def _float(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return float("nan")
    return v if math.isfinite(v) else float("nan")


# --------------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------------


#: The full table: key -> (quantstats.stats function, keyword arguments). Every figure is that function called
#: on the daily series with these arguments (``periods=365`` wherever quantstats annualizes, rf = 0).
_P = YEAR_DAYS
TABLE_SPEC: dict[str, tuple[str, dict[str, Any]]] = {
    "total_return": ("comp", {}),
    "cagr": ("cagr", {"rf": 0.0, "compounded": True, "periods": _P}),
    "sharpe": ("sharpe", {"rf": 0.0, "periods": _P, "annualize": True}),
    "sortino": ("sortino", {"rf": 0.0, "periods": _P, "annualize": True}),
    "volatility": ("volatility", {"periods": _P, "annualize": True}),
    "max_drawdown": ("max_drawdown", {}),
    "calmar": ("calmar", {"compounded": True, "periods": _P}),
    "win_rate": ("win_rate", {}),
    "profit_factor": ("profit_factor", {}),
    "omega": ("omega", {"rf": 0.0, "required_return": 0.0, "periods": _P}),
    "var": ("value_at_risk", {"sigma": 1, "confidence": 0.95}),
    "cvar": ("conditional_value_at_risk", {"sigma": 1, "confidence": 0.95, "method": "parametric"}),
    "tail_ratio": ("tail_ratio", {"cutoff": 0.95}),
    "best_day": ("best", {}),
    "worst_day": ("worst", {}),
    "kelly": ("kelly_criterion", {}),
    "payoff_ratio": ("payoff_ratio", {}),
    "consecutive_wins": ("consecutive_wins", {}),
    "consecutive_losses": ("consecutive_losses", {}),
    "avg_win": ("avg_win", {}),
    "avg_loss": ("avg_loss", {}),
    "skew": ("skew", {}),
    "kurtosis": ("kurtosis", {}),
    "recovery_factor": ("recovery_factor", {"rf": 0.0}),
    "ulcer_index": ("ulcer_index", {}),
    "exposure": ("exposure", {}),
}
#: Keys of :func:`quantstats_table`, in order (a superset of :data:`METRIC_KEYS`).
TABLE_KEYS: tuple[str, ...] = tuple(TABLE_SPEC)
assert set(METRIC_KEYS) <= set(TABLE_KEYS)


def _table_from_daily(qs: Any, d: pd.Series) -> dict[str, float]:
    st = qs.stats
    out = {}
    for key, (fn, kwargs) in TABLE_SPEC.items():
        try:
            out[key] = _float(getattr(st, fn)(d, **kwargs))
        except ZeroDivisionError:  # e.g. calmar of a series that never draws down (a flat OOS): undefined
            out[key] = math.nan
    return out


def daily_pair(bar_returns: pd.Series, benchmark_bar_returns: pd.Series | None) -> tuple[pd.Series, pd.Series | None]:
    """The strategy's daily returns and the benchmark's on the same days (None without one), both checked to read
    as returns (not prices) the way quantstats will read them."""
    daily = daily_returns(bar_returns)
    check_reads_as_returns(daily, "bar_returns")
    bench = None
    if benchmark_bar_returns is not None:
        bench = aligned_benchmark_daily(daily, benchmark_bar_returns)
        check_reads_as_returns(bench, "benchmark_bar_returns")
    return daily, bench


def quantstats_table(
    bar_returns: pd.Series, benchmark_bar_returns: pd.Series | None = None
) -> dict[str, float]:
    """The full quantstats metric table of the OOS series: :data:`TABLE_KEYS`, each computed by the quantstats
    function named in :data:`TABLE_SPEC` on UTC-daily returns with a 365-day year (see module doc).

    With a benchmark, the same table of the benchmark's daily returns over the strategy's days follows,
    every key prefixed ``benchmark_``. Values are plain floats: counts (consecutive wins/losses) too, and
    anything quantstats leaves undefined *or infinite* (e.g. profit factor with no losing day, where
    quantstats says ``inf``) is ``nan``, so the table can go into any store and ``inf`` never ranks first.
    """
    daily, bench = daily_pair(bar_returns, benchmark_bar_returns)
    qs = quantstats()
    with quiet():
        out = _table_from_daily(qs, daily)
        if bench is not None:
            out.update({f"benchmark_{k}": v for k, v in _table_from_daily(qs, bench).items()})
    return out


def quantstats_metrics(
    bar_returns: pd.Series, benchmark_bar_returns: pd.Series | None = None
) -> dict[str, float]:
    """The headline subset of :func:`quantstats_table` (daily returns, 365-day year; see module doc).

    Keys: :data:`METRIC_KEYS`, plus :data:`BENCHMARK_KEYS` when a benchmark is given (computed on the
    benchmark's daily returns over the strategy's days). Ratios/fractions are plain floats
    (``0.12`` = 12 %); undefined values are ``nan``.
    """
    table = quantstats_table(bar_returns, benchmark_bar_returns)
    keys = METRIC_KEYS + (BENCHMARK_KEYS if benchmark_bar_returns is not None else ())
    return {k: table[k] for k in keys}


def rolling_metrics(bar_returns: pd.Series, window_days: int = 30) -> pd.DataFrame:
    """Rolling Sharpe and volatility of the daily OOS returns, annualized with 365 (quantstats'
    ``rolling_sharpe`` / ``rolling_volatility``, rf = 0), to see *when* an edge held, not only whether.

    Indexed by day (``day``, naive-UTC midnight, the days of :func:`daily_returns`); columns
    ``rolling_sharpe`` and ``rolling_volatility``. The window is ``window_days`` *observed* days (days
    without bars are absent, as everywhere here); the first ``window_days - 1`` rows are NaN, and so is a
    Sharpe whose window has no variance (quantstats' ``inf`` included).
    """
    if not isinstance(window_days, (int, np.integer)) or isinstance(window_days, bool) or window_days < 2:
        raise MaestroError(f"window_days={window_days!r} must be an integer >= 2 (a standard deviation needs two days)")
    daily = daily_returns(bar_returns)
    check_reads_as_returns(daily, "bar_returns")
    st = quantstats().stats
    w = int(window_days)
    with quiet():
        sharpe = st.rolling_sharpe(daily, rf=0.0, rolling_period=w, annualize=True, periods_per_year=YEAR_DAYS)
        vol = st.rolling_volatility(daily, rolling_period=w, periods_per_year=YEAR_DAYS)
    out = pd.DataFrame(
        {"rolling_sharpe": sharpe.to_numpy(dtype="float64"), "rolling_volatility": vol.to_numpy(dtype="float64")},
        index=pd.DatetimeIndex(daily.index, name="day"),
    )
    return out.replace([np.inf, -np.inf], np.nan)




def quantstats_rc() -> dict[str, Any]:
    """The matplotlib rcParams quantstats' import set (its theme), re-applied only while it draws a tearsheet."""
    quantstats()
    return dict(_QS_RC)
