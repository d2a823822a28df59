"""The bar contract (great-expectations): one crafted bad input per rule, caught, quarantined, kept out of
``validated_bars`` through the real asset; a clean input passing every rule; a blocking failure holding research."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.partitions import bars_key, research_key
from maestro_pipeline.config import WalkForwardConfig, parse_config
from maestro_pipeline.durations import month_bounds
from maestro_pipeline.errors import ConfigError
from maestro_pipeline.evaluation import run_oos
from maestro_pipeline.lake import Lake
from maestro_pipeline.quality import CHECKS, RULES, Policy, evaluate, rule_columns
from maestro_pipeline.schema import bars_hash
from maestro_pipeline.trading import read_live
from maestro_pipeline.walkforward import make_splits
from tests.support.bars import clean_bars
from tests.support.config import small_config
from tests.support.graph import INST, MONTHS, Graph, reoptimize_sensor

H = 3_600_000
MONTH = "2026-05"
M0 = month_bounds(MONTH)[0]
QUARANTINE = {"asset": "validated_bars"}


def _set(df: pl.DataFrame, rows, **values) -> pl.DataFrame:
    """Set columns on the rows at these positions."""
    idx = pl.int_range(pl.len())
    mask = idx.is_in(list(rows))
    return df.with_columns([pl.when(mask).then(v if not isinstance(v, str) else pl.col(v)).otherwise(pl.col(c)).alias(c)
                            for c, v in values.items()])


def _copy_block(df: pl.DataFrame) -> pl.DataFrame:
    """Bars 30..34 carry the OHLCV of bars 25..29 (a block copied from 5 h earlier)."""
    src = df.slice(25, 5)
    cols = ["open", "high", "low", "close", "volume"]
    out = df.to_dicts()
    for k in range(5):
        for c in cols:
            out[30 + k][c] = src[c][k]
    return pl.DataFrame(out, schema=df.schema)


# case -> (mutate, rule, offending raw rows, severity overrides for the case)
CASES = {
    "unsorted": (lambda d: pl.concat([d.slice(0, 10), d.slice(11, 1), d.slice(10, 1), d.slice(12)]), "sorted", [11],
                 {}),
    "duplicate_timestamp": (lambda d: pl.concat([d.slice(0, 6), _set(d.slice(5, 1), [0], close=1.0, low=0.5),
                                                 d.slice(6)]),
                            "unique_timestamps", [5, 6], {}),
    "misaligned": (lambda d: d.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(pl.col("timestamp") + 60_000)
                                            .otherwise(pl.col("timestamp")).alias("timestamp")),
                   "aligned_to_grid", [7], {}),
    "high_below_low": (lambda d: _set(d, [3], high=pl.col("low") - 5), "ohlc_consistent", [3], {}),
    "negative_volume": (lambda d: _set(d, [4], volume=-1.0), "volume_non_negative", [4], {}),
    "nan_close": (lambda d: _set(d, [6], close=float("nan")), "no_nulls", [6], {}),
    "null_open": (lambda d: _set(d, [8], open=pl.lit(None, dtype=pl.Float64)), "no_nulls", [8], {}),
    "non_positive_price": (lambda d: _set(d, [9], low=0.0), "positive_prices", [9], {}),
    "outside_month": (lambda d: _set(d, [0], timestamp=pl.col("timestamp") - 24 * H), "in_partition", [0], {}),
    # 5x: a spike (warn by default); 10x and more is a price jump that blocks (below)
    "spike": (lambda d: _set(d, [40], close=pl.col("close") * 5, high=pl.col("close") * 5), "price_spikes", [40],
              {"suspicious_bars": "drop"}),
    # 4 flat bars > max_flat_run 3h; dropping them leaves a 4 h gap (<= max_gap 6h: a longer run would block)
    "flat_run": (lambda d: _set(d, range(20, 24), open=100.0, high=100.0, low=100.0, close=100.0), "flat_runs",
                 list(range(20, 24)), {"suspicious_bars": "drop", "max_flat_run": "3h"}),
    "zero_volume_run": (lambda d: _set(d, range(50, 53), volume=0.0), "zero_volume_runs", [50, 51, 52],
                        {"suspicious_bars": "drop"}),
    "copied_block": (_copy_block, "copied_rows", [30, 31, 32, 33, 34], {}),
    "gap_over_max": (lambda d: pl.concat([d.slice(0, 10), d.slice(18)]), "gap_over_max", [], {}),
    # issue 17: non-finite and absurd values
    "inf_high": (lambda d: _set(d, [12], high=float("inf")), "no_nulls", [12], {}),
    "inf_volume": (lambda d: _set(d, [13], volume=float("inf")), "no_nulls", [13], {}),
    "absurd_high": (lambda d: _set(d, [14], high=1e300), "plausible_values", [14], {}),
    "absurd_volume": (lambda d: _set(d, [15], volume=1e19), "plausible_values", [15], {}),
    "spike_1000x": (lambda d: _set(d, [40], close=pl.col("close") * 1000, high=pl.col("close") * 1000),
                    "price_jumps", [40], {}),
    "unit_switch_x100": (lambda d: _set(d, range(36, 72), open=pl.col("open") * 100, high=pl.col("high") * 100,
                                        low=pl.col("low") * 100, close=pl.col("close") * 100), "price_jumps", [36], {}),
    "wick_spike": (lambda d: _set(d, [44], high=pl.col("high") * 3), "price_spikes", [44],
                   {"suspicious_bars": "drop"}),
}


def _split(over: dict) -> tuple[dict, dict]:
    """A case's overrides as (severities by check, thresholds)."""
    return {k: v for k, v in over.items() if k in CHECKS}, {k: v for k, v in over.items() if k not in CHECKS}


