"""Walk-forward efficiency: how much of the in-sample return the walk-forward kept out of sample."""

from __future__ import annotations

import numpy as np

__all__ = ["walk_forward_efficiency"]


def walk_forward_efficiency(oos_annual: float, is_annual: float) -> tuple[float | None, str]:
    """Annualized OOS return / annualized in-sample return.

    The ratio only means something when the in-sample return is positive (a strategy the search believed in);
    when it is not, the ratio's sign flips meaning, so it is reported as undefined with the reason.
    """
    if not np.isfinite(is_annual) or not np.isfinite(oos_annual):
        return None, "undefined: a return is not finite"
    if is_annual <= 0:
        return None, f"undefined: in-sample annual return {is_annual:.1%} is not positive"
    return float(oos_annual / is_annual), "annualized OOS return / annualized in-sample return"

