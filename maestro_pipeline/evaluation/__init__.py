"""Judging a walk-forward: the out-of-sample run, the report card, the verdict and the leaderboard.

``oos`` (each split's pick traded on its own test window, stitched), ``report_card`` (DSR, PBO, bootstrap CIs,
parameter stability, quantstats, charts), ``verdict`` (one word with its thresholds), ``report`` (the row the lake
keeps), ``leaderboard`` (every instrument x strategy ranked, in DuckDB SQL).
"""

from .leaderboard import COLUMNS as LEADERBOARD_COLUMNS
from .leaderboard import build_leaderboard, format_leaderboard, leaderboard_sql
from .oos import OOSResult, run_oos
from .report import ResearchReport, build_report, live_summary, tradeable, with_regimes
from .report_card import BOOTSTRAP, ReportCard, build_report_card
from .verdict import MAX_PBO, MIN_DSR, MIN_WFE, VERDICT_RANK, Evidence, thresholds, verdict

__all__ = [
    "BOOTSTRAP", "LEADERBOARD_COLUMNS", "MAX_PBO", "MIN_DSR", "MIN_WFE", "VERDICT_RANK", "Evidence", "OOSResult",
    "ReportCard", "ResearchReport", "build_leaderboard", "build_report", "build_report_card", "format_leaderboard",
    "leaderboard_sql", "live_summary", "run_oos", "thresholds", "tradeable", "verdict", "with_regimes",
]