def _policy(over: dict) -> Policy:
    sev, thr = _split(over)
    return Policy.default(severity=sev, **thr)


# ---------------------------------------------------------------------------------------------------
# the contract on its own
# ---------------------------------------------------------------------------------------------------
def test_clean_input_passes_every_rule():
    df = clean_bars(744, M0)
    res = evaluate(df, "1h", start_ms=M0, end_ms=month_bounds(MONTH)[1])
    assert res.status == "validated" and res.failed == {}
    assert set(res.outcomes) == set(RULES) and all(o.passed and o.evaluated for o in res.outcomes.values())
    assert res.valid.equals(df) and res.quarantine.height == 0 and res.gaps == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_rule_catches_its_fault(case):
    mutate, rule, rows, over = CASES[case]
    bad = mutate(clean_bars(72, M0))
    res = evaluate(bad, "1h", _policy(over), start_ms=M0, end_ms=month_bounds(MONTH)[1])
    assert not res.outcomes[rule].passed, res.outcomes[rule]
    assert res.outcomes[rule].message and "\n" not in res.outcomes[rule].message
    if rows:
        assert set(rows) <= set(res.outcomes[rule].rows)
        q = res.quarantine.filter(pl.col("raw_row").is_in(rows))
        assert q.height == len(rows) and all(rule in r for r in q["rule"])
    # nothing it rejected reaches the validated rows
    kept = set(res.valid["timestamp"].to_list())
    assert not kept & set(bad.with_row_index("i").filter(pl.col("i").is_in(rows))["timestamp"].to_list()) or res.blocked
    # rules that did not fire pass (a fault is attributed to its own rule, not to everything)
    assert res.outcomes["schema"].passed


