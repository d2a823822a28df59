"""Backtests with vectorbt's ``Portfolio.from_signals``: next-bar-open fills, costs on every fill, long and short.

Execution model (what every number downstream means):

* A signal computed at bar ``t`` (from data up to ``t``'s close) fills at ``open[t+1]``: signals are shifted
  one bar and ``price=open``. A signal on the last bar never fills.
* Each fill pays ``slippage`` (buy at ``open * (1 + slippage)``, sell at ``open * (1 - slippage)``) and then
  ``fee`` on the filled notional, exactly as vectorbt's ``buy_nb``/``sell_nb`` do.
* Sizing, ``size_fraction == 1`` (default): all-in. A long buys with all cash
  (``cash / (price * (1 + fee))`` units); a short sells ``free_cash / (price * (1 + fee))`` units. An
  opposite entry reverses in one order at the same open, which is arithmetically identical to closing and
  re-opening all-in at that price (vectorbt ``size=inf``; checked against a hand-written reference in the
  tests).
* Sizing, ``size_fraction < 1``: ``size_type='percent'`` (that fraction of cash for a long, of free cash for a
  short). vectorbt 1.2 refuses position *reversal* with percent sizing, so an opposite entry first closes
  the position at ``open[t+1]`` and the new position opens at ``open[t+2]`` (unless another signal arrives
  for that bar). This one-bar delay exists only for fractional sizing.
* Conflicting signals on one bar (entry and exit of one side, or long and short entries) are ignored
  (vectorbt's default ``'ignore'``); an entry while already in that direction does nothing (no pyramiding).
* Equity is portfolio value marked at each bar's close; positions still open at the end are *not* closed
  (no exit costs charged) and show as ``status='open'`` trades marked at the last close.
* Returns are simple per-bar returns of that equity: ``r[t] = equity[t] / equity[t-1] - 1`` with
  ``equity[-1] = init_cash``, so the first bar's return is 0 (nothing can fill on it).

Leverage: vectorbt 1.2's ``from_signals`` cannot borrow cash (a long is bounded by cash, a short by free
cash), so positions open at most at 1x equity (``size_fraction`` of it). ``max_leverage`` is validated
(``0 < size_fraction <= max_leverage <= MAX_LEVERAGE == 1``; a larger value is refused with the reason) and
the result reports ``peak_leverage``, the largest gross notional / equity at any close: a short that runs
against you drifts above its entry leverage, and that is where it shows. Borrowing (``max_leverage > 1``)
needs an engine with a margin account, which this one is not.

Funding (perpetuals): when ``bars`` has a ``funding_rate`` column, a non-zero, non-NaN ``funding_rate[t]``
is a funding settlement at bar ``t``'s timestamp (its open). It is paid by the position held *into* that
instant, i.e. the position after bar ``t-1``'s fills and before bar ``t``'s fill, on notional
``units * open[t]``: ``payment[t] = -units * open[t] * funding_rate[t]``, so longs pay a positive rate and
shorts receive it (and the reverse for a negative rate). Payments accumulate in a funding account that is
added to the portfolio value: ``equity[t] = value[t] + sum(payment[start..t])``; they do not change the
size of later orders (all-in sizing keeps using the trading cash) and are not part of the trades' pnl
(``BacktestResult.funding`` holds the per-bar payments). NaN means no settlement on that bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import vectorbt as vbt
from vectorbt.portfolio import nb as _portfolio_nb

from ..errors import DataError, MaestroError
from ..strategies import Signals, Strategy

__all__ = ["Costs", "BacktestResult", "MAX_LEVERAGE", "TRADE_COLUMNS", "run_backtest", "evaluate", "index_freq"]

#: The most gross exposure / equity a position can be opened with: vectorbt's cash accounting cannot borrow.
MAX_LEVERAGE = 1.0

# vectorbt 1.2 declares its from_signals simulator ``@njit`` *without* ``cache=True``, so every new process
# spent 10-17 s compiling it. Turning the numba disk cache on for it (stored under NUMBA_CACHE_DIR like the
# rest of vectorbt's kernels) brings that to ~0.7 s after the first process has compiled it once.
for _fn_name in ("simulate_from_signals_nb",):
    _fn = getattr(_portfolio_nb, _fn_name, None)
    if _fn is not None and type(getattr(_fn, "_cache", None)).__name__ == "NullCache":
        try:
            _fn.enable_caching()
        except Exception:  # pragma: no cover - caching is an optimisation only
            pass

TRADE_COLUMNS = (
    "entry_time",
    "exit_time",
    "direction",
    "entry_price",
    "exit_price",
    "size",
    "fees",
    "pnl",
    "return",
    "status",
)


@dataclass(frozen=True)
class Costs:
    """Per-fill trading costs as fractions: ``fee`` of notional, ``slippage`` of price."""

    fee: float = 0.001
    slippage: float = 0.0005

    def __post_init__(self) -> None:
        for name in ("fee", "slippage"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not 0 <= v < 1:
                raise MaestroError(f"costs.{name}={v!r} must be a fraction in [0, 1), e.g. 0.001 for 10 bp")


@dataclass
class BacktestResult:
    returns: pd.Series  # per-bar simple returns, index = bars.index[start:]
    equity: pd.Series  # portfolio value at each bar's close, same index
    trades: pd.DataFrame  # TRADE_COLUMNS, one row per trade (reversal = two trades)
    n_trades: int  # closed + open trades
    funding: pd.Series | None = None  # per-bar funding payments (+ received, - paid) when bars carry funding_rate
    peak_leverage: float = 0.0  # max |units| * close / equity over the window's closes


def index_freq(index: pd.Index) -> pd.Timedelta | None:
    """Bar spacing of a DatetimeIndex (median gap), or None for other indexes / fewer than two bars."""
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 2:
        return None
    gaps = np.diff(index.asi8)
    unit = np.datetime_data(index.dtype)[0]
    return pd.Timedelta(int(np.median(gaps)), unit=unit)


def _fills(signal: np.ndarray, start: int) -> np.ndarray:
    """Signals of bars ``start..n-2`` moved to the bar they fill on; a signal before ``start`` never fills."""
    n = signal.shape[0]
    out = np.zeros(n - start, dtype=bool)
    out[1:] = signal[start : n - 1]
    return out


def _empty_trades() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in TRADE_COLUMNS})


def _trades_frame(records: np.ndarray, index: pd.Index) -> pd.DataFrame:
    if len(records) == 0:
        return _empty_trades()
    idx = np.asarray(index)
    return pd.DataFrame(
        {
            "entry_time": idx[records["entry_idx"]],
            "exit_time": idx[records["exit_idx"]],
            "direction": np.where(records["direction"] == 0, "long", "short"),
            "entry_price": records["entry_price"].astype(np.float64),
            "exit_price": records["exit_price"].astype(np.float64),
            "size": records["size"].astype(np.float64),
            "fees": (records["entry_fees"] + records["exit_fees"]).astype(np.float64),
            "pnl": records["pnl"].astype(np.float64),
            "return": records["return"].astype(np.float64),
            "status": np.where(records["status"] == 1, "closed", "open"),
        }
    )


def _check_signals(signals: Signals, n: int) -> tuple[np.ndarray, ...]:
    arrays = []
    for name, a in zip(("long_entries", "long_exits", "short_entries", "short_exits"), signals.arrays(), strict=True):
        a = np.asarray(a)
        if a.shape != (n,):
            raise ValueError(f"signals.{name} has shape {a.shape}, expected ({n},) to match the bars")
        arrays.append(a.astype(bool, copy=False))
    return tuple(arrays)


def run_backtest(
    bars: pd.DataFrame,
    signals: Signals,
    costs: Costs,
    *,
    start: int = 0,
    init_cash: float = 10_000.0,
    size_fraction: float = 1.0,
    max_leverage: float = 1.0,
) -> BacktestResult:
    """Simulate ``signals`` on ``bars[start:]`` (see module docstring); signals before ``start`` are ignored."""
    n = len(bars)
    if not 0 <= start < n:
        raise MaestroError(f"backtest start {start} is outside the {n} bars given: use 0 <= start < {n}")
    if not (isinstance(size_fraction, (int, float)) and 0 < size_fraction <= 1):
        raise MaestroError(f"size_fraction={size_fraction!r} must be in (0, 1]: 1 means all-in")
    if not (isinstance(max_leverage, (int, float)) and not isinstance(max_leverage, bool)
            and math.isfinite(max_leverage) and max_leverage > 0):
        raise MaestroError(f"max_leverage={max_leverage!r} must be a positive number, e.g. 1 for no borrowing")
    if max_leverage > MAX_LEVERAGE:
        raise MaestroError(
            f"max_leverage={max_leverage!r} exceeds this engine's cap of {MAX_LEVERAGE:g}: vectorbt's from_signals "
            f"cannot borrow cash, so positions open at most at 1x equity; use max_leverage <= {MAX_LEVERAGE:g}"
        )
    if size_fraction > max_leverage:
        raise MaestroError(
            f"size_fraction={size_fraction!r} opens positions above max_leverage={max_leverage!r}: "
            f"lower size_fraction to at most {max_leverage!r}"
        )
    if not (isinstance(init_cash, (int, float)) and math.isfinite(init_cash) and init_cash > 0):
        raise MaestroError(f"init_cash={init_cash!r} must be a positive number")
    le, lx, se, sx = _check_signals(signals, n)

    window = bars.iloc[start:]
    open_ = window["open"].to_numpy(dtype=np.float64)
    close = window["close"].to_numpy(dtype=np.float64)
    if not (np.all(np.isfinite(open_)) and np.all(np.isfinite(close)) and open_.min() > 0 and close.min() > 0):
        raise DataError("bars have missing or non-positive open/close prices in the backtest window: "
                        "clean the data first")

    le, lx, se, sx = (_fills(a, start) for a in (le, lx, se, sx))
    kwargs: dict[str, Any] = {}
    if size_fraction >= 1:
        kwargs.update(size=np.inf, size_type="amount")
    else:
        # percent sizing cannot reverse: close on the opposite entry, re-enter on the next bar if it is quiet
        any_signal = le | lx | se | sx
        clean_le, clean_se = le & ~lx & ~se, se & ~sx & ~le
        le = le | (np.r_[False, clean_le[:-1]] & ~any_signal)
        se = se | (np.r_[False, clean_se[:-1]] & ~any_signal)
        kwargs.update(size=float(size_fraction), size_type="percent", upon_opposite_entry="close")

    close_s = pd.Series(close, index=window.index)
    pf = vbt.Portfolio.from_signals(
        close_s,
        entries=le,
        exits=lx,
        short_entries=se,
        short_exits=sx,
        price=open_,
        fees=float(costs.fee),
        slippage=float(costs.slippage),
        init_cash=float(init_cash),
        freq=index_freq(window.index),
        **kwargs,
    )
    value = pf.value().to_numpy(dtype=np.float64)
    units = pf.assets().to_numpy(dtype=np.float64).reshape(-1)  # held at each close (negative = short)
    funding = None
    if "funding_rate" in window.columns:
        rate = window["funding_rate"].to_numpy(dtype=np.float64)
        if np.any(np.isinf(rate)):
            raise DataError("funding_rate has infinite values: use NaN for bars without a settlement")
        held_into = np.r_[0.0, units[:-1]]  # position held into each bar's open (nothing before the window)
        payment = -held_into * open_ * np.nan_to_num(rate, nan=0.0)
        payment[payment == 0.0] = 0.0  # no -0.0
        value = value + np.cumsum(payment)
        funding = pd.Series(payment, index=window.index, name="funding")
    with np.errstate(divide="ignore", invalid="ignore"):
        lev = np.abs(units) * close / value
    peak_leverage = float(np.nanmax(lev)) if lev.size and np.any(np.isfinite(lev)) else 0.0
    prev = np.empty_like(value)
    prev[0] = init_cash
    prev[1:] = value[:-1]
    rets = value / prev - 1.0
    trades = _trades_frame(pf.exit_trades.values, window.index)
    return BacktestResult(
        returns=pd.Series(rets, index=window.index, name="returns"),
        equity=pd.Series(value, index=window.index, name="equity"),
        trades=trades,
        n_trades=len(trades),
        funding=funding,
        peak_leverage=peak_leverage,
    )


def evaluate(
    bars: pd.DataFrame,
    strategy: Strategy,
    params: dict,
    start: int,
    end: int,
    costs: Costs,
    **kw: Any,
) -> BacktestResult:
    """Backtest ``strategy`` on bars ``[start, end)``.

    Signals are computed on ``bars[max(0, start - warmup) : end]``: warm-up history comes from before
    ``start`` and nothing at or after ``end`` is read. Signals before ``start`` are masked, so the first
    possible fill is at ``open[start + 1]``; returns and equity cover ``bars[start:end]`` only.
    """
    n = len(bars)
    if not 0 <= start < end <= n:
        raise MaestroError(f"window [{start}, {end}) is not inside the {n} bars: use 0 <= start < end <= {n}")
    params = strategy.check(params)
    lo = max(0, start - int(strategy.warmup(params)))
    history = bars.iloc[lo:end]
    signals = strategy.signals(history, params)
    return run_backtest(history, signals, costs, start=start - lo, **kw)
