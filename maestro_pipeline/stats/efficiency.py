"""Walk-forward efficiency: how much of the in-sample growth the walk-forward kept out of sample.

``WFE = OOS daily log growth / in-sample daily log growth``: each side's ``log(1 + total return)`` divided by the
calendar days it covers (in-sample: the mean over the splits' train windows). Annualizing both sides would only
multiply them by the same 365, so the ratio is the annualized one — but computed without compounding a few days into
a yearly figure, which made CAGR-based ratios explode on short windows (an in-sample CAGR of 1e34 from 5 days).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["daily_log_growth", "walk_forward_efficiency"]


def daily_log_growth(total_return: float, days: float) -> float:
    """``log(1 + total_return) / days``; ``-inf`` for a total loss, NaN when there are no days."""
    if not (days > 0) or not np.isfinite(total_return):
        return math.nan
    if total_return <= -1:
        return -math.inf
    return math.log1p(total_return) / days


def walk_forward_efficiency(oos_total_return: float, oos_days: float, is_total_returns: Sequence[float],
                            is_days: Sequence[float]) -> tuple[float | None, str]:
    """The ratio (see module docstring), or None with the reason when it is undefined.

    It only means something when the in-sample growth is positive (a strategy the search believed in); when it is
    not, the ratio's sign flips meaning, so it is reported as undefined."""
    is_g = [daily_log_growth(r, d) for r, d in zip(is_total_returns, is_days, strict=True)]
    is_g = [g for g in is_g if not math.isnan(g)]
    oos_g = daily_log_growth(oos_total_return, oos_days)
    if not is_g or math.isnan(oos_g):
        return None, "undefined: no window to measure growth on"
    is_mean = float(np.mean(is_g))
    if not math.isfinite(is_mean):
        return None, "undefined: an in-sample window lost everything"
    if is_mean <= 0:
        return None, f"undefined: in-sample growth {math.expm1(is_mean * 365):.1%}/year is not positive"
    if not math.isfinite(oos_g):
        return -math.inf if oos_g < 0 else None, "out-of-sample equity was wiped out"
    return float(oos_g / is_mean), "OOS daily log growth / in-sample daily log growth"