def test_default_severities_keep_a_1000x_spike_a_unit_switch_and_inf_out_of_research():
    """Under the default policy (no overrides) each of these blocks the month: nothing reaches validated_bars."""
    for case in ("spike_1000x", "unit_switch_x100", "inf_high", "absurd_high"):
        mutate, rule, _, _ = CASES[case]
        res = evaluate(mutate(clean_bars(72, M0)), "1h", start_ms=M0, end_ms=month_bounds(MONTH)[1])
        assert res.blocked and res.valid.height == 0 and res.outcomes[rule].blocking, case
    # a wick spike is scored like a close spike: flagged (warn by default), the close alone would not be
    res = evaluate(CASES["wick_spike"][0](clean_bars(72, M0)), "1h", start_ms=M0, end_ms=month_bounds(MONTH)[1])
    assert not res.outcomes["price_spikes"].passed and res.outcomes["price_spikes"].rows == [44]
    assert res.outcomes["price_jumps"].passed and res.status == "validated"


def test_bars_without_volume_validate_and_say_the_volume_rules_did_not_run():
    df = clean_bars(72, M0).with_columns(pl.lit(None, dtype=pl.Float64).alias("volume"))
    res = evaluate(df, "1h", start_ms=M0, end_ms=month_bounds(MONTH)[1])
    assert res.status == "validated" and res.valid.height == 72
    for rule in ("volume_non_negative", "zero_volume_runs"):
        assert not res.outcomes[rule].evaluated and "no volume" in res.outcomes[rule].message
    # one missing volume among known volumes is still a null
    part = _set(clean_bars(72, M0), [5], volume=pl.lit(None, dtype=pl.Float64))
    assert evaluate(part, "1h").outcomes["no_nulls"].rows == [5]


def test_schema_fault_blocks_and_stops_evaluation():
    res = evaluate(clean_bars(72, M0).with_columns(pl.col("volume").cast(pl.Int64)), "1h")
    assert res.blocked and not res.outcomes["schema"].passed and "volume" in res.outcomes["schema"].message
    assert not res.outcomes["ohlc_consistent"].evaluated
    res = evaluate(clean_bars(72, M0).drop("close"), "1h")
    assert res.blocked and "missing columns ['close']" in res.outcomes["schema"].message


def test_copied_block_is_found_with_its_lag_and_dropped():
    res = evaluate(_copy_block(clean_bars(72, M0)), "1h")
    assert res.status == "validated_with_drops"
    q = res.quarantine
    assert q["raw_row"].to_list() == [30, 31, 32, 33, 34] and set(q["action"]) == {"dropped"}
    assert all("5.0 h earlier" in r for r in q["reason"])
    assert res.valid.height == 67 and res.gaps == [(M0 + 30 * H, M0 + 34 * H, 5)]  # dropped, never filled in
    assert not res.outcomes["gaps"].passed and res.outcomes["gap_over_max"].passed  # 5 h <= max_gap 6h


def test_gaps_are_ranges_and_max_gap_is_configurable():
    df = pl.concat([clean_bars(72, M0).slice(0, 10), clean_bars(72, M0).slice(13, 5),
                    clean_bars(72, M0).slice(30)])  # 3 and 12 missing bars
    res = evaluate(df, "1h")
    assert res.gaps == [(M0 + 10 * H, M0 + 12 * H, 3), (M0 + 18 * H, M0 + 29 * H, 12)]
    assert res.blocked and res.outcomes["gap_over_max"].count == 1
    assert evaluate(df, "1h", Policy.default(max_gap="12h")).status == "validated"
    assert evaluate(df, "1h", Policy.default(max_gap=12)).status == "validated"  # bar counts work too
    assert evaluate(df, "1h", Policy.default(max_gap=11)).blocked
    # a gap across the month boundary is seen whole, from the previous month's last bar
    res = evaluate(clean_bars(72, M0), "1h", prev_last_ms=M0 - 8 * H)
    assert res.gaps == [(M0 - 7 * H, M0 - H, 7)] and res.blocked


def test_spike_flat_and_zero_volume_warn_by_default_and_keep_the_rows():
    # 8 h > max_flat_run 6h
    flat8 = _set(clean_bars(72, M0), range(20, 28), open=100.0, high=100.0, low=100.0, close=100.0)
    bad = CASES["zero_volume_run"][0](CASES["spike"][0](flat8))
    res = evaluate(bad, "1h")
    assert {k for k, o in res.failed.items()} == {"price_spikes", "flat_runs", "zero_volume_runs"}
    assert res.status == "validated" and res.valid.height == bad.height and res.quarantine.height == 0


