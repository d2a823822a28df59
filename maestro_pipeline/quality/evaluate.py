"""Evaluating the bar contract on one partition: rule outcomes, validated rows, quarantine, gaps.

What a month partition of bars must satisfy before research may read it, judged by great-expectations
(:mod:`.suites`) over polars-derived columns (:mod:`.derive`); the catalog of rules and severities is
:mod:`.rules`. Severities (``maestro.yaml`` ``data_contract``): ``error`` blocks the month (nothing written to the
validated lake, every row quarantined, the blocking Dagster check fails); ``drop`` quarantines the offending rows
and validates the rest (the check fails with WARN); ``warn`` only reports. Missing bars are never invented.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..durations import iso, label_ms
from ..schema import BAR_COLUMNS
from ..timeframes import timeframe_ms
from .derive import DTYPE_NAMES, ROW_INDEX, derive_continuity, derive_rows, schema_frame, volume_known
from .docs import render_data_docs
from .rules import CHECKS, CONTINUITY_RULES, DROP, ERROR, RULES, WARN, Policy
from .suites import validate

#: Rules that read volume: not evaluated on bars without volume.
VOLUME_RULES = ("volume_non_negative", "zero_volume_runs")

__all__ = ["STRUCTURAL_RULES", "VOLUME_RULES", "ContractResult", "RuleOutcome", "RuleResult", "check_bars",
           "checks_of", "evaluate"]

@dataclass
class RuleOutcome:
    rule: str
    severity: str                      # error | drop | warn
    passed: bool
    count: int                         # offending rows (gaps for the continuity rules)
    message: str
    first_offenders: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)   # offending row positions in the input (row rules)
    evaluated: bool = True

    @property
    def blocking(self) -> bool:
        return not self.passed and self.severity == ERROR


@dataclass
class ContractResult:
    outcomes: dict[str, RuleOutcome]
    status: str                        # validated | validated_with_drops | blocked | empty
    valid: pl.DataFrame                # rows for validated_bars (sorted); empty when blocked
    quarantine: pl.DataFrame           # rejected rows with rule and reason columns
    gaps: list[tuple[int, int, int]]   # (first missing ms, last missing ms, n missing) of the valid rows
    params: dict[str, float]
    seconds: float
    ge_results: list[Any] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return self.status == "blocked"

    @property
    def failed(self) -> dict[str, RuleOutcome]:
        return {k: o for k, o in self.outcomes.items() if not o.passed}

    def counts(self) -> dict[str, int]:
        return {k: o.count for k, o in self.outcomes.items()}

    def data_docs_html(self) -> str:
        """GE's own Data Docs page (ValidationResultsPageRenderer) for every suite that ran."""
        return render_data_docs(self.ge_results)

    def summary(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "failed": {k: {"severity": o.severity, "count": o.count, "message": o.message}
                       for k, o in self.failed.items()},
            "gaps": [list(g) for g in self.gaps],
            "missing_bars": int(sum(g[2] for g in self.gaps)),
            "thresholds": self.params,
        }


def _row_reasons(rule: str, params: dict, tf_label: str, tf: int) -> pl.Expr:
    """A readable reason per offending row (a polars expression over the derived frame)."""
    ts = pl.col("timestamp")
    if rule == "no_nulls":
        return pl.format("null, NaN or inf in {}", pl.col("null_fields"))
    if rule == "sorted":
        return pl.lit("timestamp earlier than the row before it")
    if rule == "unique_timestamps":
        return pl.format("timestamp {} appears more than once", ts)
    if rule == "aligned_to_grid":
        return pl.format("timestamp is {} ms off the {} grid", pl.col("ts_mod_tf"), pl.lit(tf_label))
    if rule == "in_partition":
        return pl.lit("bar opens outside the partition's month")
    if rule == "ohlc_consistent":
        return pl.format("high {} / low {} do not contain open {} and close {}", pl.col("high"), pl.col("low"),
                         pl.col("open"), pl.col("close"))
    if rule == "positive_prices":
        return pl.format("lowest price {} <= 0", pl.col("min_price"))
    if rule == "volume_non_negative":
        return pl.format("volume {} < 0", pl.col("volume"))
    if rule == "plausible_values":
        return pl.format("price or volume beyond the bounds (max_price {}, max_volume {}): high {}, volume {}",
                         pl.lit(f"{params['max_price']:g}"), pl.lit(f"{params['max_volume']:g}"), pl.col("high"),
                         pl.col("volume"))
    if rule == "price_jumps":
        return pl.format("moves {}x against the previous close (max_jump {})", pl.col("jump_ratio").round(1),
                         pl.lit(f"{params['max_jump']:g}"))
    if rule == "copied_rows":
        lag_h = ((ts - pl.col("copy_of")) / 3_600_000).round(2)
        return pl.format("OHLCV identical to the bar at {} ({} h earlier)",
                         pl.from_epoch("copy_of", time_unit="ms").dt.strftime("%Y-%m-%d %H:%M"), lag_h)
    if rule == "price_spikes":
        return pl.format("log-return robust z-score {} > {}", pl.col("return_z").round(1), pl.lit(params["spike_z"]))
    if rule == "flat_runs":
        return pl.format("flat run of {} bars > {}", pl.col("flat_run_ms") // tf,
                         pl.lit(label_ms(int(params["max_flat_run_ms"])) if params["max_flat_run_ms"] else "0"))
    if rule == "zero_volume_runs":
        return pl.format("zero-volume run of {} bars > {}", pl.col("zero_volume_run_ms") // tf,
                         pl.lit(label_ms(int(params["max_zero_volume_run_ms"]))
                                if params["max_zero_volume_run_ms"] else "0"))
    return pl.lit(rule)



