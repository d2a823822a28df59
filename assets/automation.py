"""Automation: the nightly refresh schedule, the re-optimization sensor and the research automation sensor.

All three are RUNNING by default. The schedule refreshes the newest month of every instrument; the sensor asks
for new splits once validated data covers a new test window (and never while the newest validated partitions
have a failed blocking check); downstream research then follows through declarative automation, which also
requires every upstream blocking check to have passed.
"""


from datetime import datetime, timezone

import dagster as dg
import polars as pl

from maestro_pipeline.config import MaestroConfig
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.live import live_split
from maestro_pipeline.research import iso, make_splits
from maestro_pipeline.timeframes import DAY_MS, timeframe_ms
from maestro_pipeline.triggers import months_to_refresh, splits_due
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
        description="Re-split an instrument once its validated bars cover a new test window, or when the market "
        "regime (HMM, past data only) has shifted away from the one the live parameters were tuned on; skipped "
        "while the newest validated month has a failed blocking check.",
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
            bars = lk.read_bars(inst)
            tf = timeframe_ms(inst.timeframe)
            data_end = int(bars["timestamp"][-1]) + tf
            try:
                splits, _ = make_splits(bars, inst.timeframe, cfg.walk_forward)
                planned = splits[-1].test_end
                live = live_split(bars, splits, inst.timeframe, cfg.walk_forward, cfg.regimes)
            except MaestroError:
                planned, live = None, None
            stored = stored_live = None
            if lk.exists("walk_forward_splits", inst.hive):
                table = lk.read_file("walk_forward_splits", inst.hive)
                done = table.filter(~pl.col("live")) if "live" in table.columns else table
                stored = int(done["test_end"].max())
                if "live" in table.columns and table["live"].any():
                    stored_live = int(table.filter(pl.col("live"))["train_end"].item())
            due, why = splits_due(planned, stored)
            trigger = "new-data"
            if not due and live is not None and live.split is not None and stored_live is not None \
                    and live.split.train_end > stored_live:
                due, why, trigger = True, f"live split moved: {live.reason}", "regime-shift"
            if due:
                requests.append(dg.RunRequest(run_key=f"{inst.key}@{data_end}", partition_key=inst.key,
                                              tags={"maestro/trigger": trigger, "maestro/data_end": iso(data_end),
                                                    "maestro/why": why[:200]}))
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

