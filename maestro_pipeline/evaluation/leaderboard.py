"""The leaderboard: every instrument x strategy ranked by its out-of-sample results, in DuckDB SQL, with the live
parameters, their tradeable flag and drift status joined from the live assets' tables (null until those ran)."""

from __future__ import annotations

import polars as pl

from ..lake import Lake
from .verdict import VERDICT_RANK

__all__ = ["COLUMNS", "LIVE_COLUMNS", "build_leaderboard", "format_leaderboard", "leaderboard_sql"]

COLUMNS = (
    "instrument", "strategy", "verdict", "oos_sharpe", "oos_sortino", "oos_cagr", "oos_max_drawdown",
    "oos_total_return", "buy_hold_total_return", "oos_trades", "wfe", "dsr", "pbo", "sharpe_ci_low", "sharpe_ci_high",
    "plateau_median", "dsr_n_trials", "n_splits", "oos_days", "oos_liquidations", "ruined", "first_test",
    "last_test_end", "verdict_reason", "nan_reasons", "source",
)
#: From the live assets (null until they ran): the pick to trade now, whether it may be, and its drift status.
LIVE_COLUMNS = ("live_params", "tradeable", "tradeable_reason", "live_valid_until", "drift_status", "live_return",
                "band_low", "band_high")

_PARQUET = "read_parquet('{}', union_by_name=true, hive_partitioning=false)"
#: (table, its columns as the leaderboard names them, their types when the table is absent)
_LIVE_TABLES = (
    ("live_parameters", (("live_params", "live_params", "VARCHAR"), ("tradeable", "tradeable", "BOOLEAN"),
                         ("tradeable_reason", "tradeable_reason", "VARCHAR"),
                         ("valid_until", "live_valid_until", "VARCHAR"))),
    ("live_performance", (("status", "drift_status", "VARCHAR"), ("live_return", "live_return", "DOUBLE"),
                          ("band_low", "band_low", "DOUBLE"), ("band_high", "band_high", "DOUBLE"))),
)


def _live_table(lake: Lake, asset: str, cols: tuple[tuple[str, str, str], ...]) -> str:
    """A subquery of one live table keyed by instrument x strategy (an empty one of the same shape when absent)."""
    if lake.files(asset):
        sel = ", ".join(f"{src} AS {name}" for src, name, _ in cols)
        return f"(SELECT instrument, strategy, {sel} FROM {_PARQUET.format(lake.glob(asset))})"
    sel = ", ".join(f"NULL::{typ} AS {name}" for _, name, typ in cols)
    return f"(SELECT NULL::VARCHAR AS instrument, NULL::VARCHAR AS strategy, {sel} WHERE false)"


def leaderboard_sql(lake: Lake, keys: list[tuple[str, str]] | None = None) -> str:
    order = " ".join(f"WHEN '{v}' THEN {r}" for v, r in VERDICT_RANK.items())
    (lp_asset, lp_cols), (pf_asset, pf_cols) = _LIVE_TABLES
    where = "true"
    if keys:
        where = "(r.instrument, r.strategy) IN (" + ", ".join(f"('{i}', '{s}')" for i, s in keys) + ")"
    cols = ", ".join(f"r.{c}" for c in COLUMNS) + ", " + ", ".join(
        f"{'lp' if any(name == c for _, name, _ in lp_cols) else 'pf'}.{c}" for c in LIVE_COLUMNS)
    return (
        f"SELECT row_number() OVER (ORDER BY CASE r.verdict {order} ELSE 99 END, r.oos_sharpe DESC NULLS LAST) "
        f"AS rank, {cols} "
        f"FROM {_PARQUET.format(lake.glob('oos_reports'))} r "
        f"LEFT JOIN {_live_table(lake, lp_asset, lp_cols)} lp USING (instrument, strategy) "
        f"LEFT JOIN {_live_table(lake, pf_asset, pf_cols)} pf USING (instrument, strategy) "
        f"WHERE {where} ORDER BY rank"
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
        pl.when(pl.col("tradeable").is_null()).then(pl.lit("-")).when(pl.col("tradeable")).then(pl.lit("yes"))
        .otherwise(pl.lit("no")).alias("trade"),
        pl.col("drift_status").fill_null("-").alias("drift"),
    )
    with pl.Config(tbl_rows=200, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
                   tbl_width_chars=200):
        return str(show)
