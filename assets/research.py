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
from maestro_pipeline.reports import QUANTSTATS_CONVENTIONS, equity_drawdown_png, png_markdown, quantstats_metrics, write_tearsheet
from maestro_pipeline.research import (
    MIN_OOS_TRADES, MIN_WFE, attach_derivatives, bars_hash, iso, make_splits, optimize_splits, run_oos, splits_from_table, verdict,
)
from maestro_pipeline.splits import next_split_ready_ms
from maestro_pipeline.timeframes import parse_duration_ms, timeframe_ms
from resources import LakeResource

from ._common import code_version, failed_blocking_checks, library_versions, md_table, partition_dims, user_errors
from .partitions import Partitions, bars_key

#: Research assets run after new splits, and only when every upstream blocking check has passed.
RESEARCH_CONDITION = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager, upstream blocking checks passed")


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
        code_version=code_version("maestro_pipeline.splits", "maestro_pipeline.research"),
        description="Walk-forward train/test windows per instrument on a fixed calendar grid (train and test disjoint).",
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
            splits, table = make_splits(bars, inst.timeframe, cfg.walk_forward, max_gap=max_gap(inst))
            dv = bars_hash(bars)
            w = lk.write_table(table, "walk_forward_splits", inst.hive,
                               lineage={"run_id": context.run_id, "bars_data_version": dv, "walk_forward": cfg.walk_forward.model_dump()})
            test_ms = parse_duration_ms(cfg.walk_forward.test, inst.timeframe)
            tf = timeframe_ms(inst.timeframe)
        return dg.MaterializeResult(
            metadata={
                "n_splits": len(splits),
                "first_train": iso(splits[0].train_start),
                "last_test_end": iso(splits[-1].test_end),
                "last_test_end_ms": splits[-1].test_end,
                "next_split_when_data_reaches": iso(next_split_ready_ms(splits, test_ms)),
                "data_end": iso(int(bars["timestamp"][-1]) + tf),
                "bars": bars.height,
                "bars_data_version": dv,
                "scheme": cfg.walk_forward.scheme,
                "splits": dg.MetadataValue.md(md_table(table.select("split", "train_from", "train_to", "test_from", "test_to", "train_bars", "test_bars", "test_missing_bars"))),
                "path": dg.MetadataValue.path(str(w.path)),
            },
            data_version=dg.DataVersion(w.data_version),
        )

    @dg.asset(
        partitions_def=parts.research,
        deps=[dg.AssetDep(walk_forward_splits, partition_mapping=dg.MultiToSingleDimensionPartitionMapping("instrument"))],
        group_name="research",
        kinds={"optuna", "parquet"},
        code_version=code_version("maestro_pipeline.optimize", "maestro_pipeline.backtest", "maestro_pipeline.research"),
        automation_condition=RESEARCH_CONDITION,
        description="Per split, the parameters Optuna (seeded TPE over vectorbt backtests) finds best on the train "
        "window; every trial goes to the trial_ledger table. Unchanged splits are reused by fingerprint.",
    )
    def split_optimal_params(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        with user_errors():
            inst, strategy, lk, part, bars, costs = research_inputs(context, lake)
            table = lk.read_file("walk_forward_splits", inst.hive)
            prev = lk.read_file("split_optimal_params", part) if lk.exists("split_optimal_params", part) else None
            prev_ledger = lk.read_file("trial_ledger", part) if lk.exists("trial_ledger", part) else None
            out = optimize_splits(bars, splits_from_table(table), strategy, cfg.search, costs, inst.timeframe, prev, prev_ledger)
            versions = library_versions("optuna", "vectorbt", "numpy", "pandas")
            lineage = {"run_id": context.run_id, "bars_data_version": bars_hash(bars), "search": cfg.search.model_dump(),
                       "sampler": "optuna.samplers.TPESampler(multivariate=True, seed=per-split)", "libraries": versions}
            with lk.transaction() as tx:
                w = lk.write_table(out.params, "split_optimal_params", part, lineage=lineage, tx=tx)
                lk.write_table(out.ledger, "trial_ledger", part, lineage=lineage, tx=tx)
        shown = out.params.select("split", "params", "best_value", "train_sharpe", "train_trades")
        return dg.MaterializeResult(
            metadata={
                "splits": out.params.height,
                "splits_computed": out.computed,
                "splits_reused": out.reused,
                "trials_in_ledger": out.ledger.height,
                "objective": cfg.search.objective,
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
        code_version=code_version("maestro_pipeline.research", "maestro_pipeline.reports", "maestro_pipeline.metrics"),
        automation_condition=RESEARCH_CONDITION,
        description="Out-of-sample report: each split's parameters traded on its own test window, stitched equity "
        "vs buy-and-hold, per-split train vs test metrics, quantstats figures (365-day year) and an HTML tearsheet.",
    )
    def oos_reports(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        with user_errors():
            inst, strategy, lk, part, bars, costs = research_inputs(context, lake)
            params = lk.read_file("split_optimal_params", part)
            res = run_oos(bars, params, strategy, costs, inst.timeframe, max_gap=max_gap(inst))
            qs = quantstats_metrics(res.returns, res.benchmark)
            word, reason = verdict(res.summary["oos_trades"], qs["sharpe"], res.summary["wfe"])
            summary = {
                "instrument": inst.key, "exchange": inst.exchange, "symbol": inst.symbol, "timeframe": inst.timeframe,
                "strategy": strategy, "source": inst.exchange, "verdict": word, "verdict_reason": reason,
                **{f"oos_{k}": v for k, v in qs.items() if not k.startswith("benchmark_")},
                **{k: v for k, v in qs.items() if k.startswith("benchmark_")},
                **res.summary,
                "quantstats_conventions": json.dumps(QUANTSTATS_CONVENTIONS, default=str),
                "thresholds": f"trades >= {MIN_OOS_TRADES}, OOS Sharpe > 0, WFE >= {MIN_WFE}",
                "bars_data_version": bars_hash(bars),
                "run_id": context.run_id,
            }
            lineage = {"run_id": context.run_id, "bars_data_version": summary["bars_data_version"],
                       "libraries": library_versions("quantstats", "vectorbt")}
            with lk.transaction() as tx:
                lk.write_table(res.equity, "oos_equity", part, lineage=lineage, tx=tx)
                lk.write_table(res.per_split, "oos_split_metrics", part, lineage=lineage, tx=tx)
                if res.trades.height:
                    lk.write_table(res.trades, "oos_trades", part, lineage=lineage, tx=tx)
                tmp, html_target = lk.staged_path("oos_reports", part, "tearsheet.html", tx)
                write_tearsheet(res.returns, res.benchmark, tmp, title=f"{inst.key} · {strategy} · walk-forward OOS")
                summary["tearsheet"] = str(html_target)
                w = lk.write_table(pl.DataFrame([summary], infer_schema_length=None), "oos_reports", part, lineage=lineage, tx=tx)
            png = equity_drawdown_png(res.returns, res.benchmark, title=f"{inst.key} {strategy}: OOS vs buy-and-hold")
        key = {k: summary[k] for k in ("oos_sharpe", "oos_sortino", "oos_cagr", "oos_max_drawdown", "oos_calmar", "oos_total_return") if k in summary}
        return dg.MaterializeResult(
            metadata={
                "verdict": f"{word}: {reason}",
                **{k: float(v) if v is not None and np.isfinite(v) else float("nan") for k, v in key.items()},
                "oos_trades": summary["oos_trades"],
                "walk_forward_efficiency": summary["wfe"] if summary["wfe"] is not None else float("nan"),
                "wfe_note": summary["wfe_note"],
                "data_note": summary["data_note"] or "strategy used only OHLCV (no proxies)",
                "buy_hold_total_return": summary["buy_hold_total_return"],
                "per_split": dg.MetadataValue.md(md_table(res.per_split.drop("params"))),
                "equity_chart": dg.MetadataValue.md(png_markdown(png, "OOS equity and drawdown vs buy-and-hold")),
                "tearsheet": dg.MetadataValue.path(summary["tearsheet"]),
                "path": dg.MetadataValue.path(str(w.path)),
            },
            data_version=dg.DataVersion(w.data_version),
        )

    return [walk_forward_splits, split_optimal_params, oos_reports]
