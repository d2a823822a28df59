"""The real asset graph in process: bars -> checks -> splits -> search -> OOS report -> leaderboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from assets import build_definitions
from assets.partitions import bars_key, research_key
from maestro_pipeline.config import parse_config
from maestro_pipeline.evaluation import VERDICT_RANK
from maestro_pipeline.lake import CATALOG_VIEWS, Lake
from maestro_pipeline.reporting import render_tearsheet
from maestro_pipeline.schema import BAR_COLUMNS
from tests.support.config import NOW_MS, small_config
from tests.support.graph import INST, MONTHS, Graph


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One full graph run for the module (the expensive part), shared by the read-only assertions."""
    tmp = tmp_path_factory.mktemp("graph")
    with dg.instance_for_test() as inst:
        g = Graph(tmp, inst)
        g.bars()
        g.run(["walk_forward_splits"], INST)
        g.run(["split_optimal_params", "oos_reports"], research_key(INST, "ema_cross"))
        g.run(["strategy_leaderboard"], None)
        yield g


def test_definitions_load_and_validate():
    cfg = parse_config(small_config("lake"))
    defs = build_definitions(cfg)
    repo = defs.get_repository_def()
    names = {k.path[-1] for k in repo.assets_defs_by_key}
    # every table of the lake is an asset (lineage, catalog entry, schema), and nothing else is
    assert names == set(CATALOG_VIEWS.values())
    assert "quarantine" in names and "trial_ledger" in names and "oos_trades" in names
    specs = {s.key.path[-1]: s for s in defs.resolve_all_asset_specs()}
    assert all(s.owners == ["team:research"] and s.tags.get("stage") for s in specs.values())
    checks = {k.name for k in repo.assets_defs_by_key[dg.AssetKey("validated_bars")].check_keys}
    assert checks == {"bar_structure", "copied_rows", "suspicious_bars", "gaps", "gap_over_max"}
    assert defs.get_schedule_def("nightly_refresh").default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.get_sensor_def("reoptimize_on_new_data").default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.get_sensor_def("research_automation").default_status == dg.DefaultSensorStatus.RUNNING
    months = (repo.assets_defs_by_key[dg.AssetKey("raw_candles")].partitions_def
              .get_partitions_def_for_dimension("month"))
    assert months.get_partition_keys()[0] == "2026-04"


def test_bars_partitions_in_lake(built):
    files = built.lake.files("validated_bars")
    assert [p.parent.name for p in files] == [f"month={m}" for m in MONTHS]
    bars = built.lake.read_bars(built.cfg.instrument_objs[0])
    ts = bars["timestamp"].to_numpy()
    assert (ts[1:] - ts[:-1] == 3_600_000).all()                      # contiguous across month files
    assert bars["timestamp"].max() + 3_600_000 <= NOW_MS                # only completed bars
    assert set(bars["source"].unique()) == {"synthetic"}               # every row names its source
    lineage = Lake.lineage(files[0])
    assert lineage["asset"] == "validated_bars" and lineage["upstream"]["raw_candles"]["asset"] == "raw_candles"
    assert dict(zip(bars.columns, bars.dtypes, strict=True)) == BAR_COLUMNS


def test_every_materialized_table_has_a_row_count_and_a_column_schema(built):
    # nothing was quarantined in this run, and the live assets are tested in test_live.py
    for name in set(CATALOG_VIEWS.values()) - {"quarantine", "live_parameters", "live_performance"}:
        ev = built.instance.get_latest_materialization_event(dg.AssetKey(name))
        assert ev is not None, f"{name} was never materialized"
        md = ev.asset_materialization.metadata
        if name == "strategy_leaderboard" or "dagster/row_count" in md:
            assert md["dagster/row_count"].value == built.lake.read_file(name, _part(built, name)).height, name
            assert [c.name for c in md["dagster/column_schema"].value.columns] == \
                built.lake.read_file(name, _part(built, name)).columns, name
        else:
            pytest.fail(f"{name} has no dagster/row_count")


