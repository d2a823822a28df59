"""Compiled kernels for backtests with stops, liquidation and fractional sizing (numba, arrays only, ``*_nb``).

The twin of ``reference.run_backtest`` when any stop is armed (a user stop, a take profit, a trailing stop, or the
liquidation level every short carries) or the sizing is not all-in. It reproduces vectorbt 1.2's
``simulate_from_signals_nb`` bar by bar with the options the reference uses (``price=open`` with ``open``/``high``/
``low`` given, ``stop_entry_price='fillprice'``, ``stop_exit_price='stoplimit'``, ``upon_stop_exit='close'``,
accumulate off, conflicts ``'ignore'``, all-in ``size=inf`` or ``size_type='percent'`` with
``upon_opposite_entry='close'``): per bar, the stop check with the position held into the bar (stop loss first,
then take profit; the trail extreme updated after the check on the bar's high/low); a stop exit replaces every
signal of that bar; otherwise the bar's signals are resolved and sized as ``signals_to_size_nb`` does; the order is
executed by ``buy_nb``/``sell_nb`` with vectorbt's rounding helpers; stops are armed after the fill, from the fill
price, with the distances of the fill bar. The per-bar arrays come from :func:`maestro_pipeline.engine.risk.plan_risk`.
The value pass (funding, ruin) is :func:`maestro_pipeline.engine.nb.values_nb`; trades are counted by
:func:`count_trades_nb` the way ``get_exit_trades_nb`` builds them, with each trade's exit reason.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .nb import add_nb, is_close_nb, is_close_or_less_nb, is_less_nb, ruin_nb, values_nb

__all__ = ["count_trades_nb", "level_hit_nb", "orders_stops_nb", "sim_stops_nb"]

_MIN_SIZE = 1e-8
_NO_FILL = (False, 0.0, 0.0, 0.0)
# exit reason codes (engine.exits.EXIT_REASONS)
_SIGNAL, _STOP, _TARGET, _TRAIL, _LIQUIDATION, _END = 0, 1, 2, 3, 4, 5
# directions (vectorbt's Direction) and size types
_LONG_ONLY, _SHORT_ONLY, _BOTH = 0, 1, 2
_AMOUNT, _PERCENT = 0, 2


@njit(cache=True)
def _buy_nb(cash, pos, debt, free, size, price, direction, fee, slip, percent):
    """vectorbt ``buy_nb`` (lock_cash off, no fixed fees): (filled, size, fill price, fees, new state x4)."""
    adj_price = price * (1 + slip)
    cash_limit = cash
    if not np.isnan(percent):
        cash_limit = min(cash_limit, percent * cash_limit)
    if direction == _LONG_ONLY or direction == _BOTH:
        if cash_limit == 0:
            return False, 0.0, 0.0, 0.0, cash, pos, debt, free
    elif pos == 0:
        return False, 0.0, 0.0, 0.0, cash, pos, debt, free
    adj_size = min(-pos, size) if direction == _SHORT_ONLY else size
    if adj_size == 0:
        return False, 0.0, 0.0, 0.0, cash, pos, debt, free
    req_cash = adj_size * adj_price
    req_fees = req_cash * fee + 0.0
    total = req_cash + req_fees
    if is_close_or_less_nb(total, cash_limit):
        final_size, fees_paid, final_req = adj_size, req_fees, total
    else:
        max_req = add_nb(cash_limit, -0.0) / (1 + fee)
        if max_req <= 0:
            return False, 0.0, 0.0, 0.0, cash, pos, debt, free
        final_size = max_req / adj_price
        fees_paid = cash_limit - max_req
        final_req = cash_limit
    if is_close_nb(adj_size, 0.0) or is_less_nb(final_size, _MIN_SIZE):
        return False, 0.0, 0.0, 0.0, cash, pos, debt, free
    new_cash = add_nb(cash, -final_req)
    new_pos = add_nb(pos, final_size)
    if pos < 0:
        short_size = final_size if new_pos < 0 else abs(pos)
        debt_diff = short_size * (debt / abs(pos))
        new_debt = add_nb(debt, -debt_diff)
        new_free = add_nb(free + 2 * debt_diff, -final_req)
    else:
        new_debt = debt
        new_free = add_nb(free, -final_req)
    return True, final_size, adj_price, fees_paid, new_cash, new_pos, new_debt, new_free


@njit(cache=True)
def _sell_nb(cash, pos, debt, free, size, price, direction, fee, slip, percent):
    """vectorbt ``sell_nb`` (lock_cash off, no fixed fees): (filled, size, fill price, fees, new state x4)."""
    adj_price = price * (1 - slip)
    if direction == _LONG_ONLY:
        size_limit = min(pos, size)
    elif np.isinf(size) and not np.isnan(percent):
        long_size = max(pos, 0.0)
        long_cash = long_size * adj_price * (1 - fee)
        total_free = add_nb(free, long_cash)
        if total_free <= 0:
            if pos <= 0:
                return False, 0.0, 0.0, 0.0, cash, pos, debt, free
            size_limit = long_size
        else:
            max_short = add_nb(total_free, -0.0) / (adj_price * (1 + fee))
            size_limit = add_nb(long_size, max_short)
            if size_limit <= 0:
                return False, 0.0, 0.0, 0.0, cash, pos, debt, free
    else:
        size_limit = size
    if not np.isnan(percent):
        size_limit = percent * size_limit
    if direction == _LONG_ONLY and pos == 0:
        return False, 0.0, 0.0, 0.0, cash, pos, debt, free
    if is_close_nb(size_limit, 0.0) or is_less_nb(size_limit, _MIN_SIZE):
        return False, 0.0, 0.0, 0.0, cash, pos, debt, free
    acq = size_limit * adj_price
    fees_paid = acq * fee + 0.0
    final_acq = add_nb(acq, -fees_paid)
    if final_acq < 0:
        return False, 0.0, 0.0, 0.0, cash, pos, debt, free
    new_cash = cash + final_acq
    new_pos = add_nb(pos, -size_limit)
    if new_pos < 0:
        short_size = size_limit if pos < 0 else abs(new_pos)
        short_value = short_size * adj_price
        new_debt = debt + short_value
        new_free = add_nb(free, add_nb(final_acq, -2 * short_value))
    else:
        new_debt = debt
        new_free = free + final_acq
    return True, size_limit, adj_price, fees_paid, new_cash, new_pos, new_debt, new_free


@njit(cache=True)
def _execute_nb(cash, pos, debt, free, size, size_type, direction, price, fee, slip):
    """vectorbt ``execute_order_nb`` for amount / percent orders; the state snap is kept even without a fill."""
    cash = 0.0 if is_close_nb(cash, 0.0) else cash
    pos = 0.0 if is_close_nb(pos, 0.0) else pos
    debt = 0.0 if is_close_nb(debt, 0.0) else debt
    free = 0.0 if is_close_nb(free, 0.0) else free
    order_size = -size if direction == _SHORT_ONLY else size
    if size_type == _AMOUNT and direction != _LONG_ONLY and order_size < 0 and np.isinf(order_size):
        order_size, size_type = -1.0, _PERCENT
    percent = np.nan
    if size_type == _PERCENT:
        percent = abs(order_size)
        order_size = np.inf if order_size > 0 else -np.inf
    if order_size > 0:
        filled, fsize, fprice, ffees, cash, pos, debt, free = _buy_nb(
            cash, pos, debt, free, abs(order_size), price, direction, fee, slip, percent)
        return filled, fsize, fprice, ffees, True, cash, pos, debt, free
    filled, fsize, fprice, ffees, cash, pos, debt, free = _sell_nb(
        cash, pos, debt, free, abs(order_size), price, direction, fee, slip, percent)
    return filled, fsize, fprice, ffees, False, cash, pos, debt, free


@njit(cache=True)
def level_hit_nb(pos, base, frac, o, lo, hi, below):
    """vectorbt ``get_stop_price_nb``: the fill price (the open on a gap, else the level) or NaN."""
    if (pos > 0 and below) or (pos < 0 and not below):
        level = base * (1 - frac)
        if o <= level:
            return o
        if lo <= level <= hi:
            return level
        return np.nan
    if (pos < 0 and below) or (pos > 0 and not below):
        level = base * (1 + frac)
        if level <= o:
            return o
        if lo <= level <= hi:
            return level
        return np.nan
    return np.nan


@njit(cache=True)
def orders_stops_nb(o, hi, lo, le, lx, se, sx, size, all_in, sl, trail, tp, liq, fee, slip, init_cash,
                    ev_bar, ev_flow, ev_cash, ev_reason):
    """The simulation over window bars ``0..m-1`` (signals already on their fill bars): each fill's bar, asset
    flow, cash flow (as vectorbt's value pass reads its order records) and exit reason; returns the fill count."""
    m = o.shape[0]
    cash, pos, debt, free = init_cash, 0.0, 0.0, init_cash
    sl_base = np.nan
    sl_frac = np.nan
    tp_base = np.nan
    tp_frac = np.nan
    sl_trail = False
    sl_init = np.nan
    init_i = -1
    n_ev = 0
    for i in range(m):
        # 1) stops, with the position held into the bar
        stop_px = np.nan
        reason = _SIGNAL
        if not np.isnan(sl_frac) or not np.isnan(tp_frac):
            if not np.isnan(sl_frac):
                stop_px = level_hit_nb(pos, sl_base, sl_frac, o[i], lo[i], hi[i], True)
                if not np.isnan(stop_px):
                    moved = sl_trail and sl_base != sl_init
                    reason = _LIQUIDATION if (liq[init_i] and not moved) else (_TRAIL if sl_trail else _STOP)
            if np.isnan(stop_px) and not np.isnan(tp_frac):
                stop_px = level_hit_nb(pos, tp_base, tp_frac, o[i], lo[i], hi[i], False)
                if not np.isnan(stop_px):
                    reason = _TARGET
            if not np.isnan(sl_frac) and sl_trail:
                if pos > 0 and hi[i] > sl_base:
                    sl_base = hi[i]
                elif pos < 0 and lo[i] < sl_base:
                    sl_base = lo[i]
        # 2) this bar's order: a stop exit replaces the bar's signals
        if not np.isnan(stop_px):
            price, s = stop_px, 0.0
            if pos > 0:
                order, stype, direction = -abs(pos), _AMOUNT, _LONG_ONLY
            else:
                order, stype, direction = abs(pos), _AMOUNT, _SHORT_ONLY
        else:
            price, s = o[i], slip
            is_le, is_lx, is_se, is_sx = le[i], lx[i], se[i], sx[i]
            if is_le or is_se:
                if is_le and is_lx:
                    is_le = False
                    is_lx = False
                if is_se and is_sx:
                    is_se = False
                    is_sx = False
                if is_le and is_se:
                    is_le = False
                    is_se = False
                if not all_in:  # upon_opposite_entry='close'
                    if pos > 0 and is_se:
                        is_se = False
                        is_lx = True
                    if pos < 0 and is_le:
                        is_le = False
                        is_sx = True
            psz = np.inf if all_in else size[i]
            pst = _AMOUNT if all_in else _PERCENT
            order, stype, direction = 0.0, _AMOUNT, _BOTH
            if pos > 0:
                if is_se:
                    order = -abs(pos) - psz
                elif is_lx:
                    order, direction = -abs(pos), _LONG_ONLY
            elif pos < 0:
                if is_le:
                    order = abs(pos) + psz
                elif is_sx:
                    order, direction = abs(pos), _SHORT_ONLY
            elif is_le:
                order, stype = psz, pst
            elif is_se:
                order, stype = -psz, pst
        if order == 0.0 or np.isnan(order):
            continue
        if direction == _SHORT_ONLY:
            order = -order  # the main loop flips ShortOnly sizes; execute_order_nb flips them back
        pos_before = pos
        filled, fsize, fprice, ffees, is_buy, cash, pos, debt, free = _execute_nb(
            cash, pos, debt, free, order, stype, direction, price, fee, s)
        if not filled:
            continue
        signed = fsize if is_buy else -fsize
        ev_bar[n_ev] = i
        ev_flow[n_ev] = add_nb(0.0, signed)
        ev_cash[n_ev] = add_nb(0.0, -signed * fprice - ffees)
        ev_reason[n_ev] = reason
        n_ev += 1
        if pos == 0:
            sl_base = np.nan
            sl_frac = np.nan
            tp_base = np.nan
            tp_frac = np.nan
            sl_trail = False
            sl_init = np.nan
            init_i = -1
        elif pos_before == 0 or np.sign(pos) != np.sign(pos_before):  # opened or reversed: arm this bar's stops
            sl_base = fprice
            sl_init = fprice
            tp_base = fprice
            init_i = i
            sl_frac = sl[i]
            sl_trail = trail[i]
            tp_frac = tp[i]
    return n_ev


@njit(cache=True)
def count_trades_nb(ev_bar, ev_flow, ev_reason, n_ev, ruin, counts):
    """Exit trades as ``get_exit_trades_nb`` forms them from the fills up to the ruin bar (``ruin < 0``: none), each
    closed part counted under its closing fill's reason in ``counts``; an open trade counts as ``end of data``
    unless the account was ruined (what a ruined account could not cover is not a trade; the position open at the
    ruin counts once, closed by the first fill after it). Returns the count."""
    in_trade = False
    t_long = True
    ess = 0.0
    n_trades = 0
    for k in range(n_ev):
        if ruin >= 0 and ev_bar[k] > ruin:
            if in_trade:  # the position open at the ruin (e.g. entered on that bar) closes once, by this fill
                n_trades += 1
                counts[ev_reason[k]] += 1
                in_trade = False
            break
        o_buy = ev_flow[k] > 0
        o_size = abs(ev_flow[k])
        if not in_trade:
            in_trade = True
            t_long = o_buy
            ess = 0.0
        if t_long == o_buy:
            ess += o_size
        else:
            n_trades += 1
            counts[ev_reason[k]] += 1
            if is_close_or_less_nb(o_size, ess):
                if is_close_nb(o_size, ess):
                    in_trade = False
                else:
                    ess *= (ess - o_size) / ess
            else:  # reversed: this trade closes, the opposite one opens with the rest
                ess = o_size - ess
                t_long = not t_long
    if in_trade and is_less_nb(-ess, 0.0) and ruin < 0:
        n_trades += 1
        counts[_END] += 1
    return n_trades


@njit(cache=True)
def sim_stops_nb(o, hi, lo, c, rate, has_rate, le, lx, se, sx, size, all_in, sl, trail, tp, liq, fee, slip, init_cash,
                 out, counts):
    """One backtest of window bars ``0..m-1``: returns into ``out``, exit reasons into ``counts``; returns
    (trades, ruin bar or -1)."""
    m = o.shape[0]
    ev_bar = np.empty(m, dtype=np.int64)
    ev_flow = np.empty(m)
    ev_cash = np.empty(m)
    ev_reason = np.empty(m, dtype=np.int64)
    n_ev = orders_stops_nb(o, hi, lo, le, lx, se, sx, size, all_in, sl, trail, tp, liq, fee, slip, init_cash,
                           ev_bar, ev_flow, ev_cash, ev_reason)
    vals = np.empty(m)
    values_nb(o, c, rate, has_rate, init_cash, ev_bar, ev_flow, ev_cash, n_ev, out, vals)
    ruin = ruin_nb(vals, out)
    return count_trades_nb(ev_bar, ev_flow, ev_reason, n_ev, ruin, counts), ruin