def _unexpected_rows(result: Any) -> list[int]:
    idx = result.result.get("unexpected_index_list") or []
    return sorted({int(i[ROW_INDEX]) if isinstance(i, dict) else int(i) for i in idx})


def evaluate(
    df: pl.DataFrame,
    timeframe: str,
    policy: Policy | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    prev_last_ms: int | None = None,
    next_first_ms: int | None = None,
) -> ContractResult:
    """Run the contract on one partition of bars (``[start_ms, end_ms)`` its time range, if any).

    Returns the outcome of every rule, the rows for the validated lake (none when an ``error`` rule failed) and
    the quarantined rows with ``rule`` and ``reason`` columns (every row when the month is blocked)."""
    t0 = time.perf_counter()
    policy = policy or Policy.default()
    check_sev = {c: policy.severity.get(c, CHECKS[c][0]) for c in CHECKS}
    sev = {r: check_sev[RULES[r].check] for r in RULES}
    tf = timeframe_ms(timeframe)
    params = policy.params(timeframe)
    outcomes: dict[str, RuleOutcome] = {}
    ge_results: list[Any] = []

    if df.height == 0:
        outcomes = {r: RuleOutcome(r, sev[r], True, 0, "no rows to check", evaluated=False) for r in RULES}
        return ContractResult(outcomes, "empty", df, df.clear(), [], params, time.perf_counter() - t0)

    # 1. schema
    sres = validate("schema", schema_frame(df), {})
    ge_results.append(sres)
    if not sres.success:
        bad = [c for c in BAR_COLUMNS if c not in df.columns]
        wrong = [c for c in BAR_COLUMNS if c in df.columns and str(df.schema[c]) != DTYPE_NAMES[c]]
        msg = "; ".join(([f"missing columns {bad}"] if bad else [])
                        + ([f"wrong types for {wrong} (expected {[DTYPE_NAMES[c] for c in wrong]})"] if wrong else []))
        outcomes["schema"] = RuleOutcome("schema", sev["schema"], False, df.height, msg, rows=list(range(df.height)))
        for r in RULES:
            if r != "schema":
                outcomes[r] = RuleOutcome(r, sev[r], False, 0, "not evaluated: the schema is wrong", evaluated=False)
        q = df.with_columns(pl.lit("schema").alias("rule"), pl.lit(msg).alias("reason"),
                            pl.lit("held: month blocked").alias("action"))
        return ContractResult(outcomes, "blocked", df.clear(), q, [], params, time.perf_counter() - t0, ge_results)
    outcomes["schema"] = RuleOutcome("schema", sev["schema"], True, 0, "ok")

    # 2. rows
    d = derive_rows(df, tf, params["max_price"], params["max_volume"])
    rparams = {**params, "first_ms": start_ms if start_ms is not None else -(2**62),
               "last_ms": end_ms - 1 if end_ms is not None else 2**62}
    rres = validate("rows", d.to_pandas(), rparams)
    ge_results.append(rres)
    flagged: dict[str, list[int]] = {}
    no_volume = not volume_known(df)
    for r in rres.results:
        rule = r.expectation_config.meta["rule"]
        if no_volume and rule in VOLUME_RULES:
            outcomes[rule] = RuleOutcome(rule, sev[rule], True, 0, "not evaluated: the bars have no volume (the "
                                         "source has no volume column)", evaluated=False)
            continue
        if r.success:
            outcomes[rule] = RuleOutcome(rule, sev[rule], True, 0, "ok")
            continue
        rows = _unexpected_rows(r)
        flagged[rule] = rows
        n = int(r.result.get("unexpected_count", len(rows)) or len(rows))
        first_ts = d.filter(pl.col(ROW_INDEX).is_in(rows[:5]))["timestamp"].to_list()
        first = [iso(t) for t in first_ts if t is not None]
        msg = f"{n} row(s) {RULES[rule].what}" + (f", first at {first[0]}" if first else "")
        outcomes[rule] = RuleOutcome(rule, sev[rule], False, n, msg, first, rows)

    rejected = sorted({i for rule, rows in flagged.items() if sev[rule] in (ERROR, DROP) for i in rows})
    blocked = any(o.blocking for o in outcomes.values())

    # 3. continuity, on the rows that survive the drop rules (exactly what research reads when nothing blocks;
    #    rows of a blocked month are kept here so that a rejected row does not also show up as a gap)
    dropped = sorted({i for rule, rows in flagged.items() if sev[rule] == DROP for i in rows})
    keep = (d.filter(~pl.col(ROW_INDEX).is_in(dropped) & pl.col("timestamp").is_not_null())
            .sort("timestamp").unique("timestamp", keep="first", maintain_order=True))
    cont = derive_continuity(keep["timestamp"].to_numpy(), tf, prev_last_ms, start_ms=start_ms, end_ms=end_ms,
                             next_first_ms=next_first_ms, calendar=policy.calendar)
    cres = validate("continuity", cont.to_pandas(), params)
    ge_results.append(cres)
    gaps_all = [(int(a), int(b), int(n)) for a, b, n in
                cont.filter(pl.col("missing_bars") > 0)
                .select("first_missing_ms", "last_missing_ms", "missing_bars").iter_rows()]
    for r in cres.results:
        rule = r.expectation_config.meta["rule"]
        if r.success:
            outcomes[rule] = RuleOutcome(rule, sev[rule], True, 0, "no missing bars" if rule == "gaps" else "ok")
            continue
        sel = cont.filter(pl.col(ROW_INDEX).is_in(_unexpected_rows(r)))
        n_missing = int(sel["missing_bars"].sum())
        ranges = [f"{iso(a)}..{iso(b)} ({n})" for a, b, n in
                  sel.select("first_missing_ms", "last_missing_ms", "missing_bars").iter_rows()]
        limit = ("" if rule == "gaps"
                 else f" (max_gap {label_ms(int(params['max_gap_ms'])) if params['max_gap_ms'] else '0'})")
        msg = f"{sel.height} gap(s){limit}, {n_missing} missing bar(s), first {ranges[0]}"
        outcomes[rule] = RuleOutcome(rule, sev[rule], False, sel.height, msg, ranges[:5])
    blocked = blocked or any(outcomes[r].blocking for r in CONTINUITY_RULES)

    # 4. quarantine and the validated rows
    reasons = []
    for rule, rows in flagged.items():
        if sev[rule] == WARN:
            continue
        reasons.append(d.filter(pl.col(ROW_INDEX).is_in(rows)).select(
            ROW_INDEX, pl.lit(rule).alias("rule"), _row_reasons(rule, params, timeframe, tf).alias("reason")))
    per_row = (pl.concat(reasons).group_by(ROW_INDEX, maintain_order=True)
               .agg(pl.col("rule").str.join("; "), pl.col("reason").str.join("; "))
               if reasons else pl.DataFrame(schema={ROW_INDEX: pl.Int64, "rule": pl.String, "reason": pl.String}))
    base = df.with_row_index(ROW_INDEX).with_columns(pl.col(ROW_INDEX).cast(pl.Int64))
    if blocked:
        why = ", ".join(f"{k} ({o.count})" for k, o in outcomes.items() if o.blocking)
        q = base.join(per_row, on=ROW_INDEX, how="left").with_columns(
            pl.col("rule").fill_null("month_blocked"),
            pl.col("reason").fill_null(f"month blocked by {why}; this row broke no rule"),
            pl.lit("held: month blocked").alias("action"),
        )
        valid = df.clear()
        status = "blocked"
    else:
        q = base.join(per_row, on=ROW_INDEX, how="inner").with_columns(pl.lit("dropped").alias("action"))
        valid = base.filter(~pl.col(ROW_INDEX).is_in(rejected)).sort("timestamp").drop(ROW_INDEX)
        status = "validated_with_drops" if rejected else "validated"
    q = q.rename({ROW_INDEX: "raw_row"}).sort("raw_row")
    return ContractResult(outcomes, status, valid, q, gaps_all, params, time.perf_counter() - t0, ge_results)

