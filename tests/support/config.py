"""A small configuration on the embedded market, and the tests' pinned clock."""

from __future__ import annotations

from datetime import UTC, datetime

#: A fixed "now" so every test sees the same market: 2026-09-10 12:00 UTC.
NOW_MS = int(datetime(2026, 9, 10, 12, tzinfo=UTC).timestamp() * 1000)


def ms(*args: int) -> int:
    """Epoch milliseconds of a UTC ``datetime(*args)``."""
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def small_config(lake_root: str, **over) -> dict:
    cfg = {
        "lake_root": lake_root,
        "instruments": [{"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2026-04-01"}],
        "strategies": ["ema_cross", "rsi"],
        "walk_forward": {"scheme": "rolling", "train": "40d", "test": "20d", "n_splits": 3},
        "search": {"n_trials": 6, "seed": 3, "objective": "sharpe"},
        "costs": {"default": {"fee": 0.001, "slippage": 0.0005}},
        "synthetic": {"seed": 11},
    }
    cfg.update(over)
    return cfg
