"""The backtest engine, twice: the vectorbt reference and its compiled twin, held equal by the tests.

``reference`` (``Portfolio.from_signals``: trades, equity, the OOS reports), ``nb`` (numba kernels, arrays only,
``*_nb``) and ``fast`` (their Python API, used by the search: ~0.2 ms per 1-year 1h backtest).
"""

from .exits import EXIT_REASONS
from .fast import FastRun, backtest_fast, bar_arrays, evaluate_fast, evaluate_fast_run, grid_returns, simulate
from .reference import TRADE_COLUMNS, BacktestResult, evaluate, index_freq, ohlc, run_backtest
from .risk import (
    DEFAULT_MAINTENANCE_MARGIN,
    MAX_LEVERAGE,
    NO_RISK,
    Costs,
    RiskPlan,
    RiskSpec,
    StopRule,
    liquidation_fraction,
    plan_risk,
)

__all__ = [
    "DEFAULT_MAINTENANCE_MARGIN", "EXIT_REASONS", "MAX_LEVERAGE", "NO_RISK", "TRADE_COLUMNS", "BacktestResult",
    "Costs", "FastRun", "RiskPlan", "RiskSpec", "StopRule", "backtest_fast", "bar_arrays", "evaluate", "evaluate_fast",
    "evaluate_fast_run", "grid_returns", "index_freq", "liquidation_fraction", "ohlc", "plan_risk", "run_backtest",
    "simulate",
]
