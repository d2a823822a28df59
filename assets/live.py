"""Live assets: ``live_parameters`` (what to trade now, exported) -> ``live_performance`` (is it behaving?).

``live_parameters`` turns the walk-forward's live split into the record a bot loads (``maestro_pipeline.trading``),
written at a stable lake path with history. ``live_performance`` trades that record with the same engine on the bars
since its window began and compares the result with the band the stitched OOS returns imply; the ``live_drift``
check warns with the figures when it leaves the band (the ``reoptimize_on_drift`` sensor in ``automation.py`` then
re-optimizes, when ``live.reoptimize_on_drift`` says so).
"""


import time

import dagster as dg
import polars as pl

from maestro_pipeline.config import MaestroConfig
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.provenance import code_version, library_versions
from maestro_pipeline.reporting import md_table
from maestro_pipeline.trading import live_performance as judge_live
from maestro_pipeline.trading import live_record, read_live, reoptimized_pick, write_live
from resources import LakeResource

from ._common import bars_for, costs_for, resolve, user_errors
from .metadata import table_facts
from .partitions import Partitions
from .research import RESEARCH_CONDITION, RESEARCH_POOL

#: The run tag the drift sensor sets on the runs it requests (live_parameters then re-optimizes the pick).
DRIFT_TAG = "maestro/trigger"
DRIFT_TRIGGER = "live_drift"


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:+.2%}"


def live_card(doc: dict, row: dict) -> str:
    """The report card's live section: the pick to trade now, whether it may be, and how it is doing."""
    band = (f"[{_pct(row['band_low'])}, {_pct(row['band_high'])}] ({row['band_level']:.0%}, seed {row['band_seed']})"
            if row["band_low"] is not None else "n/a")
    rows = [
        ("live parameters", row["params"] or "none"),
        ("risk", (doc.get("risk") or {}).get("described", "none")),
        ("valid", f"{doc.get('valid_from') or '-'} .. {doc.get('valid_until') or '-'} ({doc.get('live_reason', '')})"),
        ("verdict", doc.get("verdict", "")),
        ("tradeable", f"{'yes' if doc.get('tradeable') else 'no'}: {doc.get('tradeable_reason', '')}"),
        ("drift", f"{row['status']}: {row['description']}"),
        ("live return", f"{_pct(row['live_return'])} over {row['live_bars']} bars"),
        ("band", band),
    ]
    return md_table(pl.DataFrame({"field": [k for k, _ in rows], "live": [str(v) for _, v in rows]}))


