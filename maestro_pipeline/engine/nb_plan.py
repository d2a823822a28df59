"""The per-bar risk arrays of :func:`maestro_pipeline.engine.risk.plan_risk` in one compiled pass.

Both engines read these arrays, so their values only have to be computed once and right; compiled, the pass costs
a few microseconds instead of a dozen numpy temporaries per backtest (it runs once per trial in the search).
The rules are stated in :mod:`.risk`; this is their loop form.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["NO_STOP", "STOP_ATR", "STOP_FRACTION", "plan_nb"]

#: Stop kinds passed to :func:`plan_nb`.
NO_STOP, STOP_FRACTION, STOP_ATR = 0, 1, 2


@njit(cache=True)
def _distance_nb(kind, value, atr_prev, i, fill):
    if kind == STOP_FRACTION:
        return value
    if kind == STOP_ATR:
        return value * atr_prev[i] / fill
    return np.nan


@njit(cache=True, error_model="numpy")
def plan_nb(o, atr_prev, fle, flx, fse, fsx, all_in, slip, fee, mm, sl_kind, sl_value, tp_kind, tp_value, trailing,
            sizing_risk, fraction, risk_per_trade, max_leverage, le, lx, se, sx, size, sl, trail, tp, liq):
    """Fill the output arrays (``le``..``liq``, one value per window bar) from the fill-bar signals ``fle``..``fsx``;
    returns True when a trailing stop wider than a short's liquidation distance was capped at it.

    ``error_model="numpy"``: a zero stop distance (a flat ATR) sizes to ``inf`` and is capped at the leverage
    limit, as numpy's division does, instead of raising."""
    n = o.shape[0]
    capped = False
    prev_clean_le = False
    prev_clean_se = False
    for i in range(n):
        a_le, a_lx, a_se, a_sx = fle[i], flx[i], fse[i], fsx[i]
        if not all_in:
            # percent sizing cannot reverse in one order: an opposite entry closes, the next quiet bar re-enters
            quiet = not (a_le or a_lx or a_se or a_sx)
            clean_le = a_le and not a_lx and not a_se
            clean_se = a_se and not a_sx and not a_le
            a_le = a_le or (prev_clean_le and quiet)
            a_se = a_se or (prev_clean_se and quiet)
            prev_clean_le, prev_clean_se = clean_le, clean_se
        long_in = a_le and not a_lx and not (a_se and not a_sx)
        short_in = a_se and not a_sx and not (a_le and not a_lx)
        fill = o[i] * (1.0 - slip) if short_in else o[i] * (1.0 + slip)
        user_sl = _distance_nb(sl_kind, sl_value, atr_prev, i, fill)
        phi_short = 1.0
        if not all_in:
            if sizing_risk:
                phi = risk_per_trade * (1.0 + fee) / (user_sl + fee * (2.0 - user_sl))
                s = phi if np.isnan(phi) else min(phi, max_leverage)
                if not np.isfinite(s):  # the stop distance is not known yet (ATR warming up): no entry
                    if long_in:
                        a_le = False
                    if short_in:
                        a_se = False
                    long_in = False
                    short_in = False
                    s = np.nan
            else:
                s = fraction
            size[i] = s
            if np.isfinite(s):
                phi_short = s
        q = ((1.0 + fee) / phi_short + 1.0 - fee) / (1.0 + mm) - 1.0
        if short_in:
            sl[i] = q if np.isnan(user_sl) else min(user_sl, q)
            liq[i] = not (user_sl < q)
            if trailing and user_sl > q:
                capped = True
        else:
            sl[i] = user_sl
            liq[i] = False
        tp[i] = _distance_nb(tp_kind, tp_value, atr_prev, i, fill)
        trail[i] = trailing
        le[i], lx[i], se[i], sx[i] = a_le, a_lx, a_se, a_sx
    return capped
