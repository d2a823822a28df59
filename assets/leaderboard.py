"""``strategy_leaderboard``: every configured instrument x strategy ranked by out-of-sample results."""


import dagster as dg

from maestro_pipeline.config import MaestroConfig
from maestro_pipeline.evaluation import build_leaderboard, leaderboard_sql
from maestro_pipeline.provenance import code_version
from resources import LakeResource

from ._common import user_errors
from .metadata import table, table_facts

LEADERBOARD_CONDITION = (
    dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())
).with_label("after any report updates")


def build_leaderboard_definitions(cfg: MaestroConfig) -> dg.Definitions:
    keys = [(i.key, s) for i in cfg.instrument_objs for s in cfg.strategies]

    @dg.asset(
        deps=["oos_reports", "live_parameters", "live_performance"],
        group_name="research",
        kinds={"duckdb"},
        code_version=code_version("maestro_pipeline.evaluation.leaderboard"),
        automation_condition=LEADERBOARD_CONDITION,
        owners=list(cfg.owners),
        tags={"stage": "research", "layer": "report"},
        description="DuckDB ranking of every instrument x strategy by verdict, then OOS Sharpe; also refreshes the "
        "DuckDB catalog (data_lake/catalog.duckdb) with views over the whole lake.",
    )
    def strategy_leaderboard(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        with user_errors():
            lk = lake.lake()
            board = build_leaderboard(lk, keys)
            meta: dict = {"entries": board.height, "expected_entries": len(keys)}
            if board.height:
                w = lk.write_table(board, "strategy_leaderboard", None, lineage={"run_id": context.run_id})
                meta["path"] = dg.MetadataValue.path(str(w.path))
                # a sortable table shown on the asset page itself (no "[Show Markdown]" click)
                meta["leaderboard"] = table(board.select(
                    "rank", "instrument", "strategy", "verdict", "verdict_reason", "oos_sharpe", "oos_total_return",
                    "buy_hold_total_return", "oos_max_drawdown", "oos_trades", "wfe", "dsr", "pbo", "tradeable",
                    "drift_status"))
                meta.update(table_facts(board))
            missing = (sorted(set(keys) - set(zip(board["instrument"], board["strategy"], strict=True)))
                       if board.height else keys)
            if missing:
                meta["missing_reports"] = ", ".join(f"{i}|{s}" for i, s in missing)
            catalog = lk.build_catalog()
            meta["catalog"] = dg.MetadataValue.path(str(catalog))
            meta["sql"] = dg.MetadataValue.md(f"```sql\n{leaderboard_sql(lk, None)}\n```")
            if board.height:
                top = board.row(0, named=True)
                meta["top"] = f"{top['instrument']} x {top['strategy']}: {top['verdict']}"
        return dg.MaterializeResult(metadata=meta)

    return dg.Definitions(assets=[strategy_leaderboard])
