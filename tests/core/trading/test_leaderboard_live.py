"""The leaderboard joins the live assets' tables: the live pick, its tradeable flag and its drift status per pair,
null where the live assets have not run."""

from __future__ import annotations

import polars as pl

from maestro_pipeline.config import LiveConfig, RiskSettings
from maestro_pipeline.evaluation import LEADERBOARD_COLUMNS, build_leaderboard, format_leaderboard
from maestro_pipeline.lake import Lake
from maestro_pipeline.trading import live_record, write_live
from tests.core.trading.test_record_store import INST, T0, tables


def report_row(strategy: str, verdict: str, sharpe: float) -> dict:
    row = {c: None for c in LEADERBOARD_COLUMNS}
    row.update(instrument=INST.key, strategy=strategy, verdict=verdict, oos_sharpe=sharpe, verdict_reason="r",
               live_params='{"stale": 1}')
    return row


def test_live_columns_are_joined_per_pair_and_null_elsewhere(tmp_path):
    lake = Lake(tmp_path)
    for strategy, verdict, sharpe in (("ema_cross", "promising", 1.0), ("rsi", "weak", 0.5)):
        lake.write_table(pl.DataFrame([report_row(strategy, verdict, sharpe)], infer_schema_length=None),
                         "oos_reports", {**INST.hive, "strategy": strategy})
    keys = [(INST.key, "ema_cross"), (INST.key, "rsi")]
    board = build_leaderboard(lake, keys)
    assert board["tradeable"].to_list() == [None, None] and board["drift_status"].to_list() == [None, None]

    params, splits, report, bars = tables()
    doc = live_record(INST, "ema_cross", params, report, splits, bars, RiskSettings(), LiveConfig(), generated_at_ms=T0)
    write_live(lake, doc)
    lake.write_table(pl.DataFrame([{"instrument": INST.key, "strategy": "ema_cross", "status": "below band",
                                    "live_return": -0.2, "band_low": -0.05, "band_high": 0.1}]),
                     "live_performance", {**INST.hive, "strategy": "ema_cross"})
    board = build_leaderboard(lake, keys)
    ema, rsi = board.row(0, named=True), board.row(1, named=True)
    assert ema["strategy"] == "ema_cross" and ema["rank"] == 1
    assert ema["tradeable"] is True and "clears live.tradeable_from" in ema["tradeable_reason"]
    assert ema["live_params"] == '{"fast": 12, "slow": 40}'  # the live record's, not the report's
    assert ema["live_valid_until"] == doc["valid_until"]
    assert (ema["drift_status"], ema["live_return"], ema["band_low"]) == ("below band", -0.2, -0.05)
    assert rsi["tradeable"] is None and rsi["drift_status"] is None
    text = format_leaderboard(board)
    assert "below band" in text and "yes" in text