def _part(g, name):
    inst = g.cfg.instrument_objs[0]
    if name in ("raw_candles", "validated_bars"):
        return Lake.month_partition(inst, MONTHS[-1])
    if name == "walk_forward_splits":
        return inst.hive
    if name == "strategy_leaderboard":
        return None
    return {**inst.hive, "strategy": "ema_cross"}


def test_materialization_metadata(built):
    ev = built.instance.get_latest_materialization_event(dg.AssetKey("validated_bars"))
    md = ev.asset_materialization.metadata
    assert md["rows"].value > 0 and md["first_bar"].value and md["last_bar"].value and md["data_version"].value
    rep = built.instance.get_latest_materialization_event(dg.AssetKey("oos_reports")).asset_materialization.metadata
    assert rep["verdict"].value.split(":")[0] in VERDICT_RANK
    assert "## Verdict" in rep["report"].value and rep["report"].value.count("data:image/png;base64,") >= 3
    assert "data:image/png;base64," in rep["equity_chart"].value
    par = (built.instance.get_latest_materialization_event(dg.AssetKey("split_optimal_params"))
           .asset_materialization.metadata)
    assert par["seed"].value == 3 and "optuna" in par["libraries"].value


def test_research_outputs(built):
    lk, inst = built.lake, built.cfg.instrument_objs[0]
    part = {**inst.hive, "strategy": "ema_cross"}
    table = lk.read_file("walk_forward_splits", inst.hive)
    splits = table.filter(~pl.col("live"))
    assert splits.height == 3
    assert (splits["train_end"] <= splits["test_start"]).all()
    assert (splits["test_start"].slice(1) == splits["test_end"].slice(0, 2)).all()
    # the live split is the next window on the grid: its test window starts where the last complete one ends
    live = table.filter(pl.col("live")).row(0, named=True)
    assert live["test_start"] == splits["test_end"].max() and live["split"] == 3
    params = lk.read_file("split_optimal_params", part)
    assert params.height == 4 and all(json.loads(p)["fast"] < json.loads(p)["slow"] for p in params["params"])
    assert params.filter(pl.col("live"))["split"].to_list() == [3]
    ledger = lk.read_file("trial_ledger", part)
    assert ledger.height == 4 * 6  # every trial of every split, the live one included
    eq = lk.read_file("oos_equity", part)
    # stitched OOS covers exactly the test windows, nothing from a train window before the first test
    assert eq["timestamp"].min() == splits["test_start"].min()
    assert eq["timestamp"].max() < splits["test_end"].max()
    assert eq["timestamp"].is_sorted() and eq["timestamp"].n_unique() == eq.height
    per = lk.read_file("oos_split_metrics", part).sort("split")
    assert per["test_regime"].null_count() < per.height  # regimes were fitted (enough history before each train end)
    assert per["test_regime"].to_list() == splits.sort("split")["test_regime"].to_list()  # regimes travel with splits
    rep = lk.read_file("oos_reports", part)
    assert rep.height == 1 and rep["strategy"][0] == "ema_cross"
    tearsheet = Path(rep["tearsheet"][0])
    assert not tearsheet.exists()                 # drawn when first opened (maestro serve), not by every run
    assert render_tearsheet(lk, part) == tearsheet.resolve() and tearsheet.stat().st_size > 10_000
    # the stored OOS total return is the compounded stitched returns
    assert rep["oos_total_return"][0] == pytest.approx(float((1 + eq["return"]).product() - 1), rel=1e-9)


