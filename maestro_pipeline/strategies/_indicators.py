"""Causal indicator kernels shared by the catalog strategies (a private module: the registry skips it).

Every function reads bar ``t`` and earlier only. Two families:

* **Finite windows** (``sma``, ``mstd``, ``rolling_max``/``rolling_min``, ``rsi``, ``atr``, ``roc``): the value
  at bar ``t`` is a function of the last ``window`` inputs only, folded left to right over that window by a
  small numba loop (not by differencing a running cumulative sum, as vectorbt's ``rolling_mean_nb`` does).
  The result at ``t`` is therefore *bit-identical* whatever bar the history starts at, so a strategy's
  warm-up can be exact. A NaN anywhere in the window gives NaN (no partial windows). Cost is
  ``O(bars * window)``, a few milliseconds for a year of hourly bars.
* **Recursive** (``ema``): vectorbt's ``ma_nb(ewm=True)`` kernel (``adjust=False``, first value at bar
  ``span - 1``). It remembers its seed with weight ``(1 - 2/(span+1))**k`` after ``k`` bars, so strategies
  using it take ``4 * span`` bars of warm-up (seed weight about ``e**-8``), as ``ema_cross`` does.

The true range of the first bar of any history is NaN (it needs the previous close), so ATR on a truncated
history equals ATR on the full history from bar ``window`` of the truncated one on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit
from vectorbt.indicators.nb import ma_nb

from ..errors import DataError

__all__ = [
    "as_float",
    "column",
    "rolling_sum",
    "sma",
    "mstd",
    "rolling_max",
    "rolling_min",
    "shift",
    "roc",
    "ema",
    "rsi",
    "true_range",
    "atr",
    "optional_column",
    "zscore",
]


def as_float(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(-1)


def column(bars: pd.DataFrame, name: str) -> np.ndarray:
    out = bars[name].to_numpy(dtype=np.float64)
    if name == "volume" and len(out) and np.isnan(out).all():
        raise DataError("this strategy reads volume, but the bars have none (the source has no volume column); "
                        "use a file with volume or a strategy that reads prices only")
    return out


@njit(cache=True)
def _rolling_nb(a: np.ndarray, window: int, op: int) -> np.ndarray:
    """op 0: sum, 1: max, 2: min of ``a[i - window + 1 : i + 1]`` folded left to right; NaN propagates."""
    n = a.shape[0]
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        acc = a[i - window + 1]
        for j in range(i - window + 2, i + 1):
            v = a[j]
            if op == 0:
                acc = acc + v
            elif np.isnan(v) or np.isnan(acc):
                acc = np.nan
            elif op == 1:
                acc = v if v > acc else acc
            else:
                acc = v if v < acc else acc
        out[i] = acc
    return out


@njit(cache=True)
def _mstd_nb(a: np.ndarray, window: int) -> np.ndarray:
    """Population std of each window, two passes (mean, then squared deviations), left to right."""
    n = a.shape[0]
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        s = a[i - window + 1]
        for j in range(i - window + 2, i + 1):
            s = s + a[j]
        mean = s / window
        q = 0.0
        for j in range(i - window + 1, i + 1):
            d = a[j] - mean
            q = q + d * d
        out[i] = np.sqrt(q / window)
    return out


def _rolling(a, window: int, op: int) -> np.ndarray:
    a = np.ascontiguousarray(as_float(a))
    w = int(window)
    if w < 1:
        raise ValueError(f"window must be >= 1, got {w}")
    return _rolling_nb(a, w, op)


def rolling_sum(a, window: int) -> np.ndarray:
    """Sum of the last ``window`` values (NaN for the first ``window - 1`` bars or if any value is NaN)."""
    return _rolling(a, window, 0)


def sma(a, window: int) -> np.ndarray:
    """Simple moving average of the last ``window`` values, exact per window."""
    return rolling_sum(a, window) / float(window)


def mstd(a, window: int) -> np.ndarray:
    """Population (ddof=0) standard deviation of the last ``window`` values (two-pass, exact per window)."""
    w = int(window)
    if w < 1:
        raise ValueError(f"window must be >= 1, got {w}")
    return _mstd_nb(np.ascontiguousarray(as_float(a)), w)


def rolling_max(a, window: int) -> np.ndarray:
    """Maximum of the last ``window`` values, this bar included (NaN if any is NaN)."""
    return _rolling(a, window, 1)


def rolling_min(a, window: int) -> np.ndarray:
    """Minimum of the last ``window`` values, this bar included (NaN if any is NaN)."""
    return _rolling(a, window, 2)


def shift(a, k: int = 1) -> np.ndarray:
    """``a[t - k]`` at bar ``t`` (NaN for the first ``k`` bars): only past values move forward."""
    a = as_float(a)
    out = np.full(a.shape[0], np.nan)
    if k <= 0:
        return a.copy()
    if a.shape[0] > k:
        out[k:] = a[:-k]
    return out


def roc(a, k: int) -> np.ndarray:
    """Rate of change over ``k`` bars: ``a[t] / a[t-k] - 1``."""
    a = as_float(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / shift(a, k) - 1.0
    out[~np.isfinite(out)] = np.nan
    return out


def ema(a, span: int) -> np.ndarray:
    """Exponential moving average exactly as ``vbt.MA.run(a, span, ewm=True)`` computes it (recursive)."""
    return ma_nb(as_float(a).reshape(-1, 1), int(span), True, False)[:, 0]


def rsi(close, window: int) -> np.ndarray:
    """Cutler's RSI (simple averages of gains and losses, as ``vbt.RSI`` with ``ewm=False``); valid from bar
    ``window``."""
    c = as_float(close)
    delta = c - shift(c, 1)
    with np.errstate(invalid="ignore"):
        up = np.where(delta > 0, delta, np.where(np.isnan(delta), np.nan, 0.0))
        down = np.where(delta < 0, -delta, np.where(np.isnan(delta), np.nan, 0.0))
    g, l_ = sma(up, window), sma(down, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 100.0 - 100.0 / (1.0 + g / l_)
    return out


def true_range(high, low, close) -> np.ndarray:
    """``max(high - low, |high - prev close|, |low - prev close|)``; NaN on the first bar (no previous close)."""
    h, lo, c = as_float(high), as_float(low), as_float(close)
    pc = shift(c, 1)
    with np.errstate(invalid="ignore"):
        return np.maximum(np.maximum(h - lo, np.abs(h - pc)), np.abs(lo - pc))


def atr(high, low, close, window: int) -> np.ndarray:
    """Average true range: simple mean of ``window`` true ranges (``vbt.ATR`` default); valid from bar ``window``."""
    return sma(true_range(high, low, close), window)


def optional_column(bars: pd.DataFrame, name: str, fill: bool = False) -> np.ndarray | None:
    """``bars[name]`` as floats if the column exists (its existence, never its values, decides), else None.

    ``fill=True`` forward-fills gaps from earlier values only (a funding rate published at funding events);
    values before the first observation stay NaN and give no signal.
    """
    if name not in bars.columns:
        return None
    s = pd.Series(bars[name].to_numpy(dtype=np.float64))
    if fill:
        s = s.ffill()
    return s.to_numpy(dtype=np.float64)


def zscore(x, window: int) -> np.ndarray:
    """``(x - SMA(x, window)) / std(x, window)``; NaN where the window's std is zero or undefined."""
    x = as_float(x)
    mean, sd = sma(x, window), mstd(x, window)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x - mean) / sd
    z[~np.isfinite(z)] = np.nan
    return z
