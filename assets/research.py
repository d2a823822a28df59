"""Research assets: ``walk_forward_splits`` -> ``split_optimal_params`` -> ``oos_reports``.

Each reads the validated lake for its instrument in one scan and calls the core (``maestro_pipeline.
research``); each writes its tables atomically and records seeds, data versions and library versions.
"""


import json

import dagster as dg
import numpy as np
import polars as pl

from maestro_pipeline.backtest import Costs
from maestro_pipeline.config import MaestroConfig
from maestro_pipeline.contract import blocking_checks
from maestro_pipeline.lake import Lake
from maestro_pipeline.errors import MaestroError
from maestro_pipeline.report_card import THRESHOLDS, build_report_card
from maestro_pipeline.reports import QUANTSTATS_CONVENTIONS, png_markdown, write_tearsheet
from maestro_pipeline.schema import to_pandas_bars
from maestro_pipeline.strategies import get_strategy
from maestro_pipeline.research import (
    attach_derivatives, bars_hash, iso, optimize_splits, plan_research, run_oos, splits_from_table,
)
from maestro_pipeline.splits import next_test_end_ms
from maestro_pipeline.timeframes import timeframe_ms
from resources import LakeResource

from ._common import code_version, failed_blocking_checks, library_versions, md_table, partition_dims, user_errors
from .partitions import Partitions, bars_key

#: The Dagster pool research steps share (its limit is maestro.yaml's concurrency.research_pool).
RESEARCH_POOL = "maestro_research"

#: Research assets run after new splits, and only when every upstream blocking check has passed.
RESEARCH_CONDITION = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager, upstream blocking checks passed")


def sampler_label(search) -> str:
    """The sampler as a reader would write it, for the materialization's metadata."""
    kind = {"tpe": "TPESampler(multivariate=True, seed=per-split)", "random": "RandomSampler(seed=per-split)",
            "grid": f"GridSampler(grid_points={search.grid_points}, seed=per-split)"}[search.sampler]
    return f"optuna.samplers.{kind}" + (f", WilcoxonPruner over {search.folds} folds" if search.pruner == "wilcoxon" else "")


