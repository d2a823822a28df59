"""Missing bars as ranges: what the gap rules report and what the splits table counts per window."""

from __future__ import annotations

import numpy as np
import polars as pl

from ..timeframes import timeframe_ms

__all__ = ["find_gaps", "window_gaps"]



def find_gaps(timestamps: pl.Series, timeframe: str) -> list[tuple[int, int, int]]:
    """Missing bars as ``(first_missing_ms, last_missing_ms, n_missing)`` ranges, from sorted unique times."""
    tf = timeframe_ms(timeframe)
    if timestamps.len() < 2:
        return []
    s = timestamps.sort()
    d = s.diff().slice(1)
    idx = (d > tf).arg_true().to_list()
    prev = s.to_list()
    return [(prev[i] + tf, prev[i + 1] - tf, (prev[i + 1] - prev[i]) // tf - 1) for i in idx]


def window_gaps(timestamps: np.ndarray, start_ms: int, end_ms: int, timeframe: str) -> tuple[int, int, int]:
    """Missing bars of the window ``[start_ms, end_ms)`` against the grid, its edges included:
    ``(missing bars, gaps, longest gap in bars)``. ``timestamps`` is sorted."""
    tf = timeframe_ms(timeframe)
    ts = np.asarray(timestamps, dtype=np.int64)
    ts = ts[(ts >= start_ms) & (ts < end_ms)]
    edges = np.concatenate([[start_ms - tf], ts, [end_ms]])
    missing = np.diff(edges) // tf - 1
    missing = missing[missing > 0]
    return int(missing.sum()), int(missing.size), int(missing.max()) if missing.size else 0
