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
from maestro_pipeline.reporting import TEARSHEET_FILE, png_markdown, quantstats_rows, report_markdown
from maestro_pipeline.schema import bars_hash
from maestro_pipeline.search import optimize_splits, sampler_label
from maestro_pipeline.timeframes import timeframe_ms
from maestro_pipeline.walkforward import (
    next_test_end_ms,
    plan_research,
    research_span,
    splits_clamp_note,
    splits_from_table,
)
from resources import LakeResource

from ._common import bars_for, costs_for, lake_url, resolve, user_errors
from .metadata import rounded, table_facts
from .metadata import table as table_meta
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
        return cfg.data_contract.policy_for(inst.exchange, inst.key).max_gap

    @dg.asset(
        partitions_def=parts.instruments,
        deps=[dg.AssetDep("validated_bars", partition_mapping=dg.MultiToSingleDimensionPartitionMapping("instrument"))],
        group_name="research",
        owners=list(cfg.owners),
        tags={"stage": "research", "layer": "splits"},
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
            if blocked and cfg.research.span == "all":
                raise MaestroError(
                    f"{inst.key}: blocking data checks failed for "
                    + "; ".join(f"{m} ({', '.join(v)})" for m, v in blocked.items())
                    + " — research waits until those months pass (see validated_bars' checks)"
                )
            bars = bars_for(cfg, t, with_derivatives=False)
            used_span = research_span(lk, inst, cfg.research.span).describe()
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
                "research_span": used_span,
                "n_splits_requested": wf.n_splits,
                "first_train": iso(complete[0].train_start),
                "last_test_end": iso(complete[-1].test_end),
                "last_test_end_ms": complete[-1].test_end,
                "live_split": (f"train {iso(live.split.train_start)} .. {iso(live.split.train_end)}, trading "
                               f"{iso(live.split.test_start)} .. {iso(live.split.test_end)} ({live.reason})")
                              if live.split is not None else live.reason,
                "live_train_end_ms": live.split.train_end if live.split is not None else 0,
                "regime_shift": live.regime.get("regime_shift") or live.regime.get("regime_note") or "none",
                "regime_model": dg.MetadataValue.json(json.loads(json.dumps(live.regime.get("regime_model", {}),
                                                                            default=str))),
                "next_split_when_data_reaches": next_ready,
                "data_end": iso(int(bars["timestamp"][-1]) + tf),
                "bars": bars.height,
                "bars_data_version": dv,
                "scheme": cfg.walk_forward.scheme,
                "mode": cfg.walk_forward.mode,
                "splits": table_meta(table.select(
                    "split", "live", "train_from", "train_to", "test_from", "test_to", "train_bars", "test_bars",
                    "test_missing_bars", "train_regime", "train_regime_share", "test_regime", "test_regime_share")),
                "path": dg.MetadataValue.path(str(w.path)),
                **table_facts(table),
            },
            data_version=dg.DataVersion(w.data_version),
        )

    search_cv = code_version("maestro_pipeline.search.study", "maestro_pipeline.search.runner",
                             "maestro_pipeline.engine.nb", "maestro_pipeline.engine.fast",
                             "maestro_pipeline.engine.reference")
    wf_dep = dg.AssetDep(walk_forward_splits, partition_mapping=dg.MultiToSingleDimensionPartitionMapping("instrument"))

    def research_spec(key: str, layer: str, kinds: set[str], description: str, deps=(), skippable=False):
        return dg.AssetSpec(key, deps=list(deps), partitions_def=parts.research, group_name="research",
                            owners=list(cfg.owners), tags={"stage": "research", "layer": layer}, kinds=kinds,
                            automation_condition=RESEARCH_CONDITION, skippable=skippable, description=description)

    @dg.multi_asset(
        name="split_optimal_params",
        specs=[
            research_spec(
                "split_optimal_params", "search", {"optuna", "parquet"}, deps=[wf_dep],
                description="Per split, the parameters an Optuna search (seeded; compiled backtests that reproduce "
                "vectorbt) picks on the train window; studies are persisted to the Optuna storage. Splits run in "
                "parallel processes; unchanged splits are reused by fingerprint."),
            research_spec("trial_ledger", "search", {"optuna", "parquet"}, deps=[wf_dep],
                          description="Every trial of every split's search: parameters, objective values, train "
                          "metrics, feasibility, state, start and end times."),
            research_spec("trial_returns", "search", {"parquet"}, deps=[wf_dep], skippable=True,
                          description="Each completed trial's daily train returns (the PBO/CSCV input)."),
        ],
        code_version=search_cv,
        pool=RESEARCH_POOL,
    )
    def split_optimal_params(context: dg.AssetExecutionContext, lake: LakeResource):
        with user_errors():
            t = resolve(context, cfg, lake)
            inst, strategy, lk, part = t.inst, t.strategy, t.lake, t.research_partition
            bars = bars_for(cfg, t)
            table = lk.read_file("walk_forward_splits", inst.hive)
            prev = lk.read_file("split_optimal_params", part) if lk.exists("split_optimal_params", part) else None
            prev_ledger = lk.read_file("trial_ledger", part) if lk.exists("trial_ledger", part) else None
            prev_daily = lk.read_file("trial_returns", part) if lk.exists("trial_returns", part) else None
            out = optimize_splits(
                bars, splits_from_table(table), strategy, cfg.search, costs_for(cfg, inst), inst.timeframe, prev,
                prev_ledger, prev_daily, risk=cfg.risk.for_strategy(strategy),
                storage_url=cfg.search.storage_url(lk.root), study_prefix=f"{inst.key}/{strategy}/",
                progress=lambda line: context.log.info(f"{inst.key} x {strategy}: {line}"),
            )
            live_col = (table.select("split", "live") if "live" in table.columns
                        else table.select("split", pl.lit(False).alias("live")))
            out.params = out.params.drop("live", strict=False).join(live_col, on="split", how="left")
            versions = library_versions("optuna", "vectorbt", "numba", "numpy", "pandas")
            lineage = {"run_id": context.run_id, "bars_data_version": bars_hash(bars),
                       "search": cfg.search.model_dump(), "sampler": sampler_label(cfg.search), "libraries": versions}
            with lk.transaction() as tx:
                w = lk.write_table(out.params, "split_optimal_params", part, lineage=lineage, tx=tx)
                wl = lk.write_table(out.ledger, "trial_ledger", part, lineage=lineage, tx=tx)
                wd = (lk.write_table(out.daily, "trial_returns", part, lineage=lineage, tx=tx)
                      if out.daily.height else None)
        shown = out.params.select("split", "live", "params", "best_value", "train_sharpe", "train_vwr", "train_trades")
        yield dg.MaterializeResult(
            asset_key="trial_ledger", data_version=dg.DataVersion(wl.data_version),
            metadata={"trials": out.ledger.height, "path": dg.MetadataValue.path(str(wl.path)),
                      **table_facts(out.ledger)})
        if wd is not None:
            yield dg.MaterializeResult(
                asset_key="trial_returns", data_version=dg.DataVersion(wd.data_version),
                metadata={"rows": out.daily.height, "path": dg.MetadataValue.path(str(wd.path)),
                          **table_facts(out.daily)})
        yield dg.MaterializeResult(
            asset_key="split_optimal_params",
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
                "libraries": dg.MetadataValue.json(versions),
                "best_params": table_meta(shown),
                "path": dg.MetadataValue.path(str(w.path)),
                **table_facts(out.params),
            },
            data_version=dg.DataVersion(w.data_version),
        )

    report_deps = ["split_optimal_params", "trial_ledger"]
    side_tables = {
        "oos_equity": ("Stitched OOS equity and buy-and-hold per bar (the OOS series of every figure).", False),
        "oos_split_metrics": ("Per split: train vs test metrics, trades, notes (why a split has no pick).", False),
        "oos_rolling": ("Rolling OOS Sharpe, volatility and drawdown (quantstats).", False),
        "param_stability": ("Per parameter: spread of the picks across splits relative to the searched range.", True),
        "oos_trades": ("Every OOS trade: entry/exit time and price, side, size, P&L, exit reason.", True),
    }

    @dg.multi_asset(
        name="oos_reports",
        specs=[
            research_spec(
                "oos_reports", "report", {"vectorbt", "quantstats"}, deps=report_deps,
                description="Out-of-sample report: each split's parameters traded on its own test window, stitched "
                "equity vs buy-and-hold, per-split train vs test metrics, walk-forward efficiency, Deflated Sharpe "
                "Ratio, PBO (CSCV), bootstrap CIs, parameter stability, quantstats figures (365-day year), charts, "
                "a verdict, and a link to the HTML tearsheet (drawn on first open)."),
            *[research_spec(k, "report", {"vectorbt", "parquet"}, deps=report_deps, skippable=skip, description=d)
              for k, (d, skip) in side_tables.items()],
        ],
        code_version=code_version("maestro_pipeline.evaluation.oos", "maestro_pipeline.evaluation.report_card",
                                  "maestro_pipeline.evaluation.verdict", "maestro_pipeline.reporting.quantstats",
                                  "maestro_pipeline.stats.metrics", "maestro_pipeline.stats.pbo",
                                  "maestro_pipeline.stats.deflated_sharpe", "maestro_pipeline.stats.bootstrap",
                                  "maestro_pipeline.stats.stability"),
        pool=RESEARCH_POOL,
    )
    def oos_reports(context: dg.AssetExecutionContext, lake: LakeResource):
        with user_errors():
            t = resolve(context, cfg, lake)
            inst, strategy, lk, part = t.inst, t.strategy, t.lake, t.research_partition
            bars = bars_for(cfg, t)
            params = lk.read_file("split_optimal_params", part)
            ledger = lk.read_file("trial_ledger", part) if lk.exists("trial_ledger", part) else pl.DataFrame()
            daily = lk.read_file("trial_returns", part) if lk.exists("trial_returns", part) else None
            report = build_report(inst, strategy, bars, params, ledger, daily,
                                  lk.read_file("walk_forward_splits", inst.hive), costs_for(cfg, inst), max_gap(inst),
                                  risk=cfg.risk.for_strategy(strategy), evaluation=cfg.evaluation)
            res, card, summary = report.oos, report.card, {**report.summary, "run_id": context.run_id}
            lineage = {"run_id": context.run_id, "bars_data_version": summary["bars_data_version"],
                       "libraries": library_versions("quantstats", "vectorbt", "scipy")}
            tables = {"oos_equity": res.equity, "oos_split_metrics": res.per_split, "oos_rolling": card.rolling,
                      "param_stability": card.stability, "oos_trades": res.trades}
            written = {}
            with lk.transaction() as tx:
                for name, df in tables.items():
                    if df.height or not side_tables[name][1]:
                        written[name] = lk.write_table(df, name, part, lineage=lineage, tx=tx)
                # the tearsheet is drawn from oos_equity when someone opens it (maestro serve); one drawn from
                # the equity this run replaces goes with it
                html_target = lk.path("oos_reports", part, TEARSHEET_FILE)
                tx.discard(html_target)
                summary["tearsheet"] = str(html_target)
                report_row = pl.DataFrame([summary], infer_schema_length=None)
                w = lk.write_table(report_row, "oos_reports", part, lineage=lineage, tx=tx)

        for name, wt in written.items():
            yield dg.MaterializeResult(asset_key=name, data_version=dg.DataVersion(wt.data_version),
                                       metadata={"path": dg.MetadataValue.path(str(wt.path)),
                                                 **table_facts(tables[name])})

        def num(k):
            v = summary.get(k)
            return rounded(float(v)) if isinstance(v, (int, float)) and np.isfinite(v) else float("nan")

        yield dg.MaterializeResult(
            asset_key="oos_reports",
            metadata={
                "verdict": f"{summary['verdict']}: {summary['verdict_reason']}",
                "thresholds": _json_or_text(summary["thresholds"]),
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
                "per_split": table_meta(res.per_split),
                "quantstats": table_meta(quantstats_rows(summary)),
                "equity_chart": dg.MetadataValue.md(png_markdown(card.charts["equity_chart"],
                                                                 "OOS equity and drawdown vs buy-and-hold")),
                "tearsheet_url": dg.MetadataValue.url(lake_url(cfg, lk, summary["tearsheet"])),
                "tearsheet_note": "the quantstats tearsheet, drawn from oos_equity when first opened on maestro serve "
                                  "(make ui starts it)",
                "path": dg.MetadataValue.path(str(w.path)),
                **table_facts(report_row),
            },
            data_version=dg.DataVersion(w.data_version),
        )

    return dg.Definitions(assets=[walk_forward_splits, split_optimal_params, oos_reports])


def _json_or_text(v):
    """A JSON structure as Dagster's json metadata (expandable in the UI), anything else as it is."""
    if isinstance(v, str):
        try:
            parsed = json.loads(v)
        except ValueError:
            return v
        return dg.MetadataValue.json(parsed) if isinstance(parsed, (dict, list)) else v
    return dg.MetadataValue.json(v) if isinstance(v, (dict, list)) else v
