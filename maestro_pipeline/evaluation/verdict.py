"""The verdict: one word (with its reason and thresholds) that answers "is this strategy robust?".

Checked in this order, so a reader knows exactly why:

1. ``fails out of sample`` when the account was wiped out (a total loss needs no large sample to be judged);
2. ``insufficient data`` when the out-of-sample span is shorter than ``evaluation.min_oos_days`` or holds fewer
   than ``evaluation.min_oos_trades`` trades — "not enough data to tell" is the honest answer then;
3. ``fails out of sample`` when the OOS total return is not positive, or the OOS Sharpe is not positive;
4. ``overfit`` when PBO >= 0.5 (the train-window winner usually ranks in the bottom half out of sample);
5. ``inconclusive`` when the walk-forward efficiency is undefined;
6. ``weak`` when WFE < 0.5;
7. ``promising`` when DSR < 0.95 or PBO/DSR cannot be computed;
8. ``robust`` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import EvaluationConfig

__all__ = ["MAX_PBO", "MIN_DSR", "MIN_WFE", "VERDICT_RANK", "Evidence", "thresholds", "verdict"]

MIN_WFE = 0.5
MAX_PBO = 0.5
MIN_DSR = 0.95

VERDICT_RANK = {"robust": 0, "promising": 1, "weak": 2, "inconclusive": 3, "overfit": 4, "fails out of sample": 5,
                "insufficient data": 6}


def thresholds(ev: EvaluationConfig) -> str:
    """The thresholds stated in every report."""
    return (f"at least {ev.min_oos_days} OOS days and {ev.min_oos_trades} OOS trades, OOS return and Sharpe > 0, "
            f"PBO < {MAX_PBO}, WFE >= {MIN_WFE}; robust also needs DSR >= {MIN_DSR}")


@dataclass(frozen=True)
class Evidence:
    """What the verdict reads."""

    oos_days: int
    oos_trades: int
    oos_total_return: float
    oos_sharpe: float          # NaN when the sample is too short to annualize
    wfe: float | None
    pbo: float | None = None
    dsr: float | None = None
    ruined: bool = False
    ruin_time: str = ""


def verdict(e: Evidence, ev: EvaluationConfig) -> tuple[str, str]:
    """(verdict, reason) — see the module docstring for the order."""
    if e.ruined:
        return "fails out of sample", (f"the account was wiped out at {e.ruin_time}: a gap went through the "
                                       "liquidation price")
    short = []
    if e.oos_days < ev.min_oos_days:
        short.append(f"{e.oos_days} OOS days < {ev.min_oos_days}")
    if e.oos_trades < ev.min_oos_trades:
        short.append(f"{e.oos_trades} OOS trades < {ev.min_oos_trades}")
    if short:
        return "insufficient data", " and ".join(short) + ": not enough data to tell"
    if not np.isfinite(e.oos_total_return) or e.oos_total_return <= 0:
        return "fails out of sample", f"OOS total return {e.oos_total_return:.1%} <= 0"
    if not np.isfinite(e.oos_sharpe) or e.oos_sharpe <= 0:
        return "fails out of sample", f"OOS Sharpe {e.oos_sharpe:.2f} <= 0"
    if e.pbo is not None and np.isfinite(e.pbo) and e.pbo >= MAX_PBO:
        return "overfit", (f"PBO {e.pbo:.2f} >= {MAX_PBO}: "
                           "the train-window winner usually ranks in the bottom half out of sample")
    if e.wfe is None or not np.isfinite(e.wfe):
        return "inconclusive", f"OOS Sharpe {e.oos_sharpe:.2f} > 0 but walk-forward efficiency is undefined"
    if e.wfe < MIN_WFE:
        return "weak", f"OOS Sharpe {e.oos_sharpe:.2f} > 0 but walk-forward efficiency {e.wfe:.2f} < {MIN_WFE}"
    passed = (f"OOS Sharpe {e.oos_sharpe:.2f} > 0, WFE {e.wfe:.2f} >= {MIN_WFE}, {e.oos_trades} trades over "
              f"{e.oos_days} days")
    if e.pbo is None or not np.isfinite(e.pbo):
        return "promising", f"{passed}; PBO not computable (too few trials or train days), so not called robust"
    passed += f", PBO {e.pbo:.2f} < {MAX_PBO}"
    if e.dsr is None or not np.isfinite(e.dsr):
        return "promising", f"{passed}; DSR not computable, so not called robust"
    if e.dsr < MIN_DSR:
        return "promising", (f"{passed}; but DSR {e.dsr:.2f} < {MIN_DSR}: "
                             "the OOS Sharpe may be luck across the trials searched")
    return "robust", f"{passed}, DSR {e.dsr:.2f} >= {MIN_DSR}"