def test_data_docs_are_great_expectations_pages():
    res = evaluate(CASES["high_below_low"][0](clean_bars(72, M0)), "1h")
    html = res.data_docs_html()
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    for suite in ("maestro_bars_schema", "maestro_bars_rows", "maestro_bars_continuity"):
        assert suite in html
    assert "expect_column_values_to_be_between" in html or "values must be greater than or equal to" in html


def test_config_validates_the_contract_section():
    cfg = parse_config(small_config("lake", data_contract={"severity": {"suspicious_bars": "error"},
                                                            "exchanges": {"binance": {"max_gap": "1h"}}}))
    assert cfg.data_contract.policy_for("binance").max_gap == "1h"
    assert cfg.data_contract.policy_for("synthetic").max_gap == "6h"
    assert cfg.data_contract.severities()["suspicious_bars"] == "error"
    for bad, msg in [
        ({"severity": {"bar_structure": "warn"}},
         "data_contract.severity: check 'bar_structure' cannot be 'warn'; use error"),
        ({"severity": {"gap": "warn"}}, "unknown check 'gap' (did you mean gaps"),
        ({"default": {"max_gap": "6x"}}, "data_contract.default.max_gap: cannot read max_gap '6x'"),
        ({"exchanges": {"binanse": {}}}, "unknown exchange 'binanse' (did you mean binance"),
        ({"gaps": 1}, "data_contract.gaps: unknown key"),
    ]:
        with pytest.raises(ConfigError) as e:
            parse_config(small_config("lake", data_contract=bad))
        assert msg in str(e.value) and "\n" not in str(e.value)


def test_splits_flag_windows_with_a_blocking_gap():
    bars = clean_bars(24 * 80, M0)
    bars = bars.filter(~pl.col("timestamp").is_between(M0 + 70 * 24 * H, M0 + 70 * 24 * H + 9 * H))  # 10 h gap
    wf = WalkForwardConfig(train="40d", test="20d", n_splits=2, scheme="rolling")
    splits, table = make_splits(bars, "1h", wf)
    flagged = table.filter(pl.col("blocking_gap"))
    assert flagged.height == 1 and flagged["test_longest_gap_bars"][0] == 10
    assert table.filter(~pl.col("blocking_gap"))["test_longest_gap_bars"].to_list() == [0]
    _, table12 = make_splits(bars, "1h", wf, max_gap="12h")
    assert not table12["blocking_gap"].any()
    params = table.select("split", "train_start", "train_end", "test_start", "test_end").with_columns(
        pl.lit('{"fast": 5, "slow": 20}').alias("params"), pl.lit(0.0).alias("train_sharpe"),
        pl.lit(0.0).alias("train_total_return"), pl.lit(0.0).alias("train_max_drawdown"),
        pl.lit(0).alias("train_trades"))
    from maestro_pipeline.engine import Costs

    per_split = run_oos(bars, params, "ema_cross", Costs(0.001, 0.0005), "1h").per_split
    assert per_split["blocking_gap"].to_list() == table["blocking_gap"].to_list()


