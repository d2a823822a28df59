"""Automation: the nightly refresh schedule, the re-optimization sensor and the research automation sensor.

All three are RUNNING by default. The schedule refreshes the newest month of every instrument; the sensor asks
for new splits once validated data covers a new test window (and never while the newest validated partitions
have a failed blocking check); downstream research then follows through declarative automation, which also
requires every upstream blocking check to have passed.
"""


from datetime import datetime, timezone

import dagster as dg

from maestro_pipeline.config import MaestroConfig
from maestro_pipeline.research import iso
from maestro_pipeline.timeframes import DAY_MS, parse_duration_ms, timeframe_ms
from maestro_pipeline.triggers import months_to_refresh, reoptimization_due
from maestro_pipeline.contract import blocking_checks
from resources import LakeResource

from ._common import failed_blocking_checks
from .partitions import Partitions, bars_key


def build_automation(cfg: MaestroConfig, parts: Partitions, assets: dict[str, dg.AssetsDefinition]):
    refresh_job = dg.define_asset_job(
        "refresh_bars",
        selection=dg.AssetSelection.assets(assets["raw_candles"], assets["validated_bars"]),
        partitions_def=parts.bars,
        description="Fetch and validate one month of one instrument (what the nightly schedule and backfills run).",
    )
    splits_job = dg.define_asset_job(
        "resplit_instrument",
        selection=dg.AssetSelection.assets(assets["walk_forward_splits"]),
        partitions_def=parts.instruments,
        description="Recompute an instrument's walk-forward splits; research assets follow automatically.",
    )

    @dg.schedule(
        cron_schedule=cfg.schedule.nightly_cron,
        execution_timezone=cfg.schedule.timezone,
        job=refresh_job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Nightly: append the new candles of the current month (and the previous one on the 1st-2nd).",
    )
    def nightly_refresh(context: dg.ScheduleEvaluationContext):
        when = context.scheduled_execution_time or datetime.now(timezone.utc)
        now_ms = int(when.timestamp() * 1000)
        for inst in cfg.instrument_objs:
            for month in months_to_refresh(inst, now_ms):
                yield dg.RunRequest(
                    run_key=f"{inst.key}|{month}|{now_ms // DAY_MS}",
                    partition_key=bars_key(month, inst.key),
                    tags={"maestro/trigger": "nightly"},
                )

    check_keys = [dg.AssetCheckKey(assets["validated_bars"].key, name) for name in blocking_checks(cfg.data_contract.severities())]

    @dg.sensor(
        job=splits_job,
        minimum_interval_seconds=120,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Re-split an instrument once its validated bars cover a new test window; skipped while the "
        "newest validated month has a failed blocking check.",
    )
    def reoptimize_on_new_data(context: dg.SensorEvaluationContext, lake: LakeResource):
        lk = lake.lake()
        requests, reasons = [], []
        for inst in cfg.instrument_objs:
            files = lk.files("validated_bars", inst.hive)
            if not files:
                reasons.append(f"{inst.key}: no validated bars yet")
                continue
            fetched = files + lk.files("raw_candles", inst.hive)
            newest_month = max(p.parent.name.removeprefix("month=") for p in fetched)
            failed = failed_blocking_checks(context.instance, check_keys, [str(bars_key(newest_month, inst.key))])
            failed = sorted({n for names in failed.values() for n in names})
            if failed:
                reasons.append(f"{inst.key}: blocking check failed on the newest month ({', '.join(failed)})")
                continue
            stats = lk.query(f"SELECT min(timestamp) AS lo, max(timestamp) AS hi FROM read_parquet('{lk.glob('validated_bars', inst.hive)}')")
            tf = timeframe_ms(inst.timeframe)
            data_start, data_end = int(stats["lo"][0]), int(stats["hi"][0]) + tf
            test_ms = parse_duration_ms(cfg.walk_forward.test, inst.timeframe)
            train_ms = parse_duration_ms(cfg.walk_forward.train, inst.timeframe)
            last_test_end = None
            if lk.exists("walk_forward_splits", inst.hive):
                last_test_end = int(lk.read_file("walk_forward_splits", inst.hive)["test_end"].max())
            due, why = reoptimization_due(data_end, last_test_end, test_ms, data_start + DAY_MS + train_ms + test_ms)
            if due:
                requests.append(dg.RunRequest(run_key=f"{inst.key}@{data_end}", partition_key=inst.key,
                                              tags={"maestro/trigger": "new-data", "maestro/data_end": iso(data_end)}))
            else:
                reasons.append(f"{inst.key}: {why}")
        if requests:
            return dg.SensorResult(run_requests=requests)
        return dg.SkipReason("; ".join(reasons) or "no instruments")

    research_automation = dg.AutomationConditionSensorDefinition(
        "research_automation",
        target=dg.AssetSelection.assets(assets["split_optimal_params"], assets["oos_reports"], assets["strategy_leaderboard"]),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Runs the search, the OOS reports and the leaderboard after new splits (blocking checks passed).",
    )
    return [refresh_job, splits_job], [nightly_refresh], [reoptimize_on_new_data, research_automation]

