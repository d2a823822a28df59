"""``raw_candles`` and ``validated_bars``: one Parquet file per month x instrument, checked before research.

Thin Dagster wrappers: fetching lives in ``maestro_pipeline.ingest``, the rules in ``maestro_pipeline.validation``.
A partition that breaks a structural rule never reaches ``validated_bars/``: its rows go to
``quarantine/validated_bars/`` and the blocking check fails with the reason, so research (which reads the
validated lake) cannot see it in this run or any later one.
"""


import dagster as dg
import polars as pl

from maestro_pipeline.config import MaestroConfig
from maestro_pipeline.ingest import ingest_month, month_bounds
from maestro_pipeline.lake import Lake
from maestro_pipeline.research import bars_hash, iso
from maestro_pipeline.validation import CHECK_GROUPS, check_bars, find_gaps, group_results
from resources import LakeResource, MarketDataResource

from ._common import code_version, partition_dims, user_errors
from .partitions import Partitions

CHECK_DESCRIPTIONS = {
    "schema_and_nulls": "Columns and types match the bar schema; no null or NaN prices or volumes.",
    "timestamps_sorted_unique_aligned": "Timestamps strictly increase, are unique, sit on the timeframe grid and inside the month.",
    "ohlc_consistent": "high >= max(open, close), low <= min(open, close), high >= low, prices > 0.",
    "volume_non_negative": "Volume is never negative.",
}


class RawCandlesConfig(dg.Config):
    full_refresh: bool = False
    """Re-download the whole month instead of appending bars after the newest stored one."""


def _bars_metadata(df: pl.DataFrame, timeframe: str) -> dict:
    if df.height == 0:
        return {"rows": 0}
    gaps = find_gaps(df["timestamp"], timeframe)
    return {
        "rows": df.height,
        "first_bar": iso(int(df["timestamp"].min())),
        "last_bar": iso(int(df["timestamp"].max())),
        "gaps": len(gaps),
        "missing_bars": int(sum(g[2] for g in gaps)),
        "source": ",".join(sorted(df["source"].unique().to_list())),
        "data_version": bars_hash(df),
    }


def build_market_data_assets(cfg: MaestroConfig, parts: Partitions) -> list:
    raw_cv = code_version("maestro_pipeline.ingest", "maestro_pipeline.market.synthetic", "maestro_pipeline.schema")

    @dg.asset(
        partitions_def=parts.bars,
        group_name="market_data",
        kinds={"polars", "parquet"},
        code_version=raw_cv,
        description="OHLCV candles as the source publishes them, one file per month x instrument "
        "(data_lake/raw_candles/exchange=…/symbol=…/timeframe=…/month=…). Appends only new bars.",
    )
    def raw_candles(
        context: dg.AssetExecutionContext, config: RawCandlesConfig, lake: LakeResource, market: MarketDataResource
    ) -> dg.MaterializeResult:
        dims = partition_dims(context)
        with user_errors():
            inst = cfg.instrument(dims["instrument"])
            month = dims["month"]
            lk = lake.lake()
            part = Lake.month_partition(inst, month)
            existing = lk.read_file("raw_candles", part) if lk.exists("raw_candles", part) else None
            res = ingest_month(market.source(inst.exchange), inst, month, existing, market.now(), config.full_refresh)
            meta = {**_bars_metadata(res.bars, inst.timeframe), "new_rows": res.new_rows, "instrument": inst.key}
            if res.note:
                meta["note"] = res.note
            if res.changed:
                w = lk.write_table(
                    res.bars, "raw_candles", part,
                    lineage={"run_id": context.run_id, "partition": context.partition_key, "source": inst.exchange,
                             "code_version": raw_cv},
                )
                meta["path"] = dg.MetadataValue.path(str(w.path))
            context.log.info(f"{inst.key} {month}: {res.new_rows} new bars ({res.note or 'written'})")
        return dg.MaterializeResult(metadata=meta, data_version=dg.DataVersion(meta.get("data_version", "empty")))

    @dg.asset(
        partitions_def=parts.bars,
        deps=[raw_candles],
        group_name="market_data",
        kinds={"polars", "parquet"},
        code_version=code_version("maestro_pipeline.validation"),
        check_specs=[
            *(dg.AssetCheckSpec(name, asset="validated_bars", blocking=True, description=CHECK_DESCRIPTIONS[name], partitions_def=parts.bars) for name in CHECK_GROUPS),
            dg.AssetCheckSpec("gaps", asset="validated_bars", blocking=False, partitions_def=parts.bars, description="Missing bars against the timeframe grid (warning; never filled in)."),
        ],
        description="Bars that passed the structural rules; failing partitions are quarantined, not written here.",
    )
    def validated_bars(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        dims = partition_dims(context)
        with user_errors():
            inst = cfg.instrument(dims["instrument"])
            month = dims["month"]
            lk = lake.lake()
            part = Lake.month_partition(inst, month)
            if not lk.exists("raw_candles", part):
                raw = pl.DataFrame()
                note = "no raw candles for this month (before the instrument's start, or not fetched yet)"
            else:
                raw = lk.read_file("raw_candles", part)
                note = ""
            m_start, m_end = month_bounds(month)
            results = check_bars(raw, inst.timeframe, m_start, m_end) if raw.height else []
            groups = group_results(results) if results else {g: [] for g in CHECK_GROUPS}
            ok = all(r.passed for r in results)
            meta: dict = {**_bars_metadata(raw, inst.timeframe), "instrument": inst.key} if raw.height else {"rows": 0, "note": note}
            lineage = {"run_id": context.run_id, "partition": context.partition_key,
                       "upstream": {"raw_candles": Lake.lineage(lk.path("raw_candles", part))} if raw.height else {}}
            if raw.height and ok:
                w = lk.write_table(raw, "validated_bars", part, lineage=lineage)
                meta["path"] = dg.MetadataValue.path(str(w.path))
                meta["status"] = "validated"
            elif raw.height:
                failed = [r for r in results if not r.passed]
                w = lk.write_table(
                    raw, "quarantine", {"asset": "validated_bars", **part},
                    lineage={**lineage, "reasons": [f"{r.rule}: {r.message}" for r in failed]},
                )
                meta["status"] = "quarantined"
                meta["quarantine_path"] = dg.MetadataValue.path(str(w.path))
                context.log.error(f"{inst.key} {month} quarantined: " + "; ".join(r.message for r in failed))
        checks = []
        for name, rs in groups.items():
            bad = [r for r in rs if not r.passed]
            checks.append(
                dg.AssetCheckResult(
                    check_name=name,
                    passed=not bad,
                    description="; ".join(f"{r.rule}: {r.message}" for r in bad) if bad else ("ok" if rs else "no rows to check"),
                    metadata={r.rule: r.message for r in rs} | ({"first_offenders": ", ".join(bad[0].first_offenders)} if bad and bad[0].first_offenders else {}),
                )
            )
        gaps = find_gaps(raw["timestamp"], inst.timeframe) if raw.height else []
        checks.append(
            dg.AssetCheckResult(
                check_name="gaps",
                passed=not gaps,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"{len(gaps)} gap(s), {sum(g[2] for g in gaps)} missing bar(s)" if gaps else "no missing bars",
                metadata={"ranges": ", ".join(f"{iso(a)}..{iso(b)} ({n})" for a, b, n in gaps[:20])} if gaps else {},
            )
        )
        return dg.MaterializeResult(metadata=meta, check_results=checks, data_version=dg.DataVersion(meta.get("data_version", "empty")))

    return [raw_candles, validated_bars]
