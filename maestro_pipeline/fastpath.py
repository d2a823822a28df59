"""A compiled backtest + metrics kernel for the search hot path, bit-for-bit faithful to ``backtest.run_backtest``.

Why: ``run_backtest`` (vectorbt's ``Portfolio.from_signals`` plus its value/assets/trades passes) costs ~22 ms
a call; a search needs well under 2 ms. This module re-implements *exactly* what that call computes with the
options ``run_backtest`` uses for all-in sizing (``size=inf``, ``size_type='amount'``, direction both,
``accumulate=False``, conflicts ``'ignore'``, ``upon_opposite_entry='reversereduce'``, ``allow_partial=True``,
``min_size=1e-8``, no stops, no fixed fees), compiled with ``@njit(cache=True)`` in two passes per backtest
(the fills, visiting only bars with a signal; then the per-bar value and returns between fills):

* signal resolution: vectorbt 1.2 ``resolve_signal_conflict_nb`` / ``resolve_dir_conflict_nb`` /
  ``resolve_opposite_entry_nb`` / ``signals_to_size_nb`` specialised to those options;
* order execution: ``execute_order_nb`` / ``buy_nb`` / ``sell_nb`` (state rounding with ``is_close_nb``,
  ``add_nb`` everywhere vectorbt uses it): a long buys with all cash, ``cash / (price*(1+slip)*(1+fee))``; a
  short sells ``free_cash / (price*(1-slip)*(1+fee))`` (vectorbt's "100% to short"); a reversal sells the long
  *plus* what the sale proceeds can short (``long*(1-fee)/(1+fee)`` more units), or buys with all cash (short
  proceeds included) to cover and go long; a short exit whose cover exceeds the cash is filled partially;
* the value pass vectorbt runs afterwards (``asset_flow_nb``/``assets_nb``/``cash_flow_nb``/``cash_nb`` from
  the order records, ``value = cash + close * assets``), then ``run_backtest``'s funding and returns;
* the trade count of ``get_exit_trades_nb`` (closed trades, a reversal closing one and opening another, plus
  the open one).

Equality with ``run_backtest``/``evaluate`` (returns to 1e-10, identical trade counts) and of the metrics with
``metrics.compute_metrics`` is what ``tests/test_fastpath.py`` checks, on randomized cases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from .backtest import Costs
from .errors import DataError, MaestroError
from .metrics import VWR_SDEV_MAX, VWR_TAU, _tann_from_periods_per_year
from .strategies.base import Strategy

__all__ = ["FAST_METRIC_KEYS", "bar_arrays", "evaluate_fast", "fast_metrics", "grid_returns", "score", "simulate"]

#: Metrics ``fast_metrics`` computes (with ``compute_metrics``' conventions) and ``score`` accepts as objective.
FAST_METRIC_KEYS = ("sharpe", "sortino", "total_return", "cagr", "calmar", "max_drawdown", "vwr")

# vectorbt's tolerances (vectorbt.utils.math_) and from_signals defaults (vectorbt._settings["portfolio"])
_REL_TOL = 1e-9
_ABS_TOL = 1e-12
_MIN_SIZE = 1e-8
_FIXED_FEES = 0.0


# ----------------------------------------------------------------------------- vectorbt float helpers


@njit(cache=True)
def _is_close(a, b):
    """vectorbt ``is_close_nb``: False for NaN or inf, else equal within rel 1e-9 / abs 1e-12."""
    if not (abs(a) < np.inf and abs(b) < np.inf):
        return False
    if a == b:
        return True
    return abs(a - b) <= max(_REL_TOL * max(abs(a), abs(b)), _ABS_TOL)


@njit(cache=True)
def _is_close_or_less(a, b):
    return True if _is_close(a, b) else a < b


@njit(cache=True)
def _is_less(a, b):
    return False if _is_close(a, b) else a < b


@njit(cache=True)
def _add(a, b):
    """vectorbt ``add_nb``: a + b, snapped to 0.0 when the two (nearly) cancel.

    Same branches as ``np.sign(a) != np.sign(b)``: operands of one sign (or both zero) snap when the sum is
    within abs 1e-12 of zero; others (or NaN) when their magnitudes are close.
    """
    s = a + b
    if (a > 0 and b > 0) or (a < 0 and b < 0) or (a == 0 and b == 0):
        zero = abs(s) <= _ABS_TOL
    else:
        zero = _is_close(abs(a), abs(b))
    return 0.0 if zero else s


# ----------------------------------------------------------------------------- the backtest kernel


@njit(cache=True)
def _order_kind(pos, is_le, is_lx, is_se, is_sx):
    """Signal resolution + ``signals_to_size_nb`` for size=inf, amount, accumulate off: which order, if any.

    0 none, 1 buy with all cash (long entry, or short -> long), 2 sell the long (exit), 3 sell "100% to short"
    (short entry, or long -> short), 4 buy the short back (exit).
    """
    if is_le or is_se:
        if is_le and is_lx:  # upon_long_conflict = ignore
            is_le = False
            is_lx = False
        if is_se and is_sx:  # upon_short_conflict = ignore
            is_se = False
            is_sx = False
        if is_le and is_se:  # upon_dir_conflict = ignore
            is_le = False
            is_se = False
        # upon_opposite_entry = reversereduce with accumulate off keeps the opposite entry: a reversal
    if pos > 0:
        if is_se:
            return 3
        if is_lx:
            return 2
        return 0  # a long entry while long: no pyramiding
    if pos < 0:
        if is_le:
            return 1
        if is_sx:
            return 4
        return 0
    if is_le:
        return 1
    if is_se:
        return 3
    return 0


@njit(cache=True)
def _execute(kind, price, fee, slip, cash, pos, debt, free):
    """``execute_order_nb`` + ``buy_nb``/``sell_nb`` for ``kind`` at ``price`` from state (cash, position, debt,
    free cash). Returns (filled, size, fill price, fees, is_buy) like an order record, then the new state."""
    abs_pos = abs(pos)  # signals_to_size_nb sizes exits from the position before snapping
    # execute_order_nb snaps near-zero state to 0 (is_close_nb(x, 0)), kept even when the order is not filled
    cash = 0.0 if abs(cash) <= _ABS_TOL else cash
    pos = 0.0 if abs(pos) <= _ABS_TOL else pos
    debt = 0.0 if abs(debt) <= _ABS_TOL else debt
    free = 0.0 if abs(free) <= _ABS_TOL else free
    if kind == 1 or kind == 4:
        # buy_nb, lock_cash off: the cash limit is all the cash
        adj_price = price * (1 + slip)
        cash_limit = cash
        if kind == 1:  # direction both, size inf
            if cash_limit == 0:
                return False, 0.0, 0.0, 0.0, True, cash, pos, debt, free
            adj_size = np.inf
        else:  # short only, size = the short
            if pos == 0:
                return False, 0.0, 0.0, 0.0, True, cash, pos, debt, free
            adj_size = min(-pos, abs_pos)
        if adj_size == 0:
            return False, 0.0, 0.0, 0.0, True, cash, pos, debt, free
        req_cash = adj_size * adj_price
        req_fees = req_cash * fee + _FIXED_FEES
        total_req_cash = req_cash + req_fees
        if _is_close_or_less(total_req_cash, cash_limit):
            final_size = adj_size
            fees_paid = req_fees
            final_req_cash = total_req_cash
        else:  # all the cash (a partial cover when the short outgrew it)
            max_req_cash = _add(cash_limit, -_FIXED_FEES) / (1 + fee)
            if max_req_cash <= 0:
                return False, 0.0, 0.0, 0.0, True, cash, pos, debt, free
            final_size = max_req_cash / adj_price
            fees_paid = cash_limit - max_req_cash
            final_req_cash = cash_limit
        if _is_close(adj_size, 0.0) or _is_less(final_size, _MIN_SIZE):
            return False, 0.0, 0.0, 0.0, True, cash, pos, debt, free
        new_pos = _add(pos, final_size)
        if pos < 0:
            short_size = final_size if new_pos < 0 else abs(pos)
            debt_diff = short_size * (debt / abs(pos))
            new_debt = _add(debt, -debt_diff)
            new_free = _add(free + 2 * debt_diff, -final_req_cash)
        else:
            new_debt = debt
            new_free = _add(free, -final_req_cash)
        return True, final_size, adj_price, fees_paid, True, _add(cash, -final_req_cash), new_pos, new_debt, new_free
    # sell_nb
    adj_price = price * (1 - slip)
    if kind == 2:  # long only: at most the position
        if pos == 0:
            return False, 0.0, 0.0, 0.0, False, cash, pos, debt, free
        size_limit = min(pos, abs_pos)
    else:  # both, size inf, percent 1: the long plus what free cash (and the long's sale) can short
        long_size = max(pos, 0.0)
        long_cash = long_size * adj_price * (1 - fee)
        total_free_cash = _add(free, long_cash)
        if total_free_cash <= 0:
            if pos <= 0:
                return False, 0.0, 0.0, 0.0, False, cash, pos, debt, free
            size_limit = long_size
        else:
            max_short_size = _add(total_free_cash, -_FIXED_FEES) / (adj_price * (1 + fee))
            size_limit = _add(long_size, max_short_size)
            if size_limit <= 0:
                return False, 0.0, 0.0, 0.0, False, cash, pos, debt, free
        size_limit = 1.0 * size_limit  # percent = 1
    if _is_close(size_limit, 0.0) or _is_less(size_limit, _MIN_SIZE):
        return False, 0.0, 0.0, 0.0, False, cash, pos, debt, free
    acq_cash = size_limit * adj_price
    fees_paid = acq_cash * fee + _FIXED_FEES
    final_acq_cash = _add(acq_cash, -fees_paid)
    if final_acq_cash < 0:
        return False, 0.0, 0.0, 0.0, False, cash, pos, debt, free
    new_pos = _add(pos, -size_limit)
    if new_pos < 0:
        short_size = size_limit if pos < 0 else abs(new_pos)
        short_value = short_size * adj_price
        new_debt = debt + short_value
        new_free = _add(free, _add(final_acq_cash, -2 * short_value))
    else:
        new_debt = debt
        new_free = free + final_acq_cash
    return True, size_limit, adj_price, fees_paid, False, cash + final_acq_cash, new_pos, new_debt, new_free


@njit(cache=True)
def _orders(open_w, codes, fee, slip, init_cash, ev_bar, ev_flow, ev_cash):
    """Pass 1, the simulation: fills of window bars ``1..m-1``, the signals of bar ``j - 1`` (``codes``, see
    :func:`_pack`) filling at bar ``j``. Stores each fill's bar, asset flow and cash flow as vectorbt's value pass reads
    them from the order records; returns (number of fills, exit-trade count)."""
    m = open_w.shape[0]
    cash, pos, debt, free = init_cash, 0.0, 0.0, init_cash  # vectorbt's *_now
    in_trade = False  # get_exit_trades_nb over the fills
    t_long = True
    ess = 0.0
    n_trades = 0
    n_ev = 0
    for k in range(m - 1):
        code = codes[k]
        if code == 0:
            continue
        kind = _order_kind(pos, (code & 1) != 0, (code & 2) != 0, (code & 4) != 0, (code & 8) != 0)
        if kind == 0:
            continue
        j = k + 1  # the fill bar
        filled, o_size, o_price, o_fees, o_buy, cash, pos, debt, free = _execute(
            kind, open_w[j], fee, slip, cash, pos, debt, free)
        if not filled:
            continue
        signed = o_size if o_buy else -o_size
        ev_bar[n_ev] = j
        ev_flow[n_ev] = _add(0.0, signed)  # asset_flow_nb
        ev_cash[n_ev] = _add(0.0, -signed * o_price - o_fees)  # cash_flow_nb
        n_ev += 1
        if not in_trade:
            in_trade = True
            t_long = o_buy
            ess = 0.0
        if t_long == o_buy:
            ess += o_size
        else:
            n_trades += 1
            if _is_close_or_less(o_size, ess):
                if _is_close(o_size, ess):
                    in_trade = False
                else:
                    ess *= (ess - o_size) / ess
            else:  # reversed: this trade closes, the opposite one opens with the rest
                ess = o_size - ess
                t_long = not t_long
    if in_trade and _is_less(-ess, 0.0):
        n_trades += 1  # the open trade
    return n_ev, n_trades


@njit(cache=True)
def _values(open_w, close_w, rate_w, has_rate, init_cash, ev_bar, ev_flow, ev_cash, n_ev, out):
    """Pass 2: ``assets_nb``/``cash_nb`` over the fills, value at each close, ``run_backtest``'s funding
    (``-held_into * open * rate`` cumulated into the value) and the per-bar returns, into ``out``."""
    m = open_w.shape[0]
    assets = 0.0
    pcash = init_cash
    fund = 0.0
    prev = init_cash
    e = 0
    next_bar = ev_bar[0] if n_ev > 0 else m
    j = 0
    while j < m:
        # bars without a fill up to the next one: add_nb(x, 0.0) snaps |x| <= abs_tol to 0.0 (once is enough);
        # funding is paid by the position held into each bar, i.e. the previous bar's (unsnapped) one
        held_into = assets
        if abs(assets) <= _ABS_TOL:
            assets = 0.0
        if abs(pcash) <= _ABS_TOL:
            pcash = 0.0
        stop = next_bar
        if has_rate:
            for i in range(j, stop):
                r = rate_w[i]
                payment = -held_into * open_w[i] * (0.0 if np.isnan(r) else r)
                fund = (0.0 if payment == 0.0 else payment) + (fund if i > 0 else 0.0)
                value = pcash + (close_w[i] * assets if assets != 0 else 0.0) + fund
                out[i] = value / prev - 1.0
                prev = value
                held_into = assets
        else:
            for i in range(j, stop):
                value = pcash + (close_w[i] * assets if assets != 0 else 0.0)
                out[i] = value / prev - 1.0
                prev = value
        if stop >= m:
            break
        # the fill bar: funding is paid by the position held into it, then the fill changes the position
        held_into = assets
        assets = _add(assets, ev_flow[e])
        pcash = _add(pcash, ev_cash[e])
        e += 1
        next_bar = ev_bar[e] if e < n_ev else m
        value = pcash + (close_w[stop] * assets if assets != 0 else 0.0)
        if has_rate:
            r = rate_w[stop]
            payment = -held_into * open_w[stop] * (0.0 if np.isnan(r) else r)
            fund = (0.0 if payment == 0.0 else payment) + fund
            value = value + fund
        out[stop] = value / prev - 1.0
        prev = value
        j = stop + 1


@njit(cache=True)
def _pack(le, lx, se, sx, off, codes):
    """``codes[k]`` = the four signals of bar ``off + k`` as bits (1 long entry, 2 long exit, 4 short entry,
    8 short exit): one byte per bar to scan instead of four."""
    le, lx = le.view(np.uint8)[off:], lx.view(np.uint8)[off:]  # zero-based views keep the loop vectorizable
    se, sx = se.view(np.uint8)[off:], sx.view(np.uint8)[off:]
    for k in range(codes.shape[0]):
        codes[k] = (le[k] != 0) | ((lx[k] != 0) << 1) | ((se[k] != 0) << 2) | ((sx[k] != 0) << 3)


@njit(cache=True)
def _sim_col(open_w, close_w, rate_w, has_rate, le, lx, se, sx, sig_off, fee, slip, init_cash, out):
    """One backtest of window bars ``0..m-1`` (window bar ``k``'s signals at ``le[sig_off + k]``...): returns
    into ``out``, the exit-trade count returned."""
    m = open_w.shape[0]
    codes = np.empty(m, dtype=np.uint8)
    _pack(le, lx, se, sx, sig_off, codes)
    ev_bar = np.empty(m, dtype=np.int64)
    ev_flow = np.empty(m)
    ev_cash = np.empty(m)
    n_ev, n_trades = _orders(open_w, codes, fee, slip, init_cash, ev_bar, ev_flow, ev_cash)
    _values(open_w, close_w, rate_w, has_rate, init_cash, ev_bar, ev_flow, ev_cash, n_ev, out)
    return n_trades


@njit(cache=True)
def _sim_grid(open_w, close_w, rate_w, has_rate, codes, dest, fee, slip, init_cash, out, n_trades):
    """Row ``k`` of the (params x bars) signal codes -> row ``dest[k]`` of ``out``; single-threaded, in order."""
    m = open_w.shape[0]
    ev_bar = np.empty(m, dtype=np.int64)
    ev_flow = np.empty(m)
    ev_cash = np.empty(m)
    for k in range(codes.shape[0]):
        n_ev, n_trades[dest[k]] = _orders(open_w, codes[k], fee, slip, init_cash, ev_bar, ev_flow, ev_cash)
        _values(open_w, close_w, rate_w, has_rate, init_cash, ev_bar, ev_flow, ev_cash, n_ev, out[dest[k]])


# ----------------------------------------------------------------------------- input checks


def _check_costs(fee: float, slippage: float, init_cash: float) -> tuple[float, float, float]:
    for name, v in (("fee", fee), ("slippage", slippage)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not (math.isfinite(v) and 0 <= v < 1):
            raise MaestroError(f"{name}={v!r} must be a fraction in [0, 1), e.g. 0.001 for 10 bp")
    if isinstance(init_cash, bool) or not isinstance(init_cash, (int, float, np.floating)) \
            or not (math.isfinite(init_cash) and init_cash > 0):
        raise MaestroError(f"init_cash={init_cash!r} must be a positive number")
    return float(fee), float(slippage), float(init_cash)


def _check_prices(open_: np.ndarray, close: np.ndarray, start: int) -> None:
    ow, cw = open_[start:], close[start:]
    if not (np.isfinite(ow).all() and np.isfinite(cw).all() and ow.min() > 0 and cw.min() > 0):
        raise DataError("bars have missing or non-positive open/close prices in the backtest window: "
                        "clean the data first")


def _check_rate(rate: np.ndarray) -> None:
    if np.isinf(rate).any():
        raise DataError("funding_rate has infinite values: use NaN for bars without a settlement")


def _float_array(a: Any, name: str, n: int | None = None) -> np.ndarray:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "1-D"
        raise MaestroError(f"{name} has shape {arr.shape}, expected {want}: pass one value per bar")
    return arr


_SIGNAL_NAMES = ("long_entries", "long_exits", "short_entries", "short_exits")


def _bool_array(a: Any, name: str, n: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.shape != (n,):
        raise MaestroError(f"{name} has shape {arr.shape}, expected ({n},) to match the bars: one flag per bar")
    return np.ascontiguousarray(arr, dtype=np.bool_)


# ----------------------------------------------------------------------------- public API: backtests


def simulate(
    open_: np.ndarray,
    close: np.ndarray,
    long_entries: np.ndarray,
    long_exits: np.ndarray,
    short_entries: np.ndarray,
    short_exits: np.ndarray,
    start: int,
    fee: float,
    slippage: float,
    init_cash: float = 10_000.0,
    funding_rate: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """``run_backtest(bars, signals, Costs(fee, slippage), start=start)`` (all-in) as (returns, n_trades).

    All arrays have one value per bar; a signal at bar ``t`` fills at ``open[t+1]``, signals before ``start``
    are ignored, and ``returns`` covers bars ``[start:]`` (funding payments included when ``funding_rate`` is
    given: NaN = no settlement). ``n_trades`` equals ``len(run_backtest(...).trades)``.
    """
    open_ = _float_array(open_, "open")
    n = open_.shape[0]
    close = _float_array(close, "close", n)
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or not 0 <= start < n:
        raise MaestroError(f"backtest start {start!r} is outside the {n} bars given: use an integer 0 <= start < {n}")
    start = int(start)
    fee, slippage, init_cash = _check_costs(fee, slippage, init_cash)
    sigs = [_bool_array(a, name, n) for a, name in zip(
        (long_entries, long_exits, short_entries, short_exits), _SIGNAL_NAMES)]
    _check_prices(open_, close, start)
    if funding_rate is None:
        rate_w, has_rate = np.empty(0), False
    else:
        rate_w = _float_array(funding_rate, "funding_rate", n)[start:]
        _check_rate(rate_w)
        has_rate = True
    out = np.empty(n - start)
    n_trades = _sim_col(open_[start:], close[start:], rate_w, has_rate, *sigs, start, fee, slippage, init_cash, out)
    return out, int(n_trades)


def bar_arrays(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    """The float64 columns the fast path reads (``open``, ``close`` and ``funding_rate`` when present).

    Extract them once and pass them as ``arrays=`` to :func:`evaluate_fast` in a loop over trials.
    """
    missing = [c for c in ("open", "close") if c not in bars.columns]
    if missing:
        raise DataError(f"bars lack the {', '.join(missing)} column(s): pass OHLCV bars (schema.to_pandas_bars)")
    out = {c: bars[c].to_numpy(dtype=np.float64) for c in ("open", "close")}
    if "funding_rate" in bars.columns:
        out["funding_rate"] = bars["funding_rate"].to_numpy(dtype=np.float64)
    return out


def _resolve_arrays(bars: pd.DataFrame, arrays: Mapping[str, np.ndarray] | None) -> Mapping[str, np.ndarray]:
    if arrays is None:
        return bar_arrays(bars)
    n = len(bars)
    for key in ("open", "close"):
        if key not in arrays:
            raise MaestroError(f"arrays lacks {key!r}: build it with fastpath.bar_arrays(bars)")
    if ("funding_rate" in arrays) != ("funding_rate" in bars.columns):
        raise MaestroError("arrays and bars disagree on funding_rate: build arrays with fastpath.bar_arrays(bars)")
    for key, a in arrays.items():
        if np.shape(a) != (n,):
            raise MaestroError(f"arrays[{key!r}] has shape {np.shape(a)}, expected ({n},): build it from these bars")
    return arrays


def _window(bars: pd.DataFrame, start: int, end: int) -> None:
    n = len(bars)
    if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in (start, end)) \
            or not 0 <= start < end <= n:
        raise MaestroError(f"window [{start}, {end}) is not inside the {n} bars: use 0 <= start < end <= {n}")


def evaluate_fast(
    bars: pd.DataFrame,
    strategy: Strategy,
    params: Mapping[str, Any] | None,
    start: int,
    end: int,
    costs: Costs,
    *,
    arrays: Mapping[str, np.ndarray] | None = None,
    init_cash: float = 10_000.0,
) -> tuple[np.ndarray, int]:
    """``backtest.evaluate`` through :func:`simulate`: (returns of bars ``[start, end)``, n_trades).

    Signals are computed on ``bars[max(0, start - warmup) : end]`` exactly as ``evaluate`` does; ``arrays``
    (from :func:`bar_arrays`) skips the per-call pandas column extraction.
    """
    _window(bars, start, end)
    arr = _resolve_arrays(bars, arrays)
    params = strategy.check(params)
    lo = max(0, start - int(strategy.warmup(params)))
    signals = strategy.signals(bars.iloc[lo:end], params)
    rate = arr.get("funding_rate")
    return simulate(arr["open"][lo:end], arr["close"][lo:end], *signals.arrays(), start - lo, costs.fee,
                    costs.slippage, init_cash, None if rate is None else rate[lo:end])


def grid_returns(
    bars: pd.DataFrame,
    strategy: Strategy,
    params_list: Sequence[Mapping[str, Any]],
    start: int,
    end: int,
    costs: Costs,
    *,
    init_cash: float = 10_000.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Backtest many parameter sets: (returns [end - start bars, n_params], n_trades [n_params]).

    Column ``k`` equals ``evaluate_fast(bars, strategy, params_list[k], start, end, costs)``. Parameter sets
    sharing a warm-up start get their signals from one ``strategy.signals_batch`` call (shared indicators);
    all backtests then run in one single-threaded compiled call.
    """
    _window(bars, start, end)
    if len(params_list) == 0:
        raise MaestroError("params_list is empty: pass at least one parameter set")
    fee, slippage, init_cash = _check_costs(costs.fee, costs.slippage, init_cash)
    arr = bar_arrays(bars)
    _check_prices(arr["open"][:end], arr["close"][:end], start)
    rate = arr.get("funding_rate")
    if rate is not None:
        rate = np.ascontiguousarray(rate[start:end])
        _check_rate(rate)
    checked = [strategy.check(p) for p in params_list]
    groups: dict[int, list[int]] = {}  # history start -> indexes of the parameter sets starting there
    for k, p in enumerate(checked):
        groups.setdefault(max(0, start - int(strategy.warmup(p))), []).append(k)
    m, n_params = end - start, len(checked)
    codes = np.empty((n_params, m), dtype=np.uint8)
    dest = np.empty(n_params, dtype=np.int64)  # codes row -> output column
    row = 0
    for lo, idx in groups.items():
        batch = strategy.signals_batch(bars.iloc[lo:end], [checked[k] for k in idx])
        if len(batch) != len(idx):
            raise MaestroError(f"strategy {strategy.name!r}: signals_batch returned {len(batch)} signal sets for "
                               f"{len(idx)} parameter sets: return one per parameter set")
        for k, sig in zip(idx, batch):
            arrays = [_bool_array(a, f"signals_batch {name}", end - lo) for a, name in zip(sig.arrays(), _SIGNAL_NAMES)]
            _pack(*arrays, start - lo, codes[row])
            dest[row] = k
            row += 1
    out = np.empty((n_params, m))
    n_trades = np.zeros(n_params, dtype=np.int64)
    rate_w, has_rate = (rate, True) if rate is not None else (np.empty(0), False)
    _sim_grid(np.ascontiguousarray(arr["open"][start:end]), np.ascontiguousarray(arr["close"][start:end]), rate_w,
              has_rate, codes, dest, fee, slippage, init_cash, out, n_trades)
    return out.T, n_trades


# ----------------------------------------------------------------------------- metrics kernel


@njit(cache=True)
def _block_sum(a, lo, n):
    """A leaf of numpy's pairwise summation (n <= 128): eight interleaved accumulators."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def _pairwise_sum(a):
    """numpy's pairwise summation (``np.add.reduce`` on a contiguous float64 array), so sums match numpy's.

    numpy recurses (``n2 = n // 2`` rounded down to a multiple of 8, left + right); this walks the same tree
    with an explicit stack (numba's disk cache mishandles recursive functions).
    """
    n = a.shape[0]
    if n <= 128:
        return _block_sum(a, 0, n)
    st_lo = np.empty(128, dtype=np.int64)
    st_n = np.empty(128, dtype=np.int64)
    st_state = np.empty(128, dtype=np.int64)
    vals = np.empty(128)
    sp = 0
    vsp = 0
    st_lo[0], st_n[0], st_state[0] = 0, n, 0
    sp = 1
    while sp > 0:
        top = sp - 1
        lo, m = st_lo[top], st_n[top]
        if m <= 128:
            vals[vsp] = _block_sum(a, lo, m)
            vsp += 1
            sp -= 1
            continue
        n2 = m // 2
        n2 -= n2 % 8
        if st_state[top] == 0:  # left half first
            st_state[top] = 1
            st_lo[sp], st_n[sp], st_state[sp] = lo, n2, 0
            sp += 1
        elif st_state[top] == 1:  # then the right half
            st_state[top] = 2
            st_lo[sp], st_n[sp], st_state[sp] = lo + n2, m - n2, 0
            sp += 1
        else:  # both halves done: left + right
            vals[vsp - 2] = vals[vsp - 2] + vals[vsp - 1]
            vsp -= 1
            sp -= 1
    return vals[0]


@njit(cache=True)
def _fsum(a):
    """Sum with Knuth's TwoSum compensation: ``math.fsum`` (which Backtrader's VWR uses) to within an ulp, without
    its data-dependent partials list (a quarter of the cost)."""
    s = 0.0
    c = 0.0
    for i in range(a.shape[0]):
        x = a[i]
        t = s + x
        bp = t - s
        c += (s - (t - bp)) + (x - bp)
        s = t
    return s + c


@njit(cache=True)
def _ratio_or_zero(num, den):
    return num / den if den > 0 and np.isfinite(den) else 0.0


@njit(cache=True)
def _metrics_nb(r, ppy, tann, want_vwr):
    """(sharpe, sortino, total_return, cagr, calmar, max_drawdown, vwr) as ``compute_metrics`` computes them."""
    n = r.shape[0]
    if n == 0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    ann = math.sqrt(ppy)
    wealth = 1.0
    for i in range(n):  # np.prod: a sequential product
        wealth *= 1.0 + r[i]
    total_return = wealth - 1.0
    cagr = wealth ** (ppy / n) - 1.0 if wealth > 0 else -1.0
    mean = _pairwise_sum(r) / n
    std = 0.0
    if n > 1:
        dev = np.empty(n)
        mu = _pairwise_sum(r) / n
        for i in range(n):
            d = r[i] - mu
            dev[i] = d * d
        std = math.sqrt(_pairwise_sum(dev) / (n - 1))
    if std <= 1e-14 * max(1.0, abs(mean)):
        std = 0.0
    down = np.empty(n)
    for i in range(n):
        d = min(r[i], 0.0)
        down[i] = d * d
    downside = math.sqrt(_pairwise_sum(down) / n)
    # equity = [1, cumprod(1 + r)]; drawdown against the running peak (which starts at 1)
    equity = np.empty(n)
    e = 1.0
    peak = 1.0
    max_dd = 0.0  # the leading 1.0 contributes 1/1 - 1 = 0
    for i in range(n):
        e = e * (1.0 + r[i]) if i > 0 else 1.0 + r[0]
        equity[i] = e
        if e > peak:
            peak = e
        dd = e / peak - 1.0
        if dd < max_dd:
            max_dd = dd
    sharpe = _ratio_or_zero(mean, std) * ann
    sortino = _ratio_or_zero(mean, downside) * ann
    calmar = _ratio_or_zero(cagr, abs(max_dd))
    vwr = 0.0
    if want_vwr:
        vwr = _vwr_nb(equity, tann)
    return sharpe, sortino, total_return, cagr, calmar, max_dd, vwr


@njit(cache=True)
def _vwr_nb(v, tann):
    """``metrics.backtrader_vwr(v, 1.0, tann=tann)`` with one period per bar."""
    n = v.shape[0]
    for i in range(n):
        if not v[i] > 0:
            return -100.0
    ravg = math.log(v[n - 1] / 1.0) / n
    rnorm100 = math.expm1(ravg * tann) * 100.0
    if n < 2:
        return 0.0
    dts = np.empty(n)
    for k in range(1, n + 1):  # pairs (1, v0), (v0, v1), ..., (v[n-2], v[n-1])
        pi = 1.0 if k == 1 else v[k - 2]
        dts[k - 1] = v[k - 1] / (pi * math.exp(ravg * k)) - 1.0
    mean = _fsum(dts) / n
    sq = np.empty(n)
    for i in range(n):
        d = dts[i] - mean
        sq[i] = d * d
    sdev = math.sqrt(_fsum(sq) / (n - 1))
    return rnorm100 * (1.0 - (sdev / VWR_SDEV_MAX) ** VWR_TAU)


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
    vals = _metrics_nb(r, ppy, _tann_from_periods_per_year(ppy), True)
    return {k: float(v) for k, v in zip(FAST_METRIC_KEYS, vals)}


def score(returns: np.ndarray, objective: str, periods_per_year: float) -> float:
    """One metric of :data:`FAST_METRIC_KEYS` (``compute_metrics``' value for it) as a search objective."""
    if objective not in FAST_METRIC_KEYS:
        raise MaestroError(f"unknown objective {objective!r}: use one of {', '.join(FAST_METRIC_KEYS)}")
    r = _check_returns(returns, periods_per_year)
    ppy = float(periods_per_year)
    want_vwr = objective == "vwr"
    vals = _metrics_nb(r, ppy, _tann_from_periods_per_year(ppy) if want_vwr else 1.0, want_vwr)
    return float(vals[FAST_METRIC_KEYS.index(objective)])
