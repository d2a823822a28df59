"""The leaderboard: every instrument x strategy ranked by its out-of-sample results, in DuckDB SQL."""

from __future__ import annotations

import polars as pl

from ..lake import Lake
from .verdict import VERDICT_RANK

__all__ = ["COLUMNS", "build_leaderboard", "format_leaderboard", "leaderboard_sql"]

COLUMNS = (
    "instrument", "strategy", "verdict", "oos_sharpe", "oos_sortino", "oos_cagr", "oos_max_drawdown",
    "oos_total_return", "buy_hold_total_return", "oos_trades", "wfe", "dsr", "pbo", "sharpe_ci_low", "sharpe_ci_high",
    "plateau_median", "dsr_n_trials", "n_splits", "oos_days", "oos_liquidations", "ruined", "first_test",
    "last_test_end", "verdict_reason", "nan_reasons", "source",
)


def leaderboard_sql(lake: Lake, keys: list[tuple[str, str]] | None = None) -> str:
    glob = lake.glob("oos_reports")
    order = " ".join(f"WHEN '{v}' THEN {r}" for v, r in VERDICT_RANK.items())
    where = "true"
    if keys:
        where = "(instrument, strategy) IN (" + ", ".join(f"('{i}', '{s}')" for i, s in keys) + ")"
    cols = ", ".join(COLUMNS)
    return (
        f"SELECT row_number() OVER (ORDER BY CASE verdict {order} ELSE 99 END, oos_sharpe DESC NULLS LAST) AS rank, "
        f"{cols} "
        f"FROM read_parquet('{glob}', union_by_name=true, hive_partitioning=false) WHERE {where} ORDER BY rank"
    )


def build_leaderboard(lake: Lake, keys: list[tuple[str, str]] | None = None) -> pl.DataFrame:
    """Rank the reports in the lake (only ``keys`` when given: the pairs ``maestro.yaml`` asks for)."""
    if not lake.files("oos_reports"):
        return pl.DataFrame()
    return lake.query(leaderboard_sql(lake, keys))


def format_leaderboard(df: pl.DataFrame) -> str:
    """A fixed-width text table for the terminal."""
    if df.height == 0:
        return "(no out-of-sample reports yet)"
    show = df.select(
        "rank", "instrument", "strategy", "verdict",
        pl.col("oos_sharpe").round(2).alias("sharpe"),
        (pl.col("oos_total_return") * 100).round(1).alias("oos_ret%"),
        (pl.col("buy_hold_total_return") * 100).round(1).alias("b&h_ret%"),
        (pl.col("oos_max_drawdown") * 100).round(1).alias("max_dd%"),
        pl.col("oos_trades").alias("trades"),
        pl.col("wfe").cast(pl.Float64).round(2),  # a column of nulls has no numeric type of its own
        pl.col("dsr").cast(pl.Float64).round(2),
        pl.col("pbo").cast(pl.Float64).round(2),
    )
    with pl.Config(tbl_rows=200, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
                   tbl_width_chars=200):
        return str(show)
