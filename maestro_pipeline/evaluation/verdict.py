"""The verdict: one word (with its reason and thresholds) that answers "is this strategy robust?"."""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_PBO", "MIN_DSR", "MIN_OOS_TRADES", "MIN_WFE", "THRESHOLDS", "VERDICT_RANK", "verdict"]

#: Verdict thresholds, stated in every report so a reader knows what "promising" means.
MIN_OOS_TRADES = 10
MIN_WFE = 0.5
MAX_PBO = 0.5
MIN_DSR = 0.95

THRESHOLDS = (f"trades >= {MIN_OOS_TRADES}, OOS Sharpe > 0, PBO < {MAX_PBO}, WFE >= {MIN_WFE}; "
              f"robust also needs DSR >= {MIN_DSR}")


def verdict(oos_trades: int, oos_sharpe: float, wfe: float | None, pbo: float | None = None,
            dsr: float | None = None) -> tuple[str, str]:
    """A verdict in words with the thresholds that produced it, checked in this order:

    too few trades (< MIN_OOS_TRADES) -> fails out of sample (OOS Sharpe <= 0) -> overfit (PBO >= MAX_PBO) ->
    inconclusive (WFE undefined) -> weak (WFE < MIN_WFE) -> promising (DSR < MIN_DSR, or PBO/DSR not computable)
    -> robust. "robust" needs every test passed; "promising" says which one it missed.
    """
    if oos_trades < MIN_OOS_TRADES:
        return "too few trades", f"{oos_trades} out-of-sample trades < {MIN_OOS_TRADES}"
    if not np.isfinite(oos_sharpe) or oos_sharpe <= 0:
        return "fails out of sample", f"OOS Sharpe {oos_sharpe:.2f} <= 0"
    if pbo is not None and np.isfinite(pbo) and pbo >= MAX_PBO:
        return "overfit", (f"PBO {pbo:.2f} >= {MAX_PBO}: "
                           "the train-window winner usually ranks in the bottom half out of sample")
    if wfe is None:
        return "inconclusive", f"OOS Sharpe {oos_sharpe:.2f} > 0 but walk-forward efficiency is undefined"
    if wfe < MIN_WFE:
        return "weak", f"OOS Sharpe {oos_sharpe:.2f} > 0 but walk-forward efficiency {wfe:.2f} < {MIN_WFE}"
    passed = f"OOS Sharpe {oos_sharpe:.2f} > 0, WFE {wfe:.2f} >= {MIN_WFE}, {oos_trades} trades >= {MIN_OOS_TRADES}"
    if pbo is None or not np.isfinite(pbo):
        return "promising", f"{passed}; PBO not computable (too few trials or train days), so not called robust"
    passed += f", PBO {pbo:.2f} < {MAX_PBO}"
    if dsr is None or not np.isfinite(dsr):
        return "promising", f"{passed}; DSR not computable, so not called robust"
    if dsr < MIN_DSR:
        return "promising", (f"{passed}; but DSR {dsr:.2f} < {MIN_DSR}: "
                             "the OOS Sharpe may be luck across the trials searched")
    return "robust", f"{passed}, DSR {dsr:.2f} >= {MIN_DSR}"


VERDICT_RANK = {"robust": 0, "promising": 1, "weak": 2, "inconclusive": 3, "overfit": 4, "fails out of sample": 5,
                "too few trades": 6}
