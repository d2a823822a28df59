"""Automation: the nightly refresh schedule, the re-optimization sensors (new data, live drift) and research
automation.

All are RUNNING by default. The schedule refreshes the newest month of every instrument; the sensor asks
for new splits once validated data covers a new test window (and never while the newest validated partitions
have a failed blocking check); downstream research then follows through declarative automation, which also
requires every upstream blocking check to have passed.
"""


from datetime import UTC, datetime

import dagster as dg

from maestro_pipeline.config import MaestroConfig
from maestro_pipeline.durations import iso
from maestro_pipeline.quality import blocked_months
from maestro_pipeline.timeframes import DAY_MS
from maestro_pipeline.walkforward import months_to_refresh, resplit_decision
from resources import LakeResource

from .live import DRIFT_TAG, DRIFT_TRIGGER
from .partitions import Partitions, bars_key, research_key


def build_automation_definitions(cfg: MaestroConfig, parts: Partitions) -> dg.Definitions:
    refresh_job = dg.define_asset_job(
        "refresh_bars",
        selection=dg.AssetSelection.assets("raw_candles", "validated_bars", "quarantine"),
        partitions_def=parts.bars,
        description="Fetch and validate one month of one instrument (what the nightly schedule and backfills run).",
    )
    splits_job = dg.define_asset_job(
        "resplit_instrument",
        selection=dg.AssetSelection.assets("walk_forward_splits"),
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
        when = context.scheduled_execution_time or datetime.now(UTC)
        now_ms = int(when.timestamp() * 1000)
        for inst in cfg.instrument_objs:
            for month in months_to_refresh(inst, now_ms):
                yield dg.RunRequest(
                    run_key=f"{inst.key}|{month}|{now_ms // DAY_MS}",
                    partition_key=bars_key(month, inst.key),
                    tags={"maestro/trigger": "nightly"},
                )

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
            if not lk.files("validated_bars", inst.hive):
                reasons.append(f"{inst.key}: no validated bars yet")
                continue
            newest_month = max(lk.months("validated_bars", inst) + lk.months("raw_candles", inst))
            failed = blocked_months(lk, inst, [newest_month]).get(newest_month)
            if failed:
                reasons.append(f"{inst.key}: blocking check failed on the newest month ({', '.join(failed)})")
                continue
            stored = (lk.read_file("walk_forward_splits", inst.hive)
                      if lk.exists("walk_forward_splits", inst.hive) else None)
            decision = resplit_decision(lk.read_bars(inst), inst.timeframe, cfg.walk_forward, cfg.regimes, stored)
            if decision.due:
                requests.append(dg.RunRequest(
                    run_key=f"{inst.key}@{decision.data_end_ms}", partition_key=inst.key,
                    tags={"maestro/trigger": decision.trigger, "maestro/data_end": iso(decision.data_end_ms),
                          "maestro/why": decision.why[:200]}))
            else:
                reasons.append(f"{inst.key}: {decision.why}")
        if requests:
            return dg.SensorResult(run_requests=requests)
        return dg.SkipReason("; ".join(reasons) or "no instruments")

    research_automation = dg.AutomationConditionSensorDefinition(
        "research_automation",
        target=dg.AssetSelection.assets("split_optimal_params", "oos_reports", "strategy_leaderboard",
                                        "live_parameters", "live_performance").required_multi_asset_neighbors(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description="Runs the search, the OOS reports and the leaderboard after new splits (blocking checks passed).",
    )
    live_job = dg.define_asset_job(
        "reoptimize_live",
        selection=dg.AssetSelection.assets("live_parameters", "live_performance"),
        partitions_def=parts.research,
        description="Re-optimize one instrument x strategy's live pick after a drift alarm, and judge it again.",
    )

    @dg.sensor(
        job=live_job,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When live.reoptimize_on_drift is true: re-optimize the live pick of every instrument x strategy "
        "whose newest live_performance left the walk-forward's band (once per alarm: the run key is the alarm's end).",
    )
    def reoptimize_on_drift(context: dg.SensorEvaluationContext, lake: LakeResource):
        if not cfg.live.reoptimize_on_drift:
            return dg.SkipReason("live.reoptimize_on_drift is false: drift alarms only warn (the live_drift check)")
        lk = lake.lake()
        requests, reasons = [], []
        for inst in cfg.instrument_objs:
            for strategy in cfg.strategies:
                part = {**inst.hive, "strategy": strategy}
                if not lk.exists("live_performance", part):
                    reasons.append(f"{inst.key} x {strategy}: no live evaluation yet")
                    continue
                row = lk.read_file("live_performance", part).row(0, named=True)
                if not row["drift_alarm"]:
                    reasons.append(f"{inst.key} x {strategy}: {row['status']}")
                    continue
                requests.append(dg.RunRequest(
                    run_key=f"{inst.key}|{strategy}|drift@{row['evaluated_to_ms']}",
                    partition_key=research_key(inst.key, strategy),
                    tags={DRIFT_TAG: DRIFT_TRIGGER, "maestro/why": row["description"][:200]}))
        if requests:
            return dg.SensorResult(run_requests=requests)
        return dg.SkipReason("; ".join(reasons) or "no instruments")

    return dg.Definitions(jobs=[refresh_job, splits_job, live_job], schedules=[nightly_refresh],
                          sensors=[reoptimize_on_new_data, research_automation, reoptimize_on_drift])

