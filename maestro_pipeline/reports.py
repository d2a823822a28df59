"""Performance reports for the stitched out-of-sample (OOS) return series: quantstats figures (headline and full
table), rolling Sharpe/volatility, tearsheet, equity chart; plus the research charts: candles with trades and
parameter stability (per-split heatmap, trial surface).

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

Charts are drawn on private matplotlib ``Figure`` objects with an Agg canvas (no pyplot state, no global
rcParams change) and fixed margins (``tight_layout`` alone would cost ~0.15 s a chart).
"""

from __future__ import annotations

import base64
import contextlib
import html as _html
import io
import logging
import math
import os
import tempfile
import warnings
from importlib import metadata as _metadata
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from .errors import MaestroError
from .timeframes import YEAR_DAYS

__all__ = [
    "QUANTSTATS_CONVENTIONS",
    "candles_with_trades_png",
    "daily_returns",
    "equity_drawdown_png",
    "param_heatmap_png",
    "param_surface_png",
    "png_markdown",
    "quantstats_metrics",
    "quantstats_table",
    "rolling_metrics",
    "write_tearsheet",
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

_QS: Any = None
_QS_RC: dict[str, Any] = {}

_NOISY_LOGGERS = ("matplotlib", "matplotlib.font_manager", "matplotlib.category", "fontTools", "PIL", "yfinance")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
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


def _quantstats() -> Any:
    """Import quantstats once, keeping its import-time matplotlib styling out of the global rcParams."""
    global _QS, _QS_RC
    if _QS is None:
        import matplotlib

        with _quiet(), matplotlib.rc_context():
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


def _clean_bar_returns(bar_returns: Any, what: str = "bar_returns") -> pd.Series:
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
    s = _clean_bar_returns(bar_returns)
    days = s.index.floor("D")
    growth = (1.0 + s).groupby(days).prod()
    out = growth - 1.0
    out.index = pd.DatetimeIndex(out.index, name=None)
    out.name = bar_returns.name
    return out


def _aligned_benchmark_daily(daily: pd.Series, benchmark_bar_returns: pd.Series) -> pd.Series:
    """Benchmark daily returns on the strategy's days; a strategy day without benchmark bars is flat (0)."""
    bench = daily_returns(_clean_bar_returns(benchmark_bar_returns, "benchmark_bar_returns"))
    return bench.reindex(daily.index).fillna(0.0)


def _check_quantstats_reads_as_returns(daily: pd.Series, what: str) -> None:
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
    return {key: _float(getattr(st, fn)(d, **kwargs)) for key, (fn, kwargs) in TABLE_SPEC.items()}


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
    daily = daily_returns(bar_returns)
    _check_quantstats_reads_as_returns(daily, "bar_returns")
    bench = None
    if benchmark_bar_returns is not None:
        bench = _aligned_benchmark_daily(daily, benchmark_bar_returns)
        _check_quantstats_reads_as_returns(bench, "benchmark_bar_returns")
    qs = _quantstats()
    with _quiet():
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
    _check_quantstats_reads_as_returns(daily, "bar_returns")
    st = _quantstats().stats
    w = int(window_days)
    with _quiet():
        sharpe = st.rolling_sharpe(daily, rf=0.0, rolling_period=w, annualize=True, periods_per_year=YEAR_DAYS)
        vol = st.rolling_volatility(daily, rolling_period=w, periods_per_year=YEAR_DAYS)
    out = pd.DataFrame(
        {"rolling_sharpe": sharpe.to_numpy(dtype="float64"), "rolling_volatility": vol.to_numpy(dtype="float64")},
        index=pd.DatetimeIndex(daily.index, name="day"),
    )
    return out.replace([np.inf, -np.inf], np.nan)


# --------------------------------------------------------------------------------------------------
# tearsheet
# --------------------------------------------------------------------------------------------------


def write_tearsheet(
    bar_returns: pd.Series,
    benchmark_bar_returns: pd.Series | None,
    path: str | Path,
    title: str,
) -> Path:
    """Write the quantstats HTML tearsheet of the OOS series (daily, 365 periods/year) atomically to ``path``.

    The report is rendered into a temporary file next to ``path`` and moved onto it with ``os.replace``;
    if anything fails, the temporary file is removed and an existing ``path`` is left untouched.
    The full OOS period is kept (``match_dates=False``: quantstats would otherwise cut the leading flat
    days). Returns the absolute path written.
    """
    import matplotlib

    daily = daily_returns(bar_returns)
    _check_quantstats_reads_as_returns(daily, "bar_returns")
    bench = None
    if benchmark_bar_returns is not None:
        bench = _aligned_benchmark_daily(daily, benchmark_bar_returns)
        _check_quantstats_reads_as_returns(bench, "benchmark_bar_returns")
        bench.name = "Buy and hold"
    daily.name = "Strategy (OOS)"

    target = Path(path).expanduser().resolve()
    if not target.parent.is_dir():
        raise MaestroError(f"cannot write tearsheet {target}: directory {target.parent} does not exist")
    qs = _quantstats()

    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _quiet(), matplotlib.rc_context(rc=_QS_RC):
            qs.reports.html(
                daily,
                benchmark=bench,
                rf=0.0,
                title=_html.escape(title),
                output=str(tmp),
                compounded=True,
                periods_per_year=YEAR_DAYS,
                match_dates=False,
                figfmt="svg",
                strategy_title="Strategy (OOS)",
                benchmark_title="Buy and hold" if bench is not None else None,
                parameters={"Returns": "daily (UTC), compounded from bars"},
            )
        size = tmp.stat().st_size
        if size == 0:
            raise MaestroError(f"quantstats wrote an empty tearsheet for {target}")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        mode = (target.stat().st_mode & 0o777) if target.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    finally:
        # quantstats closes its figures, but never leave any behind in a long-running process.
        import matplotlib.pyplot as plt

        plt.close("all")
    return target


# --------------------------------------------------------------------------------------------------
# chart
# --------------------------------------------------------------------------------------------------


def _equity(s: pd.Series) -> pd.Series:
    """Equity path starting at 1.0 at the first bar's open; each bar's value is stamped at its close."""
    idx = s.index
    diffs = np.diff(idx.asi8) if len(idx) > 1 else np.array([], dtype="int64")
    positive = diffs[diffs > 0]
    bar = pd.Timedelta(int(positive.min()), unit=idx.unit) if len(positive) else pd.Timedelta(0)
    values = np.concatenate([[1.0], np.cumprod(1.0 + s.to_numpy())])
    stamps = idx[:1].append(idx + bar) if bar > pd.Timedelta(0) else idx[:1].append(idx)
    return pd.Series(values, index=stamps)


def _drawdown(equity: pd.Series) -> pd.Series:
    # the running peak includes the starting equity of 1.0, so a loss on the first bar is a drawdown
    peak = np.maximum.accumulate(equity.to_numpy())
    return pd.Series(equity.to_numpy() / peak - 1.0, index=equity.index)


_MAX_PLOT_POINTS = 1600  # ~2 points per pixel column of an 800 px chart (lines stay exact to the eye)


def _thin(s: pd.Series, how: str) -> pd.Series:
    """At most ~_MAX_PLOT_POINTS points: consecutive buckets of bars reduced to their last (equity) or
    min (drawdown, so troughs survive) value, stamped with the bucket's last timestamp."""
    n = len(s)
    if n <= _MAX_PLOT_POINTS:
        return s
    k = math.ceil(n / _MAX_PLOT_POINTS)
    groups = np.arange(n) // k
    vals = s.groupby(groups).min() if how == "min" else s.groupby(groups).last()
    stamps = s.index[np.minimum((np.arange(len(vals)) + 1) * k, n) - 1]
    return pd.Series(vals.to_numpy(), index=stamps)


def equity_drawdown_png(
    bar_returns: pd.Series,
    benchmark_bar_returns: pd.Series | None = None,
    title: str = "",
) -> bytes:
    """PNG (800x500 px) with two panels: equity curve (strategy vs buy-and-hold) and drawdown, per bar.

    Unlike the metrics (daily), the chart follows the bars, so its drawdown (and the "max DD" in its
    legend) can be deeper than ``max_drawdown`` when a day recovered intraday. Long series are thinned
    to ~1,600 points (equity: last of each bucket; drawdown: minimum, so troughs stay visible). Rendered with matplotlib's Agg canvas on a private
    ``Figure`` (no pyplot state, no global rcParams change).
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    s = _clean_bar_returns(bar_returns)
    b = None
    if benchmark_bar_returns is not None:
        b = _clean_bar_returns(benchmark_bar_returns, "benchmark_bar_returns")
        b = b.loc[(b.index >= s.index[0]) & (b.index <= s.index[-1])]
        if b.empty:
            b = None

    eq = _equity(s)
    dd = _drawdown(eq)
    rc = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}
    with _quiet(), matplotlib.rc_context(rc=rc):
        fig = Figure(figsize=(10, 6.25), dpi=80)
        FigureCanvasAgg(fig)
        ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
        eq_p = _thin(eq, "last")
        ax1.plot(eq_p.index, eq_p.to_numpy(), color="#1f77b4", lw=1.2,
                 label=f"Strategy (OOS) {eq.iloc[-1] - 1:+.1%}")
        if b is not None:
            beq = _equity(b)
            beq_p, bdd_p = _thin(beq, "last"), _thin(_drawdown(beq), "min")
            ax1.plot(beq_p.index, beq_p.to_numpy(), color="#7f7f7f", lw=1.0, alpha=0.9,
                     label=f"Buy and hold {beq.iloc[-1] - 1:+.1%}")
            ax2.plot(bdd_p.index, bdd_p.to_numpy(), color="#7f7f7f", lw=0.8, alpha=0.7, label="Buy and hold")
        ax1.axhline(1.0, color="black", lw=0.6, alpha=0.5)
        ax1.set_ylabel("Equity (start = 1)")
        ax1.grid(alpha=0.3)
        ax1.legend(loc="upper left")
        if title:
            ax1.set_title(title)
        dd_p = _thin(dd, "min")
        ax2.fill_between(dd_p.index, dd_p.to_numpy(), 0.0, color="#d62728", alpha=0.35, lw=0)
        ax2.plot(dd_p.index, dd_p.to_numpy(), color="#d62728", lw=0.8, label=f"Strategy max DD {dd.min():.1%}")
        ax2.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax2.set_ylabel("Drawdown")
        ax2.grid(alpha=0.3)
        ax2.legend(loc="lower left")
        fig.autofmt_xdate()
        fig.tight_layout()
        return _png_bytes(fig)


def _png_bytes(fig: Any) -> bytes:
    """Render an Agg figure to PNG; 256-colour palette PNG (3-4x smaller, same look) when Pillow is there.

    Fast-octree quantization: ~10 ms against ~120 ms for median cut, and small accents (a marker, a
    colorbar gradient) keep their own colours instead of merging into the dominant ones."""
    canvas = fig.canvas
    canvas.draw()
    try:
        from PIL import Image

        width, height = canvas.get_width_height()
        rgb = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
        pal = rgb.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        buf = io.BytesIO()
        pal.save(buf, format="PNG", optimize=True)
        return buf.getvalue()
    except Exception:  # Pillow missing or too old: plain RGBA PNG from matplotlib
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=fig.dpi)
        return buf.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown image with the PNG inlined as a base64 data URI (for Dagster ``MetadataValue.md``)."""
    safe_alt = alt.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace("\n", " ")
    return f"![{safe_alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


# --------------------------------------------------------------------------------------------------
# candles with trades
# --------------------------------------------------------------------------------------------------

_OHLC = ("open", "high", "low", "close")
_TRADE_NEEDS = ("entry_time", "direction", "entry_price")
_UP, _DOWN = "#26a69a", "#ef5350"


def _naive_utc(values: Any, what: str) -> pd.DatetimeIndex:
    """Timestamps (datetime64, strings, tz-aware) as a naive-UTC DatetimeIndex; unparseable -> MaestroError."""
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(pd.Index(values), utc=True))
    except (TypeError, ValueError) as exc:
        raise MaestroError(f"{what} must hold timestamps: {exc}") from None
    return idx.tz_localize(None)


