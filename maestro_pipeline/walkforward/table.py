"""The splits table: one row per walk-forward split of an instrument (windows, bar counts, gaps, embargo zones,
regimes, and the live split), as ``walk_forward_splits`` writes it and research reads it back."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import polars as pl

from ..config import RegimesConfig, WalkForwardConfig
from ..durations import duration_ms, iso
from ..errors import MaestroError
from ..quality import find_gaps, window_gaps
from ..timeframes import timeframe_ms
from .live import LivePlan, live_split, split_regime_rows
from .planner import Split, plan_splits

__all__ = ["DEFAULT_MAX_GAP", "gap_flags", "make_splits", "plan_research", "splits_clamp_note", "splits_from_table"]

#: Default longest tolerated gap (the data contract's max_gap) when the caller passes none.
DEFAULT_MAX_GAP = "6h"


def make_splits(bars: pl.DataFrame, timeframe: str, wf: WalkForwardConfig,
                max_gap: str | int = DEFAULT_MAX_GAP) -> tuple[list[Split], pl.DataFrame]:
    """Splits for these bars under the walk-forward config, and their table (with bar counts and gaps).

    ``blocking_gap`` flags a split whose train or test window holds a gap longer than ``max_gap`` (the data
    contract's limit): such a window is reported, never silently bridged. ``exclude`` (JSON ``[[start, end],
    ...]``) lists the embargo zones inside the train window; ``train_bars_excluded`` counts their bars, which
    must not train the split."""
    if bars.height == 0:
        raise MaestroError("no validated bars for this instrument yet: materialize validated_bars first")
    close = bars["close"].to_numpy() if wf.scheme == "adaptive" else None
    splits = plan_splits(bars["timestamp"].to_numpy(), close, timeframe, wf)
    table = pl.DataFrame([_split_row(bars, s, timeframe, max_gap, wf.scheme) for s in splits])
    return splits, table


def splits_clamp_note(key: str, requested: int, complete: int) -> str:
    """The stated clamp when the data holds fewer complete splits than ``walk_forward.n_splits`` asks for."""
    return (f"{key}: walk_forward.n_splits is {requested} but the data holds {complete} complete split(s); "
            f"researching {complete} (lower n_splits, or shorten train/test, to make this note go away)")


def _split_row(bars: pl.DataFrame, s: Split, timeframe: str, max_gap: str | int, scheme: str) -> dict[str, Any]:
    """One row of the splits table: the window, its bar counts, gaps and embargo zones."""
    tf = timeframe_ms(timeframe)
    ts = bars["timestamp"]
    arr = ts.to_numpy()
    tr = np.searchsorted(arr, [s.train_start, s.train_end])
    te = np.searchsorted(arr, [s.test_start, s.test_end])
    test_ts = ts.slice(int(te[0]), int(te[1] - te[0]))
    missing = (min(s.test_end, int(arr[-1]) + tf) - s.test_start) // tf - test_ts.len()
    excluded = sum(int(b - a) for a, b in (np.searchsorted(arr, list(z)) for z in s.exclude))
    return {
        "train_start": s.train_start,
        "train_end": s.train_end,
        "test_start": s.test_start,
        "test_end": s.test_end,
        "split": s.index,
        "train_from": iso(s.train_start),
        "train_to": iso(s.train_end),
        "test_from": iso(s.test_start),
        "test_to": iso(s.test_end),
        "train_bars": int(tr[1] - tr[0]),
        "test_bars": int(te[1] - te[0]),
        "test_missing_bars": int(max(missing, 0)),
        "test_gaps": len(find_gaps(test_ts, timeframe)),
        **gap_flags(arr, s, timeframe, max_gap),
        "scheme": scheme,
        "exclude": json.dumps([list(z) for z in s.exclude]),
        "train_bars_excluded": excluded,
    }


def plan_research(bars: pl.DataFrame, timeframe: str, wf: WalkForwardConfig, max_gap: str | int = DEFAULT_MAX_GAP,
                  regimes: RegimesConfig | None = None) -> tuple[list[Split], pl.DataFrame, LivePlan]:
    """The complete splits plus the live split (``live`` column), with each split's market regimes.

    Returns (splits including the live one, their table, the ``live.LivePlan``). The live split's test window
    is still open: it is searched (its pick is what to trade now) but never enters out-of-sample results."""
    splits, table = make_splits(bars, timeframe, wf, max_gap)
    plan = live_split(bars, splits, timeframe, wf, regimes)
    every = splits + ([plan.split] if plan.split is not None else [])
    if plan.split is not None:
        row = _split_row(bars, plan.split, timeframe, max_gap, wf.scheme)
        table = pl.concat([table, pl.DataFrame([row])], how="diagonal_relaxed")
    table = table.with_columns((pl.col("split") == (plan.split.index if plan.split is not None else -1)).alias("live"),
                               pl.lit(plan.reason if plan.split is not None else "").alias("live_reason"))
    reg = pl.DataFrame(split_regime_rows(bars, every, timeframe, regimes), schema_overrides={
        "train_regime": pl.Int64, "train_regime_share": pl.Float64, "test_regime": pl.Int64,
        "test_regime_share": pl.Float64, "regime_note": pl.String})
    return every, table.join(reg, on="split", how="left"), plan


def gap_flags(ts: np.ndarray, s: Split, timeframe: str, max_gap: str | int) -> dict[str, Any]:
    """Longest gap (in bars) of a split's train and test windows, and whether either exceeds ``max_gap``."""
    tf = timeframe_ms(timeframe)
    limit = duration_ms(max_gap, tf, "max_gap") // tf
    tr = window_gaps(ts, int(s.train_start), int(s.train_end), timeframe)[2]
    te = window_gaps(ts, int(s.test_start), int(s.test_end), timeframe)[2]
    return {"train_longest_gap_bars": tr, "test_longest_gap_bars": te, "blocking_gap": bool(max(tr, te) > limit)}


def splits_from_table(table: pl.DataFrame) -> list[Split]:
    """The splits a ``make_splits`` table describes (its ``exclude`` zones too, when the table has them)."""

    def zones(r: dict[str, Any]) -> tuple[tuple[int, int], ...]:
        return tuple((int(a), int(b)) for a, b in json.loads(r.get("exclude") or "[]"))

    return [
        Split(int(r["split"]), int(r["train_start"]), int(r["train_end"]), int(r["test_start"]), int(r["test_end"]),
              zones(r))
        for r in table.iter_rows(named=True)
    ]