def test_leaderboard_and_catalog(built):
    board = built.lake.read_file("strategy_leaderboard")
    assert board["instrument"].to_list() == [INST] and board["strategy"].to_list() == ["ema_cross"]
    with duckdb.connect(str(built.lake.catalog_path()), read_only=True) as con:
        n_bars = con.execute("SELECT count(*) FROM bars").fetchone()[0]
        top = con.execute("SELECT strategy FROM leaderboard ORDER BY rank LIMIT 1").fetchone()[0]
        views = [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()]
        types = {v: dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {v})").fetchall())
                 for v in views}
        # every table joins on the same key, spelled as the leaderboard spells it
        joined = con.execute("SELECT count(DISTINCT b.instrument) FROM bars b JOIN leaderboard l USING (instrument)"
                             " JOIN splits s USING (instrument) JOIN trials t USING (instrument)").fetchone()[0]
        first_day = con.execute("SELECT min(day) FROM trial_returns").fetchone()[0]
    assert n_bars == built.lake.read_bars(built.cfg.instrument_objs[0]).height
    assert top == "ema_cross"
    assert joined == 1 and all("instrument" in t for t in types.values())
    assert types["trial_returns"]["day"] == "DATE" and str(first_day) >= "2026-04-01"
    assert types["splits"]["train_start"] == "TIMESTAMP" and types["splits"]["train_from"] == "TIMESTAMP"
    assert types["params"]["params"] == "JSON" and types["bars"]["datetime"].startswith("TIMESTAMP")
    # docs/catalog.md lists every column of every view, with its type
    doc = (Path(__file__).resolve().parents[2] / "docs" / "catalog.md").read_text()
    sections = dict(re.findall(r"## `(\w+)`\n(.*?)(?=\n## |\Z)", doc, flags=re.S))
    for view, cols in types.items():
        assert view in sections, f"docs/catalog.md has no section for the view {view}"
        for col, typ in cols.items():
            assert f"| `{col}` | {typ} |" in sections[view], f"docs/catalog.md: {view}.{col} ({typ}) is missing"
    md = (built.instance.get_latest_materialization_event(dg.AssetKey("strategy_leaderboard"))
          .asset_materialization.metadata)
    assert "synthetic.BTC_USDT.1h|rsi" in md["missing_reports"].value


def test_rerun_replaces_and_reuses_splits(built):
    """Re-running research on unchanged data reuses every split (fingerprints) and gives identical params."""
    lk, inst = built.lake, built.cfg.instrument_objs[0]
    part = {**inst.hive, "strategy": "ema_cross"}
    before = lk.read_file("split_optimal_params", part)
    built.run(["split_optimal_params"], research_key(INST, "ema_cross"))
    md = (built.instance.get_latest_materialization_event(dg.AssetKey("split_optimal_params"))
          .asset_materialization.metadata)
    assert md["splits_reused"].value == 4 and md["splits_computed"].value == 0
    assert lk.read_file("split_optimal_params", part).equals(before)
    assert len(lk.files("split_optimal_params")) == 1