def checks_of(outcomes: dict[str, RuleOutcome]) -> dict[str, list[RuleOutcome]]:
    """Rule outcomes grouped by the Dagster check that reports them."""
    out: dict[str, list[RuleOutcome]] = {c: [] for c in CHECKS}
    for name, o in outcomes.items():
        out[RULES[name].check].append(o)
    return out


#: The structural rules: a failure means the rows are wrong, not merely unusual.
STRUCTURAL_RULES: tuple[str, ...] = (
    "schema", "no_nulls", "sorted", "unique_timestamps", "aligned_to_grid", "in_partition",
    "ohlc_consistent", "positive_prices", "volume_non_negative", "plausible_values", "price_jumps",
)


@dataclass
class RuleResult:
    rule: str
    passed: bool
    failed_rows: int
    message: str
    first_offenders: list[str] = field(default_factory=list)


def check_bars(df: pl.DataFrame, timeframe: str, start_ms: int | None = None,
               end_ms: int | None = None) -> list[RuleResult]:
    """The structural rules of the contract as readable results ("3 row(s) with high below open/close or low above
    them, first at 2025-03-02 04:00"); ``[start_ms, end_ms)`` is the partition's time range, if any."""
    res = evaluate(df, timeframe, start_ms=start_ms, end_ms=end_ms)
    out = []
    for rule in STRUCTURAL_RULES:
        o = res.outcomes[rule]
        out.append(RuleResult(rule, o.passed, o.count, o.message if not o.passed else "ok", o.first_offenders))
    return out
