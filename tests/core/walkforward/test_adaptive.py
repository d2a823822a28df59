"""The volatility-adaptive scheme adapts: on stationary fat-tailed returns a train window keeps about its nominal
length (its target and its sum use the same statistic); on a calm stretch it lengthens, on a volatile one shortens."""

from __future__ import annotations

import numpy as np

from maestro_pipeline.timeframes import HOUR_MS
from maestro_pipeline.walkforward import adaptive_train_start, squared_log_returns

NOMINAL = 90 * 24


def fat_tailed(n: int, seed: int, scale: np.ndarray | float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = rng.standard_t(3, n) * scale / np.sqrt(3.0)   # Student-t, 3 degrees of freedom: mean(r^2) >> median(r^2)
    return np.arange(n, dtype=np.int64) * HOUR_MS, 100 * np.exp(np.cumsum(r))


def _length_bars(ts, close, end_index) -> int:
    r2 = squared_log_returns(close)
    end = int(ts[end_index])
    start = adaptive_train_start(ts, r2, 0, end, end - NOMINAL * HOUR_MS, HOUR_MS)
    return (end - start) // HOUR_MS


def test_stationary_fat_tailed_returns_keep_about_the_nominal_length():
    lengths = []
    for seed in range(8):
        ts, close = fat_tailed(24 * 400, seed)
        lengths.append(_length_bars(ts, close, 24 * 380))
    # today's median-based target undershot these sums ~2x and pinned every window to the 45-day minimum
    assert np.median(lengths) > 0.75 * NOMINAL and min(lengths) > NOMINAL // 2
    assert max(lengths) < 2 * NOMINAL


def test_calm_recent_data_lengthens_the_window_and_volatile_data_shortens_it():
    n = 24 * 400
    calm_end = np.r_[np.full(n - 24 * 120, 0.01), np.full(24 * 120, 0.004)]
    wild_end = np.r_[np.full(n - 24 * 120, 0.01), np.full(24 * 120, 0.025)]
    ts, calm = fat_tailed(n, 1, calm_end)
    _, wild = fat_tailed(n, 1, wild_end)
    assert _length_bars(ts, calm, n - 1) > 1.3 * NOMINAL
    assert _length_bars(ts, wild, n - 1) < 0.8 * NOMINAL
