"""Bar backfills as Dagster runs them: one run per range, a blocked month a failed partition, never green.

Two instruments with different starts on the embedded market, the clock pinned; the partition statuses are read
from the instance with Dagster's public ``get_status_by_partition`` (what the partitions and backfill pages show).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import yaml

from assets.partitions import bars_key
from maestro_pipeline.cli.graph import RANGE_END_TAG, RANGE_START_TAG
from maestro_pipeline.lake import Lake
from tests.support.graph import QUIET, Graph

BTC, ETH = "synthetic.BTC_USDT.1h", "synthetic.ETH_USDT.1h"
INSTRUMENTS = [{"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2026-04-01"},
               {"exchange": "synthetic", "symbol": "ETH/USDT", "timeframe": "1h", "start": "2026-06-01"}]
ROOT = Path(__file__).resolve().parents[2]


def _range_run(g: Graph, names, first: str, last: str):
    return dg.materialize(g.assets, selection=list(names), instance=g.instance, run_config=QUIET,
                          raise_on_error=False, tags={RANGE_START_TAG: first, RANGE_END_TAG: last})


def _status(g: Graph, asset: str) -> dict[str, str | None]:
    pdef = g.defs.get_repository_def().assets_defs_by_key[dg.AssetKey(asset)].partitions_def
    keys = pdef.get_partition_keys()
    st = g.instance.get_status_by_partition(dg.AssetKey(asset), partition_keys=keys, partitions_def=pdef)
    return {k: (v.value if v is not None else None) for k, v in st.items()}


def _failure(result) -> str:
    ev = next(e for e in result.all_events if e.is_step_failure)
    return ev.step_failure_data.user_failure_data.description


def test_a_range_is_one_run_and_a_blocked_month_is_a_failed_partition(tmp_path, instance):
    g = Graph(tmp_path, instance, instruments=INSTRUMENTS)
    res = _range_run(g, ["raw_candles", "validated_bars"], f"{BTC}|2026-04", f"{ETH}|2026-09")
    assert res.success
    assert len(instance.get_run_records()) == 1                          # 12 partitions, one run, one step
    st = _status(g, "validated_bars")
    # ETH starts in June: its April and May are not partitions with data and do not look like data
    assert st[f"{ETH}|2026-04"] is None and st[f"{ETH}|2026-05"] is None
    assert [st[f"{BTC}|2026-0{m}"] for m in range(4, 10)] == ["MATERIALIZED"] * 6
    assert [st[f"{ETH}|2026-0{m}"] for m in range(6, 10)] == ["MATERIALIZED"] * 4
    assert not g.lake.exists("raw_candles", Lake.month_partition(g.cfg.instrument(ETH), "2026-05"))

    # the source glitches in two months: a duplicated bar in BTC May, 8 missing hours in ETH July (max_gap 6h)
    btc_may = Lake.month_partition(g.cfg.instrument(BTC), "2026-05")
    good_may = g.lake.read_file("validated_bars", btc_may)
    raw = g.lake.read_file("raw_candles", btc_may)
    g.lake.write_table(pl.concat([raw, raw.slice(100, 1)]).sort("timestamp"), "raw_candles", btc_may)
    eth_jul = Lake.month_partition(g.cfg.instrument(ETH), "2026-07")
    raw = g.lake.read_file("raw_candles", eth_jul)
    hole = raw["timestamp"][50:58].implode()
    g.lake.write_table(raw.filter(~pl.col("timestamp").is_in(hole)), "raw_candles", eth_jul)

    res = _range_run(g, ["validated_bars"], f"{BTC}|2026-04", f"{ETH}|2026-09")
    assert not res.success
    st = _status(g, "validated_bars")
    assert st[f"{BTC}|2026-05"] == "FAILED" and st[f"{ETH}|2026-07"] == "FAILED"
    assert st[f"{BTC}|2026-04"] == "MATERIALIZED" and st[f"{ETH}|2026-08"] == "MATERIALIZED"
    blocked = [e for e in res.all_events if e.event_type_value == "ASSET_MATERIALIZATION"
               and e.partition in (f"{BTC}|2026-05", f"{ETH}|2026-07")]
    assert blocked == []                                                  # a blocked month never materializes
    assert g.lake.read_file("validated_bars", btc_may).equals(good_may)   # and its lake file stays as it was
    msg = _failure(res)
    assert msg.startswith("2 of 10 month partition(s) failed")
    btc_line = next(line for line in msg.splitlines() if "BTC_USDT.1h 2026-05" in line)
    assert "check bar_structure failed" in btc_line and "duplicated timestamp" in btc_line
    assert "first at 2026-05-05 04:00" in btc_line and "always blocking: fix the source data" in btc_line
    eth_line = next(line for line in msg.splitlines() if "ETH_USDT.1h 2026-07" in line)
    assert "check gap_over_max failed" in eth_line
    assert "data_contract.exchanges.synthetic.max_gap" in eth_line
    assert "data_contract.severity.gap_over_max: warn" in eth_line
    evals = {(c.check_name, c.partition): c for c in (e.event_specific_data for e in res.all_events
                                                       if e.event_type_value == "ASSET_CHECK_EVALUATION")}
    assert not evals[("bar_structure", f"{BTC}|2026-05")].passed
    assert evals[("bar_structure", f"{BTC}|2026-06")].passed


def test_a_single_month_run_and_a_month_outside_the_span(tmp_path, instance):
    g = Graph(tmp_path, instance, instruments=INSTRUMENTS)
    res = g.run(["raw_candles", "validated_bars"], bars_key("2026-04", ETH))
    mats = [e for e in res.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert res.success and mats == []                                     # before ETH's start: nothing to show
    logs = [e.message for e in instance.all_logs(res.run_id) if e.message]
    assert any("before the instrument's start (2026-06-01)" in m for m in logs)
    res = g.run(["raw_candles", "validated_bars"], bars_key("2026-06", ETH))
    md = {e.asset_key.path[-1]: e.event_specific_data.materialization.metadata for e in res.all_events
          if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert md["validated_bars"]["dagster/row_count"].value == 30 * 24
    cols = [c.name for c in md["validated_bars"]["dagster/column_schema"].value.columns]
    assert cols[:2] == ["timestamp", "datetime"] and "close" in cols
    contract = md["validated_bars"]["contract"].value                    # a sortable table, not markdown
    assert [c.name for c in contract.schema.columns] == ["rule", "severity", "result", "count", "first"]
    assert {r.data["result"] for r in contract.records} == {"pass"}


def test_the_dagster_cli_materializes_a_partition_range(tmp_path):
    """``dagster asset materialize --partition-range`` (what the docs tell a user to run) is one run."""
    cfg = {"lake_root": "lake", "instruments": [{"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "4h",
                                                 "start": "2026-01-01", "end": "2026-04-01"}],
           "strategies": ["ema_cross"]}
    (tmp_path / "maestro.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "MAESTRO_CONFIG": str(tmp_path / "maestro.yaml"), "DAGSTER_HOME": str(tmp_path / "home"),
           "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "maestro_pipeline.definitions",
         "--select", "raw_candles,validated_bars",
         "--partition-range", "synthetic.BTC_USDT.4h|2026-01...synthetic.BTC_USDT.4h|2026-03"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    months = sorted(p.parent.name for p in Lake(tmp_path / "lake").files("validated_bars"))
    assert months == ["month=2026-01", "month=2026-02", "month=2026-03"]
    assert out.stderr.count("RUN_START") == 1 and "[3/3] partitions done" in out.stderr
