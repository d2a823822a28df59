"""Walk-forward planning: train/test windows, the splits table, the live split, market regimes and triggers.

``planner`` (where windows lie: calendar grid or parts; rolling, anchored, adaptive; purge and embargo), ``table``
(the splits table research reads), ``live`` (the split to trade now, re-anchored on a confirmed regime shift),
``regimes`` (a Gaussian HMM fitted on past data only), ``triggers`` (when to re-split), ``data`` (the bars).
"""

from .data import SPANS, ResearchSpan, research_bars, research_span
from .live import LivePlan, live_split, split_regime_rows
from .planner import Split, adaptive_train_start, next_test_end_ms, plan_splits, squared_log_returns
from .regimes import (
    RegimeModel,
    RegimeShift,
    daily_features,
    filter_daily,
    filtered_regimes,
    fit_daily,
    fit_regimes,
    regime_shift,
    regimes_of_splits,
    shift_in,
    split_regimes,
)
from .table import DEFAULT_MAX_GAP, gap_flags, make_splits, plan_research, splits_clamp_note, splits_from_table
from .triggers import Resplit, months_to_refresh, resplit_decision, splits_due

__all__ = [
    "DEFAULT_MAX_GAP", "LivePlan", "RegimeModel", "RegimeShift", "Resplit", "Split", "adaptive_train_start",
    "daily_features", "filter_daily", "filtered_regimes", "fit_daily", "fit_regimes", "gap_flags", "live_split",
    "make_splits", "months_to_refresh", "next_test_end_ms", "plan_research", "plan_splits", "regime_shift",
    "regimes_of_splits", "research_bars", "research_span", "ResearchSpan", "SPANS", "resplit_decision", "shift_in",
    "split_regime_rows", "split_regimes", "splits_clamp_note", "splits_due", "splits_from_table",
    "squared_log_returns",
]
