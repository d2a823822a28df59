"""The report's heaviest statistics beside the search they judge: PBO/CSCV of one split and the bootstrap CIs."""

from __future__ import annotations

import numpy as np

from ..stats import bootstrap_ci, pbo_cscv
from .common import Row, best_of

__all__ = ["stats_rows"]


def stats_rows(split_search: float, trials: int) -> list[Row]:
    """``split_search``: seconds of one split's ``trials``-trial search, measured in the same run (the reference)."""
    rng = np.random.default_rng(0)
    daily = rng.normal(0.0, 0.01, (180, trials))  # a 180-day train window's daily returns, one column per trial
    oos = rng.normal(0.001, 0.02, 365)
    pbo_cscv(daily, 16)  # compile / load the kernel before timing
    t_pbo = best_of(lambda: pbo_cscv(daily, 16), 5)
    t_boot = best_of(lambda: (bootstrap_ci(oos, "sharpe"), bootstrap_ci(oos, "max_drawdown")), 3)
    return [
        Row(f"PBO/CSCV of one split (180 days x {trials} trials, 16 blocks: 12,870 combinations)", t_pbo,
            split_search, "s", "reference: that split's search in the same run (one compiled pass per combination; "
            "the numpy version before it took ~0.09 s)"),
        Row("bootstrap CIs of a 365-day OOS series (Sharpe + max drawdown, stationary bootstrap)", t_boot,
            split_search, "s", "reference: one split's search in the same run (once per report, not per split)"),
    ]