def build_live_definitions(cfg: MaestroConfig, parts: Partitions) -> dg.Definitions:
    """``live_parameters`` -> ``live_performance`` (with its ``live_drift`` check)."""

    @dg.asset(
        partitions_def=parts.research,
        deps=["oos_reports"],
        group_name="live",
        owners=list(cfg.owners),
        tags={"stage": "live", "layer": "parameters"},
        kinds={"json", "parquet"},
        code_version=code_version("maestro_pipeline.trading.record", "maestro_pipeline.trading.store",
                                  "maestro_pipeline.trading.reoptimize"),
        automation_condition=RESEARCH_CONDITION,
        pool=RESEARCH_POOL,
        description="The live split's pick (what to trade now) with its validity window, verdict, tradeable flag, "
        "data and code versions: a JSON record at live_parameters/<instrument>/strategy=<s>/live_parameters.json "
        "(atomic, with history); `maestro export` turns it into JSON or a freqtrade parameter file.",
    )
    def live_parameters(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        with user_errors():
            t = resolve(context, cfg, lake)
            inst, strategy, lk, part = t.inst, t.strategy, t.lake, t.research_partition
            if not lk.exists("oos_reports", part):
                raise MaestroError(f"{inst.key} x {strategy}: no out-of-sample report: materialize oos_reports first")
            bars = bars_for(cfg, t)
            params = lk.read_file("split_optimal_params", part)
            report = lk.read_file("oos_reports", part).row(0, named=True)
            splits_table = lk.read_file("walk_forward_splits", inst.hive)
            risk = cfg.risk.for_strategy(strategy)
            pick, why = None, None
            drifted = context.run.tags.get(DRIFT_TAG) == DRIFT_TRIGGER
            if drifted and cfg.live.reoptimize_on_drift and lk.exists("live_performance", part):
                pick, why = reoptimized_pick(lk.read_file("live_performance", part).row(0, named=True), params, bars,
                                             strategy, cfg.search, costs_for(cfg, inst), inst.timeframe, risk)
            versions = library_versions("optuna", "vectorbt", "numba", "numpy", "pandas", "polars")
            doc = live_record(inst, strategy, params, report, splits_table, bars, risk, cfg.live,
                              generated_at_ms=int(time.time() * 1000), run_id=context.run_id, pick=pick,
                              reoptimized=why, libraries=versions)
            stored = write_live(lk, doc, lineage={"run_id": context.run_id, "bars_data_version": doc["data_version"],
                                                  "content_version": doc["content_version"], "libraries": versions})
        return dg.MaterializeResult(
            metadata={
                "tradeable": doc["tradeable"],
                "tradeable_reason": doc["tradeable_reason"],
                "verdict": doc["verdict"],
                "live_params": dg.MetadataValue.json(doc["params"] or {}),
                "risk": (doc.get("risk") or {}).get("described", "none"),
                "valid_from": doc["valid_from"] or "none",
                "valid_until": doc["valid_until"] or "none",
                "live_reason": doc["live_reason"],
                "content_version": doc["content_version"],
                "changed": stored.changed,
                "history_entry": str(stored.history_path) if stored.history_path else "unchanged",
                "path": dg.MetadataValue.path(str(stored.path)),
            },
            data_version=dg.DataVersion(doc["content_version"]),
        )

    @dg.asset(
        partitions_def=parts.research,
        deps=[live_parameters,
              # every month of the same instrument (any strategy): new bars re-judge the live parameters
              dg.AssetDep("validated_bars", partition_mapping=dg.MultiPartitionMapping({
                  "instrument": dg.DimensionPartitionMapping("instrument", dg.IdentityPartitionMapping())}))],
        group_name="live",
        owners=list(cfg.owners),
        tags={"stage": "live", "layer": "performance"},
        kinds={"vectorbt", "parquet"},
        code_version=code_version("maestro_pipeline.trading.drift", "maestro_pipeline.trading.band",
                                  "maestro_pipeline.engine.reference", "maestro_pipeline.engine.risk"),
        automation_condition=RESEARCH_CONDITION,
        pool=RESEARCH_POOL,
        check_specs=[dg.AssetCheckSpec(
            "live_drift", asset="live_performance", partitions_def=parts.research,
            description="[warn] the live parameters' result since their window began lies inside the walk-forward's "
            "bootstrap band of the stitched OOS returns over the same number of bars")],
        description="The live parameters traded with the same engine on the bars since their window began, against "
        "what the stitched OOS returns imply over the same horizon (seeded stationary-bootstrap band, bars before "
        "the live window only).",
    )
    def live_performance(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        with user_errors():
            t = resolve(context, cfg, lake)
            inst, strategy, lk, part = t.inst, t.strategy, t.lake, t.research_partition
            doc = read_live(lk, inst.key, strategy)
            if doc is None:
                raise MaestroError(f"{inst.key} x {strategy}: no live parameters: materialize live_parameters first")
            bars = bars_for(cfg, t)
            equity = lk.read_file("oos_equity", part)
            row = judge_live(doc, bars, equity, costs_for(cfg, inst), cfg.live)
            row.update(run_id=context.run_id, evaluated_at_ms=int(time.time() * 1000),
                       reoptimize_on_drift=cfg.live.reoptimize_on_drift)
            table = pl.DataFrame([row], infer_schema_length=None)
            w = lk.write_table(table, "live_performance", part,
                               lineage={"run_id": context.run_id, "live_doc_version": doc["content_version"],
                                        "live": cfg.live.model_dump()})
        figures = {k: row[k] for k in ("live_bars", "live_return", "live_max_drawdown", "live_trades", "band_low",
                                       "band_high", "band_median", "band_level", "band_n_boot", "band_seed",
                                       "band_block", "band_sample_bars") if row[k] is not None}
        action = ("none" if not row["drift_alarm"] else
                  "re-optimization requested (reoptimize_on_drift sensor)" if cfg.live.reoptimize_on_drift
                  else "warn only (live.reoptimize_on_drift: false)")
        check = dg.AssetCheckResult(
            check_name="live_drift", passed=not row["drift_alarm"], severity=dg.AssetCheckSeverity.WARN,
            description=row["description"], metadata={"status": row["status"], "action": action, **figures})
        return dg.MaterializeResult(
            metadata={"status": row["status"], "drift_alarm": row["drift_alarm"], "description": row["description"],
                      "live_from": row["live_from"], "live_to": row["live_to"], **figures,
                      "report_card": dg.MetadataValue.md(live_card(doc, row)),
                      "path": dg.MetadataValue.path(str(w.path)), **table_facts(table)},
            check_results=[check],
            data_version=dg.DataVersion(w.data_version),
        )

    return dg.Definitions(assets=[live_parameters, live_performance])