# ---------------------------------------------------------------------------------------------------
# through the real asset
# ---------------------------------------------------------------------------------------------------
def _validate(g: Graph, raw: pl.DataFrame, month: str = MONTH):
    part = Lake.month_partition(g.cfg.instrument_objs[0], month)
    g.lake.write_table(raw, "raw_candles", part)
    res = g.run(["validated_bars"], bars_key(month, INST), raise_on_error=False)
    evals = {e.event_specific_data.check_name: e.event_specific_data
             for e in res.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    return res, evals, part


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_fault_through_the_asset(tmp_path, instance, case):
    mutate, rule, rows, over = CASES[case]
    over_sev, over_thr = _split(over)
    sev = {**{c: d for c, (d, _, _) in CHECKS.items()}, **over_sev}
    g = Graph(tmp_path, instance, data_contract={"severity": over_sev, "default": over_thr})
    bad = mutate(clean_bars(72, M0))
    res, evals, part = _validate(g, bad)
    check = RULES[rule].check
    assert not evals[check].passed and rule in evals[check].description
    assert evals[check].metadata[f"{rule} (count)"].value >= max(len(rows), 1)
    blocking = sev[check] == "error"
    assert res.success is not blocking  # a blocking failure fails the step; nothing downstream would run
    assert evals[check].severity == (dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN)
    q = g.lake.read_file("quarantine", {**QUARANTINE, **part})
    offending = q.filter(pl.col("raw_row").is_in(rows))
    assert offending.height == len(rows) and all(rule in r for r in offending["rule"])
    bad_ts = set(bad.with_row_index("i").filter(pl.col("i").is_in(rows))["timestamp"].to_list())
    if blocking:
        assert q.height == bad.height                                  # the whole month held back
        assert not g.lake.exists("validated_bars", part)               # the validated lake as it was (empty)
    else:
        v = g.lake.read_file("validated_bars", part)
        assert not set(v["timestamp"].to_list()) & bad_ts and v.height == bad.height - len(rows)
    latest = instance.get_latest_materialization_event(dg.AssetKey("validated_bars"))
    if blocking:  # a blocked month is a failed partition, never a materialization; its Data Docs are still written
        assert latest is None
        docs = next((g.lake.root / "data_docs").rglob("index.html"))
    else:
        docs = Path(latest.asset_materialization.metadata["data_docs"].value)
    assert docs.exists() and docs.is_relative_to(g.lake.root / "data_docs")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", docs.read_text()))
    assert "Status: Failed" in text and "Data documentation compiled by Great Expectations" in docs.read_text()
    if rule not in ("gaps", "gap_over_max"):
        assert f" {rule_columns()[rule]} " in text  # the rule's expectation has its own section on GE's page


def test_clean_month_through_the_asset(tmp_path, instance):
    g = Graph(tmp_path, instance)
    raw = clean_bars(24 * 31, M0)
    part = Lake.month_partition(g.cfg.instrument_objs[0], MONTH)
    g.lake.write_table(raw, "quarantine", {**QUARANTINE, **part})  # a stale quarantine from an earlier failure
    res, evals, part = _validate(g, raw)
    assert res.success and set(evals) == set(CHECKS) and all(e.passed for e in evals.values())
    assert g.lake.read_file("validated_bars", part).equals(raw)
    assert not g.lake.exists("quarantine", {**QUARANTINE, **part})  # cleared: it no longer applies
    md = instance.get_latest_materialization_event(dg.AssetKey("validated_bars")).asset_materialization.metadata
    assert md["status"].value == "validated" and md["missing_bars"].value == 0
    lineage = Lake.lineage(g.lake.path("validated_bars", part))
    assert lineage["contract"]["status"] == "validated" and lineage["contract"]["gaps"] == []
    print(f"validated_bars: contract {md['contract_seconds'].value} s, data docs {md['data_docs_seconds'].value} s")


def test_drop_keeps_gaps_as_metadata_and_a_blocking_failure_keeps_the_previous_month(tmp_path, instance):
    g = Graph(tmp_path, instance)
    good = clean_bars(72, M0)
    _validate(g, good)
    part = Lake.month_partition(g.cfg.instrument_objs[0], MONTH)
    before = g.lake.read_file("validated_bars", part)
    # copied rows: dropped, the rest validated, the gap they leave travels as metadata and lineage
    res, evals, _ = _validate(g, _copy_block(good))
    assert res.success and not evals["copied_rows"].passed and not evals["gaps"].passed
    md = instance.get_latest_materialization_event(dg.AssetKey("validated_bars")).asset_materialization.metadata
    assert (md["status"].value == "validated_with_drops" and md["missing_bars"].value == 5
            and md["quarantined_rows"].value == 5)
    assert Lake.lineage(g.lake.path("validated_bars", part))["contract"]["gaps"] == [[M0 + 30 * H, M0 + 34 * H, 5]]
    dropped = g.lake.read_file("validated_bars", part)
    # then a blocking fault: the validated month stays exactly as the last good run left it
    res, evals, _ = _validate(g, CASES["high_below_low"][0](good))
    assert not res.success and not evals["bar_structure"].passed
    assert g.lake.read_file("validated_bars", part).equals(dropped) and not dropped.equals(before)


def test_failed_blocking_check_holds_research_back(tmp_path, instance):
    """After a blocking failure the sensor skips and automation requests no research, in later evaluations."""
    g = Graph(tmp_path, instance)
    g.bars()
    sel = dg.AssetSelection.assets("split_optimal_params", "oos_reports")
    first = dg.evaluate_automation_conditions(defs=g.defs, instance=instance, asset_selection=sel)
    assert first.total_requested == 0
    # the newest month is re-fetched with a corrupted bar: its blocking check fails
    newest = MONTHS[-1]
    part = Lake.month_partition(g.cfg.instrument_objs[0], newest)
    raw = g.lake.read_file("raw_candles", part)
    kept = g.lake.read_file("validated_bars", part)
    res, evals, _ = _validate(g, _set(raw, [3], high=pl.col("low") - 1), newest)
    assert not res.success and not evals["bar_structure"].passed
    assert g.lake.read_file("validated_bars", part).equals(kept)       # research keeps reading the good version
    skip = reoptimize_sensor(g)
    assert isinstance(skip, dg.SkipReason)
    assert "blocking check failed on the newest month (bar_structure)" in skip.skip_message
    later = dg.evaluate_automation_conditions(defs=g.defs, instance=instance, asset_selection=sel, cursor=first.cursor)
    assert later.total_requested == 0
    # the source is fixed: the month passes, the sensor asks for new splits, and research follows
    _validate(g, raw, newest)
    reqs = reoptimize_sensor(g)
    assert isinstance(reqs, dg.SensorResult) and [r.partition_key for r in reqs.run_requests] == [INST]
    g.run(["walk_forward_splits"], INST)
    after = dg.evaluate_automation_conditions(defs=g.defs, instance=instance, asset_selection=sel, cursor=later.cursor)
    assert {str(k) for k in after.get_requested_partitions(dg.AssetKey("split_optimal_params"))} == {
        str(research_key(INST, "ema_cross")), str(research_key(INST, "rsi"))}


# ------------------------------------------------------------------ issue 14: calendars and gap attribution
D = 24 * H


def _daily(days: list[int], m0: int) -> pl.DataFrame:
    """Daily bars on the given day offsets from ``m0`` (clean prices)."""
    full = clean_bars(24 * 40, m0)
    daily = full.filter((pl.col("timestamp") - m0) % D == 0)
    return daily.filter(((pl.col("timestamp") - m0) // D).is_in(days))


def test_weekday_calendar_weekends_are_not_gaps():
    m0, m1 = month_bounds("2026-06")          # 2026-06-01 is a Monday
    weekdays = [d for d in range(30) if d % 7 < 5]
    bars = _daily(weekdays, m0)
    crypto = evaluate(bars, "1d", Policy.default(max_gap="1d"), start_ms=m0, end_ms=m1, prev_last_ms=m0 - 3 * D)
    assert crypto.blocked and crypto.outcomes["gaps"].count == 4          # four weekends on a 24/7 grid
    fx = evaluate(bars, "1d", Policy.default(max_gap="1d", calendar="weekdays"), start_ms=m0, end_ms=m1,
                  prev_last_ms=m0 - 3 * D)                                # last bar: Friday 2026-05-29
    assert fx.status == "validated" and fx.gaps == [] and fx.outcomes["gaps"].passed
    holiday = bars.filter(pl.col("timestamp") != m0 + 9 * D)              # a Wednesday missing is a gap
    fx2 = evaluate(holiday, "1d", Policy.default(max_gap="2d", calendar="weekdays"), start_ms=m0, end_ms=m1)
    assert [g[2] for g in fx2.gaps] == [1]


def test_a_gap_across_a_month_boundary_is_charged_to_each_month_it_spans():
    mar0, mar1 = month_bounds("2026-03")
    apr0, apr1 = month_bounds("2026-04")
    march = _daily(list(range(25)), mar0)                      # last bar 2026-03-25
    april = _daily(list(range(6, 30)), apr0)                   # first bar 2026-04-07
    pol = Policy.default(max_gap="7d")
    a = evaluate(april, "1d", pol, start_ms=apr0, end_ms=apr1, prev_last_ms=int(march["timestamp"].max()))
    assert a.gaps == [(apr0, apr0 + 5 * D, 6)] and a.status == "validated"    # Apr 1..6 only
    m = evaluate(march, "1d", pol, start_ms=mar0, end_ms=mar1, next_first_ms=int(april["timestamp"].min()))
    assert m.gaps == [(mar0 + 25 * D, mar0 + 30 * D, 6)] and m.status == "validated"   # Mar 26..31
    strict = Policy.default(max_gap="3d")                      # each part alone is over max_gap: both block
    assert evaluate(april, "1d", strict, start_ms=apr0, end_ms=apr1, prev_last_ms=int(march["timestamp"].max())).blocked


def test_longest_clean_span_researches_the_history_before_a_blocked_month(tmp_path, instance):
    from maestro_pipeline.walkforward import research_bars, research_span

    g = Graph(tmp_path, instance, research={"span": "longest_clean"},
              walk_forward={"scheme": "rolling", "train": "30d", "test": "15d", "n_splits": 3})
    g.bars()
    inst = g.cfg.instrument_objs[0]
    raw = g.lake.read_file("raw_candles", Lake.month_partition(inst, "2026-07"))
    res, _, _ = _validate(g, _set(raw, [3], high=pl.col("low") - 1), "2026-07")      # 2026-07 blocked
    assert not res.success
    span = research_span(g.lake, inst, "longest_clean")
    assert (span.first_month, span.last_month) == ("2026-04", "2026-06")             # 3 clean months beat 2
    assert span.excluded == {"2026-07": "blocked: bar_structure",
                             "2026-08": "clean, but outside the longest clean run",
                             "2026-09": "clean, but outside the longest clean run"}
    bars = research_bars(g.lake, inst, span="longest_clean")
    assert bars["timestamp"].min() == month_bounds("2026-04")[0]
    assert bars["timestamp"].max() == month_bounds("2026-07")[0] - H
    assert research_span(g.lake, inst, "all").last_month == "2026-09"
    out = g.run(["walk_forward_splits"], INST)
    md = out.asset_materializations_for_node("walk_forward_splits")[0].metadata
    assert md["research_span"].value.startswith("longest_clean: 2026-04 .. 2026-06; left out 2026-07 (blocked")
    # the search, the report and the live assets read the same span (the live ones once read every month, and
    # refused the blocked one)
    key = research_key(INST, "ema_cross")
    assert g.run(["split_optimal_params", "oos_reports", "live_parameters", "live_performance"], key).success
    part = {**inst.hive, "strategy": "ema_cross"}
    assert g.lake.read_file("oos_reports", part)["bars_data_version"][0] == bars_hash(bars)
    assert read_live(g.lake, INST, "ema_cross")["data_version"] == bars_hash(bars)
    live = g.lake.read_file("live_performance", part).row(0, named=True)
    # judged on the span's bars only: none of the blocked month's (its old file is still in the lake)
    assert live["evaluated_to_ms"] == int(bars["timestamp"].max()) + H
    assert live["live_bars"] == bars.filter(pl.col("timestamp") >= live["valid_from_ms"]).height
