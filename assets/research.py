"""Research assets: ``walk_forward_splits`` -> ``split_optimal_params`` -> ``oos_reports``.

Each resolves its partition, reads the validated lake for its instrument in one scan, calls the core
(``maestro_pipeline.walkforward``, ``.search``, ``.evaluation``), writes its tables atomically (seeds, data versions
and library versions in the lineage) and returns the metadata the UI shows.
"""


import json

import dagster as dg
import numpy as np
import polars as pl

from maestro_pipeline.config import MaestroConfig
from maestro_pipeline.durations import iso
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.evaluation import build_report
from maestro_pipeline.provenance import code_version, library_versions
from maestro_pipeline.quality import blocked_months
from maestro_pipeline.reporting import (
    md_table,
    png_markdown,
    quantstats_rows,
    report_markdown,
    write_tearsheet,
)
from maestro_pipeline.schema import bars_hash
from maestro_pipeline.search import optimize_splits, sampler_label
from maestro_pipeline.timeframes import timeframe_ms
from maestro_pipeline.walkforward import (
    next_test_end_ms,
    plan_research,
    research_bars,
    splits_clamp_note,
    splits_from_table,
)
from resources import LakeResource

from ._common import costs_for, resolve, user_errors
from .partitions import Partitions

#: The Dagster pool research steps share (its limit is maestro.yaml's concurrency.research_pool).
RESEARCH_POOL = "maestro_research"

#: Research assets run after new splits, and only when every upstream blocking check has passed.
RESEARCH_CONDITION = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager, upstream blocking checks passed")