def with_regimes(per_split: pl.DataFrame, params: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """The per-split OOS table with each window's market regime (from walk_forward_splits, matched by window)."""
    cols = [c for c in ("train_regime", "train_regime_share", "test_regime", "test_regime_share") if c in table.columns]
    if not cols:
        return per_split
    windows = params.select("split", "train_start", "test_start").join(
        table.select("train_start", "test_start", *cols), on=["train_start", "test_start"], how="left")
    return per_split.join(windows.select("split", *cols), on="split", how="left")


def live_summary(params: pl.DataFrame) -> dict:
    """The live split's pick (what the walk-forward would trade now) for the report row."""
    if "live" not in params.columns or not params["live"].fill_null(False).any():
        return {"live_params": "", "live_train_from": "", "live_train_to": "", "live_trading_until": ""}
    r = params.filter(pl.col("live").fill_null(False)).row(0, named=True)
    return {"live_params": r["params"], "live_train_from": iso(r["train_start"]), "live_train_to": iso(r["train_end"]),
            "live_trading_until": iso(r["test_end"])}


def research_partition(inst, strategy: str) -> dict[str, str]:
    return {**inst.hive, "strategy": strategy}


def read_contiguous_bars(lk: Lake, inst) -> pl.DataFrame:
    """All validated bars of an instrument; refuses to bridge a month that is missing from the validated lake."""
    bars = lk.read_bars(inst)
    if bars.height == 0:
        raise MaestroError(f"{inst.key}: no validated bars yet; materialize raw_candles and validated_bars first")
    months = sorted({p.parent.name.removeprefix("month=") for p in lk.files("validated_bars", inst.hive)})
    expected, m = [], months[0]
    while m <= months[-1]:
        expected.append(m)
        y, mo = int(m[:4]), int(m[5:])
        m = f"{y + (mo == 12)}-{1 if mo == 12 else mo + 1:02d}"
    missing = sorted(set(expected) - set(months))
    if missing:
        raise MaestroError(
            f"{inst.key}: validated bars are missing for {', '.join(missing)} (failed checks or not materialized); "
            "research will not bridge the hole — fix and materialize those months"
        )
    return bars


def build_research_assets(cfg: MaestroConfig, parts: Partitions, validated_bars: dg.AssetsDefinition) -> list:
    check_keys = [dg.AssetCheckKey(validated_bars.key, n) for n in blocking_checks(cfg.data_contract.severities())]

    def max_gap(inst):
        return cfg.data_contract.policy_for(inst.exchange).max_gap

    def research_inputs(context: dg.AssetExecutionContext, lake: LakeResource):
        """What every instrument x strategy asset starts from: the instrument, its lake partition, bars, costs."""
        dims = partition_dims(context)
        inst = cfg.instrument(dims["instrument"])
        lk = lake.lake()
        c = cfg.costs_for(inst.exchange)
        bars = read_contiguous_bars(lk, inst)
        extra = {kind: lk.query(f"SELECT * FROM read_parquet('{lk.glob(kind, inst.hive)}', union_by_name=true)")
                 for kind in ("funding_rates", "open_interest") if lk.files(kind, inst.hive)}
        bars = attach_derivatives(bars, inst.timeframe, extra.get("funding_rates"), extra.get("open_interest"))
        return (inst, dims["strategy"], lk, research_partition(inst, dims["strategy"]), bars, Costs(c.fee, c.slippage))

    @dg.asset(
        partitions_def=parts.instruments,
        deps=[dg.AssetDep(validated_bars, partition_mapping=dg.MultiToSingleDimensionPartitionMapping("instrument"))],
        group_name="research",
        kinds={"duckdb", "parquet"},
        code_version=code_version("maestro_pipeline.splits", "maestro_pipeline.research", "maestro_pipeline.live", "maestro_pipeline.regimes"),
        description="Walk-forward train/test windows per instrument on a fixed calendar grid (train and test disjoint), "
        "plus the live split (its pick is what to trade now) and each window's market regime (HMM, past data only).",
    )
    def walk_forward_splits(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        with user_errors():
            inst = cfg.instrument(context.partition_key)
            lk = lake.lake()
            months = sorted({p.parent.name.removeprefix("month=") for a in ("raw_candles", "validated_bars") for p in lk.files(a, inst.hive)})
            blocked = failed_blocking_checks(context.instance, check_keys, [str(bars_key(m, inst.key)) for m in months])
            if blocked:
                raise MaestroError(
                    f"{inst.key}: blocking data checks failed for "
                    + "; ".join(f"{k.split('|')[-1]} ({', '.join(v)})" for k, v in blocked.items())
                    + " — research waits until those months pass (see validated_bars' checks)"
                )
            bars = read_contiguous_bars(lk, inst)
            splits, table, live = plan_research(bars, inst.timeframe, cfg.walk_forward, max_gap=max_gap(inst),
                                                regimes=cfg.regimes)
            complete = [sp for sp in splits if live.split is None or sp.index != live.split.index]
            dv = bars_hash(bars)
            w = lk.write_table(table, "walk_forward_splits", inst.hive,
                               lineage={"run_id": context.run_id, "bars_data_version": dv, "walk_forward": cfg.walk_forward.model_dump()})
            wf = cfg.walk_forward
            next_ready = (iso(next_test_end_ms(complete, inst.timeframe, wf.test, wf.step)) if wf.mode == "calendar"
                          else "every new bar re-cuts the parts (mode: parts)")
            tf = timeframe_ms(inst.timeframe)
        return dg.MaterializeResult(
            metadata={
                "n_splits": len(complete),
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
        deps=[dg.AssetDep(walk_forward_splits, partition_mapping=dg.MultiToSingleDimensionPartitionMapping("instrument"))],
        group_name="research",
        kinds={"optuna", "parquet"},
        code_version=code_version("maestro_pipeline.optimize", "maestro_pipeline.fastpath", "maestro_pipeline.backtest", "maestro_pipeline.research"),
        automation_condition=RESEARCH_CONDITION,
        pool=RESEARCH_POOL,
        description="Per split, the parameters an Optuna search (seeded; compiled backtests that reproduce vectorbt) picks "
        "on the train window; every trial goes to trial_ledger and its daily returns to trial_returns; studies are "
        "persisted to the Optuna storage. Splits run in parallel processes; unchanged splits are reused by fingerprint.",
    )
    def split_optimal_params(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        with user_errors():
            inst, strategy, lk, part, bars, costs = research_inputs(context, lake)
            table = lk.read_file("walk_forward_splits", inst.hive)
            prev = lk.read_file("split_optimal_params", part) if lk.exists("split_optimal_params", part) else None
            prev_ledger = lk.read_file("trial_ledger", part) if lk.exists("trial_ledger", part) else None
            prev_daily = lk.read_file("trial_returns", part) if lk.exists("trial_returns", part) else None
            out = optimize_splits(
                bars, splits_from_table(table), strategy, cfg.search, costs, inst.timeframe, prev, prev_ledger, prev_daily,
                storage_url=cfg.search.storage_url(lk.root), study_prefix=f"{inst.key}/{strategy}/",
            )
            live_col = table.select("split", "live") if "live" in table.columns else table.select("split", pl.lit(False).alias("live"))
            out.params = out.params.drop("live", strict=False).join(live_col, on="split", how="left")
            versions = library_versions("optuna", "vectorbt", "numba", "numpy", "pandas")
            lineage = {"run_id": context.run_id, "bars_data_version": bars_hash(bars), "search": cfg.search.model_dump(),
                       "sampler": sampler_label(cfg.search), "libraries": versions}
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
        code_version=code_version("maestro_pipeline.research", "maestro_pipeline.report_card", "maestro_pipeline.reports", "maestro_pipeline.overfitting", "maestro_pipeline.metrics"),
        automation_condition=RESEARCH_CONDITION,
        pool=RESEARCH_POOL,
        description="Out-of-sample report: each split's parameters traded on its own test window, stitched equity "
        "vs buy-and-hold, per-split train vs test metrics, walk-forward efficiency, Deflated Sharpe Ratio, PBO (CSCV), "
        "bootstrap CIs, parameter stability, quantstats figures (365-day year), charts, an HTML tearsheet and a verdict.",
    )
    def oos_reports(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        with user_errors():
            inst, strategy, lk, part, bars, costs = research_inputs(context, lake)
            params = lk.read_file("split_optimal_params", part)
            ledger = lk.read_file("trial_ledger", part) if lk.exists("trial_ledger", part) else pl.DataFrame()
            daily = lk.read_file("trial_returns", part) if lk.exists("trial_returns", part) else None
            res = run_oos(bars, params, strategy, costs, inst.timeframe, max_gap=max_gap(inst))
            res.per_split = with_regimes(res.per_split, params, lk.read_file("walk_forward_splits", inst.hive))
            title = f"{inst.key} {strategy}"
            card = build_report_card(res, params, ledger, daily, to_pandas_bars(bars), get_strategy(strategy), title)
            summary = {
                "instrument": inst.key, "exchange": inst.exchange, "symbol": inst.symbol, "timeframe": inst.timeframe,
                "strategy": strategy, "source": inst.exchange,
                **card.summary,
                **res.summary,
                "quantstats_conventions": json.dumps(QUANTSTATS_CONVENTIONS, default=str),
                **live_summary(params),
                "bars_data_version": bars_hash(bars),
                "run_id": context.run_id,
            }
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
                w = lk.write_table(pl.DataFrame([summary], infer_schema_length=None), "oos_reports", part, lineage=lineage, tx=tx)

        def num(k):
            v = summary.get(k)
            return float(v) if isinstance(v, (int, float)) and v is not None and np.isfinite(v) else float("nan")

        key_figures = pl.DataFrame({
            "figure": ["OOS Sharpe", "OOS Sharpe 95% CI", "Deflated Sharpe Ratio", "PBO (CSCV)", "walk-forward efficiency",
                       "OOS CAGR", "OOS max drawdown", "max drawdown 95% CI", "OOS trades", "trials searched",
                       "parameter plateau (median)", "buy-and-hold return"],
            "value": [f"{num('oos_sharpe'):.2f}", f"{num('sharpe_ci_low'):.2f} .. {num('sharpe_ci_high'):.2f}",
                      f"{num('dsr'):.3f} (SR0 {num('sr0'):.4f}/day)", f"{num('pbo'):.2f} over {summary['pbo_splits']} splits",
                      f"{num('wfe'):.2f}" + ("" if summary["wfe"] is not None else f" ({summary['wfe_note']})"),
                      f"{num('oos_cagr'):.1%}", f"{num('oos_max_drawdown'):.1%}",
                      f"{num('max_drawdown_ci_low'):.1%} .. {num('max_drawdown_ci_high'):.1%}",
                      str(summary["oos_trades"]), str(summary["dsr_n_trials"]), f"{num('plateau_median'):.2f}",
                      f"{num('buy_hold_total_return'):.1%}"],
        })
        qs_table = pl.DataFrame({"metric": [k.removeprefix("oos_") for k in summary if k.startswith("oos_") and isinstance(summary[k], float)],
                                 "strategy": [summary[k] for k in summary if k.startswith("oos_") and isinstance(summary[k], float)]})
        images = "\n\n".join(png_markdown(png, alt) for alt, png in (
            ("OOS equity and drawdown vs buy-and-hold", card.charts.get("equity_chart")),
            ("Latest test window: candles with OOS trades", card.charts.get("latest_test_candles")),
            ("Chosen parameters per split", card.charts.get("param_heatmap")),
            ("Latest split's trials over two parameters", card.charts.get("param_surface")),
        ) if png)
        report_md = (f"## Verdict: {summary['verdict']}\n\n{summary['verdict_reason']}\n\n*Thresholds: {THRESHOLDS}.*\n\n"
                     f"{md_table(key_figures)}\n\n"
                     + (f"**Live split** (train {summary['live_train_from']} .. {summary['live_train_to']}, trading until "
                        f"{summary['live_trading_until']}): `{summary['live_params']}`\n\n" if summary["live_params"] else "")
                     + images)
        return dg.MaterializeResult(
            metadata={
                "verdict": f"{summary['verdict']}: {summary['verdict_reason']}",
                "thresholds": THRESHOLDS,
                "report": dg.MetadataValue.md(report_md),
                **{k: num(k) for k in ("oos_sharpe", "oos_sortino", "oos_cagr", "oos_max_drawdown", "oos_calmar",
                                      "oos_total_return", "dsr", "pbo", "sharpe_ci_low", "sharpe_ci_high", "plateau_median")},
                "oos_trades": summary["oos_trades"],
                "live_parameters": summary["live_params"] or "no live split",
                "trials_searched": summary["dsr_n_trials"],
                "walk_forward_efficiency": num("wfe"),
                "wfe_note": summary["wfe_note"],
                "overfitting_note": summary.get("overfitting_note") or "none",
                "data_note": summary["data_note"] or "strategy used only OHLCV (no proxies)",
                "buy_hold_total_return": num("buy_hold_total_return"),
                "per_split": dg.MetadataValue.md(md_table(res.per_split)),
                "quantstats": dg.MetadataValue.md(md_table(qs_table)),
                "equity_chart": dg.MetadataValue.md(png_markdown(card.charts["equity_chart"], "OOS equity and drawdown vs buy-and-hold")),
                "tearsheet": dg.MetadataValue.path(summary["tearsheet"]),
                "path": dg.MetadataValue.path(str(w.path)),
            },
            data_version=dg.DataVersion(w.data_version),
        )

    return [walk_forward_splits, split_optimal_params, oos_reports]
