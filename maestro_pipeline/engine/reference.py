"""Backtests with vectorbt's ``Portfolio.from_signals``: next-bar-open fills, costs on every fill, long and short.

Execution model (what every number downstream means):

* A signal computed at bar ``t`` (from data up to ``t``'s close) fills at ``open[t+1]``: signals are shifted
  one bar and ``price=open``. A signal on the last bar never fills.
* Each fill pays ``slippage`` (buy at ``open * (1 + slippage)``, sell at ``open * (1 - slippage)``) and then
  ``fee`` on the filled notional, exactly as vectorbt's ``buy_nb``/``sell_nb`` do.
* Sizing (``RiskSpec``, see :mod:`.risk`), all-in by default: a long buys with all cash
  (``cash / (price * (1 + fee))`` units); a short sells ``free_cash / (price * (1 + fee))`` units; an opposite
  entry reverses in one order at the same open, which is arithmetically identical to closing and re-opening all-in
  at that price (vectorbt ``size=inf``; checked against a hand-written reference in the tests). A fraction of
  equity, or the size that risks a fixed fraction at the stop, uses ``size_type='percent'`` (of cash for a long, of
  free cash for a short); vectorbt refuses to *reverse* with percent sizing, so an opposite entry first closes at
  ``open[t+1]`` and the new position opens at ``open[t+2]`` (unless another signal arrives for that bar).
* Conflicting signals on one bar (entry and exit of one side, or long and short entries) are ignored
  (vectorbt's default ``'ignore'``); an entry while already in that direction does nothing (no pyramiding).
* Stops (stop loss, take profit, trailing stop; a fraction of the entry price or a multiple of ATR) are vectorbt's
  ``sl_stop``/``tp_stop``/``sl_trail`` measured from the entry fill price (``stop_entry_price='fillprice'``) and
  checked against each bar's open, high and low: a stop touched by the bar's range fills at the stop price, or at
  the open when the bar gaps through it (``stop_exit_price='stoplimit'``: no slippage, the fee is paid); when the
  stop loss and the take profit are both touched in one bar, the stop loss is taken. Stops are armed after the
  entry bar (the entry bar's own range is not checked) and a trailing stop follows the best high (long) / low
  (short) of the bars after the entry, updated after each bar's check. A stop touched in a bar whose open also
  fills a signal is taken first and that bar's signal is dropped (vectorbt processes one order per bar; this is
  conservative for a stop loss, and for a take profit it can give a better price than the open exit the signal
  asked for).
* Margin and liquidation: a short is closed at its liquidation price (the maintenance margin of its notional left,
  see :mod:`.risk`), at the open when the bar gaps through it, paying the fee. A gap so far through that the short
  cannot be covered ruins the account: equity is zero from that close on and nothing trades any more
  (:func:`.exits.apply_ruin`). Longs never borrow (at most 1x equity), so they are never liquidated.
* Every trade records why it ended (``exit_reason``: signal, stop, target, trail, liquidation, end of data).
* Equity is portfolio value marked at each bar's close; positions still open at the end are *not* closed
  (no exit costs charged) and show as ``status='open'`` trades marked at the last close.
* Returns are simple per-bar returns of that equity: ``r[t] = equity[t] / equity[t-1] - 1`` with
  ``equity[-1] = init_cash``, so the first bar's return is 0 (nothing can fill on it).

The result reports ``peak_leverage``, the largest gross notional / equity at any close (a short that runs against
you drifts above its entry leverage, and that is where it shows), the lowest equity and the liquidations.

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
from .exits import EXIT_REASONS, apply_ruin, exit_reasons
from .risk import NO_RISK, Costs, RiskSpec, plan_risk

__all__ = ["BacktestResult", "TRADE_COLUMNS", "evaluate", "index_freq", "run_backtest"]

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
    "exit_reason",
)



@dataclass
class BacktestResult:
    returns: pd.Series  # per-bar simple returns, index = bars.index[start:]
    equity: pd.Series  # portfolio value at each bar's close, same index
    trades: pd.DataFrame  # TRADE_COLUMNS, one row per trade (reversal = two trades)
    n_trades: int  # closed + open trades
    funding: pd.Series | None = None  # per-bar funding payments (+ received, - paid) when bars carry funding_rate
    peak_leverage: float = 0.0  # max |units| * close / equity over the window's closes
    min_equity: float = 0.0  # the lowest equity at any close of the window
    ruined: bool = False  # a gap through the liquidation price wiped the account out (equity 0 from then on)
    ruin_time: pd.Timestamp | None = None

    @property
    def liquidations(self) -> int:
        return int((self.trades["exit_reason"] == "liquidation").sum()) if len(self.trades) else 0

    def exit_counts(self) -> dict[str, int]:
        """Trades per exit reason (every reason listed, zeros included)."""
        counts = self.trades["exit_reason"].value_counts().to_dict() if len(self.trades) else {}
        return {r: int(counts.get(r, 0)) for r in EXIT_REASONS}


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
    return pd.DataFrame({c: pd.Series(dtype="object" if c == "exit_reason" else "float64") for c in TRADE_COLUMNS})


def _trades_frame(records: np.ndarray, index: pd.Index, reasons: list[str]) -> pd.DataFrame:
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
            "exit_reason": reasons,
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


def ohlc(window: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """open, high, low, close of the bars as float64 (high/low default to max/min of open and close, as vectorbt's)."""
    open_ = window["open"].to_numpy(dtype=np.float64)
    close = window["close"].to_numpy(dtype=np.float64)
    high = window["high"].to_numpy(dtype=np.float64) if "high" in window.columns else np.maximum(open_, close)
    low = window["low"].to_numpy(dtype=np.float64) if "low" in window.columns else np.minimum(open_, close)
    return open_, high, low, close


def run_backtest(
    bars: pd.DataFrame,
    signals: Signals,
    costs: Costs,
    *,
    start: int = 0,
    init_cash: float = 10_000.0,
    risk: RiskSpec = NO_RISK,
) -> BacktestResult:
    """Simulate ``signals`` on ``bars[start:]`` (see module docstring); signals before ``start`` are ignored, bars
    before it only feed the ATR of ATR-based stops."""
    n = len(bars)
    if not 0 <= start < n:
        raise MaestroError(f"backtest start {start} is outside the {n} bars given: use 0 <= start < {n}")
    if not (isinstance(init_cash, (int, float)) and math.isfinite(init_cash) and init_cash > 0):
        raise MaestroError(f"init_cash={init_cash!r} must be a positive number")
    le, lx, se, sx = _check_signals(signals, n)
    o_all, h_all, l_all, c_all = ohlc(bars)
    window = bars.iloc[start:]
    open_, high, low, close = o_all[start:], h_all[start:], l_all[start:], c_all[start:]
    if not (np.all(np.isfinite(open_)) and np.all(np.isfinite(close)) and open_.min() > 0 and close.min() > 0):
        raise DataError("bars have missing or non-positive open/close prices in the backtest window: "
                        "clean the data first")

    plan = plan_risk(o_all, h_all, l_all, c_all, tuple(_fills(a, start) for a in (le, lx, se, sx)), start, risk,
                     costs)
    kwargs: dict[str, Any] = {}
    if plan.size is None:
        kwargs.update(size=np.inf, size_type="amount")
    else:
        kwargs.update(size=plan.size, size_type="percent", upon_opposite_entry="close")
    close_s = pd.Series(close, index=window.index)
    pf = vbt.Portfolio.from_signals(
        close_s,
        entries=plan.le,
        exits=plan.lx,
        short_entries=plan.se,
        short_exits=plan.sx,
        price=open_,
        open=open_,
        high=high,
        low=low,
        sl_stop=plan.sl,
        sl_trail=plan.trail,
        tp_stop=plan.tp,
        stop_entry_price="fillprice",
        stop_exit_price="stoplimit",
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
    value, ruin = apply_ruin(value)
    with np.errstate(divide="ignore", invalid="ignore"):
        lev = np.where(value > 0, np.abs(units) * close / value, np.nan)
    peak_leverage = float(np.nanmax(lev)) if lev.size and np.any(np.isfinite(lev)) else 0.0
    prev = np.empty_like(value)
    prev[0] = init_cash
    prev[1:] = value[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = np.where(prev > 0, value / prev - 1.0, 0.0)
    records = pf.exit_trades.values
    if ruin >= 0:  # what is left of a position a ruined account could not cover is not a trade of its own
        residual = (records["status"] == 0) & (records["exit_idx"] >= ruin)
        records = records[(records["entry_idx"] <= ruin) & ~residual]
    reasons = exit_reasons(records["entry_idx"], records["exit_idx"], records["direction"] == 0,
                           records["entry_price"], records["status"] == 0, plan, open_, low, high)
    trades = _trades_frame(records, window.index, reasons)
    return BacktestResult(
        returns=pd.Series(rets, index=window.index, name="returns"),
        equity=pd.Series(value, index=window.index, name="equity"),
        trades=trades,
        n_trades=len(trades),
        funding=funding,
        peak_leverage=peak_leverage,
        min_equity=float(value.min()) if value.size else float(init_cash),
        ruined=ruin >= 0,
        ruin_time=window.index[ruin] if ruin >= 0 else None,
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
    """Backtest ``strategy`` on bars ``[start, end)`` (``kw``: ``run_backtest``'s ``init_cash`` and ``risk``).

    Signals are computed on ``bars[max(0, start - warmup) : end]`` (the warm-up covers the ATR of ATR stops
    too): warm-up history comes from before ``start`` and nothing at or after ``end`` is read. Signals before
    ``start`` are masked, so the first possible fill is at ``open[start + 1]``; returns and equity cover
    ``bars[start:end]`` only.
    """
    n = len(bars)
    if not 0 <= start < end <= n:
        raise MaestroError(f"window [{start}, {end}) is not inside the {n} bars: use 0 <= start < end <= {n}")
    params = strategy.check(params)
    risk = kw.get("risk", NO_RISK)
    lo = max(0, start - max(int(strategy.warmup(params)), risk.lookback))
    history = bars.iloc[lo:end]
    signals = strategy.signals(history, params)
    return run_backtest(history, signals, costs, start=start - lo, **kw)
