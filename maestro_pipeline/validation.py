"""Structural rules for bars and gap ranges: a thin, stable façade over the data contract.

The rules themselves are great-expectations expectations in :mod:`maestro_pipeline.contract`; this module keeps
the small API that research and notebooks use: :func:`check_bars` returns the *structural* rules (schema, nulls,
order, duplicates, grid, partition range, OHLC, prices, volume) as readable results ("3 row(s) with high below
open/close or low above them, first at 2025-03-02 04:00"), and :func:`find_gaps` lists missing bars as ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .timeframes import timeframe_ms

#: The structural rules: a failure means the rows are wrong, not merely unusual.
STRUCTURAL_RULES: tuple[str, ...] = (
    "schema", "no_nulls", "sorted", "unique_timestamps", "aligned_to_grid", "in_partition",
    "ohlc_consistent", "positive_prices", "volume_non_negative",
)


@dataclass
class RuleResult:
    rule: str
    passed: bool
    failed_rows: int
    message: str
    first_offenders: list[str] = field(default_factory=list)


def check_bars(df: pl.DataFrame, timeframe: str, start_ms: int | None = None, end_ms: int | None = None) -> list[RuleResult]:
    """Evaluate the structural rules of the contract (with great-expectations); ``[start_ms, end_ms)`` is the
    partition's time range, if any."""
    from .contract import evaluate

    res = evaluate(df, timeframe, start_ms=start_ms, end_ms=end_ms)
    out = []
    for rule in STRUCTURAL_RULES:
        o = res.outcomes[rule]
        out.append(RuleResult(rule, o.passed, o.count, o.message if not o.passed else "ok", o.first_offenders))
    return out


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