def _ohlc_window(bars: Any, max_candles: int) -> pd.DataFrame:
    """The last ``max_candles`` bars as float open/high/low/close on a sorted naive-UTC index."""
    if not isinstance(bars, pd.DataFrame):
        raise MaestroError(f"bars must be a pandas DataFrame with open/high/low/close columns, got {type(bars).__name__}")
    cols = {str(c).lower(): c for c in bars.columns}
    missing = [c for c in _OHLC if c not in cols]
    if missing:
        raise MaestroError(
            f"bars lack the OHLC column(s) {', '.join(missing)} (have: {', '.join(map(str, bars.columns)) or 'none'}); "
            "pass candles with open, high, low, close"
        )
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise MaestroError(
            f"bars must be indexed by bar open time (a DatetimeIndex), got {type(bars.index).__name__}; "
            "e.g. bars.set_index('open_time')"
        )
    if not isinstance(max_candles, (int, np.integer)) or isinstance(max_candles, bool) or max_candles < 1:
        raise MaestroError(f"max_candles={max_candles!r} must be a positive integer")
    try:
        w = bars[[cols[c] for c in _OHLC]].apply(pd.to_numeric, errors="raise").astype("float64")
    except (TypeError, ValueError) as exc:
        raise MaestroError(f"bars' OHLC columns must be numeric: {exc}") from None
    w.columns = list(_OHLC)
    w.index = _naive_utc(bars.index, "bars' index")
    w = w[np.isfinite(w.to_numpy()).all(axis=1)].sort_index()
    if w.empty:
        raise MaestroError("bars have no candle with finite open/high/low/close: nothing to draw")
    return w.iloc[-int(max_candles):]


