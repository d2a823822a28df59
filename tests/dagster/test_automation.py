"""The nightly schedule, the re-optimization sensor and research automation, evaluated on a real instance."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from assets.partitions import bars_key, research_key
from maestro_pipeline.lake import Lake
from tests.support.bars import regime_bars
from tests.support.config import NOW_MS, small_config
from tests.support.graph import INST, MONTHS, Graph, reoptimize_sensor

DAY = 86_400_000


def _requests(result) -> list[dg.RunRequest]:
    if isinstance(result, dg.SensorResult):
        return list(result.run_requests or [])
    return []


def test_nightly_schedule_requests_current_and_previous_month():
    from assets import build_definitions
    from maestro_pipeline.config import parse_config

    cfg = parse_config(small_config("lake", instruments=[
        {"exchange": "synthetic", "symbol": "BTC/USDT", "timeframe": "1h", "start": "2026-04-01"},
        {"exchange": "synthetic", "symbol": "ETH/USDT", "timeframe": "4h", "start": "2026-09-01"},
    ]))
    defs = build_definitions(cfg)
    sched = defs.get_schedule_def("nightly_refresh")
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 9, 1, 0, 30, tzinfo=UTC),
                                    repository_def=defs.get_repository_def())
    keys = sorted(str(r.partition_key) for r in sched.evaluate_tick(ctx).run_requests)
    assert keys == sorted([
        str(bars_key("2026-08", INST)), str(bars_key("2026-09", INST)),
        str(bars_key("2026-09", "synthetic.ETH_USDT.4h")),
    ])
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 9, 15, 0, 30, tzinfo=UTC),
                                    repository_def=defs.get_repository_def())
    assert len(sched.evaluate_tick(ctx).run_requests) == 2  # mid-month: only the current month of each


def test_sensor_fires_when_data_advances_not_before_and_not_after_a_failed_check(tmp_path, instance):
    g = Graph(tmp_path, instance)
    # no data at all
    assert isinstance(reoptimize_sensor(g), dg.SkipReason)
    # data but not enough for one split (40d train + 20d test)
    g.bars(MONTHS[:1])
    res = reoptimize_sensor(g)
    assert isinstance(res, dg.SkipReason) and "not enough validated data" in res.skip_message
    g.bars(MONTHS[1:])
    reqs = _requests(reoptimize_sensor(g))
    assert [r.partition_key for r in reqs] == [INST]
    g.run(["walk_forward_splits"], INST)
    res = reoptimize_sensor(g)
    assert isinstance(res, dg.SkipReason) and "waiting for data to cover the next test window" in res.skip_message

    # time passes: the nightly refresh adds bars. 20 days later a whole new test window exists.
    last_end = int(g.lake.read_file("walk_forward_splits", g.cfg.instrument_objs[0].hive)["test_end"].max())
    g.set_clock(last_end + 20 * DAY + 2 * 3_600_000)
    new_months = sorted({datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m")
                         for t in (NOW_MS, last_end + 20 * DAY)})
    # ...but the newest month arrives corrupted: its check fails and the sensor must not fire
    newest = new_months[-1]
    g.bars(new_months[:-1])
    g.run(["raw_candles"], bars_key(newest, INST))
    part = Lake.month_partition(g.cfg.instrument_objs[0], newest)
    raw = g.lake.read_file("raw_candles", part)
    g.lake.write_table(pl.concat([raw, raw.tail(3)]), "raw_candles", part)  # duplicated rows
    assert not g.run(["validated_bars"], bars_key(newest, INST), raise_on_error=False).success
    res = reoptimize_sensor(g)
    assert isinstance(res, dg.SkipReason) and "blocking check failed" in res.skip_message
    # the source is fixed; the month re-validates; now the sensor fires once for the new data
    g.run(["raw_candles"], bars_key(newest, INST))
    g.lake.write_table(raw, "raw_candles", part)
    g.run(["raw_candles", "validated_bars"], bars_key(newest, INST))
    reqs = _requests(reoptimize_sensor(g))
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


def test_sensor_reoptimizes_the_live_split_once_when_the_regime_shifts(tmp_path, instance):
    """Crafted validated bars (calm, a volatile stretch in the past, calm again): the sensor stays quiet while the
    market is calm; when the newest days turn volatile — before any new test window exists — it requests a
    re-split tagged regime-shift, once."""
    from maestro_pipeline.walkforward import make_splits

    g = Graph(tmp_path, instance)
    inst = g.cfg.instrument_objs[0]
    start = inst.start_ms

    def crafted(days: int, switch_day: int | None) -> pl.DataFrame:  # the past holds both regimes (days 20-50)
        return regime_bars(days, switch_day, seed=8, start_ms=start, volatile_days=(20, 50))

    def store(bars: pl.DataFrame) -> None:
        for month, part in bars.group_by(pl.col("datetime").dt.strftime("%Y-%m"), maintain_order=True):
            g.lake.write_table(part, "validated_bars", Lake.month_partition(inst, month[0]))

    probe = crafted(130, None)
    grid_end = make_splits(probe, "1h", g.cfg.walk_forward)[0][-1].test_end  # the live split's train end
    day0 = (grid_end - start) // DAY
    store(crafted(day0 + 3, None))
    g.set_clock(start + (day0 + 3) * DAY)
    g.run(["walk_forward_splits"], INST)
    stored = g.lake.read_file("walk_forward_splits", inst.hive)
    assert stored.filter(pl.col("live"))["train_end"].item() == grid_end
    res = reoptimize_sensor(g)
    assert isinstance(res, dg.SkipReason) and "waiting for data to cover the next test window" in res.skip_message

    store(crafted(day0 + 12, day0 + 6))  # volatility jumps 6 days into the live test window; 8 days before a new one
    g.set_clock(start + (day0 + 12) * DAY)
    reqs = _requests(reoptimize_sensor(g))
    assert [r.partition_key for r in reqs] == [INST]
    assert reqs[0].tags["maestro/trigger"] == "regime-shift" and "regime 0 -> 1" in reqs[0].tags["maestro/why"]
    g.run(["walk_forward_splits"], INST)
    moved = g.lake.read_file("walk_forward_splits", inst.hive).filter(pl.col("live")).row(0, named=True)
    assert grid_end + 6 * DAY < moved["train_end"] <= start + (day0 + 12) * DAY
    assert moved["live_reason"].startswith("re-optimized early")
    res = reoptimize_sensor(g)  # once: the re-anchored live split is stored, nothing more to do
    assert isinstance(res, dg.SkipReason), _requests(res)
