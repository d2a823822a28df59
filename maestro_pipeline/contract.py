"""The data contract for bars: a great-expectations 1.x suite, severities, quarantine and gaps.

What a month partition of bars must satisfy before research may read it, evaluated by great-expectations (GE)
itself: polars computes a few derived columns (``timestamp mod timeframe``, the robust z-score of log returns,
run lengths, copy flags, the grid intervals between bars) and GE's expectations judge them; GE's validation
results are what the checks report and what the Data Docs page renders.

Three suites, built once per process on one ephemeral GE context (in memory, no files in the project tree):

* ``maestro_bars_schema``: on a one-row-per-column frame: every bar column present with its type.
* ``maestro_bars_rows``: on the bars, one expectation per rule (nulls, order, duplicates, grid, partition range,
  OHLC, prices, volume, copied rows, spikes, flat runs, zero-volume runs).
* ``maestro_bars_continuity``: on the intervals between the bars that survive the rules: missing bars (gaps)
  and gaps longer than ``max_gap``.

Severities (``maestro.yaml`` ``data_contract``): ``error`` blocks the month (nothing written to the validated lake,
every row quarantined, the blocking Dagster check fails); ``drop`` quarantines the offending rows and validates
the rest (the check fails with WARN); ``warn`` only reports. Missing bars are never invented.

GE is imported lazily (~8 s): loading the Dagster definitions must not pay for it.
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl

from .schema import BAR_COLUMNS
from .timeframes import parse_duration_ms, timeframe_ms

# ---------------------------------------------------------------------------------------------------
# the rule catalog (no GE import: config.py validates maestro.yaml against it)
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    check: str                   # the Dagster asset check that reports it
    description: str
    what: str                    # "N row(s) <what>" in messages


ERROR, DROP, WARN = "error", "drop", "warn"

#: Dagster checks on ``validated_bars``: (default severity, allowed severities, description). A check is blocking
#: or not for every partition, so severities are set per check (each check's metadata has counts per rule).
CHECKS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "bar_structure": (ERROR, (ERROR,), "Schema, no nulls/NaN, time order, unique timestamps on the timeframe grid "
                      "and inside the month, consistent OHLC, prices > 0, volume >= 0. Always blocking."),
    "copied_rows": (DROP, (ERROR, DROP, WARN), "No bar repeats the exact OHLCV of an earlier bar (copied data)."),
    "suspicious_bars": (WARN, (ERROR, DROP, WARN), "Price spikes (robust z of log returns), long flat (O=H=L=C) runs, "
                        "zero-volume runs."),
    "gaps": (WARN, (ERROR, WARN), "Missing bars against the timeframe grid, as ranges (never filled in)."),
    "gap_over_max": (ERROR, (ERROR, WARN), "No gap longer than max_gap."),
}

RULES: dict[str, Rule] = {r.name: r for r in (
    Rule("schema", "bar_structure", "Every bar column is present with its type (timestamp Int64, datetime UTC ms, "
         "OHLCV Float64, source String).", "with a wrong schema"),
    Rule("no_nulls", "bar_structure", "No null or NaN in any bar column.", "with null or NaN values"),
    Rule("sorted", "bar_structure", "Timestamps never go backwards (the file is in time order).", "out of time order"),
    Rule("unique_timestamps", "bar_structure", "No two rows share a timestamp.", "with a duplicated timestamp"),
    Rule("aligned_to_grid", "bar_structure", "timestamp mod timeframe == 0 (bars open on the timeframe grid).",
         "not aligned to the timeframe grid"),
    Rule("in_partition", "bar_structure", "Every bar opens inside the partition's month.",
         "outside the partition's time range"),
    Rule("ohlc_consistent", "bar_structure", "high >= max(open, close), low <= min(open, close) (so high >= low).",
         "with high below open/close or low above them"),
    Rule("positive_prices", "bar_structure", "open, high, low, close > 0.", "with a price <= 0"),
    Rule("volume_non_negative", "bar_structure", "volume >= 0.", "with negative volume"),
    Rule("copied_rows", "copied_rows", "No bar repeats the exact OHLCV of an earlier bar (a block copied from other "
         "hours); flat bars are exempt (they repeat naturally).", "copying the OHLCV of an earlier bar"),
    Rule("price_spikes", "suspicious_bars", "|robust z-score of the close's log return| <= spike_z (median/MAD of "
         "the month).", "with a price spike"),
    Rule("flat_runs", "suspicious_bars", "No run of flat bars (open = high = low = close) longer than max_flat_run.",
         "in a flat (O=H=L=C) run longer than max_flat_run"),
    Rule("zero_volume_runs", "suspicious_bars", "No run of zero-volume bars longer than max_zero_volume_run (0: any "
         "zero-volume bar).", "in a zero-volume run longer than max_zero_volume_run"),
    Rule("gaps", "gaps", "No bar missing against the timeframe grid (reported as ranges; never filled in).", "gap(s)"),
    Rule("gap_over_max", "gap_over_max", "No gap longer than max_gap.", "gap(s) longer than max_gap"),
)}

#: The rules evaluated on rows of bars (the rest are schema and continuity).
ROW_RULES = tuple(r for r in RULES if r not in ("schema", "gaps", "gap_over_max"))
CONTINUITY_RULES = ("gaps", "gap_over_max")

#: Threshold defaults for 24/7 crypto markets (overridable per exchange in maestro.yaml).
DEFAULT_THRESHOLDS: dict[str, Any] = {"max_gap": "6h", "spike_z": 50.0, "max_flat_run": "6h", "max_zero_volume_run": 0}


def duration_ms(value: str | int, timeframe: str) -> int:
    """A run or gap length (``6h``, ``90m``, ``12`` bars, or ``0``) in milliseconds for this timeframe."""
    if value in (0, "0"):
        return 0
    if isinstance(value, int) or str(value).strip().isdigit():
        return parse_duration_ms(value, timeframe)   # a bar count
    return parse_duration_ms(value, "1m")            # a duration, even one shorter than a bar (6h on 1d bars)


@dataclass(frozen=True)
class Policy:
    """Severities and thresholds for one instrument."""

    severity: dict[str, str]     # check name -> error | drop | warn
    max_gap: str | int = DEFAULT_THRESHOLDS["max_gap"]
    spike_z: float = DEFAULT_THRESHOLDS["spike_z"]
    max_flat_run: str | int = DEFAULT_THRESHOLDS["max_flat_run"]
    max_zero_volume_run: str | int = DEFAULT_THRESHOLDS["max_zero_volume_run"]

    @classmethod
    def default(cls, **over: Any) -> "Policy":
        sev = {n: c[0] for n, c in CHECKS.items()} | over.pop("severity", {})
        return cls(severity=sev, **over)

    def params(self, timeframe: str) -> dict[str, float]:
        return {
            "max_gap_ms": duration_ms(self.max_gap, timeframe),
            "spike_z": float(self.spike_z),
            "max_flat_run_ms": duration_ms(self.max_flat_run, timeframe),
            "max_zero_volume_run_ms": duration_ms(self.max_zero_volume_run, timeframe),
        }


def blocking_checks(severity: dict[str, str]) -> list[str]:
    """Names of the checks that block (severity ``error``) under these severities."""
    return [c for c in CHECKS if severity.get(c, CHECKS[c][0]) == ERROR]


# ---------------------------------------------------------------------------------------------------
# GE: one ephemeral context and three suites per process
# ---------------------------------------------------------------------------------------------------
_GE_LOCK = threading.Lock()
_GE: dict[str, Any] = {}
_ROW = "_row"


def _param(name: str) -> dict:
    return {"$PARAMETER": name}


def _ge() -> dict[str, Any]:
    """The cached GE context, batch definitions and suites (built on first use, then reused)."""
    with _GE_LOCK:
        if _GE:
            return _GE
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import great_expectations as gx
            import great_expectations.expectations as gxe
            from great_expectations.data_context.types.base import (
                DataContextConfig, InMemoryStoreBackendDefaults, ProgressBarsConfig,
            )
        ctx = gx.get_context(
            mode="ephemeral",
            project_config=DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                progress_bars=ProgressBarsConfig(globally=False),
                analytics_enabled=False,
            ),
        )
        ds = ctx.data_sources.add_pandas("maestro")
        batch_defs = {
            name: ds.add_dataframe_asset(name).add_batch_definition_whole_dataframe("partition")
            for name in ("schema", "rows", "continuity")
        }

        def suite(name: str, exps: list) -> Any:
            s = gx.ExpectationSuite(name=name, meta={"notes": "Maestro's bar contract (maestro_pipeline/contract.py)"})
            for e in exps:
                s.add_expectation(e)
            return ctx.suites.add(s)

        m = lambda rule: {"rule": rule, "notes": f"Maestro rule {rule} (check {RULES[rule].check}): {RULES[rule].description}"}  # noqa: E731
        suites = {
            "schema": suite("maestro_bars_schema", [
                gxe.ExpectColumnValuesToNotBeNull(column="actual_type", meta=m("schema")),
                gxe.ExpectColumnPairValuesToBeEqual(column_A="actual_type", column_B="expected_type",
                                                    ignore_row_if="either_value_is_missing", meta=m("schema")),
            ]),
            "rows": suite("maestro_bars_rows", [
                gxe.ExpectColumnValuesToBeNull(column="null_fields", meta=m("no_nulls")),
                gxe.ExpectColumnValuesToBeIncreasing(column="timestamp", meta=m("sorted")),
                gxe.ExpectColumnValuesToBeUnique(column="timestamp", meta=m("unique_timestamps")),
                gxe.ExpectColumnValuesToBeInSet(column="ts_mod_tf", value_set=[0], meta=m("aligned_to_grid")),
                gxe.ExpectColumnValuesToBeBetween(column="timestamp", min_value=_param("first_ms"),
                                                  max_value=_param("last_ms"), meta=m("in_partition")),
                gxe.ExpectColumnValuesToBeBetween(column="ohlc_slack", min_value=0, meta=m("ohlc_consistent")),
                gxe.ExpectColumnValuesToBeBetween(column="min_price", min_value=0, strict_min=True,
                                                  meta=m("positive_prices")),
                gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0, meta=m("volume_non_negative")),
                gxe.ExpectColumnValuesToBeNull(column="copy_of", meta=m("copied_rows")),
                gxe.ExpectColumnValuesToBeBetween(column="return_z", max_value=_param("spike_z"), meta=m("price_spikes")),
                gxe.ExpectColumnValuesToBeBetween(column="flat_run_ms", max_value=_param("max_flat_run_ms"),
                                                  meta=m("flat_runs")),
                gxe.ExpectColumnValuesToBeBetween(column="zero_volume_run_ms", max_value=_param("max_zero_volume_run_ms"),
                                                  meta=m("zero_volume_runs")),
            ]),
            "continuity": suite("maestro_bars_continuity", [
                gxe.ExpectColumnValuesToBeBetween(column="missing_bars", max_value=0, meta=m("gaps")),
                gxe.ExpectColumnValuesToBeBetween(column="gap_ms", max_value=_param("max_gap_ms"), meta=m("gap_over_max")),
            ]),
        }
        _GE.update(gx=gx, ctx=ctx, batch_defs=batch_defs, suites=suites, build_seconds=time.perf_counter() - t0)
        return _GE


_COMPLETE = {"result_format": "COMPLETE", "unexpected_index_column_names": [_ROW], "return_unexpected_index_query": False,
             "partial_unexpected_count": 5}


def _validate(kind: str, pdf, params: dict) -> Any:
    """Validate with GE in two passes: BOOLEAN_ONLY for the whole suite (cheap), then COMPLETE (every
    unexpected row index) only for the expectations that failed. Returns the merged suite result."""
    ge = _ge()
    suite = ge["suites"][kind]
    batch = ge["batch_defs"][kind].get_batch(batch_parameters={"dataframe": pdf})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = batch.validate(suite, result_format="BOOLEAN_ONLY", expectation_parameters=params)
        if not res.success:
            for i, r in enumerate(res.results):
                if not r.success:
                    full = batch.validate(r.expectation_config.to_domain_obj(), result_format=_COMPLETE,
                                          expectation_parameters=params)
                    res.results[i] = full
    return res


# ---------------------------------------------------------------------------------------------------
# derived columns (polars)
# ---------------------------------------------------------------------------------------------------
_PRICES = ("open", "high", "low", "close")
_DTYPE_NAMES = {c: str(t) for c, t in BAR_COLUMNS.items()}


def _iso(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _hours(ms: int) -> str:
    h = ms / 3_600_000
    return f"{h:g}h" if h >= 1 else f"{ms / 60_000:g}m"


def _run_lengths(flag: pl.Expr) -> pl.Expr:
    """For each row, the length of the run of consecutive True rows it belongs to (0 when False)."""
    run_id = (flag != flag.shift(1)).fill_null(True).cum_sum()
    return pl.when(flag).then(pl.len().over(run_id)).otherwise(0)


def _schema_frame(df: pl.DataFrame):
    import pandas as pd

    return pd.DataFrame({
        "column": list(BAR_COLUMNS),
        "expected_type": [_DTYPE_NAMES[c] for c in BAR_COLUMNS],
        "actual_type": [str(df.schema[c]) if c in df.columns else None for c in BAR_COLUMNS],
        _ROW: range(len(BAR_COLUMNS)),
    })


def derive_rows(df: pl.DataFrame, tf: int) -> pl.DataFrame:
    """The bars (in the order received, ``_row`` = position) plus the derived columns the row suite checks."""
    d = df.with_row_index(_ROW).with_columns(pl.col(_ROW).cast(pl.Int64))
    cols = list(BAR_COLUMNS)
    bad = [pl.when(pl.col(c).is_null() | (pl.col(c).is_nan() if BAR_COLUMNS[c] == pl.Float64() else pl.lit(False)))
           .then(pl.lit(c)) for c in cols]
    o, h, l, c = (pl.col(x) for x in _PRICES)
    nulls = pl.concat_str(bad, separator=",", ignore_nulls=True)
    d = d.with_columns(
        pl.when(nulls != "").then(nulls).otherwise(None).alias("null_fields"),
        (pl.col("timestamp") % tf).alias("ts_mod_tf"),
        pl.min_horizontal(h - pl.max_horizontal(o, c), pl.min_horizontal(o, c) - l).alias("ohlc_slack"),
        pl.min_horizontal(o, h, l, c).alias("min_price"),
    )
    # series-derived columns on the rows that can form a series: sorted, first row per timestamp, finite prices
    ok = pl.all_horizontal([pl.col(x).is_not_null() & pl.col(x).is_finite() & (pl.col(x) > 0) for x in _PRICES]) \
        & pl.col("timestamp").is_not_null() & pl.col("volume").is_not_null() & pl.col("volume").is_finite()
    s = d.filter(ok).sort("timestamp", _ROW).unique("timestamp", keep="first", maintain_order=True)
    lr = (pl.col("close") / pl.col("close").shift(1)).log()
    s = s.with_columns(lr.alias("_lr"))
    r = s["_lr"].drop_nulls()
    med = float(r.median()) if r.len() else 0.0
    mad = float((r - med).abs().median()) * 1.4826 if r.len() else 0.0
    if not mad or not math.isfinite(mad):  # more than half the returns are zero: fall back to the mean deviation
        mad = float((r - med).abs().mean()) * 1.2533 if r.len() else 0.0
    flat = (o == h) & (h == l) & (l == c)
    key = pl.struct("open", "high", "low", "close", "volume")
    copyable = (h > l) & (pl.col("volume") > 0)
    # a bar that undoes the previous bar's move (the way back from a one-bar spike) is scored on the net move of
    # the two bars, so a bad tick flags itself and not also the next, healthy bar
    prev = pl.col("_lr").shift(1)
    net = pl.col("_lr") + prev
    reverting = (pl.col("_lr").sign() != prev.sign()) & (net.abs() < 0.5 * prev.abs())
    move = pl.when(reverting.fill_null(False)).then(net).otherwise(pl.col("_lr"))
    s = s.with_columns(
        (((move - med) / mad).abs() if mad and math.isfinite(mad) else pl.lit(0.0)).alias("return_z"),
        (_run_lengths(flat) * tf).alias("flat_run_ms"),
        (_run_lengths(pl.col("volume") == 0) * tf).alias("zero_volume_run_ms"),
        pl.when(copyable & key.is_duplicated() & (pl.col("timestamp") != pl.col("timestamp").min().over(key)))
        .then(pl.col("timestamp").min().over(key)).otherwise(None).alias("copy_of"),
    ).select(_ROW, "return_z", "flat_run_ms", "zero_volume_run_ms", "copy_of")
    return d.join(s, on=_ROW, how="left").sort(_ROW)


def derive_continuity(ts: np.ndarray, tf: int, prev_last_ms: int | None = None) -> pl.DataFrame:
    """One row per interval before each bar (sorted unique ``ts``): how many bars are missing in it.

    The first bar's interval starts after ``prev_last_ms`` (the last bar of the previous month) when known, so a
    gap across a month boundary is seen whole by the later month; otherwise the first bar has no interval."""
    ts = np.asarray(ts, dtype=np.int64)
    prev = np.concatenate([[prev_last_ms if prev_last_ms is not None else -1], ts[:-1]]) if len(ts) else ts
    gap = np.where(prev >= 0, ts - prev - tf, 0)
    gap = np.maximum(gap, 0)
    return pl.DataFrame({
        _ROW: np.arange(len(ts), dtype=np.int64),
        "timestamp": ts,
        "first_missing_ms": prev + tf,
        "last_missing_ms": ts - tf,
        "missing_bars": gap // tf,
        "gap_ms": gap,
    })


# ---------------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------------
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
            "failed": {k: {"severity": o.severity, "count": o.count, "message": o.message} for k, o in self.failed.items()},
            "gaps": [list(g) for g in self.gaps],
            "missing_bars": int(sum(g[2] for g in self.gaps)),
            "thresholds": self.params,
        }


def _row_reasons(rule: str, params: dict, tf_label: str, tf: int) -> pl.Expr:
    """A readable reason per offending row (a polars expression over the derived frame)."""
    ts = pl.col("timestamp")
    if rule == "no_nulls":
        return pl.format("null or NaN in {}", pl.col("null_fields"))
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
    if rule == "copied_rows":
        lag_h = ((ts - pl.col("copy_of")) / 3_600_000).round(2)
        return pl.format("OHLCV identical to the bar at {} ({} h earlier)",
                         pl.from_epoch("copy_of", time_unit="ms").dt.strftime("%Y-%m-%d %H:%M"), lag_h)
    if rule == "price_spikes":
        return pl.format("log-return robust z-score {} > {}", pl.col("return_z").round(1), pl.lit(params["spike_z"]))
    if rule == "flat_runs":
        return pl.format("flat run of {} bars > {}", pl.col("flat_run_ms") // tf,
                         pl.lit(_hours(int(params["max_flat_run_ms"])) if params["max_flat_run_ms"] else "0"))
    if rule == "zero_volume_runs":
        return pl.format("zero-volume run of {} bars > {}", pl.col("zero_volume_run_ms") // tf,
                         pl.lit(_hours(int(params["max_zero_volume_run_ms"])) if params["max_zero_volume_run_ms"] else "0"))
    return pl.lit(rule)



def _unexpected_rows(result: Any) -> list[int]:
    idx = result.result.get("unexpected_index_list") or []
    return sorted({int(i[_ROW]) if isinstance(i, dict) else int(i) for i in idx})


def evaluate(
    df: pl.DataFrame,
    timeframe: str,
    policy: Policy | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    prev_last_ms: int | None = None,
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
    sres = _validate("schema", _schema_frame(df), {})
    ge_results.append(sres)
    if not sres.success:
        bad = [c for c in BAR_COLUMNS if c not in df.columns]
        wrong = [c for c in BAR_COLUMNS if c in df.columns and str(df.schema[c]) != _DTYPE_NAMES[c]]
        msg = "; ".join(([f"missing columns {bad}"] if bad else [])
                        + ([f"wrong types for {wrong} (expected {[_DTYPE_NAMES[c] for c in wrong]})"] if wrong else []))
        outcomes["schema"] = RuleOutcome("schema", sev["schema"], False, df.height, msg, rows=list(range(df.height)))
        for r in RULES:
            if r != "schema":
                outcomes[r] = RuleOutcome(r, sev[r], False, 0, "not evaluated: the schema is wrong", evaluated=False)
        q = df.with_columns(pl.lit("schema").alias("rule"), pl.lit(msg).alias("reason"),
                            pl.lit("held: month blocked").alias("action"))
        return ContractResult(outcomes, "blocked", df.clear(), q, [], params, time.perf_counter() - t0, ge_results)
    outcomes["schema"] = RuleOutcome("schema", sev["schema"], True, 0, "ok")

    # 2. rows
    d = derive_rows(df, tf)
    rparams = {**params, "first_ms": start_ms if start_ms is not None else -(2**62),
               "last_ms": end_ms - 1 if end_ms is not None else 2**62}
    rres = _validate("rows", d.to_pandas(), rparams)
    ge_results.append(rres)
    flagged: dict[str, list[int]] = {}
    for r in rres.results:
        rule = r.expectation_config.meta["rule"]
        if r.success:
            outcomes[rule] = RuleOutcome(rule, sev[rule], True, 0, "ok")
            continue
        rows = _unexpected_rows(r)
        flagged[rule] = rows
        n = int(r.result.get("unexpected_count", len(rows)) or len(rows))
        first_ts = d.filter(pl.col(_ROW).is_in(rows[:5]))["timestamp"].to_list()
        first = [_iso(t) for t in first_ts if t is not None]
        msg = f"{n} row(s) {RULES[rule].what}" + (f", first at {first[0]}" if first else "")
        outcomes[rule] = RuleOutcome(rule, sev[rule], False, n, msg, first, rows)

    rejected = sorted({i for rule, rows in flagged.items() if sev[rule] in (ERROR, DROP) for i in rows})
    blocked = any(o.blocking for o in outcomes.values())

    # 3. continuity, on the rows that survive the drop rules (exactly what research reads when nothing blocks;
    #    rows of a blocked month are kept here so that a rejected row does not also show up as a gap)
    dropped = sorted({i for rule, rows in flagged.items() if sev[rule] == DROP for i in rows})
    keep = (d.filter(~pl.col(_ROW).is_in(dropped) & pl.col("timestamp").is_not_null())
            .sort("timestamp").unique("timestamp", keep="first", maintain_order=True))
    cont = derive_continuity(keep["timestamp"].to_numpy(), tf, prev_last_ms)
    cres = _validate("continuity", cont.to_pandas(), params)
    ge_results.append(cres)
    gaps_all = [(int(a), int(b), int(n)) for a, b, n in
                cont.filter(pl.col("missing_bars") > 0).select("first_missing_ms", "last_missing_ms", "missing_bars").iter_rows()]
    for r in cres.results:
        rule = r.expectation_config.meta["rule"]
        if r.success:
            outcomes[rule] = RuleOutcome(rule, sev[rule], True, 0, "no missing bars" if rule == "gaps" else "ok")
            continue
        sel = cont.filter(pl.col(_ROW).is_in(_unexpected_rows(r)))
        n_missing = int(sel["missing_bars"].sum())
        ranges = [f"{_iso(a)}..{_iso(b)} ({n})" for a, b, n in
                  sel.select("first_missing_ms", "last_missing_ms", "missing_bars").iter_rows()]
        limit = "" if rule == "gaps" else f" (max_gap {_hours(int(params['max_gap_ms'])) if params['max_gap_ms'] else '0'})"
        msg = f"{sel.height} gap(s){limit}, {n_missing} missing bar(s), first {ranges[0]}"
        outcomes[rule] = RuleOutcome(rule, sev[rule], False, sel.height, msg, ranges[:5])
    blocked = blocked or any(outcomes[r].blocking for r in CONTINUITY_RULES)

    # 4. quarantine and the validated rows
    reasons = []
    for rule, rows in flagged.items():
        if sev[rule] == WARN:
            continue
        reasons.append(d.filter(pl.col(_ROW).is_in(rows)).select(
            _ROW, pl.lit(rule).alias("rule"), _row_reasons(rule, params, timeframe, tf).alias("reason")))
    per_row = (pl.concat(reasons).group_by(_ROW, maintain_order=True)
               .agg(pl.col("rule").str.join("; "), pl.col("reason").str.join("; "))
               if reasons else pl.DataFrame(schema={_ROW: pl.Int64, "rule": pl.String, "reason": pl.String}))
    base = df.with_row_index(_ROW).with_columns(pl.col(_ROW).cast(pl.Int64))
    if blocked:
        why = ", ".join(f"{k} ({o.count})" for k, o in outcomes.items() if o.blocking)
        q = base.join(per_row, on=_ROW, how="left").with_columns(
            pl.col("rule").fill_null("month_blocked"),
            pl.col("reason").fill_null(f"month blocked by {why}; this row broke no rule"),
            pl.lit("held: month blocked").alias("action"),
        )
        valid = df.clear()
        status = "blocked"
    else:
        q = base.join(per_row, on=_ROW, how="inner").with_columns(pl.lit("dropped").alias("action"))
        valid = base.filter(~pl.col(_ROW).is_in(rejected)).sort("timestamp").drop(_ROW)
        status = "validated_with_drops" if rejected else "validated"
    q = q.rename({_ROW: "raw_row"}).sort("raw_row")
    return ContractResult(outcomes, status, valid, q, gaps_all, params, time.perf_counter() - t0, ge_results)


# ---------------------------------------------------------------------------------------------------
# Data Docs
# ---------------------------------------------------------------------------------------------------
def render_data_docs(results: list[Any]) -> str:
    """GE's Data Docs page for each validation result, joined into one HTML document."""
    if not results:
        return "<html><body><p>No rows to validate.</p></body></html>"
    _ge()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from great_expectations.render.renderer import ValidationResultsPageRenderer
        from great_expectations.render.view import DefaultJinjaPageView

        pages = [DefaultJinjaPageView().render(ValidationResultsPageRenderer().render(r)) for r in results]
    if len(pages) == 1:
        return pages[0]
    # keep the first page's <head> (styles, scripts) and append the other pages' bodies
    head, _, rest = pages[0].partition("</body>")
    bodies = [p.split("<body", 1)[1].split(">", 1)[1].rsplit("</body>", 1)[0] for p in pages[1:]]
    return head + "".join(f"<hr/>{b}" for b in bodies) + "</body>" + rest


def ge_build_seconds() -> float:
    return float(_ge()["build_seconds"])


def rule_columns() -> dict[str, str]:
    """The column each rule's GE expectation reads (how to find a rule in the Data Docs page)."""
    out = {}
    for suite in _ge()["suites"].values():
        for e in suite.expectations:
            kw = e.configuration.kwargs
            out[e.meta["rule"]] = kw.get("column") or kw.get("column_A")
    return out


def checks_of(outcomes: dict[str, RuleOutcome]) -> dict[str, list[RuleOutcome]]:
    """Rule outcomes grouped by the Dagster check that reports them."""
    out: dict[str, list[RuleOutcome]] = {c: [] for c in CHECKS}
    for name, o in outcomes.items():
        out[RULES[name].check].append(o)
    return out
