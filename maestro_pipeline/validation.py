"""Structural rules for bars: the checks a partition must pass before research may read it.

Each rule reports how many rows break it and the first offending timestamps, so a failed Dagster check reads
as a reason ("3 rows with high < low, first at 2025-03-02T04:00Z"), not a boolean. These are the blocking
structural rules; the full great-expectations contract with quarantine builds on top of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import polars as pl

from .schema import BAR_COLUMNS, OHLCV
from .timeframes import timeframe_ms


@dataclass
class RuleResult:
    rule: str
    passed: bool
    failed_rows: int
    message: str
    first_offenders: list[str] = field(default_factory=list)


#: Rules grouped into the blocking Dagster checks on ``validated_bars`` (check name -> rules).
CHECK_GROUPS: dict[str, tuple[str, ...]] = {
    "schema_and_nulls": ("schema", "no_nulls"),
    "timestamps_sorted_unique_aligned": ("sorted", "unique", "aligned", "in_partition"),
    "ohlc_consistent": ("high_low", "positive_prices"),
    "volume_non_negative": ("volume_non_negative",),
}


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def _result(rule: str, bad: pl.DataFrame, what: str) -> RuleResult:
    n = bad.height
    first = [_iso(t) for t in bad["timestamp"].head(5).to_list()] if n and "timestamp" in bad.columns else []
    msg = "ok" if n == 0 else f"{n} row(s) {what}" + (f", first at {first[0]}" if first else "")
    return RuleResult(rule, n == 0, n, msg, first)


def check_bars(df: pl.DataFrame, timeframe: str, start_ms: int | None = None, end_ms: int | None = None) -> list[RuleResult]:
    """Apply every structural rule; ``[start_ms, end_ms)`` is the partition's time range, if any."""
    missing = [c for c in BAR_COLUMNS if c not in df.columns]
    wrong = [c for c, t in BAR_COLUMNS.items() if c in df.columns and df.schema[c] != t]
    if missing or wrong:
        msg = "; ".join(
            ([f"missing columns {missing}"] if missing else [])
            + ([f"wrong types for {wrong} (expected {[str(BAR_COLUMNS[c]) for c in wrong]})"] if wrong else [])
        )
        return [RuleResult("schema", False, df.height, msg)]
    out = [RuleResult("schema", True, 0, "ok")]
    tf = timeframe_ms(timeframe)
    num = [pl.col(c) for c in OHLCV]
    bad_null = df.filter(pl.any_horizontal([c.is_null() | c.is_nan() for c in num]) | pl.col("timestamp").is_null())
    out.append(_result("no_nulls", bad_null, "with null or NaN values"))
    ts = df["timestamp"]
    diffs = df.with_columns(pl.col("timestamp").diff().alias("_d"))
    out.append(_result("sorted", diffs.filter(pl.col("_d") < 0), "out of time order"))
    out.append(_result("unique", df.filter(ts.is_duplicated()), "with a duplicated timestamp"))
    out.append(_result("aligned", df.filter(pl.col("timestamp") % tf != 0), f"not aligned to the {timeframe} grid"))
    cond = pl.lit(False)
    if start_ms is not None:
        cond = cond | (pl.col("timestamp") < start_ms)
    if end_ms is not None:
        cond = cond | (pl.col("timestamp") >= end_ms)
    out.append(_result("in_partition", df.filter(cond), "outside the partition's time range"))
    o, h, l, c = (pl.col(x) for x in ("open", "high", "low", "close"))
    out.append(
        _result(
            "high_low",
            df.filter((h < pl.max_horizontal(o, c)) | (l > pl.min_horizontal(o, c)) | (h < l)),
            "with high below open/close or low above them",
        )
    )
    out.append(_result("positive_prices", df.filter(pl.any_horizontal([x <= 0 for x in (o, h, l, c)])), "with a price <= 0"))
    out.append(_result("volume_non_negative", df.filter(pl.col("volume") < 0), "with negative volume"))
    return out


def group_results(results: list[RuleResult]) -> dict[str, list[RuleResult]]:
    by_rule = {r.rule: r for r in results}
    groups: dict[str, list[RuleResult]] = {}
    for check, rules in CHECK_GROUPS.items():
        groups[check] = [by_rule[r] for r in rules if r in by_rule]
        if "schema" not in rules and not by_rule.get("schema", RuleResult("schema", True, 0, "")).passed:
            groups[check] = [RuleResult("schema", False, 0, "not evaluated: the schema is wrong")]
    return groups


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
