"""The tearsheet is drawn from the lake's ``oos_equity`` when it is opened: from exactly the series the OOS run
produced, again when a newer research run replaced the equity, and with a clear error when there is none."""

from __future__ import annotations

import os

import pandas as pd
import polars as pl
import pytest

from maestro_pipeline.config import SearchConfig, WalkForwardConfig, parse_section
from maestro_pipeline.engine import Costs
from maestro_pipeline.errors import DataError
from maestro_pipeline.evaluation import run_oos
from maestro_pipeline.lake import Lake
from maestro_pipeline.reporting import TEARSHEET_FILE, equity_series, quantstats_table, render_tearsheet
from maestro_pipeline.search import optimize_splits
from maestro_pipeline.walkforward import make_splits
from tests.support.bars import T2025_MS, synthetic_bars

PART = {"exchange": "synthetic", "symbol": "BTC_USDT", "timeframe": "1h", "strategy": "ema_cross"}


@pytest.fixture(scope="module")
def oos():
    bars = synthetic_bars(T2025_MS, T2025_MS + 200 * 86_400_000, seed=11)
    splits, _ = make_splits(bars, "1h", WalkForwardConfig(train="60d", test="30d", n_splits=3))
    search = parse_section(SearchConfig, {"n_trials": 8, "seed": 1, "storage": "none", "min_trades": 1}, "search")
    params = optimize_splits(bars, splits, "ema_cross", search, Costs(), "1h", workers=1).params
    return run_oos(bars, params, "ema_cross", Costs(), "1h")


def _lake(tmp_path, oos) -> Lake:
    lake = Lake(tmp_path / "lake")
    lake.write_table(oos.equity, "oos_equity", PART)
    lake.write_table(pl.DataFrame([{"instrument": "synthetic.BTC_USDT.1h", "strategy": "ema_cross"}]), "oos_reports",
                     PART)
    return lake


def test_the_equity_table_gives_back_the_oos_runs_own_series(oos):
    returns, bench = equity_series(oos.equity)
    pd.testing.assert_series_equal(returns, oos.returns, check_names=False, check_freq=False)
    pd.testing.assert_series_equal(bench, oos.benchmark, check_names=False, check_freq=False)
    # so the tearsheet's figures are the report's (quantstats on the same daily series)
    assert quantstats_table(returns, bench) == pytest.approx(quantstats_table(oos.returns, oos.benchmark),
                                                             nan_ok=True)


def test_a_tearsheet_is_drawn_once_then_again_only_after_the_equity_changed(tmp_path, oos):
    lake = _lake(tmp_path, oos)
    target = lake.path("oos_reports", PART, TEARSHEET_FILE)
    assert not target.exists()
    assert render_tearsheet(lake, PART) == target.resolve()
    html = target.read_text()
    assert "synthetic.BTC_USDT.1h · ema_cross · walk-forward OOS" in html and "Strategy (OOS)" in html
    first = target.stat().st_mtime_ns
    render_tearsheet(lake, PART)
    assert target.stat().st_mtime_ns == first                      # up to date: not drawn again
    newer = first + 5_000_000_000                                   # a research run replaced oos_equity
    os.utime(lake.path("oos_equity", PART), ns=(newer, newer))
    render_tearsheet(lake, PART)
    assert target.stat().st_mtime_ns > first
    assert not [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")]


def test_no_equity_no_tearsheet_and_the_error_says_what_to_materialize(tmp_path):
    with pytest.raises(DataError, match="materialize oos_reports for this instrument x strategy"):
        render_tearsheet(Lake(tmp_path / "lake"), PART)


def test_a_commit_discards_the_file_derived_from_what_it_replaced_and_a_rollback_keeps_it(tmp_path):
    lake = Lake(tmp_path / "lake")
    old = lake.path("oos_reports", PART, TEARSHEET_FILE)
    old.parent.mkdir(parents=True)
    old.write_text("old")
    with pytest.raises(RuntimeError), lake.transaction() as tx:
        tx.discard(old)
        raise RuntimeError("the run failed")
    assert old.read_text() == "old"
    with lake.transaction() as tx:
        tx.discard(old)
    assert not old.exists()
