"""The backtest engine, twice: the vectorbt reference and its compiled twin, held equal by the tests.

``reference`` (``Portfolio.from_signals``: trades, equity, the OOS reports), ``nb`` (numba kernels, arrays only,
``*_nb``) and ``fast`` (their Python API, used by the search: ~0.2 ms per 1-year 1h backtest).
"""

from .fast import bar_arrays, evaluate_fast, grid_returns, simulate
from .reference import MAX_LEVERAGE, TRADE_COLUMNS, BacktestResult, Costs, evaluate, index_freq, run_backtest

__all__ = [
    "MAX_LEVERAGE", "TRADE_COLUMNS", "BacktestResult", "Costs", "bar_arrays", "evaluate", "evaluate_fast",
    "grid_returns", "index_freq", "run_backtest", "simulate",
]
