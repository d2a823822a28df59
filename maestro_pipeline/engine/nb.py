"""Compiled backtest kernels (numba, arrays only) for the search hot path, bit-for-bit faithful to the reference.

Why: ``reference.run_backtest`` (vectorbt's ``Portfolio.from_signals`` plus its value/assets/trades passes) costs ~22 ms
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

All-in shorts carry a liquidation level (see :mod:`.risk`); this kernel watches it and gives up on the first bar
that would reach it, so the caller reruns that backtest with the stop kernel (:mod:`.nb_stops`) — exact either way,
and the common case (no level reached) never pays for stop logic.

Equality with ``reference.run_backtest``/``evaluate`` (returns to 1e-10, identical trade counts) is what the engine
tests check on randomized cases. :mod:`.fast` is the Python API over these kernels.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["add_nb", "is_close_nb", "is_close_or_less_nb", "is_less_nb", "pack_nb", "ruin_nb", "sim_codes_nb",
           "sim_col_nb", "sim_grid_nb", "values_nb"]

# vectorbt's tolerances (vectorbt.utils.math_) and from_signals defaults (vectorbt._settings["portfolio"])
_REL_TOL = 1e-9
_ABS_TOL = 1e-12
_MIN_SIZE = 1e-8
_FIXED_FEES = 0.0


# ----------------------------------------------------------------------------- vectorbt float helpers


@njit(cache=True)
def is_close_nb(a, b):
    """vectorbt ``is_close_nb``: False for NaN or inf, else equal within rel 1e-9 / abs 1e-12."""
    if not (abs(a) < np.inf and abs(b) < np.inf):
        return False
    if a == b:
        return True
    return abs(a - b) <= max(_REL_TOL * max(abs(a), abs(b)), _ABS_TOL)


@njit(cache=True)
def is_close_or_less_nb(a, b):
    return True if is_close_nb(a, b) else a < b


@njit(cache=True)
def is_less_nb(a, b):
    return False if is_close_nb(a, b) else a < b


@njit(cache=True)
def add_nb(a, b):
    """vectorbt ``add_nb``: a + b, snapped to 0.0 when the two (nearly) cancel.

    Same branches as ``np.sign(a) != np.sign(b)``: operands of one sign (or both zero) snap when the sum is
    within abs 1e-12 of zero; others (or NaN) when their magnitudes are close.
    """
    s = a + b
    if (a > 0 and b > 0) or (a < 0 and b < 0) or (a == 0 and b == 0):
        zero = abs(s) <= _ABS_TOL
    else:
        zero = is_close_nb(abs(a), abs(b))
    return 0.0 if zero else s


# ----------------------------------------------------------------------------- the backtest kernel


@njit(cache=True)
def order_kind_nb(pos, is_le, is_lx, is_se, is_sx):
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
def execute_nb(kind, price, fee, slip, cash, pos, debt, free):
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
        if is_close_or_less_nb(total_req_cash, cash_limit):
            final_size = adj_size
            fees_paid = req_fees
            final_req_cash = total_req_cash
        else:  # all the cash (a partial cover when the short outgrew it)
            max_req_cash = add_nb(cash_limit, -_FIXED_FEES) / (1 + fee)
            if max_req_cash <= 0:
                return False, 0.0, 0.0, 0.0, True, cash, pos, debt, free
            final_size = max_req_cash / adj_price
            fees_paid = cash_limit - max_req_cash
            final_req_cash = cash_limit
        if is_close_nb(adj_size, 0.0) or is_less_nb(final_size, _MIN_SIZE):
            return False, 0.0, 0.0, 0.0, True, cash, pos, debt, free
        new_pos = add_nb(pos, final_size)
        if pos < 0:
            short_size = final_size if new_pos < 0 else abs(pos)
            debt_diff = short_size * (debt / abs(pos))
            new_debt = add_nb(debt, -debt_diff)
            new_free = add_nb(free + 2 * debt_diff, -final_req_cash)
        else:
            new_debt = debt
            new_free = add_nb(free, -final_req_cash)
        return True, final_size, adj_price, fees_paid, True, add_nb(cash, -final_req_cash), new_pos, new_debt, new_free
    # sell_nb
    adj_price = price * (1 - slip)
    if kind == 2:  # long only: at most the position
        if pos == 0:
            return False, 0.0, 0.0, 0.0, False, cash, pos, debt, free
        size_limit = min(pos, abs_pos)
    else:  # both, size inf, percent 1: the long plus what free cash (and the long's sale) can short
        long_size = max(pos, 0.0)
        long_cash = long_size * adj_price * (1 - fee)
        total_free_cash = add_nb(free, long_cash)
        if total_free_cash <= 0:
            if pos <= 0:
                return False, 0.0, 0.0, 0.0, False, cash, pos, debt, free
            size_limit = long_size
        else:
            max_short_size = add_nb(total_free_cash, -_FIXED_FEES) / (adj_price * (1 + fee))
            size_limit = add_nb(long_size, max_short_size)
            if size_limit <= 0:
                return False, 0.0, 0.0, 0.0, False, cash, pos, debt, free
        size_limit = 1.0 * size_limit  # percent = 1
    if is_close_nb(size_limit, 0.0) or is_less_nb(size_limit, _MIN_SIZE):
        return False, 0.0, 0.0, 0.0, False, cash, pos, debt, free
    acq_cash = size_limit * adj_price
    fees_paid = acq_cash * fee + _FIXED_FEES
    final_acq_cash = add_nb(acq_cash, -fees_paid)
    if final_acq_cash < 0:
        return False, 0.0, 0.0, 0.0, False, cash, pos, debt, free
    new_pos = add_nb(pos, -size_limit)
    if new_pos < 0:
        short_size = size_limit if pos < 0 else abs(new_pos)
        short_value = short_size * adj_price
        new_debt = debt + short_value
        new_free = add_nb(free, add_nb(final_acq_cash, -2 * short_value))
    else:
        new_debt = debt
        new_free = free + final_acq_cash
    return True, size_limit, adj_price, fees_paid, False, cash + final_acq_cash, new_pos, new_debt, new_free


@njit(cache=True)
def _reaches_nb(high_w, a, b, level):
    """Any ``high_w[a:b]`` at or above ``level`` (less a 1e-9 margin that keeps rounding on the exact side)."""
    bar = level * (1.0 - 1e-9)
    for i in range(a, b):
        if high_w[i] >= bar:
            return True
    return False


@njit(cache=True)
def orders_nb(open_w, codes, fee, slip, init_cash, ev_bar, ev_flow, ev_cash, high_w, q):
    """Pass 1, the simulation: fills of window bars ``1..m-1``, the signals of bar ``j - 1`` (``codes``, see
    :func:`pack_nb`) filling at bar ``j``. Stores each fill's bar, asset flow and cash flow as vectorbt's value pass
    reads them from the order records; returns (number of fills, exit-trade count).

    Liquidation watch (``q`` finite): while short, a bar after the short's fill whose high reaches
    ``fill x (1 + q)`` would liquidate it (the stop kernel's rule); this kernel has no stops, so it returns
    (-1, 0) at once and the caller runs the stop kernel instead. Until that bar the two kernels agree fill for fill."""
    m = open_w.shape[0]
    cash, pos, debt, free = init_cash, 0.0, 0.0, init_cash  # vectorbt's *_now
    in_trade = False  # get_exit_trades_nb over the fills
    t_long = True
    ess = 0.0
    n_trades = 0
    n_ev = 0
    watch = np.isfinite(q)
    level = np.inf
    since = 0  # first bar whose high the open short's level is checked on
    for k in range(m - 1):
        code = codes[k]
        if code == 0:
            continue
        kind = order_kind_nb(pos, (code & 1) != 0, (code & 2) != 0, (code & 4) != 0, (code & 8) != 0)
        if kind == 0:
            continue
        j = k + 1  # the fill bar
        # the stop check of bar j comes before its fill: the open short must survive bars since..j
        if watch and pos < 0 and _reaches_nb(high_w, since, j + 1, level):
            return -1, 0
        was_short = pos < 0
        filled, o_size, o_price, o_fees, o_buy, cash, pos, debt, free = execute_nb(
            kind, open_w[j], fee, slip, cash, pos, debt, free)
        if not filled:
            continue
        if watch:
            if pos < 0 and not was_short:
                level = o_price * (1.0 + q)
            since = j + 1
        signed = o_size if o_buy else -o_size
        ev_bar[n_ev] = j
        ev_flow[n_ev] = add_nb(0.0, signed)  # asset_flow_nb
        ev_cash[n_ev] = add_nb(0.0, -signed * o_price - o_fees)  # cash_flow_nb
        n_ev += 1
        if not in_trade:
            in_trade = True
            t_long = o_buy
            ess = 0.0
        if t_long == o_buy:
            ess += o_size
        else:
            n_trades += 1
            if is_close_or_less_nb(o_size, ess):
                if is_close_nb(o_size, ess):
                    in_trade = False
                else:
                    ess *= (ess - o_size) / ess
            else:  # reversed: this trade closes, the opposite one opens with the rest
                ess = o_size - ess
                t_long = not t_long
    if watch and pos < 0 and _reaches_nb(high_w, since, m, level):
        return -1, 0
    if in_trade and is_less_nb(-ess, 0.0):
        n_trades += 1  # the open trade
    return n_ev, n_trades


@njit(cache=True)
def values_nb(open_w, close_w, rate_w, has_rate, init_cash, ev_bar, ev_flow, ev_cash, n_ev, out, vals):
    """Pass 2: ``assets_nb``/``cash_nb`` over the fills, value at each close (into ``vals``), ``run_backtest``'s
    funding (``-held_into * open * rate`` cumulated into the value) and the per-bar returns, into ``out``."""
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
                out[i] = value / prev - 1.0 if prev != 0.0 else 0.0  # an account at zero: see ruin_nb
                vals[i] = value
                prev = value
                held_into = assets
        else:
            for i in range(j, stop):
                value = pcash + (close_w[i] * assets if assets != 0 else 0.0)
                out[i] = value / prev - 1.0 if prev != 0.0 else 0.0  # an account at zero: see ruin_nb
                vals[i] = value
                prev = value
        if stop >= m:
            break
        # the fill bar: funding is paid by the position held into it, then the fill changes the position
        held_into = assets
        assets = add_nb(assets, ev_flow[e])
        pcash = add_nb(pcash, ev_cash[e])
        e += 1
        next_bar = ev_bar[e] if e < n_ev else m
        value = pcash + (close_w[stop] * assets if assets != 0 else 0.0)
        if has_rate:
            r = rate_w[stop]
            payment = -held_into * open_w[stop] * (0.0 if np.isnan(r) else r)
            fund = (0.0 if payment == 0.0 else payment) + fund
            value = value + fund
        out[stop] = value / prev - 1.0 if prev != 0.0 else 0.0
        vals[stop] = value
        prev = value
        j = stop + 1


@njit(cache=True)
def ruin_nb(vals, out):
    """``exits.apply_ruin`` on the returns: from the first close at or below zero the equity is zero (that bar's
    return -1, then 0). Returns that bar, or -1."""
    for i in range(vals.shape[0]):
        if not vals[i] > 0:
            out[i] = -1.0 if i == 0 or vals[i - 1] > 0 else 0.0
            for k in range(i + 1, vals.shape[0]):
                out[k] = 0.0
            return i
    return -1


@njit(cache=True)
def pack_nb(le, lx, se, sx, off, codes):
    """``codes[k]`` = the four signals of bar ``off + k`` as bits (1 long entry, 2 long exit, 4 short entry,
    8 short exit): one byte per bar to scan instead of four."""
    le, lx = le.view(np.uint8)[off:], lx.view(np.uint8)[off:]  # zero-based views keep the loop vectorizable
    se, sx = se.view(np.uint8)[off:], sx.view(np.uint8)[off:]
    for k in range(codes.shape[0]):
        codes[k] = (le[k] != 0) | ((lx[k] != 0) << 1) | ((se[k] != 0) << 2) | ((sx[k] != 0) << 3)


@njit(cache=True)
def sim_codes_nb(open_w, high_w, close_w, rate_w, has_rate, codes, fee, slip, init_cash, q, out):
    """One all-in backtest of window bars from packed signals: returns into ``out``; the exit-trade count, or -1
    when an open short would reach its liquidation level (``q``: see :func:`orders_nb`; ``inf`` = unwatched)."""
    m = open_w.shape[0]
    ev_bar = np.empty(m, dtype=np.int64)
    ev_flow = np.empty(m)
    ev_cash = np.empty(m)
    n_ev, n_trades = orders_nb(open_w, codes, fee, slip, init_cash, ev_bar, ev_flow, ev_cash, high_w, q)
    if n_ev < 0:
        return -1
    values_nb(open_w, close_w, rate_w, has_rate, init_cash, ev_bar, ev_flow, ev_cash, n_ev, out, np.empty(m))
    return n_trades


@njit(cache=True)
def sim_col_nb(open_w, high_w, close_w, rate_w, has_rate, le, lx, se, sx, sig_off, fee, slip, init_cash, q, out):
    """:func:`sim_codes_nb` of window bar ``k``'s signals at ``le[sig_off + k]``..."""
    codes = np.empty(open_w.shape[0], dtype=np.uint8)
    pack_nb(le, lx, se, sx, sig_off, codes)
    return sim_codes_nb(open_w, high_w, close_w, rate_w, has_rate, codes, fee, slip, init_cash, q, out)


@njit(cache=True)
def sim_grid_nb(open_w, high_w, close_w, rate_w, has_rate, codes, fee, slip, init_cash, q, out, n_trades):
    """:func:`sim_codes_nb` for every row of ``codes`` (one parameter set each) into the rows of ``out``;
    ``n_trades[r] = -1`` marks a row the caller must run with the stop kernel."""
    for r in range(codes.shape[0]):
        n_trades[r] = sim_codes_nb(open_w, high_w, close_w, rate_w, has_rate, codes[r], fee, slip, init_cash, q,
                                   out[r])
