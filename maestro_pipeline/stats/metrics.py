"""Performance metrics from per-bar returns (and optionally the trade list), with written-down conventions.

The ratio conventions are quantstats' (``quantstats.stats.sharpe/sortino/cagr/max_drawdown``), checked
against it in the tests; ``METRIC_CONVENTIONS`` is recorded next to every result so a number can always be
traced to its definition. Every value is a finite float (JSON-safe): a ratio whose denominator is zero
(Sharpe of a flat series, profit factor or payoff ratio with no losses, Calmar without drawdown) is 0.0.

VWR is Backtrader's analyzer reproduced exactly (:mod:`.vwr`). :func:`fast_metrics` computes the search's
subset of these figures with compiled kernels (:mod:`.nb`), to the same values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..errors import MaestroError
from .nb import metrics_nb
from .vwr import backtrader_vwr, tann_from_periods_per_year

__all__ = ["FAST_METRIC_KEYS", "METRIC_CONVENTIONS", "METRIC_KEYS", "compute_metrics", "fast_metrics", "max_drawdown",
           "score"]

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


def _max_drawdown_of(equity: np.ndarray) -> float:
    return float(np.min(equity / np.maximum.accumulate(equity) - 1.0))


def max_drawdown(returns: np.ndarray | pd.Series) -> float:
    """``min(equity / running_peak - 1)`` of ``equity = [1, cumprod(1 + r)]`` (quantstats' definition, the one every
    view uses — on daily returns for the reports); 0 when never under water or empty."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if r.size == 0:
        return 0.0
    return _max_drawdown_of(np.concatenate(([1.0], np.cumprod(1.0 + r))))


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
        max_dd = _max_drawdown_of(equity)
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
            "vwr": backtrader_vwr(equity[1:], 1.0, tann=tann_from_periods_per_year(periods_per_year)),
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


# ----------------------------------------------------------------------------- the compiled subset

#: Metrics ``fast_metrics`` computes (with ``compute_metrics``' conventions) and ``score`` accepts as objective.
FAST_METRIC_KEYS = ("sharpe", "sortino", "total_return", "cagr", "calmar", "max_drawdown", "vwr")


def _check_returns(returns: Any, periods_per_year: float) -> np.ndarray:
    if isinstance(periods_per_year, bool) or not isinstance(periods_per_year, (int, float, np.floating)) \
            or not periods_per_year > 0:
        raise MaestroError(f"periods_per_year={periods_per_year!r} must be positive, e.g. bars_per_year('1h')")
    r = np.ascontiguousarray(returns, dtype=np.float64).reshape(-1)
    if not np.isfinite(r).all():
        raise MaestroError("returns contain NaN or inf: compute metrics on a complete, finite return series")
    return r


def fast_metrics(returns: np.ndarray, periods_per_year: float) -> dict[str, float]:
    """``compute_metrics(returns, periods_per_year)`` restricted to :data:`FAST_METRIC_KEYS`, compiled.

    Same sums as numpy (pairwise) and ``math.fsum`` for VWR. One difference: where ``compute_metrics`` raises
    ``OverflowError`` (``cagr`` of a short, explosive series overflows a float), ``cagr``/``calmar`` are inf here.
    """
    r = _check_returns(returns, periods_per_year)
    ppy = float(periods_per_year)
    vals = metrics_nb(r, ppy, tann_from_periods_per_year(ppy), True)
    return {k: float(v) for k, v in zip(FAST_METRIC_KEYS, vals, strict=True)}


def score(returns: np.ndarray, objective: str, periods_per_year: float) -> float:
    """One metric of :data:`FAST_METRIC_KEYS` (``compute_metrics``' value for it) as a search objective."""
    if objective not in FAST_METRIC_KEYS:
        raise MaestroError(f"unknown objective {objective!r}: use one of {', '.join(FAST_METRIC_KEYS)}")
    r = _check_returns(returns, periods_per_year)
    ppy = float(periods_per_year)
    want_vwr = objective == "vwr"
    vals = metrics_nb(r, ppy, tann_from_periods_per_year(ppy) if want_vwr else 1.0, want_vwr)
    return float(vals[FAST_METRIC_KEYS.index(objective)])
