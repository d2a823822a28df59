"""The nightly schedule, the re-optimization sensor and research automation, evaluated on a real instance."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
import polars as pl
import pytest

from assets.partitions import bars_key, research_key
from maestro_pipeline.lake import Lake

from .conftest import NOW_MS
from .test_dagster_graph import INST, MONTHS, Graph

DAY = 86_400_000


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def _sensor(g: Graph):
    sensor = g.defs.get_sensor_def("reoptimize_on_new_data")
    with dg.build_sensor_context(instance=g.instance, resources=g.defs.resources, definitions=g.defs) as ctx:
        return sensor(ctx)


def _requests(result) -> list[dg.RunRequest]:
    if isinstance(result, dg.SensorResult):
        return list(result.run_requests or [])
    return []


def test_nightly_schedule_requests_current_and_previous_month():
    from assets import build_definitions
    from maestro_pipeline.config import parse_config

    from .conftest import small_config

    cfg = parse_config(small_config("lake", instruments=[
        {"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2026-04-01"},
        {"exchange": "synthetic", "symbol": "ETH/USDT", "timeframe": "4h", "start": "2026-09-01"},
    ]))
    defs = build_definitions(cfg)
    sched = defs.get_schedule_def("nightly_refresh")
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 9, 1, 0, 30, tzinfo=timezone.utc), repository_def=defs.get_repository_def())
    keys = sorted(str(r.partition_key) for r in sched.evaluate_tick(ctx).run_requests)
    assert keys == sorted([
        str(bars_key("2026-08", INST)), str(bars_key("2026-09", INST)), str(bars_key("2026-09", "synthetic.ETH_USDT.4h")),
    ])
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 9, 15, 0, 30, tzinfo=timezone.utc), repository_def=defs.get_repository_def())
    assert len(sched.evaluate_tick(ctx).run_requests) == 2  # mid-month: only the current month of each


def test_sensor_fires_when_data_advances_not_before_and_not_after_a_failed_check(tmp_path, instance):
    g = Graph(tmp_path, instance)
    # no data at all
    assert isinstance(_sensor(g), dg.SkipReason)
    # data but not enough for one split (40d train + 20d test)
    g.bars(MONTHS[:1])
    res = _sensor(g)
    assert isinstance(res, dg.SkipReason) and "not enough validated data" in res.skip_message
    g.bars(MONTHS[1:])
    reqs = _requests(_sensor(g))
    assert [r.partition_key for r in reqs] == [INST]
    g.run(["walk_forward_splits"], INST)
    res = _sensor(g)
    assert isinstance(res, dg.SkipReason) and "waiting for data to cover the next test window" in res.skip_message

    # time passes: the nightly refresh adds bars. 20 days later a whole new test window exists.
    last_end = int(g.lake.read_file("walk_forward_splits", g.cfg.instrument_objs[0].hive)["test_end"].max())
    g.set_clock(last_end + 20 * DAY + 2 * 3_600_000)
    new_months = sorted({datetime.fromtimestamp(t / 1000, tz=timezone.utc).strftime("%Y-%m") for t in (NOW_MS, last_end + 20 * DAY)})
    # ...but the newest month arrives corrupted: its check fails and the sensor must not fire
    newest = new_months[-1]
    g.bars(new_months[:-1])
    g.run(["raw_candles"], bars_key(newest, INST))
    part = Lake.month_partition(g.cfg.instrument_objs[0], newest)
    raw = g.lake.read_file("raw_candles", part)
    g.lake.write_table(pl.concat([raw, raw.tail(3)]), "raw_candles", part)  # duplicated rows
    assert not g.run(["validated_bars"], bars_key(newest, INST), raise_on_error=False).success
    res = _sensor(g)
    assert isinstance(res, dg.SkipReason) and "blocking check failed" in res.skip_message
    # the source is fixed; the month re-validates; now the sensor fires once for the new data
    g.run(["raw_candles"], bars_key(newest, INST))
    g.lake.write_table(raw, "raw_candles", part)
    g.run(["raw_candles", "validated_bars"], bars_key(newest, INST))
    reqs = _requests(_sensor(g))
    assert [r.partition_key for r in reqs] == [INST]
    assert reqs[0].run_key.startswith(f"{INST}@")


def test_research_follows_new_splits_through_automation(tmp_path, instance):
    g = Graph(tmp_path, instance)
    g.bars()
    sel = dg.AssetSelection.assets("split_optimal_params")
    first = dg.evaluate_automation_conditions(defs=g.defs, instance=instance, asset_selection=sel)
    assert first.total_requested == 0  # no splits yet: nothing to optimize
    g.run(["walk_forward_splits"], INST)
    result = dg.evaluate_automation_conditions(defs=g.defs, instance=instance, asset_selection=sel, cursor=first.cursor)
    requested = {str(k) for k in result.get_requested_partitions(dg.AssetKey("split_optimal_params"))}
    assert requested == {str(research_key(INST, "ema_cross")), str(research_key(INST, "rsi"))}