def test_failed_check_quarantines_and_leaves_lake_as_it_was(tmp_path, instance):
    g = Graph(tmp_path, instance)
    g.bars(["2026-05"])
    part = Lake.month_partition(g.cfg.instrument_objs[0], "2026-05")
    good = g.lake.read_file("validated_bars", part)
    # the source glitches: a bar whose high is below its low arrives in the raw partition
    raw = g.lake.read_file("raw_candles", part)
    bad = raw.with_columns(pl.when(pl.col("timestamp") == raw["timestamp"][10]).then(pl.col("low") - 5)
                           .otherwise(pl.col("high")).alias("high"))
    g.lake.write_table(bad, "raw_candles", part)
    res = g.run(["validated_bars"], bars_key("2026-05", INST), raise_on_error=False)
    assert not res.success
    evals = [e.event_specific_data for e in res.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    failed = {e.check_name: e for e in evals if not e.passed}
    assert set(failed) == {"bar_structure"}
    assert ("ohlc_consistent: 1 row(s) with high below open/close or low above them"
            in failed["bar_structure"].description)
    assert g.lake.read_file("validated_bars", part).equals(good)                       # untouched
    q = g.lake.read_file("quarantine", {"asset": "validated_bars", **part})
    assert q.height == bad.height
    assert any("ohlc_consistent" in r
               for r in Lake.lineage(g.lake.path("quarantine", {"asset": "validated_bars", **part}))["reasons"])


def test_research_refuses_a_hole_in_the_months(tmp_path, instance):
    g = Graph(tmp_path, instance)
    g.bars(["2026-04", "2026-06", "2026-07", "2026-08"])
    res = g.run(["walk_forward_splits"], INST, raise_on_error=False)
    assert not res.success
    failure = next(e for e in res.all_events if e.is_step_failure)
    assert "validated bars are missing for 2026-05" in failure.step_failure_data.user_failure_data.description
    assert not g.lake.exists("walk_forward_splits", g.cfg.instrument_objs[0].hive)


def test_research_waits_while_a_month_is_blocked(tmp_path, instance):
    """A month whose blocking check failed keeps research back even when its older validated file still exists."""
    g = Graph(tmp_path, instance)
    g.bars()
    part = Lake.month_partition(g.cfg.instrument_objs[0], "2026-05")
    raw = g.lake.read_file("raw_candles", part)
    g.lake.write_table(pl.concat([raw, raw.tail(2)]), "raw_candles", part)   # duplicated rows arrive
    assert not g.run(["validated_bars"], bars_key("2026-05", INST), raise_on_error=False).success
    assert g.lake.exists("validated_bars", part)                               # the old, good month is still there
    res = g.run(["walk_forward_splits"], INST, raise_on_error=False)
    assert not res.success
    failure = next(e for e in res.all_events if e.is_step_failure)
    assert ("blocking data checks failed for 2026-05 (bar_structure)"
            in failure.step_failure_data.user_failure_data.description)
    assert not g.lake.exists("walk_forward_splits", g.cfg.instrument_objs[0].hive)
    # the source is fixed and the month re-validates: research may run again
    g.lake.write_table(raw, "raw_candles", part)
    g.run(["validated_bars"], bars_key("2026-05", INST))
    g.run(["walk_forward_splits"], INST)
    assert g.lake.exists("walk_forward_splits", g.cfg.instrument_objs[0].hive)


def test_one_more_month_reoptimizes_only_the_new_split(tmp_path, instance):
    """Counted by the graph itself: 30 more days of validated data make one new window; split_optimal_params
    searches only the new live split — the previous live split, now complete, keeps its train window and data,
    so it is reused — and every older split is reused too."""
    day = 86_400_000
    g = Graph(tmp_path, instance, now_ms=NOW_MS - 30 * day, regimes={"enabled": False},
              walk_forward={"scheme": "rolling", "train": "30d", "test": "30d", "n_splits": 3})
    g.bars(MONTHS[:5])
    g.run(["walk_forward_splits"], INST)
    g.run(["split_optimal_params"], research_key(INST, "ema_cross"))
    first = g.lake.read_file("split_optimal_params", {**g.cfg.instrument_objs[0].hive, "strategy": "ema_cross"})
    g.set_clock(NOW_MS)
    g.bars(["2026-08", "2026-09"])
    g.run(["walk_forward_splits"], INST)
    g.run(["split_optimal_params"], research_key(INST, "ema_cross"))
    md = g.instance.get_latest_materialization_event(dg.AssetKey("split_optimal_params")).asset_materialization.metadata
    assert (md["splits_computed"].value, md["splits_reused"].value) == (1, 3)
    second = g.lake.read_file("split_optimal_params", {**g.cfg.instrument_objs[0].hive, "strategy": "ema_cross"})
    old_live = first.filter(pl.col("live")).row(0, named=True)
    now_done = second.filter(pl.col("train_end") == old_live["train_end"]).row(0, named=True)
    assert not now_done["live"] and now_done["params"] == old_live["params"]
    assert now_done["fingerprint"] == old_live["fingerprint"]
