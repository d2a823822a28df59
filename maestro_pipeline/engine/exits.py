"""Why each trade ended, and what happens to a ruined account — the same rules for both engines.

Exit reasons: ``signal`` (the strategy's exit or reversal, at the open), ``stop`` (a fixed stop loss), ``trail``
(a trailing stop), ``target`` (take profit), ``liquidation`` (equity reached the maintenance margin), ``end of data``
(still open when the window ends). vectorbt's records carry no reason, so the reference engine reconstructs it with
vectorbt's own stop rules (the level is checked against the bar's open, then its low/high, stop loss before take
profit, the trail extreme updated after each bar's check) from the same arrays the compiled twin records it from.

Ruin: when a gap goes through the liquidation price so far that the position cannot be closed with what is left,
the account is wiped out — equity is zero from that close on (an exchange's insurance fund takes the rest; equity
never goes below zero), no further trade is made, and the result says so.
"""

from __future__ import annotations

import numpy as np

from .risk import RiskPlan

__all__ = ["EXIT_REASONS", "apply_ruin", "exit_reasons", "level_hit"]

#: Exit reason codes (the compiled engine records these integers).
EXIT_REASONS = ("signal", "stop", "target", "trail", "liquidation", "end of data")
SIGNAL, STOP, TARGET, TRAIL, LIQUIDATION, END_OF_DATA = range(6)


def level_hit(long: bool, base: float, frac: float, o: float, lo: float, hi: float, below: bool) -> float:
    """vectorbt's ``get_stop_price_nb``: the fill price of a stop ``frac`` away from ``base`` on a bar with open
    ``o`` and range ``[lo, hi]`` — the open when the bar gaps through the level, the level when the range touches
    it — or NaN. ``below``: the stop-loss side (below a long's base, above a short's)."""
    if long == below:
        level = base * (1 - frac)
        if o <= level:
            return o
        return level if lo <= level <= hi else np.nan
    level = base * (1 + frac)
    if level <= o:
        return o
    return level if lo <= level <= hi else np.nan


def exit_reasons(entry_idx: np.ndarray, exit_idx: np.ndarray, long: np.ndarray, entry_price: np.ndarray,
                 is_open: np.ndarray, plan: RiskPlan, o: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> list[str]:
    """The reason of each trade (window-relative bar indexes), reconstructed from the stop arrays."""
    out = []
    for e, j, lg, base, opened in zip(entry_idx, exit_idx, long, entry_price, is_open, strict=True):
        if opened:
            out.append(EXIT_REASONS[END_OF_DATA])
            continue
        sl, tp, trail = plan.sl[e], plan.tp[e], bool(plan.trail[e])
        extreme = float(base)
        if np.isfinite(sl) and trail:   # the trail's extreme through the bar before the exit (the entry bar excluded)
            window = hi[e + 1:j] if lg else lo[e + 1:j]
            if window.size:
                extreme = float(max(extreme, window.max())) if lg else float(min(extreme, window.min()))
        reason = SIGNAL
        if np.isfinite(sl) and np.isfinite(level_hit(bool(lg), extreme, sl, o[j], lo[j], hi[j], True)):
            reason = LIQUIDATION if plan.liq[e] and not (trail and extreme != base) else TRAIL if trail else STOP
        elif np.isfinite(tp) and np.isfinite(level_hit(bool(lg), float(base), tp, o[j], lo[j], hi[j], False)):
            reason = TARGET
        out.append(EXIT_REASONS[reason])
    return out


def apply_ruin(value: np.ndarray) -> tuple[np.ndarray, int]:
    """Equity clamped at zero from the first close at or below zero on; returns (equity, ruin bar or -1)."""
    bad = np.flatnonzero(~(value > 0))
    if bad.size == 0:
        return value, -1
    t = int(bad[0])
    out = value.copy()
    out[t:] = 0.0
    return out, t
