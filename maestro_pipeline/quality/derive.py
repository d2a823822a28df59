"""Columns derived from the bars (polars) that the contract's great-expectations suites judge.

``timestamp mod timeframe``, OHLC slack, the robust z-score of log returns (a bar that undoes the previous one is
scored on the net move; wicks on the same scale), one-bar jump ratios, plausibility excess, flat and zero-volume
run lengths, copy flags, and the grid interval before each bar. Rows keep their input position in ``ROW_INDEX`` so
GE's unexpected-row indexes map back onto the input.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl

from ..schema import BAR_COLUMNS

__all__ = ["CALENDARS", "DTYPE_NAMES", "ROW_INDEX", "derive_continuity", "derive_rows", "schema_frame", "volume_known"]

ROW_INDEX = "_row"
PRICES = ("open", "high", "low", "close")
DTYPE_NAMES = {c: str(t) for c, t in BAR_COLUMNS.items()}


def _run_lengths(flag: pl.Expr) -> pl.Expr:
    """For each row, the length of the run of consecutive True rows it belongs to (0 when False)."""
    run_id = (flag != flag.shift(1)).fill_null(True).cum_sum()
    return pl.when(flag).then(pl.len().over(run_id)).otherwise(0)


def schema_frame(df: pl.DataFrame) -> pd.DataFrame:
    """One row per bar column: the type it must have and the type it has (GE's schema suite reads this)."""
    return pd.DataFrame({
        "column": list(BAR_COLUMNS),
        "expected_type": [DTYPE_NAMES[c] for c in BAR_COLUMNS],
        "actual_type": [str(df.schema[c]) if c in df.columns else None for c in BAR_COLUMNS],
        ROW_INDEX: range(len(BAR_COLUMNS)),
    })


def volume_known(df: pl.DataFrame) -> bool:
    """False when every bar's volume is null: the source has no volume (a file without a volume column)."""
    return "volume" in df.columns and df["volume"].null_count() < df.height


def derive_rows(df: pl.DataFrame, tf: int, max_price: float = 1e12, max_volume: float = 1e18) -> pl.DataFrame:
    """The bars (in the order received, ``_row`` = position) plus the derived columns the row suite checks."""
    d = df.with_row_index(ROW_INDEX).with_columns(pl.col(ROW_INDEX).cast(pl.Int64))
    cols = [c for c in BAR_COLUMNS if c != "volume" or volume_known(df)]
    bad = [pl.when(pl.col(c).is_null() | (~pl.col(c).is_finite() if BAR_COLUMNS[c] == pl.Float64() else pl.lit(False)))
           .then(pl.lit(c)) for c in cols]
    o, h, low, c = (pl.col(x) for x in PRICES)
    nulls = pl.concat_str(bad, separator=",", ignore_nulls=True)
    d = d.with_columns(
        pl.when(nulls != "").then(nulls).otherwise(None).alias("null_fields"),
        (pl.col("timestamp") % tf).alias("ts_mod_tf"),
        pl.min_horizontal(h - pl.max_horizontal(o, c), pl.min_horizontal(o, c) - low).alias("ohlc_slack"),
        pl.min_horizontal(o, h, low, c).alias("min_price"),
        # how far past the plausibility bounds (> 1: beyond); inf and NaN are no_nulls' business
        pl.max_horizontal(pl.max_horizontal(o, h, low, c) / max_price, pl.col("volume").fill_null(0.0) / max_volume)
        .fill_nan(0.0).alias("value_excess"),
    )
    # series-derived columns on the rows that can form a series: sorted, first row per timestamp, finite prices
    ok = pl.all_horizontal([pl.col(x).is_not_null() & pl.col(x).is_finite() & (pl.col(x) > 0) for x in PRICES]) \
        & pl.col("timestamp").is_not_null() & (pl.col("volume").is_null() | pl.col("volume").is_finite())
    s = d.filter(ok).sort("timestamp", ROW_INDEX).unique("timestamp", keep="first", maintain_order=True)
    lr = (pl.col("close") / pl.col("close").shift(1)).log()
    s = s.with_columns(lr.alias("_lr"))
    r = s["_lr"].drop_nulls()
    med = float(r.median()) if r.len() else 0.0
    mad = float((r - med).abs().median()) * 1.4826 if r.len() else 0.0
    if not mad or not math.isfinite(mad):  # more than half the returns are zero: fall back to the mean deviation
        mad = float((r - med).abs().mean()) * 1.2533 if r.len() else 0.0
    flat = (o == h) & (h == low) & (low == c)
    key = pl.struct("open", "high", "low", "close", "volume")
    copyable = (h > low) & (pl.col("volume") > 0)
    # a bar that undoes the previous bar's move (the way back from a one-bar spike) is scored on the net move of
    # the two bars, so a bad tick flags itself and not also the next, healthy bar
    prev = pl.col("_lr").shift(1)
    net = pl.col("_lr") + prev
    reverting = (pl.col("_lr").sign() != prev.sign()) & (net.abs() < 0.5 * prev.abs())
    move = pl.when(reverting.fill_null(False)).then(net).otherwise(pl.col("_lr"))
    # wicks on the same scale: how far high and low reach beyond the body, in log terms
    wick = pl.max_horizontal((h / pl.max_horizontal(o, c)).log(), (pl.min_horizontal(o, c) / low).log())
    # the largest one-bar ratio: high and low against the previous close (the bar's own open for the first bar)
    ref = pl.col("close").shift(1).fill_null(o)
    jump = pl.max_horizontal(h, ref) / pl.min_horizontal(low, ref)
    z_close = ((move - med) / mad).abs() if mad and math.isfinite(mad) else pl.lit(0.0)
    z_wick = (wick / mad) if mad and math.isfinite(mad) else pl.lit(0.0)
    s = s.with_columns(
        pl.max_horizontal(z_close, z_wick).alias("return_z"),
        jump.alias("jump_ratio"),
        (_run_lengths(flat) * tf).alias("flat_run_ms"),
        (_run_lengths(pl.col("volume") == 0) * tf).alias("zero_volume_run_ms"),
        pl.when(copyable & key.is_duplicated() & (pl.col("timestamp") != pl.col("timestamp").min().over(key)))
        .then(pl.col("timestamp").min().over(key)).otherwise(None).alias("copy_of"),
    ).select(ROW_INDEX, "return_z", "jump_ratio", "flat_run_ms", "zero_volume_run_ms", "copy_of")
    return d.join(s, on=ROW_INDEX, how="left").sort(ROW_INDEX)


DAY_MS = 86_400_000
CALENDARS = ("24/7", "weekdays")


def _open_slots(first: int, last: int, tf: int, calendar: str) -> int:
    """Grid slots in ``[first, last]`` (step ``tf``) on which the market is open: every slot on ``24/7``; on
    ``weekdays`` the slots opening Monday 00:00 to Friday 24:00 UTC (weekend bars may exist and are kept)."""
    if last < first:
        return 0
    n = (last - first) // tf + 1
    if calendar == "24/7":
        return int(n)
    slots = first + tf * np.arange(n, dtype=np.int64)
    return int(((slots // DAY_MS + 3) % 7 < 5).sum())   # 1970-01-01 was a Thursday (Monday = 0)


def derive_continuity(ts: np.ndarray, tf: int, prev_last_ms: int | None = None, *, start_ms: int | None = None,
                      end_ms: int | None = None, next_first_ms: int | None = None,
                      calendar: str = "24/7") -> pl.DataFrame:
    """One row per interval before each bar (sorted unique ``ts``): how many bars are missing in it.

    Gaps are charged to the months they span: the first bar's interval starts after ``prev_last_ms`` (the last
    bar of the previous month) but not before ``start_ms`` (the part before belongs to the previous month), and
    when ``next_first_ms`` (the next month's first bar) is known, the missing bars from the last bar to
    ``end_ms`` are one more interval. Without ``prev_last_ms`` the first bar has no interval. Closed sessions of
    ``calendar`` are not missing."""
    ts = np.asarray(ts, dtype=np.int64)
    if not len(ts):
        firsts, lasts = np.empty(0, np.int64), np.empty(0, np.int64)
    else:
        first0 = prev_last_ms + tf if prev_last_ms is not None else ts[0]
        if prev_last_ms is not None and start_ms is not None:
            first0 = max(first0, start_ms + (-start_ms) % tf)
        firsts = np.concatenate([[first0], ts[:-1] + tf])
        lasts = ts - tf
        if next_first_ms is not None and end_ms is not None and next_first_ms > ts[-1] + tf:
            firsts = np.append(firsts, ts[-1] + tf)
            lasts = np.append(lasts, min(next_first_ms, end_ms) - tf)
    missing = np.where(lasts >= firsts, (lasts - firsts) // tf + 1, 0).astype(np.int64)
    if calendar != "24/7":
        for i in np.flatnonzero(missing):   # only the intervals with missing slots: few
            missing[i] = _open_slots(int(firsts[i]), int(lasts[i]), tf, calendar)
    stamps = np.concatenate([ts, np.maximum(lasts[len(ts):] + tf, 0)]) if len(lasts) > len(ts) else ts
    return pl.DataFrame({
        ROW_INDEX: np.arange(len(firsts), dtype=np.int64),
        "timestamp": stamps,
        "first_missing_ms": firsts,
        "last_missing_ms": lasts,
        "missing_bars": missing,
        "gap_ms": missing * tf,
    })
