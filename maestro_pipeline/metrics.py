"""Performance metrics from per-bar returns (and optionally the trade list), with written-down conventions.

The ratio conventions are quantstats' (``quantstats.stats.sharpe/sortino/cagr/max_drawdown``), checked
against it in the tests; ``METRIC_CONVENTIONS`` is recorded next to every result so a number can always be
traced to its definition.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .errors import MaestroError

__all__ = ["METRIC_CONVENTIONS", "METRIC_KEYS", "compute_metrics"]

METRIC_CONVENTIONS: dict[str, object] = {
    "version": 1,
    "returns": "simple per-bar returns of portfolio value marked at each bar's close",
    "annualization": "periods_per_year bars per 365-day year (crypto trades 24/7: 8760 for 1h, 365 for 1d)",
    "risk_free_rate": 0.0,
    "ddof": 1,
    "total_return": "prod(1 + r) - 1",
    "cagr": "(1 + total_return) ** (periods_per_year / n) - 1, years = n bars / periods_per_year "
    "(quantstats); -1 if equity ends at or below zero",
    "volatility": "std(r, ddof=1) * sqrt(periods_per_year)",
    "sharpe": "mean(r) / std(r, ddof=1) * sqrt(periods_per_year), rf = 0 (quantstats); 0 if std == 0 or n < 2",
    "sortino": "mean(r) / sqrt(sum(min(r, 0)^2) / n) * sqrt(periods_per_year) (quantstats, Red Rock); "
    "0 if there is no downside",
    "max_drawdown": "min(equity / running_peak - 1), equity = cumprod(1 + r) starting from 1 before the "
    "first bar (quantstats); a negative fraction, 0 if never under water",
    "calmar": "cagr / |max_drawdown|; 0 if max_drawdown == 0",
    "win_rate": "with trades: share of trades with pnl > 0 (open trades marked at the last close); "
    "without: share of non-zero returns that are positive (quantstats); 0 if there are none",
    "profit_factor": "with trades: sum of winning pnl / |sum of losing pnl|; without: the same over returns; "
    "0 if nothing was won, +inf if something was won and nothing lost",
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
    "calmar",
    "win_rate",
    "profit_factor",
    "n_trades",
    "exposure",
)


def _ratio_or_zero(num: float, den: float) -> float:
    return float(num / den) if den > 0 and math.isfinite(den) else 0.0


def _profit_factor(gains: float, losses: float) -> float:
    if losses > 0:
        return float(gains / losses)
    return math.inf if gains > 0 else 0.0


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
    """Metrics of a per-bar return series (see ``METRIC_CONVENTIONS``); every value is a float."""
    if not (isinstance(periods_per_year, (int, float)) and periods_per_year > 0):
        raise MaestroError(f"periods_per_year={periods_per_year!r} must be positive, e.g. bars_per_year('1h')")
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(r)):
        raise MaestroError("returns contain NaN or inf: compute metrics on a complete, finite return series")
    n = r.shape[0]
    ann = math.sqrt(periods_per_year)

    if n == 0:
        out = dict.fromkeys(METRIC_KEYS[:9], 0.0)
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
        out = {
            "total_return": total_return,
            "cagr": cagr,
            "volatility": std * ann,
            "sharpe": _ratio_or_zero(mean, std) * ann,
            "sortino": _ratio_or_zero(mean, downside) * ann,
            "max_drawdown": max_dd,
            "calmar": _ratio_or_zero(cagr, abs(max_dd)),
        }
        if trades is None:
            nonzero = r[r != 0]
            out["win_rate"] = float(np.mean(nonzero > 0)) if nonzero.size else 0.0
            out["profit_factor"] = _profit_factor(float(r[r > 0].sum()), float(-r[r < 0].sum()))

    if trades is not None:
        pnl = trades["pnl"].to_numpy(dtype=np.float64) if len(trades) else np.zeros(0)
        out["win_rate"] = float(np.mean(pnl > 0)) if pnl.size else 0.0
        out["profit_factor"] = _profit_factor(float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum()))
        out["n_trades"] = float(len(trades))
        if isinstance(returns, pd.Series) and isinstance(returns.index, pd.DatetimeIndex):
            out["exposure"] = _exposure(returns.index, trades) if len(trades) else 0.0
    return {k: float(out[k]) for k in METRIC_KEYS if k in out}