def _trades_in(trades: Any, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(entries, exits) inside ``[start, end]``: entries with direction; exits of closed trades only."""
    cols = ("time", "price", "direction")
    empty = pd.DataFrame({c: [] for c in cols})
    if trades is None or (isinstance(trades, pd.DataFrame) and len(trades) == 0):
        return empty, empty
    if not isinstance(trades, pd.DataFrame):
        raise MaestroError(f"trades must be a pandas DataFrame (one row per trade), got {type(trades).__name__}")
    missing = [c for c in _TRADE_NEEDS if c not in trades.columns]
    if missing:
        raise MaestroError(f"trades lack column(s) {', '.join(missing)}; expected the backtest's trade table")
    direction = trades["direction"].astype(str).str.lower().to_numpy()
    bad = sorted(set(direction) - {"long", "short"})
    if bad:
        raise MaestroError(f"trades have direction(s) {bad}: use 'long' or 'short'")
    t_in = _naive_utc(trades["entry_time"], "trades.entry_time")
    p_in = pd.to_numeric(trades["entry_price"], errors="coerce").to_numpy(dtype="float64")
    keep = (t_in >= start) & (t_in <= end) & np.isfinite(p_in)
    entries = pd.DataFrame({"time": t_in[keep], "price": p_in[keep], "direction": direction[keep]})
    exits = empty
    if "exit_time" in trades.columns and "exit_price" in trades.columns:
        t_out = _naive_utc(trades["exit_time"], "trades.exit_time")
        p_out = pd.to_numeric(trades["exit_price"], errors="coerce").to_numpy(dtype="float64")
        closed = (
            (trades["status"].astype(str).str.lower() != "open").to_numpy()
            if "status" in trades.columns else np.ones(len(trades), dtype=bool)
        )
        keep = closed & ~t_out.isna() & (t_out >= start) & (t_out <= end) & np.isfinite(p_out)
        exits = pd.DataFrame({"time": t_out[keep], "price": p_out[keep], "direction": direction[keep]})
    return entries, exits


def _candles_figure(bars: pd.DataFrame, trades: pd.DataFrame | None, title: str = "", max_candles: int = 400) -> Any:
    """The candle chart as a matplotlib ``Figure`` (Agg canvas attached, not drawn); see :func:`candles_with_trades_png`."""
    import matplotlib
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.figure import Figure

    w = _ohlc_window(bars, max_candles)
    x = mdates.date2num(w.index.to_numpy())
    steps = np.diff(x)
    step = float(np.median(steps[steps > 0])) if (steps > 0).any() else 1.0 / 24
    half = 0.35 * step
    o, h, l, c = (w[k].to_numpy() for k in _OHLC)
    up = c >= o
    colors = np.where(up, _UP, _DOWN)
    lo_b, hi_b = np.minimum(o, c), np.maximum(o, c)
    bodies = np.stack(
        [np.column_stack([x - half, lo_b]), np.column_stack([x + half, lo_b]),
         np.column_stack([x + half, hi_b]), np.column_stack([x - half, hi_b])], axis=1
    )
    wicks = np.stack([np.column_stack([x, l]), np.column_stack([x, h])], axis=1)
    end = w.index[-1] + pd.Timedelta(days=step)  # a trade inside the last candle still shows
    entries, exits = _trades_in(trades, w.index[0], end)

    rc = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}
    with _quiet(), matplotlib.rc_context(rc=rc):
        fig = Figure(figsize=(10, 5), dpi=80)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.add_collection(LineCollection(wicks, colors=colors, linewidths=0.8), autolim=True)
        ax.add_collection(
            PolyCollection(bodies, facecolors=colors, edgecolors=colors, linewidths=0.6), autolim=True
        )
        for side, marker, color in (("long", "^", "#1a9641"), ("short", "v", "#d7191c")):
            e = entries[entries["direction"] == side]
            if len(e):
                ax.scatter(mdates.date2num(e["time"].to_numpy()), e["price"].to_numpy(), marker=marker, s=60,
                           color=color, edgecolors="black", linewidths=0.6, zorder=4,
                           label=f"{side} entry ({len(e)})", gid=f"{side}_entries")
        if len(exits):
            ax.scatter(mdates.date2num(exits["time"].to_numpy()), exits["price"].to_numpy(), marker="x", s=45,
                       color="black", linewidths=1.2, zorder=4, label=f"exit ({len(exits)})", gid="exits")
        prices = np.concatenate([l, h, entries["price"].to_numpy(float), exits["price"].to_numpy(float)])
        pad = 0.03 * (prices.max() - prices.min()) or 0.01 * abs(prices.max()) or 1.0
        ax.set_ylim(prices.min() - pad, prices.max() + pad)
        ax.set_xlim(x[0] - step, x[-1] + step)
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.grid(alpha=0.25)
        ax.set_ylabel("Price")
        ax.set_title(title or f"{len(w)} candles, {len(entries)} entries")
        if len(entries) or len(exits):
            ax.legend(loc="upper left")
        fig.subplots_adjust(left=0.08, right=0.98, bottom=0.09, top=0.93)  # fixed: tight_layout costs ~0.15 s
    return fig


def candles_with_trades_png(
    bars: pd.DataFrame, trades: pd.DataFrame | None, title: str = "", max_candles: int = 400
) -> bytes:
    """PNG (800x400 px) candlestick chart of ``bars`` (the last ``max_candles`` if longer) with the trades on it.

    Drawn with plain matplotlib collections (a body rectangle and a wick per candle; no mplfinance).
    Entries inside the window are marked at their price (long: green up-triangle, short: red down-triangle);
    exits of *closed* trades with an ``x`` (an open trade's exit is only the last mark, not a fill).
    ``bars`` needs open/high/low/close (any case) on a DatetimeIndex (tz-aware is converted to UTC);
    ``trades`` is the backtest trade table (``entry_time``, ``exit_time``, ``direction``, ``entry_price``,
    ``exit_price``, ``status``; times may be strings). The private ``Figure`` is never registered with
    pyplot, so nothing stays open after rendering.
    """
    fig = _candles_figure(bars, trades, title, max_candles)
    with _quiet():
        return _png_bytes(fig)


# --------------------------------------------------------------------------------------------------
# parameter stability
# --------------------------------------------------------------------------------------------------


def _param_axis(name: str, spec: Any) -> tuple[str, Any]:
    """('num', (low, high, log)) or ('cat', choices) from an IntParam/FloatParam/Categorical, a (low, high)
    tuple, or a list of choices."""
    if hasattr(spec, "choices"):
        return "cat", tuple(spec.choices)
    if hasattr(spec, "low") and hasattr(spec, "high"):
        low, high, log = spec.low, spec.high, bool(getattr(spec, "log", False))
    elif isinstance(spec, tuple) and len(spec) == 2:
        (low, high), log = spec, False
    elif isinstance(spec, (list, tuple)) and len(spec) > 0:
        return "cat", tuple(spec)
    else:
        raise MaestroError(
            f"search space entry {name!r}={spec!r} must be a (low, high) tuple, a list of choices, "
            "or an IntParam/FloatParam/Categorical"
        )
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise MaestroError(f"search space entry {name!r}: low/high must be numbers, got {spec!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low <= high) or (log and low <= 0):
        raise MaestroError(f"search space entry {name!r}: need finite low <= high (and low > 0 on a log scale), got {spec!r}")
    return "num", (low, high, log)


def _position(kind: str, axis: Any, value: Any) -> float:
    """Where ``value`` sits in its search range, 0 (low / first choice) .. 1 (high / last choice); NaN if unknown."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return float("nan")
    if kind == "cat":
        matches = [i for i, ch in enumerate(axis) if ch == value or str(ch) == str(value)]
        if not matches:
            return float("nan")
        return matches[0] / (len(axis) - 1) if len(axis) > 1 else 0.5
    low, high, log = axis
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise MaestroError(f"parameter value {value!r} is not a number but its search range is numeric") from None
    if high == low:
        return 0.5
    if log:
        return (math.log(v) - math.log(low)) / (math.log(high) - math.log(low)) if v > 0 else float("nan")
    return (v - low) / (high - low)


def _label(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        return f"{float(value):.3g}"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return str(int(value)) if math.isfinite(float(value)) else "–"
    return str(value)


def _heatmap_figure(per_split_params: Any, space: dict, title: str = "") -> tuple[Any, np.ndarray]:
    """(Figure, positions[param, split]) of :func:`param_heatmap_png`."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(per_split_params, pd.DataFrame):
        df = per_split_params.copy()
    elif isinstance(per_split_params, (list, tuple)) and all(isinstance(r, dict) for r in per_split_params):
        df = pd.DataFrame(list(per_split_params))
    else:
        raise MaestroError("per_split_params must be a DataFrame or a list of dicts (one per split: split + params)")
    if df.empty:
        raise MaestroError("per_split_params is empty: no optimized split to show")
    if not isinstance(space, dict) or not space:
        raise MaestroError("space must be a non-empty dict: parameter name -> (low, high) or choices")
    missing = [k for k in space if k not in df.columns]
    if missing:
        raise MaestroError(f"per_split_params lack the searched parameter(s) {', '.join(missing)}")
    if "split" not in df.columns:
        df.insert(0, "split", np.arange(len(df)))
    df = df.sort_values("split", kind="stable").reset_index(drop=True)
    axes = {name: _param_axis(name, spec) for name, spec in space.items()}
    names = list(space)
    pos = np.array([[_position(*axes[n], v) for v in df[n]] for n in names], dtype="float64")

    n_rows, n_cols = pos.shape
    rc = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10}
    with _quiet(), matplotlib.rc_context(rc=rc):
        fig = Figure(figsize=(10, 5), dpi=80)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")
        im = ax.imshow(np.ma.masked_invalid(pos), cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto",
                       interpolation="nearest")
        if n_cols <= 40:
            size = 8 if n_cols <= 12 else 6
            for i, n in enumerate(names):
                for j, v in enumerate(df[n]):
                    p = pos[i, j]
                    ax.text(j, i, _label(v), ha="center", va="center", fontsize=size,
                            color="white" if (math.isfinite(p) and p < 0.6) else "black")
        ax.set_xticks(range(n_cols), [str(s) for s in df["split"]])
        ylabels = [
            f"{n}\n{'choice' if axes[n][0] == 'cat' else f'{_label(axes[n][1][0])}..{_label(axes[n][1][1])}'}"
            for n in names
        ]
        ax.set_yticks(range(n_rows), ylabels)
        ax.set_xlabel("walk-forward split")
        ax.set_title(title or "Chosen parameters per split (colour = position in search range)")
        cb = fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
        cb.set_label("position in search range")
        widest = max(len(line) for lab in ylabels for line in lab.split("\n"))
        fig.subplots_adjust(left=min(0.35, 0.03 + 0.0085 * widest), right=0.93, bottom=0.11, top=0.93)
    return fig, pos


def param_heatmap_png(per_split_params: pd.DataFrame | list[dict], space: dict, title: str = "") -> bytes:
    """PNG (800x400 px) heatmap of the parameters chosen per walk-forward split: rows = parameters (order of
    ``space``), columns = splits, each cell coloured by the value's position in its search range (0 = low,
    1 = high; log-scaled for ``FloatParam(log=True)``) and annotated with the value. Stable choices show as
    flat rows, a parameter that jumps across its range from split to split does not generalize.

    ``space``: name -> ``(low, high)`` tuple, a *list* of categorical choices, or the strategy's
    IntParam/FloatParam/Categorical; categorical values are coloured by choice index / (n - 1). Extra columns
    (fixed params) are ignored; a value not in its choices (or missing) is a grey cell.
    """
    fig, _ = _heatmap_figure(per_split_params, space, title)
    with _quiet():
        return _png_bytes(fig)


def param_surface_png(
    trials: pd.DataFrame, x: str, y: str, best: dict, value: str = "value", title: str = ""
) -> bytes:
    """PNG (800x500 px) of trial objective values over two numeric parameters: each trial a dot coloured by
    its value over a binned mean-value background, the chosen ``best`` point starred. A broad bright
    region around the star is a plateau (robust); a lone bright dot among dark ones is a spike (fragile).

    ``trials``: one row per trial with columns ``x``, ``y`` and ``value`` (pick ``x``/``y`` as the two most
    important numeric parameters); ``best``: the chosen parameters (needs ``x`` and ``y``). Trials with a
    non-finite value (failed or pruned) are left out.
    """
    fig = _surface_figure(trials, x, y, best, value, title)
    with _quiet():
        return _png_bytes(fig)


def _surface_figure(trials: pd.DataFrame, x: str, y: str, best: dict, value: str = "value", title: str = "") -> Any:
    """The Figure of :func:`param_surface_png` (Agg canvas attached, not drawn)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    if not isinstance(trials, pd.DataFrame):
        raise MaestroError(f"trials must be a DataFrame with columns {x!r}, {y!r}, {value!r}, got {type(trials).__name__}")
    missing = [c for c in (x, y, value) if c not in trials.columns]
    if missing:
        raise MaestroError(f"trials lack column(s) {', '.join(map(repr, missing))} (have: {', '.join(map(str, trials.columns))})")
    if not isinstance(best, dict) or x not in best or y not in best:
        raise MaestroError(f"best must be a dict holding the chosen {x!r} and {y!r}")
    try:
        xs, ys, vs = (pd.to_numeric(trials[c], errors="raise").to_numpy(dtype="float64") for c in (x, y, value))
        bx, by = float(best[x]), float(best[y])
    except (TypeError, ValueError) as exc:
        raise MaestroError(f"param_surface_png needs numeric {x!r}, {y!r} and {value!r}: {exc}") from None
    ok = np.isfinite(xs) & np.isfinite(ys) & np.isfinite(vs)
    if not ok.any():
        raise MaestroError("trials have no finite (x, y, value) row: nothing to draw")
    xs, ys, vs = xs[ok], ys[ok], vs[ok]

    def _range(a: np.ndarray, b: float) -> tuple[float, float]:
        lo, hi = min(a.min(), b), max(a.max(), b)
        return (lo - 0.5, hi + 0.5) if hi == lo else (lo, hi)

    rx, ry = _range(xs, bx), _range(ys, by)
    nb = int(min(12, max(2, math.sqrt(len(xs)))))
    total, ex, ey = np.histogram2d(xs, ys, bins=nb, range=[rx, ry], weights=vs)
    count, _, _ = np.histogram2d(xs, ys, bins=nb, range=[rx, ry])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.ma.masked_invalid(total / count)
    norm = Normalize(vmin=float(vs.min()), vmax=float(vs.max()) if vs.max() > vs.min() else float(vs.min()) + 1e-12)
    rc = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}
    with _quiet(), matplotlib.rc_context(rc=rc):
        fig = Figure(figsize=(10, 6.25), dpi=80)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.pcolormesh(ex, ey, mean.T, cmap="viridis", norm=norm, alpha=0.45, shading="flat")
        sc = ax.scatter(xs, ys, c=vs, cmap="viridis", norm=norm, s=28, edgecolors="black", linewidths=0.4, zorder=3)
        ax.scatter([bx], [by], marker="*", s=320, color="#d62728", edgecolors="white", linewidths=1.0, zorder=5,
                   label=f"chosen: {x}={_label(best[x])}, {y}={_label(best[y])}", gid="best")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.legend(loc="upper left")
        ax.set_title(title or f"{len(vs)} trials: {value} over {x} x {y}")
        fig.colorbar(sc, ax=ax, fraction=0.04, pad=0.02).set_label(value)
        ax.set_xlim(rx[0] - 0.02 * (rx[1] - rx[0]), rx[1] + 0.02 * (rx[1] - rx[0]))
        ax.set_ylim(ry[0] - 0.02 * (ry[1] - ry[0]), ry[1] + 0.02 * (ry[1] - ry[0]))
        fig.subplots_adjust(left=0.08, right=0.94, bottom=0.08, top=0.94)
    return fig