def build_research_definitions(cfg: MaestroConfig, parts: Partitions) -> dg.Definitions:
    """``walk_forward_splits`` -> ``split_optimal_params`` -> ``oos_reports``."""
    def max_gap(inst):
        return cfg.data_contract.policy_for(inst.exchange).max_gap

    @dg.asset(
        partitions_def=parts.instruments,
        deps=[dg.AssetDep("validated_bars", partition_mapping=dg.MultiToSingleDimensionPartitionMapping("instrument"))],
        group_name="research",
        kinds={"duckdb", "parquet"},
        code_version=code_version("maestro_pipeline.walkforward.planner", "maestro_pipeline.walkforward.table",
                                  "maestro_pipeline.walkforward.live", "maestro_pipeline.walkforward.regimes"),
        description="Walk-forward train/test windows per instrument on a fixed calendar grid "
        "(train and test disjoint), plus the live split (its pick is what to trade now) "
        "and each window's market regime (HMM, past data only).",
    )
    def walk_forward_splits(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        with user_errors():
            t = resolve(context, cfg, lake)
            inst, lk = t.inst, t.lake
            blocked = blocked_months(lk, inst)
            if blocked:
                raise MaestroError(
                    f"{inst.key}: blocking data checks failed for "
                    + "; ".join(f"{m} ({', '.join(v)})" for m, v in blocked.items())
                    + " — research waits until those months pass (see validated_bars' checks)"
                )
            bars = research_bars(lk, inst, with_derivatives=False)
            splits, table, live = plan_research(bars, inst.timeframe, cfg.walk_forward, max_gap=max_gap(inst),
                                                regimes=cfg.regimes)
            complete = [sp for sp in splits if live.split is None or sp.index != live.split.index]
            dv = bars_hash(bars)
            w = lk.write_table(table, "walk_forward_splits", inst.hive,
                               lineage={"run_id": context.run_id, "bars_data_version": dv,
                                        "walk_forward": cfg.walk_forward.model_dump()})
            wf = cfg.walk_forward
            next_ready = (iso(next_test_end_ms(complete, inst.timeframe, wf)) if wf.mode == "calendar"
                          else "every new bar re-cuts the parts (mode: parts)")
            tf = timeframe_ms(inst.timeframe)
            if len(complete) < wf.n_splits:
                context.log.warning(splits_clamp_note(inst.key, wf.n_splits, len(complete)))
        return dg.MaterializeResult(
            metadata={
                "n_splits": len(complete),
                "n_splits_requested": wf.n_splits,
                "first_train": iso(complete[0].train_start),
                "last_test_end": iso(complete[-1].test_end),
                "last_test_end_ms": complete[-1].test_end,
                "live_split": (f"train {iso(live.split.train_start)} .. {iso(live.split.train_end)}, trading "
                               f"{iso(live.split.test_start)} .. {iso(live.split.test_end)} ({live.reason})")
                              if live.split is not None else live.reason,
                "live_train_end_ms": live.split.train_end if live.split is not None else 0,
                "regime_shift": live.regime.get("regime_shift") or live.regime.get("regime_note") or "none",
                "regime_model": json.dumps(live.regime.get("regime_model", {}), default=str),
                "next_split_when_data_reaches": next_ready,
                "data_end": iso(int(bars["timestamp"][-1]) + tf),
                "bars": bars.height,
                "bars_data_version": dv,
                "scheme": cfg.walk_forward.scheme,
                "mode": cfg.walk_forward.mode,
                "splits": dg.MetadataValue.md(md_table(table.select(
                    "split", "live", "train_from", "train_to", "test_from", "test_to", "train_bars", "test_bars",
                    "test_missing_bars", "train_regime", "train_regime_share", "test_regime", "test_regime_share"))),
                "path": dg.MetadataValue.path(str(w.path)),
            },
            data_version=dg.DataVersion(w.data_version),
        )

    @dg.asset(
        partitions_def=parts.research,
        deps=[dg.AssetDep(walk_forward_splits,
                          partition_mapping=dg.MultiToSingleDimensionPartitionMapping("instrument"))],
        group_name="research",
        kinds={"optuna", "parquet"},
        code_version=code_version("maestro_pipeline.search.study", "maestro_pipeline.search.runner",
                                  "maestro_pipeline.engine.nb", "maestro_pipeline.engine.fast",
                                  "maestro_pipeline.engine.reference"),
        automation_condition=RESEARCH_CONDITION,
        pool=RESEARCH_POOL,
        description="Per split, the parameters an Optuna search (seeded; compiled backtests that reproduce vectorbt) "
        "picks on the train window; every trial goes to trial_ledger and its daily returns to trial_returns; studies "
        "are persisted to the Optuna storage. Splits run in parallel processes; unchanged splits are reused by "
        "fingerprint.",
    )
    def split_optimal_params(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        with user_errors():
            t = resolve(context, cfg, lake)
            inst, strategy, lk, part = t.inst, t.strategy, t.lake, t.research_partition
            bars = research_bars(lk, inst)
            table = lk.read_file("walk_forward_splits", inst.hive)
            prev = lk.read_file("split_optimal_params", part) if lk.exists("split_optimal_params", part) else None
            prev_ledger = lk.read_file("trial_ledger", part) if lk.exists("trial_ledger", part) else None
            prev_daily = lk.read_file("trial_returns", part) if lk.exists("trial_returns", part) else None
            out = optimize_splits(
                bars, splits_from_table(table), strategy, cfg.search, costs_for(cfg, inst), inst.timeframe, prev,
                prev_ledger, prev_daily, risk=cfg.risk.for_strategy(strategy),
                storage_url=cfg.search.storage_url(lk.root), study_prefix=f"{inst.key}/{strategy}/",
            )
            live_col = (table.select("split", "live") if "live" in table.columns
                        else table.select("split", pl.lit(False).alias("live")))
            out.params = out.params.drop("live", strict=False).join(live_col, on="split", how="left")
            versions = library_versions("optuna", "vectorbt", "numba", "numpy", "pandas")
            lineage = {"run_id": context.run_id, "bars_data_version": bars_hash(bars),
                       "search": cfg.search.model_dump(), "sampler": sampler_label(cfg.search), "libraries": versions}
            with lk.transaction() as tx:
                w = lk.write_table(out.params, "split_optimal_params", part, lineage=lineage, tx=tx)
                lk.write_table(out.ledger, "trial_ledger", part, lineage=lineage, tx=tx)
                if out.daily.height:
                    lk.write_table(out.daily, "trial_returns", part, lineage=lineage, tx=tx)
        shown = out.params.select("split", "live", "params", "best_value", "train_sharpe", "train_vwr", "train_trades")
        return dg.MaterializeResult(
            metadata={
                "splits": out.params.height,
                "splits_computed": out.computed,
                "splits_reused": out.reused,
                "trials_in_ledger": out.ledger.height,
                "search_workers": out.workers,
                "studies_persisted": out.persisted,
                "optuna_storage": cfg.search.storage_url(lk.root) or "none",
                "objective": ",".join(cfg.search.objectives),
                "selection": cfg.search.selection if len(cfg.search.objectives) > 1 else "best value",
                "seed": cfg.search.seed,
                "sampler": lineage["sampler"],
                "libraries": json.dumps(versions),
                "best_params": dg.MetadataValue.md(md_table(shown)),
                "path": dg.MetadataValue.path(str(w.path)),
            },
            data_version=dg.DataVersion(w.data_version),
        )

    @dg.asset(
        partitions_def=parts.research,
        deps=[split_optimal_params],
        group_name="research",
        kinds={"vectorbt", "quantstats"},
        code_version=code_version("maestro_pipeline.evaluation.oos", "maestro_pipeline.evaluation.report_card",
                                  "maestro_pipeline.evaluation.verdict", "maestro_pipeline.reporting.quantstats",
                                  "maestro_pipeline.stats.metrics", "maestro_pipeline.stats.pbo",
                                  "maestro_pipeline.stats.deflated_sharpe", "maestro_pipeline.stats.bootstrap",
                                  "maestro_pipeline.stats.stability"),
        automation_condition=RESEARCH_CONDITION,
        pool=RESEARCH_POOL,
        description="Out-of-sample report: each split's parameters traded on its own test window, stitched equity "
        "vs buy-and-hold, per-split train vs test metrics, walk-forward efficiency, Deflated Sharpe Ratio, "
        "PBO (CSCV), bootstrap CIs, parameter stability, quantstats figures (365-day year), charts, "
        "an HTML tearsheet and a verdict.",
    )
    def oos_reports(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        with user_errors():
            t = resolve(context, cfg, lake)
            inst, strategy, lk, part = t.inst, t.strategy, t.lake, t.research_partition
            bars = research_bars(lk, inst)
            params = lk.read_file("split_optimal_params", part)
            ledger = lk.read_file("trial_ledger", part) if lk.exists("trial_ledger", part) else pl.DataFrame()
            daily = lk.read_file("trial_returns", part) if lk.exists("trial_returns", part) else None
            report = build_report(inst, strategy, bars, params, ledger, daily,
                                  lk.read_file("walk_forward_splits", inst.hive), costs_for(cfg, inst), max_gap(inst),
                                  risk=cfg.risk.for_strategy(strategy), evaluation=cfg.evaluation)
            res, card, summary = report.oos, report.card, {**report.summary, "run_id": context.run_id}
            lineage = {"run_id": context.run_id, "bars_data_version": summary["bars_data_version"],
                       "libraries": library_versions("quantstats", "vectorbt", "scipy")}
            with lk.transaction() as tx:
                lk.write_table(res.equity, "oos_equity", part, lineage=lineage, tx=tx)
                lk.write_table(res.per_split, "oos_split_metrics", part, lineage=lineage, tx=tx)
                lk.write_table(card.rolling, "oos_rolling", part, lineage=lineage, tx=tx)
                if card.stability.height:
                    lk.write_table(card.stability, "param_stability", part, lineage=lineage, tx=tx)
                if res.trades.height:
                    lk.write_table(res.trades, "oos_trades", part, lineage=lineage, tx=tx)
                tmp, html_target = lk.staged_path("oos_reports", part, "tearsheet.html", tx)
                write_tearsheet(res.returns, res.benchmark, tmp, title=f"{inst.key} · {strategy} · walk-forward OOS")
                summary["tearsheet"] = str(html_target)
                w = lk.write_table(pl.DataFrame([summary], infer_schema_length=None), "oos_reports", part,
                                   lineage=lineage, tx=tx)

        def num(k):
            v = summary.get(k)
            return float(v) if isinstance(v, (int, float)) and v is not None and np.isfinite(v) else float("nan")

        return dg.MaterializeResult(
            metadata={
                "verdict": f"{summary['verdict']}: {summary['verdict_reason']}",
                "thresholds": summary["thresholds"],
                "report": dg.MetadataValue.md(report_markdown(summary, card.charts)),
                **{k: num(k) for k in ("oos_sharpe", "oos_sortino", "oos_cagr", "oos_max_drawdown", "oos_calmar",
                                      "oos_total_return", "dsr", "pbo", "sharpe_ci_low", "sharpe_ci_high",
                                      "plateau_median")},
                "oos_trades": summary["oos_trades"],
                "live_parameters": summary["live_params"] or "no live split",
                "trials_searched": summary["dsr_n_trials"],
                "walk_forward_efficiency": num("wfe"),
                "wfe_note": summary["wfe_note"],
                "overfitting_note": summary.get("overfitting_note") or "none",
                "data_note": summary["data_note"] or "strategy used only OHLCV (no proxies)",
                "buy_hold_total_return": num("buy_hold_total_return"),
                "per_split": dg.MetadataValue.md(md_table(res.per_split)),
                "quantstats": dg.MetadataValue.md(md_table(quantstats_rows(summary))),
                "equity_chart": dg.MetadataValue.md(png_markdown(card.charts["equity_chart"],
                                                                 "OOS equity and drawdown vs buy-and-hold")),
                "tearsheet": dg.MetadataValue.path(summary["tearsheet"]),
                "path": dg.MetadataValue.path(str(w.path)),
            },
            data_version=dg.DataVersion(w.data_version),
        )

    return dg.Definitions(assets=[walk_forward_splits, split_optimal_params, oos_reports])
