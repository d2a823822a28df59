"""Statistics that judge a walk-forward: performance metrics, Deflated Sharpe, PBO, bootstrap CIs, stability.

``metrics`` (per-bar figures, quantstats' conventions; ``fast_metrics`` through the compiled kernels in ``nb``),
``vwr`` (Backtrader's VWR reproduced), ``deflated_sharpe``, ``pbo`` (CSCV), ``bootstrap``, ``stability``.
"""

from .bootstrap import BOOTSTRAP_STATS, bootstrap_ci, trade_reshuffle_ci
from .deflated_sharpe import deflated_sharpe_ratio, dsr_report, expected_max_sharpe, probabilistic_sharpe_ratio
from .efficiency import daily_log_growth, walk_forward_efficiency
from .metrics import (
    FAST_METRIC_KEYS,
    METRIC_CONVENTIONS,
    METRIC_KEYS,
    compute_metrics,
    fast_metrics,
    max_drawdown,
    score,
)
from .pbo import PBO_METRICS, TRIAL_DAILY_COLUMNS, PBOResult, pbo_cscv, pbo_walk_forward
from .stability import parameter_stability, plateau_score
from .vwr import (
    VWR_SDEV_MAX,
    VWR_TAU,
    backtrader_period_keys,
    backtrader_tann,
    backtrader_vwr,
    tann_from_periods_per_year,
)

__all__ = [
    "BOOTSTRAP_STATS", "FAST_METRIC_KEYS", "METRIC_CONVENTIONS", "METRIC_KEYS", "PBO_METRICS", "TRIAL_DAILY_COLUMNS",
    "VWR_SDEV_MAX", "VWR_TAU", "PBOResult", "backtrader_period_keys", "backtrader_tann", "backtrader_vwr",
    "bootstrap_ci", "compute_metrics", "daily_log_growth", "deflated_sharpe_ratio", "dsr_report",
    "expected_max_sharpe", "fast_metrics", "max_drawdown", "parameter_stability", "pbo_cscv", "pbo_walk_forward",
    "plateau_score", "probabilistic_sharpe_ratio", "score", "tann_from_periods_per_year", "trade_reshuffle_ci",
    "walk_forward_efficiency",
]
