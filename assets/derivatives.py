"""``funding_rates`` and ``open_interest``: perpetual-futures history per month x instrument, next to the candles.

Thin wrappers over ``maestro_pipeline.market`` (``ingest_derivative_month``). Instruments that are not perpetuals,
and sources without the history (synthetic, files, exchanges whose ccxt class lacks it), materialize nothing and
say why in the metadata; that is not a failure. Files: ``data_lake/<asset>/exchange=…/symbol=…/timeframe=…/month=…``.
"""


import dagster as dg
import polars as pl

from maestro_pipeline.config import MaestroConfig
from maestro_pipeline.durations import iso
from maestro_pipeline.lake import Lake
from maestro_pipeline.market import ingest_derivative_month
from maestro_pipeline.provenance import code_version
from resources import LakeResource, MarketDataResource

from ._common import resolve, user_errors
from .partitions import Partitions


class DerivativesConfig(dg.Config):
    full_refresh: bool = False
    """Re-download the whole month instead of appending records after the newest stored one."""


def _metadata(df: pl.DataFrame | None) -> dict:
    if df is None or df.height == 0:
        return {"rows": 0}
    return {
        "rows": df.height,
        "first": iso(int(df["timestamp"].min())),
        "last": iso(int(df["timestamp"].max())),
        "source": ",".join(sorted(df["source"].unique().to_list())),
    }


def _build(kind: str, description: str, cfg: MaestroConfig, parts: Partitions, cv: str):
    @dg.asset(
        name=kind,
        partitions_def=parts.bars,
        group_name="derivatives",
        owners=list(cfg.owners),
        tags={"stage": "bars", "layer": "raw"},
        kinds={"polars", "parquet"},
        code_version=cv,
        description=description,
    )
    def _asset(
        context: dg.AssetExecutionContext, config: DerivativesConfig, lake: LakeResource, market: MarketDataResource
    ) -> dg.MaterializeResult:
        with user_errors():
            t = resolve(context, cfg, lake)
            inst, month, lk, part = t.inst, t.month, t.lake, t.month_partition
            existing = lk.read_file(kind, part) if lk.exists(kind, part) else None
            res = ingest_derivative_month(kind, market.source(inst.exchange), inst, month, existing, market.now(),
                                          config.full_refresh)
            meta = {**_metadata(res.table), "new_rows": res.new_rows, "instrument": inst.key}
            if res.period:
                meta["period"] = res.period
            if res.note:
                meta["note"] = res.note
            version = "empty"
            if res.changed and res.table is not None:
                w = lk.write_table(
                    res.table, kind, part,
                    lineage={"run_id": context.run_id, "partition": context.partition_key, "source": inst.exchange,
                             "code_version": cv},
                )
                meta["path"] = dg.MetadataValue.path(str(w.path))
                version = w.data_version
            elif existing is not None and lk.exists(kind, part):
                version = Lake.lineage(lk.path(kind, part)).get("data_version", "empty")
            meta["data_version"] = version
            context.log.info(f"{inst.key} {month} {kind}: {res.new_rows} new rows ({res.note or 'written'})")
        return dg.MaterializeResult(metadata=meta, data_version=dg.DataVersion(version))

    return _asset


def build_derivatives_definitions(cfg: MaestroConfig, parts: Partitions) -> dg.Definitions:
    """``funding_rates`` and ``open_interest``, only when some instrument is a perpetual (spot-only graphs stay
    lean)."""
    if not any(":" in i.symbol for i in cfg.instruments):
        return dg.Definitions()
    cv = code_version("maestro_pipeline.market.derivatives", "maestro_pipeline.market.ccxt_source")
    return dg.Definitions(assets=[
        _build("funding_rates", "Funding-rate history of perpetuals (ccxt fetchFundingRateHistory), one file per "
               "month x instrument; nothing for spot instruments or sources without it.", cfg, parts, cv),
        _build("open_interest", "Open-interest history of perpetuals (ccxt fetchOpenInterestHistory) at the "
               "instrument's timeframe (or the nearest period the exchange publishes), one file per month x "
               "instrument; nothing for spot instruments or sources without it.", cfg, parts, cv),
    ])
